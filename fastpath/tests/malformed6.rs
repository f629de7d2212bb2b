//! The IPv6 malformed-packet corpus (`fixtures/malformed6.rs`): every row a drop with its
//! reason or the exact answer; random and mutated IPv6 frames never crash the pipeline, and
//! what it sends is well formed.

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::verdict::Verdict;
use fixtures::{malformed6, nat66, pure};
use proptest::prelude::*;

#[test]
fn pipeline_drops_or_answers_each_malformed_ipv6_packet_as_the_corpus_says() {
    let table = malformed6::fixtures();
    assert!(table.len() >= 100, "{} rows", table.len());
    let snapshot = pure::snapshot(nat66::CONFIG, nat66::PORT_MAC);
    let mut pipeline = pure::pipeline(nat66::CONFIG, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &table, |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Valid IPv6 frames with bytes changed and their ends cut: never a panic, and whatever
    /// is sent is a well-formed IPv6 frame.
    #[test]
    fn mutated_ipv6_frames_never_crash_and_what_leaves_is_well_formed(
        which in 0usize..5,
        edits in proptest::collection::vec((0usize..200, any::<u8>()), 1..6),
        cut in 0usize..100,
    ) {
        let snapshot = pure::snapshot(nat66::CONFIG, nat66::PORT_MAC);
        let mut pipeline = pure::pipeline(nat66::CONFIG, &snapshot);
        let mut f = malformed6::valid_frames().swap_remove(which);
        for (at, value) in edits {
            let at = 14 + at % (f.len() - 14);
            f[at] = value;
        }
        f.truncate(f.len().saturating_sub(cut % 8));
        let mut frame = VecFrame::new(&f);
        if let Verdict::Tx { .. } = pipeline.packet(&snapshot, 0, &mut frame, 0) {
            malformed6::assert_well_formed(frame.data());
        }
    }
}
