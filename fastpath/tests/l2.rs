//! ARP and ICMP echo for owned addresses, and counted drops for everything else that is not
//! forwarded, through the pure pipeline (`rvsd` runs the same table on `net_pcap` in
//! `dataplane/tests/l2.rs`).

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fastpath::verdict::Verdict;
use fixtures::{l2, packet, Expect};

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
                Expect::Tx(bytes) => packet::hex_diff(bytes, frame.data()),
                Expect::Drop(_) | Expect::Punt(_) => String::new(),
            };
            failures.push(format!(
                "#{i} {}: expected {:?}, got {verdict:?}\n{detail}",
                f.desc, f.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
