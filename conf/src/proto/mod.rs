//! The control protocol between `rvsadm` (or any client) and `rvsd`, spoken over the UNIX
//! stream socket of `[control] socket`.
//!
//! # Framing
//!
//! Every message is one frame: a 4-byte big-endian length, then that many bytes of JSON. A
//! request frame is `{"version": 1, "body": <Request>}`, a response frame
//! `{"version": 1, "body": <Response>}`. The server answers every request frame with exactly one
//! response frame, in order, and a client may send several requests over one connection.
//! Requests are limited to [`MAX_REQUEST`] bytes and responses to [`MAX_RESPONSE`]; a reader
//! rejects a larger length before reading the body.
//!
//! In a request, `"op"` must be the first member of the body object (as every encoder writes
//! it), and a batch holds at most [`MAX_BATCH`] changes and no batch: with these rules a
//! request decodes straight into its types, so a frame costs at most about twice its size to
//! read, whatever it holds.
//!
//! # Versioning
//!
//! [`VERSION`] changes whenever a message changes incompatibly. A server that receives another
//! version answers with [`Response::Error`] and keeps the connection; the envelope stays the
//! same across versions so that this error can always be read.
//!
//! # Semantics
//!
//! The requests are the operations of `ipvsadm` 1.31 (`-A -E -D -C -a -e -d -Z --set -L
//! --start-daemon --stop-daemon`) and DPVS's local-address commands (`-P -Q -G`), with
//! ipvsadm's defaults already applied by the client: a request says everything (`-E` and `-e` replace every attribute, as the kernel's
//! `IP_VS_SO_SET_EDIT*` do). Errors carry the message `ipvsadm` prints for the same failure.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::echo;
use crate::model::{Mode, Netmask, Proto, SyncDaemon, SyncRole, Timeouts, Tunnel};

mod decode;

pub use decode::MAX_BATCH;

/// Protocol version carried in every frame.
pub const VERSION: u32 = 1;

/// Largest request body: a restore (`-R`) of 10 000 services with 7 reals each fits even at
/// ipvsadm 1.26's longest spellings (some 80 000 lines), and with 5 reals each when every real
/// also has ipvsadm 1.31's 10-digit weight and a GUE tunnel; decoding a frame costs about its
/// size again.
pub const MAX_REQUEST: usize = 16 << 20;

/// Largest response body. Connection listings are paged ([`Request::ListConns`]) so that no
/// response approaches it; service listings of thousands of services with hundreds of reals
/// each do.
pub const MAX_RESPONSE: usize = 256 << 20;

/// IPVS version `ipvsadm -L` reports in its first line (`IP_VS_VERSION_CODE` 1.2.1).
pub const IPVS_VERSION: u32 = 0x01_02_01;

/// A virtual service: what `-t`/`-u` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    /// `-t` (TCP) or `-u` (UDP).
    pub proto: Proto,
    /// Virtual address and port; port 0 is a persistent all-ports service.
    pub vip: SocketAddr,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.proto, self.vip)
    }
}

/// `-A`/`-E`: everything ipvsadm sends for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// The service.
    pub key: ServiceKey,
    /// `-s`, a scheduler name (ipvsadm's default `wlc` already applied).
    pub sched: String,
    /// `-p` seconds; 0 = not persistent.
    pub persistence: u32,
    /// `-M`, the persistence granularity (default 255.255.255.255, or 128 for IPv6), of
    /// the vip's family.
    pub netmask: Netmask,
}

/// `-a`/`-e`: everything ipvsadm sends for a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSpec {
    /// `-r`, with ipvsadm's port rules applied (no port = the vip port; `-g`/`-i`: the vip port).
    pub addr: SocketAddr,
    /// `-g`/`-i`/`-m`/`-b`.
    pub mode: Mode,
    /// `-w`, 0..=2147483647 (ipvsadm 1.31: a C `int`).
    pub weight: u32,
    /// `-x`, 0 = unlimited.
    pub u_threshold: u32,
    /// `-y`, 0 = derived from `-x`.
    pub l_threshold: u32,
    /// `--tun-type`, `--tun-port`, `--tun-*csum` (ipip when absent, as ipvsadm sends 0s;
    /// left out when it is ipip, which keeps a `-R` of non-tunnel reals as small as before).
    #[serde(default, skip_serializing_if = "Tunnel::is_ipip")]
    pub tunnel: Tunnel,
}

/// The three timeouts of `ipvsadm --set tcp tcpfin udp`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutValues {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl From<Timeouts> for TimeoutValues {
    fn from(t: Timeouts) -> TimeoutValues {
        TimeoutValues {
            tcp: t.tcp,
            tcp_fin: t.tcp_fin,
            udp: t.udp,
        }
    }
}

/// A request from a client. It is decoded by hand ([`decode`]) so that a hostile body never
/// costs more than a small multiple of its size; `"op"` must come first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Version and connection table size, for `IP Virtual Server version 1.2.1 (size=N)`.
    Info,
    /// `-A`. Fails if the service exists.
    AddService {
        /// The new service.
        service: ServiceSpec,
    },
    /// `-E`: replaces scheduler, persistence and netmask.
    EditService {
        /// The service and its new attributes.
        service: ServiceSpec,
    },
    /// `-D`.
    DelService {
        /// The service to delete.
        service: ServiceKey,
    },
    /// `-C`: deletes every service (timeouts stay).
    Clear,
    /// `-a`: the new real server goes to the head of the service's list, as in the kernel.
    AddDest {
        /// Its service.
        service: ServiceKey,
        /// The new real server.
        dest: DestSpec,
    },
    /// `-e`: replaces every attribute of the real server `dest.addr`; it keeps its place.
    EditDest {
        /// Its service.
        service: ServiceKey,
        /// The real server and its new attributes.
        dest: DestSpec,
    },
    /// `-d`.
    DelDest {
        /// Its service.
        service: ServiceKey,
        /// The real server to delete.
        addr: SocketAddr,
    },
    /// `-Z`: zero the counters of one service (and its reals) or of everything.
    Zero {
        /// `None` = every service.
        service: Option<ServiceKey>,
    },
    /// `--set tcp tcpfin udp`; a 0 leaves that timeout unchanged.
    SetTimeouts {
        /// The new values.
        timeouts: TimeoutValues,
    },
    /// `-L --timeout`.
    GetTimeouts,
    /// `-L` and `-S`: services with their reals, counters and rates.
    ListServices {
        /// `None` = every service; a missing service is an error.
        service: Option<ServiceKey>,
    },
    /// `-L -c`: one page of connection entries. The server chooses the page size (a few
    /// thousand entries keep a page far below [`MAX_RESPONSE`]) and the meaning of the cursor;
    /// a `next` cursor is always greater than the one it answers.
    ListConns {
        /// 0 for the first page, then the `next` of the previous page.
        cursor: u64,
    },
    /// `-P`: add a FULLNAT local address to a service.
    AddLaddr {
        /// The service.
        service: ServiceKey,
        /// The local address.
        addr: IpAddr,
    },
    /// `-Q`: remove a local address.
    DelLaddr {
        /// The service.
        service: ServiceKey,
        /// The local address.
        addr: IpAddr,
    },
    /// `-G`: local addresses with their usage.
    GetLaddrs {
        /// `None` = every service.
        service: Option<ServiceKey>,
    },
    /// `--drops`: per-worker packet counters and drops by reason.
    GetWorkers,
    /// `-R`: changes applied all or nothing, in order. Only changes may be batched (no
    /// queries, no nested batch); the error of a failed batch names the index of the request
    /// that failed.
    Batch {
        /// The changes.
        requests: Vec<Request>,
    },
    /// From the health checker (`rvscheck`): the state of one real server. Not a change of the
    /// configuration: it sets the health overlay (a down real leaves scheduling, or gets
    /// weight 0 under `inhibit_on_failure`), which reloads and `-e` never undo.
    SetHealth {
        /// The real server's health.
        report: HealthReport,
    },
    /// `-L --health`: every checked real server's state.
    GetHealth,
    /// `--start-daemon`: starts the sync daemon of `daemon.role`; fails with ipvsadm's
    /// "Daemon has already run" if that role runs. Not a change of the configuration: the
    /// daemons are runtime state that `-S` does not save, so a `-R` batch never needs them
    /// (rvsadm refuses them there) and the model never sees them. A client never sends it
    /// twice ([`Request::is_idempotent`]).
    StartDaemon {
        /// The daemon, every ipvsadm default applied; `maxlen` `None` = from the MTU.
        daemon: SyncDaemon,
    },
    /// `--stop-daemon`: stops the daemon of `role`; fails with "No daemon is running" if it
    /// does not run.
    StopDaemon {
        /// Master or backup.
        role: SyncRole,
    },
    /// `-L --daemon`: the running daemons.
    GetDaemons,
}

/// The checker's verdict on one real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The service.
    pub service: ServiceKey,
    /// The real server.
    pub real: SocketAddr,
    /// Whether every check of the real passes.
    pub up: bool,
    /// MISC_CHECK `dynamic` weight; `None` = the configured weight.
    pub weight: Option<u32>,
    /// Each check's own state.
    pub checks: Vec<CheckState>,
}

/// One check of a real server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// keepalived's checker name and target, `HTTP_GET 10.0.0.11:80`.
    pub check: String,
    /// Whether it passes.
    pub up: bool,
    /// The last probe's result, `timeout`, `status 503`, `ok`.
    pub last: String,
    /// Unix time (seconds) of its last change of state.
    pub since: u64,
}

/// One real server's health as rvsd applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealHealthEntry {
    /// The real server.
    pub real: SocketAddr,
    /// Whether it is up (a real without checks is always up).
    pub up: bool,
    /// Its weight in scheduling now; `None` = out of the pool.
    pub live_weight: Option<u32>,
    /// Unix time (seconds) of its last change of state; 0 = never changed.
    pub since: u64,
    /// Up/down changes since rvsd started.
    pub transitions: u64,
    /// Its checks, as the checker last reported them (empty until it reports).
    pub checks: Vec<CheckState>,
}

/// One service's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealthEntry {
    /// The service.
    pub key: ServiceKey,
    /// Whether quorum is held.
    pub quorum: bool,
    /// Whether the sorry server takes the traffic.
    pub sorry: bool,
    /// Quorum changes since rvsd started.
    pub quorum_transitions: u64,
    /// The real servers, in kernel order.
    pub reals: Vec<RealHealthEntry>,
}

impl Request {
    /// Whether the request changes the configuration or the counters (and so may be batched).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Request::AddService { .. }
                | Request::EditService { .. }
                | Request::DelService { .. }
                | Request::Clear
                | Request::AddDest { .. }
                | Request::EditDest { .. }
                | Request::DelDest { .. }
                | Request::Zero { .. }
                | Request::SetTimeouts { .. }
                | Request::AddLaddr { .. }
                | Request::DelLaddr { .. }
        )
    }

    /// Whether sending the request again after an answer was lost is harmless: true for
    /// queries and for [`Request::SetHealth`] (a state, not a step), false for changes,
    /// batches and daemon starts and stops, which a second time would fail or repeat.
    pub fn is_idempotent(&self) -> bool {
        !self.is_change()
            && !matches!(
                self,
                Request::Batch { .. } | Request::StartDaemon { .. } | Request::StopDaemon { .. }
            )
    }
}

/// Totals since the service or real server was added (or last zeroed), as IPVS counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Connections scheduled (templates excluded).
    pub conns: u64,
    /// Packets client → balancer.
    pub inpkts: u64,
    /// Packets real server → balancer (0 for DR and TUN).
    pub outpkts: u64,
    /// IP bytes client → balancer.
    pub inbytes: u64,
    /// IP bytes real server → balancer.
    pub outbytes: u64,
}

/// Smoothed rates per second, as `ip_vs_est.c` estimates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// A real server as `-L` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestEntry {
    /// Address and port.
    pub addr: SocketAddr,
    /// Forwarding method.
    pub mode: Mode,
    /// Weight.
    pub weight: u32,
    /// `-x`.
    pub u_threshold: u32,
    /// `-y`.
    pub l_threshold: u32,
    /// The tunnel of a `Tunnel` real (`--tun-info`, `-S`).
    #[serde(default, skip_serializing_if = "Tunnel::is_ipip")]
    pub tunnel: Tunnel,
    /// ActiveConn: connections in ESTABLISHED.
    pub active_conns: u32,
    /// InActConn: connections in any other state.
    pub inact_conns: u32,
    /// PersistConn: persistence templates.
    pub persist_conns: u32,
    /// Counters.
    pub counters: Counters,
    /// Rates.
    pub rates: Rates,
}

/// A service as `-L` and `-S` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEntry {
    /// The service.
    pub key: ServiceKey,
    /// Scheduler name.
    pub sched: String,
    /// Persistence timeout in seconds; 0 = not persistent.
    pub persistence: u32,
    /// Persistence netmask.
    pub netmask: Netmask,
    /// FULLNAT local addresses, in the order they were added.
    pub laddrs: Vec<IpAddr>,
    /// Counters.
    pub counters: Counters,
    /// Rates.
    pub rates: Rates,
    /// Real servers in kernel order: the most recently added first.
    pub dests: Vec<DestEntry>,
}

/// One connection (or persistence template) as `-L -c` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// Protocol.
    pub proto: Proto,
    /// Seconds until it expires.
    pub expire: u32,
    /// State name as the kernel spells it (`ESTABLISHED`, `SYN_RECV`, `UDP`, `NONE`, ...).
    pub state: String,
    /// Client address and port (port 0 for a template).
    pub client: SocketAddr,
    /// Virtual address and port.
    pub virt: SocketAddr,
    /// Real server address and port.
    pub dest: SocketAddr,
}

/// One local address of a service, as `-G` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaddrEntry {
    /// The local address.
    pub addr: IpAddr,
    /// Times a local port was found in use when a connection picked one.
    pub conflicts: u64,
    /// Connections currently using the address.
    pub conns: u64,
}

/// The local addresses of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaddrList {
    /// The service.
    pub key: ServiceKey,
    /// Its local addresses.
    pub laddrs: Vec<LaddrEntry>,
}

/// Drops of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    /// Reason name.
    pub reason: String,
    /// Packets dropped.
    pub count: u64,
}

/// The packet counters of one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// The worker's lcore.
    pub lcore: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Drops by reason, every reason in a fixed order (zeros included).
    pub drops: Vec<DropCount>,
    /// Frames handed to the kernel twins, by punt reason (zeros included; empty from an
    /// rvsd without the host path).
    #[serde(default)]
    pub punted: Vec<DropCount>,
    /// Frames for the kernel dropped (rate limit, full ring), by punt reason.
    #[serde(default)]
    pub punt_dropped: Vec<DropCount>,
}

/// What the exception thread moved through one port's kernel twin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinStats {
    /// The port (`dpdk<N>`).
    pub port: String,
    /// The twin's interface name.
    pub iface: String,
    /// Punted frames the twin took.
    pub to_kernel: u64,
    /// Punted frames the twin refused.
    pub to_kernel_dropped: u64,
    /// Frames the kernel sent that left on the port.
    pub kernel_tx: u64,
    /// Frames the kernel sent that the port refused.
    pub kernel_tx_dropped: u64,
}

/// An address the fast path owns (answers ARP for, serves), for `--drops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedAddr {
    /// The port (`dpdk<N>`).
    pub port: String,
    /// The address with its prefix length, `10.0.0.100/32`.
    pub addr: String,
    /// `static` (`[[port]] addrs`) or `kernel` (held by the port's twin only).
    pub origin: String,
}

/// Version information for the first line of `-L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// IPVS version code, [`IPVS_VERSION`].
    pub version: u32,
    /// Connection table size.
    pub conn_table_size: u32,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// A change was applied.
    Done,
    /// The request failed and changed nothing.
    Error {
        /// What `ipvsadm` prints for the failure, or a description of a protocol error.
        message: String,
        /// For a failed [`Request::Batch`], the index of the request that failed.
        index: Option<usize>,
    },
    /// Answer to [`Request::Info`].
    Info {
        /// The information.
        info: Info,
    },
    /// Answer to [`Request::ListServices`].
    Services {
        /// The services, in the order they were added.
        services: Vec<ServiceEntry>,
    },
    /// Answer to [`Request::GetTimeouts`].
    Timeouts {
        /// Current values.
        timeouts: TimeoutValues,
    },
    /// Answer to [`Request::ListConns`].
    Conns {
        /// One page of entries.
        conns: Vec<ConnEntry>,
        /// Cursor of the next page; `None` on the last page.
        next: Option<u64>,
    },
    /// Answer to [`Request::GetLaddrs`].
    Laddrs {
        /// Per service, in the order the services were added.
        services: Vec<LaddrList>,
    },
    /// Answer to [`Request::GetWorkers`].
    Workers {
        /// One entry per worker.
        workers: Vec<WorkerStats>,
        /// One entry per port with a kernel twin.
        #[serde(default)]
        twins: Vec<TwinStats>,
        /// The addresses the fast path owns, with where each comes from.
        #[serde(default)]
        owned: Vec<OwnedAddr>,
        /// Connection sync counters by name (as `--stats-json`'s `sync`), while a sync daemon
        /// runs or has run; empty otherwise.
        #[serde(default)]
        sync: std::collections::BTreeMap<String, u64>,
    },
    /// Answer to [`Request::GetHealth`].
    Health {
        /// Every service, in the order they were added.
        services: Vec<ServiceHealthEntry>,
    },
    /// Answer to [`Request::GetDaemons`].
    Daemons {
        /// The running daemons, the master first (as the kernel lists them), each with the
        /// `maxlen` it runs with.
        daemons: Vec<SyncDaemon>,
    },
}

impl Response {
    /// An error with `message` and no batch index.
    pub fn error(message: impl Into<String>) -> Response {
        Response::Error {
            message: message.into(),
            index: None,
        }
    }
}

// conf's enums derive only Deserialize (the config file never needs to be written); the
// protocol writes them with the spelling the file and Deserialize use.
impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    Closed,
    /// Reading failed, including a peer that closed or stalled in the middle of a frame.
    Io(io::Error),
    /// The length prefix is above the limit (the body was not read).
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a message of this protocol.
    Malformed(String),
    /// The body is a message of another protocol version.
    Version(u32),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max} bytes")
            }
            FrameError::Malformed(e) => write!(f, "malformed message: {e}"),
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks version {VERSION})"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    version: u32,
    body: &'a T,
}

/// The body stays text until the version is known: borrowed from the frame, never copied.
#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    version: u32,
    #[serde(borrow)]
    body: &'a serde_json::value::RawValue,
}

/// `body` as one frame: length prefix and JSON envelope.
pub fn encode_frame<T: Serialize>(body: &T) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(&EnvelopeOut {
        version: VERSION,
        body,
    })
    .map_err(io::Error::other)?;
    let len = u32::try_from(json.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    let mut frame = Vec::with_capacity(4 + json.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// Writes `body` as one frame, in one write so that it is never interleaved with another
/// writer's bytes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, body: &T) -> io::Result<()> {
    w.write_all(&encode_frame(body)?)?;
    w.flush()
}

/// What [`read_frame`] reserves for a body before its bytes arrive.
const FRAME_CHUNK: usize = 64 * 1024;

/// Reads one frame of at most `max` body bytes. A frame that is too large is rejected from its
/// length prefix alone; the stream is then out of step and must be closed.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R, max: usize) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => {
                return Err(FrameError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame header",
                )))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // A client that announces a large frame holds no memory for it until its bytes come: the
    // first chunk is read into a small buffer, which then grows once, to the exact length.
    let mut body = Vec::with_capacity(len.min(FRAME_CHUNK));
    let mut rest = r.take(len as u64);
    (&mut rest)
        .take(FRAME_CHUNK as u64)
        .read_to_end(&mut body)
        .map_err(FrameError::Io)?;
    if body.len() < len && body.len() == FRAME_CHUNK {
        body.reserve_exact(len - body.len());
        rest.read_to_end(&mut body).map_err(FrameError::Io)?;
    }
    if body.len() < len {
        return Err(FrameError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a frame",
        )));
    }
    let malformed =
        |e: serde_json::Error| FrameError::Malformed(echo::shorten_quoted(&e.to_string()));
    let envelope: EnvelopeIn = serde_json::from_slice(&body).map_err(malformed)?;
    if envelope.version != VERSION {
        return Err(FrameError::Version(envelope.version));
    }
    serde_json::from_str(envelope.body.get()).map_err(malformed)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::model::{TunCsum, TunKind};

    fn key() -> ServiceKey {
        ServiceKey {
            proto: Proto::Tcp,
            vip: "10.0.0.100:80".parse().unwrap(),
        }
    }

    fn round_trip<T: Serialize + DeserializeOwned>(v: &T) -> T {
        let mut buf = Vec::new();
        write_frame(&mut buf, v).unwrap();
        read_frame(&mut buf.as_slice(), MAX_RESPONSE).unwrap()
    }

    #[test]
    fn test_request_round_trip() {
        let requests = vec![
            Request::Info,
            Request::AddService {
                service: ServiceSpec {
                    key: key(),
                    sched: "wrr".into(),
                    persistence: 360,
                    netmask: Netmask::V4([255, 255, 255, 0].into()),
                },
            },
            Request::AddDest {
                service: key(),
                dest: DestSpec {
                    addr: "192.168.1.1:8080".parse().unwrap(),
                    mode: Mode::FullNat,
                    weight: 0,
                    u_threshold: 10,
                    l_threshold: 5,
                    tunnel: Default::default(),
                },
            },
            Request::Zero { service: None },
            Request::Batch {
                requests: vec![Request::Clear, Request::DelService { service: key() }],
            },
            Request::StartDaemon {
                daemon: SyncDaemon {
                    syncid: 7,
                    maxlen: Some(9000),
                    ..SyncDaemon::new(SyncRole::Backup, "rvs1")
                },
            },
            Request::StartDaemon {
                daemon: SyncDaemon::new(SyncRole::Master, "rvs1"),
            },
            Request::StopDaemon {
                role: SyncRole::Master,
            },
            Request::GetDaemons,
        ];
        for r in &requests {
            assert_eq!(&round_trip(r), r);
        }
    }

    /// IPv6 services, reals, local addresses and connections travel as ipvsadm writes them
    /// (`[2001:db8::100]:80`), an IPv6 netmask as its prefix length.
    #[test]
    fn test_ipv6_round_trip_and_wire_format() {
        let key6 = ServiceKey {
            proto: Proto::Tcp,
            vip: "[2001:db8::100]:80".parse().unwrap(),
        };
        let add = Request::AddService {
            service: ServiceSpec {
                key: key6,
                sched: "wrr".into(),
                persistence: 60,
                netmask: Netmask::V6(64),
            },
        };
        assert_eq!(
            String::from_utf8(encode_frame(&add).unwrap()[4..].to_vec()).unwrap(),
            r#"{"version":1,"body":{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[2001:db8::100]:80"},"sched":"wrr","persistence":60,"netmask":64}}}"#
        );
        let dest = |addr: &str| DestSpec {
            addr: addr.parse().unwrap(),
            mode: Mode::FullNat,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        };
        let requests = vec![
            add,
            Request::AddDest {
                service: key6,
                dest: dest("[2001:db8:1::11]:8080"),
            },
            // NAT64: an IPv4 real and local address behind an IPv6 vip.
            Request::AddDest {
                service: key6,
                dest: dest("10.0.1.11:8080"),
            },
            Request::AddLaddr {
                service: key6,
                addr: "10.0.0.1".parse().unwrap(),
            },
            Request::DelLaddr {
                service: key6,
                addr: "2001:db8::1".parse().unwrap(),
            },
            Request::DelDest {
                service: key6,
                addr: "[2001:db8:1::11]:0".parse().unwrap(),
            },
        ];
        for r in &requests {
            assert_eq!(&round_trip(r), r);
        }
        let listed = Response::Services {
            services: vec![ServiceEntry {
                key: key6,
                sched: "wrr".into(),
                persistence: 60,
                netmask: Netmask::V6(64),
                laddrs: vec!["2001:db8::1".parse().unwrap()],
                counters: Counters::default(),
                rates: Rates::default(),
                dests: vec![],
            }],
        };
        assert_eq!(round_trip(&listed), listed);
        let conns = Response::Conns {
            conns: vec![ConnEntry {
                proto: Proto::Tcp,
                expire: 899,
                state: "ESTABLISHED".into(),
                client: "[2001:db8:ffff::7]:40000".parse().unwrap(),
                virt: "[2001:db8::100]:80".parse().unwrap(),
                dest: "10.0.1.11:8080".parse().unwrap(),
            }],
            next: None,
        };
        assert_eq!(round_trip(&conns), conns);
    }

    /// Malformed IPv6 values are decode errors, never panics or silent truncation.
    #[test]
    fn test_ipv6_malformed() {
        let read = |body: &str| {
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend_from_slice(body.as_bytes());
            read_frame::<_, Request>(&mut &f[..], MAX_REQUEST)
        };
        for body in [
            r#"{"op":"del_service","service":{"proto":"tcp","vip":"[2001:db8::100]"}}"#,
            r#"{"op":"del_service","service":{"proto":"tcp","vip":"2001:db8::100:80"}}"#,
            r#"{"op":"del_service","service":{"proto":"tcp","vip":"[2001:db8::100]:65536"}}"#,
            r#"{"op":"del_service","service":{"proto":"tcp","vip":"[2001:db8:::100]:80"}}"#,
            r#"{"op":"add_laddr","service":{"proto":"tcp","vip":"[::1]:80"},"addr":"2001:db8::1:"}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":0}}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":129}}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":-1}}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":"64"}}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":64.5}}"#,
            r#"{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[::1]:80"},"sched":"rr","persistence":0,"netmask":null}}"#,
            r#"{"op":"del_service","service":{"proto":"tcp","vip":"[fe80::1%2]:80"}}"#,
            r#"{"op":"del_dest","service":{"proto":"tcp","vip":"[2001:db8::100]:80"},"addr":"[fe80::1%eth0]:80"}"#,
            r#"{"op":"batch","requests":[{"op":"clear"},{"op":"del_dest","service":{"proto":"tcp","vip":"[2001:db8::100]:80"},"addr":"[fe80::1%7]:80"}]}"#,
        ] {
            let frame = format!(r#"{{"version":1,"body":{body}}}"#);
            assert!(
                matches!(read(&frame), Err(FrameError::Malformed(_))),
                "{body}"
            );
        }
        let zoned = r#"{"version":1,"body":{"op":"del_service","service":{"proto":"tcp","vip":"[fe80::1%2]:80"}}}"#;
        match read(zoned) {
            Err(FrameError::Malformed(m)) => assert!(
                m.starts_with(
                    "[fe80::1%2]:80 has an IPv6 zone, which no service or real server address has"
                ),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let frame = r#"{"version":1,"body":{"op":"add_service","service":{"key":{"proto":"tcp","vip":"[2001:db8::100]:0"},"sched":"rr","persistence":1,"netmask":128}}}"#;
        assert_eq!(
            read(frame).unwrap(),
            Request::AddService {
                service: ServiceSpec {
                    key: ServiceKey {
                        proto: Proto::Tcp,
                        vip: "[2001:db8::100]:0".parse().unwrap(),
                    },
                    sched: "rr".into(),
                    persistence: 1,
                    netmask: Netmask::V6(128),
                },
            }
        );
    }

    #[test]
    fn test_daemon_wire_format() {
        fn json<T: Serialize>(body: &T) -> String {
            let mut buf = Vec::new();
            write_frame(&mut buf, body).unwrap();
            String::from_utf8(buf[4..].to_vec()).unwrap()
        }
        let start = Request::StartDaemon {
            daemon: SyncDaemon::new(SyncRole::Master, "rvs1"),
        };
        assert_eq!(
            json(&start),
            r#"{"version":1,"body":{"op":"start_daemon","daemon":{"role":"master","interface":"rvs1","syncid":0,"maxlen":null,"group":"224.0.0.81","port":8848,"ttl":1}}}"#
        );
        let stop = Request::StopDaemon {
            role: SyncRole::Backup,
        };
        assert_eq!(
            json(&stop),
            r#"{"version":1,"body":{"op":"stop_daemon","role":"backup"}}"#
        );
        let listed = Response::Daemons {
            daemons: vec![SyncDaemon {
                maxlen: Some(1472),
                ..SyncDaemon::new(SyncRole::Master, "rvs1")
            }],
        };
        assert_eq!(
            json(&listed),
            r#"{"version":1,"body":{"kind":"daemons","daemons":[{"role":"master","interface":"rvs1","syncid":0,"maxlen":1472,"group":"224.0.0.81","port":8848,"ttl":1}]}}"#
        );
        assert_eq!(round_trip(&listed), listed);
    }

    #[test]
    fn test_wire_format() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::DelService { service: key() }).unwrap();
        let json = br#"{"version":1,"body":{"op":"del_service","service":{"proto":"tcp","vip":"10.0.0.100:80"}}}"#;
        assert_eq!(&buf[..4], &(json.len() as u32).to_be_bytes());
        assert_eq!(&buf[4..], json);
        let mut buf = Vec::new();
        write_frame(&mut buf, &Response::error("No such service")).unwrap();
        assert_eq!(
            &buf[4..],
            br#"{"version":1,"body":{"kind":"error","message":"No such service","index":null}}"#
        );
    }

    #[test]
    fn test_read_errors() {
        let frame = |body: &[u8]| {
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend_from_slice(body);
            f
        };
        let read = |bytes: &[u8]| read_frame::<_, Request>(&mut &bytes[..], 64);
        assert!(matches!(read(b""), Err(FrameError::Closed)));
        assert!(matches!(read(&[0, 0]), Err(FrameError::Io(_))));
        assert!(matches!(read(&[0, 0, 0, 9, b'{']), Err(FrameError::Io(_))));
        assert!(matches!(
            read(&[0, 0, 0, 65]),
            Err(FrameError::TooLarge { len: 65, max: 64 })
        ));
        assert!(matches!(
            read(&frame(b"{nope")),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            read(&frame(br#"{"version":1,"body":{"op":"fly"}}"#)),
            Err(FrameError::Malformed(_))
        ));
        match read(&frame(br#"{"version":2,"body":{"op":"fly"}}"#)) {
            Err(e @ FrameError::Version(2)) => assert_eq!(
                e.to_string(),
                "protocol version 2 is not supported (this side speaks version 1)"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read(&frame(br#"{"version":1,"body":{"op":"info"}}"#)).unwrap(),
            Request::Info
        );
    }

    /// A `-R` batch of `services` services with `reals` reals each, with the longest
    /// addresses and numbers.
    fn restore(services: u16, reals: u16, weight: u32, tunnel: Tunnel) -> Request {
        let mut requests = Vec::new();
        for s in 0..services {
            let key = ServiceKey {
                proto: Proto::Udp,
                vip: SocketAddr::new([100, 100, 100, 100].into(), 65535 - s),
            };
            requests.push(Request::AddService {
                service: ServiceSpec {
                    key,
                    sched: "lblcr".into(),
                    persistence: 2_678_400,
                    netmask: Netmask::V4([255, 255, 255, 128].into()),
                },
            });
            for r in 0..reals {
                requests.push(Request::AddDest {
                    service: key,
                    dest: DestSpec {
                        addr: SocketAddr::new([200, 200, 200, 200].into(), 65535 - r),
                        mode: Mode::FullNat,
                        weight,
                        u_threshold: 2_147_483_647,
                        l_threshold: 2_147_483_647,
                        tunnel,
                    },
                });
            }
        }
        Request::Batch { requests }
    }

    #[test]
    fn test_restore_of_10k_services_fits() {
        let gue = Tunnel {
            kind: TunKind::Gue,
            port: 65535,
            csum: TunCsum::Remcsum,
        };
        for (reals, weight, tunnel) in [(7, 65535, Tunnel::default()), (5, i32::MAX as u32, gue)] {
            let batch = restore(10_000, reals, weight, tunnel);
            let frame = encode_frame(&batch).unwrap();
            assert!(frame.len() - 4 <= MAX_REQUEST, "{}", frame.len());
            assert_eq!(
                read_frame::<_, Request>(&mut &frame[..], MAX_REQUEST).unwrap(),
                batch
            );
            // One more real each and the longest spellings no longer fit.
            let more = restore(10_000, reals + 1, weight, tunnel);
            assert!(encode_frame(&more).unwrap().len() - 4 > MAX_REQUEST);
        }
    }

    #[test]
    fn test_is_change() {
        assert!(Request::Clear.is_change());
        assert!(Request::Zero { service: None }.is_change());
        assert!(!Request::Info.is_change());
        assert!(!Request::ListConns { cursor: 0 }.is_change());
        assert!(!Request::Batch { requests: vec![] }.is_change());
        // Daemons are runtime state outside the configuration (-S does not save them): never
        // batched.
        let start = Request::StartDaemon {
            daemon: SyncDaemon::new(SyncRole::Master, "rvs1"),
        };
        let stop = Request::StopDaemon {
            role: SyncRole::Master,
        };
        assert!(!start.is_change());
        assert!(!stop.is_change());
        assert!(!Request::GetDaemons.is_change());
    }

    #[test]
    fn test_is_idempotent() {
        assert!(Request::Info.is_idempotent());
        assert!(Request::GetDaemons.is_idempotent());
        assert!(Request::GetHealth.is_idempotent());
        assert!(!Request::Clear.is_idempotent());
        assert!(!Request::Batch { requests: vec![] }.is_idempotent());
        assert!(!Request::StartDaemon {
            daemon: SyncDaemon::new(SyncRole::Backup, "rvs1"),
        }
        .is_idempotent());
        assert!(!Request::StopDaemon {
            role: SyncRole::Backup
        }
        .is_idempotent());
    }
}
