//! IPv6 end to end: rvsd on `net_af_packet` between a client and real servers in network
//! namespaces, real TCP (HTTP) over IPv6 through NAT66 and DR6, wrr weights honoured.
//!
//! ```text
//!  client 2001:db8::2 ──br0── rvsd dpdk0 2001:db8::1, VIP 2001:db8::100
//!                      └──── DR reals 2001:db8::21, ::22 (VIP on lo)
//!                    br1── rvsd dpdk1 2001:db8:10::1
//!                      └──── NAT reals 2001:db8:10::11, ::12 (default route via rvsd)
//! ```
//!
//! rvsd resolves the client and the NAT reals itself (neighbour solicitations from the
//! worker), so the replies also cover the IPv6 resolution path.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::netns::Topology;
use std::collections::BTreeMap;

/// Requests `count` times `url` from `ns`, one connection each, and counts the bodies.
fn fetch(topo: &Topology, ns: &str, url: &str, count: usize) -> BTreeMap<String, usize> {
    let script = format!(
        "for i in $(seq {count}); do curl -sg --max-time 5 '{url}' || echo FAILED; echo; done"
    );
    let out = topo.exec(ns, &["sh", "-c", &script]);
    let mut seen = BTreeMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        *seen.entry(line.trim().to_owned()).or_insert(0) += 1;
    }
    seen
}

#[test]
fn http_over_nat66_and_dr6_with_wrr_weights() {
    let mut topo = Topology::new();
    let lb = topo.netns("lb");
    let cli = topo.netns("cli");
    let sw = topo.netns("sw");
    topo.bridge(&sw, "br0");
    topo.bridge(&sw, "br1");
    // Local delivery (a server's probe of itself) goes through loopback.
    let v6 = |topo: &Topology, ns: &str, ifname: &str, cidr: &str| {
        topo.enable_ipv6(ns, "lo");
        topo.enable_ipv6(ns, ifname);
        topo.exec(
            ns,
            &["ip", "-6", "addr", "add", cidr, "dev", ifname, "nodad"],
        );
        topo.exec(
            ns,
            &[
                "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
            ],
        );
    };

    let (c0, sc) = (topo.name("c"), topo.name("sc"));
    topo.veth(&cli, &c0, &sw, &sc);
    topo.bridge_port(&sw, "br0", &sc);
    v6(&topo, &cli, &c0, "2001:db8::2/64");
    let mut vdevs = String::new();
    for (i, bridge) in ["br0", "br1"].iter().enumerate() {
        let (l, s) = (topo.name(&format!("l{i}")), topo.name(&format!("s{i}")));
        topo.veth(&lb, &l, &sw, &s);
        topo.bridge_port(&sw, bridge, &s);
        vdevs += &format!(r#", "--vdev", "net_af_packet{i},iface={l}""#);
    }

    let mut service = String::from(
        "[[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\nsched = \"wrr\"\n",
    );
    for (i, weight) in [(0, 3), (1, 1)] {
        let ns = topo.netns(&format!("nat{i}"));
        let (r, s) = (topo.name(&format!("r{i}")), topo.name(&format!("sr{i}")));
        topo.veth(&ns, &r, &sw, &s);
        topo.bridge_port(&sw, "br1", &s);
        let addr = format!("2001:db8:10::1{}", i + 1);
        v6(&topo, &ns, &r, &format!("{addr}/64"));
        topo.exec(
            &ns,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:10::1",
            ],
        );
        let ip: std::net::Ipv6Addr = addr.parse().unwrap();
        topo.http_server(&ns, ip, 8080, &format!("nat{i}"));
        service += &format!(
            "  [[service.real]]\n  addr = \"[{addr}]:8080\"\n  mode = \"nat\"\n  weight = {weight}\n"
        );
    }
    service += "[[service]]\nvip = \"[2001:db8::100]:81\"\nproto = \"tcp\"\nsched = \"wrr\"\n";
    for i in 0..2 {
        let ns = topo.netns(&format!("dr{i}"));
        let (r, s) = (topo.name(&format!("d{i}")), topo.name(&format!("sd{i}")));
        topo.veth(&ns, &r, &sw, &s);
        topo.bridge_port(&sw, "br0", &s);
        let addr = format!("2001:db8::2{}", i + 1);
        v6(&topo, &ns, &r, &format!("{addr}/64"));
        // The VIP on loopback: Linux answers neighbour solicitations only for the
        // addresses of the interface they arrive on, so rvsd alone answers for the VIP.
        topo.exec(
            &ns,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                "2001:db8::100/128",
                "dev",
                "lo",
                "nodad",
            ],
        );
        topo.http_server(&ns, std::net::Ipv6Addr::UNSPECIFIED, 81, &format!("dr{i}"));
        service += &format!("  [[service.real]]\n  addr = \"{addr}\"\n  mode = \"dr\"\n");
    }

    let stats = topo.dir.path().join("stats.json");
    let config = format!(
        r#"[eal]
args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}"{vdevs}]
{control}
[dataplane]
workers = [1]
conn_table_size = 4096
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "2001:db8::1/64", "2001:db8::100/128"]
[[port]]
name = "dpdk1"
addrs = ["192.168.10.1/24", "2001:db8:10::1/64"]
{service}"#,
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
            "-6",
            "-c1",
            "-W1",
            "2001:db8::100",
        ],
    );

    let nat = fetch(&topo, &cli, "http://[2001:db8::100]:80/", 100);
    assert_eq!(
        nat,
        BTreeMap::from([("nat0".to_owned(), 75), ("nat1".to_owned(), 25)]),
        "wrr 3:1 over NAT66\n{}",
        topo.log()
    );
    let dr = fetch(&topo, &cli, "http://[2001:db8::100]:81/", 100);
    assert_eq!(
        dr,
        BTreeMap::from([("dr0".to_owned(), 50), ("dr1".to_owned(), 50)]),
        "wrr 1:1 over DR6\n{}",
        topo.log()
    );

    if let Err(e) = topo.stop_rvsd() {
        panic!("{e}\n{}", topo.log());
    }
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let services = stats["services"].as_array().expect("services");
    let conns = |vip: &str| {
        services
            .iter()
            .find(|s| s["vip"] == vip)
            .map(|s| s["conns"].as_u64().unwrap_or(0))
    };
    assert_eq!(conns("[2001:db8::100]:80"), Some(100), "{stats}");
    assert_eq!(conns("[2001:db8::100]:81"), Some(100), "{stats}");
}
