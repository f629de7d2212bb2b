//! Test harness shared by the integration tests: building packets, pcap files, running `rvsd`
//! on `net_pcap`, and comparing packets byte for byte with readable diffs.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod directors;
pub mod live;
pub mod lvs;
pub mod netns;

/// Frame builders, shared with the fixture tables of the pure pipeline.
pub use crate::fixtures::packet;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long rvsd may stay silent after the last input packet before it exits.
const EXIT_IDLE_MS: u64 = 300;
/// Upper bound for one pcap run (EAL init, replay, idle exit).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one `rvsd` run on `net_pcap` produced.
pub struct PcapRun {
    /// Frames rvsd transmitted, in order.
    pub output: Vec<Vec<u8>>,
    /// The `--stats-json` document.
    pub stats: serde_json::Value,
    /// rvsd's stderr (logs), for failure messages.
    pub log: String,
}

impl PcapRun {
    /// Drop counter for `reason` (a `DropReason::as_str` name).
    pub fn drops(&self, reason: &str) -> u64 {
        self.stats["drops"][reason]
            .as_u64()
            .unwrap_or_else(|| panic!("no drop reason {reason:?} in stats:\n{}", self.stats))
    }

    /// The drops object as (reason, count) pairs with non-zero counts.
    pub fn nonzero_drops(&self) -> Vec<(String, u64)> {
        self.stats["drops"]
            .as_object()
            .expect("drops is an object")
            .iter()
            .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| (k.clone(), n)))
            .collect()
    }
}

/// A scratch directory for one test, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rvs-test-")
        .tempdir()
        .expect("create temp dir")
}

/// A `--file-prefix` no other test process uses, so runs can go in parallel.
pub fn file_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rvst{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The EAL arguments for a single-worker pcap run: lcore 0 (control) and lcore 1 (worker) may
/// float over both CPUs so that parallel tests do not fight over a pinned core.
pub fn pcap_eal_args(rx: &Path, tx: &Path) -> String {
    format!(
        r#"args = ["--lcores", "0@(0-1),1@(0-1)", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{}", "--log-level", "lib.eal:error", "--vdev", "net_pcap0,rx_pcap={},tx_pcap={}"]"#,
        file_prefix(),
        rx.display(),
        tx.display()
    )
}

/// A `[control]` section with a socket inside `dir`, so that parallel rvsd processes never
/// share one, unless `config_body` has its own.
pub fn control_section(dir: &Path, config_body: &str) -> String {
    if config_body.contains("[control]") {
        String::new()
    } else {
        format!(
            "[control]\nsocket = \"{}\"\n",
            dir.join("rvsd.sock").display()
        )
    }
}

/// Path of the rvsd binary cargo built for these tests (for an example program, the one in
/// the same target directory).
pub fn rvsd_bin() -> PathBuf {
    option_env!("CARGO_BIN_EXE_rvsd")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling_bin("rvsd"))
}

/// Path of `rvsadm`, built into the same target directory as rvsd (`cargo build -p control`
/// if it is not there yet).
pub fn rvsadm_bin() -> PathBuf {
    let path = rvsd_bin().with_file_name("rvsadm");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "control", "--bin", "rvsadm"]);
        if path.parent().is_some_and(|dir| dir.ends_with("release")) {
            build.arg("--release");
        }
        assert!(
            build.status().is_ok_and(|s| s.success()),
            "cannot build rvsadm"
        );
    }
    path
}

/// Path of `rvscheck`, built (or brought up to date) into the same target directory as rvsd,
/// where rvsd looks for it first.
pub fn rvscheck_bin() -> PathBuf {
    let path = rvsd_bin().with_file_name("rvscheck");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", "rvscheck", "--bin", "rvscheck"]);
    if path.parent().is_some_and(|dir| dir.ends_with("release")) {
        build.arg("--release");
    }
    assert!(
        build.status().is_ok_and(|s| s.success()),
        "cannot build rvscheck"
    );
    path
}

/// A binary in the target directory of the running executable (target/<profile>/).
fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("examples") || dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// Runs rvsd with `config_body` (everything but `[eal]`, which the harness adds) on a
/// `net_pcap` port fed with `input`, and returns what it sent and counted.
pub fn run_pcap(config_body: &str, input: &[Vec<u8>]) -> PcapRun {
    let run = run_pcap_queues(config_body, &[input.to_vec()]);
    assert!(
        run.status.success(),
        "rvsd failed with {}; log:\n{}",
        run.status,
        run.log
    );
    assert!(!run.stats.is_null(), "no stats json; log:\n{}", run.log);
    PcapRun {
        output: run.outputs.into_iter().next().unwrap_or_default(),
        stats: run.stats,
        log: run.log,
    }
}

/// What one `rvsd` run on a multi-queue `net_pcap` port produced.
pub struct QueuesRun {
    /// How rvsd exited.
    pub status: std::process::ExitStatus,
    /// Frames sent on each tx queue (worker `i` sends on queue `i`), in order.
    pub outputs: Vec<Vec<Vec<u8>>>,
    /// The `--stats-json` document (`Null` if rvsd wrote none).
    pub stats: serde_json::Value,
    /// rvsd's stderr (logs).
    pub log: String,
}

/// Runs rvsd with `config_body` (everything but `[eal]`; its `[dataplane] workers` must be
/// lcores 1..=`inputs.len()`) on one `net_pcap` port with one rx/tx queue pair per worker:
/// rx queue `i` replays `inputs[i]` (which may be empty). Unlike [`run_pcap`], a failed run
/// is returned, not a panic.
pub fn run_pcap_queues(config_body: &str, inputs: &[Vec<Vec<u8>>]) -> QueuesRun {
    assert!(
        inputs.iter().any(|i| !i.is_empty()),
        "rvsd exits on idleness only after a first packet"
    );
    let dir = scratch();
    let path = |name: &str, i: usize| dir.path().join(format!("{name}{i}.pcap"));
    let mut vdev = "net_pcap0".to_string();
    for (i, frames) in inputs.iter().enumerate() {
        write_pcap(&path("in", i), frames);
        vdev += &format!(",rx_pcap={}", path("in", i).display());
    }
    for i in 0..inputs.len() {
        vdev += &format!(",tx_pcap={}", path("out", i).display());
    }
    let lcores = (0..=inputs.len())
        .map(|l| format!("{l}@(0-1)"))
        .collect::<Vec<_>>()
        .join(",");
    let stats = dir.path().join("stats.json");
    let config = dir.path().join("rvsd.toml");
    let control = control_section(dir.path(), config_body);
    let text = format!(
        r#"[eal]
args = ["--lcores", "{lcores}", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{}", "--log-level", "lib.eal:error", "--vdev", "{vdev}"]
{control}{config_body}"#,
        file_prefix()
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(rvsd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--exit-idle-ms")
        .arg(EXIT_IDLE_MS.to_string())
        .arg("--stats-json")
        .arg(&stats)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rvsd");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait rvsd") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect rvsd output");
            panic!(
                "rvsd did not exit within {RUN_TIMEOUT:?}; log:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = String::from_utf8_lossy(&child.wait_with_output().expect("rvsd output").stderr)
        .into_owned();
    let stats = std::fs::read_to_string(&stats)
        .map(|text| serde_json::from_str(&text).expect("stats json parses"))
        .unwrap_or(serde_json::Value::Null);
    QueuesRun {
        status,
        outputs: (0..inputs.len())
            .map(|i| read_pcap(&path("out", i)))
            .collect(),
        stats,
        log,
    }
}

/// Writes `frames` as an Ethernet pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = pcap_file::pcap::PcapWriter::new(file).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_micros(i as u64);
        w.write_packet(&pcap_file::pcap::PcapPacket::new(ts, f.len() as u32, f))
            .expect("write pcap packet");
    }
}

/// Reads every frame of a pcap file (missing file = no frames).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut r) = pcap_file::pcap::PcapReader::new(file) else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        frames.push(p.expect("pcap packet").data.into_owned());
    }
    frames
}

/// Asserts two frame lists are equal, reporting the first difference as a hex diff.
pub fn assert_frames_eq(what: &str, expected: &[Vec<u8>], actual: &[Vec<u8>]) {
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        if e != a {
            panic!("{what}: frame #{i} differs\n{}", packet::hex_diff(e, a));
        }
    }
    assert_eq!(
        expected.len(),
        actual.len(),
        "{what}: expected {} frames, got {}; first extra frame:\n{}",
        expected.len(),
        actual.len(),
        actual
            .get(expected.len())
            .or(expected.get(actual.len()))
            .map(|f| packet::hex(f))
            .unwrap_or_default()
    );
}

/// Parses "a.b.c.d".
pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("valid IPv4 literal")
}
