//! Address syntax of the config file: IPv4 prefixes, MACs and netmasks. Each parser returns the
//! sentence that ends up in the error after `field: `.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// An IPv4 address with a prefix length: an owned address on its link (`10.0.0.1/24`) or,
/// with the host bits zero, a route destination (`10.0.0.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address as written.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Net {
    /// The netmask of the prefix length.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_mask(self.prefix_len))
    }

    /// The address with its host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & prefix_mask(self.prefix_len))
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

fn prefix_mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// `a.b.c.d/len`, or a bare `a.b.c.d` meaning /32 as `ip addr add` reads it.
pub(crate) fn parse_net(s: &str) -> Result<Ipv4Net, String> {
    let bad = || format!("{s:?} is not an IPv4 address or prefix (a.b.c.d/len)");
    let (addr, len) = match s.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (s, None),
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix_len = match len {
        None => 32,
        Some(len)
            if !len.is_empty() && len.len() <= 2 && len.bytes().all(|b| b.is_ascii_digit()) =>
        {
            len.parse::<u8>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if prefix_len > 32 {
        return Err(format!(
            "{s:?}: prefix length {prefix_len} is out of range 0..=32"
        ));
    }
    Ok(Ipv4Net { addr, prefix_len })
}

pub(crate) fn parse_ip(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

/// `a.b.c.d:port`, or `a.b.c.d` which yields port `None`.
pub(crate) fn parse_addr_port(s: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    if let Ok(sa) = s.parse::<SocketAddrV4>() {
        return Ok((*sa.ip(), Some(sa.port())));
    }
    match s.parse::<Ipv4Addr>() {
        Ok(ip) => Ok((ip, None)),
        Err(_) => Err(format!(
            "{s:?} is not an IPv4 address with port (a.b.c.d:port)"
        )),
    }
}

/// `xx:xx:xx:xx:xx:xx`, hex digits in either case.
fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{s:?} is not a MAC address (xx:xx:xx:xx:xx:xx)");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(bad)?;
        // from_str_radix alone would take a sign ("+2").
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// A MAC a station can have: the group bit (multicast, broadcast) clear and not all zeros.
pub(crate) fn parse_unicast_mac(s: &str) -> Result<[u8; 6], String> {
    let mac = parse_mac(s)?;
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(format!("{s:?} is not a unicast MAC address"));
    }
    Ok(mac)
}

/// A dotted netmask. As ipvsadm's `-M` (and the kernel) any bits are taken: persistence
/// groups clients by `address & mask`, which needs no contiguous mask.
pub(crate) fn parse_netmask(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a netmask (a.b.c.d)"))
}

/// Why `ip` is not the address of one host on the links whose owned prefixes are `links`,
/// as a sentence to follow `field: `; `Ok` if it is one. Refused, as Linux refuses them as a
/// destination (`inet_addr_type` not `RTN_UNICAST`, which makes IPVS's `ip_vs_new_dest`
/// answer EINVAL) or as a martian: 0.0.0.0/8, multicast 224.0.0.0/4, 240.0.0.0/4 with the
/// limited broadcast, the network and broadcast addresses of a connected subnet (prefixes
/// up to /30; /31 and /32 have none), and loopback 127.0.0.0/8, which rvs would put on the
/// wire (a host never sends it there).
pub fn check_host<'a>(
    ip: Ipv4Addr,
    links: impl IntoIterator<Item = &'a Ipv4Net>,
) -> Result<(), String> {
    let not_unicast = |why: String| Err(format!("{ip} is not a unicast address: {why}"));
    let first = ip.octets()[0];
    if first == 0 {
        return not_unicast("0.0.0.0/8 means \"this network\"".into());
    }
    if ip.is_broadcast() {
        return not_unicast("it is the limited broadcast address".into());
    }
    if ip.is_multicast() {
        return not_unicast("it is a multicast address (224.0.0.0/4)".into());
    }
    if first >= 240 {
        return not_unicast("240.0.0.0/4 is reserved".into());
    }
    if ip.is_loopback() {
        return Err(format!(
            "{ip} is a loopback address (127.0.0.0/8), which must never be sent on the wire"
        ));
    }
    for net in links {
        if net.prefix_len <= 30 && net.contains(ip) {
            let network = Ipv4Net {
                addr: net.network(),
                prefix_len: net.prefix_len,
            };
            if ip == net.network() {
                return not_unicast(format!("it is the network address of {network}"));
            }
            if u32::from(ip) == u32::from(net.network()) | !u32::from(net.mask()) {
                return not_unicast(format!("it is the broadcast address of {network}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_parse_net() {
        let net = parse_net("10.0.0.1/24").unwrap();
        assert_eq!(net.addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(net.prefix_len, 24);
        assert_eq!(net.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(net.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(net.contains(Ipv4Addr::new(10, 0, 0, 254)));
        assert!(!net.contains(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(parse_net("10.0.0.100").unwrap().prefix_len, 32);
        let all = parse_net("0.0.0.0/0").unwrap();
        assert_eq!(all.mask(), Ipv4Addr::UNSPECIFIED);
        assert!(all.contains(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(all.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn test_parse_net_errors() {
        for s in [
            "10.0.0.1/",
            "10.0.0.1/+8",
            "10.0.0/8",
            "10.0.0.1/24/1",
            "10.0.0.1/100",
        ] {
            assert_eq!(
                parse_net(s),
                Err(format!(
                    "{s:?} is not an IPv4 address or prefix (a.b.c.d/len)"
                ))
            );
        }
        assert_eq!(
            parse_net("10.0.0.1/33"),
            Err("\"10.0.0.1/33\": prefix length 33 is out of range 0..=32".to_string())
        );
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            parse_mac("02:00:00:00:AB:fe"),
            Ok([0x02, 0, 0, 0, 0xab, 0xfe])
        );
        for s in [
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "02-00-00-00-00-00",
            "0g:00:00:00:00:00",
            "+2:00:00:00:00:00",
        ] {
            assert_eq!(
                parse_mac(s),
                Err(format!("{s:?} is not a MAC address (xx:xx:xx:xx:xx:xx)"))
            );
        }
    }

    #[test]
    fn test_parse_netmask() {
        assert_eq!(
            parse_netmask("255.255.255.0"),
            Ok(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(parse_netmask("0.0.0.0"), Ok(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_netmask("255.255.255.255"), Ok(Ipv4Addr::BROADCAST));
        assert_eq!(
            parse_netmask("255.0.255.0"),
            Ok(Ipv4Addr::new(255, 0, 255, 0))
        );
        assert_eq!(
            parse_netmask("24"),
            Err("\"24\" is not a netmask (a.b.c.d)".to_string())
        );
    }

    #[test]
    fn test_check_host() {
        let links = [
            parse_net("10.0.0.1/24").unwrap(),
            parse_net("10.0.0.100/32").unwrap(),
            parse_net("192.168.7.0/31").unwrap(),
        ];
        let check = |s: &str| check_host(s.parse().unwrap(), &links);
        for ok in [
            "10.0.0.1",
            "10.0.0.254",
            "10.0.1.0",
            "192.168.7.0",
            "192.168.7.1",
            "223.255.255.254",
            "1.0.0.0",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (ip, why) in [
            ("0.0.0.0", "0.0.0.0/8 means \"this network\""),
            ("0.1.2.3", "0.0.0.0/8 means \"this network\""),
            ("255.255.255.255", "it is the limited broadcast address"),
            ("224.0.0.1", "it is a multicast address (224.0.0.0/4)"),
            ("239.255.255.255", "it is a multicast address (224.0.0.0/4)"),
            ("240.0.0.1", "240.0.0.0/4 is reserved"),
            ("10.0.0.0", "it is the network address of 10.0.0.0/24"),
            ("10.0.0.255", "it is the broadcast address of 10.0.0.0/24"),
        ] {
            assert_eq!(
                check(ip),
                Err(format!("{ip} is not a unicast address: {why}"))
            );
        }
        assert_eq!(
            check("127.0.0.1"),
            Err("127.0.0.1 is a loopback address (127.0.0.0/8), which must never be sent on the wire".into())
        );
    }

    #[test]
    fn test_parse_addr_port() {
        assert_eq!(
            parse_addr_port("10.0.0.1:80"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), Some(80)))
        );
        assert_eq!(
            parse_addr_port("10.0.0.1"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), None))
        );
        assert_eq!(
            parse_addr_port("10.0.0.1:70000"),
            Err("\"10.0.0.1:70000\" is not an IPv4 address with port (a.b.c.d:port)".to_string())
        );
    }
}
