//! LVS-DR and LVS-TUN with real TCP: real servers hold the VIP themselves and answer the
//! client directly; rvsd only sees the client's packets.

mod common;

use common::lvs::{self, Mode};

fn balances(mode: Mode) {
    let mut lvs = lvs::start(mode, &[1, 1, 2], "wrr", 1);
    let split = lvs.fetch(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    let (a, b, c) = (split["rs0"], split["rs1"], split["rs2"]);
    assert_eq!(a + b + c, 1000);
    assert!(
        (a as i64 - 250).abs() <= 3 && (b as i64 - 250).abs() <= 3 && (c as i64 - 500).abs() <= 3,
        "{split:?}"
    );
    let service = &stats["services"][0];
    assert_eq!(service["conns"], 1000, "{stats}");
    assert_eq!(
        service["outpkts"], 0,
        "replies bypass the balancer: {stats}"
    );
    assert!(service["inpkts"].as_u64().unwrap() >= 4000, "{stats}");
}

#[test]
fn dr_balances_1000_http_requests_by_weight() {
    balances(Mode::Dr);
}

#[test]
fn tun_balances_1000_http_requests_by_weight() {
    balances(Mode::Tun);
}
