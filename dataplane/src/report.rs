//! The final counters `rvsd --stats-json` writes on exit.
//!
//! Keys named by the foundation issue are an interface for scripts and the black-box tests:
//! `rx_packets`, `tx_packets`, `drops` (reason → count, every reason present) and `services`
//! (each with `vip`, `proto` and `reals` with `addr`, `conns`, `active`, `inactive`, `inpkts`,
//! `outpkts`). Everything else is an extension.

use crate::dpdk::port::Port;
use crate::dpdk::twin::Twin;
use crate::host::exception::ExceptionPath;
use crate::host::punt::{PuntCounters, ReasonCounts};
use crate::stats::{Counters, SharedCounters};
use crate::steering;
use fastpath::service::Service;
use fastpath::snapshot::Snapshot;
use fastpath::verdict::{DropReason, PuntReason};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Totals over all workers plus per-worker, per-port and per-service detail.
#[derive(Debug, Serialize)]
pub struct Report {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub drops: BTreeMap<&'static str, u64>,
    /// FULLNAT: TOA options inserted, TOA options that did not fit, PROXY headers inserted.
    pub toa_inserted: u64,
    pub toa_no_room: u64,
    pub proxy_inserted: u64,
    /// ICMP errors rvs sent back instead of a packet: time exceeded (TTL ≤ 1) and
    /// fragmentation needed (TUN). The packets answered are not counted as drops.
    pub icmp_errors_sent: u64,
    pub workers: Vec<WorkerReport>,
    pub ports: Vec<PortReport>,
    pub services: Vec<ServiceReport>,
    /// How FULLNAT replies reached their owning worker at the end: `mode` (`rte_flow` or
    /// `handover`), `rules` installed, `reason` for the hand-over (or the last refused rule).
    pub laddr_steering: steering::Status,
    /// Frames handed to the kernel twins, by reason (every reason present).
    pub punted: BTreeMap<&'static str, u64>,
    /// Frames for the kernel dropped (token bucket, full ring, no twin), by reason.
    pub punt_dropped: BTreeMap<&'static str, u64>,
    /// Frames the kernel sent on the twins that left on the ports, and those refused.
    pub kernel_tx: u64,
    pub kernel_tx_dropped: u64,
    /// The addresses the fast path owned at the end, per port, with their origin (`static`:
    /// `[[port]] addrs`; `kernel`: held by the port's twin only).
    pub owned: Vec<conf::proto::OwnedAddr>,
    /// Connection sync: messages and connections sent and received, installs, losses and
    /// errors by reason (`error_<reason>`, only those that happened); see `crate::sync`.
    pub sync: BTreeMap<String, u64>,
}

/// A port's kernel twin and what the exception path moved through it.
#[derive(Debug, Serialize)]
pub struct TwinReport {
    pub iface: String,
    pub kind: &'static str,
    pub punted: BTreeMap<&'static str, u64>,
    pub punt_dropped: BTreeMap<&'static str, u64>,
    /// Punted frames the twin took, and refused.
    pub to_kernel: u64,
    pub to_kernel_dropped: u64,
    pub kernel_tx: u64,
    pub kernel_tx_dropped: u64,
    /// Data-path frames received on the port's exception queue (devices that deliver to
    /// every queue, e.g. net_af_packet), handed to worker 0, and those dropped.
    pub strays: u64,
    pub strays_dropped: u64,
}

/// Reason name → count, every reason present.
fn by_reason(counts: &ReasonCounts) -> BTreeMap<&'static str, u64> {
    PuntReason::ALL
        .iter()
        .zip(counts)
        .map(|(r, n)| (r.as_str(), *n))
        .collect()
}

#[derive(Debug, Serialize)]
pub struct WorkerReport {
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Packets this worker received for flows another worker owns, and handed over.
    pub handed_over: u64,
    pub drops: u64,
    /// Times the worker slept between polls for want of packets (`idle_sleep_us`; 0 when
    /// busy polling).
    pub idle_sleeps: u64,
}

/// Device-level counters, including what the NIC dropped before rvs saw it.
#[derive(Debug, Serialize)]
pub struct PortReport {
    pub name: String,
    pub device: String,
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
    /// The port's kernel twin, if it has one.
    pub twin: Option<TwinReport>,
}

#[derive(Debug, Serialize)]
pub struct ServiceReport {
    pub vip: String,
    pub proto: &'static str,
    pub sched: &'static str,
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    /// FULLNAT local addresses with their current connections and port conflicts.
    pub laddrs: Vec<LaddrReport>,
    pub reals: Vec<RealReport>,
    /// Configured reals the health checker holds down and out of the pool (absent from
    /// `reals`, as from `ipvsadm -L`), with their up/down transitions.
    pub held_down: Vec<HeldDown>,
}

/// A real server out of the pool because its checks fail.
#[derive(Debug, Serialize)]
pub struct HeldDown {
    pub addr: String,
    pub transitions: u64,
}

/// Per configured real server: whether it is up (unchecked reals are) and its up/down
/// transitions, as [`crate::admin::Admin::real_health`] reports them.
pub type RealHealth =
    std::collections::HashMap<(conf::proto::ServiceKey, std::net::SocketAddr), (bool, u64)>;

#[derive(Debug, Serialize)]
pub struct LaddrReport {
    pub addr: String,
    pub conns: u64,
    pub conflicts: u64,
}

#[derive(Debug, Serialize)]
pub struct RealReport {
    pub addr: String,
    pub mode: &'static str,
    pub weight: u32,
    pub conns: u64,
    pub active: u64,
    pub inactive: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    /// Whether its health checks pass (true for a real without checks and for the sorry
    /// server); a real that is down here has weight 0 (`inhibit_on_failure`).
    pub up: bool,
    /// Its up/down transitions since rvsd started.
    pub transitions: u64,
}

/// What a [`Report`] says of the host path: the exception path's counters, the twins, the
/// addresses the fast path owns.
pub struct HostPath<'a, 'pool> {
    pub exception: &'a ExceptionPath,
    pub twins: &'a [(usize, Twin<'pool>)],
    pub owned: Vec<conf::proto::OwnedAddr>,
    /// The health of every configured real server.
    pub health: RealHealth,
}

impl Report {
    /// Collects the published counters of every worker and port.
    /// This report with the sync counters of `stats` and the records the workers' full
    /// outboxes lost (`lost_outbox`).
    pub fn with_sync(mut self, stats: &crate::sync::Stats) -> Report {
        self.sync.extend(stats.to_map());
        self
    }

    pub fn new(
        snapshot: &Snapshot,
        workers: &[SharedCounters],
        config: &conf::Config,
        ports: &[Port<'_>],
        laddr_steering: steering::Status,
        host_path: HostPath<'_, '_>,
    ) -> Report {
        let HostPath {
            exception: host,
            twins,
            owned,
            health,
        } = host_path;
        let per_worker: Vec<Counters> = workers.iter().map(SharedCounters::read).collect();
        let mut total = Counters::default();
        for c in &per_worker {
            total.add(c);
        }
        let mut punts = PuntCounters::default();
        for c in host.punt().counters() {
            punts.add(&c);
        }
        let (punted, punt_dropped) = punts.by_reason();
        let twin = |index: usize| {
            let (_, t) = twins.iter().find(|(i, _)| *i == index)?;
            let s = host.stats(index);
            let none = [0; PuntReason::COUNT];
            Some(TwinReport {
                iface: t.iface().to_owned(),
                kind: t.kind().driver(),
                punted: by_reason(punts.punted.get(index).unwrap_or(&none)),
                punt_dropped: by_reason(punts.punt_dropped.get(index).unwrap_or(&none)),
                to_kernel: s.to_kernel,
                to_kernel_dropped: s.to_kernel_dropped,
                kernel_tx: s.kernel_tx,
                kernel_tx_dropped: s.kernel_tx_dropped,
                strays: s.strays,
                strays_dropped: s.strays_dropped,
            })
        };
        let kernel = (0..ports.len()).map(|i| host.stats(i));
        let (kernel_tx, kernel_tx_dropped) = kernel.fold((0, 0), |(a, b), s| {
            (a + s.kernel_tx, b + s.kernel_tx_dropped)
        });
        Report {
            owned,
            sync: BTreeMap::from([("lost_outbox".to_owned(), total.events.sync_overflow)]),
            rx_packets: total.rx_packets,
            tx_packets: total.tx_packets,
            rx_bytes: total.rx_bytes,
            tx_bytes: total.tx_bytes,
            drops: DropReason::ALL
                .iter()
                .zip(total.drops.iter())
                .map(|(r, n)| (r.as_str(), *n))
                .collect(),
            toa_inserted: total.events.toa_inserted,
            toa_no_room: total.events.toa_no_room,
            proxy_inserted: total.events.proxy_inserted,
            icmp_errors_sent: total.events.icmp_errors_sent,
            workers: per_worker
                .iter()
                .map(|c| WorkerReport {
                    rx_packets: c.rx_packets,
                    tx_packets: c.tx_packets,
                    handed_over: c.handed_over,
                    drops: c.total_drops(),
                    idle_sleeps: c.idle_sleeps,
                })
                .collect(),
            ports: config
                .ports
                .iter()
                .zip(ports)
                .enumerate()
                .map(|(index, (p, port))| {
                    let s = port.stats();
                    PortReport {
                        name: p.name.clone(),
                        device: port.name().to_owned(),
                        ipackets: s.ipackets,
                        opackets: s.opackets,
                        imissed: s.imissed,
                        ierrors: s.ierrors,
                        oerrors: s.oerrors,
                        rx_nombuf: s.rx_nombuf,
                        twin: twin(index),
                    }
                })
                .collect(),
            services: snapshot
                .services()
                .map(|s| service_report(s, &health))
                .collect(),
            laddr_steering,
            punted: by_reason(&punted),
            punt_dropped: by_reason(&punt_dropped),
            kernel_tx,
            kernel_tx_dropped,
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }
}

/// A service with its counters summed over workers; reals in `ipvsadm -L` order (address,
/// then port).
fn service_report(s: &Service, health: &RealHealth) -> ServiceReport {
    let total = s.traffic.totals();
    let key = conf::proto::ServiceKey {
        proto: s.proto,
        vip: s.vip,
    };
    let state = |addr: std::net::SocketAddr| health.get(&(key, addr)).copied().unwrap_or((true, 0));
    let mut reals: Vec<RealReport> = s
        .reals
        .iter()
        .zip(s.dests.as_slice())
        .map(|(r, d)| {
            let t = r.traffic.totals();
            let (active, inactive) = (
                u64::from(r.load.activeconns()),
                u64::from(r.load.inactconns()),
            );
            RealReport {
                addr: r.addr.to_string(),
                mode: r.mode.as_str(),
                weight: d.weight,
                conns: t.conns,
                active,
                inactive,
                inpkts: t.inpkts,
                outpkts: t.outpkts,
                inbytes: t.inbytes,
                outbytes: t.outbytes,
                up: state(r.addr).0,
                transitions: state(r.addr).1,
            }
        })
        .collect();
    let mut held_down: Vec<HeldDown> = health
        .iter()
        .filter(|((k, addr), (up, _))| {
            *k == key && !*up && !s.reals.iter().any(|r| r.addr == *addr)
        })
        .map(|((_, addr), (_, transitions))| HeldDown {
            addr: addr.to_string(),
            transitions: *transitions,
        })
        .collect();
    held_down.sort_by(|a, b| a.addr.cmp(&b.addr));
    reals.sort_by_key(|r| {
        r.addr
            .parse::<std::net::SocketAddrV4>()
            .map(|a| (*a.ip(), a.port()))
            .ok()
    });
    ServiceReport {
        vip: s.vip.to_string(),
        proto: s.proto.as_str(),
        sched: s.dests.kind().name(),
        conns: total.conns,
        inpkts: total.inpkts,
        outpkts: total.outpkts,
        inbytes: total.inbytes,
        outbytes: total.outbytes,
        laddrs: s
            .laddr_usage
            .totals()
            .into_iter()
            .map(|(addr, conns, conflicts)| LaddrReport {
                addr: addr.to_string(),
                conns,
                conflicts,
            })
            .collect(),
        reals,
        held_down,
    }
}
