//! New connections: the service a packet that matched no connection is for, the scheduler's
//! (or the persistence template's) real server, a FULLNAT local address, and the new entry
//! in the worker's table (`ip_vs_core.c` rules, spec §0.4, §3).

use super::classify::Flow;
use super::{fullnat, Pipeline};
use crate::conn::{self, FlowKey, Fwd, NewConn, NewTemplate};
use crate::service::{Real, Service};
use crate::snapshot::Snapshot;
use crate::verdict::DropReason;
use crate::wire::tcp;
use crate::xmit;
use sched::ConnClass;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Creates the connection for a packet that matched none; `frame` is the packet's (FULLNAT
/// reads its sequence number).
pub(super) fn new_conn(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    flow: &Flow,
    frame: &[u8],
    now_ms: u64,
) -> Result<conn::ConnId, DropReason> {
    let (index, service) = snapshot
        .service_in_slot(flow.proto, flow.dst)
        .or_else(|| snapshot.service_in_slot(flow.proto, SocketAddrV4::new(*flow.dst.ip(), 0)))
        .ok_or(DropReason::NoService)?;
    // A sloppy service (`sloppy_tcp`) schedules any TCP segment but a RST, so that a flow
    // another director had continues here; its first packet then walks the state table from
    // NONE like any other (ACK → ESTABLISHED, FIN → CLOSE).
    let mid_flow = !flow.opens();
    if mid_flow && (!service.sloppy || flow.flags.contains(tcp::Flags::RST)) {
        return Err(DropReason::NoConn);
    }
    let (real, template) = if service.persistence > 0 {
        persistent_pick(p, service, index, flow, mid_flow, now_ms)?
    } else {
        (pick(p, service, index, flow, mid_flow, now_ms)?, None)
    };
    let fwd = Fwd::from(real.mode);
    let rip = real_of(&real, flow.dst.port())?;
    let local = match fwd {
        Fwd::FullNat => Some(fullnat::allocate_local(p, index, flow.proto, rip)?),
        _ => None,
    };
    let new = NewConn {
        proto: flow.proto,
        client: flow.src,
        virt: flow.dst,
        real: rip,
        fwd,
        local,
        // The reference `pick` took moves into the entry: cloning it here and dropping ours
        // would be two more atomic operations on a count all workers share.
        dest: real,
    };
    // FULLNAT TCP: the ISN towards the real server depends on the local address only.
    let seq = match (local, flow.proto) {
        (Some(local), conf::Proto::Tcp) => {
            let clock_ns = now_ms.saturating_mul(1_000_000);
            let isn = xmit::isn::initial_seq(local, rip, &p.isn_key, clock_ns);
            conn::TcpSeq::new(flow.tcp_numbers(frame).seq, isn)
        }
        _ => conn::TcpSeq::default(),
    };
    let id = match p.conns.insert_with_seq(new, seq, now_ms) {
        Ok(id) => id,
        Err(conn::TableFull(real)) => {
            if let Some(local) = local {
                p.slots.release_local(&real, local);
            }
            return Err(DropReason::TableFull);
        }
    };
    if let Some(real) = p.conns.get(id).map(|c| c.dest()) {
        super::forward::count_new(real, p.worker);
    }
    if let Some(template) = template {
        p.conns.control(id, template, now_ms);
    }
    Ok(id)
}

/// The address and port a connection of an IPv4 service to `real` goes to: a port-zero real
/// takes the port the client asked for (`vport`). An IPv4 service's reals are IPv4 (the
/// model refuses 4→6); anything else is `no_dest`.
fn real_of(real: &Real, vport: u16) -> Result<SocketAddrV4, DropReason> {
    match real.addr {
        std::net::SocketAddr::V4(addr) if addr.port() == 0 => {
            Ok(SocketAddrV4::new(*addr.ip(), vport))
        }
        std::net::SocketAddr::V4(addr) => Ok(addr),
        std::net::SocketAddr::V6(_) => Err(DropReason::NoDest),
    }
}

/// Whether a connection to `real` may start with the packet `flow`, which does not open one
/// when `mid_flow` (a sloppy service's segment without SYN).
///
/// FULLNAT cannot take a flow over mid-stream: the real server never had the connection from
/// the local address and port this director would pick, and the sequence numbers rvs shifts
/// (its own ISN towards the real server, TOA or PROXY bytes) were set by whoever saw the SYN.
/// The packet is dropped as without sloppy (`no_conn`) before a connection or template is
/// made (the scheduler has moved on, as after any pick). A FULLNAT flow moves between
/// directors only with connection sync, which brings its entry along.
fn resumable(real: &Real, mid_flow: bool) -> Result<(), DropReason> {
    if mid_flow && real.mode == conf::Mode::FullNat {
        Err(DropReason::NoConn)
    } else {
        Ok(())
    }
}

/// The scheduler's choice for a new connection.
fn pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow,
    mid_flow: bool,
    now_ms: u64,
) -> Result<Arc<Real>, DropReason> {
    let key = sched::FlowKey::v4(
        flow.proto.number(),
        *flow.src.ip(),
        flow.src.port(),
        *flow.dst.ip(),
        flow.dst.port(),
    );
    let now = std::time::Duration::from_millis(now_ms);
    let chosen = p.slots.sched(index).and_then(|s| s.pick(&key, now));
    let real = chosen
        .and_then(|i| service.real(i))
        .ok_or(DropReason::NoDest)?;
    resumable(real, mid_flow)?;
    Ok(Arc::clone(real))
}

/// `ip_vs_sched_persist`: the client's template decides the real server while it lives and
/// its real server is still configured; otherwise the scheduler picks and a template is made.
fn persistent_pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow,
    mid_flow: bool,
    now_ms: u64,
) -> Result<(Arc<Real>, Option<conn::ConnId>), DropReason> {
    let vport = if service.vip.port() == 0 {
        0
    } else {
        flow.dst.port()
    };
    // An IPv4 service's netmask is a dotted one (the model's rule).
    let netmask = match service.netmask {
        conf::Netmask::V4(mask) => mask,
        conf::Netmask::V6(_) => std::net::Ipv4Addr::BROADCAST,
    };
    let key = FlowKey::template(
        flow.proto,
        *flow.src.ip(),
        netmask,
        SocketAddrV4::new(*flow.dst.ip(), vport),
    );
    if let Some(t) = p.conns.lookup_template(&key) {
        let valid = p
            .conns
            .get(t)
            .map(|c| Arc::clone(c.dest()))
            .filter(|real| !real.removed.load(std::sync::atomic::Ordering::Relaxed));
        match valid {
            Some(real) => {
                resumable(&real, mid_flow)?;
                return Ok((real, Some(t)));
            }
            None => {
                p.conns.invalidate_template(t);
            }
        }
    }
    let real = pick(p, service, index, flow, mid_flow, now_ms)?;
    let template = NewTemplate {
        key,
        real: real_of(&real, 0)?,
        timeout: service.persistence,
        dest: Arc::clone(&real),
    };
    let t = p
        .conns
        .insert_template(template, now_ms)
        .map_err(|_| DropReason::TableFull)?;
    real.load.bind(ConnClass::Template);
    Ok((real, Some(t)))
}
