//! IPv4 fragment tables (`fastpath/tests/fixtures/frag.rs`): the same tables the pure pipeline
//! runs in `fastpath/tests`, through `rvsd` on `net_pcap`, compared byte for byte, with the
//! drop counters and the per-service and per-real counters; and two workers handing fragments
//! received by the wrong one over to the flow's owner through the fragment owner.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fixtures::frag;

/// The tests of this file run one at a time: a held fragment waits at most 100 ms for its
/// first fragment, and an rvsd starved of CPU that long would drop it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `table` through rvsd with one worker and checks what it sent, what it dropped (the
/// fragments still held at the end among them: dropped as `frag_no_first` once their wait
/// runs out or rvsd stops) and the counters.
fn assert_rvsd(table: &frag::Table, expected: &[fixtures::RealCounters]) -> common::PcapRun {
    let inputs = table.inputs();
    let run = common::run_pcap(&frag::config(), &inputs);
    let mut frames = frag::announcements();
    frames.extend(table.sent());
    common::assert_frames_eq("rvsd output", &frames, &run.output);
    let drops: std::collections::BTreeMap<String, u64> = run.nonzero_drops().into_iter().collect();
    assert_eq!(drops, table.drops(), "drop counters; log:\n{}", run.log);
    assert_eq!(run.stats["rx_packets"], inputs.len() as u64, "rx_packets");
    assert_eq!(run.stats["tx_packets"], frames.len() as u64, "tx_packets");
    golden::assert_json_counters(&run.stats, expected);
    run
}

#[test]
fn rvsd_forwards_the_fragment_table_on_net_pcap() {
    let _serial = serial();
    let run = assert_rvsd(&frag::table(), &frag::expected_counters());
    let services = run.stats["services"].as_array().expect("services");
    for (proto, vip, inpkts, inbytes, outpkts, outbytes) in frag::expected_traffic() {
        let s = services
            .iter()
            .find(|s| s["proto"] == proto && s["vip"] == vip)
            .unwrap_or_else(|| panic!("no service {proto} {vip}"));
        let n = |key: &str| s[key].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            (n("inpkts"), n("inbytes"), n("outpkts"), n("outbytes")),
            (inpkts, inbytes, outpkts, outbytes),
            "{proto} {vip}: (inpkts, inbytes, outpkts, outbytes)"
        );
    }
}

#[test]
fn rvsd_bounds_what_it_follows_and_holds() {
    let _serial = serial();
    assert_rvsd(&frag::limits(), &frag::limits_counters());
}

/// Two workers, every frame received by worker 1. D1's flow is worker 1's, its fragment owner
/// worker 0, and its last fragments come before its first: worker 1 hands all three to worker
/// 0, which holds the two, hands the first to worker 1 and then the two it held; worker 1
/// sends them in that order. D2's flow is worker 0's, its fragment owner worker 1: worker 1
/// hands each fragment to worker 0 at once, which sends them.
#[test]
fn rvsd_hands_fragments_to_the_flow_owner_through_the_fragment_owner() {
    let _serial = serial();
    let body = frag::config().replace("workers = [1]", "workers = [1, 2]");
    let d1 = frag::owned_datagram(1, 0, 1024);
    let d2 = frag::owned_datagram(0, 1, 2048);
    let on_worker_1 = vec![
        d1.input[2].clone(),
        d1.input[1].clone(),
        d2.input[0].clone(),
        d1.input[0].clone(),
        d2.input[1].clone(),
        d2.input[2].clone(),
    ];
    let run = common::run_pcap_queues(&body, &[Vec::new(), on_worker_1]);
    assert!(
        run.status.success(),
        "rvsd failed: {}\n{}",
        run.status,
        run.log
    );
    let mut worker_0 = frag::announcements();
    worker_0.extend(d2.output.iter().cloned());
    common::assert_frames_eq("worker 0's frames", &worker_0, &run.outputs[0]);
    let worker_1 = [&d1.output[0], &d1.output[2], &d1.output[1]].map(|f| f.clone());
    common::assert_frames_eq("worker 1's frames", &worker_1, &run.outputs[1]);
    // Worker 1 handed D1's three fragments to their fragment owner and D2's three to their
    // flow's owner; worker 0 handed D1's three on to its flow's owner.
    assert_eq!(run.stats["workers"][1]["handed_over"], 6, "{}", run.stats);
    assert_eq!(run.stats["workers"][0]["handed_over"], 3, "{}", run.stats);
    let drops = run.stats["drops"].as_object().expect("drops");
    assert!(drops.values().all(|n| n == 0), "drops: {drops:?}");
}
