//! IPv6 on a port that owns IPv6 addresses (`fixtures/host6.rs`): neighbour discovery and
//! echo answered for owned addresses, the rest handed to the kernel twin or dropped.

mod fixtures;

use fixtures::{host6, pure};

#[test]
fn a_port_with_a_twin_answers_nd_and_echo_and_hands_the_rest_to_the_kernel() {
    let snapshot = pure::snapshot(host6::CONFIG, host6::PORT_MAC);
    let mut pipeline = pure::pipeline(host6::CONFIG, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &host6::fixtures(true), |i| {
        i as u64
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_port_without_a_twin_answers_the_same_and_drops_the_rest() {
    let snapshot = pure::snapshot(host6::CONFIG_NO_TWIN, host6::PORT_MAC);
    let mut pipeline = pure::pipeline(host6::CONFIG_NO_TWIN, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &host6::fixtures(false), |i| {
        i as u64
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Neighbour discovery teaches the worker its IPv6 neighbours as ARP does for IPv4: the source
/// of a solicitation that carries its link-layer address, the target of an advertisement; only
/// on-link addresses (by the port's prefixes, or link-local), never a probe's, never one of
/// the balancer's own. What it learned is handed out once for the other workers.
#[test]
fn nd_teaches_the_worker_its_on_link_neighbours() {
    use fastpath::frame::VecFrame;
    use fastpath::wire::ether::EthernetAddress;
    use host6::*;
    use std::net::{IpAddr, Ipv6Addr};

    let snapshot = pure::snapshot(CONFIG_NO_TWIN, PORT_MAC);
    let mut p = pure::pipeline(CONFIG_NO_TWIN, &snapshot);
    let sn = solicited_node(DIP6);
    let off_link = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 7);
    let frames = [
        ns(
            (CLIENT_MAC, multicast_mac(sn)),
            CLIENT6,
            sn,
            DIP6,
            Some(CLIENT_MAC),
        ),
        na(
            (ROUTER_MAC, PORT_MAC),
            ROUTER_LL,
            LL,
            ROUTER_LL,
            0xe0,
            ROUTER_MAC,
        ),
        // Off the port's prefixes and not link-local: not a neighbour.
        ns(
            (CLIENT_MAC, multicast_mac(sn)),
            off_link,
            sn,
            DIP6,
            Some(CLIENT_MAC),
        ),
        // A probe has no address to learn.
        ns(
            (CLIENT_MAC, multicast_mac(sn)),
            Ipv6Addr::UNSPECIFIED,
            sn,
            DIP6,
            None,
        ),
        // Someone advertising the balancer's own address is not its neighbour.
        na(
            (ROUTER_MAC, multicast_mac(ALL_NODES)),
            ROUTER_LL,
            ALL_NODES,
            DIP6,
            0x20,
            ROUTER_MAC,
        ),
    ];
    for (i, f) in frames.iter().enumerate() {
        p.packet(&snapshot, 0, &mut VecFrame::new(f), i as u64);
    }
    let learned: Vec<_> = p.take_learned().collect();
    assert_eq!(
        learned,
        [
            (0, IpAddr::V6(CLIENT6), EthernetAddress(CLIENT_MAC)),
            (0, IpAddr::V6(ROUTER_LL), EthernetAddress(ROUTER_MAC)),
        ]
    );
    assert_eq!(p.take_learned().count(), 0, "handed out once");
    assert_eq!(
        p.neighbors6().lookup(0, CLIENT6),
        Some(EthernetAddress(CLIENT_MAC))
    );
    assert_eq!(p.neighbors6().lookup(0, off_link), None);
    assert_eq!(p.neighbors6().lookup(0, DIP6), None);
    // The same solicitation again teaches nothing new.
    p.packet(&snapshot, 0, &mut VecFrame::new(&frames[0]), 9);
    assert_eq!(p.take_learned().count(), 0);
}
