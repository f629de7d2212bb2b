//! Connection timeouts at the pipeline level, with a clock the test controls: a connection
//! lives for its state's timeout (`[timeouts]`, `ipvsadm --set tcp tcpfin udp`), every packet
//! re-arms it, its expiry takes it off its real server's ActiveConn/InActConn, and a later
//! packet of the same flow is scheduled anew (a UDP datagram or a TCP SYN; a TCP segment
//! without SYN finds nothing: `no_conn`).
//!
//! Expiry runs the way a worker runs it: `Pipeline::expire(now, 64)` every 10 ms of the
//! test clock. The connection table removes an entry within the 16 ms tick its expiry
//! falls in (`conn/mod.rs`), so each check is made 1 ms before the timeout (still there) and
//! one tick after it (gone).

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fastpath::verdict::{DropReason, Verdict};
use fixtures::packet::{padded, tcp, udp, Ip, Mac, Tcp};
use fixtures::topo::{self, segments, C1, C3, CLIENT_TTL, DNS_QUERY, FROM_ROUTER, VIP};
use std::net::Ipv4Addr;

const RS1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
const RS1_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x11];
const RS2_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x12];

/// Timeouts (s): ESTABLISHED 7, FIN_WAIT 3, UDP 5.
const TCP_TIMEOUT_MS: u64 = 7_000;
const TCP_FIN_TIMEOUT_MS: u64 = 3_000;
const UDP_TIMEOUT_MS: u64 = 5_000;
/// One tick of the expiry wheel.
const TICK_MS: u64 = 16;

fn config() -> String {
    format!(
        r#"
[dataplane]
workers = [1]
conn_table_size = 64
[timeouts]
tcp = 7
tcp_fin = 3
udp = 5
{}
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "dpdk0"
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12"
  mode = "nat"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12"
  mode = "nat"
"#,
        topo::NETWORK
    )
}

/// A pipeline, its snapshot and the test clock.
struct Bench {
    snapshot: Snapshot,
    pipeline: Pipeline,
    now: u64,
}

impl Bench {
    fn new() -> Bench {
        let body = config();
        let snapshot = fixtures::pure::snapshot(&body, topo::PORT_MAC);
        let pipeline = fixtures::pure::pipeline(&body, &snapshot);
        Bench {
            snapshot,
            pipeline,
            now: 0,
        }
    }

    /// Moves the clock to `to` (ms), running the worker's expiry every 10 ms on the way.
    fn advance(&mut self, to: u64) {
        assert!(to >= self.now);
        while self.now < to {
            self.now = (self.now + 10).min(to);
            self.pipeline.expire(self.now, 64);
        }
    }

    /// Sends `input` at the current time and returns the verdict and the frame.
    fn packet(&mut self, input: &[u8]) -> (Verdict, Vec<u8>) {
        let mut frame = VecFrame::new(input);
        let verdict = self
            .pipeline
            .packet(&self.snapshot, 0, &mut frame, self.now);
        (verdict, frame.data().to_vec())
    }

    /// Asserts that `input` is sent as exactly `output`.
    fn forwards(&mut self, what: &str, input: &[u8], output: &[u8]) {
        let (verdict, bytes) = self.packet(input);
        assert_eq!(
            verdict,
            Verdict::Tx { port: 0 },
            "{what} at {} ms",
            self.now
        );
        assert!(
            bytes == output,
            "{what} at {} ms:\n{}",
            self.now,
            fixtures::packet::hex_diff(output, &bytes)
        );
    }

    /// (conns, active, inactive) of real `real` of the service on `vport`.
    fn real(&self, vport: u16, real: Ipv4Addr) -> (u64, u32, u32) {
        let service = self
            .snapshot
            .services()
            .find(|s| s.vip.port() == vport)
            .expect("service");
        let r = service
            .reals
            .iter()
            .find(|r| r.addr.ip() == real)
            .expect("real");
        (
            r.traffic.totals().conns,
            r.load.activeconns(),
            r.load.inactconns(),
        )
    }
}

/// A datagram C3:`cport` → VIP:53, and the same DNATed to `real`.
fn datagram(cport: u16, real: Ipv4Addr, real_mac: Mac) -> (Vec<u8>, Vec<u8>) {
    let ip = Ip::new(C3, VIP).ttl(CLIENT_TTL);
    (
        padded(udp(FROM_ROUTER, ip, cport, 53, DNS_QUERY)),
        padded(udp(
            topo::to(real_mac),
            ip.dst(real).ttl(CLIENT_TTL - 1),
            cport,
            53,
            DNS_QUERY,
        )),
    )
}

/// A segment C1:`cport` → VIP:80, and the same DNATed to `real`.
fn segment(cport: u16, t: Tcp, real: Ipv4Addr, real_mac: Mac) -> (Vec<u8>, Vec<u8>) {
    let ip = Ip::new(C1, VIP).ttl(CLIENT_TTL);
    (
        padded(tcp(FROM_ROUTER, ip, t.ports(cport, 80), b"")),
        padded(tcp(
            topo::to(real_mac),
            ip.dst(real).ttl(CLIENT_TTL - 1),
            t.ports(cport, 80),
            b"",
        )),
    )
}

#[test]
fn udp_flow_expires_after_the_udp_timeout_and_is_scheduled_anew() {
    let mut b = Bench::new();
    let (query, to_rs2) = datagram(5353, RS2, RS2_MAC);
    b.forwards("first datagram: rr's first pick RS2", &query, &to_rs2);
    assert_eq!(b.real(53, RS2), (1, 0, 1), "UDP counts as inactive");
    assert_eq!(b.pipeline.conns(), 1);

    // A second datagram at 4 s re-arms the flow for 5 s from then.
    b.advance(4_000);
    b.forwards("second datagram: same flow, RS2", &query, &to_rs2);
    b.advance(4_000 + UDP_TIMEOUT_MS - 1);
    assert_eq!(b.pipeline.conns(), 1, "alive until its timeout");
    assert_eq!(b.real(53, RS2), (1, 0, 1));

    b.advance(4_000 + UDP_TIMEOUT_MS + TICK_MS);
    assert_eq!(b.pipeline.conns(), 0, "expired");
    assert_eq!(b.real(53, RS2), (1, 0, 0), "InActConn back to 0");

    // The flow comes back: a new connection, rr's next pick.
    b.advance(10_000);
    let (query, to_rs1) = datagram(5353, RS1, RS1_MAC);
    b.forwards(
        "datagram after expiry: scheduled anew, RS1",
        &query,
        &to_rs1,
    );
    assert_eq!(b.real(53, RS1), (1, 0, 1));
    assert_eq!(b.real(53, RS2), (1, 0, 0));
    assert_eq!(b.pipeline.conns(), 1);
}

#[test]
fn established_tcp_expires_after_the_tcp_timeout_and_only_a_syn_reschedules() {
    let mut b = Bench::new();
    let s = segments();
    let (syn, syn_rs2) = segment(40001, s.syn, RS2, RS2_MAC);
    let (ack, ack_rs2) = segment(40001, s.ack, RS2, RS2_MAC);
    b.forwards("SYN: rr's first pick RS2", &syn, &syn_rs2);
    b.advance(100);
    b.forwards("ACK: ESTABLISHED", &ack, &ack_rs2);
    assert_eq!(b.real(80, RS2), (1, 1, 0), "ActiveConn 1");

    b.advance(100 + TCP_TIMEOUT_MS - 1);
    assert_eq!(b.real(80, RS2), (1, 1, 0), "alive until its timeout");
    b.advance(100 + TCP_TIMEOUT_MS + TICK_MS);
    assert_eq!(b.real(80, RS2), (1, 0, 0), "expired: ActiveConn back to 0");
    assert_eq!(b.pipeline.conns(), 0);

    b.advance(10_000);
    let (verdict, _) = b.packet(&ack);
    assert_eq!(
        verdict,
        Verdict::Drop(DropReason::NoConn),
        "an ACK of the expired connection is not scheduled"
    );
    let (syn_again, syn_rs1) = segment(40001, s.syn, RS1, RS1_MAC);
    b.forwards(
        "SYN of the same flow: scheduled anew, RS1",
        &syn_again,
        &syn_rs1,
    );
    assert_eq!(b.real(80, RS1), (1, 0, 1), "SYN_RECV is inactive");
}

#[test]
fn fin_wait_lasts_the_tcp_fin_timeout() {
    let mut b = Bench::new();
    let s = segments();
    let (syn, syn_rs2) = segment(40002, s.syn, RS2, RS2_MAC);
    let (ack, ack_rs2) = segment(40002, s.ack, RS2, RS2_MAC);
    b.forwards("SYN: RS2", &syn, &syn_rs2);
    // The server closes first: its FIN (OUTPUT) moves ESTABLISHED to FIN_WAIT.
    let server_fin = padded(tcp(
        topo::from(RS2_MAC),
        Ip::new(RS2, C1),
        s.server_fin.ports(80, 40002),
        b"",
    ));
    let (verdict, _) = b.packet(&padded(tcp(
        topo::from(RS2_MAC),
        Ip::new(RS2, C1),
        s.syn_ack.ports(80, 40002),
        b"",
    )));
    assert_eq!(verdict, Verdict::Tx { port: 0 }, "SYN-ACK");
    b.forwards("ACK: ESTABLISHED", &ack, &ack_rs2);
    assert_eq!(b.real(80, RS2), (1, 1, 0));
    b.advance(1_000);
    let (verdict, _) = b.packet(&server_fin);
    assert_eq!(verdict, Verdict::Tx { port: 0 }, "server FIN");
    assert_eq!(b.real(80, RS2), (1, 0, 1), "FIN_WAIT is inactive");

    b.advance(1_000 + TCP_FIN_TIMEOUT_MS - 1);
    assert_eq!(b.pipeline.conns(), 1, "alive until tcp_fin");
    b.advance(1_000 + TCP_FIN_TIMEOUT_MS + TICK_MS);
    assert_eq!(
        b.pipeline.conns(),
        0,
        "expired after tcp_fin, not after tcp"
    );
    assert_eq!(b.real(80, RS2), (1, 0, 0));
}
