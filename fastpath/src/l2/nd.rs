//! Neighbour discovery (RFC 4861), the IPv6 counterpart of [`arp`](super::arp): the validity
//! rules of received neighbour solicitations and advertisements, and the frames rvs sends.
//!
//! [`validate_ns`] and [`validate_na`] take a received IPv6 packet (from its fixed header on;
//! Ethernet padding after it is allowed) and check, in this order, with a typed [`Invalid`]
//! reason for each:
//!
//! - the IPv6 header and its extension-header walk ([`Invalid::Ipv6`]); the upper layer is
//!   ICMPv6 ([`Invalid::NotIcmpv6`]) and not in a fragment ([`Invalid::Fragmented`]: RFC 6980
//!   §5, a fragmented neighbour discovery message is dropped);
//! - the source is not multicast ([`Invalid::MulticastSource`], RFC 4291 §2.7, which Linux's
//!   `ip6_rcv_core` drops before neighbour discovery sees it);
//! - the ICMPv6 type ([`Invalid::WrongType`]), then the message: length, checksum, options of
//!   non-zero length within the message, link-layer address options of Ethernet length
//!   ([`Invalid::Icmpv6`]);
//! - RFC 4861 §7.1.1 / §7.1.2: hop limit 255 ([`Invalid::HopLimit`]: the message was not
//!   forwarded by a router), code 0 ([`Invalid::Code`]), target not multicast
//!   ([`Invalid::MulticastTarget`]);
//! - a solicitation from the unspecified address (a duplicate address detection probe, RFC 4862
//!   §5.4) goes to a solicited-node multicast address ([`Invalid::DadNotToSolicitedNode`]) and
//!   carries no source link-layer address option ([`Invalid::DadWithSourceLladdr`]);
//! - an advertisement to a multicast address has the Solicited flag clear
//!   ([`Invalid::SolicitedToMulticast`]).
//!
//! Not checked here: whether the target is an address of the balancer's (the caller's
//! `owns`, which must never answer a probe for an address it does not own), whether a
//! non-probe solicitation went to the target's solicited-node address or to the target itself
//! (RFC 4861 does not require it, Linux does not check), options other than link-layer
//! addresses (nonce, RFC 7527, is ignored).
//!
//! The builders return whole Ethernet frames, as [`arp::request`](super::arp::request) does:
//! [`solicited_advert`] answers a valid solicitation for an owned address, [`unsolicited_advert`]
//! announces an address (the IPv6 gratuitous ARP), [`solicit`] asks for a next hop's address.

use std::net::Ipv6Addr;

use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::icmpv6::{self, NdFlags};
use crate::wire::ipv6::{self, NextHeader};

/// Why a received neighbour solicitation or advertisement is not valid. The `as_str` names are
/// stable (for counters once the pipeline carries IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// The IPv6 header or its extension headers.
    Ipv6(ipv6::Error),
    /// The upper layer is not ICMPv6.
    NotIcmpv6,
    /// The message is in a fragment (RFC 6980).
    Fragmented,
    /// The source address is multicast.
    MulticastSource,
    /// The ICMPv6 message: length, checksum, options.
    Icmpv6(icmpv6::Error),
    /// Another ICMPv6 type than the one validated.
    WrongType,
    /// Hop limit other than 255.
    HopLimit,
    /// Code other than 0.
    Code,
    /// The target address is multicast.
    MulticastTarget,
    /// A probe (unspecified source) not sent to a solicited-node multicast address.
    DadNotToSolicitedNode,
    /// A probe (unspecified source) with a source link-layer address option.
    DadWithSourceLladdr,
    /// An advertisement to a multicast address with the Solicited flag set.
    SolicitedToMulticast,
}

impl Invalid {
    /// The stable name of the reason (the IPv6 and ICMPv6 ones prefixed).
    pub const fn as_str(self) -> &'static str {
        match self {
            Invalid::Ipv6(_) => "ipv6",
            Invalid::NotIcmpv6 => "not_icmpv6",
            Invalid::Fragmented => "fragmented",
            Invalid::MulticastSource => "multicast_source",
            Invalid::Icmpv6(_) => "icmpv6",
            Invalid::WrongType => "wrong_type",
            Invalid::HopLimit => "hop_limit",
            Invalid::Code => "code",
            Invalid::MulticastTarget => "multicast_target",
            Invalid::DadNotToSolicitedNode => "dad_not_to_solicited_node",
            Invalid::DadWithSourceLladdr => "dad_with_source_lladdr",
            Invalid::SolicitedToMulticast => "solicited_to_multicast",
        }
    }
}

impl From<ipv6::Error> for Invalid {
    fn from(error: ipv6::Error) -> Self {
        Invalid::Ipv6(error)
    }
}

impl From<icmpv6::Error> for Invalid {
    fn from(error: icmpv6::Error) -> Self {
        Invalid::Icmpv6(error)
    }
}

/// The hop limit of every neighbour discovery message (RFC 4861 §7.1): a receiver refuses any
/// other, so no router can have forwarded it.
pub const HOP_LIMIT: u8 = 255;

/// A valid neighbour solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// The IPv6 source: the soliciting node, or unspecified for a probe.
    pub src_addr: Ipv6Addr,
    /// The IPv6 destination: the target's solicited-node address, or the target.
    pub dst_addr: Ipv6Addr,
    /// The address asked about.
    pub target: Ipv6Addr,
    /// The soliciting node's link-layer address, if it sent one (never in a probe).
    pub source_lladdr: Option<EthernetAddress>,
}

impl Solicitation {
    /// Query whether this is a duplicate address detection probe (unspecified source).
    pub fn is_dad(&self) -> bool {
        self.src_addr.is_unspecified()
    }
}

/// A valid neighbour advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertisement {
    /// The IPv6 source.
    pub src_addr: Ipv6Addr,
    /// The IPv6 destination: the soliciting node, or all-nodes.
    pub dst_addr: Ipv6Addr,
    /// R, S, O.
    pub flags: NdFlags,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target's link-layer address, if it was sent.
    pub target_lladdr: Option<EthernetAddress>,
}

/// The checks common to solicitations and advertisements, up to the parsed message.
fn parse<'a>(
    packet: &'a [u8],
    expected: icmpv6::Message,
) -> Result<(ipv6::Packet<&'a [u8]>, icmpv6::Repr<'a>), Invalid> {
    let ip = ipv6::Packet::new_checked(packet)?;
    let upper = ip.upper_layer()?;
    if upper.protocol != NextHeader::Icmpv6 {
        return Err(Invalid::NotIcmpv6);
    }
    if upper.fragment.is_some() {
        return Err(Invalid::Fragmented);
    }
    if ip.src_addr().is_multicast() {
        return Err(Invalid::MulticastSource);
    }
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let message = packet
        .get(upper.offset..end)
        .ok_or(Invalid::Ipv6(ipv6::Error::Truncated))?;
    let icmp = icmpv6::Packet::new_checked(message)?;
    // The type is checked before the message is parsed so that a message of another type is
    // refused as such, whatever its content.
    if icmp.msg_type() != expected {
        return Err(Invalid::WrongType);
    }
    let repr = icmpv6::Repr::parse(&icmp, &ip.src_addr(), &ip.dst_addr())?;
    if ip.hop_limit() != HOP_LIMIT {
        return Err(Invalid::HopLimit);
    }
    if icmp.msg_code() != 0 {
        return Err(Invalid::Code);
    }
    Ok((ip, repr))
}

/// Validate a received neighbour solicitation (RFC 4861 §7.1.1; see the module documentation).
///
/// # Errors
/// The first rule it breaks, as an [`Invalid`].
pub fn validate_ns(packet: &[u8]) -> Result<Solicitation, Invalid> {
    let (ip, repr) = parse(packet, icmpv6::Message::NeighborSolicit)?;
    let icmpv6::Repr::NeighborSolicit {
        target,
        source_lladdr,
    } = repr
    else {
        return Err(Invalid::WrongType);
    };
    if target.is_multicast() {
        return Err(Invalid::MulticastTarget);
    }
    let solicitation = Solicitation {
        src_addr: ip.src_addr(),
        dst_addr: ip.dst_addr(),
        target,
        source_lladdr,
    };
    if solicitation.is_dad() {
        if !ipv6::is_solicited_node(&solicitation.dst_addr) {
            return Err(Invalid::DadNotToSolicitedNode);
        }
        if source_lladdr.is_some() {
            return Err(Invalid::DadWithSourceLladdr);
        }
    }
    Ok(solicitation)
}

/// Validate a received neighbour advertisement (RFC 4861 §7.1.2; see the module
/// documentation).
///
/// # Errors
/// The first rule it breaks, as an [`Invalid`].
pub fn validate_na(packet: &[u8]) -> Result<Advertisement, Invalid> {
    let (ip, repr) = parse(packet, icmpv6::Message::NeighborAdvert)?;
    let icmpv6::Repr::NeighborAdvert {
        flags,
        target,
        target_lladdr,
    } = repr
    else {
        return Err(Invalid::WrongType);
    };
    if target.is_multicast() {
        return Err(Invalid::MulticastTarget);
    }
    if ip.dst_addr().is_multicast() && flags.solicited {
        return Err(Invalid::SolicitedToMulticast);
    }
    Ok(Advertisement {
        src_addr: ip.src_addr(),
        dst_addr: ip.dst_addr(),
        flags,
        target,
        target_lladdr,
    })
}

/// Length of the frames the builders return: Ethernet, IPv6, a neighbour solicitation or
/// advertisement and one link-layer address option (86 bytes, above the Ethernet minimum).
pub const FRAME_LEN: usize =
    ether::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::ND_LEN + icmpv6::LLADDR_OPTION_LEN;

/// Write a neighbour discovery frame: Ethernet header, IPv6 header with hop limit 255, the
/// message with its checksum.
fn frame(
    eth_dst: EthernetAddress,
    eth_src: EthernetAddress,
    src_addr: Ipv6Addr,
    dst_addr: Ipv6Addr,
    message: &icmpv6::Repr<'_>,
) -> [u8; FRAME_LEN] {
    let mut frame = [0; FRAME_LEN];
    let mut eth = ether::Packet::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(eth_src);
    eth.set_ethertype(EtherType::Ipv6);
    let ip_repr = ipv6::Repr {
        src_addr,
        dst_addr,
        next_header: NextHeader::Icmpv6,
        payload_len: message.buffer_len(),
        hop_limit: HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut ip = ipv6::Packet::new_unchecked(eth.payload_mut());
    // Neither can fail: the frame is sized for the header and the largest message built here
    // (a solicitation or advertisement with one option, see FRAME_LEN).
    let _ = ip_repr.emit(&mut ip);
    let _ = message.emit(
        &mut icmpv6::Packet::new_unchecked(ip.payload_mut()),
        &src_addr,
        &dst_addr,
    );
    frame
}

/// Return the advertisement answering `ns`, a valid solicitation for an address the balancer
/// owns on the port with address `port_mac` (RFC 4861 §7.2.4). `ns_eth_src` is the
/// solicitation's Ethernet source, used when it carried no source link-layer address option.
/// `router` sets the R flag (a port that forwards, as Linux sets it when forwarding is on).
///
/// The source is the target address; the target link-layer address option is always included
/// (required for an answer to a multicast solicitation, and what Linux sends), the Override
/// flag set (the address is not anycast). A probe (unspecified source) is answered to all-nodes
/// with the Solicited flag clear, which defends the address; any other solicitation to its
/// source, unicast, with the Solicited flag set.
pub fn solicited_advert(
    port_mac: impl Into<EthernetAddress>,
    ns: &Solicitation,
    ns_eth_src: EthernetAddress,
    router: bool,
) -> [u8; FRAME_LEN] {
    let port_mac = port_mac.into();
    let (dst_addr, eth_dst, solicited) = if ns.is_dad() {
        (
            ipv6::ALL_NODES,
            ipv6::multicast_mac(&ipv6::ALL_NODES),
            false,
        )
    } else {
        (ns.src_addr, ns.source_lladdr.unwrap_or(ns_eth_src), true)
    };
    let message = icmpv6::Repr::NeighborAdvert {
        flags: NdFlags {
            router,
            solicited,
            override_: true,
        },
        target: ns.target,
        target_lladdr: Some(port_mac),
    };
    frame(eth_dst, port_mac, ns.target, dst_addr, &message)
}

/// Return the unsolicited advertisement of `addr` from the port with address `port_mac`, to
/// all-nodes, Solicited clear, Override set, with the target link-layer address option (RFC
/// 4861 §7.2.6): sent when an address is added, as a gratuitous ARP is for IPv4.
pub fn unsolicited_advert(
    port_mac: impl Into<EthernetAddress>,
    addr: Ipv6Addr,
    router: bool,
) -> [u8; FRAME_LEN] {
    let port_mac = port_mac.into();
    let message = icmpv6::Repr::NeighborAdvert {
        flags: NdFlags {
            router,
            solicited: false,
            override_: true,
        },
        target: addr,
        target_lladdr: Some(port_mac),
    };
    frame(
        ipv6::multicast_mac(&ipv6::ALL_NODES),
        port_mac,
        addr,
        ipv6::ALL_NODES,
        &message,
    )
}

/// Return the solicitation "who has `target`?" from `src_addr` (an address of the port with
/// address `port_mac`), to the target's solicited-node multicast address, with the source
/// link-layer address option (RFC 4861 §7.2.2).
pub fn solicit(
    port_mac: impl Into<EthernetAddress>,
    src_addr: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; FRAME_LEN] {
    let port_mac = port_mac.into();
    let group = ipv6::solicited_node(&target);
    let message = icmpv6::Repr::NeighborSolicit {
        target,
        source_lladdr: Some(port_mac),
    };
    frame(
        ipv6::multicast_mac(&group),
        port_mac,
        src_addr,
        group,
        &message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::golden_v6;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const C: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0b]);

    /// The IPv6 packet of a captured frame, as a mutable copy.
    fn ip(frame: &[u8]) -> Vec<u8> {
        frame[ether::HEADER_LEN..].to_vec()
    }

    /// Recompute the checksum of the ICMPv6 message right after the fixed header.
    fn refill(packet: &mut [u8]) {
        let ip = ipv6::Packet::new_unchecked(&*packet);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
        icmpv6::Packet::new_unchecked(&mut packet[ipv6::HEADER_LEN..end]).fill_checksum(&src, &dst);
    }

    #[test]
    fn captured_solicitation_and_linux_answer() {
        let ns = validate_ns(&ip(&golden_v6::NS)).unwrap();
        assert_eq!(
            ns,
            Solicitation {
                src_addr: A,
                dst_addr: "ff02::1:ff00:2".parse().unwrap(),
                target: B,
                source_lladdr: Some(MAC_A),
            }
        );
        assert!(!ns.is_dad());
        // rvs owning B answers exactly as Linux did.
        assert_eq!(
            solicited_advert(MAC_B, &ns, MAC_A, false),
            golden_v6::NA_SOLICITED
        );
        // Without a source link-layer option the answer goes to the frame's source.
        let bare = Solicitation {
            source_lladdr: None,
            ..ns
        };
        let other = EthernetAddress([2, 0, 0, 0, 0, 0x0c]);
        let answer = solicited_advert(MAC_B, &bare, other, true);
        assert_eq!(&answer[..6], &other.0);
        let na = validate_na(&answer[ether::HEADER_LEN..]).unwrap();
        assert_eq!(
            na.flags,
            NdFlags {
                router: true,
                solicited: true,
                override_: true
            }
        );
        let na = validate_na(&ip(&golden_v6::NA_SOLICITED)).unwrap();
        assert_eq!(
            na,
            Advertisement {
                src_addr: B,
                dst_addr: A,
                flags: NdFlags {
                    router: false,
                    solicited: true,
                    override_: true
                },
                target: B,
                target_lladdr: Some(MAC_B),
            }
        );
    }

    #[test]
    fn solicit_is_linux_byte_for_byte() {
        assert_eq!(solicit(MAC_A, A, B), golden_v6::NS);
        assert_eq!(FRAME_LEN, 86);
    }

    #[test]
    fn unsolicited_advert_is_linux_byte_for_byte() {
        assert_eq!(
            unsolicited_advert(MAC_A, C, false),
            golden_v6::NA_UNSOLICITED
        );
        let na = validate_na(&ip(&golden_v6::NA_UNSOLICITED)).unwrap();
        assert_eq!(na.dst_addr, ipv6::ALL_NODES);
        assert!(!na.flags.solicited);
        assert!(na.flags.override_);
        assert_eq!(na.target_lladdr, Some(MAC_A));
        // The R flag is the only difference on a forwarding port.
        let mut router = unsolicited_advert(MAC_A, C, true);
        assert_eq!(router[ether::HEADER_LEN + ipv6::HEADER_LEN + 4], 0xa0);
        router[ether::HEADER_LEN + ipv6::HEADER_LEN + 4] = 0x20;
        refill(&mut router[ether::HEADER_LEN..]);
        assert_eq!(router, golden_v6::NA_UNSOLICITED);
    }

    #[test]
    fn probe_for_an_owned_address_is_defended_to_all_nodes() {
        let probe = validate_ns(&ip(&golden_v6::DAD_NS)).unwrap();
        assert!(probe.is_dad());
        assert_eq!(probe.target, C);
        assert_eq!(probe.source_lladdr, None);
        // The defence is the unsolicited advertisement: all-nodes, S clear, O set.
        let defence =
            solicited_advert(MAC_A, &probe, EthernetAddress([2, 0, 0, 0, 0, 0x0c]), false);
        assert_eq!(defence, golden_v6::NA_UNSOLICITED);
    }

    #[test]
    fn invalid_messages() {
        let ns = ip(&golden_v6::NS);
        let na = ip(&golden_v6::NA_SOLICITED);
        let dad = ip(&golden_v6::DAD_NS);
        let with = |base: &[u8], edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = base.to_vec();
            edit(&mut bytes);
            refill(&mut bytes);
            bytes
        };
        let set_src =
            |addr: Ipv6Addr| move |b: &mut Vec<u8>| b[8..24].copy_from_slice(&addr.octets());
        let set_dst =
            |addr: Ipv6Addr| move |b: &mut Vec<u8>| b[24..40].copy_from_slice(&addr.octets());
        let all_nodes = ipv6::ALL_NODES;
        type Validate = fn(&[u8]) -> Result<(), Invalid>;
        let ns_ok: Validate = |b| validate_ns(b).map(|_| ());
        let na_ok: Validate = |b| validate_na(b).map(|_| ());
        // An atomic fragment header between the fixed header and the message.
        let fragmented = {
            let mut bytes = ns[..40].to_vec();
            bytes[5] += 8;
            bytes[6] = 44;
            bytes.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 1]);
            bytes.extend_from_slice(&ns[40..]);
            bytes
        };
        // A hop-by-hop header (PadN) is allowed.
        let hop_by_hop = {
            let mut bytes = ns[..40].to_vec();
            bytes[5] += 8;
            bytes[6] = 0;
            bytes.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
            bytes.extend_from_slice(&ns[40..]);
            bytes
        };
        let mut padded = ns.clone();
        padded.extend_from_slice(&[0; 8]);
        type Case<'a> = (&'a str, Validate, Vec<u8>, Result<(), Invalid>);
        let cases: Vec<Case> = vec![
            ("NS", ns_ok, ns.clone(), Ok(())),
            ("NS with padding", ns_ok, padded, Ok(())),
            ("NS behind hop-by-hop", ns_ok, hop_by_hop, Ok(())),
            ("NA", na_ok, na.clone(), Ok(())),
            ("DAD", ns_ok, dad.clone(), Ok(())),
            (
                "NS hop limit 254",
                ns_ok,
                with(&ns, &|b| b[7] = 254),
                Err(Invalid::HopLimit),
            ),
            (
                "NA hop limit 64",
                na_ok,
                with(&na, &|b| b[7] = 64),
                Err(Invalid::HopLimit),
            ),
            (
                "NS code 1",
                ns_ok,
                with(&ns, &|b| b[41] = 1),
                Err(Invalid::Code),
            ),
            (
                "NA code 255",
                na_ok,
                with(&na, &|b| b[41] = 255),
                Err(Invalid::Code),
            ),
            (
                "NS multicast target",
                ns_ok,
                with(&ns, &|b| b[48..64].copy_from_slice(&all_nodes.octets())),
                Err(Invalid::MulticastTarget),
            ),
            (
                "NA multicast target",
                na_ok,
                with(&na, &|b| b[48..64].copy_from_slice(&all_nodes.octets())),
                Err(Invalid::MulticastTarget),
            ),
            (
                "NS multicast source",
                ns_ok,
                with(&ns, &set_src(all_nodes)),
                Err(Invalid::MulticastSource),
            ),
            (
                "DAD to a unicast address",
                ns_ok,
                with(&dad, &set_dst(C)),
                Err(Invalid::DadNotToSolicitedNode),
            ),
            (
                "DAD to all-nodes",
                ns_ok,
                with(&dad, &set_dst(all_nodes)),
                Err(Invalid::DadNotToSolicitedNode),
            ),
            (
                "DAD with a source link-layer address",
                ns_ok,
                with(&ns, &set_src(Ipv6Addr::UNSPECIFIED)),
                Err(Invalid::DadWithSourceLladdr),
            ),
            (
                "solicited NA to all-nodes",
                na_ok,
                with(&na, &set_dst(all_nodes)),
                Err(Invalid::SolicitedToMulticast),
            ),
            (
                "unsolicited NA to all-nodes",
                na_ok,
                with(&na, &|b| {
                    b[24..40].copy_from_slice(&all_nodes.octets());
                    b[44] = 0x20;
                }),
                Ok(()),
            ),
            ("NA given as NS", ns_ok, na.clone(), Err(Invalid::WrongType)),
            ("NS given as NA", na_ok, ns.clone(), Err(Invalid::WrongType)),
            (
                "echo request",
                ns_ok,
                ip(&golden_v6::ECHO_REQUEST),
                Err(Invalid::WrongType),
            ),
            (
                "router solicitation",
                na_ok,
                ip(&golden_v6::ROUTER_SOLICIT),
                Err(Invalid::WrongType),
            ),
            (
                "UDP",
                ns_ok,
                ip(&golden_v6::UDP_HELLO),
                Err(Invalid::NotIcmpv6),
            ),
            ("fragmented NS", ns_ok, fragmented, Err(Invalid::Fragmented)),
            (
                "bad checksum",
                ns_ok,
                {
                    let mut b = ns.clone();
                    b[63] ^= 1;
                    b
                },
                Err(Invalid::Icmpv6(icmpv6::Error::BadChecksum)),
            ),
            (
                "option length 0",
                ns_ok,
                with(&ns, &|b| b[65] = 0),
                Err(Invalid::Icmpv6(icmpv6::Error::BadOption)),
            ),
            (
                "link-layer option of 16 bytes",
                na_ok,
                with(&na, &|b| {
                    b[5] += 8;
                    b[65] = 2;
                    b.extend_from_slice(&[0; 8]);
                }),
                Err(Invalid::Icmpv6(icmpv6::Error::BadLinkLayerOption)),
            ),
            (
                "NS of 23 bytes",
                ns_ok,
                with(&ns, &|b| {
                    b[5] = 23;
                    b.truncate(63);
                }),
                Err(Invalid::Icmpv6(icmpv6::Error::Truncated)),
            ),
            (
                "payload past the buffer",
                ns_ok,
                ns[..70].to_vec(),
                Err(Invalid::Ipv6(ipv6::Error::Truncated)),
            ),
            (
                "IPv4 version",
                ns_ok,
                with(&ns, &|b| b[0] = 0x40),
                Err(Invalid::Ipv6(ipv6::Error::BadVersion)),
            ),
            (
                "ESP",
                ns_ok,
                with(&ns, &|b| b[6] = 50),
                Err(Invalid::Ipv6(ipv6::Error::Esp)),
            ),
        ];
        for (name, validate, bytes, expected) in cases {
            assert_eq!(validate(&bytes), expected, "{name}");
        }
    }

    #[test]
    fn reason_names_are_unique() {
        let all = [
            Invalid::Ipv6(ipv6::Error::Truncated),
            Invalid::NotIcmpv6,
            Invalid::Fragmented,
            Invalid::MulticastSource,
            Invalid::Icmpv6(icmpv6::Error::Truncated),
            Invalid::WrongType,
            Invalid::HopLimit,
            Invalid::Code,
            Invalid::MulticastTarget,
            Invalid::DadNotToSolicitedNode,
            Invalid::DadWithSourceLladdr,
            Invalid::SolicitedToMulticast,
        ];
        let mut names: Vec<_> = all.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    proptest::proptest! {
        /// Arbitrary bytes after a valid-looking header never panic, and whatever validates
        /// keeps the rules.
        #[test]
        fn arbitrary_messages(
            head in proptest::prelude::any::<[u8; 24]>(),
            options in proptest::collection::vec((1u8..4, proptest::prelude::any::<[u8; 6]>()), 0..3),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            tail_len in proptest::sample::select(vec![0usize, 0, 1, 12]),
            hop_limit in proptest::sample::select(vec![255u8, 255, 64]),
            src_unspecified in proptest::prelude::any::<bool>(),
            fix_checksum in proptest::sample::select(vec![true, true, false]),
            msg_type in proptest::sample::select(vec![135u8, 136, 128, 1]),
            code in proptest::sample::select(vec![0u8, 0, 1]),
            cut in proptest::sample::select(vec![usize::MAX, usize::MAX, usize::MAX, usize::MAX, 3, 23]),
        ) {
            // Mostly neighbour discovery types with code 0 and well-formed link-layer
            // options, so that the rules after the checksum are reached; then arbitrary bytes.
            let mut body = head.to_vec();
            body[0] = msg_type;
            body[1] = code;
            for (kind, mac) in options {
                body.extend_from_slice(&[kind, 1]);
                body.extend_from_slice(&mac);
            }
            body.extend_from_slice(&tail[..tail_len.min(tail.len())]);
            body.truncate(cut);
            let mut packet = ip(&golden_v6::NS)[..ipv6::HEADER_LEN].to_vec();
            packet[5] = u8::try_from(body.len()).unwrap();
            packet[7] = hop_limit;
            if src_unspecified {
                packet[8..24].fill(0);
            }
            packet.extend_from_slice(&body);
            if fix_checksum && body.len() >= 4 {
                refill(&mut packet);
            }
            if let Ok(ns) = validate_ns(&packet) {
                proptest::prop_assert_eq!(hop_limit, 255);
                proptest::prop_assert!(!ns.target.is_multicast());
                if ns.is_dad() {
                    proptest::prop_assert!(ns.source_lladdr.is_none());
                }
            }
            if let Ok(na) = validate_na(&packet) {
                proptest::prop_assert_eq!(hop_limit, 255);
                proptest::prop_assert!(!na.target.is_multicast());
            }
        }
    }
}
