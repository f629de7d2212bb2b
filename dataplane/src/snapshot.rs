//! The immutable view of the configuration that workers read. The control thread builds a new
//! one for every change and publishes it; workers never see a half-applied change.

use crate::dpdk::MacAddr;
use std::net::Ipv4Addr;

/// One port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    /// The port's MAC address (source of every frame rvs sends on it).
    pub mac: MacAddr,
    /// Addresses the balancer owns on this link (answers ARP and ICMP echo for them).
    pub addrs: Vec<Ipv4Addr>,
}

/// Everything a worker needs to process packets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Ports, indexed like `Verdict::Tx::port`.
    pub ports: Vec<PortView>,
}

impl Snapshot {
    /// The snapshot of `config`, with each port's MAC as the device reports it (`macs` in
    /// config port order).
    pub fn new(config: &conf::Config, macs: &[MacAddr]) -> Snapshot {
        Snapshot {
            ports: config
                .ports
                .iter()
                .zip(macs)
                .map(|(p, &mac)| PortView {
                    mac,
                    addrs: p.addrs.iter().map(|net| net.addr).collect(),
                })
                .collect(),
        }
    }

    /// Whether `ip` is owned on port `port` (ARP answers only on the link an address lives on).
    pub fn owns_on(&self, port: usize, ip: Ipv4Addr) -> bool {
        self.ports.get(port).is_some_and(|p| p.addrs.contains(&ip))
    }

    /// Whether `ip` is owned on any port.
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| p.addrs.contains(&ip))
    }
}
