//! The control plane against a running rvsd (on `net_pcap`, driven by `rvsadm` and by raw
//! clients on its UNIX socket): every command kind as `-L -n` shows it, `-S`/`-C`/`-R`
//! round trips, concurrent clients, malformed and oversized requests, clients that vanish
//! mid-request, socket permissions, and a second rvsd on the same socket.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::live::Live;
use conf::proto::{self, Request, Response, ServiceKey, MAX_RESPONSE};
use fixtures::packet::{padded, tcp, udp, Ip};
use fixtures::topo::*;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The port and routes of every test here: the fixture network plus two FULLNAT local
/// addresses, and static neighbours for the real servers.
const NETWORK_BODY: &str = r#"
[dataplane]
workers = [1]
conn_table_size = 4096
[[port]]
name = "dpdk0"
mac = "02:00:00:00:00:01"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "10.0.0.200/32", "10.0.0.201/32"]
[[route]]
dst = "0.0.0.0/0"
via = "10.0.0.254"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "dpdk0"
"#;

/// Services of every forwarding method, persistence, thresholds, weight 0 and local addresses.
const SERVICES: &str = r#"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "wrr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  weight = 3
  [[service.real]]
  addr = "10.0.0.12:8080"
  mode = "nat"
  u_threshold = 100
  l_threshold = 50
[[service]]
vip = "10.0.0.100:443"
proto = "tcp"
sched = "sh"
persistence = 600
netmask = "255.255.255.0"
  [[service.real]]
  addr = "10.0.0.11:443"
  mode = "dr"
  [[service.real]]
  addr = "10.0.0.12:443"
  mode = "tun"
  weight = 2
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:53"
  mode = "nat"
  weight = 0
[[service]]
vip = "10.0.0.100:8443"
proto = "tcp"
sched = "wlc"
laddrs = ["10.0.0.200", "10.0.0.201"]
  [[service.real]]
  addr = "10.0.0.13:443"
  mode = "fullnat"
"#;

const VERSION_LINE: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";
const HEADER: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// A real server line of `-L -n`.
fn dest(addr: &str, forward: &str, weight: u32, active: u32, inactive: u32) -> String {
    format!("  -> {addr:<28} {forward:<7} {weight:<6} {active:<10} {inactive:<10}\n")
}

/// `-L -n` of everything: the version line, the header and `body`.
fn listing(body: &str) -> String {
    format!("{VERSION_LINE}{HEADER}{body}")
}

/// Polls `args` until its output is `want` (the data path updates counters on its own time).
fn await_output(live: &Live, args: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = live.ok(args);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rvsadm {args}: never\n{want}\ngot\n{got}\nlog:\n{}",
            live.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn key(vip: &str) -> ServiceKey {
    ServiceKey {
        proto: conf::Proto::Tcp,
        vip: vip.parse().unwrap(),
    }
}

/// A raw client of the control socket.
fn connect(live: &Live) -> UnixStream {
    let s = UnixStream::connect(&live.socket).expect("connect to rvsd");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn call(s: &mut UnixStream, request: &Request) -> Response {
    proto::write_frame(s, request).unwrap();
    proto::read_frame(s, MAX_RESPONSE).unwrap()
}

fn error_of(r: Response) -> (String, Option<usize>) {
    match r {
        Response::Error { message, index } => (message, index),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The server closed the connection: end of stream, or a reset when it closed with bytes of
/// ours unread.
fn assert_closed(s: &mut UnixStream) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection still open: {other:?} {rest:?}"),
    }
}

#[test]
fn save_clear_restore_round_trips_exactly() {
    let live = Live::start("", &format!("{NETWORK_BODY}{SERVICES}"), &[]);
    // Live changes on top of the file, so that the saved state is not just the file's.
    live.ok("-A -u 10.0.0.100:5353 -s sh -p 60 -M 255.255.0.0");
    live.ok("-a -u 10.0.0.100:5353 -r 10.0.0.12:5353 -m -w 7 -x 20");
    live.ok("-e -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 9");
    let saved = live.ok("-S -n");
    assert_eq!(
        saved,
        concat!(
            "-A -t 10.0.0.100:80 -s wrr\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m -w 9\n",
            "-a -t 10.0.0.100:80 -r 10.0.0.12:8080 -m -w 1 -x 100 -y 50\n",
            "-A -t 10.0.0.100:443 -s sh -p 600 -M 255.255.255.0\n",
            "-a -t 10.0.0.100:443 -r 10.0.0.11:443 -g -w 1\n",
            "-a -t 10.0.0.100:443 -r 10.0.0.12:443 -i -w 2 --tun-type ipip\n",
            "-A -t 10.0.0.100:8443 -s wlc\n",
            "-a -t 10.0.0.100:8443 -r 10.0.0.13:443 -b -w 1\n",
            "-P -t 10.0.0.100:8443 -z 10.0.0.200\n",
            "-P -t 10.0.0.100:8443 -z 10.0.0.201\n",
            "-A -u 10.0.0.100:53 -s rr\n",
            "-a -u 10.0.0.100:53 -r 10.0.0.11:53 -m -w 0\n",
            "-A -u 10.0.0.100:5353 -s sh -p 60 -M 255.255.0.0\n",
            "-a -u 10.0.0.100:5353 -r 10.0.0.12:5353 -m -w 7 -x 20\n",
        )
    );
    let listed = live.ok("-L -n");
    let laddrs = live.ok("-G");
    let named = live.ok("-S");

    live.ok("-C");
    assert_eq!(live.ok("-L -n"), listing(""));
    assert_eq!(live.ok("-S -n"), "");
    assert_eq!(live.ok("-G"), "");
    assert_eq!(
        live.rvsadm_with("-R", &saved),
        (0, String::new(), String::new())
    );
    assert_eq!(live.ok("-S -n"), saved);
    assert_eq!(live.ok("-L -n"), listed);
    assert_eq!(live.ok("-G"), laddrs);

    // The same with names (`-S` without `-n`), through a pipe as `rvsadm -S | rvsadm -R`.
    live.ok("-C");
    assert_eq!(
        live.rvsadm_with("-R", &named),
        (0, String::new(), String::new())
    );
    assert_eq!(live.ok("-S -n"), saved);
    assert_eq!(live.ok("-L -n"), listed);

    // A restore that fails on a later line applies nothing.
    let (code, out, err) = live.rvsadm_with(
        "-R",
        "-A -t 10.0.0.100:81 -s rr\n-a -t 10.0.0.100:81 -r 10.0.0.11:81 -m\n-a -t 10.0.0.100:82 -r 10.0.0.11\n",
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (255, "", "line 3: Service not defined\n")
    );
    let (code, _, err) = live.rvsadm_with(
        "-R",
        "-A -t 10.0.0.100:81\n-a -t 10.0.0.100:81 -r 10.0.0.11 -w 2147483648\n",
    );
    assert_eq!(
        (code, err.as_str()),
        (2, "line 2: illegal weight specified\n")
    );
    assert_eq!(live.ok("-S -n"), saved);
    live.stop();
}

#[test]
fn every_command_changes_the_live_state() {
    let body = format!(
        "{NETWORK_BODY}[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\nsched = \"rr\"\n  [[service.real]]\n  addr = \"10.0.0.11:8080\"\n  mode = \"nat\"\n"
    );
    // One SYN makes a connection to 10.0.0.11:8080; the UDP datagram has no service.
    let syn = padded(tcp(
        FROM_ROUTER,
        Ip::new(C1, VIP).ttl(CLIENT_TTL),
        segments().syn.ports(40001, 80),
        b"",
    ));
    let stray = padded(udp(FROM_ROUTER, Ip::new(C1, VIP), 5353, 9999, b"x"));
    let live = Live::start("", &body, &[syn.clone(), stray]);
    let web = "TCP  10.0.0.100:80 rr\n";
    let web_rs1 = dest("10.0.0.11:8080", "Masq", 1, 0, 1);
    await_output(&live, "-L -n", &listing(&format!("{web}{web_rs1}")));
    let base = format!("{web}{web_rs1}");

    // -A, -E
    live.ok("-A -t 10.0.0.100:81 -s wlc");
    assert_eq!(
        live.ok("-L -n"),
        listing(&format!("{base}TCP  10.0.0.100:81 wlc\n"))
    );
    live.ok("-E -t 10.0.0.100:81 -s sh -p 300 -M 255.255.255.0");
    let svc81 = "TCP  10.0.0.100:81 sh persistent 300 mask 255.255.255.0\n";
    assert_eq!(live.ok("-L -n"), listing(&format!("{base}{svc81}")));

    // -a (NAT with a port, TUN takes the vip port), -e, -d
    live.ok("-a -t 10.0.0.100:81 -r 10.0.0.12:8081 -m -w 5");
    live.ok("-a -t 10.0.0.100:81 -r 10.0.0.13:9999 -i -w 2");
    let rs13 = dest("10.0.0.13:81", "Tunnel", 2, 0, 0);
    assert_eq!(
        live.ok("-L -n"),
        listing(&format!(
            "{base}{svc81}{}{rs13}",
            dest("10.0.0.12:8081", "Masq", 5, 0, 0)
        ))
    );
    live.ok("-e -t 10.0.0.100:81 -r 10.0.0.12:8081 -m -w 0 -x 10 -y 5");
    assert_eq!(
        live.ok("-L -n"),
        listing(&format!(
            "{base}{svc81}{}{rs13}",
            dest("10.0.0.12:8081", "Masq", 0, 0, 0)
        ))
    );
    assert_eq!(
        live.ok("-L -n --thresholds -t 10.0.0.100:81"),
        concat!(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.100:81 sh persistent 300 mask 255.255.255.0\n",
            "  -> 10.0.0.12:8081               10         5          0          0         \n",
            "  -> 10.0.0.13:81                 0          0          0          0         \n",
        )
    );
    live.ok("-d -t 10.0.0.100:81 -r 10.0.0.13:81");
    assert_eq!(
        live.ok("-L -n"),
        listing(&format!(
            "{base}{svc81}{}",
            dest("10.0.0.12:8081", "Masq", 0, 0, 0)
        ))
    );

    // UDP services, then -D
    live.ok("-A -u 10.0.0.100:53 -s rr");
    live.ok("-a -u 10.0.0.100:53 -r 10.0.0.11 -m");
    let dns = format!(
        "UDP  10.0.0.100:53 rr\n{}",
        dest("10.0.0.11:53", "Masq", 1, 0, 0)
    );
    live.ok("-D -t 10.0.0.100:81");
    assert_eq!(live.ok("-L -n"), listing(&format!("{base}{dns}")));

    // Refused changes say why and change nothing.
    let before = live.ok("-S -n");
    for (args, message) in [
        ("-A -t 10.0.0.100:80", "Service already exists"),
        ("-E -t 10.0.0.100:81", "No such service"),
        ("-D -t 10.0.0.100:81", "No such service"),
        (
            "-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m",
            "Destination already exists",
        ),
        (
            "-e -t 10.0.0.100:80 -r 10.0.0.77:8080 -m",
            "No such destination",
        ),
        (
            "-d -t 10.0.0.100:80 -r 10.0.0.77:8080",
            "No such destination",
        ),
        ("-a -t 10.0.0.100:82 -r 10.0.0.11", "Service not defined"),
        ("-Z -t 10.0.0.100:82", "No such service"),
        (
            "-A -t 224.0.0.18:80",
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ),
    ] {
        assert_eq!(
            live.rvsadm(args),
            (255, String::new(), format!("{message}\n")),
            "{args}"
        );
    }
    assert_eq!(live.ok("-S -n"), before);

    // --set (0 keeps a value), -L --timeout
    live.ok("--set 100 20 30");
    assert_eq!(
        live.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 100 20 30\n"
    );
    live.ok("--set 0 0 45");
    assert_eq!(
        live.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 100 20 45\n"
    );

    // -L -c shows the connection the SYN made.
    let conns = live.ok("-L -n -c");
    let lines: Vec<&str> = conns.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "IPVS connection entries",
            "pro expire state       source             virtual            destination"
        ]
    );
    assert_eq!(lines.len(), 3, "{conns}");
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        [fields[0], fields[2], fields[3], fields[4], fields[5]],
        [
            "TCP",
            "SYN_RECV",
            "198.51.100.7:40001",
            "10.0.0.100:80",
            "10.0.0.11:8080"
        ],
        "{conns}"
    );

    // --stats, then -Z of one service: the listing restarts from zero, the connection stays.
    let syn_len = u64::from(u16::from_be_bytes([syn[16], syn[17]]));
    let stats_head = "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n";
    let stats_row = |what: &str, conns: u64, inpkts: u64, inbytes: u64| {
        format!(
            "{what:<33} {conns:>8} {inpkts:>8} {:>8} {inbytes:>8} {:>8}\n",
            0, 0
        )
    };
    assert_eq!(
        live.ok("-L -n --stats --exact -t 10.0.0.100:80"),
        format!(
            "{stats_head}{}{}",
            stats_row("TCP  10.0.0.100:80", 1, 1, syn_len),
            stats_row("  -> 10.0.0.11:8080", 1, 1, syn_len)
        )
    );
    live.ok("-Z -t 10.0.0.100:80");
    assert_eq!(
        live.ok("-L -n --stats --exact -t 10.0.0.100:80"),
        format!(
            "{stats_head}{}{}",
            stats_row("TCP  10.0.0.100:80", 0, 0, 0),
            stats_row("  -> 10.0.0.11:8080", 0, 0, 0)
        )
    );
    assert_eq!(live.ok("-L -n"), listing(&format!("{base}{dns}")));

    // -P, -G, -Q on a FULLNAT service
    live.ok("-A -t 10.0.0.100:8443 -s rr");
    live.ok("-P -t 10.0.0.100:8443 -z 10.0.0.200");
    live.ok("-a -t 10.0.0.100:8443 -r 10.0.0.13:443 -b");
    live.ok("-P -t 10.0.0.100:8443 -z 10.0.0.201");
    let title = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n";
    assert_eq!(
        live.ok("-G -t 10.0.0.100:8443"),
        format!(
            "{title}10.0.0.100:8443      2        \n{}{}",
            "                              10.0.0.200           0          0         \n",
            "                              10.0.0.201           0          0         \n",
        )
    );
    live.ok("-Q -t 10.0.0.100:8443 -z 10.0.0.200");
    assert_eq!(
        live.ok("-G -t 10.0.0.100:8443"),
        format!(
            "{title}10.0.0.100:8443      1        \n{}",
            "                              10.0.0.201           0          0         \n",
        )
    );
    assert_eq!(
        live.ok("-L -n -t 10.0.0.100:8443"),
        format!(
            "{HEADER}TCP  10.0.0.100:8443 rr\n{}",
            dest("10.0.0.13:443", "FullNat", 1, 0, 0)
        )
    );

    // --drops: every reason of every worker, zeros included.
    let drops = live.ok("--drops --exact");
    let mut want = String::from("Lcore      RxPkts  RxBytes   TxPkts  TxBytes    Drops\n");
    let rx_bytes = syn.len() + 60;
    let tx = live.output();
    let tx_bytes: usize = tx.iter().map(Vec::len).sum();
    for who in ["1       ", "total   "] {
        want += &format!(
            "{who}{:>9}{rx_bytes:>9}{:>9}{tx_bytes:>9}{:>9}\n",
            2,
            tx.len(),
            1
        );
    }
    want += "\nDrop reason               lcore 1    total\n";
    for reason in fastpath::verdict::DropReason::ALL {
        let n = u64::from(reason.as_str() == "no_service");
        want += &format!("{:<24}{n:>9}{n:>9}\n", reason.as_str());
    }
    assert_eq!(drops, want);

    // -C keeps the timeouts.
    live.ok("-C");
    assert_eq!(live.ok("-L -n"), listing(""));
    assert_eq!(
        live.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 100 20 45\n"
    );
    live.stop();
}

/// IPv6 services through rvsadm against a live rvsd: a NAT66 service is added and listed as
/// ipvsadm lists it; what the data path does not forward yet (a tunnel real of an IPv6
/// service, NAT64) gets the data path's sentence and leaves the configuration as it was.
#[test]
fn ipv6_services_through_rvsadm() {
    let body = NETWORK_BODY.replace(
        "\"10.0.0.201/32\"]",
        "\"10.0.0.201/32\", \"2001:db8::1/64\", \"2001:db8::100/128\"]",
    );
    let live = Live::start("", &format!("{body}{SERVICES}"), &[]);
    live.ok("-A -t [2001:db8::100]:80 -s rr");
    live.ok("-a -t [2001:db8::100]:80 -r [2001:db8::11]:8080 -m -w 2");
    let listing = live.ok("-L -n");
    assert!(
        listing.contains("TCP  [2001:db8::100]:80 rr\n  -> [2001:db8::11]:8080"),
        "{listing}"
    );
    let stats = live.ok("-L -n --stats");
    assert!(
        stats.contains("TCP  [2001:db8::100]:80") && stats.contains("  -> [2001:db8::11]:8080"),
        "{stats}"
    );
    let before = live.ok("-S -n");
    assert!(
        before.contains("-A -t [2001:db8::100]:80 -s rr\n-a -t [2001:db8::100]:80 -r [2001:db8::11]:8080 -m -w 2\n"),
        "{before}"
    );
    assert_eq!(
        live.rvsadm("-a -t [2001:db8::100]:80 -r 2001:db8::12 -i --tun-type gre"),
        (
            255,
            String::new(),
            "service tcp [2001:db8::100]:80: GUE and GRE tunnels to IPv6 reals are not forwarded yet; IPv6-in-IPv6 is (issue 14)\n"
                .to_string()
        )
    );
    let (code, _, err) = live.rvsadm_with(
        "-R",
        "-A -t [2001:db8::100]:443 -s rr\n-a -t [2001:db8::100]:443 -r 10.0.0.11:8443 -b\n",
    );
    assert_eq!(code, 255, "{err}");
    assert!(
        err.ends_with(
            "fullnat from IPv6 clients (6→6 and NAT64) is not forwarded yet (issue 14)\n"
        ),
        "{err}"
    );
    assert_eq!(live.ok("-S -n"), before);
}

#[test]
fn drops_of_two_workers_are_listed_by_reason() {
    // Worker 0 gets a frame for another MAC, worker 1 two datagrams for no service.
    let stray = padded(udp(FROM_ROUTER, Ip::new(C1, VIP), 5353, 9999, b"x"));
    let mut foreign = stray.clone();
    foreign[5] = 0x99;
    let body = NETWORK_BODY.replace("workers = [1]", "workers = [1, 2]");
    let live = Live::start_queues("", &body, &[vec![foreign], vec![stray.clone(), stray]]);
    let reasons = fastpath::verdict::DropReason::ALL;
    let mut table = String::from("Drop reason               lcore 1  lcore 2    total\n");
    for reason in reasons {
        let (a, b) = match reason.as_str() {
            "foreign_mac" => (1, 0),
            "no_service" => (0, 2),
            _ => (0, 0),
        };
        table += &format!("{:<24}{a:>9}{b:>9}{:>9}\n", reason.as_str(), a + b);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, _) = live.rvsadm("--drops");
        if code == 0 && out.contains("\ntotal           3") {
            let (_, drops) = out.split_once("\n\n").unwrap();
            assert_eq!(drops, table);
            break;
        }
        assert!(Instant::now() < deadline, "{out}\n{}", live.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    live.stop();
}

#[test]
fn concurrent_clients_get_correct_answers() {
    let live = Live::start("", NETWORK_BODY, &[]);
    const CLIENTS: u16 = 20;
    const ROUNDS: u16 = 5;
    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let live = &live;
            scope.spawn(move || {
                let port = 1000 + i;
                let vip = format!("10.0.0.100:{port}");
                let (rs1, rs2) = (format!("10.0.0.11:{port}"), format!("10.0.0.12:{port}"));
                let own = |w1: u32, w2: Option<u32>| {
                    let mut s = format!("{HEADER}TCP  {vip} wrr\n{}", dest(&rs1, "Masq", w1, 0, 0));
                    if let Some(w2) = w2 {
                        s += &dest(&rs2, "Masq", w2, 0, 0);
                    }
                    s
                };
                for round in 0..ROUNDS {
                    let w1 = u32::from(i) + 1;
                    let w2 = u32::from(round) + 1;
                    live.ok(&format!("-A -t {vip} -s wrr"));
                    live.ok(&format!("-a -t {vip} -r {rs1} -m -w {w1}"));
                    live.ok(&format!("-a -t {vip} -r {rs2} -m -w {w2}"));
                    assert_eq!(live.ok(&format!("-L -n -t {vip}")), own(w1, Some(w2)));
                    live.ok(&format!("-e -t {vip} -r {rs1} -m -w 0"));
                    assert_eq!(live.ok(&format!("-L -n -t {vip}")), own(0, Some(w2)));
                    live.ok(&format!("-d -t {vip} -r {rs2}"));
                    assert_eq!(live.ok(&format!("-L -n -t {vip}")), own(0, None));
                    // The whole listing is well formed whatever the others are doing.
                    let all = live.ok("-L -n");
                    let body = all
                        .strip_prefix(&format!("{VERSION_LINE}{HEADER}"))
                        .unwrap_or_else(|| panic!("{all}"));
                    assert!(body.contains(&format!("TCP  {vip} wrr\n")), "{all}");
                    for line in body.lines() {
                        assert!(
                            line.starts_with("TCP  10.0.0.100:1") && line.ends_with(" wrr")
                                || line.starts_with("  -> 10.0.0.1") && line.contains(" Masq    "),
                            "{line:?} in\n{all}"
                        );
                    }
                    if round + 1 < ROUNDS {
                        live.ok(&format!("-D -t {vip}"));
                    }
                }
            });
        }
    });
    let mut want = String::new();
    for i in 0..CLIENTS {
        let port = 1000 + i;
        want += &format!(
            "-A -t 10.0.0.100:{port} -s wrr\n-a -t 10.0.0.100:{port} -r 10.0.0.11:{port} -m -w 0\n"
        );
    }
    assert_eq!(live.ok("-S -n"), want);
    live.stop();
}

#[test]
fn malformed_and_oversized_requests_change_nothing() {
    let live = Live::start("", &format!("{NETWORK_BODY}{SERVICES}"), &[]);
    let before = live.ok("-S -n");
    let mut s = connect(&live);

    // Not JSON, not a request, another version: an error each, and the connection stays.
    s.write_all(&raw_frame(b"{nope")).unwrap();
    let (message, index) = error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap());
    assert!(message.starts_with("malformed message: "), "{message}");
    assert_eq!(index, None);
    s.write_all(&raw_frame(br#"{"version":1,"body":{"op":"fly"}}"#))
        .unwrap();
    let (message, _) = error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap());
    assert!(
        message.starts_with("malformed message: unknown variant `fly`"),
        "{message}"
    );
    s.write_all(&raw_frame(br#"{"version":2,"body":{"op":"clear"}}"#))
        .unwrap();
    assert_eq!(
        error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap()).0,
        "protocol version 2 is not supported (this side speaks version 1)"
    );
    s.write_all(&raw_frame(b"")).unwrap();
    let (message, _) = error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap());
    assert!(message.starts_with("malformed message: "), "{message}");

    // Well-formed requests that fail, alone or inside a batch, change nothing either.
    let bad_dest = Request::DelDest {
        service: key("10.0.0.100:80"),
        addr: "10.0.0.77:80".parse().unwrap(),
    };
    assert_eq!(
        error_of(call(&mut s, &bad_dest)),
        ("No such destination".to_owned(), None)
    );
    let batch = Request::Batch {
        requests: vec![
            Request::DelService {
                service: key("10.0.0.100:80"),
            },
            bad_dest,
            Request::Clear,
        ],
    };
    assert_eq!(error_of(call(&mut s, &batch)).1, Some(1));
    let nested = Request::Batch {
        requests: vec![Request::Clear, Request::Batch { requests: vec![] }],
    };
    error_of(call(&mut s, &nested));
    // The connection still answers.
    match call(&mut s, &Request::GetTimeouts) {
        Response::Timeouts { timeouts } => assert_eq!(timeouts.tcp, 900),
        other => panic!("{other:?}"),
    }

    // An oversized length prefix: an error reply, then the connection is closed.
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    assert_eq!(
        error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap()).0,
        format!(
            "message of {} bytes exceeds the limit of {} bytes",
            u32::MAX,
            proto::MAX_REQUEST
        )
    );
    assert_closed(&mut s);
    // Just above the limit, with a body following: the same.
    let mut s = connect(&live);
    let len = u32::try_from(proto::MAX_REQUEST + 1).unwrap();
    s.write_all(&len.to_be_bytes()).unwrap();
    let _ = s.write_all(&[b'{'; 4096]);
    assert!(error_of(proto::read_frame(&mut s, MAX_RESPONSE).unwrap())
        .0
        .starts_with(&format!("message of {len} bytes exceeds")));
    assert_closed(&mut s);

    assert_eq!(live.ok("-S -n"), before);
    live.stop();
}

#[test]
fn clients_that_vanish_or_stall_mid_request_harm_nothing() {
    let live = Live::start("", &format!("{NETWORK_BODY}{SERVICES}"), &[]);
    let before = live.ok("-S -n");
    let clear = proto::encode_frame(&Request::Clear).unwrap();
    // Gone inside the length prefix, inside the body, right after a complete length.
    for cut in [2, 4, clear.len() - 1] {
        let mut s = connect(&live);
        s.write_all(&clear[..cut]).unwrap();
        drop(s);
    }
    // Gone after a whole request without reading the answer (a listing: nothing to change).
    let mut s = connect(&live);
    proto::write_frame(&mut s, &Request::ListServices { service: None }).unwrap();
    drop(s);
    // Stalled inside a frame while others are served.
    let mut stalled = connect(&live);
    stalled.write_all(&clear[..clear.len() - 1]).unwrap();
    let started = Instant::now();
    assert_eq!(live.ok("-S -n"), before);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stalled);
    assert_eq!(live.ok("-S -n"), before);
    live.stop();
}

#[test]
fn the_socket_is_root_only_and_a_second_rvsd_is_refused() {
    let first = Live::start("", NETWORK_BODY, &[]);
    first.ok("-A -t 10.0.0.100:80 -s rr");
    let meta = std::fs::symlink_metadata(&first.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o7777, 0o600, "mode {:o}", meta.mode());
    assert_eq!((meta.uid(), meta.gid()), (0, 0));

    let path = first.socket.display().to_string();
    let second = Live::spawn(&format!("socket = \"{path}\"\n"), NETWORK_BODY, &[]);
    let (status, log) = second.wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "control socket {path}: {path} is in use: another rvsd is running (stop it or choose another [control] socket)"
        )),
        "{log}"
    );
    // The first one still serves, on the same socket file.
    let again = std::fs::symlink_metadata(&first.socket).unwrap();
    assert_eq!((again.dev(), again.ino()), (meta.dev(), meta.ino()));
    assert_eq!(first.ok("-S -n"), "-A -t 10.0.0.100:80 -s rr\n");
    let socket = first.socket.clone();
    first.stop();
    assert!(!socket.exists(), "a clean stop removes the socket");
}

#[test]
fn a_stale_socket_left_by_a_crash_is_replaced() {
    let dir = common::scratch();
    let path = dir.path().join("run/rvsd.sock");
    let control = format!("socket = \"{}\"\n", path.display());
    let crashed = Live::start(&control, NETWORK_BODY, &[]);
    crashed.kill();
    assert!(path.exists(), "SIGKILL leaves the socket file");
    let live = Live::start(&control, NETWORK_BODY, &[]);
    assert_eq!(live.ok("-L -n"), listing(""));
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    live.stop();
}
