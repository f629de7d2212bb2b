//! Per-worker packet counters.
//!
//! A worker counts into plain integers it owns ([`Counters`]) and copies them into its shared
//! block ([`SharedCounters`]) between bursts every [`PUBLISH_INTERVAL_LOOPS`] loops and when it
//! stops, so the fast path pays for no atomic read-modify-write and the control thread still
//! reads recent values.

use fastpath::verdict::DropReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Worker loops between two publications of the counters.
pub const PUBLISH_INTERVAL_LOOPS: u32 = 1024;

/// Counters owned by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets handed to the worker that owns their flow.
    pub handed_over: u64,
    /// Events that are not drops (`process::Events`).
    pub events: fastpath::pipeline::Events,
    pub drops: [u64; DropReason::COUNT],
    /// Times the worker slept between polls for want of packets (`idle_sleep_us`).
    pub idle_sleeps: u64,
}

// By hand: arrays longer than 32 have no derived `Default`.
impl Default for Counters {
    fn default() -> Counters {
        Counters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            handed_over: 0,
            events: fastpath::pipeline::Events::default(),
            drops: [0; DropReason::COUNT],
            idle_sleeps: 0,
        }
    }
}

impl Counters {
    /// Counts one dropped packet.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.get_mut(reason as usize) {
            *c += 1;
        }
    }

    /// Total drops over all reasons.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds `other` into `self` (aggregation over workers).
    pub fn add(&mut self, other: &Counters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.handed_over += other.handed_over;
        self.events.toa_inserted += other.events.toa_inserted;
        self.events.toa_no_room += other.events.toa_no_room;
        self.events.proxy_inserted += other.events.proxy_inserted;
        self.events.icmp_errors_sent += other.events.icmp_errors_sent;
        self.events.sync_overflow += other.events.sync_overflow;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        self.idle_sleeps += other.idle_sleeps;
    }
}

/// The published copy of one worker's counters, readable from any thread.
#[derive(Debug)]
pub struct SharedCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    handed_over: AtomicU64,
    toa_inserted: AtomicU64,
    toa_no_room: AtomicU64,
    proxy_inserted: AtomicU64,
    icmp_errors_sent: AtomicU64,
    sync_overflow: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    idle_sleeps: AtomicU64,
    /// TSC of the last received packet (0 = none yet), for `--exit-idle-ms`.
    last_rx_tsc: AtomicU64,
    /// Loops the worker has polled every port without receiving anything since, for
    /// `--exit-idle-ms`: a worker starved of CPU makes no loops, so its input is not taken
    /// for finished just because time passed.
    empty_loops: AtomicU64,
}

// By hand, as `Counters`.
impl Default for SharedCounters {
    fn default() -> SharedCounters {
        SharedCounters {
            rx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            handed_over: AtomicU64::new(0),
            toa_inserted: AtomicU64::new(0),
            toa_no_room: AtomicU64::new(0),
            proxy_inserted: AtomicU64::new(0),
            icmp_errors_sent: AtomicU64::new(0),
            sync_overflow: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            idle_sleeps: AtomicU64::new(0),
            last_rx_tsc: AtomicU64::new(0),
            empty_loops: AtomicU64::new(0),
        }
    }
}

impl SharedCounters {
    /// Publishes a worker's counters (only the owning worker calls this).
    pub fn publish(&self, c: &Counters, last_rx_tsc: u64, empty_loops: u64) {
        self.rx_packets.store(c.rx_packets, Relaxed);
        self.rx_bytes.store(c.rx_bytes, Relaxed);
        self.tx_packets.store(c.tx_packets, Relaxed);
        self.tx_bytes.store(c.tx_bytes, Relaxed);
        self.handed_over.store(c.handed_over, Relaxed);
        self.toa_inserted.store(c.events.toa_inserted, Relaxed);
        self.toa_no_room.store(c.events.toa_no_room, Relaxed);
        self.proxy_inserted.store(c.events.proxy_inserted, Relaxed);
        self.icmp_errors_sent
            .store(c.events.icmp_errors_sent, Relaxed);
        self.sync_overflow.store(c.events.sync_overflow, Relaxed);
        for (a, v) in self.drops.iter().zip(c.drops.iter()) {
            a.store(*v, Relaxed);
        }
        self.idle_sleeps.store(c.idle_sleeps, Relaxed);
        self.last_rx_tsc.store(last_rx_tsc, Relaxed);
        self.empty_loops.store(empty_loops, Relaxed);
    }

    /// The last published values.
    pub fn read(&self) -> Counters {
        let mut drops = [0; DropReason::COUNT];
        for (v, a) in drops.iter_mut().zip(self.drops.iter()) {
            *v = a.load(Relaxed);
        }
        Counters {
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            tx_bytes: self.tx_bytes.load(Relaxed),
            handed_over: self.handed_over.load(Relaxed),
            events: fastpath::pipeline::Events {
                toa_inserted: self.toa_inserted.load(Relaxed),
                toa_no_room: self.toa_no_room.load(Relaxed),
                proxy_inserted: self.proxy_inserted.load(Relaxed),
                icmp_errors_sent: self.icmp_errors_sent.load(Relaxed),
                sync_overflow: self.sync_overflow.load(Relaxed),
            },
            drops,
            idle_sleeps: self.idle_sleeps.load(Relaxed),
        }
    }

    /// TSC of the last packet this worker received, 0 if none.
    pub fn last_rx_tsc(&self) -> u64 {
        self.last_rx_tsc.load(Relaxed)
    }

    /// Loops without any packet received since the last packet, as last published.
    pub fn empty_loops(&self) -> u64 {
        self.empty_loops.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_then_read_round_trips_and_add_sums() {
        let mut c = Counters {
            rx_packets: 5,
            rx_bytes: 300,
            tx_packets: 3,
            tx_bytes: 180,
            handed_over: 2,
            idle_sleeps: 9,
            ..Counters::default()
        };
        c.drop(DropReason::NotOurs);
        c.drop(DropReason::NotOurs);
        c.drop(DropReason::Truncated);
        let shared = SharedCounters::default();
        shared.publish(&c, 42, 7);
        assert_eq!(shared.read(), c);
        assert_eq!(shared.last_rx_tsc(), 42);
        assert_eq!(shared.empty_loops(), 7);
        let mut sum = c.clone();
        sum.add(&c);
        assert_eq!(sum.rx_packets, 10);
        assert_eq!(sum.handed_over, 4);
        assert_eq!(sum.idle_sleeps, 18);
        assert_eq!(sum.drops[DropReason::NotOurs as usize], 4);
        assert_eq!(sum.total_drops(), 6);
    }
}
