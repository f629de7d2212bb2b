//! The Prometheus endpoint of a running rvsd (`[control] prometheus`): a NAT connection and
//! two dropped packets replayed on `net_pcap`, then `/metrics` fetched with a plain
//! `TcpStream` and compared with what was sent, with `rvsadm` and with `--stats-json`; and the
//! endpoint's behaviour under clients that stall, stay silent or come all at once.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::live::Live;
use fixtures::packet::{padded, tcp, udp, Eth, Ip};
use fixtures::topo::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const RS1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const RS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

fn config() -> String {
    format!(
        r#"
[dataplane]
workers = [1]
conn_table_size = 4096
{NETWORK}
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "dpdk0"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "rr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
"#
    )
}

/// A localhost port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The IPv4 total length of an Ethernet frame (what IPVS counts as bytes).
fn ip_len(frame: &[u8]) -> u64 {
    u64::from(u16::from_be_bytes([frame[16], frame[17]]))
}

/// One HTTP exchange: the status line, the headers and the body.
fn http(addr: SocketAddr, request: &str) -> (String, Vec<String>, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n").map(str::to_owned);
    let status = lines.next().unwrap();
    (status, lines.collect(), body.to_owned())
}

/// `GET /metrics`, checked for status and headers; the samples by series, after checking that
/// every family has its HELP and TYPE lines before its samples.
fn scrape(addr: SocketAddr) -> BTreeMap<String, u64> {
    let (status, headers, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        headers,
        [
            "Content-Type: text/plain; version=0.0.4; charset=utf-8".to_owned(),
            format!("Content-Length: {}", body.len()),
            "Connection: close".to_owned(),
        ]
    );
    let mut typed = Vec::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            typed.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(
                !typed.iter().any(|t| rest.starts_with(t.as_str())),
                "{line}"
            );
        } else {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let name = series.split('{').next().unwrap();
            assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
            let previous = samples.insert(series.to_owned(), value.parse().expect("an integer"));
            assert_eq!(previous, None, "{series} twice");
        }
    }
    samples
}

#[test]
fn metrics_of_a_live_rvsd_match_the_traffic_rvsadm_and_stats_json() {
    let (cport, vport, rport) = (40001, 80, 8080);
    let seg = segments();
    let client_ip = Ip::new(C1, VIP).ttl(CLIENT_TTL);
    let syn = padded(tcp(
        FROM_ROUTER,
        client_ip,
        seg.syn.ports(cport, vport),
        b"",
    ));
    let syn_ack = padded(tcp(
        Eth {
            src: RS1_MAC,
            dst: PORT_MAC,
        },
        Ip::new(RS1, C1),
        seg.syn_ack.ports(rport, cport),
        b"",
    ));
    let ack = padded(tcp(
        FROM_ROUTER,
        client_ip,
        seg.ack.ports(cport, vport),
        b"",
    ));
    let foreign = padded(tcp(
        Eth {
            src: ROUTER_MAC,
            dst: [0x02, 0, 0, 0, 0, 0x99],
        },
        client_ip,
        seg.syn.ports(cport + 1, vport),
        b"",
    ));
    let no_service = padded(udp(FROM_ROUTER, client_ip, 5353, 9999, b"hello"));
    let input = vec![
        syn.clone(),
        syn_ack.clone(),
        ack.clone(),
        foreign.clone(),
        no_service.clone(),
    ];

    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let live = Live::start(&format!("prometheus = \"{addr}\"\n"), &config(), &input);
    let w = r#"worker="0",lcore="1""#;
    let rx = format!("rvs_worker_rx_packets_total{{{w}}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = scrape(addr);
        if m.get(&rx) == Some(&5) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "rx never reached 5: {m:?}\n{}",
            live.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    let len = |f: &Vec<u8>| f.len() as u64;
    let announcements: u64 = announcements().iter().map(len).sum();
    let forwarded = [&syn, &syn_ack, &ack];
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut put = |series: String, value: u64| {
        expected.insert(series, value);
    };
    put(rx, 5);
    put(
        format!("rvs_worker_rx_bytes_total{{{w}}}"),
        input.iter().map(len).sum(),
    );
    put(format!("rvs_worker_tx_packets_total{{{w}}}"), 2 + 3);
    put(
        format!("rvs_worker_tx_bytes_total{{{w}}}"),
        announcements + forwarded.iter().map(|f| len(f)).sum::<u64>(),
    );
    put(format!("rvs_worker_handed_over_total{{{w}}}"), 0);
    put(format!("rvs_worker_idle_sleeps_total{{{w}}}"), 0);
    for reason in fastpath::verdict::DropReason::ALL {
        let n = match reason.as_str() {
            "foreign_mac" | "no_service" => 1,
            _ => 0,
        };
        put(
            format!(
                "rvs_worker_drops_total{{{w},reason=\"{}\"}}",
                reason.as_str()
            ),
            n,
        );
    }
    let service = r#"proto="tcp",vip="10.0.0.100:80""#;
    let real = format!(r#"{service},real="10.0.0.11:8080""#);
    for (what, labels) in [("service", service), ("real", real.as_str())] {
        put(format!("rvs_{what}_conns_total{{{labels}}}"), 1);
        put(format!("rvs_{what}_inpkts_total{{{labels}}}"), 2);
        put(format!("rvs_{what}_outpkts_total{{{labels}}}"), 1);
        put(
            format!("rvs_{what}_inbytes_total{{{labels}}}"),
            ip_len(&syn) + ip_len(&ack),
        );
        put(
            format!("rvs_{what}_outbytes_total{{{labels}}}"),
            ip_len(&syn_ack),
        );
    }
    put(format!("rvs_real_activeconns{{{real}}}"), 1);
    put(format!("rvs_real_inactconns{{{real}}}"), 0);
    put(format!("rvs_real_persistconns{{{real}}}"), 0);
    // No sync daemon: every sync series is there, at zero.
    for (family, label, values) in [
        (
            "messages",
            "direction",
            &["sent", "received", "send_error"][..],
        ),
        ("conns", "direction", &["sent", "received"][..]),
        ("lost", "where", &["outbox", "to_master", "to_worker"][..]),
        ("installed", "outcome", &["new", "updated", "ignored"][..]),
    ] {
        for v in values {
            put(format!("rvs_sync_{family}_total{{{label}=\"{v}\"}}"), 0);
        }
    }
    let reasons = fastpath::sync::MessageError::REASONS
        .into_iter()
        .chain(fastpath::sync::EntryError::REASONS)
        .chain(fastpath::pipeline::SyncRefused::ALL.map(|r| r.reason()));
    for reason in reasons {
        put(format!("rvs_sync_errors_total{{reason=\"{reason}\"}}"), 0);
    }
    assert_eq!(metrics, expected, "log:\n{}", live.log());

    // The same numbers as rvsadm's listing.
    assert_eq!(
        live.ok("-L -n --stats --exact"),
        format!(
            concat!(
                "IP Virtual Server version 1.2.1 (size=4096)\n",
                "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
                "  -> RemoteAddress:Port\n",
                "TCP  10.0.0.100:80                       1        2        1      {in_b:>3}       {out_b:>2}\n",
                "  -> 10.0.0.11:8080                      1        2        1      {in_b:>3}       {out_b:>2}\n",
            ),
            in_b = ip_len(&syn) + ip_len(&ack),
            out_b = ip_len(&syn_ack)
        )
    );

    // -Z zeroes the listing, not the counters (they never go backwards); services added and
    // deleted live come and go.
    live.ok("-Z");
    live.ok("-A -u 10.0.0.100:53 -s rr");
    live.ok("-a -u 10.0.0.100:53 -r 10.0.0.11 -m -w 2");
    let after = scrape(addr);
    assert_eq!(
        after.get(&format!("rvs_real_inpkts_total{{{real}}}")),
        Some(&2)
    );
    let dns = r#"proto="udp",vip="10.0.0.100:53""#;
    assert_eq!(
        after.get(&format!("rvs_service_conns_total{{{dns}}}")),
        Some(&0)
    );
    assert_eq!(
        after.get(&format!(
            "rvs_real_inactconns{{{dns},real=\"10.0.0.11:53\"}}"
        )),
        Some(&0)
    );
    assert_eq!(after.len(), expected.len() + 5 + 8);
    live.ok("-D -t 10.0.0.100:80");
    let after = scrape(addr);
    assert!(!after.keys().any(|k| k.contains(service)), "{after:?}");

    // Anything but GET /metrics, and garbage, are refused; the endpoint keeps serving.
    let (status, _, _) = http(addr, "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, headers, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains(&"Allow: GET".to_owned()), "{headers:?}");
    let (status, _, _) = http(addr, "\u{1}\u{2}junk\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metr").unwrap();
    drop(half);
    let counters_before_stop = scrape(addr);

    let stats = live.stop();
    assert_eq!(
        stats["rx_packets"],
        counters_before_stop[&format!("rvs_worker_rx_packets_total{{{w}}}")]
    );
    assert_eq!(stats["tx_packets"], 5);
    assert_eq!(stats["drops"]["foreign_mac"], 1);
    assert_eq!(stats["drops"]["no_service"], 1);
    // The endpoint went away with rvsd.
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_busy_prometheus_address_stops_rvsd_with_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let live = Live::spawn(
        &format!("prometheus = \"{addr}\"\n"),
        &format!("{NETWORK}\n"),
        &[],
    );
    let socket = live.socket.clone();
    let (status, log) = live.wait();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "prometheus endpoint {addr}: Address already in use"
        )),
        "{log}"
    );
    assert!(!socket.exists(), "the control socket was left behind");
}

/// How long the endpoint gives a client to send its request head (`metrics::IO_TIMEOUT`).
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// An idle rvsd serving `/metrics`, once the endpoint accepts connections (it starts just
/// after the control socket).
fn idle_endpoint() -> (Live, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let live = Live::start(&format!("prometheus = \"{addr}\"\n"), &config(), &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "no endpoint:\n{}", live.log());
        thread::sleep(Duration::from_millis(20));
    }
    (live, addr)
}

/// Waits until two scrapes 200 ms apart agree: the worker's gratuitous ARPs at start are sent
/// and published, so an idle rvsd's counters stay still from then on.
fn settle(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = scrape(addr);
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = scrape(addr);
        if now == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "counters of an idle rvsd never settled"
        );
        last = now;
    }
}

/// Reads until the server closes, for at most `limit`: what it sent and when it closed
/// (`None` if it did not close in time).
fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (got, None);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return (got, Some(started.elapsed())),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, Some(started.elapsed()))
            }
            Err(_) => return (got, None),
        }
    }
}

#[test]
fn half_sent_requests_do_not_starve_a_scrape() {
    let (live, addr) = idle_endpoint();
    // The old one-at-a-time endpoint gave each stalled client two seconds, so a scrape behind
    // 100 of them waited over three minutes; there are more of them than the endpoint serves
    // at once (64), so some must make room for the others and for the scrape.
    let mut stalled: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HT").unwrap();
            s
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (answer, closed) = until_closed(&mut s, Duration::from_secs(2));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        closed.is_some() && answer.starts_with("HTTP/1.1 200 OK\r\n"),
        "no answer within 2 s behind {} stalled clients (after {:?}): {answer:?}\n{}",
        stalled.len(),
        started.elapsed(),
        live.log()
    );
    assert!(answer.contains("\nrvs_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} 0\n"));
    // The stalled clients are cut at the head deadline, unanswered.
    for s in &mut stalled {
        let (got, closed) = until_closed(s, HEAD_TIMEOUT + Duration::from_secs(3));
        assert_eq!(
            String::from_utf8_lossy(&got),
            "",
            "a stalled client was answered"
        );
        assert!(closed.is_some(), "a stalled client was never disconnected");
    }
    live.stop();
}

#[test]
fn a_silent_client_is_disconnected_after_the_head_timeout() {
    let (live, addr) = idle_endpoint();
    let mut silent = TcpStream::connect(addr).unwrap();
    let (got, closed) = until_closed(&mut silent, HEAD_TIMEOUT + Duration::from_secs(5));
    assert_eq!(got, b"", "a silent client got an answer");
    let closed = closed.expect("a silent client was never disconnected");
    assert!(
        closed >= HEAD_TIMEOUT - Duration::from_millis(100)
            && closed < HEAD_TIMEOUT + Duration::from_secs(1),
        "disconnected after {closed:?}"
    );
    live.stop();
}

#[test]
fn concurrent_scrapes_are_all_answered() {
    let (live, addr) = idle_endpoint();
    settle(addr);
    let started = Instant::now();
    let scrapes: Vec<_> = (0..32)
        .map(|_| thread::spawn(move || scrape(addr)))
        .collect();
    let answers: Vec<BTreeMap<String, u64>> = scrapes
        .into_iter()
        .map(|t| t.join().expect("a scrape failed"))
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let rx = r#"rvs_worker_rx_packets_total{worker="0",lcore="1"}"#;
    for a in &answers {
        assert_eq!(a.get(rx), Some(&0));
        assert_eq!(a, &answers[0]);
    }
    live.stop();
}
