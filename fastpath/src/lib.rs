//! rvs's packet pipeline: everything between a received Ethernet frame and the frame sent on,
//! pure over byte buffers (no DPDK), so that it builds, runs and is tested anywhere.
//!
//! Stages, in packet order:
//! 1. [`pipeline`]: one worker's state and the walk of one frame: classify (what is it?),
//!    forward (its connection, or a new one), the mode's rewrite, egress (route, next hop).
//! 2. [`wire`]: zero-copy views of each header; parse errors are [`verdict::DropReason`]s.
//! 3. [`l2`]: ARP and ICMP echo answers for owned addresses, neighbours, routes, the egress
//!    cache.
//! 4. [`conn`]: the per-worker connection table, IPVS's TCP state machine and timeouts.
//! 5. [`laddr`]: FULLNAT local addresses and ports.
//! 6. [`xmit`]: the per-forwarding-method rewrites (NAT, DR, TUN, FULLNAT with TOA/PROXY) and
//!    the ICMP errors rvs answers with.
//!
//! Around them: [`frame::Frame`] (what the pipeline works on: a DPDK mbuf in rvsd, a
//! [`frame::VecFrame`] in tests), [`snapshot::Snapshot`] (the immutable configuration the
//! workers read) with its [`service`]s, [`verdict`] (what happens to each frame), and
//! [`sync`] (the IPVS sync protocol's codec, for the thread that syncs connections between
//! directors).
//!
//! Invariants: a worker shares nothing mutable with other workers on the fast path; workers
//! read configuration from an immutable [`snapshot::Snapshot`]; every packet that is not sent
//! is counted under a [`verdict::DropReason`].
#![deny(unsafe_code)]

pub mod conn;
pub mod frame;
pub mod l2;
pub mod laddr;
pub mod pipeline;
mod prefetch;
pub mod service;
mod service_table;
pub mod snapshot;
pub mod sync;
pub mod verdict;
pub mod wire;
pub mod xmit;
