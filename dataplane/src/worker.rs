//! The per-lcore polling loop: rx burst → pipeline verdict per packet → tx grouped by port →
//! counters published between bursts. All state a worker touches is in its own [`Worker`].

use crate::dpdk::lcore;
use crate::dpdk::mbuf::{Burst, Mbuf};
use crate::dpdk::mempool::Mempool;
use crate::dpdk::port::Queue;
use crate::frame::Frame;
use crate::process;
use crate::snapshot::Snapshot;
use crate::stats::{Counters, SharedCounters, PUBLISH_INTERVAL_LOOPS};
use crate::verdict::{DropReason, Verdict};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// One worker: its queue on every port, its pending transmissions and its counters.
pub struct Worker<'a> {
    /// Worker index (0-based), also its queue index on every port.
    index: usize,
    /// This worker's queue pair on each port, indexed like the snapshot's ports.
    queues: Vec<Queue<'a>>,
    /// Frames waiting to be sent, one burst per port.
    tx: Vec<Burst>,
    rx: Burst,
    burst: usize,
    pool: &'a Mempool,
    snapshot: Arc<Snapshot>,
    counters: Counters,
    shared: &'a SharedCounters,
    last_rx_tsc: u64,
}

impl<'a> Worker<'a> {
    /// A worker polling `queues` (one per port, in snapshot order) with bursts of `burst`.
    pub fn new(
        index: usize,
        queues: Vec<Queue<'a>>,
        burst: usize,
        pool: &'a Mempool,
        snapshot: Arc<Snapshot>,
        shared: &'a SharedCounters,
    ) -> Self {
        let tx = queues.iter().map(|_| Burst::default()).collect();
        Worker {
            index,
            queues,
            tx,
            rx: Burst::default(),
            burst,
            pool,
            snapshot,
            counters: Counters::default(),
            shared,
            last_rx_tsc: 0,
        }
    }

    /// Polls until `quit` is set, then sends what is pending and publishes the final counters.
    pub fn run(&mut self, quit: &AtomicBool) {
        log::info!(
            "worker {} polling on lcore {}",
            self.index,
            lcore::current()
        );
        if self.index == 0 {
            self.announce();
        }
        let mut loops: u32 = 0;
        while !quit.load(Relaxed) {
            for port in 0..self.queues.len() {
                self.poll(port);
            }
            self.flush();
            loops = loops.wrapping_add(1);
            if loops % PUBLISH_INTERVAL_LOOPS == 0 {
                self.shared.publish(&self.counters, self.last_rx_tsc);
            }
        }
        self.flush();
        self.shared.publish(&self.counters, self.last_rx_tsc);
    }

    /// Receives one burst from `port` and gives every packet its verdict.
    fn poll(&mut self, port: usize) {
        let Some(queue) = self.queues.get(port) else {
            return;
        };
        if self.rx.rx(queue, self.burst) == 0 {
            return;
        }
        self.last_rx_tsc = lcore::rdtsc();
        let mut rx = std::mem::take(&mut self.rx);
        for mut m in rx.drain() {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += m.data().len() as u64;
            match process::packet(&self.snapshot, port, &mut m) {
                Verdict::Tx { port } => self.send(port, m),
                Verdict::Drop(reason) => self.counters.drop(reason),
            }
        }
        self.rx = rx;
    }

    /// Queues `m` for transmission on `port`, flushing that port's burst when it is full.
    fn send(&mut self, port: usize, m: Mbuf) {
        let Some(tx) = self.tx.get_mut(port) else {
            self.counters.drop(DropReason::NoRoute);
            return;
        };
        if let Err(m) = tx.push(m) {
            self.flush_port(port);
            if let Some(tx) = self.tx.get_mut(port) {
                // The burst was just emptied, so this push succeeds.
                let _ = tx.push(m);
            }
        }
    }

    /// Sends every pending burst.
    fn flush(&mut self) {
        for port in 0..self.tx.len() {
            self.flush_port(port);
        }
    }

    fn flush_port(&mut self, port: usize) {
        let (Some(tx), Some(queue)) = (self.tx.get_mut(port), self.queues.get(port)) else {
            return;
        };
        if tx.is_empty() {
            return;
        }
        let pending = tx.len();
        let (sent, bytes) = tx.tx(queue);
        self.counters.tx_packets += sent as u64;
        self.counters.tx_bytes += bytes;
        for _ in sent..pending {
            self.counters.drop(DropReason::TxFull);
        }
    }

    /// Sends a gratuitous ARP for every owned address, so switches and neighbours learn where
    /// the addresses (VIPs included) live now.
    fn announce(&mut self) {
        let snapshot = Arc::clone(&self.snapshot);
        for (port, view) in snapshot.ports.iter().enumerate() {
            for &ip in &view.addrs {
                let Some(mut m) = Mbuf::alloc(self.pool) else {
                    self.counters.drop(DropReason::NoMbuf);
                    continue;
                };
                let frame = crate::l2::arp::gratuitous(view.mac, ip);
                if m.set_data(&frame) {
                    self.send(port, m);
                }
            }
        }
        self.flush();
    }
}
