//! LVS-NAT with real TCP: a client fetches pages from three real servers through rvsd.

mod common;

use common::lvs::{self, Mode};

#[test]
fn nat_balances_1000_http_requests_by_weight() {
    let mut lvs = lvs::start(Mode::Nat, &[3, 2, 1], "wrr", 1);
    let split = lvs.fetch(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    // One worker, wrr 3:2:1: every cycle of six connections goes 3/2/1.
    let (a, b, c) = (split["rs0"], split["rs1"], split["rs2"]);
    assert_eq!(a + b + c, 1000);
    assert!(
        (a as i64 - 500).abs() <= 3 && (b as i64 - 333).abs() <= 3 && (c as i64 - 167).abs() <= 3,
        "{split:?}"
    );
    let service = &stats["services"][0];
    assert_eq!(service["conns"], 1000, "{stats}");
    assert!(
        service["outpkts"].as_u64().unwrap() >= 3000,
        "replies went back through rvsd: {stats}"
    );
}
