//! Real hosts for end-to-end tests: network namespaces joined by veth pairs and Linux bridges,
//! with `rvsd` running in its own namespace on `net_af_packet` over veth ends.
//!
//! Every name carries a per-topology tag so tests can run in parallel, and [`Topology`]'s drop
//! kills what it started and deletes its namespaces (also when the test panics). Traffic stays
//! inside the namespaces the test made.
//!
//! veth ends used by the kernel get `ethtool -K … tx off`: otherwise the kernel hands
//! AF_PACKET frames whose TCP/UDP checksums are only partial, and the receiver drops them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Runs a command, panicking with its output if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, returning whether it succeeded (for cleanup and probes).
pub fn try_run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running `tcpdump` ([`Topology::capture`]).
pub struct Capture {
    pid: u32,
    path: PathBuf,
}

/// A set of namespaces, links and processes that disappears on drop.
pub struct Topology {
    tag: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    pub dir: tempfile::TempDir,
}

impl Topology {
    /// An empty topology with a unique tag (short: interface names are at most 15 bytes).
    pub fn new() -> Topology {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{:x}{}",
            std::process::id() % 0xfffff,
            N.fetch_add(1, Ordering::Relaxed)
        );
        Topology {
            tag,
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: super::scratch(),
        }
    }

    /// The full name of namespace or interface `short` in this topology.
    pub fn name(&self, short: &str) -> String {
        format!("{short}{}", self.tag)
    }

    /// Creates namespace `short` with loopback up and IPv6 off (no router solicitations).
    pub fn netns(&mut self, short: &str) -> String {
        let ns = self.name(short);
        run(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        self.exec(&ns, &["ip", "link", "set", "lo", "up"]);
        self.exec(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        self.exec(
            &ns,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        );
        ns
    }

    /// Runs a command inside namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// A veth pair: `a` in namespace `ns_a`, `b` in `ns_b`, both up.
    pub fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) {
        run(&[
            "ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ]);
        self.exec(ns_a, &["ip", "link", "set", a, "up"]);
        self.exec(ns_b, &["ip", "link", "set", b, "up"]);
    }

    /// Turns IPv6 on for `ifname` in `ns` (namespaces start with it off), with no router
    /// solicitations and no router advertisements taken: the tests configure their routes.
    pub fn enable_ipv6(&self, ns: &str, ifname: &str) {
        for (key, value) in [
            ("router_solicitations", "0"),
            ("accept_ra", "0"),
            ("disable_ipv6", "0"),
        ] {
            let setting = format!("net.ipv6.conf.{ifname}.{key}={value}");
            self.exec(ns, &["sysctl", "-qw", &setting]);
        }
    }

    /// A bridge `br` in namespace `ns`.
    pub fn bridge(&self, ns: &str, br: &str) {
        self.exec(ns, &["ip", "link", "add", br, "type", "bridge"]);
        self.exec(ns, &["ip", "link", "set", br, "up"]);
    }

    /// Attaches `port` (in `ns`) to bridge `br` (in `ns`).
    pub fn bridge_port(&self, ns: &str, br: &str, port: &str) {
        self.exec(ns, &["ip", "link", "set", port, "master", br]);
    }

    /// Gives a kernel-side interface an address and turns off checksum offload (see module docs).
    pub fn host_if(&self, ns: &str, ifname: &str, cidr: &str) {
        self.exec(ns, &["ip", "addr", "add", cidr, "dev", ifname]);
        self.exec(
            ns,
            &[
                "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
            ],
        );
    }

    /// Starts a long-running process inside `ns`; it is killed when the topology drops.
    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &Path) -> &mut Child {
        let log = std::fs::File::create(log).expect("create log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?} in {ns}: {e}"));
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Starts an HTTP server in `ns` on `addr:port` whose every page is `body` (so a client
    /// can tell which real server answered). Returns once it accepts connections.
    pub fn http_server(&mut self, ns: &str, addr: impl Into<IpAddr>, port: u16, body: &str) {
        let addr = addr.into();
        let root = self.dir.path().join(format!("www-{ns}-{port}"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), body).unwrap();
        let log = self.dir.path().join(format!("http-{ns}-{port}.log"));
        let (port_s, addr_s, root_s) = (
            port.to_string(),
            addr.to_string(),
            root.display().to_string(),
        );
        self.spawn(
            ns,
            &[
                "python3",
                "-m",
                "http.server",
                &port_s,
                "--bind",
                &addr_s,
                "--directory",
                &root_s,
            ],
            &log,
        );
        let url = format!("http://{}/", std::net::SocketAddr::new(addr, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !try_run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "curl",
            "-sfg",
            "-o",
            "/dev/null",
            "--max-time",
            "1",
            &url,
        ]) {
            assert!(
                Instant::now() < deadline,
                "http server {url} in {ns} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts nginx in `ns` listening on `addr:port` with the PROXY protocol (v1 or v2, as
    /// nginx accepts both), every page `body` (no newline: [`fetch_many`] adds one), a
    /// connection per request
    /// (`keepalive_timeout 0`), everything in the scratch directory; returns its access log,
    /// one line per request: `$proxy_protocol_addr $proxy_protocol_port
    /// $proxy_protocol_server_addr $proxy_protocol_server_port $remote_addr $remote_port`.
    /// Returns once it listens (checked with `ss`, so that no probe request is logged).
    pub fn nginx_proxy_protocol(
        &mut self,
        ns: &str,
        addr: Ipv4Addr,
        port: u16,
        body: &str,
    ) -> PathBuf {
        let dir = self.dir.path().join(format!("nginx-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let access = dir.join("access.log");
        let config = format!(
            r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format pp '$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port $remote_addr $remote_port';
    access_log {access} pp;
    keepalive_timeout 0;
    server {{
        listen {addr}:{port} proxy_protocol;
        return 200 "{body}";
    }}
}}
"#,
            access = access.display()
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let (conf_s, dir_s, err_s) = (
            conf.display().to_string(),
            dir.display().to_string(),
            dir.join("error.log").display().to_string(),
        );
        let log = dir.join("stdout.log");
        self.spawn(
            ns,
            &["/usr/sbin/nginx", "-e", &err_s, "-p", &dir_s, "-c", &conf_s],
            &log,
        );
        let listening = format!("{addr}:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .exec(ns, &["ss", "-Hltn"])
            .split_whitespace()
            .any(|w| w == listening)
        {
            assert!(
                Instant::now() < deadline,
                "nginx on {listening} in {ns} did not start: {}{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(&err_s).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        access
    }

    /// Starts `tcpdump` in `ns` on `iface` with the capture filter `filter` (words), writing
    /// to a pcap file in the scratch directory, and returns once it captures.
    pub fn capture(&mut self, ns: &str, iface: &str, filter: &[&str]) -> Capture {
        let path = self.dir.path().join(format!("{ns}-{iface}.pcap"));
        let log = self.dir.path().join(format!("{ns}-{iface}.tcpdump.log"));
        let path_s = path.display().to_string();
        // -Z root: the file is in the scratch directory, which only root may write.
        let mut args = vec![
            "tcpdump", "-i", iface, "-n", "-U", "-s", "256", "-Z", "root", "-w", &path_s,
        ];
        args.extend_from_slice(filter);
        let pid = self.spawn(ns, &args, &log).id();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                Instant::now() < deadline,
                "tcpdump on {iface} in {ns} did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Capture { pid, path }
    }

    /// Stops a capture and returns its frames: once its file has not grown for a second
    /// (tcpdump may lag behind rvsd's busy workers, and drops what it has not read when it
    /// stops), SIGINT, on which tcpdump flushes its file and exits.
    pub fn stop_capture(&mut self, capture: Capture) -> Vec<Vec<u8>> {
        let size = || std::fs::metadata(&capture.path).map_or(0, |m| m.len());
        let (mut last, mut since) = (size(), Instant::now());
        let deadline = Instant::now() + Duration::from_secs(30);
        while since.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = size();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        let i = self
            .children
            .iter()
            .position(|c| c.id() == capture.pid)
            .expect("the capture runs");
        let mut child = self.children.remove(i);
        try_run(&["kill", "-INT", &capture.pid.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tcpdump did not stop");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        super::read_pcap(&capture.path)
    }

    /// Starts `rvsd` in namespace `ns` with `config` (full TOML) and waits until `probe`
    /// (a command run in some namespace) succeeds, e.g. a ping of the VIP from the client.
    pub fn rvsd(&mut self, ns: &str, config: &str, stats: &Path, probe: &[&str]) {
        let path = self.dir.path().join("rvsd.toml");
        std::fs::write(&path, config).unwrap();
        let log = self.rvsd_log();
        let bin = super::rvsd_bin();
        let (bin, path, stats) = (
            bin.display().to_string(),
            path.display().to_string(),
            stats.display().to_string(),
        );
        self.spawn(ns, &[&bin, "--config", &path, "--stats-json", &stats], &log);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !try_run(probe) {
            if let Some(status) = self
                .children
                .last_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rvsd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "rvsd never answered {probe:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn rvsd_log(&self) -> PathBuf {
        self.dir.path().join("rvsd.log")
    }

    /// rvsd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.rvsd_log()).unwrap_or_default()
    }

    /// Index in `children` of the rvsd process.
    fn rvsd_index(&self) -> Option<usize> {
        let bin = super::rvsd_bin();
        self.children.iter().position(|c| {
            std::fs::read_to_string(format!("/proc/{}/cmdline", c.id()))
                .is_ok_and(|cmd| cmd.contains(bin.to_str().unwrap_or("rvsd")))
        })
    }

    /// The configuration file rvsd was started with (rewrite it, then [`Topology::hup_rvsd`]).
    pub fn rvsd_config(&self) -> PathBuf {
        self.dir.path().join("rvsd.toml")
    }

    /// Sends SIGHUP to rvsd: it re-reads its configuration file.
    pub fn hup_rvsd(&self) {
        let i = self.rvsd_index().expect("rvsd runs");
        run(&["kill", "-HUP", &self.children[i].id().to_string()]);
    }

    /// Stops rvsd (the first process started with [`Topology::rvsd`]) with SIGTERM and waits,
    /// so that its `--stats-json` file is written. Says why when it did not exit cleanly.
    pub fn stop_rvsd(&mut self) -> Result<(), String> {
        let i = self.rvsd_index().ok_or("rvsd is not running")?;
        let mut child = self.children.remove(i);
        // `ip netns exec` execs rvsd, so the child's pid is rvsd's.
        try_run(&["kill", "-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("rvsd exited with {status}"))
                };
            }
            if Instant::now() > deadline {
                let stack = Command::new("cat")
                    .arg(format!("/proc/{}/task/{}/stack", child.id(), child.id()))
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let threads = std::fs::read_dir(format!("/proc/{}/task", child.id()))
                    .map(|d| d.count())
                    .unwrap_or(0);
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("rvsd did not exit within 20 s of SIGTERM ({threads} threads; main stack:\n{stack})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            // Anything else still running in the namespace (e.g. a server's children).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    try_run(&["kill", "-KILL", pid]);
                }
            }
            try_run(&["ip", "netns", "del", ns]);
        }
    }
}

/// [`fetch_many`], with the client's local port of each transfer (0 when it never
/// connected): which four-tuples the balancer saw.
pub fn fetch_many_ports(ns: &str, url: &str, count: usize) -> Vec<(String, u16)> {
    let glob = format!("{url}?n=[1-{count}]");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "--fail",
            "--max-time",
            "120",
        ])
        .args(["--connect-timeout", "5", "-w", "\\t%{local_port}\\n", &glob])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (body, port) = line.rsplit_once('\t').unwrap_or((line, "0"));
            (body.to_owned(), port.parse().unwrap_or(0))
        })
        .collect()
}

/// Fetches `count` URLs from inside `ns` in one curl process, a new TCP connection each (the
/// server closes after every response), and returns the response bodies.
pub fn fetch_many(ns: &str, url: &str, count: usize) -> Vec<String> {
    fetch_many_ports(ns, url, count)
        .into_iter()
        .map(|(body, _)| body)
        .collect()
}
