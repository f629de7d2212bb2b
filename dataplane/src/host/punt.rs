//! The worker's side of the exception path: [`Punter`] hands frames for the kernel to the
//! exception thread over the worker's own bounded ring, after a per-port token bucket.
//!
//! Nothing here blocks or takes a lock: a full ring or an empty bucket drops the frame and
//! counts it under its reason, so a flood at the balancer's own addresses costs a worker one
//! bucket check per packet and can never stall it. ARP and link-local multicast
//! ([`PuntReason::is_control`]) have a bucket of their own, so that flood cannot starve them.

use super::bucket::TokenBucket;
use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::Mempool;
use crossbeam::queue::ArrayQueue;
use fastpath::frame::Frame;
use fastpath::verdict::PuntReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Frames one worker may have waiting for the exception thread (a few milliseconds of
/// `punt_pps` at any sensible rate; the thread drains every ring each millisecond).
pub const RING_SIZE: usize = 1024;

/// Per-reason counts of one port.
pub type ReasonCounts = [u64; PuntReason::COUNT];

/// What one worker punted on each port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PuntCounters {
    /// Frames queued for the kernel, per port, per reason.
    pub punted: Vec<ReasonCounts>,
    /// Frames for the kernel dropped (bucket empty, ring full, no twin, no mbuf for a copy),
    /// per port, per reason.
    pub punt_dropped: Vec<ReasonCounts>,
}

impl PuntCounters {
    /// Zeros for `ports` ports.
    pub fn new(ports: usize) -> PuntCounters {
        PuntCounters {
            punted: vec![[0; PuntReason::COUNT]; ports],
            punt_dropped: vec![[0; PuntReason::COUNT]; ports],
        }
    }

    /// Adds `other` (another worker's) into `self`.
    pub fn add(&mut self, other: &PuntCounters) {
        let sum = |a: &mut Vec<ReasonCounts>, b: &[ReasonCounts]| {
            if a.len() < b.len() {
                a.resize(b.len(), [0; PuntReason::COUNT]);
            }
            for (a, b) in a.iter_mut().zip(b) {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
            }
        };
        sum(&mut self.punted, &other.punted);
        sum(&mut self.punt_dropped, &other.punt_dropped);
    }

    /// Totals over ports, per reason: (punted, punt_dropped).
    pub fn by_reason(&self) -> (ReasonCounts, ReasonCounts) {
        let total = |v: &[ReasonCounts]| {
            let mut t = [0; PuntReason::COUNT];
            for port in v {
                for (t, n) in t.iter_mut().zip(port) {
                    *t += n;
                }
            }
            t
        };
        (total(&self.punted), total(&self.punt_dropped))
    }
}

/// The published copy of one worker's [`PuntCounters`], readable from any thread.
#[derive(Debug)]
pub struct SharedPuntCounters {
    punted: Vec<[AtomicU64; PuntReason::COUNT]>,
    punt_dropped: Vec<[AtomicU64; PuntReason::COUNT]>,
}

impl SharedPuntCounters {
    /// Zeros for `ports` ports.
    pub fn new(ports: usize) -> SharedPuntCounters {
        let zeros = || (0..ports).map(|_| Default::default()).collect();
        SharedPuntCounters {
            punted: zeros(),
            punt_dropped: zeros(),
        }
    }

    /// Publishes a worker's counters (only the owning worker calls this).
    pub fn publish(&self, c: &PuntCounters) {
        let store = |shared: &[[AtomicU64; PuntReason::COUNT]], v: &[ReasonCounts]| {
            for (shared, v) in shared.iter().zip(v) {
                for (a, v) in shared.iter().zip(v) {
                    a.store(*v, Relaxed);
                }
            }
        };
        store(&self.punted, &c.punted);
        store(&self.punt_dropped, &c.punt_dropped);
    }

    /// The last published values.
    pub fn read(&self) -> PuntCounters {
        let load = |shared: &[[AtomicU64; PuntReason::COUNT]]| -> Vec<ReasonCounts> {
            shared
                .iter()
                .map(|port| std::array::from_fn(|i| port[i].load(Relaxed)))
                .collect()
        };
        PuntCounters {
            punted: load(&self.punted),
            punt_dropped: load(&self.punt_dropped),
        }
    }
}

/// The rings from every worker to the exception thread, and the workers' published counters.
/// (Generic over the frame type so that the punt logic is testable without EAL.)
pub struct PuntRings<M = Mbuf> {
    rings: Vec<ArrayQueue<(usize, M)>>,
    shared: Vec<SharedPuntCounters>,
}

impl<M> PuntRings<M> {
    /// Rings and counters for `workers` workers over `ports` ports.
    pub fn new(workers: usize, ports: usize) -> PuntRings<M> {
        PuntRings {
            rings: (0..workers).map(|_| ArrayQueue::new(RING_SIZE)).collect(),
            shared: (0..workers)
                .map(|_| SharedPuntCounters::new(ports))
                .collect(),
        }
    }

    /// Worker `worker`'s ring (what the exception thread drains).
    pub fn rings(&self) -> &[ArrayQueue<(usize, M)>] {
        &self.rings
    }

    /// Every worker's published counters.
    pub fn counters(&self) -> Vec<PuntCounters> {
        self.shared.iter().map(SharedPuntCounters::read).collect()
    }
}

/// One port's buckets in one worker: `None` when the port has no twin.
#[derive(Debug, Clone)]
struct Buckets {
    control: TokenBucket,
    other: TokenBucket,
}

/// The worker-side handle of the exception path. Exactly one worker owns each `Punter`.
pub struct Punter<'a, M = Mbuf> {
    ring: &'a ArrayQueue<(usize, M)>,
    shared: &'a SharedPuntCounters,
    /// Indexed like the snapshot's ports.
    ports: Vec<Option<Buckets>>,
    counters: PuntCounters,
}

impl<'a, M> Punter<'a, M> {
    /// Worker `worker`'s punter of `workers`; `punt_pps[p]` is port `p`'s limit, `None` for a
    /// port without twin (what would be punted there is counted as dropped).
    pub fn new(
        rings: &'a PuntRings<M>,
        worker: usize,
        workers: usize,
        punt_pps: &[Option<u32>],
    ) -> Option<Punter<'a, M>> {
        let divisor = u32::try_from(workers).unwrap_or(u32::MAX).max(1);
        let ports: Vec<_> = punt_pps
            .iter()
            .map(|pps| {
                pps.map(|pps| {
                    let bucket =
                        TokenBucket::new(pps, divisor, TokenBucket::default_burst(pps, divisor));
                    Buckets {
                        control: bucket.clone(),
                        other: bucket,
                    }
                })
            })
            .collect();
        Some(Punter {
            ring: rings.rings.get(worker)?,
            shared: rings.shared.get(worker)?,
            counters: PuntCounters::new(ports.len()),
            ports,
        })
    }

    /// Whether frames received on `port` can go to a kernel twin.
    pub fn has_twin(&self, port: usize) -> bool {
        matches!(self.ports.get(port), Some(Some(_)))
    }

    /// Hands `m`, received on `port`, to the kernel; drops it (counted under `reason`) when
    /// the port has no twin, its bucket for `reason` is empty, or the ring is full.
    #[inline]
    pub fn punt(&mut self, port: usize, reason: PuntReason, m: M, now_ms: u64) {
        if !self.admit(port, reason, now_ms) {
            self.count_dropped(port, reason);
            return;
        }
        match self.ring.push((port, m)) {
            Ok(()) => self.count_punted(port, reason),
            Err(_) => self.count_dropped(port, reason),
        }
    }

    /// This worker's counters so far.
    pub fn counters(&self) -> &PuntCounters {
        &self.counters
    }

    /// Copies the counters where other threads read them (between bursts).
    pub fn publish(&self) {
        self.shared.publish(&self.counters);
    }
}

impl Punter<'_, Mbuf> {
    /// Hands a copy of `frame` to the kernel, in a fresh mbuf from `pool` (for frames rvs
    /// also answers itself, such as ARP requests for its addresses).
    pub fn punt_copy(
        &mut self,
        port: usize,
        reason: PuntReason,
        frame: &[u8],
        pool: &Mempool,
        now_ms: u64,
    ) {
        if !self.admit(port, reason, now_ms) {
            self.count_dropped(port, reason);
            return;
        }
        let copy = Mbuf::alloc(pool).and_then(|mut m| m.set_data(frame).then_some(m));
        match copy.map(|m| self.ring.push((port, m))) {
            Some(Ok(())) => self.count_punted(port, reason),
            _ => self.count_dropped(port, reason),
        }
    }
}

impl<M> Punter<'_, M> {
    /// A token from `port`'s bucket for `reason`, if the port has a twin.
    #[inline]
    fn admit(&mut self, port: usize, reason: PuntReason, now_ms: u64) -> bool {
        let Some(Some(buckets)) = self.ports.get_mut(port) else {
            return false;
        };
        if reason.is_control() {
            buckets.control.take(now_ms)
        } else {
            buckets.other.take(now_ms)
        }
    }

    fn count_punted(&mut self, port: usize, reason: PuntReason) {
        if let Some(c) = self.counters.punted.get_mut(port) {
            c[reason as usize] += 1;
        }
    }

    fn count_dropped(&mut self, port: usize, reason: PuntReason) {
        if let Some(c) = self.counters.punt_dropped.get_mut(port) {
            c[reason as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Punts `n` frames of `reason` on `port` at `now`.
    fn punt_n(p: &mut Punter<'_, u32>, port: usize, reason: PuntReason, n: u32, now: u64) {
        for i in 0..n {
            p.punt(port, reason, i, now);
        }
    }

    #[test]
    fn a_flood_is_capped_and_never_starves_arp() {
        // Port 0: 2000 pps over 2 workers (1000 each, burst 100); port 1 has no twin.
        let rings = PuntRings::<u32>::new(2, 2);
        let mut p = Punter::new(&rings, 1, 2, &[Some(2000), None]).unwrap();
        assert!(p.has_twin(0) && !p.has_twin(1) && !p.has_twin(2));
        punt_n(&mut p, 0, PuntReason::LocalUdp, 500, 0);
        // The bucket of ARP and multicast is untouched by the flood.
        punt_n(&mut p, 0, PuntReason::Arp, 3, 0);
        punt_n(&mut p, 0, PuntReason::Multicast, 2, 0);
        // 10 ms later: 10 more UDP tokens.
        punt_n(&mut p, 0, PuntReason::LocalTcp, 50, 10);
        punt_n(&mut p, 1, PuntReason::Arp, 4, 10);
        let c = p.counters();
        let at = |v: &[ReasonCounts], port: usize, r: PuntReason| v[port][r as usize];
        assert_eq!(at(&c.punted, 0, PuntReason::LocalUdp), 100);
        assert_eq!(at(&c.punt_dropped, 0, PuntReason::LocalUdp), 400);
        assert_eq!(at(&c.punted, 0, PuntReason::Arp), 3);
        assert_eq!(at(&c.punted, 0, PuntReason::Multicast), 2);
        assert_eq!(at(&c.punted, 0, PuntReason::LocalTcp), 10);
        assert_eq!(at(&c.punt_dropped, 0, PuntReason::LocalTcp), 40);
        assert_eq!(at(&c.punt_dropped, 1, PuntReason::Arp), 4);
        // Only this worker's ring got them, in order, with their port.
        assert!(rings.rings()[0].is_empty());
        let ring = &rings.rings()[1];
        assert_eq!(ring.len(), 115);
        assert_eq!(ring.pop(), Some((0, 0)));
        // Nothing is visible to other threads before publishing.
        assert_eq!(rings.counters()[1].by_reason().0, [0; PuntReason::COUNT]);
        p.publish();
        assert_eq!(rings.counters()[1], *c);
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let rings = PuntRings::<u32>::new(1, 1);
        let mut p = Punter::new(&rings, 0, 1, &[Some(u32::MAX)]).unwrap();
        punt_n(&mut p, 0, PuntReason::NonIpv4, RING_SIZE as u32 + 5, 0);
        let c = p.counters();
        assert_eq!(c.punted[0][PuntReason::NonIpv4 as usize], RING_SIZE as u64);
        assert_eq!(c.punt_dropped[0][PuntReason::NonIpv4 as usize], 5);
        assert!(
            Punter::new(&rings, 1, 1, &[None]).is_none(),
            "no such worker"
        );
    }

    #[test]
    fn counters_publish_read_and_sum() {
        let mut c = PuntCounters::new(2);
        c.punted[1][PuntReason::Arp as usize] = 3;
        c.punt_dropped[0][PuntReason::LocalUdp as usize] = 7;
        let shared = SharedPuntCounters::new(2);
        shared.publish(&c);
        assert_eq!(shared.read(), c);
        let mut sum = PuntCounters::default();
        sum.add(&c);
        sum.add(&c);
        let (punted, dropped) = sum.by_reason();
        assert_eq!(punted[PuntReason::Arp as usize], 6);
        assert_eq!(dropped[PuntReason::LocalUdp as usize], 14);
        assert_eq!(punted.iter().sum::<u64>(), 6);
    }
}
