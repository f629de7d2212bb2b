//! Director failover (issue 16) end to end: two rvsd in LVS-NAT or LVS-DR, each with kernel twins,
//! stock keepalived (VRRPv3, `advert_int 0.1`) moving the VIP and the real servers' gateway
//! between them, and IPVS connection sync (both directors run a master and a backup daemon on
//! the inside twin). A client streams over 20 long-lived TCP connections; the master rvsd is
//! killed with SIGKILL.
//!
//! - With sync, the VIP moves (the client's neighbour entry changes MAC) within 1.5 s and every
//!   connection keeps streaming on the backup; new connections succeed. The first director,
//!   restarted, receives the connections from the second, takes the VIP back after its
//!   `preempt_delay`, and again no connection breaks.
//! - Without sync (the negative control) the same failover breaks the connections: the backup
//!   has no entry for them.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::directors::{self, finish_longlived as finish, wait_for};
use common::netns::{try_run, Topology};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The real servers' gateway, floating with the VIP (NAT).
const GATEWAY: &str = "192.168.10.1";
const ECHO_PORT: u16 = 9000;
const CONNECTIONS: usize = 20;

/// The forwarding method of the test's service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Real servers behind the directors on 192.168.10.0/24, their gateway floating with
    /// the VIP.
    Nat,
    /// Real servers on the client's link holding the VIP on `lo`; the directors' inside link
    /// only carries the sync messages (a dedicated sync link).
    Dr,
}

impl Mode {
    /// Real server `i`'s address.
    fn rip(self, i: u8) -> String {
        match self {
            Mode::Nat => format!("192.168.10.{}", 11 + i),
            Mode::Dr => format!("10.0.0.{}", 11 + i),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
        }
    }
}

/// The tests share the two cores with each other badly: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One director: its namespace, twins, rvsd and keepalived.
struct Director {
    ns: String,
    twins: [String; 2],
    config: PathBuf,
    log: PathBuf,
    keepalived_conf: PathBuf,
    rvsd_pid: Option<u32>,
    socket: PathBuf,
}

struct Pair {
    topo: Topology,
    client: String,
    directors: [Director; 2],
}

fn rvsd_config(d: &Director, n: u8, veths: &[String; 2], mode: Mode, sync: bool) -> String {
    let sync = if sync {
        format!("[sync]\nrole = \"both\"\ninterface = \"{}\"\n", d.twins[1])
    } else {
        String::new()
    };
    let mut reals = String::new();
    for i in 0..3 {
        reals += &format!(
            "  [[service.real]]\n  addr = \"{}:{ECHO_PORT}\"\n  mode = \"{}\"\n",
            mode.rip(i),
            mode.name()
        );
    }
    format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--vdev", "net_af_packet0,iface={v0},qpairs=2", "--vdev", "net_af_packet1,iface={v1},qpairs=2"]
[control]
socket = "{socket}"
[dataplane]
workers = [1]
conn_table_size = 65536
idle_sleep_us = 200
[[port]]
name = "dpdk0"
addrs = ["10.0.0.{a}/24"]
exception = {{ iface = "{t0}", kind = "tap", punt_pps = 20000 }}
[[port]]
name = "dpdk1"
addrs = ["192.168.10.{a}/24"]
exception = {{ iface = "{t1}", kind = "tap", punt_pps = 20000 }}
{sync}
[[service]]
vip = "{VIP}:{ECHO_PORT}"
proto = "tcp"
sched = "rr"
vip_mode = "kernel"
{reals}"#,
        prefix = common::file_prefix(),
        v0 = veths[0],
        v1 = veths[1],
        socket = d.socket.display(),
        a = 3 + n,
        t0 = d.twins[0],
        t1 = d.twins[1],
    )
}

/// keepalived.conf of director `n`: the shipped example (conf/examples/keepalived-vrrp.conf,
/// whose `@lb1`/`@lb2` lines `-i` selects) on this topology's twins.
fn keepalived_config(d: &Director) -> String {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/examples/keepalived-vrrp.conf"
    );
    let text = std::fs::read_to_string(example).expect("the keepalived example");
    assert!(
        text.contains(&format!("{VIP}/32 dev rvs0"))
            && text.contains(&format!("{GATEWAY}/24 dev rvs1"))
    );
    text.replace("rvs0", &d.twins[0])
        .replace("rvs1", &d.twins[1])
}

fn start_rvsd(topo: &mut Topology, d: &mut Director) {
    d.rvsd_pid = Some(directors::start_rvsd(
        topo,
        &d.ns,
        &d.config,
        &d.log,
        &d.twins[1],
    ));
}

fn start_keepalived(topo: &mut Topology, d: &Director, n: u8) {
    let dir = topo.dir.path();
    let (pid, vrrp) = (
        dir.join(format!("keepalived{n}.pid")),
        dir.join(format!("vrrp{n}.pid")),
    );
    let log = dir.join(format!("keepalived{n}.log"));
    let conf = d.keepalived_conf.display().to_string();
    let (pid, vrrp) = (pid.display().to_string(), vrrp.display().to_string());
    // The example's `@lb1` / `@lb2` lines: director 0 is lb1, the preferred one.
    let id = format!("lb{}", n + 1);
    topo.spawn(
        &d.ns,
        &[
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-P",
            "-i",
            &id,
            "-f",
            &conf,
            "-p",
            &pid,
            "-r",
            &vrrp,
        ],
        &log,
    );
}

fn build(mode: Mode, sync: bool) -> Pair {
    let mut topo = Topology::new();
    let sw = topo.netns("sw");
    topo.bridge(&sw, "br0");
    topo.bridge(&sw, "br1");
    let client = topo.netns("cli");
    let (c0, sc) = (topo.name("c"), topo.name("sc"));
    topo.veth(&client, &c0, &sw, &sc);
    topo.bridge_port(&sw, "br0", &sc);
    topo.host_if(&client, &c0, "10.0.0.2/24");
    for i in 0..3u8 {
        let ns = topo.netns(&format!("rs{i}"));
        let (r, s) = (topo.name(&format!("r{i}")), topo.name(&format!("sr{i}")));
        topo.veth(&ns, &r, &sw, &s);
        let addr = mode.rip(i);
        topo.host_if(&ns, &r, &format!("{addr}/24"));
        match mode {
            Mode::Nat => {
                topo.bridge_port(&sw, "br1", &s);
                topo.exec(&ns, &["ip", "route", "add", "default", "via", GATEWAY]);
            }
            Mode::Dr => {
                topo.bridge_port(&sw, "br0", &s);
                topo.exec(
                    &ns,
                    &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
                );
                for conf in ["all", "default"] {
                    for (key, value) in [("arp_ignore", 1), ("arp_announce", 2)] {
                        let sysctl = format!("net.ipv4.conf.{conf}.{key}={value}");
                        topo.exec(&ns, &["sysctl", "-qw", &sysctl]);
                    }
                }
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/echo_server.py");
        let log = topo.dir.path().join(format!("echo{i}.log"));
        let (port, name) = (ECHO_PORT.to_string(), format!("rs{i}"));
        // DR: the packets come addressed to the VIP (on lo).
        let bind = if mode == Mode::Dr {
            "0.0.0.0"
        } else {
            addr.as_str()
        };
        topo.spawn(&ns, &["python3", script, bind, &port, &name], &log);
    }
    let mut directors = Vec::new();
    for n in 0..2u8 {
        let ns = topo.netns(&format!("lb{n}"));
        let veths = [topo.name(&format!("l{n}a")), topo.name(&format!("l{n}b"))];
        for (k, (veth, br)) in veths.iter().zip(["br0", "br1"]).enumerate() {
            let s = topo.name(&format!("s{n}{k}"));
            topo.veth(&ns, veth, &sw, &s);
            topo.bridge_port(&sw, br, &s);
            topo.exec(
                &ns,
                &[
                    "ethtool", "-K", veth, "tx", "off", "tso", "off", "gso", "off",
                ],
            );
            // Only the twins may deliver to this namespace's kernel.
            let rule = format!(
                "add table netdev rvs{k}; add chain netdev rvs{k} in {{ type filter hook ingress device {veth} priority 0; policy drop; }}"
            );
            topo.exec(&ns, &["timeout", "10", "nft", &rule]);
        }
        let dir = topo.dir.path().to_owned();
        let mut d = Director {
            ns,
            twins: [topo.name(&format!("t{n}a")), topo.name(&format!("t{n}b"))],
            config: dir.join(format!("rvsd{n}.toml")),
            log: dir.join(format!("rvsd{n}.log")),
            keepalived_conf: dir.join(format!("keepalived{n}.conf")),
            rvsd_pid: None,
            socket: dir.join(format!("rvsd{n}.sock")),
        };
        std::fs::write(&d.config, rvsd_config(&d, n, &veths, mode, sync)).unwrap();
        std::fs::write(&d.keepalived_conf, keepalived_config(&d)).unwrap();
        start_rvsd(&mut topo, &mut d);
        directors.push(d);
    }
    let mut directors: [Director; 2] = match directors.try_into() {
        Ok(d) => d,
        Err(_) => unreachable!("two directors"),
    };
    for (n, d) in directors.iter_mut().enumerate() {
        start_keepalived(&mut topo, d, n as u8);
    }
    let pair = Pair {
        topo,
        client,
        directors,
    };
    // Director 0 (lb1, the higher priority) takes the VIP once its preempt_delay after
    // keepalived's start has passed; then a connection through it works.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pair.holds_vip(0) || !pair.echo_once() {
        assert!(
            Instant::now() < deadline,
            "no echo through the VIP:\n{}",
            pair.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pair
}

impl Pair {
    /// One new connection through the VIP, one line echoed.
    fn echo_once(&self) -> bool {
        let code = format!(
            "import socket,sys\ns=socket.create_connection(('{VIP}',{ECHO_PORT}),timeout=2)\ns.sendall(b'x\\n')\nsys.exit(0 if s.makefile().readline().endswith(' x\\n') else 1)"
        );
        try_run(&["ip", "netns", "exec", &self.client, "python3", "-c", &code])
    }

    /// Whether director `n`'s keepalived has put the VIP on its twin.
    fn holds_vip(&self, n: usize) -> bool {
        let d = &self.directors[n];
        self.topo
            .exec(
                &d.ns,
                &["ip", "-4", "-o", "addr", "show", "dev", &d.twins[0]],
            )
            .contains(&format!(" {VIP}/32 "))
    }

    /// The MAC the client's neighbour table holds for the VIP.
    fn vip_mac(&self) -> String {
        let out = self
            .topo
            .exec(&self.client, &["ip", "neigh", "show", &VIP.to_string()]);
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or("")
            .to_owned()
    }

    fn rvsadm(&self, n: usize, args: &[&str]) -> String {
        self.rvsadm_status(n, args).1
    }

    /// rvsadm's success, standard output and standard error.
    fn rvsadm_status(&self, n: usize, args: &[&str]) -> (bool, String, String) {
        let socket = self.directors[n].socket.display().to_string();
        let out = std::process::Command::new(common::rvsadm_bin())
            .args(["--socket", &socket])
            .args(args)
            .output()
            .expect("run rvsadm");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// ESTABLISHED connections to the echo service director `n` lists.
    fn established(&self, n: usize) -> usize {
        self.rvsadm(n, &["-L", "-n", "-c"])
            .lines()
            .filter(|l| l.contains("ESTABLISHED") && l.contains(&format!(":{ECHO_PORT}")))
            .count()
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
        for n in 0..2 {
            let log = self.topo.dir.path().join(format!("keepalived{n}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out += &format!(
                "--- keepalived{n}:\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        out
    }

    fn kill_rvsd(&mut self, n: usize) {
        let pid = self.directors[n].rvsd_pid.take().expect("rvsd runs");
        assert!(try_run(&["kill", "-KILL", &pid.to_string()]));
        // The twins vanish with the process.
        let deadline = Instant::now() + Duration::from_secs(10);
        while try_run(&[
            "ip",
            "netns",
            "exec",
            &self.directors[n].ns,
            "ip",
            "link",
            "show",
            &self.directors[n].twins[0],
        ]) {
            assert!(Instant::now() < deadline, "the twin outlived rvsd");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs longlived.py in the client for `seconds` (or until the stop file exists); an answer
/// later than `timeout` seconds breaks its connection.
fn stream(pair: &mut Pair, seconds: u32, timeout: u32) -> (std::process::Child, PathBuf) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/longlived.py");
    let stop = pair.topo.dir.path().join("stop");
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.client, "python3", script])
        .args([
            &VIP.to_string(),
            &ECHO_PORT.to_string(),
            &CONNECTIONS.to_string(),
            &seconds.to_string(),
            &stop.display().to_string(),
            &timeout.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start longlived.py");
    (child, stop)
}

#[test]
fn nat_failover_with_sync_keeps_every_connection() {
    failover_with_sync_keeps_every_connection(Mode::Nat);
}

#[test]
fn dr_failover_with_sync_keeps_every_connection() {
    failover_with_sync_keeps_every_connection(Mode::Dr);
}

fn failover_with_sync_keeps_every_connection(mode: Mode) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut pair = build(mode, true);
    assert!(pair
        .rvsadm(0, &["-L", "--daemon"])
        .contains("master sync daemon (mcast="));
    let (child, stop) = stream(&mut pair, 60, 5);
    // Every connection is established through director 0 and synced to director 1.
    let synced = wait_for(Duration::from_secs(15), || {
        pair.established(1) >= CONNECTIONS
    });
    assert!(
        synced.is_some(),
        "director 1 lists {} of {CONNECTIONS} connections:\n{}\n{}",
        pair.established(1),
        pair.rvsadm(1, &["-L", "-n", "-c"]),
        pair.logs()
    );
    let mac_before = pair.vip_mac();
    assert!(!mac_before.is_empty());
    std::thread::sleep(Duration::from_secs(1));
    pair.kill_rvsd(0);
    let moved = wait_for(Duration::from_millis(1500), || {
        let mac = pair.vip_mac();
        !mac.is_empty() && mac != mac_before
    });
    assert!(
        moved.is_some(),
        "the VIP did not move within 1.5 s:\n{}",
        pair.logs()
    );
    eprintln!("VIP moved {:?} after the kill", moved.unwrap_or_default());
    // Streaming goes on through director 1; new connections work.
    std::thread::sleep(Duration::from_secs(3));
    assert!(pair.echo_once(), "a new connection after the failover");

    // Director 0 comes back: its backup daemon gets the connections from director 1's
    // master (at their 53rd, 103rd... packet), and keepalived takes the VIP back after its
    // preempt_delay of 4 s.
    let Pair {
        topo, directors, ..
    } = &mut pair;
    start_rvsd(topo, &mut directors[0]);
    let back = wait_for(Duration::from_secs(20), || {
        pair.established(0) >= CONNECTIONS
    });
    assert!(
        back.is_some(),
        "director 0 lists {} of {CONNECTIONS} connections:\n{}",
        pair.established(0),
        pair.logs()
    );
    let preempted = wait_for(Duration::from_secs(15), || pair.vip_mac() == mac_before);
    assert!(
        preempted.is_some(),
        "director 0 did not take the VIP back:\n{}",
        pair.logs()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(pair.echo_once(), "a new connection after the preemption");
    let result = finish(child, &stop);
    eprintln!("{result}");
    assert_eq!(result["failures"], serde_json::json!([]), "{}", pair.logs());
    assert!(result["round_trips"].as_u64().unwrap_or(0) > 0);
    // The connections stalled at most for the VIP's move plus a TCP retransmission, twice.
    let stall = result["longest_wait_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(stall < 3000.0, "a connection stalled {stall} ms");
}

#[test]
fn nat_failover_without_sync_breaks_connections() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut pair = build(Mode::Nat, false);
    daemons_from_rvsadm(&pair);
    let (child, stop) = stream(&mut pair, 60, 1);
    assert!(wait_for(Duration::from_secs(15), || pair.established(0)
        >= CONNECTIONS)
    .is_some());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pair.established(1), 0, "nothing synced");
    let mac_before = pair.vip_mac();
    pair.kill_rvsd(0);
    assert!(wait_for(Duration::from_millis(1500), || {
        let mac = pair.vip_mac();
        !mac.is_empty() && mac != mac_before
    })
    .is_some());
    // The backup has no entry for the flows: their next segments are dropped.
    std::thread::sleep(Duration::from_secs(3));
    assert!(pair.echo_once(), "new connections still work");
    let result = finish(child, &stop);
    let failures = result["failures"].as_array().map_or(0, Vec::len);
    assert!(failures > 0, "the failover broke no connection: {result}");
}

/// `rvsadm --start-daemon`, `-L --daemon` and `--stop-daemon` against a live rvsd, with
/// ipvsadm's outputs and errors (director 1 of a pair started without `[sync]`).
fn daemons_from_rvsadm(pair: &Pair) {
    let twin = pair.directors[1].twins[1].clone();
    let start = [
        "--start-daemon",
        "backup",
        "--mcast-interface",
        &twin,
        "--syncid",
        "9",
    ];
    assert_eq!(pair.rvsadm(1, &["-L", "--daemon"]), "");
    let (ok, _, err) = pair.rvsadm_status(1, &start);
    assert!(ok, "{err}");
    assert_eq!(
        pair.rvsadm(1, &["-L", "--daemon"]),
        format!("backup sync daemon (mcast={twin}, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n")
    );
    let (ok, _, err) = pair.rvsadm_status(1, &start);
    assert!(!ok && err.contains("Daemon has already run"), "{err}");
    let (ok, _, err) = pair.rvsadm_status(
        1,
        &["--start-daemon", "master", "--mcast-interface", "nosuchif0"],
    );
    assert!(!ok && err.contains("No such device"), "{err}");
    let (ok, _, err) = pair.rvsadm_status(1, &["--stop-daemon", "backup"]);
    assert!(ok, "{err}");
    let (ok, _, err) = pair.rvsadm_status(1, &["--stop-daemon", "backup"]);
    assert!(!ok && err.contains("No daemon is running"), "{err}");
    assert_eq!(pair.rvsadm(1, &["-L", "--daemon"]), "");
}
