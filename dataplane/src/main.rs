//! `rvsd`: runs the rvs data plane described by a TOML file.

use clap::Parser;
use dataplane::dpdk::eal::Eal;
use dataplane::dpdk::lcore;
use dataplane::dpdk::mempool::Mempool;
use dataplane::dpdk::port::{Port, PortSetup};
use dataplane::process::Pipeline;
use dataplane::report::Report;
use dataplane::snapshot::Snapshot;
use dataplane::stats::SharedCounters;
use dataplane::worker::{Fabric, Setup, Worker};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// rvs data plane: a DPDK userspace L4 load balancer with LVS semantics.
#[derive(Parser, Debug)]
#[command(name = "rvsd", version, about)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["config", "check_config"]))]
struct Args {
    /// Run the data plane described by this TOML file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate this TOML file and exit: 0 if valid, 1 with the first error otherwise.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Exit once no packet has arrived for this many milliseconds after the first one
    /// (for pcap-driven runs and tests).
    #[arg(long, value_name = "MS")]
    exit_idle_ms: Option<u64>,
    /// Write the final counters to this file as JSON on exit.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
}

/// How often the control thread looks at signals and idleness.
const CONTROL_TICK: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return match conf::Config::load(path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(path) = &args.config else {
        return ExitCode::FAILURE;
    };
    let config = match conf::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&config, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &conf::Config, args: &Args) -> Result<(), String> {
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&quit))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let eal = Eal::init(&config.eal.args).map_err(|e| e.to_string())?;
    log::info!("{} initialised", eal.version());
    let pool =
        Mempool::new(&eal, "rvs_mbufs", config.dataplane.mbufs, -1).map_err(|e| e.to_string())?;
    let queues = u16::try_from(config.dataplane.workers.len()).map_err(|_| "too many workers")?;
    let ports = config
        .ports
        .iter()
        .map(|p| {
            let setup = PortSetup {
                id: p.id,
                queues,
                mac: p.mac,
                mtu: Some(p.mtu),
            };
            Port::start(&setup, &pool)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let macs: Vec<_> = ports.iter().map(Port::mac).collect();
    let workers = config.dataplane.workers.len();
    let snapshot =
        Arc::new(Snapshot::build(config, &macs, None, workers).map_err(|e| e.to_string())?);
    let fabric = Fabric::new(workers, Arc::clone(&snapshot));
    for (p, port) in config.ports.iter().zip(&ports) {
        let mac = port.mac().map(|b| format!("{b:02x}")).join(":");
        log::info!("port {} ({}) up, mac {mac}", p.name, port.name());
    }

    // Queue q of every port belongs to worker q.
    let mut per_worker: Vec<Vec<_>> = (0..queues).map(|_| Vec::new()).collect();
    for port in &ports {
        for (w, q) in port.take_queues().into_iter().enumerate() {
            if let Some(list) = per_worker.get_mut(w) {
                list.push(q);
            }
        }
    }
    let shared: Vec<SharedCounters> = (0..queues).map(|_| SharedCounters::default()).collect();
    let tsc_hz = lcore::tsc_hz(&eal);
    let stop = AtomicBool::new(false);

    let pipelines = (0..workers)
        .map(|index| {
            Pipeline::new(
                index,
                workers,
                config.dataplane.conn_table_size,
                &snapshot,
                0,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;

    lcore::scope(&eal, |scope| -> Result<(), String> {
        for (index, (((&lcore_id, queues), shared), pipeline)) in config
            .dataplane
            .workers
            .iter()
            .zip(per_worker)
            .zip(&shared)
            .zip(pipelines)
            .enumerate()
        {
            let mut worker = Worker::new(Setup {
                index,
                queues,
                burst: usize::from(config.dataplane.burst),
                pool: &pool,
                fabric: &fabric,
                pipeline,
                shared,
                tsc_hz,
            });
            let stop = &stop;
            if let Err(e) = scope.launch(lcore_id, move || worker.run(stop)) {
                stop.store(true, Ordering::Relaxed);
                return Err(e.to_string());
            }
        }
        control_loop(&quit, args.exit_idle_ms, tsc_hz, &shared);
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;

    let report = Report::new(&fabric.snapshot(), &shared, config, &ports);
    log::info!(
        "stopped: rx {} tx {} dropped {}",
        report.rx_packets,
        report.tx_packets,
        report.drops.values().sum::<u64>()
    );
    if let Some(path) = &args.stats_json {
        report
            .write(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    // Ports stop before EAL cleanup releases the pool's memory.
    drop(ports);
    drop(eal);
    Ok(())
}

/// Runs on the main lcore until a signal arrives or, with `--exit-idle-ms`, until traffic has
/// been idle that long after the first packet.
fn control_loop(
    quit: &AtomicBool,
    exit_idle_ms: Option<u64>,
    tsc_hz: u64,
    shared: &[SharedCounters],
) {
    let idle_ticks = exit_idle_ms.map(|ms| ms.saturating_mul(tsc_hz) / 1000);
    while !quit.load(Ordering::Relaxed) {
        std::thread::sleep(CONTROL_TICK);
        if let Some(limit) = idle_ticks {
            let last = shared
                .iter()
                .map(SharedCounters::last_rx_tsc)
                .max()
                .unwrap_or(0);
            if last != 0 && lcore::rdtsc().saturating_sub(last) > limit {
                log::info!("no packet for {} ms, exiting", exit_idle_ms.unwrap_or(0));
                break;
            }
        }
    }
}
