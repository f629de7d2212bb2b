//! Health checks of real servers, with keepalived 2.2's keywords and defaults: what `rvscheck`
//! probes and what rvsd's health overlay needs (quorum, sorry server, inhibit, alpha).
//!
//! The overlay is kept apart from [`Service`](crate::Service) and [`Real`](crate::Real) on
//! purpose: health never edits the configured pool, it only hides (or zeroes) parts of it, so
//! the fast path's snapshot code and `ipvsadm`'s model never see these keys.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::model::Proto;

/// keepalived's `delay_loop` default: 60 s between checks of a healthy server.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's `delay_before_retry` default for TCP, UDP and MISC checks.
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// keepalived's `delay_before_retry` default for HTTP_GET and SSL_GET.
pub const DEFAULT_HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);
/// keepalived's `retry` default for TCP, HTTP, SSL and UDP checks.
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's `retry` default for MISC_CHECK.
pub const DEFAULT_MISC_RETRY: u32 = 0;
/// keepalived's `quorum` default.
pub const DEFAULT_QUORUM: u32 = 1;
/// Longest accepted duration (one day): longer intervals are mistakes, not health checks.
pub const MAX_CHECK_SECONDS: f64 = 86_400.0;

/// The health settings of one `[[service]]` (one entry per service, in file order, present
/// whether or not the service has checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    /// Protocol of the service.
    pub proto: Proto,
    /// Virtual address of the service.
    pub vip: SocketAddr,
    /// `alpha`: reals with checks start down until their first success.
    pub alpha: bool,
    /// `omega`: on checker shutdown run `quorum_down` if quorum was held.
    pub omega: bool,
    /// `quorum`: the sum of live weights the service needs.
    pub quorum: u32,
    /// `hysteresis` around `quorum`.
    pub hysteresis: u32,
    /// `quorum_up` command line.
    pub quorum_up: Option<String>,
    /// `quorum_down` command line.
    pub quorum_down: Option<String>,
    /// `sorry_server`: takes all traffic while quorum is lost.
    pub sorry_server: Option<SocketAddr>,
    /// `sorry_server_inhibit`: keep the sorry server in the pool at weight 0 while unused.
    pub sorry_server_inhibit: bool,
    /// The reals, in file order (each as validated: its port filled in).
    pub reals: Vec<RealHealth>,
}

impl ServiceHealth {
    /// Whether any real of the service is checked, or quorum/sorry handling is asked for.
    pub fn is_checked(&self) -> bool {
        self.reals.iter().any(|r| !r.checks.is_empty())
    }

    /// The health settings of the real at `addr`.
    pub fn real(&self, addr: SocketAddr) -> Option<&RealHealth> {
        self.reals.iter().find(|r| r.addr == addr)
    }
}

/// The health settings of one `[[service.real]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealHealth {
    /// The real's address (as [`Real::addr`](crate::Real::addr)).
    pub addr: SocketAddr,
    /// Its configured weight.
    pub weight: u32,
    /// `inhibit_on_failure`: down = weight 0 instead of removed.
    pub inhibit_on_failure: bool,
    /// `[[service.real.check]]`: up only while all are up.
    pub checks: Vec<Check>,
}

/// One `[[service.real.check]]`, every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What the probe does.
    pub kind: CheckKind,
    /// Where it goes (`connect_ip`:`connect_port`, by default the real's address).
    pub connect: SocketAddr,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port (0 = any).
    pub bind_port: u16,
    /// `connect_timeout`: the whole probe's time limit (MISC: `timeout`).
    pub connect_timeout: Duration,
    /// `retry`: failed probes retried before the real goes down.
    pub retry: u32,
    /// `delay_before_retry`.
    pub delay_before_retry: Duration,
    /// `delay_loop` (the check's, else the service's, else 60 s).
    pub delay_loop: Duration,
    /// `warmup`: the first probe waits a random 0..warmup.
    pub warmup: Duration,
}

/// The checker type and its own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP_CHECK: a connection opens.
    Tcp,
    /// HTTP_GET.
    Http(HttpCheck),
    /// SSL_GET: HTTP over TLS, any certificate accepted.
    Https(HttpCheck),
    /// UDP_CHECK.
    Udp(UdpCheck),
    /// MISC_CHECK.
    Misc(MiscCheck),
}

impl CheckKind {
    /// keepalived's name of the checker.
    pub fn keepalived_name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Https(_) => "SSL_GET",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
        }
    }
}

/// HTTP_GET / SSL_GET keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `virtualhost`: the Host header (default: the connect address).
    pub virtualhost: Option<String>,
    /// `url`: every one must pass; at least one.
    pub urls: Vec<Url>,
}

/// One `url = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `path`, starting with `/`.
    pub path: String,
    /// `status_code`: accepted codes as inclusive ranges (default 200-299).
    pub status: Vec<(u16, u16)>,
    /// `digest`: MD5 of the body.
    pub digest: Option<[u8; 16]>,
    /// `virtualhost` for this url only.
    pub virtualhost: Option<String>,
}

impl Url {
    /// Whether `code` is accepted.
    pub fn accepts(&self, code: u16) -> bool {
        self.status
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

/// UDP_CHECK keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    /// `payload`: the datagram sent (empty when absent).
    pub payload: Vec<u8>,
    /// `require_reply`.
    pub reply: UdpReply,
}

/// What UDP_CHECK needs back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpReply {
    /// Nothing: success unless an ICMP error comes back within the timeout.
    NotRequired,
    /// Any datagram.
    Any,
    /// A datagram starting with these bytes.
    Prefix(Vec<u8>),
}

/// MISC_CHECK keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `path`: the command line (split on whitespace, no shell).
    pub path: String,
    /// `dynamic`: exit 2..=255 means up with weight status - 2.
    pub dynamic: bool,
}
