//! IPv6 address syntax of the config file: prefixes and the checks an owned or neighbouring
//! IPv6 address must pass. Each parser returns the sentence that ends up in the error after
//! `field: `, as [`crate::net`]'s do for IPv4.

use std::fmt;
use std::net::Ipv6Addr;

/// An IPv6 address with a prefix length: an owned address on its link (`2001:db8::1/64`)
/// or, with the host bits zero, a route destination (`2001:db8:1::/48`, `::/0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    /// The address as written.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
}

impl Ipv6Net {
    /// The address with its host bits cleared.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.addr.to_bits() & prefix_mask(self.prefix_len))
    }

    /// Whether `ip` is inside the prefix.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        ip.to_bits() & mask == self.addr.to_bits() & mask
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The mask of the first `len` bits (`len` ≤ 128).
pub fn prefix_mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Whether `s` is written as an IPv6 address (or prefix): IPv4 has no colons.
pub(crate) fn is_v6(s: &str) -> bool {
    s.contains(':')
}

/// `addr/len`, or a bare address meaning /128 as `ip -6 addr add` reads it.
pub(crate) fn parse_net(s: &str) -> Result<Ipv6Net, String> {
    let bad = || format!("{s:?} is not an IPv6 address or prefix (2001:db8::1/64)");
    let (addr, len) = match s.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (s, None),
    };
    let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
    let prefix_len = match len {
        None => 128,
        Some(len)
            if !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit()) =>
        {
            len.parse::<u8>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if prefix_len > 128 {
        return Err(format!(
            "{s:?}: prefix length {prefix_len} is out of range 0..=128"
        ));
    }
    Ok(Ipv6Net { addr, prefix_len })
}

/// Whether `s` is written as an IPv6 address with or without port: `[2001:db8::1]:80`,
/// `[2001:db8::1]` or `2001:db8::1` (an IPv4 `a.b.c.d:port` has one colon, and a dot before
/// it, which even a mistyped `10.0.0.1:80:80` keeps).
pub(crate) fn is_v6_addr_port(s: &str) -> bool {
    s.starts_with('[')
        || (s.matches(':').count() > 1 && !s.split(':').next().is_some_and(|a| a.contains('.')))
}

/// `[addr]:port` as ipvsadm and URLs write an IPv6 address with port, or `[addr]` or a bare
/// `addr`, which yield port `None`.
pub(crate) fn parse_addr_port(s: &str) -> Result<(Ipv6Addr, Option<u16>), String> {
    let bad = || format!("{s:?} is not an IPv6 address with port ([2001:db8::1]:port)");
    let Some(rest) = s.strip_prefix('[') else {
        return s.parse().map(|ip| (ip, None)).map_err(|_| bad());
    };
    let (addr, port) = rest.split_once(']').ok_or_else(bad)?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
    let port = match port {
        "" => None,
        p => {
            let p = p.strip_prefix(':').ok_or_else(bad)?;
            // u16::from_str alone would take a sign ("+80").
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Some(p.parse::<u16>().map_err(|_| bad())?)
        }
    };
    Ok((addr, port))
}

pub(crate) fn parse_ip(s: &str) -> Result<Ipv6Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv6 address"))
}

/// Whether `ip` is link-local unicast (fe80::/10): valid on every link, so a next hop in it
/// needs no prefix of the port.
pub fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Why `ip` is not the unicast address of one host (or `Ok`), as a sentence to follow
/// `field: `. Refused as Linux refuses them for a neighbour or a gateway, or as martians rvs
/// would put on the wire: the unspecified address, loopback, multicast (ff00::/8), and
/// IPv4-mapped addresses (::ffff:0:0/96, which only a dual-stack socket shows).
pub fn check_host(ip: Ipv6Addr) -> Result<(), String> {
    let not_unicast = |why: &str| Err(format!("{ip} is not a unicast address: {why}"));
    if ip.is_unspecified() {
        return not_unicast("it is the unspecified address ::");
    }
    if ip.is_multicast() {
        return not_unicast("it is a multicast address (ff00::/8)");
    }
    if ip.to_ipv4_mapped().is_some() {
        return not_unicast("it is an IPv4-mapped address (::ffff:0:0/96)");
    }
    if ip.is_loopback() {
        return Err(format!(
            "{ip} is the loopback address ::1, which must never be sent on the wire"
        ));
    }
    Ok(())
}

/// [`check_host`] for an address the balancer owns with prefix `net`: also not the
/// subnet-router anycast address of its own prefix (RFC 4291 §2.6.1: host bits zero, which
/// every router on the link answers for) unless the prefix is /127 or /128, which have none.
pub fn check_owned(net: &Ipv6Net) -> Result<(), String> {
    check_host(net.addr)?;
    if net.prefix_len < 127 && net.addr == net.network() {
        return Err(format!(
            "{} is the subnet-router anycast address of {net}, not a host address",
            net.addr
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prefixes_parse_and_contain() {
        let net = parse_net("2001:db8::1/64").unwrap();
        assert_eq!(net.addr, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(net.prefix_len, 64);
        assert_eq!(net.network(), "2001:db8::".parse::<Ipv6Addr>().unwrap());
        assert!(net.contains("2001:db8::ffff:1".parse().unwrap()));
        assert!(!net.contains("2001:db8:0:1::1".parse().unwrap()));
        assert_eq!(parse_net("2001:db8::100").unwrap().prefix_len, 128);
        let all = parse_net("::/0").unwrap();
        assert!(all.contains("fe80::1".parse().unwrap()));
        assert_eq!(all.to_string(), "::/0");
        let host = parse_net("2001:db8::7/128").unwrap();
        assert!(host.contains("2001:db8::7".parse().unwrap()));
        assert!(!host.contains("2001:db8::6".parse().unwrap()));
        assert_eq!(prefix_mask(0), 0);
        assert_eq!(prefix_mask(128), u128::MAX);
        assert_eq!(prefix_mask(1), 1 << 127);
    }

    #[test]
    fn bad_prefixes_say_why() {
        for s in [
            "2001:db8::1/",
            "2001:db8::1/+8",
            "2001:db8::g/64",
            "2001:db8::1/64/1",
        ] {
            assert_eq!(
                parse_net(s),
                Err(format!(
                    "{s:?} is not an IPv6 address or prefix (2001:db8::1/64)"
                ))
            );
        }
        assert_eq!(
            parse_net("2001:db8::1/129"),
            Err("\"2001:db8::1/129\": prefix length 129 is out of range 0..=128".to_string())
        );
        assert_eq!(
            parse_ip("10.0.0.1"),
            Err("\"10.0.0.1\" is not an IPv6 address".to_string())
        );
    }

    #[test]
    fn addresses_with_ports() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_addr_port("[2001:db8::1]:80"), Ok((ip, Some(80))));
        assert_eq!(parse_addr_port("[2001:db8::1]:0"), Ok((ip, Some(0))));
        assert_eq!(parse_addr_port("[2001:db8::1]"), Ok((ip, None)));
        assert_eq!(parse_addr_port("2001:db8::1"), Ok((ip, None)));
        for s in [
            "[2001:db8::1]:",
            "[2001:db8::1]:+80",
            "[2001:db8::1]:65536",
            "[2001:db8::1]80",
            "[2001:db8::1",
            "2001:db8::1:80:",
            "[10.0.0.1]:80",
            "[fe80::1%2]:80",
        ] {
            assert_eq!(
                parse_addr_port(s),
                Err(format!(
                    "{s:?} is not an IPv6 address with port ([2001:db8::1]:port)"
                )),
                "{s}"
            );
        }
        assert!(is_v6_addr_port("[::1]:80") && is_v6_addr_port("2001:db8::1"));
        assert!(!is_v6_addr_port("10.0.0.1:80") && !is_v6_addr_port("10.0.0.1"));
        assert!(!is_v6_addr_port("10.0.0.1:80:80") && is_v6_addr_port("::ffff:10.0.0.1"));
    }

    #[test]
    fn hosts_are_unicast_and_owned_ones_not_the_subnet_anycast() {
        for ok in ["2001:db8::1", "fe80::1", "fd00::5", "64:ff9b::a00:1"] {
            assert_eq!(check_host(ok.parse().unwrap()), Ok(()), "{ok}");
        }
        for (ip, why) in [
            ("::", "it is the unspecified address ::"),
            ("ff02::1", "it is a multicast address (ff00::/8)"),
            (
                "::ffff:10.0.0.1",
                "it is an IPv4-mapped address (::ffff:0:0/96)",
            ),
        ] {
            assert_eq!(
                check_host(ip.parse().unwrap()),
                Err(format!("{ip} is not a unicast address: {why}"))
            );
        }
        assert_eq!(
            check_host("::1".parse().unwrap()),
            Err("::1 is the loopback address ::1, which must never be sent on the wire".into())
        );
        assert_eq!(
            check_owned(&parse_net("2001:db8::/64").unwrap()),
            Err("2001:db8:: is the subnet-router anycast address of 2001:db8::/64, not a host address".into())
        );
        assert_eq!(check_owned(&parse_net("2001:db8::/127").unwrap()), Ok(()));
        assert_eq!(check_owned(&parse_net("2001:db8::1/64").unwrap()), Ok(()));
        assert!(is_link_local("fe80::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
    }
}
