//! ipvsadm 1.31's output formats, byte for byte: `-L` in every column set (with 1.31's
//! `--tun-info`), `-L -c`, `-L --timeout`, `-L --daemon`, `-S` (with 1.31's tunnel options on tunnel reals);
//! DPVS's `-G`; and rvs's `--drops`.
//!
//! Additions to `-S`, all absent for what ipvsadm itself can express: a fullnat real is saved
//! with `-b`, non-zero thresholds with `-x`/`-y` after any tunnel options (ipvsadm does not
//! save them, so its restore loses them), and each local address as a `-P` line after its
//! service's reals.
//!
//! Sorting compares addresses as numbers. ipvsadm subtracts them into an `int`, which orders
//! addresses more than 2^31 apart the wrong way round (and inconsistently); that is not
//! reproduced.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use conf::proto::{
    ConnEntry, DestEntry, DropCount, Info, LaddrList, OwnedAddr, ServiceEntry, TimeoutValues,
    TwinStats, WorkerStats,
};
use conf::{Mode, Proto, SyncDaemon, SyncRole, TunCsum, TunKind, Tunnel};

use crate::cli::Format;
use crate::names::Names;

/// ipvsadm's `print_largenum`: a 9-character column, with K/M/G/T suffixes from 10^8 up
/// unless `--exact`.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{n:>width$}");
    }
    match n {
        0..100_000_000 => format!("{n:9}"),
        100_000_000..1_000_000_000 => format!("{:8}K", n / 1_000),
        1_000_000_000..100_000_000_000 => format!("{:8}M", n / 1_000_000),
        100_000_000_000..100_000_000_000_000 => format!("{:8}G", n / 1_000_000_000),
        _ => format!("{:8}T", n / 1_000_000_000_000),
    }
}

fn proto_number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    }
}

/// An address as a sort key: IPv4 before IPv6 (`AF_INET` 2 < `AF_INET6` 10, as libipvs
/// compares the family first), then the address as a number.
fn addr_key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(ip) => (false, u128::from(ip.to_bits())),
        IpAddr::V6(ip) => (true, ip.to_bits()),
    }
}

fn sorted_services(services: &[ServiceEntry], format: &Format) -> Vec<ServiceEntry> {
    let mut v = services.to_vec();
    if !format.nosort {
        v.sort_by_key(|s| {
            (
                s.key.vip.is_ipv6(),
                proto_number(s.key.proto),
                addr_key(s.key.vip.ip()),
                s.key.vip.port(),
            )
        });
        for s in &mut v {
            s.dests
                .sort_by_key(|d| (addr_key(d.addr.ip()), d.addr.port()));
        }
    }
    v
}

/// ipvsadm's `addrport_to_anyname`: `addr:port`, an IPv6 address in brackets and never
/// named (see [`crate::names`]), its port named all the same.
fn addrport(addr: SocketAddr, proto: Proto, numeric: bool, names: &Names) -> String {
    if numeric {
        return addr.to_string();
    }
    let port = names
        .port_name(addr.port(), proto)
        .map_or_else(|| addr.port().to_string(), str::to_string);
    match addr {
        SocketAddr::V4(a) => {
            let host = names
                .host_name(*a.ip())
                .map_or_else(|| a.ip().to_string(), str::to_string);
            format!("{host}:{port}")
        }
        SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
    }
}

/// ipvsadm cuts an IPv4 name to its column (`svc_name[33]`, `dname[28]`); an IPv6 one is
/// printed whole and widens its line.
fn fit(s: String, addr: SocketAddr, len: usize) -> String {
    match addr {
        SocketAddr::V4(_) => truncate(s, len),
        SocketAddr::V6(_) => s,
    }
}

fn truncate(mut s: String, len: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(len) {
        s.truncate(i);
    }
    s
}

fn fwd_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Nat => "Masq",
        Mode::Dr => "Route",
        Mode::Tun => "Tunnel",
        Mode::FullNat => "FullNat",
    }
}

fn fwd_switch(mode: Mode) -> &'static str {
    match mode {
        Mode::Nat => "-m",
        Mode::Dr => "-g",
        Mode::Tun => "-i",
        Mode::FullNat => "-b",
    }
}

/// The TunnelInfo column (`fwd_tun_info`): `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS`, or `n/a`
/// for a real that does not tunnel.
fn tun_info(d: &DestEntry) -> String {
    let t = d.tunnel;
    let flags = match t.csum {
        TunCsum::None => "-c",
        TunCsum::Csum => "+c",
        TunCsum::Remcsum => "r+c",
    };
    match (d.mode, t.kind) {
        (Mode::Tun, TunKind::Ipip) => "ipip".to_string(),
        (Mode::Tun, TunKind::Gue) => format!("gue:{}:{flags}", t.port),
        (Mode::Tun, TunKind::Gre) => format!("gre:{flags}"),
        _ => "n/a".to_string(),
    }
}

/// The tunnel options `-S` adds to a tunnel real's line (`print_tunnel_rule`).
fn tun_rule(t: &Tunnel) -> String {
    let flags = match t.csum {
        TunCsum::None => "--tun-nocsum",
        TunCsum::Csum => "--tun-csum",
        TunCsum::Remcsum => "--tun-remcsum",
    };
    match t.kind {
        TunKind::Ipip => " --tun-type ipip".to_string(),
        TunKind::Gue => format!(" --tun-type gue --tun-port {} {flags}", t.port),
        TunKind::Gre => format!(" --tun-type gre {flags}"),
    }
}

fn proto_switch(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
    }
}

fn proto_title(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

/// The column titles (`print_title`).
fn title(format: &Format) -> String {
    let first = "Prot LocalAddress:Port";
    if format.stats {
        format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format.rate {
        format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format.thresholds {
        format!(
            "{first:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!(
            "{first:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    }
}

/// One service and its reals (`print_service_entry` without `FMT_RULE`).
fn service(out: &mut String, s: &ServiceEntry, format: &Format, names: &Names) {
    let proto = s.key.proto;
    let svc_name = fit(
        format!(
            "{}  {}",
            proto_title(proto),
            addrport(s.key.vip, proto, format.numeric, names)
        ),
        s.key.vip,
        33,
    );
    let num = |n| largenum(n, format.exact);
    if format.stats {
        let c = &s.counters;
        let _ = write!(
            out,
            "{svc_name:<33}{}{}{}{}{}",
            num(c.conns),
            num(c.inpkts),
            num(c.outpkts),
            num(c.inbytes),
            num(c.outbytes)
        );
    } else if format.rate {
        let r = &s.rates;
        let _ = write!(
            out,
            "{svc_name:<33}{}{}{}{}{}",
            num(r.cps),
            num(r.inpps),
            num(r.outpps),
            num(r.inbps),
            num(r.outbps)
        );
    } else {
        let _ = write!(out, "{svc_name} {}", s.sched);
        if s.persistence != 0 {
            let _ = write!(out, " persistent {}", s.persistence);
            if !s.netmask.is_host() {
                let _ = write!(out, " mask {}", s.netmask);
            }
        }
    }
    out.push('\n');
    for d in &s.dests {
        dest(out, d, proto, format, names);
    }
}

fn dest(out: &mut String, d: &DestEntry, proto: Proto, format: &Format, names: &Names) {
    let dname = fit(addrport(d.addr, proto, format.numeric, names), d.addr, 28);
    let num = |n| largenum(n, format.exact);
    let _ = if format.stats {
        let c = &d.counters;
        writeln!(
            out,
            "  -> {dname:<28}{}{}{}{}{}",
            num(c.conns),
            num(c.inpkts),
            num(c.outpkts),
            num(c.inbytes),
            num(c.outbytes)
        )
    } else if format.rate {
        let r = &d.rates;
        writeln!(
            out,
            "  -> {dname:<28} {:8} {:8} {:8}{}{}",
            r.cps,
            r.inpps,
            r.outpps,
            num(r.inbps),
            num(r.outbps)
        )
    } else if format.thresholds {
        writeln!(
            out,
            "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
            d.u_threshold, d.l_threshold, d.active_conns, d.inact_conns
        )
    } else if format.persistent_conn {
        writeln!(
            out,
            "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
            d.weight, d.persist_conns, d.active_conns, d.inact_conns
        )
    } else if format.tun_info {
        writeln!(
            out,
            "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
            fwd_name(d.mode),
            tun_info(d),
            d.weight,
            d.active_conns,
            d.inact_conns
        )
    } else {
        writeln!(
            out,
            "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
            fwd_name(d.mode),
            d.weight,
            d.active_conns,
            d.inact_conns
        )
    };
}

/// `-L` of every service: the version line, the titles, the services.
pub fn list_all(info: &Info, services: &[ServiceEntry], format: &Format, names: &Names) -> String {
    let v = info.version;
    let mut out = format!(
        "IP Virtual Server version {}.{}.{} (size={})\n",
        (v >> 16) & 0xff,
        (v >> 8) & 0xff,
        v & 0xff,
        info.conn_table_size
    );
    out.push_str(&list_services(services, format, names));
    out
}

/// `-L -t|-u`: the titles and the services, without the version line.
pub fn list_services(services: &[ServiceEntry], format: &Format, names: &Names) -> String {
    let mut out = title(format);
    for s in sorted_services(services, format) {
        service(&mut out, &s, format, names);
    }
    out
}

/// `-S`: the services as the commands that recreate them (see the module docs for what is
/// added to ipvsadm's lines).
pub fn save(services: &[ServiceEntry], format: &Format, names: &Names) -> String {
    let mut out = String::new();
    for s in sorted_services(services, format) {
        let proto = s.key.proto;
        let svc = format!(
            "{} {}",
            proto_switch(proto),
            addrport(s.key.vip, proto, format.numeric, names)
        );
        let _ = write!(out, "-A {svc} -s {}", s.sched);
        if s.persistence != 0 {
            let _ = write!(out, " -p {}", s.persistence);
            if !s.netmask.is_host() {
                let _ = write!(out, " -M {}", s.netmask);
            }
        }
        out.push('\n');
        for d in &s.dests {
            let _ = write!(
                out,
                "-a {svc} -r {} {} -w {}",
                addrport(d.addr, proto, format.numeric, names),
                fwd_switch(d.mode),
                d.weight
            );
            if d.mode == Mode::Tun {
                out.push_str(&tun_rule(&d.tunnel));
            }
            if d.u_threshold != 0 {
                let _ = write!(out, " -x {}", d.u_threshold);
            }
            if d.l_threshold != 0 {
                let _ = write!(out, " -y {}", d.l_threshold);
            }
            out.push('\n');
        }
        for a in &s.laddrs {
            let host = match a {
                IpAddr::V4(v4) if !format.numeric => names
                    .host_name(*v4)
                    .map_or_else(|| a.to_string(), str::to_string),
                _ => a.to_string(),
            };
            let _ = writeln!(out, "-P {svc} -z {host}");
        }
    }
    out
}

/// The two title lines of `-L -c`.
pub fn conns_title() -> String {
    format!(
        "IPVS connection entries\npro expire {:<11} {:<18} {:<18} {}\n",
        "state", "source", "virtual", "destination"
    )
}

/// One line of `-L -c`.
pub fn conn(c: &ConnEntry, format: &Format, names: &Names) -> String {
    let expire = format!("{:02}:{:02}", c.expire / 60, c.expire % 60);
    let name = |a| addrport(a, c.proto, format.numeric, names);
    format!(
        "{:<3} {:<6} {:<11} {:<18} {:<18} {}\n",
        proto_title(c.proto),
        expire,
        c.state,
        name(c.client),
        name(c.virt),
        name(c.dest)
    )
}

/// `-L --timeout`.
pub fn timeouts(t: &TimeoutValues) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// `-L --daemon`, ipvsadm 1.31's `list_daemon`: a line per running daemon, the master's first
/// whatever the order given, as `master sync daemon (mcast=rvs1, syncid=0, maxlen=1472,
/// group=224.0.0.81, port=8848, ttl=1)`. Like ipvsadm, it leaves out a maxlen, port or TTL
/// of 0 or none (a kernel before 4.3 reports none of them); the group is always known here.
pub fn daemons(daemons: &[SyncDaemon]) -> String {
    let mut out = String::new();
    for role in [SyncRole::Master, SyncRole::Backup] {
        // At most one daemon per role runs; a second of a role is not printed, as the kernel
        // reports one.
        let Some(d) = daemons.iter().find(|d| d.role == role) else {
            continue;
        };
        let _ = write!(
            out,
            "{role} sync daemon (mcast={}, syncid={}",
            d.interface, d.syncid
        );
        if let Some(m) = d.maxlen.filter(|&m| m != 0) {
            let _ = write!(out, ", maxlen={m}");
        }
        let _ = write!(out, ", group={}", d.group);
        if d.port != 0 {
            let _ = write!(out, ", port={}", d.port);
        }
        if d.ttl != 0 {
            let _ = write!(out, ", ttl={}", d.ttl);
        }
        out.push_str(")\n");
    }
    out
}

/// `-G` in DPVS's format: the title once (nothing at all without services), then each
/// service with its local addresses. Addresses are always numeric, as in DPVS.
pub fn laddrs(lists: &[LaddrList]) -> String {
    if lists.is_empty() {
        return String::new();
    }
    let mut sorted = lists.to_vec();
    sorted.sort_by_key(|l| {
        (
            l.key.vip.is_ipv6(),
            proto_number(l.key.proto),
            addr_key(l.key.vip.ip()),
            l.key.vip.port(),
        )
    });
    let mut out = format!(
        "{:<20} {:<8} {:<20} {:<10} {:<10}\n",
        "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"
    );
    for l in &sorted {
        let _ = writeln!(out, "{:<20} {:<8} ", l.key.vip.to_string(), l.laddrs.len());
        for a in &l.laddrs {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "",
                "",
                a.addr.to_string(),
                a.conflicts,
                a.conns
            );
        }
    }
    out
}

/// `--drops`: a line of packet counters per worker and a total, then one line per drop
/// reason with a column per worker and the total; with kernel twins, the same tables for
/// the frames punted to the kernel and those dropped on the way, and a line per twin.
/// Numbers as `--stats` prints them.
pub fn workers(
    workers: &[WorkerStats],
    twins: &[TwinStats],
    owned: &[OwnedAddr],
    sync: &std::collections::BTreeMap<String, u64>,
    format: &Format,
) -> String {
    let num = |n| largenum(n, format.exact);
    let mut out = format!(
        "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "Lcore", "RxPkts", "RxBytes", "TxPkts", "TxBytes", "Drops"
    );
    let mut total = [0u64; 5];
    for w in workers {
        let drops: u64 = w.drops.iter().map(|d| d.count).sum();
        let row = [w.rx_packets, w.rx_bytes, w.tx_packets, w.tx_bytes, drops];
        let _ = write!(out, "{:<8}", w.lcore);
        for (t, n) in total.iter_mut().zip(row) {
            *t += n;
            out.push_str(&num(n));
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<8}", "total");
    for n in total {
        out.push_str(&num(n));
    }
    out.push_str("\n\n");
    by_reason(&mut out, "Drop reason", workers, |w| &w.drops, format);
    if !twins.is_empty() {
        out.push('\n');
        by_reason(&mut out, "Punted to kernel", workers, |w| &w.punted, format);
        out.push('\n');
        by_reason(
            &mut out,
            "Punt dropped",
            workers,
            |w| &w.punt_dropped,
            format,
        );
        let _ = write!(
            out,
            "\n{:<8} {:<16} {:>8} {:>8} {:>8} {:>8}\n",
            "Port", "Twin", "ToKernel", "Refused", "KernelTx", "Refused"
        );
        for t in twins {
            let _ = write!(out, "{:<8} {:<16}", t.port, t.iface);
            for n in [
                t.to_kernel,
                t.to_kernel_dropped,
                t.kernel_tx,
                t.kernel_tx_dropped,
            ] {
                out.push_str(&num(n));
            }
            out.push('\n');
        }
    }
    if !owned.is_empty() {
        let _ = write!(out, "\n{:<8} {:<18} Origin\n", "Port", "Owned address");
        for o in owned {
            let _ = writeln!(out, "{:<8} {:<18} {}", o.port, o.addr, o.origin);
        }
    }
    if !sync.is_empty() {
        let _ = write!(out, "\n{:<24} {:>8}\n", "Connection sync", "total");
        for (name, n) in sync {
            let _ = writeln!(out, "{name:<24}{}", num(*n));
        }
    }
    out
}

/// A table of one count per reason (the first worker's reasons, in order), a column per
/// worker and the total.
fn by_reason(
    out: &mut String,
    title: &str,
    workers: &[WorkerStats],
    counts: fn(&WorkerStats) -> &Vec<DropCount>,
    format: &Format,
) {
    let num = |n| largenum(n, format.exact);
    let _ = write!(out, "{title:<24}");
    for w in workers {
        let _ = write!(out, " {:>8}", format!("lcore {}", w.lcore));
    }
    let _ = writeln!(out, " {:>8}", "total");
    let reasons = workers.first().map_or(&[][..], |w| &counts(w)[..]);
    for (i, r) in reasons.iter().enumerate() {
        let _ = write!(out, "{:<24}", r.reason);
        let mut sum = 0;
        for w in workers {
            let n = counts(w).get(i).map_or(0, |d| d.count);
            sum += n;
            out.push_str(&num(n));
        }
        out.push_str(&num(sum));
        out.push('\n');
    }
}

/// `-L --health`: per service its quorum, per real server its state, live weight, how long
/// it has been in that state and its transitions, then each check with its last result.
pub fn health(services: &[conf::proto::ServiceHealthEntry], now: u64) -> String {
    let mut out = String::from(
        "Prot LocalAddress:Port Quorum\n  -> RemoteAddress:Port           State Weight Since    Changes\n       Check                              State Last result\n",
    );
    let ago = |since: u64| {
        if since == 0 {
            "start".to_string()
        } else {
            format!("{}s", now.saturating_sub(since))
        }
    };
    for s in services {
        let proto = s.key.proto.as_str().to_uppercase();
        let quorum = match (s.quorum, s.sorry) {
            (true, _) => "held",
            (false, true) => "lost (sorry server)",
            (false, false) => "lost",
        };
        let _ = writeln!(
            out,
            "{proto}  {} {quorum} ({} changes)",
            s.key.vip, s.quorum_transitions
        );
        for r in &s.reals {
            let weight = r
                .live_weight
                .map_or_else(|| "-".to_string(), |w| w.to_string());
            let _ = writeln!(
                out,
                "  -> {:<28} {:<5} {:<6} {:<8} {}",
                r.real,
                if r.up { "UP" } else { "DOWN" },
                weight,
                ago(r.since),
                r.transitions
            );
            for c in &r.checks {
                let _ = writeln!(
                    out,
                    "       {:<34} {:<5} {} ({})",
                    c.check,
                    if c.up { "up" } else { "down" },
                    c.last,
                    ago(c.since)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;
    use conf::proto::{Counters, DropCount, LaddrEntry, Rates, ServiceKey};

    #[test]
    fn test_largenum() {
        let cases: [(u64, &str, &str); 12] = [
            (0, "        0", "        0"),
            (12345, "    12345", "    12345"),
            (99_999_999, " 99999999", " 99999999"),
            (100_000_000, "  100000K", " 100000000"),
            (123_456_789, "  123456K", " 123456789"),
            (999_999_999, "  999999K", " 999999999"),
            (1_000_000_000, "    1000M", " 1000000000"),
            (99_999_999_999, "   99999M", " 99999999999"),
            (100_000_000_000, "     100G", " 100000000000"),
            (99_999_999_999_999, "   99999G", " 99999999999999"),
            (100_000_000_000_000, "     100T", " 100000000000000"),
            (u64::MAX, "18446744T", " 18446744073709551615"),
        ];
        for (n, short, exact) in cases {
            assert_eq!(largenum(n, false), short, "{n}");
            assert_eq!(largenum(n, true), exact, "{n}");
        }
    }

    #[test]
    fn test_truncate() {
        assert_eq!(truncate("abcdef".into(), 4), "abcd");
        assert_eq!(truncate("abc".into(), 4), "abc");
    }

    /// Without -n, ipvsadm names no IPv6 address (even one /etc/hosts lists) but names its
    /// port; an IPv4 name is cut to its column, an IPv6 address never.
    #[test]
    fn test_ipv6_names_and_columns() {
        let names = Names::from_tables(
            "2001:db8::100 vip6.example.com\n10.0.0.100 vip.example.com\n",
            "http 80/tcp\n",
        );
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            addrport(a("[2001:db8::100]:80"), Proto::Tcp, false, &names),
            "[2001:db8::100]:http"
        );
        assert_eq!(
            addrport(a("10.0.0.100:80"), Proto::Tcp, false, &names),
            "vip.example.com:http"
        );
        assert_eq!(
            addrport(a("[2001:db8::100]:80"), Proto::Tcp, true, &names),
            "[2001:db8::100]:80"
        );
        assert_eq!(
            addrport(a("[2001:db8::7]:81"), Proto::Tcp, false, &names),
            "[2001:db8::7]:81"
        );
        let long = addrport(
            a("[2001:db8:1:0:ffff:ffff:ffff:fff1]:80"),
            Proto::Tcp,
            false,
            &names,
        );
        assert_eq!(long, "[2001:db8:1:0:ffff:ffff:ffff:fff1]:http");
        assert_eq!(fit(long.clone(), a("[2001:db8::1]:80"), 28), long);
        assert_eq!(
            fit(
                "a-very-long-ipv4-real-server.example.com:http".into(),
                a("10.0.0.1:80"),
                28
            ),
            "a-very-long-ipv4-real-server"
        );
        // Sorting: IPv4 before IPv6, then by address as a number.
        let mut keys = [a("[::2]:1"), a("10.0.0.1:1"), a("[::1]:1"), a("9.0.0.1:1")];
        keys.sort_by_key(|k| addr_key(k.ip()));
        assert_eq!(
            keys,
            [a("9.0.0.1:1"), a("10.0.0.1:1"), a("[::1]:1"), a("[::2]:1")]
        );
    }

    fn svc(proto: Proto, vip: &str) -> ServiceKey {
        ServiceKey {
            proto,
            vip: vip.parse().unwrap(),
        }
    }

    #[test]
    fn test_laddrs_and_workers() {
        assert_eq!(laddrs(&[]), "");
        let lists = [
            LaddrList {
                key: svc(Proto::Udp, "10.0.0.100:53"),
                laddrs: vec![],
            },
            LaddrList {
                key: svc(Proto::Tcp, "10.0.0.100:80"),
                laddrs: vec![
                    LaddrEntry {
                        addr: "192.168.20.2".parse().unwrap(),
                        conflicts: 3,
                        conns: 1200,
                    },
                    LaddrEntry {
                        addr: "192.168.20.3".parse().unwrap(),
                        conflicts: 0,
                        conns: 7,
                    },
                ],
            },
        ];
        assert_eq!(
            laddrs(&lists),
            "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n\
             10.0.0.100:80        2        \n                              \
             192.168.20.2         3          1200      \n                              \
             192.168.20.3         0          7         \n\
             10.0.0.100:53        0        \n"
        );
        let w = |lcore, n: u64| WorkerStats {
            lcore,
            rx_packets: n,
            rx_bytes: 100 * n,
            tx_packets: n,
            tx_bytes: 100 * n,
            drops: vec![
                DropCount {
                    reason: "truncated".into(),
                    count: 1,
                },
                DropCount {
                    reason: "no_dest".into(),
                    count: n,
                },
            ],
            punted: vec![DropCount {
                reason: "arp".into(),
                count: n,
            }],
            punt_dropped: vec![DropCount {
                reason: "arp".into(),
                count: 3,
            }],
        };
        assert_eq!(
            workers(
                &[w(1, 10), w(2, 2_000_000)],
                &[],
                &[],
                &Default::default(),
                &Format::default()
            ),
            "Lcore      RxPkts  RxBytes   TxPkts  TxBytes    Drops\n\
             1              10     1000       10     1000       11\n\
             2         2000000  200000K  2000000  200000K  2000001\n\
             total     2000010  200001K  2000010  200001K  2000012\n\
             \n\
             Drop reason               lcore 1  lcore 2    total\n\
             truncated                       1        1        2\n\
             no_dest                        10  2000000  2000010\n"
        );
        assert_eq!(
            workers(&[], &[], &[], &Default::default(), &Format::default()),
            "Lcore      RxPkts  RxBytes   TxPkts  TxBytes    Drops\n\
             total           0        0        0        0        0\n\
             \n\
             Drop reason                 total\n"
        );
        let twin = TwinStats {
            port: "dpdk0".into(),
            iface: "rvs0".into(),
            to_kernel: 12,
            to_kernel_dropped: 0,
            kernel_tx: 7,
            kernel_tx_dropped: 1,
        };
        assert_eq!(
            workers(
                &[w(1, 10), w(2, 2)],
                &[twin],
                &[
                    OwnedAddr {
                        port: "dpdk0".into(),
                        addr: "10.0.0.1/24".into(),
                        origin: "static".into(),
                    },
                    OwnedAddr {
                        port: "dpdk0".into(),
                        addr: "10.0.0.101/32".into(),
                        origin: "kernel".into(),
                    },
                ],
                &[
                    ("received_conns".to_owned(), 20),
                    ("sent_conns".to_owned(), 1_500_000)
                ]
                .into_iter()
                .collect(),
                &Format::default()
            ),
            "Lcore      RxPkts  RxBytes   TxPkts  TxBytes    Drops\n\
             1              10     1000       10     1000       11\n\
             2               2      200        2      200        3\n\
             total          12     1200       12     1200       14\n\
             \n\
             Drop reason               lcore 1  lcore 2    total\n\
             truncated                       1        1        2\n\
             no_dest                        10        2       12\n\
             \n\
             Punted to kernel          lcore 1  lcore 2    total\n\
             arp                            10        2       12\n\
             \n\
             Punt dropped              lcore 1  lcore 2    total\n\
             arp                             3        3        6\n\
             \n\
             Port     Twin             ToKernel  Refused KernelTx  Refused\n\
             dpdk0    rvs0                   12        0        7        1\n\
             \n\
             Port     Owned address      Origin\n\
             dpdk0    10.0.0.1/24        static\n\
             dpdk0    10.0.0.101/32      kernel\n\
             \n\
             Connection sync             total\n\
             received_conns                 20\n\
             sent_conns                1500000\n"
        );
    }

    #[test]
    fn test_conn_line() {
        let c = ConnEntry {
            proto: Proto::Tcp,
            expire: 899,
            state: "ESTABLISHED".into(),
            client: "203.0.113.7:51234".parse().unwrap(),
            virt: "10.0.0.100:80".parse().unwrap(),
            dest: "192.168.1.1:80".parse().unwrap(),
        };
        let names = Names::from_tables("", "http 80/tcp\n");
        assert_eq!(
            conn(&c, &Format::default(), &names),
            "TCP 14:59  ESTABLISHED 203.0.113.7:51234  10.0.0.100:http    192.168.1.1:http\n"
        );
        assert_eq!(
            conns_title(),
            "IPVS connection entries\npro expire state       source             virtual            destination\n"
        );
        assert_eq!(
            timeouts(&TimeoutValues {
                tcp: 900,
                tcp_fin: 120,
                udp: 300
            }),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
    }

    #[test]
    fn test_daemons() {
        let master = SyncDaemon {
            maxlen: Some(1472),
            ..SyncDaemon::new(SyncRole::Master, "rvs1")
        };
        let backup = SyncDaemon {
            syncid: 7,
            maxlen: Some(8972),
            group: std::net::Ipv4Addr::new(239, 0, 0, 9),
            port: 9000,
            ttl: 3,
            ..SyncDaemon::new(SyncRole::Backup, "eth2")
        };
        assert_eq!(daemons(&[]), "");
        assert_eq!(
            daemons(std::slice::from_ref(&master)),
            "master sync daemon (mcast=rvs1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
        );
        // The master first, as ipvsadm lists the kernel's two slots.
        let both = "master sync daemon (mcast=rvs1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
                    backup sync daemon (mcast=eth2, syncid=7, maxlen=8972, group=239.0.0.9, port=9000, ttl=3)\n";
        assert_eq!(daemons(&[backup.clone(), master.clone()]), both);
        assert_eq!(daemons(&[master, backup]), both);
        // What ipvsadm leaves out when the kernel reports 0.
        let bare = SyncDaemon {
            port: 0,
            ttl: 0,
            ..SyncDaemon::new(SyncRole::Backup, "rvs0")
        };
        assert_eq!(
            daemons(&[bare]),
            "backup sync daemon (mcast=rvs0, syncid=0, group=224.0.0.81)\n"
        );
    }

    #[test]
    fn test_rate_dest_line() {
        let s = ServiceEntry {
            key: svc(Proto::Tcp, "10.0.0.100:80"),
            sched: "wlc".into(),
            persistence: 0,
            netmask: conf::Netmask::V4(std::net::Ipv4Addr::BROADCAST),
            laddrs: vec![],
            counters: Counters::default(),
            rates: Rates {
                cps: 1,
                inpps: 2,
                outpps: 3,
                inbps: 400_000_000,
                outbps: 5,
            },
            dests: vec![DestEntry {
                addr: "192.168.1.1:80".parse().unwrap(),
                mode: Mode::Dr,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: Default::default(),
                active_conns: 0,
                inact_conns: 0,
                persist_conns: 0,
                counters: Counters::default(),
                rates: Rates {
                    cps: 123_456_789,
                    inpps: 2,
                    outpps: 3,
                    inbps: 400_000_000,
                    outbps: 5,
                },
            }],
        };
        let format = Format {
            rate: true,
            numeric: true,
            ..Format::default()
        };
        assert_eq!(
            list_services(&[s], &format, &Names::default()),
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  \
             -> RemoteAddress:Port\n\
             TCP  10.0.0.100:80                       1        2        3  400000K        5\n  \
             -> 192.168.1.1:80               123456789        2        3  400000K        5\n"
        );
    }

    #[test]
    fn test_health_listing() {
        use conf::proto::{CheckState, RealHealthEntry, ServiceHealthEntry, ServiceKey};
        let services = [ServiceHealthEntry {
            key: ServiceKey {
                proto: Proto::Tcp,
                vip: "10.0.0.100:80".parse().unwrap(),
            },
            quorum: false,
            sorry: true,
            quorum_transitions: 1,
            reals: vec![RealHealthEntry {
                real: "10.0.1.11:80".parse().unwrap(),
                up: false,
                live_weight: None,
                since: 990,
                transitions: 1,
                checks: vec![CheckState {
                    check: "HTTP_GET 10.0.1.11:80/".into(),
                    up: false,
                    last: "timeout".into(),
                    since: 990,
                }],
            }],
        }];
        assert_eq!(
            health(&services, 1000),
            "Prot LocalAddress:Port Quorum\n  -> RemoteAddress:Port           State Weight Since    Changes\n       Check                              State Last result\n\
             TCP  10.0.0.100:80 lost (sorry server) (1 changes)\n\
             \x20 -> 10.0.1.11:80                 DOWN  -      10s      1\n\
             \x20      HTTP_GET 10.0.1.11:80/             down  timeout (10s)\n"
        );
    }
}
