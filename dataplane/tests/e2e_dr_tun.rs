//! LVS-DR and LVS-TUN with real TCP: real servers hold the VIP themselves and answer the
//! client directly; rvsd only sees the client's packets. TUN runs with IP-in-IP and with the
//! kernel's other tunnel types, GUE and GRE (with their checksums, which the real servers'
//! decapsulators verify).

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode, Options};
use conf::{TunCsum, TunKind, Tunnel};

fn balances(mode: Mode) {
    balances_with(mode, Tunnel::default());
}

fn balances_with(mode: Mode, tunnel: Tunnel) {
    let mut lvs = lvs::start_opts(&Options {
        tunnel,
        ..Options::new(mode, &[1, 1, 2], "wrr", 1)
    });
    let (split, tuples) = lvs.fetch_ports(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    let (a, b, c) = (split["rs0"], split["rs1"], split["rs2"]);
    assert_eq!(a + b + c, 1000);
    // A request from a client port that an earlier one used while its connection is still in
    // FIN_WAIT is not rescheduled (conn_reuse_mode 1, as IPVS: only TIME_WAIT and CLOSE are
    // reused); it stays with the earlier real server and opens no connection. The client's
    // wide port range makes that rare; when it happens the split may move by that much and
    // the connection count lies between the distinct four-tuples and the requests.
    let reused = (1000 - tuples) as i64;
    assert!(
        (a as i64 - 250).abs() <= 3 + reused
            && (b as i64 - 250).abs() <= 3 + reused
            && (c as i64 - 500).abs() <= 3 + reused,
        "{split:?}, {reused} reused client ports"
    );
    let service = &stats["services"][0];
    let conns = service["conns"].as_u64().unwrap();
    assert!(
        conns >= tuples as u64 && conns <= 1000,
        "{tuples} distinct client ports: {stats}"
    );
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

#[test]
fn gue_balances_1000_http_requests_by_weight() {
    balances_with(
        Mode::Tun,
        Tunnel {
            kind: TunKind::Gue,
            port: 6080,
            csum: TunCsum::Csum,
        },
    );
}

#[test]
fn gue_without_checksum_balances_1000_http_requests_by_weight() {
    balances_with(
        Mode::Tun,
        Tunnel {
            kind: TunKind::Gue,
            port: 6081,
            csum: TunCsum::None,
        },
    );
}

#[test]
fn gre_balances_1000_http_requests_by_weight() {
    balances_with(
        Mode::Tun,
        Tunnel {
            kind: TunKind::Gre,
            port: 0,
            csum: TunCsum::Csum,
        },
    );
}
