//! The last stage: where a rewritten frame leaves, and the answers rvs sends instead of a
//! packet it may not forward.
//!
//! Every earlier stage ends in an [`Out`] (or a drop reason): the frame is rewritten for
//! its destination and only the link is left to write. [`send`] turns it into the worker's
//! [`Verdict`]: the route, the next hop's MAC (from the worker's egress cache for real
//! servers, `l2::egress`), TUN's encapsulation, and the ICMP answers (time exceeded for a
//! TTL that ran out, fragmentation needed).
//!
//! **MTU.** Every frame that leaves is held against the egress port's MTU: a longer IPv4
//! packet is fragmented ([`Verdict::Fragment`]; the worker does it, `xmit::fragment`). A
//! packet with DF set that is too big never gets here as such: the forwarding stage answers
//! it with "fragmentation needed" ([`Out::FragNeeded`]) before rewriting it, as IPVS does
//! (`ensure_mtu_is_adequate` before the NAT rewrite, `ip_forward` before a reply's), and
//! TUN's encapsulation answers it for the tunnel's MTU. What is fragmented is so what Linux
//! fragments: packets without DF, and ICMP errors forwarded about a connection (IPVS lets
//! those through whatever their DF, and sets `ignore_df`). On the established fast path
//! this costs one compare of the frame's length with the MTU the egress cache holds.

use super::Pipeline;
use crate::frame::Frame;
use crate::l2::egress::{Egress, Stamp};
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, PuntReason, Verdict};
use crate::wire::ether::{self, EthernetAddress};
use crate::xmit::{self, icmp_answer, tun, Link};
use std::net::Ipv4Addr;

/// Where a frame goes once the earlier stages are done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// Back out of the receiving port, complete (an ARP or echo reply).
    Back,
    /// To real server `rip`, through the worker's egress cache (NAT, FULLNAT).
    Real(Ipv4Addr),
    /// DR: to real server `rip`, which must be on a connected link; only the MACs change.
    Direct(Ipv4Addr),
    /// TUN: to real server `rip`, encapsulated so.
    Tunnel(Ipv4Addr, tun::Encap),
    /// Routed to `dst` with a full route and neighbour lookup (replies to clients, ICMP
    /// errors).
    Route(Ipv4Addr),
    /// Another worker owns the flow: handed to it unchanged.
    Handover(usize),
    /// For the kernel, through the receiving port's twin, unchanged.
    Punt(PuntReason),
    /// Too big for the way out with DF set: the frame, the sender's packet as it was before
    /// any rewrite (its TTL decremented if rvs decrements it before the MTU check, as
    /// Linux), is answered with ICMP fragmentation needed announcing `mtu`, on the receiving
    /// port.
    FragNeeded { mtu: u16 },
}

/// The verdict for a frame the earlier stages left at `out`. A TTL that ran out
/// ([`DropReason::TtlExceeded`], the frame unchanged) is answered with ICMP time exceeded.
#[inline]
pub(crate) fn send<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    out: Result<Out, DropReason>,
) -> Verdict {
    let sent = match out {
        Ok(Out::Back) => Ok(back(snapshot, in_port, frame.len())),
        Ok(Out::Real(rip)) => to_real(p, snapshot, frame.data_mut(), rip, false),
        Ok(Out::Direct(rip)) => to_real(p, snapshot, frame.data_mut(), rip, true),
        Ok(Out::Tunnel(rip, encap)) => tunnel(p, snapshot, in_port, frame, rip, encap),
        Ok(Out::Route(dst)) => route(p, snapshot, frame.data_mut(), dst),
        Ok(Out::Handover(worker)) => Ok(Verdict::Redirect { worker }),
        Ok(Out::Punt(reason)) => Ok(Verdict::Punt(reason)),
        Ok(Out::FragNeeded { mtu }) => {
            let answer = icmp_answer::Answer::FragNeeded { next_hop_mtu: mtu };
            return answer_sender(p, snapshot, in_port, frame, answer);
        }
        Err(reason) => Err(reason),
    };
    match sent {
        Ok(verdict) => verdict,
        Err(DropReason::TtlExceeded) => {
            let answer = icmp_answer::Answer::TimeExceeded;
            answer_sender(p, snapshot, in_port, frame, answer)
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// A TCP or UDP packet rvs does not forward (left as the stage that refused it found it)
/// answered with the ICMP error `answer` on the receiving port, as Linux does: time exceeded
/// for a TTL that ran out, fragmentation needed for a packet with DF too big for the way
/// out. From the packet's destination when the balancer owns it (a VIP, a local address),
/// else from the balancer's address on the receiving link towards the sender (a NAT reply);
/// see [`xmit::icmp_answer`]. Counted in `icmp_errors_sent`, or dropped (`ttl_exceeded`,
/// `too_big`) when no answer may be sent.
#[inline(never)]
fn answer_sender<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    answer: icmp_answer::Answer,
) -> Verdict {
    let refused = Verdict::Drop(answer.refused());
    let Some(view) = snapshot.ports.get(in_port) else {
        return refused;
    };
    let Ok(ip) = xmit::ipv4_packet(frame.data()) else {
        return refused;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let from = if snapshot.owns(dst) {
        dst
    } else {
        match view.source_for(src) {
            Some(addr) => addr,
            None => return refused,
        }
    };
    let ident = p.next_icmp_ident();
    match icmp_answer::answer(frame, view.mac, view.mtu, from, answer, ident) {
        Ok(()) => {
            p.sent_icmp_error();
            Verdict::Tx { port: in_port }
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// An answer (ARP, echo reply) back out of the receiving port; an echo reply as long as a
/// request larger than the port's MTU is fragmented, as Linux's own would be.
fn back(snapshot: &Snapshot, in_port: usize, len: usize) -> Verdict {
    let mtu = snapshot
        .ports
        .get(in_port)
        .map_or(u16::MAX, |view| view.mtu);
    sent(in_port, None, len, mtu)
}

/// The Ethernet header towards `next_hop` on `port`: complete when the neighbour is known,
/// otherwise with a zero destination the worker fills in once ARP answers; and the port's
/// MTU.
fn link_to(
    p: &Pipeline,
    snapshot: &Snapshot,
    port: usize,
    next_hop: Ipv4Addr,
) -> Result<(Link, bool, u16), DropReason> {
    let view = snapshot.ports.get(port).ok_or(DropReason::NoRoute)?;
    let mac = p.neighbors.lookup(port, next_hop);
    let link = Link {
        port_mac: view.mac,
        next_hop_mac: mac.unwrap_or(EthernetAddress([0; 6])),
    };
    Ok((link, mac.is_some(), view.mtu))
}

/// Routes a rewritten packet to `dst` and writes its Ethernet header.
fn route(
    p: &Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    dst: Ipv4Addr,
) -> Result<Verdict, DropReason> {
    let hop = snapshot.routes.lookup(dst).ok_or(DropReason::NoRoute)?;
    let next_hop = hop.next_hop(dst);
    let (link, resolved, mtu) = link_to(p, snapshot, hop.port, next_hop)?;
    xmit::rewrite_ether(data, link)?;
    Ok(sent(
        hop.port,
        (!resolved).then_some(next_hop),
        data.len(),
        mtu,
    ))
}

/// A packet to real server `rip` (NAT, FULLNAT; DR when `direct`: the real server must then
/// be on a directly connected link), leaving where the worker's cache (`l2::egress`) says,
/// else where the route and neighbour lookups say ([`to_real_uncached`]). The cached case
/// is kept apart from the other so that it works on the cache's entry as it is.
#[inline]
fn to_real(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    rip: Ipv4Addr,
    direct: bool,
) -> Result<Verdict, DropReason> {
    let stamp = Stamp {
        snapshot: snapshot.id(),
        neighbors: p.neighbors.generation(),
    };
    match p.egress.get(rip, stamp) {
        Some(out) => leave(data, out, None, direct),
        None => to_real_uncached(p, snapshot, data, rip, stamp, direct),
    }
}

/// [`to_real`] when the cache has no answer under `stamp`: the route and neighbour lookups,
/// whose answer is cached once the neighbour is known (until then the frame waits for ARP
/// with a zero destination MAC).
#[inline(never)]
fn to_real_uncached(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    rip: Ipv4Addr,
    stamp: Stamp,
    direct: bool,
) -> Result<Verdict, DropReason> {
    let (found, waiting) = egress_of(p, snapshot, rip, stamp)?;
    leave(data, found, waiting, direct)
}

/// Where packets to real server `rip` leave, from the route and neighbour lookups, and the
/// next hop while its MAC is unknown; cached under `stamp` once the neighbour is known.
fn egress_of(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    rip: Ipv4Addr,
    stamp: Stamp,
) -> Result<(Egress, Option<Ipv4Addr>), DropReason> {
    let hop = snapshot.routes.lookup(rip).ok_or(DropReason::NoRoute)?;
    let next_hop = hop.next_hop(rip);
    let (link, resolved, mtu) = link_to(p, snapshot, hop.port, next_hop)?;
    let found = Egress {
        port: hop.port,
        on_link: hop.via.is_none(),
        mtu,
        link,
        src: snapshot
            .ports
            .get(hop.port)
            .and_then(|view| view.source_for(next_hop)),
    };
    if resolved {
        p.egress.put(rip, stamp, found);
    }
    Ok((found, (!resolved).then_some(next_hop)))
}

/// Writes the Ethernet header of `out` and says where the frame goes.
#[inline]
fn leave(
    data: &mut [u8],
    out: Egress,
    waiting: Option<Ipv4Addr>,
    direct: bool,
) -> Result<Verdict, DropReason> {
    if direct && !out.on_link {
        return Err(DropReason::NoRoute);
    }
    xmit::rewrite_ether(data, out.link)?;
    Ok(sent(out.port, waiting, data.len(), out.mtu))
}

/// TUN: IP-in-IP, GUE or GRE to the real server (fragmented if the inner packet had DF clear
/// and the outer one is too big), or "fragmentation needed" back to the client.
fn tunnel<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    rip: Ipv4Addr,
    encap: tun::Encap,
) -> Result<Verdict, DropReason> {
    // The way to the real server as NAT and DR find it: the worker's cache, else the route
    // and neighbour lookups.
    let stamp = Stamp {
        snapshot: snapshot.id(),
        neighbors: p.neighbors.generation(),
    };
    let (out, waiting) = match p.egress.get(rip, stamp) {
        Some(out) => (out, None),
        None => egress_of(p, snapshot, rip, stamp)?,
    };
    let tunnel = tun::Tunnel {
        link: out.link,
        src_addr: out.src.ok_or(DropReason::NoRoute)?,
        dst_addr: rip,
        mtu: out.mtu,
        encap,
    };
    p.ip_ident = p.ip_ident.wrapping_add(1);
    match tun::encapsulate(frame, &tunnel, p.ip_ident)? {
        tun::Outcome::Encapsulated => Ok(sent(out.port, waiting, frame.len(), out.mtu)),
        tun::Outcome::FragNeeded { next_hop_mtu } => {
            let in_view = snapshot.ports.get(in_port).ok_or(DropReason::NoRoute)?;
            let ident = p.next_icmp_ident();
            tun::frag_needed(frame, in_view.mac, in_view.mtu, next_hop_mtu, ident)?;
            p.sent_icmp_error();
            Ok(Verdict::Tx { port: in_port })
        }
    }
}

/// The verdict for a frame of `len` bytes ready for `port` (but for the next hop's MAC when
/// `waiting`), whose MTU is `mtu`: sent as it is, or fragmented when its IPv4 packet is
/// longer (the frame ends at the packet's end: the classifier trimmed any padding, and every
/// rewrite keeps it so).
#[inline]
fn sent(port: usize, waiting: Option<Ipv4Addr>, len: usize, mtu: u16) -> Verdict {
    let fits = len <= ether::HEADER_LEN + usize::from(mtu);
    match (waiting, fits) {
        (None, true) => Verdict::Tx { port },
        (Some(next_hop), true) => Verdict::Resolve { port, next_hop },
        (None, false) => Verdict::Fragment { port, mtu },
        (Some(next_hop), false) => Verdict::ResolveFragment {
            port,
            next_hop,
            mtu,
        },
    }
}
