//! A live change to one service among many leaves every other service as it was in a worker
//! that adopts it: the same scheduler state (the rr cursor, the wrr mark: the next picks are
//! those a worker that never saw the change makes), the same counters (the very same
//! `Service`, shared by both snapshots) and the same connections. Checked for both ways a
//! snapshot is made (`Snapshot::update` for a control request, `Snapshot::build` for a reload),
//! for a worker that skipped snapshots, and for one so far behind that it compares every
//! service.
//!
//! Two pipelines take the same packets: `steady` stays on the first snapshot, `live` adopts
//! each change. For every service the change did not touch, their outputs must be identical.

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::{Change, Snapshot};
use fastpath::verdict::{DropReason, Verdict};
use fixtures::packet::{tcp, Ip, Tcp};
use fixtures::topo::{self, C1, CLIENT_TTL, FROM_ROUTER, VIP};
use std::net::SocketAddrV4;
use std::sync::Arc;

/// The services at start: ports FIRST..FIRST + SERVICES of the VIP, rr and wrr in turn.
const FIRST: u16 = 1001;
const SERVICES: u16 = 24;
/// The service the tests add, and the one they remove.
const ADDED: u16 = 2000;
const REMOVED: u16 = 1012;

fn sched_of(port: u16) -> &'static str {
    if port % 2 == 0 {
        "wrr"
    } else {
        "rr"
    }
}

/// A NAT service on `port` with three real servers of weights 3, 2, 1.
fn service_toml(port: u16, sched: &str) -> String {
    let mut text =
        format!("[[service]]\nvip = \"10.0.0.100:{port}\"\nproto = \"tcp\"\nsched = \"{sched}\"\n");
    for (host, weight) in [(11, 3), (12, 2), (13, 1)] {
        text += &format!(
            "  [[service.real]]\n  addr = \"10.0.0.{host}:8080\"\n  mode = \"nat\"\n  weight = {weight}\n"
        );
    }
    text
}

/// The configuration body with the services on `ports`.
fn body(ports: &[u16]) -> String {
    let mut text = format!(
        "[dataplane]\nworkers = [1]\nconn_table_size = 4096\n{}",
        topo::NETWORK
    );
    for host in [11, 12, 13] {
        text += &format!(
            "[[neighbor]]\nip = \"10.0.0.{host}\"\nmac = \"02:00:00:00:00:{host}\"\nport = \"dpdk0\"\n"
        );
    }
    for &port in ports {
        text += &service_toml(port, sched_of(port));
    }
    text
}

fn start_ports() -> Vec<u16> {
    (FIRST..FIRST + SERVICES).collect()
}

/// One service's configuration, as a control request carries it.
fn service(port: u16, sched: &str) -> conf::Service {
    let text = format!("{}{}", body(&[]), service_toml(port, sched));
    fixtures::pure::config(&text).services.remove(0)
}

fn vip(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(VIP, port)
}

/// How the next snapshot is made.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `Snapshot::update` with the change (a control request).
    Update,
    /// `Snapshot::build` of the whole configuration with the previous snapshot (a reload).
    Build,
}

/// The snapshot after `previous` in which the services are those on `ports` (differing from
/// `previous` by `change`).
fn next(way: Way, previous: &Snapshot, change: Change<'_>, ports: &[u16]) -> Snapshot {
    match way {
        Way::Update => previous.update(&[change]).expect("update"),
        Way::Build => Snapshot::build(
            &fixtures::pure::config(&body(ports)),
            &[topo::PORT_MAC],
            Some(previous),
            1,
        )
        .expect("build"),
    }
}

/// A client segment from port `cport` to the service on `port`.
fn segment(cport: u16, port: u16, flags: &'static str) -> Vec<u8> {
    let ip = Ip::new(C1, VIP).ttl(CLIENT_TTL);
    let seg = Tcp::new(cport, port, flags);
    let seg = if flags.contains('A') {
        seg.seq(2).ack(1)
    } else {
        seg
    };
    tcp(FROM_ROUTER, ip, seg, b"")
}

fn send(p: &mut Pipeline, snapshot: &Snapshot, input: &[u8]) -> (Verdict, Vec<u8>) {
    let mut frame = VecFrame::new(input);
    let verdict = p.packet(snapshot, 0, &mut frame, 0);
    (verdict, frame.data().to_vec())
}

/// Two workers given the same packets.
struct Twins {
    /// The snapshot `steady` keeps.
    first: Arc<Snapshot>,
    /// The snapshot `live` adopted last.
    current: Arc<Snapshot>,
    steady: Pipeline,
    live: Pipeline,
    /// SYNs sent to each port so far (by each pipeline), for the client ports.
    syns: std::collections::BTreeMap<u16, u16>,
}

impl Twins {
    fn new() -> Twins {
        let body = body(&start_ports());
        let first = Arc::new(fixtures::pure::snapshot(&body, topo::PORT_MAC));
        let steady = fixtures::pure::pipeline(&body, &first);
        let live = fixtures::pure::pipeline(&body, &first);
        Twins {
            current: Arc::clone(&first),
            first,
            steady,
            live,
            syns: Default::default(),
        }
    }

    /// `live` adopts `next`.
    fn adopt(&mut self, next: Snapshot) {
        self.live.adopt(Some(&self.current), &next);
        self.current = Arc::new(next);
    }

    /// `count` new connections to each of `ports` through both workers: each must be
    /// scheduled to the same real server and rewritten the same way.
    fn open(&mut self, ports: &[u16], count: u16) {
        for &port in ports {
            let done = self.syns.entry(port).or_default();
            for cport in *done..*done + count {
                let input = segment(10_000 + cport, port, "S");
                let want = send(&mut self.steady, &self.first, &input);
                let got = send(&mut self.live, &self.current, &input);
                assert_eq!(want.0, Verdict::Tx { port: 0 }, "port {port}");
                assert!(
                    want == got,
                    "port {port} ({}), SYN {cport}: another pick than a worker that saw no change\n{}",
                    sched_of(port),
                    fixtures::packet::hex_diff(&want.1, &got.1)
                );
            }
            *done += count;
        }
    }

    /// An ACK on every connection opened to `ports`: each still forwarded, as by `steady`.
    fn established(&mut self, ports: &[u16]) {
        for &port in ports {
            for cport in 0..self.syns.get(&port).copied().unwrap_or(0) {
                let input = segment(10_000 + cport, port, "A");
                let want = send(&mut self.steady, &self.first, &input);
                let got = send(&mut self.live, &self.current, &input);
                assert_eq!(want.0, Verdict::Tx { port: 0 }, "port {port}");
                assert!(want == got, "port {port}, ACK {cport}: connection lost");
            }
        }
    }

    /// Every service on `ports` is the very same in the current snapshot as in the first (its
    /// counters and dest list with it), at the same slot, and its connections are all counted.
    fn same_services(&self, ports: &[u16]) {
        let snapshot = &self.current;
        for &port in ports {
            let (before, after) = (
                self.first
                    .service(conf::Proto::Tcp, vip(port).into())
                    .expect("was there"),
                snapshot
                    .service(conf::Proto::Tcp, vip(port).into())
                    .expect("still there"),
            );
            assert!(Arc::ptr_eq(before, after), "port {port} rebuilt");
            assert_eq!(
                self.first.service_index(conf::Proto::Tcp, vip(port)),
                snapshot.service_index(conf::Proto::Tcp, vip(port)),
                "port {port} moved"
            );
            let opened = 2 * u64::from(self.syns.get(&port).copied().unwrap_or(0));
            assert_eq!(after.traffic.totals().conns, opened, "port {port}");
            let counted: u32 = after
                .reals
                .iter()
                .map(|r| r.load.activeconns() + r.load.inactconns())
                .sum();
            assert_eq!(
                u64::from(counted),
                opened,
                "port {port}: ActiveConn + InActConn"
            );
        }
    }
}

fn without(ports: &[u16], gone: u16) -> Vec<u16> {
    ports.iter().copied().filter(|&p| p != gone).collect()
}

#[test]
fn one_service_added_or_removed_leaves_every_other_service_as_it_was() {
    for way in [Way::Update, Way::Build] {
        let mut t = Twins::new();
        let ports = start_ports();
        // Odd numbers of picks, so that no cursor or wrr mark is back at its start.
        t.open(&ports, 5);

        let added = service(ADDED, "rr");
        let mut with_added = ports.clone();
        with_added.push(ADDED);
        t.adopt(next(
            way,
            &t.current,
            Change::PutService(&added),
            &with_added,
        ));
        t.same_services(&ports);
        t.open(&ports, 7);
        t.established(&ports);

        let remaining = without(&ports, REMOVED);
        let mut after_removal = remaining.clone();
        after_removal.push(ADDED);
        let removed = Change::RemoveService(conf::Proto::Tcp, vip(REMOVED).into());
        t.adopt(next(way, &t.current, removed, &after_removal));
        t.same_services(&remaining);
        t.open(&remaining, 3);
        // The removed service takes no new connection; its connections go on.
        let syn = segment(30_000, REMOVED, "S");
        let current = Arc::clone(&t.current);
        assert_eq!(
            send(&mut t.live, &current, &syn).0,
            Verdict::Drop(DropReason::NoService),
            "{way:?}"
        );
        t.established(&ports);
    }
}

#[test]
fn a_worker_that_skipped_snapshots_keeps_every_service_that_did_not_change() {
    // 5 snapshots skipped: the history names what changed; 300: beyond the history, so the
    // worker compares every service, and still keeps those that are the same.
    for skipped in [5, 300] {
        let mut t = Twins::new();
        let ports = start_ports();
        t.open(&ports, 5);
        let touched = FIRST;
        let added = service(ADDED, "rr");
        let mut latest = t
            .current
            .update(&[Change::PutService(&added)])
            .expect("add");
        for i in 1..skipped {
            let edited = service(touched, if i % 2 == 0 { "wrr" } else { "rr" });
            latest = latest.update(&[Change::PutService(&edited)]).expect("edit");
        }
        t.adopt(latest);
        let untouched = without(&ports, touched);
        t.same_services(&untouched);
        t.open(&untouched, 7);
        t.established(&untouched);
        let current = Arc::clone(&t.current);
        for port in [touched, ADDED] {
            let (verdict, _) = send(&mut t.live, &current, &segment(40_000, port, "S"));
            assert_eq!(
                verdict,
                Verdict::Tx { port: 0 },
                "{skipped} skipped, port {port}"
            );
        }
    }
}

#[test]
fn a_service_added_in_a_freed_slot_starts_afresh() {
    let mut t = Twins::new();
    let ports = start_ports();
    t.open(&ports, 5);
    let removed = Change::RemoveService(conf::Proto::Tcp, vip(REMOVED).into());
    let freed = t.current.service_index(conf::Proto::Tcp, vip(REMOVED));
    t.adopt(t.current.update(&[removed]).expect("remove"));
    let added = service(ADDED, sched_of(REMOVED));
    t.adopt(
        t.current
            .update(&[Change::PutService(&added)])
            .expect("add"),
    );
    assert_eq!(
        t.current.service_index(conf::Proto::Tcp, vip(ADDED)),
        freed,
        "the slot is reused"
    );
    // The same picks as a worker that starts on this snapshot: nothing left of the removed
    // service's scheduler.
    let current = Arc::clone(&t.current);
    let mut fresh = Pipeline::new(0, 1, 4096, &current, 0).expect("pipeline");
    for cport in 0..7 {
        let input = segment(50_000 + cport, ADDED, "S");
        let want = send(&mut fresh, &current, &input);
        assert_eq!(want.0, Verdict::Tx { port: 0 });
        assert_eq!(send(&mut t.live, &current, &input), want, "SYN {cport}");
    }
    let remaining = without(&ports, REMOVED);
    t.same_services(&remaining);
    t.open(&remaining, 3);
}
