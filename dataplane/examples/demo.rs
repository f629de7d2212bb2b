//! The rvs demo: a client and three real servers in network namespaces, balanced by rvsd in
//! LVS-NAT mode with two workers on DPDK `net_af_packet` ports, driven with rvsadm.
//!
//! Run it with `scripts/demo.sh` (as root), which installs what it needs first.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode};

fn show(title: &str, text: &str) {
    println!("\n=== {title}\n{}", text.trim_end());
}

fn split(lvs: &lvs::Lvs, n: usize) -> String {
    lvs.fetch(n)
        .iter()
        .map(|(name, count)| {
            let name = if name.is_empty() { "failed" } else { name };
            format!("  {name}: {count}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    println!(
        "rvs demo: LVS-NAT, VIP {}:80, real servers 192.168.10.11-13:8080 (weights 3, 2, 1, wrr)",
        lvs::VIP
    );
    println!(
        "building namespaces cli (client {}), lb (rvsd), rs0..rs2 (python http.server) ...",
        lvs::CIP
    );
    let mut lvs = lvs::start(Mode::Nat, &[3, 2, 1], "wrr", 2);

    show("rvsadm -L -n", &lvs.rvsadm(&["-L", "-n"]));
    show(
        "600 HTTP requests from the client, one TCP connection each: answers per real server",
        &split(&lvs, 600),
    );
    show(
        "rvsadm -L -n --stats",
        &lvs.rvsadm(&["-L", "-n", "--stats"]),
    );
    show(
        "rvsadm -L -n (connections in TIME_WAIT count as inactive)",
        &lvs.rvsadm(&["-L", "-n"]),
    );

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
    show("rvsadm -e -t 10.0.0.100:80 -r 192.168.10.11:8080 -m -w 0   (quiesce rs0), then 300 requests", &split(&lvs, 300));

    let conns = lvs.rvsadm(&["-L", "-n", "-c"]);
    let head: Vec<&str> = conns.lines().take(6).collect();
    show(
        &format!(
            "rvsadm -L -n -c  (first lines of {})",
            conns.lines().count().saturating_sub(2)
        ),
        &head.join("\n"),
    );
    show(
        "rvsadm --drops  (per-worker packet counters)",
        &lvs.rvsadm(&["--drops"]),
    );

    let stats = lvs.stop();
    println!(
        "\nrvsd stopped: rx {} packets, tx {} packets; final counters in JSON via --stats-json.",
        stats["rx_packets"], stats["tx_packets"]
    );
}
