//! `rvsadm` against a server on a real socket: every listing mode byte for byte (expected
//! texts are ipvsadm 1.26's printf formats evaluated independently), errors and exit codes,
//! and `-S | -C && -R`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{mask, Fixture, TestHandler};
use conf::proto::{ConnEntry, Counters, DropCount, Rates, ServiceEntry, WorkerStats};
use conf::Proto;

// Expected outputs: ipvsadm's formats (print_title, print_service_entry, print_largenum,
// print_conn) evaluated with Python's printf over the same data.
const LIST: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.100:80 wrr\n",
    "  -> 192.168.1.1:80               Masq    4      2          1         \n",
    "  -> 192.168.1.2:80               Route   3      0          0         \n",
    "UDP  10.0.0.100:53 rr persistent 360 mask 255.255.255.0\n",
    "  -> 192.168.1.3:53               Tunnel  1      0          5         \n",
);
const STATS: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                      12      345      300    20700  123456K\n",
    "  -> 192.168.1.1:80                     12      345      300    20700  123456K\n",
    "  -> 192.168.1.2:80                      0        0        0        0        0\n",
    "UDP  10.0.0.100:53                       5       10        0      840        0\n",
    "  -> 192.168.1.3:53                      5       10        0      840        0\n",
);
const RATE: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                       3      120      110     9600  987654K\n",
    "  -> 192.168.1.1:80                      3      120      110     9600  987654K\n",
    "  -> 192.168.1.2:80                      0        0        0        0        0\n",
    "UDP  10.0.0.100:53                       1        2        0      140        0\n",
    "  -> 192.168.1.3:53                      1        2        0      140        0\n",
);
const THRESHOLDS: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80 wrr\n",
    "  -> 192.168.1.1:80               0          0          2          1         \n",
    "  -> 192.168.1.2:80               100        50         0          0         \n",
    "UDP  10.0.0.100:53 rr persistent 360 mask 255.255.255.0\n",
    "  -> 192.168.1.3:53               0          0          0          5         \n",
);
const PERSISTENT_CONN: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80 wrr\n",
    "  -> 192.168.1.1:80               4         0           2          1         \n",
    "  -> 192.168.1.2:80               3         0           0          0         \n",
    "UDP  10.0.0.100:53 rr persistent 360 mask 255.255.255.0\n",
    "  -> 192.168.1.3:53               1         4           0          5         \n",
);
const STATS_EXACT: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                      12      345      300    20700 123456789\n",
    "  -> 192.168.1.1:80                     12      345      300    20700 123456789\n",
    "  -> 192.168.1.2:80                      0        0        0        0        0\n",
    "UDP  10.0.0.100:53                       5       10        0      840        0\n",
    "  -> 192.168.1.3:53                      5       10        0      840        0\n",
);
const RATE_EXACT: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                       3      120      110     9600 987654321\n",
    "  -> 192.168.1.1:80                      3      120      110     9600 987654321\n",
    "  -> 192.168.1.2:80                      0        0        0        0        0\n",
    "UDP  10.0.0.100:53                       1        2        0      140        0\n",
    "  -> 192.168.1.3:53                      1        2        0      140        0\n",
);
const SAVE: &str = concat!(
    "-A -t 10.0.0.100:80 -s wrr\n",
    "-a -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 4\n",
    "-a -t 10.0.0.100:80 -r 192.168.1.2:80 -g -w 3 -x 100 -y 50\n",
    "-A -u 10.0.0.100:53 -s rr -p 360 -M 255.255.255.0\n",
    "-a -u 10.0.0.100:53 -r 192.168.1.3:53 -i -w 1 --tun-type ipip\n",
);
const CONNS: &str = concat!(
    "IPVS connection entries\n",
    "pro expire state       source             virtual            destination\n",
    "TCP 14:59  ESTABLISHED 203.0.113.7:51234  10.0.0.100:80      192.168.1.1:80\n",
    "TCP 00:59  SYN_RECV    203.0.113.8:40000  10.0.0.100:80      192.168.1.2:80\n",
    "UDP 05:00  UDP         203.0.113.9:5353   10.0.0.100:53      192.168.1.3:53\n",
    "UDP 06:00  NONE        203.0.113.0:0      10.0.0.100:53      192.168.1.3:53\n",
    "TCP 100:00 TIME_WAIT   198.51.100.200:65535 10.0.0.100:80      192.168.1.1:80\n",
);

/// The example of the spec (§5.2) with statistics on top.
fn decorate(s: &mut ServiceEntry) {
    let web = Counters {
        conns: 12,
        inpkts: 345,
        outpkts: 300,
        inbytes: 20700,
        outbytes: 123_456_789,
    };
    let web_rates = Rates {
        cps: 3,
        inpps: 120,
        outpps: 110,
        inbps: 9600,
        outbps: 987_654_321,
    };
    let dns = Counters {
        conns: 5,
        inpkts: 10,
        outpkts: 0,
        inbytes: 840,
        outbytes: 0,
    };
    let dns_rates = Rates {
        cps: 1,
        inpps: 2,
        outpps: 0,
        inbps: 140,
        outbps: 0,
    };
    match s.key.vip.port() {
        80 => (s.counters, s.rates) = (web, web_rates),
        53 => (s.counters, s.rates) = (dns, dns_rates),
        _ => {}
    }
    for d in &mut s.dests {
        match d.addr.to_string().as_str() {
            "192.168.1.1:80" => {
                (d.active_conns, d.inact_conns) = (2, 1);
                (d.counters, d.rates) = (web, web_rates);
            }
            "192.168.1.3:53" => {
                (d.inact_conns, d.persist_conns) = (5, 4);
                (d.counters, d.rates) = (dns, dns_rates);
            }
            _ => {}
        }
    }
}

fn spec_fixture() -> Fixture {
    let mut h = TestHandler::new();
    h.decorate = Some(Box::new(decorate));
    let f = Fixture::new(h);
    for cmd in [
        "-A -t 10.0.0.100:80 -s wrr",
        "-a -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 4",
        "-a -t 10.0.0.100:80 -r 192.168.1.2 -g -w 3 -x 100 -y 50",
        "-A -u 10.0.0.100:53 -s rr -p -M 255.255.255.0",
        "-a -u 10.0.0.100:53 -r 192.168.1.3 -i",
    ] {
        f.ok(cmd);
    }
    f
}

#[test]
fn test_listing_modes() {
    let f = spec_fixture();
    assert_eq!(f.out("-L -n"), LIST);
    assert_eq!(f.out("-Ln"), LIST);
    assert_eq!(f.out("-l --numeric"), LIST);
    assert_eq!(f.out("-L -n --stats"), STATS);
    assert_eq!(f.out("-L -n --rate"), RATE);
    assert_eq!(f.out("-L -n --thresholds"), THRESHOLDS);
    assert_eq!(f.out("-L -n --persistent-conn"), PERSISTENT_CONN);
    assert_eq!(f.out("-L -n --stats --exact"), STATS_EXACT);
    assert_eq!(f.out("-LnX --rate"), RATE_EXACT);
    // Stats win over rate, thresholds over persistent-conn, as in print_title.
    assert_eq!(f.out("-L -n --rate --stats"), STATS);
    assert_eq!(f.out("-L -n --persistent-conn --thresholds"), THRESHOLDS);
    assert_eq!(f.out("-S -n"), SAVE);
    assert_eq!(f.out("--save --numeric"), SAVE);
    assert_eq!(
        f.out("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    f.ok("--set 0 60 30");
    assert_eq!(
        f.out("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 60 30\n"
    );
}

#[test]
fn test_list_one_service() {
    let f = spec_fixture();
    // list_service: no version line.
    let title_and_dns = LIST
        .lines()
        .filter(|l| {
            !l.starts_with("IP Virtual")
                && !l.contains("192.168.1.1")
                && !l.contains("192.168.1.2")
                && !l.starts_with("TCP")
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(f.out("-L -n -u 10.0.0.100:53"), title_and_dns);
    assert_eq!(
        f.rvsadm("-L -n -t 10.0.0.100:53"),
        (1, String::new(), "No such service\n".to_string())
    );
}

#[test]
fn test_nosort_and_sorting() {
    let f = Fixture::new(TestHandler::new());
    for cmd in [
        "-A -u 10.0.0.100:53",
        "-A -t 10.0.0.101:80 -s rr",
        "-A -t 10.0.0.100:443 -s rr",
        "-A -t 10.0.0.100:80 -s rr",
        "-a -t 10.0.0.100:80 -r 192.168.1.10",
        "-a -t 10.0.0.100:80 -r 192.168.1.9",
        "-a -t 10.0.0.100:80 -r 172.16.0.1:8080 -m",
        "-a -t 10.0.0.100:80 -r 172.16.0.1:443 -m",
    ] {
        f.ok(cmd);
    }
    assert_eq!(
        f.out("-S -n"),
        concat!(
            "-A -t 10.0.0.100:80 -s rr\n",
            "-a -t 10.0.0.100:80 -r 172.16.0.1:443 -m -w 1\n",
            "-a -t 10.0.0.100:80 -r 172.16.0.1:8080 -m -w 1\n",
            "-a -t 10.0.0.100:80 -r 192.168.1.9:80 -g -w 1\n",
            "-a -t 10.0.0.100:80 -r 192.168.1.10:80 -g -w 1\n",
            "-A -t 10.0.0.100:443 -s rr\n",
            "-A -t 10.0.0.101:80 -s rr\n",
            "-A -u 10.0.0.100:53 -s wlc\n",
        )
    );
    // --nosort: services as added, reals in kernel order (the last added first).
    assert_eq!(
        f.out("-L -n --nosort"),
        concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "UDP  10.0.0.100:53 wlc\n",
            "TCP  10.0.0.101:80 rr\n",
            "TCP  10.0.0.100:443 rr\n",
            "TCP  10.0.0.100:80 rr\n",
            "  -> 172.16.0.1:443               Masq    1      0          0         \n",
            "  -> 172.16.0.1:8080              Masq    1      0          0         \n",
            "  -> 192.168.1.9:80               Route   1      0          0         \n",
            "  -> 192.168.1.10:80              Route   1      0          0         \n",
        )
    );
}

#[test]
fn test_names_without_numeric() {
    let f = Fixture::new(TestHandler::new());
    for cmd in [
        "-A -t www.example.com:www -s rr",
        "-a -t 10.0.0.100:80 -r 192.168.1.1 -w 2",
        "-A -t 10.0.0.101:443 -s rr",
        "-a -t 10.0.0.101:443 -r 192.168.1.2:443 -m",
        "-P -t 10.0.0.101:443 -z 10.0.0.1",
    ] {
        f.ok(cmd);
    }
    // Names from the tables; the service column is cut at 33 characters, the real at 28.
    assert_eq!(
        f.out("-L"),
        concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  www.example.com:http rr\n",
            "  -> a-very-long-real-server-name Route   2      0          0         \n",
            "TCP  a-rather-long-virtual-host.e rr\n",
            "  -> 192.168.1.2:https            Masq    1      0          0         \n",
        )
    );
    // -S is not cut, and names read back.
    let saved = f.out("-S");
    assert_eq!(
        saved,
        concat!(
            "-A -t www.example.com:http -s rr\n",
            "-a -t www.example.com:http -r a-very-long-real-server-name.example.com:http -g -w 2\n",
            "-A -t a-rather-long-virtual-host.example.com:https -s rr\n",
            "-a -t a-rather-long-virtual-host.example.com:https -r 192.168.1.2:https -m -w 1\n",
            "-P -t a-rather-long-virtual-host.example.com:https -z 10.0.0.1\n",
        )
    );
    let before = f.out("-S -n");
    f.ok("-C");
    assert_eq!(f.rvsadm_in("-R", &saved), (0, String::new(), String::new()));
    assert_eq!(f.out("-S -n"), before);
}

fn conn(proto: Proto, expire: u32, state: &str, c: &str, v: &str, d: &str) -> ConnEntry {
    ConnEntry {
        proto,
        expire,
        state: state.into(),
        client: c.parse().unwrap(),
        virt: v.parse().unwrap(),
        dest: d.parse().unwrap(),
    }
}

#[test]
fn test_connections() {
    let mut h = TestHandler::new();
    h.conns = vec![
        conn(
            Proto::Tcp,
            899,
            "ESTABLISHED",
            "203.0.113.7:51234",
            "10.0.0.100:80",
            "192.168.1.1:80",
        ),
        conn(
            Proto::Tcp,
            59,
            "SYN_RECV",
            "203.0.113.8:40000",
            "10.0.0.100:80",
            "192.168.1.2:80",
        ),
        conn(
            Proto::Udp,
            300,
            "UDP",
            "203.0.113.9:5353",
            "10.0.0.100:53",
            "192.168.1.3:53",
        ),
        conn(
            Proto::Udp,
            360,
            "NONE",
            "203.0.113.0:0",
            "10.0.0.100:53",
            "192.168.1.3:53",
        ),
        conn(
            Proto::Tcp,
            6000,
            "TIME_WAIT",
            "198.51.100.200:65535",
            "10.0.0.100:80",
            "192.168.1.1:80",
        ),
    ];
    // Three pages of two.
    let f = Fixture::new(h);
    assert_eq!(f.out("-L -n -c"), CONNS);
    assert_eq!(f.out("-Lnc"), CONNS);
    let named = f.out("-L -c");
    assert!(named.contains("TCP 14:59  ESTABLISHED 203.0.113.7:51234  www.example.com:http a-very-long-real-server-name.example.com:http\n"), "{named}");
    let empty = Fixture::new(TestHandler::new());
    assert_eq!(
        empty.out("-L -c -n"),
        "IPVS connection entries\npro expire state       source             virtual            destination\n"
    );
}

#[test]
fn test_laddrs_and_drops() {
    let mut h = TestHandler::new();
    h.workers = vec![WorkerStats {
        lcore: 1,
        rx_packets: 5,
        rx_bytes: 300,
        tx_packets: 4,
        tx_bytes: 240,
        drops: vec![
            DropCount {
                reason: "truncated".into(),
                count: 1,
            },
            DropCount {
                reason: "no_dest".into(),
                count: 0,
            },
        ],
        punted: Vec::new(),
        punt_dropped: Vec::new(),
    }];
    let f = Fixture::new(h);
    assert_eq!(f.out("-G"), "");
    f.ok("-A -t 10.0.0.100:80");
    f.ok("-a -t 10.0.0.100:80 -r 172.16.0.5 -b");
    f.ok("-P -t 10.0.0.100:80 -z 192.168.1.254");
    f.ok("--add-laddr -t 10.0.0.100:80 --laddr 10.0.0.1");
    f.ok("-A -u 10.0.0.100:53");
    let title = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n";
    let web = concat!(
        "10.0.0.100:80        2        \n",
        "                              192.168.1.254        0          0         \n",
        "                              10.0.0.1             0          0         \n",
    );
    assert_eq!(
        f.out("-G"),
        format!("{title}{web}10.0.0.100:53        0        \n")
    );
    assert_eq!(f.out("-G -t 10.0.0.100:80"), format!("{title}{web}"));
    assert_eq!(
        f.rvsadm("-G -t 10.0.0.100:81"),
        (255, String::new(), "No such service\n".into())
    );
    assert_eq!(
        f.rvsadm("-P -t 10.0.0.100:80 -z 10.0.0.1"),
        (255, String::new(), "Local address already exists\n".into())
    );
    f.ok("-Q -t 10.0.0.100:80 -z 10.0.0.1");
    assert_eq!(
        f.rvsadm("-Q -t 10.0.0.100:80 -z 10.0.0.1"),
        (255, String::new(), "No such Local address\n".into())
    );
    assert_eq!(
        f.out("-L -n"),
        concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "TCP  10.0.0.100:80 wlc\n",
            "  -> 172.16.0.5:80                FullNat 1      0          0         \n",
            "UDP  10.0.0.100:53 wlc\n",
        )
    );
    assert_eq!(
        f.out("-S -n"),
        concat!(
            "-A -t 10.0.0.100:80 -s wlc\n",
            "-a -t 10.0.0.100:80 -r 172.16.0.5:80 -b -w 1\n",
            "-P -t 10.0.0.100:80 -z 192.168.1.254\n",
            "-A -u 10.0.0.100:53 -s wlc\n",
        )
    );
    assert_eq!(
        f.out("--drops"),
        concat!(
            "Lcore      RxPkts  RxBytes   TxPkts  TxBytes    Drops\n",
            "1               5      300        4      240        1\n",
            "total           5      300        4      240        1\n",
            "\n",
            "Drop reason               lcore 1    total\n",
            "truncated                       1        1\n",
            "no_dest                         0        0\n",
        )
    );
}

#[test]
fn test_change_errors() {
    let f = spec_fixture();
    let before = f.out("-S -n");
    let refused = |args: &str, message: &str| {
        assert_eq!(
            f.rvsadm(args),
            (255, String::new(), format!("{message}\n")),
            "{args}"
        );
    };
    refused("-A -t 10.0.0.100:80", "Service already exists");
    refused(
        "-A -t 10.0.0.101:80 -s nope",
        "Scheduler or persistence engine not found",
    );
    refused("-E -t 10.0.0.101:80", "No such service");
    refused("-D -t 10.0.0.101:80", "No such service");
    refused("-Z -t 10.0.0.101:80", "No such service");
    refused("-a -t 10.0.0.101:80 -r 192.168.1.1", "Service not defined");
    refused(
        "-a -t 10.0.0.100:80 -r 192.168.1.1 -m",
        "Destination already exists",
    );
    refused(
        "-e -t 10.0.0.100:80 -r 192.168.1.7 -w 9",
        "No such destination",
    );
    refused("-d -t 10.0.0.100:80 -r 192.168.1.9", "No such destination");
    refused(
        "-a -t 10.0.0.100:80 -r 192.168.1.5 -x 1 -y 2",
        "Numerical result out of range",
    );
    // ip_vs_new_dest wants one unicast host: EINVAL for the connected subnet's network and
    // broadcast addresses, multicast, 0/8 and 240/4; loopback is rvs's own refusal.
    for real in [
        "192.168.1.0",
        "192.168.1.255",
        "224.1.1.1",
        "0.0.0.1",
        "240.1.1.1",
    ] {
        refused(
            &format!("-a -t 10.0.0.100:80 -r {real} -m"),
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        );
    }
    refused(
        "-a -t 10.0.0.100:80 -r 127.0.0.1:80 -m",
        "127.0.0.1 is a loopback address (127.0.0.0/8), which must never be sent on the wire",
    );
    assert_eq!(f.out("-S -n"), before);
    // -e replaces everything: without -m the real becomes direct routing (and its port the
    // vip port, so 192.168.1.1:80 is the real edited here).
    f.ok("-e -t 10.0.0.100:80 -r 192.168.1.1:8080 -w 9");
    assert!(f
        .out("-L -n")
        .contains("  -> 192.168.1.1:80               Route   9      2          1         \n"));
    f.ok("-Z");
    f.ok("-Z -t 10.0.0.100:80");
    f.ok("-D -t 10.0.0.100:80");
    f.ok("-C");
    assert_eq!(f.out("-S -n"), "");
}

#[test]
fn test_command_line_errors() {
    let f = Fixture::new(TestHandler::new());
    let (code, out, err) = f.rvsadm("-n -L");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            255,
            "",
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n"
        )
    );
    assert_eq!(
        f.rvsadm("-A -t 10.0.0.100:0"),
        (
            2,
            String::new(),
            "Zero port specified for non-persistent service\n".into()
        )
    );
    assert_eq!(
        f.rvsadm("-L --bogus"),
        (255, String::new(), "--bogus: unknown option\n".into())
    );
    let (code, out, err) = f.rvsadm("-h");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("rvsadm v") && out.contains("Usage:\n  rvsadm -A|E"));
    let (code, out, _) = f.rvsadm("-v");
    assert_eq!((code, out), (0, control::cli::version()));
    // A huge bad value comes back cut to 64 characters.
    let long = "9".repeat(1 << 20);
    let cut = format!("{}…", "9".repeat(64));
    assert_eq!(
        f.rvsadm(&format!("--set 1 2 {long}")),
        (
            2,
            String::new(),
            format!("invalid timeout value `{cut}' specified\n")
        )
    );
    assert_eq!(
        f.rvsadm(&format!("-L --{long}")),
        (
            255,
            String::new(),
            format!("--{}…: unknown option\n", "9".repeat(62))
        )
    );
    assert_eq!(
        f.rvsadm(&format!("-C {long}")),
        (2, String::new(), format!("unexpected argument {cut}\n"))
    );
    // Nothing reached the server.
    assert_eq!(f.out("-S"), "");
}

#[test]
fn test_no_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = control::admin::run(
        "rvsadm",
        &["-L".into(), "--socket".into(), path.display().to_string()],
        &common::names(),
        &mut control::admin::Streams {
            stdin: &mut &b""[..],
            out: &mut out,
            err: &mut err,
        },
    );
    assert_eq!(code, 2);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        format!(
            "Can't initialize ipvs: No such file or directory (os error 2)\nAre you sure that rvsd is running and listening on {}?\n",
            path.display()
        )
    );
}

#[test]
fn test_restore() {
    let f = spec_fixture();
    for cmd in [
        "-A -t 10.0.0.101:0 -s sh -p 60 -M 255.255.0.0",
        "-a -t 10.0.0.101:0 -r 192.168.1.5 -m -w 0",
        "-a -t 10.0.0.101:0 -r 172.16.9.9 -b -x 10",
        "-P -t 10.0.0.101:0 -z 10.0.0.1",
    ] {
        f.ok(cmd);
    }
    let saved = f.out("-S -n");
    assert!(
        saved.ends_with(concat!(
            "-A -t 10.0.0.101:0 -s sh -p 60 -M 255.255.0.0\n",
            "-a -t 10.0.0.101:0 -r 172.16.9.9:0 -b -w 1 -x 10\n",
            "-a -t 10.0.0.101:0 -r 192.168.1.5:0 -m -w 0\n",
            "-P -t 10.0.0.101:0 -z 10.0.0.1\n",
            "-A -u 10.0.0.100:53 -s rr -p 360 -M 255.255.255.0\n",
            "-a -u 10.0.0.100:53 -r 192.168.1.3:53 -i -w 1 --tun-type ipip\n",
        )),
        "{saved}"
    );
    let listed = f.out("-L -n");
    f.ok("-C");
    assert_eq!(f.out("-S -n"), "");
    assert_eq!(f.rvsadm_in("-R", &saved), (0, String::new(), String::new()));
    assert_eq!(f.out("-S -n"), saved);
    assert_eq!(f.out("-L -n"), listed);
    // ipvsadm's restore syntax: any whitespace, a leading `ipvsadm`, comments, blank lines.
    f.ok("-C");
    let script = "# saved rules\n\nipvsadm -A -t 10.0.0.100:80 -s wrr\n\t-a  -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 4 # web\n";
    assert_eq!(f.rvsadm_in("-R", script), (0, String::new(), String::new()));
    assert_eq!(
        f.out("-S -n"),
        "-A -t 10.0.0.100:80 -s wrr\n-a -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 4\n"
    );
    // A bad line stops the restore before anything is sent.
    let before = f.out("-S -n");
    let bad = "-A -t 10.0.0.101:80\n-a -t 10.0.0.101:80 -r 192.168.1.2\n-a -t 10.0.0.101:80 -r 192.168.1.3 -w x\n";
    assert_eq!(
        f.rvsadm_in("-R", bad),
        (
            2,
            String::new(),
            "line 3: illegal weight specified\n".into()
        )
    );
    assert_eq!(
        f.rvsadm_in("-R", "-L -n\n"),
        (
            2,
            String::new(),
            "line 1: only changes can be restored\n".into()
        )
    );
    assert_eq!(
        f.rvsadm_in("-R", "-R\n"),
        (
            255,
            String::new(),
            "line 1: Try `rvsadm -h' or 'rvsadm --help' for more information.\n".into()
        )
    );
    // A line rvsd refuses undoes the whole restore.
    let refused = "-A -t 10.0.0.101:80\n\n-a -t 10.0.0.101:80 -r 192.168.1.2\n-a -t 10.0.0.102:80 -r 192.168.1.3\n";
    assert_eq!(
        f.rvsadm_in("-R", refused),
        (255, String::new(), "line 4: Service not defined\n".into())
    );
    assert_eq!(f.out("-S -n"), before);
    assert_eq!(
        f.rvsadm_in("-R", "\n# nothing\n"),
        (0, String::new(), String::new())
    );
}

/// The real binary, in a real pipe: `rvsadm -S | rvsadm -C && rvsadm -R`.
#[test]
fn test_binary_save_clear_restore() {
    let f = spec_fixture();
    f.ok("-P -t 10.0.0.100:80 -z 10.0.0.1");
    f.ok("--set 1000 100 10");
    let bin = env!("CARGO_BIN_EXE_rvsadm");
    let socket = format!("--socket={}", f.path.display());
    let run = |args: &[&str]| {
        let o = Command::new(bin).args(args).arg(&socket).output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let listed = run(&["-L", "-n"]).1;
    assert!(listed.starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"));
    let save = Command::new(bin)
        .args(["-S", "-n", &socket])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let saved = save.wait_with_output().unwrap();
    assert!(saved.status.success());
    assert_eq!(run(&["-C"]), (0, String::new(), String::new()));
    assert_eq!(run(&["-L", "-n"]).1.lines().count(), 3);
    let mut restore = Command::new(bin)
        .args(["-R", &socket])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    restore
        .stdin
        .take()
        .unwrap()
        .write_all(&saved.stdout)
        .unwrap();
    assert!(restore.wait().unwrap().success());
    assert_eq!(run(&["-L", "-n"]).1, listed);
    assert_eq!(run(&["-S", "-n"]).1.as_bytes(), saved.stdout);
    // Timeouts are not part of -S, as in ipvsadm.
    assert_eq!(
        run(&["-L", "--timeout"]).1,
        "Timeout (tcp tcpfin udp): 1000 100 10\n"
    );
    let (code, _, err) = run(&["-A"]);
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "You need to supply the 'service-address' option for the 'add-service' command\n"
        )
    );
}

/// rvsadm and the config file take the same as ipvsadm 1.31 (and DPVS's `-b`): `-M` without
/// `-p` (kept, shown only with persistence), any dotted `-M`, `-a -b` before `-P`.
#[test]
fn test_what_ipvsadm_accepts() {
    let f = Fixture::new(TestHandler::new());
    f.ok("-A -t 10.0.0.100:80 -s rr -M 255.255.255.0");
    let key = conf::proto::ServiceKey {
        proto: Proto::Tcp,
        vip: "10.0.0.100:80".parse().unwrap(),
    };
    let netmask = |f: &Fixture| {
        let m = f.handler.model.lock().unwrap();
        let s = m.service(&key).unwrap();
        (s.persistence, s.netmask)
    };
    assert_eq!(netmask(&f), (0, mask("255.255.255.0")));
    assert_eq!(f.out("-S -n"), "-A -t 10.0.0.100:80 -s rr\n");
    f.ok("-E -t 10.0.0.100:80 -s rr -p 60 -M 255.0.255.0");
    assert_eq!(netmask(&f), (60, mask("255.0.255.0")));
    assert_eq!(
        f.out("-S -n"),
        "-A -t 10.0.0.100:80 -s rr -p 60 -M 255.0.255.0\n"
    );
    // A fullnat real before any local address; its connections wait for -P.
    f.ok("-a -t 10.0.0.100:80 -r 192.168.1.1:8080 -b");
    f.ok("-P -t 10.0.0.100:80 -z 10.0.0.1");
    // The file says the same and is accepted.
    let toml = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]\n\
                [[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\nsched = \"rr\"\n\
                netmask = \"255.0.255.0\"\n\
                [[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"fullnat\"\n";
    let c = conf::Config::parse(toml, "rvsd.toml").unwrap();
    assert_eq!(c.services[0].netmask, mask("255.0.255.0"));
}

/// ipvsadm 1.31's tunnel options and weight range: every tunnel option through `-a`/`-e`,
/// `-L -n` (Forward `Tunnel`), `-L -n --tun-info`, `-S` and back through `-R`. Expected rows
/// are ipvsadm 1.31's printf formats (`print_service_entry` with `FMT_TUN_INFO`,
/// `print_tunnel_rule`) evaluated with Python's printf.
#[test]
fn test_tunnel_options_and_weights() {
    let f = Fixture::new(TestHandler::new());
    for cmd in [
        "-A -t 10.0.0.100:8080 -s wrr",
        "-a -t 10.0.0.100:8080 -r 192.168.1.11 -i --tun-type gre -w 0",
        "-a -t 10.0.0.100:8080 -r 192.168.1.12 -i --tun-type gre --tun-csum -w 65535",
        "-a -t 10.0.0.100:8080 -r 192.168.1.13 -i --tun-type gue --tun-port 6080 -w 65536",
        "-a -t 10.0.0.100:8080 -r 192.168.1.14 -i --tun-type gue --tun-port 1 --tun-csum -w 2147483647",
        "-a -t 10.0.0.100:8080 -r 192.168.1.15 -i --tun-type gue --tun-port 65535 --tun-remcsum",
        "-a -t 10.0.0.100:8080 -r 192.168.1.16 -i",
        "-a -t 10.0.0.100:8080 -r 192.168.1.17:9000 -m",
    ] {
        f.ok(cmd);
    }
    let info = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        "TCP  10.0.0.100:8080 wrr\n",
        "  -> 192.168.1.11:8080            Tunnel  gre:-c        0      0          0         \n",
        "  -> 192.168.1.12:8080            Tunnel  gre:+c        65535  0          0         \n",
        "  -> 192.168.1.13:8080            Tunnel  gue:6080:-c   65536  0          0         \n",
        "  -> 192.168.1.14:8080            Tunnel  gue:1:+c      2147483647 0          0         \n",
        "  -> 192.168.1.15:8080            Tunnel  gue:65535:r+c 1      0          0         \n",
        "  -> 192.168.1.16:8080            Tunnel  ipip          1      0          0         \n",
        "  -> 192.168.1.17:9000            Masq    n/a           1      0          0         \n",
    );
    assert_eq!(f.out("-L -n --tun-info"), info);
    let list = f.out("-L -n");
    assert!(list
        .contains("  -> 192.168.1.14:8080            Tunnel  2147483647 0          0         \n"));
    assert!(
        list.contains("  -> 192.168.1.11:8080            Tunnel  0      0          0         \n")
    );
    let save = concat!(
        "-A -t 10.0.0.100:8080 -s wrr\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.11:8080 -i -w 0 --tun-type gre --tun-nocsum\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.12:8080 -i -w 65535 --tun-type gre --tun-csum\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.13:8080 -i -w 65536 --tun-type gue --tun-port 6080 --tun-nocsum\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.14:8080 -i -w 2147483647 --tun-type gue --tun-port 1 --tun-csum\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.15:8080 -i -w 1 --tun-type gue --tun-port 65535 --tun-remcsum\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.16:8080 -i -w 1 --tun-type ipip\n",
        "-a -t 10.0.0.100:8080 -r 192.168.1.17:9000 -m -w 1\n",
    );
    assert_eq!(f.out("-S -n"), save);
    f.ok("-C");
    assert_eq!(f.rvsadm_in("-R", save), (0, String::new(), String::new()));
    assert_eq!(f.out("-S -n"), save);
    assert_eq!(f.out("-L -n --tun-info"), info);
    // -e replaces the tunnel as the kernel's edit does: without --tun-type it is ipip again.
    f.ok("-e -t 10.0.0.100:8080 -r 192.168.1.13 -i -w 2");
    assert!(f
        .out("-S -n")
        .contains("-a -t 10.0.0.100:8080 -r 192.168.1.13:8080 -i -w 2 --tun-type ipip\n"));
    f.ok("-e -t 10.0.0.100:8080 -r 192.168.1.16 -i --tun-type gre --tun-csum");
    assert!(f.out("-L -n --tun-info").contains(
        "  -> 192.168.1.16:8080            Tunnel  gre:+c        1      0          0         \n"
    ));
    // One over the maximum weight, and the tunnel option errors, exit 2 as ipvsadm's fail().
    for (args, message) in [
        (
            "-a -t 10.0.0.100:8080 -r 192.168.1.18 -w 2147483648",
            "illegal weight specified",
        ),
        (
            "-a -t 10.0.0.100:8080 -r 192.168.1.18 -i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        ),
        (
            "-a -t 10.0.0.100:8080 -r 192.168.1.18 -g --tun-type gre",
            "Tunnel options conflict with forward method",
        ),
    ] {
        assert_eq!(
            f.rvsadm(args),
            (2, String::new(), format!("{message}\n")),
            "{args}"
        );
    }
}

#[test]
fn test_sync_daemons() {
    let f = Fixture::new(TestHandler::new());
    let refused = |args: &str, message: &str| {
        assert_eq!(
            f.rvsadm(args),
            (255, String::new(), format!("{message}\n")),
            "{args}"
        );
    };
    assert_eq!(f.out("-L --daemon"), "");
    // ipvsadm's default interface is eth0, which this director does not have.
    refused("--start-daemon master", "No such device");
    f.ok("--start-daemon master --mcast-interface rvs1 --syncid 7");
    refused(
        "--start-daemon master --mcast-interface rvs0",
        "Daemon has already run",
    );
    f.ok("--start-daemon backup --mcast-interface rvs1 --mcast-group 239.0.0.1 --mcast-port 9999 --mcast-ttl 2");
    // rvsd reports the maxlen in use: 1472 for a master, the MTU's for a backup.
    let both = "master sync daemon (mcast=rvs1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
                backup sync daemon (mcast=rvs1, syncid=0, maxlen=8972, group=239.0.0.1, port=9999, ttl=2)\n";
    assert_eq!(f.out("-L --daemon"), both);
    assert_eq!(f.out("-l -n --daemon"), both);
    f.ok("--stop-daemon master");
    refused("--stop-daemon master", "No daemon is running");
    assert_eq!(
        f.out("-L --daemon"),
        "backup sync daemon (mcast=rvs1, syncid=0, maxlen=8972, group=239.0.0.1, port=9999, ttl=2)\n"
    );
    f.ok("--stop-daemon backup");
    assert_eq!(f.out("-L --daemon"), "");
    // Bad arguments never reach rvsd.
    assert_eq!(
        f.rvsadm("--start-daemon master --mcast-ttl 0"),
        (2, String::new(), "illegal mcast-ttl specified\n".into())
    );
    // A restore is a batch of changes; a daemon line stops it before anything is sent.
    assert_eq!(
        f.rvsadm_in(
            "-R",
            "-A -t 10.0.0.100:80\n--start-daemon master --mcast-interface rvs1\n"
        ),
        (
            2,
            String::new(),
            "line 2: sync daemons cannot be restored: -R applies its lines as one batch of \
             changes; run --start-daemon and --stop-daemon on their own\n"
                .into()
        )
    );
    assert_eq!(f.out("-S -n"), "");
    assert_eq!(f.out("-L --daemon"), "");
}

// --- IPv6 (issue 14): ipvsadm's v6 formats, evaluated with Python's printf as above --------

const LIST6: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port Scheduler Flags\n",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    "TCP  10.0.0.100:80 rr\n",
    "TCP  [2001:db8::100]:80 wrr\n",
    "  -> [2001:db8::12]:80            Route   3      0          0         \n",
    "  -> [2001:db8:1::11]:8080        Masq    4      2          1         \n",
    "  -> [2001:db8:1:0:ffff:ffff:ffff:fff1]:8080 Masq    1      0          0         \n",
    "TCP  [2001:db8::101]:443 rr\n",
    "  -> 192.168.1.1:8443             FullNat 1      0          0         \n",
    "UDP  [2001:db8::100]:53 rr persistent 360 mask 64\n",
    "  -> [2001:db8::13]:53            Tunnel  1      0          0         \n",
);

const STATS6: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                       0        0        0        0        0\n",
    "TCP  [2001:db8::100]:80                 12      345      300    20700  123456K\n",
    "  -> [2001:db8::12]:80                   0        0        0        0        0\n",
    "  -> [2001:db8:1::11]:8080              12      345      300    20700  123456K\n",
    "  -> [2001:db8:1:0:ffff:ffff:ffff:fff1]:8080        0        0        0        0        0\n",
    "TCP  [2001:db8::101]:443                 0        0        0        0        0\n",
    "  -> 192.168.1.1:8443                    0        0        0        0        0\n",
    "UDP  [2001:db8::100]:53                  0        0        0        0        0\n",
    "  -> [2001:db8::13]:53                   0        0        0        0        0\n",
);

const RATE6: &str = concat!(
    "IP Virtual Server version 1.2.1 (size=4096)\n",
    "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
    "  -> RemoteAddress:Port\n",
    "TCP  10.0.0.100:80                       0        0        0        0        0\n",
    "TCP  [2001:db8::100]:80                  3      120      110     9600  987654K\n",
    "  -> [2001:db8::12]:80                   0        0        0        0        0\n",
    "  -> [2001:db8:1::11]:8080               3      120      110     9600  987654K\n",
    "  -> [2001:db8:1:0:ffff:ffff:ffff:fff1]:8080        0        0        0        0        0\n",
    "TCP  [2001:db8::101]:443                 0        0        0        0        0\n",
    "  -> 192.168.1.1:8443                    0        0        0        0        0\n",
    "UDP  [2001:db8::100]:53                  0        0        0        0        0\n",
    "  -> [2001:db8::13]:53                   0        0        0        0        0\n",
);

const CONNS6: &str = concat!(
    "IPVS connection entries\n",
    "pro expire state       source             virtual            destination\n",
    "TCP 14:59  ESTABLISHED [2001:db8:ffff::7]:51234 [2001:db8::100]:80 [2001:db8:1::11]:8080\n",
    "TCP 00:59  SYN_RECV    [2001:db8:ffff::8]:40000 [2001:db8::101]:443 192.168.1.1:8443\n",
    "UDP 06:00  NONE        [2001:db8:ffff::]:0 [2001:db8::100]:53 [2001:db8::13]:53\n",
);

/// The IPv6 fixture's counters: the NAT66 service and its busy real.
fn decorate6(s: &mut ServiceEntry) {
    let web = Counters {
        conns: 12,
        inpkts: 345,
        outpkts: 300,
        inbytes: 20700,
        outbytes: 123_456_789,
    };
    let web_rates = Rates {
        cps: 3,
        inpps: 120,
        outpps: 110,
        inbps: 9600,
        outbps: 987_654_321,
    };
    if s.key.vip.to_string() == "[2001:db8::100]:80" && s.key.proto == Proto::Tcp {
        (s.counters, s.rates) = (web, web_rates);
    }
    for d in &mut s.dests {
        if d.addr.to_string() == "[2001:db8:1::11]:8080" {
            (d.active_conns, d.inact_conns) = (2, 1);
            (d.counters, d.rates) = (web, web_rates);
        }
    }
}

fn v6_fixture() -> Fixture {
    let mut h = TestHandler::new();
    h.decorate = Some(Box::new(decorate6));
    let f = Fixture::new(h);
    for cmd in [
        "-A -t [2001:db8::100]:80 -s wrr",
        "-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 -m -w 4",
        "-a -t [2001:db8::100]:80 -r [2001:db8:1:0:ffff:ffff:ffff:fff1]:8080 -m",
        "-a -t [2001:db8::100]:80 -r 2001:db8::12 -g -w 3",
        "-A -u [2001:db8::100]:53 -s rr -p -M 64",
        "-a -u [2001:db8::100]:53 -r 2001:db8::13 -i",
        "-A -t 10.0.0.100:80 -s rr",
        // NAT64: an IPv4 local address and real behind an IPv6 vip.
        "-A -t [2001:db8::101]:443 -s rr",
        "-P -t [2001:db8::101]:443 -z 10.0.0.1",
        "-a -t [2001:db8::101]:443 -r 192.168.1.1:8443 -b",
    ] {
        f.ok(cmd);
    }
    f
}

/// `-L -n` in every column set with IPv6 services: bracketed addresses, IPv4 services
/// first (libipvs compares the family first), an IPv6 name never cut (a long one widens its
/// line), `mask 64`.
#[test]
fn test_ipv6_listings() {
    let f = v6_fixture();
    assert_eq!(f.out("-L -n"), LIST6);
    assert_eq!(f.out("-L -n --stats"), STATS6);
    assert_eq!(f.out("-L -n --rate"), RATE6);
    assert_eq!(
        f.out("-L -n -u [2001:db8::100]:53"),
        concat!(
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
            "UDP  [2001:db8::100]:53 rr persistent 360 mask 64\n",
            "  -> [2001:db8::13]:53            Tunnel  1      0          0         \n",
        )
    );
    assert_eq!(
        f.out("-G -t [2001:db8::101]:443"),
        concat!(
            "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n",
            "[2001:db8::101]:443  1        \n",
            "                              10.0.0.1             0          0         \n",
        )
    );
}

/// `-S` writes IPv6 as `-R` reads it back (and as ipvsadm writes it: `-M 64`).
#[test]
fn test_ipv6_save_restore() {
    let f = v6_fixture();
    let saved = f.out("-S -n");
    assert_eq!(
        saved,
        concat!(
            "-A -t 10.0.0.100:80 -s rr\n",
            "-A -t [2001:db8::100]:80 -s wrr\n",
            "-a -t [2001:db8::100]:80 -r [2001:db8::12]:80 -g -w 3\n",
            "-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 -m -w 4\n",
            "-a -t [2001:db8::100]:80 -r [2001:db8:1:0:ffff:ffff:ffff:fff1]:8080 -m -w 1\n",
            "-A -t [2001:db8::101]:443 -s rr\n",
            "-a -t [2001:db8::101]:443 -r 192.168.1.1:8443 -b -w 1\n",
            "-P -t [2001:db8::101]:443 -z 10.0.0.1\n",
            "-A -u [2001:db8::100]:53 -s rr -p 360 -M 64\n",
            "-a -u [2001:db8::100]:53 -r [2001:db8::13]:53 -i -w 1 --tun-type ipip\n",
        )
    );
    let listed = f.out("-L -n");
    f.ok("-C");
    assert_eq!(f.out("-S -n"), "");
    assert_eq!(f.rvsadm_in("-R", &saved), (0, String::new(), String::new()));
    assert_eq!(f.out("-S -n"), saved);
    assert_eq!(f.out("-L -n"), listed);
}

/// `-L -c` with IPv6 connections: ipvsadm's `%-18s` columns, which a bracketed address
/// overflows.
#[test]
fn test_ipv6_connections() {
    let mut h = TestHandler::new();
    h.conns = vec![
        conn(
            Proto::Tcp,
            899,
            "ESTABLISHED",
            "[2001:db8:ffff::7]:51234",
            "[2001:db8::100]:80",
            "[2001:db8:1::11]:8080",
        ),
        conn(
            Proto::Tcp,
            59,
            "SYN_RECV",
            "[2001:db8:ffff::8]:40000",
            "[2001:db8::101]:443",
            "192.168.1.1:8443",
        ),
        conn(
            Proto::Udp,
            360,
            "NONE",
            "[2001:db8:ffff::]:0",
            "[2001:db8::100]:53",
            "[2001:db8::13]:53",
        ),
    ];
    let f = Fixture::new(h);
    assert_eq!(f.out("-L -n -c"), CONNS6);
}

/// The rules of the config file for IPv6, through rvsadm.
#[test]
fn test_ipv6_change_errors() {
    let f = v6_fixture();
    let refused = |args: &str, message: &str| {
        assert_eq!(
            f.rvsadm(args),
            (255, String::new(), format!("{message}\n")),
            "{args}"
        );
    };
    refused(
        "-A -t [::1]:80",
        "::1 is the loopback address ::1, which must never be sent on the wire",
    );
    refused(
        "-A -t [ff02::1]:80",
        "Invalid operation.  Possibly wrong module version, address not unicast, ...",
    );
    refused(
        "-a -t [2001:db8::100]:80 -r 192.168.1.2 -m",
        "192.168.1.2 is IPv4, but the vip is IPv6: nat keeps the client's packet, so its reals are IPv6 (only fullnat reaches IPv4 reals, NAT64)",
    );
    refused(
        "-a -t 10.0.0.100:80 -r 2001:db8::20 -b",
        "2001:db8::20 is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 reals (4→6 is not supported)",
    );
    refused(
        "-a -t [2001:db8::101]:443 -r 2001:db8::20 -b",
        "2001:db8::20 is IPv6, but the local addresses are IPv4 (10.0.0.1): a fullnat real is reached from a local address of its family",
    );
    refused(
        "-P -t [2001:db8::101]:443 -z 2001:db8::1",
        "2001:db8::1 is IPv6, but 10.0.0.1 is IPv4: the local addresses of a service are of one family",
    );
    refused(
        "-P -t 10.0.0.100:80 -z 2001:db8::1",
        "2001:db8::1 is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 (4→6 is not supported)",
    );
    refused(
        "-a -t [2001:db8::100]:80 -r 2001:db8:2::1 -m",
        "no route to 2001:db8:2::1: no [[port]] subnet or [[route]] contains it",
    );
    refused(
        "-a -t [2001:db8::100]:80 -r 2001:db8:1::20 -g",
        "dr needs 2001:db8:1::20 on the link, but no [[port]] subnet contains it",
    );
    refused(
        "-a -t [2001:db8::100]:80 -r 2001:db8::1 -m",
        "2001:db8::1 is an address of the balancer itself",
    );
    // A fullnat real of either family before the service has local addresses (DPVS's
    // order); the first local address must then be of its family.
    f.ok("-A -t [2001:db8::101]:8443 -s rr");
    f.ok("-a -t [2001:db8::101]:8443 -r 192.168.1.2:8443 -b");
    refused(
        "-P -t [2001:db8::101]:8443 -z 2001:db8::1",
        "2001:db8::1 is IPv6, but fullnat real 192.168.1.2:8443 is IPv4: a fullnat real is reached from a local address of its family",
    );
    assert_eq!(
        f.rvsadm("-A -t [2001:db8::101]:80 -p -M 129"),
        (
            2,
            String::new(),
            "illegal ipv6 netmask specified\n".to_string()
        )
    );
}
