//! The malformed-packet corpus (`fastpath/tests/fixtures/malformed.rs`) through rvsd on
//! `net_pcap`, with random frames whose verdicts the pure pipeline gives: every input packet
//! is accounted for (received = forwarded + dropped) and the output is byte for byte the
//! pipeline's.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::verdict::Verdict;
use fixtures::{expected_drops, malformed, pure, topo, Expect, Fixture};

/// Pseudo-random frames appended to the corpus in the rvsd run.
const RANDOM_FRAMES: usize = 600;
const SEED: u64 = 0x5eed_f00d_2b5e;

/// What the pipeline does with `frames` after the corpus: the oracle for the random part of
/// the rvsd run (whose verdicts no table states), checked for the properties that hold for
/// any input.
fn oracle(frames: &[Vec<u8>]) -> Vec<Fixture> {
    let body = malformed::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let corpus = malformed::fixtures();
    assert!(pure::run(&mut pipeline, &snapshot, &corpus, |i| i as u64).is_empty());
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut frame = VecFrame::new(f);
            let now = (corpus.len() + i) as u64;
            let fixture = match pipeline.packet(&snapshot, 0, &mut frame, now) {
                Verdict::Tx { port: 0 } => {
                    malformed::assert_well_formed(frame.data());
                    Fixture::tx("random", f.clone(), frame.data().to_vec())
                }
                Verdict::Drop(reason) => Fixture::drop("random", f.clone(), reason.as_str()),
                // A later fragment whose first never comes: held, then dropped when its wait
                // runs out or rvsd stops.
                Verdict::Hold(_) => Fixture::drop("random", f.clone(), "frag_no_first"),
                other => panic!("random frame #{i}: unexpected {other:?}"),
            };
            assert!(
                !pipeline.has_released(),
                "random frame #{i} is the first fragment of a held one: the table cannot say when it leaves"
            );
            fixture
        })
        .collect()
}

#[test]
fn rvsd_accounts_for_every_malformed_packet_on_net_pcap() {
    let mut table = malformed::fixtures();
    let random = malformed::random_frames(RANDOM_FRAMES, SEED);
    let from_random = oracle(&random);
    let sent = from_random
        .iter()
        .filter(|f| matches!(f.expect, Expect::Tx(_)))
        .count();
    println!("{RANDOM_FRAMES} random frames: {sent} forwarded by the pipeline");
    table.extend(from_random);

    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(&malformed::config(), &input);
    let announcements = topo::announcements();
    let mut expected = announcements.clone();
    expected.extend(table.iter().flat_map(|f| f.expect.frames()));
    common::assert_frames_eq("rvsd output", &expected, &run.output);
    let drops: std::collections::BTreeMap<String, u64> = run.nonzero_drops().into_iter().collect();
    assert_eq!(
        drops,
        expected_drops(&table),
        "drop counters; log:\n{}",
        run.log
    );
    let rx = run.stats["rx_packets"].as_u64().expect("rx_packets");
    let tx = run.stats["tx_packets"].as_u64().expect("tx_packets");
    let dropped: u64 = drops.values().sum();
    assert_eq!(rx, input.len() as u64, "every frame was received");
    assert_eq!(
        rx,
        tx - announcements.len() as u64 + dropped,
        "received = forwarded + dropped (rx {rx}, tx {tx} with {} announcements, dropped {dropped})",
        announcements.len()
    );
}
