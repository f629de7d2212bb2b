//! Next hops that are not known yet: rvsd parks the packet, asks with ARP, and sends it as
//! soon as the answer comes; a real server that never answers costs its packets, counted as
//! `no_neighbor`; a gratuitous ARP moves a neighbour to its new MAC.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::packet::{arp_request, tcp, Arp, Eth, Ip, Mac, Tcp};
use fixtures::topo::{self, FROM_ROUTER, PORT_MAC, VIP};
use std::net::Ipv4Addr;

const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const RIP_MAC: Mac = [0x52, 0x54, 0x00, 0x00, 0x00, 0x0b];
const RIP_NEW_MAC: Mac = [0x52, 0x54, 0x00, 0x00, 0x00, 0xbb];
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn config() -> String {
    format!(
        "{}[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\nsched = \"rr\"\n  [[service.real]]\n  addr = \"10.0.0.11:80\"\n  mode = \"dr\"\n",
        topo::NETWORK
    )
}

fn syn(sport: u16) -> Vec<u8> {
    tcp(
        FROM_ROUTER,
        Ip::new(CLIENT, VIP).ttl(57),
        Tcp::new(sport, 80, "S"),
        b"",
    )
}

/// The SYN as DR forwards it to the real server at `mac`: MACs rewritten, TTL − 1.
fn forwarded(sport: u16, mac: Mac) -> Vec<u8> {
    tcp(
        Eth {
            src: PORT_MAC,
            dst: mac,
        },
        Ip::new(CLIENT, VIP).ttl(56),
        Tcp::new(sport, 80, "S"),
        b"",
    )
}

fn reply_from_real(mac: Mac, op: u16) -> Vec<u8> {
    let arp = Arp {
        op,
        sha: mac,
        spa: RIP,
        tha: PORT_MAC,
        tpa: topo::DIP,
    };
    arp.frame(Eth {
        src: mac,
        dst: PORT_MAC,
    })
}

#[test]
fn packets_wait_for_arp_and_leave_when_the_answer_comes() {
    let gratuitous = Arp {
        op: 2,
        sha: RIP_NEW_MAC,
        spa: RIP,
        tha: [0xff; 6],
        tpa: RIP,
    }
    .frame(Eth {
        src: RIP_NEW_MAC,
        dst: [0xff; 6],
    });
    let input = vec![
        syn(40001),                  // parks, asks for 10.0.0.11
        syn(40002),                  // parks behind it, no second request
        reply_from_real(RIP_MAC, 2), // both leave, in order
        syn(40003),                  // known now: leaves at once
        gratuitous,                  // the real server moved to a new MAC
        syn(40004),                  // goes to the new MAC
    ];
    let run = common::run_pcap(&config(), &input);
    let mut expected = topo::announcements();
    // The request rvs builds: broadcast, from the port, asking for the real server.
    let request = Arp {
        op: 1,
        sha: PORT_MAC,
        spa: topo::DIP,
        tha: [0; 6],
        tpa: RIP,
    };
    expected.push(request.frame(Eth {
        src: PORT_MAC,
        dst: [0xff; 6],
    }));
    expected.push(forwarded(40001, RIP_MAC));
    expected.push(forwarded(40002, RIP_MAC));
    expected.push(forwarded(40003, RIP_MAC));
    expected.push(forwarded(40004, RIP_NEW_MAC));
    common::assert_frames_eq("rvsd output", &expected, &run.output);
    // The ARP reply and the gratuitous ARP are consumed, nothing else is dropped.
    assert_eq!(
        run.nonzero_drops(),
        vec![("arp_ignored".to_owned(), 2)],
        "{}",
        run.log
    );
}

#[test]
fn a_silent_neighbour_costs_its_packets_as_no_neighbor() {
    let input = vec![
        syn(40001),
        syn(40002),
        arp_request(
            [2, 0, 0, 0, 0, 0x77],
            Ipv4Addr::new(10, 0, 0, 77),
            topo::DIP,
        ),
    ];
    let run = common::run_pcap(&config(), &input);
    // Announcements, the ARP request for the real server, the ARP reply to 10.0.0.77.
    assert_eq!(run.output.len(), 4, "{}", run.log);
    assert_eq!(
        run.drops("no_neighbor"),
        2,
        "parked packets are counted when rvsd stops: {}",
        run.stats
    );
}
