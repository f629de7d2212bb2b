//! TUN fixture table (`fixtures/tun.rs`): the conversation through the pure pipeline, compared byte for
//! byte (`rvsd` runs the same table on `net_pcap` in `dataplane/tests`), with the drop counters and the
//! per-service / per-real counters.

mod fixtures;

use fixtures::{pure, topo, tun};

#[test]
fn pipeline_follows_the_tun_fixture_table() {
    pure::assert_table(
        &tun::config(),
        topo::PORT_MAC,
        &tun::fixtures(),
        &tun::expected_counters(),
    );
}

/// Weight 0 on a real server with an established connection (the worker adopting a new
/// snapshot, as after `rvsadm -e -w 0` or a SIGHUP reload): the connection keeps going to it,
/// new connections go elsewhere. (rvsd's own reload path is covered by the rvsadm tests.)
#[test]
fn pipeline_keeps_connections_of_a_quiesced_tun_real() {
    pure::assert_reconfigured(
        &tun::config(),
        &tun::config_with(0),
        topo::PORT_MAC,
        &tun::before_quiesce(),
        &tun::after_quiesce(),
        &tun::quiesce_counters(),
    );
}

/// GUE and GRE (`fixtures/tun_types.rs`): every tunnel option, byte for byte.
#[test]
fn pipeline_follows_the_gue_and_gre_fixture_table() {
    pure::assert_table(
        &fixtures::tun_types::config(),
        topo::PORT_MAC,
        &fixtures::tun_types::fixtures(),
        &fixtures::tun_types::expected_counters(),
    );
}

/// Editing a real's tunnel type changes the encapsulation of its established connections.
#[test]
fn pipeline_follows_an_edit_of_the_tunnel_type() {
    pure::assert_reconfigured(
        &fixtures::tun_types::config(),
        &fixtures::tun_types::config_with(r#"{ type = "gre", csum = "csum" }"#),
        topo::PORT_MAC,
        &fixtures::tun_types::before_edit(),
        &fixtures::tun_types::after_edit(),
        &fixtures::tun_types::edit_counters(),
    );
}
