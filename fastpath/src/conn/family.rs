//! The address families a connection table holds: IPv4 ([`Ipv4Addr`], the default of every
//! type parameter) and IPv6 ([`Ipv6Addr`]). The table, its entries and keys are generic over
//! the address type; each worker has one table per family, so an IPv4 table is compiled for
//! IPv4 alone (no branch on the family anywhere on its path).

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use conf::Proto;

use super::table::FlowKey;

mod sealed {
    /// Only the two address types are families: the entry layout is checked for them.
    pub trait Sealed {}
    impl Sealed for std::net::Ipv4Addr {}
    impl Sealed for std::net::Ipv6Addr {}
}

/// An address family of the connection table: its address type, with the matching
/// address-and-port type and what the index hashes. Sealed: implemented by [`Ipv4Addr`]
/// and [`Ipv6Addr`] only.
pub trait Family: sealed::Sealed + Copy + Eq + Hash + Debug + 'static {
    /// Address and port: [`SocketAddrV4`] or [`SocketAddrV6`] (an IPv6 one as the table
    /// hands it back has flow info and scope id 0: the table stores address and port only).
    type Sock: Copy + Eq + Hash + Debug;
    /// A key's bytes as the index hashes them.
    type Packed: Hash;
    /// The unspecified address (`0.0.0.0`, `::`): a connection's local address when it
    /// has none.
    const UNSPECIFIED: Self;
    /// The address and port `ip`:`port`.
    fn sock(ip: Self, port: u16) -> Self::Sock;
    /// The address of `sock`.
    fn ip(sock: &Self::Sock) -> Self;
    /// The port of `sock`.
    fn port(sock: &Self::Sock) -> u16;
    /// The key of a packet from `src` to `dst` ([`FlowKey::new`]).
    fn key(proto: Proto, src: Self::Sock, dst: Self::Sock) -> FlowKey<Self>;
    /// `self & mask`, bit by bit (a persistence template's client network).
    fn mask(self, mask: Self) -> Self;
    /// The key (protocol number, source, destination) in a fixed layout for the hasher.
    fn pack(proto: u8, src: Self, sport: u16, dst: Self, dport: u16) -> Self::Packed;
}

impl Family for Ipv4Addr {
    type Sock = SocketAddrV4;
    type Packed = u128;
    const UNSPECIFIED: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn sock(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(ip, port)
    }

    fn ip(sock: &SocketAddrV4) -> Ipv4Addr {
        *sock.ip()
    }

    fn port(sock: &SocketAddrV4) -> u16 {
        sock.port()
    }

    // Built here, from the concrete types, rather than in the generic `FlowKey::new`
    // through `ip` and `port`: the pipeline's established path builds a key per packet, and
    // through the generic function it took 11 more instructions per packet (callgrind,
    // `pipeline_ipp`).
    fn key(proto: Proto, src: SocketAddrV4, dst: SocketAddrV4) -> FlowKey<Ipv4Addr> {
        FlowKey {
            proto,
            src: *src.ip(),
            sport: src.port(),
            dst: *dst.ip(),
            dport: dst.port(),
        }
    }

    fn mask(self, mask: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.to_bits() & mask.to_bits())
    }

    /// The 13 bytes of the key as one integer. The addresses go in in memory order (no
    /// byte swaps): any fixed layout hashes as well.
    fn pack(proto: u8, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> u128 {
        ((u32::from_ne_bytes(src.octets()) as u128) << 64)
            | ((u32::from_ne_bytes(dst.octets()) as u128) << 32)
            | ((sport as u128) << 16)
            | (dport as u128)
            | ((proto as u128) << 96)
    }
}

impl Family for Ipv6Addr {
    type Sock = SocketAddrV6;
    /// Both addresses whole, then protocol and ports (37 bytes).
    type Packed = (u128, u128, u64);
    const UNSPECIFIED: Ipv6Addr = Ipv6Addr::UNSPECIFIED;

    fn sock(ip: Ipv6Addr, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(ip, port, 0, 0)
    }

    fn ip(sock: &SocketAddrV6) -> Ipv6Addr {
        *sock.ip()
    }

    fn port(sock: &SocketAddrV6) -> u16 {
        sock.port()
    }

    fn key(proto: Proto, src: SocketAddrV6, dst: SocketAddrV6) -> FlowKey<Ipv6Addr> {
        FlowKey {
            proto,
            src: *src.ip(),
            sport: src.port(),
            dst: *dst.ip(),
            dport: dst.port(),
        }
    }

    fn mask(self, mask: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.to_bits() & mask.to_bits())
    }

    fn pack(proto: u8, src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> Self::Packed {
        (
            u128::from_ne_bytes(src.octets()),
            u128::from_ne_bytes(dst.octets()),
            (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport),
        )
    }
}

/// The IPv6 netmask of a prefix length (`ipvsadm -M 64` on an IPv6 service is a prefix
/// length, the kernel's `ipv6_addr_prefix`); lengths above 128 mean 128.
pub const fn ipv6_prefix_mask(prefix_len: u8) -> Ipv6Addr {
    let len = if prefix_len > 128 { 128 } else { prefix_len };
    // `checked_shl` is None for a shift of 128 (prefix length 0): no bit set.
    Ipv6Addr::from_bits(match u128::MAX.checked_shl(128 - len as u32) {
        Some(m) => m,
        None => 0,
    })
}
