//! TUN fixture table (`fastpath/tests/fixtures/tun.rs`): the same conversation as the pure pipeline runs
//! in `fastpath/tests`, through `rvsd` on `net_pcap`, compared byte for byte, with the drop counters and the
//! per-service / per-real counters.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fixtures::{topo, tun};

#[test]
fn rvsd_forwards_the_tun_fixture_table_on_net_pcap() {
    golden::assert_rvsd(
        &tun::config(),
        topo::announcements(),
        &tun::fixtures(),
        &tun::expected_counters(),
    );
}

/// GUE and GRE (`fastpath/tests/fixtures/tun_types.rs`) through `rvsd`: the tunnel options
/// from the TOML file, every row byte for byte.
#[test]
fn rvsd_forwards_the_gue_and_gre_fixture_table_on_net_pcap() {
    golden::assert_rvsd(
        &fixtures::tun_types::config(),
        topo::announcements(),
        &fixtures::tun_types::fixtures(),
        &fixtures::tun_types::expected_counters(),
    );
}
