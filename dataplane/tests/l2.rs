//! ARP and ICMP echo for owned addresses, and counted drops for everything else that is not
//! forwarded, through `rvsd` on `net_pcap` with the fixture table the pure pipeline runs in
//! `fastpath/tests/l2.rs`.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::{expected_drops, l2};

#[test]
fn rvsd_answers_arp_and_icmp_on_net_pcap_and_counts_every_drop() {
    let table = l2::fixtures();
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(l2::CONFIG, &input);

    let mut expected = l2::announcements();
    expected.extend(table.iter().flat_map(|f| f.expect.frames()));
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
