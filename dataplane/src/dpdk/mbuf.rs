//! Owned packet buffers and bursts of them.
//!
//! An [`Mbuf`] is the only owner of its `rte_mbuf`: dropping it returns the buffer to its pool,
//! and sending it (`Burst::tx`) hands ownership to the driver. A [`Burst`] holds up to
//! [`BURST_MAX`] owned mbufs and frees whatever it still holds when dropped, so no path through
//! a worker can leak or double-free a buffer.

use super::mempool::Mempool;
use super::port::{Receive, Transmit};
use dpdk_sys::rte_mbuf;
use fastpath::frame::Frame;
use std::ptr::NonNull;

/// The largest burst rvs handles at once (DPDK's customary 32 is the default; see conf).
pub const BURST_MAX: usize = 64;

/// One owned packet buffer. Received ones may be chained (several segments) until
/// [`Burst::linearize`] has joined them; the [`Frame`] view and every resize require one
/// segment.
pub struct Mbuf {
    ptr: NonNull<rte_mbuf>,
}

// SAFETY: an mbuf is owned by one Mbuf at a time; moving it to another lcore is how DPDK
// hands packets over (rings); the pool it returns to is thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes a buffer from `pool`; `None` when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-null result is a fresh mbuf we now own.
        NonNull::new(unsafe { dpdk_sys::shim_pktmbuf_alloc(pool.as_ptr()) }).map(|ptr| Mbuf { ptr })
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nobody else owns or will free.
    unsafe fn from_raw(ptr: *mut rte_mbuf) -> Option<Mbuf> {
        NonNull::new(ptr).map(|ptr| Mbuf { ptr })
    }

    fn into_raw(self) -> *mut rte_mbuf {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }

    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.ptr.as_ref() }
    }

    /// Number of segments: 1, unless the driver chained buffers for a frame longer than one
    /// buffer holds.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Joins a chained mbuf into its first segment (`rte_pktmbuf_linearize`: the later
    /// segments' data is copied into the first one's tailroom and their buffers freed).
    /// True if the mbuf is one segment now; false, the chain unchanged, when the first
    /// segment has no room for the rest.
    pub fn linearize(&mut self) -> bool {
        if self.segments() == 1 {
            return true;
        }
        // SAFETY: we own a valid mbuf chain; linearize either joins it (freeing the other
        // segments, which belong to the chain) or leaves it as it was.
        unsafe { dpdk_sys::shim_pktmbuf_linearize(self.ptr.as_ptr()) == 0 }
    }
}

/// The frame of an mbuf is its first segment's data: the whole frame once the worker has
/// joined chained mbufs ([`Burst::linearize`]), which it does before the pipeline sees them.
impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: the first segment's data_len bytes at mtod are initialised buffer memory owned
        // by this mbuf; the borrow of self keeps it alive and unaliased.
        unsafe { std::slice::from_raw_parts(dpdk_sys::pktmbuf_mtod(m), usize::from(m.data_len)) }
    }

    #[inline]
    fn len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: as in `data`, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(dpdk_sys::pktmbuf_mtod(self.ptr.as_ptr()), len) }
    }

    fn set_data(&mut self, bytes: &[u8]) -> bool {
        let Ok(len) = u16::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: valid mbuf; tailroom is computed from its own fields.
        let room = unsafe { dpdk_sys::shim_pktmbuf_tailroom(self.ptr.as_ptr()) };
        let current = self.raw().data_len;
        if self.segments() != 1 || u32::from(len) > u32::from(current) + u32::from(room) {
            return false;
        }
        // SAFETY: single segment with enough room (checked above): adjusting the lengths keeps
        // data inside the buffer, and the copy writes exactly `len` bytes at mtod.
        unsafe {
            let m = self.ptr.as_ptr();
            (*m).data_len = len;
            (*m).pkt_len = u32::from(len);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dpdk_sys::pktmbuf_mtod(m), bytes.len());
        }
        true
    }

    fn prepend(&mut self, len: usize) -> bool {
        isize::try_from(len).is_ok_and(|n| self.resize(n, 0))
    }

    fn adj(&mut self, len: usize) -> bool {
        isize::try_from(len).is_ok_and(|n| self.resize(-n, 0))
    }

    fn append(&mut self, len: usize) -> bool {
        isize::try_from(len).is_ok_and(|n| self.resize(0, n))
    }

    fn trim(&mut self, len: usize) -> bool {
        isize::try_from(len).is_ok_and(|n| self.resize(0, -n))
    }
}

impl Mbuf {
    /// Moves the start of a single-segment mbuf's data by `front` bytes (positive grows into
    /// the headroom) and its end by `back` bytes (positive grows into the tailroom).
    fn resize(&mut self, front: isize, back: isize) -> bool {
        if self.segments() != 1 {
            return false;
        }
        let m = self.raw();
        let (off, len) = (m.data_off as isize, m.data_len as isize);
        let buf_len = m.buf_len as isize;
        let (new_off, new_len) = (off - front, len + front + back);
        // The data window must stay inside the buffer: [0, buf_len).
        if new_off < 0 || new_len < 0 || new_off + new_len > buf_len {
            return false;
        }
        // SAFETY: the new window lies within the mbuf's buffer (checked above), and a
        // single-segment mbuf's pkt_len equals its data_len.
        unsafe {
            let m = self.ptr.as_ptr();
            (*m).data_off = new_off as u16;
            (*m).data_len = new_len as u16;
            (*m).pkt_len = new_len as u32;
        }
        true
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nobody refers to it.
        unsafe { dpdk_sys::shim_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// Up to [`BURST_MAX`] owned mbufs, in arrival order.
pub struct Burst {
    ptrs: [*mut rte_mbuf; BURST_MAX],
    len: usize,
}

// SAFETY: a Burst owns its mbufs exactly like a Vec<Mbuf> would.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Burst {
            ptrs: [std::ptr::null_mut(); BURST_MAX],
            len: 0,
        }
    }
}

impl Burst {
    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more mbufs fit.
    pub fn is_full(&self) -> bool {
        self.len == BURST_MAX
    }

    /// Appends `m`; gives it back when the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        match self.ptrs.get_mut(self.len) {
            Some(slot) => {
                *slot = m.into_raw();
                self.len += 1;
                Ok(())
            }
            None => Err(m),
        }
    }

    /// Calls `f` with the frame of every mbuf held, in order (without taking them out).
    pub fn for_each_frame(&self, mut f: impl FnMut(&[u8])) {
        for &p in self.ptrs.get(..self.len).unwrap_or_default() {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: the first `len` pointers are owned, valid mbufs; the slice lives for
                // the call only, while `self` (and so the mbuf) is borrowed.
                let m = unsafe { p.as_ref() };
                // SAFETY: as in `Mbuf::data`: the first segment's data_len bytes at mtod.
                let data = unsafe {
                    std::slice::from_raw_parts(dpdk_sys::pktmbuf_mtod(m), usize::from(m.data_len))
                };
                f(data);
            }
        }
    }

    /// Joins every chained mbuf of the burst into one segment ([`Mbuf::linearize`]); those
    /// that cannot be joined are freed and taken out, the others keep their order. Calls
    /// `dropped` with the length of each one taken out. When nothing is chained, this is one
    /// test of the segment count per mbuf (in the cache line the driver just wrote).
    #[inline]
    pub fn linearize(&mut self, dropped: impl FnMut(u32)) {
        let held = self.ptrs.get(..self.len).unwrap_or_default();
        // SAFETY: the first `len` pointers are owned, valid mbufs.
        if held.iter().all(|&p| unsafe { (*p).nb_segs } == 1) {
            return;
        }
        self.linearize_chained(dropped);
    }

    /// [`Burst::linearize`] for a burst holding chained mbufs.
    #[inline(never)]
    fn linearize_chained(&mut self, mut dropped: impl FnMut(u32)) {
        let len = std::mem::take(&mut self.len);
        for i in 0..len {
            let Some(&ptr) = self.ptrs.get(i) else {
                break;
            };
            // SAFETY: the first `len` pointers were owned, valid mbufs; `len` was reset, so
            // each is taken out exactly once, then put back or freed.
            let Some(mut m) = (unsafe { Mbuf::from_raw(ptr) }) else {
                continue;
            };
            if m.linearize() {
                // Cannot fail: at most `i` mbufs were put back before this one.
                let _ = self.push(m);
            } else {
                dropped(m.raw().pkt_len);
            }
        }
    }

    /// Moves every mbuf out, in order, leaving the burst empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let len = std::mem::take(&mut self.len);
        self.ptrs[..len]
            .iter()
            // SAFETY: the first `len` pointers are owned mbufs; `len` was reset, so each is moved
            // out exactly once.
            .filter_map(|&p| unsafe { Mbuf::from_raw(p) })
    }

    /// Receives up to `max` packets from `queue` into an empty burst; returns how many arrived.
    pub fn rx(&mut self, queue: &impl Receive, max: usize) -> usize {
        debug_assert!(self.is_empty());
        let Some((port, queue)) = queue.rx_ids() else {
            return 0;
        };
        let max = max.min(BURST_MAX) as u16;
        // SAFETY: the queue handle is owned by this thread (handles are unique and not
        // `Clone`); ptrs has room for `max` pointers, and the driver transfers ownership of
        // the returned mbufs to us.
        let n = unsafe { dpdk_sys::shim_rx_burst(port, queue, self.ptrs.as_mut_ptr(), max) };
        self.len = usize::from(n);
        self.len
    }

    /// Sends the burst on `queue`. Mbufs the driver refuses are freed. Returns how many packets
    /// and bytes were sent; the burst is empty afterwards.
    pub fn tx(&mut self, queue: &impl Transmit) -> (usize, u64) {
        let len = std::mem::take(&mut self.len);
        let ptrs = &mut self.ptrs[..len];
        let bytes = |ptrs: &[*mut rte_mbuf]| -> u64 {
            ptrs.iter()
                // SAFETY: every pointer passed here is one of our owned, valid mbufs.
                .map(|&p| u64::from(unsafe { (*p).pkt_len }))
                .sum()
        };
        let total = bytes(ptrs);
        let (port, queue) = queue.tx_ids();
        // SAFETY: the queue handle is owned by this thread; the driver takes ownership of the
        // first `sent` mbufs.
        let sent = usize::from(unsafe {
            dpdk_sys::shim_tx_burst(port, queue, ptrs.as_mut_ptr(), len as u16)
        });
        let Some(unsent) = ptrs.get_mut(sent..) else {
            return (len, total);
        };
        if unsent.is_empty() {
            return (sent, total);
        }
        let unsent_bytes = bytes(unsent);
        // SAFETY: the unsent tail is still ours; free it in one call.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(unsent.as_mut_ptr(), unsent.len() as u32) };
        (sent, total - unsent_bytes)
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are owned mbufs.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpdk::eal::Eal;

    /// A frame of `len` bytes counting up from `first`, in one mbuf from `pool`.
    fn filled(pool: &Mempool, len: usize, first: u8) -> Mbuf {
        let mut m = Mbuf::alloc(pool).expect("an mbuf");
        assert!(m.append(len), "{len} bytes fit one buffer");
        for (i, b) in m.data_mut().iter_mut().enumerate() {
            *b = first.wrapping_add(i as u8);
        }
        m
    }

    /// `head` followed by `tail`, chained as a driver chains the buffers of one long frame.
    fn chained(mut head: Mbuf, tail: Mbuf) -> Mbuf {
        let tail_len = tail.raw().pkt_len;
        let tail = tail.into_raw();
        // SAFETY: both mbufs are ours; the tail's ownership moves into the chain (freed with
        // it), and the head's counts now cover both segments.
        unsafe {
            let m = head.ptr.as_mut();
            m.next = tail;
            m.nb_segs = 2;
            m.pkt_len += tail_len;
        }
        head
    }

    /// Chained mbufs are joined when the first buffer has room for the rest, and taken out of
    /// the burst (the caller told their length) when it has not; the others keep their
    /// order and bytes. Before the join, a chained mbuf's frame is its first segment only.
    /// (DPDK in this test process: EAL can be initialised once per process, and no other
    /// test of this crate does.)
    #[test]
    fn chained_mbufs_are_joined_or_dropped() {
        let args: Vec<String> = [
            "--no-huge",
            "-m",
            "64",
            "--no-pci",
            "--no-shconf",
            "--no-telemetry",
            "--log-level",
            "lib.eal:error",
            "--lcores",
            "0@(0-1)",
            "--file-prefix",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("rvs_mbuf_test_{}", std::process::id())])
        .collect();
        let eal = Eal::init(&args).expect("EAL");
        let pool = Mempool::new(&eal, "mbuf_test", 63, 0, -1).expect("pool");
        let room = dpdk_sys::RTE_MBUF_DEFAULT_DATAROOM as usize;

        let joinable = chained(filled(&pool, 100, 0), filled(&pool, 300, 100));
        assert_eq!((joinable.segments(), joinable.data().len()), (2, 100));
        let plain = filled(&pool, 60, 7);
        let full_head = chained(filled(&pool, room, 0), filled(&pool, 52, 0));
        let mut burst = Burst::default();
        for m in [joinable, plain, full_head] {
            assert!(burst.push(m).is_ok());
        }
        let mut dropped = Vec::new();
        burst.linearize(|len| dropped.push(len));
        assert_eq!(dropped, vec![room as u32 + 52]);
        let left: Vec<Mbuf> = burst.drain().collect();
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].segments(), 1);
        let expected: Vec<u8> = (0..400).map(|i| i as u8).collect();
        assert_eq!(left[0].data(), &expected[..]);
        let plain: Vec<u8> = (7..67).collect();
        assert_eq!(left[1].data(), &plain[..]);
        drop(left);
        // Nothing chained: the burst is left as it is.
        let mut burst = Burst::default();
        assert!(burst.push(filled(&pool, 60, 1)).is_ok());
        burst.linearize(|_| panic!("nothing to drop"));
        assert_eq!(burst.len(), 1);
    }
}
