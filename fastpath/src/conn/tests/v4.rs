//! The table's tests for IPv4 (`cases`), and IPv4's own.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::conn::{Config, Conn, Family, Table};
use cases::T0;

// The same file is `v4::cases` and `v6::cases`, on purpose: one body of tests, compiled
// for each family's addresses.
#[allow(clippy::duplicate_mod)]
#[path = "cases.rs"]
mod cases;

type Addr = Ipv4Addr;
type Sock = SocketAddrV4;

const VIP: Sock = SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 100), 80);
/// The netmask that keeps a whole address.
const HOST: Addr = Ipv4Addr::BROADCAST;

fn addr(a: [u8; 4]) -> Addr {
    Ipv4Addr::from(a)
}

fn sa(a: [u8; 4], port: u16) -> Sock {
    SocketAddrV4::new(addr(a), port)
}

/// The netmask of an IPv4 prefix length (1 to 32).
fn netmask(prefix_len: u32) -> Addr {
    Ipv4Addr::from_bits(u32::MAX << (32 - prefix_len))
}

#[test]
fn entry_and_index_sizes_and_bytes_per_connection() {
    use std::mem::size_of;
    use std::sync::Arc;
    // The slab entry with an 8-byte handle (Arc) or a smaller one (index): one cache line,
    // aligned to one; None is free and costs nothing (niche in the kind byte).
    assert_eq!(size_of::<Option<Conn<Arc<()>>>>(), 64);
    assert_eq!(std::mem::align_of::<Conn<Arc<()>>>(), 64);
    assert_eq!(size_of::<Option<Conn<u32>>>(), 64);
    // FULLNAT's sequence state, in its own array: 16 bytes, aligned to 16.
    assert_eq!(size_of::<crate::conn::TcpSeq>(), 16);
    assert_eq!(std::mem::align_of::<crate::conn::TcpSeq>(), 16);
    // Per entry: 8 bytes of wheel links.
    assert_eq!(size_of::<crate::conn::wheel::Link>(), 8);

    // The default size, 2^20 entries: 2^18 index buckets of 64 bytes (two keys per entry
    // at most 80 % full), 16 bytes per entry.
    let n: u32 = 1 << 20;
    let table: Table<Arc<()>> = Table::new(Config::new(n), T0).unwrap();
    assert!(table.index_capacity() >= 2 * n as usize);
    let slab = 64 * n as usize;
    let seqs = 16 * n as usize;
    let links = 8 * (n as usize + (1 << 16) + 1);
    let index = 64 << 18;
    assert_eq!(table.allocation_size(), slab + seqs + links + index);
    let per_conn = table.allocation_size() as f64 / f64::from(n);
    assert!((104.5..104.6).contains(&per_conn), "{per_conn}");
    // What the configuration says a table of n entries takes (its size check and the
    // start-up memory check use it).
    assert_eq!(
        (size_of::<Option<Conn<Arc<()>>>>() + size_of::<crate::conn::TcpSeq>()) as u64,
        conf::CONN_ENTRY_BYTES
    );
    assert_eq!(
        table.allocation_size() as u64,
        conf::conn_table_bytes(u64::from(n))
    );

    drop(table);

    // Worst case, just above a power of two: twice the buckets, 32 bytes per entry.
    let n: u32 = (1 << 20) + 1;
    let table: Table<Arc<()>> = Table::new(Config::new(n), T0).unwrap();
    let index = 64 << 19;
    assert_eq!(
        table.allocation_size(),
        (64 + 16) * n as usize + 8 * (n as usize + (1 << 16) + 1) + index
    );
    assert_eq!(
        table.allocation_size() as u64,
        conf::conn_table_bytes(u64::from(n))
    );
    let per_conn = table.allocation_size() as f64 / f64::from(n);
    assert!((120.4..120.6).contains(&per_conn), "{per_conn}");
}

/// What the index hashes takes every byte of the key: flipping any one bit of either
/// address, either port or the protocol gives another value.
#[test]
fn packed_key_holds_every_byte() {
    let (src, dst) = (addr([10, 0, 0, 1]), addr([192, 168, 0, 100]));
    let base = Addr::pack(6, src, 40000, dst, 80);
    let mut seen = vec![base];
    for bit in 0..32 {
        let flip = |a: Addr| Addr::from_bits(a.to_bits() ^ 1 << bit);
        seen.push(Addr::pack(6, flip(src), 40000, dst, 80));
        seen.push(Addr::pack(6, src, 40000, flip(dst), 80));
    }
    for bit in 0..16 {
        seen.push(Addr::pack(6, src, 40000 ^ 1 << bit, dst, 80));
        seen.push(Addr::pack(6, src, 40000, dst, 80 ^ 1 << bit));
    }
    for bit in 0..8 {
        seen.push(Addr::pack(6 ^ 1 << bit, src, 40000, dst, 80));
    }
    let n = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n);
    assert_eq!(n, 1 + 2 * 32 + 2 * 16 + 8);
}
