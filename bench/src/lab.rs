//! The network every data-path benchmark uses, and the frames sent into it.
//!
//! ```text
//!  clients 198.18.0.0/15 ──► port dpdk0 (net_pcap rx)  10.0.0.1/24, VIP 10.0.0.100:80
//!                            port dpdk1 (net_null tx)   192.168.10.1/24 ──► real servers
//!                                                       192.168.10.11..14, static neighbours
//! ```
//!
//! NAT and FULLNAT real servers listen on port 8080 (the rewrite changes address and port);
//! DR real servers are on dpdk1's subnet and keep the VIP's port. FULLNAT connections leave
//! from one of [`LADDRS`] local addresses on dpdk1 (TOA on, as by default, but these flows
//! never see the real server's reply, so no segment qualifies for it). Every real server
//! has a static `[[neighbor]]` entry, so nothing waits for ARP. One worker, scheduler `wlc`
//! (the IPVS default) over four real servers of weight 1.
//!
//! Frames are 60 bytes (64 on the wire with the FCS): a SYN is Ethernet + IPv4 + TCP padded
//! to 60 bytes, an ACK carries 6 bytes of data.

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, NetHeaders, PacketHeaders, TcpHeader,
    TransportHeader,
};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// MAC of port dpdk0, where the clients' frames arrive.
pub const PORT0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC of port dpdk1, towards the real servers.
pub const PORT1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
/// Source MAC of every client frame (the clients' router).
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];
/// The virtual service.
pub const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), 80);
/// Port NAT real servers listen on.
pub const NAT_PORT: u16 = 8080;
/// Number of real servers.
pub const REALS: u8 = 4;
/// Length of every frame (without FCS).
pub const FRAME_LEN: usize = 60;
/// FULLNAT local addresses: with 64511 ports each (1025..=65535), room for 2 M connections
/// per real server without a port conflict, so that the new-connection benchmark measures
/// the allocation, not an exhausted pool.
pub const LADDRS: u8 = 32;
/// Data bytes in an ACK, so that it is exactly [`FRAME_LEN`] long.
const ACK_DATA: [u8; 6] = *b"rvs-64";

/// Forwarding method of the benchmark's real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Masquerading: destination address and port rewritten, checksums updated.
    Nat,
    /// Direct routing: only the destination MAC changes.
    Dr,
    /// Full NAT: both addresses and ports rewritten (client → local address), TOA on.
    #[value(name = "fullnat")]
    FullNat,
    /// IP-in-IP tunnel (`pipeline_ipp` only).
    Tun,
    /// GUE tunnel with the UDP checksum (`pipeline_ipp` only).
    Gue,
    /// GRE tunnel without checksum (`pipeline_ipp` only).
    Gre,
    /// NAT66: the same service over IPv6 (`pipeline_ipp` only): clients 2001:db8:c::/64,
    /// VIP [2001:db8::100]:80, reals [2001:db8:10::11..14]:8080.
    Nat66,
}

impl Mode {
    /// Every method, in report order.
    pub const ALL: [Mode; 3] = [Mode::Nat, Mode::Dr, Mode::FullNat];

    /// The name in rvsd's configuration and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::Dr => "dr",
            Mode::FullNat => "fullnat",
            Mode::Tun | Mode::Gue | Mode::Gre => "tun",
            Mode::Nat66 => "nat",
        }
    }

    /// The value of `pipeline_ipp --mode`.
    pub fn cli_name(self) -> &'static str {
        match self {
            Mode::Gue => "gue",
            Mode::Gre => "gre",
            Mode::Nat66 => "nat66",
            mode => mode.as_str(),
        }
    }

    /// Upper-case name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Nat => "NAT",
            Mode::Dr => "DR",
            Mode::FullNat => "FULLNAT",
            Mode::Tun => "TUN",
            Mode::Gue => "TUN GUE",
            Mode::Gre => "TUN GRE",
            Mode::Nat66 => "NAT66",
        }
    }
}

/// Address of real server `i`.
pub fn real_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 10, 11 + i)
}

/// FULLNAT local address `i` (on dpdk1).
pub fn laddr(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 10, 101 + i)
}

/// MAC of real server `i` (its static neighbour entry).
pub fn real_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x0a, 11 + i]
}

/// Client of flow `flow`: 131072 addresses of 198.18.0.0/15, then the next source port.
pub fn client(flow: u32) -> SocketAddrV4 {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (flow & 0x1_ffff));
    let port = 1024 + (flow >> 17);
    SocketAddrV4::new(
        ip,
        u16::try_from(port).expect("fewer than 2^17 * 64512 flows"),
    )
}

fn mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// rvsd's configuration for `mode`, everything but the `[eal]` table.
pub fn config_body(mode: Mode, conn_table_size: u32, mbufs: u32) -> String {
    body(mode, conn_table_size, mbufs, PORT0_MAC)
}

/// The same configuration with port dpdk0 on another MAC: rvsd receives every client frame
/// and drops it at the first check (`foreign_mac`). What is left is the cost of receiving
/// from the pcap port, dispatching and freeing: the input floor.
pub fn floor_config_body(conn_table_size: u32, mbufs: u32) -> String {
    body(Mode::Nat, conn_table_size, mbufs, [0x02, 0, 0, 0, 0, 0x99])
}

fn body(mode: Mode, conn_table_size: u32, mbufs: u32, port0_mac: [u8; 6]) -> String {
    if mode == Mode::Nat66 {
        return body6(conn_table_size, mbufs, port0_mac);
    }
    let mut s = format!(
        r#"[dataplane]
workers = [1]
conn_table_size = {conn_table_size}
mbufs = {mbufs}

[[port]]
name = "dpdk0"
mac = "{}"
addrs = ["10.0.0.1/24", "{}/32"]

[[port]]
name = "dpdk1"
mac = "{}"
addrs = ["192.168.10.1/24"{}]
"#,
        mac(port0_mac),
        VIP.ip(),
        mac(PORT1_MAC),
        laddr_list("/24")
    );
    for i in 0..REALS {
        s += &format!(
            "\n[[neighbor]]\nip = \"{}\"\nmac = \"{}\"\nport = \"dpdk1\"\n",
            real_ip(i),
            mac(real_mac(i))
        );
    }
    s += &format!("\n[[service]]\nvip = \"{VIP}\"\nproto = \"tcp\"\nsched = \"wlc\"\n");
    if mode == Mode::FullNat {
        s += &format!("laddrs = [{}]\n", &laddr_list("")[2..]);
    }
    for i in 0..REALS {
        let addr = match mode {
            Mode::Nat | Mode::FullNat | Mode::Nat66 => format!("{}:{NAT_PORT}", real_ip(i)),
            Mode::Dr | Mode::Tun | Mode::Gue | Mode::Gre => real_ip(i).to_string(),
        };
        s += &format!(
            "\n  [[service.real]]\n  addr = \"{addr}\"\n  mode = \"{}\"\n",
            mode.as_str()
        );
        match mode {
            Mode::Gue => s += "  tunnel = { type = \"gue\", port = 6080, csum = \"csum\" }\n",
            Mode::Gre => s += "  tunnel = { type = \"gre\" }\n",
            _ => {}
        }
    }
    s
}

/// The NAT66 network: the IPv4 one's layout over IPv6.
fn body6(conn_table_size: u32, mbufs: u32, port0_mac: [u8; 6]) -> String {
    let mut s = format!(
        r#"[dataplane]
workers = [1]
conn_table_size = {conn_table_size}
conn_table_size6 = {conn_table_size}
mbufs = {mbufs}

[[port]]
name = "dpdk0"
mac = "{}"
addrs = ["10.0.0.1/24", "2001:db8::1/64", "{}/128"]

[[port]]
name = "dpdk1"
mac = "{}"
addrs = ["192.168.10.1/24", "2001:db8:10::1/64"]
"#,
        mac(port0_mac),
        VIP6.ip(),
        mac(PORT1_MAC),
    );
    for i in 0..REALS {
        s += &format!(
            "\n[[neighbor]]\nip = \"{}\"\nmac = \"{}\"\nport = \"dpdk1\"\n",
            real_ip6(i),
            mac(real_mac(i))
        );
    }
    s += &format!("\n[[service]]\nvip = \"{VIP6}\"\nproto = \"tcp\"\nsched = \"wlc\"\n");
    for i in 0..REALS {
        s += &format!(
            "\n  [[service.real]]\n  addr = \"[{}]:{NAT_PORT}\"\n  mode = \"nat\"\n",
            real_ip6(i)
        );
    }
    s
}

/// The NAT66 service.
pub const VIP6: SocketAddrV6 =
    SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100), 80, 0, 0);

/// IPv6 address of real server `i`.
pub fn real_ip6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x11 + u16::from(i))
}

/// IPv6 client of flow `flow`: a /64 of clients, the flow in the low bits.
pub fn client6(flow: u32) -> SocketAddrV6 {
    let ip = Ipv6Addr::new(
        0x2001,
        0xdb8,
        0xc,
        0,
        0,
        0,
        (flow >> 16) as u16,
        flow as u16,
    );
    SocketAddrV6::new(ip, 1024 + (flow % 60000) as u16, 0, 0)
}

/// The client frame of `kind` for flow `flow` in `mode` ([`frame`], or its IPv6 twin for
/// [`Mode::Nat66`]: 80 bytes, the same TCP header and data).
pub fn frame_of(mode: Mode, kind: Packet, flow: u32) -> Vec<u8> {
    if mode != Mode::Nat66 {
        return frame(kind, flow);
    }
    let c = client6(flow);
    let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
        .ipv6(c.ip().octets(), VIP6.ip().octets(), 64)
        .tcp(c.port(), VIP6.port(), 1_000_000 + flow, 64240);
    let (b, data): (_, &[u8]) = match kind {
        Packet::Syn => (b.syn(), &[]),
        Packet::Ack => (b.ack(7_000_000 + flow), &ACK_DATA),
    };
    let mut f = Vec::with_capacity(b.size(data.len()));
    b.write(&mut f, data).expect("write to a Vec");
    f
}

/// `, "192.168.10.101{suffix}", ...` for every local address.
fn laddr_list(suffix: &str) -> String {
    (0..LADDRS)
        .map(|i| format!(", \"{}{suffix}\"", laddr(i)))
        .collect()
}

/// The validated configuration for in-process use (no EAL arguments).
pub fn config(mode: Mode, conn_table_size: u32) -> conf::Config {
    let text = format!(
        "[eal]\nargs = []\n{}",
        config_body(mode, conn_table_size, 32767)
    );
    conf::Config::parse(&text, "bench.toml").expect("the benchmark configuration is valid")
}

/// Kinds of client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// The SYN that opens flow `n`.
    Syn,
    /// A data packet (ACK, 6 bytes) of an open flow.
    Ack,
}

/// The client → VIP frame of `kind` for flow `flow`, [`FRAME_LEN`] bytes, written by
/// etherparse (an implementation independent of rvs's) with valid checksums.
pub fn frame(kind: Packet, flow: u32) -> Vec<u8> {
    let c = client(flow);
    let data: &[u8] = match kind {
        Packet::Syn => &[],
        Packet::Ack => &ACK_DATA,
    };
    let mut tcp = TcpHeader::new(c.port(), VIP.port(), 1_000_000 + flow, 64240);
    match kind {
        Packet::Syn => tcp.syn = true,
        Packet::Ack => {
            tcp.ack = true;
            tcp.acknowledgment_number = 7_000_000 + flow;
        }
    }
    let l4_len = u16::try_from(tcp.header_len() + data.len()).expect("small");
    let mut ip = Ipv4Header::new(
        l4_len,
        64,
        IpNumber::TCP,
        c.ip().octets(),
        VIP.ip().octets(),
    )
    .expect("small payload");
    ip.identification = flow as u16;
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, data).expect("small payload");
    let eth = Ethernet2Header {
        source: CLIENT_MAC,
        destination: PORT0_MAC,
        ether_type: EtherType::IPV4,
    };
    let mut f = Vec::with_capacity(FRAME_LEN);
    eth.write(&mut f).expect("write to a Vec");
    ip.write(&mut f).expect("write to a Vec");
    tcp.write(&mut f).expect("write to a Vec");
    f.extend_from_slice(data);
    f.resize(FRAME_LEN, 0);
    f
}

/// One pass over the established-flow input: a SYN for each of `flows` flows, then
/// `ack_rounds` rounds of one ACK per flow.
pub fn established_pass(flows: u32, ack_rounds: u32) -> impl Iterator<Item = Vec<u8>> {
    let syns = (0..flows).map(|f| frame(Packet::Syn, f));
    let acks = (0..ack_rounds).flat_map(move |_| (0..flows).map(|f| frame(Packet::Ack, f)));
    syns.chain(acks)
}

/// Checks that `out` is `input` forwarded by `mode` to one of the real servers: the right
/// MACs, addresses and ports, TTL decremented, valid IP and TCP checksums; for FULLNAT a
/// local address and port as the source and either no TCP option or exactly the TOA option
/// carrying the client. Returns what is wrong.
pub fn check_forwarded(mode: Mode, input: &[u8], out: &[u8]) -> Result<(), String> {
    if mode == Mode::Nat66 {
        return check_forwarded6(input, out);
    }
    let tunnel = match mode {
        Mode::Tun => Some((4, 0)),
        Mode::Gue => Some((17, 12)),
        Mode::Gre => Some((47, 4)),
        _ => None,
    };
    if let Some((protocol, encap)) = tunnel {
        // The outer header to a real server, then the packet as DR forwards it.
        let outer = out.get(14..34).ok_or("no outer header")?;
        let real = (0..REALS).any(|i| real_ip(i).octets() == outer[16..20]);
        if outer[9] != protocol || !real || outer[12..16] != [192, 168, 10, 1] {
            return Err("outer header".into());
        }
        let mut inner = out[..14].to_vec();
        inner.extend_from_slice(out.get(34 + encap..).ok_or("no inner packet")?);
        return check_forwarded(Mode::Dr, input, &inner);
    }
    let parse = |f| PacketHeaders::from_ethernet_slice(f).map_err(|e| format!("{e:?}"));
    let (a, b) = (parse(input)?, parse(out)?);
    let (Some(NetHeaders::Ipv4(ia, _)), Some(NetHeaders::Ipv4(ib, _))) = (&a.net, &b.net) else {
        return Err("not IPv4".into());
    };
    let (Some(TransportHeader::Tcp(ta)), Some(TransportHeader::Tcp(tb))) =
        (&a.transport, &b.transport)
    else {
        return Err("not TCP".into());
    };
    let eth = &out[..12];
    let real = (0..REALS)
        .find(|&i| real_ip(i).octets() == ib.destination || real_mac(i) == eth[..6])
        .ok_or("no real server's address or MAC")?;
    let mut problems = Vec::new();
    if eth[..6] != real_mac(real) || eth[6..12] != PORT1_MAC {
        problems.push("MACs");
    }
    if ib.time_to_live + 1 != ia.time_to_live {
        problems.push("TTL");
    }
    if ib.header_checksum != ib.calc_header_checksum() {
        problems.push("IP checksum");
    }
    let tcp_ok = tb
        .calc_checksum_ipv4(ib, b.payload.slice())
        .is_ok_and(|c| c == tb.checksum);
    if !tcp_ok {
        problems.push("TCP checksum");
    }
    let (dst, dport) = match mode {
        Mode::Nat | Mode::FullNat => (real_ip(real).octets(), NAT_PORT),
        _ => (ia.destination, ta.destination_port),
    };
    if ib.destination != dst || tb.destination_port != dport {
        problems.push("destination");
    }
    if mode == Mode::FullNat {
        let local = (0..LADDRS).any(|i| laddr(i).octets() == ib.source);
        if !local || tb.source_port < 1025 {
            problems.push("source");
        }
        let c = SocketAddrV4::new(Ipv4Addr::from(ia.source), ta.source_port);
        let mut toa = vec![254, 8];
        toa.extend_from_slice(&c.port().to_be_bytes());
        toa.extend_from_slice(&c.ip().octets());
        if !ta.options.is_empty() || !(tb.options.is_empty() || tb.options.as_slice() == toa) {
            problems.push("TCP options");
        }
    } else if ib.source != ia.source || tb.source_port != ta.source_port {
        problems.push("source");
    }
    if b.payload.slice() != a.payload.slice() {
        problems.push("payload");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

/// [`check_forwarded`] for NAT66: to a real server's MAC and address, port 8080, hop limit
/// one less, the TCP checksum valid, the rest unchanged.
fn check_forwarded6(input: &[u8], out: &[u8]) -> Result<(), String> {
    let parse = |f| PacketHeaders::from_ethernet_slice(f).map_err(|e| format!("{e:?}"));
    let (a, b) = (parse(input)?, parse(out)?);
    let (Some(NetHeaders::Ipv6(ia, _)), Some(NetHeaders::Ipv6(ib, _))) = (&a.net, &b.net) else {
        return Err("not IPv6".into());
    };
    let (Some(TransportHeader::Tcp(ta)), Some(TransportHeader::Tcp(tb))) =
        (&a.transport, &b.transport)
    else {
        return Err("not TCP".into());
    };
    let real = (0..REALS)
        .find(|&i| real_ip6(i).octets() == ib.destination)
        .ok_or("no real server's address")?;
    let mut problems = Vec::new();
    if out[..6] != real_mac(real) || out[6..12] != PORT1_MAC {
        problems.push("MACs");
    }
    if ib.hop_limit + 1 != ia.hop_limit {
        problems.push("hop limit");
    }
    if tb.destination_port != NAT_PORT || ib.source != ia.source || tb.source_port != ta.source_port
    {
        problems.push("addresses or ports");
    }
    let tcp_ok = tb
        .calc_checksum_ipv6(ib, b.payload.slice())
        .is_ok_and(|c| c == tb.checksum);
    if !tcp_ok {
        problems.push("TCP checksum");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_60_bytes_valid_and_clients_distinct() {
        for kind in [Packet::Syn, Packet::Ack] {
            let f = frame(kind, 5);
            assert_eq!(f.len(), FRAME_LEN);
            let h = PacketHeaders::from_ethernet_slice(&f).unwrap();
            let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
                panic!("IPv4")
            };
            let Some(TransportHeader::Tcp(tcp)) = &h.transport else {
                panic!("TCP")
            };
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            assert_eq!(
                tcp.checksum,
                tcp.calc_checksum_ipv4(ip, h.payload.slice()).unwrap()
            );
            assert_eq!(
                (tcp.syn, tcp.ack),
                (kind == Packet::Syn, kind == Packet::Ack)
            );
        }
        let a: std::collections::HashSet<_> = (0..300_000).map(client).collect();
        assert_eq!(a.len(), 300_000);
    }

    /// The pipeline's output for the first SYN and ACK of a flow passes the check in every
    /// mode, and the check notices a wrong source. (No frame grows: FULLNAT puts TOA on the
    /// first ACK of the real server's ISN + 1, and these flows never see a reply. The SYN
    /// leaves without its padding: 54 bytes.)
    #[test]
    fn forwarded_frames_pass_the_check_and_a_wrong_source_fails_it() {
        use fastpath::frame::{Frame, VecFrame};
        use fastpath::pipeline::Pipeline;
        use fastpath::snapshot::Snapshot;
        use fastpath::verdict::Verdict;
        for mode in [Mode::ALL.as_slice(), &[Mode::Tun, Mode::Gue, Mode::Gre]].concat() {
            let config = config(mode, 1024);
            let snapshot = Snapshot::build(&config, &[PORT0_MAC, PORT1_MAC], None, 1).unwrap();
            let mut pipeline = Pipeline::new(0, 1, 1024, &snapshot, 1000).unwrap();
            for kind in [Packet::Syn, Packet::Ack] {
                let input = frame(kind, 7);
                let mut buf = VecFrame::new(&input);
                let verdict = pipeline.packet(&snapshot, 0, &mut buf, 1000);
                assert_eq!(verdict, Verdict::Tx { port: 1 }, "{mode:?} {kind:?}");
                let out = buf.data().to_vec();
                let len = if kind == Packet::Syn { 54 } else { FRAME_LEN };
                let outer = match mode {
                    Mode::Tun => 20,
                    Mode::Gue => 32,
                    Mode::Gre => 24,
                    _ => 0,
                };
                assert_eq!(out.len(), len + outer, "{mode:?} {kind:?}");
                check_forwarded(mode, &input, &out).unwrap();
                let mut wrong = out.clone();
                wrong[26] ^= 1; // source address, checksums left as they are
                assert!(check_forwarded(mode, &input, &wrong).is_err(), "{mode:?}");
            }
        }
    }

    #[test]
    fn configurations_are_valid() {
        for mode in Mode::ALL {
            let c = config(mode, 1024);
            assert_eq!(c.services.len(), 1);
            let laddrs = c.services[0].laddrs.len();
            assert_eq!(laddrs, if mode == Mode::FullNat { 32 } else { 0 });
        }
    }
}
