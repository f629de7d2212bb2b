//! Raw bindings to the system DPDK, generated at build time by bindgen over `shim/shim.h`, plus
//! the `shim_*` forwarders for DPDK's `static inline` hot path. Nothing here is safe to call
//! without reading the DPDK documentation; `dataplane::dpdk` is the safe layer.
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unsafe_op_in_unsafe_fn
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `rte_pktmbuf_mtod`: pointer to the first data byte of a segment (a macro in DPDK).
///
/// # Safety
/// `m` must point to a valid `rte_mbuf`.
#[inline(always)]
pub unsafe fn pktmbuf_mtod(m: *const rte_mbuf) -> *mut u8 {
    // SAFETY: the caller guarantees `m` is valid; buf_addr + data_off stays inside the buffer.
    unsafe { ((*m).buf_addr as *mut u8).add((*m).data_off as usize) }
}
