//! Every file in `conf/examples/` is a valid config; a few spot checks that they mean what their
//! comments say.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use conf::{
    Config, Mode, Netmask, Proto, ProxyProtocol, SchedFlags, SyncConfig, SyncDaemon, SyncRole,
    ToaPlacement,
};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn load(name: &str) -> Config {
    Config::load(examples_dir().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn test_every_example_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Config::load(&path) {
                panic!("{e}");
            }
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "dr.toml",
            "ecmp-rvsd.toml",
            "fullnat.toml",
            "health-nat.toml",
            "host-path.toml",
            "nat.toml",
            "nat66.toml",
            "pcap.toml",
            "sync.toml",
            "tun.toml"
        ]
    );
}

#[test]
fn test_nat66_example() {
    let c = load("nat66.toml");
    assert_eq!(c.dataplane.conn_table_size6, 65536);
    assert_eq!(c.routes6.len(), 1);
    let web = &c.services[0];
    assert_eq!(web.vip, "[2001:db8::100]:80".parse().unwrap());
    assert_eq!(web.netmask, Netmask::V6(64));
    assert_eq!(web.vip_mode, conf::VipMode::Static);
    let modes: Vec<Mode> = c
        .services
        .iter()
        .flat_map(|s| s.reals.iter().map(|r| r.mode))
        .collect();
    assert_eq!(modes, [Mode::Nat, Mode::Nat, Mode::Dr, Mode::Dr]);
}

#[test]
fn test_nat_example() {
    let c = load("nat.toml");
    assert_eq!(c.dataplane.workers, [1, 2]);
    assert_eq!(c.ports.iter().map(|p| p.id).collect::<Vec<_>>(), [0, 1]);
    let svc = &c.services[0];
    assert_eq!(svc.sched, "wrr");
    assert_eq!(
        svc.reals
            .iter()
            .map(|r| (r.addr, r.mode, r.weight))
            .collect::<Vec<_>>(),
        [
            (
                SocketAddr::from(SocketAddrV4::new(Ipv4Addr::new(192, 168, 10, 11), 8080)),
                Mode::Nat,
                3
            ),
            (
                SocketAddr::from(SocketAddrV4::new(Ipv4Addr::new(192, 168, 10, 12), 8080)),
                Mode::Nat,
                2
            ),
            (
                SocketAddr::from(SocketAddrV4::new(Ipv4Addr::new(192, 168, 10, 13), 8080)),
                Mode::Nat,
                1
            ),
        ]
    );
}

#[test]
fn test_dr_example() {
    let c = load("dr.toml");
    let web = &c.services[0];
    assert_eq!(web.persistence, 300);
    assert_eq!(web.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
    // A real written without port gets the vip port.
    assert_eq!(web.reals[0].addr, "10.1.0.11:80".parse().unwrap());
    assert_eq!(web.reals[2].weight, 0);
    let dns = &c.services[1];
    assert_eq!(dns.proto, Proto::Udp);
    assert_eq!(
        dns.sched_flags,
        SchedFlags {
            fallback: true,
            port: false
        }
    );
    assert_eq!(c.neighbors[0].mac, [0x52, 0x54, 0x00, 0x12, 0x34, 0x01]);
}

#[test]
fn test_tun_example() {
    let c = load("tun.toml");
    assert_eq!(c.timeouts.tcp, 3600);
    assert_eq!(c.timeouts.tcp_fin, 60);
    assert_eq!(c.timeouts.udp, 300);
    assert_eq!(
        c.control.prometheus,
        Some("127.0.0.1:9100".parse().unwrap())
    );
    assert!(c.dataplane.expire_nodest_conn);
    assert_eq!(c.ports[0].mtu, 9000);
    let r = &c.services[0].reals[0];
    assert_eq!((r.u_threshold, r.l_threshold), (5000, 4000));
    let all_ports = &c.services[1];
    assert_eq!(all_ports.vip.port(), 0);
    assert!(all_ports.reals.iter().all(|r| r.addr.port() == 0));
}

#[test]
fn test_fullnat_example() {
    let c = load("fullnat.toml");
    let http = &c.services[0];
    assert_eq!(http.proxy_protocol, Some(ProxyProtocol::V2));
    assert_eq!(http.toa, None);
    assert_eq!(
        http.laddrs,
        [
            Ipv4Addr::new(192, 168, 20, 2),
            Ipv4Addr::new(192, 168, 20, 3)
        ]
    );
    let https = &c.services[1];
    assert_eq!(https.toa, Some(ToaPlacement::Syn));
    assert_eq!(
        https.sched_flags,
        SchedFlags {
            fallback: true,
            port: true
        }
    );
    let dns = &c.services[2];
    assert_eq!(dns.sched, "ch");
    assert_eq!(dns.ch_table_size, 4093);
    assert_eq!(dns.toa, None);
}

#[test]
fn test_pcap_example_defaults() {
    let c = load("pcap.toml");
    assert_eq!(c.dataplane.workers, [1]);
    assert_eq!(c.dataplane.conn_table_size, 1_048_576);
    assert_eq!(c.dataplane.burst, 32);
    assert_eq!(c.dataplane.mbufs, 32_767);
    assert!(!c.dataplane.expire_nodest_conn);
    assert_eq!(c.control.socket, Path::new("/run/rvs/rvsd.sock"));
    assert_eq!(c.control.prometheus, None);
    assert_eq!(c.ports[0].mtu, 1500);
    assert_eq!(c.ports[0].mac, Some([0x02, 0, 0, 0, 0, 0x01]));
    let svc = &c.services[0];
    assert_eq!(svc.sched, "wlc");
    assert_eq!(svc.persistence, 0);
    assert_eq!(svc.netmask, Netmask::V4(Ipv4Addr::BROADCAST));
    assert_eq!(svc.ch_table_size, 65_537);
    assert_eq!(svc.sched_flags, SchedFlags::default());
    assert_eq!(svc.toa, Some(ToaPlacement::Ack));
    assert_eq!(svc.reals[0].weight, 1);
}

#[test]
fn test_host_path_example_has_twins_and_every_vip_mode() {
    let c = load("host-path.toml");
    let twins: Vec<&str> = c
        .ports
        .iter()
        .filter_map(|p| p.exception.as_ref().map(|e| e.iface.as_str()))
        .collect();
    assert_eq!(twins, ["rvs0", "rvs1"]);
    assert_eq!(c.ports[0].exception.as_ref().unwrap().punt_pps, 20_000);
    let modes: Vec<(String, conf::VipMode)> = c
        .services
        .iter()
        .map(|s| (s.vip.to_string(), s.vip_mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("10.0.0.100:80".to_owned(), conf::VipMode::Static),
            ("10.0.0.101:443".to_owned(), conf::VipMode::Kernel),
            ("192.0.2.80:80".to_owned(), conf::VipMode::Routed),
        ]
    );
}

#[test]
fn test_health_nat_example() {
    use conf::health::CheckKind;
    let c = load("health-nat.toml");
    let h = &c.health[0];
    assert_eq!(
        h.sorry_server,
        Some(SocketAddr::from(SocketAddrV4::new(
            Ipv4Addr::new(192, 168, 10, 50),
            8080
        )))
    );
    let kinds: Vec<&str> = h
        .reals
        .iter()
        .map(|r| r.checks[0].kind.keepalived_name())
        .collect();
    assert_eq!(kinds, ["HTTP_GET", "TCP_CHECK", "MISC_CHECK"]);
    assert!(h.reals[1].inhibit_on_failure);
    assert!(matches!(&h.reals[2].checks[0].kind, CheckKind::Misc(m) if m.dynamic));
    assert_eq!(
        h.reals[0].checks[0].delay_loop,
        std::time::Duration::from_secs(6)
    );
}

#[test]
fn test_sync_example_runs_both_daemons() {
    let c = load("sync.toml");
    let daemon = |role| SyncDaemon {
        syncid: 7,
        ..SyncDaemon::new(role, "rvs1")
    };
    assert_eq!(
        c.sync,
        Some(SyncConfig {
            daemons: vec![daemon(SyncRole::Master), daemon(SyncRole::Backup)],
            threshold: 3,
            period: 50,
            backup_only: false,
        })
    );
}

#[test]
fn test_examples_without_sync_have_none() {
    assert_eq!(load("host-path.toml").sync, None);
}

#[test]
fn test_ecmp_example_is_a_routed_sloppy_ch_dr_service() {
    let c = load("ecmp-rvsd.toml");
    assert_eq!(c.dataplane.workers, [1]);
    let twin = c.ports[0].exception.as_ref().map(|e| e.iface.as_str());
    assert_eq!(twin, Some("rvs0"));
    // The VIP arrives by a route: it is not one of the port's addresses.
    assert_eq!(
        c.ports[0]
            .addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["10.0.0.1/24"]
    );
    let svc = &c.services[0];
    assert_eq!(
        svc.vip,
        SocketAddr::from(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 80), 80))
    );
    assert_eq!(svc.vip_mode, conf::VipMode::Routed);
    assert_eq!(svc.sched, "ch");
    assert!(svc.sloppy);
    assert_eq!(
        svc.reals
            .iter()
            .map(|r| (r.addr, r.mode))
            .collect::<Vec<_>>(),
        [11, 12, 13].map(|h| (
            SocketAddr::from(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, h), 80)),
            Mode::Dr
        ))
    );
    assert_eq!(c.sync, None);
}

/// The BIRD examples, and ecmp-bird2.conf with its BFD lines uncommented, as BIRD 2 itself
/// parses them (`bird -p`); skipped where BIRD is not installed (scripts/setup.sh installs it).
#[test]
fn test_bird_examples_parse() {
    let parses = |path: &Path| {
        let out = std::process::Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(path)
            .output();
        match out {
            Ok(out) => Some((
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )),
            Err(_) => None,
        }
    };
    let ecmp = examples_dir().join("ecmp-bird2.conf");
    let Some((ok, err)) = parses(&ecmp) else {
        eprintln!("bird is not installed: BIRD configs not checked");
        return;
    };
    assert!(ok, "{}: {err}", ecmp.display());
    let routed = examples_dir().join("bird2-routed-vips.conf");
    let (ok, err) = parses(&routed).expect("bird runs");
    assert!(ok, "{}: {err}", routed.display());

    // The BFD variant: the commented `protocol bfd` block and `bfd on;`.
    let text = std::fs::read_to_string(&ecmp).unwrap();
    let (mut out, mut in_bfd, mut uncommented) = (String::new(), false, 0);
    for line in text.lines() {
        in_bfd |= line.starts_with("# protocol bfd");
        let line = if in_bfd || line.trim() == "# bfd on;" {
            uncommented += 1;
            line.replacen("# ", "", 1)
        } else {
            line.to_owned()
        };
        in_bfd &= line != "}";
        out += &line;
        out.push('\n');
    }
    assert_eq!(uncommented, 8, "the BFD lines of ecmp-bird2.conf:\n{out}");
    let bfd = std::env::temp_dir().join(format!("rvs-ecmp-bird2-bfd-{}.conf", std::process::id()));
    std::fs::write(&bfd, out).unwrap();
    let parsed = parses(&bfd).expect("bird runs");
    let _ = std::fs::remove_file(&bfd);
    assert!(parsed.0, "ecmp-bird2.conf with BFD: {}", parsed.1);
}

/// Both ECMP files describe one director: the BIRD filter lets the rvsd example's VIP out and
/// BGP runs from its DIP.
#[test]
fn test_ecmp_bird_config_matches_the_rvsd_example() {
    let c = load("ecmp-rvsd.toml");
    let bird = std::fs::read_to_string(examples_dir().join("ecmp-bird2.conf")).unwrap();
    let dip = c.ports[0].addrs[0].addr;
    assert!(bird.contains(&format!("local {dip} as 65001;")), "{bird}");
    assert!(bird.contains("interface \"rvs0\";"));
    let std::net::IpAddr::V4(vip) = c.services[0].vip.ip() else {
        panic!("an IPv4 vip")
    };
    let vip = vip.octets();
    assert!(
        bird.contains(&format!(
            "if net ~ [ {}.{}.{}.0/24{{32,32}} ]",
            vip[0], vip[1], vip[2]
        )),
        "{bird}"
    );
}
