//! The virtual services of a snapshot, kept so that a change costs the same with 10 services
//! or 10,000:
//!
//! - Each service is found by protocol and VIP in a persistent map (`imbl::OrdMap`): the next
//!   snapshot shares every unchanged service (the same `Arc<Service>`, so the same
//!   `sched::Dests`) with the one before, and a change copies only the tree nodes on its path.
//! - Each service has a **slot**, fixed from the snapshot that adds it to the one that removes
//!   it (then reused); a worker keeps its scheduler and local address pool for the service at
//!   that index, so another service coming or going does not move them.
//! - Each snapshot records which services it changed (its [`Step`]), and keeps the steps of the
//!   snapshots before it: a worker holding one of those adopts the new one by looking at the
//!   services changed since ([`ServiceTable::changed_since`]), not at every service.
//! - The FULLNAT local addresses of all services, which every packet may be checked against,
//!   are a sorted array rebuilt only when the set of addresses changes (its size is bounded
//!   by the addresses the ports own, not by the number of services); the same for the VIPs
//!   with their modes, from which the snapshot derives the addresses it owns: adding a service
//!   on a VIP that has one already changes neither.

use crate::service::{self, BuildError, Service};
use imbl::{OrdMap, Vector};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// Snapshots whose changes a snapshot remembers. A worker more steps behind (it did not look
/// at the published snapshot while that many were published) compares every service instead.
const HISTORY: usize = 256;

/// A service's protocol, address and port as one integer: one word to hash or compare when a
/// new connection looks its service up. The order of these keys (protocol, address, port) is
/// the order services are listed in.
#[inline]
pub(crate) fn vip_key(proto: conf::Proto, vip: SocketAddrV4) -> u64 {
    u64::from(proto.number()) << 48 | u64::from(vip.ip().to_bits()) << 16 | u64::from(vip.port())
}

/// A service and the slot workers keep their state for it at.
#[derive(Debug, Clone)]
pub(crate) struct Slotted {
    pub slot: usize,
    pub service: Arc<Service>,
}

/// What one snapshot changed: the [`vip_key`]s of the services it added, rebuilt or removed.
#[derive(Debug, Clone)]
struct Step {
    /// The snapshot's id, and the id of the snapshot it was made from.
    id: u64,
    parent: u64,
    keys: Arc<[u64]>,
}

/// The services of one snapshot (see the module documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceTable {
    by_vip: OrdMap<u64, Slotted>,
    /// Slots below `slots` that no service holds.
    free: Vector<usize>,
    /// One more than the highest slot ever given out.
    slots: usize,
    /// How many services use each FULLNAT local address.
    laddr_users: OrdMap<Ipv4Addr, usize>,
    /// The keys of `laddr_users`, sorted.
    laddrs: Arc<[Ipv4Addr]>,
    /// How many services use each VIP with each mode.
    vip_users: OrdMap<(Ipv4Addr, u8), usize>,
    /// The keys of `vip_users`, sorted.
    vips: Arc<[(Ipv4Addr, conf::VipMode)]>,
    /// The steps of the last snapshots, oldest first.
    history: Vector<Step>,
    /// The keys changed since the table was sealed ([`ServiceTable::seal`]).
    changed: Vec<u64>,
    /// Workers counted in each new service's traffic counters.
    workers: usize,
}

impl ServiceTable {
    /// No service, for `workers` workers.
    pub fn new(workers: usize) -> ServiceTable {
        ServiceTable {
            workers,
            ..ServiceTable::default()
        }
    }

    /// The service for `proto` and `vip`, with its slot.
    #[inline]
    pub fn get(&self, proto: conf::Proto, vip: SocketAddrV4) -> Option<&Slotted> {
        self.by_key(vip_key(proto, vip))
    }

    /// The service of key `key` (a [`vip_key`]).
    #[inline]
    pub fn by_key(&self, key: u64) -> Option<&Slotted> {
        self.by_vip.get(&key)
    }

    /// Whether some service of either protocol has the virtual address `ip`.
    pub fn has_vip(&self, ip: Ipv4Addr) -> bool {
        [conf::Proto::Tcp, conf::Proto::Udp]
            .into_iter()
            .any(|proto| {
                let key = |port| vip_key(proto, SocketAddrV4::new(ip, port));
                self.by_vip.range(key(0)..=key(u16::MAX)).next().is_some()
            })
    }

    /// Every service with its key, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, &Slotted)> + '_ {
        self.by_vip.iter().map(|(k, s)| (*k, s))
    }

    /// One more than the highest slot in use (or used before): the length a worker's
    /// per-slot state needs.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Every FULLNAT local address of every service, sorted, each once.
    pub fn laddrs(&self) -> &Arc<[Ipv4Addr]> {
        &self.laddrs
    }

    /// Every VIP of every service with its mode, sorted, each pair once.
    pub fn vips(&self) -> &Arc<[(Ipv4Addr, conf::VipMode)]> {
        &self.vips
    }

    /// Builds `config` into the table: a new service takes a free slot; an existing one keeps
    /// its slot and, rebuilt from the previous one, its counters and unchanged real servers
    /// (or stays as it is if its configuration did not change).
    pub fn put(&mut self, config: &conf::Service) -> Result<(), BuildError> {
        let failed = |e: BuildError| {
            BuildError(format!(
                "service {} {}: {e}",
                config.proto.as_str(),
                config.vip
            ))
        };
        let SocketAddr::V4(vip) = config.vip else {
            return Err(failed(BuildError(service::IPV6_NOT_FORWARDED.to_string())));
        };
        let key = vip_key(config.proto, vip);
        let old = self.by_vip.get(&key);
        if old.is_some_and(|o| o.service.config == *config) {
            return Ok(());
        }
        let built = service::build(config, old.map(|o| o.service.as_ref()), self.workers)
            .map_err(failed)?;
        let slot = match old {
            Some(o) => {
                let slot = o.slot;
                let gone = o.service.laddrs.clone();
                let vip = (*o.service.vip.ip(), o.service.config.vip_mode);
                self.count_laddrs(&gone, false);
                self.count_vip(vip, false);
                slot
            }
            None => self.free.pop_back().unwrap_or_else(|| {
                self.slots += 1;
                self.slots - 1
            }),
        };
        self.count_laddrs(&built.laddrs, true);
        self.count_vip((*vip.ip(), config.vip_mode), true);
        let service = Arc::new(built);
        self.by_vip.insert(key, Slotted { slot, service });
        self.changed.push(key);
        Ok(())
    }

    /// Removes the service for `proto` and `vip`, if there is one; its slot becomes free.
    pub fn remove(&mut self, proto: conf::Proto, vip: SocketAddrV4) {
        let key = vip_key(proto, vip);
        if let Some(old) = self.by_vip.remove(&key) {
            // Its real servers go with it, as `ip_vs_del_service` unlinks every destination:
            // their connections live out their timeouts, or end at their next packet with
            // `expire_nodest_conn`, as a removed real server's do.
            for real in &old.service.reals {
                real.removed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            self.count_laddrs(&old.service.laddrs, false);
            self.count_vip((*old.service.vip.ip(), old.service.config.vip_mode), false);
            self.free.push_back(old.slot);
            self.changed.push(key);
        }
    }

    /// Removes every service whose key `keep` refuses.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let gone: Vec<(conf::Proto, SocketAddrV4)> = self
            .by_vip
            .iter()
            .filter(|(k, _)| !keep(**k))
            .map(|(_, s)| (s.service.proto, s.service.vip))
            .collect();
        for (proto, vip) in gone {
            self.remove(proto, vip);
        }
    }

    fn count_laddrs(&mut self, laddrs: &[Ipv4Addr], add: bool) {
        let mut set_changed = false;
        for &a in laddrs {
            let users = self.laddr_users.get(&a).copied().unwrap_or(0);
            let users = if add {
                users + 1
            } else {
                users.saturating_sub(1)
            };
            if users == 0 {
                set_changed |= self.laddr_users.remove(&a).is_some();
            } else {
                set_changed |= self.laddr_users.insert(a, users).is_none();
            }
        }
        if set_changed {
            self.laddrs = self.laddr_users.keys().copied().collect();
        }
    }

    fn count_vip(&mut self, (ip, mode): (Ipv4Addr, conf::VipMode), add: bool) {
        let code = |mode| match mode {
            conf::VipMode::Static => 0,
            conf::VipMode::Kernel => 1,
            conf::VipMode::Routed => 2,
        };
        let key = (ip, code(mode));
        let users = self.vip_users.get(&key).copied().unwrap_or(0);
        let users = if add {
            users + 1
        } else {
            users.saturating_sub(1)
        };
        let set_changed = if users == 0 {
            self.vip_users.remove(&key).is_some()
        } else {
            self.vip_users.insert(key, users).is_none()
        };
        if set_changed {
            let modes = [
                conf::VipMode::Static,
                conf::VipMode::Kernel,
                conf::VipMode::Routed,
            ];
            self.vips = self
                .vip_users
                .keys()
                .filter_map(|&(ip, m)| modes.get(usize::from(m)).map(|&mode| (ip, mode)))
                .collect();
        }
    }

    /// Ends the changes of snapshot `id`, made from snapshot `parent` (0: from nothing), and
    /// records them in the history.
    pub fn seal(&mut self, parent: u64, id: u64) {
        let keys = std::mem::take(&mut self.changed);
        self.history.push_back(Step {
            id,
            parent,
            keys: keys.into(),
        });
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    /// The keys of the services that changed from snapshot `earlier` to this table's snapshot
    /// `id` (each at most once), or `None` when the history does not reach back to `earlier`
    /// (then every service must be compared).
    pub fn changed_since(&self, id: u64, earlier: u64) -> Option<Vec<u64>> {
        let mut keys = Vec::new();
        let mut at = id;
        for step in self.history.iter().rev() {
            if at == earlier {
                break;
            }
            if step.id != at {
                return None;
            }
            keys.extend_from_slice(&step.keys);
            at = step.parent;
        }
        if at != earlier {
            return None;
        }
        keys.sort_unstable();
        keys.dedup();
        Some(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(port: u16, laddrs: &[&str]) -> conf::Service {
        let laddrs: Vec<String> = laddrs.iter().map(|a| format!("\"{a}\"")).collect();
        let text = format!(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\", \"10.0.0.200/32\", \"10.0.0.201/32\"]\n\
             [[service]]\nvip = \"10.0.0.100:{port}\"\nproto = \"tcp\"\nladdrs = [{}]\n\
             [[service.real]]\naddr = \"10.0.0.11:80\"\nmode = \"fullnat\"\n",
            laddrs.join(", ")
        );
        conf::Config::parse(&text, "t.toml")
            .expect("valid")
            .services
            .remove(0)
    }

    fn key(port: u16) -> u64 {
        vip_key(
            conf::Proto::Tcp,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), port),
        )
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    /// An IPv6 service is refused by name, in `put` and so in `Snapshot::build` and
    /// `update`, and leaves the table as it was.
    #[test]
    fn ipv6_services_are_refused_at_the_boundary() {
        let text = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\", \"2001:db8::1/64\", \"2001:db8::100/128\"]\n\
             [[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n\
             [[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n\
             [[service.real]]\naddr = \"[2001:db8::11]:80\"\nmode = \"nat\"\n";
        let config = conf::Config::parse(text, "t.toml").expect("valid");
        let v6 = &config.services[1];
        let want =
            "service tcp [2001:db8::100]:80: IPv6 services are not forwarded by the data path yet (issue 14)";
        let mut t = ServiceTable::new(1);
        t.put(&config.services[0]).unwrap();
        assert_eq!(t.put(v6).unwrap_err().to_string(), want);
        assert_eq!(t.by_vip.len(), 1);
        assert_eq!(
            crate::snapshot::Snapshot::build(&config, &[[2, 0, 0, 0, 0, 1]], None, 1)
                .unwrap_err()
                .to_string(),
            want
        );
        let v4_only = conf::Config {
            services: config.services[..1].to_vec(),
            ..config.clone()
        };
        let s = crate::snapshot::Snapshot::build(&v4_only, &[[2, 0, 0, 0, 0, 1]], None, 1).unwrap();
        let put = crate::snapshot::Change::PutService(v6);
        assert_eq!(s.update(&[put]).unwrap_err().to_string(), want);
    }

    #[test]
    fn slots_stay_and_are_reused_after_removal() {
        let mut t = ServiceTable::new(1);
        for port in [80, 81, 82] {
            t.put(&service(port, &[])).unwrap();
        }
        let slot = |t: &ServiceTable, port| t.by_key(key(port)).map(|s| s.slot);
        assert_eq!(
            [slot(&t, 80), slot(&t, 81), slot(&t, 82)],
            [Some(0), Some(1), Some(2)]
        );
        let before = Arc::clone(&t.by_key(key(82)).unwrap().service);
        t.put(&service(82, &[])).unwrap();
        assert!(
            Arc::ptr_eq(&before, &t.by_key(key(82)).unwrap().service),
            "the same configuration keeps the service"
        );
        t.put(&service(82, &["10.0.0.200"])).unwrap();
        assert_eq!(slot(&t, 82), Some(2), "a rebuilt service keeps its slot");
        t.remove(conf::Proto::Tcp, SocketAddrV4::new(ip("10.0.0.100"), 81));
        t.put(&service(90, &[])).unwrap();
        assert_eq!((slot(&t, 81), slot(&t, 90), t.slots()), (None, Some(1), 3));
    }

    #[test]
    fn a_removed_service_takes_its_real_servers_with_it() {
        use std::sync::atomic::Ordering::Relaxed;
        let mut t = ServiceTable::new(1);
        t.put(&service(80, &[])).unwrap();
        t.put(&service(81, &[])).unwrap();
        let real =
            |t: &ServiceTable, port| Arc::clone(&t.by_key(key(port)).unwrap().service.reals[0]);
        let (gone, kept) = (real(&t, 80), real(&t, 81));
        t.remove(conf::Proto::Tcp, SocketAddrV4::new(ip("10.0.0.100"), 80));
        assert!(
            gone.removed.load(Relaxed),
            "its connections see a removed real server"
        );
        assert!(!kept.removed.load(Relaxed));
    }

    #[test]
    fn local_addresses_are_counted_per_service() {
        let mut t = ServiceTable::new(1);
        t.put(&service(80, &["10.0.0.201", "10.0.0.200"])).unwrap();
        t.put(&service(81, &["10.0.0.200"])).unwrap();
        assert_eq!(&t.laddrs()[..], [ip("10.0.0.200"), ip("10.0.0.201")]);
        let vip = |port| SocketAddrV4::new(ip("10.0.0.100"), port);
        t.remove(conf::Proto::Tcp, vip(80));
        assert_eq!(&t.laddrs()[..], [ip("10.0.0.200")], "81 still uses .200");
        let kept = Arc::clone(t.laddrs());
        t.put(&service(82, &[])).unwrap();
        assert!(Arc::ptr_eq(&kept, t.laddrs()), "unchanged set: not rebuilt");
        t.put(&service(81, &[])).unwrap();
        assert!(t.laddrs().is_empty());
        assert!(t.has_vip(ip("10.0.0.100")) && !t.has_vip(ip("10.0.0.101")));
    }

    #[test]
    fn history_names_what_changed_since_an_earlier_snapshot() {
        let mut t = ServiceTable::new(1);
        t.put(&service(80, &[])).unwrap();
        t.put(&service(81, &[])).unwrap();
        t.seal(0, 1);
        t.put(&service(82, &[])).unwrap();
        t.seal(1, 2);
        t.put(&service(81, &["10.0.0.200"])).unwrap();
        t.put(&service(82, &["10.0.0.200"])).unwrap();
        t.seal(2, 3);
        assert_eq!(t.changed_since(3, 3), Some(vec![]));
        assert_eq!(t.changed_since(3, 2), Some(vec![key(81), key(82)]));
        assert_eq!(t.changed_since(3, 1), Some(vec![key(81), key(82)]));
        assert_eq!(t.changed_since(3, 0), Some(vec![key(80), key(81), key(82)]));
        assert_eq!(t.changed_since(3, 7), None, "not an ancestor");
        for id in 4..4 + HISTORY as u64 {
            t.seal(id - 1, id);
        }
        let last = 3 + HISTORY as u64;
        assert_eq!(t.changed_since(last, 4), Some(vec![]));
        assert_eq!(t.changed_since(last, 2), None, "beyond the history");
    }
}
