//! FULLNAT fixture tables (`fixtures/fullnat.rs`): the same conversations through the pure
//! pipeline and through `rvsd` on `net_pcap`, compared byte for byte, with the drop
//! counters, the per-real counters, the TOA/PROXY event totals and the local-address usage.

mod common;
mod fixtures;

use dataplane::process::Pipeline;
use dataplane::snapshot::Snapshot;
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
    pipeline.publish_laddr_usage(snapshot);
    for &(vip, proto, conns, conflicts) in usage {
        let service = snapshot
            .services
            .iter()
            .find(|s| s.vip.to_string() == vip && s.proto.as_str() == proto)
            .unwrap_or_else(|| panic!("no service {proto} {vip}"));
        assert_eq!(
            service.laddr_usage.totals(),
            vec![(fullnat::LIP, conns, conflicts)],
            "{proto} {vip}: (local address, connections, conflicts)"
        );
    }
}

/// Asserts the same in a `--stats-json` document.
fn assert_json_fullnat(
    stats: &serde_json::Value,
    events: (u64, u64, u64),
    usage: &[(&str, &str, u64, u64)],
) {
    let n = |key: &str| stats[key].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        (n("toa_inserted"), n("toa_no_room"), n("proxy_inserted")),
        events,
        "(toa_inserted, toa_no_room, proxy_inserted) in {stats}"
    );
    for &(vip, proto, conns, conflicts) in usage {
        let service = stats["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["vip"] == vip && s["proto"] == proto)
            .unwrap_or_else(|| panic!("no service {proto} {vip} in {stats}"));
        assert_eq!(
            service["laddrs"],
            serde_json::json!([{
                "addr": fullnat::LIP.to_string(),
                "conns": conns,
                "conflicts": conflicts,
            }]),
            "{proto} {vip} local addresses"
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

/// rvsd's ISNs are secret and time-based: they are read from the SYNs it forwarded, and
/// every later segment of each connection must carry the same δ (see the fixture module).
#[test]
fn rvsd_forwards_the_fullnat_fixture_table_on_net_pcap() {
    let _serial = serial();
    let body = fullnat::config();
    let nominal = fullnat::table(None);
    let run = common::run_pcap(&body, &nominal.inputs());
    let announcements = fullnat::announcements();
    let isns = fullnat::isns_from_output(&nominal, announcements.len(), &run.output);
    let table = fullnat::table(Some(&isns));
    assert_eq!(
        table.inputs(),
        nominal.inputs(),
        "the inputs do not depend on rvs's ISNs"
    );
    fixtures::check_rvsd(
        &run,
        announcements,
        &table.rows,
        &fullnat::expected_counters(),
    );
    assert_json_fullnat(&run.stats, fullnat::EVENTS, &fullnat::LADDR_USAGE);
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

#[test]
fn rvsd_exhausts_the_local_ports_towards_one_real_server() {
    let _serial = serial();
    let body = fullnat::exhaustion_config();
    let table = fullnat::exhaustion();
    let run = fixtures::assert_rvsd(
        &body,
        fullnat::announcements(),
        &table,
        &fullnat::exhaustion_counters(),
    );
    assert_json_fullnat(&run.stats, (0, 0, 0), &fullnat::EXHAUSTION_LADDR_USAGE);
    let lines: Vec<&str> = run
        .log
        .lines()
        .filter(|l| l.contains("no free local address and port"))
        .collect();
    assert_eq!(lines.len(), 1, "one log line for one refusal:\n{}", run.log);
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains("udp service 10.0.0.100:54")
            && lines[0].contains("towards 10.0.0.11:54")
            && lines[0].contains("(1 so far)"),
        "{}",
        lines[0]
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
