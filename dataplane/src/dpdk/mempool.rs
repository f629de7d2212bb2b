//! Packet buffer pools.

use super::eal::Eal;
use super::Error;
use std::ffi::CString;
use std::ptr::NonNull;

/// An `rte_pktmbuf` pool. It is never freed on its own: mbufs are plain owned values that may
/// outlive any Rust borrow of the pool, so the pool's memory is released with the rest of EAL's
/// memory by `rte_eal_cleanup` ([`Eal`]'s drop). DPDK mempools are safe to use from several lcores at once (each lcore
/// has its own cache), hence `Send + Sync`.
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put are multi-producer/multi-consumer safe.
unsafe impl Send for Mempool {}
// SAFETY: as above; the pool has no Rust-side mutable state.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs on `socket` (-1 = any), with a per-lcore cache, each
    /// holding a frame of `frame_len` bytes in one segment after the standard headroom: DPDK's
    /// default data room (2048 bytes) or more. Sized for the largest frame a port's MTU
    /// allows, a driver has no reason to chain buffers for a frame it accepts, and a frame
    /// cut into fragments fits one buffer per fragment.
    pub fn new(
        _eal: &Eal,
        name: &str,
        n: u32,
        frame_len: usize,
        socket: i32,
    ) -> Result<Mempool, Error> {
        let cname = CString::new(name).map_err(|_| Error::new("mempool name contains NUL", 22))?;
        let cache = 256.min(n / 8);
        let room = frame_len.max(dpdk_sys::RTE_MBUF_DEFAULT_DATAROOM as usize)
            + dpdk_sys::RTE_PKTMBUF_HEADROOM as usize;
        let room = u16::try_from(room).unwrap_or(u16::MAX);
        // SAFETY: cname is a valid string for the call; EAL is initialised.
        let ptr =
            unsafe { dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, room, socket) };
        NonNull::new(ptr)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| Error::from_rte_errno(format!("create mempool {name} of {n} mbufs")))
    }

    /// Mbufs currently in the pool (not handed out).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for self's lifetime.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }
}
