//! The immutable view of the configuration that workers read. The control thread builds a new
//! one for every change and publishes it; workers pick it up between bursts and never see a
//! half-applied change.
//!
//! A whole configuration is built with [`Snapshot::build`] (start, SIGHUP); one control
//! request makes the next snapshot from the published one with [`Snapshot::update`], which
//! rebuilds only the services the request changed and shares the others (see
//! [`crate::service_table`]), so that its cost does not grow with the number of services.

use crate::l2::route::{self, Hop};
use crate::service::{self, Service};
use crate::service_table::ServiceTable;
use crate::wire::ether::EthernetAddress;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// One port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    /// The port's MAC address (source of every frame rvs sends on it).
    pub mac: EthernetAddress,
    /// Addresses the balancer owns on this link, with their prefix lengths (answers ARP and
    /// ICMP echo for them).
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses the balancer owns on this link, with their prefix lengths (answers
    /// neighbour solicitations and ICMPv6 echo for them).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// The link's IP MTU: the largest IPv4 packet rvs sends on it whole (larger ones are
    /// answered with "fragmentation needed" or fragmented).
    pub mtu: u16,
    /// Whether the port has a kernel twin (`[[port]] exception`): what the fast path does not
    /// handle for the host goes to it.
    pub twin: bool,
}

impl PortView {
    /// The address rvs speaks from on this link towards `peer`: the owned address whose
    /// subnet contains `peer`, else the first one that is not a /32, else the first.
    pub fn source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        let on_subnet = |(a, len): &&(Ipv4Addr, u8)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
            *len < 32 && u32::from(*a) & mask == u32::from(peer) & mask
        };
        self.addrs
            .iter()
            .find(on_subnet)
            .or_else(|| self.addrs.iter().find(|(_, len)| *len < 32))
            .or_else(|| self.addrs.first())
            .map(|(a, _)| *a)
    }
}

impl PortView {
    /// The IPv6 address rvs speaks from on this link towards `peer` (neighbour
    /// solicitations): for a link-local peer the port's link-local address, else the owned
    /// address whose prefix contains `peer`, else the first global one, else the first.
    pub fn source6_for(&self, peer: Ipv6Addr) -> Option<Ipv6Addr> {
        use crate::wire::ipv6::is_link_local;
        let on_prefix = |(a, len): &&(Ipv6Addr, u8)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
            *len < 128 && a.to_bits() & mask == peer.to_bits() & mask
        };
        let link_local = |(a, _): &&(Ipv6Addr, u8)| is_link_local(a);
        let found = if is_link_local(&peer) {
            self.addrs6.iter().find(link_local)
        } else {
            self.addrs6.iter().find(on_prefix)
        };
        found
            .or_else(|| self.addrs6.iter().find(|a| !link_local(a)))
            .or_else(|| self.addrs6.first())
            .map(|(a, _)| *a)
    }
}

/// A map of IPv4 addresses to a small value, asked about for every packet ("is the
/// destination ours, and what is it?"): open addressing over a power-of-two array at most half
/// full, a multiplicative hash, linear probing. A lookup is one multiply and usually one
/// comparison, however many addresses.
#[derive(Debug, Default)]
struct AddrSet {
    /// `value << 40 | 1 << 32 | address` per member, 0 for an empty slot.
    slots: Vec<u64>,
    /// `slots.len() - 1`.
    mask: usize,
}

/// The bits of a slot that name its address (and that it is taken).
const ADDR_BITS: u64 = (1 << 33) - 1;

impl AddrSet {
    /// The set of `addrs`, each with the value 0.
    fn new(addrs: impl Iterator<Item = Ipv4Addr>) -> AddrSet {
        AddrSet::with_values(addrs.map(|a| (a, 0)))
    }

    /// The map of `entries`; an address given twice keeps the larger value.
    fn with_values(entries: impl Iterator<Item = (Ipv4Addr, u8)>) -> AddrSet {
        let entries: Vec<(Ipv4Addr, u8)> = entries.collect();
        let len = (entries.len() * 2).next_power_of_two().max(4);
        let mut set = AddrSet {
            slots: vec![0; len],
            mask: len - 1,
        };
        for (ip, value) in entries {
            let mut i = set.home(ip);
            while let Some(slot) = set.slots.get_mut(i) {
                if *slot == 0 || *slot & ADDR_BITS == Self::entry(ip) {
                    let value = value.max((*slot >> 40) as u8);
                    *slot = u64::from(value) << 40 | Self::entry(ip);
                    break;
                }
                i = (i + 1) & set.mask;
            }
        }
        set
    }

    fn entry(ip: Ipv4Addr) -> u64 {
        1 << 32 | u64::from(ip.to_bits())
    }

    /// The slot where the search for `ip` starts.
    fn home(&self, ip: Ipv4Addr) -> usize {
        (u64::from(ip.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    /// The value of `ip`, if it is a member.
    #[inline]
    fn get(&self, ip: Ipv4Addr) -> Option<u8> {
        let entry = Self::entry(ip);
        let mut i = self.home(ip);
        // At most half full, so an empty slot ends every search.
        while let Some(&slot) = self.slots.get(i) {
            if slot & ADDR_BITS == entry {
                return Some((slot >> 40) as u8);
            }
            if slot == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    #[inline]
    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.get(ip).is_some()
    }
}

/// What an address the balancer owns is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Owned {
    /// The host's own (a DIP, or an address the kernel twin holds that no service uses):
    /// TCP, UDP and most ICMP to it belong to the kernel.
    Host = 1,
    /// A virtual address (VIP) or FULLNAT local address: served by the fast path only;
    /// traffic that matches no service nor connection is dropped, never punted.
    Service = 2,
}

/// The addresses [`Snapshot::is_martian_source`] finds in its set, besides the VIPs served:
/// every address of a port and FULLNAT local address, and the network and broadcast address of each connected subnet
/// (prefixes up to /30; a /31 has neither, RFC 3021).
fn martian_addrs<'a>(
    ports: &'a [PortView],
    laddrs: &'a [Ipv4Addr],
) -> impl Iterator<Item = Ipv4Addr> + 'a {
    let subnet_ends = ports
        .iter()
        .flat_map(|p| p.addrs.iter())
        .flat_map(|&(a, len)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let network = a.to_bits() & mask;
            let ends = [
                Ipv4Addr::from_bits(network),
                Ipv4Addr::from_bits(network | !mask),
            ];
            ends.into_iter().filter(move |_| len < 31)
        });
    ports
        .iter()
        .flat_map(|p| p.addrs.iter().map(|(a, _)| *a))
        .chain(laddrs.iter().copied())
        .chain(subnet_ends)
}

/// The address sets a snapshot derives from its ports and its services' VIPs and local
/// addresses (see the fields of [`Snapshot`]).
struct Addresses {
    owned: Arc<AddrSet>,
    owned6: Arc<hashbrown::HashMap<Ipv6Addr, Owned>>,
    routed: Arc<AddrSet>,
    unheld: Arc<AddrSet>,
    martians: Arc<AddrSet>,
}

impl Addresses {
    fn new(ports: &[PortView], services: &ServiceTable) -> Addresses {
        let on_ports = |ip: Ipv4Addr| ports.iter().any(|p| p.addrs.iter().any(|(a, _)| *a == ip));
        let vips = |mode: conf::VipMode| {
            services
                .vips()
                .iter()
                .filter(move |(_, m)| *m == mode)
                .map(|(ip, _)| *ip)
        };
        let routed = AddrSet::new(vips(conf::VipMode::Routed));
        let unheld = AddrSet::new(vips(conf::VipMode::Kernel).filter(|&vip| !on_ports(vip)));
        let served_vips: Vec<Ipv4Addr> = services
            .vips()
            .iter()
            .map(|(ip, _)| *ip)
            .filter(|&vip| !unheld.contains(vip))
            .collect();
        let laddrs = services.laddrs();
        let owned = AddrSet::with_values(
            ports
                .iter()
                .flat_map(|p| p.addrs.iter().map(|(a, _)| (*a, Owned::Host as u8)))
                .chain(served_vips.iter().map(|&vip| (vip, Owned::Service as u8)))
                .chain(laddrs.iter().map(|&lip| (lip, Owned::Service as u8))),
        );
        let martians = AddrSet::new(martian_addrs(ports, laddrs).chain(served_vips));
        // A VIP wins over the same address on a port (a static VIP is one), as for IPv4.
        let mut owned6: hashbrown::HashMap<Ipv6Addr, Owned> = ports
            .iter()
            .flat_map(|p| p.addrs6.iter().map(|(a, _)| (*a, Owned::Host)))
            .collect();
        for (vip, _) in services.vips6().iter() {
            owned6.insert(*vip, Owned::Service);
        }
        Addresses {
            owned: Arc::new(owned),
            owned6: Arc::new(owned6),
            routed: Arc::new(routed),
            unheld: Arc::new(unheld),
            martians: Arc::new(martians),
        }
    }
}

/// Everything a worker needs to process packets.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Ports, indexed like `Verdict::Tx::port`.
    pub ports: Vec<PortView>,
    /// Routes, on-link ones first derived from the ports' subnets.
    pub routes: route::Table,
    /// Static neighbours (port index, address, MAC).
    pub neighbors: Vec<(usize, Ipv4Addr, EthernetAddress)>,
    /// IPv6 routes, the ports' on-link prefixes included.
    pub routes6: route::Table<Ipv6Addr>,
    /// Static IPv6 neighbours (port index, address, MAC).
    pub neighbors6: Vec<(usize, Ipv6Addr, EthernetAddress)>,
    /// Virtual services, each at a slot where a worker keeps its scheduler and local address
    /// pool for it; also every FULLNAT local address and VIP.
    services: ServiceTable,
    /// Every address owned on any port, every routed VIP and every local address, with what
    /// it is for: what [`Snapshot::owned`] and [`Snapshot::owns`] search. This and the sets
    /// below are shared with the next snapshot when its addresses are the same.
    owned: Arc<AddrSet>,
    /// Every IPv6 address owned on any port, with what it is for ([`Snapshot::owned6`]).
    owned6: Arc<hashbrown::HashMap<Ipv6Addr, Owned>>,
    /// VIPs of `routed` services: served, but never answered for with ARP.
    routed: Arc<AddrSet>,
    /// VIPs of `kernel` services that no kernel twin holds now: their traffic is dropped
    /// (`vip_not_owned`), as a backup director's kernel drops it.
    unheld: Arc<AddrSet>,
    /// The sources [`Snapshot::is_martian_source`] looks up besides the fixed ranges: the
    /// balancer's own addresses and the network and broadcast addresses of its subnets.
    martians: Arc<AddrSet>,
    /// Connection timeouts (`[timeouts]`, `ipvsadm --set`).
    pub timeouts: crate::conn::Timeouts,
    /// Drop a connection's packets at once when its real server was removed.
    pub expire_nodest_conn: bool,
    /// The local ports of FULLNAT connections (`[dataplane] laddr_ports`).
    pub laddr_ports: crate::laddr::PortRange,
    /// Connection sync: the daemons running and their rules ([`Snapshot::with_sync`]).
    pub sync: SyncState,
    /// The smallest port MTU (0 without ports): a packet no longer than this fits every
    /// link, so the forwarding stage looks for the egress MTU only of longer ones.
    min_mtu: u16,
    /// Unique to this snapshot among those built by this process (see [`Snapshot::id`]).
    id: u64,
}

/// What the workers do for connection sync (`rvsadm --start-daemon`, `[sync]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncState {
    /// A master daemon runs: workers record the connections to send.
    pub master: bool,
    /// A backup daemon runs with `backup_only`: virtual services are not served.
    pub backup_only: bool,
    /// `sync_threshold` and `sync_period`.
    pub rules: crate::conn::SyncRules,
}

/// The id of the next snapshot built.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One change [`Snapshot::update`] makes.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Add this service, or rebuild it if it exists (keeping its counters and the real
    /// servers that stay, as [`Snapshot::build`] does).
    PutService(&'a conf::Service),
    /// Remove the service of this protocol and VIP (nothing if there is none).
    RemoveService(conf::Proto, SocketAddr),
    /// New connection timeouts.
    Timeouts(conf::Timeouts),
}

impl Snapshot {
    /// The snapshot of `config` for `workers` workers, with each port's MAC as the device
    /// reports it (`macs` in config port order). Services and real servers that also exist
    /// in `previous` keep their counters, and services whose configuration is the same are
    /// shared with it (so workers keep their scheduler state for them).
    pub fn build(
        config: &conf::Config,
        macs: &[[u8; 6]],
        previous: Option<&Snapshot>,
        workers: usize,
    ) -> Result<Snapshot, service::BuildError> {
        let index_of = |id: u16| config.ports.iter().position(|p| p.id == id);
        let ports: Vec<PortView> = config
            .ports
            .iter()
            .zip(macs)
            .map(|(p, &mac)| PortView {
                mac: EthernetAddress(mac),
                addrs: p
                    .addrs
                    .iter()
                    .map(|net| (net.addr, net.prefix_len))
                    .collect(),
                addrs6: p
                    .addrs6
                    .iter()
                    .map(|net| (net.addr, net.prefix_len))
                    .collect(),
                mtu: p.mtu,
                twin: p.exception.is_some(),
            })
            .collect();
        let mut routes = route::Table::default();
        for r in &config.routes {
            if let Some(port) = index_of(r.port) {
                routes.insert(r.dst.addr, r.dst.prefix_len, Hop { port, via: r.via });
            }
        }
        // Connected subnets win over configured routes of the same prefix, as in Linux.
        for (port, p) in config.ports.iter().enumerate() {
            for net in p.addrs.iter().filter(|n| n.prefix_len < 32) {
                routes.insert(net.network(), net.prefix_len, Hop { port, via: None });
            }
        }
        let neighbors = config
            .neighbors
            .iter()
            .filter_map(|n| index_of(n.port).map(|port| (port, n.ip, EthernetAddress(n.mac))))
            .collect();
        let mut routes6 = route::Table::default();
        for r in &config.routes6 {
            if let Some(port) = index_of(r.port) {
                routes6.insert(r.dst.addr, r.dst.prefix_len, Hop { port, via: r.via });
            }
        }
        for (port, p) in config.ports.iter().enumerate() {
            for net in p.addrs6.iter().filter(|n| n.prefix_len < 128) {
                routes6.insert(net.network(), net.prefix_len, Hop { port, via: None });
            }
        }
        let neighbors6 = config
            .neighbors6
            .iter()
            .filter_map(|n| index_of(n.port).map(|port| (port, n.ip, EthernetAddress(n.mac))))
            .collect();
        let mut services =
            previous.map_or_else(|| ServiceTable::new(workers), |p| p.services.clone());
        let wanted: hashbrown::HashSet<u64> = config
            .services
            .iter()
            // A new IPv6 service has no key yet: `put` hands it one.
            .filter_map(|s| services.key_of(s.proto, s.vip))
            .collect();
        services.retain(|key| wanted.contains(&key));
        for s in &config.services {
            services.put(s)?;
        }
        let id = next_id();
        services.seal(previous.map_or(0, |p| p.id), id);
        let Addresses {
            owned,
            owned6,
            routed,
            unheld,
            martians,
        } = Addresses::new(&ports, &services);
        let min_mtu = ports.iter().map(|p| p.mtu).min().unwrap_or(0);
        Ok(Snapshot {
            min_mtu,
            owned,
            owned6,
            routed,
            unheld,
            martians,
            ports,
            routes,
            neighbors,
            routes6,
            neighbors6,
            services,
            timeouts: config.timeouts.into(),
            expire_nodest_conn: config.dataplane.expire_nodest_conn,
            laddr_ports: crate::laddr::PortRange {
                min: config.dataplane.laddr_ports.0,
                max: config.dataplane.laddr_ports.1,
            },
            sync: previous.map_or_else(SyncState::default, |p| p.sync),
            id,
        })
    }

    /// The snapshot that follows this one after `changes`: only the services they name are
    /// built, everything else is shared with this snapshot, so the cost does not depend on
    /// the number of services. All or nothing: an error leaves no trace in this snapshot.
    pub fn update(&self, changes: &[Change<'_>]) -> Result<Snapshot, service::BuildError> {
        let mut services = self.services.clone();
        let mut timeouts = self.timeouts;
        for change in changes {
            match *change {
                Change::PutService(s) => services.put(s)?,
                Change::RemoveService(proto, vip) => services.remove(proto, vip),
                Change::Timeouts(t) => timeouts = t.into(),
            }
        }
        let id = next_id();
        services.seal(self.id, id);
        // The same local addresses and VIPs (the usual case: another service on a VIP that
        // has one already, a real server) own the same addresses.
        let same = Arc::ptr_eq(services.laddrs(), self.services.laddrs())
            && Arc::ptr_eq(services.vips(), self.services.vips())
            && Arc::ptr_eq(services.vips6(), self.services.vips6());
        let Addresses {
            owned,
            owned6,
            routed,
            unheld,
            martians,
        } = if same {
            Addresses {
                owned: Arc::clone(&self.owned),
                owned6: Arc::clone(&self.owned6),
                routed: Arc::clone(&self.routed),
                unheld: Arc::clone(&self.unheld),
                martians: Arc::clone(&self.martians),
            }
        } else {
            Addresses::new(&self.ports, &services)
        };
        Ok(Snapshot {
            min_mtu: self.min_mtu,
            ports: self.ports.clone(),
            routes: self.routes.clone(),
            neighbors: self.neighbors.clone(),
            routes6: self.routes6.clone(),
            neighbors6: self.neighbors6.clone(),
            services,
            owned,
            owned6,
            routed,
            unheld,
            martians,
            timeouts,
            expire_nodest_conn: self.expire_nodest_conn,
            laddr_ports: self.laddr_ports,
            sync: self.sync,
            id,
        })
    }

    /// This snapshot with connection sync set to `sync` (the daemons started or stopped).
    pub fn with_sync(mut self, sync: SyncState) -> Snapshot {
        self.sync = sync;
        self
    }

    /// This snapshot's id: different for every snapshot [`Snapshot::build`] makes in this
    /// process (0 for `Snapshot::default()`), so that what a worker derived from one snapshot
    /// (its egress cache) is never taken for what another one says.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The smallest MTU of any port: IPv4 packets up to this long fit every link.
    #[inline]
    pub fn min_mtu(&self) -> u16 {
        self.min_mtu
    }

    /// Whether ARP is answered for `ip` on port `port`: an address of that port (ARP answers
    /// only on the link an address lives on) that is not a routed VIP (which reaches the
    /// balancer by a route, even while its twin holds it for a routing daemon to announce).
    pub fn owns_on(&self, port: usize, ip: Ipv4Addr) -> bool {
        self.ports
            .get(port)
            .is_some_and(|p| p.addrs.iter().any(|(a, _)| *a == ip))
            && !self.routed.contains(ip)
    }

    /// The addresses announced with gratuitous ARP on port `port` (those [`Snapshot::owns_on`]
    /// answers for), in configuration order.
    pub fn announced(&self, port: usize) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ports
            .get(port)
            .into_iter()
            .flat_map(|p| p.addrs.iter().map(|(a, _)| *a))
            .filter(move |&a| !self.routed.contains(a))
    }

    /// Whether neighbour solicitations for `ip` are answered on port `port`: an IPv6 address
    /// of that port (as ARP, only on the link the address lives on).
    pub fn owns6_on(&self, port: usize, ip: Ipv6Addr) -> bool {
        self.ports
            .get(port)
            .is_some_and(|p| p.addrs6.iter().any(|(a, _)| *a == ip))
    }

    /// The IPv6 addresses announced with an unsolicited neighbour advertisement on port
    /// `port` (those [`Snapshot::owns6_on`] answers for), in configuration order.
    pub fn announced6(&self, port: usize) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.ports
            .get(port)
            .into_iter()
            .flat_map(|p| p.addrs6.iter().map(|(a, _)| *a))
    }

    /// What the IPv6 address `ip` is for, if the balancer owns it.
    #[inline]
    pub fn owned6(&self, ip: Ipv6Addr) -> Option<Owned> {
        if self.owned6.is_empty() {
            return None;
        }
        self.owned6.get(&ip).copied()
    }

    /// Whether no packet to the balancer may come from the IPv6 address `ip`: the fixed
    /// classes ([`crate::wire::ipv6::is_martian_source`]: ::, ::1, multicast, IPv4-mapped)
    /// and the balancer's own addresses.
    pub fn is_martian_source6(&self, ip: Ipv6Addr) -> bool {
        crate::wire::ipv6::is_martian_source(&ip) || self.owned6(ip).is_some()
    }

    /// What `ip` is for, if the balancer owns it.
    #[inline]
    pub fn owned(&self, ip: Ipv4Addr) -> Option<Owned> {
        match self.owned.get(ip)? {
            v if v == Owned::Service as u8 => Some(Owned::Service),
            _ => Some(Owned::Host),
        }
    }

    /// Whether `ip` is the VIP of a `kernel` service that no kernel twin holds now.
    pub fn is_unheld_vip(&self, ip: Ipv4Addr) -> bool {
        self.unheld.contains(ip)
    }

    /// Whether `ip` is owned on any port.
    #[inline]
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.owned.contains(ip)
    }

    /// Whether a packet from `src` is to be dropped as Linux's `ip_route_input` drops a
    /// "martian source": 0.0.0.0/8, loopback (127/8), multicast and reserved (224/4, 240/4,
    /// 255.255.255.255), the network or broadcast address of a connected subnet, or one of
    /// the balancer's own addresses (a VIP, a DIP, a local address: the "land" case).
    #[inline]
    pub fn is_martian_source(&self, src: Ipv4Addr) -> bool {
        let [first, ..] = src.octets();
        first == 0 || first == 127 || first >= 224 || self.martians.contains(src)
    }

    /// Whether `ip` is a FULLNAT local address (replies of FULLNAT connections come to it).
    #[inline]
    pub fn is_laddr(&self, ip: Ipv4Addr) -> bool {
        let laddrs = self.services.laddrs();
        !laddrs.is_empty() && laddrs.binary_search(&ip).is_ok()
    }

    /// Every FULLNAT local address of every service, sorted, each once.
    pub fn laddrs(&self) -> &[Ipv4Addr] {
        self.services.laddrs()
    }

    /// The slot of the service for `proto` and `vip`: where a worker keeps its scheduler and
    /// local address pool for it, the same from the snapshot that adds the service to the one
    /// that removes it.
    #[inline]
    pub fn service_index(&self, proto: conf::Proto, vip: SocketAddrV4) -> Option<usize> {
        self.services.get(proto, vip).map(|s| s.slot)
    }

    /// The service for `proto` and `vip`.
    #[inline]
    pub fn service(&self, proto: conf::Proto, vip: SocketAddr) -> Option<&Arc<Service>> {
        let key = self.services.key_of(proto, vip)?;
        self.services.by_key(key).map(|s| &s.service)
    }

    /// The IPv6 service for `proto` and `vip` with its slot.
    #[inline]
    pub fn service6_in_slot(
        &self,
        proto: conf::Proto,
        vip: std::net::SocketAddrV6,
    ) -> Option<(usize, &Arc<Service>)> {
        self.services.get6(proto, vip).map(|s| (s.slot, &s.service))
    }

    /// The service for `proto` and `vip` with its slot (see [`Snapshot::service_index`]).
    #[inline]
    pub fn service_in_slot(
        &self,
        proto: conf::Proto,
        vip: SocketAddrV4,
    ) -> Option<(usize, &Arc<Service>)> {
        self.services.get(proto, vip).map(|s| (s.slot, &s.service))
    }

    /// Whether `ip` is the virtual address of a service (of any protocol and port).
    pub fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.services.has_vip(ip)
    }

    /// Every service, ordered by protocol, VIP and port.
    pub fn services(&self) -> impl ExactSizeIterator<Item = &Arc<Service>> + '_ {
        self.services.iter().map(|(_, s)| &s.service)
    }

    /// The services (with their slots) for workers to adopt.
    pub(crate) fn service_table(&self) -> &ServiceTable {
        &self.services
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[port]]
name = "dpdk1"
addrs = ["192.168.10.1/24"]
mtu = 9000
[[route]]
dst = "0.0.0.0/0"
via = "10.0.0.254"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
  [[service.real]]
  addr = "192.168.10.11:8080"
  mode = "nat"
"#;

    fn snapshot() -> Snapshot {
        let config = conf::Config::parse(CONFIG, "t.toml").unwrap();
        Snapshot::build(&config, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]], None, 1).unwrap()
    }

    #[test]
    fn routes_connected_subnets_and_configured_gateways() {
        let s = snapshot();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            s.routes.lookup(ip("192.168.10.11")),
            Some(Hop { port: 1, via: None })
        );
        assert_eq!(
            s.routes.lookup(ip("10.0.0.9")),
            Some(Hop { port: 0, via: None })
        );
        assert_eq!(
            s.routes.lookup(ip("8.8.8.8")),
            Some(Hop {
                port: 0,
                via: Some(ip("10.0.0.254"))
            })
        );
        assert_eq!(
            s.neighbors,
            vec![(0, ip("10.0.0.254"), EthernetAddress([2, 0, 0, 0, 0, 0xfe]))]
        );
        assert_eq!(s.ports[1].mtu, 9000);
        assert_eq!(s.min_mtu(), 1500, "the smaller of 1500 and 9000");
        assert_eq!(Snapshot::default().min_mtu(), 0);
    }

    #[test]
    fn services_are_found_by_protocol_and_vip() {
        let s = snapshot();
        let vip: SocketAddrV4 = "10.0.0.100:80".parse().unwrap();
        assert_eq!(s.service_index(conf::Proto::Tcp, vip), Some(0));
        assert_eq!(s.service_index(conf::Proto::Udp, vip), None);
        assert!(s.owns(*vip.ip()) && s.owns_on(0, *vip.ip()) && !s.owns_on(1, *vip.ip()));
    }

    #[test]
    fn update_builds_only_the_services_it_names() {
        let s = snapshot();
        let text = CONFIG.to_owned()
            + "[[service]]\nvip = \"10.0.0.100:8443\"\nproto = \"tcp\"\nladdrs = [\"10.0.0.1\"]\n\
               [[service.real]]\naddr = \"192.168.10.12:443\"\nmode = \"fullnat\"\n";
        let config = conf::Config::parse(&text, "t.toml").unwrap();
        let fullnat = config.services.last().unwrap();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let (web, tls): (SocketAddrV4, SocketAddrV4) = (
            "10.0.0.100:80".parse().unwrap(),
            "10.0.0.100:8443".parse().unwrap(),
        );
        let next = s.update(&[Change::PutService(fullnat)]).unwrap();
        assert!(Arc::ptr_eq(
            s.service(conf::Proto::Tcp, web.into()).unwrap(),
            next.service(conf::Proto::Tcp, web.into()).unwrap()
        ));
        assert_eq!(next.service_index(conf::Proto::Tcp, tls), Some(1));
        assert!(next.is_laddr(ip("10.0.0.1")) && !s.is_laddr(ip("10.0.0.1")));
        assert_eq!((&next.ports, &next.neighbors), (&s.ports, &s.neighbors));
        assert_ne!(next.id(), s.id());
        let timeouts = conf::Timeouts {
            tcp: 60,
            ..conf::Timeouts::default()
        };
        let last = next
            .update(&[
                Change::RemoveService(conf::Proto::Tcp, tls.into()),
                Change::Timeouts(timeouts),
            ])
            .unwrap();
        assert!(
            last.service(conf::Proto::Tcp, tls.into()).is_none() && !last.is_laddr(ip("10.0.0.1"))
        );
        assert_eq!(last.timeouts, timeouts.into());
        assert_eq!(last.services().len(), 1);
        // A service that cannot be built leaves nothing changed.
        let mut bad = fullnat.clone();
        bad.sched = "nope";
        let err = last.update(&[Change::PutService(&bad)]).unwrap_err();
        assert!(err.0.contains("service tcp 10.0.0.100:8443"), "{err}");
    }

    /// What the address sets say about `ip`: owned (and for what), on which port, unheld,
    /// martian, local address.
    fn answers(s: &Snapshot, ip: Ipv4Addr) -> (Option<Owned>, [bool; 2], bool, bool, bool) {
        (
            s.owned(ip),
            [s.owns_on(0, ip), s.owns_on(1, ip)],
            s.is_unheld_vip(ip),
            s.is_martian_source(ip),
            s.is_laddr(ip),
        )
    }

    #[test]
    fn services_added_and_removed_one_by_one_own_what_a_build_owns() {
        let services = [
            "vip = \"10.0.0.100:80\"\nproto = \"tcp\"",
            "vip = \"10.0.0.100:443\"\nproto = \"tcp\"\nladdrs = [\"10.0.0.1\"]",
            "vip = \"10.0.0.50:80\"\nproto = \"tcp\"\nvip_mode = \"kernel\"",
            "vip = \"10.0.0.60:53\"\nproto = \"udp\"\nvip_mode = \"routed\"",
            "vip = \"10.0.0.60:80\"\nproto = \"tcp\"\nvip_mode = \"routed\"",
        ];
        // A kernel twin on dpdk0, so that a kernel VIP is allowed.
        let base = CONFIG.split("[[service]]").next().unwrap().replacen(
            "addrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]",
            "addrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]\nexception = { iface = \"rvs0\" }",
            1,
        );
        let with = |n: usize| {
            let mut text = base.clone();
            for s in &services[..n] {
                text += &format!("[[service]]\n{s}\n[[service.real]]\naddr = \"192.168.10.11:8080\"\nmode = \"fullnat\"\n");
            }
            conf::Config::parse(&text, "t.toml").unwrap()
        };
        let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
        let probes: Vec<Ipv4Addr> = [
            "10.0.0.1",
            "10.0.0.100",
            "10.0.0.50",
            "10.0.0.60",
            "10.0.0.0",
            "10.0.0.255",
            "10.0.0.7",
            "192.168.10.1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let same = |a: &Snapshot, b: &Snapshot, what: &str| {
            for &ip in &probes {
                assert_eq!(answers(a, ip), answers(b, ip), "{what}: {ip}");
            }
            let keys =
                |s: &Snapshot| -> Vec<_> { s.services().map(|s| (s.proto, s.vip)).collect() };
            assert_eq!(keys(a), keys(b), "{what}");
        };
        let mut live = Snapshot::build(&with(0), &macs, None, 1).unwrap();
        let all = with(services.len());
        for n in 1..=services.len() {
            live = live
                .update(&[Change::PutService(&all.services[n - 1])])
                .unwrap();
            same(
                &live,
                &Snapshot::build(&with(n), &macs, None, 1).unwrap(),
                &format!("{n} added"),
            );
        }
        for n in (0..services.len()).rev() {
            let gone = &all.services[n];
            let std::net::SocketAddr::V4(vip) = gone.vip else {
                panic!("IPv4 services only");
            };
            live = live
                .update(&[Change::RemoveService(gone.proto, vip.into())])
                .unwrap();
            same(
                &live,
                &Snapshot::build(&with(n), &macs, None, 1).unwrap(),
                &format!("down to {n}"),
            );
        }
    }

    #[test]
    fn addr_set_holds_exactly_its_members() {
        let members: Vec<Ipv4Addr> = (0..40u32)
            .map(|i| Ipv4Addr::from(i.wrapping_mul(0x0101_0107)))
            .chain([Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST])
            .collect();
        let set = AddrSet::new(members.iter().copied().chain(members.iter().copied()));
        for ip in &members {
            assert!(set.contains(*ip), "{ip}");
        }
        for i in 0..10_000u32 {
            let ip = Ipv4Addr::from(i.wrapping_mul(0x0001_0003) ^ 0x5a5a_0000);
            assert_eq!(set.contains(ip), members.contains(&ip), "{ip}");
        }
        assert!(!AddrSet::default().contains(Ipv4Addr::UNSPECIFIED));
        assert!(!AddrSet::new(std::iter::empty()).contains(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn source_address_is_the_one_on_the_peer_subnet() {
        let s = snapshot();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(s.ports[0].source_for(ip("10.0.0.77")), Some(ip("10.0.0.1")));
        assert_eq!(
            s.ports[0].source_for(ip("172.16.0.1")),
            Some(ip("10.0.0.1")),
            "not the /32 VIP"
        );
        assert_eq!(
            s.ports[1].source_for(ip("192.168.10.11")),
            Some(ip("192.168.10.1"))
        );
    }
}
