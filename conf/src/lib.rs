//! rvs configuration model: the TOML file (`rvsd.toml`), its validation, and the validated
//! types the data plane and the control plane share.
//!
//! Reading a file takes three steps, each of which can reject it:
//! 1. a span-preserving TOML parse (syntax errors),
//! 2. serde into the `raw` structs, which fixes the TOML types and rejects unknown keys,
//! 3. validation into [`Config`]: ranges, address syntax, defaults and cross-references.
//!
//! Every problem is reported as `file:line: field: message`; for step 3 the field path is looked
//! up in the parse of step 1 to find its line.
//!
//! # Keys
//!
//! Unknown keys are errors. `conf/examples/` has a file per forwarding mode.
//!
//! | key | default | meaning and rules |
//! |---|---|---|
//! | `[eal] args` | required | `rte_eal_init` arguments, as given |
//! | `[dataplane] workers` | `[1]` | worker lcores, non-empty, distinct; worker `i` owns rx/tx queue `i` of every port |
//! | `[dataplane] conn_table_size` | 1048576 | connection entries per worker, 1..=2^31 (allocated at start: [`conn_table_bytes`], about 105 bytes each) |
//! | `[dataplane] conn_table_size6` | a quarter of `conn_table_size`, at least 1024 (never more than it) | IPv6 connection entries per worker, 1..=2^31, a table of its own ([`conn_table6_bytes`], about 170 bytes each) |
//! | `[dataplane] burst` | 32 | packets per rx/tx burst, 1..=512 |
//! | `[dataplane] mbufs` | 32767 | mbuf pool size, ≥ 1 |
//! | `[dataplane] expire_nodest_conn` | false | drop a deleted real's connections at once |
//! | `[dataplane] idle_sleep_us` | 0 | adaptive polling, 0..=10000: 0 = busy polling (bare metal); else a worker that received nothing for a run of polls pauses, then sleeps up to this long between polls (timers keep running each wake-up), and busy-polls again from the first packet |
//! | `[dataplane] laddr_ports` | `[1025, 65535]` | lowest and highest local port of FULLNAT connections (DPVS's range; alibaba/LVS used 5000..65535); each worker needs at least one |
//! | `[dataplane] laddr_steering` | `auto` | how FULLNAT replies reach the owning worker: `auto` (NIC flow rules when every port owning a local address accepts them, else the hand-over), `rte_flow` (flow rules or no start; needs a power-of-two number of workers ≥ 2), `handover` (never flow rules) |
//! | `[control] socket` | `/run/rvs/rvsd.sock` | control API socket path, non-empty |
//! | `[control] prometheus` | off | `ip:port` of the Prometheus text endpoint |
//! | `[[port]] name` | required | `dpdk<N>`, N the DPDK port id; distinct; at least one port |
//! | `[[port]] addrs` | required | owned `a.b.c.d/len` (bare = /32), one host ([`check_host`]: not 0/8, 127/8, 224/4, 240/4, nor a subnet's network or broadcast address), or `2001:db8::1/64` (bare = /128; [`net6::check_owned`]: not ::, ::1, ff00::/8, ::ffff:0:0/96, nor its prefix's subnet-router anycast address), each owned once, non-empty; a port may have IPv6 addresses only |
//! | `[[port]] mac` | device's | unicast MAC to program |
//! | `[[port]] mtu` | 1500 | 68..=65535 |
//! | `[[port]] exception` | none | the port's kernel twin: `{ iface = "rvs0", kind = "auto", punt_pps = 20000 }`; absent = no twin |
//! | `[[port]] exception.iface` | required | Linux interface name, 1..=15 bytes, no `/ : , =` or spaces, distinct across ports |
//! | `[[port]] exception.kind` | `auto` | `tap` (net_tap), `virtio_user` (over `/dev/vhost-net`), `auto` (virtio_user when `/dev/vhost-net` opens, else tap) |
//! | `[[port]] exception.punt_pps` | 20000 | packets per second the port's workers may hand to the kernel, ≥ 1 |
//! | `[[route]] dst` | required | network `a.b.c.d/len` or `2001:db8::/32`, `::/0`, host bits zero, distinct |
//! | `[[route]] via` | on-link | IPv4: gateway on a subnet of the port, one host ([`check_host`]); IPv6: link-local (`fe80::1`) or on a prefix of the port ([`net6::check_host`]) |
//! | `[[route]] port` | required | a declared port name |
//! | `[[neighbor]] ip`, `mac`, `port` | required | static ARP (IPv4) or neighbour cache (IPv6) entry: one host's IP ([`check_host`], [`net6::check_host`], not owned) and unicast MAC, declared port; one per ip and port |
//! | `[timeouts] tcp`, `tcp_fin`, `udp` | 900, 120, 300 | seconds, 0..=2678400; 0 = the default |
//! | `[[service]] vip` | required | `a.b.c.d:port` or `[2001:db8::100]:port`, unicast ([`check_host`], [`net6::check_host`]); port 0 only with persistence |
//! | `[[service]] vip_mode` | `static` for a `[[port]] addrs` address, else `kernel` | `static` (needs the vip in addrs), `kernel` (served while a twin holds it; needs a port with `exception`), `routed` (no ARP; not an addrs address) |
//! | `[[service]] proto` | required | `tcp` or `udp`; (vip, proto) distinct |
//! | `[[service]] sched` | `wlc` | one of [`sched::NAMES`] |
//! | `[[service]] sched_flags` | `[]` | `sh-port`, `sh-fallback` (sched `sh`), `mh-port`, `mh-fallback` (sched `mh`) |
//! | `[[service]] persistence` | 0 | seconds, 0..=2678400; 0 = not persistent |
//! | `[[service]] netmask` | `255.255.255.255`, IPv6 `"128"` | persistence granularity (`-M`): a dotted mask (any bits, as ipvsadm) for an IPv4 vip, a prefix length `"1"`..=`"128"` for an IPv6 one (as `ipvsadm -M 64`); kept but without effect while persistence is 0 |
//! | `[[service]] ch_table_size` | 65537 | prime, 2..=16777213, ≥ number of reals, only with sched `ch` |
//! | `[[service]] laddrs` | `[]` | FULLNAT local addresses, owned by a port, distinct, of one family: the vip's, or IPv4 behind an IPv6 vip (NAT64); an IPv4 vip takes no IPv6 ones (4→6 is not supported) |
//! | `[[service]] proxy_protocol` | off | `v1` or `v2`; TCP with only fullnat reals |
//! | `[[service]] toa` | true for TCP without proxy_protocol | TOA on fullnat connections; `true` needs TCP, only fullnat reals, no proxy_protocol |
//! | `[[service]] toa_placement` | `ack` | `ack` or `syn`; only while toa is on |
//! | `[[service]] sloppy` | false | TCP only: a segment without SYN (not RST) of no connection is scheduled as a new one (the kernel's `sloppy_tcp`), for flows moved from another director; not for fullnat reals (dropped, `no_conn`) |
//! | `[[service.real]] addr` | required | `a.b.c.d[:port]` or `[2001:db8::11]:port` / bare `2001:db8::11`, one host ([`check_host`], [`net6::check_host`]), no port = vip port; of the vip's family, except IPv4 fullnat reals of an IPv6 vip (NAT64), whose laddrs must then be IPv4 (a fullnat real and the laddrs share a family); dr/tun: vip port only; port-zero service: no port; dr: on a port subnet, others: on a subnet or routed; distinct |
//! | `[[service.real]] mode` | `dr` | `nat`, `dr`, `tun`, `fullnat` (its connections need `laddrs`; without any they are refused and counted as `laddr_exhausted`, as DPVS takes `-a -b` before `-P`) |
//! | `[[service.real]] weight` | 1 | 0..=65535; 0 = quiesced |
//! | `[[service.real]] u_threshold`, `l_threshold` | 0 | 0..=2147483647, 0 = unlimited; l ≤ u as the kernel requires |
//! | `[[service]] delay_loop` | 60 | seconds between checks of a healthy real, inherited by its checks (decimals allowed, as keepalived) |
//! | `[[service]] alpha` | false | checked reals start down until their first success |
//! | `[[service]] omega` | false | on checker shutdown, run `quorum_down` if quorum was held |
//! | `[[service]] quorum`, `hysteresis` | 1, 0 | quorum lost below `quorum - hysteresis` live weight, gained at `quorum + hysteresis`; hysteresis ≤ quorum |
//! | `[[service]] quorum_up`, `quorum_down` | none | command lines run when quorum is gained / lost |
//! | `[[service]] sorry_server` | none | `a.b.c.d[:port]` or `[2001:db8::50]:port`, of the vip's family, reachable as a real (forwarded as the first real's mode): all traffic while quorum is lost |
//! | `[[service]] sorry_server_inhibit` | false | keep the sorry server at weight 0 while unused; needs `sorry_server` |
//! | `[[service.real]] inhibit_on_failure` | false | down = weight 0 instead of removed |
//! | `[[service.real.check]] type` | required | `tcp`, `http`, `https`, `udp`, `misc` (TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK); several checks: up while all are up |
//! | `[[service.real.check]] connect_ip`, `connect_port`, `bindto`, `bind_port` | the real's address, none | probe destination and source (not misc), IPv4 or IPv6; `bindto` of the destination's family |
//! | `[[service.real.check]] connect_timeout` | 5 | seconds, > 0 (not misc) |
//! | `[[service.real.check]] retry`, `delay_before_retry` | 1 (misc 0), 1 (http/https 3) | failed probes retried `retry` times that far apart before the real goes down |
//! | `[[service.real.check]] delay_loop`, `warmup` | the service's, 0 | seconds between checks; random delay before the first |
//! | `[[service.real.check]] url` | required for http/https | `[{ path, status_code = "200-299", digest = "<md5 hex>", virtualhost }]`; status_code an integer or a string of codes and ranges |
//! | `[[service.real.check]] virtualhost` | connect address | Host header (http/https) |
//! | `[[service.real.check]] payload`, `require_reply` | none, false | udp: hex bytes sent; `true` (any reply) or hex bytes the reply starts with |
//! | `[[service.real.check]] path`, `timeout`, `dynamic` | required, delay_loop, false | misc: command line (split on spaces, no shell), time limit, exit 2..=255 = up with weight status-2 |
//! | `[sync] role` | required | connection sync daemons rvsd starts (IPVS sync protocol v1, as `ipvsadm --start-daemon`): `master`, `backup` or `both` (a master and a backup with the same settings, as the kernel allows: what keepalived's `lvs_sync_daemon` gets by switching one daemon with its VRRP instance, without the switch; `rvsd --import-keepalived` converts it so) |
//! | `[sync] interface` | required | `--mcast-interface`: the interface the messages use (a twin such as `rvs1`, or a dedicated link); a Linux interface name of 1..=15 bytes |
//! | `[sync] syncid` | 0 | `--syncid`, 0..=255: the master's id; a backup takes only that id's messages, every message when 0 |
//! | `[sync] maxlen` | from the MTU | `--sync-maxlen`, 1..=65507 bytes per message; absent = 1472 for a master, the interface MTU (at least 1500) less 28 for a backup; rvsd clamps a backup's to at least 1024, as the kernel |
//! | `[sync] group`, `port`, `ttl` | `224.0.0.81`, 8848, 1 | `--mcast-group` (IPv4 multicast), `--mcast-port` (1..=65535), `--mcast-ttl` (1..=255) |
//! | `[sync] sync_threshold`, `sync_period` | 3, 50 | sysctl `net.ipv4.vs.sync_threshold`: a connection is synced when its packet count modulo the period equals the threshold (period 0: once, at the threshold), and at once on a change into a closing TCP state; 0..=2147483647, threshold < period unless period is 0 |
//! | `[sync] backup_only` | false | sysctl `backup_only`: while a backup daemon runs, rvs forwards nothing |
#![forbid(unsafe_code)]

mod conn_table;
pub mod echo;
mod error;
pub mod health;
pub mod keepalived;
mod locate;
mod model;
mod net;
pub mod net6;
pub mod proto;
mod raw;
mod validate;

use std::path::Path;

pub use conn_table::{
    conn_table6_bytes, conn_table_bytes, default_conn_table_size6, CONN_ENTRY6_BYTES,
    CONN_ENTRY_BYTES, MAX_CONN_TABLE_SIZE,
};
pub use error::{ConfError, Problem};
pub use model::*;
pub use net::{check_host, Ipv4Net};
pub use net6::Ipv6Net;

impl Config {
    /// Reads and validates the config file at `path`; errors name the file as `path` displays.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfError::new(
                &name,
                vec![Problem {
                    line: None,
                    field: String::new(),
                    message: format!("cannot read: {e}"),
                }],
            )
        })?;
        Config::parse(&text, &name)
    }

    /// Validates config `text`; `file` is the name errors start with.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfError> {
        let root = toml::de::DeTable::parse(text).map_err(|e| {
            ConfError::new(
                file,
                vec![Problem {
                    line: Some(e.span().map_or(1, |s| locate::line_at(text, s.start))),
                    field: String::new(),
                    message: e.message().to_string(),
                }],
            )
        })?;
        let src = locate::Source::new(text, root);
        let de = toml::de::Deserializer::from(src.root().clone());
        let raw: raw::File = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfError::new(
                file,
                vec![Problem {
                    line: Some(
                        e.inner()
                            .span()
                            .map_or(1, |s| locate::line_at(text, s.start)),
                    ),
                    // serde_path_to_error writes the document root as ".".
                    field: if path == "." { String::new() } else { path },
                    message: e.inner().message().to_string(),
                }],
            )
        })?;
        validate::validate(raw).map_err(|invalid| {
            let problems = invalid
                .into_iter()
                .map(|i| Problem {
                    line: Some(src.line_of(&i.field)),
                    field: i.field.to_string(),
                    message: i.message,
                })
                .collect();
            ConfError::new(file, problems)
        })
    }
}
