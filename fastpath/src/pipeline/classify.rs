//! The first stage: what a received frame is, read once.
//!
//! [`classify`] validates the Ethernet and IPv4 headers and parses the TCP or UDP ports and
//! flags; the worker runs it for a whole burst first ([`super::Pipeline::prefetch`]) and the
//! later stages take its answer ([`Class`]) instead of parsing the frame again. It reads the
//! frame and the snapshot only: nothing changes.

use crate::snapshot::Snapshot;
use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType};
use crate::wire::icmp::{self, Message};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{tcp, udp};
use crate::xmit;
use std::net::SocketAddrV4;

/// What a frame is, as far as the pipeline's later stages need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// An ARP packet (answered for owned addresses, learned from).
    Arp,
    /// An ICMP echo request to an owned address.
    Echo,
    /// A TCP or UDP packet: to an owned address (a VIP, a local address) when `local`, else
    /// possibly a reply of a NAT connection.
    L4 { flow: Flow, local: bool },
    /// An ICMP error (destination unreachable, source quench, time exceeded, parameter
    /// problem) that may be about a connection.
    IcmpError,
    /// Dropped at once, for this reason.
    Drop(DropReason),
}

/// The L4 facts of one TCP or UDP packet whose IPv4 header is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    pub proto: conf::Proto,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub flags: tcp::Flags,
    /// TCP sequence and acknowledgment numbers (0 for UDP).
    pub seq: u32,
    pub ack: u32,
    /// TCP payload length (0 for UDP).
    pub payload_len: u16,
    /// IP total length: what ipvsadm's byte counters add up.
    pub ip_len: u16,
    /// Where its headers are, for the rewrites.
    pub at: xmit::Headers,
}

impl Flow {
    /// The connection table's key for this packet.
    #[inline]
    pub fn key(&self) -> crate::conn::FlowKey {
        crate::conn::FlowKey::new(self.proto, self.src, self.dst)
    }

    /// A packet that may open a connection: any UDP datagram, a TCP SYN without RST.
    #[inline]
    pub fn opens(&self) -> bool {
        self.proto == conf::Proto::Udp
            || (self.flags.contains(tcp::Flags::SYN) && !self.flags.contains(tcp::Flags::RST))
    }
}

/// Classifies `frame`, received on port `in_port`.
#[inline]
pub(crate) fn classify(snapshot: &Snapshot, in_port: usize, frame: &[u8]) -> Class {
    let Some(port) = snapshot.ports.get(in_port) else {
        return Class::Drop(DropReason::NotOurs);
    };
    let Some((head, rest)) = frame.split_first_chunk::<{ ether::HEADER_LEN }>() else {
        return Class::Drop(DropReason::Truncated);
    };
    let eth = ether::Packet::new_unchecked(head);
    match eth.ethertype() {
        EtherType::Arp => Class::Arp,
        EtherType::Ipv4 if eth.dst_addr() != port.mac => Class::Drop(DropReason::ForeignMac),
        EtherType::Ipv4 => ipv4(snapshot, rest),
        t if t.is_vlan() => Class::Drop(DropReason::VlanTagged),
        _ => Class::Drop(DropReason::UnsupportedEthertype),
    }
}

/// [`classify`] for the IPv4 packet `bytes` (everything after the Ethernet header).
#[inline]
fn ipv4(snapshot: &Snapshot, bytes: &[u8]) -> Class {
    let ip = ipv4::Packet::new_unchecked(bytes);
    if let Err(reason) = ip.validate() {
        return Class::Drop(reason);
    }
    let local = snapshot.owns(ip.dst_addr());
    let protocol = ip.protocol();
    if let Protocol::Tcp | Protocol::Udp = protocol {
        let at = xmit::Headers {
            protocol,
            l4: ether::HEADER_LEN + ip.header_len(),
            end: ether::HEADER_LEN + usize::from(ip.total_len()),
        };
        return match parse_l4(&ip, at) {
            Ok(flow) => Class::L4 { flow, local },
            Err(reason) => Class::Drop(reason),
        };
    }
    not_l4(snapshot, &ip, local, protocol)
}

/// The TCP or UDP header of a validated IPv4 packet, its headers at `at`. The fixed headers
/// are read through views of known size, which check no bounds.
#[inline]
fn parse_l4(ip: &ipv4::Packet<&[u8]>, at: xmit::Headers) -> Result<Flow, DropReason> {
    let segment = ip.payload();
    let (proto, sport, dport, flags, seq, ack, payload_len) = match at.protocol {
        Protocol::Tcp => {
            // `tcp::Packet::check_len` on the view of the fixed header: at least the fixed
            // header, and a data offset between it and the segment's end.
            let t = segment
                .first_chunk::<{ tcp::HEADER_LEN }>()
                .map(tcp::Packet::new_unchecked)
                .ok_or(DropReason::BadL4Header)?;
            let header_len = t.header_len();
            if header_len < tcp::HEADER_LEN || header_len > segment.len() {
                return Err(DropReason::BadL4Header);
            }
            (
                conf::Proto::Tcp,
                t.src_port(),
                t.dst_port(),
                t.flags(),
                t.seq_number(),
                t.ack_number(),
                segment.len().saturating_sub(header_len),
            )
        }
        _ => {
            let u = udp::Packet::new_checked(segment)?;
            let flags = tcp::Flags::default();
            (conf::Proto::Udp, u.src_port(), u.dst_port(), flags, 0, 0, 0)
        }
    };
    Ok(Flow {
        proto,
        src: SocketAddrV4::new(ip.src_addr(), sport),
        dst: SocketAddrV4::new(ip.dst_addr(), dport),
        flags,
        seq,
        ack,
        // A validated packet is at most 65535 bytes long.
        payload_len: u16::try_from(payload_len).unwrap_or(u16::MAX),
        ip_len: ip.total_len(),
        at,
    })
}

/// [`classify`] for a validated packet that is neither TCP nor UDP: ICMP echo requests to an
/// owned address, ICMP errors, the rest dropped; nothing from a martian source (TCP and UDP
/// packets are checked when they match no connection, `forward`). Out of line: rare.
#[inline(never)]
fn not_l4(snapshot: &Snapshot, ip: &ipv4::Packet<&[u8]>, local: bool, protocol: Protocol) -> Class {
    if snapshot.is_martian_source(ip.src_addr()) {
        return Class::Drop(DropReason::MartianSource);
    }
    let icmp_type = match protocol {
        Protocol::Icmp => icmp::Packet::new_checked(ip.payload())
            .map(|p| p.msg_type())
            .ok(),
        _ => None,
    };
    match (local, protocol, icmp_type) {
        (true, Protocol::Icmp, Some(Message::EchoRequest)) => Class::Echo,
        (_, Protocol::Icmp, Some(m)) if m.is_error() => Class::IcmpError,
        (true, Protocol::Icmp, _) => Class::Drop(DropReason::IcmpIgnored),
        (true, _, _) => Class::Drop(DropReason::UnsupportedProtocol),
        (false, _, _) => Class::Drop(DropReason::NotOurs),
    }
}
