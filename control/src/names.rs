//! Host and service names for `rvsadm` without `-n`.
//!
//! ipvsadm turns names into addresses and ports with `gethostbyname`/`getservbyname`, and back
//! with `gethostbyaddr`/`getservbyport`. rvsadm reads `/etc/services` for ports both ways and
//! `/etc/hosts` for addresses both ways; a host name not in `/etc/hosts` is resolved through
//! the system resolver (`getaddrinfo`, DNS included). Reverse lookups never go to DNS: a listing
//! must not hang on an unreachable name server, and `-n` is what scripts use anyway.
//!
//! IPv6 addresses have no names either way, as in ipvsadm: a name given for an address
//! resolves to IPv4 only (`host_to_addr` fills a `struct in_addr`), and a listing prints an
//! IPv6 address as numbers even without `-n` (its `gethostbyaddr` is passed the length of an
//! IPv4 address with `AF_INET6`, which glibc answers with no name); ports are named.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use conf::Proto;

/// The name tables.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// `/etc/hosts` entries: address and its names, canonical name first, in file order.
    hosts: Vec<(Ipv4Addr, Vec<String>)>,
    /// `/etc/services` entries: port, protocol and names, official name first, in file order.
    services: Vec<(u16, String, Vec<String>)>,
    /// Whether a host name missing from `hosts` goes to the system resolver.
    system: bool,
}

impl Names {
    /// The system's tables, with the system resolver behind `/etc/hosts`. Unreadable files
    /// count as empty.
    pub fn system() -> Names {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        Names {
            system: true,
            ..Names::from_tables(&read("/etc/hosts"), &read("/etc/services"))
        }
    }

    /// Tables in the format of `/etc/hosts` and `/etc/services`, with no system resolver.
    pub fn from_tables(hosts: &str, services: &str) -> Names {
        let fields = |line: &str| -> Vec<String> {
            line.split('#')
                .next()
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect()
        };
        let hosts = hosts
            .lines()
            .filter_map(|l| {
                let mut f = fields(l);
                let ip: Ipv4Addr = f.first()?.parse().ok()?;
                f.remove(0);
                (!f.is_empty()).then_some((ip, f))
            })
            .collect();
        let services = services
            .lines()
            .filter_map(|l| {
                let mut f = fields(l);
                if f.len() < 2 {
                    return None;
                }
                let (port, proto) = f[1].split_once('/')?;
                let port = port.parse().ok()?;
                let proto = proto.to_string();
                f.remove(1);
                Some((port, proto, f))
            })
            .collect();
        Names {
            hosts,
            services,
            system: false,
        }
    }

    /// The canonical name of `ip`.
    pub fn host_name(&self, ip: Ipv4Addr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|(a, _)| *a == ip)
            .map(|(_, names)| names[0].as_str())
    }

    /// The official name of `port` for `proto`.
    pub fn port_name(&self, port: u16, proto: Proto) -> Option<&str> {
        self.services
            .iter()
            .find(|(p, pr, _)| *p == port && pr == proto.as_str())
            .map(|(_, _, names)| names[0].as_str())
    }

    /// The address of host `name`.
    pub fn host(&self, name: &str) -> Option<Ipv4Addr> {
        if let Some((ip, _)) = self
            .hosts
            .iter()
            .find(|(_, names)| names.iter().any(|n| n == name))
        {
            return Some(*ip);
        }
        if !self.system {
            return None;
        }
        (name, 0).to_socket_addrs().ok()?.find_map(|a| match a {
            SocketAddr::V4(a) => Some(*a.ip()),
            SocketAddr::V6(_) => None,
        })
    }

    /// The port of service `name` for `proto`.
    pub fn port(&self, name: &str, proto: Proto) -> Option<u16> {
        self.services
            .iter()
            .find(|(_, pr, names)| pr == proto.as_str() && names.iter().any(|n| n == name))
            .map(|(port, _, _)| *port)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const HOSTS: &str = "127.0.0.1 localhost\n# 10.0.0.9 commented\n\
        10.0.0.100 vip.example vip # the vip\n10.0.0.100 other\n::1 localhost6\n10.0.0.7\n";
    const SERVICES: &str = "http 80/tcp www # WorldWideWeb HTTP\nhttp 80/udp\n\
        domain 53/tcp\ndomain 53/udp\nbroken\nbad x/tcp\n";

    #[test]
    fn test_lookups() {
        let n = Names::from_tables(HOSTS, SERVICES);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(n.host_name(vip), Some("vip.example"));
        assert_eq!(n.host_name(Ipv4Addr::new(10, 0, 0, 7)), None);
        assert_eq!(n.host_name(Ipv4Addr::new(10, 0, 0, 9)), None);
        assert_eq!(n.host("vip"), Some(vip));
        assert_eq!(n.host("other"), Some(vip));
        assert_eq!(n.host("localhost6"), None);
        assert_eq!(n.host("nowhere.invalid"), None);
        assert_eq!(n.port_name(80, Proto::Tcp), Some("http"));
        assert_eq!(n.port_name(53, Proto::Udp), Some("domain"));
        assert_eq!(n.port_name(81, Proto::Tcp), None);
        assert_eq!(n.port("www", Proto::Tcp), Some(80));
        assert_eq!(n.port("www", Proto::Udp), None);
        assert_eq!(n.port("domain", Proto::Udp), Some(53));
    }
}
