//! ARP and ICMP echo for owned addresses, and counted drops for everything else the
//! foundation does not forward: first through the pure pipeline, then through `rvsd` on
//! `net_pcap` with the same fixture table.

mod common;
mod fixtures;

use dataplane::frame::{Frame, VecFrame};
use dataplane::process::Pipeline;
use dataplane::snapshot::Snapshot;
use dataplane::verdict::Verdict;
use fixtures::{expected_drops, l2, Expect};

#[test]
fn pipeline_follows_the_l2_fixture_table() {
    let config = conf::Config::parse(&format!("[eal]\nargs = []\n{}", l2::CONFIG), "l2.toml")
        .expect("fixture config is valid");
    let snapshot = Snapshot::build(&config, &[l2::PORT_MAC], None, 1).expect("snapshot");
    let mut pipeline = Pipeline::new(0, 1, 1024, &snapshot, 0).expect("pipeline");
    let mut failures = Vec::new();
    for (i, f) in l2::fixtures().iter().enumerate() {
        let mut frame = VecFrame::new(f.input.clone());
        let verdict = pipeline.packet(&snapshot, 0, &mut frame, 0);
        let ok = match (&f.expect, verdict) {
            (Expect::Tx(bytes), Verdict::Tx { port: 0 }) => frame.data() == bytes.as_slice(),
            (Expect::Drop(reason), Verdict::Drop(r)) => r.as_str() == *reason,
            _ => false,
        };
        println!(
            "#{i:<2} {:<60} {}",
            f.desc,
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            let detail = match &f.expect {
                Expect::Tx(bytes) => common::hex_diff(bytes, frame.data()),
                Expect::Drop(_) => String::new(),
            };
            failures.push(format!(
                "#{i} {}: expected {:?}, got {verdict:?}\n{detail}",
                f.desc, f.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rvsd_answers_arp_and_icmp_on_net_pcap_and_counts_every_drop() {
    let table = l2::fixtures();
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(l2::CONFIG, &input);

    let mut expected = l2::announcements();
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
    assert_eq!(run.stats["rx_packets"], input.len() as u64);
    assert_eq!(run.stats["tx_packets"], expected.len() as u64);
    let service = &run.stats["services"][0];
    assert_eq!(service["vip"], "10.0.0.100:80");
    assert_eq!(service["proto"], "tcp");
    assert_eq!(service["reals"][0]["addr"], "10.0.0.11:80");
}
