//! The exception thread: moves the workers' punted frames into each port's kernel twin, and
//! what the kernel sends on a twin out of its DPDK port.
//!
//! It is a plain thread, not an EAL lcore: the exception path carries control traffic only
//! (ARP, routing protocols, ssh; net_tap costs ~10 µs a packet), so it polls every twin and
//! ring and sleeps [`IDLE_SLEEP`] when a round moved nothing. Each port's frames from the
//! kernel leave on the port's own exception tx queue ([`ExceptionQueue`]), which no worker
//! uses, so no queue is shared. On devices that deliver received frames to that queue's rx
//! side too (see `PortSetup::exception_tx`), those frames belong to the data path: the thread
//! hands them to worker 0 ([`ExceptionPath::strays`]), which treats them as received.

use super::punt::PuntRings;
use crate::dpdk::mbuf::{Burst, Mbuf, BURST_MAX};
use crate::dpdk::port::{ExceptionQueue, Queue};
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How long the thread sleeps after a round that moved nothing.
pub const IDLE_SLEEP: Duration = Duration::from_millis(1);
/// Data-path frames the thread may have waiting for worker 0.
pub const STRAYS_RING: usize = 4096;

/// What the exception thread moved on one port. Only the thread writes them.
#[derive(Debug, Default)]
pub struct PortExceptionStats {
    /// Punted frames the twin took (to the kernel).
    pub to_kernel: AtomicU64,
    /// Punted frames the twin refused (its queue full).
    pub to_kernel_dropped: AtomicU64,
    /// Frames the kernel sent on the twin that left on the port.
    pub kernel_tx: AtomicU64,
    /// Frames the kernel sent that the port's exception queue refused.
    pub kernel_tx_dropped: AtomicU64,
    /// Data-path frames received on the exception queue, handed to worker 0.
    pub strays: AtomicU64,
    /// Of those, dropped because worker 0's ring was full.
    pub strays_dropped: AtomicU64,
}

/// A plain copy of [`PortExceptionStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExceptionCounts {
    pub to_kernel: u64,
    pub to_kernel_dropped: u64,
    pub kernel_tx: u64,
    pub kernel_tx_dropped: u64,
    pub strays: u64,
    pub strays_dropped: u64,
}

impl PortExceptionStats {
    /// The current values.
    pub fn read(&self) -> ExceptionCounts {
        ExceptionCounts {
            to_kernel: self.to_kernel.load(Relaxed),
            to_kernel_dropped: self.to_kernel_dropped.load(Relaxed),
            kernel_tx: self.kernel_tx.load(Relaxed),
            kernel_tx_dropped: self.kernel_tx_dropped.load(Relaxed),
            strays: self.strays.load(Relaxed),
            strays_dropped: self.strays_dropped.load(Relaxed),
        }
    }
}

fn add(counter: &AtomicU64, n: usize) {
    if n > 0 {
        // Only the exception thread writes: a load and a store suffice.
        counter.store(counter.load(Relaxed) + n as u64, Relaxed);
    }
}

/// Everything the workers and the exception thread share: the punt rings (workers → thread),
/// the strays ring (thread → worker 0) and the thread's counters, one per port.
pub struct ExceptionPath {
    punt: PuntRings,
    strays: ArrayQueue<(usize, Mbuf)>,
    stats: Vec<PortExceptionStats>,
}

impl ExceptionPath {
    /// The path of `workers` workers over `ports` ports.
    pub fn new(workers: usize, ports: usize) -> ExceptionPath {
        ExceptionPath {
            punt: PuntRings::new(workers, ports),
            strays: ArrayQueue::new(STRAYS_RING),
            stats: (0..ports).map(|_| PortExceptionStats::default()).collect(),
        }
    }

    /// The workers' rings and counters.
    pub fn punt(&self) -> &PuntRings {
        &self.punt
    }

    /// Data-path frames for worker 0 (port index, frame), received on an exception queue.
    pub fn strays(&self) -> &ArrayQueue<(usize, Mbuf)> {
        &self.strays
    }

    /// Frees every frame still queued (the rings hold mbufs, which must go back to their
    /// pool before EAL releases its memory, whoever still holds the path).
    pub fn release(&self) {
        for ring in self.punt.rings() {
            while ring.pop().is_some() {}
        }
        while self.strays.pop().is_some() {}
    }

    /// The thread's counters of port `port`.
    pub fn stats(&self, port: usize) -> ExceptionCounts {
        self.stats
            .get(port)
            .map(PortExceptionStats::read)
            .unwrap_or_default()
    }
}

/// One port's exception plumbing, owned by the exception thread.
pub struct Link<'a> {
    /// Index of the port (as in the snapshot).
    pub port: usize,
    /// The twin's queue pair: punted frames go out on it, the kernel's come in.
    pub twin: Queue<'a>,
    /// The DPDK port's exception queue: the kernel's frames go out on it.
    pub wire: ExceptionQueue<'a>,
}

/// Runs the exception thread until `stop` is set.
pub fn run(path: &ExceptionPath, links: &[Link<'_>], stop: &AtomicBool) {
    log::info!(
        "exception thread: {} twin(s), {} worker ring(s)",
        links.len(),
        path.punt.rings().len()
    );
    // Punted frames waiting for their twin, one burst per link.
    let mut to_twin: Vec<Burst> = links.iter().map(|_| Burst::default()).collect();
    let mut rx = Burst::default();
    while !stop.load(Relaxed) {
        let mut moved = 0;
        for ring in path.punt.rings() {
            for _ in 0..BURST_MAX {
                let Some((port, m)) = ring.pop() else {
                    break;
                };
                moved += 1;
                let Some(i) = links.iter().position(|l| l.port == port) else {
                    // A worker only punts on ports with a twin; count it as refused.
                    if let Some(s) = path.stats.get(port) {
                        add(&s.to_kernel_dropped, 1);
                    }
                    continue;
                };
                if let Some(burst) = to_twin.get_mut(i) {
                    if let Err(m) = burst.push(m) {
                        flush_to_twin(path, &links[i], burst);
                        // Just emptied: the push succeeds.
                        let _ = burst.push(m);
                    }
                }
            }
        }
        for (link, burst) in links.iter().zip(to_twin.iter_mut()) {
            flush_to_twin(path, link, burst);
        }
        for link in links {
            moved += from_kernel(path, link, &mut rx);
            moved += strays(path, link, &mut rx);
        }
        if moved == 0 {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}

fn flush_to_twin(path: &ExceptionPath, link: &Link<'_>, burst: &mut Burst) {
    if burst.is_empty() {
        return;
    }
    let pending = burst.len();
    let (sent, _) = burst.tx(&link.twin);
    if let Some(s) = path.stats.get(link.port) {
        add(&s.to_kernel, sent);
        add(&s.to_kernel_dropped, pending - sent);
    }
}

/// What the kernel sent on the twin leaves on the port. Returns the frames moved.
fn from_kernel(path: &ExceptionPath, link: &Link<'_>, rx: &mut Burst) -> usize {
    let n = rx.rx(&link.twin, BURST_MAX);
    if n == 0 {
        return 0;
    }
    let (sent, _) = rx.tx(&link.wire);
    if let Some(s) = path.stats.get(link.port) {
        add(&s.kernel_tx, sent);
        add(&s.kernel_tx_dropped, n - sent);
    }
    n
}

/// Data-path frames that arrived on the exception queue go to worker 0.
fn strays(path: &ExceptionPath, link: &Link<'_>, rx: &mut Burst) -> usize {
    let n = rx.rx(&link.wire, BURST_MAX);
    let mut dropped = 0;
    for m in rx.drain() {
        if path.strays.push((link.port, m)).is_err() {
            dropped += 1;
        }
    }
    if let Some(s) = path.stats.get(link.port) {
        add(&s.strays, n);
        add(&s.strays_dropped, dropped);
    }
    n
}
