//! From the serde structs to the typed [`Config`]: ranges, address syntax, defaults, and the
//! rules that tie sections together (owned addresses, port names, forwarding modes).
//!
//! Every check records its problem and carries on with a placeholder, so one run reports
//! everything that is wrong with the file.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::conn_table::{conn_table_bytes, human_bytes, MAX_CONN_TABLE_SIZE};
use crate::health::ServiceHealth;
use crate::locate::Field;
use crate::model::*;
use crate::net::{self, Ipv4Net};
use crate::net6::{self, Ipv6Net};
use crate::raw;

mod health;

/// A rejected value and why.
pub(crate) struct Invalid {
    pub field: Field,
    pub message: String,
}

pub(crate) fn validate(file: raw::File) -> Result<Config, Vec<Invalid>> {
    let mut c = Check {
        invalid: Vec::new(),
    };
    let root = Field::default();
    let eal = match file.eal {
        Some(eal) => Eal { args: eal.args },
        None => {
            c.fail(
                &root.key("eal"),
                "missing [eal] section: rte_eal_init needs its arguments",
            );
            Eal { args: Vec::new() }
        }
    };
    let dataplane = c.dataplane(&root.key("dataplane"), file.dataplane.unwrap_or_default());
    let control = c.control(&root.key("control"), file.control.unwrap_or_default());
    let links = c.ports(&root, &file.ports);
    let routes = c.routes(&root, &file.routes, &links);
    let (routes6, neighbors6) = (
        c.routes6(&root, &file.routes, &links),
        c.neighbors6(&root, &file.neighbors, &links),
    );
    let neighbors = c.neighbors(&root, &file.neighbors, &links);
    let timeouts = c.timeouts(&root.key("timeouts"), file.timeouts.unwrap_or_default());
    let (services, health) = c.services(
        &root,
        file.services,
        &links,
        &Routes {
            v4: &routes,
            v6: &routes6,
        },
    );
    let sync = file.sync.map(|s| c.sync(&root.key("sync"), s));
    if !c.invalid.is_empty() {
        return Err(c.invalid);
    }
    Ok(Config {
        eal,
        dataplane,
        control,
        ports: links.ports,
        routes,
        neighbors,
        routes6,
        neighbors6,
        timeouts,
        services,
        health,
        sync,
    })
}

/// The ports and what other sections look up in them.
struct Links {
    ports: Vec<Port>,
    /// Port name -> index in `ports`.
    by_name: HashMap<String, usize>,
    /// Owned address -> index of the port that owns it.
    owned: HashMap<Ipv4Addr, usize>,
    /// Owned IPv6 address -> index of the port that owns it.
    owned6: HashMap<Ipv6Addr, usize>,
    /// Kernel twin interface name -> index of its port.
    twins: HashMap<String, usize>,
}

impl Links {
    fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.subnets().any(|net| net.contains(ip))
    }

    /// Every owned address with its prefix.
    fn subnets(&self) -> impl Iterator<Item = &Ipv4Net> {
        self.ports.iter().flat_map(|p| p.addrs.iter())
    }

    /// [`net::check_host`] against the connected subnets.
    fn check_host(&self, ip: Ipv4Addr) -> Result<(), String> {
        net::check_host(ip, self.subnets())
    }

    /// [`Links::check_host`] or, for IPv6, [`net6::check_host`].
    fn check_host_ip(&self, ip: IpAddr) -> Result<(), String> {
        match ip {
            IpAddr::V4(ip) => self.check_host(ip),
            IpAddr::V6(ip) => net6::check_host(ip),
        }
    }

    /// Whether a port owns `ip`.
    fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.owned.contains_key(&ip),
            IpAddr::V6(ip) => self.owned6.contains_key(&ip),
        }
    }

    /// Whether a port's subnet (IPv4) or prefix (IPv6) contains `ip`.
    fn on_link_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.on_link(ip),
            IpAddr::V6(ip) => self
                .ports
                .iter()
                .flat_map(|p| p.addrs6.iter())
                .any(|net| net.contains(ip)),
        }
    }
}

/// The routes of both families, for the reachability of real servers.
pub(crate) struct Routes<'a> {
    pub v4: &'a [Route],
    pub v6: &'a [Route6],
}

impl Routes<'_> {
    /// Whether a `[[route]]` contains `ip`.
    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.v4.iter().any(|rt| rt.dst.contains(ip)),
            IpAddr::V6(ip) => self.v6.iter().any(|rt| rt.dst.contains(ip)),
        }
    }
}

/// `a.b.c.d[:port]` or `[2001:db8::1][:port]` (a bare IPv6 address has no port), with each
/// family's message.
fn parse_addr_port(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if net6::is_v6_addr_port(s) {
        net6::parse_addr_port(s).map(|(ip, port)| (IpAddr::V6(ip), port))
    } else {
        net::parse_addr_port(s).map(|(ip, port)| (IpAddr::V4(ip), port))
    }
}

/// An IPv4 or IPv6 address, with each family's message.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if net6::is_v6(s) {
        net6::parse_ip(s).map(IpAddr::V6)
    } else {
        net::parse_ip(s).map(IpAddr::V4)
    }
}

/// The name of `ip`'s family in an error.
fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

struct Check {
    invalid: Vec<Invalid>,
}

impl Check {
    fn fail(&mut self, field: &Field, message: impl Into<String>) {
        self.invalid.push(Invalid {
            field: field.clone(),
            message: message.into(),
        });
    }

    fn ok<T>(&mut self, field: &Field, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.fail(field, message)).ok()
    }

    fn range<T>(&mut self, field: &Field, v: i64, lo: T, hi: T) -> Option<T>
    where
        T: Copy + Display + Into<i64> + TryFrom<i64>,
    {
        if v < lo.into() || v > hi.into() {
            self.fail(field, format!("{v} is out of range {lo}..={hi}"));
            return None;
        }
        T::try_from(v).ok()
    }

    fn opt_range<T>(&mut self, field: &Field, v: Option<i64>, lo: T, hi: T, default: T) -> T
    where
        T: Copy + Display + Into<i64> + TryFrom<i64>,
    {
        v.and_then(|v| self.range(field, v, lo, hi))
            .unwrap_or(default)
    }

    fn dataplane(&mut self, f: &Field, d: raw::Dataplane) -> Dataplane {
        let conn_table_size = self.conn_table_size(&f.key("conn_table_size"), d.conn_table_size);
        let mut workers = Vec::new();
        match d.workers {
            // The lcore right after the main lcore 0, as `-l 0-1` enables.
            None => workers.push(1),
            Some(ids) if ids.is_empty() => {
                self.fail(&f.key("workers"), "at least one worker lcore is required")
            }
            Some(ids) => {
                for (i, &id) in ids.iter().enumerate() {
                    let field = f.item("workers", i);
                    let Some(id) = self.range(&field, id, 0, u32::MAX) else {
                        continue;
                    };
                    if workers.contains(&id) {
                        self.fail(&field, format!("lcore {id} is listed twice"));
                    } else {
                        workers.push(id);
                    }
                }
            }
        }
        let laddr_steering = d.laddr_steering.unwrap_or_default();
        let n = workers.len();
        if laddr_steering == LaddrSteering::RteFlow && (n < 2 || !n.is_power_of_two()) {
            self.fail(
                &f.key("laddr_steering"),
                format!(
                    "\"rte_flow\" needs a power-of-two number of workers, at least 2 (the rules \
                     match the low bits of the local port); {n} given: use \"auto\" or \"handover\""
                ),
            );
        }
        let laddr_ports = self.laddr_ports(f, d.laddr_ports, n);
        Dataplane {
            workers,
            laddr_steering,
            laddr_ports,
            conn_table_size,
            conn_table_size6: match d.conn_table_size6 {
                None => crate::conn_table::default_conn_table_size6(conn_table_size),
                v => self.conn_table_size(&f.key("conn_table_size6"), v),
            },
            burst: self.opt_range(&f.key("burst"), d.burst, 1, MAX_BURST, DEFAULT_BURST),
            mbufs: self.opt_range(&f.key("mbufs"), d.mbufs, 1, u32::MAX, DEFAULT_MBUFS),
            expire_nodest_conn: d.expire_nodest_conn.unwrap_or(false),
            idle_sleep_us: self.opt_range(
                &f.key("idle_sleep_us"),
                d.idle_sleep_us,
                0,
                MAX_IDLE_SLEEP_US,
                0,
            ),
        }
    }

    /// Entries per worker, within what the data plane's table can index; a size above that
    /// is reported with the memory it would take.
    fn conn_table_size(&mut self, field: &Field, v: Option<i64>) -> u32 {
        match v {
            Some(n) if n > i64::from(MAX_CONN_TABLE_SIZE) => {
                let bytes = conn_table_bytes(n.unsigned_abs());
                self.fail(
                    field,
                    format!(
                        "{n} is out of range 1..={MAX_CONN_TABLE_SIZE}: the connection table of \
                         each worker holds at most 2^31 entries ({n} would take {} per worker)",
                        human_bytes(bytes)
                    ),
                );
                DEFAULT_CONN_TABLE_SIZE
            }
            v => self.opt_range(field, v, 1, MAX_CONN_TABLE_SIZE, DEFAULT_CONN_TABLE_SIZE),
        }
    }

    /// `[dataplane] laddr_ports = [min, max]`: every worker must own at least one port of
    /// the range (worker `w` of `n` uses the ports with `port % n == w`).
    fn laddr_ports(&mut self, f: &Field, ports: Option<Vec<i64>>, workers: usize) -> (u16, u16) {
        let field = f.key("laddr_ports");
        let Some(ports) = ports else {
            return DEFAULT_LADDR_PORTS;
        };
        let [lo, hi] = ports[..] else {
            self.fail(
                &field,
                format!("needs two ports, [lowest, highest]; {} given", ports.len()),
            );
            return DEFAULT_LADDR_PORTS;
        };
        let (Some(lo), Some(hi)) = (
            self.range(&f.item("laddr_ports", 0), lo, 1u16, u16::MAX),
            self.range(&f.item("laddr_ports", 1), hi, 1u16, u16::MAX),
        ) else {
            return DEFAULT_LADDR_PORTS;
        };
        let count = usize::from(hi).saturating_sub(usize::from(lo)) + 1;
        if lo > hi {
            self.fail(&field, format!("{lo} is above {hi}"));
        } else if count < workers.max(1) {
            self.fail(
                &field,
                format!("{count} ports for {workers} workers: each worker needs ports of its own"),
            );
        }
        (lo, hi)
    }

    fn control(&mut self, f: &Field, c: raw::Control) -> Control {
        let socket = c.socket.unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        if socket.is_empty() {
            self.fail(&f.key("socket"), "the socket path is empty");
        }
        let prometheus = c.prometheus.and_then(|s| {
            let field = f.key("prometheus");
            match s.parse::<SocketAddr>() {
                Err(_) => {
                    self.fail(&field, format!("{s:?} is not a socket address (ip:port)"));
                    None
                }
                Ok(sa) if sa.port() == 0 => {
                    self.fail(
                        &field,
                        format!("{s:?} has port 0; the endpoint needs a fixed port"),
                    );
                    None
                }
                Ok(sa) => Some(sa),
            }
        });
        Control {
            socket: PathBuf::from(socket),
            prometheus,
        }
    }

    fn ports(&mut self, root: &Field, raw: &[raw::Port]) -> Links {
        let mut links = Links {
            ports: Vec::new(),
            by_name: HashMap::new(),
            owned: HashMap::new(),
            owned6: HashMap::new(),
            twins: HashMap::new(),
        };
        if raw.is_empty() {
            self.fail(&root.key("port"), "at least one [[port]] is required");
        }
        let mut accepted = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let f = root.item("port", i);
            let id = self.ok(&f.key("name"), port_id(&p.name)).unwrap_or(0);
            if let Some(&first) = links.by_name.get(&p.name) {
                self.fail(
                    &f.key("name"),
                    format!("{:?} is already declared by port[{first}]", p.name),
                );
            }
            if p.addrs.is_empty() {
                self.fail(
                    &f.key("addrs"),
                    "a port needs at least one address the balancer owns on its link",
                );
            }
            let mut addrs = Vec::new();
            let mut addrs6 = Vec::new();
            for (k, s) in p.addrs.iter().enumerate() {
                let field = f.item("addrs", k);
                if net6::is_v6(s) {
                    let Some(net) = self.ok(&field, net6::parse_net(s)) else {
                        continue;
                    };
                    if let Err(why) = net6::check_owned(&net) {
                        self.fail(&field, why);
                    } else if let Some(&owner) = links.owned6.get(&net.addr) {
                        self.fail(
                            &field,
                            format!("{} is already owned by port[{owner}]", net.addr),
                        );
                    } else {
                        links.owned6.insert(net.addr, i);
                        addrs6.push(net);
                    }
                    continue;
                }
                let Some(net) = self.ok(&field, net::parse_net(s)) else {
                    continue;
                };
                if let Err(why) = net::check_host(net.addr, []) {
                    self.fail(&field, why);
                } else if let Some(&owner) = links.owned.get(&net.addr) {
                    self.fail(
                        &field,
                        format!("{} is already owned by port[{owner}]", net.addr),
                    );
                } else {
                    links.owned.insert(net.addr, i);
                    addrs.push(net);
                    accepted.push((field, net.addr));
                }
            }
            let mac = p
                .mac
                .as_ref()
                .and_then(|m| self.ok(&f.key("mac"), net::parse_unicast_mac(m)));
            links.by_name.entry(p.name.clone()).or_insert(i);
            links.ports.push(Port {
                name: p.name.clone(),
                id,
                addrs,
                addrs6,
                mac,
                mtu: self.opt_range(&f.key("mtu"), p.mtu, MIN_MTU, u16::MAX, DEFAULT_MTU),
                exception: p
                    .exception
                    .as_ref()
                    .and_then(|e| self.exception(&f.key("exception"), e, i, &mut links.twins)),
            });
        }
        // An owned address must not be the network or broadcast address of any subnet, its
        // own or another port's: ARP would announce it and replies would come from it.
        for (field, ip) in accepted {
            if let Err(why) = links.check_host(ip) {
                self.fail(&field, why);
            }
        }
        links
    }

    /// `[sync]`: the daemons rvsd starts and the sysctls of the master's choice of packets.
    fn sync(&mut self, f: &Field, s: raw::Sync) -> SyncConfig {
        let group = match &s.group {
            None => DEFAULT_SYNC_GROUP,
            Some(g) => self
                .ok(&f.key("group"), net::parse_ip(g))
                .unwrap_or(DEFAULT_SYNC_GROUP),
        };
        let port = self.opt_range(&f.key("port"), s.port, 1, u16::MAX, DEFAULT_SYNC_PORT);
        let ttl = self.opt_range(&f.key("ttl"), s.ttl, 1, u8::MAX, DEFAULT_SYNC_TTL);
        let syncid = self.opt_range(&f.key("syncid"), s.syncid, 0, u8::MAX, 0);
        let maxlen = s
            .maxlen
            .and_then(|m| self.range(&f.key("maxlen"), m, 1, MAX_SYNC_MAXLEN));
        let roles: &[SyncRole] = match s.role {
            raw::SyncRoles::Master => &[SyncRole::Master],
            raw::SyncRoles::Backup => &[SyncRole::Backup],
            raw::SyncRoles::Both => &[SyncRole::Master, SyncRole::Backup],
        };
        let daemons: Vec<SyncDaemon> = roles
            .iter()
            .map(|&role| SyncDaemon {
                role,
                interface: s.interface.clone(),
                syncid,
                maxlen,
                group,
                port,
                ttl,
            })
            .collect();
        // Ranges were checked above; what is left is the interface name and the group.
        if let Some(d) = daemons.first() {
            for (key, message) in d.problems() {
                self.fail(&f.key(key), message);
            }
        }
        // The kernel's sysctl handler takes two ints >= 0 and refuses threshold >= period
        // unless period is 0 (then a connection is synced once, at its threshold-th packet).
        let int_max = i32::MAX as u32;
        let threshold = self.opt_range(
            &f.key("sync_threshold"),
            s.sync_threshold,
            0,
            int_max,
            DEFAULT_SYNC_THRESHOLD,
        );
        let period = self.opt_range(
            &f.key("sync_period"),
            s.sync_period,
            0,
            int_max,
            DEFAULT_SYNC_PERIOD,
        );
        if period > 0 && threshold >= period {
            self.fail(
                &f.key("sync_threshold"),
                format!(
                    "{threshold} is not below sync_period {period}: a connection is synced when \
                     its packet count modulo the period equals the threshold (sync_period = 0 \
                     syncs once, at the threshold)"
                ),
            );
        }
        SyncConfig {
            daemons,
            threshold,
            period,
            backup_only: s.backup_only.unwrap_or(false),
        }
    }

    /// `[[port]] exception`: the kernel twin of port `index`; its name must be a valid Linux
    /// interface name that no other port's twin has.
    fn exception(
        &mut self,
        f: &Field,
        e: &raw::Exception,
        index: usize,
        twins: &mut HashMap<String, usize>,
    ) -> Option<Exception> {
        let punt_pps = self.opt_range(
            &f.key("punt_pps"),
            e.punt_pps,
            1,
            u32::MAX,
            DEFAULT_PUNT_PPS,
        );
        let field = f.key("iface");
        if let Err(message) = check_ifname(&e.iface) {
            self.fail(&field, message);
            return None;
        }
        if let Some(&first) = twins.get(&e.iface) {
            self.fail(
                &field,
                format!("{:?} is already the twin of port[{first}]", e.iface),
            );
            return None;
        }
        twins.insert(e.iface.clone(), index);
        Some(Exception {
            iface: e.iface.clone(),
            kind: e.kind.unwrap_or_default(),
            punt_pps,
        })
    }

    /// Index of the declared port named `name`.
    fn port_ref(&mut self, field: &Field, name: &str, links: &Links) -> Option<usize> {
        let found = links.by_name.get(name).copied();
        if found.is_none() {
            self.fail(field, format!("{name:?} is not a declared [[port]]"));
        }
        found
    }

    fn routes(&mut self, root: &Field, raw: &[raw::Route], links: &Links) -> Vec<Route> {
        let mut routes = Vec::new();
        let mut seen = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            if net6::is_v6(&r.dst) {
                continue;
            }
            let f = root.item("route", i);
            let dst = self
                .ok(&f.key("dst"), net::parse_net(&r.dst))
                .and_then(|dst| {
                    if dst.addr != dst.network() {
                        let net = Ipv4Net {
                            addr: dst.network(),
                            prefix_len: dst.prefix_len,
                        };
                        self.fail(
                            &f.key("dst"),
                            format!("{:?} has host bits set; the network is {net}", r.dst),
                        );
                        return None;
                    }
                    if let Some(&first) = seen.get(&dst) {
                        self.fail(
                            &f.key("dst"),
                            format!("{dst} is already routed by route[{first}]"),
                        );
                    } else {
                        seen.insert(dst, i);
                    }
                    Some(dst)
                });
            let port = self.port_ref(&f.key("port"), &r.port, links);
            let via = r.via.as_ref().and_then(|s| {
                let field = f.key("via");
                let via = self.ok(&field, net::parse_ip(s))?;
                if let Err(why) = links.check_host(via) {
                    self.fail(&field, why);
                    return None;
                }
                let port = &links.ports[port?];
                // As Linux: a gateway must be reachable on the link itself.
                if !port.addrs.iter().any(|net| net.contains(via)) {
                    let nets: Vec<String> = port.addrs.iter().map(|n| n.to_string()).collect();
                    self.fail(
                        &field,
                        format!(
                            "{via} is not on a subnet of {} ({})",
                            port.name,
                            nets.join(", ")
                        ),
                    );
                }
                Some(via)
            });
            if let (Some(dst), Some(port)) = (dst, port) {
                routes.push(Route {
                    dst,
                    via,
                    port: links.ports[port].id,
                });
            }
        }
        routes
    }

    fn neighbors(&mut self, root: &Field, raw: &[raw::Neighbor], links: &Links) -> Vec<Neighbor> {
        let host = |ip: &str| {
            let ip = net::parse_ip(ip)?;
            links.check_host(ip).map(|()| ip)
        };
        self.neighbor_entries(root, raw, links, false, host)
            .into_iter()
            .map(|(ip, mac, port)| Neighbor { ip, mac, port })
            .collect()
    }
    /// `[[route]]` entries whose `dst` is an IPv6 prefix.
    fn routes6(&mut self, root: &Field, raw: &[raw::Route], links: &Links) -> Vec<Route6> {
        let mut routes = Vec::new();
        let mut seen = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            if !net6::is_v6(&r.dst) {
                continue;
            }
            let f = root.item("route", i);
            let dst = self
                .ok(&f.key("dst"), net6::parse_net(&r.dst))
                .and_then(|dst| {
                    if dst.addr != dst.network() {
                        let net = Ipv6Net {
                            addr: dst.network(),
                            prefix_len: dst.prefix_len,
                        };
                        self.fail(
                            &f.key("dst"),
                            format!("{:?} has host bits set; the network is {net}", r.dst),
                        );
                        return None;
                    }
                    if let Some(&first) = seen.get(&dst) {
                        self.fail(
                            &f.key("dst"),
                            format!("{dst} is already routed by route[{first}]"),
                        );
                    } else {
                        seen.insert(dst, i);
                    }
                    Some(dst)
                });
            let port = self.port_ref(&f.key("port"), &r.port, links);
            let via = r.via.as_ref().and_then(|s| {
                let field = f.key("via");
                let via = self.ok(&field, net6::parse_ip(s))?;
                if let Err(why) = net6::check_host(via) {
                    self.fail(&field, why);
                    return None;
                }
                let port = &links.ports[port?];
                // As Linux: a gateway is on the link, by a prefix of the port or by being
                // link-local (the usual IPv6 default route: `::/0 via fe80::1`).
                if !net6::is_link_local(via) && !port.addrs6.iter().any(|net| net.contains(via)) {
                    let nets: Vec<String> = port.addrs6.iter().map(|n| n.to_string()).collect();
                    self.fail(
                        &field,
                        format!(
                            "{via} is neither link-local (fe80::/10) nor on a prefix of {} ({})",
                            port.name,
                            if nets.is_empty() {
                                "it has no IPv6 address".to_string()
                            } else {
                                nets.join(", ")
                            }
                        ),
                    );
                }
                Some(via)
            });
            if let (Some(dst), Some(port)) = (dst, port) {
                routes.push(Route6 {
                    dst,
                    via,
                    port: links.ports[port].id,
                });
            }
        }
        routes
    }

    /// `[[neighbor]]` entries whose `ip` is an IPv6 address.
    fn neighbors6(&mut self, root: &Field, raw: &[raw::Neighbor], links: &Links) -> Vec<Neighbor6> {
        let host = |ip: &str| {
            let ip = net6::parse_ip(ip)?;
            net6::check_host(ip)?;
            match links.owned6.get(&ip) {
                Some(owner) => Err(format!("{ip} is owned by port[{owner}]")),
                None => Ok(ip),
            }
        };
        self.neighbor_entries(root, raw, links, true, host)
            .into_iter()
            .map(|(ip, mac, port)| Neighbor6 { ip, mac, port })
            .collect()
    }

    /// The `[[neighbor]]` entries of one family (`v6`): each address as `host` reads and
    /// checks it, its unicast MAC and its port's id, one entry per address and port.
    fn neighbor_entries<A: Copy + Eq + std::hash::Hash + Display>(
        &mut self,
        root: &Field,
        raw: &[raw::Neighbor],
        links: &Links,
        v6: bool,
        host: impl Fn(&str) -> Result<A, String>,
    ) -> Vec<(A, [u8; 6], u16)> {
        let mut entries = Vec::new();
        let mut seen = HashMap::new();
        for (i, n) in raw.iter().enumerate() {
            if net6::is_v6(&n.ip) != v6 {
                continue;
            }
            let f = root.item("neighbor", i);
            let ip = self.ok(&f.key("ip"), host(&n.ip));
            let mac = self.ok(&f.key("mac"), net::parse_unicast_mac(&n.mac));
            let port = self
                .port_ref(&f.key("port"), &n.port, links)
                .map(|p| links.ports[p].id);
            let (Some(ip), Some(mac), Some(port)) = (ip, mac, port) else {
                continue;
            };
            if let Some(&first) = seen.get(&(port, ip)) {
                self.fail(
                    &f.key("ip"),
                    format!(
                        "{ip} on {} already has a static entry (neighbor[{first}])",
                        n.port
                    ),
                );
                continue;
            }
            seen.insert((port, ip), i);
            entries.push((ip, mac, port));
        }
        entries
    }

    fn timeouts(&mut self, f: &Field, t: raw::Timeouts) -> Timeouts {
        let defaults = Timeouts::default();
        // 0 means "the default", as `ipvsadm --set` reads 0 as "leave unchanged".
        let mut secs = |key: &'static str, v: Option<i64>, default: u32| match self.opt_range(
            &f.key(key),
            v,
            0,
            MAX_TIMEOUT,
            default,
        ) {
            0 => default,
            secs => secs,
        };
        Timeouts {
            tcp: secs("tcp", t.tcp, defaults.tcp),
            tcp_fin: secs("tcp_fin", t.tcp_fin, defaults.tcp_fin),
            udp: secs("udp", t.udp, defaults.udp),
        }
    }

    fn services(
        &mut self,
        root: &Field,
        raw: Vec<raw::Service>,
        links: &Links,
        routes: &Routes,
    ) -> (Vec<Service>, Vec<ServiceHealth>) {
        let mut services = Vec::new();
        let mut health = Vec::new();
        let mut seen = HashMap::new();
        for (i, s) in raw.into_iter().enumerate() {
            let f = root.item("service", i);
            let Some((svc, h)) = self.service(&f, s, links, routes) else {
                continue;
            };
            if let Some(&first) = seen.get(&(svc.proto, svc.vip)) {
                self.fail(
                    &f.key("vip"),
                    format!(
                        "{} {} is already defined by service[{first}]",
                        svc.proto, svc.vip
                    ),
                );
                continue;
            }
            seen.insert((svc.proto, svc.vip), i);
            services.push(svc);
            health.push(h);
        }
        (services, health)
    }

    fn service(
        &mut self,
        f: &Field,
        s: raw::Service,
        links: &Links,
        routes: &Routes,
    ) -> Option<(Service, ServiceHealth)> {
        let vip = self.vip(&f.key("vip"), &s.vip, links);
        let persistence = self.opt_range(&f.key("persistence"), s.persistence, 0, MAX_TIMEOUT, 0);
        if let Some(vip) = vip {
            if vip.port() == 0 && s.persistence.unwrap_or(0) == 0 {
                // ipvsadm's wording: a port-zero service forwards every port, which only makes
                // sense when persistence keeps a client's ports together.
                self.fail(
                    &f.key("vip"),
                    "Zero port specified for non-persistent service",
                );
            }
        }
        // As ipvsadm's -M: any dotted mask, kept even without persistence (where it has no
        // effect until persistence is set), so that rvsadm and the file accept the same.
        // An IPv6 service's is a prefix length, as ipvsadm's -M for one.
        let host = Netmask::host(vip.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |v| v.ip()));
        let netmask = match (&s.netmask, host) {
            (None, _) => host,
            (Some(m), Netmask::V4(_)) => self
                .ok(&f.key("netmask"), net::parse_netmask(m).map(Netmask::V4))
                .unwrap_or(host),
            (Some(m), Netmask::V6(_)) => match m.parse::<u8>() {
                Ok(len @ 1..=128) if m.bytes().all(|b| b.is_ascii_digit()) => Netmask::V6(len),
                _ => {
                    self.fail(
                        &f.key("netmask"),
                        format!(
                            "{m:?} is not a prefix length 1..=128 (an IPv6 service's netmask, as ipvsadm -M 64)"
                        ),
                    );
                    host
                }
            },
        };
        let sched = self.sched(&f.key("sched"), s.sched.as_deref());
        let sched_flags = self.sched_flags(f, &s.sched_flags, sched);
        let ch_table_size = match s.ch_table_size {
            None => DEFAULT_CH_TABLE_SIZE,
            Some(n) => {
                let field = f.key("ch_table_size");
                if sched.is_some_and(|s| s != "ch") {
                    self.fail(&field, "ch_table_size only applies to sched = \"ch\"");
                }
                match self.range(&field, n, 2, MAX_CH_TABLE_SIZE) {
                    Some(n) if !is_prime(n) => {
                        self.fail(&field, format!("{n} is not a prime"));
                        DEFAULT_CH_TABLE_SIZE
                    }
                    Some(n) if (n as usize) < s.reals.len() => {
                        self.fail(
                            &field,
                            format!(
                                "{n} slots cannot hold the {} reals of the service",
                                s.reals.len()
                            ),
                        );
                        DEFAULT_CH_TABLE_SIZE
                    }
                    Some(n) => n,
                    None => DEFAULT_CH_TABLE_SIZE,
                }
            }
        };
        let mut laddrs = Vec::new();
        for (k, a) in s.laddrs.iter().enumerate() {
            let field = f.item("laddrs", k);
            let Some(ip) = self.ok(&field, parse_ip(a)) else {
                continue;
            };
            let first: Option<&IpAddr> = laddrs.first();
            if laddrs.contains(&ip) {
                self.fail(&field, format!("{ip} is listed twice"));
            } else if vip.is_some_and(|v| v.is_ipv4() && ip.is_ipv6()) {
                self.fail(
                    &field,
                    format!(
                        "{ip} is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 (4→6 is not supported)"
                    ),
                );
            } else if let Some(first) = first.filter(|f| f.is_ipv4() != ip.is_ipv4()) {
                self.fail(
                    &field,
                    format!(
                        "{ip} is {}, but laddrs[0] {first} is {}: the local addresses of a service are of one family",
                        family(ip),
                        family(*first)
                    ),
                );
            } else if !links.owns(ip) {
                self.fail(
                    &field,
                    format!(
                        "{ip} is not an address of any [[port]]; the balancer must own its local addresses"
                    ),
                );
            } else {
                laddrs.push(ip);
            }
        }
        let mut reals = Vec::new();
        let mut seen = HashMap::new();
        for (j, r) in s.reals.iter().enumerate() {
            let rf = f.item("real", j);
            let Some(real) = self.real(&rf, r, vip, links, routes) else {
                continue;
            };
            if !self.real_family(&rf.key("addr"), &real, vip, &laddrs) {
                continue;
            }
            if let Some(&first) = seen.get(&real.addr) {
                self.fail(
                    &rf.key("addr"),
                    format!(
                        "{} is already a real of this service (real[{first}])",
                        real.addr
                    ),
                );
                continue;
            }
            seen.insert(real.addr, j);
            reals.push((j, real));
        }
        let toa = self.toa(f, &s);
        let vip_mode = vip.map_or(VipMode::Static, |vip| {
            self.vip_mode(&f.key("vip_mode"), s.vip_mode, vip.ip(), links)
        });
        if let Some(pp) = s.proxy_protocol {
            let field = f.key("proxy_protocol");
            if s.proto != Proto::Tcp {
                self.fail(
                    &field,
                    format!(
                        "proxy_protocol needs proto = \"tcp\", not {:?}",
                        s.proto.to_string()
                    ),
                );
            } else if let Some((j, mode)) = not_fullnat(&s.reals) {
                self.fail(
                    &field,
                    format!("proxy_protocol {pp} needs fullnat reals, but real[{j}] is {mode}"),
                );
            }
        }
        let sloppy = s.sloppy.unwrap_or(false);
        if sloppy && s.proto != Proto::Tcp {
            self.fail(
                &f.key("sloppy"),
                "sloppy only applies to proto = \"tcp\": every UDP datagram is scheduled anyway",
            );
        }
        let vip = vip?;
        let health = self.service_health(f, &s, vip, &reals, links, routes);
        let reals = reals.into_iter().map(|(_, r)| r).collect();
        let svc = Service {
            vip,
            proto: s.proto,
            sched: sched?,
            sched_flags,
            persistence,
            netmask,
            ch_table_size,
            laddrs,
            proxy_protocol: s.proxy_protocol,
            toa,
            vip_mode,
            sloppy,
            reals,
        };
        Some((svc, health))
    }

    /// `vip_mode`, by default `static` for a VIP among the ports' addresses and `kernel` for
    /// any other; `kernel` follows a twin's addresses, so some port needs one.
    fn vip_mode(
        &mut self,
        field: &Field,
        mode: Option<VipMode>,
        vip: IpAddr,
        links: &Links,
    ) -> VipMode {
        let owned = links.owns(vip);
        let mode = mode.unwrap_or(if owned {
            VipMode::Static
        } else {
            VipMode::Kernel
        });
        match mode {
            VipMode::Static if !owned => self.fail(
                field,
                format!(
                    "\"static\" needs {vip} among the addrs of a [[port]]; use \"kernel\" (served \
                     while a kernel twin holds it) or \"routed\" (reached by a route)"
                ),
            ),
            VipMode::Kernel if links.twins.is_empty() => self.fail(
                field,
                format!(
                    "\"kernel\" (the default for {vip}, which is no [[port]] address) follows the \
                     addresses of a kernel twin, but no [[port]] has one: add exception = \
                     {{ iface = \"rvs0\" }} to a port, put {vip} in its addrs, or use \"routed\""
                ),
            ),
            VipMode::Routed if owned => self.fail(
                field,
                format!(
                    "\"routed\" never answers ARP, but {vip} is a [[port]] address, which rvs \
                     answers ARP for: remove it from addrs or use \"static\""
                ),
            ),
            _ => {}
        }
        mode
    }

    fn vip(&mut self, field: &Field, s: &str, links: &Links) -> Option<SocketAddr> {
        let (ip, port) = self.ok(field, parse_addr_port(s))?;
        let Some(port) = port else {
            let form = if ip.is_ipv4() {
                "a.b.c.d:port"
            } else {
                "[2001:db8::1]:port"
            };
            self.fail(
                field,
                format!("{s:?} has no port ({form}; port 0 with persistence for all ports)"),
            );
            return None;
        };
        // Any host address may be a VIP (vip_mode says how it reaches rvs), but only one.
        if let Err(why) = links.check_host_ip(ip) {
            self.fail(field, why);
            return None;
        }
        Some(SocketAddr::new(ip, port))
    }

    /// The address families a real may have in its service (it validated on its own): the
    /// vip's, or for an IPv6 fullnat service IPv4 behind IPv4 local addresses (NAT64, as
    /// DPVS); a fullnat real's family is its local addresses'. False after a failure.
    fn real_family(
        &mut self,
        field: &Field,
        real: &Real,
        vip: Option<SocketAddr>,
        laddrs: &[IpAddr],
    ) -> bool {
        let (Some(vip), ip) = (vip, real.addr.ip()) else {
            return true;
        };
        let why = if vip.is_ipv4() && ip.is_ipv6() {
            format!(
                "{ip} is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 reals (4→6 is not supported)"
            )
        } else if real.mode != Mode::FullNat && vip.is_ipv4() != ip.is_ipv4() {
            format!(
                "{ip} is IPv4, but the vip is IPv6: {} keeps the client's packet, so its reals are IPv6 (only fullnat reaches IPv4 reals, NAT64)",
                real.mode
            )
        } else if let Some(lip) = laddrs
            .first()
            .filter(|l| real.mode == Mode::FullNat && l.is_ipv4() != ip.is_ipv4())
        {
            format!(
                "{ip} is {}, but the local addresses are {} ({lip}): a fullnat real is reached from a local address of its family",
                family(ip),
                family(*lip)
            )
        } else {
            return true;
        };
        self.fail(field, why);
        false
    }

    fn sched(&mut self, field: &Field, name: Option<&str>) -> Option<&'static str> {
        let name = name.unwrap_or(DEFAULT_SCHED);
        let found = sched::NAMES.iter().copied().find(|&n| n == name);
        if found.is_none() {
            self.fail(
                field,
                format!("{name:?} is not a scheduler ({})", sched::NAMES.join(", ")),
            );
        }
        found
    }

    fn sched_flags(
        &mut self,
        f: &Field,
        raw: &[raw::SchedFlag],
        sched: Option<&'static str>,
    ) -> SchedFlags {
        let mut flags = SchedFlags::default();
        for (k, &flag) in raw.iter().enumerate() {
            let field = f.item("sched_flags", k);
            if raw[..k].contains(&flag) {
                self.fail(&field, format!("{:?} is listed twice", flag.name()));
                continue;
            }
            // As keepalived and ipvsadm: sh-* flags mean nothing to another scheduler.
            if sched.is_some_and(|s| s != flag.sched()) {
                self.fail(
                    &field,
                    format!("{:?} needs sched = {:?}", flag.name(), flag.sched()),
                );
                continue;
            }
            match flag {
                raw::SchedFlag::ShPort | raw::SchedFlag::MhPort => flags.port = true,
                raw::SchedFlag::ShFallback | raw::SchedFlag::MhFallback => flags.fallback = true,
            }
        }
        flags
    }

    fn real(
        &mut self,
        f: &Field,
        r: &raw::Real,
        vip: Option<SocketAddr>,
        links: &Links,
        routes: &Routes,
    ) -> Option<Real> {
        let mode = r.mode.unwrap_or(DEFAULT_MODE);
        let weight = self.opt_range(&f.key("weight"), r.weight, 0, MAX_WEIGHT, DEFAULT_WEIGHT);
        let u_threshold = self.opt_range(&f.key("u_threshold"), r.u_threshold, 0, MAX_THRESHOLD, 0);
        let l_threshold = self.opt_range(&f.key("l_threshold"), r.l_threshold, 0, MAX_THRESHOLD, 0);
        if l_threshold > u_threshold {
            // The kernel refuses this even when u_threshold is 0 (unlimited).
            self.fail(
                &f.key("l_threshold"),
                format!("{l_threshold} is higher than u_threshold {u_threshold}"),
            );
        }
        let field = f.key("addr");
        let (ip, port) = self.ok(&field, parse_addr_port(&r.addr))?;
        // As IPVS: a real server must be one host (ip_vs_new_dest wants RTN_UNICAST).
        if let Err(why) = links.check_host_ip(ip) {
            self.fail(&field, why);
            return None;
        }
        if links.owns(ip) {
            self.fail(&field, format!("{ip} is an address of the balancer itself"));
            return None;
        }
        if mode == Mode::Dr && !links.on_link_ip(ip) {
            self.fail(
                &field,
                format!("dr needs {ip} on the link, but no [[port]] subnet contains it"),
            );
        } else if !links.on_link_ip(ip) && !routes.contains(ip) {
            self.fail(
                &field,
                format!("no route to {ip}: no [[port]] subnet or [[route]] contains it"),
            );
        }
        let vport = vip?.port();
        // ipvsadm gives a real without port the vip port; 0 says the same.
        let port = match port {
            None | Some(0) => vport,
            Some(p) if vport == 0 => {
                self.fail(
                    &field,
                    format!(
                        "port {p} on a port-zero service, whose connections keep their destination port (write {ip})"
                    ),
                );
                return None;
            }
            Some(p) if p != vport && matches!(mode, Mode::Dr | Mode::Tun) => {
                // ipvsadm silently forces the vip port; a file that says otherwise is a mistake.
                self.fail(
                    &field,
                    format!(
                        "port {p} differs from the vip port {vport}; {mode} keeps the destination port (write {} or {ip})",
                        SocketAddr::new(ip, vport)
                    ),
                );
                return None;
            }
            Some(p) => p,
        };
        let tunnel = match &r.tunnel {
            Some(t) => self.tunnel(&f.key("tunnel"), t, mode),
            None => Tunnel::default(),
        };
        Some(Real {
            addr: SocketAddr::new(ip, port),
            mode,
            weight,
            u_threshold,
            l_threshold,
            tunnel,
        })
    }

    /// A real's `tunnel`, with ipvsadm 1.31's rules (`tunnel_types_v_options`): gue needs a
    /// port, only gue takes one, ipip takes no checksum option and only gue remcsum.
    fn tunnel(&mut self, f: &Field, t: &raw::Tunnel, mode: Mode) -> Tunnel {
        if mode != Mode::Tun {
            self.fail(
                f,
                format!("tunnel needs mode = \"tun\", not {:?}", mode.as_str()),
            );
        }
        let port = match (t.kind, t.port) {
            (TunKind::Gue, None) => {
                self.fail(f, "type = \"gue\" needs a port (the GUE destination port)");
                0
            }
            (TunKind::Gue, Some(p)) => self.range(&f.key("port"), p, 1, u16::MAX).unwrap_or(0),
            (kind, Some(_)) => {
                let why = format!("port is only for type = \"gue\", not {:?}", kind.as_str());
                self.fail(&f.key("port"), why);
                0
            }
            (_, None) => 0,
        };
        let csum = t.csum.unwrap_or_default();
        match (t.kind, t.csum) {
            (TunKind::Ipip, Some(c)) => self.fail(
                &f.key("csum"),
                format!("csum {:?} needs type = \"gue\" or \"gre\"", c.as_str()),
            ),
            (TunKind::Gre, Some(TunCsum::Remcsum)) => {
                self.fail(&f.key("csum"), "csum \"remcsum\" needs type = \"gue\"")
            }
            _ => {}
        }
        Tunnel {
            kind: t.kind,
            port,
            csum,
        }
    }

    /// TOA is on by default for TCP unless PROXY protocol carries the client address instead;
    /// either way it only ever touches fullnat connections.
    fn toa(&mut self, f: &Field, s: &raw::Service) -> Option<ToaPlacement> {
        let field = f.key("toa");
        if s.toa == Some(true) {
            if s.proto != Proto::Tcp {
                self.fail(
                    &field,
                    format!("toa needs proto = \"tcp\", not {:?}", s.proto.to_string()),
                );
            } else if s.proxy_protocol.is_some() {
                self.fail(
                    &field,
                    "toa and proxy_protocol exclude each other: the real server learns the client address from one of them",
                );
            } else if let Some((j, mode)) = not_fullnat(&s.reals) {
                self.fail(
                    &field,
                    format!("toa needs fullnat reals, but real[{j}] is {mode}"),
                );
            }
        }
        let on = s
            .toa
            .unwrap_or(s.proto == Proto::Tcp && s.proxy_protocol.is_none());
        if !on && s.toa_placement.is_some() {
            self.fail(
                &f.key("toa_placement"),
                "toa_placement needs toa, which is off for this service",
            );
        }
        on.then(|| s.toa_placement.unwrap_or(ToaPlacement::Ack))
    }
}

/// `dpdk<N>` with `N` a DPDK port id written without leading zeros.
fn port_id(name: &str) -> Result<u16, String> {
    name.strip_prefix("dpdk")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| *n == "0" || !n.starts_with('0'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{name:?} is not a DPDK port name (dpdk<N>, N the DPDK port id)"))
}

/// The first real, by index in the file, whose mode is not fullnat.
fn not_fullnat(reals: &[raw::Real]) -> Option<(usize, Mode)> {
    reals
        .iter()
        .map(|r| r.mode.unwrap_or(DEFAULT_MODE))
        .enumerate()
        .find(|&(_, mode)| mode != Mode::FullNat)
}

fn is_prime(n: u32) -> bool {
    n >= 2 && (2..).take_while(|&d| d <= n / d).all(|d| n % d != 0)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_is_prime() {
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(DEFAULT_CH_TABLE_SIZE));
        assert!(is_prime(MAX_CH_TABLE_SIZE));
        assert!(!is_prime(65_536));
    }

    #[test]
    fn test_port_id() {
        assert_eq!(port_id("dpdk0"), Ok(0));
        assert_eq!(port_id("dpdk65535"), Ok(65535));
        for bad in [
            "dpdk",
            "dpdk01",
            "dpdk65536",
            "eth0",
            "dpdk-1",
            "DPDK0",
            "dpdk+1",
        ] {
            assert_eq!(
                port_id(bad),
                Err(format!(
                    "{bad:?} is not a DPDK port name (dpdk<N>, N the DPDK port id)"
                ))
            );
        }
    }
}
