//! The file as serde reads it. Only the TOML types are enforced here; numbers stay `i64` and
//! addresses stay strings so that validation can say what is wrong with them in LVS terms.
//! Optional keys are `Option` so validation knows what the file actually said.

use serde::Deserialize;

use crate::model::{
    ExceptionKind, LaddrSteering, Mode, Proto, ProxyProtocol, ToaPlacement, TunCsum, TunKind,
    VipMode,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    pub eal: Option<Eal>,
    pub dataplane: Option<Dataplane>,
    pub control: Option<Control>,
    #[serde(default, rename = "port")]
    pub ports: Vec<Port>,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    #[serde(default, rename = "neighbor")]
    pub neighbors: Vec<Neighbor>,
    pub timeouts: Option<Timeouts>,
    #[serde(default, rename = "service")]
    pub services: Vec<Service>,
    pub sync: Option<Sync>,
}

/// `[sync]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Sync {
    pub role: SyncRoles,
    pub interface: String,
    pub syncid: Option<i64>,
    pub maxlen: Option<i64>,
    pub group: Option<String>,
    pub port: Option<i64>,
    pub ttl: Option<i64>,
    pub sync_threshold: Option<i64>,
    pub sync_period: Option<i64>,
    pub backup_only: Option<bool>,
}

/// `[sync] role`: `both` runs a master and a backup daemon at once, as the kernel allows.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SyncRoles {
    Master,
    Backup,
    Both,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Eal {
    pub args: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Dataplane {
    pub workers: Option<Vec<i64>>,
    pub conn_table_size: Option<i64>,
    pub conn_table_size6: Option<i64>,
    pub burst: Option<i64>,
    pub mbufs: Option<i64>,
    pub expire_nodest_conn: Option<bool>,
    pub laddr_steering: Option<LaddrSteering>,
    pub laddr_ports: Option<Vec<i64>>,
    pub idle_sleep_us: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Control {
    pub socket: Option<String>,
    pub prometheus: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Port {
    pub name: String,
    pub addrs: Vec<String>,
    pub mac: Option<String>,
    pub mtu: Option<i64>,
    pub exception: Option<Exception>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Exception {
    pub iface: String,
    pub kind: Option<ExceptionKind>,
    pub punt_pps: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Route {
    pub dst: String,
    pub via: Option<String>,
    pub port: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Neighbor {
    pub ip: String,
    pub mac: String,
    pub port: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Timeouts {
    pub tcp: Option<i64>,
    pub tcp_fin: Option<i64>,
    pub udp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Service {
    pub vip: String,
    pub proto: Proto,
    pub sched: Option<String>,
    pub persistence: Option<i64>,
    pub netmask: Option<String>,
    #[serde(default)]
    pub sched_flags: Vec<SchedFlag>,
    pub ch_table_size: Option<i64>,
    #[serde(default)]
    pub laddrs: Vec<String>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub toa: Option<bool>,
    pub toa_placement: Option<ToaPlacement>,
    pub sloppy: Option<bool>,
    pub vip_mode: Option<VipMode>,
    pub delay_loop: Option<Seconds>,
    pub alpha: Option<bool>,
    pub omega: Option<bool>,
    pub quorum: Option<i64>,
    pub hysteresis: Option<i64>,
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<String>,
    pub sorry_server_inhibit: Option<bool>,
    #[serde(default, rename = "real")]
    pub reals: Vec<Real>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchedFlag {
    #[serde(rename = "sh-port")]
    ShPort,
    #[serde(rename = "sh-fallback")]
    ShFallback,
    #[serde(rename = "mh-port")]
    MhPort,
    #[serde(rename = "mh-fallback")]
    MhFallback,
}

impl SchedFlag {
    pub fn name(self) -> &'static str {
        match self {
            SchedFlag::ShPort => "sh-port",
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::MhPort => "mh-port",
            SchedFlag::MhFallback => "mh-fallback",
        }
    }

    /// The scheduler the flag belongs to.
    pub fn sched(self) -> &'static str {
        match self {
            SchedFlag::ShPort | SchedFlag::ShFallback => "sh",
            SchedFlag::MhPort | SchedFlag::MhFallback => "mh",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Real {
    pub addr: String,
    pub mode: Option<Mode>,
    pub weight: Option<i64>,
    pub u_threshold: Option<i64>,
    pub l_threshold: Option<i64>,
    pub tunnel: Option<Tunnel>,
    pub inhibit_on_failure: Option<bool>,
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
}

/// `tunnel = { type = "gue", port = 6080, csum = "csum" }` of a real.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Tunnel {
    #[serde(rename = "type")]
    pub kind: TunKind,
    pub port: Option<i64>,
    pub csum: Option<TunCsum>,
}

/// A duration in seconds: keepalived takes decimals (`delay_loop 0.5`).
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged, expecting = "a number of seconds")]
pub(crate) enum Seconds {
    Int(i64),
    Float(f64),
}

impl Seconds {
    pub fn value(self) -> f64 {
        match self {
            Seconds::Int(i) => i as f64,
            Seconds::Float(f) => f,
        }
    }
}

/// `status_code = 200` or `status_code = "200 301-302"`.
#[derive(Deserialize, Clone)]
#[serde(untagged, expecting = "a status code or a string of codes and ranges")]
pub(crate) enum StatusCodes {
    One(i64),
    List(String),
}

/// `require_reply = true` or `require_reply = "hex bytes"`.
#[derive(Deserialize, Clone)]
#[serde(untagged, expecting = "true, false or a string of hex bytes")]
pub(crate) enum RequireReply {
    Flag(bool),
    Bytes(String),
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckType {
    Tcp,
    Http,
    Https,
    Udp,
    Misc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Check {
    #[serde(rename = "type")]
    pub kind: CheckType,
    pub connect_ip: Option<String>,
    pub connect_port: Option<i64>,
    pub bindto: Option<String>,
    pub bind_port: Option<i64>,
    pub connect_timeout: Option<Seconds>,
    pub retry: Option<i64>,
    pub delay_before_retry: Option<Seconds>,
    pub delay_loop: Option<Seconds>,
    pub warmup: Option<Seconds>,
    pub virtualhost: Option<String>,
    pub url: Option<Vec<Url>>,
    pub payload: Option<String>,
    pub require_reply: Option<RequireReply>,
    pub path: Option<String>,
    pub timeout: Option<Seconds>,
    pub dynamic: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct Url {
    pub path: String,
    pub status_code: Option<StatusCodes>,
    pub digest: Option<String>,
    pub virtualhost: Option<String>,
}
