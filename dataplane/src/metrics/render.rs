//! The exposition text (format 0.0.4) of the counters `rvsadm --drops` and
//! `rvsadm -L --stats` show.
//!
//! The values come from where the control socket reads them: the per-worker blocks the
//! workers publish between bursts ([`SharedCounters`]) and the per-service and per-real
//! [`fastpath::service::Traffic`] totals and connection counts of the published snapshot. A
//! scrape never touches the workers. Counters are the raw totals: `rvsadm -Z` only records a
//! baseline for listings, so the counters here never go backwards (a real server removed and
//! added again starts from zero, as in IPVS, which Prometheus treats as a counter reset).
//!
//! Metrics (every counter ends in `_total`):
//! - per worker, labels `worker` (index) and `lcore`: `rvs_worker_{rx,tx}_{packets,bytes}_total`,
//!   `rvs_worker_handed_over_total`, `rvs_worker_idle_sleeps_total`, and `rvs_worker_drops_total` with a `reason` label
//!   (every [`DropReason`], zeros included);
//! - per service, labels `proto` and `vip`: `rvs_service_{conns,inpkts,outpkts,inbytes,
//!   outbytes}_total`;
//! - per real server, labels `proto`, `vip` and `real`: the same five as
//!   `rvs_real_*_total`, and the gauges `rvs_real_{activeconns,inactconns,persistconns}`;
//! - per configured real server with health checks, the same labels: the gauge `rvs_real_up`
//!   (1 while its checks pass) and `rvs_real_transitions_total` (up/down changes);
//! - connection sync ([`render_sync`]): `rvs_sync_messages_total` and `rvs_sync_conns_total`
//!   by `direction`, `rvs_sync_lost_total` by `where`, `rvs_sync_installed_total` by
//!   `outcome`, `rvs_sync_errors_total` by `reason`.
//!
//! Label values are addresses, protocol names and drop reason names, none of which contains a
//! character the format would need escaped.

use crate::stats::{Counters, SharedCounters};
use crate::worker::Fabric;
use fastpath::service::{Service, TrafficTotals};
use fastpath::verdict::DropReason;
use std::fmt::Write as _;
use std::sync::Arc;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The health of every configured real server, read at each scrape.
pub type HealthSource = Arc<dyn Fn() -> crate::report::RealHealth + Send + Sync>;

/// Where the metrics come from.
pub(super) struct Sources {
    pub(super) fabric: Arc<Fabric>,
    pub(super) counters: Arc<Vec<SharedCounters>>,
    pub(super) lcores: Vec<u32>,
    pub(super) health: HealthSource,
}

impl Sources {
    /// The exposition text of the counters as they are now.
    pub(super) fn render(&self) -> String {
        let workers: Vec<Counters> = self.counters.iter().map(SharedCounters::read).collect();
        let services: Vec<Arc<Service>> = self.fabric.snapshot().services().cloned().collect();
        let lost_outbox = workers.iter().map(|c| c.events.sync_overflow).sum();
        render(&self.lcores, &workers, &services)
            + &render_health(&(self.health)())
            + &render_sync(self.fabric.sync_stats(), lost_outbox)
    }
}

/// A sync metric family: name, help, label name, and its (label value, count) samples.
type SyncFamily<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, u64)]);

/// The connection sync counters (`crate::sync`): messages and connections sent and received,
/// records lost on the way (`where`: a worker's `outbox`, the ring `to_master`, the ring
/// `to_worker`), installs by `outcome`, and errors by `reason`, zeros included.
pub fn render_sync(stats: &crate::sync::Stats, lost_outbox: u64) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    let labelled: [SyncFamily; 4] = [
        (
            "rvs_sync_messages_total",
            "Sync messages sent (master) and received (backup).",
            "direction",
            &[
                ("sent", stats.sent_messages.load(Relaxed)),
                ("received", stats.received_messages.load(Relaxed)),
                ("send_error", stats.send_errors.load(Relaxed)),
            ],
        ),
        (
            "rvs_sync_conns_total",
            "Connections in the sync messages sent and received.",
            "direction",
            &[
                ("sent", stats.sent_conns.load(Relaxed)),
                ("received", stats.received_conns.load(Relaxed)),
            ],
        ),
        (
            "rvs_sync_lost_total",
            "Sync records lost because a ring was full.",
            "where",
            &[
                ("outbox", lost_outbox),
                ("to_master", stats.lost_out.load(Relaxed)),
                ("to_worker", stats.lost_in.load(Relaxed)),
            ],
        ),
        (
            "rvs_sync_installed_total",
            "Received connections installed anew, refreshed, or ignored as the kernel ignores them.",
            "outcome",
            &[
                ("new", stats.installed.load(Relaxed)),
                ("updated", stats.updated.load(Relaxed)),
                ("ignored", stats.ignored.load(Relaxed)),
            ],
        ),
    ];
    for (name, help, label, values) in labelled {
        family(&mut out, name, "counter", help);
        for (value_label, v) in values {
            sample(&mut out, name, &format!("{label}=\"{value_label}\""), *v);
        }
    }
    family(
        &mut out,
        "rvs_sync_errors_total",
        "counter",
        "Sync messages and entries that did not decode, and connections not installed, by reason.",
    );
    for (reason, v) in stats.errors() {
        sample(
            &mut out,
            "rvs_sync_errors_total",
            &format!("reason=\"{reason}\""),
            v,
        );
    }
    out
}

/// `rvs_real_up` and `rvs_real_transitions_total` of the checked real servers, sorted; none
/// (not even the families) without health checks.
pub fn render_health(health: &crate::report::RealHealth) -> String {
    let mut reals: Vec<_> = health.iter().collect();
    reals.sort_by_key(|((k, addr), _)| {
        (
            k.proto.as_str(),
            k.vip.ip(),
            k.vip.port(),
            addr.ip(),
            addr.port(),
        )
    });
    let mut out = String::new();
    if reals.is_empty() {
        return out;
    }
    family(
        &mut out,
        "rvs_real_up",
        "gauge",
        "1 while the real server's health checks pass, 0 while it is held down.",
    );
    for ((k, addr), (up, _)) in &reals {
        let labels = format!("proto=\"{}\",vip=\"{}\",real=\"{addr}\"", k.proto, k.vip);
        sample(&mut out, "rvs_real_up", &labels, u64::from(*up));
    }
    family(
        &mut out,
        "rvs_real_transitions_total",
        "counter",
        "Up/down changes of the real server's health.",
    );
    for ((k, addr), (_, transitions)) in &reals {
        let labels = format!("proto=\"{}\",vip=\"{}\",real=\"{addr}\"", k.proto, k.vip);
        sample(
            &mut out,
            "rvs_real_transitions_total",
            &labels,
            *transitions,
        );
    }
    out
}

/// A metric family's `HELP` and `TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// One sample.
fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

type WorkerValue = fn(&Counters) -> u64;

/// The per-worker counters other than drops.
const WORKER_COUNTERS: [(&str, &str, WorkerValue); 6] = [
    (
        "rvs_worker_rx_packets_total",
        "Packets the worker received.",
        |c| c.rx_packets,
    ),
    (
        "rvs_worker_rx_bytes_total",
        "Bytes of the packets the worker received.",
        |c| c.rx_bytes,
    ),
    (
        "rvs_worker_tx_packets_total",
        "Packets the worker sent.",
        |c| c.tx_packets,
    ),
    (
        "rvs_worker_tx_bytes_total",
        "Bytes of the packets the worker sent.",
        |c| c.tx_bytes,
    ),
    (
        "rvs_worker_handed_over_total",
        "Packets the worker received for flows another worker owns, and handed to it.",
        |c| c.handed_over,
    ),
    (
        "rvs_worker_idle_sleeps_total",
        "Times the worker slept between polls for want of packets (idle_sleep_us).",
        |c| c.idle_sleeps,
    ),
];

type TrafficValue = fn(&TrafficTotals) -> u64;

/// ipvsadm's traffic counters (`--stats`), for services and real servers.
const TRAFFIC_COUNTERS: [(&str, &str, TrafficValue); 5] = [
    (
        "conns",
        "Connections scheduled (persistence templates excluded)",
        |t| t.conns,
    ),
    ("inpkts", "Packets from clients", |t| t.inpkts),
    (
        "outpkts",
        "Packets from real servers (NAT and FULLNAT only)",
        |t| t.outpkts,
    ),
    ("inbytes", "IP bytes from clients", |t| t.inbytes),
    (
        "outbytes",
        "IP bytes from real servers (NAT and FULLNAT only)",
        |t| t.outbytes,
    ),
];

type LoadValue = fn(&sched::DestLoad) -> u32;

/// ipvsadm's connection counts of a real server.
const REAL_GAUGES: [(&str, &str, LoadValue); 3] = [
    (
        "rvs_real_activeconns",
        "Connections of the real server in ESTABLISHED (ActiveConn).",
        sched::DestLoad::activeconns,
    ),
    (
        "rvs_real_inactconns",
        "Connections of the real server in any other state (InActConn).",
        sched::DestLoad::inactconns,
    ),
    (
        "rvs_real_persistconns",
        "Persistence templates pointing at the real server (PersistConn).",
        sched::DestLoad::persistconns,
    ),
];

/// The exposition text for workers on `lcores` with counters `workers`, and `services` (in
/// snapshot order, real servers in kernel order).
pub fn render(lcores: &[u32], workers: &[Counters], services: &[Arc<Service>]) -> String {
    let worker_labels: Vec<String> = lcores
        .iter()
        .enumerate()
        .map(|(i, lcore)| format!("worker=\"{i}\",lcore=\"{lcore}\""))
        .collect();
    let mut out = String::new();
    for (name, help, value) in WORKER_COUNTERS {
        family(&mut out, name, "counter", help);
        for (labels, c) in worker_labels.iter().zip(workers) {
            sample(&mut out, name, labels, value(c));
        }
    }
    let name = "rvs_worker_drops_total";
    family(
        &mut out,
        name,
        "counter",
        "Packets the worker dropped, by reason.",
    );
    for (labels, c) in worker_labels.iter().zip(workers) {
        for (reason, n) in DropReason::ALL.iter().zip(c.drops.iter()) {
            let labels = format!("{labels},reason=\"{}\"", reason.as_str());
            sample(&mut out, name, &labels, *n);
        }
    }

    let service_labels = |s: &Service| format!("proto=\"{}\",vip=\"{}\"", s.proto.as_str(), s.vip);
    let totals: Vec<(String, TrafficTotals)> = services
        .iter()
        .map(|s| (service_labels(s), s.traffic.totals()))
        .collect();
    for (what, help, value) in TRAFFIC_COUNTERS {
        let name = format!("rvs_service_{what}_total");
        family(&mut out, &name, "counter", &format!("{help}, per service."));
        for (labels, t) in &totals {
            sample(&mut out, &name, labels, value(t));
        }
    }

    let reals: Vec<(String, TrafficTotals, &sched::DestLoad)> = services
        .iter()
        .flat_map(|s| {
            let service = service_labels(s);
            s.reals.iter().map(move |r| {
                let labels = format!("{service},real=\"{}\"", r.addr);
                (labels, r.traffic.totals(), r.load.as_ref())
            })
        })
        .collect();
    for (what, help, value) in TRAFFIC_COUNTERS {
        let name = format!("rvs_real_{what}_total");
        family(
            &mut out,
            &name,
            "counter",
            &format!("{help}, per real server."),
        );
        for (labels, t, _) in &reals {
            sample(&mut out, &name, labels, value(t));
        }
    }
    for (name, help, value) in REAL_GAUGES {
        family(&mut out, name, "gauge", help);
        for (labels, _, load) in &reals {
            sample(&mut out, name, labels, u64::from(value(load)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::service;

    fn services() -> Vec<Arc<Service>> {
        let text = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  [[service.real]]
  addr = "10.0.0.12:8080"
  mode = "nat"
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.13:53"
  mode = "dr"
"#;
        let config = conf::Config::parse(text, "t.toml").expect("valid");
        config
            .services
            .iter()
            .map(|s| Arc::new(service::build(s, None, 2).expect("service builds")))
            .collect()
    }

    fn workers() -> Vec<Counters> {
        let mut first = Counters {
            rx_packets: 10,
            rx_bytes: 900,
            tx_packets: 7,
            tx_bytes: 650,
            handed_over: 3,
            ..Counters::default()
        };
        first.drop(DropReason::NotOurs);
        first.drop(DropReason::NotOurs);
        first.drop(DropReason::Truncated);
        let mut second = Counters {
            rx_packets: 4,
            rx_bytes: 240,
            tx_packets: 4,
            tx_bytes: 244,
            idle_sleeps: 5,
            ..Counters::default()
        };
        second.drop(DropReason::NoService);
        vec![first, second]
    }

    /// The drop samples: every reason of every worker, with these non-zero counts.
    fn drop_lines(nonzero: &[(usize, &str, u64)]) -> String {
        let mut out = String::new();
        for (w, lcore) in [(0, 1), (1, 2)] {
            for r in DropReason::ALL {
                let n = nonzero
                    .iter()
                    .find(|(nw, name, _)| *nw == w && *name == r.as_str())
                    .map_or(0, |x| x.2);
                out += &format!(
                    "rvs_worker_drops_total{{worker=\"{w}\",lcore=\"{lcore}\",reason=\"{}\"}} {n}\n",
                    r.as_str()
                );
            }
        }
        out
    }

    #[test]
    fn renders_workers_services_and_reals_exactly() {
        let services = services();
        let web = &services[0];
        // Kernel order: the file order reversed.
        let (rs2, rs1) = (&web.reals[0], &web.reals[1]);
        web.traffic.conn(0);
        web.traffic.conn(1);
        web.traffic.inbound(0, 60);
        web.traffic.inbound(1, 52);
        web.traffic.outbound(1, 1500);
        rs1.traffic.conn(0);
        rs1.traffic.inbound(0, 60);
        rs2.traffic.conn(1);
        rs2.traffic.inbound(1, 52);
        rs2.traffic.outbound(1, 1500);
        rs1.load.bind(sched::ConnClass::Inactive);
        rs2.load.bind(sched::ConnClass::Inactive);
        rs2.load.activate();
        rs2.load.bind(sched::ConnClass::Template);
        let dns = &services[1];
        dns.traffic.inbound(1, 40);
        dns.reals[0].traffic.inbound(1, 40);

        let text = render(&[1, 2], &workers(), &services);
        let expected = [
            "# HELP rvs_worker_rx_packets_total Packets the worker received.\n",
            "# TYPE rvs_worker_rx_packets_total counter\n",
            "rvs_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} 10\n",
            "rvs_worker_rx_packets_total{worker=\"1\",lcore=\"2\"} 4\n",
            "# HELP rvs_worker_rx_bytes_total Bytes of the packets the worker received.\n",
            "# TYPE rvs_worker_rx_bytes_total counter\n",
            "rvs_worker_rx_bytes_total{worker=\"0\",lcore=\"1\"} 900\n",
            "rvs_worker_rx_bytes_total{worker=\"1\",lcore=\"2\"} 240\n",
            "# HELP rvs_worker_tx_packets_total Packets the worker sent.\n",
            "# TYPE rvs_worker_tx_packets_total counter\n",
            "rvs_worker_tx_packets_total{worker=\"0\",lcore=\"1\"} 7\n",
            "rvs_worker_tx_packets_total{worker=\"1\",lcore=\"2\"} 4\n",
            "# HELP rvs_worker_tx_bytes_total Bytes of the packets the worker sent.\n",
            "# TYPE rvs_worker_tx_bytes_total counter\n",
            "rvs_worker_tx_bytes_total{worker=\"0\",lcore=\"1\"} 650\n",
            "rvs_worker_tx_bytes_total{worker=\"1\",lcore=\"2\"} 244\n",
            "# HELP rvs_worker_handed_over_total Packets the worker received for flows another worker owns, and handed to it.\n",
            "# TYPE rvs_worker_handed_over_total counter\n",
            "rvs_worker_handed_over_total{worker=\"0\",lcore=\"1\"} 3\n",
            "rvs_worker_handed_over_total{worker=\"1\",lcore=\"2\"} 0\n",
            "# HELP rvs_worker_idle_sleeps_total Times the worker slept between polls for want of packets (idle_sleep_us).\n",
            "# TYPE rvs_worker_idle_sleeps_total counter\n",
            "rvs_worker_idle_sleeps_total{worker=\"0\",lcore=\"1\"} 0\n",
            "rvs_worker_idle_sleeps_total{worker=\"1\",lcore=\"2\"} 5\n",
            "# HELP rvs_worker_drops_total Packets the worker dropped, by reason.\n",
            "# TYPE rvs_worker_drops_total counter\n",
            &drop_lines(&[(0, "not_ours", 2), (0, "truncated", 1), (1, "no_service", 1)]),
            "# HELP rvs_service_conns_total Connections scheduled (persistence templates excluded), per service.\n",
            "# TYPE rvs_service_conns_total counter\n",
            "rvs_service_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 2\n",
            "rvs_service_conns_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_service_inpkts_total Packets from clients, per service.\n",
            "# TYPE rvs_service_inpkts_total counter\n",
            "rvs_service_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 2\n",
            "rvs_service_inpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 1\n",
            "# HELP rvs_service_outpkts_total Packets from real servers (NAT and FULLNAT only), per service.\n",
            "# TYPE rvs_service_outpkts_total counter\n",
            "rvs_service_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 1\n",
            "rvs_service_outpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_service_inbytes_total IP bytes from clients, per service.\n",
            "# TYPE rvs_service_inbytes_total counter\n",
            "rvs_service_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 112\n",
            "rvs_service_inbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 40\n",
            "# HELP rvs_service_outbytes_total IP bytes from real servers (NAT and FULLNAT only), per service.\n",
            "# TYPE rvs_service_outbytes_total counter\n",
            "rvs_service_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\"} 1500\n",
            "rvs_service_outbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\"} 0\n",
            "# HELP rvs_real_conns_total Connections scheduled (persistence templates excluded), per real server.\n",
            "# TYPE rvs_real_conns_total counter\n",
            "rvs_real_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_conns_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_conns_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inpkts_total Packets from clients, per real server.\n",
            "# TYPE rvs_real_inpkts_total counter\n",
            "rvs_real_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_inpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_inpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 1\n",
            "# HELP rvs_real_outpkts_total Packets from real servers (NAT and FULLNAT only), per real server.\n",
            "# TYPE rvs_real_outpkts_total counter\n",
            "rvs_real_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_outpkts_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_outpkts_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inbytes_total IP bytes from clients, per real server.\n",
            "# TYPE rvs_real_inbytes_total counter\n",
            "rvs_real_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 52\n",
            "rvs_real_inbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 60\n",
            "rvs_real_inbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 40\n",
            "# HELP rvs_real_outbytes_total IP bytes from real servers (NAT and FULLNAT only), per real server.\n",
            "# TYPE rvs_real_outbytes_total counter\n",
            "rvs_real_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1500\n",
            "rvs_real_outbytes_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_outbytes_total{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_activeconns Connections of the real server in ESTABLISHED (ActiveConn).\n",
            "# TYPE rvs_real_activeconns gauge\n",
            "rvs_real_activeconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_activeconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_activeconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_inactconns Connections of the real server in any other state (InActConn).\n",
            "# TYPE rvs_real_inactconns gauge\n",
            "rvs_real_inactconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 0\n",
            "rvs_real_inactconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 1\n",
            "rvs_real_inactconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
            "# HELP rvs_real_persistconns Persistence templates pointing at the real server (PersistConn).\n",
            "# TYPE rvs_real_persistconns gauge\n",
            "rvs_real_persistconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:8080\"} 1\n",
            "rvs_real_persistconns{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:8080\"} 0\n",
            "rvs_real_persistconns{proto=\"udp\",vip=\"10.0.0.100:53\",real=\"10.0.0.13:53\"} 0\n",
        ]
        .concat();
        if text != expected {
            let first = text
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "differs at line {}:\n got: {:?}\nwant: {:?}",
                first + 1,
                text.lines().nth(first),
                expected.lines().nth(first)
            );
        }
        assert_eq!(
            text.lines().count(),
            24 + 2 + 2 * DropReason::COUNT + 5 * 4 + 8 * 5
        );
    }

    #[test]
    fn renders_headers_only_without_workers_or_services() {
        let text = render(&[], &[], &[]);
        let lines: Vec<&str> = text.lines().collect();
        // 7 worker families, 5 service, 8 real: HELP and TYPE each, no samples.
        assert_eq!(lines.len(), 2 * (7 + 5 + 8), "{text}");
        assert!(lines.iter().all(|l| l.starts_with("# ")), "{text}");
    }

    #[test]
    fn renders_real_health_sorted_and_nothing_without_checks() {
        assert_eq!(render_health(&Default::default()), "");
        let key = |vip: &str| conf::proto::ServiceKey {
            proto: conf::Proto::Tcp,
            vip: vip.parse().unwrap(),
        };
        let health: crate::report::RealHealth = [
            (
                (key("10.0.0.100:80"), "10.0.0.12:80".parse().unwrap()),
                (false, 3),
            ),
            (
                (key("10.0.0.100:80"), "10.0.0.11:80".parse().unwrap()),
                (true, 0),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            render_health(&health),
            "# HELP rvs_real_up 1 while the real server's health checks pass, 0 while it is held down.\n\
             # TYPE rvs_real_up gauge\n\
             rvs_real_up{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:80\"} 1\n\
             rvs_real_up{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:80\"} 0\n\
             # HELP rvs_real_transitions_total Up/down changes of the real server's health.\n\
             # TYPE rvs_real_transitions_total counter\n\
             rvs_real_transitions_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.11:80\"} 0\n\
             rvs_real_transitions_total{proto=\"tcp\",vip=\"10.0.0.100:80\",real=\"10.0.0.12:80\"} 3\n"
        );
    }

    #[test]
    fn renders_sync_counters_with_every_reason() {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = crate::sync::Stats::default();
        stats.sent_messages.store(4, Relaxed);
        stats.sent_conns.store(90, Relaxed);
        stats.received_conns.store(7, Relaxed);
        stats.lost_in.store(2, Relaxed);
        stats.installed(Ok(fastpath::pipeline::SyncInstalled::Updated));
        stats.installed(Err(fastpath::pipeline::SyncRefused::NoDest));
        stats.installed(Err(fastpath::pipeline::SyncRefused::NoDest));
        let text = render_sync(&stats, 5);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples[..11],
            [
                "rvs_sync_messages_total{direction=\"sent\"} 4",
                "rvs_sync_messages_total{direction=\"received\"} 0",
                "rvs_sync_messages_total{direction=\"send_error\"} 0",
                "rvs_sync_conns_total{direction=\"sent\"} 90",
                "rvs_sync_conns_total{direction=\"received\"} 7",
                "rvs_sync_lost_total{where=\"outbox\"} 5",
                "rvs_sync_lost_total{where=\"to_master\"} 0",
                "rvs_sync_lost_total{where=\"to_worker\"} 2",
                "rvs_sync_installed_total{outcome=\"new\"} 0",
                "rvs_sync_installed_total{outcome=\"updated\"} 1",
                "rvs_sync_installed_total{outcome=\"ignored\"} 0",
            ]
        );
        let errors: Vec<&str> = samples[11..].to_vec();
        assert_eq!(
            errors.len(),
            fastpath::sync::MessageError::REASONS.len()
                + fastpath::sync::EntryError::REASONS.len()
                + fastpath::pipeline::SyncRefused::ALL.len()
        );
        assert!(errors.contains(&"rvs_sync_errors_total{reason=\"no_dest\"} 2"));
        assert!(errors.contains(&"rvs_sync_errors_total{reason=\"syncid\"} 0"));
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 5);
    }
}
