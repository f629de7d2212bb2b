//! The fixture tables (`fastpath/tests/fixtures`) through `rvsd` on `net_pcap`: the output
//! compared byte for byte with the table, the drop counters and the stats JSON's counters.
#![allow(dead_code)] // each test binary uses some of the runners

use crate::fixtures::{expected_drops, Expect, Fixture, RealCounters};

/// The same table through `rvsd` on `net_pcap`: output frames byte for byte (after the
/// start-up announcements), drop counters, packet totals and the counters in the stats JSON.
pub fn assert_rvsd(
    body: &str,
    announcements: Vec<Vec<u8>>,
    table: &[Fixture],
    expected: &[RealCounters],
) -> crate::common::PcapRun {
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = crate::common::run_pcap(body, &input);
    check_rvsd(&run, announcements, table, expected);
    run
}

/// The checks of [`assert_rvsd`] on the output of a run of `table`'s inputs.
pub fn check_rvsd(
    run: &crate::common::PcapRun,
    announcements: Vec<Vec<u8>>,
    table: &[Fixture],
    expected: &[RealCounters],
) {
    let input: Vec<&Vec<u8>> = table.iter().map(|f| &f.input).collect();
    let mut frames = announcements;
    frames.extend(table.iter().flat_map(|f| f.expect.frames()));
    crate::common::assert_frames_eq("rvsd output", &frames, &run.output);
    let drops: std::collections::BTreeMap<String, u64> = run.nonzero_drops().into_iter().collect();
    assert_eq!(
        drops,
        expected_drops(table),
        "drop counters; log:\n{}",
        run.log
    );
    assert_eq!(run.stats["rx_packets"], input.len() as u64, "rx_packets");
    assert_eq!(run.stats["tx_packets"], frames.len() as u64, "tx_packets");
    let dropped: u64 = drops.values().sum();
    let sent = table
        .iter()
        .filter(|f| !matches!(f.expect, Expect::Drop(_)))
        .count();
    assert_eq!(
        input.len() as u64,
        sent as u64 + dropped,
        "every input packet is either sent or counted as dropped"
    );
    assert_json_counters(&run.stats, expected);
}

/// Asserts the per-service and per-real counters of a `--stats-json` document.
pub fn assert_json_counters(stats: &serde_json::Value, expected: &[RealCounters]) {
    let mut problems = Vec::new();
    let services = stats["services"].as_array().expect("services array");
    for service in services {
        let (proto, vip) = (
            service["proto"].as_str().unwrap_or_default(),
            service["vip"].as_str().unwrap_or_default(),
        );
        let mut sums = (0, 0, 0);
        for real in service["reals"].as_array().expect("reals array") {
            let addr = real["addr"].as_str().unwrap_or_default();
            let Some(e) = expected
                .iter()
                .find(|e| e.proto == proto && e.vip == vip && e.real == addr)
            else {
                problems.push(format!("{proto} {vip} -> {addr}: not in the counter table"));
                continue;
            };
            let n = |key: &str| real[key].as_u64().unwrap_or(u64::MAX);
            let actual = RealCounters {
                conns: n("conns"),
                inpkts: n("inpkts"),
                outpkts: n("outpkts"),
                active: n("active"),
                inactive: n("inactive"),
                ..*e
            };
            if actual != *e {
                problems.push(format!(
                    "{proto} {vip} -> {addr}:\n  expected {e:?}\n  json     {actual:?}"
                ));
            }
            sums = (sums.0 + e.conns, sums.1 + e.inpkts, sums.2 + e.outpkts);
        }
        let n = |key: &str| service[key].as_u64().unwrap_or(u64::MAX);
        if (n("conns"), n("inpkts"), n("outpkts")) != sums {
            problems.push(format!(
                "{proto} {vip}: service conns/inpkts/outpkts {:?}, reals sum to {sums:?}",
                (n("conns"), n("inpkts"), n("outpkts"))
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "stats JSON counters:\n{}\n{stats}",
        problems.join("\n")
    );
}
