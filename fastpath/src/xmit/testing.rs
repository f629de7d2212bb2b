//! Test frames for the `xmit` tests, built with `etherparse` (an implementation independent of
//! `wire`), so that expected packets and their checksums are not computed by the code under
//! test.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header, TcpHeader, UdpHeader};

use crate::wire::EthernetAddress;

/// The balancer's port.
pub const PORT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
/// The router the client's packets come through.
pub const ROUTER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0xfe]);
/// A real server on link.
pub const REAL_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x03]);

/// The client.
pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40312);
/// The virtual service.
pub const VIRT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 10), 80);
/// The real server, with port mapping.
pub const REAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 3), 8080);

/// The IPv4 header fields of a test packet.
#[derive(Debug, Clone)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub dscp: u8,
    pub ecn: u8,
    /// Raw options, a multiple of 4 bytes.
    pub options: Vec<u8>,
}

impl Ip {
    /// A header from `src` to `dst`: TTL 57, ident 0x1c46, DF, DSCP 0, Not-ECT, no options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ip {
        Ip {
            src,
            dst,
            ttl: 57,
            ident: 0x1c46,
            dont_frag: true,
            dscp: 0,
            ecn: 0,
            options: Vec::new(),
        }
    }

    /// The etherparse header for a payload of `payload_len` bytes of `protocol`, checksummed.
    pub fn header(&self, protocol: IpNumber, payload_len: usize) -> Ipv4Header {
        let mut header = Ipv4Header::new(
            u16::try_from(payload_len).unwrap(),
            self.ttl,
            protocol,
            self.src.octets(),
            self.dst.octets(),
        )
        .unwrap();
        header.identification = self.ident;
        header.dont_fragment = self.dont_frag;
        header.dscp = etherparse::IpDscp::try_new(self.dscp).unwrap();
        header.ecn = etherparse::IpEcn::try_new(self.ecn).unwrap();
        header.options = etherparse::Ipv4Options::try_from(&self.options[..]).unwrap();
        header.total_len = u16::try_from(header.header_len() + payload_len).unwrap();
        header.header_checksum = header.calc_header_checksum();
        header
    }

    /// The IPv4 packet: this header and `payload`.
    pub fn packet(&self, protocol: IpNumber, payload: &[u8]) -> Vec<u8> {
        let mut bytes = self.header(protocol, payload.len()).to_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    /// A TCP packet: `tcp` with `payload`, ports set, checksum computed.
    pub fn tcp(&self, src_port: u16, dst_port: u16, tcp: &TcpHeader, payload: &[u8]) -> Vec<u8> {
        let mut tcp = tcp.clone();
        tcp.source_port = src_port;
        tcp.destination_port = dst_port;
        let len = tcp.header_len() + payload.len();
        tcp.checksum = tcp
            .calc_checksum_ipv4(&self.header(IpNumber::TCP, len), payload)
            .unwrap();
        let mut segment = tcp.to_bytes().to_vec();
        segment.extend_from_slice(payload);
        self.packet(IpNumber::TCP, &segment)
    }

    /// A UDP packet with `payload`, with a checksum or without one (0).
    pub fn udp(&self, src_port: u16, dst_port: u16, payload: &[u8], checksum: bool) -> Vec<u8> {
        let len = UdpHeader::LEN + payload.len();
        let mut udp = UdpHeader::with_ipv4_checksum(
            src_port,
            dst_port,
            &self.header(IpNumber::UDP, len),
            payload,
        )
        .unwrap();
        if !checksum {
            udp.checksum = 0;
        }
        let mut datagram = udp.to_bytes().to_vec();
        datagram.extend_from_slice(payload);
        self.packet(IpNumber::UDP, &datagram)
    }

    /// An ICMP packet of `icmp_type` with `data` after the 8-byte header, checksummed.
    pub fn icmp(&self, icmp_type: Icmpv4Type, data: &[u8]) -> Vec<u8> {
        let mut message = Icmpv4Header::with_checksum(icmp_type, data)
            .to_bytes()
            .to_vec();
        message.extend_from_slice(data);
        self.packet(IpNumber::ICMP, &message)
    }
}

/// An Ethernet frame from `src` to `dst` carrying the IPv4 packet `packet`, then `padding`.
pub fn frame(src: EthernetAddress, dst: EthernetAddress, packet: &[u8], padding: &[u8]) -> Vec<u8> {
    let mut bytes = etherparse::Ethernet2Header {
        source: src.0,
        destination: dst.0,
        ether_type: etherparse::EtherType::IPV4,
    }
    .to_bytes()
    .to_vec();
    bytes.extend_from_slice(packet);
    bytes.extend_from_slice(padding);
    bytes
}

/// A TCP segment header with `flags` (etherparse's field names) and sequence numbers.
pub fn tcp_header(syn: bool, ack: bool, fin: bool, rst: bool, psh: bool) -> TcpHeader {
    let mut tcp = TcpHeader::new(0, 0, 0x6b8b_4567, 64240);
    tcp.syn = syn;
    tcp.fin = fin;
    tcp.rst = rst;
    tcp.psh = psh;
    if ack {
        tcp.ack = true;
        tcp.acknowledgment_number = 0x327b_23c6;
    }
    tcp
}

/// The one's-complement sum of `bytes` by an independent loop: 0xffff when the checksum they
/// hold verifies.
pub fn sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}
