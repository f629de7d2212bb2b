//! Broken configs, one rule each, with the exact message `rvsd --check-config` prints.
//!
//! Most cases append to [`BASE`], which is lines 1-5, so the first appended line is line 6.

use conf::Config;

const BASE: &str = r#"[eal]
args = ["--no-huge"]
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
"#;

/// A service on the owned vip, lines 6-8.
const SVC: &str = r#"[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
"#;

fn rejected(text: &str) -> String {
    match Config::parse(text, "rvsd.toml") {
        Ok(c) => panic!("accepted: {c:#?}"),
        Err(e) => e.to_string(),
    }
}

/// `BASE` followed by `rest`.
fn err(rest: &str) -> String {
    rejected(&format!("{BASE}{rest}"))
}

/// `BASE`, `SVC`, then `rest` from line 9.
fn svc_err(rest: &str) -> String {
    err(&format!("{SVC}{rest}"))
}

// --- TOML syntax, types and unknown keys --------------------------------------------------------

#[test]
fn test_syntax_unclosed_array() {
    assert_eq!(
        rejected("[eal]\nargs = [\"-l\", \"0-1\"\n[[port]]\n"),
        "rvsd.toml:3: missing comma between array elements, expected `,`"
    );
}

#[test]
fn test_syntax_unclosed_string() {
    assert_eq!(
        err("[control]\nsocket = \"/run/rvs.sock\n"),
        "rvsd.toml:7: invalid basic string, expected `\"`"
    );
}

#[test]
fn test_syntax_duplicate_key() {
    assert_eq!(svc_err("proto = \"udp\"\n"), "rvsd.toml:9: duplicate key");
}

#[test]
fn test_syntax_duplicate_table() {
    assert_eq!(err("[eal]\nargs = []\n"), "rvsd.toml:6: duplicate key");
}

#[test]
fn test_unknown_key_in_real() {
    assert_eq!(
        svc_err("[[service.real]]\naddr = \"10.0.0.11\"\nwieght = 2\n"),
        "rvsd.toml:11: service[0].real[0].wieght: unknown field `wieght`, expected one of \
         `addr`, `mode`, `weight`, `u_threshold`, `l_threshold`, `tunnel`, \
         `inhibit_on_failure`, `check`"
    );
}

#[test]
fn test_unknown_section() {
    assert_eq!(
        err("[timeout]\ntcp = 900\n"),
        "rvsd.toml:6: timeout: unknown field `timeout`, expected one of `eal`, `dataplane`, \
         `control`, `port`, `route`, `neighbor`, `timeouts`, `service`, `sync`"
    );
}

#[test]
fn test_unknown_key_in_dataplane() {
    assert_eq!(
        err("[dataplane]\nworker = [1]\n"),
        "rvsd.toml:7: dataplane.worker: unknown field `worker`, expected one of `workers`, \
         `conn_table_size`, `conn_table_size6`, `burst`, `mbufs`, `expire_nodest_conn`, `laddr_steering`, `laddr_ports`, \
         `idle_sleep_us`"
    );
}

#[test]
fn test_type_error() {
    assert_eq!(
        svc_err("[[service.real]]\naddr = \"10.0.0.11\"\nweight = \"2\"\n"),
        "rvsd.toml:11: service[0].real[0].weight: invalid type: string \"2\", expected i64"
    );
}

#[test]
fn test_type_error_in_array() {
    assert_eq!(
        err("[dataplane]\nworkers = [1, \"2\"]\n"),
        "rvsd.toml:7: dataplane.workers[1]: invalid type: string \"2\", expected i64"
    );
}

#[test]
fn test_section_not_a_table() {
    assert_eq!(
        rejected(&format!("timeouts = 5\n{BASE}")),
        "rvsd.toml:1: timeouts: invalid type: integer `5`, expected a table"
    );
}

#[test]
fn test_missing_required_key() {
    assert_eq!(
        err("[[service]]\nproto = \"tcp\"\n"),
        "rvsd.toml:6: service[0]: missing field `vip`"
    );
}

#[test]
fn test_bad_enum_value() {
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"sctp\"\n"),
        "rvsd.toml:8: service[0].proto: unknown variant `sctp`, expected `tcp` or `udp`"
    );
    assert_eq!(
        svc_err("[[service.real]]\naddr = \"10.0.0.11\"\nmode = \"masq\"\n"),
        "rvsd.toml:11: service[0].real[0].mode: unknown variant `masq`, expected one of \
         `nat`, `dr`, `tun`, `fullnat`"
    );
    assert_eq!(
        svc_err("sched = \"sh\"\nsched_flags = [\"sh-ports\"]\n"),
        "rvsd.toml:10: service[0].sched_flags[0]: unknown variant `sh-ports`, expected one of \
         `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`"
    );
    assert_eq!(
        svc_err("proxy_protocol = \"v3\"\n"),
        "rvsd.toml:9: service[0].proxy_protocol: unknown variant `v3`, expected `v1` or `v2`"
    );
    assert_eq!(
        svc_err("toa_placement = \"fin\"\n"),
        "rvsd.toml:9: service[0].toa_placement: unknown variant `fin`, expected `ack` or `syn`"
    );
}

// --- required sections --------------------------------------------------------------------------

#[test]
fn test_missing_eal() {
    assert_eq!(
        rejected("[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n"),
        "rvsd.toml:1: eal: missing [eal] section: rte_eal_init needs its arguments"
    );
}

#[test]
fn test_missing_port() {
    assert_eq!(
        rejected("[eal]\nargs = []\n"),
        "rvsd.toml:1: port: at least one [[port]] is required"
    );
}

// --- [dataplane] and [control] ------------------------------------------------------------------

#[test]
fn test_workers_empty() {
    assert_eq!(
        err("[dataplane]\nworkers = []\n"),
        "rvsd.toml:7: dataplane.workers: at least one worker lcore is required"
    );
}

#[test]
fn test_workers_duplicate() {
    assert_eq!(
        err("[dataplane]\nworkers = [\n  1,\n  2,\n  1,\n]\n"),
        "rvsd.toml:10: dataplane.workers[2]: lcore 1 is listed twice"
    );
}

#[test]
fn test_workers_negative() {
    assert_eq!(
        err("[dataplane]\nworkers = [-1]\n"),
        "rvsd.toml:7: dataplane.workers[0]: -1 is out of range 0..=4294967295"
    );
}

#[test]
fn test_dataplane_sizes() {
    assert_eq!(
        err("[dataplane]\nconn_table_size = 0\n"),
        "rvsd.toml:7: dataplane.conn_table_size: 0 is out of range 1..=2147483648"
    );
    // The table's own limit, which rvsd used to meet only at start-up.
    assert_eq!(
        err("[dataplane]\nconn_table_size = 2147483649\n"),
        "rvsd.toml:7: dataplane.conn_table_size: 2147483649 is out of range 1..=2147483648: the \
         connection table of each worker holds at most 2^31 entries (2147483649 would take \
         240.0 GiB per worker)"
    );
    assert_eq!(
        err("[dataplane]\nconn_table_size = 4294967296\n"),
        "rvsd.toml:7: dataplane.conn_table_size: 4294967296 is out of range 1..=2147483648: the \
         connection table of each worker holds at most 2^31 entries (4294967296 would take \
         416.0 GiB per worker)"
    );
    assert_eq!(
        err("[dataplane]\nburst = 1024\n"),
        "rvsd.toml:7: dataplane.burst: 1024 is out of range 1..=512"
    );
    assert_eq!(
        err("[dataplane]\nidle_sleep_us = 10001\n"),
        "rvsd.toml:7: dataplane.idle_sleep_us: 10001 is out of range 0..=10000"
    );
    assert_eq!(
        err("[dataplane]\nidle_sleep_us = -1\n"),
        "rvsd.toml:7: dataplane.idle_sleep_us: -1 is out of range 0..=10000"
    );
    assert_eq!(
        err("[dataplane]\nmbufs = 0\n"),
        "rvsd.toml:7: dataplane.mbufs: 0 is out of range 1..=4294967295"
    );
}

#[test]
fn test_laddr_ports() {
    assert_eq!(
        err("[dataplane]\nladdr_ports = [5000]\n"),
        "rvsd.toml:7: dataplane.laddr_ports: needs two ports, [lowest, highest]; 1 given"
    );
    assert_eq!(
        err("[dataplane]\nladdr_ports = [0, 65535]\n"),
        "rvsd.toml:7: dataplane.laddr_ports[0]: 0 is out of range 1..=65535"
    );
    assert_eq!(
        err("[dataplane]\nladdr_ports = [5000, 65536]\n"),
        "rvsd.toml:7: dataplane.laddr_ports[1]: 65536 is out of range 1..=65535"
    );
    assert_eq!(
        err("[dataplane]\nladdr_ports = [6000, 5000]\n"),
        "rvsd.toml:7: dataplane.laddr_ports: 6000 is above 5000"
    );
    assert_eq!(
        err("[dataplane]\nworkers = [1, 2, 3]\nladdr_ports = [5000, 5001]\n"),
        "rvsd.toml:8: dataplane.laddr_ports: 2 ports for 3 workers: each worker needs ports of its own"
    );
}

#[test]
fn test_laddr_steering() {
    assert_eq!(
        err("[dataplane]\nladdr_steering = \"fdir\"\n"),
        "rvsd.toml:7: dataplane.laddr_steering: unknown variant `fdir`, expected one of \
         `auto`, `rte_flow`, `handover`"
    );
    let needs = "\"rte_flow\" needs a power-of-two number of workers, at least 2 (the rules \
                 match the low bits of the local port)";
    assert_eq!(
        err("[dataplane]\nladdr_steering = \"rte_flow\"\n"),
        format!(
            "rvsd.toml:7: dataplane.laddr_steering: {needs}; 1 given: use \"auto\" or \"handover\""
        )
    );
    assert_eq!(
        err("[dataplane]\nworkers = [1, 2, 3]\nladdr_steering = \"rte_flow\"\n"),
        format!(
            "rvsd.toml:8: dataplane.laddr_steering: {needs}; 3 given: use \"auto\" or \"handover\""
        )
    );
}

#[test]
fn test_control() {
    assert_eq!(
        err("[control]\nsocket = \"\"\n"),
        "rvsd.toml:7: control.socket: the socket path is empty"
    );
    assert_eq!(
        err("[control]\nprometheus = \"localhost:9100\"\n"),
        "rvsd.toml:7: control.prometheus: \"localhost:9100\" is not a socket address (ip:port)"
    );
    assert_eq!(
        err("[control]\nprometheus = \"127.0.0.1:0\"\n"),
        "rvsd.toml:7: control.prometheus: \"127.0.0.1:0\" has port 0; the endpoint needs a fixed port"
    );
}

// --- [[port]] -----------------------------------------------------------------------------------

#[test]
fn test_port_name() {
    assert_eq!(
        err("[[port]]\nname = \"eth1\"\naddrs = [\"10.0.1.1/24\"]\n"),
        "rvsd.toml:7: port[1].name: \"eth1\" is not a DPDK port name (dpdk<N>, N the DPDK port id)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk01\"\naddrs = [\"10.0.1.1/24\"]\n"),
        "rvsd.toml:7: port[1].name: \"dpdk01\" is not a DPDK port name (dpdk<N>, N the DPDK port id)"
    );
}

#[test]
fn test_port_duplicate() {
    assert_eq!(
        err("[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.1.1/24\"]\n"),
        "rvsd.toml:7: port[1].name: \"dpdk0\" is already declared by port[0]"
    );
}

#[test]
fn test_port_addrs() {
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = []\n"),
        "rvsd.toml:8: port[1].addrs: a port needs at least one address the balancer owns on its link"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/24\", \"10.0.1.300\"]\n"),
        "rvsd.toml:8: port[1].addrs[1]: \"10.0.1.300\" is not an IPv4 address or prefix (a.b.c.d/len)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/40\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: \"10.0.1.1/40\": prefix length 40 is out of range 0..=32"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"224.0.0.1/4\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: 224.0.0.1 is not a unicast address: it is a multicast \
         address (224.0.0.0/4)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"0.0.0.1/8\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: 0.0.0.1 is not a unicast address: 0.0.0.0/8 means \
         \"this network\""
    );
    // Loopback would be announced by ARP and answered from: never on the wire.
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"127.0.0.1/8\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: 127.0.0.1 is a loopback address (127.0.0.0/8), which \
         must never be sent on the wire"
    );
    // The network or broadcast address of a subnet, its own or another port's.
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.1.0.0/16\", \"10.0.0.255\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: 10.1.0.0 is not a unicast address: it is the network \
         address of 10.1.0.0/16\n\
         rvsd.toml:8: port[1].addrs[1]: 10.0.0.255 is not a unicast address: it is the broadcast \
         address of 10.0.0.0/24"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\n  \"10.0.1.1/24\",\n  \"10.0.0.100/32\",\n]\n"),
        "rvsd.toml:10: port[1].addrs[1]: 10.0.0.100 is already owned by port[0]"
    );
}

#[test]
fn test_port_mac() {
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/24\"]\nmac = \"02:00:00:00:00\"\n"),
        "rvsd.toml:9: port[1].mac: \"02:00:00:00:00\" is not a MAC address (xx:xx:xx:xx:xx:xx)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/24\"]\nmac = \"01:00:5e:00:00:01\"\n"),
        "rvsd.toml:9: port[1].mac: \"01:00:5e:00:00:01\" is not a unicast MAC address"
    );
}

#[test]
fn test_port_mtu() {
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/24\"]\nmtu = 60\n"),
        "rvsd.toml:9: port[1].mtu: 60 is out of range 68..=65535"
    );
}

// --- [[route]] and [[neighbor]] -----------------------------------------------------------------

#[test]
fn test_route_dst() {
    assert_eq!(
        err("[[route]]\ndst = \"default\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: route[0].dst: \"default\" is not an IPv4 address or prefix (a.b.c.d/len)"
    );
    assert_eq!(
        err("[[route]]\ndst = \"192.168.1.1/24\"\nvia = \"10.0.0.254\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: route[0].dst: \"192.168.1.1/24\" has host bits set; the network is 192.168.1.0/24"
    );
}

#[test]
fn test_route_duplicate() {
    assert_eq!(
        err(
            "[[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.0.254\"\nport = \"dpdk0\"\n\
             [[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.0.253\"\nport = \"dpdk0\"\n"
        ),
        "rvsd.toml:11: route[1].dst: 0.0.0.0/0 is already routed by route[0]"
    );
}

#[test]
fn test_route_port_undeclared() {
    assert_eq!(
        err("[[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.0.254\"\nport = \"dpdk1\"\n"),
        "rvsd.toml:9: route[0].port: \"dpdk1\" is not a declared [[port]]"
    );
}

#[test]
fn test_route_via_and_neighbor_are_hosts() {
    assert_eq!(
        err("[[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.0.255\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: route[0].via: 10.0.0.255 is not a unicast address: it is the broadcast \
         address of 10.0.0.0/24"
    );
    assert_eq!(
        err("[[neighbor]]\nip = \"10.0.0.0\"\nmac = \"02:00:00:00:00:01\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: neighbor[0].ip: 10.0.0.0 is not a unicast address: it is the network \
         address of 10.0.0.0/24"
    );
}

#[test]
fn test_route_via() {
    assert_eq!(
        err("[[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.1.254\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: route[0].via: 10.0.1.254 is not on a subnet of dpdk0 (10.0.0.1/24, 10.0.0.100/32)"
    );
    assert_eq!(
        err("[[route]]\ndst = \"0.0.0.0/0\"\nvia = \"10.0.0.254/24\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: route[0].via: \"10.0.0.254/24\" is not an IPv4 address"
    );
}

#[test]
fn test_neighbor() {
    const N: &str = "[[neighbor]]\nip = \"10.0.0.254\"\n";
    assert_eq!(
        err(&format!("{N}mac = \"02:00:00:00:fe\"\nport = \"dpdk0\"\n")),
        "rvsd.toml:8: neighbor[0].mac: \"02:00:00:00:fe\" is not a MAC address (xx:xx:xx:xx:xx:xx)"
    );
    assert_eq!(
        err(&format!(
            "{N}mac = \"ff:ff:ff:ff:ff:ff\"\nport = \"dpdk0\"\n"
        )),
        "rvsd.toml:8: neighbor[0].mac: \"ff:ff:ff:ff:ff:ff\" is not a unicast MAC address"
    );
    assert_eq!(
        err(&format!(
            "{N}mac = \"00:00:00:00:00:00\"\nport = \"dpdk0\"\n"
        )),
        "rvsd.toml:8: neighbor[0].mac: \"00:00:00:00:00:00\" is not a unicast MAC address"
    );
    assert_eq!(
        err(&format!(
            "{N}mac = \"02:00:00:00:00:fe\"\nport = \"dpdk7\"\n"
        )),
        "rvsd.toml:9: neighbor[0].port: \"dpdk7\" is not a declared [[port]]"
    );
    assert_eq!(
        err("[[neighbor]]\nip = \"10.0.0\"\nmac = \"02:00:00:00:00:fe\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: neighbor[0].ip: \"10.0.0\" is not an IPv4 address"
    );
    assert_eq!(
        err(&format!(
            "{N}mac = \"02:00:00:00:00:fe\"\nport = \"dpdk0\"\n{N}mac = \"02:00:00:00:00:fd\"\nport = \"dpdk0\"\n"
        )),
        "rvsd.toml:11: neighbor[1].ip: 10.0.0.254 on dpdk0 already has a static entry (neighbor[0])"
    );
}

// --- [timeouts] ---------------------------------------------------------------------------------

#[test]
fn test_timeouts_range() {
    assert_eq!(
        err("[timeouts]\ntcp = 2678401\n"),
        "rvsd.toml:7: timeouts.tcp: 2678401 is out of range 0..=2678400"
    );
    assert_eq!(
        err("[timeouts]\nudp = -1\n"),
        "rvsd.toml:7: timeouts.udp: -1 is out of range 0..=2678400"
    );
}

// --- [[service]] --------------------------------------------------------------------------------

#[test]
fn test_vip_syntax() {
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100\"\nproto = \"tcp\"\n"),
        "rvsd.toml:7: service[0].vip: \"10.0.0.100\" has no port (a.b.c.d:port; port 0 with \
         persistence for all ports)"
    );
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:http\"\nproto = \"tcp\"\n"),
        "rvsd.toml:7: service[0].vip: \"10.0.0.100:http\" is not an IPv4 address with port (a.b.c.d:port)"
    );
}

#[test]
fn test_vip_mode() {
    // No twin anywhere: a vip that is no port address can only be routed.
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.200:80\"\nproto = \"tcp\"\n"),
        "rvsd.toml:6: service[0].vip_mode: \"kernel\" (the default for 10.0.0.200, which is no \
         [[port]] address) follows the addresses of a kernel twin, but no [[port]] has one: add \
         exception = { iface = \"rvs0\" } to a port, put 10.0.0.200 in its addrs, or use \"routed\""
    );
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.200:80\"\nproto = \"tcp\"\nvip_mode = \"static\"\n"),
        "rvsd.toml:9: service[0].vip_mode: \"static\" needs 10.0.0.200 among the addrs of a \
         [[port]]; use \"kernel\" (served while a kernel twin holds it) or \"routed\" (reached by \
         a route)"
    );
    assert_eq!(
        svc_err("vip_mode = \"routed\"\n"),
        "rvsd.toml:9: service[0].vip_mode: \"routed\" never answers ARP, but 10.0.0.100 is a \
         [[port]] address, which rvs answers ARP for: remove it from addrs or use \"static\""
    );
    assert_eq!(
        svc_err("vip_mode = \"floating\"\n"),
        "rvsd.toml:9: service[0].vip_mode: unknown variant `floating`, expected one of `static`, \
         `kernel`, `routed`"
    );
    assert_eq!(
        err("[[service]]\nvip = \"224.0.0.18:80\"\nproto = \"tcp\"\n"),
        "rvsd.toml:7: service[0].vip: 224.0.0.18 is not a unicast address: it is a multicast \
         address (224.0.0.0/4)"
    );
    // With a twin, kernel is the default and accepted.
    let twin = "exception = { iface = \"rvs0\" }\n";
    assert!(Config::parse(
        &format!("{BASE}{twin}[[service]]\nvip = \"10.0.0.200:80\"\nproto = \"tcp\"\n"),
        "rvsd.toml"
    )
    .is_ok());
}

/// A second port with `exception` (line 9 onwards), after `BASE`.
fn twin_err(exception: &str) -> String {
    err(&format!(
        "[[port]]\nname = \"dpdk1\"\naddrs = [\"10.0.1.1/24\"]\n{exception}"
    ))
}

#[test]
fn test_port_exception() {
    for (exception, message) in [
        (
            "exception = { iface = \"\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"\" is not 1 to 15 bytes long (a Linux interface name)",
        ),
        (
            "exception = { iface = \"rvs-exception-00\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"rvs-exception-00\" is not 1 to 15 bytes long (a Linux interface name)",
        ),
        (
            "exception = { iface = \"..\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"..\" is not a valid interface name",
        ),
        (
            "exception = { iface = \"rvs 0\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"rvs 0\" contains ' ', which an interface name cannot (nor `/`, `:`, `,`, `=`, spaces)",
        ),
        (
            "exception = { iface = \"rvs0,mac=x\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"rvs0,mac=x\" contains ',', which an interface name cannot (nor `/`, `:`, `,`, `=`, spaces)",
        ),
        (
            "exception = { iface = \"a/b\" }\n",
            "rvsd.toml:9: port[1].exception.iface: \"a/b\" contains '/', which an interface name cannot (nor `/`, `:`, `,`, `=`, spaces)",
        ),
        (
            "exception = { iface = \"rvs1\", punt_pps = 0 }\n",
            "rvsd.toml:9: port[1].exception.punt_pps: 0 is out of range 1..=4294967295",
        ),
        (
            "exception = { iface = \"rvs1\", kind = \"kni\" }\n",
            "rvsd.toml:9: port[1].exception.kind: unknown variant `kni`, expected one of `auto`, \
             `tap`, `virtio_user`",
        ),
        (
            "exception = { iface = \"rvs1\", pps = 5 }\n",
            "rvsd.toml:9: port[1].exception.pps: unknown field `pps`, expected one of `iface`, \
             `kind`, `punt_pps`",
        ),
        (
            "exception = { kind = \"tap\" }\n",
            "rvsd.toml:9: port[1].exception: missing field `iface`",
        ),
        (
            "exception = \"rvs1\"\n",
            "rvsd.toml:9: port[1].exception: invalid type: string \"rvs1\", expected a table",
        ),
    ] {
        assert_eq!(twin_err(exception), message, "{exception}");
    }
    // One twin per name.
    assert_eq!(
        rejected(&format!(
            "{BASE}exception = {{ iface = \"rvs0\" }}\n[[port]]\nname = \"dpdk1\"\n\
             addrs = [\"10.0.1.1/24\"]\nexception = {{ iface = \"rvs0\", kind = \"tap\" }}\n"
        )),
        "rvsd.toml:10: port[1].exception.iface: \"rvs0\" is already the twin of port[0]"
    );
}

#[test]
fn test_vip_zero_port() {
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:0\"\nproto = \"tcp\"\n"),
        "rvsd.toml:7: service[0].vip: Zero port specified for non-persistent service"
    );
}

#[test]
fn test_service_duplicate() {
    assert_eq!(
        err(&format!("{SVC}{SVC}")),
        "rvsd.toml:10: service[1].vip: tcp 10.0.0.100:80 is already defined by service[0]"
    );
    // The same vip with the other protocol is another service.
    let udp = SVC.replace("tcp", "udp");
    assert!(Config::parse(&format!("{BASE}{SVC}{udp}"), "rvsd.toml").is_ok());
}

#[test]
fn test_sched_unknown() {
    assert_eq!(
        svc_err("sched = \"wrrr\"\n"),
        "rvsd.toml:9: service[0].sched: \"wrrr\" is not a scheduler (rr, wrr, lc, wlc, lblc, \
         lblcr, dh, sh, sed, nq, ch, mh)"
    );
}

#[test]
fn test_persistence() {
    assert_eq!(
        svc_err("persistence = 2678401\n"),
        "rvsd.toml:9: service[0].persistence: 2678401 is out of range 0..=2678400"
    );
}

#[test]
fn test_netmask() {
    assert_eq!(
        svc_err("persistence = 360\nnetmask = \"/24\"\n"),
        "rvsd.toml:10: service[0].netmask: \"/24\" is not a netmask (a.b.c.d)"
    );
}

#[test]
fn test_sched_flags() {
    assert_eq!(
        svc_err("sched = \"wrr\"\nsched_flags = [\"sh-port\"]\n"),
        "rvsd.toml:10: service[0].sched_flags[0]: \"sh-port\" needs sched = \"sh\""
    );
    assert_eq!(
        svc_err("sched = \"sh\"\nsched_flags = [\"sh-port\", \"mh-fallback\"]\n"),
        "rvsd.toml:10: service[0].sched_flags[1]: \"mh-fallback\" needs sched = \"mh\""
    );
    assert_eq!(
        svc_err("sched = \"sh\"\nsched_flags = [\"sh-port\", \"sh-port\"]\n"),
        "rvsd.toml:10: service[0].sched_flags[1]: \"sh-port\" is listed twice"
    );
}

#[test]
fn test_sloppy() {
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:53\"\nproto = \"udp\"\nsloppy = true\n"),
        "rvsd.toml:9: service[0].sloppy: sloppy only applies to proto = \"tcp\": every UDP datagram is scheduled anyway"
    );
    assert_eq!(
        svc_err("sloppy = 1\n"),
        "rvsd.toml:9: service[0].sloppy: invalid type: integer `1`, expected a boolean"
    );
}

#[test]
fn test_ch_table_size() {
    assert_eq!(
        svc_err("sched = \"ch\"\nch_table_size = 65536\n"),
        "rvsd.toml:10: service[0].ch_table_size: 65536 is not a prime"
    );
    assert_eq!(
        svc_err("sched = \"ch\"\nch_table_size = 4294967291\n"),
        "rvsd.toml:10: service[0].ch_table_size: 4294967291 is out of range 2..=16777213"
    );
    assert_eq!(
        svc_err("sched = \"mh\"\nch_table_size = 65537\n"),
        "rvsd.toml:10: service[0].ch_table_size: ch_table_size only applies to sched = \"ch\""
    );
    assert_eq!(
        svc_err(
            "sched = \"ch\"\nch_table_size = 2\n\
             [[service.real]]\naddr = \"10.0.0.11\"\n\
             [[service.real]]\naddr = \"10.0.0.12\"\n\
             [[service.real]]\naddr = \"10.0.0.13\"\n"
        ),
        "rvsd.toml:10: service[0].ch_table_size: 2 slots cannot hold the 3 reals of the service"
    );
}

#[test]
fn test_laddrs() {
    assert_eq!(
        svc_err("laddrs = [\"10.0.0.100\", \"10.0.0.50\"]\n"),
        "rvsd.toml:9: service[0].laddrs[1]: 10.0.0.50 is not an address of any [[port]]; the \
         balancer must own its local addresses"
    );
    assert_eq!(
        svc_err("laddrs = [\"10.0.0.1\", \"10.0.0.1\"]\n"),
        "rvsd.toml:9: service[0].laddrs[1]: 10.0.0.1 is listed twice"
    );
    assert_eq!(
        svc_err("laddrs = [\"10.0.0.1/24\"]\n"),
        "rvsd.toml:9: service[0].laddrs[0]: \"10.0.0.1/24\" is not an IPv4 address"
    );
}

// --- [[service.real]] ---------------------------------------------------------------------------

/// `SVC` with a real at lines 9-10 (`[[service.real]]`, `addr`) and `rest` from line 11.
fn real_err(addr: &str, rest: &str) -> String {
    svc_err(&format!("[[service.real]]\naddr = \"{addr}\"\n{rest}"))
}

#[test]
fn test_real_weight() {
    // The issue's example, at its line.
    assert_eq!(
        svc_err(
            "[[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"nat\"\n\
             [[service.real]]\naddr = \"10.0.0.12:80\"\nweight = 2147483648\n"
        ),
        "rvsd.toml:14: service[0].real[1].weight: 2147483648 is out of range 0..=2147483647"
    );
    assert_eq!(
        real_err("10.0.0.11", "weight = -1\n"),
        "rvsd.toml:11: service[0].real[0].weight: -1 is out of range 0..=2147483647"
    );
}

/// `tunnel = {...}` with ipvsadm 1.31's rules (`tunnel_types_v_options`).
#[test]
fn test_real_tunnel() {
    let tun = |t: &str| real_err("10.0.0.11", &format!("mode = \"tun\"\ntunnel = {t}\n"));
    assert_eq!(
        real_err("10.0.0.11", "tunnel = { type = \"gre\" }\n"),
        "rvsd.toml:11: service[0].real[0].tunnel: tunnel needs mode = \"tun\", not \"dr\""
    );
    assert_eq!(
        tun("{ type = \"gue\" }"),
        "rvsd.toml:12: service[0].real[0].tunnel: type = \"gue\" needs a port (the GUE \
         destination port)"
    );
    assert_eq!(
        tun("{ type = \"gue\", port = 0 }"),
        "rvsd.toml:12: service[0].real[0].tunnel.port: 0 is out of range 1..=65535"
    );
    assert_eq!(
        tun("{ type = \"gre\", port = 6080 }"),
        "rvsd.toml:12: service[0].real[0].tunnel.port: port is only for type = \"gue\", not \"gre\""
    );
    assert_eq!(
        tun("{ type = \"ipip\", csum = \"none\" }"),
        "rvsd.toml:12: service[0].real[0].tunnel.csum: csum \"none\" needs type = \"gue\" or \"gre\""
    );
    assert_eq!(
        tun("{ type = \"gre\", csum = \"remcsum\" }"),
        "rvsd.toml:12: service[0].real[0].tunnel.csum: csum \"remcsum\" needs type = \"gue\""
    );
    assert!(tun("{ type = \"vxlan\" }").starts_with(
        "rvsd.toml:12: service[0].real[0].tunnel.type: unknown variant `vxlan`, expected one of \
         `ipip`, `gue`, `gre`"
    ));
    assert!(tun("{ type = \"gue\", port = 6080, csum = \"yes\" }")
        .contains("unknown variant `yes`, expected one of `none`, `csum`, `remcsum`"));
}

#[test]
fn test_real_thresholds() {
    assert_eq!(
        real_err("10.0.0.11", "u_threshold = 2147483648\n"),
        "rvsd.toml:11: service[0].real[0].u_threshold: 2147483648 is out of range 0..=2147483647"
    );
    assert_eq!(
        real_err("10.0.0.11", "l_threshold = -5\n"),
        "rvsd.toml:11: service[0].real[0].l_threshold: -5 is out of range 0..=2147483647"
    );
    assert_eq!(
        real_err("10.0.0.11", "u_threshold = 100\nl_threshold = 200\n"),
        "rvsd.toml:12: service[0].real[0].l_threshold: 200 is higher than u_threshold 100"
    );
    assert_eq!(
        real_err("10.0.0.11", "l_threshold = 10\n"),
        "rvsd.toml:11: service[0].real[0].l_threshold: 10 is higher than u_threshold 0"
    );
}

#[test]
fn test_real_addr() {
    assert_eq!(
        real_err("10.0.0.11:80:80", ""),
        "rvsd.toml:10: service[0].real[0].addr: \"10.0.0.11:80:80\" is not an IPv4 address with port (a.b.c.d:port)"
    );
    assert_eq!(
        real_err("0.0.0.0", ""),
        "rvsd.toml:10: service[0].real[0].addr: 0.0.0.0 is not a unicast address: 0.0.0.0/8 \
         means \"this network\""
    );
    // As ip_vs_new_dest: a real server is one unicast host; 127/8 would go on the wire.
    for (addr, why) in [
        ("0.1.2.3", "0.0.0.0/8 means \"this network\""),
        ("255.255.255.255", "it is the limited broadcast address"),
        ("239.1.2.3", "it is a multicast address (224.0.0.0/4)"),
        ("240.0.0.1", "240.0.0.0/4 is reserved"),
        ("10.0.0.0", "it is the network address of 10.0.0.0/24"),
        ("10.0.0.255", "it is the broadcast address of 10.0.0.0/24"),
    ] {
        assert_eq!(
            real_err(addr, "mode = \"nat\"\n"),
            format!(
                "rvsd.toml:10: service[0].real[0].addr: {addr} is not a unicast address: {why}"
            )
        );
    }
    assert_eq!(
        real_err("127.0.0.1", "mode = \"nat\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: 127.0.0.1 is a loopback address (127.0.0.0/8), \
         which must never be sent on the wire"
    );
    assert_eq!(
        real_err("10.0.0.1:8080", "mode = \"nat\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: 10.0.0.1 is an address of the balancer itself"
    );
}

#[test]
fn test_real_duplicate() {
    assert_eq!(
        svc_err(
            "[[service.real]]\naddr = \"10.0.0.11\"\n\
             [[service.real]]\naddr = \"10.0.0.11:80\"\n"
        ),
        "rvsd.toml:12: service[0].real[1].addr: 10.0.0.11:80 is already a real of this service (real[0])"
    );
}

#[test]
fn test_real_reachable() {
    assert_eq!(
        real_err("192.168.1.11", "mode = \"dr\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: dr needs 192.168.1.11 on the link, but no [[port]] \
         subnet contains it"
    );
    assert_eq!(
        real_err("192.168.1.11:8080", "mode = \"nat\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: no route to 192.168.1.11: no [[port]] subnet or \
         [[route]] contains it"
    );
    // A route makes it reachable for nat, never for dr.
    let route = "[[route]]\ndst = \"192.168.1.0/24\"\nvia = \"10.0.0.254\"\nport = \"dpdk0\"\n";
    let nat = "[[service.real]]\naddr = \"192.168.1.11:8080\"\nmode = \"nat\"\n";
    assert!(Config::parse(&format!("{BASE}{route}{SVC}{nat}"), "rvsd.toml").is_ok());
    assert_eq!(
        err(&format!(
            "{route}{SVC}[[service.real]]\naddr = \"192.168.1.11\"\nmode = \"dr\"\n"
        )),
        "rvsd.toml:14: service[0].real[0].addr: dr needs 192.168.1.11 on the link, but no \
         [[port]] subnet contains it"
    );
}

#[test]
fn test_real_port_dr_tun() {
    assert_eq!(
        real_err("10.0.0.11:8080", "mode = \"dr\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: port 8080 differs from the vip port 80; dr keeps \
         the destination port (write 10.0.0.11:80 or 10.0.0.11)"
    );
    assert_eq!(
        real_err("10.0.0.11:8080", "mode = \"tun\"\n"),
        "rvsd.toml:10: service[0].real[0].addr: port 8080 differs from the vip port 80; tun keeps \
         the destination port (write 10.0.0.11:80 or 10.0.0.11)"
    );
    // Leaving the port out is how mode defaults to dr without tripping on it.
    let c = Config::parse(
        &format!("{BASE}{SVC}[[service.real]]\naddr = \"10.0.0.11\"\n"),
        "rvsd.toml",
    )
    .unwrap();
    assert_eq!(c.services[0].reals[0].mode, conf::Mode::Dr);
    assert_eq!(c.services[0].reals[0].addr, "10.0.0.11:80".parse().unwrap());
}

#[test]
fn test_real_port_on_zero_port_service() {
    assert_eq!(
        err(
            "[[service]]\nvip = \"10.0.0.100:0\"\nproto = \"tcp\"\npersistence = 360\n\
             [[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"nat\"\n"
        ),
        "rvsd.toml:11: service[0].real[0].addr: port 8080 on a port-zero service, whose \
         connections keep their destination port (write 10.0.0.11)"
    );
}

// --- proxy_protocol and toa ---------------------------------------------------------------------

/// `SVC` with one laddr (line 9), `extra` from line 10, then a real of `mode`.
fn fnat_err(extra: &str, mode: &str) -> String {
    svc_err(&format!(
        "laddrs = [\"10.0.0.1\"]\n{extra}[[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"{mode}\"\n"
    ))
}

#[test]
fn test_proxy_protocol() {
    assert_eq!(
        fnat_err("proxy_protocol = \"v1\"\n", "nat"),
        "rvsd.toml:10: service[0].proxy_protocol: proxy_protocol v1 needs fullnat reals, but \
         real[0] is nat"
    );
    assert_eq!(
        err(
            "[[service]]\nvip = \"10.0.0.100:53\"\nproto = \"udp\"\nladdrs = [\"10.0.0.1\"]\n\
             proxy_protocol = \"v2\"\n"
        ),
        "rvsd.toml:10: service[0].proxy_protocol: proxy_protocol needs proto = \"tcp\", not \"udp\""
    );
    // The real is named by its index in the file, whatever comes before it.
    assert_eq!(
        svc_err(
            "laddrs = [\"10.0.0.1\"]\nproxy_protocol = \"v2\"\n\
             [[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"fullnat\"\nweight = -1\n\
             [[service.real]]\naddr = \"10.0.0.12\"\n"
        ),
        "rvsd.toml:10: service[0].proxy_protocol: proxy_protocol v2 needs fullnat reals, but \
         real[1] is dr\n\
         rvsd.toml:14: service[0].real[0].weight: -1 is out of range 0..=2147483647"
    );
    assert!(Config::parse(
        &format!(
            "{BASE}{SVC}laddrs = [\"10.0.0.1\"]\nproxy_protocol = \"v1\"\n\
             [[service.real]]\naddr = \"10.0.0.11:8080\"\nmode = \"fullnat\"\n"
        ),
        "rvsd.toml"
    )
    .is_ok());
}

#[test]
fn test_toa() {
    assert_eq!(
        fnat_err("toa = true\n", "nat"),
        "rvsd.toml:10: service[0].toa: toa needs fullnat reals, but real[0] is nat"
    );
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:53\"\nproto = \"udp\"\ntoa = true\n"),
        "rvsd.toml:9: service[0].toa: toa needs proto = \"tcp\", not \"udp\""
    );
    assert_eq!(
        fnat_err("proxy_protocol = \"v2\"\ntoa = true\n", "fullnat"),
        "rvsd.toml:11: service[0].toa: toa and proxy_protocol exclude each other: the real server \
         learns the client address from one of them"
    );
    assert_eq!(
        fnat_err("toa = false\ntoa_placement = \"syn\"\n", "fullnat"),
        "rvsd.toml:11: service[0].toa_placement: toa_placement needs toa, which is off for this service"
    );
    assert_eq!(
        fnat_err("proxy_protocol = \"v2\"\ntoa_placement = \"syn\"\n", "fullnat"),
        "rvsd.toml:11: service[0].toa_placement: toa_placement needs toa, which is off for this service"
    );
}

// --- reporting ----------------------------------------------------------------------------------

#[test]
fn test_all_problems_in_line_order() {
    let text = format!(
        "[timeouts]\nudp = 9999999\n{BASE}{SVC}sched = \"fifo\"\n\
         [[service.real]]\naddr = \"10.0.0.11\"\nweight = 2147483648\n"
    );
    assert_eq!(
        rejected(&text),
        "rvsd.toml:2: timeouts.udp: 9999999 is out of range 0..=2678400\n\
         rvsd.toml:11: service[0].sched: \"fifo\" is not a scheduler (rr, wrr, lc, wlc, lblc, \
         lblcr, dh, sh, sed, nq, ch, mh)\n\
         rvsd.toml:14: service[0].real[0].weight: 2147483648 is out of range 0..=2147483647"
    );
    let e = Config::parse(&text, "rvsd.toml").unwrap_err();
    assert_eq!(e.file(), "rvsd.toml");
    let p = &e.problems()[2];
    assert_eq!(p.line, Some(14));
    assert_eq!(p.field, "service[0].real[0].weight");
    assert_eq!(p.message, "2147483648 is out of range 0..=2147483647");
}

#[test]
fn test_inline_tables() {
    assert_eq!(
        err("[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\nreal = [{ addr = \"10.0.0.11\", weight = 2147483648 }]\n"),
        "rvsd.toml:9: service[0].real[0].weight: 2147483648 is out of range 0..=2147483647"
    );
}

#[test]
fn test_load_missing_file() {
    let e = Config::load("/nonexistent/rvsd.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/rvsd.toml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn test_load_names_the_file_as_given() {
    let dir = std::env::temp_dir().join(format!("conf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rvsd.toml");
    std::fs::write(&path, format!("{BASE}[dataplane]\nburst = 0\n")).unwrap();
    let e = Config::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:7: dataplane.burst: 0 is out of range 1..=512",
            path.display()
        )
    );
}

// --- echoed values ------------------------------------------------------------------------------

/// A huge bad value comes back cut to 64 characters, whether our message or serde's echoes
/// it, and so does a huge unknown key in the field path.
#[test]
fn test_long_values_are_cut() {
    let long = "9".repeat(1 << 20);
    let cut = format!("{}…", "9".repeat(64));
    assert_eq!(
        real_err(&long, ""),
        format!(
            "rvsd.toml:10: service[0].real[0].addr: \"{cut}\" is not an IPv4 address with port \
             (a.b.c.d:port)"
        )
    );
    assert_eq!(
        real_err("10.0.0.11", &format!("mode = \"{long}\"\n")),
        format!(
            "rvsd.toml:11: service[0].real[0].mode: unknown variant `{cut}`, expected one of \
             `nat`, `dr`, `tun`, `fullnat`"
        )
    );
    let key = "k".repeat(1 << 20);
    let e = err(&format!("[control]\n{key} = 1\n"));
    assert!(
        e.starts_with(&format!(
            "rvsd.toml:7: control.{}…: unknown field `{}…`, expected",
            "k".repeat(56),
            "k".repeat(64)
        )),
        "{}",
        &e[..200]
    );
    assert!(e.len() < 400, "{}", e.len());
}

const CHECKED: &str =
    "[[service.real]]\naddr = \"10.0.0.11\"\nmode = \"nat\"\n[[service.real.check]]\n";

#[test]
fn test_health_errors() {
    let check = |rest: &str| svc_err(&format!("{CHECKED}{rest}"));
    assert_eq!(
        check("type = \"http\"\n"),
        "rvsd.toml:12: service[0].real[0].check[0].url: an http/https check needs url = [{ path = \"/\" }] (keepalived's url block)"
    );
    assert_eq!(
        check("type = \"tcp\"\nurl = [{ path = \"/\" }]\n"),
        "rvsd.toml:14: service[0].real[0].check[0].url: url only applies to type \"http\" or \"https\""
    );
    assert_eq!(
        check("type = \"http\"\nurl = [{ path = \"/\", status_code = \"200-1000\" }]\n"),
        "rvsd.toml:14: service[0].real[0].check[0].url[0].status_code: 1000 is not an HTTP status code (100..=599)"
    );
    assert_eq!(
        check("type = \"http\"\nurl = [{ path = \"/\", digest = \"abc\" }]\n"),
        "rvsd.toml:14: service[0].real[0].check[0].url[0].digest: \"abc\" is not hex bytes (two hex digits per byte)"
    );
    assert_eq!(
        check("type = \"tcp\"\ndelay_before_retry = -1\n"),
        "rvsd.toml:14: service[0].real[0].check[0].delay_before_retry: -1 seconds is out of range (0 up to 86400)"
    );
    assert_eq!(
        check("type = \"tcp\"\nconnect_timeout = 0\n"),
        "rvsd.toml:14: service[0].real[0].check[0].connect_timeout: 0 seconds is out of range (more than 0 up to 86400)"
    );
    assert_eq!(
        check("type = \"misc\"\n"),
        "rvsd.toml:12: service[0].real[0].check[0].path: a misc check needs path, the command to run"
    );
    assert_eq!(
        check("type = \"misc\"\npath = \"/bin/true\"\nconnect_port = 80\n"),
        "rvsd.toml:15: service[0].real[0].check[0].connect_port: connect_port only applies to type \"tcp\", \"http\", \"https\" or \"udp\""
    );
    assert_eq!(
        check("type = \"smtp\"\n"),
        "rvsd.toml:13: service[0].real[0].check[0].type: unknown variant `smtp`, expected one of `tcp`, `http`, `https`, `udp`, `misc`"
    );
    assert_eq!(
        svc_err("quorum = 2\nhysteresis = 3\n"),
        "rvsd.toml:10: service[0].hysteresis: 3 is larger than quorum 2"
    );
    assert_eq!(
        svc_err("sorry_server = \"172.16.0.1:80\"\n"),
        "rvsd.toml:9: service[0].sorry_server: no route to 172.16.0.1: no [[port]] subnet or [[route]] contains it"
    );
    assert_eq!(
        svc_err("sorry_server_inhibit = true\n"),
        "rvsd.toml:9: service[0].sorry_server_inhibit: sorry_server_inhibit needs a sorry_server"
    );
}

// --- [sync] -------------------------------------------------------------------------------------

#[test]
fn test_sync_unknown_key() {
    assert_eq!(
        err("[sync]\nrole = \"master\"\ninterface = \"rvs0\"\nmcast_ttl = 2\n"),
        "rvsd.toml:9: sync.mcast_ttl: unknown field `mcast_ttl`, expected one of `role`, \
         `interface`, `syncid`, `maxlen`, `group`, `port`, `ttl`, `sync_threshold`, \
         `sync_period`, `backup_only`"
    );
}

#[test]
fn test_sync_required_keys_and_role() {
    assert_eq!(
        err("[sync]\nrole = \"master\"\n"),
        "rvsd.toml:6: sync: missing field `interface`"
    );
    assert_eq!(
        err("[sync]\ninterface = \"rvs0\"\n"),
        "rvsd.toml:6: sync: missing field `role`"
    );
    assert_eq!(
        err("[sync]\nrole = \"auto\"\ninterface = \"rvs0\"\n"),
        "rvsd.toml:7: sync.role: unknown variant `auto`, expected one of `master`, `backup`, \
         `both`"
    );
}

#[test]
fn test_sync_values() {
    let sync = |rest: &str| err(&format!("[sync]\nrole = \"both\"\n{rest}"));
    assert_eq!(
        sync("interface = \"rvs-sync-link-0001\"\n"),
        "rvsd.toml:8: sync.interface: \"rvs-sync-link-0001\" is not 1 to 15 bytes long (a Linux \
         interface name)"
    );
    assert_eq!(
        sync("interface = \"rvs0:1\"\n"),
        "rvsd.toml:8: sync.interface: \"rvs0:1\" contains ':', which an interface name cannot \
         (nor `/`, `:`, `,`, `=`, spaces)"
    );
    assert_eq!(
        sync("interface = \"rvs1\"\ngroup = \"10.0.0.81\"\nport = 0\nttl = 256\nsyncid = -1\nmaxlen = 65508\n"),
        "rvsd.toml:9: sync.group: 10.0.0.81 is not an IPv4 multicast address (224.0.0.0/4)\n\
         rvsd.toml:10: sync.port: 0 is out of range 1..=65535\n\
         rvsd.toml:11: sync.ttl: 256 is out of range 1..=255\n\
         rvsd.toml:12: sync.syncid: -1 is out of range 0..=255\n\
         rvsd.toml:13: sync.maxlen: 65508 is out of range 1..=65507"
    );
    assert_eq!(
        sync("interface = \"rvs1\"\ngroup = \"224.0.0.300\"\nmaxlen = 0\n"),
        "rvsd.toml:9: sync.group: \"224.0.0.300\" is not an IPv4 address\n\
         rvsd.toml:10: sync.maxlen: 0 is out of range 1..=65507"
    );
}

#[test]
fn test_sync_threshold_below_period() {
    let sync = |rest: &str| {
        err(&format!(
            "[sync]\nrole = \"master\"\ninterface = \"rvs1\"\n{rest}"
        ))
    };
    assert_eq!(
        sync("sync_threshold = 50\n"),
        "rvsd.toml:9: sync.sync_threshold: 50 is not below sync_period 50: a connection is \
         synced when its packet count modulo the period equals the threshold (sync_period = 0 \
         syncs once, at the threshold)"
    );
    assert_eq!(
        sync("sync_threshold = 5\nsync_period = 4\n"),
        "rvsd.toml:9: sync.sync_threshold: 5 is not below sync_period 4: a connection is \
         synced when its packet count modulo the period equals the threshold (sync_period = 0 \
         syncs once, at the threshold)"
    );
    assert_eq!(
        sync("sync_threshold = -1\nsync_period = 2147483648\n"),
        "rvsd.toml:9: sync.sync_threshold: -1 is out of range 0..=2147483647\n\
         rvsd.toml:10: sync.sync_period: 2147483648 is out of range 0..=2147483647"
    );
}

#[test]
fn test_ipv6_port_addresses() {
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"2001:db8::1/129\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: \"2001:db8::1/129\": prefix length 129 is out of range 0..=128"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"2001:db8::/64\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: 2001:db8:: is the subnet-router anycast address of \
         2001:db8::/64, not a host address"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"ff02::1/64\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: ff02::1 is not a unicast address: it is a multicast \
         address (ff00::/8)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"::ffff:10.0.0.7/128\"]\n"),
        "rvsd.toml:8: port[1].addrs[0]: ::ffff:10.0.0.7 is not a unicast address: it is an \
         IPv4-mapped address (::ffff:0:0/96)"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"2001:db8::1/64\", \"2001:db8::1/80\"]\n"),
        "rvsd.toml:8: port[1].addrs[1]: 2001:db8::1 is already owned by port[1]"
    );
}

#[test]
fn test_ipv6_routes_and_neighbors() {
    assert_eq!(
        err("[[route]]\ndst = \"2001:db8::1/64\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: route[0].dst: \"2001:db8::1/64\" has host bits set; the network is \
         2001:db8::/64"
    );
    assert_eq!(
        err("[[route]]\ndst = \"::/0\"\nvia = \"2001:db8::fe\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: route[0].via: 2001:db8::fe is neither link-local (fe80::/10) nor on a \
         prefix of dpdk0 (it has no IPv6 address)"
    );
    assert_eq!(
        err("[[route]]\ndst = \"::/0\"\nvia = \"ff02::2\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: route[0].via: ff02::2 is not a unicast address: it is a multicast \
         address (ff00::/8)"
    );
    assert_eq!(
        err("[[route]]\ndst = \"::/0\"\nport = \"dpdk0\"\n[[route]]\ndst = \"::/0\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:10: route[1].dst: ::/0 is already routed by route[0]"
    );
    assert_eq!(
        err("[[neighbor]]\nip = \"fe80::1\"\nmac = \"01:00:00:00:00:01\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:8: neighbor[0].mac: \"01:00:00:00:00:01\" is not a unicast MAC address"
    );
    assert_eq!(
        err("[[neighbor]]\nip = \"::1\"\nmac = \"02:00:00:00:00:01\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:7: neighbor[0].ip: ::1 is the loopback address ::1, which must never be sent \
         on the wire"
    );
    assert_eq!(
        err("[[port]]\nname = \"dpdk1\"\naddrs = [\"2001:db8::1/64\"]\n[[neighbor]]\nip = \"2001:db8::1\"\nmac = \"02:00:00:00:00:01\"\nport = \"dpdk1\"\n"),
        "rvsd.toml:10: neighbor[0].ip: 2001:db8::1 is owned by port[1]"
    );
    assert_eq!(
        err("[[neighbor]]\nip = \"fe80::1\"\nmac = \"02:00:00:00:00:01\"\nport = \"dpdk0\"\n[[neighbor]]\nip = \"fe80::1\"\nmac = \"02:00:00:00:00:02\"\nport = \"dpdk0\"\n"),
        "rvsd.toml:11: neighbor[1].ip: fe80::1 on dpdk0 already has a static entry (neighbor[0])"
    );
}

// --- IPv6 services (issue 14) -------------------------------------------------------------------

/// A dual-stack port (lines 1-5) with a v6 route (lines 6-9), then a service from line 10.
const BASE6: &str = r#"[eal]
args = ["--no-huge"]
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "2001:db8::1/64", "2001:db8::100/128"]
[[route]]
dst = "2001:db8:2::/48"
via = "fe80::1"
port = "dpdk0"
"#;

/// `BASE6` followed by `rest` from line 10.
fn err6(rest: &str) -> String {
    rejected(&format!("{BASE6}{rest}"))
}

/// `BASE6`, a TCP service on `vip` (lines 10-12), then `rest` from line 13.
fn svc6_err(vip: &str, rest: &str) -> String {
    err6(&format!(
        "[[service]]\nvip = \"{vip}\"\nproto = \"tcp\"\n{rest}"
    ))
}

#[test]
fn test_ipv6_vip_syntax_and_host() {
    assert_eq!(
        svc6_err("[2001:db8::100]", ""),
        "rvsd.toml:11: service[0].vip: \"[2001:db8::100]\" has no port ([2001:db8::1]:port; port 0 with persistence for all ports)"
    );
    assert_eq!(
        svc6_err("2001:db8::100", ""),
        "rvsd.toml:11: service[0].vip: \"2001:db8::100\" has no port ([2001:db8::1]:port; port 0 with persistence for all ports)"
    );
    assert_eq!(
        svc6_err("[2001:db8::100]:http", ""),
        "rvsd.toml:11: service[0].vip: \"[2001:db8::100]:http\" is not an IPv6 address with port ([2001:db8::1]:port)"
    );
    assert_eq!(
        svc6_err("[ff02::1]:80", ""),
        "rvsd.toml:11: service[0].vip: ff02::1 is not a unicast address: it is a multicast address (ff00::/8)"
    );
    assert_eq!(
        svc6_err("[::1]:80", ""),
        "rvsd.toml:11: service[0].vip: ::1 is the loopback address ::1, which must never be sent on the wire"
    );
    assert_eq!(
        svc6_err("[::ffff:10.0.0.100]:80", ""),
        "rvsd.toml:11: service[0].vip: ::ffff:10.0.0.100 is not a unicast address: it is an IPv4-mapped address (::ffff:0:0/96)"
    );
}

#[test]
fn test_ipv6_vip_mode_static_needs_a_port_address() {
    assert_eq!(
        svc6_err("[2001:db8::200]:80", "vip_mode = \"static\"\n"),
        "rvsd.toml:13: service[0].vip_mode: \"static\" needs 2001:db8::200 among the addrs of a [[port]]; use \"kernel\" (served while a kernel twin holds it) or \"routed\" (reached by a route)"
    );
    assert_eq!(
        svc6_err("[2001:db8::100]:80", "vip_mode = \"routed\"\n"),
        "rvsd.toml:13: service[0].vip_mode: \"routed\" never answers ARP, but 2001:db8::100 is a [[port]] address, which rvs answers ARP for: remove it from addrs or use \"static\""
    );
}

#[test]
fn test_ipv6_netmask_is_a_prefix_length() {
    let persistent = |mask: &str| {
        svc6_err(
            "[2001:db8::100]:80",
            &format!("persistence = 60\nnetmask = \"{mask}\"\n"),
        )
    };
    for mask in ["255.255.255.0", "0", "129", "+64", "/64", "ffff:ffff::"] {
        assert_eq!(
            persistent(mask),
            format!("rvsd.toml:14: service[0].netmask: \"{mask}\" is not a prefix length 1..=128 (an IPv6 service's netmask, as ipvsadm -M 64)"),
        );
    }
    // And an IPv4 service takes no prefix length, as before.
    assert_eq!(
        svc6_err("10.0.0.100:80", "persistence = 60\nnetmask = \"24\"\n"),
        "rvsd.toml:14: service[0].netmask: \"24\" is not a netmask (a.b.c.d)"
    );
}

#[test]
fn test_ipv6_reals() {
    let real = |vip: &str, addr: &str, mode: &str| {
        svc6_err(
            vip,
            &format!("[[service.real]]\naddr = \"{addr}\"\nmode = \"{mode}\"\n"),
        )
    };
    assert_eq!(
        real("[2001:db8::100]:80", "[2001:db8::11]:8080:", "nat"),
        "rvsd.toml:14: service[0].real[0].addr: \"[2001:db8::11]:8080:\" is not an IPv6 address with port ([2001:db8::1]:port)"
    );
    assert_eq!(
        real("[2001:db8::100]:80", "2001:db8::1", "nat"),
        "rvsd.toml:14: service[0].real[0].addr: 2001:db8::1 is an address of the balancer itself"
    );
    assert_eq!(
        real("[2001:db8::100]:80", "[ff02::1]:80", "nat"),
        "rvsd.toml:14: service[0].real[0].addr: ff02::1 is not a unicast address: it is a multicast address (ff00::/8)"
    );
    assert_eq!(
        real("[2001:db8::100]:80", "2001:db8:2::11", "dr"),
        "rvsd.toml:14: service[0].real[0].addr: dr needs 2001:db8:2::11 on the link, but no [[port]] subnet contains it"
    );
    assert_eq!(
        real("[2001:db8::100]:80", "2001:db8:3::11", "nat"),
        "rvsd.toml:14: service[0].real[0].addr: no route to 2001:db8:3::11: no [[port]] subnet or [[route]] contains it"
    );
    assert_eq!(
        real("[2001:db8::100]:80", "[2001:db8::11]:8080", "tun"),
        "rvsd.toml:14: service[0].real[0].addr: port 8080 differs from the vip port 80; tun keeps the destination port (write [2001:db8::11]:80 or 2001:db8::11)"
    );
    // Families: 4→6 is refused whatever the mode; an IPv6 service reaches IPv4 reals only
    // through fullnat (NAT64).
    for mode in ["nat", "dr", "tun", "fullnat"] {
        assert_eq!(
            real("10.0.0.100:80", "2001:db8::11", mode),
            "rvsd.toml:14: service[0].real[0].addr: 2001:db8::11 is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 reals (4→6 is not supported)"
        );
    }
    for mode in ["nat", "dr", "tun"] {
        assert_eq!(
            real("[2001:db8::100]:80", "10.0.0.11", mode),
            format!("rvsd.toml:14: service[0].real[0].addr: 10.0.0.11 is IPv4, but the vip is IPv6: {mode} keeps the client's packet, so its reals are IPv6 (only fullnat reaches IPv4 reals, NAT64)")
        );
    }
}

#[test]
fn test_ipv6_laddrs_and_nat64_families() {
    let svc = |laddrs: &str, real: &str| {
        svc6_err(
            "[2001:db8::100]:80",
            &format!(
                "laddrs = [{laddrs}]\n[[service.real]]\naddr = \"{real}\"\nmode = \"fullnat\"\n"
            ),
        )
    };
    assert_eq!(
        svc("\"2001:db8::1\"", "10.0.0.11"),
        "rvsd.toml:15: service[0].real[0].addr: 10.0.0.11 is IPv4, but the local addresses are IPv6 (2001:db8::1): a fullnat real is reached from a local address of its family"
    );
    assert_eq!(
        svc("\"10.0.0.1\"", "2001:db8::11"),
        "rvsd.toml:15: service[0].real[0].addr: 2001:db8::11 is IPv6, but the local addresses are IPv4 (10.0.0.1): a fullnat real is reached from a local address of its family"
    );
    assert_eq!(
        svc("\"10.0.0.1\", \"2001:db8::1\"", "10.0.0.11"),
        "rvsd.toml:13: service[0].laddrs[1]: 2001:db8::1 is IPv6, but laddrs[0] 10.0.0.1 is IPv4: the local addresses of a service are of one family"
    );
    assert_eq!(
        svc("\"2001:db8::5\"", "2001:db8::11"),
        "rvsd.toml:13: service[0].laddrs[0]: 2001:db8::5 is not an address of any [[port]]; the balancer must own its local addresses"
    );
    assert_eq!(
        svc("\"2001:db8::1\", \"2001:db8::1\"", "2001:db8::11"),
        "rvsd.toml:13: service[0].laddrs[1]: 2001:db8::1 is listed twice"
    );
    assert_eq!(
        svc("\"2001:db8::1:\"", "2001:db8::11"),
        "rvsd.toml:13: service[0].laddrs[0]: \"2001:db8::1:\" is not an IPv6 address"
    );
    assert_eq!(
        svc6_err(
            "10.0.0.100:80",
            "laddrs = [\"2001:db8::1\"]\n"
        ),
        "rvsd.toml:13: service[0].laddrs[0]: 2001:db8::1 is IPv6, but the vip is IPv4: rvs does not translate IPv4 clients to IPv6 (4→6 is not supported)"
    );
}

#[test]
fn test_ipv6_duplicates() {
    assert_eq!(
        err6(
            "[[service]]\nvip = \"[2001:db8::100]:80\"\nproto = \"tcp\"\n\
             [[service]]\nvip = \"[2001:db8:0::100]:80\"\nproto = \"tcp\"\n"
        ),
        "rvsd.toml:14: service[1].vip: tcp [2001:db8::100]:80 is already defined by service[0]"
    );
    assert_eq!(
        svc6_err(
            "[2001:db8::100]:80",
            "[[service.real]]\naddr = \"2001:db8::11\"\nmode = \"nat\"\n\
             [[service.real]]\naddr = \"[2001:db8::11]:80\"\nmode = \"nat\"\n"
        ),
        "rvsd.toml:17: service[0].real[1].addr: [2001:db8::11]:80 is already a real of this service (real[0])"
    );
}

#[test]
fn test_ipv6_health_check_and_sorry_server_families() {
    let real = "[[service.real]]\naddr = \"[2001:db8::11]:80\"\nmode = \"nat\"\n";
    assert_eq!(
        svc6_err(
            "[2001:db8::100]:80",
            &format!("{real}[[service.real.check]]\ntype = \"tcp\"\nbindto = \"10.0.0.1\"\n")
        ),
        "rvsd.toml:18: service[0].real[0].check[0].bindto: 10.0.0.1 is IPv4, but the probe connects to 2001:db8::11, which is IPv6"
    );
    assert_eq!(
        svc6_err(
            "[2001:db8::100]:80",
            &format!("sorry_server = \"10.0.0.50\"\n{real}")
        ),
        "rvsd.toml:13: service[0].sorry_server: 10.0.0.50 is not of the vip's family: the sorry server is reached as the vip's packets are"
    );
}
