//! Neighbours: the MAC address behind each next hop, and the packets waiting for one.
//!
//! Each worker keeps its own [`Table`]: seeded with the configured static entries, updated
//! from every ARP packet it sees (requests to us and replies, as Linux does) and from the
//! entries its peers learned (the worker loop forwards what it learns to the others). Entries
//! are replaced when an ARP packet announces a new MAC and are not aged out; a real server
//! that changes its MAC announces it with gratuitous ARP.
//!
//! A packet whose next hop has no entry yet waits in [`Pending`], a fixed-capacity queue; the
//! first packet for a next hop triggers an ARP request, as do later ones once
//! [`REQUEST_INTERVAL_MS`] has passed. Packets wait at most [`MAX_WAIT_MS`]; a full queue or
//! an expired wait drops them as `no_neighbor`.

use crate::wire::ether::EthernetAddress;
use hashbrown::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;

/// Minimum time between two ARP requests for the same next hop.
pub const REQUEST_INTERVAL_MS: u64 = 1000;
/// How long a packet may wait for its next hop to resolve.
pub const MAX_WAIT_MS: u64 = 3000;

/// (port, address) → MAC: `Table` for IPv4 (ARP), `Table<Ipv6Addr>` for IPv6 (neighbour
/// discovery).
#[derive(Debug, Clone, Default)]
pub struct Table<A = Ipv4Addr> {
    entries: HashMap<(usize, A), EthernetAddress, ahash::RandomState>,
    /// Changes so far (what the egress cache's answers are stamped with).
    generation: u64,
}

impl<A: Copy + Eq + Hash> Table<A> {
    /// An empty table with room for `capacity` entries before it reallocates.
    pub fn with_capacity(capacity: usize) -> Table<A> {
        Table {
            entries: HashMap::with_capacity_and_hasher(capacity, ahash::RandomState::new()),
            generation: 0,
        }
    }

    /// The MAC of `ip` on `port`.
    #[inline]
    pub fn lookup(&self, port: usize, ip: A) -> Option<EthernetAddress> {
        self.entries.get(&(port, ip)).copied()
    }

    /// Records `ip` at `mac` on `port`; true if that is new or changed.
    pub fn learn(&mut self, port: usize, ip: A, mac: EthernetAddress) -> bool {
        let changed = self.entries.insert((port, ip), mac) != Some(mac);
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// A number that changes whenever an entry is added or changed (and only then).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

struct Waiting<T, A> {
    port: usize,
    next_hop: A,
    since_ms: u64,
    frame: T,
}

/// Packets waiting for a next hop to resolve, at most `capacity` of them.
pub struct Pending<T, A = Ipv4Addr> {
    waiting: Vec<Waiting<T, A>>,
    capacity: usize,
    /// Last request (ARP, neighbour solicitation) per (port, next hop) still waited for.
    requested: HashMap<(usize, A), u64, ahash::RandomState>,
}

/// What [`Pending::park`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Parked<T> {
    /// Queued; send an ARP request for the next hop now.
    Request,
    /// Queued; a request went out recently.
    Queued,
    /// The queue is full: the frame is given back to be dropped.
    Full(T),
}

impl<T, A: Copy + Eq + Hash> Pending<T, A> {
    /// A queue for at most `capacity` packets, allocated once.
    pub fn with_capacity(capacity: usize) -> Pending<T, A> {
        Pending {
            waiting: Vec::with_capacity(capacity),
            capacity,
            requested: HashMap::with_capacity_and_hasher(capacity, ahash::RandomState::new()),
        }
    }

    /// Number of waiting packets.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Queues `frame` until `next_hop` on `port` resolves.
    pub fn park(&mut self, port: usize, next_hop: A, frame: T, now_ms: u64) -> Parked<T> {
        if self.waiting.len() >= self.capacity {
            return Parked::Full(frame);
        }
        self.waiting.push(Waiting {
            port,
            next_hop,
            since_ms: now_ms,
            frame,
        });
        let last = self.requested.get(&(port, next_hop)).copied();
        if last.is_some_and(|t| now_ms.saturating_sub(t) < REQUEST_INTERVAL_MS) {
            Parked::Queued
        } else {
            self.requested.insert((port, next_hop), now_ms);
            Parked::Request
        }
    }

    /// Hands every frame waiting for `next_hop` on `port` to `send`, in arrival order.
    pub fn release(&mut self, port: usize, next_hop: A, mut send: impl FnMut(T)) {
        if self.requested.remove(&(port, next_hop)).is_none() {
            return;
        }
        self.drain_where(
            |w| w.port == port && w.next_hop == next_hop,
            |w| send(w.frame),
        );
    }

    /// Hands every frame that waited longer than [`MAX_WAIT_MS`] to `drop`.
    pub fn expire(&mut self, now_ms: u64, mut drop: impl FnMut(T)) {
        if self.waiting.is_empty() {
            return;
        }
        self.drain_where(
            |w| now_ms.saturating_sub(w.since_ms) > MAX_WAIT_MS,
            |w| drop(w.frame),
        );
        let waiting = &self.waiting;
        self.requested.retain(|(port, hop), _| {
            waiting
                .iter()
                .any(|w| w.port == *port && w.next_hop == *hop)
        });
    }

    /// Removes the entries matching `pred`, oldest first, keeping the others in order.
    fn drain_where(
        &mut self,
        pred: impl Fn(&Waiting<T, A>) -> bool,
        mut take: impl FnMut(Waiting<T, A>),
    ) {
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting.get(i).is_some_and(&pred) {
                take(self.waiting.remove(i));
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);

    #[test]
    fn learn_reports_changes_only() {
        let mut t = Table::with_capacity(4);
        assert!(t.learn(0, HOP, EthernetAddress([2, 0, 0, 0, 0, 1])));
        assert!(!t.learn(0, HOP, EthernetAddress([2, 0, 0, 0, 0, 1])));
        assert!(t.learn(0, HOP, EthernetAddress([2, 0, 0, 0, 0, 2])));
        assert_eq!(t.lookup(0, HOP), Some(EthernetAddress([2, 0, 0, 0, 0, 2])));
        assert_eq!(t.lookup(1, HOP), None, "entries are per port");
        assert_eq!(t.len(), 1);
        let g = t.generation();
        assert!(!t.learn(0, HOP, EthernetAddress([2, 0, 0, 0, 0, 2])));
        assert_eq!(t.generation(), g, "no change, same generation");
        assert!(t.learn(0, HOP, EthernetAddress([2, 0, 0, 0, 0, 3])));
        assert_ne!(t.generation(), g);
    }

    #[test]
    fn first_packet_requests_later_ones_wait_and_resolution_releases_in_order() {
        let mut p = Pending::with_capacity(8);
        assert_eq!(p.park(0, HOP, 1, 0), Parked::Request);
        assert_eq!(p.park(0, HOP, 2, 10), Parked::Queued);
        assert_eq!(p.park(0, OTHER, 3, 10), Parked::Request);
        assert_eq!(
            p.park(0, HOP, 4, REQUEST_INTERVAL_MS + 1),
            Parked::Request,
            "re-request after the interval"
        );
        let mut sent = vec![];
        p.release(0, HOP, |f| sent.push(f));
        assert_eq!(sent, [1, 2, 4]);
        assert_eq!(p.len(), 1);
        p.release(1, OTHER, |f| sent.push(f));
        assert_eq!(p.len(), 1, "other port: nothing released");
    }

    #[test]
    fn full_queue_gives_the_frame_back_and_old_packets_expire() {
        let mut p = Pending::with_capacity(2);
        assert_eq!(p.park(0, HOP, 1, 0), Parked::Request);
        assert_eq!(p.park(0, OTHER, 2, 100), Parked::Request);
        assert_eq!(p.park(0, HOP, 3, 100), Parked::Full(3));
        let mut dropped = vec![];
        p.expire(MAX_WAIT_MS, |f| dropped.push(f));
        assert!(dropped.is_empty(), "exactly MAX_WAIT_MS is still in time");
        p.expire(MAX_WAIT_MS + 1, |f| dropped.push(f));
        assert_eq!(dropped, [1]);
        assert_eq!(
            p.park(0, HOP, 4, MAX_WAIT_MS + 1),
            Parked::Request,
            "expired hop asks again"
        );
    }
}
