//! FULLNAT's part of the forwarding stage: local addresses and ports, both-address rewrites
//! with TCP sequence translation, and the client's address handed on in a TOA option or a
//! PROXY protocol header. Out of line from the NAT/DR/TUN path so that it stays small.

use super::classify::Flow;
use super::egress::Out;
use super::Pipeline;
use crate::conn::{self, FlowKey};
use crate::frame::Frame;
use crate::service::Service;
use crate::snapshot::Snapshot;
use crate::verdict::DropReason;
use crate::wire::tcp;
use crate::xmit::{fullnat, proxy, toa};
use std::net::SocketAddrV4;
use std::sync::Arc;

/// A FULLNAT local address and port of service `index` that no connection uses towards
/// `rip` (the reply key RIP:rport → LIP:lport is free), from this worker's share.
pub(super) fn allocate_local(
    p: &mut Pipeline,
    index: usize,
    proto: conf::Proto,
    rip: SocketAddrV4,
) -> Result<SocketAddrV4, DropReason> {
    let conns = &p.conns;
    let pool = p.slots.pool(index).ok_or(DropReason::LaddrExhausted)?;
    let local = pool.alloc(|lip, lport| {
        let reply = FlowKey::new(proto, rip, SocketAddrV4::new(lip, lport));
        conns.lookup(&reply).is_some()
    });
    // A log line for the 1st, 2nd, 4th, 8th, … refusal of the pool: it says when it starts
    // and that it goes on, without a line per packet.
    let exhausted = pool.exhausted();
    if local.is_err() && exhausted.is_power_of_two() {
        let vip = p.slots.vip(index);
        log::warn!(
            "worker {}: {} service {}: no free local address and port towards {rip}; new connection refused ({} so far)",
            p.worker,
            proto.as_str(),
            vip.map_or_else(String::new, |v| v.to_string()),
            exhausted
        );
    }
    local
}

/// FULLNAT client → real server, TTL already decremented: both addresses and the sequence
/// number rewritten, then the client's address handed on in a TOA option or a PROXY protocol
/// header if the service asks.
#[inline(never)]
pub(super) fn inbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
) -> Result<Out, DropReason> {
    let (c, &seq) = p.conns.fullnat(id).ok_or(DropReason::NoConn)?;
    let (client, virt, rip) = (c.client(), c.virt(), c.real());
    let local = c.local().ok_or(DropReason::NoConn)?;
    let (toa, proxy) = snapshot
        .service(c.dest().service.0, c.dest().service.1)
        .map_or((None, None), |s| (s.toa, s.proxy_protocol));
    let tcp = flow.proto == conf::Proto::Tcp;
    let payload_len = usize::from(flow.payload_len);
    let proxy_due = tcp && proxy.is_some() && proxy::due(&seq, flow.flags, flow.seq, payload_len);
    let toa_due = tcp && toa.is_some_and(|t| toa::due(placement(t), &seq, flow.flags, flow.ack));
    let seq_delta = if tcp {
        seq.in_delta(flow.seq, payload_len)
    } else {
        0
    };
    // The MTU of the way to the real server limits what TOA and PROXY may add. Looked up
    // only for them: without a route the packet is dropped for it anyway, by the egress
    // stage, whose cache holds no answer for a snapshot without the route.
    let mtu = if proxy_due || toa_due {
        let hop = snapshot
            .routes
            .lookup(*rip.ip())
            .ok_or(DropReason::NoRoute)?;
        snapshot.ports.get(hop.port).map_or(1500, |port| port.mtu)
    } else {
        0
    };
    fullnat::rewrite_in_at(
        frame.data_mut(),
        &flow.at,
        &fullnat::InRewrite {
            local,
            real: rip,
            seq_delta,
        },
    )?;
    if let (true, Some(version)) = (proxy_due, proxy) {
        let header = proxy::Header::new(proxy_version(version), client, virt);
        let inserted = proxy::insert(frame, &header, mtu)?;
        if let Some(seq) = p.conns.seq_mut(id) {
            seq.set_inserted(inserted);
        }
        p.events.proxy_inserted += 1;
    } else if toa_due {
        match toa::insert(frame, client, mtu)? {
            toa::Outcome::Inserted | toa::Outcome::Pruned => p.events.toa_inserted += 1,
            toa::Outcome::NoRoom => p.events.toa_no_room += 1,
        }
    }
    Ok(Out::Real(*rip.ip()))
}

/// FULLNAT real server → client, TTL already decremented and the packet counted: both
/// addresses and the acknowledgment number rewritten back, the MSS of a SYN+ACK lowered by
/// what rvs may insert.
pub(super) fn outbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
) -> Result<(), DropReason> {
    let c = p.conns.get(id).ok_or(DropReason::NoConn)?;
    let (virt, client, service) = (c.virt(), c.client(), c.dest().service);
    let syn_ack = flow.flags.contains(tcp::Flags::SYN) && flow.flags.contains(tcp::Flags::ACK);
    // Only a SYN+ACK's MSS is lowered: the service is not looked up for other segments.
    let mss_reduction = if syn_ack {
        mss_reduction(snapshot.service(service.0, service.1).map(Arc::as_ref))
    } else {
        0
    };
    if syn_ack && flow.proto == conf::Proto::Tcp {
        if let Some(seq) = p.conns.seq_mut(id) {
            seq.server_syn_ack(flow.seq);
        }
    }
    let seq = p.conns.seq(id).copied().unwrap_or_default();
    let rewrite = fullnat::OutRewrite {
        virt,
        client,
        ack_delta: seq.out_delta(),
        header: seq.header(),
        mss_reduction,
    };
    fullnat::rewrite_out_at(frame.data_mut(), &flow.at, &rewrite)
}

fn placement(t: conf::ToaPlacement) -> toa::Placement {
    match t {
        conf::ToaPlacement::Ack => toa::Placement::Dpvs,
        conf::ToaPlacement::Syn => toa::Placement::Alibaba,
    }
}

fn proxy_version(v: conf::ProxyProtocol) -> proxy::Version {
    match v {
        conf::ProxyProtocol::V1 => proxy::Version::V1,
        conf::ProxyProtocol::V2 => proxy::Version::V2,
    }
}

/// How much a FULLNAT service lowers the MSS the real server announces, so that what it
/// inserts in the client's segments always fits.
fn mss_reduction(service: Option<&Service>) -> u16 {
    match service.map(|s| (s.toa, s.proxy_protocol)) {
        Some((_, Some(conf::ProxyProtocol::V1))) => proxy::V1_MAX_LEN as u16,
        Some((_, Some(conf::ProxyProtocol::V2))) => proxy::V2_LEN as u16,
        Some((Some(_), None)) => fullnat::TOA_MSS_REDUCTION,
        _ => 0,
    }
}
