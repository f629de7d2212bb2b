//! IPv6 on a port that owns IPv6 addresses (`fixtures/host6.rs`): neighbour discovery and
//! echo answered for owned addresses, the rest handed to the kernel twin or dropped.

mod fixtures;

use fixtures::{host6, pure};

#[test]
fn a_port_with_a_twin_answers_nd_and_echo_and_hands_the_rest_to_the_kernel() {
    let snapshot = pure::snapshot(host6::CONFIG, host6::PORT_MAC);
    let mut pipeline = pure::pipeline(host6::CONFIG, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &host6::fixtures(true), |i| {
        i as u64
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_port_without_a_twin_answers_the_same_and_drops_the_rest() {
    let snapshot = pure::snapshot(host6::CONFIG_NO_TWIN, host6::PORT_MAC);
    let mut pipeline = pure::pipeline(host6::CONFIG_NO_TWIN, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &host6::fixtures(false), |i| {
        i as u64
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
