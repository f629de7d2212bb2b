//! The malformed-packet corpus (`fixtures/malformed.rs`): nothing crashes, nothing malformed
//! is forwarded (every row is a drop with its reason, or a forward where Linux IPVS forwards
//! too, with the exact bytes); random and mutated frames never crash the pipeline and anything
//! it sends is well formed.

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fastpath::verdict::Verdict;
use fixtures::malformed::{self, assert_well_formed};
use fixtures::packet::Mac;
use fixtures::{pure, topo};
use proptest::prelude::*;

#[test]
fn pipeline_drops_or_forwards_each_malformed_packet_as_the_corpus_says() {
    let body = malformed::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &malformed::fixtures(), |i| {
        i as u64
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A pipeline that has already seen the corpus (connections exist for every service).
fn warmed() -> (Snapshot, Pipeline) {
    let body = malformed::config();
    let snapshot = pure::snapshot(&body, topo::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    pure::run(&mut pipeline, &snapshot, &malformed::fixtures(), |i| {
        i as u64
    });
    (snapshot, pipeline)
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    let port: Mac = topo::PORT_MAC;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Behind the port's MAC and the IPv4 EtherType, so the IPv4 checks see it.
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(move |tail| {
            let mut f = port.to_vec();
            f.extend_from_slice(&topo::ROUTER_MAC);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend(tail);
            f
        }),
        // Valid frames with bytes changed and, mostly, the header checksum made right.
        (
            0..6usize,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            any::<bool>()
        )
            .prop_map(|(which, edits, fix)| {
                let mut f = malformed::valid_frames().swap_remove(which);
                for (at, value) in edits {
                    let at = 14 + at % (f.len() - 14);
                    f[at] = value;
                }
                if fix && f.len() >= 34 {
                    fixtures::packet::fix_ip_checksum(&mut f);
                }
                f
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: no panic, and anything sent is a well-formed IPv4 frame (or ARP); a later
    /// fragment whose first one was not seen may be held.
    #[test]
    fn random_frames_never_crash_and_never_forward_garbage(frame in any_frame()) {
        let (snapshot, mut pipeline) = warmed();
        let mut buf = VecFrame::new(&frame);
        match pipeline.packet(&snapshot, 0, &mut buf, 1_000) {
            Verdict::Tx { .. } => assert_well_formed(buf.data()),
            Verdict::Drop(_) | Verdict::Hold(_) => {}
            other => prop_assert!(false, "unexpected verdict {other:?}"),
        }
    }
}
