//! An rvsd that stays up while the test talks to it: `net_pcap` fed from a file (replayed at
//! start), no `--exit-idle-ms`, stopped with SIGTERM; its control socket in a scratch
//! directory; killed on drop if the test did not stop it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long rvsd may take to open its control socket, or to exit.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A running rvsd.
pub struct Live {
    child: Child,
    /// Holds the configuration, pcap files, log and (by default) the socket.
    dir: tempfile::TempDir,
    /// The control socket.
    pub socket: PathBuf,
    stats: PathBuf,
    tx: PathBuf,
    log: PathBuf,
}

/// What one rvsadm run returned: exit status, stdout, stderr.
pub type Outcome = (i32, String, String);

impl Live {
    /// Starts rvsd with `config_body` (everything but `[eal]` and `[control]`), `control` as
    /// extra lines of `[control]` (a `socket = ...` among them replaces the scratch one), and
    /// `input` replayed on its port, without waiting for it.
    pub fn spawn(control: &str, config_body: &str, input: &[Vec<u8>]) -> Live {
        Live::spawn_queues(control, config_body, &[input.to_vec()])
    }

    /// [`Live::spawn`] with one queue per entry of `inputs`, each replaying its entry: the
    /// body must list as many workers (`[dataplane] workers = [1, 2, ...]`), worker `q`
    /// polls queue `q`.
    pub fn spawn_queues(control: &str, config_body: &str, inputs: &[Vec<Vec<u8>>]) -> Live {
        let dir = super::scratch();
        let stats = dir.path().join("stats.json");
        let log = dir.path().join("rvsd.log");
        let config = dir.path().join("rvsd.toml");
        let mut vdev = String::from("net_pcap0");
        for (q, input) in inputs.iter().enumerate() {
            let rx = dir.path().join(format!("in{q}.pcap"));
            super::write_pcap(&rx, input);
            vdev += &format!(",rx_pcap={}", rx.display());
        }
        for q in 0..inputs.len() {
            vdev += &format!(
                ",tx_pcap={}",
                dir.path().join(format!("out{q}.pcap")).display()
            );
        }
        let lcores: Vec<String> = (0..=inputs.len()).map(|i| format!("{i}@(0-1)")).collect();
        let eal = format!(
            r#"args = ["--lcores", "{}", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{}", "--log-level", "lib.eal:error", "--vdev", "{vdev}"]"#,
            lcores.join(","),
            super::file_prefix(),
        );
        let tx = dir.path().join("out0.pcap");
        let (socket, control) = match control
            .lines()
            .find_map(|l| l.trim().strip_prefix("socket = "))
        {
            Some(path) => (PathBuf::from(path.trim_matches('"')), control.to_owned()),
            None => {
                let socket = dir.path().join("rvsd.sock");
                let line = format!("socket = \"{}\"\n{control}", socket.display());
                (socket, line)
            }
        };
        let text = format!("[eal]\n{eal}\n[control]\n{control}\n{config_body}");
        std::fs::write(&config, text).unwrap();
        let child = Command::new(super::rvsd_bin())
            .arg("--config")
            .arg(&config)
            .arg("--stats-json")
            .arg(&stats)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log"))
            .spawn()
            .expect("spawn rvsd");
        Live {
            child,
            dir,
            socket,
            stats,
            tx,
            log,
        }
    }

    /// [`Live::spawn`], then waits until the control socket answers.
    pub fn start(control: &str, config_body: &str, input: &[Vec<u8>]) -> Live {
        Live::spawn(control, config_body, input).ready()
    }

    /// [`Live::spawn_queues`], then waits until the control socket answers.
    pub fn start_queues(control: &str, config_body: &str, inputs: &[Vec<Vec<u8>>]) -> Live {
        Live::spawn_queues(control, config_body, inputs).ready()
    }

    fn ready(mut self) -> Live {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let answered = control::client::Client::connect(&self.socket)
                .ok()
                .and_then(|mut c| c.call(&conf::proto::Request::Info).ok())
                .is_some();
            if answered {
                return self;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rvsd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "rvsd's control socket never answered:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// rvsd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The frames rvsd sent so far (on queue 0).
    pub fn output(&self) -> Vec<Vec<u8>> {
        super::read_pcap(&self.tx)
    }

    /// Runs rvsadm against this rvsd with `args` (split on spaces) and `stdin`.
    pub fn rvsadm_with(&self, args: &str, stdin: &str) -> Outcome {
        rvsadm(&self.socket, args, stdin)
    }

    /// Runs rvsadm against this rvsd with `args` (split on spaces).
    pub fn rvsadm(&self, args: &str) -> Outcome {
        rvsadm(&self.socket, args, "")
    }

    /// Runs rvsadm, which must succeed silently on stderr; returns its stdout.
    pub fn ok(&self, args: &str) -> String {
        let (code, out, err) = self.rvsadm(args);
        assert_eq!(
            (code, err.as_str()),
            (0, ""),
            "rvsadm {args} failed; log:\n{}",
            self.log()
        );
        out
    }

    /// Waits for rvsd to exit on its own; returns its status and log.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let status = self.wait_exit();
        (status, self.log())
    }

    /// Stops rvsd with SIGTERM, checks it exited cleanly, and returns its `--stats-json`.
    pub fn stop(mut self) -> serde_json::Value {
        let pid = self.child.id().to_string();
        assert!(super::netns::try_run(&["kill", "-TERM", &pid]));
        let status = self.wait_exit();
        assert!(
            status.success(),
            "rvsd exited with {status}:\n{}",
            self.log()
        );
        let text = std::fs::read_to_string(&self.stats)
            .unwrap_or_else(|e| panic!("no stats json ({e}):\n{}", self.log()));
        serde_json::from_str(&text).expect("stats json parses")
    }

    /// Kills rvsd with SIGKILL, as a crash would: its socket file stays behind.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait rvsd") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("rvsd did not exit in {TIMEOUT:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs rvsadm on `socket` with `args` (split on spaces) and `stdin`.
pub fn rvsadm(socket: &Path, args: &str, stdin: &str) -> Outcome {
    use std::io::Write;
    let mut child = Command::new(super::rvsadm_bin())
        .arg("--socket")
        .arg(socket)
        .args(args.split_whitespace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvsadm");
    let mut pipe = child.stdin.take().expect("stdin piped");
    pipe.write_all(stdin.as_bytes())
        .expect("write rvsadm stdin");
    drop(pipe);
    let out = child.wait_with_output().expect("rvsadm output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
