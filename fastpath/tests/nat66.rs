//! NAT66 and DR over IPv6 (`fixtures/nat66.rs`): exact frames both ways, counted drops, the
//! ICMPv6 answers, the counters of the real servers.

mod fixtures;

use fixtures::{nat66, pure};

#[test]
fn pipeline_forwards_nat66_and_dr6_as_the_table_says() {
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
    assert_eq!((totals.conns, totals.inpkts, totals.outpkts), (2, 4, 2));
    assert_eq!(
        (totals.inbytes, totals.outbytes),
        (60 + 78 + 60 + 1460, 60 + 77),
        "IPv6 packet lengths"
    );
    assert_eq!(web.reals[0].load.activeconns(), 1, "ESTABLISHED");
    assert_eq!(web.reals[0].load.inactconns(), 1, "the expired SYN's");
    assert_eq!(pipeline.conns(), 4, "two NAT TCP, DR TCP, UDP");
}
