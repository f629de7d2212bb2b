//! Live reconfiguration under real TCP load (issue 5): 200 changes (weights, quiescing,
//! real servers deleted and re-added, scheduler swaps, SIGHUP reloads) while long-lived
//! connections exchange data and new connections keep arriving. No established connection
//! may break or move, every new connection must succeed, and a drained real server must get
//! no new connections.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode, ECHO_PORT, VIP};
use std::process::{Command, Stdio};

/// Schedulers that always find a real server while one has a non-zero weight (sh and mh do
/// not: a client whose bucket belongs to a quiesced server gets none, as in IPVS).
const SCHEDULERS: [&str; 8] = ["rr", "wrr", "wlc", "lc", "sed", "nq", "lblc", "ch"];

#[test]
fn two_hundred_changes_break_no_established_connection() {
    let mut lvs = lvs::start_with(Mode::Nat, &[1, 1, 1], "rr", 2, true);
    let web = format!("{VIP}:80");
    let real = |i: usize| format!("{}:8080", lvs::rip(Mode::Nat, i));

    // 30 connections that stay open for the whole test, one echo round trip every 50 ms each,
    // until the test creates `stop`.
    let stop = lvs.topo.dir.path().join("stop-long-lived");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/longlived.py");
    let long_lived = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lvs.client,
            "python3",
            script,
            &VIP.to_string(),
        ])
        .args([&ECHO_PORT.to_string(), "30", "300", stop.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start long-lived client");

    let mut changes = 0;
    let mut new_conns = 0;
    for round in 0..40 {
        // Five changes per round, cycling through every kind.
        let w = |k: usize| ((round * 7 + k * 3) % 5).to_string();
        lvs.rvsadm(&["-e", "-t", &web, "-r", &real(round % 3), "-m", "-w", &w(0)]);
        lvs.rvsadm(&["-E", "-t", &web, "-s", SCHEDULERS[round % SCHEDULERS.len()]]);
        let echo = format!("{VIP}:{ECHO_PORT}");
        let echo_real = format!("{}:{ECHO_PORT}", lvs::rip(Mode::Nat, round % 3));
        lvs.rvsadm(&["-e", "-t", &echo, "-r", &echo_real, "-m", "-w", &w(1)]);
        if round % 8 == 3 {
            // A real server deleted and re-added: its connections live on, new ones restart it.
            lvs.rvsadm(&["-d", "-t", &echo, "-r", &echo_real]);
            lvs.rvsadm(&["-a", "-t", &echo, "-r", &echo_real, "-m", "-w", "1"]);
        } else {
            lvs.rvsadm(&[
                "-E",
                "-t",
                &echo,
                "-s",
                SCHEDULERS[(round + 3) % SCHEDULERS.len()],
            ]);
            lvs.rvsadm(&[
                "-e",
                "-t",
                &web,
                "-r",
                &real((round + 1) % 3),
                "-m",
                "-w",
                &w(2),
            ]);
        }
        changes += 5;
        if round % 10 == 9 {
            // SIGHUP: back to the file (weights 1, rr), applied as a difference.
            lvs.topo.hup_rvsd();
        }
        // Keep at least one web real server available, then open new connections.
        lvs.rvsadm(&["-e", "-t", &web, "-r", &real(2), "-m", "-w", "1"]);
        let split = lvs.fetch(10);
        assert_eq!(
            split.get(""),
            None,
            "round {round}: new connections fail: {split:?}\n{}",
            lvs.topo.log()
        );
        new_conns += 10;
    }
    assert!(changes >= 200);

    // Drain rs0 and rs1 of the web service: new connections go to rs2 only.
    lvs.rvsadm(&["-e", "-t", &web, "-r", &real(0), "-m", "-w", "0"]);
    lvs.rvsadm(&["-e", "-t", &web, "-r", &real(1), "-m", "-w", "0"]);
    let split = lvs.fetch(50);
    assert_eq!(
        split.get("rs2").copied(),
        Some(50),
        "drained servers got connections: {split:?}"
    );

    std::fs::write(&stop, "").unwrap();
    let out = long_lived
        .wait_with_output()
        .expect("long-lived client finishes");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(report.trim()).unwrap_or_else(|e| {
        panic!(
            "long-lived client: {e}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "established connections broke: {summary}\n{}",
        lvs.topo.log()
    );
    assert!(
        summary["round_trips"].as_u64().unwrap() >= 30 * 10,
        "{summary}"
    );
    let stats = lvs.stop();
    assert!(stats["services"].as_array().unwrap().len() == 2, "{stats}");
    println!("{changes} changes, {new_conns} new connections, long-lived: {summary}");
}
