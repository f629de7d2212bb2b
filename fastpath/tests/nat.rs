//! NAT fixture table (`fixtures/nat.rs`): the conversation through the pure pipeline, compared byte for
//! byte (`rvsd` runs the same table on `net_pcap` in `dataplane/tests`), with the drop counters and the
//! per-service / per-real counters.

mod fixtures;

use fixtures::{nat, pure, topo};

#[test]
fn pipeline_follows_the_nat_fixture_table() {
    pure::assert_table(
        &nat::config(),
        topo::PORT_MAC,
        &nat::fixtures(),
        &nat::expected_counters(),
    );
}

/// Weight 0 on a real server with an established connection (the worker adopting a new
/// snapshot, as after `rvsadm -e -w 0` or a SIGHUP reload): the connection keeps going to it,
/// new connections go elsewhere. (rvsd's own reload path is covered by the rvsadm tests.)
#[test]
fn pipeline_keeps_connections_of_a_quiesced_nat_real() {
    pure::assert_reconfigured(
        &nat::config(),
        &nat::config_with(0),
        topo::PORT_MAC,
        &nat::before_quiesce(),
        &nat::after_quiesce(),
        &nat::quiesce_counters(),
    );
}
