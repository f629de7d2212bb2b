//! The per-lcore polling loop: rx burst → every packet's connection looked up and prefetched
//! (`Pipeline::prefetch`) → pipeline verdict per packet → tx grouped by port,
//! then the between-burst work: packets handed over by other workers, neighbours learned by
//! other workers, configuration changes, connection expiry, counters. All state a worker
//! touches is in its own [`Worker`]; what workers share is the lock-free [`Fabric`].

use crate::dpdk::lcore;
use crate::dpdk::mbuf::{Burst, Mbuf, BURST_MAX};
use crate::dpdk::mempool::Mempool;
use crate::dpdk::port::Queue;
use crate::host::punt::Punter;
use crate::idle::Backoff;
use crate::stats::{Counters, SharedCounters, PUBLISH_INTERVAL_LOOPS};
use arc_swap::ArcSwap;
use conf::proto::ConnEntry;
use crossbeam::queue::ArrayQueue;
use fastpath::frame::Frame;
use fastpath::l2::neighbor::{Parked, Pending};
use fastpath::pipeline::{Held, Parsed, Pipeline, Released};
use fastpath::snapshot::Snapshot;
use fastpath::verdict::{DropReason, PuntReason, Verdict};
use fastpath::wire::ether::EthernetAddress;
use fastpath::xmit::{self, fragment, Link};
use std::net::IpAddr;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};
use std::sync::{Arc, Mutex};

/// Packets one worker may have queued for another before it drops (`redirect_full`).
pub const HANDOFF_QUEUE: usize = 4096;
/// Neighbour announcements one worker may have queued for another.
const LEARNED_QUEUE: usize = 256;
/// Packets waiting for ARP per worker.
const PENDING_MAX: usize = 256;
/// Connections examined for expiry per loop.
const EXPIRE_BUDGET: usize = 64;

/// What workers share: the published configuration and one queue per worker for packets and
/// neighbour entries handed to it. All lock-free.
pub struct Fabric {
    snapshot: ArcSwap<Snapshot>,
    generation: AtomicU64,
    handoff: Vec<ArrayQueue<(usize, Mbuf)>>,
    learned: Vec<ArrayQueue<(usize, IpAddr, EthernetAddress)>>,
    /// Connection listings (`rvsadm -L -c`): the control thread raises a worker's flag, the
    /// worker fills its slot between bursts and lowers the flag.
    dump_wanted: Vec<AtomicBool>,
    dumps: Vec<Mutex<Vec<ConnEntry>>>,
    /// Connection sync: the rings to and from the sync threads, and their counters.
    sync: crate::sync::Rings,
    sync_stats: crate::sync::Stats,
}

impl Fabric {
    /// The fabric of `workers` workers, starting with `snapshot`.
    pub fn new(workers: usize, snapshot: Arc<Snapshot>) -> Fabric {
        Fabric {
            snapshot: ArcSwap::new(snapshot),
            generation: AtomicU64::new(0),
            handoff: (0..workers)
                .map(|_| ArrayQueue::new(HANDOFF_QUEUE))
                .collect(),
            learned: (0..workers)
                .map(|_| ArrayQueue::new(LEARNED_QUEUE))
                .collect(),
            dump_wanted: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            dumps: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            sync: crate::sync::Rings::new(workers),
            sync_stats: crate::sync::Stats::default(),
        }
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.handoff.len()
    }

    /// The rings between the workers and the sync threads.
    pub fn sync(&self) -> &crate::sync::Rings {
        &self.sync
    }

    /// The sync counters.
    pub fn sync_stats(&self) -> &crate::sync::Stats {
        &self.sync_stats
    }

    /// Every worker's connection entries, waiting at most `timeout` for the workers to
    /// answer (a worker that does not answer in time contributes nothing).
    pub fn dump_conns(&self, timeout: std::time::Duration) -> Vec<ConnEntry> {
        for wanted in &self.dump_wanted {
            wanted.store(true, Release);
        }
        let deadline = std::time::Instant::now() + timeout;
        while self.dump_wanted.iter().any(|w| w.load(Acquire))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut all = Vec::new();
        for (wanted, slot) in self.dump_wanted.iter().zip(&self.dumps) {
            if !wanted.swap(false, AcqRel) {
                all.append(&mut slot.lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
        all
    }

    /// Publishes a new configuration; workers switch to it between bursts.
    pub fn publish(&self, snapshot: Arc<Snapshot>) {
        self.snapshot.store(snapshot);
        self.generation.fetch_add(1, Relaxed);
    }

    /// The configuration currently published.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Frees the packets still handed over when the workers have stopped (a worker may hand
    /// one to a peer that already left its loop): mbufs must go back to their pool before
    /// EAL releases its memory, while the fabric itself may live on in other threads.
    pub fn release(&self) {
        for queue in &self.handoff {
            while queue.pop().is_some() {}
        }
    }
}

/// One worker: its queue on every port, its pipeline state, its pending transmissions.
pub struct Worker<'a> {
    index: usize,
    /// This worker's queue pair on each port, indexed like the snapshot's ports.
    queues: Vec<Queue<'a>>,
    /// Frames waiting to be sent, one burst per port.
    tx: Vec<Burst>,
    rx: Burst,
    burst: usize,
    pool: &'a Mempool,
    fabric: &'a Fabric,
    snapshot: Arc<Snapshot>,
    generation: u64,
    pipeline: Pipeline,
    /// What `Pipeline::prefetch` found out about each packet of the burst being processed.
    parsed: [Parsed; BURST_MAX],
    /// Packets waiting for a next hop, IPv4 (ARP) or IPv6 (neighbour discovery).
    pending: Pending<Waiting, IpAddr>,
    /// Fragments that came before their first fragment (`Verdict::Hold`), and a scratch list
    /// for those the pipeline releases (kept to reuse its allocation).
    held: Held<Mbuf>,
    releasing: Vec<(usize, Mbuf)>,
    /// Scratch list for neighbours learned in a burst (kept to reuse its allocation).
    learned: Vec<(usize, IpAddr, EthernetAddress)>,
    counters: Counters,
    shared: &'a SharedCounters,
    last_rx_tsc: u64,
    /// Loops in a row that received nothing on any port nor from other workers.
    empty_loops: u64,
    /// Adaptive polling: pauses and sleeps once `empty_loops` runs long.
    idle: Backoff,
    clock: Clock,
    /// Frames for the kernel go to the exception thread through this.
    punter: Punter<'a>,
    /// Worker 0 only: data-path frames the exception thread received on a port's exception
    /// queue (devices that deliver to every queue), processed as if received here.
    strays: Option<&'a ArrayQueue<(usize, Mbuf)>>,
}

/// A frame waiting for its next hop's MAC, and the MTU to fragment it for when it leaves
/// (`Verdict::ResolveFragment`).
struct Waiting {
    m: Mbuf,
    fragment_mtu: Option<u16>,
}

/// Milliseconds since the worker started, from the TSC.
struct Clock {
    start: u64,
    hz: u64,
}

impl Clock {
    fn now_ms(&self) -> u64 {
        let ticks = lcore::rdtsc().saturating_sub(self.start);
        (u128::from(ticks) * 1000 / u128::from(self.hz.max(1))) as u64
    }
}

/// Everything a worker is built from.
pub struct Setup<'a> {
    pub index: usize,
    pub queues: Vec<Queue<'a>>,
    pub burst: usize,
    pub pool: &'a Mempool,
    pub fabric: &'a Fabric,
    pub pipeline: Pipeline,
    pub shared: &'a SharedCounters,
    pub tsc_hz: u64,
    pub punter: Punter<'a>,
    pub strays: Option<&'a ArrayQueue<(usize, Mbuf)>>,
    /// `[dataplane] idle_sleep_us`: 0 = busy polling.
    pub idle_sleep_us: u32,
}

impl<'a> Worker<'a> {
    /// A worker polling `setup.queues` (one per port, in snapshot order).
    pub fn new(setup: Setup<'a>) -> Self {
        let tx = setup.queues.iter().map(|_| Burst::default()).collect();
        Worker {
            index: setup.index,
            queues: setup.queues,
            tx,
            rx: Burst::default(),
            burst: setup.burst,
            pool: setup.pool,
            fabric: setup.fabric,
            snapshot: setup.fabric.snapshot(),
            generation: setup.fabric.generation.load(Relaxed),
            pipeline: setup.pipeline,
            parsed: [Parsed::default(); BURST_MAX],
            pending: Pending::with_capacity(PENDING_MAX),
            held: Held::default(),
            releasing: Vec::with_capacity(fastpath::pipeline::HOLD_MAX),
            learned: Vec::with_capacity(64),
            counters: Counters::default(),
            shared: setup.shared,
            last_rx_tsc: 0,
            empty_loops: 0,
            idle: Backoff::new(setup.idle_sleep_us),
            clock: Clock {
                start: lcore::rdtsc(),
                hz: setup.tsc_hz,
            },
            punter: setup.punter,
            strays: setup.strays,
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
            let now = self.clock.now_ms();
            let received = self.counters.rx_packets;
            for port in 0..self.queues.len() {
                self.poll(port, now);
            }
            let handed = self.take_handoffs(now);
            self.take_strays(now);
            self.empty_loops = if self.counters.rx_packets == received && handed == 0 {
                self.empty_loops.saturating_add(1)
            } else {
                0
            };
            self.flush();
            self.between_bursts(now);
            loops = loops.wrapping_add(1);
            if loops % PUBLISH_INTERVAL_LOOPS == 0 {
                self.publish();
            }
            // Only an idle worker gets here with anything to do: a loop that received
            // packets pays one compare.
            let wait = self.idle.plan(self.empty_loops);
            if Backoff::wait(wait) {
                self.counters.idle_sleeps += 1;
                // What the control thread reads (stats, `--exit-idle-ms`) stays current
                // however few loops a sleeping worker makes.
                if self.idle.publish_due() {
                    self.publish();
                }
            }
        }
        self.flush();
        // Packets still waiting for ARP are dropped with the worker: count them.
        let mut unresolved = 0;
        self.pending.expire(u64::MAX, |_| unresolved += 1);
        for _ in 0..unresolved {
            self.counters.drop(DropReason::NoNeighbor);
        }
        // So are fragments whose first fragment did not come.
        for _ in self.held.drain() {
            self.counters.drop(DropReason::FragNoFirst);
        }
        self.publish();
    }

    /// Copies this worker's counters where the control thread reads them.
    fn publish(&mut self) {
        self.counters.events = self.pipeline.events();
        self.pipeline.publish_laddr_usage();
        self.shared
            .publish(&self.counters, self.last_rx_tsc, self.empty_loops);
        self.punter.publish();
    }

    /// Receives one burst from `port` and acts on every packet's verdict.
    fn poll(&mut self, port: usize, now: u64) {
        let Some(queue) = self.queues.get(port) else {
            return;
        };
        if self.rx.rx(queue, self.burst) == 0 {
            return;
        }
        self.last_rx_tsc = lcore::rdtsc();
        let mut rx = std::mem::take(&mut self.rx);
        // The pipeline reads a frame as one contiguous buffer: chained mbufs are joined
        // first, and those too long for one buffer dropped.
        let counters = &mut self.counters;
        rx.linearize(|len| {
            counters.rx_packets += 1;
            counters.rx_bytes += u64::from(len);
            counters.drop(DropReason::OversizeFrame);
        });
        // The burst in three stages, so that the cache misses of its lookups overlap:
        // every packet classified and its index bucket prefetched, then every bucket read
        // and the candidate entry prefetched, then every packet processed.
        let (pipeline, snapshot) = (&self.pipeline, &self.snapshot);
        let mut next = self.parsed.iter_mut();
        let mut n = 0;
        rx.for_each_frame(|frame| {
            if let Some(parsed) = next.next() {
                *parsed = pipeline.prefetch(snapshot, port, frame);
                n += 1;
            }
        });
        for parsed in self.parsed.iter_mut().take(n) {
            pipeline.candidate(parsed);
        }
        for (i, mut m) in rx.drain().enumerate() {
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += m.data().len() as u64;
            let parsed = self.parsed.get(i).copied().unwrap_or_default();
            let verdict = self.received(port, &mut m, &parsed, now);
            match verdict {
                Verdict::Tx { port } => self.send(port, m),
                verdict => self.act(verdict, port, m, now),
            }
            if self.pipeline.has_learned() {
                self.absorb_learned();
            }
            if self.pipeline.has_released() {
                self.release_fragments(now);
            }
        }
        self.rx = rx;
    }

    /// Processes the packets other workers handed over (flows this worker owns), at most a
    /// burst; returns how many.
    fn take_handoffs(&mut self, now: u64) -> usize {
        let Some(queue) = self.fabric.handoff.get(self.index) else {
            return 0;
        };
        let mut taken = 0;
        for _ in 0..self.burst {
            let Some((port, mut m)) = queue.pop() else {
                break;
            };
            taken += 1;
            let verdict = self.pipeline.handed_over(&self.snapshot, port, &mut m, now);
            self.act(verdict, port, m, now);
            if self.pipeline.has_released() {
                self.release_fragments(now);
            }
        }
        taken
    }

    /// Processes the data-path frames the exception thread received (worker 0 only), as
    /// frames received on their port.
    fn take_strays(&mut self, now: u64) {
        let Some(queue) = self.strays else {
            return;
        };
        for _ in 0..self.burst {
            let Some((port, mut m)) = queue.pop() else {
                break;
            };
            self.last_rx_tsc = lcore::rdtsc();
            self.counters.rx_packets += 1;
            self.counters.rx_bytes += m.data().len() as u64;
            let parsed = self.pipeline.prefetch(&self.snapshot, port, m.data());
            let verdict = self.received(port, &mut m, &parsed, now);
            self.act(verdict, port, m, now);
            if self.pipeline.has_released() {
                self.release_fragments(now);
            }
        }
    }

    /// Held fragments the pipeline released: put through it again (their first fragment
    /// came, and went just before them) or dropped.
    fn release_fragments(&mut self, now: u64) {
        while let Some((key, release)) = self.pipeline.take_released() {
            let mut frames = std::mem::take(&mut self.releasing);
            self.held.take(key, &mut frames);
            for (port, mut m) in frames.drain(..) {
                match release {
                    Released::Retry => {
                        let verdict = self.pipeline.packet(&self.snapshot, port, &mut m, now);
                        self.act(verdict, port, m, now);
                    }
                    Released::Drop(reason) => self.counters.drop(reason),
                }
            }
            self.releasing = frames;
        }
    }

    /// The pipeline's verdict for a frame received on `port` that [`Pipeline::prefetch`]
    /// looked at (`parsed`). On a port with a kernel twin, the kernel also gets a copy of
    /// every ARP frame (before rvs answers it in place), so that its neighbour table stays
    /// right.
    #[inline]
    fn received(&mut self, port: usize, m: &mut Mbuf, parsed: &Parsed, now: u64) -> Verdict {
        if parsed.is_arp() && self.punter.has_twin(port) {
            self.punter
                .punt_copy(port, PuntReason::Arp, m.data(), self.pool, now);
        }
        self.pipeline
            .packet_parsed(&self.snapshot, port, m, now, parsed)
    }

    fn act(&mut self, verdict: Verdict, in_port: usize, m: Mbuf, now: u64) {
        match verdict {
            Verdict::Punt(reason) => self.punter.punt(in_port, reason, m, now),
            Verdict::Tx { port } => self.send(port, m),
            Verdict::Drop(reason) => self.counters.drop(reason),
            Verdict::Resolve { port, next_hop } => {
                self.park(port, IpAddr::V4(next_hop), m, None, now)
            }
            Verdict::Resolve6 { port } => {
                let next_hop = self.pipeline.resolving6();
                self.park(port, IpAddr::V6(next_hop), m, None, now)
            }
            Verdict::Fragment { port, mtu } => self.fragment(port, &m, mtu),
            Verdict::ResolveFragment {
                port,
                next_hop,
                mtu,
            } => self.park(port, IpAddr::V4(next_hop), m, Some(mtu), now),
            Verdict::Hold(key) => {
                if self.held.hold(key, in_port, m).is_err() {
                    self.counters.drop(DropReason::FragHoldFull);
                }
            }
            Verdict::Redirect { worker } => {
                let pushed = self
                    .fabric
                    .handoff
                    .get(worker)
                    .map(|q| q.push((in_port, m)));
                if matches!(pushed, Some(Ok(()))) {
                    self.counters.handed_over += 1;
                } else {
                    self.counters.drop(DropReason::RedirectFull);
                }
            }
        }
    }

    /// Queues `m` until the MAC of `next_hop` on `port` is known, asking for it with ARP.
    fn park(
        &mut self,
        port: usize,
        next_hop: IpAddr,
        m: Mbuf,
        fragment_mtu: Option<u16>,
        now: u64,
    ) {
        let waiting = Waiting { m, fragment_mtu };
        match self.pending.park(port, next_hop, waiting, now) {
            Parked::Request => self.ask(port, next_hop),
            Parked::Queued => {}
            Parked::Full(_) => self.counters.drop(DropReason::NoNeighbor),
        }
    }

    /// Sends the frame `m` (complete for `port`) as fragments of at most `mtu` bytes of IPv4
    /// (`xmit::fragment`), each copied into a new buffer; the caller frees `m`. A fragment
    /// that gets no buffer ends the packet, counted as `no_mbuf` (the fragments already
    /// queued still leave; the receiver discards an incomplete datagram).
    fn fragment(&mut self, port: usize, m: &Mbuf, mtu: u16) {
        let plan = match fragment::plan(m.data(), mtu) {
            Ok(plan) => plan,
            Err(reason) => return self.counters.drop(reason),
        };
        for k in 0..plan.count() {
            // A buffer holds any fragment: the pool is sized for the largest port MTU.
            let written = Mbuf::alloc(self.pool).and_then(|mut f| {
                let len = plan.frame_len(k)?;
                (f.append(len) && fragment::write(m.data(), &plan, k, f.data_mut()).is_ok())
                    .then_some(f)
            });
            match written {
                Some(f) => self.send(port, f),
                None => return self.counters.drop(DropReason::NoMbuf),
            }
        }
    }

    /// Configuration changes, neighbours, timers: the work done once per loop.
    fn between_bursts(&mut self, now: u64) {
        let generation = self.fabric.generation.load(Relaxed);
        if generation != self.generation {
            let next = self.fabric.snapshot();
            self.pipeline.adopt(Some(&self.snapshot), &next);
            let previous = std::mem::replace(&mut self.snapshot, next);
            self.generation = generation;
            if self.index == 0 {
                self.announce_new(&previous);
            }
        }
        self.absorb_peers_learned();
        self.absorb_learned();
        self.pipeline.expire(now, EXPIRE_BUDGET);
        self.release_fragments(now);
        self.serve_dump(now);
        self.exchange_sync(now);
        let mut expired = 0;
        self.pending.expire(now, |_| expired += 1);
        for _ in 0..expired {
            self.counters.drop(DropReason::NoNeighbor);
        }
    }

    /// Connection sync: hands what the pipeline recorded for the master thread to it, and
    /// installs what the backup thread received for this worker (a bounded number per loop).
    fn exchange_sync(&mut self, now: u64) {
        if self.pipeline.has_sync() {
            let ring = self.fabric.sync.outbox(self.index);
            let stats = &self.fabric.sync_stats;
            for record in self.pipeline.take_sync() {
                if !matches!(ring.map(|q| q.push(record)), Some(Ok(()))) {
                    stats.lost_out.fetch_add(1, Relaxed);
                }
            }
        }
        let Some(inbox) = self.fabric.sync.inbox(self.index) else {
            return;
        };
        for _ in 0..crate::sync::INSTALL_BUDGET {
            let Some(record) = inbox.pop() else {
                break;
            };
            let outcome = self.pipeline.install_synced(&self.snapshot, &record, now);
            self.fabric.sync_stats.installed(outcome);
        }
    }

    /// Answers a connection listing request (slow path: allocates and takes the slot's lock).
    fn serve_dump(&mut self, now: u64) {
        let Some(wanted) = self.fabric.dump_wanted.get(self.index) else {
            return;
        };
        if !wanted.load(Acquire) {
            return;
        }
        if let Some(slot) = self.fabric.dumps.get(self.index) {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = self.pipeline.conn_entries(now);
        }
        wanted.store(false, Release);
    }

    /// Neighbours this worker just learned (ARP, neighbour discovery): the packets waiting for them leave now
    /// (before later packets of their flows), and the other workers are told. Only what this
    /// worker learned itself is passed on, so announcements never echo between workers.
    fn absorb_learned(&mut self) {
        let mut learned = std::mem::take(&mut self.learned);
        learned.extend(self.pipeline.take_learned());
        for &(port, ip, mac) in &learned {
            self.release(port, ip, mac);
            for (w, queue) in self.fabric.learned.iter().enumerate() {
                if w != self.index {
                    // A full queue only delays the peer until the next ARP it sees itself.
                    let _ = queue.push((port, ip, mac));
                }
            }
        }
        learned.clear();
        self.learned = learned;
    }

    /// Neighbours the other workers learned.
    fn absorb_peers_learned(&mut self) {
        let Some(queue) = self.fabric.learned.get(self.index) else {
            return;
        };
        while let Some((port, ip, mac)) = queue.pop() {
            self.pipeline.learn(port, ip, mac);
            self.release(port, ip, mac);
        }
    }

    /// Sends the frames that waited for `ip` on `port`, now at `mac`.
    fn release(&mut self, port: usize, ip: IpAddr, mac: EthernetAddress) {
        let Some(port_mac) = self.snapshot.ports.get(port).map(|p| p.mac) else {
            return;
        };
        let mut ready = Vec::new();
        self.pending.release(port, ip, |w| ready.push(w));
        for Waiting {
            mut m,
            fragment_mtu,
        } in ready
        {
            let link = Link {
                port_mac,
                next_hop_mac: mac,
            };
            match (xmit::rewrite_ether(m.data_mut(), link), fragment_mtu) {
                (Ok(()), None) => self.send(port, m),
                (Ok(()), Some(mtu)) => self.fragment(port, &m, mtu),
                (Err(reason), _) => self.counters.drop(reason),
            }
        }
    }

    /// Asks for the MAC of `next_hop` on `port`: an ARP request, or a neighbour solicitation
    /// to its solicited-node group.
    fn ask(&mut self, port: usize, next_hop: IpAddr) {
        let Some(view) = self.snapshot.ports.get(port) else {
            return;
        };
        match next_hop {
            IpAddr::V4(next_hop) => {
                if let Some(sender) = view.source_for(next_hop) {
                    let frame = fastpath::l2::arp::request(view.mac, sender, next_hop);
                    self.originate(port, &frame);
                }
            }
            IpAddr::V6(next_hop) => {
                if let Some(sender) = view.source6_for(next_hop) {
                    let frame = fastpath::l2::nd::solicit(view.mac, sender, next_hop);
                    self.originate(port, &frame);
                }
            }
        }
    }

    /// Sends a frame rvs builds itself (ARP requests and announcements).
    fn originate(&mut self, port: usize, frame: &[u8]) {
        let Some(mut m) = Mbuf::alloc(self.pool) else {
            self.counters.drop(DropReason::NoMbuf);
            return;
        };
        if m.set_data(frame) {
            self.send(port, m);
        } else {
            self.counters.drop(DropReason::NoMbuf);
        }
    }

    /// Queues `m` for transmission on `port`, flushing that port's burst when it is full.
    #[inline]
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

    /// Sends a gratuitous ARP for every owned address and an unsolicited neighbour
    /// advertisement for every owned IPv6 address, so switches and neighbours learn where the
    /// addresses (VIPs included) live now.
    fn announce(&mut self) {
        let snapshot = Arc::clone(&self.snapshot);
        for (port, view) in snapshot.ports.iter().enumerate() {
            for ip in snapshot.announced(port) {
                self.originate(port, &fastpath::l2::arp::gratuitous(view.mac, ip));
            }
            // IPv6's gratuitous ARP (RFC 4861 §7.2.6), with the router flag the answers
            // to solicitations carry.
            for ip in snapshot.announced6(port) {
                self.originate(
                    port,
                    &fastpath::l2::nd::unsolicited_advert(view.mac, ip, true),
                );
            }
        }
        self.flush();
    }

    /// Sends one gratuitous ARP for every address the current snapshot answers ARP for that
    /// `previous` did not (an address the kernel twin gained: `ip addr add`, keepalived taking
    /// over a VIP), so that neighbours and switches learn at once where it lives now.
    fn announce_new(&mut self, previous: &Snapshot) {
        let snapshot = Arc::clone(&self.snapshot);
        for (port, view) in snapshot.ports.iter().enumerate() {
            for ip in snapshot.announced(port) {
                if !previous.owns_on(port, ip) {
                    log::info!("announcing {ip} on port {port}");
                    self.originate(port, &fastpath::l2::arp::gratuitous(view.mac, ip));
                }
            }
        }
    }
}
