//! Connection sync between directors: the master and backup daemons of Linux IPVS's sync
//! protocol version 1 (`ipvsadm --start-daemon`, `[sync]`), each a control thread with a
//! kernel UDP socket on the multicast interface (a kernel twin, `rvsN`: sync traffic to
//! 224.0.0.0/24 is punted to it and what it sends leaves through the exception path).
//!
//! - **Master**: workers record the connections the kernel's rule says to send
//!   (`fastpath::pipeline`'s sync stage) and push them, between bursts, into their own
//!   single-producer ring ([`Rings::outbox`]); the master thread packs them into messages of
//!   at most `maxlen` bytes and multicasts a message when it is full or when its first
//!   connection has waited [`FLUSH_AFTER`] (the kernel waits up to 2 s). A full ring loses the
//!   record (`lost_out`): a sync flood never stalls a worker.
//! - **Backup**: the backup thread joins the group on the interface, decodes each datagram
//!   (messages of another syncid are dropped unless the syncid is 0) and hands every
//!   connection to the worker that owns its flow (the client's address and port, as for
//!   packets; a persistence template goes with the connection before it, as the master sends
//!   it) through that worker's ring ([`Rings::inbox`]); the worker installs it between bursts.
//!
//! Both sides need the same number of workers (the owner of a flow depends on it) and, for
//! FULLNAT, the same local addresses.

use crate::worker::Fabric;
use conf::{SyncDaemon, SyncRole};
use crossbeam::queue::ArrayQueue;
use fastpath::pipeline::{owner, SyncInstalled, SyncRefused};
use fastpath::sync::{decode, EntryError, MessageBuilder, MessageError, SyncConn};
use std::collections::BTreeMap;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections a worker may have recorded for the master thread, or received for itself,
/// before the ring refuses more.
pub const RING: usize = 16384;
/// Connections a worker installs per loop at most.
pub const INSTALL_BUDGET: usize = 256;
/// A message not yet full leaves this long after its first connection was recorded.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// How often the threads look at their rings and stop flag when idle.
const POLL: Duration = Duration::from_millis(1);
/// The backup's receive timeout (how quickly it notices a stop).
const RECV_TIMEOUT: Duration = Duration::from_millis(100);
/// The largest sync message (a UDP datagram).
const MAX_DATAGRAM: usize = 65507;

/// The rings between the workers and the sync threads, one of each per worker.
pub struct Rings {
    outbox: Vec<ArrayQueue<SyncConn>>,
    inbox: Vec<ArrayQueue<SyncConn>>,
}

impl Rings {
    /// The rings of `workers` workers.
    pub fn new(workers: usize) -> Rings {
        Rings {
            outbox: (0..workers).map(|_| ArrayQueue::new(RING)).collect(),
            inbox: (0..workers).map(|_| ArrayQueue::new(RING)).collect(),
        }
    }

    /// Worker `w`'s ring towards the master thread.
    pub fn outbox(&self, w: usize) -> Option<&ArrayQueue<SyncConn>> {
        self.outbox.get(w)
    }

    /// Worker `w`'s ring from the backup thread.
    pub fn inbox(&self, w: usize) -> Option<&ArrayQueue<SyncConn>> {
        self.inbox.get(w)
    }
}

/// Sync counters: written by the sync threads and, for installs, by the workers between
/// bursts (never per packet).
#[derive(Default)]
pub struct Stats {
    /// Messages and connections multicast by the master.
    pub sent_messages: AtomicU64,
    pub sent_conns: AtomicU64,
    /// Messages the socket refused to send.
    pub send_errors: AtomicU64,
    /// Records lost because a worker's ring to the master was full.
    pub lost_out: AtomicU64,
    /// Messages and connections the backup received and decoded.
    pub received_messages: AtomicU64,
    pub received_conns: AtomicU64,
    /// Records lost because a worker's ring from the backup was full.
    pub lost_in: AtomicU64,
    /// Connections installed anew, refreshed, and ignored as the kernel ignores them.
    pub installed: AtomicU64,
    pub updated: AtomicU64,
    pub ignored: AtomicU64,
    /// Messages and entries that did not decode, and records not installed, by reason.
    errors: ErrorCounts,
}

/// Counters by reason name, for reasons known in advance.
struct ErrorCounts(Vec<(&'static str, AtomicU64)>);

impl Default for ErrorCounts {
    fn default() -> ErrorCounts {
        let refused = SyncRefused::ALL.map(|r| r.reason());
        ErrorCounts(
            MessageError::REASONS
                .into_iter()
                .chain(EntryError::REASONS)
                .chain(refused)
                .map(|n| (n, AtomicU64::new(0)))
                .collect(),
        )
    }
}

impl ErrorCounts {
    fn count(&self, reason: &'static str) {
        match self.0.iter().find(|(n, _)| *n == reason) {
            Some((_, c)) => c.fetch_add(1, Relaxed),
            None => {
                log::warn!("sync: uncounted reason {reason}");
                0
            }
        };
    }
}

impl Stats {
    /// Counts what a worker's install of one record did.
    pub fn installed(&self, outcome: Result<SyncInstalled, SyncRefused>) {
        match outcome {
            Ok(SyncInstalled::New) => self.installed.fetch_add(1, Relaxed),
            Ok(SyncInstalled::Updated) => self.updated.fetch_add(1, Relaxed),
            Ok(SyncInstalled::Ignored) => self.ignored.fetch_add(1, Relaxed),
            Err(reason) => {
                self.errors.count(reason.reason());
                0
            }
        };
    }

    /// Every error counter by reason (message and entry decoding, records not installed),
    /// zeros included, in a fixed order.
    pub fn errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.errors.0.iter().map(|(n, v)| (*n, v.load(Relaxed)))
    }

    /// Every counter by name: totals, then errors (`error_<reason>`) that are not zero.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        for (name, value) in [
            ("sent_messages", &self.sent_messages),
            ("sent_conns", &self.sent_conns),
            ("send_errors", &self.send_errors),
            ("lost_out", &self.lost_out),
            ("received_messages", &self.received_messages),
            ("received_conns", &self.received_conns),
            ("lost_in", &self.lost_in),
            ("installed", &self.installed),
            ("updated", &self.updated),
            ("ignored", &self.ignored),
        ] {
            map.insert(name.to_owned(), value.load(Relaxed));
        }
        for (name, value) in &self.errors.0 {
            let v = value.load(Relaxed);
            if v != 0 {
                map.insert(format!("error_{name}"), v);
            }
        }
        map
    }
}

/// A daemon's thread.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sync daemons of this rvsd: which run and with what (`control::sync::Daemons`, the
/// kernel's rules and ipvsadm's errors) and their threads.
pub struct Daemons {
    fabric: Arc<Fabric>,
    book: control::sync::Daemons,
    master: Option<Running>,
    backup: Option<Running>,
}

impl Daemons {
    /// No daemon running.
    pub fn new(fabric: Arc<Fabric>) -> Daemons {
        Daemons {
            fabric,
            book: control::sync::Daemons::new(),
            master: None,
            backup: None,
        }
    }

    /// Starts `daemon`: checks it as the kernel does (the interface, then the role free),
    /// opens and sets up its socket here, so that an unusable interface is reported to the
    /// caller, then runs it on its own thread. Returns the daemon as it runs (`maxlen`
    /// filled in).
    pub fn start(&mut self, daemon: &SyncDaemon) -> Result<SyncDaemon, String> {
        interface_index(&daemon.interface)?;
        let mtu = interface_mtu(&daemon.interface).unwrap_or(1500);
        let daemon = self.book.start(daemon.clone(), mtu)?;
        let started = self.spawn(&daemon);
        match started {
            Ok(running) => {
                match daemon.role {
                    SyncRole::Master => self.master = Some(running),
                    SyncRole::Backup => self.backup = Some(running),
                }
                log::info!(
                    "{} sync daemon started (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
                    daemon.role,
                    daemon.interface,
                    daemon.syncid,
                    daemon.maxlen.unwrap_or(0),
                    daemon.group,
                    daemon.port,
                    daemon.ttl
                );
                Ok(daemon)
            }
            Err(e) => {
                let _ = self.book.stop(daemon.role);
                Err(e)
            }
        }
    }

    fn spawn(&self, daemon: &SyncDaemon) -> Result<Running, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let fabric = Arc::clone(&self.fabric);
        let thread = match daemon.role {
            SyncRole::Master => {
                let socket = master_socket(daemon)?;
                // What workers recorded for an earlier master is stale.
                for w in 0..fabric.workers() {
                    if let Some(q) = fabric.sync().outbox(w) {
                        while q.pop().is_some() {}
                    }
                }
                let (d, stop) = (daemon.clone(), Arc::clone(&stop));
                std::thread::Builder::new()
                    .name("rvs-sync-master".into())
                    .spawn(move || run_master(&socket, &d, &fabric, &stop))
            }
            SyncRole::Backup => {
                let socket = backup_socket(daemon)?;
                let (d, stop) = (daemon.clone(), Arc::clone(&stop));
                std::thread::Builder::new()
                    .name("rvs-sync-backup".into())
                    .spawn(move || run_backup(&socket, &d, &fabric, &stop))
            }
        }
        .map_err(|e| format!("cannot start the sync thread: {e}"))?;
        Ok(Running {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the daemon of `role` (the master sends what it holds first); ipvsadm's error
    /// if none runs.
    pub fn stop(&mut self, role: SyncRole) -> Result<(), String> {
        self.book.stop(role)?;
        match role {
            SyncRole::Master => self.master = None,
            SyncRole::Backup => self.backup = None,
        }
        log::info!("{role} sync daemon stopped");
        Ok(())
    }

    /// Whether a daemon of `role` runs.
    pub fn running(&self, role: SyncRole) -> bool {
        self.book.get(role).is_some()
    }

    /// The running daemons, master first.
    pub fn list(&self) -> Vec<SyncDaemon> {
        self.book.list()
    }
}

/// The MTU of `iface` in this network namespace.
fn interface_mtu(iface: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The index of `iface` in this network namespace.
fn interface_index(iface: &str) -> Result<u32, String> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| control::sync::NO_SUCH_DEVICE.to_owned())
}

fn socket(daemon: &SyncDaemon) -> Result<socket2::Socket, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let what = |e: std::io::Error| format!("sync socket on {}: {e}", daemon.interface);
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(what)?;
    interface_index(&daemon.interface)?;
    socket
        .bind_device(Some(daemon.interface.as_bytes()))
        .map_err(what)?;
    Ok(socket)
}

/// The master's socket: bound to the interface (multicast leaves by it), the daemon's TTL,
/// no loopback of its own messages.
fn master_socket(daemon: &SyncDaemon) -> Result<UdpSocket, String> {
    let what = |e: std::io::Error| format!("sync socket on {}: {e}", daemon.interface);
    let socket = socket(daemon)?;
    socket
        .set_multicast_ttl_v4(u32::from(daemon.ttl))
        .map_err(what)?;
    socket.set_multicast_loop_v4(false).map_err(what)?;
    Ok(socket.into())
}

/// The backup's socket: the group's port, the group joined on the interface.
fn backup_socket(daemon: &SyncDaemon) -> Result<UdpSocket, String> {
    let what = |e: std::io::Error| format!("sync socket on {}: {e}", daemon.interface);
    let socket = socket(daemon)?;
    socket.set_reuse_address(true).map_err(what)?;
    let bind = SocketAddrV4::new(daemon.group, daemon.port);
    socket.bind(&bind.into()).map_err(what)?;
    let index = interface_index(&daemon.interface)?;
    socket
        .join_multicast_v4_n(
            &daemon.group,
            &socket2::InterfaceIndexOrAddress::Index(index),
        )
        .map_err(what)?;
    socket.set_read_timeout(Some(RECV_TIMEOUT)).map_err(what)?;
    Ok(socket.into())
}

/// The master thread: packs what the workers recorded into messages and sends them.
fn run_master(socket: &UdpSocket, daemon: &SyncDaemon, fabric: &Fabric, stop: &AtomicBool) {
    // Room for the largest entry: a smaller `--sync-maxlen` would send nothing at all.
    let least = fastpath::sync::MESSAGE_HEADER_LEN + fastpath::sync::wire::MAX_V4_ENTRY_LEN;
    let maxlen = usize::from(daemon.maxlen.unwrap_or(1472)).clamp(least, MAX_DATAGRAM);
    let to = SocketAddrV4::new(daemon.group, daemon.port);
    let stats = fabric.sync_stats();
    let mut message = MessageBuilder::new(daemon.syncid, maxlen);
    let mut first: Option<Instant> = None;
    let send = |message: &mut MessageBuilder| {
        let conns = message.len() as u64;
        match socket.send_to(message.as_bytes(), to) {
            Ok(_) => {
                stats.sent_messages.fetch_add(1, Relaxed);
                stats.sent_conns.fetch_add(conns, Relaxed);
            }
            Err(e) => {
                log::debug!("sync: send to {to}: {e}");
                stats.send_errors.fetch_add(1, Relaxed);
            }
        }
        message.clear();
    };
    while !stop.load(Relaxed) {
        let mut got = false;
        for w in 0..fabric.workers() {
            let Some(ring) = fabric.sync().outbox(w) else {
                continue;
            };
            while let Some(conn) = ring.pop() {
                got = true;
                if message.push(&conn).is_err() {
                    send(&mut message);
                    // Any entry fits an empty message (`least` above).
                    let _ = message.push(&conn);
                }
                first.get_or_insert_with(Instant::now);
            }
        }
        if first.is_some_and(|t| t.elapsed() >= FLUSH_AFTER) && !message.is_empty() {
            send(&mut message);
            first = None;
        }
        if !got {
            std::thread::sleep(POLL);
        }
    }
    if !message.is_empty() {
        send(&mut message);
    }
}

/// The backup thread: receives messages and hands their connections to their workers.
fn run_backup(socket: &UdpSocket, daemon: &SyncDaemon, fabric: &Fabric, stop: &AtomicBool) {
    let stats = fabric.sync_stats();
    let workers = fabric.workers();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Relaxed) {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                log::warn!("sync: receive on {}: {e}", daemon.interface);
                std::thread::sleep(RECV_TIMEOUT);
                continue;
            }
        };
        let entries = match decode(buf.get(..n).unwrap_or_default(), daemon.syncid) {
            Ok(entries) => entries,
            Err(e) => {
                stats.errors.count(e.reason());
                continue;
            }
        };
        stats.received_messages.fetch_add(1, Relaxed);
        let mut last = None;
        for entry in entries {
            let conn = match entry {
                Ok(conn) => conn,
                Err(e) => {
                    stats.errors.count(e.reason());
                    continue;
                }
            };
            let w = if conn.flags & fastpath::sync::wire::CONN_F_TEMPLATE != 0 {
                last.unwrap_or_else(|| owner(conn.caddr, 0, workers))
            } else {
                owner(conn.caddr, conn.cport, workers)
            };
            last = Some(w);
            match fabric.sync().inbox(w).map(|q| q.push(conn)) {
                Some(Ok(())) => stats.received_conns.fetch_add(1, Relaxed),
                _ => stats.lost_in.fetch_add(1, Relaxed),
            };
        }
    }
}
