//! The data-path benchmarks, in one run, printed as one table with the same-run references
//! and the ratios:
//!
//! 1. **Established-flow throughput** of `rvsd` (NAT, DR and FULLNAT, one worker) against
//!    `dpdk-testpmd --forward-mode=macswap` on the same devices and lcores: rx from `net_pcap`
//!    looping over a file (`infinite_rx=1`), tx to `net_null`. The file holds a SYN for each
//!    flow, then `--ack-rounds` rounds of one ACK per flow. The first pass opens the flows;
//!    from the second pass on every packet hits an ESTABLISHED connection (an ACK, or the
//!    flow's SYN again, which the IPVS state table keeps in ESTABLISHED). Rates come from two
//!    runs of different lengths: Δtx / Δwindow, which leaves out start-up and the first pass.
//!    The input floor on the same file (rvsd dropping every frame at its first check: pcap
//!    rx, dispatch, free) over testpmd is the ratio no pipeline can exceed on these devices.
//! 2. **New connections per second** of one worker: files of distinct SYNs replayed once;
//!    Δconnections / Δtime between a small and a large file. The same-run reference is the
//!    input floor: rvsd receiving the large file and dropping every frame at its first check.
//! 3. **Instructions per packet of the whole forwarding loop** (rx, pipeline, tx, timers,
//!    counters) of rvsd against testpmd, both under callgrind: ΔIr / Δtx of two runs. Unlike
//!    the Mpps ratio this is not moved by other load on the machine.
//! 4. **Instructions per packet of the pipeline** alone (`pipeline_ipp` under callgrind), with
//!    the cost per function, and **bytes per connection** of the connection table.
//!
//! Run with `bench/run.sh` (builds, then runs this), as root for hugepages.

use bench::callgrind::{self, Pair};
use bench::dpdk::{self, Memory, Rvsd, Stats};
use bench::lab::{self, Mode, Packet};
use clap::Parser;
use fastpath::conn;
use fastpath::service::Real;
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Established-flow throughput against testpmd.
    Throughput,
    /// New connections per second.
    Conns,
    /// Instructions per packet of the whole forwarding loop, rvsd against testpmd (callgrind).
    Loop,
    /// Instructions per packet of the pipeline (callgrind) and bytes per connection.
    Ipp,
}

/// rvs data-path benchmarks.
#[derive(Parser, Debug)]
#[command(name = "dataplane_bench")]
struct Args {
    /// The rvsd binary [default: next to this program].
    #[arg(long)]
    rvsd: Option<PathBuf>,
    /// The pipeline_ipp binary [default: next to this program].
    #[arg(long)]
    ipp: Option<PathBuf>,
    /// The NAT floor reference (bench/floor/nat_floor.c) [default: next to this program].
    #[arg(long)]
    nat_floor: Option<PathBuf>,
    /// Benchmarks to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Section::Throughput, Section::Conns, Section::Loop, Section::Ipp])]
    only: Vec<Section>,
    /// Flows of the established-flow benchmarks.
    #[arg(long, default_value_t = 100_000)]
    flows: u32,
    /// ACK rounds after the SYNs in the throughput file.
    #[arg(long, default_value_t = 3)]
    ack_rounds: u32,
    /// Repetitions of every timed measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Forwarding time of the short throughput runs, seconds.
    #[arg(long, default_value_t = 1.0)]
    short_secs: f64,
    /// Forwarding time of the long throughput runs, seconds.
    #[arg(long, default_value_t = 4.0)]
    long_secs: f64,
    /// SYNs in the small file of the new-connection benchmark.
    #[arg(long, default_value_t = 250_000)]
    syns_small: u32,
    /// SYNs in the large file of the new-connection benchmark.
    #[arg(long, default_value_t = 1_250_000)]
    syns_large: u32,
    /// Packets of the short and long callgrind runs (established flows).
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 500_000])]
    ipp_packets: Vec<u32>,
    /// Packets of the short and long callgrind runs (new connections).
    #[arg(long, value_delimiter = ',', default_values_t = [50_000, 250_000])]
    ipp_syns: Vec<u32>,
    /// Flows of the whole-loop callgrind runs.
    #[arg(long, default_value_t = 10_000)]
    loop_flows: u32,
    /// Forwarding time of the short and long whole-loop callgrind runs, seconds.
    #[arg(long, value_delimiter = ',', default_values_t = [3.0, 9.0])]
    loop_secs: Vec<f64>,
    /// Do not reserve hugepages; run DPDK with --no-huge.
    #[arg(long)]
    no_hugepages: bool,
    /// Keep the work directory (pcap files, configurations, callgrind profiles).
    #[arg(long)]
    keep: bool,
    /// `[dataplane] idle_sleep_us` of the rvsd runs (adaptive polling); absent: busy polling.
    /// Run the throughput rows with and without it to see what it costs.
    #[arg(long, value_name = "US")]
    idle_sleep_us: Option<u32>,
}

/// `config` with the `--idle-sleep-us` of `args`, if given.
fn with_idle(args: &Args, config: String) -> String {
    match args.idle_sleep_us {
        Some(us) => config.replacen(
            "[dataplane]\n",
            &format!("[dataplane]\nidle_sleep_us = {us}\n"),
            1,
        ),
        None => config,
    }
}

/// The default connection table size (`[dataplane] conn_table_size`).
const DEFAULT_CONN_TABLE: u32 = 1 << 20;
/// Idle time after which rvsd exits once a finite file is consumed: long enough that a
/// worker preempted on a busy machine is not taken for the end of the file.
const IDLE_MS: u64 = 500;
/// Mbufs for runs without a looping file.
const SMALL_POOL: u32 = 32767;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line of the result table.
struct Row {
    what: String,
    measured: String,
    reference: String,
    ratio: String,
    target: String,
    verdict: String,
}

/// The report: the table rows and the details printed under it.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    details: String,
}

impl Report {
    fn row(
        &mut self,
        what: String,
        measured: String,
        reference: String,
        ratio: String,
    ) -> &mut Row {
        self.rows.push(Row {
            what,
            measured,
            reference,
            ratio,
            target: String::new(),
            verdict: String::new(),
        });
        self.rows.last_mut().expect("just pushed")
    }
}

impl Row {
    fn target(&mut self, target: &str, met: bool) {
        self.target = target.into();
        self.verdict = if met { "met" } else { "MISSED" }.into();
    }
}

fn run(args: &Args) -> Result<(), String> {
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir_of_exe = here.parent().ok_or("no directory for this program")?;
    let rvsd = args.rvsd.clone().unwrap_or_else(|| dir_of_exe.join("rvsd"));
    let ipp = args
        .ipp
        .clone()
        .unwrap_or_else(|| dir_of_exe.join("pipeline_ipp"));
    let wants = |s| args.only.contains(&s);
    let uses_rvsd = wants(Section::Throughput) || wants(Section::Conns) || wants(Section::Loop);
    if uses_rvsd && !rvsd.is_file() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p dataplane) or use bench/run.sh",
            rvsd.display()
        ));
    }
    let nat_floor = args
        .nat_floor
        .clone()
        .unwrap_or_else(|| dir_of_exe.join("nat_floor"));
    if wants(Section::Throughput) && !nat_floor.is_file() {
        return Err(format!(
            "{} not found: use bench/run.sh, which builds it",
            nat_floor.display()
        ));
    }
    if wants(Section::Ipp) && !ipp.is_file() {
        return Err(format!("{} not found: use bench/run.sh", ipp.display()));
    }
    if wants(Section::Throughput) || wants(Section::Loop) {
        dpdk::require("dpdk-testpmd")?;
        dpdk::require("stdbuf")?;
    }
    if wants(Section::Ipp) || wants(Section::Loop) {
        dpdk::require("valgrind")?;
        dpdk::require("callgrind_annotate")?;
    }
    let work = tempfile::Builder::new()
        .prefix("rvs-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let rvsd = Rvsd {
        bin: rvsd,
        dir: work.path().to_path_buf(),
        name: "rvsd".into(),
    };

    let tp_mbufs = pool_for(args.flows * (1 + args.ack_rounds));
    let timed_runs = wants(Section::Throughput) || wants(Section::Conns);
    let memory = timed_runs.then(|| {
        let biggest = if wants(Section::Throughput) {
            tp_mbufs
        } else {
            SMALL_POOL
        };
        Memory::setup(biggest, !args.no_hugepages)
    });
    let mut report = Report::default();
    let result = (|| {
        if let Some(memory) = &memory {
            if wants(Section::Throughput) {
                throughput(args, memory, &rvsd, &nat_floor, tp_mbufs, &mut report)?;
            }
            if wants(Section::Conns) {
                new_conns(args, memory, &rvsd, &mut report)?;
            }
        }
        if wants(Section::Loop) {
            whole_loop(args, &rvsd, &mut report)?;
        }
        if wants(Section::Ipp) {
            instructions(args, &ipp, work.path(), &mut report)?;
            bytes_per_conn(&mut report)?;
        }
        Ok::<(), String>(())
    })();
    let memory_line = memory.as_ref().map(Memory::describe);
    if let Some(memory) = memory {
        memory.release();
    }
    print_report(args, memory_line.as_deref(), &report);
    if args.keep {
        println!("work directory kept: {}", work.keep().display());
    }
    result
}

/// An mbuf pool (2^k - 1) holding `packets` looping packets plus room for the queues.
fn pool_for(packets: u32) -> u32 {
    (packets + 16384).next_power_of_two() - 1
}

fn eal_toml(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    format!("[eal]\nargs = [{}]\n", quoted.join(", "))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// A count over a window, from a run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    count: u64,
}

/// Δcount / Δsecs between a short and a long run.
fn slope(short: Sample, long: Sample) -> f64 {
    (long.count as f64 - short.count as f64) / (long.secs - short.secs)
}

/// Established-flow throughput: testpmd, the NAT floor reference, rvsd in every mode, and
/// the input floor, interleaved, short and long.
fn throughput(
    args: &Args,
    memory: &Memory,
    rvsd: &Rvsd,
    nat_floor: &Path,
    mbufs: u32,
    report: &mut Report,
) -> Result<(), String> {
    let pcap = rvsd.dir.join("established.pcap");
    let flows = args.flows;
    let packets = dpdk::write_pcap(&pcap, lab::established_pass(flows, args.ack_rounds))?;
    let vdev = dpdk::pcap_vdev(&pcap, true);
    let durations = [args.short_secs, args.long_secs].map(Duration::from_secs_f64);
    let modes = Mode::ALL;
    // Systems: testpmd, the NAT floor, rvsd in each mode, the input floor.
    const TESTPMD: usize = 0;
    const NAT_FLOOR: usize = 1;
    let first_mode = 2;
    let input_floor = first_mode + modes.len();
    // [rep][system] -> rate
    let mut rates: Vec<Vec<f64>> = Vec::new();
    let mut log = String::new();
    for rep in 0..args.reps {
        // [system] -> (short, long)
        let mut samples = vec![
            [Sample {
                secs: 0.0,
                count: 0,
            }; 2];
            input_floor + 1
        ];
        for (d, &duration) in durations.iter().enumerate() {
            let eal = dpdk::eal_args(memory, mbufs, &vdev, &dpdk::file_prefix("tp"));
            let (run, tx) = dpdk::testpmd(&eal, mbufs, duration)?;
            samples[TESTPMD][d] = Sample {
                secs: run.window.as_secs_f64(),
                count: tx,
            };
            let eal = dpdk::eal_args(memory, mbufs, &vdev, &dpdk::file_prefix("nf"));
            let (run, tx) = dpdk::nat_floor(nat_floor, &eal, mbufs, duration)?;
            samples[NAT_FLOOR][d] = Sample {
                secs: run.window.as_secs_f64(),
                count: tx,
            };
            for (m, &mode) in modes.iter().enumerate() {
                let eal = dpdk::eal_args(memory, mbufs, &vdev, &dpdk::file_prefix("rvs"));
                let config = with_idle(
                    args,
                    eal_toml(&eal) + &lab::config_body(mode, DEFAULT_CONN_TABLE, mbufs),
                );
                let (run, stats) = rvsd.timed(&config, duration)?;
                check_established(mode, flows, &stats, &mut log);
                samples[first_mode + m][d] = Sample {
                    secs: run.window.as_secs_f64(),
                    count: stats.tx_packets,
                };
            }
            // The input floor: the same file, every frame dropped at the first check.
            let eal = dpdk::eal_args(memory, mbufs, &vdev, &dpdk::file_prefix("floor"));
            let config = eal_toml(&eal) + &lab::floor_config_body(DEFAULT_CONN_TABLE, mbufs);
            let (run, stats) = rvsd.timed(&config, duration)?;
            samples[input_floor][d] = Sample {
                secs: run.window.as_secs_f64(),
                count: stats.rx_packets,
            };
        }
        let r: Vec<f64> = samples.iter().map(|s| slope(s[0], s[1])).collect();
        let names = ["testpmd", "NAT floor"]
            .into_iter()
            .chain(modes.iter().map(|m| m.label()))
            .chain(["input floor"]);
        let _ = writeln!(
            log,
            "  rep {}: {}; windows {}",
            rep + 1,
            names
                .zip(&r)
                .map(|(name, rate)| format!(
                    "{name} {:.2} Mpps ({:.3})",
                    rate / 1e6,
                    rate / r[TESTPMD]
                ))
                .collect::<Vec<_>>()
                .join(", "),
            samples
                .iter()
                .map(|s| format!("{:.3}/{:.3} s", s[0].secs, s[1].secs))
                .collect::<Vec<_>>()
                .join(", ")
        );
        rates.push(r);
    }
    let column = |i: usize| rates.iter().map(|r| r[i]).collect::<Vec<_>>();
    // Ratios within one repetition, then their median and range.
    let ratios = |system: usize, reference: usize| {
        let per_rep: Vec<f64> = rates.iter().map(|r| r[system] / r[reference]).collect();
        let (lo, hi) = range(&per_rep);
        (median(&per_rep), lo, hi)
    };
    let testpmd = median(&column(TESTPMD));
    let floor = median(&column(NAT_FLOOR));
    let (ratio, lo, hi) = ratios(NAT_FLOOR, TESTPMD);
    report.row(
        format!("NAT floor reference, {flows} flows"),
        format!("{:.2} Mpps", floor / 1e6),
        format!("testpmd macswap {:.2} Mpps", testpmd / 1e6),
        format!("{ratio:.3} ({lo:.2}-{hi:.2})"),
    );
    for (m, mode) in modes.iter().enumerate() {
        let system = first_mode + m;
        let (to_testpmd, _, _) = ratios(system, TESTPMD);
        let (to_floor, lo, hi) = ratios(system, NAT_FLOOR);
        // The speed issue's targets: NAT and DR at 0.85 of the floor, FULLNAT at 0.70.
        let target = if *mode == Mode::FullNat { 0.70 } else { 0.85 };
        report
            .row(
                format!("established {}, {flows} flows", mode.label()),
                format!("{:.2} Mpps", median(&column(system)) / 1e6),
                format!(
                    "NAT floor {:.2} Mpps; testpmd {:.2} Mpps",
                    floor / 1e6,
                    testpmd / 1e6
                ),
                format!("{to_floor:.3} ({lo:.2}-{hi:.2}) of floor; {to_testpmd:.3} of testpmd"),
            )
            .target(&format!("≥ {target:.2} of floor"), to_floor >= target);
    }
    let (ratio, lo, hi) = ratios(input_floor, TESTPMD);
    report.row(
        "input floor, same file".to_string(),
        format!("{:.2} Mpps", median(&column(input_floor)) / 1e6),
        format!("testpmd macswap {:.2} Mpps", testpmd / 1e6),
        format!("{ratio:.3} ({lo:.2}-{hi:.2})"),
    );
    let _ = writeln!(
        report.details,
        "NAT floor: bench/floor/nat_floor.c, a minimal NAT forwarder in C on the same devices, lcores and memory (one \
         prefetch pass over the burst, flat table of 64-byte buckets holding keys and values, RFC 1624 updates, MAC \
         rewrite, per-real counters; no state machine, timers or validation): the least any NAT costs on this \
         harness. Input floor: rvsd on the same file with dpdk0 on another MAC, every frame dropped at its first check \
         (foreign_mac): pcap rx, dispatch, mbuf free, no pipeline and no tx; its ratio to testpmd bounds what any \
         pipeline can reach on these devices. Established flows: {packets} packets per pass over the file ({flows} SYNs, then {} x {flows} ACKs); the first \
         pass opens every flow (SYN) and establishes it (ACK); later passes only hit ESTABLISHED connections (a SYN \
         on ESTABLISHED stays ESTABLISHED); every rvsd run is checked to end with {flows} connections, all active, \
         and no drop (a WARNING line otherwise). mbuf pool {mbufs}; conn_table_size {DEFAULT_CONN_TABLE}; \
         windows {:.1} s and {:.1} s after the start line; rate = Δtx / Δwindow of the two runs; ratio = median over \
         repetitions of (rvsd / reference of the same repetition), range in brackets.\n{log}",
        args.ack_rounds, args.short_secs, args.long_secs
    );
    Ok(())
}

/// Notes anything unexpected in an established-flow run: every flow must have been opened
/// once and be ESTABLISHED (active) at the end, and nothing dropped.
fn check_established(mode: Mode, flows: u32, stats: &Stats, log: &mut String) {
    let flows = u64::from(flows);
    if stats.conns != flows || stats.active != flows || stats.dropped() != 0 {
        let _ = writeln!(
            log,
            "  WARNING {}: {} conns, {} active for {flows} flows, drops {:?}",
            mode.label(),
            stats.conns,
            stats.active,
            stats.drops
        );
    }
}

/// New connections per second: two files of distinct SYNs, replayed once.
fn new_conns(args: &Args, memory: &Memory, rvsd: &Rvsd, report: &mut Report) -> Result<(), String> {
    let sizes = [args.syns_small, args.syns_large];
    let files: Vec<PathBuf> = sizes
        .iter()
        .map(|&n| {
            let path = rvsd.dir.join(format!("syn{n}.pcap"));
            dpdk::write_pcap(&path, (0..n).map(|f| lab::frame(Packet::Syn, f))).map(|_| path)
        })
        .collect::<Result<_, _>>()?;
    let table = args.syns_large.next_power_of_two();
    let mut log = String::new();
    let check = |what: &str, n: u32, count: u64, stats: &Stats, drops: u64, log: &mut String| {
        if count != u64::from(n) || stats.dropped() != drops {
            let _ = writeln!(
                log,
                "  WARNING {what} with {n} SYNs: count {count}, drops {:?}",
                stats.drops
            );
        }
    };
    let modes = Mode::ALL;
    let floor_at = modes.len();
    // [rep][each mode, floor]
    let mut rates: Vec<Vec<f64>> = Vec::new();
    for rep in 0..args.reps {
        // [mode] -> (small file, large file)
        let mut samples = vec![
            [Sample {
                secs: 0.0,
                count: 0,
            }; 2];
            modes.len()
        ];
        let run = |file: &Path, body: &str| {
            let vdev = dpdk::pcap_vdev(file, false);
            let eal = dpdk::eal_args(memory, SMALL_POOL, &vdev, &dpdk::file_prefix("cps"));
            rvsd.to_end(&(eal_toml(&eal) + body), IDLE_MS)
        };
        for (i, file) in files.iter().enumerate() {
            for (m, mode) in modes.into_iter().enumerate() {
                let (r, stats) = run(file, &lab::config_body(mode, table, SMALL_POOL))?;
                check(mode.label(), sizes[i], stats.conns, &stats, 0, &mut log);
                samples[m][i] = Sample {
                    secs: r.window.as_secs_f64(),
                    count: stats.conns,
                };
            }
        }
        // The floor from the large file alone: its window is short, a slope of two would be
        // mostly jitter.
        let (r, stats) = run(&files[1], &lab::floor_config_body(table, SMALL_POOL))?;
        let n = u64::from(sizes[1]);
        check("floor", sizes[1], stats.rx_packets, &stats, n, &mut log);
        let floor = stats.rx_packets as f64 / r.window.as_secs_f64();
        let mut r: Vec<f64> = samples.iter().map(|s| slope(s[0], s[1])).collect();
        r.push(floor);
        let per_mode: Vec<String> = modes
            .iter()
            .zip(&r)
            .zip(&samples)
            .map(|((mode, rate), s)| {
                format!(
                    "{} {:.3} M conn/s (windows {:.3}/{:.3} s)",
                    mode.label(),
                    rate / 1e6,
                    s[0].secs,
                    s[1].secs
                )
            })
            .collect();
        let _ = writeln!(
            log,
            "  rep {}: {}, input floor {:.2} Mpps (window {:.3} s)",
            rep + 1,
            per_mode.join(", "),
            floor / 1e6,
            floor.recip() * n as f64,
        );
        rates.push(r);
    }
    let column = |i: usize| rates.iter().map(|r| r[i]).collect::<Vec<_>>();
    let floor = median(&column(floor_at));
    for (m, mode) in modes.iter().enumerate() {
        let cps = median(&column(m));
        let (lo, hi) = range(&column(m));
        // The issues' targets: 2 M/s for NAT and DR, 1.5 M/s for FULLNAT.
        let target = if *mode == Mode::FullNat { 1.5e6 } else { 2e6 };
        report
            .row(
                format!("new connections {}, 1 worker", mode.label()),
                format!("{:.2} M/s ({:.2}-{:.2})", cps / 1e6, lo / 1e6, hi / 1e6),
                format!("input floor {:.2} Mpps", floor / 1e6),
                format!("{:.3}", cps / floor),
            )
            .target(&format!("≥ {} M/s", target / 1e6), cps >= target);
    }
    let bytes = conn::Table::<Arc<Real>>::new(conn::Config::new(table), 0)
        .map(|t| t.allocation_size())
        .unwrap_or(0);
    let _ = writeln!(
        report.details,
        "New connections: files of {} and {} distinct SYNs read once (no infinite_rx), conn_table_size {table} \
         ({:.0} MB per worker); rate = Δconns / Δwindow of the two files, window = from the worker's start to rvsd's \
         idle exit line less the {IDLE_MS} ms idle time (±10 ms); ratio = conns/s over the input floor (rvsd reading the large file and dropping every \
         frame as foreign_mac: pcap rx + dispatch + free, no tx; packets / window of that one run).\n{log}",
        sizes[0],
        sizes[1],
        bytes as f64 / f64::from(1 << 20)
    );
    Ok(())
}

/// Two increasing numbers from a two-valued option.
fn two<T: PartialOrd + Copy>(v: &[T], option: &str) -> Result<(T, T), String> {
    match v {
        [a, b] if a < b => Ok((*a, *b)),
        _ => Err(format!("{option} takes two increasing values")),
    }
}

/// Instructions per packet of the whole forwarding loop (rx, pipeline, tx, timers,
/// counters: everything the process executes while forwarding), rvsd against testpmd, from
/// two callgrind runs of different lengths each: ΔIr / Δtx.
fn whole_loop(args: &Args, rvsd: &Rvsd, report: &mut Report) -> Result<(), String> {
    let flows = args.loop_flows;
    let pcap = rvsd.dir.join("loop.pcap");
    dpdk::write_pcap(&pcap, lab::established_pass(flows, args.ack_rounds))?;
    let mbufs = pool_for(flows * (1 + args.ack_rounds));
    // Instruction counts do not depend on the page size; valgrind and hugepages are not
    // worth mixing.
    let memory = Memory::NoHuge {
        why: "under valgrind".into(),
    };
    let vdev = dpdk::pcap_vdev(&pcap, true);
    let (short, long) = two(&args.loop_secs, "--loop-secs")?;
    let durations = [short, long].map(Duration::from_secs_f64);
    let out = |name: &str, d: usize| rvsd.dir.join(format!("callgrind.loop.{name}.{d}"));
    // Only a long run that forwarded more than the short one measures anything: under
    // valgrind, a busy machine can starve one run; that pair is reported as invalid.
    let per_packet = |s: [(u64, u64); 2]| {
        (s[1].0 > s[0].0 && s[1].1 > s[0].1)
            .then(|| (s[1].0 - s[0].0) as f64 / (s[1].1 - s[0].1) as f64)
    };
    let shown = |ir: Option<f64>| {
        ir.map_or("invalid (long run no longer)".into(), |ir| {
            format!("{ir:.1}")
        })
    };
    let mut samples = [(0, 0); 2];
    for (d, &duration) in durations.iter().enumerate() {
        let eal = dpdk::eal_args(&memory, mbufs, &vdev, &dpdk::file_prefix("tpcg"));
        samples[d] = dpdk::testpmd_callgrind(&eal, mbufs, duration, &out("testpmd", d))?;
    }
    let testpmd = per_packet(samples);
    let mut log = format!(
        "  testpmd macswap: {} Ir/packet (runs of {} and {} packets)\n",
        shown(testpmd),
        samples[0].1,
        samples[1].1
    );
    for mode in Mode::ALL {
        for (d, &duration) in durations.iter().enumerate() {
            let eal = dpdk::eal_args(&memory, mbufs, &vdev, &dpdk::file_prefix("rvscg"));
            let config = eal_toml(&eal) + &lab::config_body(mode, DEFAULT_CONN_TABLE, mbufs);
            let (ir, stats) = rvsd.callgrind(&config, duration, &out(mode.as_str(), d))?;
            check_established(mode, flows, &stats, &mut log);
            samples[d] = (ir, stats.tx_packets);
        }
        let ipp = per_packet(samples);
        let _ = writeln!(
            log,
            "  rvsd {}: {} Ir/packet (runs of {} and {} packets)",
            mode.label(),
            shown(ipp),
            samples[0].1,
            samples[1].1
        );
        report.row(
            format!("Ir/packet, whole loop, established {}", mode.label()),
            ipp.map_or("invalid".into(), |ir| format!("{ir:.0} Ir")),
            testpmd.map_or("testpmd invalid".into(), |ir| {
                format!("testpmd macswap {ir:.0} Ir")
            }),
            testpmd
                .zip(ipp)
                .map_or(String::new(), |(t, r)| format!("{:.3}", t / r)),
        );
    }
    let _ = writeln!(
        report.details,
        "Whole loop: rvsd and testpmd under valgrind --tool=callgrind (--no-huge), same devices and file design with \
         {flows} flows, forwarding {short} s and {long} s after their start line; Ir/packet = ΔIr / Δtx of the two runs \
         (everything the process executes while forwarding: pcap rx, pipeline, tx, timers, counters); ratio = \
         testpmd / rvsd, the throughput ratio if every instruction cost the same (memory stalls are not counted).\n{log}"
    );
    Ok(())
}

/// One case of the callgrind workload.
struct IppCase {
    mode: Mode,
    established: bool,
}

impl IppCase {
    fn args(&self, flows: u32, packets: u32, baseline: bool) -> Vec<String> {
        let mut a = vec![
            "--mode".to_string(),
            self.mode.cli_name().into(),
            "--case".into(),
            if self.established {
                "established"
            } else {
                "new"
            }
            .into(),
            "--flows".into(),
            flows.to_string(),
            "--packets".into(),
            packets.to_string(),
        ];
        if baseline {
            a.push("--baseline".into());
        }
        a
    }
}

/// Instructions per packet of the pipeline under callgrind.
fn instructions(args: &Args, ipp: &Path, dir: &Path, report: &mut Report) -> Result<(), String> {
    let mut hot = String::new();
    for established in [true, false] {
        let (n1, n2) = if established {
            two(&args.ipp_packets, "--ipp-packets")?
        } else {
            two(&args.ipp_syns, "--ipp-syns")?
        };
        // NAT66's lane for comparison with NAT's (issue 14).
        for mode in Mode::ALL.into_iter().chain([Mode::Nat66]) {
            let case = IppCase { mode, established };
            let profile = |packets, baseline| {
                let out = dir.join(format!(
                    "callgrind.{}.{}.{packets}.{baseline}",
                    mode.cli_name(),
                    established
                ));
                callgrind::run(ipp, &case.args(args.flows, packets, baseline), &out)
            };
            let work = Pair {
                short: profile(n1, false)?,
                long: profile(n2, false)?,
            };
            let baseline = Pair {
                short: profile(n1, true)?,
                long: profile(n2, true)?,
            };
            let (ir, functions) = callgrind::per_iteration(&work, &baseline, u64::from(n2 - n1));
            let copy =
                (baseline.long.total as f64 - baseline.short.total as f64) / f64::from(n2 - n1);
            let what = if established {
                format!("instructions/packet, established {}", mode.label())
            } else {
                format!("instructions/new connection (SYN), {}", mode.label())
            };
            let row = report.row(
                what.clone(),
                format!("{ir:.0} Ir"),
                format!("copy baseline {copy:.0} Ir/packet, subtracted"),
                String::new(),
            );
            // Issue 3's target, for the lookup and rewrite of NAT and DR.
            if established && matches!(mode, Mode::Nat | Mode::Dr) {
                row.target("≤ 250", ir <= 250.0);
            }
            let _ = writeln!(
                hot,
                "  {what}: {ir:.1} Ir (callgrind runs of {n1} and {n2} packets)\n    by function, with what is inlined into it:"
            );
            for (f, cost) in callgrind::by_function(&functions).iter().take(16) {
                let _ = writeln!(hot, "    {cost:7.1}  {f}");
            }
            let _ = writeln!(hot, "    largest single source files under one function:");
            for (f, cost) in functions.iter().take(8) {
                let _ = writeln!(hot, "    {cost:7.1}  {f}");
            }
        }
    }
    let _ = writeln!(
        report.details,
        "Instructions: pipeline_ipp under valgrind --tool=callgrind; Ir = ((P(N2) - P(N1)) - (B(N2) - B(N1))) / (N2 - N1) \
         where P runs Pipeline::packet on each frame after copying it into a reusable buffer and B only copies. \
         Established: {} open flows (SYN + ACK each beforehand), ACKs cycling over them. New: distinct SYNs, wlc over 4 reals. \
         Ir per packet per function (callgrind_annotate, exclusive; inlined code counts for the function it was inlined into):\n{hot}",
        args.flows
    );
    Ok(())
}

/// Bytes per connection of the connection table at the default size, IPv4 and IPv6.
fn bytes_per_conn(report: &mut Report) -> Result<(), String> {
    let v4 = conn::Table::<Arc<Real>>::new(conn::Config::new(DEFAULT_CONN_TABLE), 0)
        .map_err(|e| e.to_string())?;
    let per_conn = v4.allocation_size() as f64 / v4.capacity() as f64;
    drop(v4);
    let entry = std::mem::size_of::<Option<conn::Conn<Arc<Real>>>>();
    let seq = std::mem::size_of::<conn::TcpSeq>();
    report
        .row(
            format!("bytes per connection (table of {DEFAULT_CONN_TABLE})"),
            format!("{per_conn:.1} B"),
            format!("slab entry {entry} B + FULLNAT sequence {seq} B + wheel links + index"),
            String::new(),
        )
        .target("≤ 128", per_conn <= 128.0);
    let v6 = conn::Table::<Arc<Real>, Ipv6Addr>::new(conn::Config::new(DEFAULT_CONN_TABLE), 0)
        .map_err(|e| e.to_string())?;
    let per_conn = v6.allocation_size() as f64 / v6.capacity() as f64;
    let entry = std::mem::size_of::<Option<conn::Conn<Arc<Real>, Ipv6Addr>>>();
    report.row(
        format!("IPv6: bytes per connection (table of {DEFAULT_CONN_TABLE})"),
        format!("{per_conn:.1} B"),
        format!(
            "slab entry {entry} B (two lines) + FULLNAT sequence {seq} B + wheel links + index"
        ),
        String::new(),
    );
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn print_report(args: &Args, memory: Option<&str>, report: &Report) {
    println!(
        "rvs data-path benchmarks: {} ({} CPUs)",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(memory) = memory {
        println!("DPDK memory: {memory}");
        println!(
            "Layout (rvsd and testpmd alike): lcore 0 on CPU 0 (control / main thread), one forwarding lcore 1 on CPU 1; \
             port 0 net_pcap rx (tx dropped), port 1 net_null no-rx; burst 32; 60-byte frames (64 B on the wire); \
             {} repetitions, medians",
            args.reps
        );
    }
    println!();
    let header = Row {
        what: "benchmark".into(),
        measured: "measured".into(),
        reference: "same-run reference".into(),
        ratio: "ratio".into(),
        target: "target".into(),
        verdict: String::new(),
    };
    let cells = |r: &Row| -> [String; 6] {
        [
            r.what.clone(),
            r.measured.clone(),
            r.reference.clone(),
            r.ratio.clone(),
            r.target.clone(),
            r.verdict.clone(),
        ]
    };
    let all: Vec<[String; 6]> = std::iter::once(&header)
        .chain(&report.rows)
        .map(cells)
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for (n, row) in all.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", line.join(" | "));
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
    if !report.details.is_empty() {
        println!("\n{}", report.details);
    }
}
