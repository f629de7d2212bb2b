//! Frame builders for fixtures. IP, ICMP, TCP and UDP go through `etherparse`, an independent
//! implementation, so expected checksums are not computed by the code under test.

use etherparse::{
    Icmpv4Type, IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder,
};
use std::net::Ipv4Addr;

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

/// Ethernet addresses of a frame.
#[derive(Clone, Copy, Debug)]
pub struct Eth {
    pub src: Mac,
    pub dst: Mac,
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug)]
pub struct Arp {
    pub op: u16,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// Ethernet + ARP, padded with zeros to the 60-byte minimum frame as on a real wire.
    pub fn frame(&self, eth: Eth) -> Vec<u8> {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&eth.dst);
        f.extend_from_slice(&eth.src);
        f.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4]);
        f.extend_from_slice(&self.op.to_be_bytes());
        f.extend_from_slice(&self.sha);
        f.extend_from_slice(&self.spa.octets());
        f.extend_from_slice(&self.tha);
        f.extend_from_slice(&self.tpa.octets());
        f.resize(60, 0);
        f
    }
}

/// A broadcast ARP request from (`sha`, `spa`) asking for `tpa`.
pub fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    Arp {
        op: 1,
        sha,
        spa,
        tha: [0; 6],
        tpa,
    }
    .frame(Eth {
        src: sha,
        dst: BROADCAST,
    })
}

/// IPv4 header fields a fixture may want to set.
#[derive(Clone, Copy, Debug)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
    /// Differentiated services code point (6 bits).
    pub dscp: u8,
    /// ECN codepoint (2 bits).
    pub ecn: u8,
    /// Raw option bytes (a multiple of 4, at most 40).
    pub options: &'static [u8],
}

impl Ip {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ip {
        Ip {
            src,
            dst,
            ttl: 64,
            id: 0x1234,
            df: true,
            dscp: 0,
            ecn: 0,
            options: &[],
        }
    }

    pub fn ttl(self, ttl: u8) -> Ip {
        Ip { ttl, ..self }
    }

    pub fn id(self, id: u16) -> Ip {
        Ip { id, ..self }
    }

    pub fn df(self, df: bool) -> Ip {
        Ip { df, ..self }
    }

    pub fn src(self, src: Ipv4Addr) -> Ip {
        Ip { src, ..self }
    }

    pub fn dst(self, dst: Ipv4Addr) -> Ip {
        Ip { dst, ..self }
    }

    pub fn tos(self, dscp: u8, ecn: u8) -> Ip {
        Ip { dscp, ecn, ..self }
    }

    pub fn options(self, options: &'static [u8]) -> Ip {
        Ip { options, ..self }
    }

    /// The header for a payload of `payload_len` bytes, with its checksum.
    fn ipv4_header(&self, proto: IpNumber, payload_len: usize) -> Ipv4Header {
        let mut h = Ipv4Header::new(0, self.ttl, proto, self.src.octets(), self.dst.octets())
            .expect("valid header");
        h.identification = self.id;
        h.dont_fragment = self.df;
        h.dscp = IpDscp::try_new(self.dscp).expect("6-bit DSCP");
        h.ecn = IpEcn::try_new(self.ecn).expect("2-bit ECN");
        h.options = self.options.try_into().expect("IPv4 options fit");
        h.set_payload_len(payload_len).expect("payload fits");
        h.header_checksum = h.calc_header_checksum();
        h
    }

    fn header(&self, proto: IpNumber) -> IpHeaders {
        IpHeaders::Ipv4(self.ipv4_header(proto, 0), Ipv4Extensions::default())
    }
}

/// TCP header fields a fixture may want to set.
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Any of "SAFRP".
    pub flags: &'static str,
    pub window: u16,
    /// Raw option bytes (a multiple of 4, at most 40).
    pub options: &'static [u8],
}

impl Tcp {
    pub fn new(sport: u16, dport: u16, flags: &'static str) -> Tcp {
        Tcp {
            sport,
            dport,
            seq: 1,
            ack: 0,
            flags,
            window: 64240,
            options: &[],
        }
    }

    pub fn seq(self, seq: u32) -> Tcp {
        Tcp { seq, ..self }
    }

    pub fn ack(self, ack: u32) -> Tcp {
        Tcp { ack, ..self }
    }

    pub fn options(self, options: &'static [u8]) -> Tcp {
        Tcp { options, ..self }
    }

    pub fn flags(self, flags: &'static str) -> Tcp {
        Tcp { flags, ..self }
    }

    pub fn ports(self, sport: u16, dport: u16) -> Tcp {
        Tcp {
            sport,
            dport,
            ..self
        }
    }
}

fn finish<B>(size: usize, write: impl FnOnce(&mut Vec<u8>) -> Result<(), B>) -> Vec<u8>
where
    B: std::fmt::Debug,
{
    let mut f = Vec::with_capacity(size);
    write(&mut f).expect("build frame");
    f
}

/// Ethernet + IPv4 + ICMP echo request.
pub fn icmp_echo_request(eth: Eth, ip: Ip, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::ICMP))
        .icmpv4_echo_request(id, seq);
    finish(b.size(payload.len()), |f| b.write(f, payload))
}

/// Ethernet + IPv4 + ICMP echo reply.
pub fn icmp_echo_reply(eth: Eth, ip: Ip, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::ICMP))
        .icmpv4_echo_reply(id, seq);
    finish(b.size(payload.len()), |f| b.write(f, payload))
}

/// Ethernet + IPv4 + TCP.
pub fn tcp(eth: Eth, ip: Ip, tcp: Tcp, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::TCP))
        .tcp(tcp.sport, tcp.dport, tcp.seq, tcp.window);
    for flag in tcp.flags.chars() {
        b = match flag {
            'S' => b.syn(),
            'A' => b.ack(tcp.ack),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            other => panic!("unknown TCP flag {other}"),
        };
    }
    let b = b.options_raw(tcp.options).expect("TCP options fit");
    finish(b.size(payload.len()), |f| b.write(f, payload))
}

/// Ethernet + IPv4 + UDP, with its checksum.
pub fn udp(eth: Eth, ip: Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::UDP))
        .udp(sport, dport);
    finish(b.size(payload.len()), |f| b.write(f, payload))
}

/// Ethernet + IPv4 + UDP sent without a checksum (field 0, RFC 768).
pub fn udp_no_checksum(eth: Eth, ip: Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = udp(eth, ip, sport, dport, payload);
    let at = l4_offset(&f) + 6;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    f
}

/// Ethernet + IPv4 + an ICMP message of `icmp` type carrying `original` (an IPv4 packet, or
/// as much of one as the sender quotes) after its 8-byte header.
pub fn icmp_error(eth: Eth, ip: Ip, icmp: Icmpv4Type, original: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::ICMP))
        .icmpv4(icmp);
    finish(b.size(original.len()), |f| b.write(f, original))
}

/// Ethernet + an outer IPv4 header (protocol 4, IP-in-IP, RFC 2003) + `inner`, an IPv4
/// packet carried byte for byte.
pub fn ipip(eth: Eth, outer: Ip, inner: &[u8]) -> Vec<u8> {
    let header = outer.ipv4_header(IpNumber::IPV4, inner.len());
    let mut f = Vec::with_capacity(14 + header.header_len() + inner.len());
    f.extend_from_slice(&eth.dst);
    f.extend_from_slice(&eth.src);
    f.extend_from_slice(&[0x08, 0x00]);
    header.write(&mut f).expect("write outer header");
    f.extend_from_slice(inner);
    f
}

/// The IPv4 packet of an Ethernet frame (everything after the 14-byte header).
pub fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// The IPv4 packet of `frame` cut to its header and the first `n` bytes of its payload: what
/// an ICMP error quotes (RFC 792: `n` = 8).
pub fn quote(frame: &[u8], n: usize) -> Vec<u8> {
    let ip = ip_packet(frame);
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip[..(ihl + n).min(ip.len())].to_vec()
}

/// Offset of the L4 header in an Ethernet + IPv4 frame.
pub fn l4_offset(frame: &[u8]) -> usize {
    14 + usize::from(frame[14] & 0x0f) * 4
}

/// Recomputes the IPv4 header checksum of an Ethernet frame after a test edited the header
/// (the header length is taken from the IHL field, at least 20 bytes, at most what the frame
/// holds).
pub fn fix_ip_checksum(frame: &mut [u8]) {
    let ihl = (usize::from(frame[14] & 0x0f) * 4)
        .max(20)
        .min(frame.len() - 14);
    frame[24..26].copy_from_slice(&[0, 0]);
    let sum = checksum(&frame[14..14 + ihl]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `a + b` in ones' complement arithmetic: how a checksum that is off by `b` stays off by `b`
/// through incremental updates (RFC 1624).
pub fn ones_add(a: u16, b: u16) -> u16 {
    let sum = u32::from(a) + u32::from(b);
    ((sum & 0xffff) + (sum >> 16)) as u16
}

/// Reads the 16-bit big-endian field at `at`.
pub fn get_u16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// Writes the 16-bit big-endian field at `at`.
pub fn set_u16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Pads a frame with zeros to the 60-byte Ethernet minimum, as it arrives from a wire.
pub fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}
