//! [`super::classify`] for IPv6 frames: which lane an IPv6 frame takes (neighbour
//! discovery, echo, the IPv6 forwarding stage, ICMPv6 errors, the kernel twin) or why it is
//! dropped.
//!
//! The order of the tests matters:
//!
//! 1. the fixed header and the extension-header walk ([`ipv6::Packet::upper_layer`], bounded)
//!    or `bad_ipv6_header`;
//! 2. neighbour discovery before anything else, since its sources include the unspecified
//!    address (duplicate address detection) and its destinations link groups: solicitations
//!    and advertisements go to [`super::Pipeline`]'s responder ([`Class::Nd`]), router
//!    messages and redirects to the kernel twin (routes are configured; the kernel decides
//!    what its own `accept_ra` says) or nowhere;
//! 3. to an address the balancer owns: martian sources dropped, TCP and UDP to a VIP to the
//!    IPv6 forwarding stage ([`Class::L4v6`], `super::forward6`), echo requests answered
//!    ([`Class::Echo6`]), the rest the host's (the twin's, which holds the same addresses) or
//!    dropped;
//! 4. TCP and UDP to another unicast address: maybe the reply of a NAT66 connection
//!    (`super::forward6` looks; what is none goes where 5. says);
//! 5. anything else: to the twin when the port has one (the kernel may own other addresses
//!    on the link, its own link-local one for instance, as it got all IPv6 before rvs knew
//!    any), else dropped.
//!
//! Fragments of TCP and UDP over IPv6 are not followed yet: to a VIP they are dropped as
//! `fragment`.

use super::Class;
use crate::snapshot::{Owned, PortView, Snapshot};
use crate::verdict::{DropReason, PuntReason};
use crate::wire::icmpv6::Message;
use crate::wire::ipv6::{self, NextHeader};

/// Classifies the IPv6 packet `bytes` (everything after the Ethernet header) sent to port
/// `port`'s MAC or to a multicast MAC. Out of line: IPv6 is a lane apart from the IPv4 path
/// (see `docs/ARCHITECTURE.md`, "IPv6").
#[inline(never)]
pub(super) fn classify(snapshot: &Snapshot, port: &PortView, bytes: &[u8]) -> Class {
    let Ok(ip) = ipv6::Packet::new_checked(bytes) else {
        return Class::Drop(DropReason::BadIpv6Header);
    };
    let Ok(upper) = ip.upper_layer() else {
        return Class::Drop(DropReason::BadIpv6Header);
    };
    let first = upper.fragment.is_none_or(|f| f.is_first());
    let icmp_type = match upper.protocol {
        NextHeader::Icmpv6 if first => bytes.get(upper.offset).map(|&t| Message::from(t)),
        _ => None,
    };
    match icmp_type {
        Some(Message::NeighborSolicit | Message::NeighborAdvert) => return Class::Nd,
        Some(Message::RouterSolicit | Message::RouterAdvert | Message::Redirect) => {
            return kernel_or(port, PuntReason::Nd, DropReason::NdIgnored);
        }
        _ => {}
    }
    let dst = ip.dst_addr();
    let l4 = matches!(upper.protocol, NextHeader::Tcp | NextHeader::Udp);
    let Some(owned) = snapshot.owned6(dst) else {
        return match (dst.is_multicast(), icmp_type) {
            (true, _) if port.twin => Class::Punt(PuntReason::Multicast),
            (true, Some(_)) => Class::Drop(DropReason::NdIgnored),
            // A reply of a NAT66 connection, or what the twin takes.
            (false, _) if l4 && upper.fragment.is_none() => Class::L4v6 { local: false },
            // Maybe about one.
            (false, Some(m)) if m.is_error() && upper.fragment.is_none() => {
                Class::Icmp6Error { local: false }
            }
            _ if port.twin => Class::Punt(PuntReason::NonIpv4),
            _ => Class::Drop(DropReason::NotOurs),
        };
    };
    if snapshot.is_martian_source6(ip.src_addr()) {
        return Class::Drop(DropReason::MartianSource);
    }
    let host = port.twin && owned == Owned::Host;
    if owned == Owned::Service && l4 && upper.fragment.is_none() {
        return Class::L4v6 { local: true };
    }
    if icmp_type.is_some_and(|m| m.is_error()) && upper.fragment.is_none() {
        return Class::Icmp6Error { local: true };
    }
    match (upper.protocol, icmp_type) {
        (NextHeader::Icmpv6, Some(Message::EchoRequest)) if upper.fragment.is_none() => {
            Class::Echo6
        }
        (NextHeader::Tcp, _) if host => Class::Punt(PuntReason::LocalTcp),
        (NextHeader::Udp, _) if host => Class::Punt(PuntReason::LocalUdp),
        (NextHeader::Icmpv6, _) if host => Class::Punt(PuntReason::LocalIcmp),
        (_, _) if host => Class::Punt(PuntReason::OtherProto),
        // Fragments are not followed over IPv6 yet (the IPv4 path does: `super::fragment`).
        (_, _) if upper.fragment.is_some() => Class::Drop(DropReason::Fragment),
        (NextHeader::Tcp | NextHeader::Udp, _) => Class::Drop(DropReason::NoService),
        (NextHeader::Icmpv6, _) => Class::Drop(DropReason::IcmpIgnored),
        _ => Class::Drop(DropReason::UnsupportedProtocol),
    }
}

/// What the twin takes, if the port has one; else dropped for `reason`.
fn kernel_or(port: &PortView, punt: PuntReason, reason: DropReason) -> Class {
    if port.twin {
        Class::Punt(punt)
    } else {
        Class::Drop(reason)
    }
}
