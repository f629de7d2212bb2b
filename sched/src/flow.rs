//! The flow key a pick is made for, and the address folding the kernel's
//! hashes use.

use std::net::{IpAddr, Ipv4Addr};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;

/// The packet that asks for a new connection, seen from the client side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// IP protocol number.
    pub proto: u8,
    /// Client (source) address: sh, mh and ch hash it.
    pub caddr: IpAddr,
    /// Client (source) port: hashed by sh/mh/ch with the `port` flag.
    pub cport: u16,
    /// Packet destination address (the VIP, or the real target for fwmark
    /// services): dh hashes it, lblc/lblcr cache by it.
    pub vaddr: IpAddr,
    /// Packet destination port.
    pub vport: u16,
}

impl FlowKey {
    /// An IPv4 flow.
    pub fn v4(proto: u8, caddr: Ipv4Addr, cport: u16, vaddr: Ipv4Addr, vport: u16) -> FlowKey {
        FlowKey {
            proto,
            caddr: IpAddr::V4(caddr),
            cport,
            vaddr: IpAddr::V4(vaddr),
            vport,
        }
    }

    /// The client port as the port-hashing schedulers read it: only TCP, UDP
    /// and SCTP have one where they look (`ip_vs_sh_get_port`), others give 0.
    pub(crate) fn hashed_port(&self) -> u16 {
        match self.proto {
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => self.cport,
            _ => 0,
        }
    }
}

/// `addr_fold` of ip_vs_sh.c/ip_vs_dh.c/ip_vs_mh.c in host order: the IPv4
/// address, or the XOR of the four 32-bit words of an IPv6 address.
pub(crate) fn fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let bits = u128::from(*a);
            // Truncating casts pick the four 32-bit words.
            (bits as u32) ^ ((bits >> 32) as u32) ^ ((bits >> 64) as u32) ^ ((bits >> 96) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn fold_v6_xors_the_words() {
        // Words 2001:0db8, 0000:0001, 0002:0000, 0000:0005.
        let a: Ipv6Addr = "2001:db8:0:1:2:0:0:5".parse().unwrap();
        assert_eq!(
            fold(&IpAddr::V6(a)),
            0x2001_0db8 ^ 0x0000_0001 ^ 0x0002_0000 ^ 5
        );
        assert_eq!(fold(&"10.0.0.1".parse().unwrap()), 0x0a00_0001);
    }

    #[test]
    fn port_only_for_protocols_with_ports() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let tcp = FlowKey::v4(IPPROTO_TCP, a, 1234, a, 80);
        assert_eq!(tcp.hashed_port(), 1234);
        assert_eq!(
            FlowKey {
                proto: IPPROTO_SCTP,
                ..tcp
            }
            .hashed_port(),
            1234
        );
        assert_eq!(FlowKey { proto: 1, ..tcp }.hashed_port(), 0);
    }
}
