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
    let (toa, proxy) = p.insertions.of(snapshot, c.dest().service);
    let tcp = flow.proto == conf::Proto::Tcp;
    let numbers = flow.tcp_numbers(frame.data());
    let payload_len = usize::from(numbers.payload_len);
    let proxy_due =
        tcp && proxy.is_some() && proxy::due(&seq, flow.flags, numbers.seq, payload_len);
    let toa_due = tcp && toa.is_some_and(|t| toa::due(placement(t), &seq, flow.flags, numbers.ack));
    let seq_delta = if tcp {
        seq.in_delta(numbers.seq, payload_len)
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
            seq.server_syn_ack(flow.tcp_numbers(frame.data()).seq);
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

/// The TOA and PROXY protocol settings of the service a worker's last FULLNAT packet went
/// to, as the snapshot it was looked up in says: consecutive packets of one service (the
/// common case) skip the service table's lookup. Keyed by the snapshot's id, so that a
/// new snapshot (an edit of the settings, a removed service) is looked up afresh at its
/// first packet, exactly as looking up every packet would.
#[derive(Debug, Default)]
pub(super) struct Insertions {
    last: Option<Looked>,
}

#[derive(Debug, Clone, Copy)]
struct Looked {
    snapshot: u64,
    service: (conf::Proto, std::net::SocketAddr),
    toa: Option<conf::ToaPlacement>,
    proxy: Option<conf::ProxyProtocol>,
}

impl Insertions {
    /// The TOA placement and PROXY protocol version of `service` in `snapshot` (`None`
    /// each when the service is gone or asks for neither).
    #[inline]
    pub(super) fn of(
        &mut self,
        snapshot: &Snapshot,
        service: (conf::Proto, std::net::SocketAddr),
    ) -> (Option<conf::ToaPlacement>, Option<conf::ProxyProtocol>) {
        match self.last {
            Some(l) if l.snapshot == snapshot.id() && l.service == service => (l.toa, l.proxy),
            _ => self.look_up(snapshot, service),
        }
    }

    #[inline(never)]
    fn look_up(
        &mut self,
        snapshot: &Snapshot,
        service: (conf::Proto, std::net::SocketAddr),
    ) -> (Option<conf::ToaPlacement>, Option<conf::ProxyProtocol>) {
        let (toa, proxy) = snapshot
            .service(service.0, service.1)
            .map_or((None, None), |s| (s.toa, s.proxy_protocol));
        self.last = Some(Looked {
            snapshot: snapshot.id(),
            service,
            toa,
            proxy,
        });
        (toa, proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conf::{Proto, ProxyProtocol, ToaPlacement};

    /// One FULLNAT service on VIP:80 with `settings` (TOA, PROXY) and, if `other`, one on
    /// VIP:81 with PROXY v1 and TOA off.
    fn snapshot(settings: &str, other: bool, previous: Option<&Snapshot>) -> Snapshot {
        let other = if other {
            "[[service]]\nvip = \"10.0.0.100:81\"\nproto = \"tcp\"\nladdrs = [\"10.0.0.200\"]\n\
             toa = false\nproxy_protocol = \"v1\"\n  [[service.real]]\n  addr = \"10.0.0.12:8080\"\n  mode = \"fullnat\"\n"
        } else {
            ""
        };
        let text = format!(
            r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "10.0.0.200/32"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
laddrs = ["10.0.0.200"]
{settings}
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "fullnat"
{other}"#
        );
        let config = conf::Config::parse(&text, "t.toml").unwrap();
        Snapshot::build(&config, &[[0x02, 0, 0, 0, 0, 1]], previous, 1).unwrap()
    }

    const VIP80: (Proto, std::net::SocketAddr) = (
        Proto::Tcp,
        std::net::SocketAddr::V4(SocketAddrV4::new(
            std::net::Ipv4Addr::new(10, 0, 0, 100),
            80,
        )),
    );
    const VIP81: (Proto, std::net::SocketAddr) = (
        Proto::Tcp,
        std::net::SocketAddr::V4(SocketAddrV4::new(
            std::net::Ipv4Addr::new(10, 0, 0, 100),
            81,
        )),
    );

    #[test]
    fn insertions_follow_the_snapshot_and_the_service() {
        let mut insertions = Insertions::default();
        let first = snapshot("", true, None);
        assert_eq!(
            insertions.of(&first, VIP80),
            (Some(ToaPlacement::Ack), None)
        );
        assert_eq!(
            insertions.of(&first, VIP81),
            (None, Some(ProxyProtocol::V1))
        );
        assert_eq!(
            insertions.of(&first, VIP80),
            (Some(ToaPlacement::Ack), None),
            "back to the first service"
        );
        // An edit reaches the next packet: a new snapshot is never answered from the old one.
        let edited = snapshot("toa = false\nproxy_protocol = \"v2\"", true, Some(&first));
        assert_eq!(
            insertions.of(&edited, VIP80),
            (None, Some(ProxyProtocol::V2))
        );
        // A removed service asks for nothing.
        let removed = snapshot("", false, Some(&edited));
        assert_eq!(insertions.of(&removed, VIP81), (None, None));
        assert_eq!(
            insertions.of(&removed, VIP80),
            (Some(ToaPlacement::Ack), None)
        );
    }
}
