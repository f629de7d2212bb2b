//! ICMPv6 errors (destination unreachable, packet too big, time exceeded, parameter problem)
//! about an IPv6 connection, as `ip_vs_in_icmp_v6` and `handle_response_icmp` treat them
//! ([`super::icmp_error`] for IPv4):
//!
//! - from the client side (the client, a router before it) to the VIP, about a reply rvs sent
//!   (`VIP:vport → CIP:cport`): NAT66 rewrites the outer destination and the quoted source to
//!   the real server (`RIP:rport`, `ip_vs_nat_icmp_v6` with `inout` 0); DR forwards it to the
//!   real server's MAC;
//! - from the real server side to the client, about a packet rvs forwarded
//!   (`CIP:cport → RIP:rport`): the outer source and the quoted destination become the VIP
//!   (`inout` 1).
//!
//! As the kernel, the ICMPv6 checksum is computed afresh over the rewritten message (the
//! quoted TCP or UDP checksum is left as it was: the quote is cut anyway), and only after the
//! received one was checked (rvs will not make a corrupted error valid). The hop limit is
//! decremented (the error is forwarded). Errors about no connection are dropped
//! (`icmp_ignored`), or given to the kernel twin when they are to the host's own address.

use super::egress6::Out6;
use super::forward6::owner6;
use super::Pipeline;
use crate::conn::{Dir, FlowKey, Fwd, Hit};
use crate::frame::Frame;
use crate::snapshot::{Owned, Snapshot};
use crate::verdict::{DropReason, PuntReason, Verdict};
use crate::wire::ether;
use crate::wire::icmpv6;
use crate::wire::ipv6::{self, NextHeader};
use std::net::SocketAddrV6;

/// The connection an error is about, and what it quotes.
struct Quoted {
    /// The quoted packet's protocol, source and destination.
    proto: conf::Proto,
    src: SocketAddrV6,
    dst: SocketAddrV6,
    /// Offsets in the frame: the ICMPv6 message, the quoted fixed header, the quoted ports.
    icmp: usize,
    quoted_ip: usize,
    quoted_ports: usize,
}

/// Reads the error in `frame` (an IPv6 frame the classifier validated).
fn quoted(frame: &[u8]) -> Result<Quoted, DropReason> {
    let ip6 = frame
        .get(ether::HEADER_LEN..)
        .ok_or(DropReason::Truncated)?;
    let ip = ipv6::Packet::new_checked(ip6).map_err(|_| DropReason::BadIpv6Header)?;
    let upper = ip.upper_layer().map_err(|_| DropReason::BadIpv6Header)?;
    if upper.protocol != NextHeader::Icmpv6 || upper.fragment.is_some() {
        return Err(DropReason::IcmpIgnored);
    }
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let message = ip6
        .get(upper.offset..end)
        .ok_or(DropReason::BadIpv6Header)?;
    let icmp = icmpv6::Packet::new_checked(message).map_err(|_| DropReason::IcmpIgnored)?;
    if !icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()) {
        return Err(DropReason::BadIcmpChecksum);
    }
    let embedded = icmp.embedded().map_err(|_| DropReason::IcmpIgnored)?;
    let walked = ipv6::walk(embedded.header.next_header(), embedded.data)
        .map_err(|_| DropReason::IcmpIgnored)?;
    let proto = match walked.protocol {
        NextHeader::Tcp => conf::Proto::Tcp,
        NextHeader::Udp => conf::Proto::Udp,
        _ => return Err(DropReason::IcmpIgnored),
    };
    let ports = embedded
        .data
        .get(walked.offset..)
        .and_then(|b| b.first_chunk::<4>())
        .ok_or(DropReason::IcmpIgnored)?;
    let icmp_at = ether::HEADER_LEN + upper.offset;
    let quoted_ip = icmp_at + icmpv6::HEADER_LEN;
    Ok(Quoted {
        proto,
        src: SocketAddrV6::new(
            embedded.header.src_addr(),
            u16::from_be_bytes([ports[0], ports[1]]),
            0,
            0,
        ),
        dst: SocketAddrV6::new(
            embedded.header.dst_addr(),
            u16::from_be_bytes([ports[2], ports[3]]),
            0,
            0,
        ),
        icmp: icmp_at,
        quoted_ip,
        quoted_ports: quoted_ip + ipv6::HEADER_LEN + walked.offset,
    })
}

/// Where an ICMPv6 error received on `in_port` goes (to an address the balancer owns when
/// `local`).
pub(super) fn forward<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    local: bool,
) -> Verdict {
    let q = match quoted(frame.data()) {
        Ok(q) => q,
        Err(reason) => return not_about_a_connection(snapshot, in_port, frame.data(), reason),
    };
    // The quoted packet is one the erring host received: its reverse is the flow as the
    // connection table indexes it.
    let key = FlowKey::new(q.proto, q.dst, q.src);
    let client = if local {
        (key.src, key.sport)
    } else {
        (key.dst, key.dport)
    };
    let owning = owner6(client.0, client.1, p.workers);
    if owning != p.worker {
        return Verdict::Redirect { worker: owning };
    }
    let out = match (p.conns6.lookup(&key), local) {
        (Some(Hit { id, dir: Dir::In }), true) => p.conns6.get(id).map(|c| {
            let (fwd, real, len) = (c.fwd(), c.real(), ip_len(frame.data()));
            c.dest().traffic.inbound(p.worker, len);
            c.dest().service_traffic.inbound(p.worker, len);
            match fwd {
                Some(Fwd::Nat) => rewrite(frame.data_mut(), &q, End::ToReal(real))
                    .map(|()| Out6::Route(*real.ip())),
                Some(Fwd::Dr) => {
                    rewrite(frame.data_mut(), &q, End::Unchanged).map(|()| Out6::Direct(*real.ip()))
                }
                _ => Err(DropReason::NoConn),
            }
        }),
        (Some(Hit { id, dir: Dir::Out }), false) => p.conns6.get(id).map(|c| {
            let (virt, client, len) = (c.virt(), c.client(), ip_len(frame.data()));
            c.dest().traffic.outbound(p.worker, len);
            c.dest().service_traffic.outbound(p.worker, len);
            rewrite(frame.data_mut(), &q, End::ToClient(virt)).map(|()| Out6::Route(*client.ip()))
        }),
        _ => None,
    };
    match out {
        Some(out) => super::egress6::send(p, snapshot, in_port, frame, out),
        None => not_about_a_connection(snapshot, in_port, frame.data(), DropReason::IcmpIgnored),
    }
}

/// An error that is about no connection: the host's, on a port with a twin, else dropped.
fn not_about_a_connection(
    snapshot: &Snapshot,
    in_port: usize,
    frame: &[u8],
    reason: DropReason,
) -> Verdict {
    let dst = frame
        .get(ether::HEADER_LEN..)
        .map(|ip| ipv6::Packet::new_unchecked(ip).dst_addr());
    let twin = snapshot.ports.get(in_port).is_some_and(|v| v.twin);
    match dst.map(|dst| snapshot.owned6(dst)) {
        _ if reason == DropReason::BadIcmpChecksum => Verdict::Drop(reason),
        Some(Some(Owned::Host)) if twin => Verdict::Punt(PuntReason::LocalIcmp),
        Some(None) if twin => Verdict::Punt(PuntReason::NonIpv4),
        Some(None) => Verdict::Drop(DropReason::NotOurs),
        _ => Verdict::Drop(reason),
    }
}

/// The IPv6 packet length of a validated frame (for the counters).
fn ip_len(frame: &[u8]) -> u64 {
    frame.get(ether::HEADER_LEN..).map_or(0, |ip| {
        ipv6::HEADER_LEN as u64 + u64::from(ipv6::Packet::new_unchecked(ip).payload_len())
    })
}

/// Which end of the error a rewrite changes.
enum End {
    /// Client side → real server (NAT66): outer destination, quoted source and port.
    ToReal(SocketAddrV6),
    /// Real server side → client: outer source, quoted destination and port become the VIP.
    ToClient(SocketAddrV6),
    /// DR: only the hop limit.
    Unchanged,
}

/// Hop limit − 1, the addresses and port of `end`, and the ICMPv6 checksum computed afresh.
/// Nothing changes on error (the hop limit is checked first).
fn rewrite(frame: &mut [u8], q: &Quoted, end: End) -> Result<(), DropReason> {
    let ip_at = ether::HEADER_LEN;
    let hop = frame.get(ip_at + 7).copied().ok_or(DropReason::Truncated)?;
    if hop <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let (outer_at, quoted_at, port_at, to) = match end {
        End::ToReal(real) => (ip_at + 24, q.quoted_ip + 8, q.quoted_ports, real),
        End::ToClient(virt) => (ip_at + 8, q.quoted_ip + 24, q.quoted_ports + 2, virt),
        End::Unchanged => {
            if let Some(h) = frame.get_mut(ip_at + 7) {
                *h = hop - 1;
            }
            return Ok(());
        }
    };
    let fits = [outer_at + 16, quoted_at + 16, port_at + 2]
        .iter()
        .all(|&e| e <= frame.len());
    if !fits {
        return Err(DropReason::Truncated);
    }
    let addr = to.ip().octets();
    for at in [outer_at, quoted_at] {
        if let Some(field) = frame.get_mut(at..at + 16) {
            field.copy_from_slice(&addr);
        }
    }
    if let Some(port) = frame.get_mut(port_at..port_at + 2) {
        port.copy_from_slice(&to.port().to_be_bytes());
    }
    if let Some(h) = frame.get_mut(ip_at + 7) {
        *h = hop - 1;
    }
    let (src, dst, end_at) = {
        let ip = ipv6::Packet::new_unchecked(frame.get(ip_at..).unwrap_or_default());
        let end_at = ip_at + ipv6::HEADER_LEN + usize::from(ip.payload_len());
        (ip.src_addr(), ip.dst_addr(), end_at)
    };
    if let Some(message) = frame.get_mut(q.icmp..end_at) {
        icmpv6::Packet::new_unchecked(message).fill_checksum(&src, &dst);
    }
    Ok(())
}
