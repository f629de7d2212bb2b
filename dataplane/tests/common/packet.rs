//! Frame builders for fixtures. IP, ICMP, TCP and UDP go through `etherparse`, an independent
//! implementation, so expected checksums are not computed by the code under test.

use etherparse::{IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder};
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

/// TCP header fields a fixture may want to set.
#[derive(Clone, Copy, Debug)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Any of "SAFRP".
    pub flags: &'static str,
}

impl Tcp {
    pub fn new(sport: u16, dport: u16, flags: &'static str) -> Tcp {
        Tcp {
            sport,
            dport,
            seq: 1,
            ack: 0,
            flags,
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
        .tcp(tcp.sport, tcp.dport, tcp.seq, 64240);
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
    finish(b.size(payload.len()), |f| b.write(f, payload))
}

/// Ethernet + IPv4 + UDP.
pub fn udp(eth: Eth, ip: Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth.src, eth.dst)
        .ip(ip.header(IpNumber::UDP))
        .udp(sport, dport);
    finish(b.size(payload.len()), |f| b.write(f, payload))
}
