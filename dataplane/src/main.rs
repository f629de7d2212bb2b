//! `rvsd`: runs the rvs data plane described by a TOML file.

use clap::Parser;
use dataplane::admin::Admin;
use dataplane::checker::{self, Checker};
use dataplane::dpdk::eal::Eal;
use dataplane::dpdk::lcore;
use dataplane::dpdk::mempool::Mempool;
use dataplane::dpdk::port::{Port, PortSetup};
use dataplane::host::exception::{self, ExceptionPath};
use dataplane::host::netlink::Follower;
use dataplane::host::punt::Punter;
use dataplane::metrics;
use dataplane::report::{HostPath, Report};
use dataplane::stats::SharedCounters;
use dataplane::steering::{self, Device, Ports, Steering};
use dataplane::worker::{Fabric, Setup, Worker};
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::Snapshot;
use fastpath::xmit::isn::IsnKey;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// rvs data plane: a DPDK userspace L4 load balancer with LVS semantics.
#[derive(Parser, Debug)]
#[command(name = "rvsd", version, about, after_help = AFTER_HELP)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["config", "check_config", "import_keepalived"]))]
struct Args {
    /// Run the data plane described by this TOML file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate this TOML file and exit: 0 if valid, 1 with the first error otherwise.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Print the virtual_server blocks of this keepalived.conf (and what it includes) as rvs
    /// TOML and exit: 0 when everything in them converted, 1 when something was refused or
    /// dropped (named on stderr with file:line), 2 when the file cannot be read.
    #[arg(long, value_name = "KEEPALIVED_CONF")]
    import_keepalived: Option<PathBuf>,
    /// Exit once no packet has arrived for this many milliseconds after the first one
    /// (for pcap-driven runs and tests).
    #[arg(long, value_name = "MS")]
    exit_idle_ms: Option<u64>,
    /// Write the final counters to this file as JSON on exit.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
}

/// What a man page's SIGNALS, FILES and ENVIRONMENT would say.
const AFTER_HELP: &str = "\
Signals:
  SIGHUP               re-read the --config file and apply the difference (services, reals,
                       timeouts, routes, neighbours; other sections need a restart)
  SIGINT, SIGTERM      stop: the kernel twins and the control socket go away

Files:
  /etc/rvs/rvsd.toml   the configuration (rvsd.service passes RVS_CONFIG, this by default)
  /run/rvs/rvsd.sock   the control socket for rvsadm and rvscheck ([control] socket)
  rvscheck             the health checker, started when a real has checks: the one next
                       to rvsd's executable, else on PATH

Environment:
  RUST_LOG             log filter for stderr (default info)";

/// Loops every worker must have polled without input before `--exit-idle-ms` ends the run.
const IDLE_LOOPS_MIN: u64 = 8192;

/// How often the control thread looks at signals and idleness.
const CONTROL_TICK: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = Args::parse();
    if let Some(path) = &args.import_keepalived {
        return import_keepalived(path);
    }
    if let Some(path) = &args.check_config {
        return match conf::Config::load(path) {
            Ok(config) => match data_path_check(&config) {
                Ok(()) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    ExitCode::FAILURE
                }
            },
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

/// What the data path would refuse at start that the file's rules allow (an IPv6 service,
/// for now): the snapshot rvsd would build, without EAL (placeholder MACs).
fn data_path_check(config: &conf::Config) -> Result<(), String> {
    let macs = vec![[2, 0, 0, 0, 0, 0]; config.ports.len()];
    Snapshot::build(config, &macs, None, config.dataplane.workers.len())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `--import-keepalived`: pure text work, before and without EAL.
fn import_keepalived(path: &std::path::Path) -> ExitCode {
    match conf::keepalived::import(path) {
        Ok(import) => {
            for d in &import.diagnostics {
                eprintln!("{d}");
            }
            // A closed pipe (`| head`) is an error to report, not a panic of print!.
            let mut out = std::io::stdout().lock();
            if let Err(e) = std::io::Write::write_all(&mut out, import.toml.as_bytes())
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                eprintln!("cannot write the TOML: {e}");
                return ExitCode::from(2);
            }
            ExitCode::from(import.exit_code())
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn run(config: &conf::Config, args: &Args) -> Result<(), String> {
    let quit = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&quit))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    let eal = Eal::init(&config.eal.args).map_err(|e| e.to_string())?;
    log::info!("{} initialised", eal.version());
    // Buffers for the largest frame a port's MTU allows: a NIC then has no reason to chain
    // them for a frame it accepts (chained frames are joined or dropped, `oversize_frame`).
    let max_frame = config
        .ports
        .iter()
        .map(|p| usize::from(p.mtu))
        .max()
        .unwrap_or(0)
        + fastpath::wire::ether::HEADER_LEN;
    let pool = Mempool::new(&eal, "rvs_mbufs", config.dataplane.mbufs, max_frame, -1)
        .map_err(|e| e.to_string())?;
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
                exception_tx: p.exception.is_some(),
            };
            Port::start(&setup, &pool)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let macs: Vec<_> = ports.iter().map(Port::mac).collect();
    let workers = config.dataplane.workers.len();
    // Kernel twins after their ports (they carry the port's MAC), before any traffic moves.
    let twins = dataplane::host::start_twins(config, &ports, &pool)?;
    let follower = if twins.is_empty() {
        None
    } else {
        let names: Vec<String> = twins.iter().map(|(_, t)| t.iface().to_owned()).collect();
        Some(Follower::start(&names).map_err(|e| format!("rtnetlink address follower: {e}"))?)
    };
    let path = Arc::new(ExceptionPath::new(workers, ports.len()));
    let punt_pps: Vec<Option<u32>> = config
        .ports
        .iter()
        .map(|p| p.exception.as_ref().map(|e| e.punt_pps))
        .collect();
    let links: Vec<exception::Link<'_>> = twins
        .iter()
        .filter_map(|(index, twin)| {
            Some(exception::Link {
                port: *index,
                twin: twin.port().take_queues().pop()?,
                wire: ports.get(*index)?.take_exception_queue()?,
            })
        })
        .collect();
    // Health is an overlay on the configuration: alpha reals start out of the pool.
    let (live, overlay, quorum) = dataplane::admin::initial_health(config);
    let snapshot =
        Arc::new(Snapshot::build(&live, &macs, None, workers).map_err(|e| e.to_string())?);
    let fabric = Arc::new(Fabric::new(workers, Arc::clone(&snapshot)));
    for (p, port) in config.ports.iter().zip(&ports) {
        let mac = port.mac().map(|b| format!("{b:02x}")).join(":");
        log::info!("port {} ({}) up, mac {mac}", p.name, port.name());
    }
    // FULLNAT replies to the worker that owns them: flow rules on the started ports (worker
    // w receives on queue w of every port, see below), or the hand-over.
    let (targets, shared_laddrs) = steering::targets(&snapshot);
    let mut steering = Steering::start(
        Ports(&ports),
        config.dataplane.laddr_steering,
        (0..queues).collect(),
        &targets,
    )?;
    steering.note_shared(&shared_laddrs);
    log::info!("FULLNAT reply steering: {}", steering.status().describe());

    // Queue q of every port belongs to worker q.
    let mut per_worker: Vec<Vec<_>> = (0..queues).map(|_| Vec::new()).collect();
    for port in &ports {
        for (w, q) in port.take_queues().into_iter().enumerate() {
            if let Some(list) = per_worker.get_mut(w) {
                list.push(q);
            }
        }
    }
    let shared: Arc<Vec<SharedCounters>> =
        Arc::new((0..queues).map(|_| SharedCounters::default()).collect());
    let admin = Arc::new(Admin::new(
        config,
        macs.clone(),
        Arc::clone(&fabric),
        Arc::clone(&shared),
        Arc::clone(&path),
        (overlay, quorum),
    ));
    admin.start_configured_sync()?;
    let server = control::server::Server::start(&config.control.socket, Arc::clone(&admin) as _)
        .map_err(|e| format!("control socket {}: {e}", config.control.socket.display()))?;
    log::info!("control socket {}", server.path().display());
    let health_admin = Arc::clone(&admin);
    let prometheus = metrics::start(
        config,
        Arc::clone(&fabric),
        Arc::clone(&shared),
        Arc::new(move || health_admin.real_health()),
    )?;
    let tsc_hz = lcore::tsc_hz(&eal);
    let stop = AtomicBool::new(false);

    let isn_key =
        IsnKey::random().map_err(|e| format!("no random source for FULLNAT ISNs: {e}"))?;
    let pipelines = build_pipelines(config, &snapshot, isn_key, &quit)?;

    let punters = (0..workers)
        .map(|index| Punter::new(path.punt(), index, workers, &punt_pps))
        .collect::<Option<Vec<_>>>()
        .ok_or("no punt ring for a worker")?;
    let exception_stop = AtomicBool::new(false);
    std::thread::scope(|threads| -> Result<(), String> {
        if !links.is_empty() {
            let (path, stop) = (&path, &exception_stop);
            std::thread::Builder::new()
                .name("rvs-exception".into())
                .spawn_scoped(threads, move || exception::run(path, &links, stop))
                .map_err(|e| format!("cannot start the exception thread: {e}"))?;
        }
        let workers_done = lcore::scope(&eal, |scope| -> Result<(), String> {
            for (index, ((((&lcore_id, queues), shared), pipeline), punter)) in config
                .dataplane
                .workers
                .iter()
                .zip(per_worker)
                .zip(shared.iter())
                .zip(pipelines)
                .zip(punters)
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
                    punter,
                    strays: (index == 0).then_some(path.strays()),
                    idle_sleep_us: config.dataplane.idle_sleep_us,
                });
                let stop = &stop;
                if let Err(e) = scope.launch(lcore_id, move || worker.run(stop)) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e.to_string());
                }
            }
            let mut control = Control {
                fabric: &fabric,
                steering: &mut steering,
                seen: snapshot.id(),
                quit: &quit,
                reload: &reload,
                config_path: args.config.as_deref(),
                admin: &admin,
                exit_idle_ms: args.exit_idle_ms,
                // A worker that sleeps (adaptive polling) makes few loops, but it has polled
                // its queues empty `SLEEP_AFTER` times in a row before its first sleep: it is
                // not starved.
                idle_loops_min: if config.dataplane.idle_sleep_us > 0 {
                    dataplane::idle::SLEEP_AFTER
                } else {
                    IDLE_LOOPS_MIN
                },
                tsc_hz,
                shared: &shared,
                follower: follower.as_ref(),
                checker: args
                    .config
                    .as_deref()
                    .map(|path| Checker::new(checker::program(), path, config)),
            };
            control.run();
            drop(control.checker.take());
            admin.shutdown();
            stop.store(true, Ordering::Relaxed);
            Ok(())
        });
        // The workers have stopped punting: the exception thread may go too.
        exception_stop.store(true, Ordering::Relaxed);
        workers_done
    })?;

    server.stop();
    drop(prometheus);
    let report = Report::new(
        &fabric.snapshot(),
        &shared,
        config,
        &ports,
        steering.status(),
        HostPath {
            exception: &path,
            twins: &twins,
            owned: admin.owned(),
            health: admin.real_health(),
        },
    )
    .with_sync(fabric.sync_stats());
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
    // Flow rules go before their ports stop; ports stop before EAL cleanup releases the
    // pool's memory.
    steering.shutdown();
    drop(steering);
    // Frames still in the punt rings go back to the pool, and the twins (whose interfaces
    // vanish with them) close before their ports, all before EAL releases the memory.
    drop(follower);
    path.release();
    fabric.release();
    drop(twins);
    drop(ports);
    drop(eal);
    Ok(())
}

/// Every worker's pipeline, each with its connection table, once the memory they take is
/// known to be there. The tables are allocated (and their pages touched) on a helper thread
/// while this one watches for SIGINT/SIGTERM, so that a large `conn_table_size` can be
/// interrupted: rvsd then stops at once, and the process exit takes the helper with it.
fn build_pipelines(
    config: &conf::Config,
    snapshot: &Arc<Snapshot>,
    isn_key: IsnKey,
    quit: &AtomicBool,
) -> Result<Vec<Pipeline>, String> {
    let workers = config.dataplane.workers.len();
    let size = config.dataplane.conn_table_size;
    let size6 = config.dataplane.conn_table_size6;
    let per_worker = conf::conn_table_bytes(u64::from(size))
        .saturating_add(conf::conn_table6_bytes(u64::from(size6)));
    let total = per_worker.saturating_mul(workers as u64);
    let gib = |bytes: u64| bytes as f64 / f64::from(1u32 << 30);
    if let Some(available) = mem_available() {
        if total > available {
            return Err(format!(
                "[dataplane] conn_table_size = {size} and conn_table_size6 = {size6} take {:.1} GiB per worker, {:.1} GiB in all; only {:.1} GiB of memory is available",
                gib(per_worker),
                gib(total),
                gib(available)
            ));
        }
    }
    log::info!(
        "allocating connection tables: {size} entries, {size6} IPv6 entries, {:.2} GiB per worker",
        gib(per_worker)
    );
    let (done, result) = std::sync::mpsc::channel();
    let snapshot = Arc::clone(snapshot);
    std::thread::Builder::new()
        .name("rvs-conn-alloc".into())
        .spawn(move || {
            let pipelines = (0..workers)
                .map(|index| {
                    Pipeline::with_tables(index, workers, (size, size6), &snapshot, 0)
                        .map(|p| p.with_isn_key(isn_key))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string());
            let _ = done.send(pipelines);
        })
        .map_err(|e| format!("cannot start the allocation thread: {e}"))?;
    loop {
        match result.recv_timeout(CONTROL_TICK) {
            Ok(pipelines) => return pipelines,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if quit.load(Ordering::Relaxed) => {
                return Err("interrupted while allocating the connection tables".into());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the connection table allocation failed".into());
            }
        }
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (None where it cannot be read).
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The control thread's own duties, on the main lcore.
struct Control<'a, D: Device> {
    fabric: &'a Fabric,
    /// The flow rules, kept in step with the local addresses of each published snapshot.
    steering: &'a mut Steering<D>,
    /// The id of the last snapshot `steering` followed.
    seen: u64,
    quit: &'a AtomicBool,
    reload: &'a AtomicBool,
    config_path: Option<&'a std::path::Path>,
    admin: &'a Admin,
    exit_idle_ms: Option<u64>,
    /// Empty loops every worker must have made for `--exit-idle-ms`.
    idle_loops_min: u64,
    tsc_hz: u64,
    shared: &'a [SharedCounters],
    /// The twins' addresses (issue 10: they become owned by the fast path).
    follower: Option<&'a Follower>,
    /// The health checker child (issue 12).
    checker: Option<Checker>,
}

impl<D: Device> Control<'_, D> {
    /// Runs until a signal arrives or, with `--exit-idle-ms`, until traffic has been idle
    /// that long after the first packet: re-reads the configuration on SIGHUP, samples the
    /// rate estimators every 2 s, and brings the flow rules in step with every snapshot the
    /// control socket or a reload publishes (until then, and whenever a rule is refused, the
    /// hand-over between workers delivers FULLNAT replies).
    fn run(&mut self) {
        let idle_ticks = self
            .exit_idle_ms
            .map(|ms| ms.saturating_mul(self.tsc_hz) / 1000);
        let started = Instant::now();
        let mut next_tick = Duration::ZERO;
        while !self.quit.load(Ordering::Relaxed) {
            if let Some(checker) = &mut self.checker {
                checker.poll();
            }
            // An address change on a twin wakes the thread at once: a VIP keepalived adds is
            // served (and announced) within milliseconds.
            let woke = match self.follower {
                Some(follower) => follower.events().recv_timeout(CONTROL_TICK).is_ok(),
                None => {
                    std::thread::sleep(CONTROL_TICK);
                    false
                }
            };
            let now = started.elapsed();
            if now >= next_tick {
                self.admin.tick(now);
                next_tick = now + control::estimator::INTERVAL;
            }
            if self.reload.swap(false, Ordering::Relaxed) {
                self.reload_config();
            }
            if let Some(follower) = self.follower {
                // Changes are logged by the follower; the snapshot follows the twins' whole
                // address sets (one rebuild for any number of events in a tick).
                let mut changed = woke;
                while follower.events().try_recv().is_ok() {
                    changed = true;
                }
                if changed {
                    self.admin.set_kernel_addrs(&follower.addrs());
                }
            }
            let snapshot = self.fabric.snapshot();
            if snapshot.id() != self.seen {
                self.seen = snapshot.id();
                self.steering.update(&snapshot);
            }
            if let Some(limit) = idle_ticks {
                let last = self
                    .shared
                    .iter()
                    .map(SharedCounters::last_rx_tsc)
                    .max()
                    .unwrap_or(0);
                // Idle both in time and in work done: a worker the machine starved of CPU
                // has not looked for more input yet.
                let polled = self
                    .shared
                    .iter()
                    .all(|s| s.empty_loops() >= self.idle_loops_min);
                if last != 0 && polled && lcore::rdtsc().saturating_sub(last) > limit {
                    log::info!(
                        "no packet for {} ms, exiting",
                        self.exit_idle_ms.unwrap_or(0)
                    );
                    break;
                }
            }
        }
    }

    fn reload_config(&mut self) {
        let Some(path) = self.config_path else {
            return;
        };
        log::info!("SIGHUP: re-reading {}", path.display());
        let outcome = conf::Config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|config| self.admin.reload(&config).map(|()| config));
        match outcome {
            Ok(config) => {
                if let Some(checker) = &mut self.checker {
                    checker.reload(&config);
                }
            }
            Err(e) => log::error!("reload of {} refused: {e}", path.display()),
        }
    }
}
