//! The IPv6 malformed-packet corpus through `rvsd` on `net_pcap`: the same answers out, byte
//! for byte, and every other frame counted under the reason the corpus gives.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::{expected_drops, malformed6, nat66};

#[test]
fn rvsd_accounts_for_every_malformed_ipv6_packet_on_net_pcap() {
    let table = malformed6::fixtures();
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(nat66::CONFIG, &input);
    // After the announcements (one gratuitous ARP, two unsolicited advertisements).
    let sent: Vec<Vec<u8>> = run.output.iter().skip(3).cloned().collect();
    let expected: Vec<Vec<u8>> = table.iter().flat_map(|f| f.expect.frames()).collect();
    common::assert_frames_eq("rvsd output", &expected, &sent);
    let drops: std::collections::BTreeMap<String, u64> = run.nonzero_drops().into_iter().collect();
    assert_eq!(drops, expected_drops(&table), "log:\n{}", run.log);
    assert_eq!(run.stats["rx_packets"], input.len() as u64);
}
