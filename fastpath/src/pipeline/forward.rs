//! The virtual-service stage: find the packet's connection (or schedule a new one), count
//! it, run the TCP state machine and rewrite it for the real server's forwarding method.
//!
//! - Client → VIP: connection lookup by the packet's flow; on a miss, a TCP SYN (without RST)
//!   or any UDP datagram is scheduled ([`super::schedule`]); a SYN that hits a TIME_WAIT/CLOSE
//!   connection not controlled by a template reschedules (conn_reuse_mode 1).
//! - Real server → client (NAT, FULLNAT): found by the connection's out key; source rewritten
//!   back to the VIP (FULLNAT: both addresses and the sequence numbers, [`super::fullnat`]).
//!
//! Every forwarded packet has its TTL decremented (Linux ≥ 4.3 IPVS does the same); TTL ≤ 1
//! is refused here and answered by [`super::egress`].
//!
//! A packet with DF set that is too big for the port it would leave by is answered with
//! "fragmentation needed" ([`Out::FragNeeded`]) from here, before any rewrite, so that the
//! error quotes what its sender sent, as in Linux: IPVS checks the MTU towards the real
//! server (after the TTL, before NAT's rewrite: `__ip_vs_get_out_rt`), `ip_forward` checks
//! a reply's (after the TTL check, before the decrement and IPVS's SNAT). Only packets longer
//! than the smallest port MTU are looked at (one compare on the fast path). TUN's MTU is the
//! tunnel's, checked by the encapsulation. Larger packets without DF are fragmented by the
//! egress stage.
//!
//! The fast path (packets of established connections) does each thing once: the headers the
//! classifier validated are not checked again (`xmit::Headers`, the `_at` rewrites; NAT
//! decrements the TTL in the same pass as the address change).

use super::classify::Flow;
use super::egress::Out;
use super::{fullnat, owner, schedule, sync, Pipeline};
use crate::conn::{self, Dir, Fwd, Hit};
use crate::frame::Frame;
use crate::laddr;
use crate::service::Real;
use crate::snapshot::Snapshot;
use crate::verdict::DropReason;
use crate::wire::{ether, ipv4};
use crate::xmit::{self, nat, tun};
use sched::ConnClass;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Moves a connection off its real server's counters (`ip_vs_unbind_dest`).
pub(super) fn unbind(real: &Real, counter: conn::Counter) {
    real.load.unbind(match counter {
        conn::Counter::Active => ConnClass::Active,
        conn::Counter::Inactive => ConnClass::Inactive,
        conn::Counter::Persistent => ConnClass::Template,
    });
}

/// Removes a connection at once (reuse, `expire_nodest_conn`), as its expiry would.
pub(super) fn forget(p: &mut Pipeline, id: conn::ConnId) {
    if let Some(gone) = p.conns.remove(id) {
        unbind(&gone.dest, gone.counter);
        if let Some(local) = gone.local {
            p.slots.release_local(&gone.dest, local);
        }
    }
}

/// [`forget`] for an IPv6 connection.
pub(super) fn forget6(p: &mut Pipeline, id: conn::ConnId) {
    if let Some(gone) = p.conns6.remove(id) {
        unbind(&gone.dest, gone.counter);
    }
}

/// The worker of `workers` that owns the connection of `flow` (to an owned address when
/// `local`), and whether it goes to a FULLNAT local address: a FULLNAT reply's owner is named
/// by its local port ([`laddr::owner`]), any other's by the client's address and port
/// ([`owner`]), the source of a packet to a VIP, the destination of a reply.
#[inline(always)]
pub(super) fn flow_owner(
    snapshot: &Snapshot,
    flow: &Flow,
    local: bool,
    workers: usize,
) -> (usize, bool) {
    let to_laddr = local && snapshot.is_laddr(*flow.dst.ip());
    let owning = if to_laddr {
        laddr::owner(flow.dst.port(), workers)
    } else if local {
        // One call per side rather than one on the side chosen: choosing between the two
        // fields made the compiler keep the whole `Flow` in memory for every packet.
        owner(*flow.src.ip(), flow.src.port(), workers)
    } else {
        owner(*flow.dst.ip(), flow.dst.port(), workers)
    };
    (owning, to_laddr)
}

/// A TCP or UDP packet: to a VIP or local address when `local`, else possibly a NAT reply.
/// `hint`: what a lookup of its connection answered when the worker prefetched the burst.
#[inline]
pub(super) fn l4<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    flow: &Flow,
    local: bool,
    now_ms: u64,
    hint: Option<Hit>,
) -> Result<Out, DropReason> {
    let (owning, to_laddr) = flow_owner(snapshot, flow, local, p.workers);
    if owning != p.worker {
        return Ok(Out::Handover(owning));
    }
    if local && snapshot.sync.backup_only && !to_laddr {
        return Err(DropReason::BackupOnly);
    }
    let hit = p.conns.lookup_hinted(&flow.key(), hint);
    // A forged source (Linux's martian source) never creates state nor gets an answer. The
    // packets of a connection skip the check: its source was checked when it was made.
    if hit.is_none() && snapshot.is_martian_source(*flow.src.ip()) {
        return Err(DropReason::MartianSource);
    }
    if to_laddr {
        if let Some(Hit { id, dir: Dir::Out }) = hit {
            return outbound(p, snapshot, frame, id, flow, now_ms);
        }
    }
    if !local {
        return match hit {
            Some(Hit { id, dir: Dir::Out }) => outbound(p, snapshot, frame, id, flow, now_ms),
            _ if snapshot.is_unheld_vip(*flow.dst.ip()) => Err(DropReason::VipNotOwned),
            _ => Err(DropReason::NotOurs),
        };
    }
    let id = match hit {
        Some(Hit { id, dir: Dir::In }) if !(flow.opens() && p.conns.reusable(id)) => id,
        Some(Hit { id, dir: Dir::In }) => {
            forget(p, id);
            schedule::new_conn(p, snapshot, flow, frame.data(), now_ms)?
        }
        Some(Hit { dir: Dir::Out, .. }) => return Err(DropReason::NotOurs),
        None => schedule::new_conn(p, snapshot, flow, frame.data(), now_ms)?,
    };
    let out = inbound(p, snapshot, frame, id, flow, now_ms);
    if snapshot.sync.master {
        sync::after_inbound(p, id, snapshot.sync.rules);
    }
    out
}

/// Applies a packet's state transition to its real server's counters.
#[inline]
pub(super) fn account(real: &Real, moved: conn::Move) {
    match moved {
        conn::Move::Stay => {}
        conn::Move::ToActive => real.load.activate(),
        conn::Move::ToInactive => real.load.deactivate(),
    }
}

/// Counts a packet of a connection to `real` that moved it by `moved`: the real's
/// Active/InActConn and the traffic of the real and its service, `len` bytes in the
/// direction of `inbound`. Always inlined: the per-packet path of both families.
#[inline(always)]
pub(super) fn count_packet(real: &Real, moved: conn::Move, worker: usize, len: u16, inbound: bool) {
    account(real, moved);
    let len = u64::from(len);
    if inbound {
        real.traffic.inbound(worker, len);
        real.service_traffic.inbound(worker, len);
    } else {
        real.traffic.outbound(worker, len);
        real.service_traffic.outbound(worker, len);
    }
}

/// Counts a new connection to `real` (inactive until it is established).
#[inline]
pub(super) fn count_new(real: &Real, worker: usize) {
    real.load.bind(ConnClass::Inactive);
    real.traffic.conn(worker);
    real.service_traffic.conn(worker);
}

/// How a TUN connection's packets are encapsulated: its real's tunnel as configured now (an
/// edit applies to the connections already made, as in the kernel), with the connection's
/// flow hash for GUE's source port.
#[inline]
pub(super) fn encap_of(c: &conn::Conn<Arc<Real>>) -> tun::Encap {
    c.dest()
        .tunnel
        .encap(|| tun::flow_hash(c.proto(), c.client(), c.virt()))
}

/// Client → real server.
fn inbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
    now_ms: u64,
) -> Result<Out, DropReason> {
    let (transition, c) = p
        .conns
        .packet_entry(id, Dir::In, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    let real = c.dest();
    count_packet(real, transition.moved, p.worker, flow.ip_len, true);
    let (fwd, rip) = (c.fwd(), c.real());
    if snapshot.expire_nodest_conn && real.removed.load(std::sync::atomic::Ordering::Relaxed) {
        forget(p, id);
        return Err(DropReason::NoDest);
    }
    if flow.ip_len > snapshot.min_mtu() && fwd != Some(Fwd::Tun) {
        let on_link = fwd == Some(Fwd::Dr);
        if let Some(mtu) = frag_needed(snapshot, frame.data(), *rip.ip(), on_link) {
            // Linux decrements the TTL first: TTL ≤ 1 is time exceeded, and the error
            // quotes the packet with its TTL decremented.
            xmit::decrement_ttl_validated(frame.data_mut())?;
            return Ok(Out::FragNeeded { mtu });
        }
    }
    match fwd {
        Some(Fwd::Nat) => {
            // TTL − 1 and DNAT in one pass.
            nat::dnat_at(frame.data_mut(), &flow.at, rip)?;
            Ok(Out::Real(*rip.ip()))
        }
        Some(Fwd::Dr) => {
            xmit::decrement_ttl_validated(frame.data_mut())?;
            Ok(Out::Direct(*rip.ip()))
        }
        Some(Fwd::Tun) => {
            xmit::decrement_ttl_validated(frame.data_mut())?;
            Ok(Out::Tunnel(*rip.ip(), encap_of(c)))
        }
        Some(Fwd::FullNat) => {
            xmit::decrement_ttl_validated(frame.data_mut())?;
            fullnat::inbound(p, snapshot, frame, id, flow)
        }
        None => Err(DropReason::NoConn),
    }
}

/// Real server → client (NAT, FULLNAT).
fn outbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
    now_ms: u64,
) -> Result<Out, DropReason> {
    // A reply is routed: Linux's ip_forward drops it for its TTL before IPVS sees it, so an
    // expiring reply changes no state and counts nowhere: TTL − 1 (for NAT, with the rewrite)
    // comes first.
    let c = p.conns.get(id).ok_or(DropReason::NoConn)?;
    let is_fullnat = c.fwd() == Some(Fwd::FullNat);
    if flow.ip_len > snapshot.min_mtu() {
        if let Some(mtu) = frag_needed(snapshot, frame.data(), *c.client().ip(), false) {
            // ip_forward: the TTL is checked first, the packet left as received.
            return if reply_expires(frame.data()) {
                Err(DropReason::TtlExceeded)
            } else {
                Ok(Out::FragNeeded { mtu })
            };
        }
    }
    if is_fullnat {
        xmit::decrement_ttl_validated(frame.data_mut())?;
    } else {
        nat::snat_at(frame.data_mut(), &flow.at, c.virt())?;
    }
    let (transition, c) = p
        .conns
        .packet_entry(id, Dir::Out, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    let real = c.dest();
    count_packet(real, transition.moved, p.worker, flow.ip_len, false);
    let client = c.client();
    if is_fullnat {
        fullnat::outbound(p, snapshot, frame, id, flow)?;
    }
    Ok(Out::Route(*client.ip()))
}

/// The MTU to announce when the packet in `frame` (a TCP or UDP packet the classifier
/// validated, longer than the smallest port MTU) has DF set and is longer than the MTU of the
/// port towards `dst` (which must be on link when `on_link`: DR); `None` when it may go on
/// (the egress stage fragments it if it has to, or drops it for its route). Out of line: rare.
#[inline(never)]
fn frag_needed(snapshot: &Snapshot, frame: &[u8], dst: Ipv4Addr, on_link: bool) -> Option<u16> {
    let ip = ipv4::Packet::new_unchecked(frame.get(ether::HEADER_LEN..)?);
    if !ip.dont_frag() {
        return None;
    }
    let hop = snapshot.routes.lookup(dst)?;
    if on_link && hop.via.is_some() {
        return None;
    }
    let mtu = snapshot.ports.get(hop.port)?.mtu;
    (ip.total_len() > mtu).then_some(mtu)
}

/// Whether a reply in `frame` (validated) has a TTL that runs out here.
fn reply_expires(frame: &[u8]) -> bool {
    frame
        .get(ether::HEADER_LEN..)
        .is_some_and(|ip| ipv4::Packet::new_unchecked(ip).ttl() <= 1)
}
