//! The table's tests for IPv6 (`cases`, the IPv4 addresses `a.b.c.d` becoming
//! `2001:db8::a.b.c.d`), and IPv6's own: entry size, keys, prefix templates, NAT64.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use cases::T0;
use conf::Proto;

use crate::conn::{
    ipv6_prefix_mask, Config, Conn, Dir, Family, FlowKey, Fwd, Hit, NewConn, NewTemplate, State,
    Table,
};
use crate::wire::tcp::Flags;

// The same file is `v4::cases` and `v6::cases`, on purpose: one body of tests, compiled
// for each family's addresses.
#[allow(clippy::duplicate_mod)]
#[path = "cases.rs"]
mod cases;

type Addr = Ipv6Addr;
type Sock = SocketAddrV6;

const VIP: Sock = SocketAddrV6::new(
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xc0a8, 0x64),
    80,
    0,
    0,
);
/// The netmask that keeps a whole address.
const HOST: Addr = Ipv6Addr::from_bits(u128::MAX);

/// `2001:db8::a.b.c.d`.
fn addr(a: [u8; 4]) -> Addr {
    let [a, b, c, d] = a.map(u16::from);
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, a << 8 | b, c << 8 | d)
}

fn sa(a: [u8; 4], port: u16) -> Sock {
    SocketAddrV6::new(addr(a), port, 0, 0)
}

/// The netmask that masks `addr`'s IPv4 part as the IPv4 prefix length `prefix_len` would.
fn netmask(prefix_len: u32) -> Addr {
    ipv6_prefix_mask(96 + prefix_len as u8)
}

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An IPv4 address and port as an IPv6 table holds it (NAT64).
fn mapped(s: SocketAddrV4) -> Sock {
    SocketAddrV6::new(s.ip().to_ipv6_mapped(), s.port(), 0, 0)
}

#[test]
fn entry_and_index_sizes_and_bytes_per_connection() {
    use std::mem::{align_of, size_of};
    use std::sync::Arc;
    // Two cache lines, aligned to one; None is free and costs nothing.
    assert_eq!(size_of::<Option<Conn<Arc<()>, Addr>>>(), 128);
    assert_eq!(align_of::<Conn<Arc<()>, Addr>>(), 64);
    assert_eq!(size_of::<Option<Conn<u32, Addr>>>(), 128);

    // The default size, 2^20 entries: the same sequence states, links and index as IPv4
    // (the index holds hashes and slab indices only), twice the slab.
    let n: u32 = 1 << 20;
    let table: Table<Arc<()>, Addr> = Table::new(Config::new(n), T0).unwrap();
    let slab = 128 * n as usize;
    let seqs = 16 * n as usize;
    let links = 8 * (n as usize + (1 << 16) + 1);
    let index = 64 << 18;
    assert_eq!(table.allocation_size(), slab + seqs + links + index);
    let per_conn = table.allocation_size() as f64 / f64::from(n);
    assert!((168.5..168.6).contains(&per_conn), "{per_conn}");
    // What the configuration says (`[dataplane] conn_table_size6`).
    assert_eq!(
        (size_of::<Option<Conn<Arc<()>, Addr>>>() + size_of::<crate::conn::TcpSeq>()) as u64,
        conf::CONN_ENTRY6_BYTES
    );
    assert_eq!(
        table.allocation_size() as u64,
        conf::conn_table6_bytes(u64::from(n))
    );
    drop(table);

    // Worst case, just above a power of two: twice the buckets, 32 bytes per entry.
    let n: u32 = (1 << 20) + 1;
    let table: Table<Arc<()>, Addr> = Table::new(Config::new(n), T0).unwrap();
    let per_conn = table.allocation_size() as f64 / f64::from(n);
    assert!((184.4..184.6).contains(&per_conn), "{per_conn}");
}

/// What the index hashes takes every byte of the key: flipping any one bit of either
/// address, either port or the protocol gives another value.
#[test]
fn packed_key_holds_every_byte() {
    let (src, dst) = (ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8::100"));
    let base = Addr::pack(6, src, 40000, dst, 80);
    let mut seen = vec![base];
    for bit in 0..128 {
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
    assert_eq!(n, 1 + 2 * 128 + 2 * 16 + 8);
}

/// Connections whose keys differ in one byte of one address (the first, the last, any):
/// each is found by its own keys in both directions, and a key differing from all of them
/// in one byte by none.
#[test]
fn keys_differing_in_one_address_byte_find_their_own_connection() {
    let mut table: Table<usize, Addr> = Table::new(Config::new(128), T0).unwrap();
    let (cip, vip) = (ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8::100"));
    let (rip, lip) = (ip("2001:db8:f::1"), ip("2001:db8:e::1"));
    let flip = |a: Addr, byte: usize, bits: u8| {
        let mut o = a.octets();
        o[byte] ^= bits;
        Addr::from(o)
    };
    let sock = |a: Addr, port: u16| SocketAddrV6::new(a, port, 0, 0);
    // DR connections (in key only) from clients and to VIPs one byte apart; FULLNAT ones
    // (in and out key) to real servers and from local addresses one byte apart.
    let mut made = Vec::new();
    let mut add = |table: &mut Table<usize, Addr>, c: Addr, v: Addr, r: Addr, l: Addr| {
        let fullnat = r != rip || l != lip;
        let new = NewConn {
            proto: Proto::Tcp,
            client: sock(c, 40000),
            virt: sock(v, 80),
            real: sock(r, 8080),
            fwd: if fullnat { Fwd::FullNat } else { Fwd::Dr },
            local: fullnat.then_some(sock(l, 5000)),
            dest: made.len(),
        };
        let id = table.insert(new, T0).unwrap();
        made.push(id);
        id
    };
    add(&mut table, cip, vip, rip, lip);
    for byte in 0..16 {
        add(&mut table, flip(cip, byte, 0x80), vip, rip, lip);
        add(&mut table, cip, flip(vip, byte, 0x01), rip, lip);
        // Each FULLNAT connection has a client of its own, so that the in keys differ.
        let c = flip(cip, byte, 0x10);
        add(&mut table, c, vip, flip(rip, byte, 0x01), lip);
        add(
            &mut table,
            flip(c, 15 - byte, 0x02),
            vip,
            rip,
            flip(lip, byte, 0x80),
        );
    }
    assert_eq!(table.len(), 1 + 4 * 16);
    table.check();
    for &id in &made {
        let c = table.get(id).unwrap();
        let (in_key, out_key) = (c.in_key(), c.out_key());
        assert_eq!(in_key, FlowKey::new(Proto::Tcp, c.client(), c.virt()));
        assert_eq!(table.lookup(&in_key), Some(Hit { id, dir: Dir::In }));
        let hint = table.candidate(table.probe(&in_key));
        assert_eq!(
            table.lookup_hinted(&in_key, hint),
            Some(Hit { id, dir: Dir::In })
        );
        if let Some(out_key) = out_key {
            let local = c.local().unwrap();
            assert_eq!(out_key, FlowKey::new(Proto::Tcp, c.real(), local));
            assert_eq!(table.lookup(&out_key), Some(Hit { id, dir: Dir::Out }));
        }
    }
    // One byte away from every connection: the client's first byte flipped another way.
    let stranger = FlowKey::new(Proto::Tcp, sock(flip(cip, 0, 0x40), 40000), sock(vip, 80));
    assert_eq!(table.lookup(&stranger), None);
    let stranger = FlowKey::new(Proto::Tcp, sock(cip, 40000), sock(flip(vip, 15, 0x40), 80));
    assert_eq!(table.lookup(&stranger), None);
}

#[test]
fn prefix_masks() {
    assert_eq!(ipv6_prefix_mask(0), Ipv6Addr::UNSPECIFIED);
    assert_eq!(ipv6_prefix_mask(1), ip("8000::"));
    assert_eq!(ipv6_prefix_mask(64), ip("ffff:ffff:ffff:ffff::"));
    assert_eq!(
        ipv6_prefix_mask(121),
        ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80")
    );
    assert_eq!(ipv6_prefix_mask(128), HOST);
    assert_eq!(ipv6_prefix_mask(255), HOST);
}

/// An IPv6 service's persistence netmask is a prefix length (`-M 64`): the template key
/// keeps that many bits of the client, and clients within the prefix share the template.
#[test]
fn template_prefix_masks_the_client_to_its_prefix_length() {
    let client = ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
    let virt = SocketAddrV6::new(ip("2001:db8::100"), 443, 0, 0);
    let key = |client, len| FlowKey::template_prefix(Proto::Tcp, client, len, virt);
    assert_eq!(
        key(client, 64),
        FlowKey {
            proto: Proto::Tcp,
            src: ip("2001:db8:aaaa:bbbb::"),
            sport: 0,
            dst: *virt.ip(),
            dport: 443
        }
    );
    assert_eq!(key(client, 128).src, client);
    assert_eq!(key(client, 200).src, client);
    assert_eq!(
        key(client, 121).src,
        ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ff80")
    );
    assert_eq!(key(client, 0).src, Ipv6Addr::UNSPECIFIED);
    assert_eq!(
        key(client, 64),
        FlowKey::template(Proto::Tcp, client, ipv6_prefix_mask(64), virt)
    );

    let mut table: Table<usize, Addr> = Table::new(Config::new(8), T0).unwrap();
    let real = SocketAddrV6::new(ip("2001:db8:f::1"), 443, 0, 0);
    for len in [0, 64, 128] {
        let t = table
            .insert_template(
                NewTemplate {
                    key: key(client, len),
                    real,
                    timeout: 300,
                    dest: usize::from(len),
                },
                T0,
            )
            .unwrap();
        assert_eq!(table.get(t).unwrap().real(), real);
    }
    let owner = |table: &Table<usize, Addr>, c: &str, len| {
        let t = table.lookup_template(&key(ip(c), len))?;
        Some(*table.get(t).unwrap().dest())
    };
    // /64: the same first 64 bits share it; bit 63 differing does not.
    assert_eq!(owner(&table, "2001:db8:aaaa:bbbb::1", 64), Some(64));
    assert_eq!(
        owner(&table, "2001:db8:aaaa:bbba:cccc:dddd:eeee:ffff", 64),
        None
    );
    // /128: the very address only.
    assert_eq!(
        owner(&table, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 128),
        Some(128)
    );
    assert_eq!(
        owner(&table, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:fffe", 128),
        None
    );
    // /0: every client.
    assert_eq!(owner(&table, "3fff::1", 0), Some(0));
    assert_eq!(owner(&table, "::1", 0), Some(0));
    table.check();
}

/// NAT64 FULLNAT: an IPv6 client's connection to an IPv4 real server through an IPv4 local
/// address lives in the IPv6 table with the IPv4 addresses mapped; the real server's
/// replies, IPv4 packets, find it through `lookup_mapped` (or the staged lookup of the
/// mapped key).
#[test]
fn nat64_connection_is_found_by_its_ipv4_replies() {
    let mut table: Table<usize, Addr> = Table::new(Config::new(8), T0).unwrap();
    let rip4 = SocketAddrV4::new(Ipv4Addr::new(172, 16, 0, 2), 8080);
    let lip4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 1, 1), 40001);
    let client = sa([10, 0, 0, 1], 40000);
    let id = table
        .insert(
            NewConn {
                proto: Proto::Tcp,
                client,
                virt: VIP,
                real: mapped(rip4),
                fwd: Fwd::FullNat,
                local: Some(mapped(lip4)),
                dest: 3,
            },
            T0,
        )
        .unwrap();
    let c = table.get(id).unwrap();
    assert_eq!(c.real(), mapped(rip4));
    assert_eq!(c.real().ip().to_ipv4_mapped(), Some(*rip4.ip()));
    assert_eq!(c.local(), Some(mapped(lip4)));

    let reply = FlowKey::new(Proto::Tcp, rip4, lip4);
    let reply6 = FlowKey {
        proto: Proto::Tcp,
        src: ip("::ffff:172.16.0.2"),
        sport: 8080,
        dst: ip("::ffff:10.1.1.1"),
        dport: 40001,
    };
    assert_eq!(reply.to_ipv6_mapped(), reply6);
    assert_eq!(c.out_key(), Some(reply6));
    let out = Some(Hit { id, dir: Dir::Out });
    assert_eq!(table.lookup_mapped(&reply), out);
    assert_eq!(table.lookup(&reply6), out);
    let hint = table.candidate(table.probe(&reply6));
    assert_eq!(table.lookup_hinted(&reply6, hint), out);
    // The client's packets: its IPv6 key.
    assert_eq!(
        table.lookup(&FlowKey::new(Proto::Tcp, client, VIP)),
        Some(Hit { id, dir: Dir::In })
    );
    // Other IPv4 packets miss: another local port, another real server port, the reverse
    // direction, the addresses of the reply in an IPv6 key unmapped (IPv4-compatible).
    assert_eq!(
        table.lookup_mapped(&FlowKey {
            dport: 40002,
            ..reply
        }),
        None
    );
    assert_eq!(
        table.lookup_mapped(&FlowKey {
            sport: 8081,
            ..reply
        }),
        None
    );
    assert_eq!(table.lookup_mapped(&reply.reversed()), None);
    let compat = FlowKey {
        src: ip("::172.16.0.2"),
        dst: ip("::10.1.1.1"),
        ..reply6
    };
    assert_eq!(table.lookup(&compat), None);

    // The state machine sees the reply as OUTPUT, as for any FULLNAT connection.
    let t = table.packet(id, Dir::In, Flags::SYN, T0).unwrap();
    assert_eq!(t.to, State::SynRecv);
    let t = table
        .packet(id, Dir::Out, Flags::SYN | Flags::ACK, T0)
        .unwrap();
    assert_eq!(t.to, State::SynRecv);
    let t = table.packet(id, Dir::In, Flags::ACK, T0).unwrap();
    assert_eq!(t.to, State::Established);
    assert!(!table.get(id).unwrap().no_output());

    // It leaves with its local address mapped, for the caller's IPv4 pool.
    let gone = table.remove(id).unwrap();
    assert_eq!(gone.local, Some(mapped(lip4)));
    assert_eq!(table.lookup_mapped(&reply), None);
    table.check();
}
