//! Virtual services and their real servers as the workers see them, with the traffic counters
//! `ipvsadm --stats` shows.
//!
//! A [`Service`] holds the scheduler's shared dest list ([`sched::Dests`], kernel order) and,
//! at the same indexes, one [`Real`] per dest with what forwarding needs (address, mode). A
//! connection keeps an `Arc<Real>` for its whole life, so a real server removed from the
//! configuration stays valid for the connections still using it, with its counters.
//!
//! Counters are split per worker: worker `w` only writes slot `w`, with a relaxed load and
//! store (no read-modify-write, no shared cache line), and readers sum the slots.

use crossbeam::utils::CachePadded;
use sched::DestLoad;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// ipvsadm's traffic counters for one service or real server, one cache line per worker.
#[derive(Debug)]
pub struct Traffic {
    slots: Box<[CachePadded<TrafficSlot>]>,
}

#[derive(Debug, Default)]
struct TrafficSlot {
    conns: AtomicU64,
    inpkts: AtomicU64,
    outpkts: AtomicU64,
    inbytes: AtomicU64,
    outbytes: AtomicU64,
}

/// A sum of [`Traffic`] over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrafficTotals {
    /// Connections scheduled (templates excluded).
    pub conns: u64,
    /// Packets and bytes client → real server (IP length, before rewriting).
    pub inpkts: u64,
    pub inbytes: u64,
    /// Packets and bytes real server → client (NAT and FULLNAT only).
    pub outpkts: u64,
    pub outbytes: u64,
}

/// Adds `n` to a counter only the calling worker writes.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Traffic {
    /// Counters for `workers` workers, all zero.
    pub fn new(workers: usize) -> Traffic {
        Traffic {
            slots: (0..workers.max(1))
                .map(|_| CachePadded::new(TrafficSlot::default()))
                .collect(),
        }
    }

    /// Counts a new connection on worker `w`.
    #[inline]
    pub fn conn(&self, w: usize) {
        if let Some(s) = self.slots.get(w) {
            bump(&s.conns, 1);
        }
    }

    /// Counts a client → real server packet of `bytes` on worker `w`.
    #[inline]
    pub fn inbound(&self, w: usize, bytes: u64) {
        if let Some(s) = self.slots.get(w) {
            bump(&s.inpkts, 1);
            bump(&s.inbytes, bytes);
        }
    }

    /// Counts a real server → client packet of `bytes` on worker `w`.
    #[inline]
    pub fn outbound(&self, w: usize, bytes: u64) {
        if let Some(s) = self.slots.get(w) {
            bump(&s.outpkts, 1);
            bump(&s.outbytes, bytes);
        }
    }

    /// Counts `bytes` more of a packet already counted, client → real server, on worker `w`
    /// (the later fragments of a datagram: a datagram is one packet, its bytes are all its
    /// fragments').
    pub fn inbound_bytes(&self, w: usize, bytes: u64) {
        if let Some(s) = self.slots.get(w) {
            bump(&s.inbytes, bytes);
        }
    }

    /// [`Traffic::inbound_bytes`] real server → client.
    pub fn outbound_bytes(&self, w: usize, bytes: u64) {
        if let Some(s) = self.slots.get(w) {
            bump(&s.outbytes, bytes);
        }
    }

    /// The sum over all workers.
    pub fn totals(&self) -> TrafficTotals {
        self.slots
            .iter()
            .fold(TrafficTotals::default(), |t, s| TrafficTotals {
                conns: t.conns + s.conns.load(Relaxed),
                inpkts: t.inpkts + s.inpkts.load(Relaxed),
                inbytes: t.inbytes + s.inbytes.load(Relaxed),
                outpkts: t.outpkts + s.outpkts.load(Relaxed),
                outbytes: t.outbytes + s.outbytes.load(Relaxed),
            })
    }
}

/// Use of a FULLNAT service's local addresses: per worker and address, the connections
/// using it and the conflicts met when picking a port. Each worker overwrites its own slots
/// from its pool (relaxed stores) when it publishes its counters; readers sum the workers.
#[derive(Debug)]
pub struct LaddrUsage {
    lips: Vec<Ipv4Addr>,
    /// `slots[w][i]`: (conns, conflicts) of `lips[i]` on worker `w`.
    slots: Box<[CachePadded<Vec<LipSlot>>]>,
}

/// Connections and conflicts of one local address on one worker.
type LipSlot = (AtomicU64, AtomicU64);

impl LaddrUsage {
    /// Zero usage of `lips` on `workers` workers.
    pub fn new(lips: &[Ipv4Addr], workers: usize) -> LaddrUsage {
        LaddrUsage {
            lips: lips.to_vec(),
            slots: (0..workers.max(1))
                .map(|_| CachePadded::new(lips.iter().map(|_| Default::default()).collect()))
                .collect(),
        }
    }

    /// Worker `w`'s current figures for `lip`.
    pub fn store(&self, w: usize, lip: Ipv4Addr, conns: u64, conflicts: u64) {
        let Some(i) = self.lips.iter().position(|a| *a == lip) else {
            return;
        };
        if let Some((c, k)) = self.slots.get(w).and_then(|slot| slot.get(i)) {
            c.store(conns, Relaxed);
            k.store(conflicts, Relaxed);
        }
    }

    /// Per local address, in configuration order: (address, connections, conflicts).
    pub fn totals(&self) -> Vec<(Ipv4Addr, u64, u64)> {
        self.lips
            .iter()
            .enumerate()
            .map(|(i, &lip)| {
                let (conns, conflicts) = self
                    .slots
                    .iter()
                    .filter_map(|slot| slot.get(i))
                    .fold((0, 0), |(c, k), (sc, sk)| {
                        (c + sc.load(Relaxed), k + sk.load(Relaxed))
                    });
                (lip, conns, conflicts)
            })
            .collect()
    }
}

/// One real server of one service.
#[derive(Debug)]
pub struct Real {
    /// The service this real server belongs to: protocol and VIP.
    pub service: (conf::Proto, SocketAddr),
    /// Its address and port (an IPv6 service's NAT, DR and TUN reals are IPv6).
    pub addr: SocketAddr,
    pub mode: conf::Mode,
    /// Connection counters and overload state, shared with the scheduler's `Dest`.
    pub load: Arc<DestLoad>,
    /// This real server's traffic.
    pub traffic: Traffic,
    /// The owning service's traffic, counted with every packet of this real's connections.
    pub service_traffic: Arc<Traffic>,
    /// Set when the real server is removed from the configuration; its connections then live
    /// out their timeouts (or are dropped at once with `expire_nodest_conn`).
    pub removed: AtomicBool,
    /// The encapsulation of a `tun` real (`--tun-type` ...), changed in place by an edit as
    /// the kernel's `__ip_vs_update_dest` does: its connections use the new one from their
    /// next packet.
    pub tunnel: TunnelCell,
}

/// A [`conf::Tunnel`] that workers read and the control thread replaces, one relaxed atomic
/// word: type in bits 0-1, checksum flag in bits 2-3, port in bits 16-31.
#[derive(Debug)]
pub struct TunnelCell(AtomicU32);

impl TunnelCell {
    /// A cell holding `tunnel`.
    pub fn new(tunnel: conf::Tunnel) -> TunnelCell {
        TunnelCell(AtomicU32::new(Self::pack(tunnel)))
    }

    fn pack(t: conf::Tunnel) -> u32 {
        let kind = match t.kind {
            conf::TunKind::Ipip => 0,
            conf::TunKind::Gue => 1,
            conf::TunKind::Gre => 2,
        };
        let csum = match t.csum {
            conf::TunCsum::None => 0,
            conf::TunCsum::Csum => 1,
            conf::TunCsum::Remcsum => 2,
        };
        kind | (csum << 2) | (u32::from(t.port) << 16)
    }

    /// Replaces the tunnel.
    pub fn set(&self, tunnel: conf::Tunnel) {
        self.0.store(Self::pack(tunnel), Relaxed);
    }

    /// The encapsulation of a connection to this real whose [`flow_hash`] `hash` gives
    /// (only GUE calls it): IP-in-IP, the word 0, costs one load and one compare.
    ///
    /// [`flow_hash`]: crate::xmit::tun::flow_hash
    #[inline]
    pub fn encap(&self, hash: impl FnOnce() -> u32) -> crate::xmit::tun::Encap {
        match self.0.load(Relaxed) {
            0 => crate::xmit::tun::Encap::Ipip,
            v => crate::xmit::tun::Encap::new(Self::unpack(v), hash),
        }
    }

    fn unpack(v: u32) -> conf::Tunnel {
        conf::Tunnel {
            kind: match v & 3 {
                1 => conf::TunKind::Gue,
                2 => conf::TunKind::Gre,
                _ => conf::TunKind::Ipip,
            },
            port: (v >> 16) as u16,
            csum: match (v >> 2) & 3 {
                1 => conf::TunCsum::Csum,
                2 => conf::TunCsum::Remcsum,
                _ => conf::TunCsum::None,
            },
        }
    }
}

/// Protocol of a virtual service.
pub use conf::Proto;

/// One virtual service.
#[derive(Debug)]
pub struct Service {
    pub proto: Proto,
    pub vip: SocketAddr,
    /// Persistence timeout in seconds, 0 = not persistent.
    pub persistence: u32,
    /// Mask applied to the client address for persistence templates (`-M`): a dotted mask
    /// for IPv4, a prefix length for IPv6.
    pub netmask: conf::Netmask,
    /// The scheduler's dest list, kernel order.
    pub dests: Arc<sched::Dests>,
    /// `reals[i]` is `dests.as_slice()[i]`.
    pub reals: Vec<Arc<Real>>,
    pub traffic: Arc<Traffic>,
    /// FULLNAT local addresses (`-P`/`laddrs`).
    pub laddrs: Vec<Ipv4Addr>,
    /// How much each local address is used (`rvsadm -G`).
    pub laddr_usage: Arc<LaddrUsage>,
    /// FULLNAT TCP: where the client address goes as a TCP option (`None` = no TOA).
    pub toa: Option<conf::ToaPlacement>,
    /// FULLNAT TCP: PROXY protocol header at the start of the client's stream.
    pub proxy_protocol: Option<conf::ProxyProtocol>,
    /// TCP segments without SYN (but not RST) of no connection are scheduled too
    /// (`sloppy_tcp`): a flow that another director had continues here.
    pub sloppy: bool,
    /// The configuration this service was built from: a snapshot keeps the service as it is
    /// when the same configuration comes again.
    pub config: conf::Service,
}

impl Service {
    /// The real behind scheduler index `i`.
    #[inline]
    pub fn real(&self, i: usize) -> Option<&Arc<Real>> {
        self.reals.get(i)
    }
}

/// Why a service could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// What of IPv6 the data path does not forward yet, as the sentence that refuses it.
fn ipv6_not_forwarded(config: &conf::Service) -> Option<&'static str> {
    let v6 = config.vip.is_ipv6();
    let mode_of = |mode: conf::Mode| config.reals.iter().any(|r| r.mode == mode);
    let tunnel_of = |kind: conf::TunKind| {
        config
            .reals
            .iter()
            .any(|r| r.mode == conf::Mode::Tun && r.tunnel.kind == kind)
    };
    if v6 && (tunnel_of(conf::TunKind::Gue) || tunnel_of(conf::TunKind::Gre)) {
        Some("GUE and GRE tunnels to IPv6 reals are not forwarded yet; IPv6-in-IPv6 is (issue 14)")
    } else if v6 && mode_of(conf::Mode::FullNat) {
        Some("fullnat from IPv6 clients (6→6 and NAT64) is not forwarded yet (issue 14)")
    } else if config.laddrs.iter().any(IpAddr::is_ipv6) {
        Some("IPv6 local addresses are not forwarded yet (issue 14)")
    } else if v6 && config.vip_mode == conf::VipMode::Kernel {
        Some("vip_mode \"kernel\" needs the twin's IPv6 addresses followed, which rvs does not do yet; use \"static\" or \"routed\" (issue 14)")
    } else {
        None
    }
}

/// The IPv4 local addresses of `config` (IPv6 ones are refused by [`ipv6_not_forwarded`]).
fn v4_laddrs(config: &conf::Service) -> Vec<Ipv4Addr> {
    config
        .laddrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// Builds the service for `config`, reusing the counters of `previous` (the same service in
/// the snapshot being replaced) for real servers that are still there, so that connection
/// counts and traffic survive configuration changes.
///
/// The reals of a config file are added in file order as `ipvsadm -a` would, so the kernel
/// list (and the scheduler's) is the file order reversed.
pub fn build(
    config: &conf::Service,
    previous: Option<&Service>,
    workers: usize,
) -> Result<Service, BuildError> {
    if let Some(why) = ipv6_not_forwarded(config) {
        return Err(BuildError(why.to_string()));
    }
    let (vip, laddrs) = (config.vip, v4_laddrs(config));
    let kind: sched::Kind = config
        .sched
        .parse()
        .map_err(|e: sched::UnknownScheduler| BuildError(e.to_string()))?;
    let sched_config = sched::SchedConfig {
        flags: sched::SchedFlags {
            fallback: config.sched_flags.fallback,
            port: config.sched_flags.port,
        },
        ch_table_size: config.ch_table_size,
        ..sched::SchedConfig::default()
    };
    let traffic = previous.map_or_else(
        || Arc::new(Traffic::new(workers)),
        |p| Arc::clone(&p.traffic),
    );
    let mut reals = Vec::with_capacity(config.reals.len());
    let mut dests = Vec::with_capacity(config.reals.len());
    for r in config.reals.iter().rev() {
        let addr = r.addr;
        let kept = previous
            .and_then(|p| {
                p.reals
                    .iter()
                    .find(|old| old.addr == addr && old.mode == r.mode)
            })
            .map(Arc::clone);
        let real = kept.unwrap_or_else(|| {
            Arc::new(Real {
                service: (config.proto, vip),
                addr,
                mode: r.mode,
                load: Arc::new(DestLoad::new(r.u_threshold, r.l_threshold)),
                traffic: Traffic::new(workers),
                service_traffic: Arc::clone(&traffic),
                removed: AtomicBool::new(false),
                tunnel: TunnelCell::new(r.tunnel),
            })
        });
        real.load.set_thresholds(r.u_threshold, r.l_threshold);
        real.tunnel.set(r.tunnel);
        let old_weight = previous
            .and_then(|p| p.dests.position(&r.addr))
            .and_then(|i| previous.and_then(|p| p.dests.get(i)));
        let dest = match old_weight {
            Some(old) if Arc::ptr_eq(&old.load, &real.load) => old.with_weight(r.weight),
            _ => sched::Dest::new(r.addr, r.weight, Arc::clone(&real.load)),
        };
        dests.push(dest);
        reals.push(real);
    }
    if let Some(p) = previous {
        for old in &p.reals {
            if !reals.iter().any(|r| Arc::ptr_eq(r, old)) {
                old.removed.store(true, Relaxed);
            }
        }
    }
    let dests =
        sched::Dests::new(kind, sched_config, dests).map_err(|e| BuildError(e.to_string()))?;
    Ok(Service {
        proto: config.proto,
        vip,
        persistence: config.persistence,
        netmask: config.netmask,
        dests: Arc::new(dests),
        reals,
        traffic,
        laddr_usage: Arc::new(LaddrUsage::new(&laddrs, workers)),
        laddrs,
        toa: config.toa,
        proxy_protocol: config.proxy_protocol,
        sloppy: config.sloppy,
        config: config.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(reals: &[(&str, u16)]) -> conf::Service {
        let mut text = String::from(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]\n[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\nsched = \"wrr\"\n",
        );
        for (addr, w) in reals {
            text += &format!("[[service.real]]\naddr = \"{addr}\"\nmode = \"nat\"\nweight = {w}\n");
        }
        conf::Config::parse(&text, "t.toml")
            .expect("valid")
            .services
            .remove(0)
    }

    /// NAT66 and DR6 services are built; what the data path does not forward yet is refused
    /// with its own sentence.
    #[test]
    fn ipv6_services_build_and_what_is_not_forwarded_yet_says_so() {
        let head = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"2001:db8::1/64\", \"2001:db8::100/128\"]\nexception = { iface = \"rvs0\" }\n";
        let service = |body: &str| {
            let config = conf::Config::parse(&format!("{head}{body}"), "t.toml").expect("valid");
            build(&config.services[0], None, 1).map(|s| (s.vip, s.reals.len()))
        };
        let vip: SocketAddr = "[2001:db8::100]:80".parse().unwrap();
        assert_eq!(
            service("[[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n[[service.real]]\naddr = \"[2001:db8::11]:8080\"\nmode = \"nat\"\n[[service.real]]\naddr = \"2001:db8::12\"\nmode = \"dr\"\n"),
            Ok((vip, 2))
        );
        for (body, why) in [
            (
                "[[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n[[service.real]]\naddr = \"2001:db8::13\"\nmode = \"tun\"\ntunnel = { type = \"gre\" }\n",
                "GUE and GRE tunnels to IPv6 reals are not forwarded yet; IPv6-in-IPv6 is (issue 14)",
            ),
            (
                "[[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\nladdrs = [\"10.0.0.1\"]\n[[service.real]]\naddr = \"10.0.0.11:80\"\nmode = \"fullnat\"\n",
                "fullnat from IPv6 clients (6→6 and NAT64) is not forwarded yet (issue 14)",
            ),
            (
                "[[service]]\nvip = \"[2001:db8::200]:80\"\nproto = \"tcp\"\nvip_mode = \"kernel\"\n",
                "vip_mode \"kernel\" needs the twin's IPv6 addresses followed, which rvs does not do yet; use \"static\" or \"routed\" (issue 14)",
            ),
        ] {
            assert_eq!(service(body), Err(BuildError(why.to_string())), "{body}");
        }
    }

    #[test]
    fn file_order_becomes_kernel_order_reversed() {
        let s = build(
            &config(&[
                ("10.0.0.11:80", 4),
                ("10.0.0.12:80", 3),
                ("10.0.0.13:80", 2),
            ]),
            None,
            2,
        )
        .unwrap();
        let addrs: Vec<String> = s.reals.iter().map(|r| r.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.13:80", "10.0.0.12:80", "10.0.0.11:80"]);
        for (i, r) in s.reals.iter().enumerate() {
            assert_eq!(s.dests.get(i).unwrap().addr, r.addr);
        }
    }

    #[test]
    fn rebuild_keeps_counters_of_surviving_reals_and_marks_removed_ones() {
        let first = build(
            &config(&[("10.0.0.11:80", 1), ("10.0.0.12:80", 1)]),
            None,
            2,
        )
        .unwrap();
        first.reals[0].traffic.inbound(1, 100);
        first.traffic.conn(0);
        first.reals[0].load.bind(sched::ConnClass::Inactive);
        let second = build(&config(&[("10.0.0.11:80", 5)]), Some(&first), 2).unwrap();
        let kept = &second.reals[0];
        assert!(Arc::ptr_eq(
            kept,
            first.reals.iter().find(|r| r.addr == kept.addr).unwrap()
        ));
        assert_eq!(second.dests.get(0).unwrap().weight, 5);
        assert_eq!(second.traffic.totals().conns, 1);
        let removed = first
            .reals
            .iter()
            .find(|r| r.addr.to_string() == "10.0.0.12:80")
            .unwrap();
        assert!(removed.removed.load(Relaxed));
        assert!(!kept.removed.load(Relaxed));
    }

    #[test]
    fn laddr_usage_sums_workers_per_address() {
        let a = Ipv4Addr::new(192, 168, 10, 100);
        let b = Ipv4Addr::new(192, 168, 10, 101);
        let usage = LaddrUsage::new(&[a, b], 2);
        usage.store(0, a, 5, 1);
        usage.store(1, a, 3, 0);
        usage.store(1, b, 7, 2);
        usage.store(0, b, 1, 0);
        usage.store(0, b, 2, 0); // a worker's figures replace its previous ones
        usage.store(1, Ipv4Addr::new(1, 2, 3, 4), 9, 9); // unknown address: ignored
        usage.store(9, a, 9, 9); // unknown worker: ignored
        assert_eq!(usage.totals(), vec![(a, 8, 1), (b, 9, 2)]);
    }

    #[test]
    fn traffic_sums_per_worker_slots() {
        let t = Traffic::new(3);
        t.conn(0);
        t.inbound(1, 60);
        t.inbound(2, 40);
        t.outbound(2, 1500);
        t.inbound(7, 1); // no such worker: ignored, never a panic
        assert_eq!(
            t.totals(),
            TrafficTotals {
                conns: 1,
                inpkts: 2,
                inbytes: 100,
                outpkts: 1,
                outbytes: 1500
            }
        );
    }
}
