//! rvsd's side of the control socket: applies `rvsadm` requests (and SIGHUP reloads) to the
//! configuration model, publishes the resulting snapshot to the workers, and answers queries
//! from the counters the workers publish.
//!
//! All of this runs on control threads and takes a mutex; workers never see it, they only
//! pick up the new snapshot between bursts. A change is applied whole or not at all: the
//! model rejects invalid requests, and if the snapshot cannot be built the model is restored.
//!
//! The cost of one request does not depend on the number of services: the model is copied in
//! O(1) before the change, the next snapshot is made from the published one rebuilding only
//! the services the request changed ([`Snapshot::update`]), and the workers adopt only those.
//! A reload rebuilds from the whole configuration, sharing the services that did not change.
//!
//! Counters are never written from here (workers own them). `-Z` records a baseline that
//! later listings subtract, as IPVS keeps `kstats0`; rates come from one estimator per
//! service and real server, sampled every 2 s by [`Admin::tick`].

use crate::dpdk::MacAddr;
use crate::host::exception::ExceptionPath;
use crate::host::punt::ReasonCounts;
use crate::stats::SharedCounters;
use crate::worker::Fabric;
use conf::proto::{
    ConnEntry, Counters, DestEntry, DropCount, HealthReport, Info, OwnedAddr, Request, Response,
    ServiceEntry, ServiceKey, TimeoutValues, TwinStats, WorkerStats,
};
use control::estimator::Estimator;
use control::health::{Overlay, QuorumChange};
use control::model::{Change, Model};
use fastpath::service::{Real, Service, TrafficTotals};
use fastpath::snapshot::{self, Snapshot};
use fastpath::verdict::{DropReason, PuntReason};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// `IP Virtual Server version 1.2.1`, the version ipvsadm prints.
const IPVS_VERSION: u32 = 0x01_02_01;
/// Connection entries per `-L -c` page.
const CONN_PAGE: usize = 2000;
/// How long a connection listing waits for every worker to answer.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// A service, or one of its real servers.
type StatKey = (ServiceKey, Option<SocketAddr>);

struct Inner {
    model: Model,
    /// The configuration rvsd started with (or last reloaded); services and timeouts come
    /// from the model.
    base: conf::Config,
    macs: Vec<MacAddr>,
    estimators: HashMap<StatKey, Estimator>,
    zeroed: HashMap<StatKey, Counters>,
    /// The connection listing being paged through.
    conns: Vec<ConnEntry>,
    /// Per port (config order), the addresses its kernel twin holds that `[[port]] addrs`
    /// does not list: owned by the fast path while the twin holds them.
    kernel: Vec<Vec<conf::Ipv4Net>>,
    /// The checker's verdicts and each service's quorum: what the data plane gets is the
    /// model's services through this overlay.
    overlay: Overlay,
    now: Duration,
    /// The connection sync daemons running.
    daemons: crate::sync::Daemons,
}

impl Inner {
    /// The service the data plane gets for the model's `key`.
    fn live(&self, key: &ServiceKey) -> Option<conf::Service> {
        self.model
            .service(key)
            .map(|s| self.overlay.live(s.to_conf()))
    }

    /// Re-evaluates the quorum of `keys` against the model.
    fn settle(&mut self, keys: impl IntoIterator<Item = ServiceKey>) -> Vec<QuorumChange> {
        let mut changes = Vec::new();
        for key in keys {
            let configured = self.model.service(&key).map(|s| s.to_conf());
            changes.extend(self.overlay.update_quorum(key, configured.as_ref()));
        }
        changes
    }
}

/// The live services of a freshly started rvsd: `config`'s through a new health overlay
/// (reals of an `alpha` service start down, quorum is evaluated), the overlay itself, and
/// the quorum changes found (for [`Admin::new`] to act on).
pub fn initial_health(config: &conf::Config) -> (conf::Config, Overlay, Vec<QuorumChange>) {
    let mut overlay = Overlay::new(&config.health);
    let changes = config
        .services
        .iter()
        .filter_map(|s| {
            let key = ServiceKey {
                proto: s.proto,
                vip: s.vip,
            };
            overlay.update_quorum(key, Some(s))
        })
        .collect();
    let live = conf::Config {
        services: config
            .services
            .iter()
            .map(|s| overlay.live(s.clone()))
            .collect(),
        ..config.clone()
    };
    (live, overlay, changes)
}

/// Logs a quorum change keepalived's way and runs its command on a thread of its own (a
/// slow script never holds the control thread).
pub fn quorum_changed(change: QuorumChange) {
    let vs = format!(
        "[{}]:{}:{}",
        change.service.vip.ip(),
        change.service.proto,
        change.service.vip.port()
    );
    if change.held {
        log::info!("Gained quorum {} for VS {vs}", change.live);
    } else {
        log::warn!("Lost quorum {} for VS {vs}", change.live);
    }
    let Some(command) = change.command else {
        return;
    };
    let what = if change.held {
        "quorum_up"
    } else {
        "quorum_down"
    };
    let spawned = std::thread::Builder::new()
        .name("rvs-quorum-cmd".into())
        .spawn(move || {
            match std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&command)
                .status()
            {
                Ok(status) if status.success() => log::info!("{what} {command:?} for VS {vs} done"),
                Ok(status) => log::warn!("{what} {command:?} for VS {vs} failed: {status}"),
                Err(e) => log::error!("{what} {command:?} for VS {vs} cannot run: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start a thread for {what}: {e}");
    }
}

/// The control-socket handler of a running rvsd.
pub struct Admin {
    inner: Mutex<Inner>,
    fabric: Arc<Fabric>,
    counters: Arc<Vec<SharedCounters>>,
    lcores: Vec<u32>,
    /// (port index, port name, twin name) of every port with a kernel twin.
    twins: Vec<(usize, String, String)>,
    /// The punt counters and the exception thread's.
    host: Arc<ExceptionPath>,
}

fn counters(t: TrafficTotals) -> Counters {
    Counters {
        conns: t.conns,
        inpkts: t.inpkts,
        outpkts: t.outpkts,
        inbytes: t.inbytes,
        outbytes: t.outbytes,
    }
}

fn minus(a: Counters, b: Counters) -> Counters {
    Counters {
        conns: a.conns.saturating_sub(b.conns),
        inpkts: a.inpkts.saturating_sub(b.inpkts),
        outpkts: a.outpkts.saturating_sub(b.outpkts),
        inbytes: a.inbytes.saturating_sub(b.inbytes),
        outbytes: a.outbytes.saturating_sub(b.outbytes),
    }
}

fn key_of(s: &Service) -> ServiceKey {
    ServiceKey {
        proto: s.proto,
        vip: s.vip,
    }
}

/// The data plane's service for `key`.
fn served<'a>(snapshot: &'a Snapshot, key: &ServiceKey) -> Option<&'a Arc<Service>> {
    snapshot.service(key.proto, key.vip)
}

/// A service and each of its real servers with their raw counters.
fn service_counters(s: &Service) -> impl Iterator<Item = (StatKey, Counters)> + '_ {
    let service = ((key_of(s), None), counters(s.traffic.totals()));
    let reals = s
        .reals
        .iter()
        .map(move |r| ((key_of(s), Some(r.addr)), counters(r.traffic.totals())));
    std::iter::once(service).chain(reals)
}

/// Every service and real server of `snapshot` with its raw counters.
fn raw_counters(snapshot: &Snapshot) -> Vec<(StatKey, Counters)> {
    snapshot
        .services()
        .flat_map(|s| service_counters(s))
        .collect()
}

impl Admin {
    /// The handler for an rvsd started with `config`, whose ports have `macs`.
    pub fn new(
        config: &conf::Config,
        macs: Vec<MacAddr>,
        fabric: Arc<Fabric>,
        counters: Arc<Vec<SharedCounters>>,
        host: Arc<ExceptionPath>,
        (overlay, quorum): (Overlay, Vec<QuorumChange>),
    ) -> Admin {
        quorum.into_iter().for_each(quorum_changed);
        Admin {
            inner: Mutex::new(Inner {
                model: Model::from_config(config),
                base: config.clone(),
                macs,
                estimators: HashMap::new(),
                zeroed: HashMap::new(),
                conns: Vec::new(),
                kernel: vec![Vec::new(); config.ports.len()],
                overlay,
                now: Duration::ZERO,
                daemons: crate::sync::Daemons::new(Arc::clone(&fabric)),
            }),
            fabric,
            counters,
            lcores: config.dataplane.workers.clone(),
            twins: config
                .ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| Some((i, p.name.clone(), p.exception.as_ref()?.iface.clone())))
                .collect(),
            host,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the model half-changed (changes are
        // applied to a copy first), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples every rate estimator; call every [`control::estimator::INTERVAL`]. The
    /// estimators of services and real servers no longer there go.
    pub fn tick(&self, now: Duration) {
        let snapshot = self.fabric.snapshot();
        let mut inner = self.lock();
        inner.now = now;
        let mut old = std::mem::take(&mut inner.estimators);
        inner.estimators = raw_counters(&snapshot)
            .into_iter()
            .map(|(key, c)| {
                let estimator = match old.remove(&key) {
                    Some(mut e) => {
                        e.update(now, c);
                        e
                    }
                    None => Estimator::new(now, c),
                };
                (key, estimator)
            })
            .collect();
    }

    /// Re-reads the configuration file (SIGHUP). Services, real servers, timeouts, routes and
    /// neighbours are applied like the equivalent rvsadm commands; a change to ports, EAL
    /// arguments, workers or the control socket/endpoint needs a restart and rejects the
    /// whole reload.
    pub fn reload(&self, config: &conf::Config) -> Result<(), String> {
        let mut inner = self.lock();
        let base = &inner.base;
        if base.eal != config.eal
            || base.ports != config.ports
            || base.dataplane != config.dataplane
            || base.control != config.control
            || base.sync != config.sync
        {
            let what = "[eal], [[port]], [dataplane], [control] and [sync]";
            return Err(format!("{what} changes need a restart; nothing applied"));
        }
        let saved = (
            inner.model.clone(),
            inner.base.clone(),
            inner.overlay.clone(),
        );
        let changes = inner.model.reload(config);
        inner.base = config.clone();
        // The checker's verdicts stay: a reload never revives a real held down.
        inner.overlay.reload(&config.health);
        let keys: Vec<ServiceKey> = inner.model.services().map(|s| s.key).collect();
        let quorum = inner.settle(keys);
        if let Err(e) = self.rebuild(&mut inner, &changes) {
            (inner.model, inner.base, inner.overlay) = saved;
            return Err(e);
        }
        quorum.into_iter().for_each(quorum_changed);
        log::info!("configuration reloaded: {} changes", changes.len());
        Ok(())
    }

    /// Builds the snapshot of the whole configuration (the model's services, the ports with
    /// the addresses the kernel twins hold) sharing what did not change with the published
    /// one, and publishes it for `changes`.
    fn rebuild(&self, inner: &mut Inner, changes: &[Change]) -> Result<(), String> {
        let mut ports = inner.base.ports.clone();
        for (port, held) in ports.iter_mut().zip(&inner.kernel) {
            port.addrs.extend(held.iter().copied());
        }
        let config = conf::Config {
            services: inner
                .model
                .to_conf_services()
                .into_iter()
                .map(|s| inner.overlay.live(s))
                .collect(),
            timeouts: inner.model.timeouts(),
            ports,
            ..inner.base.clone()
        };
        let previous = self.fabric.snapshot();
        let snapshot = Snapshot::build(&config, &inner.macs, Some(&previous), self.counters.len())
            .map_err(|e| e.to_string())?;
        self.publish(inner, changes, snapshot);
        Ok(())
    }

    /// The snapshot that follows the published one after `changes`, which the model has
    /// already taken: the services they name are rebuilt from the model, all others shared.
    fn next_snapshot(&self, inner: &Inner, changes: &[Change]) -> Result<Snapshot, String> {
        let mut seen = HashSet::new();
        let keys: Vec<ServiceKey> = changes
            .iter()
            .filter(|c| c.is_published())
            .filter_map(Change::service)
            .filter(|key| seen.insert(*key))
            .collect();
        let services: Vec<(ServiceKey, Option<conf::Service>)> =
            keys.iter().map(|key| (*key, inner.live(key))).collect();
        let mut edits: Vec<snapshot::Change<'_>> = services
            .iter()
            .map(|(key, service)| match service {
                Some(s) => snapshot::Change::PutService(s),
                None => snapshot::Change::RemoveService(key.proto, key.vip),
            })
            .collect();
        if changes.contains(&Change::Timeouts) {
            edits.push(snapshot::Change::Timeouts(inner.model.timeouts()));
        }
        self.fabric
            .snapshot()
            .update(&edits)
            .map_err(|e| e.to_string())
    }

    /// Publishes `snapshot`, made for `changes`, forgetting the counters of what was added
    /// anew (a re-added real server starts from zero, as in IPVS).
    fn publish(&self, inner: &mut Inner, changes: &[Change], snapshot: Snapshot) {
        for change in changes {
            let key = match *change {
                Change::AddService(k) => (k, None),
                Change::AddDest(k, a) => (k, Some(a)),
                _ => continue,
            };
            inner.zeroed.remove(&key);
            inner.estimators.remove(&key);
        }
        self.fabric.publish(Arc::new(snapshot));
    }

    /// Takes the IPv4 addresses each kernel twin holds now (by interface name, as the
    /// rtnetlink follower reports them) and, if the fast path's share changed, publishes a
    /// snapshot that owns them: ARP answered, their services served (`vip_mode = "kernel"`),
    /// host traffic to them punted; one gratuitous ARP goes out for each one gained.
    pub fn set_kernel_addrs(&self, held: &BTreeMap<String, BTreeSet<(Ipv4Addr, u8)>>) {
        let mut inner = self.lock();
        let kernel: Vec<Vec<conf::Ipv4Net>> = inner
            .base
            .ports
            .iter()
            .map(|port| {
                let Some(twin) = &port.exception else {
                    return Vec::new();
                };
                held.get(&twin.iface)
                    .into_iter()
                    .flatten()
                    .filter(|(addr, _)| !port.addrs.iter().any(|n| n.addr == *addr))
                    .map(|&(addr, prefix_len)| conf::Ipv4Net { addr, prefix_len })
                    .collect()
            })
            .collect();
        if kernel == inner.kernel {
            return;
        }
        let saved = std::mem::replace(&mut inner.kernel, kernel);
        if let Err(e) = self.rebuild(&mut inner, &[]) {
            log::error!("the kernel twins' addresses cannot be applied: {e}");
            inner.kernel = saved;
        }
    }

    /// Starts the sync daemons `[sync]` names (at rvsd's start, once the twins exist).
    pub fn start_configured_sync(&self) -> Result<(), String> {
        let mut inner = self.lock();
        let daemons = inner
            .base
            .sync
            .as_ref()
            .map(|s| s.daemons.clone())
            .unwrap_or_default();
        for daemon in &daemons {
            inner.daemons.start(daemon)?;
        }
        self.publish_sync(&mut inner)
    }

    /// `--start-daemon`.
    fn start_daemon(&self, daemon: &conf::SyncDaemon) -> Response {
        let mut inner = self.lock();
        if let Err(e) = inner.daemons.start(daemon) {
            return Response::error(e);
        }
        if let Err(e) = self.publish_sync(&mut inner) {
            let _ = inner.daemons.stop(daemon.role);
            return Response::error(e);
        }
        Response::Done
    }

    /// `--stop-daemon`.
    fn stop_daemon(&self, role: conf::SyncRole) -> Response {
        let mut inner = self.lock();
        if let Err(e) = inner.daemons.stop(role) {
            return Response::error(e);
        }
        match self.publish_sync(&mut inner) {
            Ok(()) => Response::Done,
            Err(e) => Response::error(e),
        }
    }

    /// Publishes a snapshot that tells the workers what the running daemons need: recording
    /// connections for a master, not serving while a backup runs with `backup_only`.
    fn publish_sync(&self, inner: &mut Inner) -> Result<(), String> {
        let config = inner.base.sync.as_ref();
        let rules = config.map_or_else(fastpath::conn::SyncRules::default, |c| {
            fastpath::conn::SyncRules {
                threshold: c.threshold,
                period: c.period,
            }
        });
        let state = snapshot::SyncState {
            master: inner.daemons.running(conf::SyncRole::Master),
            backup_only: config.is_some_and(|c| c.backup_only)
                && inner.daemons.running(conf::SyncRole::Backup),
            rules,
        };
        let current = self.fabric.snapshot();
        if current.sync == state {
            return Ok(());
        }
        let next = current.update(&[]).map_err(|e| e.to_string())?;
        self.publish(inner, &[], next.with_sync(state));
        Ok(())
    }

    /// Every address the fast path owns, per port, with its origin: `static` for
    /// `[[port]] addrs`, `kernel` for those only a twin holds.
    pub fn owned(&self) -> Vec<OwnedAddr> {
        let inner = self.lock();
        let mut all = Vec::new();
        for (port, kernel) in inner.base.ports.iter().zip(&inner.kernel) {
            let with = |net: &conf::Ipv4Net, origin: &str| OwnedAddr {
                port: port.name.clone(),
                addr: format!("{}/{}", net.addr, net.prefix_len),
                origin: origin.to_owned(),
            };
            all.extend(port.addrs.iter().map(|n| with(n, "static")));
            all.extend(kernel.iter().map(|n| with(n, "kernel")));
        }
        all
    }

    fn change(&self, request: &Request) -> Response {
        let mut inner = self.lock();
        let saved = (inner.model.clone(), inner.overlay.clone());
        let changes = match inner.model.apply(request) {
            Ok(changes) => changes,
            Err(e) => return e.into(),
        };
        // A weight edited with -e moves the live weight and may move the quorum.
        let keys: HashSet<ServiceKey> = changes.iter().filter_map(Change::service).collect();
        let quorum = inner.settle(keys);
        if changes.iter().any(Change::is_published) {
            match self.next_snapshot(&inner, &changes) {
                Ok(snapshot) => self.publish(&mut inner, &changes, snapshot),
                Err(e) => {
                    (inner.model, inner.overlay) = saved;
                    return Response::error(e);
                }
            }
        }
        quorum.into_iter().for_each(quorum_changed);
        for change in &changes {
            if let Change::Zero(which) = change {
                self.zero(&mut inner, *which);
            }
        }
        Response::Done
    }

    /// A checker's report: the overlay takes it and, when the live pool changes, the service
    /// is republished (a real going down leaves scheduling; its connections continue).
    fn set_health(&self, report: &HealthReport) -> Response {
        let mut inner = self.lock();
        let saved = inner.overlay.clone();
        let effect = match inner.overlay.report(report, unix_now()) {
            Ok(effect) => effect,
            Err(e) => return Response::error(e),
        };
        let rs = format!(
            "[{}]:{}:{}",
            report.real.ip(),
            report.service.proto,
            report.real.port()
        );
        let vs = format!(
            "[{}]:{}:{}",
            report.service.vip.ip(),
            report.service.proto,
            report.service.vip.port()
        );
        // Down: the failing checks; up: every check's last result.
        let why: Vec<String> = report
            .checks
            .iter()
            .filter(|c| report.up || !c.up)
            .map(|c| format!("{}: {}", c.check, c.last))
            .collect();
        if effect.flipped {
            if report.up {
                log::info!("Adding service {rs} to VS {vs} ({})", why.join(", "));
            } else {
                log::warn!("Removing service {rs} from VS {vs} ({})", why.join(", "));
            }
        }
        // A service deleted with -D (or not in the model at all) has no pool to change.
        if !effect.pool_changed || inner.model.service(&report.service).is_none() {
            return Response::Done;
        }
        let quorum = inner.settle([report.service]);
        let changes = [Change::EditService(report.service)];
        match self.next_snapshot(&inner, &changes) {
            Ok(snapshot) => self.publish(&mut inner, &changes, snapshot),
            Err(e) => {
                inner.overlay = saved;
                return Response::error(e);
            }
        }
        quorum.into_iter().for_each(quorum_changed);
        Response::Done
    }

    /// `omega`: as rvsd stops, runs `quorum_down` of every service that asks for it and holds
    /// quorum, waiting for each (nothing else runs any more).
    pub fn shutdown(&self) {
        {
            // The master sends what it holds before it goes.
            let mut inner = self.lock();
            let _ = inner.daemons.stop(conf::SyncRole::Master);
            let _ = inner.daemons.stop(conf::SyncRole::Backup);
        }
        let commands = self.lock().overlay.omega();
        for (key, command) in commands {
            log::info!("omega: running quorum_down {command:?} for VS {key}");
            match std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&command)
                .status()
            {
                Ok(status) if status.success() => {}
                Ok(status) => log::warn!("quorum_down {command:?} failed: {status}"),
                Err(e) => log::error!("quorum_down {command:?} cannot run: {e}"),
            }
        }
    }

    /// `-L --health`: every service's checked reals, in the model's order.
    fn health(&self) -> Response {
        let inner = self.lock();
        let services = inner
            .model
            .services()
            .map(|s| inner.overlay.health_entry(&s.to_conf()))
            .collect();
        Response::Health { services }
    }

    /// Whether each checked real server is up, and its up/down transitions, for the stats.
    pub fn real_health(&self) -> HashMap<(ServiceKey, SocketAddr), (bool, u64)> {
        self.lock().overlay.checked().collect()
    }

    fn zero(&self, inner: &mut Inner, which: Option<ServiceKey>) {
        let now = inner.now;
        let snapshot = self.fabric.snapshot();
        let raw = match which {
            None => raw_counters(&snapshot),
            Some(k) => served(&snapshot, &k)
                .map(|s| service_counters(s).collect())
                .unwrap_or_default(),
        };
        for (key, c) in raw {
            inner.zeroed.insert(key, c);
            if let Some(e) = inner.estimators.get_mut(&key) {
                e.zero(now, c);
            }
        }
    }

    fn list(&self, which: Option<&ServiceKey>) -> Response {
        let inner = self.lock();
        let mut entries = match inner.model.list(which) {
            Ok(entries) => entries,
            Err(message) => return Response::error(message),
        };
        let snapshot = self.fabric.snapshot();
        for entry in &mut entries {
            // As ipvsadm shows the kernel after keepalived's changes: the live pool.
            if let Some(configured) = inner.model.service(&entry.key) {
                inner.overlay.list_entry(entry, &configured.to_conf());
            }
            let Some(service) = served(&snapshot, &entry.key) else {
                continue;
            };
            fill_service(&inner, entry, service);
        }
        Response::Services { services: entries }
    }

    fn conns(&self, cursor: u64) -> Response {
        let mut inner = self.lock();
        if cursor == 0 {
            inner.conns = self.fabric.dump_conns(DUMP_TIMEOUT);
        }
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(inner.conns.len());
        let end = (start + CONN_PAGE).min(inner.conns.len());
        let page = inner
            .conns
            .get(start..end)
            .map(<[ConnEntry]>::to_vec)
            .unwrap_or_default();
        let next = (end < inner.conns.len()).then_some(end as u64);
        if next.is_none() {
            inner.conns = Vec::new();
        }
        Response::Conns { conns: page, next }
    }

    fn laddrs(&self, which: Option<&ServiceKey>) -> Response {
        let mut services = match self.lock().model.laddrs(which) {
            Ok(services) => services,
            Err(message) => return Response::error(message),
        };
        let snapshot = self.fabric.snapshot();
        for list in &mut services {
            let Some(service) = served(&snapshot, &list.key) else {
                continue;
            };
            let usage = service.laddr_usage.totals();
            for entry in &mut list.laddrs {
                if let Some(&(_, conns, conflicts)) =
                    usage.iter().find(|(a, _, _)| IpAddr::V4(*a) == entry.addr)
                {
                    entry.conns = conns;
                    entry.conflicts = conflicts;
                }
            }
        }
        Response::Laddrs { services }
    }

    fn workers(&self) -> Response {
        let by_reason = |counts: ReasonCounts| -> Vec<DropCount> {
            PuntReason::ALL
                .iter()
                .zip(counts)
                .map(|(r, n)| DropCount {
                    reason: r.as_str().to_owned(),
                    count: n,
                })
                .collect()
        };
        let punts = self.host.punt().counters();
        let workers = self
            .counters
            .iter()
            .zip(&self.lcores)
            .zip(punts)
            .map(|((shared, &lcore), punts)| {
                let c = shared.read();
                let (punted, punt_dropped) = punts.by_reason();
                WorkerStats {
                    lcore,
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                    drops: DropReason::ALL
                        .iter()
                        .zip(c.drops.iter())
                        .map(|(r, n)| DropCount {
                            reason: r.as_str().to_owned(),
                            count: *n,
                        })
                        .collect(),
                    punted: by_reason(punted),
                    punt_dropped: by_reason(punt_dropped),
                }
            })
            .collect();
        let twins: Vec<TwinStats> = self
            .twins
            .iter()
            .map(|(index, port, iface)| {
                let s = self.host.stats(*index);
                TwinStats {
                    port: port.clone(),
                    iface: iface.clone(),
                    to_kernel: s.to_kernel,
                    to_kernel_dropped: s.to_kernel_dropped,
                    kernel_tx: s.kernel_tx,
                    kernel_tx_dropped: s.kernel_tx_dropped,
                }
            })
            .collect();
        let owned = if twins.is_empty() {
            Vec::new()
        } else {
            self.owned()
        };
        // The sync counters once a daemon runs or has run (`--drops` lists them then).
        let sync = self.fabric.sync_stats().to_map();
        let active = !self.lock().daemons.list().is_empty() || sync.values().any(|&n| n != 0);
        Response::Workers {
            workers,
            twins,
            owned,
            sync: if active { sync } else { Default::default() },
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fill_service(inner: &Inner, entry: &mut ServiceEntry, service: &Service) {
    let key = (entry.key, None);
    let raw = counters(service.traffic.totals());
    entry.counters = minus(raw, inner.zeroed.get(&key).copied().unwrap_or_default());
    if let Some(e) = inner.estimators.get(&key) {
        entry.rates = e.rates();
    }
    for dest in &mut entry.dests {
        if let Some(real) = service.reals.iter().find(|r| r.addr == dest.addr) {
            fill_dest(inner, entry.key, dest, real);
        }
    }
}

fn fill_dest(inner: &Inner, service: ServiceKey, dest: &mut DestEntry, real: &Real) {
    let key = (service, Some(dest.addr));
    let raw = counters(real.traffic.totals());
    dest.counters = minus(raw, inner.zeroed.get(&key).copied().unwrap_or_default());
    dest.active_conns = real.load.activeconns();
    dest.inact_conns = real.load.inactconns();
    dest.persist_conns = real.load.persistconns();
    if let Some(e) = inner.estimators.get(&key) {
        dest.rates = e.rates();
    }
}

impl control::server::Handler for Admin {
    fn handle(&self, request: Request) -> Response {
        match &request {
            Request::Info => Response::Info {
                info: Info {
                    version: IPVS_VERSION,
                    conn_table_size: self.lock().base.dataplane.conn_table_size,
                },
            },
            Request::GetTimeouts => {
                let t = self.lock().model.timeouts();
                Response::Timeouts {
                    timeouts: TimeoutValues {
                        tcp: t.tcp,
                        tcp_fin: t.tcp_fin,
                        udp: t.udp,
                    },
                }
            }
            Request::ListServices { service } => self.list(service.as_ref()),
            Request::ListConns { cursor } => self.conns(*cursor),
            Request::GetLaddrs { service } => self.laddrs(service.as_ref()),
            Request::GetWorkers => self.workers(),
            Request::SetHealth { report } => self.set_health(report),
            Request::GetHealth => self.health(),
            Request::StartDaemon { daemon } => self.start_daemon(daemon),
            Request::StopDaemon { role } => self.stop_daemon(*role),
            Request::GetDaemons => Response::Daemons {
                daemons: self.lock().daemons.list(),
            },
            change => self.change(change),
        }
    }
}
