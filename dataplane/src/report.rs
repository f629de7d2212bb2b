//! The final counters `rvsd --stats-json` writes on exit.
//!
//! Keys named by the foundation issue are an interface for scripts and the black-box tests:
//! `rx_packets`, `tx_packets`, `drops` (reason → count, every reason present) and `services`
//! (each with `vip`, `proto` and `reals` with `addr`, `conns`, `active`, `inactive`, `inpkts`,
//! `outpkts`). Everything else is an extension.

use crate::dpdk::port::Port;
use crate::stats::{Counters, SharedCounters};
use crate::steering;
use fastpath::service::Service;
use fastpath::snapshot::Snapshot;
use fastpath::verdict::DropReason;
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
}

#[derive(Debug, Serialize)]
pub struct WorkerReport {
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Packets this worker received for flows another worker owns, and handed over.
    pub handed_over: u64,
    pub drops: u64,
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
}

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
}

impl Report {
    /// Collects the published counters of every worker and port.
    pub fn new(
        snapshot: &Snapshot,
        workers: &[SharedCounters],
        config: &conf::Config,
        ports: &[Port<'_>],
        laddr_steering: steering::Status,
    ) -> Report {
        let per_worker: Vec<Counters> = workers.iter().map(SharedCounters::read).collect();
        let mut total = Counters::default();
        for c in &per_worker {
            total.add(c);
        }
        Report {
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
                })
                .collect(),
            ports: config
                .ports
                .iter()
                .zip(ports)
                .map(|(p, port)| {
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
                    }
                })
                .collect(),
            services: snapshot.services().map(|s| service_report(s)).collect(),
            laddr_steering,
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
fn service_report(s: &Service) -> ServiceReport {
    let total = s.traffic.totals();
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
            }
        })
        .collect();
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
    }
}
