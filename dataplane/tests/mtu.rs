//! Egress MTU fixture table (`fastpath/tests/fixtures/mtu.rs`): the same rows the pure
//! pipeline runs in `fastpath/tests`, through `rvsd` on `net_pcap`: ICMP fragmentation
//! needed for DF packets, fragments (cut by the worker into new mbufs) for the others, byte
//! for byte, with the drop counters and the per-real counters.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fixtures::mtu;

#[test]
fn rvsd_answers_and_fragments_the_mtu_fixture_table_on_net_pcap() {
    let run = golden::assert_rvsd(
        &mtu::config(),
        mtu::announcements(),
        &mtu::fixtures(),
        &mtu::expected_counters(),
    );
    assert_eq!(run.stats["icmp_errors_sent"], 8, "{}", run.stats);
}

/// A NAT SYN C1:40001 → VIP:80, then a segment of `ip_len` bytes of IPv4 of that flow, DF
/// set, and what RS1 gets for each; with the frames in `mtu`'s configuration at port MTU
/// `port_mtu`.
fn nat_segments(ip_len: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use fixtures::packet::{padded, tcp, Ip};
    use fixtures::topo::{segments, to, C1, CLIENT_TTL, FROM_ROUTER, VIP};
    let s = segments();
    let data = vec![0x5a; ip_len - 20 - 20 - fixtures::topo::TS_OPTIONS.len()];
    let client = Ip::new(C1, VIP).ttl(CLIENT_TTL);
    let sent = Ip::new(C1, mtu::RS1).ttl(CLIENT_TTL - 1);
    let input = vec![
        padded(tcp(FROM_ROUTER, client, s.syn.ports(40001, 80), b"")),
        tcp(FROM_ROUTER, client, s.request.ports(40001, 80), &data),
    ];
    let output = vec![
        tcp(to(mtu::RS1_MAC), sent, s.syn.ports(40001, 8080), b""),
        tcp(to(mtu::RS1_MAC), sent, s.request.ports(40001, 8080), &data),
    ];
    (input, output)
}

/// A frame longer than one default buffer (2048 bytes of data) on a port whose MTU is 1500:
/// net_pcap delivers it in chained mbufs, which cannot be joined into one buffer; it is
/// dropped as `oversize_frame` before the pipeline (it was misread as truncated, from its
/// first segment, before).
#[test]
fn rvsd_drops_a_frame_longer_than_its_buffers() {
    let (input, output) = nat_segments(2086);
    assert_eq!(input[1].len(), 2100);
    let body = mtu::config().replace("mtu = 1280", "mtu = 1500");
    let run = common::run_pcap(&body, &input);
    let mut expected = mtu::announcements();
    expected.push(output[0].clone());
    common::assert_frames_eq("rvsd output", &expected, &run.output);
    assert_eq!(
        run.nonzero_drops(),
        vec![("oversize_frame".to_string(), 1)],
        "{}",
        run.stats
    );
    assert_eq!(run.stats["rx_packets"], 2);
}

/// With a port MTU of 9000 the buffers hold 9014-byte frames: a 3000-byte frame arrives in
/// one mbuf and is forwarded whole (it was chained, misread and dropped before).
#[test]
fn rvsd_forwards_jumbo_frames_in_one_buffer() {
    let (input, output) = nat_segments(3000);
    // A smaller pool: 4096 buffers of 9 KiB fit the test's 256 MB of memory.
    let body = mtu::config()
        .replace("mtu = 1280", "mtu = 9000")
        .replace("workers = [1]", "workers = [1]\nmbufs = 4096");
    let run = common::run_pcap(&body, &input);
    let mut expected = mtu::announcements();
    expected.extend(output);
    common::assert_frames_eq("rvsd output", &expected, &run.output);
    assert!(run.nonzero_drops().is_empty(), "{}", run.stats);
}
