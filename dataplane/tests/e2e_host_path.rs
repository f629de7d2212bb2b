//! The host path end to end (issue 10): rvsd in LVS-NAT on `net_af_packet` with a `net_tap`
//! kernel twin per port, a client and a real server in namespaces, the kernel of rvsd's
//! namespace reaching the wire only through the twins (an nftables ingress drop on the
//! af_packet veths).
//!
//! - The host's own traffic: TCP to a kernel socket on the DIP, and on an address added to
//!   the twin by hand, crosses the DPDK port; a VIP port with no service never reaches the
//!   kernel.
//! - Addresses the kernel owns: `ip addr add` of a VIP on the twin makes it served (ARP
//!   answered within 100 ms, one gratuitous ARP, HTTP through it); `ip addr del` drops its
//!   traffic as `vip_not_owned`.
//! - A routed VIP is served with no ARP answer, the client routing it via the DIP.
//! - A UDP flood at the DIP is capped at `punt_pps`, counted, while ARP and ICMP echo for the
//!   VIP are still answered.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode, Options, VIP};
use common::netns::try_run;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `punt_pps` of the twins.
const PUNT_PPS: u32 = 1000;
/// A port of the kernel's own (a host service in rvsd's namespace), on every address.
const HOST_PORT: u16 = 2222;
/// An address added to the twin by hand, for the host only.
const HOST_ONLY: &str = "10.0.0.50";
/// A `kernel` VIP: served while the twin holds it.
const KERNEL_VIP: &str = "10.0.0.101";
/// A `routed` VIP: on no interface, reached through a route via the DIP.
const ROUTED_VIP: &str = "192.0.2.80";

fn curl(lvs: &lvs::Lvs, url: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lvs.client,
            "curl",
            "-s",
            "--max-time",
            "3",
            url,
        ])
        .output()
        .expect("run curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The drop and punt counters `rvsadm --drops` prints, by reason (the total column).
fn counters(lvs: &lvs::Lvs) -> std::collections::BTreeMap<String, u64> {
    let text = lvs.rvsadm(&["--drops", "--exact"]);
    let mut table = "";
    let mut all = std::collections::BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Drop reason") {
            table = "drop";
        } else if line.starts_with("Punted to kernel") {
            table = "punted";
        } else if line.starts_with("Punt dropped") {
            table = "punt_dropped";
        } else if words.len() >= 2 && !table.is_empty() {
            if let Ok(n) = words[words.len() - 1].parse::<u64>() {
                all.insert(format!("{table}.{}", words[0]), n);
            }
        }
    }
    all
}

fn count(c: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    c.get(key).copied().unwrap_or(0)
}

/// Probes `target` with ARP from the client for at most `timeout_ms`: the wall-clock time of
/// the answer, if one came.
fn arp_probe(lvs: &mut lvs::Lvs, target: &str, timeout_ms: u64) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/arp_probe.py");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lvs.client, "python3", script])
        .args([
            &lvs.client_if,
            "10.0.0.2",
            target,
            &timeout_ms.to_string(),
            "5",
        ])
        .output()
        .expect("run the ARP probe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("reply "))
        .map(|t| t.parse().expect("a time"))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[test]
fn host_traffic_kernel_vips_routed_vips_and_a_flood() {
    let mut o = Options::new(Mode::Nat, &[1], "rr", 1);
    o.twin_pps = Some(PUNT_PPS);
    o.extra = format!(
        "[[service]]\nvip = \"{KERNEL_VIP}:80\"\nproto = \"tcp\"\nvip_mode = \"kernel\"\n  [[service.real]]\n  addr = \"192.168.10.11:8080\"\n  mode = \"nat\"\n\
         [[service]]\nvip = \"{ROUTED_VIP}:80\"\nproto = \"tcp\"\nvip_mode = \"routed\"\n  [[service.real]]\n  addr = \"192.168.10.11:8080\"\n  mode = \"nat\"\n"
    );
    let mut lvs = lvs::start_opts(&o);
    let (lb, twin) = (lvs.lb.clone(), lvs.twins[0].clone());
    lvs.topo
        .http_server(&lb, std::net::Ipv4Addr::UNSPECIFIED, HOST_PORT, "host");

    // The host's own addresses: TCP reaches the kernel through the DPDK port and back.
    assert_eq!(
        curl(&lvs, &format!("http://10.0.0.1:{HOST_PORT}/")).as_deref(),
        Some("host"),
        "TCP to a kernel socket on the DIP:\n{}",
        lvs.topo.log()
    );
    lvs.topo.exec(
        &lb,
        &[
            "ip",
            "addr",
            "add",
            &format!("{HOST_ONLY}/32"),
            "dev",
            &twin,
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut answer = None;
    while answer.is_none() && std::time::Instant::now() < deadline {
        answer = curl(&lvs, &format!("http://{HOST_ONLY}:{HOST_PORT}/"));
    }
    assert_eq!(
        answer.as_deref(),
        Some("host"),
        "TCP to an address added by hand"
    );
    assert!(try_run(&[
        "ip",
        "netns",
        "exec",
        &lvs.client,
        "ping",
        "-c1",
        "-W2",
        HOST_ONLY
    ]));

    // A VIP port with no service never reaches the kernel, which listens on every address.
    let before = counters(&lvs);
    assert_eq!(curl(&lvs, &format!("http://{VIP}:{HOST_PORT}/")), None);
    let after = counters(&lvs);
    assert!(
        count(&after, "drop.no_service") > count(&before, "drop.no_service"),
        "{after:?}"
    );
    assert_eq!(
        count(&after, "punted.local_tcp"),
        count(&before, "punted.local_tcp"),
        "nothing for the VIP was punted: {after:?}"
    );

    // A kernel VIP: not answered for while no twin holds it...
    assert_eq!(curl(&lvs, &format!("http://{KERNEL_VIP}/")), None);
    // ...served within 100 ms of `ip addr add`, announced once.
    let capture = lvs
        .topo
        .capture(&lvs.client, &lvs.client_if.clone(), &["arp"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/arp_probe.py");
    let probe_log = lvs.topo.dir.path().join("probe.log");
    let client_if = lvs.client_if.clone();
    let client = lvs.client.clone();
    lvs.topo.spawn(
        &client,
        &[
            "python3", script, &client_if, "10.0.0.2", KERNEL_VIP, "5000", "5",
        ],
        &probe_log,
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&probe_log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the ARP probe never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    lvs.topo.exec(
        &lb,
        &[
            "ip",
            "addr",
            "add",
            &format!("{KERNEL_VIP}/32"),
            "dev",
            &twin,
        ],
    );
    // The address exists once `ip` has exited (measured from there: starting a process on
    // this loaded machine takes tens of milliseconds of its own).
    let added = now();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let text = std::fs::read_to_string(&probe_log).unwrap_or_default();
        if let Some(t) = text.lines().find_map(|l| l.strip_prefix("reply ")) {
            break t.parse::<f64>().expect("a time");
        }
        assert!(
            !text.contains("none") && std::time::Instant::now() < deadline,
            "no ARP answer for the added VIP: {text}\n{}",
            lvs.topo.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "ARP for {KERNEL_VIP} answered {:.1} ms after ip addr add",
        (reply - added) * 1000.0
    );
    assert!(
        reply - added < 0.1,
        "ARP answered {:.0} ms after ip addr add (at {added:.3}):\n{}",
        (reply - added) * 1000.0,
        lvs.topo.log()
    );
    assert_eq!(
        curl(&lvs, &format!("http://{KERNEL_VIP}/")).as_deref(),
        Some("rs0"),
        "HTTP through the added VIP"
    );
    let frames = lvs.topo.stop_capture(capture);
    let vip: std::net::Ipv4Addr = KERNEL_VIP.parse().unwrap();
    let gratuitous = frames
        .iter()
        .filter(|f| f.len() >= 42 && f[0..6] == [0xff; 6] && f[12..14] == [0x08, 0x06])
        .filter(|f| f[28..32] == vip.octets() && f[38..42] == vip.octets())
        .count();
    assert_eq!(gratuitous, 1, "one gratuitous ARP for {KERNEL_VIP}");
    // ...and its traffic dropped once the twin lets it go (the client still has its MAC).
    let before = count(&counters(&lvs), "drop.vip_not_owned");
    lvs.topo.exec(
        &lb,
        &[
            "ip",
            "addr",
            "del",
            &format!("{KERNEL_VIP}/32"),
            "dev",
            &twin,
        ],
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(curl(&lvs, &format!("http://{KERNEL_VIP}/")), None);
    assert!(count(&counters(&lvs), "drop.vip_not_owned") > before);

    // A routed VIP: served through a route, never answered for with ARP.
    lvs.topo.exec(
        &lvs.client,
        &[
            "ip",
            "route",
            "add",
            &format!("{ROUTED_VIP}/32"),
            "via",
            "10.0.0.1",
        ],
    );
    assert_eq!(
        curl(&lvs, &format!("http://{ROUTED_VIP}/")).as_deref(),
        Some("rs0")
    );
    assert_eq!(arp_probe(&mut lvs, ROUTED_VIP, 300), None);

    // A UDP flood at the DIP: capped at punt_pps, while the VIP keeps being answered.
    let before = counters(&lvs);
    let flood = "import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         start = time.time(); n = 0\n\
         while time.time() - start < 3:\n\
         \x20   for _ in range(200):\n\
         \x20       s.sendto(b'flood', ('10.0.0.1', 9999)); n += 1\n\
         \x20   time.sleep(max(0, start + n / 20000 - time.time()))\n\
         print(n, time.time() - start)\n";
    let flood_log = lvs.topo.dir.path().join("flood.log");
    let flooding_at = std::time::Instant::now();
    lvs.topo
        .spawn(&client, &["python3", "-c", flood], &flood_log);
    std::thread::sleep(Duration::from_millis(500));
    let pings = std::process::Command::new("ip")
        .args([
            "netns", "exec", &client, "ping", "-c", "10", "-i", "0.1", "-W", "1",
        ])
        .arg(VIP.to_string())
        .output()
        .expect("run ping");
    let pinged = String::from_utf8_lossy(&pings.stdout).into_owned();
    let arp_answer = arp_probe(&mut lvs, &VIP.to_string(), 1000);
    while std::fs::read_to_string(&flood_log)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            flooding_at.elapsed() < Duration::from_secs(20),
            "flood never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let flood_out = std::fs::read_to_string(&flood_log).unwrap();
    let words: Vec<&str> = flood_out.split_whitespace().collect();
    let (sent, secs): (u64, f64) = (words[0].parse().unwrap(), words[1].parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let after = counters(&lvs);
    let punted = count(&after, "punted.local_udp") - count(&before, "punted.local_udp");
    let refused =
        count(&after, "punt_dropped.local_udp") - count(&before, "punt_dropped.local_udp");
    println!("flood: {sent} datagrams in {secs:.2} s, {punted} punted, {refused} refused");
    assert!(
        sent as f64 / secs > 10_000.0,
        "the flood ran at {:.0} pps",
        sent as f64 / secs
    );
    let cap = f64::from(PUNT_PPS) * secs + f64::from(PUNT_PPS) / 10.0 + 32.0;
    assert!(
        (punted as f64) <= cap * 1.1,
        "{punted} punted in {secs:.2} s, more than punt_pps allows ({cap:.0}): {after:?}"
    );
    assert!(punted > 0 && refused > 0, "{after:?}");
    assert!(
        pinged.contains("10 received") || pinged.contains("9 received"),
        "ICMP echo for the VIP during the flood:\n{pinged}"
    );
    assert!(arp_answer.is_some(), "ARP for the VIP during the flood");

    let stats = lvs.stop();
    let owned = stats["owned"].as_array().expect("owned addresses");
    let origin = |addr: &str| {
        owned
            .iter()
            .find(|o| o["addr"] == addr)
            .map(|o| o["origin"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(origin("10.0.0.1/24").as_deref(), Some("static"), "{stats}");
    assert_eq!(
        origin(&format!("{HOST_ONLY}/32")).as_deref(),
        Some("kernel"),
        "{stats}"
    );
    assert_eq!(origin(&format!("{KERNEL_VIP}/32")), None, "{stats}");
}
