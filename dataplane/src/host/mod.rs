//! The host path: each DPDK port may have a kernel twin, an ethdev the kernel sees as an
//! ordinary interface (`rvs0`) carrying the port's MAC.
//!
//! - [`punt`]: workers hand frames for the kernel (ARP, traffic to kernel-owned addresses,
//!   non-IPv4, link-local multicast) to the exception thread over bounded per-worker rings,
//!   after a per-port token bucket ([`bucket`]); overflow is counted per reason.
//! - [`exception`]: one thread moves those frames into each twin, and what the kernel sends
//!   on a twin out of its DPDK port through a tx queue only that thread uses.
//! - [`netlink`]: puts the port's addresses on its twin at start and follows the twin's IPv4
//!   addresses (`ip addr add`, keepalived) over rtnetlink.
//!
//! The twin is created after the ports start and removed before they stop
//! ([`crate::dpdk::twin`]); the kernel removes it by itself when rvsd dies.

pub mod bucket;
pub mod exception;
pub mod netlink;
pub mod punt;

use crate::dpdk::mempool::Mempool;
use crate::dpdk::port::Port;
use crate::dpdk::twin::{Twin, TwinKind, VHOST_NET};

/// Creates the twin of every port that has `exception` in `config` (`ports` in config
/// order), puts the port's addresses on it and sets it up. Returns (port index, twin) pairs;
/// any failure is a start-up error naming the port and the twin.
pub fn start_twins<'pool>(
    config: &conf::Config,
    ports: &[Port<'pool>],
    pool: &'pool Mempool,
) -> Result<Vec<(usize, Twin<'pool>)>, String> {
    let mut twins = Vec::new();
    for (index, (p, port)) in config.ports.iter().zip(ports).enumerate() {
        let Some(exception) = &p.exception else {
            continue;
        };
        let kind = TwinKind::resolve(exception.kind, std::path::Path::new(VHOST_NET));
        if exception.kind == conf::ExceptionKind::Auto {
            log::info!(
                "port {}: twin {} is {} ({VHOST_NET} {})",
                p.name,
                exception.iface,
                kind.driver(),
                if kind == TwinKind::VirtioUser {
                    "opens"
                } else {
                    "cannot be opened"
                }
            );
        }
        let twin = Twin::create(kind, &exception.iface, port.mac(), p.mtu, pool).map_err(|e| {
            // virtio_user cannot tell its backend without the device: say so.
            let hint = match (kind, vhost_net_error()) {
                (TwinKind::VirtioUser, Some(why)) => {
                    format!(" ({VHOST_NET}: {why}; kind = \"tap\" needs no vhost-net)")
                }
                _ => String::new(),
            };
            format!(
                "port {}: cannot create its kernel twin {} ({}): {e}{hint}",
                p.name,
                exception.iface,
                kind.driver()
            )
        })?;
        netlink::configure_twin(&exception.iface, &p.addrs, &p.addrs6)
            .map_err(|e| format!("port {}: {e}", p.name))?;
        log::info!(
            "port {}: kernel twin {} ({}, port {}), punt_pps {}",
            p.name,
            exception.iface,
            kind.driver(),
            twin.port().id(),
            exception.punt_pps
        );
        twins.push((index, twin));
    }
    Ok(twins)
}

/// Why `/dev/vhost-net` cannot be opened, if it cannot.
fn vhost_net_error() -> Option<std::io::Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(VHOST_NET)
        .err()
}
