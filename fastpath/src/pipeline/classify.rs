//! The first stage: what a received frame is, read once.
//!
//! [`classify`] validates the Ethernet and IPv4 headers and parses the TCP or UDP ports and
//! flags; the worker runs it for a whole burst first ([`super::Pipeline::prefetch`]) and the
//! later stages take its answer ([`Class`]) instead of parsing the frame again. It reads the
//! frame and the snapshot only: nothing changes.
//!
//! IPv6 is sorted out in [`super::classify6`].
//!
//! It also decides what goes to the kernel when the receiving port has a twin
//! (`[[port]] exception`): frames that are not IP, link-local multicast (224.0.0.0/24:
//! VRRP, OSPF, IGMP, the sync group), and IPv4 to the host's own addresses ([`Owned::Host`]:
//! a DIP, an address the kernel holds that no service uses) other than the ICMP echo rvs
//! answers itself. Traffic to a VIP or a FULLNAT local address ([`Owned::Service`]) never
//! goes to the kernel: what matches no service nor connection is dropped and counted, so a
//! flood at a VIP cannot reach the host. ARP is answered here and, on a twin port, copied to
//! the kernel by the worker ([`super::Parsed::is_arp`]).

use crate::snapshot::{Owned, PortView, Snapshot};
use crate::verdict::{DropReason, PuntReason};
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
    /// An ICMPv6 neighbour solicitation or advertisement (not validated yet).
    Nd,
    /// An ICMPv6 echo request to an owned IPv6 address (its checksum not checked yet).
    Echo6,
    /// A TCP or UDP packet over IPv6 (its L4 header not parsed yet): to a VIP when `local`,
    /// else possibly a NAT66 reply.
    L4v6 { local: bool },
    /// An ICMPv6 error that may be about an IPv6 connection (to an owned address when
    /// `local`).
    Icmp6Error { local: bool },
    /// A TCP or UDP packet: to an owned address (a VIP, a local address) when `local`, else
    /// possibly a reply of a NAT connection.
    L4 { flow: Flow, local: bool },
    /// An ICMP error (destination unreachable, source quench, time exceeded, parameter
    /// problem) that may be about a connection.
    IcmpError,
    /// A fragment of a TCP or UDP datagram (to an owned address when `local`), for
    /// [`super::fragment`]; `handed` when another worker handed it over (set by
    /// `Pipeline::handed_over`, never here).
    Fragment { local: bool, handed: bool },
    /// For the kernel, through the receiving port's twin.
    Punt(PuntReason),
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

    /// TCP: the segment's sequence numbers and payload length ([`TcpNumbers`]), read from
    /// `frame`, the frame this flow was parsed from, its TCP header not rewritten since. Only
    /// FULLNAT needs them, so the classifier does not copy them for every packet. All zero
    /// for UDP.
    pub fn tcp_numbers(&self, frame: &[u8]) -> TcpNumbers {
        let t = match self.proto {
            conf::Proto::Tcp => frame
                .get(self.at.l4..self.at.end)
                .and_then(|segment| Some((segment.first_chunk::<{ tcp::HEADER_LEN }>()?, segment))),
            conf::Proto::Udp => None,
        };
        match t {
            Some((fixed, segment)) => {
                let t = tcp::Packet::new_unchecked(fixed);
                let payload_len = segment.len().saturating_sub(t.header_len());
                TcpNumbers {
                    seq: t.seq_number(),
                    ack: t.ack_number(),
                    // A validated packet is at most 65535 bytes long.
                    payload_len: u16::try_from(payload_len).unwrap_or(u16::MAX),
                }
            }
            None => TcpNumbers::default(),
        }
    }

    /// A packet that may open a connection: any UDP datagram, a TCP SYN without RST.
    #[inline]
    pub fn opens(&self) -> bool {
        self.proto == conf::Proto::Udp
            || (self.flags.contains(tcp::Flags::SYN) && !self.flags.contains(tcp::Flags::RST))
    }
}

/// What FULLNAT reads of a TCP segment besides its flow ([`Flow::tcp_numbers`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpNumbers {
    /// Sequence and acknowledgment numbers.
    pub seq: u32,
    pub ack: u32,
    /// Payload length.
    pub payload_len: u16,
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
    let to_port = eth.dst_addr() == port.mac;
    match eth.ethertype() {
        EtherType::Arp => Class::Arp,
        EtherType::Ipv4 if to_port => ipv4(snapshot, port, rest),
        EtherType::Ipv4 if port.twin && !eth.dst_addr().is_unicast() => group(snapshot, rest),
        EtherType::Ipv4 => Class::Drop(DropReason::ForeignMac),
        EtherType::Ipv6 if to_port || !eth.dst_addr().is_unicast() => {
            super::classify6::classify(snapshot, port, rest)
        }
        EtherType::Ipv6 => Class::Drop(DropReason::ForeignMac),
        _ if port.twin && (to_port || !eth.dst_addr().is_unicast()) => {
            Class::Punt(PuntReason::NonIpv4)
        }
        _ if port.twin => Class::Drop(DropReason::ForeignMac),
        t if t.is_vlan() => Class::Drop(DropReason::VlanTagged),
        _ => Class::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Whether `dst` is a link-local multicast group (224.0.0.0/24), which never leaves the link:
/// VRRP, OSPF, IGMP and the connection sync group use it.
fn link_local_group(dst: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = dst.octets();
    (a, b, c) == (224, 0, 0)
}

/// [`classify`] for IPv4 sent to a multicast or broadcast MAC on a port with a twin: the
/// link-local groups go to the kernel, the rest is not ours. Out of line: rare.
#[inline(never)]
fn group(snapshot: &Snapshot, bytes: &[u8]) -> Class {
    let ip = ipv4::Packet::new_unchecked(bytes);
    if let Err(reason) = ip.validate() {
        return Class::Drop(reason);
    }
    if snapshot.is_martian_source(ip.src_addr()) {
        return Class::Drop(DropReason::MartianSource);
    }
    if link_local_group(ip.dst_addr()) {
        Class::Punt(PuntReason::Multicast)
    } else {
        Class::Drop(DropReason::NotOurs)
    }
}

/// [`classify`] for the IPv4 packet `bytes` (everything after the Ethernet header) sent to
/// port `port`'s MAC.
#[inline]
fn ipv4(snapshot: &Snapshot, port: &PortView, bytes: &[u8]) -> Class {
    let ip = ipv4::Packet::new_unchecked(bytes);
    if let Err(reason) = ip.validate() {
        // A fragment is an otherwise valid packet (the last check of `validate`).
        return match reason {
            DropReason::Fragment => super::fragment::classify(snapshot, port, &ip),
            reason => Class::Drop(reason),
        };
    }
    let owned = snapshot.owned(ip.dst_addr());
    let local = owned.is_some();
    // Only a port with a twin hands anything to the kernel: the rest of the test is worked
    // out for those alone.
    if port.twin && host_or_group(owned, ip.dst_addr()) {
        if let Some(class) = for_kernel(snapshot, &ip, owned, ip.protocol()) {
            return class;
        }
    }
    // TCP and UDP from the protocol number; the rest is converted and sorted out of line.
    let protocol = match ip.protocol_number() {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return not_l4(snapshot, &ip, local, ip.protocol()),
    };
    let at = xmit::Headers {
        protocol,
        l4: ether::HEADER_LEN + ip.header_len(),
        end: ether::HEADER_LEN + usize::from(ip.total_len()),
    };
    match parse_l4(&ip, at) {
        Ok(flow) => Class::L4 { flow, local },
        Err(reason) => Class::Drop(reason),
    }
}

/// Whether a packet to `dst`, which the balancer owns as `owned`, is for the host or a
/// link-local group (what a port's twin may take).
#[inline]
fn host_or_group(owned: Option<Owned>, dst: std::net::Ipv4Addr) -> bool {
    match owned {
        Some(Owned::Host) => true,
        Some(Owned::Service) => false,
        None => link_local_group(dst),
    }
}

/// What of a packet to the MAC of a port with a twin, not to a service address, goes to the
/// kernel: TCP, UDP, other protocols and ICMP but the echo rvs answers itself, to the host's
/// addresses; anything to a link-local group. `None`: the fast path's (an echo request, an
/// ICMP error that may be about a connection, a NAT or FULLNAT reply, what is not ours).
/// Out of line: only ports with a twin come here.
#[inline(never)]
fn for_kernel(
    snapshot: &Snapshot,
    ip: &ipv4::Packet<&[u8]>,
    owned: Option<Owned>,
    protocol: Protocol,
) -> Option<Class> {
    let reason = match (owned, protocol) {
        (Some(_), Protocol::Tcp) => PuntReason::LocalTcp,
        (Some(_), Protocol::Udp) => PuntReason::LocalUdp,
        (Some(_), Protocol::Icmp) => {
            let message = icmp::Packet::new_checked(ip.payload()).map(|p| p.msg_type());
            match message {
                Ok(Message::EchoRequest) => return None,
                Ok(m) if m.is_error() => return None,
                _ => PuntReason::LocalIcmp,
            }
        }
        (Some(_), _) => PuntReason::OtherProto,
        (None, _) if link_local_group(ip.dst_addr()) => PuntReason::Multicast,
        (None, _) => return None,
    };
    if snapshot.is_martian_source(ip.src_addr()) {
        return Some(Class::Drop(DropReason::MartianSource));
    }
    Some(Class::Punt(reason))
}

/// The TCP or UDP header of a validated IPv4 packet, its headers at `at`. The fixed headers
/// are read through views of known size, which check no bounds.
#[inline]
fn parse_l4(ip: &ipv4::Packet<&[u8]>, at: xmit::Headers) -> Result<Flow, DropReason> {
    let segment = ip.payload();
    let (proto, sport, dport, flags) = match at.protocol {
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
            (conf::Proto::Tcp, t.src_port(), t.dst_port(), t.flags())
        }
        _ => {
            let u = udp::Packet::new_checked(segment)?;
            let flags = tcp::Flags::default();
            (conf::Proto::Udp, u.src_port(), u.dst_port(), flags)
        }
    };
    Ok(Flow {
        proto,
        src: SocketAddrV4::new(ip.src_addr(), sport),
        dst: SocketAddrV4::new(ip.dst_addr(), dport),
        flags,
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
        (false, _, _) if snapshot.is_unheld_vip(ip.dst_addr()) => {
            Class::Drop(DropReason::VipNotOwned)
        }
        (false, _, _) => Class::Drop(DropReason::NotOurs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ether::EthernetAddress;
    use crate::xmit::testing::{frame, tcp_header, Ip, ROUTER_MAC};
    use std::net::Ipv4Addr;

    const PORT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

    /// The flow `classify` makes of `packet` (sent to a port with no twin and no address).
    fn flow_of(data: &[u8]) -> Flow {
        let config = conf::Config::parse(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n",
            "t.toml",
        )
        .unwrap();
        let snapshot = Snapshot::build(&config, &[PORT_MAC.0], None, 1).unwrap();
        match classify(&snapshot, 0, data) {
            Class::L4 { flow, .. } => flow,
            other => panic!("not L4: {other:?}"),
        }
    }

    #[test]
    fn tcp_numbers_are_read_from_the_frame_and_zero_for_udp() {
        let ip = Ip::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.tcp(
                40312,
                80,
                &tcp_header(false, true, false, false, true),
                b"hello",
            ),
            &[0; 6],
        );
        assert_eq!(
            flow_of(&tcp).tcp_numbers(&tcp),
            TcpNumbers {
                seq: 0x6b8b_4567,
                ack: 0x327b_23c6,
                payload_len: 5,
            },
            "the padding is not payload"
        );
        let udp = frame(ROUTER_MAC, PORT_MAC, &ip.udp(5353, 53, b"query", true), &[]);
        assert_eq!(flow_of(&udp).tcp_numbers(&udp), TcpNumbers::default());
    }
}
