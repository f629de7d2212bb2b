//! The cost of one live change against the number of services: real `rvsd`s (one worker each
//! on a `net_null` port, `--no-huge`) driven through their control sockets with one request
//! per change, as keepalived drives ipvsadm (`control::client::Client`, no batches).
//!
//! Two rvsd run side by side: one is given `--small` services, the other `--services` (each
//! service `-A` then `-a` of one real server; the second fill is timed, the outside review's
//! "10,000 `rvsadm -A`"). Then `--changes` rounds make each kind of change once on each, the
//! two taking turns to go first, so that whatever else the machine does at a moment falls on
//! both sizes alike: `-A` of a new service and `-D` of it again, `-a` of a second real server
//! to the middle service and `-d` of it again. Last, the large table is emptied with one `-D`
//! per service (timed).
//!
//! Each row gives changes per second at both sizes and their ratio (large / small): a change
//! whose cost does not depend on the number of services has a ratio near 1.
//!
//! The worker adopts every snapshot between its bursts on its own lcore, out of the control
//! thread's time; the second table measures that step in-process on the same code, with the
//! snapshot update the control thread makes before it: `Snapshot::update` and
//! `Pipeline::adopt` after one `-A` and after one `-a`, at both sizes, interleaved the same way.

use bench::dpdk::{self, Rvsd, Serving};
use clap::Parser;
use conf::proto::{DestSpec, Request, Response, ServiceKey, ServiceSpec};
use conf::{Mode, Proto};
use control::client::Client;
use control::model::Model;
use fastpath::pipeline::Pipeline;
use fastpath::snapshot::{Change, Snapshot};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// rvs control-plane benchmark: changes per second at a small and a large number of services.
#[derive(Parser, Debug)]
#[command(name = "control_bench")]
struct Args {
    /// The rvsd binary [default: next to this program].
    #[arg(long)]
    rvsd: Option<PathBuf>,
    /// The small number of services.
    #[arg(long, default_value_t = 10)]
    small: u32,
    /// The large number of services.
    #[arg(long, default_value_t = 10_000)]
    services: u32,
    /// Timed changes of each kind at each size.
    #[arg(long, default_value_t = 5000)]
    changes: u32,
    /// Keep the work directory (configuration, socket, stats).
    #[arg(long)]
    keep: bool,
}

/// Services per VIP: ports 1..=PORTS of each of the VIPs.
const PORTS: u32 = 60_000;
/// The VIPs, 10.0.0.100 onwards.
const VIPS: u32 = 8;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("control_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The key of service number `i` (from 0).
fn key(i: u32) -> ServiceKey {
    let vip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 100)) + i / PORTS);
    ServiceKey {
        proto: Proto::Tcp,
        vip: SocketAddrV4::new(vip, (1 + i % PORTS) as u16).into(),
    }
}

/// A NAT real server on the port's subnet, number `i`.
fn dest(i: u32) -> DestSpec {
    DestSpec {
        addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 10 + (i % 80) as u8), 8080).into(),
        mode: Mode::Nat,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: Default::default(),
    }
}

fn add_service(i: u32) -> Request {
    Request::AddService {
        service: ServiceSpec {
            key: key(i),
            sched: "wrr".into(),
            persistence: 0,
            netmask: conf::Netmask::V4(Ipv4Addr::BROADCAST),
        },
    }
}

fn del_service(i: u32) -> Request {
    Request::DelService { service: key(i) }
}

fn add_dest(service: u32, real: u32) -> Request {
    Request::AddDest {
        service: key(service),
        dest: dest(real),
    }
}

fn del_dest(service: u32, real: u32) -> Request {
    Request::DelDest {
        service: key(service),
        addr: dest(real).addr,
    }
}

/// One change through the socket; the time rvsd took to answer it.
fn call(client: &mut Client, request: &Request) -> Result<Duration, String> {
    let start = Instant::now();
    let answer = client.call(request).map_err(|e| e.to_string())?;
    let took = start.elapsed();
    match answer {
        Response::Done => Ok(took),
        other => Err(format!("{request:?}: {other:?}")),
    }
}

/// The latencies of one kind of change at one size.
#[derive(Debug, Default, Clone)]
struct Sample(Vec<Duration>);

impl Sample {
    fn per_second(&self) -> f64 {
        let total: Duration = self.0.iter().sum();
        self.0.len() as f64 / total.as_secs_f64()
    }

    fn mean_us(&self) -> f64 {
        let total: Duration = self.0.iter().sum();
        total.as_secs_f64() * 1e6 / self.0.len() as f64
    }

    fn quantile_us(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    }
}

/// The kinds of change timed, in the order of each round.
const KINDS: [&str; 4] = [
    "-A  add a service",
    "-D  delete a service",
    "-a  add a real server",
    "-d  delete a real server",
];

/// Change `kind` of [`KINDS`] on a table of `services` services: `-A`/`-D` of service number
/// `services` (one past the last), `-a`/`-d` of a second real server of the middle service.
fn request(kind: usize, services: u32) -> Request {
    let middle = services / 2;
    match kind {
        0 => add_service(services),
        1 => del_service(services),
        2 => add_dest(middle, middle + 1),
        _ => del_dest(middle, middle + 1),
    }
}

/// A running rvsd with its client and its number of services.
struct Target {
    server: Serving,
    client: Client,
    services: u32,
}

/// `rounds` rounds, each making every kind of change once on each target, the two targets
/// taking turns to go first. The latencies per target and kind.
fn measure(targets: &mut [Target; 2], rounds: u32) -> Result<[[Sample; 4]; 2], String> {
    let mut at: [[Sample; 4]; 2] = Default::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for (kind, _) in KINDS.iter().enumerate() {
            for t in order {
                let target = &mut targets[t];
                let took = call(&mut target.client, &request(kind, target.services))?;
                at[t][kind].0.push(took);
            }
        }
    }
    Ok(at)
}

/// Adds services up to `to` to `target`, each with one real server; the time the `-A`s took
/// and the time everything took.
fn fill(target: &mut Target, to: u32) -> Result<(Duration, Duration), String> {
    let start = Instant::now();
    let mut adds = Duration::ZERO;
    for i in target.services..to {
        adds += call(&mut target.client, &add_service(i))?;
        call(&mut target.client, &add_dest(i, i))?;
    }
    target.services = to;
    Ok((adds, start.elapsed()))
}

fn run(args: &Args) -> Result<(), String> {
    if args.small >= args.services || args.services > PORTS * VIPS - 1 {
        return Err(format!(
            "need --small < --services < {} (ports 1..={PORTS} of {VIPS} VIPs)",
            PORTS * VIPS
        ));
    }
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = args
        .rvsd
        .clone()
        .unwrap_or_else(|| here.with_file_name("rvsd"));
    if !bin.is_file() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p dataplane) or use bench/run.sh control",
            bin.display()
        ));
    }
    let work = tempfile::Builder::new()
        .prefix("rvs-control-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let start = |name: &str| -> Result<Target, String> {
        let rvsd = Rvsd {
            bin: bin.clone(),
            dir: work.path().to_path_buf(),
            name: name.into(),
        };
        let server = rvsd.serve(&config())?;
        let client = Client::connect(&server.socket)
            .map_err(|e| format!("{}: {e}", server.socket.display()))?;
        Ok(Target {
            server,
            client,
            services: 0,
        })
    };
    let mut targets = [start("small")?, start("large")?];

    let (small, large, changes) = (args.small, args.services, args.changes);
    fill(&mut targets[0], small)?;
    eprintln!("filling to {large} services");
    let (adds, filled) = fill(&mut targets[1], large)?;
    // Untimed: the first requests pay for the client's connection and cold caches.
    measure(&mut targets, changes.div_ceil(4))?;
    eprintln!("{changes} changes of each kind at {small} and at {large} services, interleaved");
    let at = measure(&mut targets, changes)?;
    eprintln!("emptying to {small} services");
    let [small_rvsd, mut large_rvsd] = targets;
    let start = Instant::now();
    for i in (small..large).rev() {
        call(&mut large_rvsd.client, &del_service(i))?;
    }
    let emptied = start.elapsed();
    let mut ended = Vec::new();
    for target in [small_rvsd, large_rvsd] {
        drop(target.client);
        ended.push(target.server.stop()?);
    }
    print_report(args, &at);

    eprintln!("the same steps in-process");
    print_in_process(args, &in_process(small, large, changes)?);
    let n = large - small;
    println!(
        "\nFill 0 -> {large}: {large} x (-A, -a) in {:.2} s, of which the -A took {:.2} s ({:.0} -A/s); \
         emptying {large} -> {small}: {n} x -D in {:.2} s ({:.0} -D/s).",
        filled.as_secs_f64(),
        adds.as_secs_f64(),
        f64::from(large) / adds.as_secs_f64(),
        emptied.as_secs_f64(),
        f64::from(n) / emptied.as_secs_f64(),
    );
    println!(
        "rvsd: {}; the two ended with {} packets received and {} dropped.",
        bin.display(),
        ended.iter().map(|s| s.rx_packets).sum::<u64>(),
        ended.iter().map(|s| s.dropped()).sum::<u64>()
    );
    if args.keep {
        println!("work directory kept: {}", work.keep().display());
    }
    Ok(())
}

/// The configuration of [`config`] without DPDK arguments (not to be run), and `extra`.
fn parse_network(extra: &str) -> Result<conf::Config, String> {
    let text = format!("[eal]\nargs = []\n{}{extra}", network_toml());
    conf::Config::parse(&text, "control_bench.toml").map_err(|e| e.to_string())
}

/// Service number `i` as the model hands it to the snapshot: wrr, with real servers `reals`.
fn conf_service(template: &conf::Service, i: u32, reals: &[u32]) -> conf::Service {
    let mut s = template.clone();
    let key = key(i);
    s.vip = key.vip;
    s.proto = key.proto;
    s.reals = reals
        .iter()
        .map(|&r| conf::Real {
            addr: dest(r).addr,
            mode: Mode::Nat,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Default::default(),
        })
        .collect();
    s
}

/// A model and a snapshot with a number of services and a worker that adopted it, for the
/// in-process measurement.
struct Local {
    model: Model,
    current: Snapshot,
    worker: Pipeline,
    services: u32,
}

/// The steps timed in-process, in the order of [`in_process`]'s samples.
const STEPS: [&str; 6] = [
    "Model::apply of -A, copy kept",
    "Snapshot::update after -A",
    "Pipeline::adopt after -A",
    "Model::apply of -a or -d, copy kept",
    "Snapshot::update after -a or -d",
    "Pipeline::adopt after -a or -d",
];

/// The steps of one change timed in-process for `small` and `large` services (each with one
/// real server), interleaved as [`measure`] does: the model's change (with the copy rvsd keeps
/// to roll back), the snapshot update and the worker's adoption ([`STEPS`]).
fn in_process(small: u32, large: u32, changes: u32) -> Result<[[Sample; 6]; 2], String> {
    let template =
        parse_network("[[service]]\nvip = \"10.0.0.100:1\"\nproto = \"tcp\"\nsched = \"wrr\"\n")?
            .services
            .remove(0);
    let local = |services: u32| -> Result<Local, String> {
        let mut config = parse_network("")?;
        config.services = (0..services)
            .map(|i| conf_service(&template, i, &[i]))
            .collect();
        let mac = [2, 0, 0, 0, 0, 1];
        let current = Snapshot::build(&config, &[mac], None, 1).map_err(|e| e.to_string())?;
        let worker = Pipeline::new(0, 1, 4096, &current, 0).map_err(|e| format!("{e:?}"))?;
        let model = Model::from_config(&config);
        Ok(Local {
            model,
            current,
            worker,
            services,
        })
    };
    let mut locals = [local(small)?, local(large)?];
    let mut at: [[Sample; 6]; 2] = Default::default();
    for n in 0..changes {
        let order = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        for t in order {
            let l = &mut locals[t];
            let middle = l.services / 2;
            let requests = [
                add_service(l.services + n),
                if n % 2 == 0 {
                    add_dest(middle, middle + 1)
                } else {
                    del_dest(middle, middle + 1)
                },
            ];
            for (step, request) in [0, 3].into_iter().zip(&requests) {
                let start = Instant::now();
                let saved = l.model.clone();
                l.model.apply(request).map_err(|e| e.message)?;
                drop(saved);
                at[t][step].0.push(start.elapsed());
            }
            // The same changes to the snapshot, as rvsd makes them from the model.
            let added = conf_service(&template, l.services + n, &[]);
            let edited = if n % 2 == 0 {
                conf_service(&template, middle, &[middle, middle + 1])
            } else {
                conf_service(&template, middle, &[middle])
            };
            for (step, service) in [(1, &added), (4, &edited)] {
                let start = Instant::now();
                let next = l
                    .current
                    .update(&[Change::PutService(service)])
                    .map_err(|e| e.to_string())?;
                at[t][step].0.push(start.elapsed());
                let start = Instant::now();
                l.worker.adopt(Some(&l.current), &next);
                at[t][step + 1].0.push(start.elapsed());
                l.current = next;
            }
        }
    }
    Ok(at)
}

/// rvsd on one `net_null` port that receives nothing, one worker, DPDK without hugepages.
fn config() -> String {
    let prefix = dpdk::file_prefix("control");
    format!(
        r#"[eal]
args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry", "--file-prefix", "{prefix}", "--log-level", "lib.eal:error", "--vdev", "net_null0,no-rx=1"]
{}"#,
        network_toml()
    )
}

/// One worker, one port owning the VIPs and a subnet for the real servers.
fn network_toml() -> String {
    let vips: Vec<String> = (0..VIPS)
        .map(|i| format!("\"10.0.0.{}/32\"", 100 + i))
        .collect();
    format!(
        "[dataplane]\nworkers = [1]\nconn_table_size = 4096\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", {}]\n",
        vips.join(", ")
    )
}

fn print_report(args: &Args, at: &[[Sample; 4]; 2]) {
    let (small, services) = (args.small, args.services);
    println!(
        "Live changes through the control socket, one request per change, {} of each kind per size \
         (two rvsd side by side with {small} and {services} services, one worker each on net_null, \
         --no-huge; their requests interleaved)",
        args.changes
    );
    println!(
        "{:<26} {:>12} {:>12} {:>7}   {:>18} {:>7} {:>18}",
        "change",
        format!("/s at {small}"),
        format!("/s at {services}"),
        "ratio",
        format!("median µs ({small}, n)"),
        "ratio",
        format!("p99 µs ({small}, n)")
    );
    for (i, what) in KINDS.iter().enumerate() {
        let (s, l) = (&at[0][i], &at[1][i]);
        let (median_s, median_l) = (s.quantile_us(0.5), l.quantile_us(0.5));
        println!(
            "{what:<26} {:>12.0} {:>12.0} {:>7.2}   {:>18} {:>7.2} {:>18}",
            s.per_second(),
            l.per_second(),
            l.per_second() / s.per_second(),
            format!("{median_s:.1}, {median_l:.1}"),
            median_s / median_l,
            format!("{:.0}, {:.0}", s.quantile_us(0.99), l.quantile_us(0.99)),
        );
    }
    println!(
        "(ratio: changes per second at {services} over those at {small}, from the total time, then \
         from the medians)"
    );
}

fn print_in_process(args: &Args, at: &[[Sample; 6]; 2]) {
    let (small, services) = (args.small, args.services);
    println!(
        "\nThe steps of a change in-process (no socket), interleaved the same way: the model's \
         change with the copy rvsd keeps to roll back, the control thread's Snapshot::update and \
         the worker's Pipeline::adopt of its result, µs per change, median (mean); ratio of the medians (a step of a few µs is often \
         preempted on a busy machine, which the means show)"
    );
    println!(
        "{:<34} {:>16} {:>16} {:>7}",
        "step",
        format!("at {small}"),
        format!("at {services}"),
        "ratio"
    );
    for (i, what) in STEPS.iter().enumerate() {
        let (s, l) = (&at[0][i], &at[1][i]);
        let cell = |x: &Sample| format!("{:.1} ({:.1})", x.quantile_us(0.5), x.mean_us());
        println!(
            "{what:<34} {:>16} {:>16} {:>7.2}",
            cell(s),
            cell(l),
            l.quantile_us(0.5) / s.quantile_us(0.5)
        );
    }
}
