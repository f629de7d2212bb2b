//! `sloppy = true` (fixture table `fixtures/sloppy.rs`): TCP segments without SYN of no
//! connection are scheduled on NAT, DR and TUN services, with the exact frames, counters and
//! the connection states `rvsadm -L -c` lists; RST, FULLNAT and services without sloppy still
//! drop them (`no_conn`). With `ch`, two directors that share only the configuration send a
//! flow that moves between them to the same real server.

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::verdict::Verdict;
use fixtures::packet::Mac;
use fixtures::{pure, sloppy, topo};

#[test]
fn pipeline_follows_the_sloppy_fixture_table() {
    let body = sloppy::config();
    let table = sloppy::fixtures();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &table, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, &sloppy::expected_counters());
    let mut listed: Vec<_> = pipeline
        .conn_entries(table.len() as u64)
        .into_iter()
        .map(|c| {
            assert_eq!(c.proto, conf::Proto::Tcp);
            (
                c.state,
                c.client.to_string(),
                c.virt.to_string(),
                c.dest.to_string(),
                c.expire,
            )
        })
        .collect();
    listed.sort();
    let expected: Vec<_> = sloppy::expected_conns()
        .into_iter()
        .map(|(state, client, virt, dest, expire)| {
            (
                state.to_owned(),
                client.to_owned(),
                virt.to_owned(),
                dest.to_owned(),
                expire,
            )
        })
        .collect();
    assert_eq!(listed, expected);
}

/// The real server a DR frame went to: its destination MAC.
fn real_mac(verdict: Verdict, frame: &[u8]) -> Mac {
    assert_eq!(verdict, Verdict::Tx { port: 0 }, "forwarded");
    frame[..6].try_into().expect("an Ethernet header")
}

/// ECMP scale-out: director A saw the SYNs, the router then moves every flow to director B,
/// which gets the next segment (an ACK) with no connection. Both build their own snapshot
/// (their own Maglev table) from the same configuration; B sends each flow to the real
/// server A chose, byte for byte the frame A would send. The flows spread over all three
/// reals (`ch` hashes the client address), so a scheduler that ignored the flow or a table
/// that differed between processes would fail.
#[test]
fn two_directors_with_ch_send_a_moved_flow_to_the_same_real() {
    let body = sloppy::ch_config();
    let (snap_a, snap_b) = (
        pure::snapshot(&body, topo::PORT_MAC),
        pure::snapshot(&body, topo::PORT_MAC),
    );
    let (mut a, mut b) = (
        pure::pipeline(&body, &snap_a),
        pure::pipeline(&body, &snap_b),
    );
    let s = topo::segments();
    let mut used = std::collections::BTreeSet::new();
    for host in 10..74 {
        let client = std::net::Ipv4Addr::new(198, 51, 100, host);
        let mut syn = VecFrame::new(sloppy::ch_in(client, s.syn));
        let chosen = real_mac(a.packet(&snap_a, 0, &mut syn, 0), syn.data());
        let mut on_a = VecFrame::new(sloppy::ch_in(client, s.ack));
        let verdict = a.packet(&snap_a, 0, &mut on_a, 1);
        assert_eq!(real_mac(verdict, on_a.data()), chosen);
        let mut on_b = VecFrame::new(sloppy::ch_in(client, s.ack));
        let verdict = b.packet(&snap_b, 0, &mut on_b, 1);
        assert_eq!(
            real_mac(verdict, on_b.data()),
            chosen,
            "flow {client}:40000"
        );
        assert_eq!(on_b.data(), on_a.data(), "flow {client}:40000");
        used.insert(chosen);
    }
    assert_eq!(used.len(), 3, "64 flows over 3 reals: {used:?}");
    assert_eq!((a.conns(), b.conns()), (64, 64));
    let states: Vec<_> = b.conn_entries(2).into_iter().map(|c| c.state).collect();
    assert!(states.iter().all(|s| s == "ESTABLISHED"), "{states:?}");
}
