//! Health checks end to end (issue 12): rvsd in LVS-NAT (and DR) with a kernel twin per port, three
//! real servers running Python HTTP servers, and `rvscheck` (started by rvsd) probing them
//! with HTTP_GET through the twin (`delay_loop = 1`, `retry = 1`, `delay_before_retry = 1`,
//! `connect_timeout = 1`).
//!
//! - A real whose HTTP server stops leaves the pool within 3 s (`rvsadm -L -n` no longer
//!   lists it, no new connection goes to it); back within 2 s of its restart.
//! - A SIGHUP during an outage keeps the dead real out.
//! - A real that accepts TCP but never answers HTTP is found by the timeout.
//! - Long-lived connections (a line-echo service whose TCP_CHECK follows the web servers)
//!   live on while their real servers leave the pool.
//! - SSL_GET against a self-signed certificate; DR with `bindto`; a killed checker restarted;
//!   `alpha`, MISC_CHECK dynamic weights and UDP_CHECK's ICMP port unreachable.
//! - All reals down: the sorry server answers every request; `--health`, `--stats-json`
//!   and the checker's log say what happened.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use common::lvs::{self, Mode, Options};
use std::time::{Duration, Instant};

/// The sorry server: a fourth HTTP server in real server 0's namespace, on another port.
const SORRY: &str = "192.168.10.11:8081";

fn real(i: usize) -> String {
    format!("192.168.10.{}:8080", 11 + i)
}

/// Kills the processes in `ns` whose command line contains every one of `words`.
fn kill_in(lvs: &lvs::Lvs, ns: &str, words: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    let mut killed = 0;
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if words.iter().all(|w| cmd.contains(w)) {
            common::netns::try_run(&["kill", "-KILL", pid]);
            killed += 1;
        }
    }
    assert!(
        killed > 0,
        "nothing matching {words:?} in {ns}:\n{}",
        lvs.topo.log()
    );
    // The listening socket is gone once the process is.
    std::thread::sleep(Duration::from_millis(100));
}

fn stop_http(lvs: &lvs::Lvs, i: usize) {
    let ns = lvs.reals[i].0.clone();
    kill_in(lvs, &ns, &["http.server 8080 "]);
}

fn start_http(lvs: &mut lvs::Lvs, i: usize) {
    let (ns, addr) = lvs.reals[i].clone();
    lvs.topo.http_server(&ns, addr, 8080, &format!("rs{i}"));
}

/// Polls `rvsadm -L -n` until `done(listing)`; the time it took.
fn until(lvs: &lvs::Lvs, limit: Duration, what: &str, done: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let listing = lvs.rvsadm(&["-L", "-n"]);
        if done(&listing) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what} not within {limit:?}:\n{listing}\n{}\n{}",
            lvs.rvsadm(&["-L", "-n", "--health"]),
            lvs.topo.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stop_restart_reload_blackhole_and_sorry_server() {
    common::rvscheck_bin();
    let mut o = Options::new(Mode::Nat, &[1, 1, 1], "rr", 1);
    o.twin_pps = Some(20_000);
    o.service_options = format!("delay_loop = 1\nsorry_server = \"{SORRY}\"\n");
    o.real_options = "    [[service.real.check]]\n    type = \"http\"\n    connect_timeout = 1\n    retry = 1\n    delay_before_retry = 1\n    url = [{ path = \"/\", status_code = 200 }]\n".into();
    // A line-echo service on the same reals whose TCP_CHECK follows their web servers: its
    // long-lived connections must outlive their real's removal.
    o.extra =
        "[[service]]\nvip = \"10.0.0.100:9000\"\nproto = \"tcp\"\nsched = \"rr\"\ndelay_loop = 1\n"
            .into();
    for i in 0..3 {
        o.extra += &format!(
            "  [[service.real]]\n  addr = \"192.168.10.{}:9000\"\n  mode = \"nat\"\n    [[service.real.check]]\n    type = \"tcp\"\n    connect_port = 8080\n    connect_timeout = 1\n",
            11 + i
        );
    }
    let mut lvs = lvs::start_opts(&o);
    let (ns0, addr0) = lvs.reals[0].clone();
    lvs.topo.http_server(&ns0, addr0, 8081, "sorry");
    let echo = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/echo_server.py");
    for (i, (ns, addr)) in lvs.reals.clone().iter().enumerate() {
        let log = lvs.topo.dir.path().join(format!("echo-{i}.log"));
        let (addr, name) = (addr.to_string(), format!("rs{i}"));
        lvs.topo
            .spawn(ns, &["python3", echo, &addr, "9000", &name], &log);
    }

    // Every real checked and serving.
    until(&lvs, Duration::from_secs(10), "first verdicts", |_| {
        let health = lvs.rvsadm(&["-L", "-n", "--health"]);
        health.matches("HTTP_GET").count() == 3 && !health.contains("not yet probed")
    });
    let split = lvs.fetch(30);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0", "rs1", "rs2"],
        "{split:?}"
    );
    // Three long-lived echo connections, one per real (rr), a round trip every 50 ms each
    // until `stop` exists.
    let stop = lvs.topo.dir.path().join("stop-long-lived");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/longlived.py");
    let long_lived = std::process::Command::new("ip")
        .args(["netns", "exec", &lvs.client, "python3", script])
        .args(["10.0.0.100", "9000", "3", "600", stop.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the long-lived client");

    // rs1's HTTP server stops: out of the pool within 3 s, no new connection to it.
    stop_http(&lvs, 1);
    let down = until(&lvs, Duration::from_secs(3), "rs1 removed", |l| {
        !l.contains(&real(1))
    });
    eprintln!("detection of a stopped server: {down:?}");
    let split = lvs.fetch(30);
    assert_eq!(split.get("rs1"), None, "{split:?}");
    assert_eq!(split.get(""), None, "failed requests: {split:?}");

    // A reload during the outage does not bring it back.
    lvs.topo.hup_rvsd();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!lvs.rvsadm(&["-L", "-n"]).contains(&real(1)));
    let split = lvs.fetch(20);
    assert_eq!(split.get("rs1"), None, "after SIGHUP: {split:?}");
    // Nor does an ipvsadm edit of the real.
    lvs.rvsadm(&["-e", "-t", "10.0.0.100:80", "-r", &real(1), "-m", "-w", "2"]);
    assert!(!lvs.rvsadm(&["-L", "-n"]).contains(&real(1)));
    let health = lvs.rvsadm(&["-L", "-n", "--health"]);
    assert!(
        health.contains(&format!("  -> {:<28} DOWN", real(1))),
        "{health}"
    );

    // Restarted: back within 2 s.
    start_http(&mut lvs, 1);
    let up = until(&lvs, Duration::from_secs(2), "rs1 back", |l| {
        l.contains(&real(1))
    });
    eprintln!("recovery of a restarted server: {up:?}");
    let split = lvs.fetch(30);
    assert!(split.get("rs1").is_some_and(|&n| n > 0), "{split:?}");
    // At the weight -e gave it meanwhile.
    assert!(
        lvs.rvsadm(&["-L", "-n"])
            .lines()
            .any(|l| l.contains(&real(1)) && l.split_whitespace().nth(3) == Some("2")),
        "{}",
        lvs.rvsadm(&["-L", "-n"])
    );

    // rs2 accepts TCP but never answers: HTTP_GET's timeout finds it.
    stop_http(&lvs, 2);
    let (ns2, addr2) = lvs.reals[2].clone();
    let script = format!(
        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{addr2}',8080))\ns.listen(128)\ntime.sleep(3600)\n"
    );
    let log = lvs.topo.dir.path().join("blackhole.log");
    lvs.topo.spawn(&ns2, &["python3", "-c", &script], &log);
    let hung = until(&lvs, Duration::from_secs(6), "rs2 removed", |l| {
        !l.contains(&real(2))
    });
    eprintln!("detection of a server that never answers: {hung:?}");
    let split = lvs.fetch(20);
    assert_eq!(split.get("rs2"), None, "{split:?}");
    assert_eq!(split.get(""), None, "failed requests: {split:?}");

    // All down: the sorry server takes every request.
    stop_http(&lvs, 0);
    stop_http(&lvs, 1);
    until(&lvs, Duration::from_secs(4), "sorry server in", |l| {
        l.contains(SORRY) && !l.contains(&real(0)) && !l.contains(&real(1))
    });
    let split = lvs.fetch(10);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["sorry"],
        "{split:?}"
    );
    let health = lvs.rvsadm(&["-L", "-n", "--health"]);
    assert!(health.contains("lost (sorry server)"), "{health}");

    // Back: rs0 up again gains quorum, the sorry server leaves.
    start_http(&mut lvs, 0);
    until(&lvs, Duration::from_secs(3), "sorry server out", |l| {
        !l.contains(SORRY) && l.contains(&real(0))
    });
    let split = lvs.fetch(10);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0"],
        "{split:?}"
    );

    // Every long-lived connection, those on the reals that went down among them, lived on.
    std::fs::write(&stop, "").unwrap();
    let out = long_lived
        .wait_with_output()
        .expect("long-lived client ends");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "established connections broke: {report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(report.trim()).expect("a summary");
    assert!(
        summary["round_trips"].as_u64().unwrap() >= 3 * 100,
        "{summary}"
    );

    let log = lvs.topo.log();
    let stats = lvs.stop();
    let service = &stats["services"][0];
    let held: Vec<&str> = service["held_down"]
        .as_array()
        .expect("held_down")
        .iter()
        .map(|h| h["addr"].as_str().unwrap())
        .collect();
    assert_eq!(held, [real(1), real(2)], "{service}");
    assert_eq!(service["reals"][0]["up"], true, "{service}");
    assert_eq!(service["reals"][0]["transitions"], 2, "{service}");
    for expected in [
        "health checker",
        "HTTP_GET 192.168.10.12:8080/ on service [192.168.10.12]:tcp:8080 of VS [10.0.0.100]:tcp:80 failed after 1 retries: Connection refused",
        "Removing service [192.168.10.12]:tcp:8080 from VS [10.0.0.100]:tcp:80",
        "Adding service [192.168.10.12]:tcp:8080 to VS [10.0.0.100]:tcp:80",
        "timeout after 1.0s",
        "Lost quorum 0 for VS [10.0.0.100]:tcp:80",
        "Gained quorum 1 for VS [10.0.0.100]:tcp:80",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
}

/// SSL_GET against a Python HTTPS server (a plain `TCPServer`: `HTTPServer` looks its own
/// name up in DNS, which hangs in a namespace without one) with a self-signed certificate (`openssl req`): up
/// while it answers, the real out of the pool once it stops, although its plain HTTP
/// server still runs.
#[test]
fn ssl_get_with_a_self_signed_certificate() {
    common::rvscheck_bin();
    let mut o = Options::new(Mode::Nat, &[1, 1], "rr", 1);
    o.twin_pps = Some(20_000);
    o.service_options = "delay_loop = 1\n".into();
    o.real_options = "    [[service.real.check]]\n    type = \"https\"\n    connect_port = 8443\n    connect_timeout = 1\n    retry = 1\n    delay_before_retry = 1\n    url = [{ path = \"/\" }]\n".into();
    let mut lvs = lvs::start_opts(&o);
    let dir = lvs.topo.dir.path().to_path_buf();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    common::netns::run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=rs.example",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    let script = format!(
        "import http.server,socketserver,ssl,sys\n\
         s=socketserver.TCPServer((sys.argv[1],8443),http.server.SimpleHTTPRequestHandler)\n\
         c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nc.load_cert_chain('{}','{}')\n\
         s.socket=c.wrap_socket(s.socket,server_side=True)\ns.serve_forever()\n",
        cert.display(),
        key.display()
    );
    for (i, (ns, addr)) in lvs.reals.clone().iter().enumerate() {
        let log = dir.join(format!("https-{i}.log"));
        lvs.topo
            .spawn(ns, &["python3", "-c", &script, &addr.to_string()], &log);
        let url = format!("https://{addr}:8443/");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !common::netns::try_run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "curl",
            "-skf",
            "-o",
            "/dev/null",
            "--max-time",
            "1",
            &url,
        ]) {
            assert!(
                Instant::now() < deadline,
                "{url} did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    until(&lvs, Duration::from_secs(10), "SSL_GET passes", |_| {
        let health = lvs.rvsadm(&["-L", "-n", "--health"]);
        health.matches("SSL_GET").count() == 2
            && health.matches("up    HTTP status code success").count() == 2
    });
    assert!(lvs.rvsadm(&["-L", "-n"]).contains(&real(1)));
    let ns = lvs.reals[1].0.clone();
    kill_in(&lvs, &ns, &["python3", "-c", "8443"]);
    let down = until(&lvs, Duration::from_secs(3), "rs1 removed", |l| {
        !l.contains(&real(1)) && l.contains(&real(0))
    });
    eprintln!("SSL_GET detection of a stopped server: {down:?}");
    let split = lvs.fetch(10);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0"],
        "{split:?}"
    );
    lvs.stop();
}

/// LVS-DR: the real servers share the client's link and hold the VIP on `lo`, so the probes
/// must come from the DIP (`bindto`), never from the VIP, or their answers would stay on the
/// real server. A killed checker is restarted by rvsd and goes on checking.
#[test]
fn dr_real_leaves_and_returns() {
    common::rvscheck_bin();
    let mut o = Options::new(Mode::Dr, &[1, 1], "rr", 1);
    o.twin_pps = Some(20_000);
    o.service_options = "delay_loop = 1\n".into();
    o.real_options = "    [[service.real.check]]\n    type = \"http\"\n    bindto = \"10.0.0.1\"\n    connect_timeout = 1\n    retry = 1\n    delay_before_retry = 1\n    url = [{ path = \"/\" }]\n".into();
    let mut lvs = lvs::start_opts(&o);
    let dr = |i: usize| format!("10.0.0.{}:80", 11 + i);
    until(&lvs, Duration::from_secs(10), "first verdicts", |_| {
        let health = lvs.rvsadm(&["-L", "-n", "--health"]);
        health.matches("up    HTTP status code success").count() == 2
    });
    let ns1 = lvs.reals[1].0.clone();
    kill_in(&lvs, &ns1, &["http.server 80 "]);
    let down = until(&lvs, Duration::from_secs(3), "rs1 removed", |l| {
        !l.contains(&dr(1)) && l.contains(&dr(0))
    });
    eprintln!("DR detection of a stopped server: {down:?}");
    let split = lvs.fetch(20);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0"],
        "{split:?}"
    );
    lvs.topo
        .http_server(&ns1, std::net::Ipv4Addr::UNSPECIFIED, 80, "rs1");
    let up = until(&lvs, Duration::from_secs(2), "rs1 back", |l| {
        l.contains(&dr(1))
    });
    eprintln!("DR recovery of a restarted server: {up:?}");
    let split = lvs.fetch(20);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0", "rs1"],
        "{split:?}"
    );

    // The checker dies: rvsd says so, starts another, and checking goes on.
    let lb = lvs.lb.clone();
    kill_in(&lvs, &lb, &["rvscheck", "--config"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while lvs.topo.log().matches("health checker").count() < 2 {
        assert!(Instant::now() < deadline, "no restart:\n{}", lvs.topo.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lvs.topo
            .log()
            .contains("exited: signal: 9 (SIGKILL); restarting"),
        "{}",
        lvs.topo.log()
    );
    let ns0 = lvs.reals[0].0.clone();
    kill_in(&lvs, &ns0, &["http.server 80 "]);
    until(
        &lvs,
        Duration::from_secs(4),
        "rs0 removed by the new checker",
        |l| !l.contains(&dr(0)) && l.contains(&dr(1)),
    );
    lvs.stop();
}

/// `alpha`: the reals start out of the pool until a first success. MISC_CHECK `dynamic` sets
/// the weight from the script's exit status (5 → weight 3); UDP_CHECK to a port nobody
/// listens on fails on the ICMP port unreachable that comes back through the twin.
#[test]
fn alpha_misc_dynamic_weight_and_udp_unreachable() {
    common::rvscheck_bin();
    let mut o = Options::new(Mode::Nat, &[1, 1], "wrr", 1);
    o.twin_pps = Some(20_000);
    o.service_options = "delay_loop = 1\nalpha = true\n".into();
    let mut lvs = lvs::start_opts(&o);
    // The checks differ per real: rewrite the file and reload (the overlay takes the new
    // checks, alpha puts the newly checked reals down at once).
    let path = lvs.topo.rvsd_config();
    let text = std::fs::read_to_string(&path).unwrap();
    let with_checks = text
        .replace(
            "addr = \"192.168.10.11:8080\"\n  mode = \"nat\"\n  weight = 1\n",
            "addr = \"192.168.10.11:8080\"\n  mode = \"nat\"\n  weight = 1\n    [[service.real.check]]\n    type = \"misc\"\n    path = \"sleep 0.5; exit 5\"\n    dynamic = true\n",
        )
        .replace(
            "addr = \"192.168.10.12:8080\"\n  mode = \"nat\"\n  weight = 1\n",
            "addr = \"192.168.10.12:8080\"\n  mode = \"nat\"\n  weight = 1\n    [[service.real.check]]\n    type = \"udp\"\n    connect_port = 9999\n    payload = \"00 01\"\n    connect_timeout = 2\n",
        );
    assert_ne!(text, with_checks);
    std::fs::write(&path, with_checks).unwrap();
    lvs.topo.hup_rvsd();
    // alpha: both out until their checks pass.
    until(&lvs, Duration::from_secs(2), "alpha reals down", |l| {
        !l.contains(&real(0)) && !l.contains(&real(1))
    });
    until(&lvs, Duration::from_secs(5), "rs0 up at weight 3", |l| {
        l.lines()
            .any(|l| l.contains(&real(0)) && l.split_whitespace().nth(3) == Some("3"))
    });
    let health = lvs.rvsadm(&["-L", "-n", "--health"]);
    assert!(health.contains("exit 5, weight 3"), "{health}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = lvs.rvsadm(&["-L", "-n", "--health"]);
        if health.contains("UDP_CHECK 192.168.10.12:9999") && health.contains("Connection refused")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{health}\n{}", lvs.topo.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lvs.rvsadm(&["-L", "-n"]).contains(&real(1)));
    let split = lvs.fetch(10);
    assert_eq!(
        split.keys().cloned().collect::<Vec<_>>(),
        ["rs0"],
        "{split:?}"
    );
    lvs.stop();
}
