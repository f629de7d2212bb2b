//! The rvs demo: a client and three real servers in network namespaces, balanced by rvsd in
//! LVS-NAT mode with two workers on DPDK `net_af_packet` ports, driven with rvsadm; each port
//! has a kernel twin, so the host is reachable over the data ports and a VIP added to the
//! twin at run time (as keepalived would) is served without a restart. rvscheck checks the
//! real servers with HTTP_GET: one whose web server dies leaves the pool and comes back.
//!
//! Run it with `scripts/demo.sh` (as root), which installs what it needs first.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode, Options};
use std::collections::BTreeMap;

/// A second VIP, `vip_mode = "kernel"`: served once the twin holds it.
const SECOND_VIP: &str = "10.0.0.101";

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

/// Whether `rvsadm -L -n` lists `real` under the service `TCP  10.0.0.100:80`.
fn in_pool(lvs: &lvs::Lvs, real: &str) -> bool {
    let listing = lvs.rvsadm(&["-L", "-n"]);
    let mut in_service = false;
    for line in listing.lines() {
        if line.starts_with("TCP") || line.starts_with("UDP") {
            in_service = line.starts_with("TCP  10.0.0.100:80 ");
        } else if in_service && line.contains(real) {
            return true;
        }
    }
    false
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
    common::rvscheck_bin();
    let mut options = Options::new(Mode::Nat, &[3, 2, 1], "wrr", 2);
    options.twin_pps = Some(20_000);
    // keepalived's HTTP_GET on every real server, probed by rvscheck through the twin.
    options.service_options = "delay_loop = 1\n".into();
    options.real_options = "    [[service.real.check]]\n    type = \"http\"\n    connect_timeout = 1\n    retry = 1\n    delay_before_retry = 1\n    url = [{ path = \"/\" }]\n".into();
    options.extra = format!(
        "[[service]]\nvip = \"{SECOND_VIP}:80\"\nproto = \"tcp\"\nvip_mode = \"kernel\"\nsched = \"rr\"\n  [[service.real]]\n  addr = \"192.168.10.12:8080\"\n  mode = \"nat\"\n  [[service.real]]\n  addr = \"192.168.10.13:8080\"\n  mode = \"nat\"\n"
    );
    let mut lvs = lvs::start_opts(&options);

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

    // The host over the data ports: a kernel socket in rvsd's namespace, reached through
    // DPDK port 0 and its twin.
    let (lb, twin) = (lvs.lb.clone(), lvs.twins[0].clone());
    lvs.topo.http_server(
        &lb,
        std::net::Ipv4Addr::UNSPECIFIED,
        2222,
        "the balancer's own host\n",
    );
    let host = common::netns::run(&[
        "ip",
        "netns",
        "exec",
        &lvs.client,
        "curl",
        "-s",
        "--max-time",
        "5",
        "http://10.0.0.1:2222/",
    ]);
    show(
        &format!("client -> 10.0.0.1:2222, a kernel socket in rvsd's namespace (through {twin})"),
        &host,
    );
    show(
        &format!("ip -4 addr show dev {twin}  (the port's kernel twin)"),
        &lvs.topo
            .exec(&lb, &["ip", "-4", "-br", "addr", "show", "dev", &twin]),
    );

    // A VIP added at run time, as keepalived does when it becomes MASTER.
    lvs.topo.exec(
        &lb,
        &[
            "ip",
            "addr",
            "add",
            &format!("{SECOND_VIP}/32"),
            "dev",
            &twin,
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let url = format!("http://{SECOND_VIP}/");
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for body in common::netns::fetch_many(&lvs.client, &url, 100) {
        let name = if body.is_empty() {
            "failed".to_owned()
        } else {
            body
        };
        *answers.entry(name).or_default() += 1;
    }
    let answers: Vec<String> = answers.iter().map(|(n, c)| format!("  {n}: {c}")).collect();
    show(
        &format!(
            "ip addr add {SECOND_VIP}/32 dev {twin}  (vip_mode kernel: served at once), then 100 requests to it"
        ),
        &answers.join("\n"),
    );
    show(
        "rvsadm --drops  (per-worker packet counters, what went to the kernel, owned addresses)",
        &lvs.rvsadm(&["--drops"]),
    );

    // Health checks: rs1's web server dies, rvscheck takes it out, and back once it returns.
    show(
        "rvsadm -L -n --health",
        &lvs.rvsadm(&["-L", "-n", "--health"]),
    );
    let (ns1, rip1) = lvs.reals[1].clone();
    let pids = common::netns::run(&["ip", "netns", "pids", &ns1]);
    for pid in pids.split_whitespace() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains("http.server") {
            common::netns::try_run(&["kill", "-KILL", pid]);
        }
    }
    let started = std::time::Instant::now();
    while in_pool(&lvs, "192.168.10.12:8080")
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    show(
        &format!(
            "rs1's web server killed: out of the pool after {:.1} s (rvsadm -L -n)",
            started.elapsed().as_secs_f64()
        ),
        &lvs.rvsadm(&["-L", "-n"]),
    );
    show(
        "rvsadm -L -n --health",
        &lvs.rvsadm(&["-L", "-n", "--health"]),
    );
    lvs.rvsadm(&[
        "-e",
        "-t",
        "10.0.0.100:80",
        "-r",
        "192.168.10.11:8080",
        "-m",
        "-w",
        "3",
    ]);
    show("300 requests while rs1 is down", &split(&lvs, 300));
    lvs.topo.http_server(&ns1, rip1, 8080, "rs1");
    let started = std::time::Instant::now();
    while !in_pool(&lvs, "192.168.10.12:8080")
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    show(
        &format!(
            "rs1's web server restarted: back after {:.1} s (rvsadm -L -n)",
            started.elapsed().as_secs_f64()
        ),
        &lvs.rvsadm(&["-L", "-n"]),
    );

    let stats = lvs.stop();
    println!(
        "\nrvsd stopped: rx {} packets, tx {} packets; final counters in JSON via --stats-json.",
        stats["rx_packets"], stats["tx_packets"]
    );
}
