//! Valid configs and the exact `Config` they produce.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use conf::*;

/// The config shape of issue 2, verbatim.
const ISSUE_EXAMPLE: &str = r#"
[eal]                     # handed to rte_eal_init as given
args = ["-l", "0-1", "--no-huge", "-m", "1024", "--no-pci", "--no-shconf", "--file-prefix", "rvs0",
        "--vdev", "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap"]
[dataplane]
workers = [1]             # worker lcores; the main lcore runs the control thread
conn_table_size = 1048576 # per worker
[control]
socket = "/run/rvs/rvsd.sock"
[[port]]
name = "dpdk0"            # DPDK port 0
addrs = ["10.0.0.1/24", "10.0.0.100/32"]   # addresses the balancer owns on this link
[[route]]
dst = "0.0.0.0/0"
via = "10.0.0.254"
port = "dpdk0"
[[neighbor]]              # static entries; ARP resolves the rest
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[timeouts]                # seconds, as ipvsadm --set
tcp = 900
tcp_fin = 120
udp = 300
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"             # tcp | udp
sched = "wrr"             # rr wrr lc wlc lblc lblcr dh sh sed nq ch
persistence = 0           # seconds, ipvsadm -p; netmask = "255.255.255.255" for -M
laddrs = []               # FULLNAT local addresses
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"            # nat | dr | tun | fullnat
  weight = 1
"#;

fn parse(text: &str) -> Config {
    Config::parse(text, "rvsd.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn test_issue_example() {
    let args = [
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "1024",
        "--no-pci",
        "--no-shconf",
        "--file-prefix",
        "rvs0",
        "--vdev",
        "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap",
    ];
    let expected = Config {
        eal: Eal {
            args: args.iter().map(|a| a.to_string()).collect(),
        },
        dataplane: Dataplane {
            workers: vec![1],
            conn_table_size: 1_048_576,
            conn_table_size6: 262_144,
            burst: 32,
            mbufs: 32_767,
            expire_nodest_conn: false,
            laddr_steering: LaddrSteering::Auto,
            laddr_ports: (1025, 65535),
            idle_sleep_us: 0,
        },
        control: Control {
            socket: PathBuf::from("/run/rvs/rvsd.sock"),
            prometheus: None,
        },
        ports: vec![Port {
            name: "dpdk0".to_string(),
            id: 0,
            addrs: vec![
                Ipv4Net {
                    addr: Ipv4Addr::new(10, 0, 0, 1),
                    prefix_len: 24,
                },
                Ipv4Net {
                    addr: Ipv4Addr::new(10, 0, 0, 100),
                    prefix_len: 32,
                },
            ],
            addrs6: vec![],
            mac: None,
            mtu: 1500,
            exception: None,
        }],
        routes: vec![Route {
            dst: Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
            },
            via: Some(Ipv4Addr::new(10, 0, 0, 254)),
            port: 0,
        }],
        neighbors: vec![Neighbor {
            ip: Ipv4Addr::new(10, 0, 0, 254),
            mac: [0x02, 0, 0, 0, 0, 0xfe],
            port: 0,
        }],
        routes6: vec![],
        neighbors6: vec![],
        timeouts: Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
        services: vec![Service {
            vip: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), 80).into(),
            proto: Proto::Tcp,
            sched: "wrr",
            sched_flags: SchedFlags::default(),
            persistence: 0,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
            ch_table_size: 65_537,
            laddrs: vec![],
            proxy_protocol: None,
            toa: Some(ToaPlacement::Ack),
            vip_mode: VipMode::Static,
            sloppy: false,
            reals: vec![Real {
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 11), 8080).into(),
                mode: Mode::Nat,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                tunnel: Default::default(),
            }],
        }],
        health: vec![health::ServiceHealth {
            proto: Proto::Tcp,
            vip: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), 80).into(),
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            reals: vec![health::RealHealth {
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 11), 8080).into(),
                weight: 1,
                inhibit_on_failure: false,
                checks: vec![],
            }],
        }],
        sync: None,
    };
    assert_eq!(parse(ISSUE_EXAMPLE), expected);
}

const BASE: &str = r#"[eal]
args = []
[[port]]
name = "dpdk3"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
"#;

#[test]
fn test_port_id_from_name() {
    let c = parse(&format!(
        "{BASE}[[route]]\ndst = \"10.9.0.0/16\"\nport = \"dpdk3\"\n"
    ));
    assert_eq!(c.ports[0].id, 3);
    // No via: an on-link route.
    assert_eq!(c.routes[0].via, None);
    assert_eq!(c.routes[0].port, 3);
}

#[test]
fn test_laddr_steering() {
    let with = |dataplane: &str| {
        let base = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n";
        parse(&format!("{base}[dataplane]\n{dataplane}"))
            .dataplane
            .laddr_steering
    };
    assert_eq!(with(""), LaddrSteering::Auto);
    assert_eq!(with("laddr_steering = \"auto\"\n"), LaddrSteering::Auto);
    assert_eq!(
        with("laddr_steering = \"handover\"\n"),
        LaddrSteering::Handover
    );
    assert_eq!(
        with("workers = [1, 2]\nladdr_steering = \"rte_flow\"\n"),
        LaddrSteering::RteFlow
    );
    assert_eq!(
        with("workers = [1, 2, 3, 4]\nladdr_steering = \"rte_flow\"\n"),
        LaddrSteering::RteFlow
    );
    // Any number of workers may use the hand-over.
    assert_eq!(
        with("workers = [1, 2, 3]\nladdr_steering = \"auto\"\n"),
        LaddrSteering::Auto
    );
    assert_eq!(LaddrSteering::RteFlow.to_string(), "rte_flow");
}

#[test]
fn test_laddr_ports() {
    let with = |dataplane: &str| {
        let base = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n";
        parse(&format!("{base}[dataplane]\n{dataplane}"))
            .dataplane
            .laddr_ports
    };
    assert_eq!(with(""), (1025, 65535));
    assert_eq!(with("laddr_ports = [5000, 65535]\n"), (5000, 65535));
    assert_eq!(with("laddr_ports = [7, 7]\n"), (7, 7));
    // One port each for two workers.
    assert_eq!(with("workers = [1, 2]\nladdr_ports = [7, 8]\n"), (7, 8));
}

#[test]
fn test_zero_timeout_is_default() {
    let c = parse(&format!("{BASE}[timeouts]\ntcp = 0\ntcp_fin = 30\n"));
    assert_eq!(
        c.timeouts,
        Timeouts {
            tcp: 900,
            tcp_fin: 30,
            udp: 300
        }
    );
}

#[test]
fn test_toa_defaults() {
    let svc = |extra: &str| {
        parse(&format!(
            "{BASE}[[service]]\nvip = \"10.0.0.100:80\"\n{extra}"
        ))
        .services
        .remove(0)
    };
    assert_eq!(svc("proto = \"tcp\"\n").toa, Some(ToaPlacement::Ack));
    assert_eq!(svc("proto = \"udp\"\n").toa, None);
    assert_eq!(svc("proto = \"tcp\"\ntoa = false\n").toa, None);
    assert_eq!(
        svc("proto = \"tcp\"\ntoa_placement = \"syn\"\n").toa,
        Some(ToaPlacement::Syn)
    );
    let pp = svc("proto = \"tcp\"\nproxy_protocol = \"v1\"\n");
    assert_eq!((pp.toa, pp.proxy_protocol), (None, Some(ProxyProtocol::V1)));
}

#[test]
fn test_idle_sleep_us() {
    let dataplane = |extra: &str| parse(&format!("{BASE}[dataplane]\n{extra}")).dataplane;
    assert_eq!(dataplane("").idle_sleep_us, 0);
    assert_eq!(dataplane("idle_sleep_us = 200\n").idle_sleep_us, 200);
    assert_eq!(dataplane("idle_sleep_us = 10000\n").idle_sleep_us, 10_000);
}

#[test]
fn test_sloppy_defaults_to_off() {
    let svc = |extra: &str| {
        parse(&format!(
            "{BASE}[[service]]\nvip = \"10.0.0.100:80\"\n{extra}"
        ))
        .services
        .remove(0)
    };
    assert!(!svc("proto = \"tcp\"\n").sloppy);
    assert!(svc("proto = \"tcp\"\nsloppy = true\n").sloppy);
    assert!(!svc("proto = \"tcp\"\nsloppy = false\n").sloppy);
    assert!(!svc("proto = \"udp\"\nsloppy = false\n").sloppy);
}

#[test]
fn test_real_port_inherits_vip_port() {
    let c = parse(&format!(
        "{BASE}[[service]]\nvip = \"10.0.0.100:443\"\nproto = \"tcp\"\n\
         real = [{{ addr = \"10.0.0.11\", mode = \"tun\" }}, {{ addr = \"10.0.0.12:0\", mode = \"nat\" }}]\n"
    ));
    let ports: Vec<u16> = c.services[0].reals.iter().map(|r| r.addr.port()).collect();
    assert_eq!(ports, [443, 443]);
}

#[test]
fn test_persistent_zero_port_service() {
    let c = parse(&format!(
        "{BASE}[[service]]\nvip = \"10.0.0.100:0\"\nproto = \"udp\"\npersistence = 2678400\n\
         netmask = \"255.255.0.0\"\n[[service.real]]\naddr = \"10.0.0.11\"\n"
    ));
    let svc = &c.services[0];
    assert_eq!(svc.persistence, 2_678_400);
    assert_eq!(svc.netmask, Netmask::V4(Ipv4Addr::new(255, 255, 0, 0)));
    assert_eq!(svc.reals[0].addr.port(), 0);
    assert_eq!(svc.reals[0].mode, Mode::Dr);
}

#[test]
fn test_thresholds() {
    let c = parse(&format!(
        "{BASE}[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n\
         [[service.real]]\naddr = \"10.0.0.11\"\nu_threshold = 2147483647\nl_threshold = 2147483647\n"
    ));
    let r = &c.services[0].reals[0];
    assert_eq!(
        (r.u_threshold, r.l_threshold),
        (MAX_THRESHOLD, MAX_THRESHOLD)
    );
}

#[test]
fn test_display_names() {
    assert_eq!(Proto::Udp.to_string(), "udp");
    assert_eq!(Mode::FullNat.to_string(), "fullnat");
    assert_eq!(ProxyProtocol::V2.to_string(), "v2");
}

#[test]
fn test_exception_defaults_and_values() {
    let port = |exception: &str| {
        parse(&format!(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n{exception}"
        ))
        .ports
        .remove(0)
        .exception
    };
    assert_eq!(port(""), None);
    assert_eq!(
        port("exception = { iface = \"rvs0\" }\n"),
        Some(Exception {
            iface: "rvs0".into(),
            kind: ExceptionKind::Auto,
            punt_pps: DEFAULT_PUNT_PPS,
        })
    );
    assert_eq!(
        port(
            "[port.exception]\niface = \"a-very.long_if9\"\nkind = \"virtio_user\"\npunt_pps = 1\n"
        ),
        Some(Exception {
            iface: "a-very.long_if9".into(),
            kind: ExceptionKind::VirtioUser,
            punt_pps: 1,
        })
    );
    assert_eq!(
        port("exception = { iface = \"rvs0\", kind = \"tap\" }\n").map(|e| e.kind),
        Some(ExceptionKind::Tap)
    );
    assert_eq!(ExceptionKind::VirtioUser.to_string(), "virtio_user");
}

#[test]
fn test_vip_mode_defaults() {
    let twin = "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\", \"10.0.0.100/32\"]\n\
                exception = { iface = \"rvs0\" }\n";
    let mode = |vip: &str, extra: &str| {
        parse(&format!(
            "{twin}[[service]]\nvip = \"{vip}\"\nproto = \"tcp\"\n{extra}"
        ))
        .services[0]
            .vip_mode
    };
    // In addrs: static; anywhere else: kernel (it becomes owned when the twin holds it).
    assert_eq!(mode("10.0.0.100:80", ""), VipMode::Static);
    assert_eq!(mode("10.0.0.200:80", ""), VipMode::Kernel);
    assert_eq!(mode("192.0.2.7:80", ""), VipMode::Kernel);
    assert_eq!(
        mode("10.0.0.100:80", "vip_mode = \"kernel\"\n"),
        VipMode::Kernel
    );
    assert_eq!(
        mode("192.0.2.7:80", "vip_mode = \"routed\"\n"),
        VipMode::Routed
    );
    // routed needs no twin.
    let c = parse(&format!(
        "{BASE}[[service]]\nvip = \"192.0.2.7:80\"\nproto = \"tcp\"\nvip_mode = \"routed\"\n"
    ));
    assert_eq!(c.services[0].vip_mode, VipMode::Routed);
    assert_eq!(VipMode::Routed.to_string(), "routed");
}

/// The file takes what ipvsadm 1.31 (and DPVS's `-b`) take, so that rvsadm and the file agree:
/// `-M` without `-p`, any dotted `-M`, a fullnat real before the service has local addresses.
#[test]
fn test_what_ipvsadm_accepts() {
    let svc = |extra: &str| {
        parse(&format!(
            "{BASE}[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n{extra}"
        ))
        .services
        .remove(0)
    };
    let s = svc("netmask = \"255.255.255.0\"\n");
    assert_eq!(
        (s.persistence, s.netmask),
        (0, Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)))
    );
    let s = svc("persistence = 60\nnetmask = \"255.0.255.0\"\n");
    assert_eq!(
        (s.persistence, s.netmask),
        (60, Netmask::V4(Ipv4Addr::new(255, 0, 255, 0)))
    );
    let s = svc("[[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"fullnat\"\n");
    assert_eq!((s.laddrs.len(), s.reals[0].mode), (0, Mode::FullNat));
}

/// The issue's `tunnel = { type, port, csum }` and ipvsadm 1.31's weight range.
#[test]
fn test_tunnels_and_weights() {
    let c = parse(&format!(
        "{BASE}[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n\
         [[service.real]]\naddr = \"10.0.0.11\"\nmode = \"tun\"\nweight = 2147483647\n\
         tunnel = {{ type = \"gue\", port = 6080, csum = \"remcsum\" }}\n\
         [[service.real]]\naddr = \"10.0.0.12\"\nmode = \"tun\"\nweight = 65536\n\
         tunnel = {{ type = \"gre\", csum = \"csum\" }}\n\
         [[service.real]]\naddr = \"10.0.0.13\"\nmode = \"tun\"\ntunnel = {{ type = \"gue\", port = 1 }}\n\
         [[service.real]]\naddr = \"10.0.0.14\"\nmode = \"tun\"\ntunnel = {{ type = \"ipip\" }}\n\
         [[service.real]]\naddr = \"10.0.0.15\"\nmode = \"tun\"\n"
    ));
    let got: Vec<(u32, Tunnel)> = c.services[0]
        .reals
        .iter()
        .map(|r| (r.weight, r.tunnel))
        .collect();
    let t = |kind, port, csum| Tunnel { kind, port, csum };
    assert_eq!(
        got,
        [
            (MAX_WEIGHT, t(TunKind::Gue, 6080, TunCsum::Remcsum)),
            (65536, t(TunKind::Gre, 0, TunCsum::Csum)),
            (1, t(TunKind::Gue, 1, TunCsum::None)),
            (1, t(TunKind::Ipip, 0, TunCsum::None)),
            (1, t(TunKind::Ipip, 0, TunCsum::None)),
        ]
    );
}

/// The schema of HEALTH-SCHEMA.md, every key, and keepalived 2.2's defaults where left out.
const HEALTH: &str = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "192.168.10.1/24"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "wrr"
delay_loop = 6
alpha = true
omega = true
quorum = 4
hysteresis = 1
quorum_up = "/usr/local/bin/up.sh"
quorum_down = "/usr/local/bin/down.sh"
sorry_server = "192.168.10.50"
sorry_server_inhibit = true
  [[service.real]]
  addr = "192.168.10.11:8080"
  mode = "nat"
  weight = 3
  inhibit_on_failure = true
    [[service.real.check]]
    type = "http"
    connect_ip = "192.168.10.12"
    connect_port = 8081
    bindto = "192.168.10.1"
    bind_port = 4000
    connect_timeout = 2.5
    retry = 2
    delay_before_retry = 0.5
    delay_loop = 1
    warmup = 3
    virtualhost = "www.example.com"
    url = [ { path = "/health", status_code = "200 301-302", digest = "9b3a0c85a887a256d6939da88aabd8cd", virtualhost = "x" },
            { path = "/" } ]
    [[service.real.check]]
    type = "https"
    url = [ { path = "/", status_code = 204 } ]
    [[service.real.check]]
    type = "tcp"
    [[service.real.check]]
    type = "udp"
    payload = "0a 0b"
    require_reply = "0c"
    [[service.real.check]]
    type = "udp"
    require_reply = true
    [[service.real.check]]
    type = "misc"
    path = "/bin/check --flag"
    timeout = 3
    dynamic = true
    [[service.real.check]]
    type = "misc"
    path = "/bin/true"
  [[service.real]]
  addr = "192.168.10.13:8080"
  mode = "nat"
"#;

#[test]
fn test_health_schema() {
    use conf::health::*;
    use std::time::Duration;
    let c = parse(HEALTH);
    let h = &c.health[0];
    assert!(h.alpha && h.omega && h.sorry_server_inhibit);
    assert_eq!((h.quorum, h.hysteresis), (4, 1));
    assert_eq!(h.quorum_up.as_deref(), Some("/usr/local/bin/up.sh"));
    assert_eq!(h.quorum_down.as_deref(), Some("/usr/local/bin/down.sh"));
    assert_eq!(h.sorry_server, Some("192.168.10.50:80".parse().unwrap()));
    assert!(h.is_checked());
    let r = &h.reals[0];
    assert_eq!((r.weight, r.inhibit_on_failure), (3, true));
    let secs = Duration::from_secs_f64;
    let base = |kind, retry, dbr: f64, timeout: f64| Check {
        kind,
        connect: "192.168.10.11:8080".parse().unwrap(),
        bindto: None,
        bind_port: 0,
        connect_timeout: secs(timeout),
        retry,
        delay_before_retry: secs(dbr),
        delay_loop: secs(6.0),
        warmup: Duration::ZERO,
    };
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&[
        0x9b, 0x3a, 0x0c, 0x85, 0xa8, 0x87, 0xa2, 0x56, 0xd6, 0x93, 0x9d, 0xa8, 0x8a, 0xab, 0xd8,
        0xcd,
    ]);
    let expected = vec![
        Check {
            kind: CheckKind::Http(HttpCheck {
                virtualhost: Some("www.example.com".into()),
                urls: vec![
                    Url {
                        path: "/health".into(),
                        status: vec![(200, 200), (301, 302)],
                        digest: Some(digest),
                        virtualhost: Some("x".into()),
                    },
                    Url {
                        path: "/".into(),
                        status: vec![(200, 299)],
                        digest: None,
                        virtualhost: None,
                    },
                ],
            }),
            connect: "192.168.10.12:8081".parse().unwrap(),
            bindto: Some(Ipv4Addr::new(192, 168, 10, 1).into()),
            bind_port: 4000,
            connect_timeout: secs(2.5),
            retry: 2,
            delay_before_retry: secs(0.5),
            delay_loop: secs(1.0),
            warmup: secs(3.0),
        },
        base(
            CheckKind::Https(HttpCheck {
                virtualhost: None,
                urls: vec![Url {
                    path: "/".into(),
                    status: vec![(204, 204)],
                    digest: None,
                    virtualhost: None,
                }],
            }),
            1,
            3.0,
            5.0,
        ),
        base(CheckKind::Tcp, 1, 1.0, 5.0),
        base(
            CheckKind::Udp(UdpCheck {
                payload: vec![10, 11],
                reply: UdpReply::Prefix(vec![12]),
            }),
            1,
            1.0,
            5.0,
        ),
        base(
            CheckKind::Udp(UdpCheck {
                payload: vec![],
                reply: UdpReply::Any,
            }),
            1,
            1.0,
            5.0,
        ),
        base(
            CheckKind::Misc(MiscCheck {
                path: "/bin/check --flag".into(),
                dynamic: true,
            }),
            0,
            1.0,
            3.0,
        ),
        // misc_timeout defaults to the delay loop.
        base(
            CheckKind::Misc(MiscCheck {
                path: "/bin/true".into(),
                dynamic: false,
            }),
            0,
            1.0,
            6.0,
        ),
    ];
    assert_eq!(r.checks, expected);
    assert_eq!(h.reals[1].checks, []);
    assert!(!h.reals[1].inhibit_on_failure);
}

/// `[sync]` with every key.
#[test]
fn test_sync_every_key() {
    let c = parse(
        r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24"]
[sync]
role = "backup"
interface = "eth9"
syncid = 255
maxlen = 9000
group = "239.1.2.3"
port = 1
ttl = 255
sync_threshold = 0
sync_period = 0
backup_only = true
"#,
    );
    assert_eq!(
        c.sync,
        Some(SyncConfig {
            daemons: vec![SyncDaemon {
                role: SyncRole::Backup,
                interface: "eth9".into(),
                syncid: 255,
                maxlen: Some(9000),
                group: Ipv4Addr::new(239, 1, 2, 3),
                port: 1,
                ttl: 255,
            }],
            threshold: 0,
            period: 0,
            backup_only: true,
        })
    );
}

/// `[sync]` with only the required keys gets ipvsadm's and the kernel's defaults.
#[test]
fn test_sync_defaults() {
    let c = parse(
        "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n\
         [sync]\nrole = \"master\"\ninterface = \"rvs0\"\n",
    );
    assert_eq!(
        c.sync,
        Some(SyncConfig {
            daemons: vec![SyncDaemon {
                role: SyncRole::Master,
                interface: "rvs0".into(),
                syncid: 0,
                maxlen: None,
                group: Ipv4Addr::new(224, 0, 0, 81),
                port: 8848,
                ttl: 1,
            }],
            threshold: 3,
            period: 50,
            backup_only: false,
        })
    );
    // A threshold of 49 is the largest below the default period.
    let c = parse(
        "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n\
         [sync]\nrole = \"master\"\ninterface = \"rvs0\"\nsync_threshold = 49\n",
    );
    assert_eq!(c.sync.map(|s| (s.threshold, s.period)), Some((49, 50)));
}

#[test]
fn ipv6_addresses_routes_and_neighbors_sit_beside_ipv4() {
    let c = parse(
        r#"[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "2001:db8::1/64", "fe80::2:1/64", "2001:db8:ff::100"]
[[port]]
name = "dpdk1"
addrs = ["2001:db8:1::1/64"]
[[route]]
dst = "::/0"
via = "fe80::1"
port = "dpdk0"
[[route]]
dst = "2001:db8:2::/48"
via = "2001:db8:1::fe"
port = "dpdk1"
[[route]]
dst = "0.0.0.0/0"
via = "10.0.0.254"
port = "dpdk0"
[[neighbor]]
ip = "fe80::1"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:00:fe"
port = "dpdk0"
"#,
    );
    let net = |s: &str| {
        let (addr, len) = s.split_once('/').unwrap();
        conf::Ipv6Net {
            addr: addr.parse().unwrap(),
            prefix_len: len.parse().unwrap(),
        }
    };
    assert_eq!(c.ports[0].addrs.len(), 1);
    assert_eq!(
        c.ports[0].addrs6,
        vec![
            net("2001:db8::1/64"),
            net("fe80::2:1/64"),
            net("2001:db8:ff::100/128")
        ]
    );
    assert!(c.ports[1].addrs.is_empty(), "an IPv6-only port");
    assert_eq!(c.ports[1].addrs6, vec![net("2001:db8:1::1/64")]);
    assert_eq!(
        c.routes6,
        vec![
            Route6 {
                dst: net("::/0"),
                via: Some("fe80::1".parse().unwrap()),
                port: 0,
            },
            Route6 {
                dst: net("2001:db8:2::/48"),
                via: Some("2001:db8:1::fe".parse().unwrap()),
                port: 1,
            },
        ]
    );
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        c.neighbors6,
        vec![Neighbor6 {
            ip: "fe80::1".parse().unwrap(),
            mac: [0x02, 0, 0, 0, 0, 0xfe],
            port: 0,
        }]
    );
    assert_eq!(c.neighbors.len(), 1);
}

#[test]
fn conn_table_size6_defaults_to_a_quarter_of_the_ipv4_table() {
    let size6 = |dataplane: &str| {
        parse(&format!(
            "[eal]\nargs = []\n[dataplane]\n{dataplane}\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n"
        ))
        .dataplane
        .conn_table_size6
    };
    assert_eq!(size6("conn_table_size = 65536"), 16384);
    assert_eq!(size6("conn_table_size = 2048"), 1024, "at least 1024");
    assert_eq!(
        size6("conn_table_size = 64"),
        64,
        "never more than the IPv4 table"
    );
    assert_eq!(size6("conn_table_size = 64\nconn_table_size6 = 5000"), 5000);
}

/// IPv6 services: bracketed vips and reals, bare reals with the vip port, a prefix-length
/// netmask, NAT64 (an IPv6 fullnat service with IPv4 reals and local addresses) and 6→6
/// fullnat with IPv6 local addresses.
#[test]
fn ipv6_services_nat66_dr6_and_nat64() {
    let c = parse(
        r#"[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "2001:db8::1/64", "2001:db8::100/128"]
[[route]]
dst = "2001:db8:1::/48"
via = "fe80::1"
port = "dpdk0"
[[service]]
vip = "[2001:db8::100]:80"
proto = "tcp"
sched = "wrr"
persistence = 60
netmask = "64"
[[service.real]]
addr = "[2001:db8:1::11]:8080"
mode = "nat"
weight = 3
[[service.real]]
addr = "2001:db8::12"
mode = "dr"
[[service]]
vip = "[2001:db8::100]:443"
proto = "tcp"
laddrs = ["10.0.0.1"]
[[service.real]]
addr = "10.0.0.11:8443"
mode = "fullnat"
[[service]]
vip = "[2001:db8::100]:53"
proto = "udp"
laddrs = ["2001:db8::1"]
[[service.real]]
addr = "2001:db8:1::11"
mode = "fullnat"
"#,
    );
    let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
    let web = &c.services[0];
    assert_eq!(web.vip, sa("[2001:db8::100]:80"));
    assert_eq!(web.vip_mode, VipMode::Static);
    assert_eq!((web.persistence, web.netmask), (60, Netmask::V6(64)));
    assert_eq!(
        web.reals
            .iter()
            .map(|r| (r.addr, r.mode, r.weight))
            .collect::<Vec<_>>(),
        [
            (sa("[2001:db8:1::11]:8080"), Mode::Nat, 3),
            (sa("[2001:db8::12]:80"), Mode::Dr, 1),
        ]
    );
    let nat64 = &c.services[1];
    assert_eq!(nat64.netmask, Netmask::V6(128), "the IPv6 default");
    assert_eq!(
        nat64.laddrs,
        ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(nat64.reals[0].addr, sa("10.0.0.11:8443"));
    let dns = &c.services[2];
    assert_eq!(
        dns.laddrs,
        ["2001:db8::1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(dns.reals[0].addr, sa("[2001:db8:1::11]:53"));
    assert_eq!(c.health[0].vip, web.vip);
    assert_eq!(c.health[0].reals[1].addr, sa("[2001:db8::12]:80"));
}

#[test]
fn ipv6_netmask_parses_and_prints_as_ipvsadm() {
    let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    let v4: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(Netmask::parse_for(v6, "64"), Ok(Netmask::V6(64)));
    assert_eq!(Netmask::parse_for(v6, "128"), Ok(Netmask::V6(128)));
    for bad in ["0", "129", "255.255.255.0", "", "+1"] {
        assert_eq!(
            Netmask::parse_for(v6, bad),
            Err("illegal ipv6 netmask specified".to_string()),
            "{bad}"
        );
    }
    assert_eq!(
        Netmask::parse_for(v4, "255.255.0.0"),
        Ok(Netmask::V4(Ipv4Addr::new(255, 255, 0, 0)))
    );
    assert_eq!(
        Netmask::parse_for(v4, "16"),
        Err("illegal virtual server persistent mask specified".to_string())
    );
    assert_eq!(Netmask::V6(64).to_string(), "64");
    assert_eq!(
        Netmask::V4(Ipv4Addr::new(255, 255, 0, 0)).to_string(),
        "255.255.0.0"
    );
    assert!(Netmask::host(v6).is_host() && Netmask::host(v4).is_host());
    assert!(!Netmask::V6(64).is_host());
    assert!(Netmask::V6(64).is_for(v6) && !Netmask::V6(64).is_for(v4));
}
