//! Kernel twins: virtual ethdevs hot-plugged at run time (`rte_vdev_init`) that the kernel
//! sees as a network interface.
//!
//! - `net_tap` (`iface=<name>,mac=<mac>`): a TAP device. One `readv`/`writev` per packet;
//!   idle polls cost nothing thanks to its "Rx trigger": DPDK 22.11's net_tap takes the
//!   first real-time signal (from `SIGRTMIN`) whose handler is still the default, installs
//!   its own, and asks the kernel for that signal when a packet waits (`F_SETSIG`,
//!   `O_ASYNC`). Measured here: rvsd's caught signals are SIGHUP, SIGINT, SIGTERM
//!   (signal-hook), SIGBUS/SIGSEGV (Rust's stack guard) and signal 35 (the trigger), not
//!   SIGIO; signal-hook never touches real-time signals, so the two coexist. The signal may
//!   interrupt a blocking system call in any thread (rvs's netlink code retries `EINTR`),
//!   and must never be blocked in every thread, or the tap would never see a packet.
//!   The device is not persistent, so the kernel deletes it when its descriptors close,
//!   also when rvsd is killed.
//! - `virtio_user` over `/dev/vhost-net` (`path=/dev/vhost-net,queues=1,queue_size=1024,
//!   iface=<name>,mac=<mac>`): the vhost kernel thread copies through shared rings, DPVS's
//!   and Gatekeeper's exception path. The kernel side is a TAP device vhost-net opens, which
//!   also vanishes with the process.
//!
//! [`Twin`] owns the device: dropping it stops and closes the port, then removes the device
//! (`rte_vdev_uninit`), which deletes the interface.

use super::mempool::Mempool;
use super::port::{Port, PortSetup};
use super::{Error, MacAddr};
use std::ffi::CString;
use std::path::Path;

/// The vhost-net device `virtio_user` needs.
pub const VHOST_NET: &str = "/dev/vhost-net";

/// Descriptors per virtio_user queue (DPVS's choice).
const VIRTIO_QUEUE_SIZE: u16 = 1024;

/// The device behind a twin, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinKind {
    /// `net_tap`.
    Tap,
    /// `virtio_user` over vhost-net.
    VirtioUser,
}

impl TwinKind {
    /// The kind `kind` asks for: `auto` is virtio_user when `vhost_net` can be opened for
    /// reading and writing (what virtio_user does with it), else tap.
    pub fn resolve(kind: conf::ExceptionKind, vhost_net: &Path) -> TwinKind {
        match kind {
            conf::ExceptionKind::Tap => TwinKind::Tap,
            conf::ExceptionKind::VirtioUser => TwinKind::VirtioUser,
            conf::ExceptionKind::Auto => {
                let opens = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(vhost_net)
                    .is_ok();
                if opens {
                    TwinKind::VirtioUser
                } else {
                    TwinKind::Tap
                }
            }
        }
    }

    /// The DPDK driver name.
    pub fn driver(self) -> &'static str {
        match self {
            TwinKind::Tap => "net_tap",
            TwinKind::VirtioUser => "virtio_user",
        }
    }
}

/// The vdev name and devargs of the twin `iface` with `mac`. The name starts with the
/// driver's, which is how `rte_vdev_init` picks the driver.
pub fn devargs(kind: TwinKind, iface: &str, mac: MacAddr) -> (String, String) {
    let mac = mac.map(|b| format!("{b:02x}")).join(":");
    let name = format!("{}_{iface}", kind.driver());
    let args = match kind {
        TwinKind::Tap => format!("iface={iface},mac={mac}"),
        TwinKind::VirtioUser => format!(
            "path={VHOST_NET},queues=1,queue_size={VIRTIO_QUEUE_SIZE},iface={iface},mac={mac}"
        ),
    };
    (name, args)
}

/// A hot-plugged virtual device, removed (`rte_vdev_uninit`) when dropped.
struct Vdev {
    name: CString,
    iface: String,
}

impl Drop for Vdev {
    fn drop(&mut self) {
        // SAFETY: the name is a valid C string of a device this value created; its port is
        // closed by now (see `Twin`'s field order).
        let rc = unsafe { dpdk_sys::rte_vdev_uninit(self.name.as_ptr()) };
        if rc < 0 {
            log::warn!("twin {}: rte_vdev_uninit failed ({rc})", self.iface);
        }
    }
}

/// A started twin device: one rx/tx queue pair (take it with `port().take_queues()`), removed
/// when dropped.
pub struct Twin<'pool> {
    // Field order is drop order: the port stops and closes before the device is removed.
    port: Port<'pool>,
    vdev: Vdev,
    kind: TwinKind,
}

impl<'pool> Twin<'pool> {
    /// Creates the interface `iface` (`kind`) with the port's `mac` and `mtu`, and starts it
    /// with one queue pair whose receive buffers come from `pool`.
    pub fn create(
        kind: TwinKind,
        iface: &str,
        mac: MacAddr,
        mtu: u16,
        pool: &'pool Mempool,
    ) -> Result<Twin<'pool>, Error> {
        let (name, args) = devargs(kind, iface, mac);
        let what = || format!("twin {iface}: {name},{args}");
        let cname = CString::new(name.as_str()).map_err(|_| Error::new(what(), 22))?;
        let cargs = CString::new(args.as_str()).map_err(|_| Error::new(what(), 22))?;
        // SAFETY: both strings are valid NUL-terminated C strings for the call; EAL is up
        // (the pool proves it).
        let rc = unsafe { dpdk_sys::rte_vdev_init(cname.as_ptr(), cargs.as_ptr()) };
        super::check(rc, what)?;
        // From here on the device exists: dropping `vdev` removes it on any error below.
        let vdev = Vdev {
            name: cname,
            iface: iface.to_owned(),
        };
        let mut id = 0u16;
        // SAFETY: valid string, `id` writable.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(vdev.name.as_ptr(), &mut id) };
        super::check(rc, || format!("twin {iface}: no ethdev named {name}"))?;
        let setup = PortSetup {
            id,
            queues: 1,
            // The devargs set it.
            mac: None,
            mtu: Some(mtu),
            exception_tx: false,
        };
        let port = Port::start(&setup, pool).inspect_err(|_| {
            // SAFETY: the port was configured (maybe started) but no handle to it exists;
            // closing it before the device goes is what `Port`'s drop would do.
            unsafe {
                dpdk_sys::rte_eth_dev_stop(id);
                dpdk_sys::rte_eth_dev_close(id);
            }
        })?;
        Ok(Twin { port, vdev, kind })
    }

    /// The started port (its single queue pair, stats, MAC).
    pub fn port(&self) -> &Port<'pool> {
        &self.port
    }

    /// The kernel's name of the interface.
    pub fn iface(&self) -> &str {
        &self.vdev.iface
    }

    /// The device kind.
    pub fn kind(&self) -> TwinKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devargs_per_kind() {
        let mac = [0x02, 0, 0, 0xab, 0xcd, 0x01];
        assert_eq!(
            devargs(TwinKind::Tap, "rvs0", mac),
            (
                "net_tap_rvs0".to_owned(),
                "iface=rvs0,mac=02:00:00:ab:cd:01".to_owned()
            )
        );
        assert_eq!(
            devargs(TwinKind::VirtioUser, "rvs1", mac),
            (
                "virtio_user_rvs1".to_owned(),
                "path=/dev/vhost-net,queues=1,queue_size=1024,iface=rvs1,mac=02:00:00:ab:cd:01"
                    .to_owned()
            )
        );
    }

    #[test]
    fn auto_resolves_by_whether_vhost_net_opens() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("vhost-net");
        assert_eq!(
            TwinKind::resolve(conf::ExceptionKind::Auto, &missing),
            TwinKind::Tap
        );
        std::fs::write(&missing, b"").unwrap();
        assert_eq!(
            TwinKind::resolve(conf::ExceptionKind::Auto, &missing),
            TwinKind::VirtioUser
        );
        assert_eq!(
            TwinKind::resolve(conf::ExceptionKind::Tap, &missing),
            TwinKind::Tap
        );
        assert_eq!(
            TwinKind::resolve(conf::ExceptionKind::VirtioUser, dir.path()),
            TwinKind::VirtioUser
        );
    }
}
