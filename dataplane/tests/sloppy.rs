//! Sloppy fixture table (`fastpath/tests/fixtures/sloppy.rs`): TCP segments without SYN of no
//! connection through `rvsd` on `net_pcap`, compared byte for byte with what the pure pipeline
//! gives, with the drop counters and the per-real counters.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fixtures::packet::{Arp, Eth, BROADCAST};
use fixtures::{sloppy, topo};
use std::net::Ipv4Addr;

#[test]
fn rvsd_forwards_the_sloppy_fixture_table_on_net_pcap() {
    // The start-up gratuitous ARPs: the DIP, the VIP, the FULLNAT local address.
    let owned = [topo::DIP, topo::VIP, Ipv4Addr::new(10, 0, 0, 200)];
    let announcements = owned
        .iter()
        .map(|&ip| {
            Arp {
                op: 1,
                sha: topo::PORT_MAC,
                spa: ip,
                tha: [0; 6],
                tpa: ip,
            }
            .frame(Eth {
                src: topo::PORT_MAC,
                dst: BROADCAST,
            })
        })
        .collect();
    golden::assert_rvsd(
        &sloppy::config(),
        announcements,
        &sloppy::fixtures(),
        &sloppy::expected_counters(),
    );
}
