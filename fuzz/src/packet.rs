//! The pure packet pipeline (`fastpath`) as a worker runs it, over frames from the wire.
//!
//! One fixed balancer ([`CONFIG`]): port 0 (`dpdk0`, MTU 1280, a kernel twin) on the golden
//! tables' network (`fastpath/tests/fixtures/topo.rs`: DIP, VIP, FULLNAT local address, the
//! router and most real servers as static neighbours), with NAT, DR, TUN and FULLNAT
//! services (TOA, PROXY v1 and v2, TOA off), most `rr`, one `mh` with a quiesced real, two
//! persistent port-zero services (`rr` with a /24 netmask, `sh`) on a second VIP, a
//! `kernel` VIP the twin holds and one it does not, a `routed` VIP and an address only the
//! kernel uses; port 1 (`dpdk1`, MTU 1500, no
//! twin) with a router to a TUN real server. A NAT real server on each port has no known MAC,
//! so that frames wait for ARP (`Verdict::Resolve`, `Verdict::ResolveFragment`).
//!
//! - [`check_frame`]: one frame through [`Pipeline::packet`] on a fresh pipeline (the first
//!   byte picks the port).
//! - [`check_sequence`]: steps (see [`steps`]) on one pipeline with the clock moving, so that
//!   connections made by one step are looked up, rewritten and expired by later ones and
//!   fragments are held and released; steps that come at the same time make one burst,
//!   looked at first ([`Pipeline::prefetch`], then [`Pipeline::candidate`]) and then
//!   processed ([`Pipeline::packet_parsed`]) as the worker does, so that a lookup's hint may be
//!   stale or another key's.
//!
//! Properties beyond "no panic", for every verdict ([`Checker::verdict`]):
//! - what is sent (`Tx`, `Resolve`) leaves a port that exists, from that port's MAC, and is a
//!   well-formed ARP reply or IPv4 packet (lengths, header checksum, TTL, the TCP, UDP or ICMP
//!   checksum unless the received packet's own did not verify; TUN's inner packet too), of
//!   at most the port's MTU + 14 bytes;
//! - what is to be fragmented (`Fragment`, `ResolveFragment`) is such an IPv4 packet larger
//!   than the MTU given, at most the port's; the worker's cut ([`fragment::plan`],
//!   [`fragment::write`]) succeeds and its fragments are well-formed, fit the MTU and put
//!   the packet's data back together exactly;
//! - a punted frame goes to a port that has a twin, unchanged (Ethernet padding aside);
//! - a drop has a reason the pipeline can give (not one only the worker or driver counts);
//! - a held fragment is held by the worker ([`Held`]) and what the pipeline releases is put
//!   through it again or dropped; no frame is handed to another worker (there is one).

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::{Held, Parsed, Pipeline, Released};
use fastpath::snapshot::Snapshot;
use fastpath::verdict::{DropReason, Verdict};
use fastpath::xmit::fragment;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

/// The balancer the targets run (see the module documentation). Timeouts are short so that a
/// sequence of steps of at most 65 s each can see connections expire.
pub const CONFIG: &str = r#"
[eal]
args = []
[dataplane]
workers = [1]
conn_table_size = 64
[timeouts]
tcp = 30
tcp_fin = 10
udp = 20
[[port]]
name = "dpdk0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "10.0.0.103/32", "10.0.0.200/32", "2001:db8::1/64", "fe80::1/64", "2001:db8::100/128"]
mtu = 1280
exception = { iface = "rvs0", kind = "tap" }
[[port]]
name = "dpdk1"
mac = "02:00:00:00:00:02"
addrs = ["10.0.1.1/24"]
[[route]]
dst = "0.0.0.0/0"
via = "10.0.0.254"
port = "dpdk0"
[[route]]
dst = "172.16.0.0/16"
via = "10.0.1.254"
port = "dpdk1"
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.21"
mac = "02:00:00:00:00:21"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.31"
mac = "02:00:00:00:00:31"
port = "dpdk0"
[[neighbor]]
ip = "10.0.1.254"
mac = "02:00:00:00:01:fe"
port = "dpdk1"
[[route]]
dst = "::/0"
via = "fe80::fe"
port = "dpdk0"
[[neighbor]]
ip = "fe80::fe"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[[neighbor]]
ip = "2001:db8::11"
mac = "02:00:00:00:00:11"
port = "dpdk0"
[[service]]
vip = "[2001:db8::100]:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "[2001:db8::11]:8080"
  mode = "nat"
  [[service.real]]
  addr = "2001:db8::12"
  mode = "dr"
  [[service.real]]
  addr = "2001:db8::13"
  mode = "tun"
[[service]]
vip = "[2001:db8::100]:53"
proto = "udp"
sched = "rr"
  # No static neighbour: its packets wait for neighbour discovery (Verdict::Resolve6).
  [[service.real]]
  addr = "[2001:db8::14]:53"
  mode = "nat"
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:53"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12:53"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.13:53"
  mode = "nat"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  [[service.real]]
  addr = "10.0.1.12:8080"
  mode = "nat"
[[service]]
vip = "10.0.0.100:81"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.21"
  mode = "dr"
[[service]]
vip = "10.0.0.100:82"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.31"
  mode = "tun"
  [[service.real]]
  addr = "172.16.0.32"
  mode = "tun"
[[service]]
vip = "10.0.0.100:82"
proto = "tcp"
sched = "rr"
laddrs = ["10.0.0.200"]
toa = false
  [[service.real]]
  addr = "10.0.0.11:8082"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:54"
proto = "udp"
sched = "rr"
laddrs = ["10.0.0.200"]
  [[service.real]]
  addr = "10.0.0.11:54"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:443"
proto = "tcp"
sched = "rr"
laddrs = ["10.0.0.200"]
  [[service.real]]
  addr = "10.0.0.11:443"
  mode = "fullnat"
  [[service.real]]
  addr = "10.0.0.12:443"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:8000"
proto = "tcp"
sched = "rr"
laddrs = ["10.0.0.200"]
proxy_protocol = "v1"
  [[service.real]]
  addr = "10.0.0.11:8000"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:8001"
proto = "tcp"
sched = "rr"
laddrs = ["10.0.0.200"]
proxy_protocol = "v2"
  [[service.real]]
  addr = "10.0.0.12:8001"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:55"
proto = "udp"
sched = "mh"
sched_flags = ["mh-port", "mh-fallback"]
  [[service.real]]
  addr = "10.0.0.11:55"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12:55"
  mode = "nat"
  weight = 0
  [[service.real]]
  addr = "10.0.0.21"
  mode = "dr"
  weight = 3
[[service]]
vip = "10.0.0.103:0"
proto = "tcp"
sched = "rr"
persistence = 60
netmask = "255.255.255.0"
  [[service.real]]
  addr = "10.0.0.11"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.21"
  mode = "dr"
[[service]]
vip = "10.0.0.103:0"
proto = "udp"
sched = "sh"
sched_flags = ["sh-port"]
persistence = 30
  [[service.real]]
  addr = "10.0.0.12"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.31"
  mode = "tun"
[[service]]
vip = "10.0.0.101:80"
proto = "tcp"
vip_mode = "kernel"
  [[service.real]]
  addr = "10.0.0.12:80"
  mode = "dr"
[[service]]
vip = "10.0.0.102:80"
proto = "tcp"
vip_mode = "kernel"
  [[service.real]]
  addr = "10.0.0.12:80"
  mode = "dr"
[[service]]
vip = "192.0.2.130:80"
proto = "tcp"
vip_mode = "routed"
  [[service.real]]
  addr = "10.0.0.12:80"
  mode = "dr"
"#;

/// The ports' MACs, in config order.
pub const MACS: [[u8; 6]; 2] = [
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
];

/// What twin `rvs0` holds besides the configured addresses (as rvsd's address follower adds
/// them): the `kernel` VIP it serves, and an address only the kernel uses.
const KERNEL_ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 101), Ipv4Addr::new(10, 0, 0, 50)];

/// The longest frame a worker hands the pipeline: one packet buffer's data room (rvsd drops
/// longer ones as `oversize_frame` before the pipeline sees them).
pub const MAX_FRAME: usize = VecFrame::BUF_LEN - VecFrame::HEADROOM;

/// The configuration, parsed once: the TOML parse costs more than the rest of an input.
fn config() -> &'static conf::Config {
    static CONFIG_ONCE: OnceLock<conf::Config> = OnceLock::new();
    CONFIG_ONCE.get_or_init(|| {
        let mut config = match conf::Config::parse(CONFIG, "fuzz.toml") {
            Ok(config) => config,
            Err(e) => panic!("the fuzz config is valid: {e}"),
        };
        for addr in KERNEL_ADDRS {
            config.ports[0].addrs.push(conf::Ipv4Net {
                addr,
                prefix_len: 32,
            });
        }
        config
    })
}

/// The snapshot, built once and shared by every input; a fresh pipeline per input. What a
/// pipeline changes in the snapshot is counters only (traffic, connection counts, local
/// address use), which decide nothing here: no scheduler of the config reads connection
/// counts (no `wlc`, `lc`, thresholds), and the schedulers' state, like the connections,
/// neighbours, fragments and local address pools, is the pipeline's. So an input's verdicts
/// do not depend on the inputs run before it.
fn balancer() -> (&'static Snapshot, Pipeline) {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    let config = config();
    let snapshot = SNAPSHOT.get_or_init(|| match Snapshot::build(config, &MACS, None, 1) {
        Ok(snapshot) => snapshot,
        Err(e) => panic!("the fuzz config builds: {e}"),
    });
    let pipeline = match Pipeline::new(0, 1, config.dataplane.conn_table_size, snapshot, 0) {
        Ok(pipeline) => pipeline,
        Err(e) => panic!("the fuzz pipeline builds: {e:?}"),
    };
    (snapshot, pipeline)
}

/// One frame through [`Pipeline::packet`]: the first byte picks the receiving port (modulo
/// the number of ports), the rest is the frame. Returns the verdict (none for an input too
/// short or too long).
pub fn check_frame(data: &[u8]) -> Option<Verdict> {
    let (&port, frame) = data.split_first()?;
    if frame.len() > MAX_FRAME {
        return None;
    }
    let port = usize::from(port) % MACS.len();
    let (snapshot, pipeline) = balancer();
    Some(Checker::new(snapshot, pipeline).receive(port, frame, 0))
}

/// One step of a sequence: a frame received on `port` `advance_ms` after the step before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    pub port: usize,
    pub advance_ms: u16,
    pub frame: &'a [u8],
}

/// Splits a sequence input into steps: each is `port: u8`, `advance_ms: u16` (big endian),
/// `len: u16` (big endian), then `len` frame bytes; the last step takes what is left when
/// fewer are. A header cut short ends the sequence.
pub fn steps(mut data: &[u8]) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    while let Some((header, rest)) = data.split_first_chunk::<5>() {
        let len = usize::from(u16::from_be_bytes([header[3], header[4]])).min(rest.len());
        let (frame, rest) = rest.split_at(len);
        steps.push(Step {
            port: usize::from(header[0]) % MACS.len(),
            advance_ms: u16::from_be_bytes([header[1], header[2]]),
            frame,
        });
        data = rest;
    }
    steps
}

/// Encodes `steps` as [`steps`] reads them (for seeds).
pub fn encode(steps: &[Step<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in steps {
        out.push(s.port as u8);
        out.extend_from_slice(&s.advance_ms.to_be_bytes());
        out.extend_from_slice(&(s.frame.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        out.extend_from_slice(s.frame);
    }
    out
}

/// The most frames of one burst (rvsd's burst size).
const BURST: usize = 32;

/// A sequence of steps on one pipeline. Steps at the same time (`advance_ms` 0 after the
/// first) make one burst, prefetched together before any is processed, as a worker does;
/// before each burst the timers run at its time (connections expire, held fragments wait
/// too long) and at the end, [`fastpath::pipeline::HOLD_MS`] later, every held frame is
/// dropped.
pub fn check_sequence(data: &[u8]) {
    let steps: Vec<Step<'_>> = steps(data)
        .into_iter()
        .filter(|s| s.frame.len() <= MAX_FRAME)
        .collect();
    let (snapshot, pipeline) = balancer();
    let mut checker = Checker::new(snapshot, pipeline);
    let mut now = 0u64;
    let mut parsed = Vec::with_capacity(BURST);
    let mut i = 0;
    while i < steps.len() {
        now += u64::from(steps[i].advance_ms);
        let mut end = i + 1;
        while end < steps.len() && end - i < BURST && steps[end].advance_ms == 0 {
            end += 1;
        }
        checker.tick(now);
        parsed.clear();
        for s in &steps[i..end] {
            parsed.push(checker.pipeline.prefetch(snapshot, s.port, s.frame));
        }
        for p in parsed.iter_mut() {
            checker.pipeline.candidate(p);
        }
        for (s, p) in steps[i..end].iter().zip(&parsed) {
            checker.receive_parsed(s.port, s.frame, now, p);
        }
        i = end;
    }
    checker.tick(now + fastpath::pipeline::HOLD_MS + 1);
    assert_eq!(checker.held.len(), 0, "frames still held after their wait");
}

/// A worker over one pipeline, checking every verdict.
struct Checker<'s> {
    snapshot: &'s Snapshot,
    pipeline: Pipeline,
    held: Held<VecFrame>,
}

impl<'s> Checker<'s> {
    fn new(snapshot: &'s Snapshot, pipeline: Pipeline) -> Checker<'s> {
        Checker {
            snapshot,
            pipeline,
            held: Held::default(),
        }
    }

    /// The timers at `now_ms`, as between two bursts.
    fn tick(&mut self, now_ms: u64) {
        self.pipeline.expire(now_ms, 64);
        self.release(now_ms);
    }

    fn receive(&mut self, port: usize, input: &[u8], now_ms: u64) -> Verdict {
        let mut frame = VecFrame::new(input);
        let verdict = self
            .pipeline
            .packet(self.snapshot, port, &mut frame, now_ms);
        self.verdict(port, input, verdict, frame);
        self.release(now_ms);
        verdict
    }

    fn receive_parsed(
        &mut self,
        port: usize,
        input: &[u8],
        now_ms: u64,
        parsed: &Parsed,
    ) -> Verdict {
        let mut frame = VecFrame::new(input);
        let verdict = self
            .pipeline
            .packet_parsed(self.snapshot, port, &mut frame, now_ms, parsed);
        self.verdict(port, input, verdict, frame);
        self.release(now_ms);
        verdict
    }

    /// Puts the frames the pipeline released through it again (or drops them), in the
    /// order they were held.
    fn release(&mut self, now_ms: u64) {
        while let Some((key, released)) = self.pipeline.take_released() {
            let mut frames = Vec::new();
            self.held.take(key, &mut frames);
            if let Released::Retry = released {
                for (port, mut frame) in frames {
                    let input = frame.data().to_vec();
                    let verdict = self
                        .pipeline
                        .packet(self.snapshot, port, &mut frame, now_ms);
                    assert!(
                        !matches!(verdict, Verdict::Hold(_)),
                        "a released fragment held again: {verdict:?}"
                    );
                    self.verdict(port, &input, verdict, frame);
                }
            }
        }
    }

    /// Checks `verdict` on `input` (received on `in_port`), `frame` being what the pipeline
    /// left of it.
    fn verdict(&mut self, in_port: usize, input: &[u8], verdict: Verdict, frame: VecFrame) {
        let ports = &self.snapshot.ports;
        let data = frame.data();
        match verdict {
            Verdict::Tx { port } | Verdict::Resolve { port, .. } | Verdict::Resolve6 { port } => {
                let mtu = port_mtu(self.snapshot, port, &verdict);
                let resolved = matches!(verdict, Verdict::Tx { .. });
                check_sent(data, input, &ports[port].mac.0, resolved);
                assert!(
                    data.len() <= usize::from(mtu) + 14,
                    "{verdict:?}: {} bytes through MTU {mtu}",
                    data.len()
                );
            }
            Verdict::Fragment { port, mtu } | Verdict::ResolveFragment { port, mtu, .. } => {
                let port_mtu = port_mtu(self.snapshot, port, &verdict);
                assert!(mtu <= port_mtu, "{verdict:?} on a port of MTU {port_mtu}");
                let resolved = matches!(verdict, Verdict::Fragment { .. });
                check_sent(data, input, &ports[port].mac.0, resolved);
                let fragments = check_fragments(data, mtu);
                assert!(fragments > 1, "{verdict:?} for a packet that fits");
            }
            Verdict::Punt(reason) => {
                assert!(
                    ports[in_port].twin,
                    "{reason:?} punted from a port without twin"
                );
                assert!(
                    data.len() >= 14 && input.starts_with(data),
                    "{reason:?}: punted frame changed"
                );
            }
            Verdict::Drop(reason) => assert!(
                !WORKER_REASONS.contains(&reason),
                "the pipeline dropped as {reason:?}"
            ),
            Verdict::Hold(key) => {
                // Held::hold refuses past HOLD_MAX, which the pipeline never asks for.
                assert!(
                    self.held.hold(key, in_port, frame).is_ok(),
                    "held beyond HOLD_MAX"
                );
            }
            Verdict::Redirect { worker } => panic!("redirected to worker {worker} of 1"),
        }
    }
}

/// Drop reasons only the worker or the driver count, never the pipeline of one worker.
const WORKER_REASONS: [DropReason; 4] = [
    DropReason::TxFull,
    DropReason::NoMbuf,
    DropReason::RedirectFull,
    DropReason::OversizeFrame,
];

fn port_mtu(snapshot: &Snapshot, port: usize, verdict: &Verdict) -> u16 {
    match snapshot.ports.get(port) {
        Some(view) => view.mtu,
        None => panic!("{verdict:?}: no such port"),
    }
}

/// The one's complement sum of `data` added to `sum`, folded to 16 bits.
fn fold(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Whether the TCP, UDP or ICMP checksum of IPv4 packet `ip` (header validated) verifies, or
/// None when it cannot be checked (a fragment, another protocol). An IP-in-IP packet is
/// checked as its inner packet, which must be well-formed.
fn l4_ok(ip: &etherparse::Ipv4Slice<'_>) -> Option<bool> {
    let header = ip.header();
    if header.is_fragmenting_payload() {
        return None;
    }
    let payload = ip.payload().payload;
    let pseudo = |proto: u8| {
        let mut sum =
            u32::from(fold(&header.source(), 0)) + u32::from(fold(&header.destination(), 0));
        sum += u32::from(proto) + payload.len() as u32;
        sum
    };
    match header.protocol() {
        etherparse::IpNumber::TCP => {
            Some(payload.len() >= 20 && fold(payload, pseudo(6)) == 0xffff)
        }
        etherparse::IpNumber::UDP => {
            if payload.len() < 8 {
                return Some(false);
            }
            let length = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
            if length != payload.len() {
                return Some(false);
            }
            Some(payload[6..8] == [0, 0] || fold(payload, pseudo(17)) == 0xffff)
        }
        etherparse::IpNumber::ICMP => Some(fold(payload, 0) == 0xffff),
        etherparse::IpNumber::IPV4 => {
            let inner = check_ipv4(payload, payload.len());
            l4_ok(&inner)
        }
        _ => None,
    }
}

/// Checks a well-formed IPv4 packet at the start of `ip` (its header checksum verifies, it
/// fits, its TTL is not 0); `room` is how many bytes after it may be padding.
fn check_ipv4(ip: &[u8], room: usize) -> etherparse::Ipv4Slice<'_> {
    let slice = match etherparse::Ipv4Slice::from_slice(ip) {
        Ok(slice) => slice,
        Err(e) => panic!("not a well-formed IPv4 packet: {e}"),
    };
    let header = slice.header();
    let total = usize::from(header.total_len());
    assert!(
        ip.len() == total || ip.len() <= room,
        "{} bytes of IPv4 for a total length of {total}",
        ip.len()
    );
    assert_eq!(
        fold(header.slice(), 0),
        0xffff,
        "IPv4 header checksum {:#06x}",
        header.header_checksum()
    );
    assert!(header.ttl() > 0, "sent with TTL 0");
    slice
}

/// Checks a frame the pipeline sends out of a port whose MAC is `port_mac` (its destination
/// filled in by the worker unless `resolved`), made from `input`.
fn check_sent(frame: &[u8], input: &[u8], port_mac: &[u8; 6], resolved: bool) {
    assert!(frame.len() >= 14, "frame of {} bytes", frame.len());
    assert_eq!(&frame[6..12], port_mac, "not from the port's MAC");
    if resolved {
        assert_ne!(&frame[..6], &[0; 6], "sent to MAC 0");
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => check_arp_reply(frame, port_mac),
        0x0800 => {
            let ip = check_ipv4(&frame[14..], 60 - 14);
            if l4_ok(&ip) == Some(false) {
                let received = input
                    .get(14..)
                    .and_then(|ip| etherparse::Ipv4Slice::from_slice(ip).ok());
                assert!(
                    received.is_some_and(|ip| l4_ok(&ip) == Some(false)),
                    "L4 checksum broken on the way (protocol {:?})",
                    ip.header().protocol()
                );
            }
        }
        0x86dd => check_ipv6(&frame[14..], input),
        ethertype => panic!("sent a frame of EtherType {ethertype:#06x}"),
    }
}

/// Checks a sent IPv6 packet: version 6, its payload within the frame, a hop limit; an ICMPv6
/// message right after the fixed header has a valid checksum (rvs writes those whole), a TCP
/// or UDP one may be broken only if the received packet's was (rvs updates those).
fn check_ipv6(ip: &[u8], input: &[u8]) {
    assert!(ip.len() >= 40, "IPv6 packet of {} bytes", ip.len());
    assert_eq!(ip[0] >> 4, 6, "IPv6 version");
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    assert!(
        40 + payload <= ip.len(),
        "IPv6 payload length past the frame"
    );
    assert!(ip[7] > 0, "hop limit 0 sent");
    if matches!(ip[6], 6 | 17 | 58) && !l4_ok6(ip) {
        assert_ne!(ip[6], 58, "ICMPv6 checksum");
        let received = input.get(14..);
        assert!(
            received.is_some_and(|r| r.len() >= 40 && !l4_ok6(r)),
            "L4 checksum broken on the way (IPv6, next header {})",
            ip[6]
        );
    }
}

/// Whether the upper-layer checksum right after the fixed header of IPv6 packet `ip`
/// verifies (the IPv6 pseudo-header: addresses, length, next header).
fn l4_ok6(ip: &[u8]) -> bool {
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let Some(upper) = ip.get(40..40 + payload) else {
        return false;
    };
    let sum = u32::from(fold(&ip[8..40], 0)) + upper.len() as u32 + u32::from(ip[6]);
    fold(upper, sum) == 0xffff
}

/// Checks an ARP reply from the port whose MAC is `port_mac`: Ethernet/IPv4, in a minimum
/// frame (42 bytes, padded to at most 60).
fn check_arp_reply(frame: &[u8], port_mac: &[u8; 6]) {
    assert!(
        (42..=60).contains(&frame.len()),
        "ARP reply in a frame of {} bytes",
        frame.len()
    );
    assert_eq!(
        &frame[14..22],
        &[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02],
        "not an Ethernet/IPv4 ARP reply"
    );
    assert_eq!(&frame[22..28], port_mac, "ARP reply for another MAC");
}

/// Cuts `frame` as the worker does for `Verdict::Fragment { mtu, .. }` and checks the
/// fragments: well-formed, within the MTU, carrying the packet's data exactly. Returns how
/// many there are.
fn check_fragments(frame: &[u8], mtu: u16) -> usize {
    let whole = check_ipv4(&frame[14..], 0);
    let header = whole.header();
    assert!(
        usize::from(header.total_len()) > usize::from(mtu),
        "fragment a packet of {} bytes for MTU {mtu}",
        header.total_len()
    );
    let plan = match fragment::plan(frame, mtu) {
        Ok(plan) => plan,
        Err(reason) => panic!("cannot fragment for MTU {mtu}: {reason:?}"),
    };
    let data = whole.payload().payload;
    let start = usize::from(header.fragments_offset().value()) * 8;
    let mut covered = 0;
    for k in 0..plan.count() {
        let Some(len) = plan.frame_len(k) else {
            panic!("fragment {k} of {} has no length", plan.count());
        };
        let mut out = vec![0; len];
        match fragment::write(frame, &plan, k, &mut out) {
            Ok(written) => assert_eq!(written, len, "fragment {k} written short"),
            Err(reason) => panic!("fragment {k} not written: {reason:?}"),
        }
        assert!(
            len <= usize::from(mtu) + 14,
            "fragment {k}: {len} bytes, MTU {mtu}"
        );
        assert_eq!(
            out[..14],
            frame[..14],
            "fragment {k}: Ethernet header changed"
        );
        let piece = check_ipv4(&out[14..], 0);
        let h = piece.header();
        let last = k + 1 == plan.count();
        assert_eq!(
            h.identification(),
            header.identification(),
            "fragment {k}: id"
        );
        assert_eq!(h.protocol(), header.protocol(), "fragment {k}: protocol");
        assert_eq!(
            h.more_fragments(),
            !last || header.more_fragments(),
            "fragment {k}: MF"
        );
        let at = usize::from(h.fragments_offset().value()) * 8;
        assert_eq!(at, start + covered, "fragment {k}: offset");
        let part = piece.payload().payload;
        assert!(
            last || part.len() % 8 == 0,
            "fragment {k}: {} bytes of data",
            part.len()
        );
        assert_eq!(
            data.get(covered..covered + part.len()),
            Some(part),
            "fragment {k}: data"
        );
        covered += part.len();
    }
    assert_eq!(
        covered,
        data.len(),
        "fragments carry {covered} of {} bytes",
        data.len()
    );
    plan.count()
}
