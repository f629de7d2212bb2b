//! The virtual-service stage for IPv6 ([`super::forward`] for IPv4): NAT66 and DR over IPv6,
//! with the kernel's rules (`ip_vs_nat_xmit_v6`, `ip_vs_dr_xmit_v6`).
//!
//! - Client → VIP: the connection (the worker's IPv6 table), or a new one for a TCP SYN or a
//!   UDP datagram ([`schedule6`]); the state machine and counters as for IPv4; NAT rewrites
//!   the destination ([`nat6::dnat_at`]), DR only the MACs. Both decrement the hop limit
//!   (Linux ≥ 4.3 IPVS does for IPv6 too); at 1 the packet is answered with time exceeded.
//! - Real server → client (NAT): found by the connection's out key, its source rewritten back
//!   to the VIP.
//! - A packet longer than the MTU of its way out is answered with packet too big before any
//!   rewrite (IPVS checks before it mangles), quoting what the sender sent.
//!
//! An IPv6 flow belongs to the worker its client address and port name ([`owner6`]), as an
//! IPv4 flow does. IPv6 is a lane of its own, out of line: its packets are parsed here
//! ([`Flow6::parse`]) rather than in the burst's prefetch stage, so that nothing of the IPv4
//! path grows for it.

use super::egress6::{self, Out6};
use super::forward::{count_new, count_packet, forget6};
use super::{owner, Pipeline};
use crate::conn::{self, Dir, FlowKey, Fwd, Hit, NewConn, NewTemplate};
use crate::frame::Frame;
use crate::service::{Real, Service};
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, PuntReason, Verdict};
use crate::wire::ipv6::{self, NextHeader};
use crate::wire::{ether, tcp, udp};
use crate::xmit::nat6::{self, Headers6};
use crate::xmit::tun6;
use sched::ConnClass;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// The L4 facts of one TCP or UDP packet over IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow6 {
    pub proto: conf::Proto,
    pub src: SocketAddrV6,
    pub dst: SocketAddrV6,
    pub flags: tcp::Flags,
    /// IPv6 packet length (header and payload): what the byte counters add up.
    pub ip_len: u16,
    pub at: Headers6,
}

impl Flow6 {
    /// The TCP or UDP packet in `frame` (a whole frame whose IPv6 header the classifier
    /// validated): its ports, flags and headers.
    ///
    /// # Errors
    /// `bad_ipv6_header` for what the classifier let through only as not TCP or UDP,
    /// `bad_l4_header` for a TCP data offset outside the segment, a UDP length outside the
    /// datagram, and a UDP checksum of 0 (forbidden over IPv6, RFC 8200 §8.1).
    pub fn parse(frame: &[u8]) -> Result<Flow6, DropReason> {
        let bytes = frame
            .get(ether::HEADER_LEN..)
            .ok_or(DropReason::Truncated)?;
        let ip = ipv6::Packet::new_checked(bytes).map_err(|_| DropReason::BadIpv6Header)?;
        let upper = ip.upper_layer().map_err(|_| DropReason::BadIpv6Header)?;
        let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
        let segment = bytes
            .get(upper.offset..end)
            .ok_or(DropReason::BadIpv6Header)?;
        let (proto, sport, dport, flags) = match upper.protocol {
            NextHeader::Tcp => {
                let t = tcp::Packet::new_checked(segment)?;
                (conf::Proto::Tcp, t.src_port(), t.dst_port(), t.flags())
            }
            NextHeader::Udp => {
                let u = udp::Packet::new_checked(segment)?;
                if u.checksum() == 0 {
                    return Err(DropReason::BadL4Header);
                }
                (
                    conf::Proto::Udp,
                    u.src_port(),
                    u.dst_port(),
                    tcp::Flags::default(),
                )
            }
            _ => return Err(DropReason::BadIpv6Header),
        };
        Ok(Flow6 {
            proto,
            src: SocketAddrV6::new(ip.src_addr(), sport, 0, 0),
            dst: SocketAddrV6::new(ip.dst_addr(), dport, 0, 0),
            flags,
            ip_len: u16::try_from(end).unwrap_or(u16::MAX),
            at: Headers6 {
                proto,
                l4: ether::HEADER_LEN + upper.offset,
                end: ether::HEADER_LEN + end,
            },
        })
    }

    fn key(&self) -> FlowKey<Ipv6Addr> {
        FlowKey::new(self.proto, self.src, self.dst)
    }

    /// A packet that may open a connection: any UDP datagram, a TCP SYN without RST.
    fn opens(&self) -> bool {
        self.proto == conf::Proto::Udp
            || (self.flags.contains(tcp::Flags::SYN) && !self.flags.contains(tcp::Flags::RST))
    }
}

/// The worker that owns the IPv6 flow of client `ip`:`port`: [`owner`] of the address folded
/// to 32 bits, so that a client's many connections spread as IPv4 clients' do.
pub(crate) fn owner6(ip: Ipv6Addr, port: u16, workers: usize) -> usize {
    let b = ip.to_bits();
    let folded = (b ^ (b >> 64)) as u64;
    owner(((folded ^ (folded >> 32)) as u32).into(), port, workers)
}

/// A TCP or UDP packet over IPv6 received on `in_port`: to a VIP when `local`, else possibly
/// a NAT66 reply. `twin`: whether the receiving port has a kernel twin (what is not a
/// connection's then goes to the kernel, as all IPv6 did before rvs forwarded it).
pub(super) fn l4<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    local: bool,
    now_ms: u64,
) -> Verdict {
    let flow = match Flow6::parse(frame.data()) {
        Ok(flow) => flow,
        Err(reason) => return Verdict::Drop(reason),
    };
    super::trim_to(frame, flow.at.end);
    let client = if local { flow.src } else { flow.dst };
    let owning = owner6(*client.ip(), client.port(), p.workers);
    if owning != p.worker {
        return Verdict::Redirect { worker: owning };
    }
    if local && snapshot.sync.backup_only {
        return Verdict::Drop(DropReason::BackupOnly);
    }
    let hit = p.conns6.lookup(&flow.key());
    if hit.is_none() && snapshot.is_martian_source6(*flow.src.ip()) {
        return Verdict::Drop(DropReason::MartianSource);
    }
    let out = match (local, hit) {
        (false, Some(Hit { id, dir: Dir::Out })) => outbound(p, snapshot, frame, id, &flow, now_ms),
        (false, _) => {
            let twin = snapshot.ports.get(in_port).is_some_and(|v| v.twin);
            return if twin {
                Verdict::Punt(PuntReason::NonIpv4)
            } else {
                Verdict::Drop(DropReason::NotOurs)
            };
        }
        (true, Some(Hit { id, dir: Dir::In })) if !(flow.opens() && p.conns6.reusable(id)) => {
            inbound(p, snapshot, frame, id, &flow, now_ms)
        }
        (true, Some(Hit { id, dir: Dir::In })) => {
            forget6(p, id);
            new_then_inbound(p, snapshot, frame, &flow, now_ms)
        }
        (true, Some(Hit { dir: Dir::Out, .. })) => Err(DropReason::NotOurs),
        (true, None) => new_then_inbound(p, snapshot, frame, &flow, now_ms),
    };
    match out {
        Ok(Step::Send(out)) => egress6::send(p, snapshot, in_port, frame, Ok(out)),
        Ok(Step::TooBig(mtu)) => egress6::packet_too_big(p, snapshot, in_port, frame, mtu),
        Err(reason) => egress6::send(p, snapshot, in_port, frame, Err(reason)),
    }
}

/// What the forwarding stage decided for a packet it does not drop.
enum Step {
    /// On its way, rewritten.
    Send(Out6),
    /// Too big for the link it would leave on (its MTU), answered unchanged.
    TooBig(u16),
}

fn new_then_inbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    flow: &Flow6,
    now_ms: u64,
) -> Result<Step, DropReason> {
    let id = schedule6(p, snapshot, flow, now_ms)?;
    inbound(p, snapshot, frame, id, flow, now_ms)
}

/// Client → real server.
fn inbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow6,
    now_ms: u64,
) -> Result<Step, DropReason> {
    let (transition, c) = p
        .conns6
        .packet_entry(id, Dir::In, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    let real = c.dest();
    count_packet(real, transition.moved, p.worker, flow.ip_len, true);
    let (fwd, rip) = (c.fwd(), c.real());
    if snapshot.expire_nodest_conn && real.removed.load(std::sync::atomic::Ordering::Relaxed) {
        forget6(p, id);
        return Err(DropReason::NoDest);
    }
    if fwd == Some(Fwd::Tun) {
        return tunnel(snapshot, frame, *rip.ip());
    }
    if let Some(mtu) = egress6::too_big(snapshot, *rip.ip(), frame.len()) {
        return Ok(Step::TooBig(mtu));
    }
    match fwd {
        Some(Fwd::Nat) => {
            nat6::dnat_at(frame.data_mut(), &flow.at, rip)?;
            Ok(Step::Send(Out6::Route(*rip.ip())))
        }
        Some(Fwd::Dr) => {
            decrement_hop_limit(frame.data_mut())?;
            Ok(Step::Send(Out6::Direct(*rip.ip())))
        }
        // FULLNAT services over IPv6 are refused when they are built.
        Some(Fwd::Tun | Fwd::FullNat) | None => Err(DropReason::NoConn),
    }
}

/// TUN over IPv6 (`ip_vs_tunnel_xmit_v6`): the packet, its hop limit decremented, inside an
/// outer header from the balancer's address towards `rip` (routed: a tunnel may cross
/// routers). The link's MTU less the outer header is what the packet may take: longer is
/// answered with packet too big announcing it, unchanged; below IPv6's minimum 1280 the
/// kernel drops it (`too_big`).
fn tunnel<F: Frame>(snapshot: &Snapshot, frame: &mut F, rip: Ipv6Addr) -> Result<Step, DropReason> {
    let hop = snapshot.routes6.lookup(rip).ok_or(DropReason::NoRoute)?;
    let view = snapshot.ports.get(hop.port).ok_or(DropReason::NoRoute)?;
    let src = view
        .source6_for(hop.next_hop(rip))
        .ok_or(DropReason::NoRoute)?;
    let mtu = view
        .mtu
        .checked_sub(tun6::OUTER_LEN as u16)
        .filter(|&mtu| mtu >= 1280)
        .ok_or(DropReason::TooBig)?;
    if frame.len() > ether::HEADER_LEN + usize::from(mtu) {
        return Ok(Step::TooBig(mtu));
    }
    decrement_hop_limit(frame.data_mut())?;
    tun6::encapsulate(frame, src, rip)?;
    Ok(Step::Send(Out6::Route(rip)))
}

/// Real server → client (NAT66).
fn outbound<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    frame: &mut F,
    id: conn::ConnId,
    flow: &Flow6,
    now_ms: u64,
) -> Result<Step, DropReason> {
    let c = p.conns6.get(id).ok_or(DropReason::NoConn)?;
    let (client, virt) = (c.client(), c.virt());
    // As IPv4's: a reply is routed, its hop limit checked (by the rewrite) before it
    // changes any state.
    if let Some(mtu) = egress6::too_big(snapshot, *client.ip(), frame.len()) {
        return Ok(Step::TooBig(mtu));
    }
    nat6::snat_at(frame.data_mut(), &flow.at, virt)?;
    let (transition, c) = p
        .conns6
        .packet_entry(id, Dir::Out, flow.flags, now_ms)
        .ok_or(DropReason::NoConn)?;
    count_packet(c.dest(), transition.moved, p.worker, flow.ip_len, false);
    Ok(Step::Send(Out6::Route(*client.ip())))
}

/// Hop limit − 1 of the IPv6 packet in `frame` (DR: nothing else changes; IPv6 has no header
/// checksum).
///
/// # Errors
/// [`DropReason::TtlExceeded`] at 0 or 1, the frame unchanged.
fn decrement_hop_limit(frame: &mut [u8]) -> Result<(), DropReason> {
    let at = ether::HEADER_LEN + 7;
    let hop_limit = frame.get_mut(at).ok_or(DropReason::Truncated)?;
    if *hop_limit <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    *hop_limit -= 1;
    Ok(())
}

/// The new connection of a packet that matched none (`ip_vs_schedule`, as
/// [`super::schedule`] does for IPv4).
fn schedule6(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    flow: &Flow6,
    now_ms: u64,
) -> Result<conn::ConnId, DropReason> {
    let any_port = SocketAddrV6::new(*flow.dst.ip(), 0, 0, 0);
    let (index, service) = snapshot
        .service6_in_slot(flow.proto, flow.dst)
        .or_else(|| snapshot.service6_in_slot(flow.proto, any_port))
        .ok_or(DropReason::NoService)?;
    let mid_flow = !flow.opens();
    if mid_flow && (!service.sloppy || flow.flags.contains(tcp::Flags::RST)) {
        return Err(DropReason::NoConn);
    }
    let (real, template) = if service.persistence > 0 {
        persistent_pick(p, service, index, flow, now_ms)?
    } else {
        (pick(p, service, index, flow, now_ms)?, None)
    };
    let new = NewConn {
        proto: flow.proto,
        client: flow.src,
        virt: flow.dst,
        real: real_of(&real, flow.dst.port())?,
        fwd: Fwd::from(real.mode),
        local: None,
        dest: real,
    };
    let id = p
        .conns6
        .insert(new, now_ms)
        .map_err(|_| DropReason::TableFull)?;
    if let Some(real) = p.conns6.get(id).map(|c| c.dest()) {
        count_new(real, p.worker);
    }
    if let Some(template) = template {
        p.conns6.control(id, template, now_ms);
    }
    Ok(id)
}

/// Where a connection of an IPv6 service to `real` goes: a port-zero real takes the port
/// the client asked for (`vport`). The NAT and DR reals of an IPv6 service are IPv6 (the
/// model's rule); anything else is `no_dest`.
fn real_of(real: &Real, vport: u16) -> Result<SocketAddrV6, DropReason> {
    match real.addr {
        SocketAddr::V6(addr) if addr.port() == 0 => Ok(SocketAddrV6::new(*addr.ip(), vport, 0, 0)),
        SocketAddr::V6(addr) => Ok(SocketAddrV6::new(*addr.ip(), addr.port(), 0, 0)),
        SocketAddr::V4(_) => Err(DropReason::NoDest),
    }
}

/// The scheduler's choice.
fn pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow6,
    now_ms: u64,
) -> Result<Arc<Real>, DropReason> {
    let key = sched::FlowKey {
        proto: flow.proto.number(),
        caddr: IpAddr::V6(*flow.src.ip()),
        cport: flow.src.port(),
        vaddr: IpAddr::V6(*flow.dst.ip()),
        vport: flow.dst.port(),
    };
    let now = std::time::Duration::from_millis(now_ms);
    p.slots
        .sched(index)
        .and_then(|s| s.pick(&key, now))
        .and_then(|i| service.real(i))
        .map(Arc::clone)
        .ok_or(DropReason::NoDest)
}

/// `ip_vs_sched_persist` over IPv6: the client's network is its address cut to the service's
/// prefix length (`-M 64`).
fn persistent_pick(
    p: &mut Pipeline,
    service: &Service,
    index: usize,
    flow: &Flow6,
    now_ms: u64,
) -> Result<(Arc<Real>, Option<conn::ConnId>), DropReason> {
    let vport = if service.vip.port() == 0 {
        0
    } else {
        flow.dst.port()
    };
    let prefix_len = match service.netmask {
        conf::Netmask::V6(len) => len,
        conf::Netmask::V4(_) => 128,
    };
    let virt = SocketAddrV6::new(*flow.dst.ip(), vport, 0, 0);
    let key = FlowKey::template_prefix(flow.proto, *flow.src.ip(), prefix_len, virt);
    if let Some(t) = p.conns6.lookup_template(&key) {
        let valid = p
            .conns6
            .get(t)
            .map(|c| Arc::clone(c.dest()))
            .filter(|real| !real.removed.load(std::sync::atomic::Ordering::Relaxed));
        match valid {
            Some(real) => return Ok((real, Some(t))),
            None => {
                p.conns6.invalidate_template(t);
            }
        }
    }
    let real = pick(p, service, index, flow, now_ms)?;
    let template = NewTemplate {
        key,
        real: real_of(&real, 0)?,
        timeout: service.persistence,
        dest: Arc::clone(&real),
    };
    let t = p
        .conns6
        .insert_template(template, now_ms)
        .map_err(|_| DropReason::TableFull)?;
    real.load.bind(ConnClass::Template);
    Ok((real, Some(t)))
}
