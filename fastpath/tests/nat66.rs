//! NAT66, DR and TUN over IPv6 (`fixtures/nat66.rs`): exact frames both ways, counted drops, the
//! ICMPv6 answers, the counters of the real servers.

mod fixtures;

use fixtures::{nat66, pure};

#[test]
fn pipeline_forwards_nat66_dr6_and_tun6_as_the_table_says() {
    let snapshot = pure::snapshot(nat66::CONFIG, nat66::PORT_MAC);
    let mut pipeline = pure::pipeline(nat66::CONFIG, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &nat66::fixtures(), |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The NAT service's counters as ipvsadm --stats shows them. As in the kernel, a packet
    // is counted (and the SYN with hop limit 1 makes its connection) before its transmission
    // fails: the expiring SYN and the packet too big count in.
    let web = snapshot
        .service(conf::Proto::Tcp, "[2001:db8::100]:80".parse().unwrap())
        .expect("service");
    let totals = web.traffic.totals();
    // The ICMPv6 errors about the connection count too, one each way (109 bytes each).
    assert_eq!((totals.conns, totals.inpkts, totals.outpkts), (2, 5, 3));
    assert_eq!(
        (totals.inbytes, totals.outbytes),
        (60 + 78 + 60 + 1460 + 109, 60 + 77 + 109),
        "IPv6 packet lengths"
    );
    assert_eq!(web.reals[0].load.activeconns(), 1, "ESTABLISHED");
    assert_eq!(web.reals[0].load.inactconns(), 1, "the expired SYN's");
    assert_eq!(pipeline.conns(), 5, "two NAT TCP, DR TCP, TUN TCP, UDP");
    // The connection listing (`rvsadm -L -c`) has the IPv6 connections.
    let listed: Vec<String> = pipeline
        .conn_entries(100)
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e.proto.as_str(),
                e.state,
                e.client,
                e.virt,
                e.dest
            )
        })
        .collect();
    for want in [
        "tcp ESTABLISHED [2001:db8:c::99]:40000 [2001:db8::100]:80 [2001:db8::11]:8080",
        "tcp ESTABLISHED [2001:db8:c::99]:40001 [2001:db8::100]:81 [2001:db8::21]:81",
        "tcp ESTABLISHED [2001:db8:c::99]:40004 [2001:db8::100]:82 [2001:db8::31]:82",
        "udp UDP [2001:db8:c::99]:5353 [2001:db8::100]:53 [2001:db8::11]:53",
    ] {
        assert!(listed.iter().any(|l| l == want), "{want} in {listed:#?}");
    }
}
