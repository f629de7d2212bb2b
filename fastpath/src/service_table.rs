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
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
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

/// Set in the key of an IPv6 service. An IPv6 address does not fit a word with its port and
/// protocol, so the table hands each IPv6 service a number of its own ([`ServiceTable::put`]),
/// kept while the service exists; [`vip_key`]s of IPv4 services use the low 56 bits.
const V6_KEY: u64 = 1 << 63;

/// An IPv6 VIP as a key: address and port only (flow information and scope are not part of
/// a service's identity).
fn strip(vip: SocketAddrV6) -> SocketAddrV6 {
    SocketAddrV6::new(*vip.ip(), vip.port(), 0, 0)
}

/// Counts one more (`add`) or one less user of `ip` with `mode` in `users`; the new sorted
/// list of (address, mode) pairs when the set of pairs changed.
fn count_vip_in<A: Ord + Copy>(
    users: &mut OrdMap<(A, u8), usize>,
    (ip, mode): (A, conf::VipMode),
    add: bool,
) -> Option<Arc<[(A, conf::VipMode)]>> {
    let modes = [
        conf::VipMode::Static,
        conf::VipMode::Kernel,
        conf::VipMode::Routed,
    ];
    let code = modes.iter().position(|m| *m == mode).unwrap_or(0) as u8;
    let key = (ip, code);
    let count = users.get(&key).copied().unwrap_or(0);
    let count = if add {
        count + 1
    } else {
        count.saturating_sub(1)
    };
    let set_changed = if count == 0 {
        users.remove(&key).is_some()
    } else {
        users.insert(key, count).is_none()
    };
    set_changed.then(|| {
        users
            .keys()
            .filter_map(|&(ip, m)| modes.get(usize::from(m)).map(|&mode| (ip, mode)))
            .collect()
    })
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
    /// The keys of the IPv6 services (`V6_KEY` and a number).
    keys6: OrdMap<(u8, SocketAddrV6), u64>,
    /// The number of the last IPv6 key handed out.
    last6: u64,
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
    /// [`ServiceTable::vip_users`] and [`ServiceTable::vips`] for IPv6.
    vip6_users: OrdMap<(Ipv6Addr, u8), usize>,
    vips6: Arc<[(Ipv6Addr, conf::VipMode)]>,
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

    /// The IPv6 service for `proto` and `vip`, with its slot.
    #[inline]
    pub fn get6(&self, proto: conf::Proto, vip: SocketAddrV6) -> Option<&Slotted> {
        let key = self.keys6.get(&(proto.number(), strip(vip)))?;
        self.by_key(*key)
    }

    /// The key of the service for `proto` and `vip`, if there is one (an IPv4 service's is
    /// its [`vip_key`] whether it exists or not).
    pub fn key_of(&self, proto: conf::Proto, vip: SocketAddr) -> Option<u64> {
        match vip {
            SocketAddr::V4(vip) => Some(vip_key(proto, vip)),
            SocketAddr::V6(vip) => self.keys6.get(&(proto.number(), strip(vip))).copied(),
        }
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

    /// [`ServiceTable::vips`] for IPv6.
    pub fn vips6(&self) -> &Arc<[(Ipv6Addr, conf::VipMode)]> {
        &self.vips6
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
        let key = self.key_of(config.proto, config.vip);
        let old = key.and_then(|key| self.by_vip.get(&key));
        if old.is_some_and(|o| o.service.config == *config) {
            return Ok(());
        }
        let built = service::build(config, old.map(|o| o.service.as_ref()), self.workers)
            .map_err(failed)?;
        let slot = match old {
            Some(o) => {
                let slot = o.slot;
                let gone = o.service.laddrs.clone();
                let vip = (o.service.vip.ip(), o.service.config.vip_mode);
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
        self.count_vip((config.vip.ip(), config.vip_mode), true);
        let key = match (key, config.vip) {
            (Some(key), _) => key,
            (None, SocketAddr::V4(vip)) => vip_key(config.proto, vip),
            (None, SocketAddr::V6(vip)) => {
                self.last6 += 1;
                let key = V6_KEY | self.last6;
                self.keys6.insert((config.proto.number(), strip(vip)), key);
                key
            }
        };
        let service = Arc::new(built);
        self.by_vip.insert(key, Slotted { slot, service });
        self.changed.push(key);
        Ok(())
    }

    /// Removes the service for `proto` and `vip`, if there is one; its slot becomes free.
    pub fn remove(&mut self, proto: conf::Proto, vip: SocketAddr) {
        let Some(key) = self.key_of(proto, vip) else {
            return;
        };
        if let SocketAddr::V6(vip) = vip {
            self.keys6.remove(&(proto.number(), strip(vip)));
        }
        if let Some(old) = self.by_vip.remove(&key) {
            // Its real servers go with it, as `ip_vs_del_service` unlinks every destination:
            // their connections live out their timeouts, or end at their next packet with
            // `expire_nodest_conn`, as a removed real server's do.
            for real in &old.service.reals {
                real.removed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            self.count_laddrs(&old.service.laddrs, false);
            self.count_vip((old.service.vip.ip(), old.service.config.vip_mode), false);
            self.free.push_back(old.slot);
            self.changed.push(key);
        }
    }

    /// Removes every service whose key `keep` refuses.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let gone: Vec<(conf::Proto, SocketAddr)> = self
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

    fn count_vip(&mut self, (ip, mode): (std::net::IpAddr, conf::VipMode), add: bool) {
        match ip {
            std::net::IpAddr::V4(ip) => {
                if let Some(vips) = count_vip_in(&mut self.vip_users, (ip, mode), add) {
                    self.vips = vips;
                }
            }
            std::net::IpAddr::V6(ip) => {
                if let Some(vips) = count_vip_in(&mut self.vip6_users, (ip, mode), add) {
                    self.vips6 = vips;
                }
            }
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

    /// IPv6 services get keys of their own, kept while they exist (a rebuild keeps its key
    /// and slot), are found by protocol and VIP, listed after the IPv4 ones, and leave with
    /// `remove`; what the data path does not forward is refused by name, the table unchanged.
    #[test]
    fn ipv6_services_get_keys_of_their_own() {
        let text = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\", \"2001:db8::1/64\", \"2001:db8::100/128\"]\n\
             [[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n\
             [[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n\
             [[service.real]]\naddr = \"[2001:db8::11]:80\"\nmode = \"nat\"\n\
             [[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"udp\"\n\
             [[service]]\nvip = \"[2001:db8::100]:81\"\nproto = \"tcp\"\n\
             [[service.real]]\naddr = \"2001:db8::12\"\nmode = \"tun\"\ntunnel = { type = \"gre\" }\n";
        let config = conf::Config::parse(text, "t.toml").expect("valid");
        let mut t = ServiceTable::new(1);
        for s in &config.services[..3] {
            t.put(s).unwrap();
        }
        let vip6: SocketAddrV6 = "[2001:db8::100]:80".parse().unwrap();
        let tcp6 = t.get6(conf::Proto::Tcp, vip6).expect("tcp service");
        let udp6 = t.get6(conf::Proto::Udp, vip6).expect("udp service");
        assert_ne!(tcp6.slot, udp6.slot);
        let (tcp_slot, tcp_key) = (tcp6.slot, t.key_of(conf::Proto::Tcp, vip6.into()));
        assert!(tcp_key.is_some_and(|k| k & V6_KEY != 0));
        let order: Vec<String> = t.iter().map(|(_, s)| s.service.vip.to_string()).collect();
        assert_eq!(
            order,
            ["10.0.0.100:80", "[2001:db8::100]:80", "[2001:db8::100]:80"]
        );
        assert_eq!(
            t.vips6().to_vec(),
            [(vip6.ip().to_owned(), conf::VipMode::Static)]
        );
        // A rebuild (a real's weight) keeps the key and the slot.
        let mut edited = config.services[1].clone();
        edited.reals[0].weight = 7;
        t.put(&edited).unwrap();
        assert_eq!(t.key_of(conf::Proto::Tcp, vip6.into()), tcp_key);
        assert_eq!(t.get6(conf::Proto::Tcp, vip6).unwrap().slot, tcp_slot);
        assert_eq!(
            t.put(&config.services[3]).unwrap_err().to_string(),
            "service tcp [2001:db8::100]:81: GUE and GRE tunnels to IPv6 reals are not forwarded yet; IPv6-in-IPv6 is (issue 14)"
        );
        assert_eq!(t.by_vip.len(), 3);
        t.remove(conf::Proto::Tcp, vip6.into());
        assert!(t.get6(conf::Proto::Tcp, vip6).is_none());
        assert_eq!(t.key_of(conf::Proto::Tcp, vip6.into()), None);
        assert_eq!(t.vips6().len(), 1, "the udp service still has the VIP");
        t.remove(conf::Proto::Udp, vip6.into());
        assert!(t.vips6().is_empty());
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
        t.remove(
            conf::Proto::Tcp,
            SocketAddrV4::new(ip("10.0.0.100"), 81).into(),
        );
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
        t.remove(
            conf::Proto::Tcp,
            SocketAddrV4::new(ip("10.0.0.100"), 80).into(),
        );
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
        t.remove(conf::Proto::Tcp, vip(80).into());
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
