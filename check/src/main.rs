//! `rvscheck`: rvs's health checker. It reads rvsd's TOML (`[[service.real.check]]`, keepalived
//! 2.2's checkers and keywords), probes every real server and tells rvsd each real's state
//! over the control socket (`set_health`). It is a process of its own, as keepalived's checker
//! is, so that a checker bug or a slow server never touches the data path; rvsd starts it when
//! any check is configured and restarts it if it dies, or it runs on its own:
//! `rvscheck --config /etc/rvs/rvsd.toml [--socket /run/rvs/rvsd.sock]`.
//!
//! Probes are ordinary kernel sockets: with a kernel twin (`[[port]] exception`) they leave
//! through `rvsN`. SIGHUP re-reads the file (checks start again; rvsd keeps its verdicts until
//! they report), SIGTERM/SIGINT end it.
#![forbid(unsafe_code)]

mod machine;
mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use conf::health::{Check, CheckKind, ServiceHealth};
use conf::proto::{self, CheckState, HealthReport, Request, Response, ServiceKey};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use machine::{Machine, Outcome};

#[derive(Parser)]
#[command(
    version,
    about = "rvs health checker (keepalived's checkers, reporting to rvsd)",
    after_help = AFTER_HELP
)]
struct Args {
    /// rvsd's TOML configuration: the [[service.real.check]] tables to run.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// rvsd's control socket, where the verdicts go [default: the file's [control] socket,
    /// /run/rvs/rvsd.sock unless it names another].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// What a man page's DESCRIPTION, FILES and ENVIRONMENT would say.
const AFTER_HELP: &str = "\
rvsd starts rvscheck itself (next to rvsd's executable, else on PATH) with its own --config
whenever a real server has a check, restarts it if it dies and stops it at exit. SIGHUP
re-reads the file, SIGTERM or SIGINT ends it.

Files:
  /etc/rvs/rvsd.toml   rvsd's file as the rvsd.service unit runs it
  /run/rvs/rvsd.sock   rvsd's control socket (mode 0600: run as root)

Environment:
  RUST_LOG             log filter for stderr (default info)
  RVS_PARENT_PID       set by rvsd: rvscheck exits when that process is no longer its parent";

/// Set by rvsd to its pid when it starts the checker.
const PARENT_ENV: &str = "RVS_PARENT_PID";

/// How long the reporter waits before connecting again to an rvsd that is not there.
const RECONNECT: Duration = Duration::from_secs(1);
/// A control request that takes longer than this means rvsd is stuck; reconnect.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = Args::parse();
    let config = match conf::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| config.control.socket.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let reporter = std::thread::Builder::new()
        .name("rvscheck-report".into())
        .spawn(move || report(&socket, &rx));
    if let Err(e) = reporter {
        log::error!("cannot start the reporter thread: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args.config, config, tx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    path: &Path,
    mut config: conf::Config,
    tx: Sender<HealthReport>,
) -> Result<(), String> {
    let tls = probe::tls_config().map_err(|e| format!("TLS: {e}"))?;
    let signal_err = |e: std::io::Error| format!("cannot install a signal handler: {e}");
    let mut hup = signal(SignalKind::hangup()).map_err(signal_err)?;
    let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
    let mut tasks = start(&config, &tls, &tx);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                log::info!("SIGHUP: re-reading {}", path.display());
                match conf::Config::load(path) {
                    Ok(c) => {
                        config = c;
                        tasks.iter().for_each(JoinHandle::abort);
                        tasks = start(&config, &tls, &tx);
                    }
                    Err(e) => log::error!("reload refused, checks continue unchanged: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    log::info!("stopping");
    Ok(())
}

/// Starts one task per check of every real.
fn start(
    config: &conf::Config,
    tls: &Arc<rustls::ClientConfig>,
    tx: &Sender<HealthReport>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for h in &config.health {
        for real in &h.reals {
            if real.checks.is_empty() {
                continue;
            }
            let state = Arc::new(Mutex::new(RealState::new(h, real.addr, &real.checks)));
            for (index, check) in real.checks.iter().enumerate() {
                let (state, tls, tx) = (Arc::clone(&state), Arc::clone(tls), tx.clone());
                let check = check.clone();
                tasks.push(tokio::spawn(async move {
                    check_loop(index, check, state, tls, tx).await;
                }));
            }
        }
    }
    let n: usize = config
        .health
        .iter()
        .flat_map(|h| &h.reals)
        .map(|r| r.checks.len())
        .sum();
    log::info!("{n} checks started");
    tasks
}

async fn check_loop(
    index: usize,
    check: Check,
    state: Arc<Mutex<RealState>>,
    tls: Arc<rustls::ClientConfig>,
    tx: Sender<HealthReport>,
) {
    if !check.warmup.is_zero() {
        tokio::time::sleep(check.warmup.mul_f64(random_fraction())).await;
    }
    loop {
        let outcome = probe::run(&check, &tls).await;
        let (next, report) = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outcome(index, &outcome);
        if let Some(report) = report {
            // The reporter lives as long as the process.
            let _ = tx.send(report);
        }
        tokio::time::sleep(next).await;
    }
}

/// A number in [0, 1) from the standard library's random hasher keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// keepalived's way of naming a server: `[10.0.0.11]:tcp:80`.
fn name(addr: SocketAddr, proto: conf::Proto) -> String {
    format!("[{}]:{}:{}", addr.ip(), proto, addr.port())
}

/// The checks of one real server: up while all are up.
struct RealState {
    service: ServiceKey,
    real: SocketAddr,
    checks: Vec<CheckInfo>,
    /// What rvsd was last told: (up, weight); `None` before the first report.
    reported: Option<(bool, Option<u32>)>,
}

struct CheckInfo {
    machine: Machine,
    label: String,
    retry: u32,
    last: String,
    since: u64,
}

impl RealState {
    fn new(h: &ServiceHealth, real: SocketAddr, checks: &[Check]) -> RealState {
        RealState {
            service: ServiceKey {
                proto: h.proto,
                vip: h.vip,
            },
            real,
            checks: checks
                .iter()
                .map(|c| CheckInfo {
                    machine: Machine::new(c, h.alpha),
                    label: label(c),
                    retry: c.retry,
                    last: "not yet probed".into(),
                    since: 0,
                })
                .collect(),
            reported: None,
        }
    }

    /// Takes the outcome of check `index`: logs what keepalived logs, and answers the delay
    /// before its next probe and the report rvsd needs, if any.
    fn outcome(&mut self, index: usize, outcome: &Outcome) -> (Duration, Option<HealthReport>) {
        let rs = name(self.real, self.service.proto);
        let vs = name(self.service.vip, self.service.proto);
        let Some(c) = self.checks.get_mut(index) else {
            return (Duration::from_secs(1), None);
        };
        let step = c.machine.outcome(outcome);
        c.last = match outcome {
            Outcome::Pass { detail, .. } => detail.clone(),
            Outcome::Fail(why) => why.clone(),
        };
        if let Some(n) = step.retrying {
            log::warn!(
                "{} on service {rs} of VS {vs} failed ({}), retry {n} of {} in {:.1}s",
                c.label,
                c.last,
                c.retry,
                step.next.as_secs_f64()
            );
        }
        match step.transition {
            Some(true) => {
                c.since = now();
                log::info!(
                    "{} on service {rs} of VS {vs} succeeded: {}",
                    c.label,
                    c.last
                );
            }
            Some(false) => {
                c.since = now();
                log::warn!(
                    "{} on service {rs} of VS {vs} failed after {} retries: {}",
                    c.label,
                    c.retry,
                    c.last
                );
            }
            None => {}
        }
        let next = step.next;
        if !self.checks.iter().all(|c| c.machine.settled()) {
            return (next, None);
        }
        let up = self.checks.iter().all(|c| c.machine.up());
        let weight = self.checks.iter().find_map(|c| c.machine.weight());
        if self.reported == Some((up, weight)) && step.transition.is_none() {
            return (next, None);
        }
        if self.reported.map(|(u, _)| u) != Some(up) {
            log::info!(
                "real server {rs} of VS {vs} is {}",
                if up { "UP" } else { "DOWN" }
            );
        }
        self.reported = Some((up, weight));
        (next, Some(self.report(up, weight)))
    }

    fn report(&self, up: bool, weight: Option<u32>) -> HealthReport {
        HealthReport {
            service: self.service,
            real: self.real,
            up,
            weight,
            checks: self
                .checks
                .iter()
                .map(|c| CheckState {
                    check: c.label.clone(),
                    up: c.machine.up(),
                    last: c.last.clone(),
                    since: c.since,
                })
                .collect(),
        }
    }
}

/// `HTTP_GET 10.0.0.11:80/health`, `MISC_CHECK /bin/check`.
fn label(c: &Check) -> String {
    let kind = c.kind.keepalived_name();
    match &c.kind {
        CheckKind::Http(h) | CheckKind::Https(h) => {
            let path = h.urls.first().map_or("/", |u| u.path.as_str());
            format!("{kind} {}{path}", c.connect)
        }
        CheckKind::Misc(m) => format!("{kind} {}", m.path),
        CheckKind::Tcp | CheckKind::Udp(_) => format!("{kind} {}", c.connect),
    }
}

/// The reporter thread: sends each report to rvsd, and on every (re)connection all the
/// latest ones, so an rvsd that restarted learns every verdict at once.
fn report(socket: &Path, rx: &Receiver<HealthReport>) {
    let mut latest: HashMap<(ServiceKey, SocketAddr), HealthReport> = HashMap::new();
    let mut conn: Option<UnixStream> = None;
    let mut warned = false;
    // Started by rvsd: end with it, even when it was killed and could not stop us.
    let parent: Option<u32> = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok());
    loop {
        if let Some(pid) = parent {
            if std::os::unix::process::parent_id() != pid {
                log::warn!("rvsd (pid {pid}) is gone; exiting");
                std::process::exit(0);
            }
        }
        let mut pending = Vec::new();
        match rx.recv_timeout(RECONNECT) {
            Ok(r) => pending.push(r),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        pending.extend(rx.try_iter());
        for r in &pending {
            latest.insert((r.service, r.real), r.clone());
        }
        // rvsd closes a connection idle for a few seconds: a failed send reconnects at once
        // and sends every latest verdict (which include the pending ones) once more.
        for attempt in 0..2 {
            if conn.is_none() {
                match UnixStream::connect(socket) {
                    Ok(s) => {
                        let _ = s.set_read_timeout(Some(REQUEST_TIMEOUT));
                        let _ = s.set_write_timeout(Some(REQUEST_TIMEOUT));
                        log::debug!("connected to rvsd at {}", socket.display());
                        if warned {
                            log::info!("rvsd at {} reachable again", socket.display());
                        }
                        warned = false;
                        conn = Some(s);
                        pending = latest.values().cloned().collect();
                    }
                    Err(e) => {
                        if !warned {
                            log::warn!(
                                "rvsd at {} not reachable ({e}); retrying",
                                socket.display()
                            );
                            warned = true;
                        }
                        break;
                    }
                }
            }
            let Some(stream) = conn.as_mut() else {
                break;
            };
            match pending.iter().try_for_each(|r| send(stream, r.clone())) {
                Ok(()) => break,
                Err(e) => {
                    if attempt > 0 {
                        log::warn!("lost rvsd at {}: {e}", socket.display());
                    }
                    conn = None;
                }
            }
        }
    }
}

fn send(stream: &mut UnixStream, report: HealthReport) -> Result<(), String> {
    let (service, real) = (report.service, report.real);
    proto::write_frame(stream, &Request::SetHealth { report }).map_err(|e| e.to_string())?;
    match proto::read_frame::<_, Response>(stream, proto::MAX_RESPONSE) {
        Ok(Response::Done) => Ok(()),
        Ok(Response::Error { message, .. }) => {
            // rvsd runs another configuration (a reload pending): not a connection problem.
            log::warn!("rvsd refused the state of {real} in {service}: {message}");
            Ok(())
        }
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod test {
    use super::Args;
    use clap::CommandFactory;

    #[test]
    fn help_names_files() {
        let help = Args::command().render_long_help().to_string();
        for line in [
            "Usage: rvscheck [OPTIONS] --config <FILE>",
            "  /etc/rvs/rvsd.toml   rvsd's file as the rvsd.service unit runs it",
            "  /run/rvs/rvsd.sock   rvsd's control socket (mode 0600: run as root)",
            "  RVS_PARENT_PID       set by rvsd: rvscheck exits when that process is no longer its parent",
        ] {
            assert!(help.lines().any(|l| l == line), "{line:?} not in:\n{help}");
        }
    }
}
