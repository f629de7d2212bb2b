//! `rvsadm`'s command line: ipvsadm 1.31's options and checks (1.26's plus the tunnel options
//! `--tun-type/--tun-port/--tun-nocsum/--tun-csum/--tun-remcsum/--tun-info`, weights up to
//! `INT_MAX` and the sync daemon's `--mcast-group/--mcast-port/--mcast-ttl/--sync-maxlen`),
//! DPVS's `-b` and `-P/-Q/-G -z`, plus `--drops` and `--socket PATH`.
//!
//! The parser is written by hand to behave as ipvsadm's popt loop does, which a generic
//! argument parser does not:
//! - the first option must be a command (`-n -L` is refused; `-Ln` and `-At 10.0.0.1:80` are
//!   clusters whose last option may take the next argument or the rest of the cluster,
//!   `-t10.0.0.1:80`, `-p=600`);
//! - `-p` takes the next argument only if it does not start with `-` (`-p` alone is 360 s);
//! - a required argument is taken even if it starts with `-`;
//! - positional arguments are collected wherever they are (`--set 900 120 300`);
//! - errors are ipvsadm's texts and exit codes, checked in its order: each option as it comes,
//!   then the command/option table, then the command's own rules.
//!
//! Differences from ipvsadm: no fwmark (`-f`), `--pe` or `--ops` (they are unknown options;
//! an IPv6 `--mcast-group` is refused); a real server without port gets the vip port even
//! when `-r` comes before `-t`, and `-M` is read as a dotted mask or an IPv6 prefix length by
//! the service's family wherever it stands (ipvsadm used whatever `-t` had set so far); `-R` refuses
//! `--start-daemon`/`--stop-daemon` lines (a restore is one all-or-nothing batch of changes).
//!
//! `--start-daemon` takes ipvsadm's defaults: `--mcast-interface` `eth0` (also when given
//! empty), a name longer than 15 bytes cut to 15 as ipvsadm's `strncpy` does, syncid 0,
//! maxlen from the MTU (rvsd's choice, shown by `-L --daemon`), group 224.0.0.81, port 8848,
//! TTL 1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use conf::echo::cut;
use conf::proto::{DestSpec, Request, ServiceKey, ServiceSpec, TimeoutValues};
use conf::{
    Mode, Netmask, Proto, SyncDaemon, SyncRole, TunCsum, TunKind, Tunnel, DEFAULT_MODE,
    DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHED, DEFAULT_SOCKET, DEFAULT_SYNC_GROUP,
    DEFAULT_SYNC_PORT, DEFAULT_SYNC_TTL, DEFAULT_WEIGHT, MAX_IFNAME, MAX_SYNC_MAXLEN,
    MAX_THRESHOLD, MAX_TIMEOUT, MAX_WEIGHT,
};

use crate::names::Names;

/// How a listing is printed (ipvsadm's `FMT_*` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `-n`: addresses and ports as numbers.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`: services in the order they were added, reals in kernel order.
    pub nosort: bool,
    /// `--exact`: numbers without K/M/G/T suffixes.
    pub exact: bool,
    /// `--tun-info`: the TunnelInfo column (ipvsadm 1.31).
    pub tun_info: bool,
}

/// What `rvsadm` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A change: `-A -E -D -C -a -e -d -Z --set -P -Q`.
    Change(Request),
    /// `--start-daemon`/`--stop-daemon`: answered like a change, but not one `-R` restores.
    Daemon(Request),
    /// `-L`, of one service or all.
    List {
        /// `-t`/`-u` given with `-L`.
        service: Option<ServiceKey>,
        /// Columns and number format.
        format: Format,
    },
    /// `-L -c`.
    ListConns {
        /// Number format.
        format: Format,
    },
    /// `-L --timeout`.
    ListTimeouts,
    /// `-L --daemon`.
    ListDaemons,
    /// `-L --health`: each real server's checks and state.
    ListHealth,
    /// `-S`.
    Save {
        /// `-n`.
        format: Format,
    },
    /// `-R`.
    Restore,
    /// `-G`.
    GetLaddrs {
        /// `-t`/`-u` given with `-G`.
        service: Option<ServiceKey>,
    },
    /// `--drops`.
    Drops {
        /// `--exact`.
        format: Format,
    },
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--socket`, or the default.
    pub socket: PathBuf,
    /// The command.
    pub command: Command,
}

/// A rejected command line, in ipvsadm's three kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// No command first: ipvsadm prints the try-help line and exits 255.
    TryHelp,
    /// A `fail(2, ...)` of ipvsadm: the message, exit 2.
    Fail(String),
    /// A popt error (unknown option, missing argument): the message, exit 255.
    Option(String),
}

impl CliError {
    /// ipvsadm's exit status for the error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Fail(_) => 2,
            CliError::TryHelp | CliError::Option(_) => 255,
        }
    }

    /// The line ipvsadm prints (without newline); `program` is `argv[0]`.
    pub fn message(&self, program: &str) -> String {
        match self {
            CliError::TryHelp => {
                format!("Try `{program} -h' or '{program} --help' for more information.")
            }
            CliError::Fail(m) | CliError::Option(m) => m.clone(),
        }
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::Fail(message.into()))
}

/// The commands, in the order of ipvsadm's table (`cmdnames`), DPVS's and ours after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Set,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Drops,
}

impl Cmd {
    fn name(self) -> &'static str {
        CMD_NAMES[self as usize]
    }
}

const CMD_NAMES: [&str; 18] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
    "add-laddr",
    "del-laddr",
    "get-laddr",
    "drops",
];

/// The options of the command table, as bits (ipvsadm's `OPT_*`, without those rvs lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    McastInterface,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    Laddr,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Health,
}

const OPT_NAMES: [&str; 33] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "local-address",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "health",
];

/// Legal combinations of commands and options (ipvsadm's `commands_v_options`):
/// `+` compulsory, `x` illegal, `1` at most one of the `1`s, ` ` optional.
/// The daemon columns and rows are ipvsadm 1.31's (`mcast-interface`, `daemon`, `syncid`,
/// `mcast-group mcast-port mcast-ttl sync-maxlen`), and so are the tunnel columns (`tinf type
/// tprt nocs csum remc`); `l` is DPVS's `--laddr`, `h` rvs's `--health`.
const TABLE: [&[u8; 33]; 18] = [
    //  n c s s p M r f w x y m t d s r t p s s e g p t s l t t t n c r h
    b"xx+   xxxxxxxxxxxxxxxxxxxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxxxxxxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxx xxxxx1", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxx     x", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxx     x", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx x    xxxxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
    b"xx+xxxxxxxxxxxxxxxxxxxxxx+xxxxxxx", // add-laddr
    b"xx+xxxxxxxxxxxxxxxxxxxxxx+xxxxxxx", // del-laddr
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // get-laddr
    b"xxxxxxxxxxxxxxxxxxxx xxxxxxxxxxxx", // drops
];

/// The tunnel options each tunnel type takes (ipvsadm 1.31's `tunnel_types_v_options`, same
/// key as [`TABLE`]), for `tun-port tun-nocsum tun-csum tun-remcsum`.
const TUN_OPTS: [Opt; 4] = [Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum];
const TUN_TABLE: [&[u8; 4]; 3] = [
    b"xxxx", // ipip
    b"+111", // gue
    b"x11x", // gre
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Cmd(Cmd),
    Help,
    Version,
    Socket,
    Tcp,
    Udp,
    Sched,
    Persistent,
    Netmask,
    Real,
    Mode(Mode),
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Laddr,
    TunInfo,
    TunType,
    TunPort,
    TunFlag(TunCsum),
    Health,
    McastInterface,
    Syncid,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    Daemon,
}

struct OptDef {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    id: Id,
}

const fn def(long: &'static str, short: Option<char>, arg: Arg, id: Id) -> OptDef {
    OptDef {
        long,
        short,
        arg,
        id,
    }
}

const OPTS: &[OptDef] = &[
    def("add-service", Some('A'), Arg::None, Id::Cmd(Cmd::Add)),
    def("edit-service", Some('E'), Arg::None, Id::Cmd(Cmd::Edit)),
    def("delete-service", Some('D'), Arg::None, Id::Cmd(Cmd::Del)),
    def("clear", Some('C'), Arg::None, Id::Cmd(Cmd::Flush)),
    def("list", Some('L'), Arg::None, Id::Cmd(Cmd::List)),
    def("list", Some('l'), Arg::None, Id::Cmd(Cmd::List)),
    def("zero", Some('Z'), Arg::None, Id::Cmd(Cmd::Zero)),
    def("add-server", Some('a'), Arg::None, Id::Cmd(Cmd::AddDest)),
    def("edit-server", Some('e'), Arg::None, Id::Cmd(Cmd::EditDest)),
    def("delete-server", Some('d'), Arg::None, Id::Cmd(Cmd::DelDest)),
    def("set", None, Arg::None, Id::Cmd(Cmd::Set)),
    def(
        "start-daemon",
        None,
        Arg::Required,
        Id::Cmd(Cmd::StartDaemon),
    ),
    def("stop-daemon", None, Arg::Required, Id::Cmd(Cmd::StopDaemon)),
    def("help", Some('h'), Arg::None, Id::Help),
    def("version", Some('v'), Arg::None, Id::Version),
    def("restore", Some('R'), Arg::None, Id::Cmd(Cmd::Restore)),
    def("save", Some('S'), Arg::None, Id::Cmd(Cmd::Save)),
    def("add-laddr", Some('P'), Arg::None, Id::Cmd(Cmd::AddLaddr)),
    def("del-laddr", Some('Q'), Arg::None, Id::Cmd(Cmd::DelLaddr)),
    def("get-laddr", Some('G'), Arg::None, Id::Cmd(Cmd::GetLaddr)),
    def("drops", None, Arg::None, Id::Cmd(Cmd::Drops)),
    def("tcp-service", Some('t'), Arg::Required, Id::Tcp),
    def("udp-service", Some('u'), Arg::Required, Id::Udp),
    def("scheduler", Some('s'), Arg::Required, Id::Sched),
    def("persistent", Some('p'), Arg::Optional, Id::Persistent),
    def("netmask", Some('M'), Arg::Required, Id::Netmask),
    def("real-server", Some('r'), Arg::Required, Id::Real),
    def("masquerading", Some('m'), Arg::None, Id::Mode(Mode::Nat)),
    def("ipip", Some('i'), Arg::None, Id::Mode(Mode::Tun)),
    def("gatewaying", Some('g'), Arg::None, Id::Mode(Mode::Dr)),
    def("fullnat", Some('b'), Arg::None, Id::Mode(Mode::FullNat)),
    def("weight", Some('w'), Arg::Required, Id::Weight),
    def("u-threshold", Some('x'), Arg::Required, Id::UThreshold),
    def("l-threshold", Some('y'), Arg::Required, Id::LThreshold),
    def("numeric", Some('n'), Arg::None, Id::Numeric),
    def("connection", Some('c'), Arg::None, Id::Connection),
    def("timeout", None, Arg::None, Id::Timeout),
    def("stats", None, Arg::None, Id::Stats),
    def("rate", None, Arg::None, Id::Rate),
    def("thresholds", None, Arg::None, Id::Thresholds),
    def("persistent-conn", None, Arg::None, Id::PersistentConn),
    def("nosort", None, Arg::None, Id::NoSort),
    def("sort", None, Arg::None, Id::Sort),
    def("exact", Some('X'), Arg::None, Id::Exact),
    def("laddr", Some('z'), Arg::Required, Id::Laddr),
    def("tun-info", None, Arg::None, Id::TunInfo),
    def("tun-type", None, Arg::Required, Id::TunType),
    def("tun-port", None, Arg::Required, Id::TunPort),
    def("tun-nocsum", None, Arg::None, Id::TunFlag(TunCsum::None)),
    def("tun-csum", None, Arg::None, Id::TunFlag(TunCsum::Csum)),
    def(
        "tun-remcsum",
        None,
        Arg::None,
        Id::TunFlag(TunCsum::Remcsum),
    ),
    def("socket", None, Arg::Required, Id::Socket),
    def("health", None, Arg::None, Id::Health),
    def("mcast-interface", None, Arg::Required, Id::McastInterface),
    def("syncid", None, Arg::Required, Id::Syncid),
    def("mcast-group", None, Arg::Required, Id::McastGroup),
    def("mcast-port", None, Arg::Required, Id::McastPort),
    def("mcast-ttl", None, Arg::Required, Id::McastTtl),
    def("sync-maxlen", None, Arg::Required, Id::SyncMaxlen),
    def("daemon", None, Arg::None, Id::Daemon),
];

/// One option as popt returns it.
struct Found {
    def: &'static OptDef,
    arg: Option<String>,
    /// The argument vector element it came from, for error messages.
    token: String,
}

/// popt's scan: options one at a time, positional arguments set aside.
struct Popt<'a> {
    args: &'a [String],
    next: usize,
    /// Index of the short-option cluster being read and the byte offset in it.
    cluster: Option<(usize, usize)>,
    positional: Vec<String>,
    only_positional: bool,
}

impl<'a> Popt<'a> {
    fn new(args: &'a [String]) -> Popt<'a> {
        Popt {
            args,
            next: 0,
            cluster: None,
            positional: Vec::new(),
            only_positional: false,
        }
    }

    fn take_next(&mut self) -> Option<String> {
        let a = self.args.get(self.next)?.clone();
        self.next += 1;
        Some(a)
    }

    /// An optional argument is the next element unless that looks like an option.
    fn take_optional(&mut self) -> Option<String> {
        match self.args.get(self.next) {
            Some(a) if !a.starts_with('-') => self.take_next(),
            _ => None,
        }
    }

    fn arg_from_next(&mut self, def: &OptDef, token: &str) -> Result<Option<String>, CliError> {
        match def.arg {
            Arg::None => Ok(None),
            Arg::Optional => Ok(self.take_optional()),
            Arg::Required => self
                .take_next()
                .map(Some)
                .ok_or_else(|| CliError::Option(format!("{}: missing argument", cut(token)))),
        }
    }

    fn next_opt(&mut self) -> Option<Result<Found, CliError>> {
        loop {
            if let Some((t, pos)) = self.cluster {
                let token = self.args[t].clone();
                let c = token[pos..].chars().next()?;
                let after = pos + c.len_utf8();
                self.cluster = (after < token.len()).then_some((t, after));
                let Some(def) = OPTS.iter().find(|d| d.short == Some(c)) else {
                    return Some(Err(CliError::Option(format!(
                        "{}: unknown option",
                        cut(&token)
                    ))));
                };
                let arg = if def.arg != Arg::None && after < token.len() {
                    self.cluster = None;
                    let rest = &token[after..];
                    Ok(Some(rest.strip_prefix('=').unwrap_or(rest).to_string()))
                } else {
                    self.arg_from_next(def, &token)
                };
                return Some(arg.map(|arg| Found { def, arg, token }));
            }
            let token = self.take_next()?;
            if self.only_positional || token == "-" || !token.starts_with('-') {
                self.positional.push(token);
                continue;
            }
            if token == "--" {
                self.only_positional = true;
                continue;
            }
            let Some(long) = token.strip_prefix("--") else {
                self.cluster = Some((self.next - 1, 1));
                continue;
            };
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(def) = OPTS.iter().find(|d| d.long == name) else {
                return Some(Err(CliError::Option(format!(
                    "{}: unknown option",
                    cut(&token)
                ))));
            };
            let arg = match value {
                Some(_) if def.arg == Arg::None => Err(CliError::Option(format!(
                    "{}: option does not take an argument",
                    cut(&token)
                ))),
                Some(v) => Ok(Some(v)),
                None => self.arg_from_next(def, &token),
            };
            return Some(arg.map(|arg| Found { def, arg, token }));
        }
    }
}

/// C's `atoi`: leading spaces, a sign, then as many digits as there are (0 without any).
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(12)
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    if neg {
        -n
    } else {
        n
    }
}

/// C's `strtol` over the whole string, as ipvsadm's `string_to_number`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let n = if neg { -n } else { n };
    (min..=max).contains(&n).then_some(n)
}

fn parse_timeout(s: &str, min: u32) -> Result<u32, CliError> {
    match string_to_number(s, min.into(), MAX_TIMEOUT.into()) {
        Some(n) => Ok(n as u32),
        None => fail(format!("invalid timeout value `{}' specified", cut(s))),
    }
}

/// ipvsadm's `parse_service`: `host[:port]` with a name or number for either part, or an
/// IPv6 address as `[addr]:port` or bare `addr` (no port). As ipvsadm, `[addr]` without a
/// port is refused and a name is resolved to IPv4 only.
fn parse_service(s: &str, proto: Proto, names: &Names) -> Option<(IpAddr, Option<u16>)> {
    // All digits is a port without address (and "" is "all digits" to ipvsadm too).
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (ip, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        (IpAddr::V6(addr.parse().ok()?), Some(port))
    } else if let Ok(ip) = s.parse::<Ipv6Addr>() {
        (IpAddr::V6(ip), None)
    } else {
        let (host, port) = match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let ip = host.parse().ok().or_else(|| names.host(host))?;
        (IpAddr::V4(ip), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            string_to_number(p, 0, 65535)
                .map(|n| n as u16)
                .or_else(|| names.port(p, proto))?,
        ),
    };
    Some((ip, port))
}

/// The argument of `--start-daemon`/`--stop-daemon`, checked as ipvsadm checks it when it
/// reads the command (with its two spellings of the error).
fn daemon_role(cmd: Cmd, arg: Option<&str>) -> Result<SyncRole, CliError> {
    match arg {
        Some("master") => Ok(SyncRole::Master),
        Some("backup") => Ok(SyncRole::Backup),
        _ if cmd == Cmd::StartDaemon => fail("illegal start-daemon parameter specified"),
        _ => fail("illegal start_daemon specified"),
    }
}

/// `--mcast-interface`: ipvsadm copies at most 15 bytes (`strncpy` into the kernel's 16-byte
/// name); the cut is moved back to a character boundary so that the name stays text.
fn ifname_prefix(name: &str) -> &str {
    let mut end = name.len().min(MAX_IFNAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// `--mcast-group`: an IPv4 multicast address, dotted as `inet_pton` reads it. ipvsadm takes
/// anything with a `:` as IPv6; rvs syncs over IPv4 only.
fn mcast_group(arg: &str) -> Result<Ipv4Addr, CliError> {
    if arg.contains(':') {
        return match arg.parse::<Ipv6Addr>() {
            Ok(a) if a.is_multicast() => fail(format!(
                "IPv6 mcast-group `{}' is not supported: rvs syncs over IPv4",
                cut(arg)
            )),
            _ => fail(format!("invalid IPv6 mcast-group `{}'", cut(arg))),
        };
    }
    match arg.parse::<Ipv4Addr>() {
        Ok(a) if a.is_multicast() => Ok(a),
        _ => fail(format!("invalid IPv4 mcast-group `{}'", cut(arg))),
    }
}

/// Everything the options said, before the command's rules are applied.
#[derive(Default)]
struct Options {
    set: u64,
    service: Option<(Proto, IpAddr, Option<u16>)>,
    sched: Option<String>,
    persistence: u32,
    /// `-M` as given: its meaning depends on the service's family (see [`netmask`]).
    netmask: Option<String>,
    real: Option<(IpAddr, Option<u16>)>,
    mode: Option<Mode>,
    weight: Option<u32>,
    u_threshold: u32,
    l_threshold: u32,
    laddr: Option<IpAddr>,
    tunnel: Tunnel,
    format: Format,
    /// `--start-daemon`/`--stop-daemon`'s argument.
    role: Option<SyncRole>,
    mcast_interface: Option<String>,
    syncid: u8,
    sync_maxlen: Option<u16>,
    mcast_group: Option<Ipv4Addr>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
}

impl Options {
    fn has(&self, o: Opt) -> bool {
        self.set & (1 << o as u64) != 0
    }

    fn set(&mut self, o: Opt) -> Result<(), CliError> {
        if self.has(o) {
            return fail(format!(
                "multiple '{}' options specified",
                OPT_NAMES[o as usize]
            ));
        }
        self.set |= 1 << o as u64;
        Ok(())
    }

    fn proto(&self) -> Proto {
        self.service.map_or(Proto::Tcp, |s| s.0)
    }

    fn take(&mut self, found: Found, names: &Names) -> Result<(), CliError> {
        let arg = found.arg.clone().unwrap_or_default();
        match found.def.id {
            Id::Tcp | Id::Udp => {
                self.set(Opt::Service)?;
                let proto = if found.def.id == Id::Tcp {
                    Proto::Tcp
                } else {
                    Proto::Udp
                };
                let Some((ip, port)) = parse_service(&arg, proto, names) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                self.service = Some((proto, ip, port));
            }
            Id::Sched => {
                self.set(Opt::Scheduler)?;
                self.sched = Some(arg);
            }
            Id::Persistent => {
                self.set(Opt::Persistent)?;
                self.persistence = match found.arg {
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                    Some(a) => parse_timeout(&a, 1)?,
                };
            }
            Id::Netmask => {
                self.set(Opt::Netmask)?;
                self.netmask = Some(arg);
            }
            Id::Real => {
                self.set(Opt::Server)?;
                match parse_service(&arg, self.proto(), names) {
                    Some(r) => self.real = Some(r),
                    None => return fail("illegal real server address[:port] specified"),
                }
            }
            Id::Mode(mode) => {
                self.set(Opt::Forward)?;
                self.mode = Some(mode);
            }
            Id::Weight => {
                self.set(Opt::Weight)?;
                match string_to_number(&arg, 0, MAX_WEIGHT.into()) {
                    Some(w) => self.weight = Some(w as u32),
                    None => return fail("illegal weight specified"),
                }
            }
            Id::UThreshold => {
                self.set(Opt::UThreshold)?;
                match string_to_number(&arg, 0, MAX_THRESHOLD.into()) {
                    Some(n) => self.u_threshold = n as u32,
                    None => return fail("illegal u_threshold specified"),
                }
            }
            Id::LThreshold => {
                self.set(Opt::LThreshold)?;
                match string_to_number(&arg, 0, MAX_THRESHOLD.into()) {
                    Some(n) => self.l_threshold = n as u32,
                    None => return fail("illegal l_threshold specified"),
                }
            }
            Id::Laddr => {
                self.set(Opt::Laddr)?;
                match parse_service(&arg, self.proto(), names) {
                    Some((ip, _)) => self.laddr = Some(ip),
                    None => return fail("illegal local address"),
                }
            }
            Id::Numeric => {
                self.set(Opt::Numeric)?;
                self.format.numeric = true;
            }
            Id::Connection => self.set(Opt::Connection)?,
            Id::Timeout => self.set(Opt::Timeout)?,
            Id::Health => self.set(Opt::Health)?,
            Id::Stats => {
                self.set(Opt::Stats)?;
                self.format.stats = true;
            }
            Id::Rate => {
                self.set(Opt::Rate)?;
                self.format.rate = true;
            }
            Id::Thresholds => {
                self.set(Opt::Thresholds)?;
                self.format.thresholds = true;
            }
            Id::PersistentConn => {
                self.set(Opt::PersistentConn)?;
                self.format.persistent_conn = true;
            }
            Id::NoSort => {
                self.set(Opt::NoSort)?;
                self.format.nosort = true;
            }
            Id::Sort => {}
            Id::Exact => {
                self.set(Opt::Exact)?;
                self.format.exact = true;
            }
            Id::TunInfo => {
                self.set(Opt::TunInfo)?;
                self.format.tun_info = true;
            }
            Id::TunType => {
                self.set(Opt::TunType)?;
                self.tunnel.kind = match arg.as_str() {
                    "ipip" => TunKind::Ipip,
                    "gue" => TunKind::Gue,
                    "gre" => TunKind::Gre,
                    _ => return fail("illegal tunnel type specified"),
                };
            }
            Id::TunPort => {
                self.set(Opt::TunPort)?;
                match string_to_number(&arg, 1, 65535) {
                    Some(p) => self.tunnel.port = p as u16,
                    None => return fail("illegal tunnel port specified"),
                }
            }
            Id::TunFlag(csum) => {
                self.set(match csum {
                    TunCsum::None => Opt::TunNocsum,
                    TunCsum::Csum => Opt::TunCsum,
                    TunCsum::Remcsum => Opt::TunRemcsum,
                })?;
                // ipvsadm ORs the flags; two of them are refused by `tunnel_check`.
                if csum != TunCsum::None {
                    self.tunnel.csum = csum;
                }
            }
            Id::McastInterface => {
                self.set(Opt::McastInterface)?;
                self.mcast_interface = Some(ifname_prefix(&arg).to_string());
            }
            Id::Syncid => {
                self.set(Opt::SyncId)?;
                match string_to_number(&arg, 0, 255) {
                    Some(n) => self.syncid = n as u8,
                    None => return fail("illegal syncid specified"),
                }
            }
            Id::McastGroup => {
                self.set(Opt::McastGroup)?;
                self.mcast_group = Some(mcast_group(&arg)?);
            }
            Id::McastPort => {
                self.set(Opt::McastPort)?;
                match string_to_number(&arg, 1, 65535) {
                    Some(n) => self.mcast_port = Some(n as u16),
                    None => return fail("illegal mcast-port specified"),
                }
            }
            Id::McastTtl => {
                self.set(Opt::McastTtl)?;
                match string_to_number(&arg, 1, 255) {
                    Some(n) => self.mcast_ttl = Some(n as u8),
                    None => return fail("illegal mcast-ttl specified"),
                }
            }
            Id::SyncMaxlen => {
                self.set(Opt::SyncMaxlen)?;
                match string_to_number(&arg, 1, MAX_SYNC_MAXLEN.into()) {
                    Some(n) => self.sync_maxlen = Some(n as u16),
                    None => return fail("illegal sync-maxlen specified"),
                }
            }
            Id::Daemon => self.set(Opt::Daemon)?,
            Id::Cmd(_) | Id::Help | Id::Version | Id::Socket => {
                return fail(format!("invalid option `{}'", cut(&found.token)))
            }
        }
        Ok(())
    }

    /// ipvsadm's `generic_opt_check`.
    fn check(&self, cmd: Cmd) -> Result<(), CliError> {
        let row = TABLE[cmd as usize];
        let mut first_exclusive = None;
        for (j, &rule) in row.iter().enumerate() {
            let given = self.set & (1 << j) != 0;
            match (given, rule) {
                (false, b'+') => {
                    return fail(format!(
                        "You need to supply the '{}' option for the '{}' command",
                        OPT_NAMES[j],
                        cmd.name()
                    ))
                }
                (true, b'x') => {
                    return fail(format!(
                        "Illegal '{}' option with the '{}' command",
                        OPT_NAMES[j],
                        cmd.name()
                    ))
                }
                (true, b'1') => match first_exclusive {
                    None => first_exclusive = Some(j),
                    Some(first) => {
                        return fail(format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            OPT_NAMES[j],
                            OPT_NAMES[first],
                            cmd.name()
                        ))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// ipvsadm 1.31's checks of the tunnel options of `-a`/`-e` (`process_options`): only
    /// tunnelling takes them, then `tunnel_opt_check` for the tunnel type.
    fn tunnel_check(&self) -> Result<(), CliError> {
        let given = |o: Opt| self.has(o);
        let any = given(Opt::TunType) || TUN_OPTS.into_iter().any(given);
        if any && self.mode != Some(Mode::Tun) {
            return fail("Tunnel options conflict with forward method");
        }
        let kind = self.tunnel.kind;
        let row = TUN_TABLE[kind as usize];
        let mut first_exclusive = None;
        for (o, &rule) in TUN_OPTS.into_iter().zip(row.iter()) {
            let name = OPT_NAMES[o as usize];
            match (given(o), rule) {
                (false, b'+') => {
                    return fail(format!(
                        "You need to supply the '{name}' option for the '{}' tunnel type",
                        kind.as_str()
                    ))
                }
                (true, b'x') => {
                    return fail(format!(
                        "Illegal '{name}' option with the '{}' tunnel type",
                        kind.as_str()
                    ))
                }
                (true, b'1') => match first_exclusive {
                    None => first_exclusive = Some(name),
                    Some(first) => {
                        return fail(format!(
                            "The option '{name}' conflicts with the '{first}' option in the '{}' tunnel type",
                            kind.as_str()
                        ))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn key(&self) -> Option<ServiceKey> {
        self.service.map(|(proto, ip, port)| ServiceKey {
            proto,
            vip: SocketAddr::new(ip, port.unwrap_or(0)),
        })
    }

    /// `-M` for the service's family, or its default: ipvsadm reads a dotted mask (or a
    /// host name) for an IPv4 service and a prefix length 1..=128 (`atoi`) for an IPv6 one.
    /// Unlike ipvsadm, whose reading depends on whether `-t` came first, the order of the
    /// options does not matter.
    fn netmask(&self, vip: IpAddr, names: &Names) -> Result<Netmask, CliError> {
        let Some(arg) = &self.netmask else {
            return Ok(Netmask::host(vip));
        };
        match vip {
            IpAddr::V4(_) => match arg.parse().ok().or_else(|| names.host(arg)) {
                Some(mask) => Ok(Netmask::V4(mask)),
                None => fail("illegal virtual server persistent mask specified"),
            },
            IpAddr::V6(_) => match atoi(arg) {
                n @ 1..=128 => Ok(Netmask::V6(n as u8)),
                _ => fail("illegal ipv6 netmask specified"),
            },
        }
    }

    /// The real server address with ipvsadm's port rules: no port means the vip port, and
    /// `-g`/`-i` (with `-a`/`-e`) always use the vip port.
    fn real_addr(&self, force_vport: bool) -> Option<SocketAddr> {
        let (ip, port) = self.real?;
        let vport = self.key()?.vip.port();
        let port = match port {
            Some(p) if !force_vport => p,
            _ => vport,
        };
        Some(SocketAddr::new(ip, port))
    }

    fn dest(&self) -> Option<DestSpec> {
        let mode = self.mode.unwrap_or(DEFAULT_MODE);
        Some(DestSpec {
            addr: self.real_addr(matches!(mode, Mode::Dr | Mode::Tun))?,
            mode,
            weight: self.weight.unwrap_or(DEFAULT_WEIGHT),
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tunnel: self.tunnel,
        })
    }
}

/// Parses `rvsadm`'s arguments (without the program name).
pub fn parse(args: &[String], names: &Names) -> Result<Invocation, CliError> {
    parse_args(args, names, false)
}

/// Parses one line of `-R` input, already split into words (`ipvsadm` and `rvsadm` words
/// dropped). Only changes can be restored; `-R` itself gives the try-help error as in
/// ipvsadm.
pub fn parse_restore(words: &[String], names: &Names) -> Result<Request, CliError> {
    match parse_args(words, names, true)?.command {
        Command::Change(r) => Ok(r),
        Command::Restore => Err(CliError::TryHelp),
        Command::Daemon(_) => fail(
            "sync daemons cannot be restored: -R applies its lines as one batch of changes; \
             run --start-daemon and --stop-daemon on their own",
        ),
        _ => fail("only changes can be restored"),
    }
}

fn parse_args(args: &[String], names: &Names, restoring: bool) -> Result<Invocation, CliError> {
    let mut popt = Popt::new(args);
    let mut socket = None;
    let mut cmd = None;
    let mut opts = Options::default();
    while let Some(found) = popt.next_opt() {
        // popt's first result decides the command; an error there is a try-help.
        let found = found.map_err(|e| if cmd.is_none() { CliError::TryHelp } else { e })?;
        if found.def.id == Id::Socket && !restoring {
            if socket.is_some() {
                return fail("multiple 'socket' options specified");
            }
            socket = found.arg.map(PathBuf::from);
            continue;
        }
        if cmd.is_some() {
            opts.take(found, names)?;
            continue;
        }
        cmd = Some(match found.def.id {
            Id::Cmd(c @ (Cmd::StartDaemon | Cmd::StopDaemon)) => {
                opts.role = Some(daemon_role(c, found.arg.as_deref())?);
                c
            }
            Id::Cmd(c) => c,
            Id::Help if !restoring => return invocation(socket, Command::Help),
            Id::Version if !restoring => return invocation(socket, Command::Version),
            _ => return Err(CliError::TryHelp),
        });
    }
    let Some(cmd) = cmd else {
        // ipvsadm without arguments lists the table.
        if popt.positional.is_empty() && !restoring {
            return invocation(
                socket,
                Command::List {
                    service: None,
                    format: Format::default(),
                },
            );
        }
        return Err(CliError::TryHelp);
    };
    let mut positional = popt.positional.into_iter();
    let mut timeouts = None;
    if cmd == Cmd::Set {
        let (Some(tcp), Some(tcp_fin), Some(udp)) =
            (positional.next(), positional.next(), positional.next())
        else {
            return fail("--set option requires 3 timeout values");
        };
        timeouts = Some(TimeoutValues {
            tcp: parse_timeout(&tcp, 0)?,
            tcp_fin: parse_timeout(&tcp_fin, 0)?,
            udp: parse_timeout(&udp, 0)?,
        });
    }
    if let Some(extra) = positional.next() {
        return fail(format!("unexpected argument {}", cut(&extra)));
    }
    opts.check(cmd)?;
    let command = build(cmd, &opts, timeouts, names)?;
    invocation(socket, command)
}

fn invocation(socket: Option<PathBuf>, command: Command) -> Result<Invocation, CliError> {
    Ok(Invocation {
        socket: socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        command,
    })
}

/// The command's own rules (ipvsadm's `process_options` after the table check). The table
/// guarantees the compulsory options, so the `?`s on them cannot fail.
fn build(
    cmd: Cmd,
    o: &Options,
    timeouts: Option<TimeoutValues>,
    names: &Names,
) -> Result<Command, CliError> {
    let missing = || CliError::TryHelp;
    let key = o.key();
    let change = |r| Ok(Command::Change(r));
    match cmd {
        Cmd::Add | Cmd::Edit => {
            let key = key.ok_or_else(missing)?;
            if key.vip.port() == 0 && o.persistence == 0 {
                return fail("Zero port specified for non-persistent service");
            }
            let service = ServiceSpec {
                key,
                sched: o.sched.clone().unwrap_or_else(|| DEFAULT_SCHED.to_string()),
                persistence: o.persistence,
                netmask: o.netmask(key.vip.ip(), names)?,
            };
            change(if cmd == Cmd::Add {
                Request::AddService { service }
            } else {
                Request::EditService { service }
            })
        }
        Cmd::Del => change(Request::DelService {
            service: key.ok_or_else(missing)?,
        }),
        Cmd::Flush => change(Request::Clear),
        Cmd::AddDest | Cmd::EditDest => {
            o.tunnel_check()?;
            let service = key.ok_or_else(missing)?;
            let dest = o.dest().ok_or_else(missing)?;
            change(if cmd == Cmd::AddDest {
                Request::AddDest { service, dest }
            } else {
                Request::EditDest { service, dest }
            })
        }
        Cmd::DelDest => change(Request::DelDest {
            service: key.ok_or_else(missing)?,
            addr: o.real_addr(false).ok_or_else(missing)?,
        }),
        Cmd::List => {
            let listing = o.has(Opt::Stats)
                || o.has(Opt::PersistentConn)
                || o.has(Opt::Rate)
                || o.has(Opt::Thresholds);
            let other = o.has(Opt::Connection)
                || o.has(Opt::Timeout)
                || o.has(Opt::Daemon)
                || o.has(Opt::Health);
            if other && listing {
                return fail("options conflicts in the list command");
            }
            Ok(if o.has(Opt::Health) {
                Command::ListHealth
            } else if o.has(Opt::Connection) {
                Command::ListConns { format: o.format }
            } else if o.has(Opt::Timeout) {
                Command::ListTimeouts
            } else if o.has(Opt::Daemon) {
                Command::ListDaemons
            } else {
                Command::List {
                    service: key,
                    format: o.format,
                }
            })
        }
        Cmd::Set => change(Request::SetTimeouts {
            timeouts: timeouts.ok_or_else(missing)?,
        }),
        Cmd::StartDaemon => {
            let role = o.role.ok_or_else(missing)?;
            // ipvsadm's DEF_MCAST_IFN, for an absent or empty --mcast-interface.
            let interface = match o.mcast_interface.as_deref() {
                None | Some("") => "eth0",
                Some(name) => name,
            };
            Ok(Command::Daemon(Request::StartDaemon {
                daemon: SyncDaemon {
                    role,
                    interface: interface.to_string(),
                    syncid: o.syncid,
                    maxlen: o.sync_maxlen,
                    group: o.mcast_group.unwrap_or(DEFAULT_SYNC_GROUP),
                    port: o.mcast_port.unwrap_or(DEFAULT_SYNC_PORT),
                    ttl: o.mcast_ttl.unwrap_or(DEFAULT_SYNC_TTL),
                },
            }))
        }
        Cmd::StopDaemon => Ok(Command::Daemon(Request::StopDaemon {
            role: o.role.ok_or_else(missing)?,
        })),
        Cmd::Restore => Ok(Command::Restore),
        Cmd::Save => Ok(Command::Save { format: o.format }),
        Cmd::Zero => change(Request::Zero { service: key }),
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let service = key.ok_or_else(missing)?;
            let addr = o.laddr.ok_or_else(missing)?;
            change(if cmd == Cmd::AddLaddr {
                Request::AddLaddr { service, addr }
            } else {
                Request::DelLaddr { service, addr }
            })
        }
        Cmd::GetLaddr => Ok(Command::GetLaddrs { service: key }),
        Cmd::Drops => Ok(Command::Drops { format: o.format }),
    }
}

/// The date in `-v`, where ipvsadm prints its release date (1.31: 2019/12/24).
const RELEASE_DATE: &str = "2026/12/07";

/// `-v`, in the shape of ipvsadm 1.31's `ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS
/// v1.2.1)`: name, version, date, what it was built with, the IPVS version.
pub fn version() -> String {
    format!(
        "rvsadm v{} {RELEASE_DATE} (compiled with ipvsadm 1.31 syntax and IPVS v1.2.1)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `-h`: ipvsadm's usage text with rvsadm's options.
pub fn usage(program: &str) -> String {
    let p = program;
    format!(
        "{version}Usage:
  {p} -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask]
  {p} -D -t|u service-address
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e -t|u service-address -r server-address [options]
  {p} -d -t|u service-address -r server-address
  {p} -L|l [options]
  {p} -Z [-t|u service-address]
  {p} --set tcp tcpfin udp
  {p} --start-daemon {{master|backup}} [daemon-options]
  {p} --stop-daemon {{master|backup}}
  {p} -P|Q -t|u service-address -z local-address
  {p} -G [-t|u service-address]
  {p} --drops [--exact]
  {p} -L -n --health
  {p} -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --add-laddr       -P        add local address
  --del-laddr       -Q        delete local address
  --get-laddr       -G        list local addresses
  --drops                     list packet counters and drops of every worker
  --help            -h        display this help message

Options:
  --tcp-service  -t service-address   service-address is host[:port]
  --udp-service  -u service-address   service-address is host[:port]
  --scheduler    -s scheduler         one of {scheds},
                                      the default scheduler is {DEFAULT_SCHED}.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   full NAT (needs local addresses)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     local address of a full NAT service
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact        -X                   expand numbers (display exact values)
  --health                            with -L: each real server's health checks and state
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports
  --socket       path                 control socket of rvsd (default {DEFAULT_SOCKET})

Daemon Options:
  --syncid sid                        syncid for connection sync (default=0)
  --sync-maxlen length                Max sync message length (default=from the MTU: 1472 at 1500)
  --mcast-interface interface         multicast interface for connection sync (default=eth0)
  --mcast-group address               IPv4 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)

Files:
  {DEFAULT_SOCKET}                  rvsd's control socket, mode 0600 (rvsd.toml's
                                      [control] socket; --socket for another)
  /etc/rvs/rvsd.toml                  rvsd's file: changes made with rvsadm last until
                                      rvsd re-reads it (kill -HUP, systemctl reload rvsd)
  /etc/hosts, /etc/services           names of addresses and ports (without -n)
",
        version = version(),
        scheds = sched::NAMES.join("|"),
    )
}

#[cfg(test)]
mod test {
    use super::*;

    fn names() -> Names {
        Names::from_tables(
            "10.0.0.100 vip\n192.168.1.1 web1\n",
            "http 80/tcp www\ndomain 53/udp\n",
        )
    }

    fn parse_str(line: &str) -> Result<Invocation, CliError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args, &names())
    }

    fn cmd(line: &str) -> Command {
        parse_str(line)
            .unwrap_or_else(|e| panic!("{line}: {e:?}"))
            .command
    }

    fn err(line: &str) -> CliError {
        parse_str(line).expect_err(line)
    }

    fn tcp(vip: &str) -> ServiceKey {
        ServiceKey {
            proto: Proto::Tcp,
            vip: vip.parse().unwrap(),
        }
    }

    fn add_service(vip: &str, sched: &str, persistence: u32, mask: &str) -> Command {
        Command::Change(Request::AddService {
            service: ServiceSpec {
                key: tcp(vip),
                sched: sched.into(),
                persistence,
                netmask: mask.parse().unwrap(),
            },
        })
    }

    fn dest(addr: &str, mode: Mode, weight: u32, u: u32, l: u32) -> DestSpec {
        DestSpec {
            addr: addr.parse().unwrap(),
            mode,
            weight,
            u_threshold: u,
            l_threshold: l,
            tunnel: Default::default(),
        }
    }

    #[test]
    fn test_service_commands() {
        let plain = add_service("10.0.0.100:80", "wlc", 0, "255.255.255.255");
        for line in [
            "-A -t 10.0.0.100:80",
            "-At 10.0.0.100:80",
            "-At10.0.0.100:80",
            "--add-service --tcp-service 10.0.0.100:80",
            "--add-service --tcp-service=10.0.0.100:80",
            "-A -t vip:http",
            "-A -t vip:www --sort",
            "-A -t 10.0.0.100:80 -s wlc",
        ] {
            assert_eq!(cmd(line), plain, "{line}");
        }
        assert_eq!(
            cmd("-A -t 10.0.0.100:80 -s rr -p"),
            add_service("10.0.0.100:80", "rr", 360, "255.255.255.255")
        );
        assert_eq!(
            cmd("-A -t 10.0.0.100:0 -p 600 -M 255.255.255.0 -s sh"),
            add_service("10.0.0.100:0", "sh", 600, "255.255.255.0")
        );
        // -p takes the next word unless it is an option; -p=N and a glued value work.
        assert_eq!(
            cmd("-A -t 10.0.0.100:80 -p -s rr"),
            add_service("10.0.0.100:80", "rr", 360, "255.255.255.255")
        );
        assert_eq!(
            cmd("-A -t 10.0.0.100:80 -p=30"),
            add_service("10.0.0.100:80", "wlc", 30, "255.255.255.255")
        );
        assert_eq!(
            cmd("-A -t 10.0.0.100:80 -p30"),
            add_service("10.0.0.100:80", "wlc", 30, "255.255.255.255")
        );
        assert_eq!(
            cmd("-A -t 10.0.0.100:80 --persistent=45"),
            add_service("10.0.0.100:80", "wlc", 45, "255.255.255.255")
        );
        // -E sends everything, defaults included.
        assert_eq!(
            cmd("-E -t 10.0.0.100:80"),
            Command::Change(Request::EditService {
                service: ServiceSpec {
                    key: tcp("10.0.0.100:80"),
                    sched: "wlc".into(),
                    persistence: 0,
                    netmask: Netmask::V4(Ipv4Addr::BROADCAST),
                }
            })
        );
        assert_eq!(
            cmd("-D -u 10.0.0.100:domain"),
            Command::Change(Request::DelService {
                service: ServiceKey {
                    proto: Proto::Udp,
                    vip: "10.0.0.100:53".parse().unwrap()
                }
            })
        );
        assert_eq!(cmd("-C"), Command::Change(Request::Clear));
        assert_eq!(cmd("--clear"), Command::Change(Request::Clear));
    }

    #[test]
    fn test_dest_commands() {
        let add = |d| {
            Command::Change(Request::AddDest {
                service: tcp("10.0.0.100:80"),
                dest: d,
            })
        };
        assert_eq!(
            cmd("-a -t 10.0.0.100:80 -r 192.168.1.1"),
            add(dest("192.168.1.1:80", Mode::Dr, 1, 0, 0))
        );
        // -g/-i force the vip port; -m and -b keep the real's port.
        assert_eq!(
            cmd("-a -t 10.0.0.100:80 -r 192.168.1.1:8080 -g -w 0"),
            add(dest("192.168.1.1:80", Mode::Dr, 0, 0, 0))
        );
        assert_eq!(
            cmd("-a -t 10.0.0.100:80 -r 192.168.1.1:8080 -i"),
            add(dest("192.168.1.1:80", Mode::Tun, 1, 0, 0))
        );
        assert_eq!(
            cmd("-a -t 10.0.0.100:80 -r web1:8080 -m -w 65535 -x 100 -y 50"),
            add(dest("192.168.1.1:8080", Mode::Nat, 65535, 100, 50))
        );
        assert_eq!(
            cmd("-a -t 10.0.0.100:80 -r 192.168.1.1 --fullnat"),
            add(dest("192.168.1.1:80", Mode::FullNat, 1, 0, 0))
        );
        // -r before -t still gets the vip port.
        assert_eq!(
            cmd("-a -r 192.168.1.1 -b -t 10.0.0.100:80"),
            add(dest("192.168.1.1:80", Mode::FullNat, 1, 0, 0))
        );
        assert_eq!(
            cmd("-ebt 10.0.0.100:80 -r 192.168.1.1:81 -w3"),
            Command::Change(Request::EditDest {
                service: tcp("10.0.0.100:80"),
                dest: dest("192.168.1.1:81", Mode::FullNat, 3, 0, 0)
            })
        );
        assert_eq!(
            cmd("-d -t 10.0.0.100:80 -r 192.168.1.1:8080"),
            Command::Change(Request::DelDest {
                service: tcp("10.0.0.100:80"),
                addr: "192.168.1.1:8080".parse().unwrap()
            })
        );
        assert_eq!(
            cmd("--delete-server -t 10.0.0.100:80 --real-server 192.168.1.1"),
            Command::Change(Request::DelDest {
                service: tcp("10.0.0.100:80"),
                addr: "192.168.1.1:80".parse().unwrap()
            })
        );
    }

    #[test]
    fn test_list_commands() {
        let list = |format| Command::List {
            service: None,
            format,
        };
        assert_eq!(cmd(""), list(Format::default()));
        assert_eq!(
            parse_str("--socket /tmp/s").unwrap(),
            Invocation {
                socket: "/tmp/s".into(),
                command: list(Format::default())
            }
        );
        assert_eq!(cmd("-L"), list(Format::default()));
        let numeric = Format {
            numeric: true,
            ..Format::default()
        };
        for line in ["-Ln", "-ln", "-L -n", "--list --numeric", "-nL --socket=x"] {
            if line.starts_with("-nL") {
                // The first option must be the command.
                assert_eq!(err(line), CliError::TryHelp);
            } else {
                assert_eq!(cmd(line), list(numeric), "{line}");
            }
        }
        let all = Format {
            numeric: true,
            stats: true,
            rate: true,
            thresholds: true,
            persistent_conn: true,
            nosort: true,
            exact: true,
            tun_info: true,
        };
        assert_eq!(
            cmd("-L -n --stats --rate --thresholds --persistent-conn --nosort --exact --tun-info"),
            list(all)
        );
        assert_eq!(
            cmd("-LnX"),
            list(Format {
                exact: true,
                ..numeric
            })
        );
        assert_eq!(
            cmd("-L -t 10.0.0.100:80 --stats"),
            Command::List {
                service: Some(tcp("10.0.0.100:80")),
                format: Format {
                    stats: true,
                    ..Format::default()
                }
            }
        );
        assert_eq!(cmd("-Lnc"), Command::ListConns { format: numeric });
        assert_eq!(cmd("-L --timeout"), Command::ListTimeouts);
        assert_eq!(cmd("-L -n --health"), Command::ListHealth);
        assert_eq!(
            err("-L --health -c"),
            CliError::Fail(
                "The option 'health' conflicts with the 'connection' option in the 'list' command"
                    .into()
            )
        );
        assert_eq!(
            err("-A -t 10.0.0.1:80 --health"),
            CliError::Fail("Illegal 'health' option with the 'add-service' command".into())
        );
        assert_eq!(cmd("-S -n"), Command::Save { format: numeric });
        assert_eq!(
            cmd("-S"),
            Command::Save {
                format: Format::default()
            }
        );
        assert_eq!(cmd("-R"), Command::Restore);
        assert_eq!(
            cmd("--drops --exact"),
            Command::Drops {
                format: Format {
                    exact: true,
                    ..Format::default()
                }
            }
        );
        assert_eq!(cmd("-h"), Command::Help);
        assert_eq!(cmd("--help -L"), Command::Help);
        assert_eq!(cmd("-v"), Command::Version);
        assert_eq!(
            parse_str("-L").unwrap().socket,
            PathBuf::from(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn test_other_commands() {
        assert_eq!(cmd("-Z"), Command::Change(Request::Zero { service: None }));
        assert_eq!(
            cmd("-Z -t 10.0.0.100:80"),
            Command::Change(Request::Zero {
                service: Some(tcp("10.0.0.100:80"))
            })
        );
        for line in [
            "--set 900 120 300",
            "--set 900 --socket /s 120 300",
            "--set -- 900 120 300",
        ] {
            assert_eq!(
                cmd(line),
                Command::Change(Request::SetTimeouts {
                    timeouts: TimeoutValues {
                        tcp: 900,
                        tcp_fin: 120,
                        udp: 300
                    }
                })
            );
        }
        assert_eq!(
            cmd("-P -t 10.0.0.100:80 -z 10.0.0.1"),
            Command::Change(Request::AddLaddr {
                service: tcp("10.0.0.100:80"),
                addr: "10.0.0.1".parse().unwrap()
            })
        );
        assert_eq!(
            cmd("--del-laddr -t 10.0.0.100:80 --laddr vip"),
            Command::Change(Request::DelLaddr {
                service: tcp("10.0.0.100:80"),
                addr: "10.0.0.100".parse().unwrap()
            })
        );
        assert_eq!(cmd("-G"), Command::GetLaddrs { service: None });
        assert_eq!(
            cmd("-G -t 10.0.0.100:80"),
            Command::GetLaddrs {
                service: Some(tcp("10.0.0.100:80"))
            }
        );
    }

    #[test]
    fn test_daemon_commands() {
        let start = |daemon| Command::Daemon(Request::StartDaemon { daemon });
        // ipvsadm's defaults: eth0, syncid 0, maxlen left to rvsd, 224.0.0.81:8848, TTL 1.
        assert_eq!(
            cmd("--start-daemon master"),
            start(SyncDaemon::new(SyncRole::Master, "eth0"))
        );
        assert_eq!(
            cmd("--start-daemon=backup --mcast-interface="),
            start(SyncDaemon::new(SyncRole::Backup, "eth0"))
        );
        assert_eq!(
            cmd(
                "--start-daemon backup --mcast-interface rvs1 --syncid 255 --sync-maxlen 65507 \
                 --mcast-group 239.255.255.255 --mcast-port 65535 --mcast-ttl 255"
            ),
            start(SyncDaemon {
                role: SyncRole::Backup,
                interface: "rvs1".into(),
                syncid: 255,
                maxlen: Some(65507),
                group: Ipv4Addr::new(239, 255, 255, 255),
                port: 65535,
                ttl: 255,
            })
        );
        assert_eq!(
            cmd(
                "--start-daemon master --syncid=0 --sync-maxlen 1 --mcast-group 224.0.0.0 \
                 --mcast-port 1 --mcast-ttl 1 --mcast-interface rvs0"
            ),
            start(SyncDaemon {
                maxlen: Some(1),
                group: Ipv4Addr::new(224, 0, 0, 0),
                port: 1,
                ..SyncDaemon::new(SyncRole::Master, "rvs0")
            })
        );
        // ipvsadm's strncpy keeps 15 bytes of the name.
        assert_eq!(
            cmd("--start-daemon master --mcast-interface abcdefghijklmnopq"),
            start(SyncDaemon::new(SyncRole::Master, "abcdefghijklmno"))
        );
        assert_eq!(ifname_prefix("abcdefghijklmnö"), "abcdefghijklmn");
        assert_eq!(ifname_prefix("rvs1"), "rvs1");
        for (line, role) in [
            ("--stop-daemon master", SyncRole::Master),
            ("--stop-daemon backup --syncid 3", SyncRole::Backup),
        ] {
            assert_eq!(
                cmd(line),
                Command::Daemon(Request::StopDaemon { role }),
                "{line}"
            );
        }
        assert_eq!(cmd("-L --daemon"), Command::ListDaemons);
        assert_eq!(cmd("-l -n --daemon"), Command::ListDaemons);
        // ipvsadm's table lets --syncid through with -L, and ignores it.
        assert_eq!(cmd("-L --daemon --syncid 1"), Command::ListDaemons);
        let f = |s: &str| CliError::Fail(s.to_string());
        for (line, e) in [
            ("--start-daemon", CliError::TryHelp),
            ("--start-daemon slave", f("illegal start-daemon parameter specified")),
            ("--start-daemon Master", f("illegal start-daemon parameter specified")),
            ("--start-daemon both --syncid 300", f("illegal start-daemon parameter specified")),
            ("--stop-daemon all", f("illegal start_daemon specified")),
            ("--start-daemon master --syncid 256", f("illegal syncid specified")),
            ("--start-daemon master --syncid -1", f("illegal syncid specified")),
            ("--start-daemon master --mcast-port 0", f("illegal mcast-port specified")),
            ("--start-daemon master --mcast-port 65536", f("illegal mcast-port specified")),
            ("--start-daemon master --mcast-ttl 0", f("illegal mcast-ttl specified")),
            ("--start-daemon master --mcast-ttl 256", f("illegal mcast-ttl specified")),
            ("--start-daemon master --sync-maxlen 0", f("illegal sync-maxlen specified")),
            ("--start-daemon master --sync-maxlen 65508", f("illegal sync-maxlen specified")),
            ("--start-daemon master --mcast-group 10.0.0.81", f("invalid IPv4 mcast-group `10.0.0.81'")),
            ("--start-daemon master --mcast-group 224.0.0.081", f("invalid IPv4 mcast-group `224.0.0.081'")),
            ("--start-daemon master --mcast-group group", f("invalid IPv4 mcast-group `group'")),
            ("--start-daemon master --mcast-group fe80::1", f("invalid IPv6 mcast-group `fe80::1'")),
            ("--start-daemon master --mcast-group ff02::81", f("IPv6 mcast-group `ff02::81' is not supported: rvs syncs over IPv4")),
            ("--start-daemon master --syncid 1 --syncid 2", f("multiple 'syncid' options specified")),
            ("--start-daemon master -n", f("Illegal 'numeric' option with the 'start-daemon' command")),
            ("--start-daemon master --daemon", f("Illegal 'daemon' option with the 'start-daemon' command")),
            ("--start-daemon master -t 10.0.0.100:80", f("Illegal 'service-address' option with the 'start-daemon' command")),
            ("--stop-daemon master --mcast-interface rvs1", f("Illegal 'mcast-interface' option with the 'stop-daemon' command")),
            ("--stop-daemon backup --mcast-ttl 2", f("Illegal 'mcast-ttl' option with the 'stop-daemon' command")),
            ("-A -t 10.0.0.100:80 --syncid 1", f("Illegal 'syncid' option with the 'add-service' command")),
            ("-L --mcast-interface rvs1", f("Illegal 'mcast-interface' option with the 'list' command")),
            ("-L --sync-maxlen 1500", f("Illegal 'sync-maxlen' option with the 'list' command")),
            ("-L --daemon -c", f("The option 'daemon' conflicts with the 'connection' option in the 'list' command")),
            ("-L --timeout --daemon", f("The option 'daemon' conflicts with the 'timeout' option in the 'list' command")),
            ("-L -t 10.0.0.100:80 --daemon", f("The option 'daemon' conflicts with the 'service-address' option in the 'list' command")),
            ("-L --daemon --stats", f("options conflicts in the list command")),
            ("-L --daemon --persistent-conn", f("options conflicts in the list command")),
            ("-L --start-daemon master", f("invalid option `--start-daemon'")),
            ("--start-daemon master extra", f("unexpected argument extra")),
        ] {
            assert_eq!(err(line), e, "{line}");
        }
    }

    /// ipvsadm's IPv6 syntax: `[addr]:port` for services and reals, a bare address for a
    /// real without port (the vip port) and for `-z`, `-M` as a prefix length (`atoi`).
    #[test]
    fn test_ipv6_commands() {
        let v6 = "[2001:db8::100]:80";
        assert_eq!(
            cmd("-A -t [2001:db8::100]:80 -s wrr"),
            add_service(v6, "wrr", 0, "128")
        );
        assert_eq!(
            cmd("-A -t [2001:db8::100]:80 -s sh -p 60 -M 64"),
            add_service(v6, "sh", 60, "64")
        );
        // Whichever comes first (ipvsadm reads -M by the family known when it meets it).
        assert_eq!(
            cmd("-A -M 48 -p 60 -s sh -t [2001:db8::100]:80"),
            add_service(v6, "sh", 60, "48")
        );
        assert_eq!(
            cmd("-A -t [2001:db8::100]:80 -M 64abc"),
            add_service(v6, "wlc", 0, "64")
        );
        assert_eq!(
            cmd("-A -t [2001:db8::100]:0 -p"),
            add_service("[2001:db8::100]:0", "wlc", 360, "128")
        );
        let add_dest = |line: &str, addr: &str, mode: Mode| {
            assert_eq!(
                cmd(line),
                Command::Change(Request::AddDest {
                    service: tcp(v6),
                    dest: dest(addr, mode, 1, 0, 0),
                }),
                "{line}"
            );
        };
        add_dest(
            "-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 -m",
            "[2001:db8:1::11]:8080",
            Mode::Nat,
        );
        add_dest(
            "-a -t [2001:db8::100]:80 -r 2001:db8:1::11 -m",
            "[2001:db8:1::11]:80",
            Mode::Nat,
        );
        add_dest(
            "-a -t [2001:db8::100]:80 -r [2001:db8::11]:8080 -g",
            "[2001:db8::11]:80",
            Mode::Dr,
        );
        // NAT64: an IPv4 real of an IPv6 service.
        add_dest(
            "-a -t [2001:db8::100]:80 -r 10.0.0.11:8080 -b",
            "10.0.0.11:8080",
            Mode::FullNat,
        );
        assert_eq!(
            cmd("-d -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080"),
            Command::Change(Request::DelDest {
                service: tcp(v6),
                addr: "[2001:db8:1::11]:8080".parse().unwrap(),
            })
        );
        assert_eq!(
            cmd("-P -t [2001:db8::100]:80 -z 2001:db8::1"),
            Command::Change(Request::AddLaddr {
                service: tcp(v6),
                addr: "2001:db8::1".parse().unwrap(),
            })
        );
        assert_eq!(
            cmd("-Q -t [2001:db8::100]:80 -z 10.0.0.1"),
            Command::Change(Request::DelLaddr {
                service: tcp(v6),
                addr: "10.0.0.1".parse().unwrap(),
            })
        );
        assert_eq!(
            cmd("-L -n -t [2001:db8::100]:80"),
            Command::List {
                service: Some(tcp(v6)),
                format: Format {
                    numeric: true,
                    ..Format::default()
                },
            }
        );
    }

    #[test]
    fn test_errors() {
        let f = |s: &str| CliError::Fail(s.to_string());
        let o = |s: &str| CliError::Option(s.to_string());
        for (line, e) in [
            ("-n -L", CliError::TryHelp),
            ("foo", CliError::TryHelp),
            ("-q", CliError::TryHelp),
            ("-t 10.0.0.100:80 -A", CliError::TryHelp),
            ("-A -t", o("-t: missing argument")),
            ("-A -q", o("-q: unknown option")),
            ("-Aq", o("-Aq: unknown option")),
            ("-L --foo", o("--foo: unknown option")),
            ("-L --stats=1", o("--stats=1: option does not take an argument")),
            ("-A -D", f("invalid option `-D'")),
            ("-L -h", f("invalid option `-h'")),
            ("-L --socket a --socket b", f("multiple 'socket' options specified")),
            ("-A -t 80", f("illegal virtual server address[:port] specified")),
            // IPv6 as ipvsadm's parse_service reads it: `[addr]` needs `:port`, a bare
            // address has no port.
            ("-A -t [::1]", f("illegal virtual server address[:port] specified")),
            ("-A -t [::1]80", f("illegal virtual server address[:port] specified")),
            ("-A -t [::1]:", f("illegal virtual server address[:port] specified")),
            ("-A -t [10.0.0.100]:80", f("illegal virtual server address[:port] specified")),
            ("-A -t [2001:db8:::1]:80", f("illegal virtual server address[:port] specified")),
            ("-A -t ::1", f("Zero port specified for non-persistent service")),
            ("-a -t [2001:db8::100]:80 -r [2001:db8::11]", f("illegal real server address[:port] specified")),
            ("-A -t [2001:db8::100]:80 -p -M 255.255.255.0", f("illegal ipv6 netmask specified")),
            ("-A -t [2001:db8::100]:80 -p -M 0", f("illegal ipv6 netmask specified")),
            ("-A -t [2001:db8::100]:80 -p -M 129", f("illegal ipv6 netmask specified")),
            ("-A -M 255.255.0.0 -t [2001:db8::100]:80 -p", f("illegal ipv6 netmask specified")),
            ("-A -t nowhere:80", f("illegal virtual server address[:port] specified")),
            ("-A -t 10.0.0.100:nope", f("illegal virtual server address[:port] specified")),
            ("-A -t 10.0.0.100:65536", f("illegal virtual server address[:port] specified")),
            ("-A -t 10.0.0.100:80 -u 10.0.0.100:80", f("multiple 'service-address' options specified")),
            ("-A -t 10.0.0.100:80 -p 0", f("invalid timeout value `0' specified")),
            ("-A -t 10.0.0.100:80 -p 2678401", f("invalid timeout value `2678401' specified")),
            ("-A -t 10.0.0.100:80 -p x", f("invalid timeout value `x' specified")),
            ("-A -t 10.0.0.100:80 -M 24", f("illegal virtual server persistent mask specified")),
            ("-A -t 10.0.0.100:0", f("Zero port specified for non-persistent service")),
            ("-A", f("You need to supply the 'service-address' option for the 'add-service' command")),
            ("-A -t 10.0.0.100:80 -n", f("Illegal 'numeric' option with the 'add-service' command")),
            ("-A -t 10.0.0.100:80 -r 192.168.1.1", f("Illegal 'real-server' option with the 'add-service' command")),
            ("-a -t 10.0.0.100:80", f("You need to supply the 'real-server' option for the 'add-server' command")),
            ("-a -r 192.168.1.1", f("You need to supply the 'service-address' option for the 'add-server' command")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -s rr", f("Illegal 'scheduler' option with the 'add-server' command")),
            ("-d -t 10.0.0.100:80 -r 192.168.1.1 -w 1", f("Illegal 'weight' option with the 'delete-server' command")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -w 2147483648", f("illegal weight specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -w -1", f("illegal weight specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type vxlan", f("illegal tunnel type specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gue --tun-port 0", f("illegal tunnel port specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gue --tun-port 65536", f("illegal tunnel port specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gue --tun-type gre", f("multiple 'tun-type' options specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 --tun-type ipip", f("Tunnel options conflict with forward method")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -m --tun-csum", f("Tunnel options conflict with forward method")),
            ("-e -t 10.0.0.100:80 -r 192.168.1.1 -g --tun-port 6080", f("Tunnel options conflict with forward method")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gue", f("You need to supply the 'tun-port' option for the 'gue' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-port 6080", f("Illegal 'tun-port' option with the 'ipip' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-nocsum", f("Illegal 'tun-nocsum' option with the 'ipip' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gre --tun-port 1", f("Illegal 'tun-port' option with the 'gre' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gre --tun-remcsum", f("Illegal 'tun-remcsum' option with the 'gre' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gue --tun-port 6080 --tun-remcsum --tun-csum", f("The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -i --tun-type gre --tun-csum --tun-nocsum", f("The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type")),
            ("-d -t 10.0.0.100:80 -r 192.168.1.1 --tun-type gre", f("Illegal 'tun-type' option with the 'delete-server' command")),
            ("-A -t 10.0.0.100:80 --tun-info", f("Illegal 'tun-info' option with the 'add-service' command")),
            ("-L --tun-port 1", f("Illegal 'tun-port' option with the 'list' command")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 --tun-info", f("Illegal 'tun-info' option with the 'add-server' command")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -x 2147483648", f("illegal u_threshold specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -y z", f("illegal l_threshold specified")),
            ("-a -t 10.0.0.100:80 -r 192.168.1.1 -g -m", f("multiple 'forwarding-method' options specified")),
            ("-a -t 10.0.0.100:80 -r 1.2.3:4:5", f("illegal real server address[:port] specified")),
            ("-L -c -t 10.0.0.100:80", f("The option 'service-address' conflicts with the 'connection' option in the 'list' command")),
            ("-L -c --timeout", f("The option 'timeout' conflicts with the 'connection' option in the 'list' command")),
            ("-L -c --stats", f("options conflicts in the list command")),
            ("-L --timeout --rate", f("options conflicts in the list command")),
            ("-L -s rr", f("Illegal 'scheduler' option with the 'list' command")),
            ("-L -n -n", f("multiple 'numeric' options specified")),
            ("-L extra", f("unexpected argument extra")),
            ("--set 1 2", f("--set option requires 3 timeout values")),
            ("--set 1 2 x", f("invalid timeout value `x' specified")),
            ("--set 1 2 3 4", f("unexpected argument 4")),
            ("-S -c", f("Illegal 'connection' option with the 'save' command")),
            ("-C -n", f("Illegal 'numeric' option with the 'flush' command")),
            ("-Z -n", f("Illegal 'numeric' option with the 'zero' command")),
            ("-P -t 10.0.0.100:80", f("You need to supply the 'local-address' option for the 'add-laddr' command")),
            ("-P -t 10.0.0.100:80 -z bad", f("illegal local address")),
            ("-G -z 10.0.0.1", f("Illegal 'local-address' option with the 'get-laddr' command")),
            ("--drops -n", f("Illegal 'numeric' option with the 'drops' command")),
        ] {
            assert_eq!(err(line), e, "{line}");
        }
    }

    /// ipvsadm 1.31's weight range (`string_to_number(optarg, 0, INT_MAX)`) and tunnel options.
    #[test]
    fn test_weights_and_tunnels() {
        let weight = |w: &str| match cmd(&format!("-a -t 10.0.0.100:80 -r 192.168.1.1 -w {w}")) {
            Command::Change(Request::AddDest { dest, .. }) => dest.weight,
            other => panic!("{other:?}"),
        };
        for (given, w) in [
            ("0", 0),
            ("65535", 65535),
            ("65536", 65536),
            ("2147483647", MAX_WEIGHT),
        ] {
            assert_eq!(weight(given), w);
        }
        assert_eq!(MAX_WEIGHT, 2_147_483_647);
        let tunnel = |line: &str| match cmd(&format!("-e -t 10.0.0.100:80 -r 192.168.1.1 {line}")) {
            Command::Change(Request::EditDest { dest, .. }) => (dest.mode, dest.tunnel),
            other => panic!("{other:?}"),
        };
        let t = |kind, port, csum| (Mode::Tun, Tunnel { kind, port, csum });
        for (line, want) in [
            ("-i", t(TunKind::Ipip, 0, TunCsum::None)),
            ("-i --tun-type ipip", t(TunKind::Ipip, 0, TunCsum::None)),
            (
                "--tun-type gue -i --tun-port 6080",
                t(TunKind::Gue, 6080, TunCsum::None),
            ),
            (
                "-i --tun-type gue --tun-port=1 --tun-nocsum",
                t(TunKind::Gue, 1, TunCsum::None),
            ),
            (
                "-i --tun-type gue --tun-port 65535 --tun-csum",
                t(TunKind::Gue, 65535, TunCsum::Csum),
            ),
            (
                "-i --tun-type gue --tun-port 6080 --tun-remcsum",
                t(TunKind::Gue, 6080, TunCsum::Remcsum),
            ),
            ("-i --tun-type gre", t(TunKind::Gre, 0, TunCsum::None)),
            (
                "-i --tun-type gre --tun-nocsum",
                t(TunKind::Gre, 0, TunCsum::None),
            ),
            (
                "-i --tun-type gre --tun-csum",
                t(TunKind::Gre, 0, TunCsum::Csum),
            ),
        ] {
            assert_eq!(tunnel(line), want, "{line}");
        }
        let info = Format {
            tun_info: true,
            numeric: true,
            ..Format::default()
        };
        assert_eq!(
            cmd("-L -n --tun-info"),
            Command::List {
                service: None,
                format: info
            }
        );
        assert!(usage("rvsadm")
            .contains("  --tun-type      type                one of ipip|gue|gre,\n"));
    }

    #[test]
    fn test_version_line() {
        // ipvsadm 1.31: "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)".
        let v = version();
        let words: Vec<&str> = v.split(' ').collect();
        assert_eq!(words[0], "rvsadm");
        assert_eq!(words[1], format!("v{}", env!("CARGO_PKG_VERSION")));
        assert_eq!(words[2].len(), 10);
        assert_eq!(words[3], "(compiled");
        assert!(v.ends_with(" and IPVS v1.2.1)\n"), "{v}");
    }

    #[test]
    fn test_error_output() {
        assert_eq!(
            CliError::TryHelp.message("rvsadm"),
            "Try `rvsadm -h' or 'rvsadm --help' for more information."
        );
        assert_eq!(CliError::TryHelp.exit_code(), 255);
        assert_eq!(CliError::Option(String::new()).exit_code(), 255);
        assert_eq!(CliError::Fail(String::new()).exit_code(), 2);
    }

    #[test]
    fn test_restore_lines() {
        let line = |s: &str| {
            let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
            parse_restore(&words, &names())
        };
        assert_eq!(line("-C"), Ok(Request::Clear));
        assert_eq!(line("-R"), Err(CliError::TryHelp));
        assert_eq!(line("-h"), Err(CliError::TryHelp));
        assert_eq!(
            line("-L -n"),
            Err(CliError::Fail("only changes can be restored".into()))
        );
        assert_eq!(
            line("-L --socket /x"),
            Err(CliError::Fail("invalid option `--socket'".into()))
        );
        assert_eq!(line("-n"), Err(CliError::TryHelp));
        assert_eq!(
            line("--start-daemon master --mcast-interface rvs1"),
            Err(CliError::Fail(
                "sync daemons cannot be restored: -R applies its lines as one batch of changes; \
                 run --start-daemon and --stop-daemon on their own"
                    .into()
            ))
        );
    }

    #[test]
    fn test_string_to_number() {
        assert_eq!(string_to_number("42", 0, 100), Some(42));
        assert_eq!(string_to_number(" +42", 0, 100), Some(42));
        assert_eq!(string_to_number("-0", 0, 100), Some(0));
        assert_eq!(string_to_number("", 0, 100), None);
        assert_eq!(string_to_number("4 2", 0, 100), None);
        assert_eq!(string_to_number("101", 0, 100), None);
        assert_eq!(string_to_number("99999999999999999999", 0, 100), None);
    }

    #[test]
    fn test_usage() {
        let u = usage("rvsadm");
        assert!(u.starts_with(&version()));
        assert!(u.contains(
            "  rvsadm -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask]\n"
        ));
        assert!(u.contains("one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|ch|mh,\n"));
        for line in [
            "  rvsadm --start-daemon {master|backup} [daemon-options]\n",
            "  rvsadm --stop-daemon {master|backup}\n",
            "  --start-daemon              start connection sync daemon\n",
            "  --stop-daemon               stop connection sync daemon\n",
            "  --daemon                            output of daemon information\n",
            "\nDaemon Options:\n  --syncid sid                        syncid for connection sync (default=0)\n",
            "  --mcast-group address               IPv4 group (default=224.0.0.81)\n",
        ] {
            assert!(u.contains(line), "{line}");
        }
        // Where rvsadm's files are, as a man page's FILES would say.
        assert!(u.ends_with(
            "\nFiles:
  /run/rvs/rvsd.sock                  rvsd's control socket, mode 0600 (rvsd.toml's
                                      [control] socket; --socket for another)
  /etc/rvs/rvsd.toml                  rvsd's file: changes made with rvsadm last until
                                      rvsd re-reads it (kill -HUP, systemctl reload rvsd)
  /etc/hosts, /etc/services           names of addresses and ports (without -n)
"
        ));
    }
}
