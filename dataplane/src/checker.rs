//! rvsd's side of the health checker: `rvscheck` runs as a child process whenever any real
//! server has a check (a checker bug or a slow server must never stall the data path, as
//! keepalived keeps its checker apart), is restarted when it dies, and stops with rvsd.
//!
//! A reload restarts it on the new file: rvsd keeps every verdict meanwhile (the health
//! overlay), and the new checker reports each real again after its first verdict.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Least time between two starts, so a checker that cannot run does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// The checker child process.
pub struct Checker {
    program: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    /// Whether the current configuration has checks.
    wanted: bool,
    last_start: Option<Instant>,
}

/// `rvscheck` next to rvsd's own executable, else the one on `PATH`.
pub fn program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("rvscheck")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("rvscheck"))
}

fn has_checks(config: &conf::Config) -> bool {
    config
        .health
        .iter()
        .any(conf::health::ServiceHealth::is_checked)
}

impl Checker {
    /// The checker for rvsd running `config` read from `path`; started by [`Checker::poll`].
    pub fn new(program: PathBuf, path: &Path, config: &conf::Config) -> Checker {
        Checker {
            program,
            config: path.to_path_buf(),
            socket: config.control.socket.clone(),
            child: None,
            wanted: has_checks(config),
            last_start: None,
        }
    }

    /// Starts the checker if it should run and does not, restarting one that died (with a
    /// log line). Never blocks.
    pub fn poll(&mut self) {
        if let Some(child) = &mut self.child {
            match child.try_wait() {
                Ok(None) => return,
                Ok(Some(status)) => {
                    log::error!("rvscheck (pid {}) exited: {status}; restarting", child.id());
                }
                Err(e) => log::error!("rvscheck (pid {}): {e}; restarting", child.id()),
            }
            self.child = None;
        }
        if !self.wanted {
            return;
        }
        if self.last_start.is_some_and(|t| t.elapsed() < RESTART_DELAY) {
            return;
        }
        self.last_start = Some(Instant::now());
        let spawned = Command::new(&self.program)
            .arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            // rvscheck exits when its parent is no longer this rvsd (a crash cannot stop it).
            .env("RVS_PARENT_PID", std::process::id().to_string())
            .spawn();
        match spawned {
            Ok(child) => {
                log::info!(
                    "health checker {} started (pid {})",
                    self.program.display(),
                    child.id()
                );
                self.child = Some(child);
            }
            Err(e) => log::error!("cannot start {}: {e}", self.program.display()),
        }
    }

    /// Takes a reloaded configuration: the checker restarts on it (or stops, if it has no
    /// checks left).
    pub fn reload(&mut self, config: &conf::Config) {
        self.stop();
        self.wanted = has_checks(config);
        self.last_start = None;
        self.poll();
    }

    /// Stops the checker (rvsd's exit).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop();
    }
}
