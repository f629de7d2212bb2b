//! Egress MTU fixture table (`fixtures/mtu.rs`) through the pure pipeline, compared byte for
//! byte (fragments as the worker cuts them), with the drop counters and the per-real
//! counters (`rvsd` runs the same table on `net_pcap` in `dataplane/tests`).

mod fixtures;

use fixtures::{mtu, pure, topo};

#[test]
fn pipeline_follows_the_mtu_fixture_table() {
    let body = mtu::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let table = mtu::fixtures();
    let failures = pure::run(&mut pipeline, &snapshot, &table, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, &mtu::expected_counters());
    assert_eq!(
        pipeline.events().icmp_errors_sent,
        8,
        "fragmentation needed (6) and time exceeded (2), the refused one not counted"
    );
}
