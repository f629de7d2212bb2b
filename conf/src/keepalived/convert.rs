//! The tree as rvs TOML: keepalived 2.2's meaning of each keyword, its defaults and the
//! virtual server → real server → checker inheritance (check_data.c's `validate_check_config`
//! and check_api.c, read for behaviour), written out explicitly.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::lexer::command_words;
use super::parser::Node;
use super::{Diagnostic, Loc, Severity};

/// keepalived's `persistence_timeout` without a value, and what a port-0 or
/// `persistence_granularity` service gets (IPVS_SVC_PERSISTENT_TIMEOUT).
const DEFAULT_PERSISTENCE: u64 = 360;
/// keepalived's LVS_MAX_TIMEOUT (31 days), the largest persistence_timeout.
const MAX_PERSISTENCE: u64 = 86400 * 31;
/// IPVS's largest weight.
const MAX_WEIGHT: u64 = 65535;
/// IPVS's largest connection threshold (rvs's u_threshold/l_threshold).
const MAX_THRESHOLD: u64 = 2_147_483_647;

/// Top-level sections keepalived itself keeps doing next to rvs (VRRP, addresses, routes,
/// process tracking, BFD): noted, never converted.
const LEFT_TO_KEEPALIVED: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_process",
    "track_process",
    "vrrp_track_file",
    "track_file",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "static_track_group",
    "garp_group",
    "linkbeat_interfaces",
    "bfd_instance",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
];

struct Ctx<'a> {
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn say(&mut self, loc: &Loc, severity: Severity, message: String) {
        self.diags.push(Diagnostic::new(loc, severity, message));
    }
    fn note(&mut self, loc: &Loc, message: String) {
        self.say(loc, Severity::Note, message);
    }
    fn warn(&mut self, loc: &Loc, message: String) {
        self.say(loc, Severity::Warning, message);
    }
    fn error(&mut self, loc: &Loc, message: String) {
        self.say(loc, Severity::Error, message);
    }

    /// The single argument of `node`, or a warning (keepalived ignores the line too).
    fn one<'n>(&mut self, node: &'n Node) -> Option<&'n str> {
        match node.args() {
            [] => {
                self.warn(
                    &node.loc,
                    format!(
                        "{}: missing value, ignored as keepalived does",
                        node.keyword()
                    ),
                );
                None
            }
            [one, rest @ ..] => {
                if !rest.is_empty() {
                    self.extra(node, 1);
                }
                Some(one)
            }
        }
    }

    fn extra(&mut self, node: &Node, wanted: usize) {
        self.warn(
            &node.loc,
            format!(
                "{}: extra words ignored: {}",
                node.keyword(),
                node.args()[wanted..].join(" ")
            ),
        );
    }

    fn invalid(&mut self, node: &Node, what: &str) {
        self.warn(
            &node.loc,
            format!(
                "{} {}: {what}; ignored as keepalived does",
                node.keyword(),
                node.args().join(" ")
            ),
        );
    }

    /// An unsigned integer in `min..=max`.
    fn unsigned(&mut self, node: &Node, min: u64, max: u64) -> Option<u64> {
        let text = self.one(node)?;
        match text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) && text.bytes().all(|b| b.is_ascii_digit()) => {
                Some(v)
            }
            _ => {
                self.invalid(node, &format!("not an integer in {min}..={max}"));
                None
            }
        }
    }

    /// A duration in seconds with up to 6 decimals, as keepalived's timers; `positive` when
    /// zero is refused. The TOML number, normalised.
    fn seconds(&mut self, node: &Node, positive: bool) -> Option<String> {
        let text = self.one(node)?;
        match seconds(text) {
            Some(s) if !positive || s != "0" => Some(s),
            _ => {
                let what = if positive {
                    "not a number of seconds above 0"
                } else {
                    "not a number of seconds"
                };
                self.invalid(node, what);
                None
            }
        }
    }

    /// keepalived's optional true/false (on/off, yes/no); no value is true.
    fn flag(&mut self, node: &Node) -> Option<bool> {
        match node.args() {
            [] => Some(true),
            [v, rest @ ..] => {
                if !rest.is_empty() {
                    self.extra(node, 1);
                }
                match v.as_str() {
                    "true" | "on" | "yes" => Some(true),
                    "false" | "off" | "no" => Some(false),
                    _ => {
                        self.invalid(node, "not true/false, on/off or yes/no");
                        None
                    }
                }
            }
        }
    }

    /// An IPv4 or IPv6 address, as keepalived's `inet_stosockaddr` reads one (IPv6 when it
    /// has a colon, never in brackets).
    fn ip(&mut self, node: &Node) -> Option<IpAddr> {
        let text = self.one(node)?;
        match text.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.invalid(node, "not an IP address");
                None
            }
        }
    }

    /// A script's command line, for rvs's whitespace-split `path`/`quorum_up`/`quorum_down`.
    /// keepalived takes the command and its arguments from the first word after the keyword
    /// (quoted when it has arguments); the words after it are the script's user and group for
    /// `quorum_up`/`quorum_down`, and ignored for `misc_path`.
    fn command(&mut self, node: &Node) -> Option<String> {
        let words = match command_words(&node.raw) {
            Ok(words) => words,
            Err(why) => {
                self.invalid(node, &why);
                return None;
            }
        };
        let Some(line) = words.get(1) else {
            self.warn(
                &node.loc,
                format!(
                    "{}: missing command, ignored as keepalived does",
                    node.keyword()
                ),
            );
            return None;
        };
        let rest = &words[2..];
        if !rest.is_empty() {
            if node.keyword() == "misc_path" {
                self.warn(
                    &node.loc,
                    format!(
                        "misc_path: '{}' ignored as keepalived does: the command and its arguments \
                         are one (quoted) word",
                        rest.join(" ")
                    ),
                );
            } else {
                self.error(
                    &node.loc,
                    format!(
                        "{}: user/group '{}' not converted: rvscheck runs scripts as its own user",
                        node.keyword(),
                        rest.join(" ")
                    ),
                );
            }
        }
        let command = match command_words(line) {
            Ok(words) if !words.is_empty() => words,
            Ok(_) => {
                self.invalid(node, "empty command");
                return None;
            }
            Err(why) => {
                self.invalid(node, &why);
                return None;
            }
        };
        if command
            .iter()
            .any(|w| w.is_empty() || w.contains(char::is_whitespace))
        {
            self.error(
                &node.loc,
                format!(
                    "{}: an argument is empty or holds blanks, which rvs cannot pass (it splits \
                     the command on whitespace, without a shell): not converted; use a wrapper script",
                    node.keyword()
                ),
            );
            return None;
        }
        Some(command.join(" "))
    }

    fn unknown(&mut self, node: &Node, within: &str) {
        self.error(
            &node.loc,
            format!(
                "unknown keyword '{}' in {within}: not converted",
                node.keyword()
            ),
        );
    }

    fn dropped(&mut self, node: &Node, why: &str) {
        self.error(
            &node.loc,
            format!("{}: not converted: {why}", node.keyword()),
        );
    }

    fn ignored(&mut self, node: &Node, why: &str) {
        self.warn(&node.loc, format!("{}: ignored: {why}", node.keyword()));
    }
}

/// The statements in `node`'s block, less skipped lines. A block after a statement that takes
/// none (`protocol TCP {`) is reported and ignored; the statement itself still counts.
fn children<'n>(cx: &mut Ctx<'_>, node: &'n Node, with_blocks: &[&str]) -> Vec<&'n Node> {
    let mut out = Vec::new();
    for child in node.block.iter().flatten() {
        if child.keyword().is_empty() {
            continue;
        }
        if child.block.is_some() && !with_blocks.contains(&child.keyword()) {
            cx.error(
                child.open.as_ref().unwrap_or(&child.loc),
                format!(
                    "'{{' after {}, which takes no block: the block is not converted",
                    child.keyword()
                ),
            );
        }
        out.push(child);
    }
    out
}

/// The checkers keepalived knows, converted or not.
const CHECKERS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "UDP_CHECK",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "BFD_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
];

/// `text` as a TOML number of seconds: digits, optionally a point and at most 6 decimals
/// (keepalived's microsecond timers). Trailing zeros go; a whole number is an integer.
fn seconds(text: &str) -> Option<String> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac = frac.trim_end_matches('0');
    Some(if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    })
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checker settings a virtual server and a real server hand down to their checkers.
#[derive(Default, Clone)]
struct Inherited {
    retry: Option<u64>,
    delay_before_retry: Option<String>,
    warmup: Option<String>,
    connect_timeout: Option<String>,
    delay_loop: Option<String>,
    alpha: Option<(bool, Loc)>,
    inhibit: Option<bool>,
    virtualhost: Option<String>,
}

impl Inherited {
    /// `self` where set, else `parent`.
    fn over(&self, parent: &Inherited) -> Inherited {
        Inherited {
            retry: self.retry.or(parent.retry),
            delay_before_retry: self
                .delay_before_retry
                .clone()
                .or_else(|| parent.delay_before_retry.clone()),
            warmup: self.warmup.clone().or_else(|| parent.warmup.clone()),
            connect_timeout: self
                .connect_timeout
                .clone()
                .or_else(|| parent.connect_timeout.clone()),
            delay_loop: self
                .delay_loop
                .clone()
                .or_else(|| parent.delay_loop.clone()),
            alpha: self.alpha.clone().or_else(|| parent.alpha.clone()),
            inhibit: self.inhibit.or(parent.inhibit),
            virtualhost: self
                .virtualhost
                .clone()
                .or_else(|| parent.virtualhost.clone()),
        }
    }

    /// The keywords every level shares; false when `node` is none of them.
    fn take(&mut self, cx: &mut Ctx<'_>, node: &Node) -> bool {
        match node.keyword() {
            "retry" => {
                if let Some(v) = cx.unsigned(node, 0, u64::from(u32::MAX)) {
                    self.retry = Some(v);
                }
            }
            "delay_before_retry" => {
                if let Some(v) = cx.seconds(node, false) {
                    self.delay_before_retry = Some(v);
                }
            }
            "warmup" => {
                if let Some(v) = cx.seconds(node, false) {
                    self.warmup = Some(v);
                }
            }
            "connect_timeout" => {
                if let Some(v) = cx.seconds(node, true) {
                    self.connect_timeout = Some(v);
                }
            }
            "delay_loop" => {
                if let Some(v) = cx.seconds(node, true) {
                    self.delay_loop = Some(v);
                }
            }
            "alpha" => {
                if let Some(v) = cx.flag(node) {
                    self.alpha = Some((v, node.loc.clone()));
                }
            }
            _ => return false,
        }
        true
    }
}

struct Url {
    path: String,
    status_code: Option<String>,
    digest: Option<String>,
    virtualhost: Option<String>,
}

struct Check {
    kind: &'static str,
    connect_ip: Option<IpAddr>,
    connect_port: Option<u64>,
    bindto: Option<IpAddr>,
    bind_port: Option<u64>,
    own: Inherited,
    urls: Vec<Url>,
    payload: Option<String>,
    require_reply: Option<Option<String>>,
    path: Option<String>,
    timeout: Option<u64>,
    dynamic: bool,
}

struct Real {
    loc: Loc,
    ip: IpAddr,
    port: Option<u16>,
    mode: Option<&'static str>,
    weight: Option<u64>,
    u_threshold: Option<u64>,
    l_threshold: Option<u64>,
    own: Inherited,
    checks: Vec<Check>,
}

#[derive(Default)]
struct Service {
    proto: Option<&'static str>,
    sched: Option<String>,
    sched_flags: Vec<&'static str>,
    persistence: Option<u64>,
    netmask: Option<String>,
    mode: Option<&'static str>,
    weight: Option<u64>,
    own: Inherited,
    omega: bool,
    quorum: Option<u64>,
    hysteresis: Option<u64>,
    quorum_up: Option<String>,
    quorum_down: Option<String>,
    sorry_server: Option<(IpAddr, Option<u16>)>,
    sorry_server_inhibit: bool,
    laddrs: Vec<Ipv4Addr>,
    reals: Vec<Real>,
}

/// The TOML for `tree`, read from `main`.
pub(crate) fn convert(main: &str, tree: &[Node], diags: &mut Vec<Diagnostic>) -> String {
    let mut cx = Ctx { diags };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# rvs services imported from keepalived.conf {main} by `rvsd --import-keepalived`."
    );
    out.push_str(
        "# Add the [eal], [dataplane] and [[port]] sections (see conf/examples/) before use.\n",
    );
    let mut timeouts = None;
    let mut sync = None;
    let mut seen = HashSet::new();
    let groups = laddr_groups(&mut cx, tree);
    for node in tree {
        match node.keyword() {
            "" | "local_address_group" => {}
            "virtual_server" => {
                if let Some(text) = virtual_server(&mut cx, node, &mut seen, &groups) {
                    out.push('\n');
                    out.push_str(&text);
                }
            }
            "virtual_server_group" => cx.error(
                &node.loc,
                "virtual_server_group: not converted: rvs has no virtual server groups; \
                 write a virtual_server per address and port"
                    .to_string(),
            ),
            "global_defs" => {
                global_defs(&mut cx, node, &mut timeouts, &mut sync);
            }
            "SSL" => cx.dropped(
                node,
                "rvs's SSL_GET presents no client certificate (keepalived's SSL block)",
            ),
            kw if LEFT_TO_KEEPALIVED.contains(&kw) => cx.note(
                &node.loc,
                format!("{kw}: left to keepalived, which keeps running next to rvs"),
            ),
            _ => cx.unknown(node, "keepalived.conf"),
        }
    }
    if let Some(t) = timeouts {
        out.push('\n');
        out.push_str(&t);
    }
    if let Some(text) = sync.and_then(|node| lvs_sync_daemon(&mut cx, node, tree)) {
        out.push('\n');
        out.push_str(&text);
    }
    out
}

/// DPVS's `local_address_group NAME { IP [IFNAME] ... }` (an IP may be a range of the last
/// byte, `10.0.0.10-19`), which a `virtual_server` names with `laddr_group_name`: its
/// addresses become the service's `laddrs`.
fn laddr_groups(cx: &mut Ctx<'_>, tree: &[Node]) -> HashMap<String, Vec<Ipv4Addr>> {
    let mut groups = HashMap::new();
    for node in tree.iter().filter(|n| n.keyword() == "local_address_group") {
        let Some(name) = cx.one(node) else {
            continue;
        };
        let mut addrs = Vec::new();
        for entry in children(cx, node, &[]) {
            let first = entry.keyword();
            let (ip, last) = match first.split_once('-') {
                Some((ip, last)) => (ip, Some(last)),
                None => (first, None),
            };
            let Ok(ip) = ip.parse::<Ipv4Addr>() else {
                cx.error(
                    &entry.loc,
                    format!("local_address_group {name}: '{first}' is not an IPv4 address or range: not converted"),
                );
                continue;
            };
            let [a, b, c, lo] = ip.octets();
            let hi = match last.map(str::parse::<u8>) {
                None => lo,
                Some(Ok(hi)) if hi >= lo => hi,
                Some(_) => {
                    cx.error(
                        &entry.loc,
                        format!("local_address_group {name}: '{first}' is not a range of the last byte: not converted"),
                    );
                    continue;
                }
            };
            for d in lo..=hi {
                let ip = Ipv4Addr::new(a, b, c, d);
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
        }
        cx.note(
            &node.loc,
            format!(
                "local_address_group {name}: its addresses are the `laddrs` of the services that \
                 name it; each must also be in a [[port]]'s addrs (DPVS's interface names are not kept)"
            ),
        );
        if groups.insert(name.to_string(), addrs).is_some() {
            cx.warn(
                &node.loc,
                format!("local_address_group {name}: defined twice; the last one is used"),
            );
        }
    }
    groups
}

/// `global_defs` is keepalived's, except `lvs_timeouts`, which is rvs's `[timeouts]`, and
/// `lvs_sync_daemon` (the first one, as keepalived ignores the others), rvs's `[sync]`.
fn global_defs<'t>(
    cx: &mut Ctx<'_>,
    node: &'t Node,
    timeouts: &mut Option<String>,
    sync: &mut Option<&'t Node>,
) {
    cx.note(
        &node.loc,
        "global_defs: left to keepalived, which keeps running next to rvs".to_string(),
    );
    for child in node.block.iter().flatten() {
        match child.keyword() {
            "lvs_timeouts" => *timeouts = lvs_timeouts(cx, child),
            "lvs_sync_daemon" => match sync {
                Some(first) => cx.warn(
                    &child.loc,
                    format!(
                        "lvs_sync_daemon: ignored as keepalived does: already given at {}:{}",
                        first.loc.file, first.loc.line
                    ),
                ),
                None => *sync = Some(child),
            },
            _ => {}
        }
    }
}

/// `lvs_sync_daemon IF [inst] VRRP_INSTANCE [id SYNCID] [maxlen N] [port N] [ttl N] [group A]`
/// (and the old positional `IF VRRP_INSTANCE SYNCID`) → `[sync]`, read as keepalived 2.2's
/// `lvs_syncd_handler` reads it: a bad value is ignored, the syncid defaults to the
/// instance's `virtual_router_id`. keepalived runs one daemon and switches it between master
/// and backup with the instance's state; rvs has no VRRP hook and runs both roles at once
/// (`role = "both"`), which the kernel allows and which syncs the same connections: only the
/// director that forwards them has any to send.
fn lvs_sync_daemon(cx: &mut Ctx<'_>, node: &Node, tree: &[Node]) -> Option<String> {
    let args = node.args();
    let Some(interface) = args.first() else {
        cx.invalid(node, "no interface");
        return None;
    };
    if interface.len() > crate::model::MAX_IFNAME {
        cx.invalid(node, "interface name too long");
        return None;
    }
    if let Err(why) = crate::model::check_ifname(interface) {
        cx.dropped(node, &why);
        return None;
    }
    let mut instance: Option<&str> = None;
    let mut syncid: Option<u64> = None;
    // Values as TOML lines, in the order of the [sync] keys.
    let (mut maxlen, mut port, mut ttl, mut group) = (None, None, None, None);
    let mut i = 1;
    while i < args.len() {
        let word = args[i].as_str();
        let value = args.get(i + 1).map(String::as_str);
        let number = |min: u64, max: u64| {
            value
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| (min..=max).contains(v))
        };
        let bad = |cx: &mut Ctx<'_>, what: &str| {
            cx.warn(
                &node.loc,
                format!(
                    "lvs_sync_daemon: {word} {}: {what}; ignored as keepalived does",
                    value.unwrap_or("(no value)")
                ),
            );
        };
        match word {
            "inst" if instance.is_some() => bad(cx, "the instance is already given"),
            "inst" => instance = value,
            "id" => match number(0, 255) {
                Some(v) => syncid = Some(v),
                None => bad(cx, "not an integer in 0..=255"),
            },
            "maxlen" => match number(1, u64::from(crate::model::MAX_SYNC_MAXLEN)) {
                Some(v) => maxlen = Some(v),
                None => bad(cx, "not an integer in 1..=65507"),
            },
            "port" => match number(1, 65535) {
                Some(v) => port = Some(v),
                None => bad(cx, "not an integer in 1..=65535"),
            },
            "ttl" => match number(1, 255) {
                Some(v) => ttl = Some(v),
                None => bad(cx, "not an integer in 1..=255"),
            },
            "group" => match value.map(str::parse::<std::net::IpAddr>) {
                Some(Ok(std::net::IpAddr::V4(a))) if a.is_multicast() => group = Some(a),
                Some(Ok(std::net::IpAddr::V6(a))) if a.is_multicast() => {
                    cx.dropped(node, "rvs syncs over IPv4 only (an IPv6 group)");
                    return None;
                }
                _ => bad(cx, "not a multicast address"),
            },
            // The old positional form: the instance, then the syncid.
            _ if i == 1 => {
                instance = Some(word);
                i += 1;
                continue;
            }
            _ if i == 2 => {
                match word.parse::<u64>().ok().filter(|v| *v <= 255) {
                    Some(v) => syncid = Some(v),
                    None => cx.warn(
                        &node.loc,
                        format!("lvs_sync_daemon: syncid {word}: not an integer in 0..=255; ignored as keepalived does"),
                    ),
                }
                i += 1;
                continue;
            }
            _ => {
                cx.warn(
                    &node.loc,
                    format!("lvs_sync_daemon: unknown option {word}; ignored as keepalived does"),
                );
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    let Some(instance) = instance else {
        cx.dropped(
            node,
            "no vrrp_instance named: keepalived runs no sync daemon without one",
        );
        return None;
    };
    let vrrp = tree.iter().find(|n| {
        n.keyword() == "vrrp_instance" && n.args().first().map(String::as_str) == Some(instance)
    });
    let Some(vrrp) = vrrp else {
        cx.dropped(
            node,
            &format!("vrrp_instance {instance} is not in the file: keepalived runs no sync daemon without it"),
        );
        return None;
    };
    let syncid = syncid.or_else(|| {
        vrrp.block
            .iter()
            .flatten()
            .find(|c| c.keyword() == "virtual_router_id")
            .and_then(|c| c.args().first())
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| (1..=255).contains(v))
    });
    cx.note(
        &node.loc,
        format!(
            "lvs_sync_daemon: [sync] role = \"both\": keepalived switches one daemon between \
             master and backup with vrrp_instance {instance}; rvs runs both at once"
        ),
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# lvs_sync_daemon at {}:{}, for vrrp_instance {instance}\n[sync]\nrole = \"both\"\ninterface = {}",
        node.loc.file,
        node.loc.line,
        quote(interface)
    );
    if let Some(v) = syncid {
        let _ = writeln!(text, "syncid = {v}");
    }
    if let Some(v) = maxlen {
        let _ = writeln!(text, "maxlen = {v}");
    }
    if let Some(v) = group {
        let _ = writeln!(text, "group = \"{v}\"");
    }
    if let Some(v) = port {
        let _ = writeln!(text, "port = {v}");
    }
    if let Some(v) = ttl {
        let _ = writeln!(text, "ttl = {v}");
    }
    Some(text)
}

/// `lvs_timeouts tcp N tcpfin N udp N` → `[timeouts]`. A protocol given twice takes its last
/// value, as keepalived's parser overwrites it.
fn lvs_timeouts(cx: &mut Ctx<'_>, node: &Node) -> Option<String> {
    const KEYS: [&str; 3] = ["tcp", "tcp_fin", "udp"];
    let mut values: [Option<u64>; 3] = [None; 3];
    let args = node.args();
    let mut i = 0;
    while i < args.len() {
        let slot = match args[i].as_str() {
            "tcp" => 0,
            "tcpfin" => 1,
            "udp" => 2,
            other => {
                cx.invalid(node, &format!("unknown protocol '{other}'"));
                return None;
            }
        };
        match args.get(i + 1).and_then(|v| v.parse::<u64>().ok()) {
            Some(v) if v <= MAX_PERSISTENCE => values[slot] = Some(v),
            _ => {
                cx.invalid(node, &format!("{} needs seconds", args[i]));
                return None;
            }
        }
        i += 2;
    }
    if values.iter().all(Option::is_none) {
        cx.invalid(node, "no timeouts given");
        return None;
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# lvs_timeouts at {}:{}\n[timeouts]",
        node.loc.file, node.loc.line
    );
    for (key, value) in KEYS.iter().zip(values) {
        if let Some(v) = value {
            let _ = writeln!(text, "{key} = {v}");
        }
    }
    Some(text)
}

fn mode(cx: &mut Ctx<'_>, node: &Node) -> Option<&'static str> {
    let [method, options @ ..] = node.args() else {
        cx.one(node);
        return None;
    };
    let mode = match method.as_str() {
        "NAT" => "nat",
        "DR" => "dr",
        "TUN" => "tun",
        // DPVS's keepalived; stock keepalived refuses it.
        "FNAT" => "fullnat",
        _ => {
            cx.invalid(node, "not NAT, DR, TUN or FNAT");
            return None;
        }
    };
    if !options.is_empty() && options != ["type", "ipip"] {
        cx.error(
            &node.loc,
            format!(
                "{} {method}: tunnel options '{}' not converted: rvs tunnels are IPIP only",
                node.keyword(),
                options.join(" ")
            ),
        );
    }
    Some(mode)
}

/// An `IP PORT` pair of a real or sorry server; the port may be left out.
fn server(cx: &mut Ctx<'_>, node: &Node) -> Option<(IpAddr, Option<u16>)> {
    let args = node.args();
    let Some(ip) = args.first() else {
        cx.invalid(node, "no address");
        return None;
    };
    let ip: IpAddr = match ip.parse() {
        Ok(ip) => ip,
        Err(_) => {
            cx.invalid(node, "not an IP address");
            return None;
        }
    };
    let port = match args.get(1) {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                cx.invalid(node, "the port is not 0..=65535");
                return None;
            }
        },
    };
    if args.len() > 2 {
        cx.extra(node, 2);
    }
    Some((ip, port))
}

fn virtual_server(
    cx: &mut Ctx<'_>,
    node: &Node,
    seen: &mut HashSet<(IpAddr, u16, &'static str)>,
    groups: &HashMap<String, Vec<Ipv4Addr>>,
) -> Option<String> {
    let loc = &node.loc;
    let (ip, port) = match node.args() {
        [kind, name, ..] if kind == "fwmark" || kind == "group" => {
            let why = if kind == "fwmark" {
                "rvs services are an address and a port (it has no firewall marks)"
            } else {
                "rvs has no virtual server groups; write a virtual_server per address and port"
            };
            cx.error(loc, format!("virtual_server {kind} {name}: refused: {why}"));
            return None;
        }
        // keepalived takes a missing port as 0 (then persistence is needed, see below).
        [ip, rest @ ..] => {
            let port = rest.first().map_or("0", String::as_str);
            if rest.len() > 1 {
                cx.extra(node, 2);
            }
            let ip: IpAddr = match ip.parse() {
                Ok(ip) => ip,
                Err(_) if ip.starts_with('[') => {
                    // keepalived reads the address alone (inet_pton): `[2001:db8::1]:80` is
                    // no address to it.
                    cx.error(
                        loc,
                        format!(
                            "{}: refused: keepalived writes an IPv6 virtual server as `virtual_server 2001:db8::1 80` (no brackets, the port apart)",
                            node.words.join(" ")
                        ),
                    );
                    return None;
                }
                Err(_) => {
                    cx.error(
                        loc,
                        format!("virtual_server {ip} {port}: refused: not an IP address"),
                    );
                    return None;
                }
            };
            let Ok(port) = port.parse::<u16>() else {
                cx.error(
                    loc,
                    format!("virtual_server {ip} {port}: refused: the port is not 0..=65535"),
                );
                return None;
            };
            (ip, port)
        }
        _ => {
            cx.error(
                loc,
                format!(
                    "{}: refused: rvs needs `virtual_server IP [PORT]`",
                    node.words.join(" ")
                ),
            );
            return None;
        }
    };
    let header = format!("virtual_server {ip} {port}");
    let mut svc = Service::default();
    let mut refused = false;
    for child in children(cx, node, &["real_server"]) {
        if child.keyword() == "alpha" {
            // keepalived's virtual_server `alpha` takes no value: it is on.
            if !child.args().is_empty() {
                cx.warn(
                    &child.loc,
                    "alpha: a virtual_server's alpha takes no value; keepalived turns it on, \
                     so does the import"
                        .to_string(),
                );
            }
            svc.own.alpha = Some((true, child.loc.clone()));
            continue;
        }
        if svc.own.take(cx, child) {
            continue;
        }
        match child.keyword() {
            "lb_algo" | "lvs_sched" => {
                if let Some(name) = cx.one(child) {
                    if sched::NAMES.contains(&name) {
                        svc.sched = Some(name.to_string());
                    } else {
                        cx.error(
                            &child.loc,
                            format!(
                                "{header}: refused: rvs has no scheduler '{name}' (it has {})",
                                sched::NAMES.join(", ")
                            ),
                        );
                        refused = true;
                    }
                }
            }
            "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                let (flag, needs) = match child.keyword() {
                    "sh-port" => ("sh-port", "sh"),
                    "sh-fallback" => ("sh-fallback", "sh"),
                    "mh-port" => ("mh-port", "mh"),
                    _ => ("mh-fallback", "mh"),
                };
                if svc.sched.as_deref() == Some(needs) {
                    if !svc.sched_flags.contains(&flag) {
                        svc.sched_flags.push(flag);
                    }
                } else {
                    cx.ignored(
                        child,
                        &format!("only applies after `lb_algo {needs}`, as keepalived says"),
                    );
                }
            }
            "ops" | "flag-1" | "flag-2" | "flag-3" | "hashed" => {
                cx.dropped(child, "rvs has no such scheduler flag");
            }
            "lb_kind" | "lvs_method" => {
                if let Some(m) = mode(cx, child) {
                    svc.mode = Some(m);
                }
            }
            "persistence_timeout" => {
                if child.args().is_empty() {
                    svc.persistence = Some(DEFAULT_PERSISTENCE);
                } else if let Some(v) = cx.unsigned(child, 1, MAX_PERSISTENCE) {
                    svc.persistence = Some(v);
                }
            }
            "persistence_granularity" => {
                if let Some(mask) = cx.one(child) {
                    // keepalived: a prefix length 1..=128 for an IPv6 virtual server.
                    let valid = match ip {
                        IpAddr::V4(_) => mask.parse::<Ipv4Addr>().is_ok(),
                        IpAddr::V6(_) => {
                            mask.parse::<u8>().is_ok_and(|len| (1..=128).contains(&len))
                        }
                    };
                    if valid {
                        svc.netmask = Some(mask.to_string());
                        svc.persistence.get_or_insert(DEFAULT_PERSISTENCE);
                    } else if ip.is_ipv4() {
                        cx.invalid(child, "not a dotted IPv4 netmask");
                    } else {
                        cx.invalid(child, "not an IPv6 prefix length 1..=128");
                    }
                }
            }
            "persistence_engine" => {
                cx.dropped(child, "rvs has no IPVS persistence engines (SIP)");
            }
            "protocol" => {
                if let Some(p) = cx.one(child) {
                    match p.to_ascii_uppercase().as_str() {
                        "TCP" => svc.proto = Some("tcp"),
                        "UDP" => svc.proto = Some("udp"),
                        "SCTP" => {
                            cx.error(&child.loc, format!("{header}: refused: rvs has no SCTP"));
                            refused = true;
                        }
                        _ => cx.invalid(child, "not TCP, UDP or SCTP"),
                    }
                }
            }
            "ip_family" => match (cx.one(child), ip) {
                (None, _) | (Some("inet"), IpAddr::V4(_)) | (Some("inet6"), IpAddr::V6(_)) => {}
                (Some(family @ ("inet" | "inet6")), _) => {
                    cx.error(
                        &child.loc,
                        format!("{header}: refused: ip_family {family} is not the family of {ip}"),
                    );
                    refused = true;
                }
                (Some(_), _) => cx.invalid(child, "not inet or inet6"),
            },
            "inhibit_on_failure" => svc.own.inhibit = Some(true),
            "virtualhost" => {
                if let Some(v) = cx.one(child) {
                    svc.own.virtualhost = Some(v.to_string());
                }
            }
            "omega" => svc.omega = true,
            "quorum" => {
                if let Some(v) = cx.unsigned(child, 1, u64::from(u32::MAX)) {
                    svc.quorum = Some(v);
                }
            }
            "hysteresis" => {
                if let Some(v) = cx.unsigned(child, 0, u64::from(u32::MAX)) {
                    svc.hysteresis = Some(v);
                }
            }
            "quorum_up" | "quorum_down" => {
                let which = if child.keyword() == "quorum_up" {
                    &mut svc.quorum_up
                } else {
                    &mut svc.quorum_down
                };
                if which.is_some() {
                    cx.ignored(child, "given twice; keepalived keeps the first");
                } else if let Some(c) = cx.command(child) {
                    *which = Some(c);
                }
            }
            "weight" => {
                if let Some(v) = cx.unsigned(child, 1, MAX_WEIGHT) {
                    svc.weight = Some(v);
                }
            }
            "sorry_server" => {
                if let Some(s) = server(cx, child) {
                    svc.sorry_server = Some(s);
                }
            }
            "sorry_server_inhibit" => {
                if svc.sorry_server.is_some() {
                    svc.sorry_server_inhibit = true;
                } else {
                    cx.ignored(child, "before or without sorry_server, as keepalived says");
                }
            }
            "sorry_server_lvs_method" => cx.dropped(
                child,
                "rvs's sorry server takes the service's forwarding; no method of its own",
            ),
            "real_server" => {
                if let Some(r) = real_server(cx, child) {
                    svc.reals.push(r);
                }
            }
            "ha_suspend" => cx.dropped(
                child,
                "rvs's checker does not follow VRRP state, so it cannot suspend checks on a backup",
            ),
            "smtp_alert" => cx.ignored(child, "rvs sends no SMTP alerts"),
            "snmp_name" => cx.ignored(child, "rvs has no SNMP"),
            "laddr_group_name" => {
                if let Some(name) = cx.one(child) {
                    match groups.get(name) {
                        Some(addrs) => svc.laddrs.clone_from(addrs),
                        None => cx.error(
                            &child.loc,
                            format!("laddr_group_name {name}: no local_address_group {name}: not converted"),
                        ),
                    }
                }
            }
            _ => cx.unknown(child, "virtual_server"),
        }
    }
    if refused {
        return None;
    }
    if svc.reals.is_empty() {
        cx.warn(
            loc,
            format!("{header}: no real servers; keepalived ignores it, so does the import"),
        );
        return None;
    }
    let proto = svc.proto.unwrap_or_else(|| {
        cx.warn(
            loc,
            format!(
                "{header}: no protocol; keepalived 2.2 sets UDP (the kernel's default): \
                 converted as udp, say `protocol TCP` if TCP is meant"
            ),
        );
        "udp"
    });
    if !seen.insert((ip, port, proto)) {
        cx.error(
            loc,
            format!("{header}: refused: the same address, port and protocol as an earlier virtual_server"),
        );
        return None;
    }
    if port == 0 && svc.persistence.is_none() {
        cx.warn(
            loc,
            format!("{header}: port 0 is only valid with persistence; keepalived sets persistence_timeout {DEFAULT_PERSISTENCE}, so does the import"),
        );
        svc.persistence = Some(DEFAULT_PERSISTENCE);
    }
    let default_mode = svc.mode.unwrap_or_else(|| {
        cx.warn(
            loc,
            format!("{header}: no lb_kind; keepalived uses NAT, so does the import"),
        );
        "nat"
    });
    Some(emit(cx, node, &svc, ip, port, proto, default_mode))
}

fn real_server(cx: &mut Ctx<'_>, node: &Node) -> Option<Real> {
    let (ip, port) = server(cx, node)?;
    let mut real = Real {
        loc: node.loc.clone(),
        ip,
        port,
        mode: None,
        weight: None,
        u_threshold: None,
        l_threshold: None,
        own: Inherited::default(),
        checks: Vec::new(),
    };
    for child in children(cx, node, CHECKERS) {
        if real.own.take(cx, child) {
            continue;
        }
        match child.keyword() {
            "weight" => {
                if let Some(v) = cx.unsigned(child, 0, MAX_WEIGHT) {
                    real.weight = Some(v);
                }
            }
            "lvs_method" => {
                if let Some(m) = mode(cx, child) {
                    real.mode = Some(m);
                }
            }
            "uthreshold" => real.u_threshold = cx.unsigned(child, 0, MAX_THRESHOLD),
            "lthreshold" => real.l_threshold = cx.unsigned(child, 0, MAX_THRESHOLD),
            "inhibit_on_failure" => {
                if let Some(v) = cx.flag(child) {
                    real.own.inhibit = Some(v);
                }
            }
            "virtualhost" => {
                if let Some(v) = cx.one(child) {
                    real.own.virtualhost = Some(v.to_string());
                }
            }
            "notify_up" | "notify_down" => cx.dropped(
                child,
                "rvs runs no script on a real server's transitions (it logs them)",
            ),
            "smtp_alert" => cx.ignored(child, "rvs sends no SMTP alerts"),
            "snmp_name" => cx.ignored(child, "rvs has no SNMP"),
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK" => {
                if let Some(c) = checker(cx, child) {
                    real.checks.push(c);
                }
            }
            "SMTP_CHECK" | "DNS_CHECK" | "BFD_CHECK" | "PING_CHECK" | "FILE_CHECK" => cx.dropped(
                child,
                "rvscheck has TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK and MISC_CHECK only; \
                 the real server is converted without this check (a MISC_CHECK script can stand in)",
            ),
            _ => cx.unknown(child, "real_server"),
        }
    }
    Some(real)
}

fn checker(cx: &mut Ctx<'_>, node: &Node) -> Option<Check> {
    let kind = match node.keyword() {
        "TCP_CHECK" => "tcp",
        "HTTP_GET" => "http",
        "SSL_GET" => "https",
        "UDP_CHECK" => "udp",
        _ => "misc",
    };
    let mut check = Check {
        kind,
        connect_ip: None,
        connect_port: None,
        bindto: None,
        bind_port: None,
        own: Inherited::default(),
        urls: Vec::new(),
        payload: None,
        require_reply: None,
        path: None,
        timeout: None,
        dynamic: false,
    };
    let within = node.keyword();
    let mut path_refused = false;
    let mut url_refused = false;
    for child in children(cx, node, &["url"]) {
        let kw = child.keyword();
        let connection = kind != "misc";
        if connection {
            match kw {
                "connect_ip" => {
                    check.connect_ip = cx.ip(child).or(check.connect_ip);
                    continue;
                }
                "connect_port" => {
                    check.connect_port = cx.unsigned(child, 1, 65535).or(check.connect_port);
                    continue;
                }
                "bindto" => {
                    check.bindto = cx.ip(child).or(check.bindto);
                    continue;
                }
                "bind_port" => {
                    check.bind_port = cx.unsigned(child, 1, 65535).or(check.bind_port);
                    continue;
                }
                "bind_if" => {
                    cx.dropped(
                        child,
                        "probes leave through rvs's kernel twin; bind with bindto",
                    );
                    continue;
                }
                "fwmark" => {
                    cx.dropped(child, "rvs's probes carry no firewall mark");
                    continue;
                }
                _ => {}
            }
        } else if kw == "connect_timeout" {
            // keepalived's MISC_CHECK has no connection keywords.
            cx.unknown(child, within);
            continue;
        }
        if check.own.take(cx, child) {
            continue;
        }
        match (kind, kw) {
            (_, "log_all_failures") => cx.ignored(child, "rvs logs every transition"),
            ("http" | "https", "nb_get_retry") => {
                cx.warn(
                    &child.loc,
                    "nb_get_retry is keepalived's old name of retry: converted as retry"
                        .to_string(),
                );
                if let Some(v) = cx.unsigned(child, 0, u64::from(u32::MAX)) {
                    check.own.retry = Some(v);
                }
            }
            ("http" | "https", "virtualhost") => {
                if let Some(v) = cx.one(child) {
                    check.own.virtualhost = Some(v.to_string());
                }
            }
            ("http" | "https", "url") => match url(cx, child) {
                Ok(Some(u)) => check.urls.push(u),
                Ok(None) => {}
                Err(()) => url_refused = true,
            },
            ("http" | "https", "http_protocol" | "enable_sni" | "fast_recovery") => {
                cx.dropped(child, "rvscheck has no such HTTP_GET option");
            }
            ("udp", "payload") => {
                if child.args().is_empty() {
                    cx.invalid(child, "no payload");
                } else {
                    check.payload = Some(child.args().join(" "));
                }
            }
            ("udp", "require_reply") => {
                check.require_reply =
                    Some((!child.args().is_empty()).then(|| child.args().join(" ")));
            }
            ("udp", "min_reply_length" | "max_reply_length") => {
                cx.dropped(child, "rvscheck's UDP_CHECK has no reply length bounds");
            }
            ("misc", "misc_path") => match cx.command(child) {
                Some(path) => check.path = Some(path),
                None => path_refused = true,
            },
            ("misc", "misc_timeout") => {
                check.timeout = cx
                    .unsigned(child, 0, u64::from(u32::MAX) / 1_000_000)
                    .or(check.timeout);
            }
            ("misc", "misc_dynamic") => check.dynamic = true,
            ("misc", "user") => cx.dropped(child, "rvscheck runs scripts as its own user"),
            _ => cx.unknown(child, within),
        }
    }
    if matches!(kind, "http" | "https") && check.urls.is_empty() {
        if !url_refused {
            cx.warn(
                &node.loc,
                format!("{within}: no url; keepalived drops the check, so does the import"),
            );
        }
        return None;
    }
    if kind == "misc" && check.path.is_none() {
        if !path_refused {
            cx.warn(
                &node.loc,
                "MISC_CHECK: no misc_path; keepalived drops the check, so does the import"
                    .to_string(),
            );
        }
        return None;
    }
    Some(check)
}

/// A `url` block: `Ok(None)` when keepalived itself drops it, `Err` when rvs cannot take it
/// (reported).
fn url(cx: &mut Ctx<'_>, node: &Node) -> Result<Option<Url>, ()> {
    let mut path = None;
    let mut status_code = None;
    let mut digest = None;
    let mut virtualhost = None;
    for child in children(cx, node, &[]) {
        match child.keyword() {
            "path" => {
                path = cx
                    .one(child)
                    .map(|p| (p.to_string(), child.loc.clone()))
                    .or(path);
            }
            "digest" => {
                if let Some(d) = cx.one(child) {
                    if digest.is_some() {
                        cx.ignored(child, "a second digest; keepalived keeps the first");
                    } else if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        digest = Some(d.to_ascii_lowercase());
                    } else {
                        cx.invalid(child, "not 32 hex digits (an MD5 digest)");
                    }
                }
            }
            "status_code" => {
                let mut codes = Vec::new();
                for code in child.args() {
                    let (lo, hi) = code.split_once('-').unwrap_or((code, code));
                    match (lo.parse::<u16>(), hi.parse::<u16>()) {
                        (Ok(lo), Ok(hi))
                            if (100..=999).contains(&lo) && (lo..=999).contains(&hi) =>
                        {
                            codes.push(if lo == hi {
                                lo.to_string()
                            } else {
                                format!("{lo}-{hi}")
                            });
                        }
                        _ => cx.invalid(
                            child,
                            &format!("'{code}' is not a status code 100..=999 or a range of them"),
                        ),
                    }
                }
                if child.args().is_empty() {
                    cx.one(child);
                }
                if !codes.is_empty() {
                    status_code = Some(codes.join(" "));
                }
            }
            "virtualhost" => virtualhost = cx.one(child).map(str::to_string).or(virtualhost),
            "regex" | "regex_no_match" | "regex_options" | "regex_min_offset"
            | "regex_max_offset" | "regex_stack" => {
                cx.dropped(
                    child,
                    "rvscheck checks status codes and digests, not regular expressions",
                );
            }
            _ => cx.unknown(child, "url"),
        }
    }
    let Some((path, at)) = path else {
        cx.warn(
            &node.loc,
            "url: no path; keepalived drops the url, so does the import".to_string(),
        );
        return Ok(None);
    };
    if !path.starts_with('/') || path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        cx.error(
            &at,
            format!(
                "path {path:?}: not converted: rvs's HTTP_GET takes a request path (it starts \
                 with /, without blanks or control characters); the url is dropped"
            ),
        );
        return Err(());
    }
    Ok(Some(Url {
        path,
        status_code,
        digest,
        virtualhost,
    }))
}

/// The `[[service]]` table: keys in a fixed order, defaults keepalived would apply written
/// out where rvs's differ, and keepalived's corrections made (and said).
fn emit(
    cx: &mut Ctx<'_>,
    node: &Node,
    svc: &Service,
    ip: IpAddr,
    port: u16,
    proto: &str,
    default_mode: &'static str,
) -> String {
    let header = format!("virtual_server {ip} {port}");
    let mut out = String::new();
    let _ = writeln!(out, "# {header} at {}:{}", node.loc.file, node.loc.line);
    out.push_str("[[service]]\n");
    let _ = writeln!(
        out,
        "vip = {}",
        quote(&SocketAddr::new(ip, port).to_string())
    );
    let _ = writeln!(out, "proto = {}", quote(proto));
    let _ = writeln!(
        out,
        "sched = {}",
        quote(svc.sched.as_deref().unwrap_or("wlc"))
    );
    if !svc.sched_flags.is_empty() {
        let flags: Vec<String> = svc.sched_flags.iter().map(|f| quote(f)).collect();
        let _ = writeln!(out, "sched_flags = [{}]", flags.join(", "));
    }
    if let Some(p) = svc.persistence {
        let _ = writeln!(out, "persistence = {p}");
    }
    if let Some(m) = &svc.netmask {
        let _ = writeln!(out, "netmask = {}", quote(m));
    }
    if !svc.laddrs.is_empty() {
        let laddrs: Vec<String> = svc.laddrs.iter().map(|a| quote(&a.to_string())).collect();
        let _ = writeln!(out, "laddrs = [{}]", laddrs.join(", "));
    }
    if let Some(d) = &svc.own.delay_loop {
        let _ = writeln!(out, "delay_loop = {d}");
    }

    // Reals: duplicates go as keepalived removes them, ports as keepalived sets them.
    let mut reals: Vec<(&Real, &'static str, u64, Option<u16>)> = Vec::new();
    let mut addrs = HashSet::new();
    for real in &svc.reals {
        let mode = real.mode.unwrap_or(default_mode);
        let port_out = if port == 0 {
            if real.port.is_some_and(|p| p != 0) {
                cx.error(
                    &real.loc,
                    format!(
                        "real_server {}: its port is dropped: rvs's port-0 services forward to the client's port",
                        real.ip
                    ),
                );
            }
            None
        } else {
            match real.port {
                Some(p) if p != 0 && p != port && mode != "nat" && mode != "fullnat" => {
                    cx.warn(
                        &real.loc,
                        format!("real_server {} {p}: a {mode} real server takes the virtual server's port; keepalived resets it to {port}, so does the import", real.ip),
                    );
                    Some(port)
                }
                Some(p) if p != 0 => Some(p),
                _ => Some(port),
            }
        };
        if !addrs.insert((real.ip, port_out)) {
            cx.warn(
                &real.loc,
                format!(
                    "real_server {}: duplicated; keepalived removes the second, so does the import",
                    real.ip
                ),
            );
            continue;
        }
        let weight = real.weight.or(svc.weight).unwrap_or(1);
        reals.push((real, mode, weight, port_out));
    }

    if svc.laddrs.is_empty() && reals.iter().any(|r| r.1 == "fullnat") {
        cx.warn(
            &node.loc,
            format!("{header}: FULLNAT without laddr_group_name: rvs refuses its connections until the service has `laddrs`"),
        );
    }

    // alpha: rvs has it per service; keepalived per virtual server, real server and checker.
    let alpha = svc.own.alpha.as_ref().is_some_and(|(a, _)| *a);
    for (real, ..) in &reals {
        let inherited = real.own.over(&svc.own);
        for check in &real.checks {
            if let Some((a, at)) = check.own.alpha.clone().or(inherited.alpha.clone()) {
                if a != alpha {
                    cx.error(
                        &at,
                        format!(
                            "alpha {}: not converted: rvs has alpha per service, and this virtual_server's is {}",
                            if a { "on" } else { "off" },
                            if alpha { "on" } else { "off" }
                        ),
                    );
                }
            }
        }
    }
    if svc.own.alpha.is_some() {
        let _ = writeln!(out, "alpha = {alpha}");
    }
    if svc.omega {
        out.push_str("omega = true\n");
    }

    let weight_sum: u64 = reals.iter().map(|r| r.2).sum();
    let mut quorum = svc.quorum;
    if let Some(q) = quorum {
        if q > weight_sum && weight_sum > 0 {
            cx.warn(
                &node.loc,
                format!("{header}: quorum {q} exceeds the real servers' total weight {weight_sum}; keepalived lowers it to {weight_sum}, so does the import"),
            );
            quorum = Some(weight_sum);
        }
    }
    let mut hysteresis = svc.hysteresis;
    if let Some(h) = hysteresis {
        let q = quorum.unwrap_or(1);
        if h >= q {
            cx.warn(
                &node.loc,
                format!("{header}: hysteresis {h} is not below quorum {q}; keepalived sets it to {}, so does the import", q - 1),
            );
            hysteresis = Some(q - 1);
        }
    }
    if let Some(q) = quorum {
        let _ = writeln!(out, "quorum = {q}");
    }
    if let Some(h) = hysteresis {
        let _ = writeln!(out, "hysteresis = {h}");
    }
    if let Some(c) = &svc.quorum_up {
        let _ = writeln!(out, "quorum_up = {}", quote(c));
    }
    if let Some(c) = &svc.quorum_down {
        let _ = writeln!(out, "quorum_down = {}", quote(c));
    }
    if let Some((sip, sport)) = svc.sorry_server {
        let sport = match sport {
            Some(p) if p != 0 => p,
            _ => port,
        };
        let addr = if port == 0 {
            sip.to_string()
        } else {
            SocketAddr::new(sip, sport).to_string()
        };
        let _ = writeln!(out, "sorry_server = {}", quote(&addr));
        if svc.sorry_server_inhibit {
            out.push_str("sorry_server_inhibit = true\n");
        }
    }

    for (real, mode, weight, port_out) in reals {
        let inherited = real.own.over(&svc.own);
        out.push_str("\n  [[service.real]]\n");
        let addr = match port_out {
            Some(p) => SocketAddr::new(real.ip, p).to_string(),
            None => real.ip.to_string(),
        };
        let _ = writeln!(out, "  addr = {}", quote(&addr));
        let _ = writeln!(out, "  mode = {}", quote(mode));
        let _ = writeln!(out, "  weight = {weight}");
        if let Some(u) = real.u_threshold {
            let _ = writeln!(out, "  u_threshold = {u}");
        }
        if let Some(l) = real.l_threshold {
            let _ = writeln!(out, "  l_threshold = {l}");
        }
        if inherited.inhibit == Some(true) {
            out.push_str("  inhibit_on_failure = true\n");
        }
        for check in &real.checks {
            emit_check(&mut out, check, &real.own, &inherited);
        }
    }
    out
}

fn emit_check(out: &mut String, check: &Check, real: &Inherited, inherited: &Inherited) {
    // delay_loop: the service's is inherited by rvs itself; a real server's is written here.
    let delay_loop = check
        .own
        .delay_loop
        .clone()
        .or_else(|| real.delay_loop.clone());
    let own = check.own.over(inherited);
    out.push_str("\n    [[service.real.check]]\n");
    let _ = writeln!(out, "    type = {}", quote(check.kind));
    if let Some(ip) = check.connect_ip {
        let _ = writeln!(out, "    connect_ip = {}", quote(&ip.to_string()));
    }
    if let Some(p) = check.connect_port {
        let _ = writeln!(out, "    connect_port = {p}");
    }
    if let Some(ip) = check.bindto {
        let _ = writeln!(out, "    bindto = {}", quote(&ip.to_string()));
    }
    if let Some(p) = check.bind_port {
        let _ = writeln!(out, "    bind_port = {p}");
    }
    if check.kind != "misc" {
        if let Some(t) = &own.connect_timeout {
            let _ = writeln!(out, "    connect_timeout = {t}");
        }
    }
    if let Some(r) = own.retry {
        let _ = writeln!(out, "    retry = {r}");
    }
    if let Some(d) = &own.delay_before_retry {
        let _ = writeln!(out, "    delay_before_retry = {d}");
    }
    if let Some(d) = &delay_loop {
        let _ = writeln!(out, "    delay_loop = {d}");
    }
    if let Some(w) = &own.warmup {
        let _ = writeln!(out, "    warmup = {w}");
    }
    if matches!(check.kind, "http" | "https") {
        if let Some(v) = &own.virtualhost {
            let _ = writeln!(out, "    virtualhost = {}", quote(v));
        }
        out.push_str("    url = [\n");
        for u in &check.urls {
            let mut parts = vec![format!("path = {}", quote(&u.path))];
            if let Some(s) = &u.status_code {
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    parts.push(format!("status_code = {s}"));
                } else {
                    parts.push(format!("status_code = {}", quote(s)));
                }
            }
            if let Some(d) = &u.digest {
                parts.push(format!("digest = {}", quote(d)));
            }
            if let Some(v) = &u.virtualhost {
                parts.push(format!("virtualhost = {}", quote(v)));
            }
            let _ = writeln!(out, "      {{ {} }},", parts.join(", "));
        }
        out.push_str("    ]\n");
    }
    if let Some(p) = &check.payload {
        let _ = writeln!(out, "    payload = {}", quote(p));
    }
    match &check.require_reply {
        Some(None) => out.push_str("    require_reply = true\n"),
        Some(Some(hex)) => {
            let _ = writeln!(out, "    require_reply = {}", quote(hex));
        }
        None => {}
    }
    if let Some(p) = &check.path {
        let _ = writeln!(out, "    path = {}", quote(p));
    }
    if let Some(t) = check.timeout {
        let _ = writeln!(out, "    timeout = {t}");
    }
    if check.dynamic {
        out.push_str("    dynamic = true\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_normalised() {
        assert_eq!(seconds("6").as_deref(), Some("6"));
        assert_eq!(seconds("06").as_deref(), Some("6"));
        assert_eq!(seconds("1.50").as_deref(), Some("1.5"));
        assert_eq!(seconds("2.0").as_deref(), Some("2"));
        assert_eq!(seconds(".25").as_deref(), Some("0.25"));
        assert_eq!(seconds("0.0000001"), None);
        assert_eq!(seconds("1e3"), None);
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("."), None);
    }

    #[test]
    fn strings_are_toml() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\u{1}"), "\"x\\u0001\"");
    }
}
