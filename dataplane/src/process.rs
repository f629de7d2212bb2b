//! The pipeline entry: one received frame in, one verdict out. Pure over a [`Frame`], so the
//! same code runs on DPDK mbufs in workers and on byte vectors in tests and benchmarks.
//!
//! Stages, in packet order: Ethernet dispatch → ARP ([`l2::arp`]) or IPv4 header validation →
//! owned address → ICMP echo ([`l2::icmp`]). Traffic to services is not forwarded yet (the data
//! path issue) and is dropped as [`DropReason::NoService`].

use crate::frame::Frame;
use crate::l2;
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, Verdict};
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::ipv4::{self, Protocol};

/// Decides what happens to `frame`, received on port `in_port`, rewriting it in place when it
/// is to be sent.
pub fn packet<F: Frame>(snapshot: &Snapshot, in_port: usize, frame: &mut F) -> Verdict {
    let Some(port) = snapshot.ports.get(in_port) else {
        return Verdict::Drop(DropReason::NotOurs);
    };
    let data = frame.data_mut();
    let (ethertype, dst_mac) = match ether::Packet::new_checked(&*data) {
        Ok(eth) => (eth.ethertype(), eth.dst_addr()),
        Err(reason) => return Verdict::Drop(reason),
    };
    let verdict = match ethertype {
        EtherType::Arp => l2::arp::respond(data, port.mac, |ip| snapshot.owns_on(in_port, ip))
            .and_then(|outcome| match outcome {
                l2::arp::Outcome::Reply(_) => Ok(()),
                l2::arp::Outcome::NoReply(_, reason) => Err(reason),
            }),
        EtherType::Ipv4 if dst_mac != EthernetAddress(port.mac) => Err(DropReason::ForeignMac),
        EtherType::Ipv4 => ipv4_local(snapshot, port.mac, data),
        t if t.is_vlan() => Err(DropReason::VlanTagged),
        _ => Err(DropReason::UnsupportedEthertype),
    };
    match verdict {
        Ok(()) => Verdict::Tx { port: in_port },
        Err(reason) => Verdict::Drop(reason),
    }
}

/// IPv4 addressed to the balancer's MAC: answers echo requests to owned addresses.
fn ipv4_local(snapshot: &Snapshot, port_mac: [u8; 6], data: &mut [u8]) -> Result<(), DropReason> {
    let eth = ether::Packet::new_unchecked(&*data);
    let ip = ipv4::Packet::new_unchecked(eth.payload());
    ip.validate()?;
    if !snapshot.owns(ip.dst_addr()) {
        return Err(DropReason::NotOurs);
    }
    match ip.protocol() {
        Protocol::Icmp => l2::icmp::respond(data, port_mac, |a| snapshot.owns(a)),
        Protocol::Tcp | Protocol::Udp => Err(DropReason::NoService),
        _ => Err(DropReason::UnsupportedProtocol),
    }
}
