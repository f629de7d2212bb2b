//! LVS topologies in network namespaces, set up exactly as real LVS deployments are:
//!
//! - NAT: the client on one link, the real servers on a private subnet behind the balancer,
//!   with the balancer as their default gateway.
//! - DR and TUN: client, balancer and real servers on one link; each real server holds the VIP
//!   on `lo` (DR) or on a tunnel device (TUN: ipip, or GUE/GRE with [`Options::tunnel`]),
//!   with `arp_ignore=1`, `arp_announce=2`
//!   (and `rp_filter` off for TUN) so that only the balancer answers ARP for the VIP.
//!
//! The balancer runs `rvsd` on `net_af_packet` over veth ends in its own namespace.

use super::netns::Topology;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The VIP every topology serves, on port 80.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The client's address.
pub const CIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Forwarding method of a topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nat,
    Dr,
    Tun,
    /// FULLNAT: the real servers sit on their own subnet with no route to the client at all;
    /// rvs talks to them from the local address [`LIP`].
    FullNat,
}

/// The FULLNAT local address, on the real servers' link.
pub const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 100);

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::FullNat => "fullnat",
        }
    }
}

/// A running LVS: client namespace, real servers with HTTP servers, rvsd.
pub struct Lvs {
    pub topo: Topology,
    pub client: String,
    pub reals: Vec<(String, Ipv4Addr)>,
    pub stats: std::path::PathBuf,
    /// The client's interface (in `client`).
    pub client_if: String,
    /// Each real server's interface (in its namespace).
    pub real_ifs: Vec<String>,
    /// With [`Backend::NginxProxyProtocol`]: each real server's access log.
    pub access_logs: Vec<std::path::PathBuf>,
    /// The balancer's namespace.
    pub lb: String,
    /// With [`Options::twin_pps`]: each port's kernel twin interface (in `lb`).
    pub twins: Vec<String>,
}

/// What serves HTTP on the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `python3 -m http.server` (HTTP/1.0: a connection per request).
    Python,
    /// nginx with `listen RIP:8080 proxy_protocol` (FULLNAT with `proxy_protocol` on the
    /// service), one connection per request, logging the PROXY protocol addresses: see
    /// [`Topology::nginx_proxy_protocol`].
    NginxProxyProtocol,
}

/// Everything [`start_opts`] can vary.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub weights: Vec<u16>,
    pub sched: String,
    pub workers: usize,
    /// Every real server also runs a line-echo server (see [`start_with`]).
    pub echo: bool,
    /// Extra TOML lines for the VIP:80 service, e.g. `proxy_protocol = "v2"`.
    pub service_options: String,
    pub backend: Backend,
    /// Every port gets a kernel twin (`exception`, kind tap) with this `punt_pps`, and its
    /// af_packet veth an nftables ingress drop so the kernel of the balancer's namespace
    /// sees the wire only through the twins.
    pub twin_pps: Option<u32>,
    /// Extra TOML appended to the configuration (more services).
    pub extra: String,
    /// TUN only: every real's `tunnel` (GUE or GRE need the user-space decapsulator, whose
    /// checks are those of the kernel's drivers: see `ipip_decap.py`).
    pub tunnel: conf::Tunnel,
    /// Extra TOML after each real server of the VIP:80 service (e.g. its health checks).
    pub real_options: String,
}

impl Options {
    /// The defaults of [`start`].
    pub fn new(mode: Mode, weights: &[u16], sched: &str, workers: usize) -> Options {
        Options {
            mode,
            weights: weights.to_vec(),
            sched: sched.to_owned(),
            workers,
            echo: false,
            service_options: String::new(),
            backend: Backend::Python,
            twin_pps: None,
            extra: String::new(),
            tunnel: conf::Tunnel::default(),
            real_options: String::new(),
        }
    }
}

/// Address of real server `i` (0-based).
pub fn rip(mode: Mode, i: usize) -> Ipv4Addr {
    match mode {
        Mode::Nat | Mode::FullNat => Ipv4Addr::new(192, 168, 10, 11 + i as u8),
        Mode::Dr | Mode::Tun => Ipv4Addr::new(10, 0, 0, 11 + i as u8),
    }
}

/// Builds the topology for `mode` with one real server per weight, starts an HTTP server on
/// each (port 8080 for NAT, 80 otherwise; its pages say `rs<i>`), and starts rvsd with
/// `workers` workers and scheduler `sched`.
pub fn start(mode: Mode, weights: &[u16], sched: &str, workers: usize) -> Lvs {
    start_with(mode, weights, sched, workers, false)
}

/// The port of the line-echo service [`start_with`] can add.
pub const ECHO_PORT: u16 = 9000;

/// As [`start`]; with `echo`, every real server also runs a line-echo server on
/// [`ECHO_PORT`] and rvsd serves it as a second service `VIP:9000` (rr, weight 1 each).
pub fn start_with(mode: Mode, weights: &[u16], sched: &str, workers: usize, echo: bool) -> Lvs {
    start_opts(&Options {
        echo,
        ..Options::new(mode, weights, sched, workers)
    })
}

/// Builds and starts the topology `o` describes (see [`start`]).
pub fn start_opts(o: &Options) -> Lvs {
    let (mode, weights, sched, workers, echo) =
        (o.mode, &o.weights, o.sched.as_str(), o.workers, o.echo);
    let mut topo = Topology::new();
    let lb = topo.netns("lb");
    let client = topo.netns("cli");
    let sw = topo.netns("sw");
    topo.bridge(&sw, "br0");
    topo.bridge(&sw, "br1");

    // Client link: client, balancer port 0 (and for DR/TUN the real servers) on br0.
    let (c0, sc) = (topo.name("c"), topo.name("sc"));
    topo.veth(&client, &c0, &sw, &sc);
    topo.bridge_port(&sw, "br0", &sc);
    topo.host_if(&client, &c0, &format!("{CIP}/24"));
    // The widest ephemeral range: a client port comes round again only after tens of
    // thousands of connections, so a test's requests are distinct four-tuples.
    topo.exec(
        &client,
        &["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"],
    );
    let (l0, s0) = (topo.name("l0"), topo.name("s0"));
    topo.veth(&lb, &l0, &sw, &s0);
    topo.bridge_port(&sw, "br0", &s0);
    // With twins, one more af_packet queue pair: the exception thread's.
    let qpairs = workers + usize::from(o.twin_pps.is_some());
    let mut twins = Vec::new();
    let mut twin_for = |topo: &mut Topology, veth: &str| -> String {
        let Some(pps) = o.twin_pps else {
            return String::new();
        };
        let name = topo.name(&format!("rvs{}", twins.len()));
        let rule = format!(
            "add table netdev rvs{n}; add chain netdev rvs{n} in {{ type filter hook ingress device {veth} priority 0; policy drop; }}",
            n = twins.len()
        );
        topo.exec(&lb, &["timeout", "10", "nft", &rule]);
        twins.push(name.clone());
        format!("exception = {{ iface = \"{name}\", kind = \"tap\", punt_pps = {pps} }}\n")
    };
    let mut vdevs = format!(r#""--vdev", "net_af_packet0,iface={l0},qpairs={qpairs}""#);
    let mut ports = format!(
        "[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]\n{}",
        twin_for(&mut topo, &l0)
    );
    let behind = matches!(mode, Mode::Nat | Mode::FullNat);
    let (real_bridge, port_opt) = if behind {
        let (l1, s1) = (topo.name("l1"), topo.name("s1"));
        topo.veth(&lb, &l1, &sw, &s1);
        topo.bridge_port(&sw, "br1", &s1);
        vdevs += &format!(r#", "--vdev", "net_af_packet1,iface={l1},qpairs={qpairs}""#);
        ports += &format!(
            "[[port]]\nname = \"dpdk1\"\naddrs = [\"192.168.10.1/24\", \"{LIP}/32\"]\n{}",
            twin_for(&mut topo, &l1)
        );
        ("br1", 8080)
    } else {
        ("br0", 80)
    };

    let mut reals = Vec::new();
    let mut echo_service =
        format!("[[service]]\nvip = \"{VIP}:{ECHO_PORT}\"\nproto = \"tcp\"\nsched = \"rr\"\n");
    let mut service =
        format!("[[service]]\nvip = \"{VIP}:80\"\nproto = \"tcp\"\nsched = \"{sched}\"\n");
    if mode == Mode::FullNat {
        service += &format!("laddrs = [\"{LIP}\"]\n");
        echo_service += &format!("laddrs = [\"{LIP}\"]\n");
    }
    service += &o.service_options;
    let (mut real_ifs, mut access_logs) = (Vec::new(), Vec::new());
    for (i, weight) in weights.iter().enumerate() {
        let ns = topo.netns(&format!("rs{i}"));
        let (r0, sr) = (topo.name(&format!("r{i}")), topo.name(&format!("sr{i}")));
        topo.veth(&ns, &r0, &sw, &sr);
        topo.bridge_port(&sw, real_bridge, &sr);
        let addr = rip(mode, i);
        topo.host_if(&ns, &r0, &format!("{addr}/24"));
        match mode {
            Mode::Nat => {
                topo.exec(
                    &ns,
                    &["ip", "route", "add", "default", "via", "192.168.10.1"],
                );
            }
            Mode::FullNat => {}
            Mode::Dr => {
                real_server_arp_rules(&topo, &ns);
                topo.exec(
                    &ns,
                    &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
                );
            }
            Mode::Tun => {
                real_server_arp_rules(&topo, &ns);
                let tunnel = match o.tunnel.kind {
                    conf::TunKind::Ipip => ipip_device(&mut topo, &ns),
                    _ => decap_device(&mut topo, &ns, &o.tunnel),
                };
                let vip = format!("{VIP}/32");
                topo.exec(&ns, &["ip", "addr", "add", &vip, "dev", &tunnel]);
                topo.exec(&ns, &["ip", "link", "set", &tunnel, "up"]);
                for conf in ["all", "default", tunnel.as_str(), &r0] {
                    let sysctl = format!("net.ipv4.conf.{conf}.rp_filter=0");
                    topo.exec(&ns, &["sysctl", "-qw", &sysctl]);
                }
            }
        }
        let bind = if behind { addr } else { Ipv4Addr::UNSPECIFIED };
        match o.backend {
            Backend::Python => topo.http_server(&ns, bind, port_opt, &format!("rs{i}")),
            Backend::NginxProxyProtocol => {
                access_logs.push(topo.nginx_proxy_protocol(&ns, addr, port_opt, &format!("rs{i}")));
            }
        }
        real_ifs.push(r0.clone());
        if echo {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/echo_server.py");
            let log = topo.dir.path().join(format!("echo-{ns}.log"));
            let (bind, port, name) = (bind.to_string(), ECHO_PORT.to_string(), format!("rs{i}"));
            topo.spawn(&ns, &["python3", script, &bind, &port, &name], &log);
            echo_service += &format!(
                "  [[service.real]]\n  addr = \"{addr}:{ECHO_PORT}\"\n  mode = \"{}\"\n",
                mode.as_str()
            );
        }
        service += &format!(
            "  [[service.real]]\n  addr = \"{addr}:{port_opt}\"\n  mode = \"{}\"\n  weight = {weight}\n{}",
            mode.as_str(),
            o.real_options
        );
        if mode == Mode::Tun && !o.tunnel.is_ipip() {
            let t = o.tunnel;
            service += &format!(
                "  tunnel = {{ type = \"{}\", {}csum = \"{}\" }}\n",
                t.kind.as_str(),
                if t.kind == conf::TunKind::Gue {
                    format!("port = {}, ", t.port)
                } else {
                    String::new()
                },
                t.csum.as_str()
            );
        }
        reals.push((ns, addr));
    }
    topo.exec(
        &client,
        &["ip", "route", "add", "default", "via", "10.0.0.1"],
    );
    if echo {
        service += &echo_service;
    }
    service += &o.extra;

    let lcores: Vec<String> = (0..=workers).map(|i| format!("{i}@(0-1)")).collect();
    let worker_list: Vec<String> = (1..=workers).map(|i| i.to_string()).collect();
    let config = format!(
        r#"[eal]
args = ["--lcores", "{lcores}", "--no-huge", "-m", "512", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", {vdevs}]
[control]
socket = "{socket}"
[dataplane]
workers = [{worker_list}]
conn_table_size = 65536
{ports}
{service}"#,
        lcores = lcores.join(","),
        prefix = super::file_prefix(),
        worker_list = worker_list.join(", "),
        socket = topo.dir.path().join("rvsd.sock").display(),
    );
    let stats = topo.dir.path().join("stats.json");
    let probe = [
        "ip",
        "netns",
        "exec",
        &client,
        "ping",
        "-c1",
        "-W1",
        &VIP.to_string(),
    ];
    topo.rvsd(&lb, &config, &stats, &probe);
    Lvs {
        topo,
        client,
        reals,
        stats,
        client_if: c0,
        real_ifs,
        access_logs,
        lb,
        twins,
    }
}

/// The real server's IP-in-IP decapsulation device: `tunl0` of the kernel's ipip driver
/// where it exists, else a TUN device fed by `ipip_decap.py` (same packets, decapsulated in
/// user space; see that script).
fn ipip_device(topo: &mut Topology, ns: &str) -> String {
    if super::netns::try_run(&[
        "ip", "netns", "exec", ns, "ip", "link", "add", "tunl0", "type", "ipip",
    ]) || super::netns::try_run(&["ip", "netns", "exec", ns, "ip", "link", "show", "tunl0"])
    {
        return "tunl0".to_owned();
    }
    spawn_decap(topo, ns, &[])
}

/// The real server's GUE or GRE decapsulation device: a TUN device fed by `ipip_decap.py`.
/// (This CI kernel has neither `fou` nor `ip_gre`; the script checks what they check.)
fn decap_device(topo: &mut Topology, ns: &str, tunnel: &conf::Tunnel) -> String {
    let port = tunnel.port.to_string();
    match tunnel.kind {
        conf::TunKind::Gue => spawn_decap(topo, ns, &["gue", &port]),
        _ => spawn_decap(topo, ns, &["gre"]),
    }
}

/// Starts `ipip_decap.py` with `args` after the device name, and waits for its device.
fn spawn_decap(topo: &mut Topology, ns: &str, args: &[&str]) -> String {
    let name = "rvsipip0".to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/ipip_decap.py");
    let log = topo.dir.path().join(format!("decap-{ns}.log"));
    let mut argv = vec!["python3", script, name.as_str()];
    argv.extend_from_slice(args);
    topo.spawn(ns, &argv, &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !super::netns::try_run(&["ip", "netns", "exec", ns, "ip", "link", "show", &name]) {
        assert!(
            std::time::Instant::now() < deadline,
            "ipip decapsulator did not start in {ns}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    name
}

/// `arp_ignore=1`, `arp_announce=2`: the real server neither answers ARP for the VIP nor
/// uses it as the source of its own ARP requests (the LVS-DR/TUN real server recipe).
fn real_server_arp_rules(topo: &Topology, ns: &str) {
    for conf in ["all", "default"] {
        topo.exec(
            ns,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{conf}.arp_ignore=1"),
            ],
        );
        topo.exec(
            ns,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{conf}.arp_announce=2"),
            ],
        );
    }
}

impl Lvs {
    /// Fetches `count` pages from the VIP, one connection each, and counts the answers by
    /// real server name (failed requests count under "").
    pub fn fetch(&self, count: usize) -> BTreeMap<String, usize> {
        let mut split = BTreeMap::new();
        let bodies = super::netns::fetch_many(&self.client, &format!("http://{VIP}/"), count);
        for body in &bodies {
            *split.entry(body.trim().to_owned()).or_insert(0) += 1;
        }
        let missing = count.saturating_sub(bodies.len());
        if missing > 0 {
            *split.entry(String::new()).or_insert(0) += missing;
        }
        split
    }

    /// Fetches `count` pages from the VIP like [`Lvs::fetch`], and also returns how many
    /// distinct client ports (four-tuples) the requests used.
    pub fn fetch_ports(&self, count: usize) -> (BTreeMap<String, usize>, usize) {
        let url = format!("http://{VIP}/");
        let fetched = super::netns::fetch_many_ports(&self.client, &url, count);
        let mut split = BTreeMap::new();
        for (body, _) in &fetched {
            *split.entry(body.trim().to_owned()).or_insert(0) += 1;
        }
        let missing = count.saturating_sub(fetched.len());
        if missing > 0 {
            *split.entry(String::new()).or_insert(0) += missing;
        }
        assert!(
            fetched
                .iter()
                .all(|(body, port)| body.is_empty() || *port != 0),
            "curl reports the local port of every transfer"
        );
        let ports: std::collections::BTreeSet<u16> = fetched.iter().map(|f| f.1).collect();
        (split, ports.len())
    }

    /// Runs `rvsadm` against this rvsd and returns its standard output.
    pub fn rvsadm(&self, args: &[&str]) -> String {
        let socket = self.topo.dir.path().join("rvsd.sock");
        let out = std::process::Command::new(super::rvsadm_bin())
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .expect("run rvsadm");
        assert!(
            out.status.success(),
            "rvsadm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops rvsd and returns its final `--stats-json`.
    pub fn stop(&mut self) -> serde_json::Value {
        if let Err(e) = self.topo.stop_rvsd() {
            panic!("{e}\n{}", self.topo.log());
        }
        let text = std::fs::read_to_string(&self.stats).expect("stats json written");
        serde_json::from_str(&text).expect("stats json parses")
    }
}
