//! `rvsd --import-keepalived`: the fixture table of sample keepalived.conf files under
//! `tests/keepalived/`, each with its exact TOML (`NAME.toml`) and diagnostics (`NAME.stderr`);
//! keepalived's own `--config-test` on the samples it must accept; and the TOML of samples
//! without health checks, completed with a preamble, through `Config::parse`.
//!
//! `RVS_BLESS=1 cargo test -p conf --test keepalived` rewrites the expected files (review the
//! diff before committing them).

use std::path::{Path, PathBuf};
use std::process::Command;

use conf::keepalived;

struct Sample {
    name: &'static str,
    /// `Import::exit_code`.
    exit: u8,
    /// keepalived 2.2's `--config-test` accepts it (FNAT is DPVS's; the others carry what
    /// keepalived itself reports).
    keepalived_accepts: bool,
}

const SAMPLES: &[Sample] = &[
    Sample {
        name: "nat_http",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "dr_tcp",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "udp_misc",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "plain",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "include_main",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "fnat",
        exit: 0,
        keepalived_accepts: false,
    },
    Sample {
        name: "warnings",
        exit: 1,
        keepalived_accepts: false,
    },
    Sample {
        name: "sync",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "ipv6",
        exit: 0,
        keepalived_accepts: true,
    },
    Sample {
        name: "nat64",
        exit: 0,
        keepalived_accepts: false,
    },
    Sample {
        name: "refused",
        exit: 1,
        keepalived_accepts: false,
    },
    Sample {
        name: "broken",
        exit: 1,
        keepalived_accepts: false,
    },
    Sample {
        name: "loop",
        exit: 1,
        keepalived_accepts: false,
    },
];

fn dir() -> &'static Path {
    Path::new("tests/keepalived")
}

fn conf_path(name: &str) -> PathBuf {
    dir().join(format!("{name}.conf"))
}

fn bless() -> bool {
    std::env::var_os("RVS_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn samples_convert_to_the_expected_toml_and_diagnostics() {
    let mut failures = Vec::new();
    for s in SAMPLES {
        let import =
            keepalived::import(&conf_path(s.name)).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let mut stderr: String = import
            .diagnostics
            .iter()
            .map(|d| format!("{d}\n"))
            .collect();
        if stderr.is_empty() {
            stderr.push_str("(none)\n");
        }
        let toml_path = dir().join(format!("{}.toml", s.name));
        let stderr_path = dir().join(format!("{}.stderr", s.name));
        if bless() {
            std::fs::write(&toml_path, &import.toml).unwrap();
            std::fs::write(&stderr_path, &stderr).unwrap();
        }
        let want_toml = std::fs::read_to_string(&toml_path).unwrap_or_default();
        let want_stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if import.toml != want_toml {
            failures.push(format!(
                "{}: TOML differs\n--- got\n{}--- want\n{want_toml}",
                s.name, import.toml
            ));
        }
        if stderr != want_stderr {
            failures.push(format!(
                "{}: diagnostics differ\n--- got\n{stderr}--- want\n{want_stderr}",
                s.name
            ));
        }
        if import.exit_code() != s.exit {
            failures.push(format!(
                "{}: exit code {} instead of {}",
                s.name,
                import.exit_code(),
                s.exit
            ));
        }
        // Stable: the same input gives the same bytes.
        let again = keepalived::import(&conf_path(s.name)).unwrap();
        assert_eq!(again.toml, import.toml, "{}: not deterministic", s.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every sample's TOML is valid TOML (the keys are checked by `Config::parse` below, for
/// the samples it knows the keys of).
#[test]
fn every_output_is_toml() {
    for s in SAMPLES {
        let import = keepalived::import(&conf_path(s.name)).unwrap();
        if let Err(e) = import.toml.parse::<toml::Table>() {
            panic!("{}: not TOML: {e}\n{}", s.name, import.toml);
        }
    }
}

/// A port, a kernel twin (the VIPs are served while the twin holds them) and a default route
/// to reach every sample's real servers.
const PREAMBLE: &str = r#"
[eal]
args = ["--no-pci"]

[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/8", "192.168.0.1/16", "172.16.0.1/12", "10.8.0.200", "10.8.0.201", "10.8.0.202", "2001:db8::1/64"]
exception = { iface = "rvs0" }

[[route]]
dst = "2001:db8:1::/48"
via = "fe80::1"
port = "dpdk0"
"#;

/// Every sample that imports without errors is a valid rvs configuration, health checks
/// included.
#[test]
fn outputs_are_rvs_configs() {
    for s in SAMPLES.iter().filter(|s| s.exit == 0) {
        let import = keepalived::import(&conf_path(s.name)).unwrap();
        let text = format!("{PREAMBLE}\n{}", import.toml);
        if let Err(e) = conf::Config::parse(&text, s.name) {
            panic!("{}: Config::parse refused the import:\n{e}\n{text}", s.name);
        }
    }
}

/// Debian installs keepalived in /usr/sbin, which a non-root PATH may lack.
fn keepalived_bin() -> Option<PathBuf> {
    ["keepalived", "/usr/sbin/keepalived"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| Command::new(p).arg("--version").output().is_ok())
}

/// keepalived itself accepts the samples that say so (`keepalived --config-test -f FILE`,
/// Debian's `keepalived` package, installed by scripts/setup.sh).
#[test]
fn keepalived_accepts_the_valid_samples() {
    let Some(keepalived) = keepalived_bin() else {
        eprintln!(
            "SKIPPED: keepalived is not installed (scripts/setup.sh installs it); \
             the samples were not checked with keepalived --config-test"
        );
        return;
    };
    for s in SAMPLES.iter().filter(|s| s.keepalived_accepts) {
        let path = std::fs::canonicalize(conf_path(s.name)).unwrap();
        let out = Command::new(&keepalived)
            .arg("--config-test")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: keepalived --config-test: {}\n{}",
            s.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// And refuses the samples it should: the config test sees what the import reports.
#[test]
fn keepalived_reports_the_faulty_samples() {
    let Some(keepalived) = keepalived_bin() else {
        eprintln!("SKIPPED: keepalived is not installed (scripts/setup.sh installs it)");
        return;
    };
    for name in ["warnings", "refused", "fnat"] {
        let path = std::fs::canonicalize(conf_path(name)).unwrap();
        let out = Command::new(&keepalived)
            .arg("--config-test")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{name}: keepalived --config-test accepted it"
        );
    }
}

#[test]
fn an_unreadable_main_file_is_an_error() {
    let e = keepalived::import(Path::new("tests/keepalived/no-such.conf")).unwrap_err();
    assert!(
        e.starts_with("tests/keepalived/no-such.conf: cannot read:"),
        "{e}"
    );
}

/// No input makes the import panic or print something that is not TOML: every sample cut
/// short at every line and at many bytes in between (unclosed blocks, half words, open
/// quotes), written to a scratch file next to the samples so that includes still resolve.
#[test]
fn truncated_samples_never_break_the_import() {
    let scratch = dir().join(format!("truncated-{}.conf", std::process::id()));
    for s in SAMPLES {
        let text = std::fs::read(conf_path(s.name)).unwrap();
        let cuts = (0..text.len()).filter(|&i| i % 11 == 0 || text[i] == b'\n');
        for cut in cuts {
            std::fs::write(&scratch, &text[..cut]).unwrap();
            let import = keepalived::import(&scratch).unwrap();
            if let Err(e) = import.toml.parse::<toml::Table>() {
                let _ = std::fs::remove_file(&scratch);
                panic!("{} cut at {cut}: not TOML: {e}\n{}", s.name, import.toml);
            }
        }
    }
    std::fs::remove_file(&scratch).unwrap();
}

/// A protocol named twice in `lvs_timeouts` takes its last value, as keepalived's parser
/// overwrites it; the import printed both, a duplicate TOML key (found by the
/// `keepalived_conf` fuzz target).
#[test]
fn lvs_timeouts_naming_a_protocol_twice_keeps_the_last() {
    let scratch = dir().join(format!("timeouts-{}.conf", std::process::id()));
    std::fs::write(
        &scratch,
        "global_defs {\n    lvs_timeouts tcp 7200 tcpfin 120 tcp 300\n}\n",
    )
    .unwrap();
    let import = keepalived::import(&scratch).unwrap();
    std::fs::remove_file(&scratch).unwrap();
    let toml: toml::Table = import.toml.parse().expect("TOML");
    let timeouts = toml["timeouts"].as_table().unwrap();
    assert_eq!(timeouts["tcp"].as_integer(), Some(300));
    assert_eq!(timeouts["tcp_fin"].as_integer(), Some(120));
    assert!(!timeouts.contains_key("udp"));
}

/// Files that include a glob matching themselves and each other, twice each: every file is
/// read once per chain that does not already hold it, instead of exponentially often (found
/// by the `keepalived_conf` fuzz target as a hang: `include *.conf` in a directory of .conf
/// files).
#[test]
fn globs_that_include_their_own_files_are_read_a_bounded_number_of_times() {
    let dir = std::env::temp_dir().join(format!("rvs-keepalived-globs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["a", "b", "c", "d"] {
        std::fs::write(
            dir.join(format!("{name}.conf")),
            "include *.conf\ninclude *.conf\n",
        )
        .unwrap();
    }
    let started = std::time::Instant::now();
    let import = keepalived::import(&dir.join("a.conf")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Every chain a → b → c → d (and the other orders) is read once per include line; each
    // include of a file already in the chain is reported as a loop.
    assert!(import
        .diagnostics
        .iter()
        .all(|d| d.message.contains("an include loop")));
    assert!(
        import.diagnostics.len() < 2_000,
        "{}",
        import.diagnostics.len()
    );
}

/// The `[sync]` of a keepalived.conf made of `global_defs { LINES }` and a `vrrp_instance VI_1`
/// with `virtual_router_id 51`, and the diagnostics after the file names.
fn sync_import(lines: &str) -> (Option<toml::Table>, Vec<String>) {
    let scratch = dir().join(format!("sync-{}.conf", std::process::id()));
    std::fs::write(
        &scratch,
        format!("global_defs {{\n{lines}}}\nvrrp_instance VI_1 {{\n    virtual_router_id 51\n}}\n"),
    )
    .unwrap();
    let import = keepalived::import(&scratch).unwrap();
    std::fs::remove_file(&scratch).unwrap();
    let mut toml: toml::Table = import.toml.parse().expect("TOML");
    let sync = toml.remove("sync").map(|s| s.as_table().unwrap().clone());
    let diags = import
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .map(|d| d.split_once(": ").unwrap().1.to_string())
        .filter(|d| !d.starts_with("note: global_defs") && !d.starts_with("note: vrrp_instance"))
        .collect();
    (sync, diags)
}

fn sync_table(text: &str) -> Option<toml::Table> {
    Some(text.parse().unwrap())
}

/// keepalived's `lvs_sync_daemon` forms and bad values, as its `lvs_syncd_handler` reads them.
#[test]
fn lvs_sync_daemon_becomes_sync() {
    let both = "note: lvs_sync_daemon: [sync] role = \"both\": keepalived switches one daemon \
                between master and backup with vrrp_instance VI_1; rvs runs both at once";
    // The syncid defaults to the instance's virtual_router_id.
    assert_eq!(
        sync_import("lvs_sync_daemon rvs1 inst VI_1\n"),
        (
            sync_table("role = \"both\"\ninterface = \"rvs1\"\nsyncid = 51\n"),
            vec![both.to_string()]
        )
    );
    // The old positional form, instance then syncid, which keepalived still takes.
    assert_eq!(
        sync_import("lvs_sync_daemon rvs1 VI_1 7\n"),
        (
            sync_table("role = \"both\"\ninterface = \"rvs1\"\nsyncid = 7\n"),
            vec![both.to_string()]
        )
    );
    // Bad values are ignored as keepalived ignores them; the second lvs_sync_daemon too.
    let (sync, diags) = sync_import(
        "lvs_sync_daemon rvs1 VI_1 id 256 maxlen 65508 port 0 ttl 256 group 10.0.0.1 mtu 9\n\
         lvs_sync_daemon rvs0 VI_1\n",
    );
    assert_eq!(
        sync,
        sync_table("role = \"both\"\ninterface = \"rvs1\"\nsyncid = 51\n")
    );
    assert_eq!(
        diags,
        [
            "warning: lvs_sync_daemon: id 256: not an integer in 0..=255; ignored as keepalived does",
            "warning: lvs_sync_daemon: maxlen 65508: not an integer in 1..=65507; ignored as keepalived does",
            "warning: lvs_sync_daemon: port 0: not an integer in 1..=65535; ignored as keepalived does",
            "warning: lvs_sync_daemon: ttl 256: not an integer in 1..=255; ignored as keepalived does",
            "warning: lvs_sync_daemon: group 10.0.0.1: not a multicast address; ignored as keepalived does",
            "warning: lvs_sync_daemon: unknown option mtu; ignored as keepalived does",
            // keepalived steps one word past an unknown option.
            "warning: lvs_sync_daemon: unknown option 9; ignored as keepalived does",
            both,
            "warning: lvs_sync_daemon: ignored as keepalived does: already given at \
             tests/keepalived/sync-PID.conf:2",
        ]
        .map(|d| d.replace("PID", &std::process::id().to_string()))
    );
    // What rvs cannot run.
    for (line, why) in [
        (
            "lvs_sync_daemon rvs1 inst VI_2\n",
            "error: lvs_sync_daemon: not converted: vrrp_instance VI_2 is not in the file: \
             keepalived runs no sync daemon without it",
        ),
        (
            "lvs_sync_daemon rvs1\n",
            "error: lvs_sync_daemon: not converted: no vrrp_instance named: keepalived runs no \
             sync daemon without one",
        ),
        (
            "lvs_sync_daemon rvs1 inst VI_1 group ff02::81\n",
            "error: lvs_sync_daemon: not converted: rvs syncs over IPv4 only (an IPv6 group)",
        ),
        (
            "lvs_sync_daemon rvs1:0 inst VI_1\n",
            "error: lvs_sync_daemon: not converted: \"rvs1:0\" contains ':', which an interface \
             name cannot (nor `/`, `:`, `,`, `=`, spaces)",
        ),
        (
            "lvs_sync_daemon interface-too-long inst VI_1\n",
            "warning: lvs_sync_daemon interface-too-long inst VI_1: interface name too long; \
             ignored as keepalived does",
        ),
    ] {
        assert_eq!(sync_import(line), (None, vec![why.to_string()]), "{line}");
    }
}
