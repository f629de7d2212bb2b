//! Schedulers for rvs: which dest (real server) gets a new connection, with the
//! semantics of Linux IPVS (`net/netfilter/ipvs/ip_vs_*.c`, summarised in
//! `shared/reference/ipvs-spec.md` §0, §1, §6), plus `ch`, a Maglev table of
//! configurable prime size.
//!
//! Names accepted in the config and by `rvsadm -s`: [`NAMES`]. This crate reads
//! no clock and no random source: time is passed in, and every hash uses fixed
//! keys, so every worker and every balancer computes the same picks.
//!
//! # Shared, immutable data and per-worker state
//!
//! - [`Dests`]: one service's dest list **in kernel order** (new dests at the
//!   head, `ip_vs_ctl.c` `list_add_rcu`) plus everything derived from it that
//!   must not be computed on the fast path: the wrr gcd and max weight, the
//!   256 dh/sh buckets, the mh and ch lookup tables. The control thread builds
//!   it with [`Dests::new`] on every change (`ipvsadm -a/-e/-d`), wraps it in an
//!   `Arc` and publishes it; workers share it read-only and never wait for a
//!   build.
//! - [`Scheduler`]: one per service per worker (it is `Send`, not shared). It
//!   holds the `Arc<Dests>` it picks from and the state the kernel keeps in
//!   `svc->sched_data` that changes per pick: the rr cursor, the wrr mark
//!   (current dest and current weight), the lblc/lblcr caches. The worker
//!   swaps in a new list between bursts with [`Scheduler::set_dests`], which
//!   adjusts that state as the kernel's `add_dest`/`del_dest`/`upd_dest`
//!   hooks do. [`Scheduler::pick`] allocates nothing and takes no lock; the
//!   lblc/lblcr caches are sized once, when the scheduler is bound.
//! - [`DestLoad`]: per-dest connection counters, thresholds and overload flag,
//!   shared by every worker and kept across `Dests` rebuilds (see below).
//!
//! # Connection counters with several workers
//!
//! lc, wlc, sed, nq, lblc and lblcr read activeconns/inactconns, and the
//! thresholds (`-x`/`-y`) compare their sum with a limit. We keep **one shared
//! counter block per dest** ([`DestLoad`]: `AtomicU32`s, `Relaxed`, one cache
//! line) that every worker updates on connection events only, never per
//! packet: [`DestLoad::bind`] when a connection is created, [`DestLoad::activate`]
//! / [`DestLoad::deactivate`] when it enters or leaves ESTABLISHED, and
//! [`DestLoad::unbind`] when it expires. The overload flag is set and cleared
//! in those same calls with the kernel's hysteresis (`ip_vs_bind_dest`,
//! `ip_vs_unbind_dest`, `__ip_vs_update_dest`).
//!
//! The trade-off against per-worker counters:
//! - Shared atomics give every worker the global load, so wlc/sed/nq
//!   balance the dests as one kernel would, thresholds apply to the real total,
//!   and `rvsadm -L` shows the kernel's numbers. The cost is one atomic
//!   read-modify-write on a line that other cores also write, per connection
//!   event (tens of ns under contention), and picks that run at the same time
//!   on two workers may both see the same minimum: the imbalance this causes is
//!   bounded by the number of workers and is corrected by the next picks.
//! - Per-worker counters would cost nothing to update, but each worker would
//!   balance only its own share of the connections: nq's "idle" test and sed's
//!   `active + 1` would be wrong at low load (every worker would send its first
//!   connection to the same dest), and a `-x 100` threshold would become
//!   "100 per worker". We judged exactness worth the atomics, since they are
//!   paid per connection, not per packet.
//!
//! # Where we differ from the kernel (by design)
//!
//! - The kernel applies each `ipvsadm` command to the scheduler state at once;
//!   a worker sees only the `Dests` snapshots it swaps in. If one swap covers
//!   several commands, [`Scheduler::set_dests`] applies them as one change:
//!   deletions as if done before additions (rr cursor), and one wrr
//!   `dest_changed` with the final weights.
//! - lblc/lblcr caches are per worker (no lock on the fast path), so two workers
//!   may cache different dests for one address. A cache holds at most
//!   [`CACHE_LIMIT`] entries; beyond that a pick is still made but not cached,
//!   as when the kernel fails to allocate an entry. lblcr set members whose
//!   dest was deleted are dropped from the set when the worker sees the
//!   deletion (the kernel keeps them, unusable, until the set shrinks).
//! - `ch` has no kernel counterpart; its hashes are defined in [`ch`](crate#ch-maglev-consistent-hashing).
//!
//! # ch: Maglev consistent hashing
//!
//! Maglev (Eisenbud et al., NSDI 2016, §3.4) with a lookup table of prime size
//! M ([`SchedConfig::ch_table_size`], default 65537). Dests with weight 0 get
//! no slots. The table depends only on the *set* of (address, port, weight),
//! not on list order, so balancers configured in a different order agree:
//! - dests are taken in ascending (address, port) order;
//! - each gets `quota = M * w / W` slots (largest remainder rounding, ties to
//!   the lower address), so slot shares equal weight shares to within one slot;
//! - offset = `SipHash-1-3(CH_OFFSET_KEY, addr ++ port) % M`,
//!   skip = `SipHash-1-3(CH_SKIP_KEY, addr ++ port) % (M - 1) + 1`, with the
//!   address in network byte order (4 or 16 bytes) and the port big-endian;
//! - the table is filled in rounds; in each round every dest takes its share of
//!   its quota (spread evenly over the rounds) by Maglev's rule: its next
//!   preferred slot that is still free.
//!
//! A connection goes to slot `(h >> 32) * M >> 32` with
//! `h = SipHash-1-3(CH_LOOKUP_KEY, client addr [++ client port])`; the port is
//! hashed only with the `port` flag and for TCP, UDP and SCTP. An overloaded
//! dest yields no dest, or with the `fallback` flag the owner of the next slot
//! that is available. The keys are the constants `CH_*_KEY` in `ch.rs`.
#![forbid(unsafe_code)]

mod ch;
mod dest;
mod dests;
mod flow;
mod hash;
mod lblc;
mod lblcr;
mod least;
mod mh;
mod rr;
mod scheduler;
mod table;
mod wrr;

#[cfg(test)]
mod tests;

pub use dest::{ConnClass, Dest, DestLoad, MAX_WEIGHT};
pub use dests::{BuildError, Dests, MAX_DESTS};
pub use flow::{FlowKey, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
pub use scheduler::{
    Kind, SchedConfig, SchedFlags, Scheduler, UnknownScheduler, CACHE_LIMIT, CH_MAX_TABLE_SIZE,
    MH_TABLE_SIZES,
};

/// Scheduler names accepted in the config file and by `rvsadm -s`.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "ch", "mh",
];
