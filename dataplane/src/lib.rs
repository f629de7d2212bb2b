//! rvsd, the rvs daemon: DPDK ports and workers around the pure packet pipeline of the
//! [`fastpath`] crate, the control socket, counters and metrics.
//!
//! - [`dpdk`]: the safe layer over `dpdk-sys` (the only `unsafe` code of rvsd).
//! - [`worker`]: the per-lcore loop: `rx_burst` on the worker's queue of every port, the
//!   pipeline's verdict per packet, tx grouped by port, the between-burst work; [`idle`]:
//!   adaptive polling, its back-off when no packet comes.
//! - [`checker`]: the `rvscheck` child process.
//! - [`admin`]: the control socket's handler; [`steering`]: NIC flow rules for FULLNAT replies.
//! - [`stats`], [`report`], [`prometheus`]: counters, `--stats-json`, `/metrics`.
#![deny(unsafe_code)]

pub mod admin;
pub mod checker;
pub mod dpdk;
pub mod host;
pub mod idle;
pub mod metrics;
pub mod report;
pub mod stats;
pub mod steering;
pub mod sync;
pub mod worker;
