//! The Prometheus text endpoint of `[control] prometheus`: `GET /metrics` answers the counters
//! `rvsadm --drops` and `rvsadm -L --stats` show, in the text exposition format 0.0.4.
//!
//! The values come from where the control socket reads them: the per-worker blocks the
//! workers publish between bursts ([`SharedCounters`]) and the per-service and per-real
//! [`fastpath::service::Traffic`] totals and connection counts of the published snapshot. A
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

use crate::stats::{Counters, SharedCounters};
use crate::worker::Fabric;
use fastpath::service::{Service, TrafficTotals};
use fastpath::verdict::DropReason;
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
        let services: Vec<Arc<Service>> = self.fabric.snapshot().services().cloned().collect();
        render(&self.lcores, &workers, &services)
    }
}

/// A running endpoint; dropping it stops it.
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
}

impl Drop for Endpoint {
    /// Stops accepting; a request being answered finishes first.
    fn drop(&mut self) {
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
            Some(bytes) if !bytes.is_empty() => head.extend_from_slice(bytes),
            // The client stopped sending in the middle of a request: it cannot be valid.
            _ if !head.is_empty() => return Ok(Route::BadRequest),
            _ => return Err(io::ErrorKind::UnexpectedEof.into()),
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
    let crlf = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2);
    let lf = head.windows(2).position(|w| w == b"\n\n").map(|p| p + 1);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
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
    let token = |s: &[u8]| !s.is_empty() && s.iter().copied().all(tchar);
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

/// A character of an HTTP token (RFC 9110 `tchar`).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `name: value` with a token as name and a value of visible characters, spaces, tabs and
/// bytes above ASCII (`obs-text`).
fn header_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = line.split_at(colon);
    !name.is_empty()
        && name.iter().copied().all(tchar)
        && value
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t' || b >= 0x80)
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

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::service;

    fn services() -> Vec<Arc<Service>> {
        let text = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12:8080"
  mode = "nat"
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.13:53"
  mode = "dr"
"#;
        let config = conf::Config::parse(text, "t.toml").expect("valid");
        config
            .services
            .iter()
            .map(|s| Arc::new(service::build(s, None, 2).expect("service builds")))
            .collect()
    }

    fn workers() -> Vec<Counters> {
        let mut first = Counters {
            rx_packets: 10,
            rx_bytes: 900,
            tx_packets: 7,
            tx_bytes: 650,
            handed_over: 3,
            ..Counters::default()
        };
        first.drop(DropReason::NotOurs);
        first.drop(DropReason::NotOurs);
        first.drop(DropReason::Truncated);
        let mut second = Counters {
            rx_packets: 4,
            rx_bytes: 240,
            tx_packets: 4,
            tx_bytes: 244,
            ..Counters::default()
        };
        second.drop(DropReason::NoService);
        vec![first, second]
    }

    /// The drop samples: every reason of every worker, with these non-zero counts.
    fn drop_lines(nonzero: &[(usize, &str, u64)]) -> String {
        let mut out = String::new();
        for (w, lcore) in [(0, 1), (1, 2)] {
            for r in DropReason::ALL {
                let n = nonzero
                    .iter()
                    .find(|(nw, name, _)| *nw == w && *name == r.as_str())
                    .map_or(0, |x| x.2);
                out += &format!(
                    "rvs_worker_drops_total{{worker=\"{w}\",lcore=\"{lcore}\",reason=\"{}\"}} {n}\n",
                    r.as_str()
                );
            }
        }
        out
    }

    #[test]
    fn renders_workers_services_and_reals_exactly() {
        let services = services();
        let web = &services[0];
        // Kernel order: the file order reversed.
        let (rs2, rs1) = (&web.reals[0], &web.reals[1]);
        web.traffic.conn(0);
        web.traffic.conn(1);
        web.traffic.inbound(0, 60);
        web.traffic.inbound(1, 52);
        web.traffic.outbound(1, 1500);
        rs1.traffic.conn(0);
        rs1.traffic.inbound(0, 60);
        rs2.traffic.conn(1);
        rs2.traffic.inbound(1, 52);
        rs2.traffic.outbound(1, 1500);
        rs1.load.bind(sched::ConnClass::Inactive);
        rs2.load.bind(sched::ConnClass::Inactive);
        rs2.load.activate();
        rs2.load.bind(sched::ConnClass::Template);
        let dns = &services[1];
        dns.traffic.inbound(1, 40);
        dns.reals[0].traffic.inbound(1, 40);

        let text = render(&[1, 2], &workers(), &services);
        let expected = [
            "# HELP rvs_worker_rx_packets_total Packets the worker received.\n",
            "# TYPE rvs_worker_rx_packets_total counter\n",
            "rvs_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} 10\n",
            "rvs_worker_rx_packets_total{worker=\"1\",lcore=\"2\"} 4\n",
            "# HELP rvs_worker_rx_bytes_total Bytes of the packets the worker received.\n",
            "# TYPE rvs_worker_rx_bytes_total counter\n",
            "rvs_worker_rx_bytes_total{worker=\"0\",lcore=\"1\"} 900\n",
            "rvs_worker_rx_bytes_total{worker=\"1\",lcore=\"2\"} 240\n",
            "# HELP rvs_worker_tx_packets_total Packets the worker sent.\n",
            "# TYPE rvs_worker_tx_packets_total counter\n",
            "rvs_worker_tx_packets_total{worker=\"0\",lcore=\"1\"} 7\n",
            "rvs_worker_tx_packets_total{worker=\"1\",lcore=\"2\"} 4\n",
            "# HELP rvs_worker_tx_bytes_total Bytes of the packets the worker sent.\n",
            "# TYPE rvs_worker_tx_bytes_total counter\n",
            "rvs_worker_tx_bytes_total{worker=\"0\",lcore=\"1\"} 650\n",
            "rvs_worker_tx_bytes_total{worker=\"1\",lcore=\"2\"} 244\n",
            "# HELP rvs_worker_handed_over_total Packets the worker received for flows another worker owns, and handed to it.\n",
            "# TYPE rvs_worker_handed_over_total counter\n",
            "rvs_worker_handed_over_total{worker=\"0\",lcore=\"1\"} 3\n",
            "rvs_worker_handed_over_total{worker=\"1\",lcore=\"2\"} 0\n",
            "# HELP rvs_worker_drops_total Packets the worker dropped, by reason.\n",
            "# TYPE rvs_worker_drops_total counter\n",
            &drop_lines(&[(0, "not_ours", 2), (0, "truncated", 1), (1, "no_service", 1)]),
            "# HELP rvs_service_conns_total Connections scheduled (persistence templates excluded), per service.\n",
            "# TYPE rvs_service_conns_total counter\n",
            "rvs_service_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 2\n",
            "rvs_service_conns_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_service_inpkts_total Packets from clients, per service.\n",
            "# TYPE rvs_service_inpkts_total counter\n",
            "rvs_service_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 2\n",
            "rvs_service_inpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 1\n",
            "# HELP rvs_service_outpkts_total Packets from real servers (NAT and FULLNAT only), per service.\n",
            "# TYPE rvs_service_outpkts_total counter\n",
            "rvs_service_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 1\n",
            "rvs_service_outpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_service_inbytes_total IP bytes from clients, per service.\n",
            "# TYPE rvs_service_inbytes_total counter\n",
            "rvs_service_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 112\n",
            "rvs_service_inbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 40\n",
            "# HELP rvs_service_outbytes_total IP bytes from real servers (NAT and FULLNAT only), per service.\n",
            "# TYPE rvs_service_outbytes_total counter\n",
            "rvs_service_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 1500\n",
            "rvs_service_outbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_real_conns_total Connections scheduled (persistence templates excluded), per real server.\n",
            "# TYPE rvs_real_conns_total counter\n",
            "rvs_real_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_conns_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inpkts_total Packets from clients, per real server.\n",
            "# TYPE rvs_real_inpkts_total counter\n",
            "rvs_real_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_inpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 1\n",
            "# HELP rvs_real_outpkts_total Packets from real servers (NAT and FULLNAT only), per real server.\n",
            "# TYPE rvs_real_outpkts_total counter\n",
            "rvs_real_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_outpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inbytes_total IP bytes from clients, per real server.\n",
            "# TYPE rvs_real_inbytes_total counter\n",
            "rvs_real_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 52\n",
            "rvs_real_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 60\n",
            "rvs_real_inbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 40\n",
            "# HELP rvs_real_outbytes_total IP bytes from real servers (NAT and FULLNAT only), per real server.\n",
            "# TYPE rvs_real_outbytes_total counter\n",
            "rvs_real_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1500\n",
            "rvs_real_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_outbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_activeconns Connections of the real server in ESTABLISHED (ActiveConn).\n",
            "# TYPE rvs_real_activeconns gauge\n",
            "rvs_real_activeconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_activeconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_activeconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inactconns Connections of the real server in any other state (InActConn).\n",
            "# TYPE rvs_real_inactconns gauge\n",
            "rvs_real_inactconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 0\n",
            "rvs_real_inactconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_inactconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_persistconns Persistence templates pointing at the real server (PersistConn).\n",
            "# TYPE rvs_real_persistconns gauge\n",
            "rvs_real_persistconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_persistconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_persistconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
        ]
        .concat();
        if text != expected {
            let first = text
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "differs at line {}:\n got: {:?}\nwant: {:?}",
                first + 1,
                text.lines().nth(first),
                expected.lines().nth(first)
            );
        }
        assert_eq!(
            text.lines().count(),
            20 + 2 + 2 * DropReason::COUNT + 5 * 4 + 8 * 5
        );
    }

    #[test]
    fn renders_headers_only_without_workers_or_services() {
        let text = render(&[], &[], &[]);
        let lines: Vec<&str> = text.lines().collect();
        // 6 worker families, 5 service, 8 real: HELP and TYPE each, no samples.
        assert_eq!(lines.len(), 2 * (6 + 5 + 8), "{text}");
        assert!(lines.iter().all(|l| l.starts_with("# ")), "{text}");
    }

    #[test]
    fn routes_requests() {
        let cases: &[(&[u8], Option<Route>)] = &[
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Some(Route::Metrics)),
            (b"GET /metrics HTTP/1.0\r\n\r\n", Some(Route::Metrics)),
            (b"GET /metrics?x=1 HTTP/1.1\n\n", Some(Route::Metrics)),
            (
                b"GET /metrics HTTP/1.1\r\nUser-Agent: Prometheus/2.0\r\nAccept: text/plain;q=0.5, */*;q=0.1\r\nX-Latin: \xe9t\xe9\r\n\r\n",
                Some(Route::Metrics),
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Some(Route::NotFound)),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Some(Route::NotFound)),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Some(Route::MethodNotAllowed)),
            (b"HEAD /metrics HTTP/1.1\r\n\r\n", Some(Route::MethodNotAllowed)),
            (b"get /metrics HTTP/1.1\r\n\r\n", Some(Route::MethodNotAllowed)),
            (b"POST /other HTTP/1.1\r\n\r\n", Some(Route::NotFound)),
            // Incomplete: wait for more.
            (b"", None),
            (b"GET /metr", None),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", None),
            // A bad request line is answered at once, headers or not.
            (b"garbage\r\n", Some(Route::BadRequest)),
            (b"\r\n", Some(Route::BadRequest)),
            (b"GET /metrics\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /metrics HTTP/2.0\r\n\r\n", Some(Route::BadRequest)),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /metrics HTTP/1.1 extra\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /m\xffetrics HTTP/1.1\r\n\r\n", Some(Route::BadRequest)),
            (b"G(T /metrics HTTP/1.1\r\n\r\n", Some(Route::BadRequest)),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", Some(Route::BadRequest)),
            // Bad headers.
            (b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /metrics HTTP/1.1\r\n: empty\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", Some(Route::BadRequest)),
            (b"GET /metrics HTTP/1.1\r\nA: b\x00c\r\n\r\n", Some(Route::BadRequest)),
            // The first blank line ends the head, whichever line ending it uses.
            (b"GET /metrics HTTP/1.1\n\nbody\r\n\r\n", Some(Route::Metrics)),
        ];
        for (head, want) in cases {
            assert_eq!(route(head), *want, "{:?}", String::from_utf8_lossy(head));
        }
    }

    /// An endpoint on a free localhost port over an empty snapshot and one worker whose
    /// counters the test sets.
    fn endpoint() -> (Endpoint, Arc<Vec<SharedCounters>>) {
        let mut config = conf::Config::parse(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n",
            "t.toml",
        )
        .expect("valid");
        config.control.prometheus = Some("127.0.0.1:0".parse().unwrap());
        let fabric = Arc::new(Fabric::new(
            1,
            Arc::new(fastpath::snapshot::Snapshot::default()),
        ));
        let counters = Arc::new(vec![SharedCounters::default()]);
        let endpoint = Endpoint::start(&config, fabric, Arc::clone(&counters))
            .expect("starts")
            .expect("configured");
        (endpoint, counters)
    }

    /// Sends `request`, returns everything the server sent until it closed.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn serves_http_and_survives_bad_clients() {
        let (endpoint, counters) = endpoint();
        let addr = endpoint.addr();
        let c = Counters {
            rx_packets: 42,
            ..Counters::default()
        };
        counters[0].publish(&c, 1, 0);
        let body = render(&[1], &[c], &[]);
        assert_eq!(
            exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        );
        assert!(body.contains("rvs_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} 42\n"));
        let plain = |status: &str, extra: &str, text: &str| {
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
                text.len()
            )
        };
        assert_eq!(
            exchange(addr, b"GET / HTTP/1.1\r\n\r\n"),
            plain("404 Not Found", "", "not found\n")
        );
        assert_eq!(
            exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n"),
            plain(
                "405 Method Not Allowed",
                "Allow: GET\r\n",
                "only GET is supported\n"
            )
        );
        let bad = plain("400 Bad Request", "", "bad request\n");
        assert_eq!(exchange(addr, b"\x00\x01garbage\r\n"), bad);
        // A head that never ends.
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(3 * MAX_HEAD));
        assert_eq!(exchange(addr, huge.as_bytes()), bad);
        // Half a request, then the client stops sending.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, bad);
        // Clients that disconnect before or inside a request.
        drop(TcpStream::connect(addr).unwrap());
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /met").unwrap();
        drop(s);
        // A client that stalls holds the endpoint for at most IO_TIMEOUT.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(b"GET /metrics HT").unwrap();
        let started = Instant::now();
        assert!(exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(started.elapsed() < IO_TIMEOUT + Duration::from_secs(3));
        let mut rest = Vec::new();
        stalled
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            stalled.read_to_end(&mut rest).unwrap(),
            0,
            "closed unanswered"
        );
        let started = Instant::now();
        drop(endpoint);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            TcpStream::connect(addr).is_err(),
            "stopped endpoint still listens"
        );
    }

    #[test]
    fn a_busy_address_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = conf::Config::parse(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n",
            "t.toml",
        )
        .expect("valid");
        let addr = taken.local_addr().unwrap();
        config.control.prometheus = Some(addr);
        let fabric = Arc::new(Fabric::new(
            1,
            Arc::new(fastpath::snapshot::Snapshot::default()),
        ));
        let err = Endpoint::start(&config, fabric, Arc::new(Vec::new())).unwrap_err();
        assert!(
            err.starts_with(&format!("prometheus endpoint {addr}: ")),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        config.control.prometheus = None;
        let fabric = Arc::new(Fabric::new(
            1,
            Arc::new(fastpath::snapshot::Snapshot::default()),
        ));
        assert!(Endpoint::start(&config, fabric, Arc::new(Vec::new()))
            .unwrap()
            .is_none());
    }
}
