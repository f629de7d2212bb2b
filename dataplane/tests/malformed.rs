//! The malformed-packet corpus (`fixtures/malformed.rs`): nothing crashes, nothing malformed
//! is forwarded (every row is a drop with its reason, or a forward where Linux IPVS forwards
//! too, with the exact bytes), and in the rvsd run every input packet is accounted for:
//! received = forwarded + dropped.

mod common;
mod fixtures;

use common::packet::Mac;
use dataplane::frame::{Frame, VecFrame};
use dataplane::process::Pipeline;
use dataplane::snapshot::Snapshot;
use dataplane::verdict::Verdict;
use fixtures::{expected_drops, malformed, pure, topo, Expect, Fixture};
use proptest::prelude::*;

/// Pseudo-random frames appended to the corpus in the rvsd run.
const RANDOM_FRAMES: usize = 600;
const SEED: u64 = 0x5eed_f00d_2b5e;

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
            match pipeline.packet(&snapshot, 0, &mut frame, now) {
                Verdict::Tx { port: 0 } => {
                    assert_well_formed(frame.data());
                    Fixture::tx("random", f.clone(), frame.data().to_vec())
                }
                Verdict::Drop(reason) => Fixture::drop("random", f.clone(), reason.as_str()),
                other => panic!("random frame #{i}: unexpected {other:?}"),
            }
        })
        .collect()
}

/// A sent frame: IPv4 (or an ARP reply), version 4, a header that fits and whose checksum
/// verifies (summed over the raw bytes: etherparse's header model drops the reserved flag
/// bit, which rvs, like Linux, carries through), a total length within the frame, TTL > 0.
fn assert_well_formed(frame: &[u8]) {
    assert!(frame.len() >= 34, "sent frame shorter than Ethernet + IPv4");
    if frame[12..14] == [0x08, 0x06] {
        return;
    }
    assert_eq!(frame[12..14], [0x08, 0x00], "sent frame is IPv4");
    let ip = &frame[14..];
    assert_eq!(ip[0] >> 4, 4, "version 4");
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert!((20..=ip.len()).contains(&ihl), "header fits");
    assert_eq!(common::packet::checksum(&ip[..ihl]), 0, "header checksum");
    let total = usize::from(common::packet::get_u16(ip, 2));
    assert!((ihl..=ip.len()).contains(&total), "total length fits");
    assert!(ip[8] > 0, "TTL");
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
    expected.extend(table.iter().filter_map(|f| match &f.expect {
        Expect::Tx(bytes) => Some(bytes.clone()),
        Expect::Drop(_) => None,
    }));
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
                    common::packet::fix_ip_checksum(&mut f);
                }
                f
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: no panic, and anything sent is a well-formed IPv4 frame (or ARP).
    #[test]
    fn random_frames_never_crash_and_never_forward_garbage(frame in any_frame()) {
        let (snapshot, mut pipeline) = warmed();
        let mut buf = VecFrame::new(&frame);
        match pipeline.packet(&snapshot, 0, &mut buf, 1_000) {
            Verdict::Tx { .. } => assert_well_formed(buf.data()),
            Verdict::Drop(_) => {}
            other => prop_assert!(false, "unexpected verdict {other:?}"),
        }
    }
}
