//! DR fixture table (`fastpath/tests/fixtures/dr.rs`): the same conversation as the pure pipeline runs
//! in `fastpath/tests`, through `rvsd` on `net_pcap`, compared byte for byte, with the drop counters and the
//! per-service / per-real counters.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fixtures::{dr, topo};

#[test]
fn rvsd_forwards_the_dr_fixture_table_on_net_pcap() {
    golden::assert_rvsd(
        &dr::config(),
        topo::announcements(),
        &dr::fixtures(),
        &dr::expected_counters(),
    );
}
