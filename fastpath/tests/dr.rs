//! DR fixture table (`fixtures/dr.rs`): the conversation through the pure pipeline, compared byte for
//! byte (`rvsd` runs the same table on `net_pcap` in `dataplane/tests`), with the drop counters and the
//! per-service / per-real counters.

mod fixtures;

use fixtures::{dr, pure, topo};

#[test]
fn pipeline_follows_the_dr_fixture_table() {
    pure::assert_table(
        &dr::config(),
        topo::PORT_MAC,
        &dr::fixtures(),
        &dr::expected_counters(),
    );
}

/// Weight 0 on a real server with an established connection (the worker adopting a new
/// snapshot, as after `rvsadm -e -w 0` or a SIGHUP reload): the connection keeps going to it,
/// new connections go elsewhere. (rvsd's own reload path is covered by the rvsadm tests.)
#[test]
fn pipeline_keeps_connections_of_a_quiesced_dr_real() {
    pure::assert_reconfigured(
        &dr::config(),
        &dr::config_with(0),
        topo::PORT_MAC,
        &dr::before_quiesce(),
        &dr::after_quiesce(),
        &dr::quiesce_counters(),
    );
}
