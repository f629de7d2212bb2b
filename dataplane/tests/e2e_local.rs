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
