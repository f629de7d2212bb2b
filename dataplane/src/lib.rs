//! rvsd, the rvs data plane.
//!
//! Packets flow through these stages, each in its own file:
//! 1. [`worker`]: `rx_burst` on the worker's queue of every port, one verdict per packet, tx
//!    grouped by port, counters published between bursts.
//! 2. [`process`]: the pipeline entry, pure over a [`frame::Frame`]: Ethernet dispatch.
//! 3. [`l2`]: ARP answers for owned addresses, ICMP echo for owned addresses.
//! 4. [`wire`]: zero-copy views of each header; parse errors are [`verdict::DropReason`]s.
//! 5. [`xmit`]: the per-forwarding-method rewrites (NAT, DR, TUN), pure over the frame.
//!
//! Invariants: a worker shares nothing mutable with other workers on the fast path; workers
//! read configuration from an immutable [`snapshot::Snapshot`]; every packet that is not sent
//! is counted under a [`verdict::DropReason`].
#![deny(unsafe_code)]

pub mod admin;
pub mod conn;
pub mod dpdk;
pub mod forward;
pub mod frame;
pub mod host;
pub mod l2;
pub mod laddr;
pub mod process;
pub mod prometheus;
pub mod report;
pub mod service;
pub mod snapshot;
pub mod stats;
pub mod steering;
pub mod verdict;
pub mod wire;
pub mod worker;
pub mod xmit;
