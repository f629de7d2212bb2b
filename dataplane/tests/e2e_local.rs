//! rvsd on a real link: a client in its own network namespace resolves the balancer's
//! addresses with ARP and pings them through `net_af_packet` over a veth pair.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::netns::{try_run, Topology};

#[test]
fn client_resolves_and_pings_the_vip_and_dip_through_rvsd() {
    let mut topo = Topology::new();
    let lb = topo.netns("lb");
    let cli = topo.netns("cli");
    let (c0, l0) = (topo.name("c"), topo.name("l"));
    topo.veth(&cli, &c0, &lb, &l0);
    topo.host_if(&cli, &c0, "10.0.0.2/24");
    let stats = topo.dir.path().join("stats.json");
    let config = format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--vdev", "net_af_packet0,iface={l0}"]
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
{control}"#,
        prefix = common::file_prefix(),
        control = common::control_section(topo.dir.path(), ""),
    );
    topo.rvsd(
        &lb,
        &config,
        &stats,
        &[
            "ip",
            "netns",
            "exec",
            &cli,
            "ping",
            "-c1",
            "-W1",
            "10.0.0.100",
        ],
    );

    let out = topo.exec(&cli, &["ping", "-c5", "-i0.2", "-W2", "10.0.0.1"]);
    assert!(out.contains("5 received"), "{out}");
    let neigh = topo.exec(&cli, &["ip", "neigh", "show", "10.0.0.100"]);
    assert!(neigh.contains("lladdr"), "VIP resolved by ARP: {neigh}");
    assert!(
        !try_run(&["ip", "netns", "exec", &cli, "ping", "-c1", "-W1", "10.0.0.7"]),
        "nobody owns 10.0.0.7"
    );

    if let Err(e) = topo.stop_rvsd() {
        panic!("{e}\n{}", topo.log());
    }
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(
        stats["tx_packets"].as_u64().unwrap() >= 7,
        "echo replies and ARP replies sent: {stats}"
    );
    assert!(
        stats["drops"]["arp_not_ours"].as_u64().unwrap() >= 1,
        "ARP for 10.0.0.7 refused: {stats}"
    );
}

/// IPv6 on a real link: a Linux client resolves rvsd's IPv6 addresses with neighbour
/// discovery and pings them (global and link-local); an address rvsd does not own stays
/// unresolved; and rvsd defends its address against a duplicate (the client's DAD for it
/// fails).
#[test]
fn client_resolves_and_pings_the_ipv6_addresses_through_rvsd() {
    let mut topo = Topology::new();
    let port = r#"addrs = ["10.0.0.1/24", "2001:db8::1/64", "fe80::1/64"]"#;
    let (_, cli, c0, stats) = ipv6_client_and_rvsd(&mut topo, 1, port);

    let out = topo.exec(&cli, &["ping", "-6", "-c5", "-i0.2", "-W2", "2001:db8::1"]);
    assert!(out.contains("5 received"), "{out}");
    let ll = format!("fe80::1%{c0}");
    let out = topo.exec(&cli, &["ping", "-6", "-c3", "-i0.2", "-W2", &ll]);
    assert!(out.contains("3 received"), "{out}");
    let neigh = topo.exec(&cli, &["ip", "-6", "neigh", "show", "2001:db8::1"]);
    assert!(
        neigh.contains("lladdr") && neigh.contains("router"),
        "resolved by ND, rvsd a router: {neigh}"
    );
    assert!(
        !try_run(&[
            "ip",
            "netns",
            "exec",
            &cli,
            "ping",
            "-6",
            "-c1",
            "-W1",
            "2001:db8::7"
        ]),
        "nobody owns 2001:db8::7"
    );
    // The client claims rvsd's address: its duplicate address detection hears rvsd's
    // defence and marks it failed (accept_dad 1, the default).
    topo.exec(
        &cli,
        &["ip", "-6", "addr", "add", "2001:db8::1/64", "dev", &c0],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut addr = String::new();
    while std::time::Instant::now() < deadline {
        addr = topo.exec(&cli, &["ip", "-6", "addr", "show", "dev", &c0]);
        if addr.contains("dadfailed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(addr.contains("dadfailed"), "{addr}");

    if let Err(e) = topo.stop_rvsd() {
        panic!("{e}\n{}", topo.log());
    }
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(
        stats["drops"]["nd_not_ours"].as_u64().unwrap() >= 1,
        "ND for 2001:db8::7 refused: {stats}"
    );
}

/// The host over IPv6 through a kernel twin: the twin holds the port's IPv6 address (without
/// DAD, IPv6 turned on for it), a TCP service of the host's own on that address answers a
/// client across the DPDK port (the kernel's neighbour discovery for the client going out
/// through the twin, the client's answer handed back to it), while rvsd still answers the
/// client's ping itself.
#[test]
fn the_host_serves_tcp_over_ipv6_through_its_twin() {
    let mut topo = Topology::new();
    let twin = topo.name("t");
    // One more queue pair for the exception thread.
    let port = format!(
        "addrs = [\"10.0.0.1/24\", \"2001:db8::1/64\"]\nexception = {{ iface = \"{twin}\", kind = \"tap\" }}"
    );
    let (lb, cli, _, stats) = ipv6_client_and_rvsd(&mut topo, 2, &port);
    let ip: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    topo.enable_ipv6(&lb, "lo");
    topo.http_server(&lb, ip, 2222, "the host");
    let out = topo.exec(
        &cli,
        &[
            "curl",
            "-sg",
            "--max-time",
            "5",
            "http://[2001:db8::1]:2222/",
        ],
    );
    assert_eq!(out, "the host", "{}", topo.log());
    if let Err(e) = topo.stop_rvsd() {
        panic!("{e}\n{}", topo.log());
    }
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let punted = &stats["punted"];
    // The connection's segments (handshake, request, acknowledgments, FIN) and the client's
    // neighbour advertisement for the kernel.
    assert!(
        punted["local_tcp"].as_u64().unwrap_or(0) >= 4,
        "TCP to the host's address punted: {punted}"
    );
    assert!(punted["nd"].as_u64().unwrap_or(0) >= 1, "{punted}");
    assert!(stats["kernel_tx"].as_u64().unwrap_or(0) >= 4, "{stats}");
}

/// A client namespace with 2001:db8::2/64 (and 10.0.0.2/24) on a veth to rvsd's namespace,
/// rvsd started there on `net_af_packet` (`qpairs` queue pairs) with the port section `port`
/// (its addresses and options), once the client pings 2001:db8::1. Returns rvsd's and the
/// client's namespaces, the client's interface and the stats file.
fn ipv6_client_and_rvsd(
    topo: &mut Topology,
    qpairs: usize,
    port: &str,
) -> (String, String, String, std::path::PathBuf) {
    let lb = topo.netns("lb");
    let cli = topo.netns("cli");
    let (c0, l0) = (topo.name("c"), topo.name("l"));
    topo.veth(&cli, &c0, &lb, &l0);
    topo.enable_ipv6(&cli, &c0);
    topo.enable_ipv6(&cli, "lo");
    let v6 = [
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8::2/64",
        "dev",
        &c0,
        "nodad",
    ];
    topo.exec(&cli, &v6);
    topo.host_if(&cli, &c0, "10.0.0.2/24");
    let stats = topo.dir.path().join("stats.json");
    let config = format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--vdev", "net_af_packet0,iface={l0},qpairs={qpairs}"]
[[port]]
name = "dpdk0"
{port}
{control}"#,
        prefix = common::file_prefix(),
        control = common::control_section(topo.dir.path(), ""),
    );
    let probe = [
        "ip",
        "netns",
        "exec",
        &cli,
        "ping",
        "-6",
        "-c1",
        "-W1",
        "2001:db8::1",
    ];
    topo.rvsd(&lb, &config, &stats, &probe);
    (lb, cli, c0, stats)
}
