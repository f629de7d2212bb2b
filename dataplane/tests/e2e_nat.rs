//! LVS-NAT with real TCP: a client fetches pages from three real servers through rvsd.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

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

#[test]
fn rvsadm_lists_and_changes_the_live_nat_service() {
    let mut lvs = lvs::start(Mode::Nat, &[1, 1, 1], "rr", 2);
    let listing = lvs.rvsadm(&["-L", "-n"]);
    let expected_head = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.0.0.100:80 rr\n";
    assert!(listing.contains(expected_head), "{listing}");
    assert!(
        listing
            .contains("  -> 192.168.10.11:8080           Masq    1      0          0         \n"),
        "{listing}"
    );

    // Quiesce rs0: existing connections may finish, new ones go to rs1 and rs2 only.
    lvs.rvsadm(&[
        "-e",
        "-t",
        "10.0.0.100:80",
        "-r",
        "192.168.10.11:8080",
        "-m",
        "-w",
        "0",
    ]);
    let split = lvs.fetch(300);
    assert_eq!(split.get("rs0"), None, "{split:?}");
    assert_eq!(split.get(""), None, "{split:?}");
    assert_eq!(split["rs1"] + split["rs2"], 300);

    // Delete rs1 and add a fourth server that does not exist: new connections skip rs1.
    lvs.rvsadm(&["-d", "-t", "10.0.0.100:80", "-r", "192.168.10.12:8080"]);
    let split = lvs.fetch(100);
    assert_eq!(split.get("rs2").copied(), Some(100), "{split:?}");

    let stats = lvs.rvsadm(&["-L", "-n", "--stats"]);
    assert!(stats.contains("TCP  10.0.0.100:80"), "{stats}");
    let conns = lvs.rvsadm(&["-L", "-n", "-c"]);
    assert!(
        conns.contains("TIME_WAIT") || conns.contains("FIN_WAIT") || conns.contains("CLOSE"),
        "{conns}"
    );
    let drops = lvs.rvsadm(&["--drops"]);
    assert!(!drops.is_empty());
    let stats = lvs.stop();
    // The kernel's packet fanout spreads flows over both queues by its own hash, so replies
    // often arrive at the worker that does not own the connection: they were handed over.
    let handed: u64 = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["handed_over"].as_u64().unwrap())
        .sum();
    assert!(handed > 0, "no hand-over between the two workers: {stats}");
    assert_eq!(stats["drops"]["redirect_full"], 0, "{stats}");
}

#[test]
fn fullnat_balances_1000_http_requests_to_real_servers_without_a_route_back() {
    let mut lvs = lvs::start(Mode::FullNat, &[3, 2, 1], "wrr", 1);
    let split = lvs.fetch(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    let (a, b, c) = (split["rs0"], split["rs1"], split["rs2"]);
    assert!(
        (a as i64 - 500).abs() <= 3 && (b as i64 - 333).abs() <= 3 && (c as i64 - 167).abs() <= 3,
        "{split:?}"
    );
    let service = &stats["services"][0];
    assert_eq!(service["conns"], 1000, "{stats}");
    assert!(service["outpkts"].as_u64().unwrap() >= 3000, "{stats}");
    assert!(
        stats["toa_inserted"].as_u64().unwrap() >= 1000,
        "every connection's first ACK carries TOA: {stats}"
    );
}
