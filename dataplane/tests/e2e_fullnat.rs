//! FULLNAT with real TCP: the real servers sit on their own subnet with no route to the
//! client (see `common::lvs`), and learn the client's address from the PROXY protocol
//! (stock nginx) or from TOA (seen in a capture on the real server).

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Backend, Mode, Options, CIP, LIP, VIP};
use std::collections::{BTreeMap, BTreeSet};

/// One test at a time: each runs rvsd's busy-polling workers on the two CPUs.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The TCP segment of a captured Ethernet frame; `None` for anything else.
struct Segment {
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    seq: u32,
    flags: u8,
    options: Vec<u8>,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn segment(frame: &[u8]) -> Option<Segment> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let t = frame.get(14 + ihl..)?;
    let doff = usize::from(t.get(12)? >> 4) * 4;
    let ip =
        |at: usize| std::net::Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    let port = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    Some(Segment {
        src: std::net::SocketAddrV4::new(ip(26), port(0)),
        dst: std::net::SocketAddrV4::new(ip(30), port(2)),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        flags: t[13],
        options: t.get(20..doff)?.to_vec(),
    })
}

/// The TCP options of a segment as (kind, data), NOPs skipped, stopping at EOL.
fn options(area: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < area.len() {
        match area[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = usize::from(*area.get(i + 1).unwrap_or(&2)).max(2);
                out.push((kind, area[i + 2..(i + len).min(area.len())].to_vec()));
                i += len;
            }
        }
    }
    out
}

fn mss(area: &[u8]) -> Option<u16> {
    options(area)
        .into_iter()
        .find(|(k, d)| *k == 2 && d.len() == 2)
        .map(|(_, d)| u16::from_be_bytes([d[0], d[1]]))
}

/// With `proxy_protocol = version` on the service, nginx on every real server (`listen ...
/// proxy_protocol`) logs the true client address for each of 1000 requests, while the
/// connection itself comes from the balancer's local address.
fn nginx_logs_the_client_through_the_proxy_protocol(version: &str) {
    let _serial = serial();
    let mut options = Options::new(Mode::FullNat, &[1, 1, 1], "rr", 1);
    options.service_options = format!("proxy_protocol = \"{version}\"\n");
    options.backend = Backend::NginxProxyProtocol;
    let mut lvs = lvs::start_opts(&options);
    let split = lvs.fetch(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    let mut logged = 0;
    for (i, log) in lvs.access_logs.iter().enumerate() {
        let text = std::fs::read_to_string(log).expect("access log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            split[&format!("rs{i}")],
            "rs{i} logs each request it answered: {split:?}"
        );
        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 6, "{line}");
            assert_eq!(f[0], CIP.to_string(), "PROXY source = the client: {line}");
            assert!(
                f[1].parse::<u16>().is_ok_and(|p| p >= 1024),
                "PROXY source port = the client's ephemeral port: {line}"
            );
            assert_eq!(
                (f[2], f[3]),
                (VIP.to_string().as_str(), "80"),
                "PROXY destination = the virtual service: {line}"
            );
            assert_eq!(
                f[4],
                LIP.to_string(),
                "the TCP peer is the local address: {line}"
            );
            assert!(
                f[5].parse::<u16>().is_ok_and(|p| p >= 1025),
                "a local port of the pool: {line}"
            );
        }
        logged += lines.len();
    }
    assert_eq!(logged, 1000);
    let n = |key: &str| stats[key].as_u64().unwrap();
    assert!(
        n("proxy_inserted") >= 1000,
        "a header per connection: {stats}"
    );
    assert_eq!((n("toa_inserted"), n("toa_no_room")), (0, 0), "{stats}");
    assert_eq!(stats["drops"]["proxy_no_room"], 0, "{stats}");
}

#[test]
fn fullnat_proxy_protocol_v2_nginx_logs_the_client_for_1000_requests() {
    nginx_logs_the_client_through_the_proxy_protocol("v2");
}

#[test]
fn fullnat_proxy_protocol_v1_nginx_logs_the_client_for_1000_requests() {
    nginx_logs_the_client_through_the_proxy_protocol("v1");
}

/// TOA (the default for a FULLNAT TCP service): captures on the client and on both real
/// servers show, for every connection, the SYN reaching the real server without
/// timestamps and without TOA, the first ACK after the handshake carrying option 254,
/// length 8, the client's port and 10.0.0.2, and the client seeing the real server's MSS
/// lowered by 8.
#[test]
fn fullnat_toa_carries_the_client_on_the_first_ack() {
    let _serial = serial();
    const CONNECTIONS: usize = 200;
    let mut lvs = lvs::start(Mode::FullNat, &[1, 1], "rr", 1);
    let client = lvs.client.clone();
    let client_if = lvs.client_if.clone();
    let client_cap = lvs
        .topo
        .capture(&client, &client_if, &["tcp", "port", "80"]);
    let real_caps: Vec<_> = lvs
        .reals
        .clone()
        .iter()
        .zip(lvs.real_ifs.clone())
        .map(|((ns, _), iface)| lvs.topo.capture(ns, &iface, &["tcp", "port", "8080"]))
        .collect();
    let split = lvs.fetch(CONNECTIONS);
    let client_frames = lvs.topo.stop_capture(client_cap);
    let real_frames: Vec<Vec<Vec<u8>>> = real_caps
        .into_iter()
        .map(|c| lvs.topo.stop_capture(c))
        .collect();
    let stats = lvs.stop();
    assert_eq!(split.get("").copied().unwrap_or(0), 0, "{split:?}");
    assert_eq!(split["rs0"] + split["rs1"], CONNECTIONS);

    // The client's side: its connections (port and ISN: a port may serve two connections
    // in turn), and the MSS it was told.
    let mut client_conns = BTreeSet::new();
    let mut syn_acks = 0;
    for s in client_frames.iter().filter_map(|f| segment(f)) {
        if s.flags & (SYN | ACK) == SYN && s.src.ip() == &CIP {
            client_conns.insert((s.src.port(), s.seq));
        }
        if s.flags & (SYN | ACK) == SYN | ACK && s.src.ip() == &VIP {
            assert_eq!(
                mss(&s.options),
                Some(1460 - 8),
                "the client's MSS is lowered by 8"
            );
            assert!(
                options(&s.options).iter().all(|(k, _)| *k != 8),
                "no timestamps negotiated"
            );
            syn_acks += 1;
        }
    }
    assert_eq!(client_conns.len(), CONNECTIONS, "{client_conns:?}");
    assert!(syn_acks >= CONNECTIONS);
    let mut client_ports = BTreeMap::new();
    for (port, _) in &client_conns {
        *client_ports.entry(*port).or_insert(0) += 1;
    }

    // The real servers' side, per local port (one connection each).
    let mut toa_ports = BTreeMap::new();
    let mut toa_segments = 0u64;
    let mut conns = 0;
    for (i, frames) in real_frames.iter().enumerate() {
        let mut by_lport: BTreeMap<u16, Vec<Segment>> = BTreeMap::new();
        for s in frames.iter().filter_map(|f| segment(f)) {
            if s.src.ip() == &LIP {
                by_lport.entry(s.src.port()).or_default().push(s);
            } else {
                assert_eq!(
                    s.dst.ip(),
                    &LIP,
                    "the real server talks to the local address only"
                );
                if s.flags & (SYN | ACK) == SYN | ACK {
                    assert_eq!(mss(&s.options), Some(1460), "rs{i} announces 1460");
                }
            }
        }
        assert_eq!(
            by_lport.len(),
            split[&format!("rs{i}")],
            "rs{i} connections"
        );
        for (lport, segments) in &by_lport {
            let syn = &segments[0];
            assert_eq!(
                syn.flags & (SYN | ACK),
                SYN,
                "lport {lport} starts with its SYN"
            );
            let syn_options = options(&syn.options);
            assert!(
                syn_options.iter().all(|(k, _)| *k != 8 && *k != 254),
                "lport {lport}: the SYN has no timestamps (NOPs instead) and no TOA: {:?}",
                syn.options
            );
            assert!(
                syn.options.windows(10).any(|w| w == [1; 10]),
                "the timestamps' ten NOPs: {:?}",
                syn.options
            );
            let first_ack = segments
                .iter()
                .find(|s| s.flags & (SYN | ACK) == ACK)
                .unwrap_or_else(|| panic!("lport {lport}: no ACK"));
            assert_eq!(
                first_ack.options.len(),
                8,
                "only TOA: {:?}",
                first_ack.options
            );
            assert_eq!(&first_ack.options[..2], &[254, 8], "kind 254, length 8");
            assert_eq!(
                &first_ack.options[4..],
                &CIP.octets(),
                "the client's address"
            );
            let port = u16::from_be_bytes([first_ack.options[2], first_ack.options[3]]);
            *toa_ports.entry(port).or_insert(0) += 1;
            toa_segments += segments
                .iter()
                .filter(|s| s.options.starts_with(&[254, 8]))
                .count() as u64;
            conns += 1;
        }
    }
    assert_eq!(conns, CONNECTIONS);
    assert_eq!(
        toa_ports, client_ports,
        "TOA carries each connection's client port (port: connections)"
    );
    assert_eq!(
        stats["toa_inserted"].as_u64(),
        Some(toa_segments),
        "every TOA rvs counted reached a real server: {stats}"
    );
    assert_eq!(stats["toa_no_room"], 0, "{stats}");
}

/// Two workers: a FULLNAT reply comes back to the local address on whichever queue the
/// kernel's fanout picks, and reaches the worker that owns its local port.
#[test]
fn fullnat_two_workers_hand_replies_to_the_owner() {
    let _serial = serial();
    let mut lvs = lvs::start(Mode::FullNat, &[1, 1, 1], "rr", 2);
    let split = lvs.fetch(1000);
    let stats = lvs.stop();
    assert_eq!(
        split.get("").copied().unwrap_or(0),
        0,
        "every request succeeds: {split:?}\n{}",
        lvs.topo.log()
    );
    assert_eq!(split.values().sum::<usize>(), 1000);
    assert!(split.len() == 3, "all three real servers answer: {split:?}");
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for (w, worker) in workers.iter().enumerate() {
        assert!(
            worker["handed_over"].as_u64().unwrap() > 0,
            "worker {w} handed packets over: {stats}"
        );
    }
    assert_eq!(stats["drops"]["redirect_full"], 0, "{stats}");
    assert_eq!(stats["drops"]["laddr_exhausted"], 0, "{stats}");
    assert_eq!(stats["services"][0]["conns"], 1000, "{stats}");
    assert!(stats["toa_inserted"].as_u64().unwrap() >= 1000, "{stats}");
    // A local port per connection in the tables (none expired yet; a client port used
    // again replaced its TIME_WAIT connection, which gave its local port back), over both
    // workers' shares, no conflict.
    let live: u64 = stats["services"][0]["reals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["active"].as_u64().unwrap() + r["inactive"].as_u64().unwrap())
        .sum();
    assert_eq!(
        stats["services"][0]["laddrs"],
        serde_json::json!([{"addr": LIP.to_string(), "conns": live, "conflicts": 0}]),
        "{stats}"
    );
}
