//! The IPv4 route table: longest-prefix match from destination to (egress port, next hop).
//!
//! Built once per snapshot from the ports' own subnets (on-link routes, next hop = the
//! destination itself) and the configured `[[route]]`s. Lookup walks the prefix lengths that
//! exist, longest first, with one hash probe each: a balancer has a handful of distinct prefix
//! lengths, so this costs a few probes and no tree walk.

use hashbrown::HashMap;
use std::net::Ipv4Addr;

/// Where a packet to some destination leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Egress port (index into the snapshot's ports).
    pub port: usize,
    /// The gateway, or `None` when the destination is on the port's link.
    pub via: Option<Ipv4Addr>,
}

impl Hop {
    /// The address whose MAC the frame is sent to.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Ipv4Addr {
        self.via.unwrap_or(dst)
    }
}

/// Longest-prefix-match table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// (prefix length, network → hop), longest prefix first.
    levels: Vec<(u8, HashMap<u32, Hop>)>,
}

fn mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

impl Table {
    /// Adds a route; a later route for the same prefix replaces an earlier one.
    pub fn insert(&mut self, network: Ipv4Addr, prefix_len: u8, hop: Hop) {
        let prefix_len = prefix_len.min(32);
        let key = u32::from(network) & mask(prefix_len);
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
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Hop> {
        let dst = u32::from(dst);
        self.levels
            .iter()
            .find_map(|(len, routes)| routes.get(&(dst & mask(*len))).copied())
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
