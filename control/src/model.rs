//! The configuration as `ipvsadm` sees it: services, their real servers in kernel order, local
//! addresses and timeouts, with every change checked before anything is modified.
//!
//! The model holds no traffic state. rvsd keeps one, applies each control request to it
//! ([`Model::apply`]) and, when that succeeds, publishes a data plane snapshot built from it;
//! the returned [`Change`]s say what to rebuild. `SIGHUP` goes through [`Model::reload`], which
//! turns the new file into the same kind of changes.
//!
//! # Rules kept from IPVS
//!
//! - A new real server goes to the head of its service's list (`list_add_rcu` in
//!   `ip_vs_ctl.c`), so the list is the reverse of the order of `-a`. Editing keeps the place;
//!   deleting and re-adding puts it at the head again. Schedulers walk this order.
//! - `last_weight` is the latest non-zero weight (`__ip_vs_update_dest`), for `mh`.
//! - `-E` and `-e` replace every attribute they carry; the client fills in ipvsadm's defaults.
//! - A real server of a `-g`/`-i` service keeps the vip port; a real server without port (or
//!   port 0) gets the vip port.
//! - Errors are ipvsadm's messages for the errno the kernel returns (`ipvs_strerror`), checked
//!   in the kernel's order.
//!
//! # Rules kept from the config file
//!
//! The data plane needs more than the kernel checks, so a change must also pass the rules of
//! `rvsd.toml` that concern one service: the vip and local addresses are addresses of the
//! balancer, a real server is reachable (`dr`: on a port's subnet), `proxy_protocol` services
//! take only fullnat reals, and a `ch` table holds all reals. Both sides take what ipvsadm
//! 1.31 takes: `-M` without `-p` (kept, without effect until persistence is set), any dotted
//! `-M`, and a fullnat real before its service has a local address, because DPVS's own
//! procedure adds the real (`-a -b`) before the local address (`-P`); until then its
//! connections cannot be made.

use std::net::{IpAddr, SocketAddr};

use crate::ordered::Ordered;

use conf::proto::{
    Counters, DestEntry, DestSpec, LaddrEntry, LaddrList, Rates, Request, Response, ServiceEntry,
    ServiceKey, ServiceSpec, TimeoutValues,
};
use conf::{
    Config, Ipv4Net, Ipv6Net, Mode, Netmask, Proto, ProxyProtocol, Real, SchedFlags, Timeouts,
    ToaPlacement, TunKind, VipMode, DEFAULT_CH_TABLE_SIZE, MAX_TIMEOUT,
};

const SERVICE_EXISTS: &str = "Service already exists";
const NO_SCHEDULER: &str = "Scheduler or persistence engine not found";
const NO_SUCH_SERVICE: &str = "No such service";
const SERVICE_NOT_DEFINED: &str = "Service not defined";
const DEST_EXISTS: &str = "Destination already exists";
const NO_SUCH_DEST: &str = "No such destination";
const LADDR_EXISTS: &str = "Local address already exists";
const NO_SUCH_LADDR: &str = "No such Local address";
const ZERO_PORT: &str = "Zero port specified for non-persistent service";
/// `strerror(ERANGE)`: the kernel's answer to `-y` above `-x`.
const OUT_OF_RANGE: &str = "Numerical result out of range";
/// ipvsadm's text for EINVAL, which the kernel returns for a real server that is not unicast.
const INVALID: &str = "Invalid operation.  Possibly wrong module version, address not unicast, ...";

/// The addresses the balancer owns and the networks it reaches, from `[[port]]` and
/// `[[route]]`: what the config file's address rules are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Owned addresses with their link prefix.
    addrs: Vec<Ipv4Net>,
    /// Routed destinations.
    routes: Vec<Ipv4Net>,
    /// Owned IPv6 addresses with their link prefix.
    addrs6: Vec<Ipv6Net>,
    /// Routed IPv6 destinations.
    routes6: Vec<Ipv6Net>,
}

impl Network {
    /// Owned `addrs` (`[[port]] addrs`) and routed networks (`[[route]] dst`), IPv4 only.
    pub fn new(addrs: Vec<Ipv4Net>, routes: Vec<Ipv4Net>) -> Network {
        Network {
            addrs,
            routes,
            addrs6: Vec::new(),
            routes6: Vec::new(),
        }
    }

    /// This network with owned IPv6 `addrs` and routed IPv6 networks.
    pub fn with_v6(self, addrs6: Vec<Ipv6Net>, routes6: Vec<Ipv6Net>) -> Network {
        Network {
            addrs6,
            routes6,
            ..self
        }
    }

    /// The network of a config file.
    pub fn from_config(config: &Config) -> Network {
        Network {
            addrs: config
                .ports
                .iter()
                .flat_map(|p| p.addrs.iter().copied())
                .collect(),
            routes: config.routes.iter().map(|r| r.dst).collect(),
            addrs6: config
                .ports
                .iter()
                .flat_map(|p| p.addrs6.iter().copied())
                .collect(),
            routes6: config.routes6.iter().map(|r| r.dst).collect(),
        }
    }

    fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.addrs.iter().any(|n| n.addr == ip),
            IpAddr::V6(ip) => self.addrs6.iter().any(|n| n.addr == ip),
        }
    }

    fn on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.addrs.iter().any(|n| n.contains(ip)),
            IpAddr::V6(ip) => self.addrs6.iter().any(|n| n.contains(ip)),
        }
    }

    fn routed(&self, ip: IpAddr) -> bool {
        self.on_link(ip)
            || match ip {
                IpAddr::V4(ip) => self.routes.iter().any(|n| n.contains(ip)),
                IpAddr::V6(ip) => self.routes6.iter().any(|n| n.contains(ip)),
            }
    }

    /// The config file's host rule ([`conf::check_host`], [`conf::net6::check_host`]).
    fn check_host(&self, ip: IpAddr) -> Result<(), String> {
        match ip {
            IpAddr::V4(ip) => conf::check_host(ip, &self.addrs),
            IpAddr::V6(ip) => conf::net6::check_host(ip),
        }
    }
}

/// The name of `ip`'s family in an error.
fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// A real server and the weight the `mh` scheduler keeps for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Address, mode, weight and thresholds.
    pub real: Real,
    /// The latest non-zero weight (the weight it was added with, if never non-zero).
    pub last_weight: u32,
}

/// A virtual service with everything the config file can say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Protocol and virtual address.
    pub key: ServiceKey,
    /// Scheduler, one of [`sched::NAMES`].
    pub sched: &'static str,
    /// sh/mh flags (config file only).
    pub sched_flags: SchedFlags,
    /// Persistence timeout; 0 = not persistent.
    pub persistence: u32,
    /// Persistence netmask, of the vip's family.
    pub netmask: Netmask,
    /// `ch` table size (config file only).
    pub ch_table_size: u32,
    /// FULLNAT local addresses, in the order they were added.
    pub laddrs: Vec<IpAddr>,
    /// PROXY protocol to fullnat reals (config file only).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TOA on fullnat connections (config file only).
    pub toa: Option<ToaPlacement>,
    /// When the VIP is served (config file; `-A` picks `static` for a port address, else
    /// `kernel`). ipvsadm has no such attribute, so `-S` does not show it.
    pub vip_mode: VipMode,
    /// Non-SYN TCP segments of no connection are scheduled (config file only; the kernel
    /// has it as the `sloppy_tcp` sysctl, which ipvsadm does not show).
    pub sloppy: bool,
    /// Real servers in kernel order: the most recently added first.
    pub dests: Vec<Dest>,
}

impl Service {
    fn from_conf(s: &conf::Service) -> Service {
        let mut svc = Service {
            key: ServiceKey {
                proto: s.proto,
                vip: s.vip,
            },
            sched: s.sched,
            sched_flags: s.sched_flags,
            persistence: s.persistence,
            netmask: s.netmask,
            ch_table_size: s.ch_table_size,
            laddrs: s.laddrs.clone(),
            proxy_protocol: s.proxy_protocol,
            toa: s.toa,
            vip_mode: s.vip_mode,
            sloppy: s.sloppy,
            dests: Vec::new(),
        };
        for r in &s.reals {
            svc.dests.insert(
                0,
                Dest {
                    real: r.clone(),
                    last_weight: r.weight,
                },
            );
        }
        svc
    }

    /// The service as the config file would write it. Its reals are in the order of `-a`
    /// (the reverse of the kernel order), which is how [`Model::from_config`] reads a file.
    pub fn to_conf(&self) -> conf::Service {
        conf::Service {
            vip: self.key.vip,
            proto: self.key.proto,
            sched: self.sched,
            sched_flags: self.sched_flags,
            persistence: self.persistence,
            netmask: self.netmask,
            ch_table_size: self.ch_table_size,
            laddrs: self.laddrs.clone(),
            proxy_protocol: self.proxy_protocol,
            toa: self.toa,
            vip_mode: self.vip_mode,
            sloppy: self.sloppy,
            reals: self.dests.iter().rev().map(|d| d.real.clone()).collect(),
        }
    }

    /// The service as `-L` lists it, with zero counters, rates and connection counts for
    /// the caller to fill in.
    pub fn entry(&self) -> ServiceEntry {
        ServiceEntry {
            key: self.key,
            sched: self.sched.to_string(),
            persistence: self.persistence,
            netmask: self.netmask,
            laddrs: self.laddrs.clone(),
            counters: Counters::default(),
            rates: Rates::default(),
            dests: self
                .dests
                .iter()
                .map(|d| DestEntry {
                    addr: d.real.addr,
                    mode: d.real.mode,
                    weight: d.real.weight,
                    u_threshold: d.real.u_threshold,
                    l_threshold: d.real.l_threshold,
                    tunnel: d.real.tunnel,
                    active_conns: 0,
                    inact_conns: 0,
                    persist_conns: 0,
                    counters: Counters::default(),
                    rates: Rates::default(),
                })
                .collect(),
        }
    }

    /// The real server at `addr`.
    pub fn dest(&self, addr: SocketAddr) -> Option<&Dest> {
        self.dests.iter().find(|d| d.real.addr == addr)
    }

    fn dest_index(&self, addr: SocketAddr) -> Option<usize> {
        self.dests.iter().position(|d| d.real.addr == addr)
    }

    /// Every attribute but the reals and local addresses.
    fn same_attributes(&self, other: &Service) -> bool {
        self.sched == other.sched
            && self.sched_flags == other.sched_flags
            && self.persistence == other.persistence
            && self.netmask == other.netmask
            && self.ch_table_size == other.ch_table_size
            && self.proxy_protocol == other.proxy_protocol
            && self.toa == other.toa
            && self.vip_mode == other.vip_mode
            && self.sloppy == other.sloppy
    }
}

/// What a successful change did, for rvsd to rebuild exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A service was added (its reals and local addresses follow as their own changes).
    AddService(ServiceKey),
    /// A service's scheduler, persistence or other attributes changed.
    EditService(ServiceKey),
    /// A service was deleted with all its reals.
    DelService(ServiceKey),
    /// A real server was added.
    AddDest(ServiceKey, SocketAddr),
    /// A real server's mode, weight or thresholds changed.
    EditDest(ServiceKey, SocketAddr),
    /// A real server was deleted.
    DelDest(ServiceKey, SocketAddr),
    /// A local address was added.
    AddLaddr(ServiceKey, IpAddr),
    /// A local address was removed.
    DelLaddr(ServiceKey, IpAddr),
    /// The timeouts changed.
    Timeouts,
    /// Counters are to be zeroed: of one service and its reals, or (`None`) of all.
    Zero(Option<ServiceKey>),
}

impl Change {
    /// The service the change is about (`None` for timeouts and for zeroing everything).
    pub fn service(&self) -> Option<ServiceKey> {
        match *self {
            Change::AddService(k)
            | Change::EditService(k)
            | Change::DelService(k)
            | Change::AddDest(k, _)
            | Change::EditDest(k, _)
            | Change::DelDest(k, _)
            | Change::AddLaddr(k, _)
            | Change::DelLaddr(k, _) => Some(k),
            Change::Zero(k) => k,
            Change::Timeouts => None,
        }
    }

    /// Whether the data plane's view changes: everything but zeroing counters.
    pub fn is_published(&self) -> bool {
        !matches!(self, Change::Zero(_))
    }
}

/// A rejected change: nothing was modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// ipvsadm's message.
    pub message: String,
    /// Index of the failed request within a batch.
    pub index: Option<usize>,
}

impl From<ApplyError> for Response {
    fn from(e: ApplyError) -> Response {
        Response::Error {
            message: e.message,
            index: e.index,
        }
    }
}

/// The whole control-plane configuration. Copying it costs O(1) and a change O(log n) in
/// the number of services (see [`crate::ordered`]), so rvsd copies it before every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    network: Network,
    timeouts: Timeouts,
    /// In the order they were added.
    services: Ordered<ServiceKey, Service>,
}

impl Model {
    /// No services, the kernel's default timeouts.
    pub fn new(network: Network) -> Model {
        Model {
            network,
            timeouts: Timeouts::default(),
            services: Ordered::default(),
        }
    }

    /// The model of a config file: its services in file order, each one's reals added in file
    /// order (so the kernel order is the reverse, as if `ipvsadm -a` had added them).
    pub fn from_config(config: &Config) -> Model {
        let mut model = Model::new(Network::from_config(config));
        model.reload(config);
        model
    }

    /// Services in the order they were added.
    pub fn services(&self) -> impl ExactSizeIterator<Item = &Service> + '_ {
        self.services.iter()
    }

    /// One service.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.get(key)
    }

    /// Current timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The network changes are checked against.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Every service as the config file would write it (see [`Service::to_conf`]).
    pub fn to_conf_services(&self) -> Vec<conf::Service> {
        self.services.iter().map(Service::to_conf).collect()
    }

    /// `-L`: one service or all of them, with zero statistics (see [`Service::entry`]).
    pub fn list(&self, key: Option<&ServiceKey>) -> Result<Vec<ServiceEntry>, String> {
        match key {
            None => Ok(self.services.iter().map(Service::entry).collect()),
            Some(k) => self
                .service(k)
                .map(|s| vec![s.entry()])
                .ok_or_else(|| NO_SUCH_SERVICE.to_string()),
        }
    }

    /// `-G`: local addresses of one service or all of them, with zero usage.
    pub fn laddrs(&self, key: Option<&ServiceKey>) -> Result<Vec<LaddrList>, String> {
        let list = |s: &Service| LaddrList {
            key: s.key,
            laddrs: s
                .laddrs
                .iter()
                .map(|&addr| LaddrEntry {
                    addr,
                    conflicts: 0,
                    conns: 0,
                })
                .collect(),
        };
        match key {
            None => Ok(self.services.iter().map(list).collect()),
            Some(k) => self
                .service(k)
                .map(|s| vec![list(s)])
                .ok_or_else(|| NO_SUCH_SERVICE.to_string()),
        }
    }

    /// Applies a change or a batch of changes, all or nothing.
    pub fn apply(&mut self, request: &Request) -> Result<Vec<Change>, ApplyError> {
        match request {
            Request::Batch { requests } => {
                let mut next = self.clone();
                let mut changes = Vec::new();
                for (i, r) in requests.iter().enumerate() {
                    let fail = |message: String| ApplyError {
                        message,
                        index: Some(i),
                    };
                    if !r.is_change() {
                        return Err(fail("only changes can be batched".to_string()));
                    }
                    changes.extend(next.apply_one(r).map_err(fail)?);
                }
                *self = next;
                Ok(changes)
            }
            r if r.is_change() => self.apply_one(r).map_err(|message| ApplyError {
                message,
                index: None,
            }),
            _ => Err(ApplyError {
                message: "not a change".to_string(),
                index: None,
            }),
        }
    }

    /// Applies one change. Every check comes before the first modification.
    fn apply_one(&mut self, request: &Request) -> Result<Vec<Change>, String> {
        match request {
            Request::AddService { service } => self.add_service(service),
            Request::EditService { service } => self.edit_service(service),
            Request::DelService { service } => {
                self.services.remove(service).ok_or(NO_SUCH_SERVICE)?;
                Ok(vec![Change::DelService(*service)])
            }
            Request::Clear => {
                let changes = self.services.iter().map(|s| Change::DelService(s.key));
                let changes = changes.collect();
                self.services.clear();
                Ok(changes)
            }
            Request::AddDest { service, dest } => self.add_dest(service, dest),
            Request::EditDest { service, dest } => self.edit_dest(service, dest),
            Request::DelDest { service, addr } => {
                let svc = self.service_mut(service, SERVICE_NOT_DEFINED)?;
                let addr = dest_addr(svc.key.vip.port(), *addr, None);
                let j = svc.dest_index(addr).ok_or(NO_SUCH_DEST)?;
                svc.dests.remove(j);
                Ok(vec![Change::DelDest(*service, addr)])
            }
            Request::Zero { service } => {
                if let Some(key) = service {
                    self.service(key).ok_or(NO_SUCH_SERVICE)?;
                }
                Ok(vec![Change::Zero(*service)])
            }
            Request::SetTimeouts { timeouts } => self.set_timeouts(timeouts),
            Request::AddLaddr { service, addr } => {
                let svc = self.service(service).ok_or(SERVICE_NOT_DEFINED)?;
                if svc.laddrs.contains(addr) {
                    return Err(LADDR_EXISTS.to_string());
                }
                check_laddr_family(svc, *addr)?;
                if !self.network.owns(*addr) {
                    return Err(format!(
                        "{addr} is not an address of any [[port]]; the balancer must own its local addresses"
                    ));
                }
                self.service_mut(service, SERVICE_NOT_DEFINED)?
                    .laddrs
                    .push(*addr);
                Ok(vec![Change::AddLaddr(*service, *addr)])
            }
            Request::DelLaddr { service, addr } => {
                let laddrs = &mut self.service_mut(service, SERVICE_NOT_DEFINED)?.laddrs;
                let j = laddrs.iter().position(|a| a == addr).ok_or(NO_SUCH_LADDR)?;
                laddrs.remove(j);
                Ok(vec![Change::DelLaddr(*service, *addr)])
            }
            _ => Err("not a change".to_string()),
        }
    }

    /// The service of `key` to change, or the error `missing`.
    fn service_mut(&mut self, key: &ServiceKey, missing: &str) -> Result<&mut Service, String> {
        self.services
            .get_mut(key)
            .ok_or_else(|| missing.to_string())
    }

    /// The checks ipvsadm makes before it calls the kernel, for clients that did not.
    fn check_service_spec(&self, spec: &ServiceSpec) -> Result<(), String> {
        if spec.persistence > MAX_TIMEOUT {
            return Err(format!(
                "invalid timeout value `{}' specified",
                spec.persistence
            ));
        }
        if spec.key.vip.port() == 0 && spec.persistence == 0 {
            return Err(ZERO_PORT.to_string());
        }
        // ipvsadm parses -M by the vip's family; a client that did not gets its message.
        if !spec.netmask.is_for(spec.key.vip.ip()) {
            return Err(if spec.key.vip.is_ipv6() {
                "illegal ipv6 netmask specified"
            } else {
                "illegal virtual server persistent mask specified"
            }
            .to_string());
        }
        Ok(())
    }

    fn sched(name: &str) -> Result<&'static str, String> {
        sched::NAMES
            .iter()
            .copied()
            .find(|&n| n == name)
            .ok_or_else(|| NO_SCHEDULER.to_string())
    }

    /// The VIP mode `-A` gives a service, as the config file's default: `static` for a port
    /// address, else `kernel` (served while a kernel twin holds the address). Like ipvsadm,
    /// `-A` accepts a VIP that is no address of the balancer; as the config file, only one
    /// host (rvs could never serve another), refused with the kernel's EINVAL text.
    fn vip_mode(&self, vip: SocketAddr) -> Result<VipMode, String> {
        let ip = vip.ip();
        if let Err(why) = self.network.check_host(ip) {
            return Err(if ip.is_loopback() {
                why
            } else {
                INVALID.to_string()
            });
        }
        Ok(if self.network.owns(ip) {
            VipMode::Static
        } else {
            VipMode::Kernel
        })
    }

    fn add_service(&mut self, spec: &ServiceSpec) -> Result<Vec<Change>, String> {
        self.check_service_spec(spec)?;
        if self.service(&spec.key).is_some() {
            return Err(SERVICE_EXISTS.to_string());
        }
        let sched = Model::sched(&spec.sched)?;
        let vip_mode = self.vip_mode(spec.key.vip)?;
        self.services.insert(
            spec.key,
            Service {
                key: spec.key,
                sched,
                sched_flags: SchedFlags::default(),
                persistence: spec.persistence,
                netmask: spec.netmask,
                ch_table_size: DEFAULT_CH_TABLE_SIZE,
                laddrs: Vec::new(),
                proxy_protocol: None,
                // The config file's default: TOA for TCP; it only ever touches fullnat connections.
                toa: (spec.key.proto == Proto::Tcp).then_some(ToaPlacement::Ack),
                vip_mode,
                sloppy: false,
                dests: Vec::new(),
            },
        );
        Ok(vec![Change::AddService(spec.key)])
    }

    fn edit_service(&mut self, spec: &ServiceSpec) -> Result<Vec<Change>, String> {
        self.check_service_spec(spec)?;
        let old = self.service(&spec.key).ok_or(NO_SUCH_SERVICE)?;
        let sched = Model::sched(&spec.sched)?;
        let mut svc = old.clone();
        svc.sched = sched;
        svc.persistence = spec.persistence;
        svc.netmask = spec.netmask;
        if sched != old.sched {
            // Flags and the table size belong to the scheduler they were set for.
            svc.sched_flags = SchedFlags::default();
            if sched != "ch" {
                svc.ch_table_size = DEFAULT_CH_TABLE_SIZE;
            }
        }
        check_ch_size(&svc, svc.dests.len())?;
        self.services.insert(spec.key, svc);
        Ok(vec![Change::EditService(spec.key)])
    }

    /// The config file's rules for a real server of `svc`.
    fn check_real(&self, svc: &Service, real: &Real) -> Result<(), String> {
        let ip = real.addr.ip();
        check_real_family(svc, real)?;
        if let Err(why) = self.network.check_host(ip) {
            // What is not one host gets the kernel's EINVAL (ip_vs_new_dest). Loopback the
            // kernel would take as a local real server; rvs has none and would send it on
            // the wire, so it says so.
            return Err(if ip.is_loopback() {
                why
            } else {
                INVALID.to_string()
            });
        }
        if self.network.owns(ip) {
            return Err(format!("{ip} is an address of the balancer itself"));
        }
        if real.mode == Mode::Dr && !self.network.on_link(ip) {
            return Err(format!(
                "dr needs {ip} on the link, but no [[port]] subnet contains it"
            ));
        }
        if !self.network.routed(ip) {
            return Err(format!(
                "no route to {ip}: no [[port]] subnet or [[route]] contains it"
            ));
        }
        let vport = svc.key.vip.port();
        if vport == 0 && real.addr.port() != 0 {
            return Err(format!(
                "port {} on a port-zero service, whose connections keep their destination port (write {ip})",
                real.addr.port()
            ));
        }
        if let Some(pp) = svc.proxy_protocol {
            if real.mode != Mode::FullNat {
                return Err(format!(
                    "proxy_protocol {pp} needs fullnat reals, but {} is {}",
                    real.addr, real.mode
                ));
            }
        }
        Ok(())
    }

    fn add_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<Vec<Change>, String> {
        let svc = self.service(key).ok_or(SERVICE_NOT_DEFINED)?;
        let real = real_of(svc, spec)?;
        if svc.dest(real.addr).is_some() {
            return Err(DEST_EXISTS.to_string());
        }
        self.check_real(svc, &real)?;
        check_ch_size(svc, svc.dests.len() + 1)?;
        let addr = real.addr;
        self.service_mut(key, SERVICE_NOT_DEFINED)?.dests.insert(
            0,
            Dest {
                last_weight: real.weight,
                real,
            },
        );
        Ok(vec![Change::AddDest(*key, addr)])
    }

    fn edit_dest(&mut self, key: &ServiceKey, spec: &DestSpec) -> Result<Vec<Change>, String> {
        let svc = self.service(key).ok_or(SERVICE_NOT_DEFINED)?;
        let real = real_of(svc, spec)?;
        let j = svc.dest_index(real.addr).ok_or(NO_SUCH_DEST)?;
        self.check_real(svc, &real)?;
        let addr = real.addr;
        let svc = self.service_mut(key, SERVICE_NOT_DEFINED)?;
        let dest = svc.dests.get_mut(j).ok_or(NO_SUCH_DEST)?;
        if real.weight != 0 {
            dest.last_weight = real.weight;
        }
        dest.real = real;
        Ok(vec![Change::EditDest(*key, addr)])
    }

    fn set_timeouts(&mut self, t: &TimeoutValues) -> Result<Vec<Change>, String> {
        for v in [t.tcp, t.tcp_fin, t.udp] {
            if v > MAX_TIMEOUT {
                return Err(format!("invalid timeout value `{v}' specified"));
            }
        }
        let keep = |new: u32, old: u32| if new == 0 { old } else { new };
        self.timeouts = Timeouts {
            tcp: keep(t.tcp, self.timeouts.tcp),
            tcp_fin: keep(t.tcp_fin, self.timeouts.tcp_fin),
            udp: keep(t.udp, self.timeouts.udp),
        };
        Ok(vec![Change::Timeouts])
    }

    /// Makes the model say what `config` says, keeping what IPVS would keep had the difference
    /// been applied with ipvsadm: real servers that stay keep their place and `last_weight`,
    /// new ones go to the head in file order, services that stay keep their place and new
    /// ones follow in file order. The config is valid, so nothing can be rejected.
    pub fn reload(&mut self, config: &Config) -> Vec<Change> {
        let mut changes = Vec::new();
        self.network = Network::from_config(config);
        if self.timeouts != config.timeouts {
            self.timeouts = config.timeouts;
            changes.push(Change::Timeouts);
        }
        let wanted: std::collections::HashSet<ServiceKey> = config
            .services
            .iter()
            .map(|s| ServiceKey {
                proto: s.proto,
                vip: s.vip,
            })
            .collect();
        let gone: Vec<ServiceKey> = self
            .services
            .iter()
            .map(|s| s.key)
            .filter(|key| !wanted.contains(key))
            .collect();
        for key in gone {
            self.services.remove(&key);
            changes.push(Change::DelService(key));
        }
        for file in &config.services {
            let target = Service::from_conf(file);
            let key = target.key;
            let Some(old) = self.services.get(&key) else {
                changes.push(Change::AddService(key));
                changes.extend(file.reals.iter().map(|r| Change::AddDest(key, r.addr)));
                changes.extend(file.laddrs.iter().map(|&a| Change::AddLaddr(key, a)));
                self.services.insert(key, target);
                continue;
            };
            if !old.same_attributes(&target) {
                changes.push(Change::EditService(key));
            }
            for a in old.laddrs.iter().filter(|a| !target.laddrs.contains(a)) {
                changes.push(Change::DelLaddr(key, *a));
            }
            for a in target.laddrs.iter().filter(|a| !old.laddrs.contains(a)) {
                changes.push(Change::AddLaddr(key, *a));
            }
            let mut dests = Vec::new();
            for d in &old.dests {
                match file.reals.iter().find(|r| r.addr == d.real.addr) {
                    None => changes.push(Change::DelDest(key, d.real.addr)),
                    Some(r) => {
                        if *r != d.real {
                            changes.push(Change::EditDest(key, r.addr));
                        }
                        dests.push(Dest {
                            real: r.clone(),
                            last_weight: if r.weight != 0 {
                                r.weight
                            } else {
                                d.last_weight
                            },
                        });
                    }
                }
            }
            for r in &file.reals {
                if old.dest(r.addr).is_none() {
                    changes.push(Change::AddDest(key, r.addr));
                    dests.insert(
                        0,
                        Dest {
                            real: r.clone(),
                            last_weight: r.weight,
                        },
                    );
                }
            }
            self.services.insert(key, Service { dests, ..target });
        }
        changes
    }
}

/// The real server a request describes, with ipvsadm's port rules and the kernel's
/// threshold check.
fn real_of(svc: &Service, spec: &DestSpec) -> Result<Real, String> {
    if spec.l_threshold > spec.u_threshold {
        return Err(OUT_OF_RANGE.to_string());
    }
    // The kernel's check of the tunnel (ip_vs_add_dest, ip_vs_edit_dest): EINVAL.
    if spec.tunnel.kind == TunKind::Gue && spec.tunnel.port == 0 {
        return Err(INVALID.to_string());
    }
    Ok(Real {
        addr: dest_addr(svc.key.vip.port(), spec.addr, Some(spec.mode)),
        mode: spec.mode,
        weight: spec.weight,
        u_threshold: spec.u_threshold,
        l_threshold: spec.l_threshold,
        tunnel: spec.tunnel,
    })
}

/// A real server's port as ipvsadm and the config file fix it: none (0) means the vip port,
/// and direct routing and tunnelling cannot change the port.
fn dest_addr(vport: u16, addr: SocketAddr, mode: Option<Mode>) -> SocketAddr {
    match mode {
        _ if addr.port() == 0 => SocketAddr::new(addr.ip(), vport),
        Some(Mode::Dr | Mode::Tun) => SocketAddr::new(addr.ip(), vport),
        _ => addr,
    }
}

/// The config file's family rules for a real of `svc`: the vip's family, or IPv4 behind an
/// IPv6 vip for fullnat (NAT64), where a real and the local addresses share a family.
/// Until the service has local addresses a fullnat real of either family is taken, as DPVS
/// adds reals (`-a -b`) before local addresses (`-P`).
fn check_real_family(svc: &Service, real: &Real) -> Result<(), String> {
    let (vip, ip) = (svc.key.vip, real.addr.ip());
    if vip.is_ipv4() && ip.is_ipv6() {
        return Err(format!(
            "{ip} is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 reals (4→6 is not supported)"
        ));
    }
    if real.mode != Mode::FullNat && vip.is_ipv4() != ip.is_ipv4() {
        return Err(format!(
            "{ip} is IPv4, but the vip is IPv6: {} keeps the client's packet, so its reals are IPv6 (only fullnat reaches IPv4 reals, NAT64)",
            real.mode
        ));
    }
    if let Some(lip) = svc
        .laddrs
        .first()
        .filter(|l| real.mode == Mode::FullNat && l.is_ipv4() != ip.is_ipv4())
    {
        return Err(format!(
            "{ip} is {}, but the local addresses are {} ({lip}): a fullnat real is reached from a local address of its family",
            family(ip),
            family(*lip)
        ));
    }
    Ok(())
}

/// The family rules for a new local address of `svc`: the vip's family or, for an IPv6
/// vip, IPv4 (NAT64); one family per service, that of its fullnat reals.
fn check_laddr_family(svc: &Service, lip: IpAddr) -> Result<(), String> {
    if svc.key.vip.is_ipv4() && lip.is_ipv6() {
        return Err(format!(
            "{lip} is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 (4→6 is not supported)"
        ));
    }
    if let Some(first) = svc.laddrs.first().filter(|f| f.is_ipv4() != lip.is_ipv4()) {
        return Err(format!(
            "{lip} is {}, but {first} is {}: the local addresses of a service are of one family",
            family(lip),
            family(*first)
        ));
    }
    let other = svc
        .dests
        .iter()
        .map(|d| &d.real)
        .find(|r| r.mode == Mode::FullNat && r.addr.is_ipv4() != lip.is_ipv4());
    if let Some(r) = other {
        return Err(format!(
            "{lip} is {}, but fullnat real {} is {}: a fullnat real is reached from a local address of its family",
            family(lip),
            r.addr,
            family(r.addr.ip())
        ));
    }
    Ok(())
}

fn check_ch_size(svc: &Service, reals: usize) -> Result<(), String> {
    if svc.sched == "ch" && reals > svc.ch_table_size as usize {
        return Err(format!(
            "{} slots cannot hold the {reals} reals of the service",
            svc.ch_table_size
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn net() -> Network {
        let n = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Ipv4Net {
                addr: a.parse().unwrap(),
                prefix_len: l.parse().unwrap(),
            }
        };
        Network::new(
            vec![n("10.0.0.1/24"), n("10.0.0.100/32"), n("192.168.1.254/24")],
            vec![n("172.16.0.0/16")],
        )
    }

    fn key(s: &str) -> ServiceKey {
        ServiceKey {
            proto: Proto::Tcp,
            vip: s.parse().unwrap(),
        }
    }

    fn spec(vip: &str, sched: &str, persistence: u32) -> ServiceSpec {
        ServiceSpec {
            key: key(vip),
            sched: sched.to_string(),
            persistence,
            netmask: Netmask::host(key(vip).vip.ip()),
        }
    }

    /// A real server; without port it is sent with port 0, as meaning "the vip port".
    fn dest(addr: &str, mode: Mode, weight: u32) -> DestSpec {
        let addr = if addr.contains(':') {
            addr.parse().unwrap()
        } else {
            SocketAddr::new(addr.parse().unwrap(), 0)
        };
        DestSpec {
            addr,
            mode,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Default::default(),
        }
    }

    fn add_svc(m: &mut Model, vip: &str) {
        m.apply(&Request::AddService {
            service: spec(vip, "wlc", 0),
        })
        .unwrap();
    }

    fn add(m: &mut Model, vip: &str, d: DestSpec) -> Result<Vec<Change>, String> {
        m.apply(&Request::AddDest {
            service: key(vip),
            dest: d,
        })
        .map_err(|e| e.message)
    }

    fn order(m: &Model, vip: &str) -> Vec<String> {
        m.service(&key(vip))
            .unwrap()
            .dests
            .iter()
            .map(|d| d.real.addr.to_string())
            .collect()
    }

    #[test]
    fn test_add_service_vip_mode() {
        // As ipvsadm, -A takes a VIP that is no port address: it is served while a kernel
        // twin holds it.
        let mut m = Model::new(net());
        add_svc(&mut m, "10.0.0.100:80");
        add_svc(&mut m, "10.0.0.9:80");
        add_svc(&mut m, "198.51.100.7:443");
        let mode = |m: &Model, vip: &str| m.service(&key(vip)).map(|s| s.vip_mode);
        assert_eq!(mode(&m, "10.0.0.100:80"), Some(VipMode::Static));
        assert_eq!(mode(&m, "10.0.0.9:80"), Some(VipMode::Kernel));
        assert_eq!(mode(&m, "198.51.100.7:443"), Some(VipMode::Kernel));
        // -E keeps it; the file form carries it.
        m.apply(&Request::EditService {
            service: spec("10.0.0.9:80", "rr", 0),
        })
        .unwrap();
        assert_eq!(mode(&m, "10.0.0.9:80"), Some(VipMode::Kernel));
        let file = m.service(&key("10.0.0.9:80")).unwrap().to_conf();
        assert_eq!(file.vip_mode, VipMode::Kernel);
    }

    #[test]
    fn test_head_insertion() {
        let mut m = Model::new(net());
        add_svc(&mut m, "10.0.0.100:80");
        for a in ["192.168.1.1", "192.168.1.2", "192.168.1.3"] {
            add(&mut m, "10.0.0.100:80", dest(a, Mode::Dr, 1)).unwrap();
        }
        assert_eq!(
            order(&m, "10.0.0.100:80"),
            ["192.168.1.3:80", "192.168.1.2:80", "192.168.1.1:80"]
        );
        // Editing keeps the place; deleting and re-adding moves to the head.
        m.apply(&Request::EditDest {
            service: key("10.0.0.100:80"),
            dest: dest("192.168.1.1", Mode::Dr, 5),
        })
        .unwrap();
        assert_eq!(order(&m, "10.0.0.100:80")[2], "192.168.1.1:80");
        m.apply(&Request::DelDest {
            service: key("10.0.0.100:80"),
            addr: "192.168.1.2:80".parse().unwrap(),
        })
        .unwrap();
        add(&mut m, "10.0.0.100:80", dest("192.168.1.2", Mode::Dr, 1)).unwrap();
        assert_eq!(
            order(&m, "10.0.0.100:80"),
            ["192.168.1.2:80", "192.168.1.3:80", "192.168.1.1:80"]
        );
    }

    #[test]
    fn test_ports() {
        let mut m = Model::new(net());
        add_svc(&mut m, "10.0.0.100:80");
        // dr and tun keep the vip port; nat and fullnat keep theirs; none means the vip port.
        add(
            &mut m,
            "10.0.0.100:80",
            dest("192.168.1.1:8080", Mode::Dr, 1),
        )
        .unwrap();
        add(
            &mut m,
            "10.0.0.100:80",
            dest("192.168.1.2:8080", Mode::Tun, 1),
        )
        .unwrap();
        add(
            &mut m,
            "10.0.0.100:80",
            dest("192.168.1.3:8080", Mode::Nat, 1),
        )
        .unwrap();
        add(
            &mut m,
            "10.0.0.100:80",
            dest("172.16.0.4:0", Mode::FullNat, 1),
        )
        .unwrap();
        assert_eq!(
            order(&m, "10.0.0.100:80"),
            [
                "172.16.0.4:80",
                "192.168.1.3:8080",
                "192.168.1.2:80",
                "192.168.1.1:80"
            ]
        );
        // -d looks up the port as given (0 = the vip port).
        let del = |m: &mut Model, a: &str| {
            m.apply(&Request::DelDest {
                service: key("10.0.0.100:80"),
                addr: a.parse().unwrap(),
            })
            .map_err(|e| e.message)
        };
        assert_eq!(del(&mut m, "192.168.1.1:8080"), Err(NO_SUCH_DEST.into()));
        assert_eq!(
            del(&mut m, "192.168.1.1:0"),
            Ok(vec![Change::DelDest(
                key("10.0.0.100:80"),
                "192.168.1.1:80".parse().unwrap()
            )])
        );
        // A port-zero service takes no real port.
        m.apply(&Request::AddService {
            service: spec("10.0.0.100:0", "rr", 360),
        })
        .unwrap();
        assert_eq!(
            add(&mut m, "10.0.0.100:0", dest("192.168.1.1:8080", Mode::Nat, 1)),
            Err("port 8080 on a port-zero service, whose connections keep their destination port (write 192.168.1.1)".into())
        );
        add(&mut m, "10.0.0.100:0", dest("192.168.1.1", Mode::Nat, 1)).unwrap();
        assert_eq!(order(&m, "10.0.0.100:0"), ["192.168.1.1:0"]);
    }

    #[test]
    fn test_service_errors() {
        let mut m = Model::new(net());
        let err = |m: &mut Model, r: Request| m.apply(&r).unwrap_err().message;
        add_svc(&mut m, "10.0.0.100:80");
        assert_eq!(
            err(
                &mut m,
                Request::AddService {
                    service: spec("10.0.0.100:80", "rr", 0)
                }
            ),
            SERVICE_EXISTS
        );
        assert_eq!(
            err(
                &mut m,
                Request::AddService {
                    service: spec("10.0.0.100:81", "nope", 0)
                }
            ),
            NO_SCHEDULER
        );
        assert_eq!(
            err(
                &mut m,
                Request::AddService {
                    service: spec("10.0.0.100:0", "rr", 0)
                }
            ),
            ZERO_PORT
        );
        assert_eq!(
            err(
                &mut m,
                Request::AddService {
                    service: spec("10.0.0.100:81", "rr", MAX_TIMEOUT + 1)
                }
            ),
            "invalid timeout value `2678401' specified"
        );
        assert_eq!(
            err(
                &mut m,
                Request::AddService {
                    service: spec("224.0.0.18:80", "rr", 0)
                }
            ),
            INVALID
        );
        for r in [
            Request::EditService {
                service: spec("10.0.0.100:81", "rr", 0),
            },
            Request::DelService {
                service: key("10.0.0.100:81"),
            },
            Request::Zero {
                service: Some(key("10.0.0.100:81")),
            },
        ] {
            assert_eq!(err(&mut m, r), NO_SUCH_SERVICE);
        }
        assert_eq!(
            err(
                &mut m,
                Request::EditService {
                    service: spec("10.0.0.100:80", "nope", 0)
                }
            ),
            NO_SCHEDULER
        );
        // The protocol is part of the key.
        assert_eq!(
            err(
                &mut m,
                Request::DelService {
                    service: ServiceKey {
                        proto: Proto::Udp,
                        vip: "10.0.0.100:80".parse().unwrap()
                    }
                }
            ),
            NO_SUCH_SERVICE
        );
        assert_eq!(m.services().len(), 1);
    }

    #[test]
    fn test_dest_errors() {
        let mut m = Model::new(net());
        add_svc(&mut m, "10.0.0.100:80");
        let before = m.clone();
        let vip = "10.0.0.100:80";
        assert_eq!(
            add(&mut m, "10.0.0.100:81", dest("192.168.1.1", Mode::Dr, 1)),
            Err(SERVICE_NOT_DEFINED.into())
        );
        let mut bad = dest("192.168.1.1", Mode::Dr, 1);
        bad.l_threshold = 5;
        assert_eq!(add(&mut m, vip, bad), Err(OUT_OF_RANGE.into()));
        for (a, mode, msg) in [
            ("0.0.0.0", Mode::Nat, INVALID.to_string()),
            ("0.1.2.3", Mode::Nat, INVALID.to_string()),
            ("224.0.0.1", Mode::Nat, INVALID.to_string()),
            ("255.255.255.255", Mode::Nat, INVALID.to_string()),
            ("240.0.0.1", Mode::Nat, INVALID.to_string()),
            // The network and broadcast addresses of the connected 192.168.1.0/24.
            ("192.168.1.0", Mode::Dr, INVALID.to_string()),
            ("192.168.1.255", Mode::Dr, INVALID.to_string()),
            (
                "127.0.0.1",
                Mode::Nat,
                "127.0.0.1 is a loopback address (127.0.0.0/8), which must never be sent on the wire"
                    .to_string(),
            ),
            (
                "10.0.0.1",
                Mode::Nat,
                "10.0.0.1 is an address of the balancer itself".to_string(),
            ),
            (
                "172.16.0.1",
                Mode::Dr,
                "dr needs 172.16.0.1 on the link, but no [[port]] subnet contains it".to_string(),
            ),
            (
                "8.8.8.8",
                Mode::Nat,
                "no route to 8.8.8.8: no [[port]] subnet or [[route]] contains it".to_string(),
            ),
        ] {
            assert_eq!(add(&mut m, vip, dest(a, mode, 1)), Err(msg));
        }
        assert_eq!(m, before);
        add(&mut m, vip, dest("192.168.1.1", Mode::Dr, 1)).unwrap();
        assert_eq!(
            add(&mut m, vip, dest("192.168.1.1", Mode::Dr, 3)),
            Err(DEST_EXISTS.into())
        );
        let edit = |m: &mut Model, d: DestSpec| {
            m.apply(&Request::EditDest {
                service: key(vip),
                dest: d,
            })
            .map_err(|e| e.message)
        };
        assert_eq!(
            edit(&mut m, dest("192.168.1.2", Mode::Dr, 1)),
            Err(NO_SUCH_DEST.into())
        );
        // -e -m with the real's own port names another real: ipvsadm would say the same.
        assert_eq!(
            edit(&mut m, dest("192.168.1.1:8080", Mode::Nat, 1)),
            Err(NO_SUCH_DEST.into())
        );
        assert_eq!(
            m.apply(&Request::DelDest {
                service: key(vip),
                addr: "192.168.1.9:80".parse().unwrap()
            })
            .unwrap_err()
            .message,
            NO_SUCH_DEST
        );
    }

    #[test]
    fn test_last_weight() {
        let mut m = Model::new(net());
        let vip = "10.0.0.100:80";
        add_svc(&mut m, vip);
        add(&mut m, vip, dest("192.168.1.1", Mode::Dr, 0)).unwrap();
        let lw = |m: &Model| m.service(&key(vip)).unwrap().dests[0].last_weight;
        assert_eq!(lw(&m), 0);
        for (w, expect) in [(3, 3), (0, 3), (7, 7)] {
            m.apply(&Request::EditDest {
                service: key(vip),
                dest: dest("192.168.1.1", Mode::Dr, w),
            })
            .unwrap();
            assert_eq!(lw(&m), expect);
        }
    }

    #[test]
    fn test_edit_service() {
        let mut m = Model::new(net());
        let vip = "10.0.0.100:80";
        add_svc(&mut m, vip);
        let k = key(vip);
        m.service_mut(&k, "").unwrap().sched = "sh";
        m.service_mut(&k, "").unwrap().sched_flags.port = true;
        m.apply(&Request::EditService {
            service: spec(vip, "sh", 600),
        })
        .unwrap();
        let s = m.service(&key(vip)).unwrap();
        assert!(s.sched_flags.port);
        assert_eq!(s.persistence, 600);
        // Another scheduler drops the flags that belonged to sh.
        m.apply(&Request::EditService {
            service: spec(vip, "rr", 0),
        })
        .unwrap();
        let s = m.service(&key(vip)).unwrap();
        assert_eq!(s.sched_flags, SchedFlags::default());
        assert_eq!((s.sched, s.persistence), ("rr", 0));
    }

    #[test]
    fn test_ch_and_proxy_rules() {
        let mut m = Model::new(net());
        let vip = "10.0.0.100:80";
        add_svc(&mut m, vip);
        let k = key(vip);
        m.service_mut(&k, "").unwrap().sched = "ch";
        m.service_mut(&k, "").unwrap().ch_table_size = 2;
        add(&mut m, vip, dest("192.168.1.1", Mode::Dr, 1)).unwrap();
        add(&mut m, vip, dest("192.168.1.2", Mode::Dr, 1)).unwrap();
        assert_eq!(
            add(&mut m, vip, dest("192.168.1.3", Mode::Dr, 1)),
            Err("2 slots cannot hold the 3 reals of the service".into())
        );
        m.service_mut(&k, "").unwrap().sched = "rr";
        m.service_mut(&k, "").unwrap().ch_table_size = DEFAULT_CH_TABLE_SIZE;
        m.service_mut(&k, "").unwrap().dests.clear();
        m.service_mut(&k, "").unwrap().proxy_protocol = Some(ProxyProtocol::V2);
        assert_eq!(
            add(&mut m, vip, dest("192.168.1.1", Mode::Nat, 1)),
            Err("proxy_protocol v2 needs fullnat reals, but 192.168.1.1:80 is nat".into())
        );
        add(&mut m, vip, dest("192.168.1.1", Mode::FullNat, 1)).unwrap();
    }

    #[test]
    fn test_laddrs() {
        let mut m = Model::new(net());
        let vip = "10.0.0.100:80";
        add_svc(&mut m, vip);
        let laddr = |m: &mut Model, add: bool, a: &str| {
            let (service, addr) = (key(vip), a.parse().unwrap());
            let r = if add {
                Request::AddLaddr { service, addr }
            } else {
                Request::DelLaddr { service, addr }
            };
            m.apply(&r).map_err(|e| e.message)
        };
        // A fullnat real may come before its local address, as DPVS's procedure does it.
        add(&mut m, vip, dest("172.16.0.1", Mode::FullNat, 1)).unwrap();
        laddr(&mut m, true, "192.168.1.254").unwrap();
        laddr(&mut m, true, "10.0.0.1").unwrap();
        assert_eq!(laddr(&mut m, true, "10.0.0.1"), Err(LADDR_EXISTS.into()));
        assert_eq!(
            laddr(&mut m, true, "10.0.0.2"),
            Err("10.0.0.2 is not an address of any [[port]]; the balancer must own its local addresses".into())
        );
        assert_eq!(laddr(&mut m, false, "10.0.0.2"), Err(NO_SUCH_LADDR.into()));
        laddr(&mut m, false, "192.168.1.254").unwrap();
        assert_eq!(
            m.laddrs(None).unwrap()[0].laddrs,
            vec![LaddrEntry {
                addr: "10.0.0.1".parse().unwrap(),
                conflicts: 0,
                conns: 0
            }]
        );
        assert_eq!(
            m.laddrs(Some(&key("10.0.0.100:81"))),
            Err(NO_SUCH_SERVICE.to_string())
        );
    }

    #[test]
    fn test_timeouts() {
        let mut m = Model::new(net());
        let set = |m: &mut Model, tcp, tcp_fin, udp| {
            m.apply(&Request::SetTimeouts {
                timeouts: TimeoutValues { tcp, tcp_fin, udp },
            })
            .map_err(|e| e.message)
        };
        set(&mut m, 0, 60, 0).unwrap();
        assert_eq!(
            m.timeouts(),
            Timeouts {
                tcp: 900,
                tcp_fin: 60,
                udp: 300
            }
        );
        assert_eq!(
            set(&mut m, 1, MAX_TIMEOUT + 1, 1),
            Err("invalid timeout value `2678401' specified".into())
        );
        assert_eq!(m.timeouts().tcp, 900);
    }

    #[test]
    fn test_batch_is_atomic() {
        let mut m = Model::new(net());
        add_svc(&mut m, "10.0.0.100:80");
        let before = m.clone();
        let batch = Request::Batch {
            requests: vec![
                Request::Clear,
                Request::AddService {
                    service: spec("10.0.0.100:443", "rr", 0),
                },
                Request::AddDest {
                    service: key("10.0.0.100:80"),
                    dest: dest("192.168.1.1", Mode::Dr, 1),
                },
            ],
        };
        assert_eq!(
            m.apply(&batch),
            Err(ApplyError {
                message: SERVICE_NOT_DEFINED.into(),
                index: Some(2)
            })
        );
        assert_eq!(m, before);
        let queries = Request::Batch {
            requests: vec![Request::Clear, Request::GetTimeouts],
        };
        assert_eq!(
            m.apply(&queries).unwrap_err(),
            ApplyError {
                message: "only changes can be batched".into(),
                index: Some(1)
            }
        );
        let nested = Request::Batch {
            requests: vec![Request::Batch { requests: vec![] }],
        };
        assert_eq!(m.apply(&nested).unwrap_err().index, Some(0));
        assert_eq!(m.apply(&Request::Info).unwrap_err().message, "not a change");
        let ok = Request::Batch {
            requests: vec![
                Request::Clear,
                Request::AddService {
                    service: spec("10.0.0.100:443", "rr", 0),
                },
            ],
        };
        assert_eq!(
            m.apply(&ok).unwrap(),
            vec![
                Change::DelService(key("10.0.0.100:80")),
                Change::AddService(key("10.0.0.100:443"))
            ]
        );
        assert_eq!(m.services().len(), 1);
    }

    const CONFIG: &str = r#"
        [eal]
        args = []
        [[port]]
        name = "dpdk0"
        addrs = ["10.0.0.1/24", "10.0.0.100/32"]
        [[port]]
        name = "dpdk1"
        addrs = ["192.168.1.254/24"]
        [timeouts]
        tcp = 600
        [[service]]
        vip = "10.0.0.100:80"
        proto = "tcp"
        sched = "sh"
        sched_flags = ["sh-port"]
          [[service.real]]
          addr = "192.168.1.1"
          [[service.real]]
          addr = "192.168.1.2"
          weight = 3
        [[service]]
        vip = "10.0.0.100:53"
        proto = "udp"
        sched = "rr"
          [[service.real]]
          addr = "192.168.1.1"
    "#;

    #[test]
    fn test_from_config_and_back() {
        let config = Config::parse(CONFIG, "rvsd.toml").unwrap();
        let m = Model::from_config(&config);
        assert_eq!(m.timeouts().tcp, 600);
        assert_eq!(
            order(&m, "10.0.0.100:80"),
            ["192.168.1.2:80", "192.168.1.1:80"]
        );
        assert!(m.service(&key("10.0.0.100:80")).unwrap().sched_flags.port);
        assert_eq!(m.to_conf_services(), config.services);
    }

    #[test]
    fn test_reload() {
        let config = Config::parse(CONFIG, "rvsd.toml").unwrap();
        let mut m = Model::from_config(&config);
        let vip = "10.0.0.100:80";
        // Runtime history the reload must keep: a real quiesced after weight 5.
        for w in [5, 0] {
            m.apply(&Request::EditDest {
                service: key(vip),
                dest: dest("192.168.1.1", Mode::Dr, w),
            })
            .unwrap();
        }
        let new = CONFIG
            .replace("tcp = 600", "tcp = 700")
            .replace("weight = 3", "weight = 4")
            .replace(
                "[[service]]\n        vip = \"10.0.0.100:53\"",
                "  [[service.real]]\n          addr = \"192.168.1.3\"\n          weight = 0\n          [[service.real]]\n          addr = \"192.168.1.4\"\n        [[service]]\n        vip = \"10.0.0.100:54\"",
            );
        let config = Config::parse(&new, "rvsd.toml").unwrap();
        let changes = m.reload(&config);
        let k = key(vip);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let udp = |vip: &str| ServiceKey {
            proto: Proto::Udp,
            vip: vip.parse().unwrap(),
        };
        assert_eq!(
            changes,
            vec![
                Change::Timeouts,
                Change::DelService(udp("10.0.0.100:53")),
                Change::EditDest(k, a("192.168.1.2:80")),
                Change::EditDest(k, a("192.168.1.1:80")),
                Change::AddDest(k, a("192.168.1.3:80")),
                Change::AddDest(k, a("192.168.1.4:80")),
                Change::AddService(udp("10.0.0.100:54")),
                Change::AddDest(udp("10.0.0.100:54"), a("192.168.1.1:54")),
            ]
        );
        assert_eq!(
            order(&m, vip),
            [
                "192.168.1.4:80",
                "192.168.1.3:80",
                "192.168.1.2:80",
                "192.168.1.1:80"
            ]
        );
        let s = m.service(&k).unwrap();
        // 192.168.1.1 is back at weight 1 from the file; 192.168.1.3 was added quiesced.
        let lw: Vec<u32> = s.dests.iter().map(|d| d.last_weight).collect();
        assert_eq!(lw, [1, 0, 4, 1]);
        assert!(m.reload(&config).is_empty());
    }

    /// `sloppy` is a config-file attribute: a reload that turns it on edits the service
    /// (the snapshot rebuilds it), `to_conf` carries it, and an rvsadm edit keeps it.
    #[test]
    fn test_reload_sloppy() {
        let config = Config::parse(CONFIG, "rvsd.toml").unwrap();
        let mut m = Model::from_config(&config);
        let k = key("10.0.0.100:80");
        assert!(!m.service(&k).unwrap().sloppy);
        let new = CONFIG.replace(
            "sched_flags = [\"sh-port\"]",
            "sched_flags = [\"sh-port\"]\n        sloppy = true",
        );
        let config = Config::parse(&new, "rvsd.toml").unwrap();
        assert_eq!(m.reload(&config), vec![Change::EditService(k)]);
        assert!(m.service(&k).unwrap().sloppy);
        assert_eq!(m.to_conf_services(), config.services);
        m.apply(&Request::EditService {
            service: ServiceSpec {
                key: k,
                sched: "rr".into(),
                persistence: 0,
                netmask: Netmask::V4(std::net::Ipv4Addr::BROADCAST),
            },
        })
        .unwrap();
        assert!(m.service(&k).unwrap().sloppy);
    }

    /// A config file's IPv6 services come into the model as they are (the network of the
    /// file includes its IPv6 prefixes), reload to no change, and changes keep the file's
    /// family rules.
    #[test]
    fn test_ipv6_config_and_family_rules() {
        let text = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\n\
            addrs = [\"10.0.0.1/24\", \"2001:db8::1/64\", \"2001:db8::100/128\"]\n\
            [[service]]\nvip = \"[2001:db8::100]:443\"\nproto = \"tcp\"\nladdrs = [\"10.0.0.1\"]\n\
            persistence = 60\nnetmask = \"48\"\n\
            [[service.real]]\naddr = \"10.0.0.11:8443\"\nmode = \"fullnat\"\n";
        let config = Config::parse(text, "rvsd.toml").unwrap();
        let mut m = Model::from_config(&config);
        let k = key("[2001:db8::100]:443");
        assert_eq!(m.service(&k).unwrap().to_conf(), config.services[0]);
        assert_eq!(m.service(&k).unwrap().netmask, Netmask::V6(48));
        assert_eq!(m.reload(&config), vec![]);
        assert_eq!(
            add(
                &mut m,
                "[2001:db8::100]:443",
                dest("[2001:db8::12]:443", Mode::FullNat, 1)
            ),
            Err("2001:db8::12 is IPv6, but the local addresses are IPv4 (10.0.0.1): a fullnat real is reached from a local address of its family".to_string())
        );
        assert_eq!(
            add(
                &mut m,
                "[2001:db8::100]:443",
                dest("10.0.0.12:8443", Mode::FullNat, 1)
            ),
            Ok(vec![Change::AddDest(k, "10.0.0.12:8443".parse().unwrap())])
        );
        // A v6 dr real on the port's prefix; the port is the vip's.
        assert_eq!(
            add(
                &mut m,
                "[2001:db8::100]:443",
                dest("[2001:db8::13]:0", Mode::Dr, 1)
            ),
            Ok(vec![Change::AddDest(
                k,
                "[2001:db8::13]:443".parse().unwrap()
            )])
        );
        // -E with a mask of the other family, as a client that did not parse -M by the
        // vip's family would send it.
        let wrong = m.apply(&Request::EditService {
            service: ServiceSpec {
                netmask: Netmask::V4(std::net::Ipv4Addr::BROADCAST),
                ..spec("[2001:db8::100]:443", "rr", 60)
            },
        });
        assert_eq!(
            wrong.map_err(|e| e.message),
            Err("illegal ipv6 netmask specified".to_string())
        );
        let wrong = m.apply(&Request::AddService {
            service: ServiceSpec {
                netmask: Netmask::V6(64),
                ..spec("10.0.0.1:80", "rr", 60)
            },
        });
        assert_eq!(
            wrong.map_err(|e| e.message),
            Err("illegal virtual server persistent mask specified".to_string())
        );
    }
}
