//! The safe layer over `dpdk-sys`: EAL, lcores, mempools, mbufs, ports and flow rules.
//!
//! This module and `dpdk-sys` are the only places in rvs with `unsafe` code. Everything above
//! it sees owned values: an [`mbuf::Mbuf`] frees itself when dropped and is consumed when sent,
//! so an mbuf can be neither leaked nor freed twice; a [`port::Queue`] is a non-cloneable handle
//! that exactly one worker owns; lcores are launched in a [`lcore::scope`] that cannot return
//! before every worker has stopped, so workers may borrow ports and pools.
#![allow(unsafe_code)]

pub mod eal;
pub mod flow;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod twin;

use std::ffi::CStr;
use std::fmt;

/// A failed DPDK call: what was attempted and DPDK's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: String,
    errno: i32,
}

impl Error {
    /// An error for `what`, with DPDK's (positive) errno.
    pub(crate) fn new(what: impl Into<String>, errno: i32) -> Self {
        Error {
            what: what.into(),
            errno: errno.abs(),
        }
    }

    /// An error for `what` after a call that reports through `rte_errno`.
    pub(crate) fn from_rte_errno(what: impl Into<String>) -> Self {
        // SAFETY: reads a thread-local integer.
        let errno = unsafe { dpdk_sys::shim_errno() };
        Error::new(what, errno)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
        let reason = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(self.errno)) };
        write!(f, "{}: {}", self.what, reason.to_string_lossy())
    }
}

impl std::error::Error for Error {}

/// Converts a DPDK return code (negative errno on failure) into a `Result`.
pub(crate) fn check(rc: i32, what: impl FnOnce() -> String) -> Result<i32, Error> {
    if rc < 0 {
        Err(Error::new(what(), rc))
    } else {
        Ok(rc)
    }
}

/// A 6-byte Ethernet address.
/// A 6-byte Ethernet address, as DPDK reports a port's.
pub type MacAddr = [u8; 6];
