//! The Prometheus text endpoint of `[control] prometheus`: `GET /metrics` answers the counters
//! `rvsadm --drops` and `rvsadm -L --stats` show, in the text exposition format 0.0.4.
//!
//! The values come from where the control socket reads them: the per-worker blocks the
//! workers publish between bursts ([`SharedCounters`]) and the per-service and per-real
//! [`crate::service::Traffic`] totals and connection counts of the published snapshot. A
//! scrape never touches the workers. Counters are the raw totals: `rvsadm -Z` only records a
//! baseline for listings, so the counters here never go backwards (a real server removed and
//! added again starts from zero, as in IPVS, which Prometheus treats as a counter reset).
//!
//! Metrics (every counter ends in `_total`):
//! - per worker, labels `worker` (index) and `lcore`: `rvs_worker_{rx,tx}_{packets,bytes}_total`,
//!   `rvs_worker_handed_over_total`, and `rvs_worker_drops_total` with a `reason` label
//!   (every [`DropReason`], zeros included);
//! - per service, labels `proto` and `vip`: `rvs_service_{conns,inpkts,outpkts,inbytes,
//!   outbytes}_total`;
//! - per real server, labels `proto`, `vip` and `real`: the same five as
//!   `rvs_real_*_total`, and the gauges `rvs_real_{activeconns,inactconns,persistconns}`.
//!
//! Label values are addresses, protocol names and drop reason names, none of which contains a
//! character the format would need escaped.
//!
//! The HTTP side is deliberately small: one thread accepts and handles one connection at a
//! time, with a deadline for the whole request head and one for the whole response, so a
//! client that stalls holds the endpoint for at most [`IO_TIMEOUT`] each way. Every answer
//! closes the connection. `GET /metrics` (any query string) is 200; another method on
//! `/metrics` is 405; another path is 404; a request line or header that is not HTTP/1.x, or
//! a head above [`MAX_HEAD`] bytes, is 400.

use crate::service::{Service, TrafficTotals};
use crate::stats::{Counters, SharedCounters};
use crate::verdict::DropReason;
use crate::worker::Fabric;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Time a client has to send its whole request head, and to take the whole response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8192;
/// How long a closing connection is drained of what the client still sends, so that closing
/// with unread bytes does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_millis(200);

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the metrics come from.
struct Sources {
    fabric: Arc<Fabric>,
    counters: Arc<Vec<SharedCounters>>,
    lcores: Vec<u32>,
}

impl Sources {
    fn render(&self) -> String {
        let workers: Vec<Counters> = self.counters.iter().map(SharedCounters::read).collect();
        render(&self.lcores, &workers, &self.fabric.snapshot().services)
    }
}

/// A running endpoint; stops on [`Endpoint::stop`] or drop.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Starts the endpoint of `config` (`None` when `[control] prometheus` is not set), serving
    /// the counters of `fabric`'s snapshots and of the workers' `counters`.
    pub fn start(
        config: &conf::Config,
        fabric: Arc<Fabric>,
        counters: Arc<Vec<SharedCounters>>,
    ) -> Result<Option<Endpoint>, String> {
        let Some(addr) = config.control.prometheus else {
            return Ok(None);
        };
        let failed = |e: io::Error| format!("prometheus endpoint {addr}: {e}");
        let listener = TcpListener::bind(addr).map_err(failed)?;
        let addr = listener.local_addr().map_err(failed)?;
        let sources = Sources {
            fabric,
            counters,
            lcores: config.dataplane.workers.clone(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("rvs-prometheus".into())
                .spawn(move || accept_loop(&listener, &sources, &stop))
                .map_err(failed)?
        };
        log::info!("prometheus endpoint http://{addr}/metrics");
        Ok(Some(Endpoint {
            addr,
            stop,
            accept: Some(accept),
        }))
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; a request being answered finishes first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // accept() blocks; a connection of our own wakes it to see the flag.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        if TcpStream::connect_timeout(&wake, IO_TIMEOUT).is_ok() {
            let _ = accept.join();
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, sources: &Sources, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => serve(&stream, sources),
            // Out of descriptors or similar: let the system catch up.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Answers one connection.
fn serve(stream: &TcpStream, sources: &Sources) {
    let route = match read_head(stream, Instant::now() + IO_TIMEOUT) {
        Ok(route) => route,
        // Closed before a request, or stalled: nothing to answer.
        Err(_) => return,
    };
    let response = match route {
        Route::Metrics => response("200 OK", CONTENT_TYPE, "", &sources.render()),
        Route::NotFound => response("404 Not Found", "text/plain", "", "not found\n"),
        Route::MethodNotAllowed => response(
            "405 Method Not Allowed",
            "text/plain",
            "Allow: GET\r\n",
            "only GET is supported\n",
        ),
        Route::BadRequest => response("400 Bad Request", "text/plain", "", "bad request\n"),
    };
    if write_all(stream, response.as_bytes(), Instant::now() + IO_TIMEOUT).is_ok() {
        linger(stream);
    }
}

fn response(status: &str, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads the request head and routes it. A bad request line is answered as soon as it is
/// complete, without waiting for the headers.
fn read_head(stream: &TcpStream, deadline: Instant) -> io::Result<Route> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(route) = route(&head) {
            return Ok(route);
        }
        if head.len() > MAX_HEAD {
            return Ok(Route::BadRequest);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = match (&mut &*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match chunk.get(..n) {
            // The client stopped sending in the middle of a request: it cannot be valid.
            Some([]) | None if !head.is_empty() => return Ok(Route::BadRequest),
            Some([]) | None => return Err(io::ErrorKind::UnexpectedEof.into()),
            Some(bytes) => head.extend_from_slice(bytes),
        }
    }
}

/// Routes a request head received so far: `None` while it is incomplete and its request line
/// (if complete) valid.
fn route(head: &[u8]) -> Option<Route> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = head.get(..line_end)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some((method, path)) = request_line(line) else {
        return Some(Route::BadRequest);
    };
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))?;
    let headers = head.get(line_end + 1..end)?;
    let valid = headers
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .all(header_line);
    Some(if !valid {
        Route::BadRequest
    } else if path != b"/metrics" {
        Route::NotFound
    } else if method != b"GET" {
        Route::MethodNotAllowed
    } else {
        Route::Metrics
    })
}

/// `METHOD SP request-target SP HTTP/1.x` → method and path (query string removed).
fn request_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &[u8]| !s.is_empty() && s.iter().all(|b| b.is_ascii_uppercase());
    let visible = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_graphic);
    if parts.next().is_some()
        || !token(method)
        || !visible(target)
        || !matches!(version, b"HTTP/1.0" | b"HTTP/1.1")
    {
        return None;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    Some((method, path))
}

/// `name: value` with a non-empty name of visible characters and a value of visible
/// characters, spaces and tabs.
fn header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = line.split_at(colon);
    !name.is_empty()
        && name.iter().all(u8::is_ascii_graphic)
        && value
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
}

/// Writes all of `bytes` before `deadline`.
fn write_all(stream: &TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match (&mut &*stream).write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends the response and reads what the client still sends for at most [`LINGER`].
fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&mut &*stream).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A metric family's `HELP` and `TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// One sample.
fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

type WorkerValue = fn(&Counters) -> u64;

/// The per-worker counters other than drops.
const WORKER_COUNTERS: [(&str, &str, WorkerValue); 5] = [
    (
        "rvs_worker_rx_packets_total",
        "Packets the worker received.",
        |c| c.rx_packets,
    ),
    (
        "rvs_worker_rx_bytes_total",
        "Bytes of the packets the worker received.",
        |c| c.rx_bytes,
    ),
    (
        "rvs_worker_tx_packets_total",
        "Packets the worker sent.",
        |c| c.tx_packets,
    ),
    (
        "rvs_worker_tx_bytes_total",
        "Bytes of the packets the worker sent.",
        |c| c.tx_bytes,
    ),
    (
        "rvs_worker_handed_over_total",
        "Packets the worker received for flows another worker owns, and handed to it.",
        |c| c.handed_over,
    ),
];

type TrafficValue = fn(&TrafficTotals) -> u64;

/// ipvsadm's traffic counters (`--stats`), for services and real servers.
const TRAFFIC_COUNTERS: [(&str, &str, TrafficValue); 5] = [
    (
        "conns",
        "Connections scheduled (persistence templates excluded)",
        |t| t.conns,
    ),
    ("inpkts", "Packets from clients", |t| t.inpkts),
    (
        "outpkts",
        "Packets from real servers (NAT and FULLNAT only)",
        |t| t.outpkts,
    ),
    ("inbytes", "IP bytes from clients", |t| t.inbytes),
    (
        "outbytes",
        "IP bytes from real servers (NAT and FULLNAT only)",
        |t| t.outbytes,
    ),
];

type LoadValue = fn(&sched::DestLoad) -> u32;

/// ipvsadm's connection counts of a real server.
const REAL_GAUGES: [(&str, &str, LoadValue); 3] = [
    (
        "rvs_real_activeconns",
        "Connections of the real server in ESTABLISHED (ActiveConn).",
        sched::DestLoad::activeconns,
    ),
    (
        "rvs_real_inactconns",
        "Connections of the real server in any other state (InActConn).",
        sched::DestLoad::inactconns,
    ),
    (
        "rvs_real_persistconns",
        "Persistence templates pointing at the real server (PersistConn).",
        sched::DestLoad::persistconns,
    ),
];

/// The exposition text for workers on `lcores` with counters `workers`, and `services` (in
/// snapshot order, real servers in kernel order).
pub fn render(lcores: &[u32], workers: &[Counters], services: &[Arc<Service>]) -> String {
    let worker_labels: Vec<String> = lcores
        .iter()
        .enumerate()
        .map(|(i, lcore)| format!("worker=\"{i}\",lcore=\"{lcore}\""))
        .collect();
    let mut out = String::new();
    for (name, help, value) in WORKER_COUNTERS {
        family(&mut out, name, "counter", help);
        for (labels, c) in worker_labels.iter().zip(workers) {
            sample(&mut out, name, labels, value(c));
        }
    }
    let name = "rvs_worker_drops_total";
    family(
        &mut out,
        name,
        "counter",
        "Packets the worker dropped, by reason.",
    );
    for (labels, c) in worker_labels.iter().zip(workers) {
        for (reason, n) in DropReason::ALL.iter().zip(c.drops.iter()) {
            let labels = format!("{labels},reason=\"{}\"", reason.as_str());
            sample(&mut out, name, &labels, *n);
        }
    }

    let service_labels = |s: &Service| format!("proto=\"{}\",vip=\"{}\"", s.proto.as_str(), s.vip);
    let totals: Vec<(String, TrafficTotals)> = services
        .iter()
        .map(|s| (service_labels(s), s.traffic.totals()))
        .collect();
    for (what, help, value) in TRAFFIC_COUNTERS {
        let name = format!("rvs_service_{what}_total");
        family(&mut out, &name, "counter", &format!("{help}, per service."));
        for (labels, t) in &totals {
            sample(&mut out, &name, labels, value(t));
        }
    }

    let reals: Vec<(String, TrafficTotals, &sched::DestLoad)> = services
        .iter()
        .flat_map(|s| {
            let service = service_labels(s);
            s.reals.iter().map(move |r| {
                let labels = format!("{service},real=\"{}\"", r.addr);
                (labels, r.traffic.totals(), r.load.as_ref())
            })
        })
        .collect();
    for (what, help, value) in TRAFFIC_COUNTERS {
        let name = format!("rvs_real_{what}_total");
        family(
            &mut out,
            &name,
            "counter",
            &format!("{help}, per real server."),
        );
        for (labels, t, _) in &reals {
            sample(&mut out, &name, labels, value(t));
        }
    }
    for (name, help, value) in REAL_GAUGES {
        family(&mut out, name, "gauge", help);
        for (labels, _, load) in &reals {
            sample(&mut out, name, labels, u64::from(value(load)));
        }
    }
    out
}
