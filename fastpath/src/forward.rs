//! The virtual-service path: find the connection (or schedule a new one), count the packet,
//! rewrite it for the real server's forwarding method and send it towards the next hop.
//!
//! - Client → VIP: connection lookup by the packet's flow; on a miss, a TCP SYN (without RST)
//!   or any UDP datagram is scheduled (`ip_vs_core.c` rules, spec §0.4); a SYN that hits a
//!   TIME_WAIT/CLOSE connection not controlled by a template reschedules (conn_reuse_mode 1).
//!   Persistent services first look for the client's template (spec §3).
//! - Real server → client (NAT): found by the connection's out key; source rewritten back to
//!   the VIP.
//! - FULLNAT: the new connection takes a local address and port from this worker's share of
//!   the service's pool (`laddr`); both addresses and the TCP sequence numbers are rewritten
//!   (`xmit::fullnat`), the client's address is handed on in a TOA option or a PROXY protocol
//!   header; replies come to the local address and are found by the out key.
//! - ICMP errors about a connection: rewritten (NAT, FULLNAT) or forwarded as the
//!   connection's packets are (DR, TUN), as `ip_vs_in_icmp`/`ip_vs_out_icmp` do.
//!
//! Every forwarded packet has its TTL decremented (Linux ≥ 4.3 IPVS does the same); TTL ≤ 1
//! is dropped as `ttl_exceeded`.
//!
//! The fast path (packets of established connections) does each thing once: the headers
//! validated by the pipeline are not checked again (`xmit::Headers`, the `_at` rewrites; NAT
//! decrements the TTL in the same pass as the address change), and where a real server's
//! packets leave (route, next hop's MAC) comes from the worker's cache (`l2::egress`), stamped
//! with the snapshot and the neighbour table it was computed from. Replies to clients (NAT)
//! and ICMP errors take the full route and neighbour lookups.

use crate::conn::{self, Dir, FlowKey, Fwd, Hit, NewConn, NewTemplate};
use crate::frame::Frame;
use crate::l2::egress::{Egress, Stamp};
use crate::laddr;
use crate::process::{owner, Pipeline};
use crate::service::{Real, Service};
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, Verdict};
use crate::wire::ether::{self, EthernetAddress};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{icmp, tcp, udp};
use crate::xmit::{self, fullnat, icmp_answer, nat, proxy, toa, tun, Link};
use sched::ConnClass;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// Moves a connection off its real server's counters (`ip_vs_unbind_dest`).
pub(crate) fn unbind(real: &Real, counter: conn::Counter) {
    real.load.unbind(match counter {
        conn::Counter::Active => ConnClass::Active,
        conn::Counter::Inactive => ConnClass::Inactive,
        conn::Counter::Persistent => ConnClass::Template,
    });
}

/// Returns a FULLNAT connection's local port to its service's pool (counters only: the
/// connection table is what says a port is in use).
pub(crate) fn release_local(
    pools: &mut [Option<laddr::Pool>],
    keys: &[(conf::Proto, SocketAddrV4)],
    real: &Real,
    local: SocketAddrV4,
) {
    if let Some(pool) = keys
        .iter()
        .position(|k| *k == real.service)
        .and_then(|i| pools.get_mut(i))
        .and_then(Option::as_mut)
    {
        pool.release(*local.ip());
    }
}

/// Removes a connection at once (reuse, `expire_nodest_conn`), as its expiry would.
fn forget(p: &mut Pipeline, id: conn::ConnId) {
    if let Some(gone) = p.conns.remove(id) {
        unbind(&gone.dest, gone.counter);
        if let Some(local) = gone.local {
            release_local(&mut p.pools, &p.pool_keys, &gone.dest, local);
        }
    }
}

/// The L4 facts of one TCP or UDP packet.
struct Flow {
    proto: conf::Proto,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: tcp::Flags,
    /// TCP sequence and acknowledgment numbers and payload length (0 for UDP).
    seq: u32,
    ack: u32,
    payload_len: usize,
    /// IP total length: what ipvsadm's byte counters add up.
    ip_len: u64,
    /// Where its headers are, for the rewrites.
    at: xmit::Headers,
}

impl Flow {
    /// Parses the TCP or UDP header of a frame whose IPv4 header is already validated, at
    /// `at` (whose protocol is TCP or UDP). The fixed headers are read through views of known
    /// size, which check no bounds. Inlined: it runs for every packet, and its caller reads
    /// the result in place instead of copying it out of a returned `Result`.
    #[inline]
    fn parse(frame: &[u8], at: xmit::Headers) -> Result<Flow, DropReason> {
        let ip = frame
            .get(ether::HEADER_LEN..)
            .and_then(<[u8]>::first_chunk::<{ ipv4::HEADER_LEN }>)
            .map(ipv4::Packet::new_unchecked)
            .ok_or(DropReason::Truncated)?;
        let segment = frame.get(at.l4..at.end).unwrap_or_default();
        let (proto, sport, dport, flags, seq, ack, payload_len) = match at.protocol {
            Protocol::Tcp => {
                // `tcp::Packet::check_len` on the view of the fixed header: at least the
                // fixed header, and a data offset between it and the segment's end.
                let t = segment
                    .first_chunk::<{ tcp::HEADER_LEN }>()
                    .map(tcp::Packet::new_unchecked)
                    .ok_or(DropReason::BadL4Header)?;
                let header_len = t.header_len();
                if header_len < tcp::HEADER_LEN || header_len > segment.len() {
                    return Err(DropReason::BadL4Header);
                }
                (
                    conf::Proto::Tcp,
                    t.src_port(),
                    t.dst_port(),
                    t.flags(),
                    t.seq_number(),
                    t.ack_number(),
                    segment.len().saturating_sub(header_len),
                )
            }
            Protocol::Udp => {
                let u = udp::Packet::new_checked(segment)?;
                let flags = tcp::Flags::default();
                (conf::Proto::Udp, u.src_port(), u.dst_port(), flags, 0, 0, 0)
            }
            _ => return Err(DropReason::UnsupportedProtocol),
        };
        Ok(Flow {
            proto,
            src: SocketAddrV4::new(ip.src_addr(), sport),
            dst: SocketAddrV4::new(ip.dst_addr(), dport),
            flags,
            seq,
            ack,
            payload_len,
            ip_len: at.end.saturating_sub(ether::HEADER_LEN) as u64,
            at,
        })
    }

    fn key(&self) -> FlowKey {
        FlowKey::new(self.proto, self.src, self.dst)
    }

    /// A packet that may open a connection: any UDP datagram, a TCP SYN without RST.
    fn opens(&self) -> bool {
        self.proto == conf::Proto::Udp
            || (self.flags.contains(tcp::Flags::SYN) && !self.flags.contains(tcp::Flags::RST))
    }
}

fn proto_number(p: conf::Proto) -> u8 {
    match p {
        conf::Proto::Tcp => sched::IPPROTO_TCP,
        conf::Proto::Udp => sched::IPPROTO_UDP,
    }
}

fn verdict(r: Result<Verdict, DropReason>) -> Verdict {
    r.unwrap_or_else(Verdict::Drop)
}

/// A TCP or UDP packet, its IPv4 header validated and its headers at `at`: to a VIP when
/// `local`, else possibly a NAT reply. `hint`: what a lookup of its connection answered when
/// the worker prefetched the burst.
#[allow(clippy::too_many_arguments)]
pub(crate) fn l4<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    at: xmit::Headers,
    local: bool,
    now_ms: u64,
    hint: Option<conn::Hit>,
) -> Verdict {
    let result = Flow::parse(frame.data(), at).and_then(|flow| {
        // A FULLNAT reply comes to a local address; its port says which worker owns it.
        let to_laddr = local && snapshot.is_laddr(*flow.dst.ip());
        let owning = if to_laddr {
            laddr::owner(flow.dst.port(), p.workers)
        } else if local {
            // One call per side rather than one on the side chosen: choosing between the
            // two fields made the compiler keep the whole `Flow` in memory for every packet.
            owner(*flow.src.ip(), flow.src.port(), p.workers)
        } else {
            owner(*flow.dst.ip(), flow.dst.port(), p.workers)
        };
        if owning != p.worker {
            return Ok(Verdict::Redirect { worker: owning });
        }
        let hit = p.conns.lookup_hinted(&flow.key(), hint);
        if to_laddr {
            if let Some(Hit { id, dir: Dir::Out }) = hit {
                return outbound(p, snapshot, frame, id, &flow, now_ms);
            }
        }
        if !local {
            return match hit {
                Some(Hit { id, dir: Dir::Out }) => outbound(p, snapshot, frame, id, &flow, now_ms),
                _ => Err(DropReason::NotOurs),
            };
        }
        let id = match hit {
            Some(Hit { id, dir: Dir::In }) if !(flow.opens() && p.conns.reusable(id)) => id,
            Some(Hit { id, dir: Dir::In }) => {
                forget(p, id);
                schedule(p, snapshot, &flow, now_ms)?
            }
            Some(Hit { dir: Dir::Out, .. }) => return Err(DropReason::NotOurs),
            None => schedule(p, snapshot, &flow, now_ms)?,
        };
        inbound(p, snapshot, in_port, frame, id, &flow, now_ms)
    });
    match result {
        Err(DropReason::TtlExceeded) => time_exceeded(p, snapshot, in_port, frame),
        other => verdict(other),
    }
}

/// A TCP or UDP packet whose TTL ran out (left unchanged by the rewrite that refused it):
/// answered with ICMP time exceeded on the receiving port, as Linux does, from the packet's
/// destination when the balancer owns it (a VIP, a local address), else from the balancer's
/// address on the receiving link towards the sender (a NAT reply); see
/// [`xmit::icmp_answer`]. Counted in `icmp_errors_sent`, or dropped as `ttl_exceeded` when
/// no answer may be sent.
#[inline(never)]
fn time_exceeded<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
) -> Verdict {
    let Some(view) = snapshot.ports.get(in_port) else {
        return Verdict::Drop(DropReason::TtlExceeded);
    };
    let Ok(ip) = xmit::ipv4_packet(frame.data()) else {
        return Verdict::Drop(DropReason::TtlExceeded);
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let from = if snapshot.owns(dst) {
        dst
    } else {
        match view.source_for(src) {
            Some(addr) => addr,
            None => return Verdict::Drop(DropReason::TtlExceeded),
        }
    };
    p.icmp_ident = p.icmp_ident.wrapping_add(1);
    let answer = icmp_answer::Answer::TimeExceeded;
    match icmp_answer::answer(frame, EthernetAddress(view.mac), from, answer, p.icmp_ident) {
        Ok(()) => {
            p.events.icmp_errors_sent += 1;
            Verdict::Tx { port: in_port }
        }
        Err(reason) => Verdict::Drop(reason),
    }
}

/// Creates the connection for a packet that matched none (spec §0.4, §3).
fn schedule(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    flow: &Flow,
    now_ms: u64,
) -> Result<conn::ConnId, DropReason> {
    let index = snapshot
        .service_index(flow.proto, flow.dst)
        .or_else(|| snapshot.service_index(flow.proto, SocketAddrV4::new(*flow.dst.ip(), 0)))
        .ok_or(DropReason::NoService)?;
    let service = snapshot.services.get(index).ok_or(DropReason::NoService)?;
    if !flow.opens() {
        return Err(DropReason::NoConn);
    }
    let (real, template) = if service.persistence > 0 {
        persistent_pick(p, service, index, flow, now_ms)?
    } else {
        (pick(p, service, index, flow, now_ms)?, None)
    };
    let fwd = match real.mode {
        conf::Mode::Nat => Fwd::Nat,
        conf::Mode::Dr => Fwd::Dr,
        conf::Mode::Tun => Fwd::Tun,
        conf::Mode::FullNat => Fwd::FullNat,
    };
    // A port-zero service forwards to the port the client asked for.
    let rport = match real.addr.port() {
        0 => flow.dst.port(),
        port => port,
    };
    let rip = SocketAddrV4::new(*real.addr.ip(), rport);
    let local = match fwd {
        Fwd::FullNat => Some(allocate_local(p, index, flow.proto, rip)?),
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
    let id = match p.conns.insert(new, now_ms) {
        Ok(id) => id,
        Err(conn::TableFull(real)) => {
            if let Some(local) = local {
                release_local(&mut p.pools, &p.pool_keys, &real, local);
            }
            return Err(DropReason::TableFull);
        }
    };
    if let (Some(local), conf::Proto::Tcp) = (local, flow.proto) {
        let isn = fullnat::initial_seq(local, rip, &p.isn_key, now_ms.saturating_mul(1_000_000));
        if let Some(seq) = p.conns.seq_mut(id) {
            *seq = fullnat::TcpSeq::new(flow.seq, isn);
        }
    }
    if let Some(real) = p.conns.get(id).map(|c| c.dest()) {
        real.load.bind(ConnClass::Inactive);
        real.traffic.conn(p.worker);
        real.service_traffic.conn(p.worker);
    }
    if let Some(template) = template {
        p.conns.control(id, template, now_ms);
    }
    Ok(id)
}

/// A FULLNAT local address and port of service `index` that no connection uses towards
/// `rip` (the reply key RIP:rport → LIP:lport is free), from this worker's share.
fn allocate_local(
    p: &mut Pipeline,
    index: usize,
    proto: conf::Proto,
    rip: SocketAddrV4,
) -> Result<SocketAddrV4, DropReason> {
    let conns = &p.conns;
    let pool = p
        .pools
        .get_mut(index)
        .and_then(Option::as_mut)
        .ok_or(DropReason::LaddrExhausted)?;
    let local = pool.alloc(|lip, lport| {
        let reply = FlowKey::new(proto, rip, SocketAddrV4::new(lip, lport));
        conns.lookup(&reply).is_some()
    });
    // A log line for the 1st, 2nd, 4th, 8th, … refusal of the pool: it says when it starts
    // and that it goes on, without a line per packet.
    if local.is_err() && pool.exhausted().is_power_of_two() {
        let vip = p.pool_keys.get(index).map(|(_, vip)| *vip);
        log::warn!(
            "worker {}: {} service {}: no free local address and port towards {rip}; new connection refused ({} so far)",
            p.worker,
            proto.as_str(),
            vip.map_or_else(String::new, |v| v.to_string()),
            pool.exhausted()
        );
    }
    local
}

/// The scheduler's choice for a new connection.
fn pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow,
    now_ms: u64,
) -> Result<Arc<Real>, DropReason> {
    let key = sched::FlowKey::v4(
        proto_number(flow.proto),
        *flow.src.ip(),
        flow.src.port(),
        *flow.dst.ip(),
        flow.dst.port(),
    );
    let now = std::time::Duration::from_millis(now_ms);
    let chosen = p.scheds.get_mut(index).and_then(|s| s.pick(&key, now));
    chosen
        .and_then(|i| service.real(i))
        .map(Arc::clone)
        .ok_or(DropReason::NoDest)
}

/// `ip_vs_sched_persist`: the client's template decides the real server while it lives and
/// its real server is still configured; otherwise the scheduler picks and a template is made.
fn persistent_pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow,
    now_ms: u64,
) -> Result<(Arc<Real>, Option<conn::ConnId>), DropReason> {
    let vport = if service.vip.port() == 0 {
        0
    } else {
        flow.dst.port()
    };
    let key = FlowKey::template(
        flow.proto,
        *flow.src.ip(),
        service.netmask,
        SocketAddrV4::new(*flow.dst.ip(), vport),
    );
    if let Some(t) = p.conns.lookup_template(&key) {
        let valid = p
            .conns
            .get(t)
            .map(|c| Arc::clone(c.dest()))
            .filter(|real| !real.removed.load(std::sync::atomic::Ordering::Relaxed));
        match valid {
            Some(real) => return Ok((real, Some(t))),
            None => {
                p.conns.invalidate_template(t);
            }
        }
    }
    let real = pick(p, service, index, flow, now_ms)?;
    let template = NewTemplate {
        key,
        real: real.addr,
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

/// Applies a packet's state transition to its real server's counters.
#[inline]
fn account(real: &Real, moved: conn::Move) {
    match moved {
        conn::Move::Stay => {}
        conn::Move::ToActive => real.load.activate(),
        conn::Move::ToInactive => real.load.deactivate(),
    }
}

/// Client → real server.
fn inbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
    now_ms: u64,
) -> Result<Verdict, DropReason> {
    let (transition, c) = p
        .conns
        .packet_entry(id, Dir::In, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    let real = c.dest();
    account(real, transition.moved);
    real.traffic.inbound(p.worker, flow.ip_len);
    real.service_traffic.inbound(p.worker, flow.ip_len);
    let (fwd, rip) = (c.fwd(), c.real());
    if snapshot.expire_nodest_conn && real.removed.load(std::sync::atomic::Ordering::Relaxed) {
        forget(p, id);
        return Err(DropReason::NoDest);
    }
    match fwd {
        Some(Fwd::Nat) => {
            // TTL − 1 and DNAT in one pass.
            let data = frame.data_mut();
            nat::dnat_at(data, &flow.at, rip)?;
            egress_to_real(p, snapshot, data, *rip.ip())
        }
        Some(Fwd::Dr) => {
            let data = frame.data_mut();
            xmit::decrement_ttl_validated(data)?;
            direct(p, snapshot, data, *rip.ip())
        }
        Some(Fwd::FullNat) => {
            xmit::decrement_ttl_validated(frame.data_mut())?;
            fullnat_in(p, snapshot, frame, id, flow)
        }
        _ => {
            xmit::decrement_ttl_validated(frame.data_mut())?;
            transmit(p, snapshot, in_port, frame, fwd, rip)
        }
    }
}

/// FULLNAT client → real server: both addresses and the sequence number rewritten, then the
/// client's address handed on in a TOA option or a PROXY protocol header if the service asks.
/// Out of line, so that NAT's and DR's per-packet path stays small.
#[inline(never)]
fn fullnat_in<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
) -> Result<Verdict, DropReason> {
    let c = p.conns.get(id).ok_or(DropReason::NoConn)?;
    let (client, virt, rip) = (c.client(), c.virt(), c.real());
    let local = c.local().ok_or(DropReason::NoConn)?;
    let seq = *c.seq();
    let (toa, proxy) = snapshot
        .service(c.dest().service.0, c.dest().service.1)
        .map_or((None, None), |s| (s.toa, s.proxy_protocol));
    let tcp = flow.proto == conf::Proto::Tcp;
    let proxy_due =
        tcp && proxy.is_some() && proxy::due(&seq, flow.flags, flow.seq, flow.payload_len);
    let toa_due = tcp && toa.is_some_and(|t| toa::due(placement(t), &seq, flow.flags, flow.ack));
    let seq_delta = if tcp {
        seq.in_delta(flow.seq, flow.payload_len)
    } else {
        0
    };
    // The MTU of the way to the real server limits what TOA and PROXY may add. Looked up
    // only for them: without a route the packet is dropped for it anyway, by the egress
    // below, whose cache holds no answer for a snapshot without the route.
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
    egress_to_real(p, snapshot, frame.data_mut(), *rip.ip())
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

/// Sends a client-side packet of a DR or TUN connection, its TTL already decremented, to its
/// real server.
fn transmit<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    fwd: Option<Fwd>,
    rip: SocketAddrV4,
) -> Result<Verdict, DropReason> {
    match fwd {
        Some(Fwd::Dr) => direct(p, snapshot, frame.data_mut(), *rip.ip()),
        Some(Fwd::Tun) => tunnel(p, snapshot, in_port, frame, *rip.ip()),
        // NAT and FULLNAT rewrite addresses (`inbound`, `icmp_error`, with the connection's
        // local address and sequence state for FULLNAT): they never come here.
        Some(Fwd::Nat | Fwd::FullNat) | None => Err(DropReason::NoConn),
    }
}

/// Real server → client (NAT).
fn outbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow,
    now_ms: u64,
) -> Result<Verdict, DropReason> {
    // A reply is routed: Linux's ip_forward drops it for its TTL before IPVS sees it, so an
    // expiring reply changes no state and counts nowhere: TTL − 1 (for NAT, with the rewrite)
    // comes first.
    let c = p.conns.get(id).ok_or(DropReason::NoConn)?;
    let fullnat = c.fwd() == Some(Fwd::FullNat);
    if fullnat {
        xmit::decrement_ttl_validated(frame.data_mut())?;
    } else {
        nat::snat_at(frame.data_mut(), &flow.at, c.virt())?;
    }
    let (transition, c) = p
        .conns
        .packet_entry(id, Dir::Out, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    let real = c.dest();
    account(real, transition.moved);
    real.traffic.outbound(p.worker, flow.ip_len);
    real.service_traffic.outbound(p.worker, flow.ip_len);
    let (virt, client) = (c.virt(), c.client());
    if fullnat {
        let syn_ack = flow.flags.contains(tcp::Flags::SYN) && flow.flags.contains(tcp::Flags::ACK);
        // Only a SYN+ACK's MSS is lowered: the service is not looked up for other segments.
        let mss_reduction = if syn_ack {
            mss_reduction(
                snapshot
                    .service(real.service.0, real.service.1)
                    .map(Arc::as_ref),
            )
        } else {
            0
        };
        if syn_ack && flow.proto == conf::Proto::Tcp {
            if let Some(seq) = p.conns.seq_mut(id) {
                seq.server_syn_ack(flow.seq);
            }
        }
        let seq = p.conns.get(id).map(|c| *c.seq()).unwrap_or_default();
        let rewrite = fullnat::OutRewrite {
            virt,
            client,
            ack_delta: seq.out_delta(),
            header: seq.header(),
            mss_reduction,
        };
        fullnat::rewrite_out_at(frame.data_mut(), &flow.at, &rewrite)?;
    }
    egress(p, snapshot, frame.data_mut(), *client.ip())
}

/// An ICMP error (destination unreachable, source quench, time exceeded) that may be about
/// one of our connections: from the client side (or a router before it) towards the VIP, or
/// from the real server side towards the client. Out of line: rare, and large.
#[inline(never)]
pub(crate) fn icmp_error<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    now_ms: u64,
) -> Verdict {
    let _ = now_ms;
    verdict((|| {
        let embedded = nat::icmp_flow(frame.data())?;
        let proto = match embedded.protocol {
            Protocol::Tcp => conf::Proto::Tcp,
            Protocol::Udp => conf::Proto::Udp,
            _ => return Err(DropReason::IcmpIgnored),
        };
        // The embedded packet is one the erring host received: its reverse is the flow as
        // the connection table indexes it.
        let key = FlowKey::new(proto, embedded.dst, embedded.src);
        let local = snapshot.owns(destination(frame.data()));
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
            return Ok(Verdict::Redirect { worker: owning });
        }
        let ip_len = u64::from(total_len(frame.data()));
        match (p.conns.lookup(&key), local) {
            (Some(Hit { id, dir: Dir::In }), true) => {
                // ip_vs_in_icmp verifies the checksum before it counts the packet, whatever
                // the forwarding method: DR and TUN must not pass on a corrupted error either.
                icmp_checksum(frame.data())?;
                let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
                let (fwd, rip) = (c.fwd(), c.real());
                c.dest().traffic.inbound(p.worker, ip_len);
                c.dest().service_traffic.inbound(p.worker, ip_len);
                let (local_addr, ack_delta) = (c.local(), c.seq().out_delta());
                xmit::decrement_ttl(frame.data_mut())?;
                match (fwd, local_addr) {
                    (Some(Fwd::Nat), _) => nat::icmp_dnat(frame.data_mut(), rip)?,
                    (Some(Fwd::FullNat), Some(l)) => {
                        fullnat::icmp_in(frame.data_mut(), l, rip, ack_delta)?
                    }
                    _ => return transmit(p, snapshot, in_port, frame, fwd, rip),
                }
                egress(p, snapshot, frame.data_mut(), *rip.ip())
            }
            (Some(Hit { id, dir: Dir::Out }), true) if to_laddr => {
                xmit::decrement_ttl(frame.data_mut())?;
                icmp_checksum(frame.data())?;
                let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
                let (virt, client) = (c.virt(), c.client());
                // The quoted segment got the delta of its own sequence number (the first
                // data segment carries the PROXY header and was not shifted by it).
                let seq_delta = c.seq().embedded_delta(quoted_seq(frame.data()));
                c.dest().traffic.outbound(p.worker, ip_len);
                c.dest().service_traffic.outbound(p.worker, ip_len);
                fullnat::icmp_out(frame.data_mut(), virt, client, seq_delta)?;
                egress(p, snapshot, frame.data_mut(), *client.ip())
            }
            (Some(Hit { id, dir: Dir::Out }), false) => {
                // Routed like a reply (TTL first, see `outbound`), then checked and counted
                // as handle_response_icmp does.
                xmit::decrement_ttl(frame.data_mut())?;
                icmp_checksum(frame.data())?;
                let c = p.conns.get(id).ok_or(DropReason::IcmpIgnored)?;
                let (virt, client) = (c.virt(), c.client());
                c.dest().traffic.outbound(p.worker, ip_len);
                c.dest().service_traffic.outbound(p.worker, ip_len);
                nat::icmp_snat(frame.data_mut(), virt)?;
                egress(p, snapshot, frame.data_mut(), *client.ip())
            }
            (_, true) => Err(DropReason::IcmpIgnored),
            (_, false) => Err(DropReason::NotOurs),
        }
    })())
}

/// The TCP sequence number quoted by the ICMP error in a frame `nat::icmp_flow` accepted
/// (at least 8 bytes after the embedded header); 0 if it quotes no TCP segment.
fn quoted_seq(frame: &[u8]) -> u32 {
    let eth = ether::Packet::new_unchecked(frame);
    let ip = ipv4::Packet::new_unchecked(eth.payload());
    icmp::Packet::new_unchecked(ip.payload())
        .embedded()
        .ok()
        .filter(|e| e.header.protocol() == Protocol::Tcp)
        .map_or(0, |e| tcp::Packet::new_unchecked(e.data).seq_number())
}

/// Whether the ICMP message of a validated IPv4 frame has a correct checksum.
fn icmp_checksum(frame: &[u8]) -> Result<(), DropReason> {
    let eth = ether::Packet::new_unchecked(frame);
    let ip = ipv4::Packet::new_unchecked(eth.payload());
    if icmp::Packet::new_unchecked(ip.payload()).verify_checksum() {
        Ok(())
    } else {
        Err(DropReason::BadIcmpChecksum)
    }
}

fn destination(frame: &[u8]) -> Ipv4Addr {
    ipv4::Packet::new_unchecked(ether::Packet::new_unchecked(frame).payload()).dst_addr()
}

fn total_len(frame: &[u8]) -> u16 {
    ipv4::Packet::new_unchecked(ether::Packet::new_unchecked(frame).payload()).total_len()
}

/// The Ethernet header towards `next_hop` on `port`: complete when the neighbour is known,
/// otherwise with a zero destination the worker fills in once ARP answers.
fn link_to(
    p: &Pipeline,
    snapshot: &Snapshot,
    port: usize,
    next_hop: Ipv4Addr,
) -> Result<(Link, bool), DropReason> {
    let view = snapshot.ports.get(port).ok_or(DropReason::NoRoute)?;
    let mac = p.neighbors.lookup(port, next_hop);
    let link = Link {
        port_mac: EthernetAddress(view.mac),
        next_hop_mac: EthernetAddress(mac.unwrap_or([0; 6])),
    };
    Ok((link, mac.is_some()))
}

/// Routes a rewritten packet to `dst` and writes its Ethernet header.
fn egress(
    p: &Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    dst: Ipv4Addr,
) -> Result<Verdict, DropReason> {
    let hop = snapshot.routes.lookup(dst).ok_or(DropReason::NoRoute)?;
    let next_hop = hop.next_hop(dst);
    let (link, resolved) = link_to(p, snapshot, hop.port, next_hop)?;
    xmit::rewrite_ether(data, link)?;
    Ok(sent(hop.port, (!resolved).then_some(next_hop)))
}

/// Where packets to real server `rip` leave: from the worker's cache (`l2::egress`), else
/// from the route and neighbour lookups, whose answer is cached once the neighbour is known.
/// With the next hop still unresolved, also returns it (its MAC in the link is zero).
#[inline]
fn real_egress(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    rip: Ipv4Addr,
) -> Result<(Egress, Option<Ipv4Addr>), DropReason> {
    let stamp = Stamp {
        snapshot: snapshot.id(),
        neighbors: p.neighbors.generation(),
    };
    match p.egress.get(rip, stamp) {
        Some(cached) => Ok((cached, None)),
        None => lookup_real_egress(p, snapshot, rip, stamp),
    }
}

/// [`real_egress`] when the cache has no answer under `stamp`.
#[inline(never)]
fn lookup_real_egress(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    rip: Ipv4Addr,
    stamp: Stamp,
) -> Result<(Egress, Option<Ipv4Addr>), DropReason> {
    let hop = snapshot.routes.lookup(rip).ok_or(DropReason::NoRoute)?;
    let next_hop = hop.next_hop(rip);
    let (link, resolved) = link_to(p, snapshot, hop.port, next_hop)?;
    let found = Egress {
        port: hop.port,
        on_link: hop.via.is_none(),
        link,
    };
    if resolved {
        p.egress.put(rip, stamp, found);
        Ok((found, None))
    } else {
        Ok((found, Some(next_hop)))
    }
}

/// [`egress`] for a packet to real server `rip` (NAT, FULLNAT), through the worker's cache.
#[inline]
fn egress_to_real(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    rip: Ipv4Addr,
) -> Result<Verdict, DropReason> {
    let (out, waiting) = real_egress(p, snapshot, rip)?;
    xmit::rewrite_ether(data, out.link)?;
    Ok(sent(out.port, waiting))
}

fn sent(port: usize, waiting: Option<Ipv4Addr>) -> Verdict {
    match waiting {
        None => Verdict::Tx { port },
        Some(next_hop) => Verdict::Resolve { port, next_hop },
    }
}

/// DR: the real server must be on a directly connected link; only the MACs change.
#[inline]
fn direct(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    data: &mut [u8],
    rip: Ipv4Addr,
) -> Result<Verdict, DropReason> {
    let (out, waiting) = real_egress(p, snapshot, rip)?;
    if !out.on_link {
        return Err(DropReason::NoRoute);
    }
    // `xmit::dr::forward` without its EtherType check: every frame here came through the
    // pipeline's IPv4 branch.
    xmit::rewrite_ether(data, out.link)?;
    Ok(sent(out.port, waiting))
}

/// TUN: IP-in-IP to the real server, or "fragmentation needed" back to the client.
fn tunnel<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    rip: Ipv4Addr,
) -> Result<Verdict, DropReason> {
    let hop = snapshot.routes.lookup(rip).ok_or(DropReason::NoRoute)?;
    let next_hop = hop.next_hop(rip);
    let view = snapshot.ports.get(hop.port).ok_or(DropReason::NoRoute)?;
    let src_addr = view.source_for(next_hop).ok_or(DropReason::NoRoute)?;
    let (link, resolved) = link_to(p, snapshot, hop.port, next_hop)?;
    let tunnel = tun::Tunnel {
        link,
        src_addr,
        dst_addr: rip,
        mtu: view.mtu,
    };
    p.ip_ident = p.ip_ident.wrapping_add(1);
    match tun::encapsulate(frame, &tunnel, p.ip_ident)? {
        tun::Outcome::Encapsulated => Ok(sent(hop.port, (!resolved).then_some(next_hop))),
        tun::Outcome::FragNeeded { next_hop_mtu } => {
            let in_mac = snapshot.ports.get(in_port).ok_or(DropReason::NoRoute)?.mac;
            p.icmp_ident = p.icmp_ident.wrapping_add(1);
            tun::frag_needed(frame, EthernetAddress(in_mac), next_hop_mtu, p.icmp_ident)?;
            p.events.icmp_errors_sent += 1;
            Ok(Verdict::Tx { port: in_port })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::xmit::testing::{frame, tcp_header, Ip, ROUTER_MAC};

    const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const OTHER_PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const GW1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x01];
    const GW2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x02];
    const REAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x0b];
    const NEW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x99];

    /// One port; NAT real 172.16.0.11:8080 behind gateway `gateway`, DR real 10.0.0.11 on
    /// link (or behind the gateway when `dr_on_link` is false).
    fn config(mode: &str, gateway: &str, dr_on_link: bool) -> conf::Config {
        let real = if mode == "nat" {
            "172.16.0.11:8080"
        } else {
            "10.0.0.11:80"
        };
        let dr_route = if dr_on_link {
            String::new()
        } else {
            format!("[[route]]\ndst = \"10.0.0.11/32\"\nvia = \"{gateway}\"\nport = \"dpdk0\"\n")
        };
        let text = format!(
            r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[route]]
dst = "172.16.0.0/24"
via = "{gateway}"
port = "dpdk0"
{dr_route}
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:fe:01"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.253"
mac = "02:00:00:00:fe:02"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:0a:0b"
port = "dpdk0"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
  [[service.real]]
  addr = "{real}"
  mode = "{mode}"
"#
        );
        conf::Config::parse(&text, "t.toml").unwrap()
    }

    fn snapshot(config: &conf::Config, port_mac: [u8; 6], previous: Option<&Snapshot>) -> Snapshot {
        Snapshot::build(config, &[port_mac], previous, 1).unwrap()
    }

    /// A segment of the client's connection to the VIP, sent to `port_mac`.
    fn segment(syn: bool, port_mac: [u8; 6]) -> VecFrame {
        let ip = Ip::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = tcp_header(syn, !syn, false, false, false);
        let packet = ip.tcp(40312, 80, &tcp, b"x");
        VecFrame::new(frame(ROUTER_MAC, EthernetAddress(port_mac), &packet, &[]))
    }

    /// Sends one segment; returns the verdict and the Ethernet (destination, source).
    fn send(p: &mut Pipeline, snapshot: &Snapshot, syn: bool) -> (Verdict, [u8; 6], [u8; 6]) {
        let mut f = segment(syn, snapshot.ports[0].mac);
        let verdict = p.packet(snapshot, 0, &mut f, 0);
        let eth = ether::Packet::new_unchecked(f.data());
        (verdict, eth.dst_addr().0, eth.src_addr().0)
    }

    const TX: Verdict = Verdict::Tx { port: 0 };

    /// A segment from client port `cport` with the given flags.
    fn flagged(cport: u16, syn: bool, ack: bool, fin: bool, rst: bool) -> VecFrame {
        let ip = Ip::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = tcp_header(syn, ack, fin, rst, false);
        let packet = ip.tcp(cport, 80, &tcp, b"x");
        VecFrame::new(frame(ROUTER_MAC, EthernetAddress(PORT_MAC), &packet, &[]))
    }

    #[test]
    fn bursts_with_hints_give_what_single_packets_give() {
        // Flows opening, closing, resetting and reusing their port, several packets of a flow
        // in one burst (so that earlier packets change what later hints name).
        let mut frames = Vec::new();
        for cport in 1000..1006 {
            frames.push(flagged(cport, true, false, false, false));
        }
        for cport in 1000..1006 {
            frames.push(flagged(cport, false, true, false, false));
            frames.push(flagged(cport, false, true, true, false));
        }
        for cport in 1000..1003 {
            frames.push(flagged(cport, false, false, false, true));
            frames.push(flagged(cport, true, false, false, false));
            frames.push(flagged(cport, false, true, false, false));
        }
        frames.push(flagged(2000, false, true, false, false));
        for mode in ["nat", "dr"] {
            let config = config(mode, "10.0.0.254", true);
            let (one, burst) = (
                snapshot(&config, PORT_MAC, None),
                snapshot(&config, PORT_MAC, None),
            );
            let mut single = Pipeline::new(0, 1, 64, &one, 0).unwrap();
            let mut bursty = Pipeline::new(0, 1, 64, &burst, 0).unwrap();
            for (b, chunk) in frames.chunks(4).enumerate() {
                let mut a: Vec<VecFrame> = chunk.to_vec();
                let mut c: Vec<VecFrame> = chunk.to_vec();
                let now = b as u64;
                let hints: Vec<_> = c
                    .iter()
                    .map(|f| bursty.prefetch(&burst, 0, f.data()))
                    .collect();
                for ((fa, fc), hint) in a.iter_mut().zip(&mut c).zip(hints) {
                    let va = single.packet(&one, 0, fa, now);
                    let vc = bursty.packet_hinted(&burst, 0, fc, now, hint);
                    assert_eq!((va, fa.data()), (vc, fc.data()), "{mode}, burst {b}");
                }
            }
            assert_eq!(single.conns(), bursty.conns(), "{mode}");
            let totals = |s: &Snapshot| s.services[0].traffic.totals();
            assert_eq!(totals(&one), totals(&burst), "{mode}");
            assert_eq!(
                totals(&one).conns,
                9,
                "{mode}: 6 opened, 3 reopened after RST"
            );
        }
    }

    #[test]
    fn egress_cache_sees_neighbour_and_route_changes_at_the_next_packet() {
        let first = snapshot(&config("nat", "10.0.0.254", true), PORT_MAC, None);
        let mut p = Pipeline::new(0, 1, 64, &first, 0).unwrap();
        assert_eq!(send(&mut p, &first, true), (TX, GW1_MAC, PORT_MAC));
        assert_eq!(
            send(&mut p, &first, false),
            (TX, GW1_MAC, PORT_MAC),
            "cached"
        );
        // The gateway announces a new MAC (ARP seen by this worker or a peer).
        p.learn(0, Ipv4Addr::new(10, 0, 0, 254), NEW_MAC);
        assert_eq!(send(&mut p, &first, false), (TX, NEW_MAC, PORT_MAC));
        // A new configuration routes the real server's network through the other gateway.
        let second = snapshot(&config("nat", "10.0.0.253", true), PORT_MAC, Some(&first));
        p.adopt(Some(&first), &second);
        assert_eq!(send(&mut p, &second, false), (TX, GW2_MAC, PORT_MAC));
        // Same routes, another port MAC: a new snapshot is never answered from the old one.
        let third = snapshot(
            &config("nat", "10.0.0.253", true),
            OTHER_PORT_MAC,
            Some(&second),
        );
        p.adopt(Some(&second), &third);
        assert_eq!(send(&mut p, &third, false), (TX, GW2_MAC, OTHER_PORT_MAC));
    }

    #[test]
    fn egress_cache_dr_real_server_leaving_the_link_is_no_route() {
        let first = snapshot(&config("dr", "10.0.0.254", true), PORT_MAC, None);
        let mut p = Pipeline::new(0, 1, 64, &first, 0).unwrap();
        assert_eq!(send(&mut p, &first, true), (TX, REAL_MAC, PORT_MAC));
        assert_eq!(
            send(&mut p, &first, false),
            (TX, REAL_MAC, PORT_MAC),
            "cached"
        );
        p.learn(0, Ipv4Addr::new(10, 0, 0, 11), NEW_MAC);
        assert_eq!(send(&mut p, &first, false), (TX, NEW_MAC, PORT_MAC));
        let second = snapshot(&config("dr", "10.0.0.254", false), PORT_MAC, Some(&first));
        p.adopt(Some(&first), &second);
        let (verdict, _, _) = send(&mut p, &second, false);
        assert_eq!(verdict, Verdict::Drop(DropReason::NoRoute));
    }
}
