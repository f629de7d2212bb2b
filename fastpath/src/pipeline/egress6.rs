//! The egress stage for IPv6 ([`super::egress`] for IPv4): the route, the next hop's MAC, the
//! egress MTU.
//!
//! Kept apart from the IPv4 stage so that the IPv4 path's values stay two words: an IPv6
//! address would double them. For the same reason a packet whose next hop is not resolved
//! yet leaves as [`Verdict::Resolve6`], which names only the port: the next hop is
//! [`super::Pipeline::resolving6`] until the pipeline's next packet (the worker acts on each
//! verdict before it processes the next packet).
//!
//! IPv6 routers never fragment: a packet longer than the egress link's MTU is answered with
//! ICMPv6 packet too big, a packet whose hop limit ran out with time exceeded
//! ([`xmit::icmp6_answer`]), back out of the receiving port.

use super::Pipeline;
use crate::frame::Frame;
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, Verdict};
use crate::wire::ether::{self, EthernetAddress};
use crate::xmit::icmp6_answer::{self, Answer6};
use crate::xmit::{self, Link};
use std::net::Ipv6Addr;

/// Where an IPv6 packet goes after the forwarding stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out6 {
    /// Routed to `dst` (a NAT real server, a client).
    Route(Ipv6Addr),
    /// DR: to real server `rip`, which must be on a connected link; only the MACs change.
    Direct(Ipv6Addr),
}

/// The verdict for an IPv6 frame received on `in_port` that the forwarding stage left at
/// `out`. A hop limit that ran out ([`DropReason::TtlExceeded`], the frame unchanged) is
/// answered with time exceeded.
pub(crate) fn send<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    out: Result<Out6, DropReason>,
) -> Verdict {
    let (dst, direct) = match out {
        Ok(Out6::Route(dst)) => (dst, false),
        Ok(Out6::Direct(rip)) => (rip, true),
        Err(DropReason::TtlExceeded) => {
            return answer_sender(p, snapshot, in_port, frame, Answer6::TimeExceeded);
        }
        Err(reason) => return Verdict::Drop(reason),
    };
    match leave(p, snapshot, frame.data_mut(), dst, direct) {
        Ok(verdict) => verdict,
        Err(reason) => Verdict::Drop(reason),
    }
}

/// The MTU of the link a packet to `dst` leaves on if a frame of `len` bytes does not fit
/// it. The forwarding stage asks before it rewrites a packet, so that packet too big quotes
/// the packet as the sender sent it (as Linux checks before IPVS mangles it).
pub(crate) fn too_big(snapshot: &Snapshot, dst: Ipv6Addr, len: usize) -> Option<u16> {
    let hop = snapshot.routes6.lookup(dst)?;
    let mtu = snapshot.ports.get(hop.port)?.mtu;
    (len > ether::HEADER_LEN + usize::from(mtu)).then_some(mtu)
}

/// The packet in `frame` (as received on `in_port`) answered with packet too big announcing
/// `mtu`.
pub(crate) fn packet_too_big<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    mtu: u16,
) -> Verdict {
    let answer = Answer6::PacketTooBig {
        mtu: u32::from(mtu),
    };
    answer_sender(p, snapshot, in_port, frame, answer)
}

/// The packet in `frame` (as received) answered with `answer` on the receiving port, from
/// its destination when the balancer owns it, else from the balancer's address on the
/// receiving link towards the sender. Counted in `icmp_errors_sent`, or dropped under the
/// answer's reason when no answer may be sent.
#[inline(never)]
fn answer_sender<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    answer: Answer6,
) -> Verdict {
    let refused = Verdict::Drop(answer.refused());
    let Some(view) = snapshot.ports.get(in_port) else {
        return refused;
    };
    let Some(ip) = frame
        .data()
        .get(ether::HEADER_LEN..)
        .and_then(|b| crate::wire::ipv6::Packet::new_checked(b).ok())
    else {
        return refused;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let from = if snapshot.owned6(dst).is_some() {
        dst
    } else {
        match view.source6_for(src) {
            Some(addr) => addr,
            None => return refused,
        }
    };
    match icmp6_answer::answer(frame, view.mac, from, answer) {
        Ok(()) => {
            p.sent_icmp_error();
            Verdict::Tx { port: in_port }
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// Writes the Ethernet header towards `dst` (DR: `dst` must be on a connected link) and says
/// where the frame goes.
fn leave(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    dst: Ipv6Addr,
    direct: bool,
) -> Result<Verdict, DropReason> {
    let hop = snapshot.routes6.lookup(dst).ok_or(DropReason::NoRoute)?;
    if direct && hop.via.is_some() {
        return Err(DropReason::NoRoute);
    }
    let view = snapshot.ports.get(hop.port).ok_or(DropReason::NoRoute)?;
    // The forwarding stage answered a packet too big before it rewrote it (`too_big`).
    if data.len() > ether::HEADER_LEN + usize::from(view.mtu) {
        return Err(DropReason::TooBig);
    }
    let next_hop = hop.next_hop(dst);
    let mac = p.neighbors6.lookup(hop.port, next_hop);
    let link = Link {
        port_mac: view.mac,
        next_hop_mac: mac.unwrap_or(EthernetAddress([0; 6])),
    };
    xmit::rewrite_ether(data, link)?;
    Ok(match mac {
        Some(_) => Verdict::Tx { port: hop.port },
        None => {
            p.resolving6 = next_hop;
            Verdict::Resolve6 { port: hop.port }
        }
    })
}
