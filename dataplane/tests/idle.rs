//! Adaptive polling (`[dataplane] idle_sleep_us`): an idle rvsd with one worker uses a small
//! part of a CPU when it is on and a whole one when it is off (busy polling), and traffic that
//! comes after a long idle time is forwarded: byte for byte on `net_pcap` (the NAT fixture
//! table), and real HTTP through an LVS-NAT in network namespaces.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use common::netns::{self, Topology};
use fixtures::{nat, topo};
use std::time::{Duration, Instant};

/// The NAT fixture table through rvsd with adaptive polling on: the same frames, counters
/// and drops as with busy polling, and `--exit-idle-ms` still ends the run (a sleeping
/// worker makes few loops).
#[test]
fn rvsd_forwards_the_nat_fixture_table_with_adaptive_polling() {
    let body = nat::config().replace("[dataplane]\n", "[dataplane]\nidle_sleep_us = 200\n");
    assert!(body.contains("idle_sleep_us = 200"), "{body}");
    let run = golden::assert_rvsd(
        &body,
        topo::announcements(),
        &nat::fixtures(),
        &nat::expected_counters(),
    );
    // It went to sleep once the input was over, before the idle exit.
    let sleeps = run.stats["workers"][0]["idle_sleeps"].as_u64();
    assert!(sleeps.is_some_and(|n| n > 0), "{}", run.stats);
}

const VIP: &str = "10.0.0.100";

/// An LVS-NAT: a client namespace, rvsd on two `net_af_packet` ports (one worker, the given
/// `idle_sleep_us`), a real server with an HTTP server behind it. Namespace names carry `hc`
/// (this suite) and the test process's pid.
struct Director {
    topo: Topology,
    client: String,
    lb: String,
    stats: std::path::PathBuf,
}

fn director(idle_sleep_us: u32) -> Director {
    let mut topo = Topology::new();
    let lb = topo.netns("hclb");
    let client = topo.netns("hccl");
    let rs = topo.netns("hcrs");
    let (c0, l0) = (topo.name("hcc0"), topo.name("hcl0"));
    topo.veth(&client, &c0, &lb, &l0);
    topo.host_if(&client, &c0, "10.0.0.2/24");
    let (r0, l1) = (topo.name("hcr0"), topo.name("hcl1"));
    topo.veth(&rs, &r0, &lb, &l1);
    topo.host_if(&rs, &r0, "192.168.10.11/24");
    topo.exec(
        &rs,
        &["ip", "route", "add", "default", "via", "192.168.10.1"],
    );
    topo.http_server(
        &rs,
        "192.168.10.11".parse::<std::net::Ipv4Addr>().unwrap(),
        8080,
        "rs0",
    );
    let config = format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--vdev", "net_af_packet0,iface={l0},qpairs=1", "--vdev", "net_af_packet1,iface={l1},qpairs=1"]
[control]
socket = "{socket}"
[dataplane]
workers = [1]
conn_table_size = 4096
idle_sleep_us = {idle_sleep_us}
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "{VIP}/32"]
[[port]]
name = "dpdk1"
addrs = ["192.168.10.1/24"]
[[service]]
vip = "{VIP}:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "192.168.10.11:8080"
  mode = "nat"
"#,
        prefix = common::file_prefix(),
        socket = topo.dir.path().join("rvsd.sock").display(),
    );
    let stats = topo.dir.path().join("stats.json");
    let probe = ["ip", "netns", "exec", &client, "ping", "-c1", "-W1", VIP];
    topo.rvsd(&lb, &config, &stats, &probe);
    Director {
        topo,
        client,
        lb,
        stats,
    }
}

impl Director {
    /// rvsd's pid: the one process of the balancer's namespace running the rvsd binary.
    fn rvsd_pid(&self) -> u32 {
        let bin = common::rvsd_bin();
        netns::run(&["ip", "netns", "pids", &self.lb])
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| cmd.contains(bin.to_str().unwrap_or("rvsd")))
            })
            .expect("rvsd runs in its namespace")
    }

    /// Over `span`: the share of one CPU rvsd used (all its threads, user and system time),
    /// and the share of the time its threads were runnable (on a CPU or waiting for one,
    /// `/proc/<pid>/task/*/schedstat`), which a busy-polling thread keeps at 100 % however
    /// many other processes compete for the CPUs.
    fn cpu_share(&self, span: Duration) -> (f64, f64) {
        let pid = self.rvsd_pid();
        let ticks_per_s: f64 = netns::run(&["getconf", "CLK_TCK"])
            .trim()
            .parse()
            .expect("CLK_TCK");
        let cpu_ticks = || -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
            // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(") ").expect("stat format").1;
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .map(|f| f.parse::<u64>().expect("a number"))
                .sum()
        };
        let runnable_ns = || -> u64 {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir");
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .map(|s| {
                    s.split_whitespace()
                        .take(2)
                        .filter_map(|f| f.parse::<u64>().ok())
                        .sum::<u64>()
                })
                .sum()
        };
        let (t0, c0, r0) = (Instant::now(), cpu_ticks(), runnable_ns());
        std::thread::sleep(span);
        let (t1, c1, r1) = (Instant::now(), cpu_ticks(), runnable_ns());
        let wall = (t1 - t0).as_secs_f64();
        (
            (c1 - c0) as f64 / ticks_per_s / wall,
            r1.saturating_sub(r0) as f64 / 1e9 / wall,
        )
    }

    /// Pages fetched from the VIP, one connection each; failed ones are missing.
    fn fetch(&self, count: usize) -> Vec<String> {
        netns::fetch_many(&self.client, &format!("http://{VIP}/"), count)
    }

    /// The round-trip times (ms) of `count` pings of the VIP 200 ms apart: rvsd answers
    /// them itself, each after an idle pause.
    fn ping_ms(&self, count: usize) -> Vec<f64> {
        let n = count.to_string();
        let out = self.topo.exec(
            &self.client,
            &["ping", "-n", "-c", &n, "-i", "0.2", "-W", "1", VIP],
        );
        out.lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect()
    }

    fn stop(&mut self) -> serde_json::Value {
        if let Err(e) = self.topo.stop_rvsd() {
            panic!("{e}\n{}", self.topo.log());
        }
        let text = std::fs::read_to_string(&self.stats).expect("stats json written");
        serde_json::from_str(&text).expect("stats json parses")
    }
}

/// With `idle_sleep_us = 200` an idle rvsd uses under 20 % of a CPU; the first requests
/// after two idle seconds are all answered, and the worker counted its sleeps.
#[test]
fn an_idle_worker_sleeps_and_wakes_for_traffic() {
    let mut d = director(200);
    std::thread::sleep(Duration::from_millis(500));
    let (share, runnable) = d.cpu_share(Duration::from_secs(2));
    println!(
        "idle_sleep_us = 200: idle rvsd uses {:.1} % of a CPU, runnable {:.1} % of the time",
        share * 100.0,
        runnable * 100.0
    );
    assert!(
        share < 0.20,
        "idle rvsd used {:.1} % of a CPU",
        share * 100.0
    );
    let pages = d.fetch(50);
    assert_eq!(pages.len(), 50, "{pages:?}\n{}", d.topo.log());
    assert!(pages.iter().all(|p| p.trim() == "rs0"), "{pages:?}");
    let rtt = d.ping_ms(10);
    assert_eq!(rtt.len(), 10, "every ping answered: {rtt:?}");
    println!("idle_sleep_us = 200: ping RTT after 200 ms idle (ms): {rtt:?}");
    let stats = d.stop();
    assert_eq!(stats["services"][0]["conns"], 50, "{stats}");
    let sleeps = stats["workers"][0]["idle_sleeps"].as_u64().unwrap_or(0);
    // Two idle seconds alone are thousands of sleeps of at most 200 µs (plus timer slack).
    assert!(sleeps > 2000, "idle_sleeps {sleeps}: {stats}");
}

/// The negative control: with `idle_sleep_us = 0` (the default) the worker busy-polls, a
/// whole CPU even with no traffic, and never sleeps. What it gets of a CPU depends on what
/// else runs on the machine (a loaded 2-core CI box gives it half), so the assertion is on
/// the time it wanted one: runnable over 80 % of the time.
#[test]
fn a_busy_polling_worker_uses_a_whole_cpu() {
    let mut d = director(0);
    std::thread::sleep(Duration::from_millis(500));
    let (share, runnable) = d.cpu_share(Duration::from_secs(2));
    println!(
        "idle_sleep_us = 0: idle rvsd uses {:.1} % of a CPU, runnable {:.1} % of the time",
        share * 100.0,
        runnable * 100.0
    );
    assert!(
        runnable > 0.80,
        "busy rvsd runnable {:.1} %",
        runnable * 100.0
    );
    let rtt = d.ping_ms(10);
    assert_eq!(rtt.len(), 10, "every ping answered: {rtt:?}");
    println!("idle_sleep_us = 0: ping RTT (ms): {rtt:?}");
    let stats = d.stop();
    assert_eq!(stats["workers"][0]["idle_sleeps"], 0, "{stats}");
}
