//! Connection sync between two directors through the pure pipeline: director A runs a sync
//! master, B installs what A sends (through the wire codec, as the sync threads do), and
//! then forwards the connections' next packets exactly as A would have: same real server,
//! same bytes, both directions. Without the install (the negative control) B drops them.

mod fixtures;

use fastpath::conn::SyncRules;
use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::{Pipeline, SyncInstalled, SyncRefused};
use fastpath::snapshot::{Snapshot, SyncState};
use fastpath::sync::{decode, MessageBuilder, SyncConn};
use fastpath::verdict::{DropReason, Verdict};
use fixtures::packet::{padded, tcp, udp, Ip, Mac, Tcp};
use fixtures::topo::{self, from, segments, CLIENT_TTL, FROM_ROUTER, HTTP_REQUEST, VIP};
use fixtures::{nat, pure};
use std::net::Ipv4Addr;

const MASTER: SyncState = SyncState {
    master: true,
    backup_only: false,
    rules: SyncRules {
        threshold: 3,
        period: 50,
    },
};

fn director(master: bool) -> (Snapshot, Pipeline) {
    let body = nat::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let snapshot = if master {
        snapshot.with_sync(MASTER)
    } else {
        snapshot
    };
    let pipeline = pure::pipeline(&body, &snapshot);
    (snapshot, pipeline)
}

/// The verdict and the frame as it leaves.
fn send(p: &mut Pipeline, s: &Snapshot, input: &[u8], now: u64) -> (Verdict, Vec<u8>) {
    let mut frame = VecFrame::new(input);
    let verdict = p.packet(s, 0, &mut frame, now);
    (verdict, frame.data().to_vec())
}

fn client_in(client: Ipv4Addr, cport: u16, vport: u16, t: Tcp, data: &[u8]) -> Vec<u8> {
    let ip = Ip::new(client, VIP).ttl(CLIENT_TTL);
    padded(tcp(FROM_ROUTER, ip, t.ports(cport, vport), data))
}

fn real_out(real: Ipv4Addr, mac: Mac, rport: u16, client: Ipv4Addr, cport: u16, t: Tcp) -> Vec<u8> {
    let ip = Ip::new(real, client).id(0x5678);
    padded(tcp(from(mac), ip, t.ports(rport, cport), b""))
}

/// The real server a frame A sent goes to (its destination IPv4 address) and its MAC.
fn real_of(frame: &[u8]) -> (Ipv4Addr, Mac) {
    let ip = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
    (ip, frame[..6].try_into().expect("a MAC"))
}

/// What a master's records look like on a backup: packed into messages and decoded.
fn over_the_wire(records: &[SyncConn], syncid: u8) -> Vec<SyncConn> {
    let mut message = MessageBuilder::new(syncid, 1472);
    let mut datagrams = Vec::new();
    for r in records {
        if message.push(r).is_err() {
            datagrams.push(message.take());
            message.push(r).expect("fits an empty message");
        }
    }
    datagrams.push(message.take());
    datagrams
        .iter()
        .flat_map(|d| {
            decode(d, 0)
                .expect("a valid message")
                .map(|e| e.expect("a valid entry"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Three clients open connections through A; A records each once it has had three inbound
/// packets (SYN, ACK, request); B installs them and forwards the next client segment and the
/// real server's reply byte for byte as A does.
#[test]
fn a_backup_forwards_the_masters_nat_connections_as_the_master_does() {
    let (sa, mut a) = director(true);
    let (sb, mut b) = director(false);
    let s = segments();
    let clients = [(topo::C1, 40001u16), (topo::C2, 40002), (topo::C3, 40003)];
    let mut reals = Vec::new();
    let mut records: Vec<SyncConn> = Vec::new();
    for (i, &(client, cport)) in clients.iter().enumerate() {
        let now = i as u64 * 10;
        let (v, syn) = send(&mut a, &sa, &client_in(client, cport, 80, s.syn, b""), now);
        assert_eq!(v, Verdict::Tx { port: 0 });
        let (rip, mac) = real_of(&syn);
        reals.push((rip, mac));
        assert!(!a.has_sync(), "SYN_RECV is not synced");
        let (v, _) = send(
            &mut a,
            &sa,
            &real_out(rip, mac, 8080, client, cport, s.syn_ack),
            now,
        );
        assert_eq!(v, Verdict::Tx { port: 0 });
        send(&mut a, &sa, &client_in(client, cport, 80, s.ack, b""), now);
        assert!(!a.has_sync(), "second inbound packet");
        send(
            &mut a,
            &sa,
            &client_in(client, cport, 80, s.request, HTTP_REQUEST),
            now,
        );
        assert!(a.has_sync(), "third inbound packet of {client}");
        records.extend(a.take_sync());
        assert_eq!(records.len(), i + 1);
    }
    let used: std::collections::BTreeSet<_> = reals.iter().map(|r| r.0).collect();
    assert_eq!(used.len(), 2, "rr over RS1 and RS2: {reals:?}");
    for (r, (&(client, cport), &(rip, _))) in records.iter().zip(clients.iter().zip(&reals)) {
        assert_eq!(
            (r.protocol, r.flags, r.state, r.caddr, r.cport, r.vaddr, r.vport, r.daddr, r.dport),
            (6, 0, 1, client, cport, VIP, 80, rip, 8080),
            "MASQ, ESTABLISHED, active"
        );
        assert_eq!(r.timeout, 900);
        assert_eq!((r.fwmark, r.seq, r.fullnat), (0, None, None));
    }

    // Negative control: B knows nothing yet.
    let (client, cport) = clients[0];
    let fin = client_in(client, cport, 80, s.client_fin, b"");
    assert_eq!(
        send(&mut b, &sb, &fin, 100).0,
        Verdict::Drop(DropReason::NoConn)
    );

    for r in over_the_wire(&records, 0) {
        assert_eq!(b.install_synced(&sb, &r, 100), Ok(SyncInstalled::New));
    }
    assert_eq!(b.conns(), 3);
    let listed: Vec<_> = b
        .conn_entries(100)
        .into_iter()
        .map(|c| (c.state, c.expire))
        .collect();
    assert_eq!(listed, vec![("ESTABLISHED".to_owned(), 900); 3]);
    for (&(client, cport), &(rip, mac)) in clients.iter().zip(&reals) {
        let fin = client_in(client, cport, 80, s.client_fin, b"");
        assert_eq!(send(&mut b, &sb, &fin, 200), send(&mut a, &sa, &fin, 200));
        let reply = real_out(rip, mac, 8080, client, cport, s.server_ack_fin);
        let on_b = send(&mut b, &sb, &reply, 200);
        assert_eq!(on_b.0, Verdict::Tx { port: 0 });
        assert_eq!(on_b, send(&mut a, &sa, &reply, 200));
    }
    // A sends the move into a closing state at once: the update B would get.
    let closing: Vec<SyncConn> = a.take_sync().collect();
    assert_eq!(closing.len(), 3);
    let states: Vec<_> = closing.iter().map(|r| (r.state, r.timeout)).collect();
    assert_eq!(states, [(7, 60); 3], "CLOSE_WAIT after the client's FIN");
}

/// A repeated record refreshes (state, timeout); one for another real server replaces the
/// connection unless it is INACTIVE (ignored, as the kernel does); records B cannot place are
/// refused with their reason.
#[test]
fn backup_updates_replaces_and_refuses() {
    let (sb, mut b) = director(false);
    let base = SyncConn {
        protocol: 6,
        flags: 0,
        state: 1,
        cport: 40001,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: topo::C1,
        vaddr: VIP,
        daddr: nat::RS1,
        seq: None,
        fullnat: None,
    };
    assert_eq!(b.install_synced(&sb, &base, 0), Ok(SyncInstalled::New));
    let fin_wait = SyncConn {
        state: 4,
        timeout: 120,
        flags: fastpath::sync::wire::CONN_F_INACTIVE,
        ..base
    };
    assert_eq!(
        b.install_synced(&sb, &fin_wait, 1000),
        Ok(SyncInstalled::Updated)
    );
    let c = &b.conn_entries(1000)[0];
    assert_eq!((c.state.as_str(), c.expire), ("FIN_WAIT", 120));
    let moved = SyncConn {
        daddr: nat::RS2,
        ..fin_wait
    };
    assert_eq!(
        b.install_synced(&sb, &moved, 1000),
        Ok(SyncInstalled::Ignored)
    );
    let moved = SyncConn { flags: 0, ..moved };
    assert_eq!(b.install_synced(&sb, &moved, 1000), Ok(SyncInstalled::New));
    let listed: Vec<_> = b.conn_entries(1000).into_iter().map(|c| c.dest).collect();
    assert_eq!(listed, [std::net::SocketAddr::from((nat::RS2, 8080))]);

    for (record, reason) in [
        (
            SyncConn {
                protocol: 132,
                ..base
            },
            SyncRefused::Protocol,
        ),
        (SyncConn { state: 11, ..base }, SyncRefused::State),
        (SyncConn { vport: 81, ..base }, SyncRefused::NoService),
        (SyncConn { fwmark: 7, ..base }, SyncRefused::NoService),
        (
            SyncConn {
                daddr: Ipv4Addr::new(10, 0, 0, 99),
                ..base
            },
            SyncRefused::NoDest,
        ),
    ] {
        assert_eq!(b.install_synced(&sb, &record, 0), Err(reason), "{record:?}");
    }
}

/// A persistent service: A sends the template after the connection it controls; on B the
/// client's next connection (another port, a SYN) goes to the template's real server even
/// when the scheduler would pick another.
#[test]
fn persistence_templates_go_with_their_connections() {
    let (sa, mut a) = director(true);
    let (sb, mut b) = director(false);
    let s = segments();
    let client = topo::C1;
    let (_, syn) = send(&mut a, &sa, &client_in(client, 41000, 443, s.syn, b""), 0);
    let (rip, mac) = real_of(&syn);
    send(
        &mut a,
        &sa,
        &real_out(rip, mac, 443, client, 41000, s.syn_ack),
        0,
    );
    send(&mut a, &sa, &client_in(client, 41000, 443, s.ack, b""), 0);
    send(
        &mut a,
        &sa,
        &client_in(client, 41000, 443, s.request, HTTP_REQUEST),
        0,
    );
    let records: Vec<SyncConn> = a.take_sync().collect();
    assert_eq!(records.len(), 2, "the connection, then its template");
    let t = records[1];
    assert_eq!(
        (
            t.flags & fastpath::sync::wire::CONN_F_TEMPLATE != 0,
            t.cport,
            t.caddr,
            t.vport,
            t.daddr,
            t.timeout
        ),
        (true, 0, Ipv4Addr::new(198, 51, 100, 0), 443, rip, 600)
    );
    // B's scheduler state differs: its rr would start with the first real.
    let (_, probe) = send(&mut b, &sb, &client_in(topo::C3, 41001, 443, s.syn, b""), 0);
    let other = if real_of(&probe).0 == nat::RS1 {
        nat::RS2
    } else {
        nat::RS1
    };
    assert_ne!(other, real_of(&probe).0);
    for r in over_the_wire(&records, 0) {
        assert_eq!(b.install_synced(&sb, &r, 10), Ok(SyncInstalled::New));
    }
    for port in 41002..41006 {
        let (v, sent) = send(&mut b, &sb, &client_in(client, port, 443, s.syn, b""), 20);
        assert_eq!(v, Verdict::Tx { port: 0 });
        assert_eq!(real_of(&sent).0, rip, "client port {port}");
    }
}

/// UDP has one state: synced at its third datagram, installed as UDP.
#[test]
fn udp_connections_sync_at_the_threshold() {
    let (sa, mut a) = director(true);
    let (sb, mut b) = director(false);
    let query = |n: u8| {
        let ip = Ip::new(topo::C2, VIP).ttl(CLIENT_TTL);
        padded(udp(FROM_ROUTER, ip, 5353, 53, &[n; 12]))
    };
    for n in 0..3 {
        assert!(!a.has_sync());
        send(&mut a, &sa, &query(n), 0);
    }
    let records: Vec<SyncConn> = a.take_sync().collect();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].protocol, records[0].state, records[0].timeout),
        (17, 0, 300)
    );
    assert_eq!(
        records[0].flags,
        fastpath::sync::wire::CONN_F_INACTIVE,
        "UDP connections count as inactive"
    );
    for r in over_the_wire(&records, 0) {
        assert_eq!(b.install_synced(&sb, &r, 0), Ok(SyncInstalled::New));
    }
    assert_eq!(
        send(&mut b, &sb, &query(9), 1),
        send(&mut a, &sa, &query(9), 1)
    );
}

/// FULLNAT with a PROXY protocol header: B gets the local address and port, the sequence
/// translation and the inserted header's length in rvs's own option, and rewrites the next
/// client segment and the real server's reply exactly as A does (sequence numbers included).
#[test]
fn fullnat_state_travels_in_the_rvs_option() {
    use fixtures::fullnat;
    let body = fullnat::config();
    let sa = pure::snapshot(&body, topo::PORT_MAC).with_sync(MASTER);
    let sb = pure::snapshot(&body, topo::PORT_MAC);
    let (mut a, mut b) = (pure::pipeline(&body, &sa), pure::pipeline(&body, &sb));
    let s = segments();
    let (client, cport, vport) = (topo::C1, 40100, 8000);
    let (v, syn) = send(&mut a, &sa, &client_in(client, cport, vport, s.syn, b""), 0);
    assert_eq!(v, Verdict::Tx { port: 0 });
    let (rip, mac) = real_of(&syn);
    let lport = u16::from_be_bytes([syn[34], syn[35]]);
    let isn = u32::from_be_bytes([syn[38], syn[39], syn[40], syn[41]]);
    assert_eq!(
        Ipv4Addr::new(syn[26], syn[27], syn[28], syn[29]),
        fullnat::LIP
    );
    let from_real = |t: Tcp, data: &[u8]| {
        let ip = Ip::new(rip, fullnat::LIP).id(0x5678);
        padded(tcp(from(mac), ip, t.ports(8000, lport), data))
    };
    let syn_ack = Tcp::new(0, 0, "SA")
        .seq(topo::SSEQ)
        .ack(isn.wrapping_add(1));
    assert_eq!(
        send(&mut a, &sa, &from_real(syn_ack, b""), 0).0,
        Verdict::Tx { port: 0 }
    );
    send(&mut a, &sa, &client_in(client, cport, vport, s.ack, b""), 0);
    let (v, request) = send(
        &mut a,
        &sa,
        &client_in(client, cport, vport, s.request, HTTP_REQUEST),
        0,
    );
    assert_eq!(v, Verdict::Tx { port: 0 });
    let proxy = fullnat::proxy_v1(std::net::SocketAddrV4::new(client, cport), vport);
    assert!(
        request.windows(proxy.len()).any(|w| w == proxy),
        "PROXY header inserted"
    );
    let records: Vec<SyncConn> = a.take_sync().collect();
    assert_eq!(records.len(), 1);
    let f = records[0].fullnat.expect("the FULLNAT option");
    assert_eq!(
        (
            records[0].flags & 7,
            f.laddr,
            f.lport,
            f.client_isn,
            f.fdata_seq,
            usize::from(f.inserted)
        ),
        (
            5,
            fullnat::LIP,
            lport,
            topo::CSEQ,
            Some(topo::SSEQ + 1),
            proxy.len()
        )
    );
    assert_eq!(f.delta, isn.wrapping_sub(topo::CSEQ));

    let fin = client_in(client, cport, vport, s.client_fin, b"");
    assert_eq!(
        send(&mut b, &sb, &fin, 1).0,
        Verdict::Drop(DropReason::NoConn)
    );
    for r in over_the_wire(&records, 0) {
        assert_eq!(b.install_synced(&sb, &r, 1), Ok(SyncInstalled::New));
    }
    let on_b = send(&mut b, &sb, &fin, 2);
    assert_eq!(on_b.0, Verdict::Tx { port: 0 });
    assert_eq!(
        on_b,
        send(&mut a, &sa, &fin, 2),
        "client FIN rewritten alike"
    );
    let reply_seq = Tcp::new(0, 0, "A")
        .seq(topo::SSEQ + 1)
        .ack(isn.wrapping_add(1 + proxy.len() as u32 + fullnat::REQ + 1));
    let reply = from_real(reply_seq, b"");
    let on_b = send(&mut b, &sb, &reply, 3);
    assert_eq!(on_b.0, Verdict::Tx { port: 0 });
    assert_eq!(on_b, send(&mut a, &sa, &reply, 3), "reply rewritten alike");

    // Without the option (a kernel master), a FULLNAT real cannot take the connection.
    let (sc, mut c) = (
        pure::snapshot(&body, topo::PORT_MAC),
        pure::pipeline(&body, &sb),
    );
    let bare = SyncConn {
        fullnat: None,
        ..records[0]
    };
    assert_eq!(
        c.install_synced(&sc, &bare, 0),
        Err(SyncRefused::NoFullNatState)
    );
}

/// What sync costs per short connection (the figure behind "sync bandwidth per 100k new
/// connections per second"): a whole HTTP exchange through A (SYN to the last ACK) is sent
/// three times: at ESTABLISHED's third inbound packet, into CLOSE_WAIT at the client's FIN,
/// into TIME_WAIT at its last ACK; 40 entries fill a 1472-byte message.
#[test]
fn a_short_connection_costs_three_entries() {
    // Room for every connection (they stay in TIME_WAIT).
    let body = nat::config().replace(
        &format!("conn_table_size = {}", nat::TABLE_SIZE),
        "conn_table_size = 4096",
    );
    let sa = pure::snapshot(&body, topo::PORT_MAC).with_sync(MASTER);
    let mut a = pure::pipeline(&body, &sa);
    let s = segments();
    let n = 1000u16;
    let mut records = Vec::new();
    for i in 0..n {
        let client = Ipv4Addr::new(198, 51, 100, 1 + (i % 200) as u8);
        let cport = 20000 + i;
        let now = u64::from(i);
        let (_, syn) = send(&mut a, &sa, &client_in(client, cport, 80, s.syn, b""), now);
        let (rip, mac) = real_of(&syn);
        let from_real = |t: Tcp| real_out(rip, mac, 8080, client, cport, t);
        send(&mut a, &sa, &from_real(s.syn_ack), now);
        send(&mut a, &sa, &client_in(client, cport, 80, s.ack, b""), now);
        send(
            &mut a,
            &sa,
            &client_in(client, cport, 80, s.request, HTTP_REQUEST),
            now,
        );
        send(&mut a, &sa, &from_real(s.response), now);
        send(
            &mut a,
            &sa,
            &client_in(client, cport, 80, s.client_fin, b""),
            now,
        );
        send(&mut a, &sa, &from_real(s.server_ack_fin), now);
        send(&mut a, &sa, &from_real(s.server_fin), now);
        let (v, _) = send(
            &mut a,
            &sa,
            &client_in(client, cport, 80, s.last_ack, b""),
            now,
        );
        assert_eq!(v, Verdict::Tx { port: 0 });
        records.extend(a.take_sync());
    }
    let states: std::collections::BTreeMap<u16, usize> =
        records.iter().fold(Default::default(), |mut m, r| {
            *m.entry(r.state).or_default() += 1;
            m
        });
    // ESTABLISHED 1, CLOSE_WAIT 7, TIME_WAIT 5: once each per connection.
    assert_eq!(
        states,
        [(1, 1000), (5, 1000), (7, 1000)].into_iter().collect(),
        "{states:?}"
    );
    let mut message = MessageBuilder::new(0, 1472);
    let (mut bytes, mut messages) = (0usize, 0usize);
    for r in &records {
        if message.push(r).is_err() {
            bytes += message.as_bytes().len();
            messages += 1;
            message.clear();
            message.push(r).expect("fits an empty message");
        }
    }
    bytes += message.as_bytes().len();
    messages += 1;
    assert_eq!(messages, (3 * usize::from(n)).div_ceil(40));
    // Per 100,000 connections per second, with 42 bytes of Ethernet, IPv4 and UDP headers
    // per message.
    let per_conn = (bytes + 42 * messages) as f64 / f64::from(n);
    println!(
        "sync: {per_conn:.1} bytes per connection on the wire: {:.0} messages/s, {:.1} Mbit/s per 100k connections/s",
        messages as f64 * 100.0,
        per_conn * 100_000.0 * 8.0 / 1e6
    );
    assert!((108.0..115.0).contains(&per_conn), "{per_conn}");
}
