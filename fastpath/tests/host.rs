//! The host path's classifier (`fixtures/host.rs`): on a port with a kernel twin, each frame
//! is handled by the fast path, handed to the kernel with its punt reason, or dropped with its
//! drop reason, whatever the kind of address it is sent to.

mod fixtures;

use fixtures::{host, pure};

#[test]
fn pipeline_sorts_host_traffic_as_the_host_table_says() {
    let snapshot = host::snapshot(host::CONFIG);
    let mut pipeline = pure::pipeline(host::CONFIG, &snapshot);
    let failures = pure::run(&mut pipeline, &snapshot, &host::fixtures(), |i| i as u64);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Without a twin the same port punts nothing: what is not the fast path's is dropped, as
/// before the host path existed.
#[test]
fn without_a_twin_nothing_is_punted() {
    let body = host::CONFIG
        .replace("exception = { iface = \"rvs0\", kind = \"tap\" }\n", "")
        .replace("vip_mode = \"kernel\"\n", "vip_mode = \"routed\"\n");
    let snapshot = pure::snapshot(&body, host::PORT_MAC);
    let mut pipeline = pure::pipeline(&body, &snapshot);
    for (i, f) in host::fixtures().iter().enumerate() {
        let mut frame = fastpath::frame::VecFrame::new(&f.input);
        let verdict = pipeline.packet(&snapshot, 0, &mut frame, i as u64);
        assert!(
            !matches!(verdict, fastpath::verdict::Verdict::Punt(_)),
            "#{i} {}: {verdict:?}",
            f.desc
        );
    }
}
