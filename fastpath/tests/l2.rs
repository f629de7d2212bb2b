//! ARP and ICMP echo for owned addresses, and counted drops for everything else that is not
//! forwarded, through the pure pipeline (`rvsd` runs the same table on `net_pcap` in
//! `dataplane/tests/l2.rs`).

mod fixtures;

use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fixtures::{l2, pure};

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
        let checked = pure::check(&f.expect, verdict, frame.data());
        println!(
            "#{i:<2} {:<60} {}",
            f.desc,
            if checked.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(sent) = checked {
            failures.push(format!(
                "#{i} {}: expected {:?}, got {verdict:?}\n{}",
                f.desc,
                f.expect,
                pure::diff(&f.expect.frames(), &sent)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
