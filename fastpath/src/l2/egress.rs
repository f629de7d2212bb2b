//! The worker's cache of where packets to real servers leave: egress port, its MTU, the
//! port's MAC and the next hop's MAC.
//!
//! The route lookup and the neighbour lookup give the same answer for every packet to the same
//! real server until the configuration or the neighbour table changes, so each worker keeps
//! the answer, as IPVS keeps a route per real server and CPU (`dest_dst`). Every answer is
//! stamped with what it was computed from: the [`Snapshot`](crate::snapshot::Snapshot)'s id
//! (routes, port MACs; each built snapshot has its own) and the neighbour table's
//! [generation](super::neighbor::Table::generation) (bumped by every change of an entry). A
//! lookup hits only under the same stamp, so the packet after a route change or a neighbour's
//! new MAC is routed afresh; nothing has to remember to invalidate the cache.
//!
//! Only resolved answers are kept (a next hop still waiting for ARP is looked up again), and
//! only for real servers: replies to clients (NAT) go through the full lookups, so that
//! thousands of client addresses do not push the real servers out. The cache is direct
//! mapped ([`SLOTS`] entries, indexed by a hash of the destination): a real server whose slot
//! another one took pays the full lookups until it takes the slot back.

use crate::xmit::Link;
use std::net::Ipv4Addr;

/// Entries of a cache.
pub const SLOTS: usize = 64;

/// What a cached answer was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// [`Snapshot::id`](crate::snapshot::Snapshot::id).
    pub snapshot: u64,
    /// [`neighbor::Table::generation`](super::neighbor::Table::generation).
    pub neighbors: u64,
}

/// Where packets to one destination leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    /// Egress port.
    pub port: usize,
    /// Whether the destination is on the port's link (no gateway): what DR requires.
    pub on_link: bool,
    /// The port's MTU: a longer packet is fragmented (one compare per packet).
    pub mtu: u16,
    /// The Ethernet addresses to write.
    pub link: Link,
    /// The address rvs speaks from on the egress link towards the next hop
    /// ([`PortView::source_for`](crate::snapshot::PortView::source_for)): TUN's outer source.
    pub src: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    dst: Ipv4Addr,
    stamp: Stamp,
    egress: Egress,
}

/// One worker's cache; see the module documentation.
#[derive(Debug)]
pub struct Cache {
    slots: Box<[Option<Slot>; SLOTS]>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            slots: Box::new([None; SLOTS]),
        }
    }
}

/// The slot of `dst`.
fn index(dst: Ipv4Addr) -> usize {
    // The top bits of a multiplicative hash: SLOTS is a power of two below 2^32.
    (dst.to_bits().wrapping_mul(0x9E37_79B9) >> (32 - SLOTS.trailing_zeros())) as usize
}

impl Cache {
    /// The answer for `dst` computed under `stamp`, if it is still here.
    #[inline]
    pub fn get(&self, dst: Ipv4Addr, stamp: Stamp) -> Option<Egress> {
        match self.slots.get(index(dst)) {
            Some(Some(slot)) if slot.dst == dst && slot.stamp == stamp => Some(slot.egress),
            _ => None,
        }
    }

    /// Keeps `egress` as the answer for `dst` under `stamp`, in place of whatever shared its
    /// slot.
    pub fn put(&mut self, dst: Ipv4Addr, stamp: Stamp, egress: Egress) {
        if let Some(slot) = self.slots.get_mut(index(dst)) {
            *slot = Some(Slot { dst, stamp, egress });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EthernetAddress;

    fn egress(port: usize, mac: u8) -> Egress {
        Egress {
            port,
            on_link: true,
            mtu: 1500,
            link: Link {
                port_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
                next_hop_mac: EthernetAddress([2, 0, 0, 0, 0, mac]),
            },
            src: Some(Ipv4Addr::new(192, 168, 10, 1)),
        }
    }

    #[test]
    fn hits_only_under_the_same_stamp() {
        let mut cache = Cache::default();
        let dst = Ipv4Addr::new(192, 168, 10, 11);
        let stamp = Stamp {
            snapshot: 7,
            neighbors: 3,
        };
        assert_eq!(cache.get(dst, stamp), None);
        cache.put(dst, stamp, egress(1, 0x0b));
        assert_eq!(cache.get(dst, stamp), Some(egress(1, 0x0b)));
        assert_eq!(
            cache.get(
                dst,
                Stamp {
                    neighbors: 4,
                    ..stamp
                }
            ),
            None,
            "neighbour changed"
        );
        assert_eq!(
            cache.get(
                dst,
                Stamp {
                    snapshot: 8,
                    ..stamp
                }
            ),
            None,
            "new snapshot"
        );
        assert_eq!(cache.get(Ipv4Addr::new(192, 168, 10, 12), stamp), None);
        assert_eq!(cache.get(Ipv4Addr::UNSPECIFIED, Stamp::default()), None);
    }

    #[test]
    fn a_colliding_destination_takes_the_slot() {
        let mut cache = Cache::default();
        let stamp = Stamp::default();
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = (0..u32::MAX)
            .map(Ipv4Addr::from)
            .find(|&b| b != a && index(b) == index(a))
            .expect("a collision");
        cache.put(a, stamp, egress(0, 1));
        cache.put(b, stamp, egress(0, 2));
        assert_eq!(cache.get(a, stamp), None);
        assert_eq!(cache.get(b, stamp), Some(egress(0, 2)));
    }
}
