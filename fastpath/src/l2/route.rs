//! The route tables, one per address family: longest-prefix match from destination to
//! (egress port, next hop).
//!
//! Built once per snapshot from the ports' own subnets (on-link routes, next hop = the
//! destination itself) and the configured `[[route]]`s. Lookup walks the prefix lengths that
//! exist, longest first, with one hash probe each: a balancer has a handful of distinct prefix
//! lengths, so this costs a few probes and no tree walk.

use hashbrown::HashMap;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An address a route table is keyed by: IPv4 or IPv6, as bits that a prefix masks.
pub trait Addr: Copy + Eq + std::fmt::Debug {
    /// The address as an integer, first bit of the address as the most significant.
    type Bits: Copy + Eq + Hash + std::fmt::Debug;
    /// The longest prefix (32, 128).
    const MAX_LEN: u8;
    /// The address with all but its first `prefix_len` bits cleared.
    fn masked(self, prefix_len: u8) -> Self::Bits;
}

impl Addr for Ipv4Addr {
    type Bits = u32;
    const MAX_LEN: u8 = 32;
    fn masked(self, prefix_len: u8) -> u32 {
        self.to_bits()
            & u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0)
    }
}

impl Addr for Ipv6Addr {
    type Bits = u128;
    const MAX_LEN: u8 = 128;
    fn masked(self, prefix_len: u8) -> u128 {
        self.to_bits()
            & u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0)
    }
}

/// Where a packet to some destination leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop<A = Ipv4Addr> {
    /// Egress port (index into the snapshot's ports).
    pub port: usize,
    /// The gateway, or `None` when the destination is on the port's link.
    pub via: Option<A>,
}

impl<A: Copy> Hop<A> {
    /// The address whose MAC the frame is sent to.
    pub fn next_hop(&self, dst: A) -> A {
        self.via.unwrap_or(dst)
    }
}

/// Longest-prefix-match table of one family (`Table` for IPv4, `Table<Ipv6Addr>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<A: Addr = Ipv4Addr> {
    /// Longest prefix first.
    levels: Vec<Level<A>>,
}

/// The routes of one prefix length: (prefix length, network → hop).
type Level<A> = (u8, HashMap<<A as Addr>::Bits, Hop<A>>);

impl<A: Addr> Default for Table<A> {
    fn default() -> Self {
        Table { levels: Vec::new() }
    }
}

impl<A: Addr> Table<A> {
    /// Adds a route; a later route for the same prefix replaces an earlier one.
    pub fn insert(&mut self, network: A, prefix_len: u8, hop: Hop<A>) {
        let prefix_len = prefix_len.min(A::MAX_LEN);
        let key = network.masked(prefix_len);
        let at = self.levels.partition_point(|(len, _)| *len > prefix_len);
        match self.levels.get_mut(at) {
            Some((len, routes)) if *len == prefix_len => {
                routes.insert(key, hop);
            }
            _ => self
                .levels
                .insert(at, (prefix_len, HashMap::from_iter([(key, hop)]))),
        }
    }

    /// The most specific route to `dst`.
    pub fn lookup(&self, dst: A) -> Option<Hop<A>> {
        self.levels
            .iter()
            .find_map(|(len, routes)| routes.get(&dst.masked(*len)).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_on_link_routes_have_no_gateway() {
        let mut t = Table::default();
        let gw = Hop {
            port: 0,
            via: Some(ip("10.0.0.254")),
        };
        let link0 = Hop { port: 0, via: None };
        let link1 = Hop { port: 1, via: None };
        let special = Hop {
            port: 1,
            via: Some(ip("192.168.10.254")),
        };
        t.insert(ip("0.0.0.0"), 0, gw);
        t.insert(ip("10.0.0.0"), 24, link0);
        t.insert(ip("192.168.10.0"), 24, link1);
        t.insert(ip("172.16.5.0"), 24, special);
        t.insert(ip("172.16.5.9"), 32, link0);
        assert_eq!(t.lookup(ip("8.8.8.8")), Some(gw));
        assert_eq!(t.lookup(ip("10.0.0.77")), Some(link0));
        assert_eq!(t.lookup(ip("192.168.10.11")), Some(link1));
        assert_eq!(t.lookup(ip("172.16.5.1")), Some(special));
        assert_eq!(t.lookup(ip("172.16.5.9")), Some(link0));
        assert_eq!(
            t.lookup(ip("8.8.8.8")).unwrap().next_hop(ip("8.8.8.8")),
            ip("10.0.0.254")
        );
        assert_eq!(link1.next_hop(ip("192.168.10.11")), ip("192.168.10.11"));
    }

    #[test]
    fn ipv6_prefixes_match_longest_first() {
        let ip6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let mut t: Table<Ipv6Addr> = Table::default();
        let gw = Hop {
            port: 0,
            via: Some(ip6("fe80::1")),
        };
        let link = Hop { port: 1, via: None };
        t.insert(ip6("::"), 0, gw);
        t.insert(ip6("2001:db8:1::"), 64, link);
        t.insert(ip6("2001:db8:1::ff"), 128, Hop { port: 2, via: None });
        assert_eq!(t.lookup(ip6("2001:db8:1::5")), Some(link));
        assert_eq!(t.lookup(ip6("2001:db8:1::ff")).unwrap().port, 2);
        assert_eq!(t.lookup(ip6("2001:db8:2::5")), Some(gw));
        assert_eq!(
            t.lookup(ip6("2001:db8:2::5"))
                .unwrap()
                .next_hop(ip6("2001:db8:2::5")),
            ip6("fe80::1")
        );
        let empty: Table<Ipv6Addr> = Table::default();
        assert_eq!(empty.lookup(ip6("2001:db8::1")), None);
    }

    #[test]
    fn no_default_route_means_no_route_and_host_bits_are_ignored() {
        let mut t = Table::default();
        t.insert(ip("10.0.0.77"), 24, Hop { port: 0, via: None });
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(Hop { port: 0, via: None }));
        assert_eq!(t.lookup(ip("10.0.1.1")), None);
        t.insert(ip("10.0.0.0"), 24, Hop { port: 2, via: None });
        assert_eq!(
            t.lookup(ip("10.0.0.1")),
            Some(Hop { port: 2, via: None }),
            "replaced"
        );
    }
}
