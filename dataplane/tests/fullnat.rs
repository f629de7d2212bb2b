//! FULLNAT fixture tables (`fastpath/tests/fixtures/fullnat.rs`): the conversations the pure
//! pipeline runs in `fastpath/tests`, through `rvsd` on `net_pcap`, compared byte for byte,
//! with the drop counters, the per-real counters, the TOA/PROXY event totals and the
//! local-address usage; the hand-over of replies between two workers; flow-rule steering.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;
mod golden;

use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fixtures::{fullnat, pure, topo};

/// The tests of this file run one at a time: the exhaustion tables are 64 514 rows, and an
/// rvsd whose worker is starved of CPU for 300 ms ends its pcap run early.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asserts the same in a `--stats-json` document.
fn assert_json_fullnat(
    stats: &serde_json::Value,
    events: (u64, u64, u64),
    usage: &[(&str, &str, u64, u64)],
) {
    let n = |key: &str| stats[key].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        (n("toa_inserted"), n("toa_no_room"), n("proxy_inserted")),
        events,
        "(toa_inserted, toa_no_room, proxy_inserted) in {stats}"
    );
    for &(vip, proto, conns, conflicts) in usage {
        let service = stats["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["vip"] == vip && s["proto"] == proto)
            .unwrap_or_else(|| panic!("no service {proto} {vip} in {stats}"));
        assert_eq!(
            service["laddrs"],
            serde_json::json!([{
                "addr": fullnat::LIP.to_string(),
                "conns": conns,
                "conflicts": conflicts,
            }]),
            "{proto} {vip} local addresses"
        );
    }
}

/// rvsd's ISNs are secret and time-based: they are read from the SYNs it forwarded, and
/// every later segment of each connection must carry the same δ (see the fixture module).
#[test]
fn rvsd_forwards_the_fullnat_fixture_table_on_net_pcap() {
    let _serial = serial();
    let body = fullnat::config();
    let nominal = fullnat::table(None);
    let run = common::run_pcap(&body, &nominal.inputs());
    let announcements = fullnat::announcements();
    let isns = fullnat::isns_from_output(&nominal, announcements.len(), &run.output);
    let table = fullnat::table(Some(&isns));
    assert_eq!(
        table.inputs(),
        nominal.inputs(),
        "the inputs do not depend on rvs's ISNs"
    );
    golden::check_rvsd(
        &run,
        announcements,
        &table.rows,
        &fullnat::expected_counters(),
    );
    assert_json_fullnat(&run.stats, fullnat::EVENTS, &fullnat::LADDR_USAGE);
}

#[test]
fn rvsd_exhausts_the_local_ports_towards_one_real_server() {
    let _serial = serial();
    let body = fullnat::exhaustion_config();
    let table = fullnat::exhaustion();
    let run = golden::assert_rvsd(
        &body,
        fullnat::announcements(),
        &table,
        &fullnat::exhaustion_counters(),
    );
    assert_json_fullnat(&run.stats, (0, 0, 0), &fullnat::EXHAUSTION_LADDR_USAGE);
    let lines: Vec<&str> = run
        .log
        .lines()
        .filter(|l| l.contains("no free local address and port"))
        .collect();
    assert_eq!(lines.len(), 1, "one log line for one refusal:\n{}", run.log);
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains("udp service 10.0.0.100:54")
            && lines[0].contains("towards 10.0.0.11:54")
            && lines[0].contains("(1 so far)"),
        "{}",
        lines[0]
    );
}

/// A UDP FULLNAT service on two workers with `extra` in `[dataplane]`: udp VIP:54 → RS1:54
/// from the local address.
fn two_worker_config(extra: &str) -> String {
    fullnat::exhaustion_config().replace("workers = [1]\n", &format!("workers = [1, 2]\n{extra}"))
}

/// One flow of `C1:cport` to VIP:54 owned by worker `owner`: (client datagram, the real
/// server's reply to the local port the owner picks, what the owner sends for each),
/// computed by the owner's pure pipeline (rvsd's pools are seeded the same way).
fn two_worker_flow(body: &str, owner: usize, cport: u16) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    use fastpath::frame::{Frame, VecFrame};
    use fastpath::verdict::Verdict;
    use fixtures::packet::{padded, udp, Ip};
    use topo::{from, C1, CLIENT_TTL, DNS_ANSWER, FROM_ROUTER, VIP};
    assert_eq!(fastpath::pipeline::owner(C1, cport, 2), owner);
    let config = pure::config(body);
    let snapshot = Snapshot::build(&config, &[topo::PORT_MAC], None, 2).unwrap();
    let mut pipeline = Pipeline::new(owner, 2, 64, &snapshot, 0).unwrap();
    let mut send = |frame: &[u8]| {
        let mut frame = VecFrame::new(frame);
        let verdict = pipeline.packet(&snapshot, 0, &mut frame, 0);
        assert!(matches!(verdict, Verdict::Tx { port: 0 }), "{verdict:?}");
        frame.data().to_vec()
    };
    let query = padded(udp(
        FROM_ROUTER,
        Ip::new(C1, VIP).ttl(CLIENT_TTL),
        cport,
        54,
        b"q",
    ));
    let sent = send(&query);
    let lport = u16::from_be_bytes([sent[34], sent[35]]);
    assert_eq!(fastpath::laddr::owner(lport, 2), owner, "lport {lport}");
    let reply = padded(udp(
        from(fullnat::RS1_MAC),
        Ip::new(fullnat::RS1, fullnat::LIP),
        54,
        lport,
        DNS_ANSWER,
    ));
    let answered = send(&reply);
    (query, reply, vec![sent, answered])
}

/// `laddr_steering = "auto"` (the default) with two workers on a device without flow rules
/// (net_pcap, which has no `rte_flow` support: like every device these tests can use, so
/// creating rules on a NIC that supports them is not tested here): rvsd starts, logs and
/// reports the hand-over with the driver's reason, and FULLNAT works through it. Every
/// packet arrives on worker 0's queue: the client datagram and the reply of the flow worker 1
/// owns (the reply by its local port) are handed over, and worker 1 answers them.
#[test]
fn rvsd_hands_fullnat_replies_over_when_the_device_has_no_flow_rules() {
    let _serial = serial();
    let body = two_worker_config("");
    // A client port of C1 that worker 1 owns, then one that worker 0 owns.
    let cports: Vec<u16> = (1024..)
        .take(64)
        .filter(|&p| fastpath::pipeline::owner(topo::C1, p, 2) == 1)
        .take(1)
        .chain(
            (1024..)
                .take(64)
                .filter(|&p| fastpath::pipeline::owner(topo::C1, p, 2) == 0)
                .take(1),
        )
        .collect();
    let (q1, r1, out1) = two_worker_flow(&body, 1, cports[0]);
    let (q0, r0, out0) = two_worker_flow(&body, 0, cports[1]);
    let run = common::run_pcap_queues(&body, &[vec![q1, q0, r1, r0], Vec::new()]);
    assert!(
        run.status.success(),
        "rvsd failed: {}\n{}",
        run.status,
        run.log
    );
    let steering = &run.stats["laddr_steering"];
    assert_eq!(steering["mode"], "handover", "{}", run.stats);
    assert_eq!(steering["rules"], 0);
    let reason = steering["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("net_pcap0: port 0: rte_flow_validate (ipv4 dst 10.0.0.200 tcp dst port 0x0/0x1 -> queue 0): ")
            && reason.contains("Function not implemented"),
        "the driver's reason: {reason}"
    );
    let line = run
        .log
        .lines()
        .find(|l| l.contains("FULLNAT reply steering:"))
        .unwrap_or_else(|| panic!("no steering line in\n{}", run.log));
    assert!(
        line.contains("hand-over between workers (net_pcap0: "),
        "{line}"
    );
    common::assert_frames_eq("worker 1's frames", &out1, &run.outputs[1]);
    let mut expected0 = fullnat::announcements();
    expected0.extend(out0);
    common::assert_frames_eq("worker 0's frames", &expected0, &run.outputs[0]);
    assert_eq!(run.stats["workers"][0]["handed_over"], 2, "{}", run.stats);
    assert_eq!(run.stats["workers"][1]["handed_over"], 0);
    let drops = run.stats["drops"].as_object().expect("drops");
    assert!(drops.values().all(|n| n == 0), "drops: {drops:?}");
}

/// `laddr_steering = "rte_flow"` on a device that refuses the rules: rvsd does not start,
/// and says which rule the driver refused and why.
#[test]
fn rvsd_refuses_to_start_when_rte_flow_is_required_and_refused() {
    let _serial = serial();
    let body = two_worker_config("laddr_steering = \"rte_flow\"\n");
    let query = fixtures::packet::arp_request([2, 0, 0, 0, 0, 0xc1], topo::ROUTER, topo::DIP);
    let run = common::run_pcap_queues(&body, &[vec![query], Vec::new()]);
    assert_eq!(run.status.code(), Some(1), "{}", run.log);
    let line = run
        .log
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error line in\n{}", run.log));
    assert!(
        line.contains(
            "laddr_steering = \"rte_flow\": net_pcap0: port 0: rte_flow_validate (ipv4 dst \
             10.0.0.200 tcp dst port 0x0/0x1 -> queue 0): Function not implemented"
        ),
        "{line}"
    );
    assert_eq!(
        run.stats,
        serde_json::Value::Null,
        "no report: it never ran"
    );
}

/// Rules follow live changes: rvsd starts with two workers and no local address (nothing to
/// steer yet), `rvsadm -P` adds one, and the control thread tries its rules as it picks up
/// the new snapshot; net_pcap refuses them, so rvsd logs why, once, and stays on the
/// hand-over (`auto`), which `--stats-json` reports; removing the address changes nothing.
#[test]
fn rvsd_tries_flow_rules_when_a_local_address_is_added_live() {
    let _serial = serial();
    let body = two_worker_config("")
        .replace("laddrs = [\"10.0.0.200\"]\n", "")
        .replace("mode = \"fullnat\"", "mode = \"nat\"");
    assert!(!body.contains("laddrs"), "{body}");
    let arp = fixtures::packet::arp_request([2, 0, 0, 0, 0, 0xc1], topo::ROUTER, topo::DIP);
    let live = common::live::Live::start_queues("", &body, &[vec![arp], Vec::new()]);
    let first = live.log();
    assert!(
        first.contains(
            "FULLNAT reply steering: hand-over between workers (no FULLNAT local address to \
             steer yet"
        ),
        "{first}"
    );
    live.ok("-P -u 10.0.0.100:54 -z 10.0.0.200");
    let refusal = "laddr_steering = \"auto\": no flow rules, FULLNAT replies received by \
                   another worker are handed over: net_pcap0: port 0: rte_flow_validate \
                   (ipv4 dst 10.0.0.200 tcp dst port 0x0/0x1 -> queue 0): Function not \
                   implemented";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !live.log().contains(refusal) {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{}",
            live.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    live.ok("-Q -u 10.0.0.100:54 -z 10.0.0.200");
    live.ok("-P -u 10.0.0.100:54 -z 10.0.0.200");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        live.log().matches("no flow rules").count(),
        1,
        "{}",
        live.log()
    );
    let stats = live.stop();
    let steering = &stats["laddr_steering"];
    assert_eq!(steering["mode"], "handover", "{stats}");
    assert_eq!(steering["rules"], 0);
    assert!(
        steering["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rte_flow_validate")),
        "{steering}"
    );
}
