//! FULLNAT fixture tables (`fixtures/fullnat.rs`) through the pure pipeline, compared byte for
//! byte, with the drop counters, the per-real counters, the TOA/PROXY event totals and the
//! local-address usage (`rvsd` runs the same tables on `net_pcap` in `dataplane/tests`).

mod fixtures;

use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fixtures::{fullnat, pure, topo};

/// The tests of this file run one at a time: the exhaustion tables are 64 514 rows, and an
/// rvsd whose worker is starved of CPU for 300 ms ends its pcap run early.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts the TOA/PROXY totals and the local-address usage a pipeline reports.
fn assert_pipeline_fullnat(
    pipeline: &Pipeline,
    snapshot: &Snapshot,
    events: (u64, u64, u64),
    usage: &[(&str, &str, u64, u64)],
) {
    let e = pipeline.events();
    assert_eq!(
        (e.toa_inserted, e.toa_no_room, e.proxy_inserted),
        events,
        "(toa_inserted, toa_no_room, proxy_inserted)"
    );
    pipeline.publish_laddr_usage();
    for &(vip, proto, conns, conflicts) in usage {
        let service = snapshot
            .services()
            .find(|s| s.vip.to_string() == vip && s.proto.as_str() == proto)
            .unwrap_or_else(|| panic!("no service {proto} {vip}"));
        assert_eq!(
            service.laddr_usage.totals(),
            vec![(fullnat::LIP, conns, conflicts)],
            "{proto} {vip}: (local address, connections, conflicts)"
        );
    }
}

#[test]
fn pipeline_follows_the_fullnat_fixture_table() {
    let _serial = serial();
    let body = fullnat::config();
    let table = fullnat::table(None);
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &table.rows, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, &fullnat::expected_counters());
    assert_pipeline_fullnat(&pipeline, &snapshot, fullnat::EVENTS, &fullnat::LADDR_USAGE);
}

/// PROXY protocol and a lost first segment: the real server's acknowledgments and SACK edges
/// inside the header's sequence range, and ICMP errors quoting the first segment (pure
/// pipeline only: see `fullnat::proxy_lost_first_segment`).
#[test]
fn pipeline_maps_the_proxy_header_range_back_to_the_client_isn() {
    let _serial = serial();
    let body = fullnat::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let table = fullnat::proxy_lost_first_segment();
    let failures = pure::run(&mut pipeline, &snapshot, &table, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, &fullnat::proxy_lost_first_segment_counters());
    assert_eq!(pipeline.events().proxy_inserted, 3);
}

#[test]
fn pipeline_exhausts_the_local_ports_towards_one_real_server() {
    let _serial = serial();
    let body = fullnat::exhaustion_config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let table = fullnat::exhaustion();
    let failures = pure::run(&mut pipeline, &snapshot, &table, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, &fullnat::exhaustion_counters());
    assert_pipeline_fullnat(
        &pipeline,
        &snapshot,
        (0, 0, 0),
        &fullnat::EXHAUSTION_LADDR_USAGE,
    );
}

/// A FULLNAT connection that expires gives its local port back to its pool's count
/// (`laddrs[].conns`, `rvsadm -G`), as one removed on reuse does; the cursor keeps going.
#[test]
fn pipeline_gives_local_ports_back_when_connections_expire() {
    let _serial = serial();
    let body = format!("{}\n[timeouts]\nudp = 5\n", fullnat::exhaustion_config());
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let rows = fullnat::exhaustion();
    let usage = |pipeline: &Pipeline, conns: u64| {
        assert_pipeline_fullnat(
            pipeline,
            &snapshot,
            (0, 0, 0),
            &[("10.0.0.100:54", "udp", conns, 0)],
        );
    };
    // Two flows at 0 ms, from LIP:P0 and LIP:P0+1.
    let failures = pure::run(&mut pipeline, &snapshot, &rows[..2], |_| 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    usage(&pipeline, 2);
    // UDP timeout 5 s: gone one expiry tick (16 ms) after, with expiry every 10 ms.
    for now in (0..=5_032).step_by(10) {
        pipeline.expire(now, 64);
    }
    assert_eq!(pipeline.conns(), 0, "both flows expired");
    usage(&pipeline, 0);
    // A new flow takes the next port, P0+2.
    let failures = pure::run(&mut pipeline, &snapshot, &rows[2..3], |_| 5_040);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    usage(&pipeline, 1);
}

/// `[dataplane] laddr_ports` bounds the local ports: with [40000, 40003] the first four flows
/// towards one real server take exactly those four ports (in the order the seeded cursor
/// walks them), and the fifth is refused as `laddr_exhausted`.
#[test]
fn pipeline_takes_local_ports_from_the_configured_range_only() {
    use fastpath::frame::{Frame, VecFrame};
    use fastpath::verdict::{DropReason, Verdict};
    use fixtures::packet::{self, Ip};
    let _serial = serial();
    let body = fullnat::exhaustion_config().replace(
        "conn_table_size = 65536",
        "conn_table_size = 65536\nladdr_ports = [40000, 40003]",
    );
    assert!(body.contains("laddr_ports"));
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let mut send = |cport: u16| {
        let ip = Ip::new(topo::C1, topo::VIP).ttl(topo::CLIENT_TTL);
        let input = packet::udp(topo::FROM_ROUTER, ip, cport, 54, b"q");
        let mut frame = VecFrame::new(&input);
        let verdict = pipeline.packet(&snapshot, 0, &mut frame, 0);
        (verdict, frame.data().to_vec())
    };
    let mut ports: Vec<u16> = (0..4)
        .map(|n| {
            let (verdict, out) = send(2000 + n);
            assert_eq!(verdict, Verdict::Tx { port: 0 }, "flow {n}");
            assert_eq!(
                out[26..30],
                fullnat::LIP.octets(),
                "flow {n}: from the local address"
            );
            packet::get_u16(&out, 34)
        })
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [40000, 40001, 40002, 40003]);
    assert_eq!(
        send(2004).0,
        Verdict::Drop(DropReason::LaddrExhausted),
        "the range is used up"
    );
}
