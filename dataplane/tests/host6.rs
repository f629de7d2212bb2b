//! IPv6 on a port that owns IPv6 addresses, through `rvsd` on `net_pcap` (a port without a
//! kernel twin) with the fixture table the pure pipeline runs in `fastpath/tests/host6.rs`:
//! the unsolicited advertisements at start, neighbour discovery and echo answered byte for
//! byte, every other frame counted under its drop reason.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::packet::{Arp, Eth, BROADCAST};
use fixtures::{expected_drops, host6};

#[test]
fn rvsd_answers_nd_and_echo6_on_net_pcap_and_counts_every_drop() {
    let table = host6::fixtures(false);
    let input: Vec<Vec<u8>> = table.iter().map(|f| f.input.clone()).collect();
    let run = common::run_pcap(host6::CONFIG_NO_TWIN, &input);

    let dip = std::net::Ipv4Addr::new(10, 0, 0, 1);
    let garp = Arp {
        op: 1,
        sha: host6::PORT_MAC,
        spa: dip,
        tha: [0; 6],
        tpa: dip,
    }
    .frame(Eth {
        src: host6::PORT_MAC,
        dst: BROADCAST,
    });
    let mut expected = vec![garp];
    expected.extend(host6::announcements());
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
}
