//! What the multi-director tests (failover, ECMP) share: starting an rvsd that creates kernel
//! twins, waiting for a condition, and ending a `longlived.py` run.

use super::netns::{try_run, Topology};
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts rvsd with `config` in namespace `ns` (its log to `log`) and waits until its twin
/// `twin` exists; returns rvsd's pid.
pub fn start_rvsd(topo: &mut Topology, ns: &str, config: &Path, log: &Path, twin: &str) -> u32 {
    let bin = super::rvsd_bin().display().to_string();
    let config = config.display().to_string();
    let pid = topo.spawn(ns, &[&bin, "--config", &config], log).id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !try_run(&["ip", "netns", "exec", ns, "ip", "link", "show", twin]) {
        assert!(
            Instant::now() < deadline,
            "rvsd in {ns} did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    pid
}

/// Waits until `cond` holds, at most `limit`; the time it took.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Stops a `longlived.py` run (creates its stop file) and returns its JSON report.
pub fn finish_longlived(child: std::process::Child, stop: &Path) -> serde_json::Value {
    std::fs::write(stop, b"").unwrap();
    let out = child.wait_with_output().expect("longlived.py ends");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "longlived.py output {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
