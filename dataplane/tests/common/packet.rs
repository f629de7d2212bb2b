//! Frame builders for fixtures. IP, ICMP, TCP and UDP go through `etherparse`, an independent
//! implementation, so expected checksums are not computed by the code under test.

use etherparse::{IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder};
use std::net::Ipv4Addr;

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

/// Ethernet + ARP (Ethernet/IPv4), 42 bytes, or padded with zeros to `pad_to`.
pub fn arp(
    eth_dst: Mac,
    eth_src: Mac,
    op: u16,
    sha: Mac,
    spa: Ipv4Addr,
    tha: Mac,
    tpa: Ipv4Addr,
    pad_to: usize,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(pad_to.max(42));
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f.resize(pad_to.max(42), 0);
    f
}

/// An ARP request from (`sha`, `spa`) asking for `tpa`, broadcast, padded to 60 bytes as on a
/// real wire.
pub fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(BROADCAST, sha, 1, sha, spa, [0; 6], tpa, 60)
}

/// IPv4 header fields a fixture may want to set.
#[derive(Clone, Copy, Debug)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
}

impl Ip {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ip {
        Ip {
            src,
            dst,
            ttl: 64,
            id: 0x1234,
            df: true,
        }
    }

    pub fn ttl(self, ttl: u8) -> Ip {
        Ip { ttl, ..self }
    }

    fn header(&self, proto: IpNumber) -> IpHeaders {
        let mut h = Ipv4Header::new(0, self.ttl, proto, self.src.octets(), self.dst.octets())
            .expect("valid header");
        h.identification = self.id;
        h.dont_fragment = self.df;
        IpHeaders::Ipv4(h, Ipv4Extensions::default())
    }
}

/// Ethernet + IPv4 + ICMP echo request.
pub fn icmp_echo_request(
    eth_src: Mac,
    eth_dst: Mac,
    ip: Ip,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(ip.header(IpNumber::ICMP))
        .icmpv4_echo_request(id, seq);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build frame");
    f
}

/// Ethernet + IPv4 + ICMP echo reply.
pub fn icmp_echo_reply(
    eth_src: Mac,
    eth_dst: Mac,
    ip: Ip,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(ip.header(IpNumber::ICMP))
        .icmpv4_echo_reply(id, seq);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build frame");
    f
}

/// Ethernet + IPv4 + TCP with the given flags (b"S", b"SA", b"A", b"FA", b"R", ...).
pub fn tcp(
    eth_src: Mac,
    eth_dst: Mac,
    ip: Ip,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(ip.header(IpNumber::TCP))
        .tcp(sport, dport, seq, 64240);
    for flag in flags.chars() {
        b = match flag {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            other => panic!("unknown TCP flag {other}"),
        };
    }
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build frame");
    f
}

/// Ethernet + IPv4 + UDP.
pub fn udp(eth_src: Mac, eth_dst: Mac, ip: Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(ip.header(IpNumber::UDP))
        .udp(sport, dport);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build frame");
    f
}
