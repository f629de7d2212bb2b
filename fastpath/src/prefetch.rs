//! A cache prefetch hint, the one intrinsic the pure pipeline needs.
//!
//! `unsafe` is otherwise confined to `dpdk-sys` and rvsd's DPDK layer; this hint is here
//! because the connection table (pure, no DPDK) issues it, and std offers no safe form of it.
#![allow(unsafe_code)]

/// Asks the CPU to start loading the cache lines of `value` (its first and last byte: a value
/// of at most 64 bytes spans at most two lines), so that reading it later does not wait for
/// memory. A hint: it reads nothing and changes nothing the program can observe.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    let first = (value as *const T).cast::<i8>();
    let last = first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults nor reads into the program's state, whatever the
    // address; both addresses are within (or at the end of) a live reference anyway. SSE, the
    // intrinsic's target feature, is part of every x86_64 CPU.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(first);
        _mm_prefetch::<_MM_HINT_T0>(last);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (first, last);
}
