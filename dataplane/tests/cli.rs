//! The `rvsd` command line: `--check-config` over the shipped examples and broken files, and
//! clean failures for configurations DPDK cannot bring up.

mod common;
#[path = "../../fastpath/tests/fixtures/mod.rs"]
mod fixtures;

use std::process::{Command, Output};

fn rvsd(args: &[&str]) -> Output {
    Command::new(common::rvsd_bin())
        .args(args)
        .output()
        .expect("run rvsd")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_config_accepts_every_example() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("conf/examples exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = rvsd(&["--check-config", path.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{} rejected: {}",
                path.display(),
                stderr(&out)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{}: ok\n", path.display())
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "expected the shipped examples, found {seen}");
}

#[test]
fn check_config_rejects_broken_files_with_file_line_and_field() {
    let dir = common::scratch();
    let cases: &[(&str, &str)] = &[
        (
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n[[service]]\nvip = \"10.0.0.1:80\"\nproto = \"tcp\"\n  [[service.real]]\n  addr = \"10.0.0.11:80\"\n  mode = \"nat\"\n  weight = 2147483648\n",
            "rvsd.toml:12: service[0].real[0].weight: 2147483648 is out of range 0..=2147483647",
        ),
        (
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n[[service]]\nvip = \"10.0.0.1:80\"\nproto = \"sctp\"\n",
            "rvsd.toml:8: service[0].proto:",
        ),
        ("[eal]\nargs = [\n", "rvsd.toml:2:"),
        (
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\nmtux = 1500\n",
            "rvsd.toml:6: port[0].mtux: unknown field `mtux`",
        ),
    ];
    for (text, want) in cases {
        let path = dir.path().join("rvsd.toml");
        std::fs::write(&path, text).unwrap();
        let out = rvsd(&["--check-config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "accepted:\n{text}");
        let err = stderr(&out).replace(&format!("{}", path.display()), "rvsd.toml");
        assert!(
            err.starts_with(want),
            "for\n{text}\nwanted a message starting {want:?}, got {err:?}"
        );
    }
}

/// A file the rules accept but the data path cannot run yet is refused by `--check-config`
/// with the data path's reason, as rvsd would refuse it at start; a NAT66 file passes.
#[test]
fn check_config_refuses_what_the_data_path_does_not_forward_with_its_reason() {
    let dir = common::scratch();
    let path = dir.path().join("rvsd.toml");
    std::fs::write(
        &path,
        "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"2001:db8::1/64\", \"2001:db8::100/128\"]\n\
         [[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n  [[service.real]]\n  addr = \"[2001:db8::11]:80\"\n  mode = \"nat\"\n",
    )
    .unwrap();
    let out = rvsd(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "mode = \"nat\"",
        "mode = \"tun\"\n  tunnel = { type = \"gre\" }",
    );
    std::fs::write(&path, text).unwrap();
    let out = rvsd(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "{}: service tcp [2001:db8::100]:80: GUE and GRE tunnels to IPv6 reals are not forwarded yet; IPv6-in-IPv6 is (issue 14)\n",
            path.display()
        )
    );
}

#[test]
fn missing_file_and_missing_mode_are_errors_not_crashes() {
    let out = rvsd(&["--check-config", "/nonexistent/rvsd.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/rvsd.toml"),
        "{}",
        stderr(&out)
    );
    let out = rvsd(&[]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let out = rvsd(&["--config", "a.toml", "--check-config", "b.toml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the two modes exclude each other"
    );
}

#[test]
fn a_port_dpdk_does_not_have_fails_cleanly() {
    let dir = common::scratch();
    let path = dir.path().join("rvsd.toml");
    let text = format!(
        "[eal]\nargs = [\"--lcores\", \"0@(0-1),1@(0-1)\", \"--no-huge\", \"-m\", \"256\", \"--no-pci\", \"--no-shconf\", \"--file-prefix\", \"{}\", \"--vdev\", \"net_null0\"]\n[[port]]\nname = \"dpdk3\"\naddrs = [\"10.0.0.1/24\"]\n",
        common::file_prefix()
    );
    std::fs::write(&path, text).unwrap();
    let out = rvsd(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("DPDK port 3 does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_stops_ports_and_flushes_counters() {
    let dir = common::scratch();
    let (rx, tx) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
    let ping = common::packet::arp_request(
        [2, 0, 0, 0, 0, 0xc1],
        common::ip("10.0.0.50"),
        common::ip("10.0.0.1"),
    );
    common::write_pcap(&rx, &vec![ping; 5]);
    let config = dir.path().join("rvsd.toml");
    let text = format!(
        "[eal]\n{}\n{}[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n",
        common::pcap_eal_args(&rx, &tx),
        common::control_section(dir.path(), "")
    );
    std::fs::write(&config, text).unwrap();
    let stats = dir.path().join("stats.json");
    let child = Command::new(common::rvsd_bin())
        .args([
            "--config",
            config.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rvsd");
    // Wait until the replies are on disk, then ask rvsd to stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while common::read_pcap(&tx).len() < 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rvsd exited with {}: {}",
        out.status,
        stderr(&out)
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(stats["rx_packets"], 5);
    assert_eq!(
        stats["tx_packets"], 6,
        "one gratuitous ARP and five replies"
    );
    assert_eq!(stats["ports"][0]["device"], "net_pcap0");
}

/// A pcap-driven configuration whose `[dataplane]` has `dataplane` in it.
fn with_dataplane(dir: &std::path::Path, dataplane: &str) -> std::path::PathBuf {
    let (rx, tx) = (dir.join("in.pcap"), dir.join("out.pcap"));
    common::write_pcap(&rx, &[]);
    let config = dir.join("rvsd.toml");
    let text = format!(
        "[eal]\n{}\n{}[dataplane]\n{dataplane}\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n",
        common::pcap_eal_args(&rx, &tx),
        common::control_section(dir, "")
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn connection_tables_larger_than_the_memory_are_refused_with_their_size() {
    let dir = common::scratch();
    let config = with_dataplane(dir.path(), "conn_table_size = 2147483648");
    let out = rvsd(&["--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "[dataplane] conn_table_size = 2147483648 and conn_table_size6 = 536870912 take \
             292.0 GiB per worker, 292.0 GiB in all"
        ) && err.contains("GiB of memory is available"),
        "{err}"
    );
}

#[test]
fn sigint_interrupts_the_allocation_of_a_large_connection_table() {
    use std::io::{BufRead, BufReader};
    let dir = common::scratch();
    // 2^26 entries: 6.3 GiB, seconds of page faults.
    let config = with_dataplane(dir.path(), "conn_table_size = 67108864");
    let mut child = Command::new(common::rvsd_bin())
        .args(["--config", config.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rvsd");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log += &line;
        log += "\n";
        if line.contains("allocating connection tables") {
            break;
        }
    }
    let asked = std::time::Instant::now();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    for line in lines {
        log += &line.unwrap();
        log += "\n";
    }
    let status = child.wait().unwrap();
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("interrupted while allocating the connection tables"),
        "{log}"
    );
    assert!(
        took < std::time::Duration::from_secs(2),
        "took {took:?}: {log}"
    );
}

/// `--import-keepalived` runs without EAL: the TOML on stdout, diagnostics on stderr, exit 0
/// when everything converted, 1 when something was refused, 2 when the file cannot be read.
#[test]
fn import_keepalived_prints_toml_and_says_what_it_refused() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../conf/tests/keepalived");
    let fnat = format!("{samples}/fnat.conf");
    let out = rvsd(&["--import-keepalived", &fnat]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want = std::fs::read_to_string(format!("{samples}/fnat.toml"))
        .unwrap()
        .replace("tests/keepalived/", &format!("{samples}/"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    assert_eq!(
        stderr(&out),
        format!("{fnat}:3: note: local_address_group laddr_g1: its addresses are the `laddrs` of the services that name it; each must also be in a [[port]]'s addrs (DPVS's interface names are not kept)\n")
    );

    let refused = format!("{samples}/refused.conf");
    let out = rvsd(&["--import-keepalived", &refused]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "{refused}:21: error: virtual_server fwmark 7: refused: "
        )),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("vip = \"10.5.0.13:25\""));

    let out = rvsd(&["--import-keepalived", "/nonexistent/keepalived.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).starts_with("/nonexistent/keepalived.conf: cannot read:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn packaged_placeholder_config_is_refused_with_its_reason() {
    // deploy/rvsd.toml is the Debian package's /etc/rvs/rvsd.toml: it must never run.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rvsd.toml");
    let out = rvsd(&["--check-config", path]);
    assert_eq!(out.status.code(), Some(1));
    let reason = "rvs is not configured: edit this file, then delete this line";
    assert!(
        stderr(&out).starts_with(&format!("{path}:17: {reason}: unknown field `{reason}`")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_names_files_and_signals() {
    let out = rvsd(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "  SIGHUP               re-read the --config file and apply the difference (services, reals,",
        "  SIGINT, SIGTERM      stop: the kernel twins and the control socket go away",
        "  /etc/rvs/rvsd.toml   the configuration (rvsd.service passes RVS_CONFIG, this by default)",
        "  /run/rvs/rvsd.sock   the control socket for rvsadm and rvscheck ([control] socket)",
        "  RUST_LOG             log filter for stderr (default info)",
    ] {
        assert!(help.lines().any(|l| l == line), "{line:?} not in:\n{help}");
    }
}
