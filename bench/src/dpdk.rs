//! Running DPDK processes for a benchmark: memory (hugepages or not), pcap input files, `rvsd`
//! and `dpdk-testpmd` for a fixed forwarding time, and their counters.
//!
//! Both programs run with the same EAL layout: lcore 0 on CPU 0 (rvsd's control thread,
//! testpmd's main thread, both mostly asleep) and one forwarding lcore 1 on CPU 1; port 0 is
//! `net_pcap` (rx from a file, tx dropped), port 1 is `net_null` with `no-rx=1` (tx counted
//! and freed).
//!
//! A timed run starts counting when the process says forwarding has begun (rvsd: the worker's
//! "polling on lcore" log line; testpmd: "Press enter to exit", printed after its lcores were
//! launched), sleeps for the duration, then signals it (rvsd: SIGTERM, testpmd: SIGINT, which
//! stops forwarding and prints the accumulated statistics). EAL start-up and the pcap preload
//! are thus outside the window; what is left (the first pass over the file, signal latency)
//! is the same for two runs of different lengths and cancels in their difference.

use crate::callgrind;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes of hugepage memory one mbuf of the default data room takes (2176-byte buffer,
/// 128-byte `rte_mbuf`, mempool object header), rounded up.
const MBUF_FOOTPRINT: u64 = 2432;
/// Memory beyond the mbuf pool that EAL, the drivers and testpmd need.
const EXTRA_MB: u64 = 256;
const HUGEPAGE_BYTES: u64 = 2 << 20;
/// Longest wait for a process to start forwarding or to exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

/// Where DPDK's memory comes from.
#[derive(Debug)]
pub enum Memory {
    /// 2 MB hugepages with `--in-memory`: `vm.nr_hugepages` was `previous` and is `reserved`
    /// until [`Memory::release`] sets it back.
    Huge { previous: u64, reserved: u64 },
    /// `--no-huge -m <MB> --no-shconf` (4 KB pages: TLB misses on the mbuf pool cost
    /// throughput).
    NoHuge { why: String },
}

impl Memory {
    /// Reserves enough 2 MB hugepages for a pool of `mbufs` mbufs, or explains why not and
    /// falls back to `--no-huge`.
    pub fn setup(mbufs: u32, allow_huge: bool) -> Memory {
        if !allow_huge {
            return Memory::NoHuge {
                why: "--no-hugepages given".into(),
            };
        }
        let need = memory_mb(mbufs) * (1 << 20) / HUGEPAGE_BYTES;
        match reserve(need) {
            Ok((previous, reserved)) => Memory::Huge { previous, reserved },
            Err(why) => Memory::NoHuge { why },
        }
    }

    /// EAL memory arguments for a process with a pool of `mbufs` mbufs.
    pub fn eal_args(&self, mbufs: u32) -> Vec<String> {
        match self {
            Memory::Huge { .. } => vec!["--in-memory".into()],
            Memory::NoHuge { .. } => vec![
                "--no-huge".into(),
                "-m".into(),
                memory_mb(mbufs).to_string(),
                "--no-shconf".into(),
            ],
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            Memory::Huge { previous, reserved } => format!(
                "2 MB hugepages, --in-memory (vm.nr_hugepages {reserved} during the run, {previous} before and after)"
            ),
            Memory::NoHuge { why } => {
                format!("NO hugepages (--no-huge, 4 KB pages; expect about half the Mpps): {why}")
            }
        }
    }

    /// Gives back the hugepages this run reserved.
    pub fn release(self) {
        if let Memory::Huge { previous, .. } = self {
            if let Err(e) = std::fs::write(NR_HUGEPAGES, previous.to_string()) {
                eprintln!("warning: cannot restore {NR_HUGEPAGES} to {previous}: {e}");
            }
        }
    }
}

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Megabytes of DPDK memory for a pool of `mbufs`.
fn memory_mb(mbufs: u32) -> u64 {
    (u64::from(mbufs) * MBUF_FOOTPRINT).div_ceil(1 << 20) + EXTRA_MB
}

/// Free 2 MB hugepages, from `/proc/meminfo`.
fn free_hugepages() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let size_ok = info
        .lines()
        .any(|l| l.starts_with("Hugepagesize:") && l.split_whitespace().nth(1) == Some("2048"));
    let free = info
        .lines()
        .find(|l| l.starts_with("HugePages_Free:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    size_ok.then_some(free)
}

/// Makes at least `need` 2 MB hugepages free: returns (previous `nr_hugepages`, pages now
/// reserved).
fn reserve(need: u64) -> Result<(u64, u64), String> {
    let read = || -> Result<u64, String> {
        std::fs::read_to_string(NR_HUGEPAGES)
            .map_err(|e| format!("cannot read {NR_HUGEPAGES}: {e}"))?
            .trim()
            .parse()
            .map_err(|e| format!("{NR_HUGEPAGES}: {e}"))
    };
    let previous = read()?;
    let free = free_hugepages().ok_or("no 2 MB hugepage size")?;
    if free >= need {
        return Ok((previous, previous));
    }
    let wanted = previous + (need - free);
    std::fs::write(NR_HUGEPAGES, wanted.to_string())
        .map_err(|e| format!("cannot write {NR_HUGEPAGES} (run as root): {e}"))?;
    let now_free = free_hugepages().unwrap_or(0);
    if now_free < need {
        let _ = std::fs::write(NR_HUGEPAGES, previous.to_string());
        return Err(format!(
            "asked for {need} free 2 MB hugepages, the kernel gave {now_free}"
        ));
    }
    Ok((previous, read()?))
}

/// Writes `frames` as an Ethernet pcap file.
pub fn write_pcap(path: &Path, frames: impl Iterator<Item = Vec<u8>>) -> Result<u64, String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = pcap_file::pcap::PcapWriter::new(std::io::BufWriter::new(file))
        .map_err(|e| e.to_string())?;
    let mut n = 0u64;
    for f in frames {
        let ts = Duration::from_micros(n);
        let len = u32::try_from(f.len()).map_err(|e| e.to_string())?;
        w.write_packet(&pcap_file::pcap::PcapPacket::new(ts, len, &f))
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

/// The input port: `net_pcap0` reading `pcap`, looping over it with `infinite`.
pub fn pcap_vdev(pcap: &Path, infinite: bool) -> String {
    let mut s = format!("net_pcap0,rx_pcap={}", pcap.display());
    if infinite {
        s += ",infinite_rx=1";
    }
    s
}

/// EAL arguments shared by rvsd and testpmd: lcores 0 and 1 pinned to CPUs 0 and 1, the pcap
/// port 0 and the net_null port 1.
pub fn eal_args(memory: &Memory, mbufs: u32, input_vdev: &str, prefix: &str) -> Vec<String> {
    let mut args: Vec<String> = ["-l", "0-1"].map(String::from).to_vec();
    args.extend(memory.eal_args(mbufs));
    args.extend(
        [
            "--no-pci",
            "--no-telemetry",
            "--file-prefix",
            prefix,
            "--log-level",
            "lib.eal:error",
            "--vdev",
            input_vdev,
            "--vdev",
            "net_null0,no-rx=1",
        ]
        .map(String::from),
    );
    args
}

/// A `--file-prefix` unique to this process and call.
pub fn file_prefix(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rvsb{}_{tag}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How one process run went.
#[derive(Debug)]
pub struct Run {
    /// From "forwarding started" to the signal (timed runs) or to the exit (runs to the end
    /// of the input).
    pub window: Duration,
    /// Everything the process printed, stdout then stderr.
    pub output: String,
}

/// A started process whose output is collected line by line.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    collected: Vec<String>,
}

impl Watched {
    fn spawn(mut cmd: Command) -> Result<Watched, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        let (tx, lines) = mpsc::channel();
        let out = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [out, err].into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Watched {
            child,
            lines,
            collected: Vec::new(),
        })
    }

    /// Waits for a line containing `needle`; the instant it arrived.
    fn wait_for(&mut self, needle: &str) -> Result<Instant, String> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.collected.push(line);
                    if found {
                        return Ok(Instant::now());
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.drain();
                    return Err(format!(
                        "no {needle:?} from the process ({e}); output:\n{}",
                        self.collected.join("\n")
                    ));
                }
            }
        }
    }

    fn signal(&self, signal: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("kill -s {signal} failed"))
    }

    /// Waits for the exit; the whole output. With `signalled`, dying of a signal counts as
    /// success (testpmd re-raises the SIGINT it handled).
    fn finish(mut self, signalled: bool) -> Result<String, String> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain();
                return Err(format!(
                    "process did not exit; output:\n{}",
                    self.collected.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        self.drain();
        let output = self.collected.join("\n");
        let by_signal = std::os::unix::process::ExitStatusExt::signal(&status).is_some();
        if !(status.success() || signalled && by_signal) {
            return Err(format!("process failed with {status}; output:\n{output}"));
        }
        Ok(output)
    }

    /// Collects the remaining output (the streams close when the process is gone).
    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.collected.push(line);
        }
    }
}

/// Runs `cmd`, lets it forward for `duration` after a line containing `started` appears,
/// then sends `signal` and waits for it to exit.
fn timed(cmd: Command, started: &str, duration: Duration, signal: &str) -> Result<Run, String> {
    let mut p = Watched::spawn(cmd)?;
    let start = p.wait_for(started)?;
    std::thread::sleep(duration);
    let stop = Instant::now();
    p.signal(signal)?;
    let output = p.finish(true)?;
    Ok(Run {
        window: stop - start,
        output,
    })
}

/// Log line rvsd's worker prints when it starts polling.
const RVSD_STARTED: &str = "polling on lcore";
/// Log line rvsd prints when `--exit-idle-ms` ran out.
const RVSD_IDLE: &str = "no packet for";

/// An rvsd to run: its binary, and the directory and base name of its configuration, stats
/// and control socket.
pub struct Rvsd {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub name: String,
}

impl Rvsd {
    /// Writes `config` with a `[control]` socket of its own (not the system's default path,
    /// which another rvsd may be using) and the command line that runs it.
    fn command(
        &self,
        config: &str,
        extra: &[&str],
        callgrind_out: Option<&Path>,
    ) -> Result<(Command, PathBuf), String> {
        let conf = self.dir.join(format!("{}.toml", self.name));
        let stats = self.dir.join(format!("{}.json", self.name));
        let socket = self.dir.join(format!("{}.sock", self.name));
        let config = format!(
            "{config}\n[control]\nsocket = {:?}\n",
            socket.display().to_string()
        );
        std::fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
        let _ = std::fs::remove_file(&stats);
        let mut cmd = match callgrind_out {
            Some(out) => callgrind::command(&self.bin, out, false),
            None => Command::new(&self.bin),
        };
        cmd.arg("--config")
            .arg(&conf)
            .arg("--stats-json")
            .arg(&stats)
            .args(extra)
            .env("RUST_LOG", "info");
        Ok((cmd, stats))
    }

    /// Runs rvsd with `config` for `duration` of forwarding, then SIGTERM.
    pub fn timed(&self, config: &str, duration: Duration) -> Result<(Run, Stats), String> {
        let (cmd, stats) = self.command(config, &[], None)?;
        let run = timed(cmd, RVSD_STARTED, duration, "TERM")?;
        let stats = Stats::read(&stats)?;
        Ok((run, stats))
    }

    /// Runs rvsd under callgrind (profile in `out`) for `duration` of forwarding, then
    /// SIGTERM; returns the instructions executed and the stats.
    pub fn callgrind(
        &self,
        config: &str,
        duration: Duration,
        out: &Path,
    ) -> Result<(u64, Stats), String> {
        let (cmd, stats) = self.command(config, &[], Some(out))?;
        timed(cmd, RVSD_STARTED, duration, "TERM")?;
        Ok((callgrind::total(out)?, Stats::read(&stats)?))
    }

    /// Runs rvsd with `config` until its input has been idle for `idle_ms`. The window runs
    /// from the worker's start to the last packet: to rvsd's "no packet for … ms" line (printed
    /// at most one 10 ms control tick after the idle time ran out) less `idle_ms`, which leaves
    /// EAL clean-up and the stats file out.
    pub fn to_end(&self, config: &str, idle_ms: u64) -> Result<(Run, Stats), String> {
        let idle = idle_ms.to_string();
        let (cmd, stats) = self.command(config, &["--exit-idle-ms", &idle], None)?;
        let mut p = Watched::spawn(cmd)?;
        let start = p.wait_for(RVSD_STARTED)?;
        let idle_seen = p.wait_for(RVSD_IDLE)?;
        let output = p.finish(false)?;
        let stats = Stats::read(&stats)?;
        let window = (idle_seen - start).saturating_sub(Duration::from_millis(idle_ms));
        Ok((Run { window, output }, stats))
    }
}

/// An rvsd started with [`Rvsd::serve`]: forwarding until [`Serving::stop`], killed if dropped
/// before.
pub struct Serving {
    process: Option<Watched>,
    /// Its control socket.
    pub socket: PathBuf,
    stats: PathBuf,
}

impl Rvsd {
    /// Starts rvsd with `config` and returns once its worker polls (the control socket is
    /// open before that).
    pub fn serve(&self, config: &str) -> Result<Serving, String> {
        let (cmd, stats) = self.command(config, &[], None)?;
        let mut process = Watched::spawn(cmd)?;
        process.wait_for(RVSD_STARTED)?;
        Ok(Serving {
            process: Some(process),
            socket: self.dir.join(format!("{}.sock", self.name)),
            stats,
        })
    }
}

impl Serving {
    /// SIGTERM, then the final stats.
    pub fn stop(mut self) -> Result<Stats, String> {
        let process = self.process.take().ok_or("rvsd already stopped")?;
        process.signal("TERM")?;
        process.finish(true)?;
        Stats::read(&self.stats)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// What rvsd's `--stats-json` says.
#[derive(Debug, Clone)]
pub struct Stats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Connections scheduled, all services.
    pub conns: u64,
    /// Connections in ESTABLISHED at the end (ActiveConn), all real servers.
    pub active: u64,
    /// Non-zero drop counters.
    pub drops: Vec<(String, u64)>,
}

impl Stats {
    fn read(path: &Path) -> Result<Stats, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let drops = v["drops"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, n)| num(n) > 0)
                    .map(|(k, n)| (k.clone(), num(n)))
                    .collect()
            })
            .unwrap_or_default();
        let conns = v["services"]
            .as_array()
            .map(|s| s.iter().map(|s| num(&s["conns"])).sum())
            .unwrap_or(0);
        let active = v["services"]
            .as_array()
            .map(|s| {
                s.iter()
                    .flat_map(|s| s["reals"].as_array().into_iter().flatten())
                    .map(|r| num(&r["active"]))
                    .sum()
            })
            .unwrap_or(0);
        Ok(Stats {
            rx_packets: num(&v["rx_packets"]),
            tx_packets: num(&v["tx_packets"]),
            conns,
            active,
            drops,
        })
    }

    /// Total of the drop counters.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// What testpmd prints once its forwarding lcores run (without `--stats-period`).
const TESTPMD_STARTED: &str = "Press enter to exit";

/// testpmd's arguments: `eal`, then macswap forwarding started at once, burst 32.
fn testpmd_args(eal: &[String], mbufs: u32) -> Vec<String> {
    let mut args = eal.to_vec();
    args.push("--".into());
    args.push(format!("--total-num-mbufs={mbufs}"));
    args.extend(["--forward-mode=macswap", "--auto-start", "--burst=32"].map(String::from));
    args
}

/// Runs `dpdk-testpmd` in macswap mode with `eal` for `duration` of forwarding; returns the
/// run and the packets it transmitted (all ports).
pub fn testpmd(eal: &[String], mbufs: u32, duration: Duration) -> Result<(Run, u64), String> {
    // testpmd prints with stdio: line-buffer it so "Press enter to exit" arrives on time.
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "dpdk-testpmd"])
        .args(testpmd_args(eal, mbufs));
    let run = timed(cmd, TESTPMD_STARTED, duration, "INT")?;
    let tx = accumulated_tx(&run.output)
        .ok_or_else(|| format!("no accumulated statistics from testpmd:\n{}", run.output))?;
    Ok((run, tx))
}

/// What `nat_floor` prints once its forwarding lcore runs.
const NAT_FLOOR_STARTED: &str = "nat_floor forwarding";

/// Runs the NAT floor reference (`bench/floor/nat_floor.c`, built by `bench/run.sh`) with
/// `eal` for `duration` of forwarding; returns the run and the packets it transmitted.
pub fn nat_floor(
    bin: &Path,
    eal: &[String],
    mbufs: u32,
    duration: Duration,
) -> Result<(Run, u64), String> {
    let mut cmd = Command::new("stdbuf");
    cmd.arg("-oL")
        .arg(bin)
        .args(eal)
        .args(["--", "--mbufs", &mbufs.to_string()]);
    let run = timed(cmd, NAT_FLOOR_STARTED, duration, "INT")?;
    let tx = nat_floor_tx(&run.output)
        .ok_or_else(|| format!("no statistics from nat_floor:\n{}", run.output))?;
    Ok((run, tx))
}

/// The `tx-packets:` figure of nat_floor's last line.
fn nat_floor_tx(output: &str) -> Option<u64> {
    let line = output
        .lines()
        .find(|l| l.starts_with("nat_floor rx-packets:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "tx-packets:")?;
    words.next()?.parse().ok()
}

/// Runs `dpdk-testpmd` as [`testpmd`] does, under callgrind (profile in `out`); returns the
/// instructions executed and the packets transmitted.
pub fn testpmd_callgrind(
    eal: &[String],
    mbufs: u32,
    duration: Duration,
    out: &Path,
) -> Result<(u64, u64), String> {
    let mut cmd = callgrind::command("stdbuf", out, true);
    cmd.args(["-oL", "dpdk-testpmd"])
        .args(testpmd_args(eal, mbufs));
    let run = timed(cmd, TESTPMD_STARTED, duration, "INT")?;
    let tx = accumulated_tx(&run.output)
        .ok_or_else(|| format!("no accumulated statistics from testpmd:\n{}", run.output))?;
    Ok((callgrind::total(out)?, tx))
}

/// TX-packets of testpmd's "Accumulated forward statistics for all ports" block.
fn accumulated_tx(output: &str) -> Option<u64> {
    let block = output.split("Accumulated forward statistics").nth(1)?;
    let line = block.lines().find(|l| l.contains("TX-packets:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Checks that the tools this benchmark runs are installed.
pub fn require(tool: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()));
    found
        .then_some(())
        .ok_or_else(|| format!("{tool} not found: run scripts/setup.sh (packages dpdk, valgrind)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_testpmd_accumulated_statistics() {
        let out = "  ---- port 0 ----\n  TX-packets: 5 \n  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++\n  RX-packets: 314307008      RX-dropped: 0             RX-total: 314307008\n  TX-packets: 314307000      TX-dropped: 8             TX-total: 314307008\n";
        assert_eq!(accumulated_tx(out), Some(314_307_000));
        assert_eq!(accumulated_tx("nothing"), None);
    }

    #[test]
    fn parses_nat_floor_statistics() {
        let out = "nat_floor forwarding on lcore 1\nnat_floor rx-packets: 1200 tx-packets: 1184 counted: 1184\n";
        assert_eq!(nat_floor_tx(out), Some(1184));
        assert_eq!(nat_floor_tx("nat_floor forwarding on lcore 1\n"), None);
    }

    #[test]
    fn memory_covers_the_pool() {
        assert!(memory_mb(524_287) > 1200);
        let m = Memory::NoHuge { why: String::new() };
        assert_eq!(m.eal_args(1)[0], "--no-huge");
    }
}
