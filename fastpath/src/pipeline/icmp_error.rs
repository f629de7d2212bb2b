//! ICMP errors (destination unreachable, source quench, time exceeded) that may be about one
//! of our connections: from the client side (or a router before it) towards the VIP, or from
//! the real server side towards the client. Rewritten (NAT, FULLNAT) or forwarded as the
//! connection's packets are (DR, TUN), as `ip_vs_in_icmp`/`ip_vs_out_icmp` do. Out of line:
//! rare, and large.

use super::egress::Out;
use super::{owner, Pipeline};
use crate::conn::{Dir, FlowKey, Fwd, Hit};
use crate::frame::Frame;
use crate::laddr;
use crate::snapshot::{Owned, Snapshot};
use crate::verdict::{DropReason, PuntReason};
use crate::wire::ether;
use crate::wire::icmp;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::tcp;
use crate::xmit::{self, fullnat, nat};

/// Where an ICMP error about a connection goes, rewritten. One to the host's own address that
/// is about no connection (a kernel socket's: an unreachable for the host's ping or TCP)
/// goes to the kernel when the port has a twin.
#[inline(never)]
pub(super) fn forward<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
) -> Result<Out, DropReason> {
    match about_connection(p, snapshot, frame) {
        Err(_) if for_host(snapshot, in_port, frame.data()) => Ok(Out::Punt(PuntReason::LocalIcmp)),
        out => out,
    }
}

/// Whether a frame the classifier validated is to one of the host's addresses on a port with a
/// twin.
fn for_host(snapshot: &Snapshot, in_port: usize, frame: &[u8]) -> bool {
    snapshot.ports.get(in_port).is_some_and(|p| p.twin)
        && snapshot.owned(ipv4_view(frame).dst_addr()) == Some(Owned::Host)
}

/// [`forward`] for the connection the error is about.
fn about_connection<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
) -> Result<Out, DropReason> {
    let embedded = nat::icmp_flow(frame.data())?;
    let proto = embedded.protocol.l4().ok_or(DropReason::IcmpIgnored)?;
    // The embedded packet is one the erring host received: its reverse is the flow as the
    // connection table indexes it.
    let key = FlowKey::new(proto, embedded.dst, embedded.src);
    let (dst, ip_len) = {
        let ip = ipv4_view(frame.data());
        (ip.dst_addr(), u64::from(ip.total_len()))
    };
    let local = snapshot.owns(dst);
    // About a packet rvs sent from a FULLNAT local address: owned by its port.
    let to_laddr = local && snapshot.is_laddr(key.dst);
    let owning = if to_laddr {
        laddr::owner(key.dport, p.workers)
    } else if local {
        owner(key.src, key.sport, p.workers)
    } else {
        owner(key.dst, key.dport, p.workers)
    };
    if owning != p.worker {
        return Ok(Out::Handover(owning));
    }
    match (p.conns.lookup(&key), local) {
        (Some(Hit { id, dir: Dir::In }), true) => {
            // ip_vs_in_icmp verifies the checksum before it counts the packet, whatever the
            // forwarding method: DR and TUN must not pass on a corrupted error either.
            icmp_checksum(frame.data())?;
            let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
            let (fwd, rip) = (c.fwd(), c.real());
            c.dest().traffic.inbound(p.worker, ip_len);
            c.dest().service_traffic.inbound(p.worker, ip_len);
            let seq = p.conns.seq(id).copied().unwrap_or_default();
            let (local_addr, ack_delta) = (c.local(), seq.out_delta());
            xmit::decrement_ttl(frame.data_mut())?;
            match (fwd, local_addr) {
                (Some(Fwd::Nat), _) => nat::icmp_dnat(frame.data_mut(), rip)?,
                (Some(Fwd::FullNat), Some(l)) => {
                    fullnat::icmp_in(frame.data_mut(), l, rip, ack_delta)?
                }
                (Some(Fwd::Dr), _) => return Ok(Out::Direct(*rip.ip())),
                (Some(Fwd::Tun), _) => {
                    return Ok(Out::Tunnel(*rip.ip(), super::forward::encap_of(c)))
                }
                // FULLNAT without a local address, or no method: not ours to forward.
                _ => return Err(DropReason::NoConn),
            }
            Ok(Out::Route(*rip.ip()))
        }
        (Some(Hit { id, dir: Dir::Out }), true) if to_laddr => {
            xmit::decrement_ttl(frame.data_mut())?;
            icmp_checksum(frame.data())?;
            let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
            let (virt, client) = (c.virt(), c.client());
            // The quoted segment got the delta of its own sequence number (the first data
            // segment carries the PROXY header and was not shifted by it).
            let seq = p.conns.seq(id).copied().unwrap_or_default();
            let seq_delta = seq.embedded_delta(quoted_seq(frame.data()));
            c.dest().traffic.outbound(p.worker, ip_len);
            c.dest().service_traffic.outbound(p.worker, ip_len);
            fullnat::icmp_out(frame.data_mut(), virt, client, seq_delta)?;
            Ok(Out::Route(*client.ip()))
        }
        (Some(Hit { id, dir: Dir::Out }), false) => {
            // Routed like a reply (TTL first, see `forward::outbound`), then checked and
            // counted as handle_response_icmp does.
            xmit::decrement_ttl(frame.data_mut())?;
            icmp_checksum(frame.data())?;
            let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
            let (virt, client) = (c.virt(), c.client());
            c.dest().traffic.outbound(p.worker, ip_len);
            c.dest().service_traffic.outbound(p.worker, ip_len);
            nat::icmp_snat(frame.data_mut(), virt)?;
            Ok(Out::Route(*client.ip()))
        }
        (_, true) => Err(DropReason::IcmpIgnored),
        (_, false) if snapshot.is_unheld_vip(dst) => Err(DropReason::VipNotOwned),
        (_, false) => Err(DropReason::NotOurs),
    }
}

/// The IPv4 header of a frame the classifier validated.
fn ipv4_view(frame: &[u8]) -> ipv4::Packet<&[u8]> {
    ipv4::Packet::new_unchecked(frame.get(ether::HEADER_LEN..).unwrap_or_default())
}

/// The TCP sequence number quoted by the ICMP error in a frame `nat::icmp_flow` accepted (at
/// least 8 bytes after the embedded header); 0 if it quotes no TCP segment.
fn quoted_seq(frame: &[u8]) -> u32 {
    icmp::Packet::new_unchecked(ipv4_view(frame).payload())
        .embedded()
        .ok()
        .filter(|e| e.header.protocol() == Protocol::Tcp)
        .map_or(0, |e| tcp::Packet::new_unchecked(e.data).seq_number())
}

/// Whether the ICMP message of a validated IPv4 frame has a correct checksum.
fn icmp_checksum(frame: &[u8]) -> Result<(), DropReason> {
    if icmp::Packet::new_unchecked(ipv4_view(frame).payload()).verify_checksum() {
        Ok(())
    } else {
        Err(DropReason::BadIcmpChecksum)
    }
}
