//! IPv4 fragment fixture tables (`fixtures/frag.rs`) through the pure pipeline, run as a worker
//! runs them (held fragments kept and released), compared byte for byte, with the counters;
//! and two workers handing fragments to each other (`rvsd` runs the same in `dataplane/tests`).

mod fixtures;

use fastpath::pipeline::{self, Pipeline};
use fastpath::snapshot::Snapshot;
use fixtures::frag::{self, Emit, Worker};
use fixtures::{pure, topo};

/// Runs `table` on a fresh one-worker pipeline and asserts every row and the counters.
fn assert_table(table: &frag::Table, expected: &[fixtures::RealCounters]) -> Snapshot {
    let body = frag::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let (_, failures) = frag::run(pure::pipeline(&body, &snapshot), &snapshot, table);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    pure::assert_counters(&snapshot, expected);
    snapshot
}

#[test]
fn pipeline_follows_the_fragment_table() {
    let snapshot = assert_table(&frag::table(), &frag::expected_counters());
    for (proto, vip, inpkts, inbytes, outpkts, outbytes) in frag::expected_traffic() {
        let s = snapshot
            .services()
            .find(|s| s.proto.as_str() == proto && s.vip.to_string() == vip)
            .expect("service");
        let t = s.traffic.totals();
        assert_eq!(
            (t.inpkts, t.inbytes, t.outpkts, t.outbytes),
            (inpkts, inbytes, outpkts, outbytes),
            "{proto} {vip}: (inpkts, inbytes, outpkts, outbytes)"
        );
    }
}

#[test]
fn pipeline_bounds_what_it_follows_and_holds() {
    assert_table(&frag::limits(), &frag::limits_counters());
}

#[test]
fn pipeline_times_out_held_fragments_and_datagrams() {
    let counters = [
        fixtures::counters("udp", "10.0.0.100:53", "10.0.0.12:53", 1, 1, 0, 0, 1, 0),
        fixtures::counters("udp", "10.0.0.100:53", "10.0.0.11:53", 1, 2, 0, 0, 1, 0),
        fixtures::counters("tcp", "10.0.0.100:80", "10.0.0.11:8080", 0, 0, 0, 0, 0, 0),
        fixtures::counters("tcp", "10.0.0.100:81", "10.0.0.21:81", 0, 0, 0, 0, 0, 0),
        fixtures::counters("udp", "10.0.0.100:82", "10.0.0.31:82", 0, 0, 0, 0, 0, 0),
        fixtures::counters("udp", "10.0.0.100:54", "10.0.0.11:54", 0, 0, 0, 0, 0, 0),
        fixtures::counters("tcp", "10.0.0.100:443", "10.0.0.11:443", 0, 0, 0, 0, 0, 0),
    ];
    assert_table(&frag::timing(), &counters);
}

/// Two workers; every frame comes in on `rx` (a worker index) and what is handed over is
/// passed on until no worker has anything left, as rvsd's loop does between bursts.
fn two_workers(inputs: &[(usize, Vec<u8>)]) -> [Worker; 2] {
    let body = frag::config().replace("workers = [1]", "workers = [1, 2]");
    let config = pure::config(&body);
    let snapshot = Snapshot::build(&config, &[topo::PORT_MAC], None, 2).expect("snapshot");
    let worker = |w| Worker::new(Pipeline::new(w, 2, 64, &snapshot, 0).expect("pipeline"));
    let mut workers = [worker(0), worker(1)];
    for (rx, frame) in inputs {
        workers[*rx].receive(&snapshot, frame, 0);
        loop {
            let handoffs: Vec<(usize, Vec<u8>)> = workers
                .iter_mut()
                .flat_map(|w| std::mem::take(&mut w.handoffs))
                .collect();
            if handoffs.is_empty() {
                break;
            }
            for (to, frame) in handoffs {
                workers[to].handed(&snapshot, &frame, 0);
            }
        }
    }
    workers
}

#[test]
fn fragments_reach_the_flow_owner_through_the_fragment_owner_in_order() {
    // D1: flow on worker 1, fragment owner worker 0, everything received by worker 1, the
    // last fragment first: 1 -> 0 (held), 1 -> 0 (first: 0 -> 1, then the held one 0 -> 1).
    let d1 = frag::owned_datagram(1, 0, 1024);
    // D2: flow on worker 0, fragment owner worker 1, received by worker 1 in order: each
    // 1 -> 0 at once.
    let d2 = frag::owned_datagram(0, 1, 2048);
    let inputs = vec![
        (1, d1.input[2].clone()),
        (1, d1.input[1].clone()),
        (1, d2.input[0].clone()),
        (1, d1.input[0].clone()),
        (1, d2.input[1].clone()),
        (1, d2.input[2].clone()),
    ];
    let [w0, w1] = two_workers(&inputs);
    let sent = |w: &Worker| -> Vec<Vec<u8>> {
        w.emits
            .iter()
            .filter_map(|e| match e {
                Emit::Tx(bytes) => Some(bytes.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(w0.emits.iter().filter(|e| **e == Emit::Held).count(), 2);
    assert_eq!(
        sent(&w1),
        [&d1.output[0], &d1.output[2], &d1.output[1]].map(|f| f.clone()),
        "worker 1 sends D1, its first fragment first, then the two held in the order they came"
    );
    assert_eq!(sent(&w0), d2.output, "worker 0 sends D2 in order");
    assert_eq!((w0.held(), w1.held()), (0, 0));
    assert!(w0
        .emits
        .iter()
        .chain(&w1.emits)
        .all(|e| matches!(e, Emit::Tx(_) | Emit::Held)));
}

#[test]
fn fragment_owner_is_stable_in_range_and_spreads() {
    let key = |ident| pipeline::FragmentKey {
        src: topo::C1,
        dst: topo::VIP,
        ident,
        protocol: 17,
    };
    for workers in 1..=8 {
        let mut seen = vec![0u32; workers];
        for ident in 0..4096 {
            let w = pipeline::fragment_owner(&key(ident), workers);
            assert!(w < workers);
            assert_eq!(w, pipeline::fragment_owner(&key(ident), workers));
            seen[w] += 1;
        }
        let mean = 4096 / workers as u32;
        assert!(
            seen.iter().all(|&n| n > mean / 2),
            "{workers} workers: {seen:?}"
        );
    }
    assert_eq!(
        pipeline::fragment_owner(&key(7), 0),
        0,
        "no division by zero"
    );
}
