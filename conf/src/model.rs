//! The validated configuration: typed values only, every cross-reference already checked.
//! Built once by [`Config::parse`](crate::Config::parse) and never mutated; a change is a new
//! `Config` (or, later, a new snapshot built from one).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::net::Ipv4Net;
use crate::net6::Ipv6Net;

/// Default control socket path (`[control] socket`).
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";
/// Default scheduler, as ipvsadm's.
pub const DEFAULT_SCHED: &str = "wlc";
/// Default forwarding method, as ipvsadm's (`-g`).
pub const DEFAULT_MODE: Mode = Mode::Dr;
/// Default real server weight, as ipvsadm's `-w`.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Upper bound of a weight: the kernel's dest weight is a C `int`, and ipvsadm 1.31 parses `-w`
/// with `string_to_number(optarg, 0, INT_MAX)`.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;
/// Persistence timeout ipvsadm uses for a bare `-p` (libipvs `IPVS_SVC_PERSISTENT_TIMEOUT`;
/// the man page's 300 is wrong). A file always states the number, so only `rvsadm` needs it.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Upper bound of every timeout and of persistence: 31 days, as ipvsadm.
pub const MAX_TIMEOUT: u32 = 2_678_400;
/// Upper bound of `u_threshold`/`l_threshold` (ipvsadm parses them as a C `int`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;
/// Default consistent-hash table size: prime, and large enough that 100+ reals still get an
/// even share of slots.
pub const DEFAULT_CH_TABLE_SIZE: u32 = 65_537;
/// Largest accepted `ch_table_size`: the largest prime below 2^24, which bounds the table
/// memory every worker holds per service.
pub const MAX_CH_TABLE_SIZE: u32 = 16_777_213;
/// Default packets per rx/tx burst.
pub const DEFAULT_BURST: u16 = 32;
/// Largest burst, as testpmd's `MAX_PKT_BURST`.
pub const MAX_BURST: u16 = 512;
/// Default connection table entries per worker.
pub const DEFAULT_CONN_TABLE_SIZE: u32 = 1 << 20;
/// Default `[dataplane] laddr_ports`: DPVS's local port range.
pub const DEFAULT_LADDR_PORTS: (u16, u16) = (1025, 65535);
/// Largest `[dataplane] idle_sleep_us`: 10 ms, past which timers (ARP waits, fragment holds)
/// and the first packet after a pause wait too long.
pub const MAX_IDLE_SLEEP_US: u32 = 10_000;
/// Default mbuf pool size; 2^n - 1 is the size DPDK's mempool stores without waste.
pub const DEFAULT_MBUFS: u32 = 32_767;
/// Default port MTU.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU an IPv4 link may have (RFC 791).
pub const MIN_MTU: u16 = 68;
/// Default `[[port]] exception.punt_pps`: packets per second a port may hand to its kernel
/// twin, enough for ARP, routing protocols and ssh, far below what would load the kernel.
pub const DEFAULT_PUNT_PPS: u32 = 20_000;
/// Longest Linux interface name (`IFNAMSIZ` − 1).
pub const MAX_IFNAME: usize = 15;
/// The IPVS sync multicast group (`IP_VS_SYNC_GROUP`), `--mcast-group`'s default.
pub const DEFAULT_SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The IPVS sync UDP port (`IP_VS_SYNC_PORT`), `--mcast-port`'s default.
pub const DEFAULT_SYNC_PORT: u16 = 8848;
/// `--mcast-ttl`'s default: sync messages stay on the link.
pub const DEFAULT_SYNC_TTL: u8 = 1;
/// Largest sync message: a UDP payload in one IPv4 datagram (65535 − 20 − 8), ipvsadm's upper
/// bound of `--sync-maxlen` and the kernel's clamp.
pub const MAX_SYNC_MAXLEN: u16 = 65_507;
/// Smallest `maxlen` a backup daemon runs with: the kernel raises a smaller one to this.
pub const MIN_BACKUP_SYNC_MAXLEN: u16 = 1024;
/// IPv4 and UDP headers in front of a sync message.
const SYNC_HEADERS: u16 = 20 + 8;
/// The sysctl `net.ipv4.vs.sync_threshold` default: a connection is synced at its 3rd packet...
pub const DEFAULT_SYNC_THRESHOLD: u32 = 3;
/// ...and every `sync_period` (50) packets after (`net.ipv4.vs.sync_period`).
pub const DEFAULT_SYNC_PERIOD: u32 = 50;

/// A whole validated rvs setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[eal]`.
    pub eal: Eal,
    /// `[dataplane]`.
    pub dataplane: Dataplane,
    /// `[control]`.
    pub control: Control,
    /// `[[port]]`, in file order; at least one.
    pub ports: Vec<Port>,
    /// `[[route]]`, in file order.
    pub routes: Vec<Route>,
    /// `[[neighbor]]`, static ARP entries in file order.
    pub neighbors: Vec<Neighbor>,
    /// `[[route]]` with an IPv6 destination, in file order.
    pub routes6: Vec<Route6>,
    /// `[[neighbor]]` with an IPv6 address: static neighbour cache entries, in file order.
    pub neighbors6: Vec<Neighbor6>,
    /// `[timeouts]`.
    pub timeouts: Timeouts,
    /// `[[service]]`, in file order.
    pub services: Vec<Service>,
    /// The health-check settings of every service, in the order of `services`.
    pub health: Vec<crate::health::ServiceHealth>,
    /// `[sync]`: the connection sync daemons to start with rvsd; `None` = none.
    pub sync: Option<SyncConfig>,
}

/// `[sync]`: connection sync (IPVS sync protocol version 1) as rvsd starts it, the daemons of
/// `ipvsadm --start-daemon` and the kernel's sync sysctls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The daemons: one, or a master then a backup (`role = "both"`).
    pub daemons: Vec<SyncDaemon>,
    /// `sync_threshold` (sysctl `net.ipv4.vs.sync_threshold`, first value): the packet count at
    /// which a connection is first synced.
    pub threshold: u32,
    /// `sync_period` (the sysctl's second value): then every `period` packets; 0 = only at
    /// `threshold` (changes into a closing TCP state are sent at once in either case). `threshold < period` whenever `period > 0`, as the kernel requires.
    pub period: u32,
    /// `backup_only` (sysctl `net.ipv4.vs.backup_only`): while a backup daemon runs, nothing is
    /// forwarded, so that DR/TUN directors syncing both ways cannot loop packets.
    pub backup_only: bool,
}

/// The role of a sync daemon (`IP_VS_STATE_MASTER` / `IP_VS_STATE_BACKUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Sends this director's connections.
    Master,
    /// Receives and installs a master's connections.
    Backup,
}

impl SyncRole {
    /// ipvsadm's spelling, also the config's and the protocol's.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

impl fmt::Display for SyncRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sync daemon as `ipvsadm --start-daemon` describes it (the kernel's
/// `struct ip_vs_daemon_user`, libipvs's `ipvs_daemon_t`), every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    /// Master or backup.
    pub role: SyncRole,
    /// `--mcast-interface`: the interface the messages go out or come in on (a port's kernel
    /// twin such as `rvs1`, or a dedicated link); 1..=[`MAX_IFNAME`] bytes.
    pub interface: String,
    /// `--syncid`: a master stamps its messages with it; a backup takes only messages with it,
    /// or every message when it is 0.
    pub syncid: u8,
    /// `--sync-maxlen`: the longest message (UDP payload); `None` = derived from the MTU by
    /// rvsd ([`SyncDaemon::effective_maxlen`]). In a listing, the value in use.
    pub maxlen: Option<u16>,
    /// `--mcast-group`: an IPv4 multicast address.
    pub group: Ipv4Addr,
    /// `--mcast-port`: 1..=65535.
    pub port: u16,
    /// `--mcast-ttl`: 1..=255.
    pub ttl: u8,
}

impl SyncDaemon {
    /// A daemon of `role` on `interface` with ipvsadm's defaults (syncid 0, maxlen from the MTU,
    /// 224.0.0.81:8848, TTL 1).
    pub fn new(role: SyncRole, interface: impl Into<String>) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: interface.into(),
            syncid: 0,
            maxlen: None,
            group: DEFAULT_SYNC_GROUP,
            port: DEFAULT_SYNC_PORT,
            ttl: DEFAULT_SYNC_TTL,
        }
    }

    /// What is wrong with the daemon's values, as `(key, message)` with the `[sync]` key
    /// names; empty when it can run. A request decoded from the control socket is checked with
    /// it as the file is.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(why) = check_ifname(&self.interface) {
            out.push(("interface", why));
        }
        if let Some(m) = self.maxlen {
            if m == 0 || m > MAX_SYNC_MAXLEN {
                out.push((
                    "maxlen",
                    format!("{m} is out of range 1..={MAX_SYNC_MAXLEN}"),
                ));
            }
        }
        if !self.group.is_multicast() {
            out.push((
                "group",
                format!(
                    "{} is not an IPv4 multicast address (224.0.0.0/4)",
                    self.group
                ),
            ));
        }
        if self.port == 0 {
            out.push(("port", "0 is out of range 1..=65535".to_string()));
        }
        if self.ttl == 0 {
            out.push(("ttl", "0 is out of range 1..=255".to_string()));
        }
        out
    }

    /// The message size the daemon runs with on an interface of `mtu`, as the kernel's
    /// `start_sync_thread` sets it: a master sends at most 1472 bytes (a 1500-byte datagram)
    /// unless told otherwise; a backup receives up to its MTU (at least 1500) less the
    /// headers, and never less than 1024; a given `maxlen` is clamped to those bounds.
    pub fn effective_maxlen(&self, mtu: u16) -> u16 {
        let (default_mtu, min) = match self.role {
            SyncRole::Master => (1500, 1),
            SyncRole::Backup => (mtu.max(1500), MIN_BACKUP_SYNC_MAXLEN),
        };
        match self.maxlen {
            Some(m) => m.clamp(min, MAX_SYNC_MAXLEN),
            None => default_mtu - SYNC_HEADERS,
        }
    }
}

/// A Linux interface name: 1..=15 bytes, not `.` or `..`, none of `/ : , =`, spaces or control
/// characters (what `dev_valid_name` accepts, less the characters DPDK's device arguments
/// reserve).
pub(crate) fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(format!(
            "{name:?} is not 1 to {MAX_IFNAME} bytes long (a Linux interface name)"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | ',' | '=') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{name:?} contains {c:?}, which an interface name cannot (nor `/`, `:`, `,`, `=`, spaces)"
        ));
    }
    Ok(())
}

/// `[eal]`: arguments handed to `rte_eal_init` unchanged (without a program name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eal {
    /// The EAL arguments.
    pub args: Vec<String>,
}

/// `[dataplane]`: the worker lcores and their resources. Each worker gets one rx and one tx
/// queue on every port, so the queue counts are `workers.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// Worker lcore ids, distinct, in file order (queue `i` belongs to `workers[i]`).
    pub workers: Vec<u32>,
    /// Connection table entries per worker.
    pub conn_table_size: u32,
    /// IPv6 connection table entries per worker (a table of its own: an IPv6 entry takes
    /// two cache lines).
    pub conn_table_size6: u32,
    /// Packets per rx/tx burst.
    pub burst: u16,
    /// Size of the mbuf pool shared by all ports and workers.
    pub mbufs: u32,
    /// Drop the connections of a deleted real server at once instead of letting them expire
    /// (the IPVS sysctl `expire_nodest_conn`).
    pub expire_nodest_conn: bool,
    /// How replies to FULLNAT local addresses reach the worker that owns their connection.
    pub laddr_steering: LaddrSteering,
    /// The local ports FULLNAT connections use, lowest and highest (inclusive).
    pub laddr_ports: (u16, u16),
    /// Adaptive polling: the longest sleep, in microseconds, of a worker that has received
    /// nothing for a while; 0 = busy polling always.
    pub idle_sleep_us: u32,
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// UNIX socket of the control API.
    pub socket: PathBuf,
    /// Address of the Prometheus text endpoint, if enabled.
    pub prometheus: Option<SocketAddr>,
}

/// `[[port]]`: a DPDK port and the addresses the balancer owns on its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// `dpdk<N>`.
    pub name: String,
    /// The DPDK port id `N` of the name.
    pub id: u16,
    /// Owned IPv4 addresses with the prefix length of their link.
    pub addrs: Vec<Ipv4Net>,
    /// Owned IPv6 addresses with the prefix length of their link (`addrs` entries written
    /// as IPv6). A port has at least one address of either family.
    pub addrs6: Vec<Ipv6Net>,
    /// Unicast MAC to give the port; `None` keeps the device's own.
    pub mac: Option<[u8; 6]>,
    /// IP MTU of the link.
    pub mtu: u16,
    /// The kernel twin of the port, if any: what the fast path does not handle goes to it,
    /// and what the kernel sends on it leaves through the port.
    pub exception: Option<Exception>,
}

/// `[[port]] exception`: the port's kernel twin interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The interface name the kernel sees (≤ 15 bytes, unique across ports).
    pub iface: String,
    /// Which DPDK device provides it.
    pub kind: ExceptionKind,
    /// Packets per second the port's workers together may punt to the kernel.
    pub punt_pps: u32,
}

/// `[[port]] exception.kind`: the device behind a kernel twin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// `virtio_user` when `/dev/vhost-net` can be opened, else `tap` (the default).
    #[default]
    Auto,
    /// DPDK's `net_tap`: a TAP device, one system call per packet.
    Tap,
    /// DPDK's `virtio_user` over the kernel's vhost-net: shared rings, for production.
    VirtioUser,
}

impl ExceptionKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Auto => "auto",
            ExceptionKind::Tap => "tap",
            ExceptionKind::VirtioUser => "virtio_user",
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[service]] vip_mode`: when rvs serves a VIP and answers ARP for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VipMode {
    /// The VIP is a `[[port]] addrs` address: always served, ARP answered (the default for
    /// such a VIP).
    Static,
    /// Served while a kernel twin holds the address (`ip addr add`, keepalived); otherwise
    /// its traffic is dropped as `vip_not_owned` (the default for any other VIP).
    Kernel,
    /// Always served, ARP never answered: the VIP reaches the balancer by a route.
    Routed,
}

impl VipMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VipMode::Static => "static",
            VipMode::Kernel => "kernel",
            VipMode::Routed => "routed",
        }
    }
}

impl fmt::Display for VipMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (host bits zero).
    pub dst: Ipv4Net,
    /// Gateway, on a subnet of the port; `None` for an on-link route.
    pub via: Option<Ipv4Addr>,
    /// DPDK port id of the outgoing port.
    pub port: u16,
}

/// `[[neighbor]]`: a static ARP entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// Neighbor address.
    pub ip: Ipv4Addr,
    /// Its unicast MAC.
    pub mac: [u8; 6],
    /// DPDK port id of the link it is on.
    pub port: u16,
}

/// `[[route]]` to an IPv6 destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route6 {
    /// Destination network (host bits zero).
    pub dst: Ipv6Net,
    /// Gateway: link-local (`fe80::/10`) or on a prefix of the port; `None` for on-link.
    pub via: Option<Ipv6Addr>,
    /// DPDK port id of the outgoing port.
    pub port: u16,
}

/// `[[neighbor]]` with an IPv6 address: a static neighbour cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor6 {
    /// Neighbour address.
    pub ip: Ipv6Addr,
    /// Its unicast MAC.
    pub mac: [u8; 6],
    /// DPDK port id of the link it is on.
    pub port: u16,
}

/// `[timeouts]` in seconds, as `ipvsadm --set tcp tcpfin udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults (ip_vs_proto_tcp.c, ip_vs_proto_udp.c).
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// `[[service]]`: a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Virtual address, IPv4 or IPv6; port 0 (all ports) only with persistence.
    pub vip: SocketAddr,
    /// Protocol.
    pub proto: Proto,
    /// Scheduler name, one of [`sched::NAMES`].
    pub sched: &'static str,
    /// Scheduler flags (`sh-*` for sh, `mh-*` for mh).
    pub sched_flags: SchedFlags,
    /// Persistence timeout in seconds; 0 = not persistent.
    pub persistence: u32,
    /// Client netmask of persistence templates (`-M`), of the vip's family.
    pub netmask: Netmask,
    /// Slots of the `ch` scheduler's table; prime.
    pub ch_table_size: u32,
    /// FULLNAT local addresses, each owned by a port, all of one family: the vip's, or IPv4
    /// for an IPv6 service with IPv4 reals (NAT64).
    pub laddrs: Vec<IpAddr>,
    /// PROXY protocol header sent to fullnat reals.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TOA insertion on fullnat connections; `None` = off.
    pub toa: Option<ToaPlacement>,
    /// When the VIP is served and answered for.
    pub vip_mode: VipMode,
    /// TCP: a segment without SYN (but not RST) that matches no connection is scheduled as
    /// a new connection (the kernel's `sloppy_tcp`, per service), so that a flow moved from
    /// another director continues.
    pub sloppy: bool,
    /// Real servers, in file order.
    pub reals: Vec<Real>,
}

/// The persistence granularity (`-M`) as the kernel keeps it in `svc->netmask`: a mask for an
/// IPv4 service, a prefix length for an IPv6 one (`ipv6_addr_prefix(.., netmask)`). An enum
/// rather than the kernel's one `u32`, so that a mask of the wrong family cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// A dotted mask; any bits, as ipvsadm takes them (255.255.255.255 = one client).
    V4(Ipv4Addr),
    /// A prefix length, 1..=128 (128 = one client).
    V6(u8),
}

impl Netmask {
    /// Each client its own group: ipvsadm's default for a service of `ip`'s family.
    pub fn host(ip: IpAddr) -> Netmask {
        match ip {
            IpAddr::V4(_) => Netmask::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => Netmask::V6(128),
        }
    }

    /// Whether this is [`Netmask::host`] (ipvsadm then prints no mask).
    pub fn is_host(self) -> bool {
        matches!(self, Netmask::V4(Ipv4Addr::BROADCAST) | Netmask::V6(128))
    }

    /// Whether the mask is of `ip`'s family.
    pub fn is_for(self, ip: IpAddr) -> bool {
        matches!(
            (self, ip),
            (Netmask::V4(_), IpAddr::V4(_)) | (Netmask::V6(_), IpAddr::V6(_))
        )
    }

    /// `-M` as ipvsadm reads it for a service of `ip`'s family: a dotted mask for IPv4, a
    /// prefix length 1..=128 for IPv6. The error is ipvsadm's message.
    pub fn parse_for(ip: IpAddr, s: &str) -> Result<Netmask, String> {
        match ip {
            IpAddr::V4(_) => s
                .parse()
                .map(Netmask::V4)
                .map_err(|_| "illegal virtual server persistent mask specified".to_string()),
            IpAddr::V6(_) => match s.parse::<u8>() {
                Ok(len @ 1..=128) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Netmask::V6(len)),
                _ => Err("illegal ipv6 netmask specified".to_string()),
            },
        }
    }
}

impl fmt::Display for Netmask {
    /// As ipvsadm prints it after `-M` and `mask`: dotted, or the prefix length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(m) => m.fmt(f),
            Netmask::V6(len) => len.fmt(f),
        }
    }
}

/// A dotted mask is IPv4's, a bare prefix length (`64`) IPv6's: the two spellings cannot be
/// confused, so a mask read without its service still has a family.
impl std::str::FromStr for Netmask {
    type Err = String;

    fn from_str(s: &str) -> Result<Netmask, String> {
        if let Ok(m) = s.parse() {
            return Ok(Netmask::V4(m));
        }
        match s.parse::<u8>() {
            Ok(len @ 1..=128) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Netmask::V6(len)),
            _ => Err(format!(
                "{s:?} is neither a dotted IPv4 netmask nor an IPv6 prefix length 1..=128"
            )),
        }
    }
}

/// In the control protocol an IPv4 mask is its dotted string (as before IPv6) and an IPv6
/// one its prefix length as a number.
impl Serialize for Netmask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Netmask::V4(m) => m.serialize(s),
            Netmask::V6(len) => len.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Netmask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Netmask, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Netmask;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a dotted IPv4 netmask or an IPv6 prefix length 1..=128")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Netmask, E> {
                v.parse()
                    .map(Netmask::V4)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Netmask, E> {
                match v {
                    1..=128 => Ok(Netmask::V6(v as u8)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Netmask, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[[service.real]]`: a real server (destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    /// Real server address; the port is the vip port unless the file gave one (NAT/FULLNAT).
    /// The vip's family, or IPv4 behind an IPv6 fullnat service (NAT64).
    pub addr: SocketAddr,
    /// Forwarding method.
    pub mode: Mode,
    /// Weight, 0..=[`MAX_WEIGHT`]; 0 = quiesced.
    pub weight: u32,
    /// Upper connection threshold (`-x`); 0 = unlimited.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`); 0 = derived from `u_threshold`.
    pub l_threshold: u32,
    /// How a `tun` real's packets are encapsulated (`tunnel = {...}`, `--tun-type`); ipip for
    /// every other mode.
    pub tunnel: Tunnel,
}

/// The encapsulation of a TUN real server, as the kernel's (5.2+) `tun_type`, `tun_port` and
/// `tun_flags` of a destination: `ipvsadm -i --tun-type ipip|gue|gre [--tun-port PORT]
/// [--tun-nocsum|--tun-csum|--tun-remcsum]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    /// `--tun-type`.
    #[serde(rename = "type")]
    pub kind: TunKind,
    /// `--tun-port`: GUE's UDP destination port, 1..=65535; 0 for ipip and gre.
    pub port: u16,
    /// `--tun-nocsum`/`--tun-csum`/`--tun-remcsum`: none for ipip; no remcsum for gre.
    pub csum: TunCsum,
}

impl Tunnel {
    /// Plain IP-in-IP, the encapsulation of every real before kernel 5.2.
    pub fn is_ipip(&self) -> bool {
        *self == Tunnel::default()
    }
}

/// `--tun-type` (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunKind {
    /// IP-in-IP (RFC 2003), the only type before kernel 5.2 and the default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (draft-ietf-intarea-gue), version 0, to `port`.
    Gue,
    /// GRE (RFC 2784), without key or sequence number.
    Gre,
}

impl TunKind {
    /// ipvsadm's name (`tunnames[]`), also the config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TunKind::Ipip => "ipip",
            TunKind::Gue => "gue",
            TunKind::Gre => "gre",
        }
    }
}

/// The tunnel checksum flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`): at most one is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunCsum {
    /// `--tun-nocsum` (the default): GUE's UDP checksum is 0, GRE has no checksum.
    #[default]
    None,
    /// `--tun-csum`: GUE's UDP checksum, GRE's checksum (C bit).
    Csum,
    /// `--tun-remcsum`: GUE with the remote checksum offload option (GUE only).
    Remcsum,
}

impl TunCsum {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TunCsum::None => "none",
            TunCsum::Csum => "csum",
            TunCsum::Remcsum => "remcsum",
        }
    }
}

/// Service protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
}

impl Proto {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IANA protocol number (the IPv4 header's protocol field).
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Masquerading (`-m`): DNAT in, SNAT out.
    Nat,
    /// Direct routing (`-g`, ipvsadm's default): only the destination MAC changes.
    Dr,
    /// IP-in-IP tunnel (`-i`).
    Tun,
    /// FULLNAT (DPVS `-b`): source and destination rewritten, via a local address.
    #[serde(rename = "fullnat")]
    FullNat,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::FullNat => "fullnat",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scheduler flags, stored as the kernel stores them: one bit meaning "fallback" and one meaning
/// "hash the port too", whose config names carry the scheduler's prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` (IP_VS_SVC_F_SCHED1): probe further when the hashed real
    /// is unavailable.
    pub fallback: bool,
    /// `sh-port` / `mh-port` (IP_VS_SVC_F_SCHED2): hash the client port with its address.
    pub port: bool,
}

/// PROXY protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// Text header.
    V1,
    /// Binary header.
    V2,
}

impl ProxyProtocol {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[dataplane] laddr_steering`: how a reply addressed to a FULLNAT local address reaches the
/// worker that owns its connection (worker `w` of `W` owns the local ports with
/// `lport % W == w`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaddrSteering {
    /// NIC flow rules when every port that owns a local address accepts them, the
    /// hand-over otherwise (the default).
    #[default]
    Auto,
    /// NIC flow rules (`rte_flow`), or rvsd refuses to start.
    RteFlow,
    /// Never install flow rules: a reply received by another worker is handed over.
    Handover,
}

impl LaddrSteering {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LaddrSteering::Auto => "auto",
            LaddrSteering::RteFlow => "rte_flow",
            LaddrSteering::Handover => "handover",
        }
    }
}

impl fmt::Display for LaddrSteering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which client packets of a fullnat connection carry the TOA option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToaPlacement {
    /// Those acknowledging exactly the real's SYN+ACK: the handshake ACK, data sent before the
    /// real answers, and their retransmissions (DPVS).
    Ack,
    /// Those and the client's SYN (alibaba LVS).
    Syn,
}

impl ToaPlacement {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ToaPlacement::Ack => "ack",
            ToaPlacement::Syn => "syn",
        }
    }
}

impl fmt::Display for ToaPlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_effective_maxlen_as_the_kernel() {
        let master = SyncDaemon::new(SyncRole::Master, "rvs1");
        let backup = SyncDaemon::new(SyncRole::Backup, "rvs1");
        // Without maxlen: a master sends 1500-byte datagrams whatever the MTU; a backup
        // takes what its MTU (at least 1500) carries.
        assert_eq!(master.effective_maxlen(9000), 1472);
        assert_eq!(master.effective_maxlen(1280), 1472);
        assert_eq!(backup.effective_maxlen(9000), 8972);
        assert_eq!(backup.effective_maxlen(1280), 1472);
        assert_eq!(backup.effective_maxlen(65535), 65507);
        // A given maxlen is clamped: 1.. for a master, 1024.. for a backup.
        let with = |d: &SyncDaemon, m| SyncDaemon {
            maxlen: Some(m),
            ..d.clone()
        };
        assert_eq!(with(&master, 1).effective_maxlen(1500), 1);
        assert_eq!(with(&master, 9000).effective_maxlen(1500), 9000);
        assert_eq!(with(&backup, 100).effective_maxlen(1500), 1024);
        assert_eq!(with(&backup, 65535).effective_maxlen(1500), 65507);
    }

    #[test]
    fn test_sync_daemon_problems() {
        assert_eq!(SyncDaemon::new(SyncRole::Master, "rvs1").problems(), []);
        let bad = SyncDaemon {
            role: SyncRole::Backup,
            interface: String::new(),
            syncid: 0,
            maxlen: Some(0),
            group: Ipv4Addr::new(192, 0, 2, 1),
            port: 0,
            ttl: 0,
        };
        assert_eq!(
            bad.problems(),
            [
                (
                    "interface",
                    "\"\" is not 1 to 15 bytes long (a Linux interface name)".to_string()
                ),
                ("maxlen", "0 is out of range 1..=65507".to_string()),
                (
                    "group",
                    "192.0.2.1 is not an IPv4 multicast address (224.0.0.0/4)".to_string()
                ),
                ("port", "0 is out of range 1..=65535".to_string()),
                ("ttl", "0 is out of range 1..=255".to_string()),
            ]
        );
    }
}
