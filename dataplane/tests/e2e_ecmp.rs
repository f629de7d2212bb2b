//! ECMP scale-out (issue 16, T7) end to end: two rvsd in LVS-DR behind a router that learns the
//! VIP from both over BGP (stock BIRD 2 everywhere) and spreads flows with its L4 multipath hash.
//!
//! ```text
//!  client ── router (BIRD, AS 65000) ── br0 ─┬─ lb0: rvsd + BIRD (AS 65001), VIP on its twin
//!  172.16.0.0/24       10.0.0.254            ├─ lb1: rvsd + BIRD (AS 65002), VIP on its twin
//!                                            └─ rs0..rs2: VIP on lo, default via the router
//! ```
//!
//! Each director's BIRD exports the VIP /32 it finds on the twin and peers with the router from
//! the twin's address, so BGP (and BFD) ride through rvs's exception path. The service is
//! `vip_mode = "routed"`, `sched = "ch"`, `sloppy = true`: a flow the router moves to the other
//! director continues there on the same real server.
//!
//! The BGP session dies with rvsd (it ran over the twin), so the dead director's BIRD cannot
//! withdraw anything: the router notices through BFD (3 × 100 ms here) instead of waiting for the
//! BGP hold time (3 s).

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::directors::{self, finish_longlived as finish, wait_for};
use common::netns::{try_run, Topology};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// In the VIP range of conf/examples/ecmp-bird2.conf.
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const ROUTER: &str = "10.0.0.254";
const ECHO_PORT: u16 = 9000;
/// Client addresses: `ch` hashes the client address, so connections from several spread over
/// the real servers and a moved flow has a real server of its own to find again.
const SOURCES: [&str; 6] = [
    "172.16.0.10",
    "172.16.0.11",
    "172.16.0.12",
    "172.16.0.13",
    "172.16.0.14",
    "172.16.0.15",
];
const SHORT_CONNECTIONS: usize = 200;
const LONG_CONNECTIONS: usize = 20;

/// The tests share the two cores badly: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One director: its namespace, twin, rvsd and BIRD.
struct Director {
    ns: String,
    twin: String,
    dip: String,
    config: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    rvsd_pid: Option<u32>,
}

struct Ecmp {
    topo: Topology,
    client: String,
    router: String,
    directors: [Director; 2],
    /// Seconds longlived.py waits for an answer before it counts a connection as broken.
    answer_timeout: u32,
}

fn rvsd_config(d: &Director, veth: &str, sloppy: bool) -> String {
    let mut reals = String::new();
    for i in 0..3 {
        reals += &format!(
            "  [[service.real]]\n  addr = \"10.0.0.{}:{ECHO_PORT}\"\n  mode = \"dr\"\n",
            11 + i
        );
    }
    format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--vdev", "net_af_packet0,iface={veth},qpairs=2"]
[control]
socket = "{socket}"
[dataplane]
workers = [1]
conn_table_size = 65536
idle_sleep_us = 200
[[port]]
name = "dpdk0"
addrs = ["{dip}/24"]
exception = {{ iface = "{twin}", kind = "tap", punt_pps = 20000 }}
[[service]]
vip = "{VIP}:{ECHO_PORT}"
proto = "tcp"
vip_mode = "routed"
sched = "ch"
sloppy = {sloppy}
{reals}"#,
        prefix = common::file_prefix(),
        socket = d.socket.display(),
        dip = d.dip,
        twin = d.twin,
    )
}

/// The router's BFD: the intervals of conf/examples/ecmp-bird2.conf, on every interface.
const BFD: &str = r#"protocol bfd {
    interface "*" {
        min rx interval 100 ms;
        min tx interval 100 ms;
        multiplier 3;
    };
}
"#;

/// The router's session timers: the example's hold time and keepalive, and retries after a
/// second instead of BIRD's 5 s / 120 s / 60 s, so that sessions come up within the test.
const TIMERS: &str = "hold time 3;
    keepalive time 1;
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 2;";

/// The `protocol bfd` block and the BGP session's BFD switch.
fn bfd_parts(bfd: bool) -> (&'static str, &'static str) {
    if bfd {
        (BFD, "bfd on;")
    } else {
        ("", "")
    }
}

/// The director's BIRD: conf/examples/ecmp-bird2.conf itself, with this director's router id,
/// twin, address and AS, and its BFD lines uncommented with `bfd`.
fn director_bird(d: &Director, n: u8, bfd: bool) -> String {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/examples/ecmp-bird2.conf"
    );
    let text = std::fs::read_to_string(example).expect("read ecmp-bird2.conf");
    let mut conf = String::from("log stderr all;\n");
    let mut in_bfd = false;
    for line in text.lines() {
        in_bfd |= line.starts_with("# protocol bfd");
        let line = if bfd && (in_bfd || line.trim() == "# bfd on;") {
            line.replacen("# ", "", 1)
        } else {
            line.to_owned()
        };
        in_bfd &= line != "}";
        conf += &line;
        conf.push('\n');
    }
    let asn = 65001 + u32::from(n);
    for (from, to) in [
        ("router id 10.0.0.1;", format!("router id {};", d.dip)),
        ("\"rvs0\"", format!("\"{}\"", d.twin)),
        (
            "local 10.0.0.1 as 65001;",
            format!("local {} as {asn};", d.dip),
        ),
        (
            "neighbor 10.0.0.254 as 65000;",
            format!("neighbor {ROUTER} as 65000;"),
        ),
    ] {
        assert!(conf.contains(from), "ecmp-bird2.conf has no {from}");
        conf = conf.replace(from, &to);
    }
    assert_eq!(conf.contains("bfd on;") && !conf.contains("# bfd on;"), bfd);
    conf
}

/// The router's BIRD: a session per director, the multipath route into the kernel.
fn router_bird(bfd: bool) -> String {
    let (bfd_protocol, bfd_on) = bfd_parts(bfd);
    let mut conf = format!(
        r#"log stderr all;
router id {ROUTER};
protocol device {{
    scan time 10;
}}
protocol kernel {{
    merge paths on;
    ipv4 {{
        import none;
        export all;
    }};
}}
{bfd_protocol}
"#
    );
    for n in 0..2u32 {
        conf += &format!(
            r#"protocol bgp lb{n} {{
    local {ROUTER} as 65000;
    neighbor 10.0.0.{dip} as {asn};
    {TIMERS}
    {bfd_on}
    ipv4 {{
        import all;
        export none;
    }};
}}
"#,
            dip = 1 + n,
            asn = 65001 + n,
        );
    }
    conf
}

/// Starts BIRD in `ns` with `config`, its control socket and log in the scratch directory.
fn start_bird(topo: &mut Topology, ns: &str, name: &str, config: &str) {
    let dir = topo.dir.path().to_owned();
    let conf = dir.join(format!("bird-{name}.conf"));
    std::fs::write(&conf, config).unwrap();
    let (conf, sock, log) = (
        conf.display().to_string(),
        dir.join(format!("bird-{name}.ctl")).display().to_string(),
        dir.join(format!("bird-{name}.log")),
    );
    topo.spawn(ns, &["bird", "-f", "-c", &conf, "-s", &sock], &log);
}

/// Starts rvsd and, once its twin is up, puts the VIP on it as the operator (or a systemd
/// `ExecStartPost`) does, for BIRD to announce.
fn start_rvsd(topo: &mut Topology, d: &mut Director) {
    d.rvsd_pid = Some(directors::start_rvsd(
        topo, &d.ns, &d.config, &d.log, &d.twin,
    ));
    topo.exec(
        &d.ns,
        &["ip", "addr", "add", &format!("{VIP}/32"), "dev", &d.twin],
    );
}

fn build(sloppy: bool, bfd: bool) -> Ecmp {
    let mut topo = Topology::new();
    let sw = topo.netns("sw");
    topo.bridge(&sw, "br0");

    let router = topo.netns("rt");
    for sysctl in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.fib_multipath_hash_policy=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ] {
        topo.exec(&router, &["sysctl", "-qw", sysctl]);
    }
    let client = topo.netns("cli");
    let (c0, rc) = (topo.name("c"), topo.name("rc"));
    topo.veth(&client, &c0, &router, &rc);
    topo.host_if(&router, &rc, "172.16.0.1/24");
    topo.host_if(&client, &c0, "172.16.0.2/24");
    for source in SOURCES {
        topo.exec(
            &client,
            &["ip", "addr", "add", &format!("{source}/24"), "dev", &c0],
        );
    }
    topo.exec(
        &client,
        &["ip", "route", "add", "default", "via", "172.16.0.1"],
    );
    topo.exec(
        &client,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"],
    );
    let (rl, srl) = (topo.name("rl"), topo.name("srl"));
    topo.veth(&router, &rl, &sw, &srl);
    topo.bridge_port(&sw, "br0", &srl);
    topo.host_if(&router, &rl, &format!("{ROUTER}/24"));

    for i in 0..3u8 {
        let ns = topo.netns(&format!("rs{i}"));
        let (r, s) = (topo.name(&format!("r{i}")), topo.name(&format!("sr{i}")));
        topo.veth(&ns, &r, &sw, &s);
        topo.bridge_port(&sw, "br0", &s);
        topo.host_if(&ns, &r, &format!("10.0.0.{}/24", 11 + i));
        // The LVS-DR real server: the VIP on lo, never answered for with ARP; replies go
        // straight to the router.
        for conf in ["all", "default"] {
            for rule in ["arp_ignore=1", "arp_announce=2"] {
                let sysctl = format!("net.ipv4.conf.{conf}.{rule}");
                topo.exec(&ns, &["sysctl", "-qw", &sysctl]);
            }
        }
        topo.exec(
            &ns,
            &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
        );
        topo.exec(&ns, &["ip", "route", "add", "default", "via", ROUTER]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/echo_server.py");
        let log = topo.dir.path().join(format!("echo{i}.log"));
        let (port, name) = (ECHO_PORT.to_string(), format!("rs{i}"));
        topo.spawn(&ns, &["python3", script, "0.0.0.0", &port, &name], &log);
    }

    let mut directors = Vec::new();
    for n in 0..2u8 {
        let ns = topo.netns(&format!("lb{n}"));
        let veth = topo.name(&format!("l{n}"));
        let s = topo.name(&format!("s{n}"));
        topo.veth(&ns, &veth, &sw, &s);
        topo.bridge_port(&sw, "br0", &s);
        topo.exec(
            &ns,
            &[
                "ethtool", "-K", &veth, "tx", "off", "tso", "off", "gso", "off",
            ],
        );
        // Only the twin may deliver to this namespace's kernel.
        let rule = format!(
            "add table netdev rvs; add chain netdev rvs in {{ type filter hook ingress device {veth} priority 0; policy drop; }}"
        );
        topo.exec(&ns, &["timeout", "10", "nft", &rule]);
        let dir = topo.dir.path().to_owned();
        let mut d = Director {
            ns,
            twin: topo.name(&format!("t{n}")),
            dip: format!("10.0.0.{}", 1 + n),
            config: dir.join(format!("rvsd{n}.toml")),
            log: dir.join(format!("rvsd{n}.log")),
            socket: dir.join(format!("rvsd{n}.sock")),
            rvsd_pid: None,
        };
        std::fs::write(&d.config, rvsd_config(&d, &veth, sloppy)).unwrap();
        start_rvsd(&mut topo, &mut d);
        let bird = director_bird(&d, n, bfd);
        let ns = d.ns.clone();
        start_bird(&mut topo, &ns, &format!("lb{n}"), &bird);
        directors.push(d);
    }
    start_bird(&mut topo, &router.clone(), "rt", &router_bird(bfd));
    let directors: [Director; 2] = match directors.try_into() {
        Ok(d) => d,
        Err(_) => unreachable!("two directors"),
    };
    Ecmp {
        topo,
        client,
        router,
        directors,
        answer_timeout: 5,
    }
}

impl Ecmp {
    /// The router's next hops for the VIP: one `via` per path, none without a route.
    fn next_hops(&self) -> Vec<String> {
        let out = self
            .topo
            .exec(&self.router, &["ip", "route", "show", &VIP.to_string()]);
        let words: Vec<&str> = out.split_whitespace().collect();
        let mut hops: Vec<String> = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_owned())
            .collect();
        hops.sort();
        hops
    }

    fn rvsadm(&self, n: usize, args: &[&str]) -> String {
        let socket = self.directors[n].socket.display().to_string();
        let out = std::process::Command::new(common::rvsadm_bin())
            .args(["--socket", &socket])
            .args(args)
            .output()
            .expect("run rvsadm");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Connections director `n` scheduled for the service (`rvsadm -L -n --stats`, Conns).
    fn scheduled(&self, n: usize) -> u64 {
        let stats = self.rvsadm(n, &["-L", "-n", "--stats", "--exact"]);
        let service = format!("{VIP}:{ECHO_PORT}");
        stats
            .lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("TCP") && words.next() == Some(service.as_str()))
                    .then(|| words.next().and_then(|w| w.parse().ok()))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no service line in:\n{stats}"))
    }

    /// Director `n`'s `no_conn` drops (`rvsadm --drops`, total).
    fn no_conn_drops(&self, n: usize) -> u64 {
        let drops = self.rvsadm(n, &["--drops", "--exact"]);
        drops
            .lines()
            .find(|l| l.starts_with("no_conn "))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no no_conn line in:\n{drops}"))
    }

    /// ESTABLISHED connections to the service director `n` lists.
    fn listed(&self, n: usize) -> usize {
        self.rvsadm(n, &["-L", "-n", "-c"])
            .lines()
            .filter(|l| l.contains("ESTABLISHED") && l.contains(&format!("{VIP}:{ECHO_PORT}")))
            .count()
    }

    /// `count` short connections, each from the next source address, a line echoed on each;
    /// the real server names that answered (an empty name for a failed connection).
    fn short_connections(&self, count: usize) -> Vec<String> {
        let code = format!(
            r#"import socket
sources = {sources:?}
for i in range({count}):
    try:
        s = socket.create_connection(("{VIP}", {ECHO_PORT}), timeout=3, source_address=(sources[i % len(sources)], 0))
        s.sendall(b"x\n")
        answer = s.makefile().readline()
        s.close()
        print(answer.split(" ")[0] if answer.endswith(" x\n") else "")
    except OSError:
        print("")
"#,
            sources = SOURCES,
        );
        let out = self.topo.exec(&self.client, &["python3", "-c", &code]);
        out.lines().map(str::to_owned).collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for d in &self.directors {
            out += &format!(
                "--- {}:\n{}\n",
                d.log.display(),
                std::fs::read_to_string(&d.log).unwrap_or_default()
            );
        }
        for name in ["rt", "lb0", "lb1"] {
            let log = self.topo.dir.path().join(format!("bird-{name}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            out += &format!(
                "--- bird {name}:\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        out += &format!(
            "--- router routes:\n{}",
            self.topo.exec(&self.router, &["ip", "route"])
        );
        out
    }

    /// Waits until the router has both directors as next hops for the VIP.
    fn wait_multipath(&self) -> Duration {
        let both = vec!["10.0.0.1".to_owned(), "10.0.0.2".to_owned()];
        wait_for(Duration::from_secs(30), || self.next_hops() == both).unwrap_or_else(|| {
            panic!(
                "no multipath route to the VIP: {:?}\n{}",
                self.next_hops(),
                self.logs()
            )
        })
    }

    /// `kill -9` of director `n`'s rvsd; returns once its twin is gone.
    fn kill_rvsd(&mut self, n: usize) -> Instant {
        let pid = self.directors[n].rvsd_pid.take().expect("rvsd runs");
        let killed = Instant::now();
        assert!(try_run(&["kill", "-KILL", &pid.to_string()]));
        let d = &self.directors[n];
        let gone = wait_for(Duration::from_secs(10), || {
            !try_run(&["ip", "netns", "exec", &d.ns, "ip", "link", "show", &d.twin])
        });
        assert!(gone.is_some(), "the twin outlived rvsd");
        killed
    }

    /// Runs longlived.py in the client until the stop file exists.
    fn stream(&self) -> (std::process::Child, PathBuf) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/longlived.py");
        let stop = self.topo.dir.path().join("stop");
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.client, "python3", script])
            .args([
                &VIP.to_string(),
                &ECHO_PORT.to_string(),
                &LONG_CONNECTIONS.to_string(),
                "50",
                &stop.display().to_string(),
                &self.answer_timeout.to_string(),
                &SOURCES.join(","),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start longlived.py");
        (child, stop)
    }
}

/// The distinct real servers longlived.py's connections were answered by.
fn servers(result: &serde_json::Value) -> std::collections::BTreeSet<String> {
    result["servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What [`under_load`] saw.
struct Killed {
    /// From `kill -9` to the router's route having director 1 alone.
    withdrawn: Duration,
    /// ESTABLISHED connections each director listed before the kill.
    before: [usize; 2],
    /// ESTABLISHED connections director 1 listed after it, before the streams ended.
    after: usize,
    /// longlived.py's result.
    result: serde_json::Value,
}

/// Takes director 0 out with `take_out` (which returns when it did) under 20 long-lived
/// connections; `what` names it in the output.
fn under_load(ecmp: &mut Ecmp, what: &str, take_out: impl FnOnce(&mut Ecmp) -> Instant) -> Killed {
    let (child, stop) = ecmp.stream();
    let before = wait_for(Duration::from_secs(15), || {
        ecmp.listed(0) + ecmp.listed(1) >= LONG_CONNECTIONS
    });
    assert!(
        before.is_some(),
        "connections not established:\n{}",
        ecmp.logs()
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = [ecmp.listed(0), ecmp.listed(1)];
    let out = take_out(ecmp);
    let survivor = vec!["10.0.0.2".to_owned()];
    let withdrawn =
        wait_for(Duration::from_secs(10), || ecmp.next_hops() == survivor).map(|_| out.elapsed());
    let Some(withdrawn) = withdrawn else {
        panic!(
            "the route via director 0 stays: {:?}\n{}",
            ecmp.next_hops(),
            ecmp.logs()
        );
    };
    eprintln!("route via director 0 withdrawn {withdrawn:?} after {what}");
    // Longer than longlived.py's 5 s answer timeout: a connection that has not moved by then
    // has failed.
    std::thread::sleep(Duration::from_secs(7));
    let after = ecmp.listed(1);
    let killed = Killed {
        withdrawn,
        before,
        after,
        result: finish(child, &stop),
    };
    eprintln!(
        "ESTABLISHED before {what} {before:?}, on director 1 after it {after}; {}",
        killed.result
    );
    killed
}

#[test]
fn ecmp_spreads_flows_and_survives_a_director_with_sloppy_ch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ecmp = build(true, true);
    // (a) Both directors announce the VIP: the router's route is multipath.
    let took = ecmp.wait_multipath();
    eprintln!("multipath route to the VIP after {took:?}");

    // (b) Short connections from distinct ports spread over both directors.
    let answers = ecmp.short_connections(SHORT_CONNECTIONS);
    let failed = answers.iter().filter(|a| a.is_empty()).count();
    assert_eq!(
        (answers.len(), failed),
        (SHORT_CONNECTIONS, 0),
        "{answers:?}\n{}",
        ecmp.logs()
    );
    let spread = [ecmp.scheduled(0), ecmp.scheduled(1)];
    eprintln!("{SHORT_CONNECTIONS} connections over the directors: {spread:?}");
    assert_eq!(spread[0] + spread[1], SHORT_CONNECTIONS as u64);
    for n in spread {
        assert!(
            n * 100 >= 30 * SHORT_CONNECTIONS as u64,
            "uneven spread {spread:?}"
        );
    }

    // (c) kill -9 of director 0: the router withdraws its route within 1 s and the flows it
    // carried continue through director 1, on their real servers.
    let k = under_load(&mut ecmp, "kill -9", |e| e.kill_rvsd(0));
    assert_eq!(k.before[0] + k.before[1], LONG_CONNECTIONS);
    assert!(
        k.before[0] > 0,
        "director 0 carried none of the connections: {:?}",
        k.before
    );
    assert!(
        k.withdrawn < Duration::from_secs(1),
        "withdrawn after {:?}",
        k.withdrawn
    );
    assert_eq!(
        k.result["failures"],
        serde_json::json!([]),
        "{}",
        ecmp.logs()
    );
    assert!(
        servers(&k.result).len() >= 2,
        "all on one real server: {}",
        k.result
    );
    // The moved connections stalled for the withdrawal and a TCP retransmission or two.
    let stall = k.result["longest_wait_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(stall < 2500, "stalled {stall} ms");
    // Director 1 took the moved connections mid-flow, without a SYN: it has all 20.
    assert_eq!(k.after, LONG_CONNECTIONS);
    assert_eq!(ecmp.no_conn_drops(1), 0);
}

#[test]
fn ecmp_without_sloppy_breaks_moved_flows() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ecmp = build(false, true);
    // Every broken connection costs longlived.py one timeout in its last round: keep it short.
    ecmp.answer_timeout = 1;
    ecmp.wait_multipath();
    let k = under_load(&mut ecmp, "kill -9", |e| e.kill_rvsd(0));
    assert_eq!(k.before[0] + k.before[1], LONG_CONNECTIONS);
    assert!(
        k.before[0] > 0,
        "director 0 carried none of the connections: {:?}",
        k.before
    );
    assert!(
        k.withdrawn < Duration::from_secs(1),
        "withdrawn after {:?}",
        k.withdrawn
    );
    // The moved flows' segments reach director 1 without SYN: dropped as no_conn. Exactly the
    // connections director 0 carried break; director 1's own keep going.
    let failures = k.result["failures"].as_array().map_or(0, Vec::len);
    assert_eq!(failures, k.before[0], "{}", k.result);
    assert_eq!(k.after, k.before[1]);
    assert!(ecmp.no_conn_drops(1) > 0, "{}", ecmp.logs());
}

/// Why the tests above run BFD: the BGP session rides the twin, so the dead director's BIRD
/// cannot send a withdrawal and the router keeps the route until the hold time (3 s) expires.
#[test]
fn ecmp_without_bfd_withdraws_after_the_hold_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ecmp = build(true, false);
    ecmp.wait_multipath();
    // The router restarted its hold timer at the director's last message, which may have
    // come up to a keepalive interval (1 s, with BIRD's jitter) before the kill: the route
    // goes 2-3 s after it, never as early as BFD's 0.3-0.5 s (one run measured 1.86 s).
    std::thread::sleep(Duration::from_millis(500));
    let killed = ecmp.kill_rvsd(0);
    let survivor = vec!["10.0.0.2".to_owned()];
    let withdrawn = wait_for(Duration::from_secs(10), || ecmp.next_hops() == survivor)
        .map(|_| killed.elapsed());
    eprintln!("without BFD, route via the killed director withdrawn {withdrawn:?} after kill -9");
    let Some(withdrawn) = withdrawn else {
        panic!("the route via the dead director stays:\n{}", ecmp.logs());
    };
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(4)).contains(&withdrawn),
        "withdrawn after {withdrawn:?}\n{}",
        ecmp.logs()
    );
}

/// Planned maintenance: deleting the VIP from the twin makes the director's BIRD withdraw it
/// at once over the session that still works (no BFD needed), and with sloppy + ch the flows
/// the router moves go on through director 1.
#[test]
fn ecmp_drain_by_deleting_the_vip_moves_flows_without_loss() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ecmp = build(true, false);
    ecmp.wait_multipath();
    let vip = format!("{VIP}/32");
    let k = under_load(&mut ecmp, "ip addr del", |e| {
        let deleted = Instant::now();
        let d = &e.directors[0];
        e.topo
            .exec(&d.ns, &["ip", "addr", "del", &vip, "dev", &d.twin]);
        deleted
    });
    assert_eq!(k.before[0] + k.before[1], LONG_CONNECTIONS);
    assert!(
        k.before[0] > 0,
        "director 0 carried none of the connections: {:?}",
        k.before
    );
    assert!(
        k.withdrawn < Duration::from_millis(500),
        "withdrawn after {:?}",
        k.withdrawn
    );
    assert_eq!(
        k.result["failures"],
        serde_json::json!([]),
        "{}",
        ecmp.logs()
    );
    // Director 0 still forwards what the router sent it before the withdrawal: no stall
    // beyond a scheduling hiccup.
    let stall = k.result["longest_wait_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(stall < 1000, "stalled {stall} ms");
    assert_eq!(k.after, LONG_CONNECTIONS);
}

/// A killed director restarted under load: its BIRD, still running, sees the twin and the VIP
/// again, the session comes back, and the router moves flows back to director 0. Its table is
/// empty; with sloppy + ch they continue there on the same real servers.
#[test]
fn ecmp_restarted_director_takes_flows_back_without_loss() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ecmp = build(true, true);
    ecmp.wait_multipath();
    let (child, stop) = ecmp.stream();
    let established = wait_for(Duration::from_secs(15), || {
        ecmp.listed(0) + ecmp.listed(1) >= LONG_CONNECTIONS
    });
    assert!(established.is_some(), "{}", ecmp.logs());
    ecmp.kill_rvsd(0);
    let survivor = vec!["10.0.0.2".to_owned()];
    let withdrawn = wait_for(Duration::from_secs(5), || ecmp.next_hops() == survivor);
    assert!(withdrawn.is_some(), "{}", ecmp.logs());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ecmp.listed(1), LONG_CONNECTIONS);

    let restarted = Instant::now();
    let Ecmp {
        topo, directors, ..
    } = &mut ecmp;
    start_rvsd(topo, &mut directors[0]);
    ecmp.wait_multipath();
    let rejoined = restarted.elapsed();
    eprintln!("restarted director back in the multipath route {rejoined:?} after its start");
    // Past the stall of the flows that moved back.
    std::thread::sleep(Duration::from_secs(3));
    let back = ecmp.listed(0);
    let result = finish(child, &stop);
    eprintln!("ESTABLISHED on the restarted director {back}; {result}");
    assert_eq!(result["failures"], serde_json::json!([]), "{}", ecmp.logs());
    assert!(back > 0, "no flow moved back to the restarted director");
    let stall = result["longest_wait_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(stall < 2500, "stalled {stall} ms");
}
