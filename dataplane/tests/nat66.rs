//! NAT66 and DR over IPv6 through `rvsd` on `net_pcap`, with the fixture table the pure
//! pipeline runs in `fastpath/tests/nat66.rs`: the same frames out byte for byte, the same
//! drop counters, the services' counters in `--stats-json`.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::packet::{Arp, Eth, BROADCAST};
use fixtures::{expected_drops, host6, nat66};

#[test]
fn rvsd_forwards_nat66_dr6_and_tun6_on_net_pcap() {
    let table = nat66::fixtures();
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(nat66::CONFIG, &input);

    let dip = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let garp = Arp {
        op: 1,
        sha: nat66::PORT_MAC,
        spa: dip,
        tha: [0; 6],
        tpa: dip,
    }
    .frame(Eth {
        src: nat66::PORT_MAC,
        dst: BROADCAST,
    });
    let mut expected = vec![garp];
    for ip in ["2001:db8::1", "2001:db8::100"] {
        let ip = ip.parse().unwrap();
        expected.push(host6::na(
            (nat66::PORT_MAC, host6::multicast_mac(host6::ALL_NODES)),
            ip,
            host6::ALL_NODES,
            ip,
            0x80 | 0x20,
            nat66::PORT_MAC,
        ));
    }
    expected.extend(table.iter().flat_map(|f| f.expect.frames()));
    common::assert_frames_eq("rvsd output", &expected, &run.output);

    let drops: std::collections::BTreeMap<String, u64> = run.nonzero_drops().into_iter().collect();
    assert_eq!(
        drops,
        expected_drops(&table),
        "drop counters; log:\n{}",
        run.log
    );
    let services = run.stats["services"].as_array().expect("services");
    let web = services
        .iter()
        .find(|s| s["vip"] == "[2001:db8::100]:80" && s["proto"] == "tcp")
        .unwrap_or_else(|| panic!("the NAT66 service in {services:?}"));
    assert_eq!(web["reals"][0]["addr"], "[2001:db8::11]:8080");
    assert_eq!(web["conns"], 2);
    assert_eq!(web["inpkts"], 5);
    assert_eq!(web["outpkts"], 3);
}
