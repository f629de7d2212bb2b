//! Schedulers for rvs: which dest (real server) gets a new connection, with the
//! semantics of Linux IPVS (`net/netfilter/ipvs/ip_vs_*.c`, summarised in
//! `shared/reference/ipvs-spec.md` §0, §1, §6), plus `ch`, a Maglev table of
//! configurable prime size.
//!
//! Names accepted in the config and by `rvsadm -s`: [`NAMES`]. This crate reads
//! no clock and no random source: time is passed in, and every hash uses fixed
//! keys, so every worker and every balancer computes the same picks.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sched::{ConnClass, Dest, DestLoad, Dests, FlowKey, Kind, SchedConfig, Scheduler};
//!
//! // Control thread, on every change: the list in kernel order (the dest
//! // added last first), loads kept from the previous list.
//! let a = Dest::new("10.0.0.1:80".parse()?, 3, Arc::new(DestLoad::new(0, 0)));
//! let b = Dest::new("10.0.0.2:80".parse()?, 1, Arc::new(DestLoad::new(0, 0)));
//! let kind: Kind = "wrr".parse()?;
//! let dests = Arc::new(Dests::new(kind, SchedConfig::default(), vec![a, b])?);
//!
//! // Each worker: its own scheduler on the shared list.
//! let mut sched = Scheduler::bind(Arc::clone(&dests));
//! let flow = FlowKey::v4(sched::IPPROTO_TCP, "192.0.2.7".parse()?, 40000, "198.51.100.1".parse()?, 80);
//! let picks: Vec<usize> = (0..4).filter_map(|_| sched.pick(&flow, Duration::ZERO)).collect();
//! assert_eq!(picks, [0, 0, 0, 1]);
//!
//! // The connection table counts the connection on its dest.
//! let load = &sched.dests().as_slice()[picks[0]].load;
//! load.bind(ConnClass::Inactive); // new connection (SYN)
//! load.activate(); // ESTABLISHED
//! assert_eq!(load.activeconns(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
//!   `dest_changed` with the final weights. A worker that first binds to a
//!   service with all its dests behaves like `ipvsadm -E -s` (wrr starts at
//!   cw = mw), one that saw the dests added one by one like `ipvsadm -a`.
//! - lblc/lblcr caches are per worker (no lock on the fast path), so two workers
//!   may cache different dests for one address. Each cache is sized once
//!   (about 1.3 MiB, lblcr 2 MiB): the periodic check trims it above [`CACHE_LIMIT`]
//!   entries as the kernel does, and at 1.5 × that a pick is still made but
//!   not cached, as when the kernel fails to allocate an entry. lblcr set
//!   members whose dest was deleted leave the set when the worker sees the
//!   deletion (the kernel keeps them, unusable, until the set shrinks).
//! - `ch` has no kernel counterpart; see below.
//!
//! # ch: Maglev consistent hashing
//!
//! Maglev (Eisenbud et al., NSDI 2016, §3.4) with a lookup table of prime size
//! M ([`SchedConfig::ch_table_size`], default 65537). The table depends only
//! on the *set* of (address, port, weight), not on list order, so balancers
//! configured in a different order agree. Definition (pinned by tests that
//! an independent implementation reproduces):
//! - dests with weight 0 get no slots; the others are taken in ascending
//!   (address, port) order;
//! - each gets `quota = M * w / W` slots, rounding by largest remainder (ties
//!   to the lower address), so shares equal weight shares to within one slot;
//! - offset = `SipHash-1-3(K_OFFSET, key) % M`,
//!   skip = `SipHash-1-3(K_SKIP, key) % (M - 1) + 1`, where `key` is the
//!   address in network byte order (4 or 16 bytes) then the port big-endian;
//! - the fill runs `R = min(max quota, max(1, M / N))` rounds; in each round a
//!   dest's taken count rises to `round * quota / R` (Bresenham), each take
//!   being Maglev's rule: its next permutation position
//!   `(offset + j * skip) % M` that is still free.
//!
//! A connection goes to slot `((h >> 32) * M) >> 32` with
//! `h = SipHash-1-3(K_LOOKUP, client address [++ client port big-endian])`;
//! the port is hashed only with the `port` flag and for TCP, UDP and SCTP.
//! An overloaded dest yields no dest, or with the `fallback` flag the owner of
//! the next available slot (slot + 1, + 2, ... wrapping). The keys, as
//! (k0, k1), are "rvs-ch-l" "ookup", "rvs-ch-o" "ffset", "rvs-ch-s" "kip" read
//! as big-endian u64s, zero-padded: K_LOOKUP = (0x7276732d63682d6c,
//! 0x6f6f6b7570000000), K_OFFSET = (0x7276732d63682d6f, 0x6666736574000000),
//! K_SKIP = (0x7276732d63682d73, 0x6b69700000000000).
//!
//! Disruption (measured, see `tests/ch.rs`): removing one of N dests moves its
//! flows plus on average 0.05% (N = 3) to 0.6% (N = 100) of the others'; adding
//! one moves its 1/(N+1) share plus about as much. Like the kernel's mh and the
//! paper, this is not a hard bound: a rare small service can see more (17% once
//! in 3000 random 3-dest sets), and two dests whose skips coincide (about
//! N²/2M of sets) trade many flows between them on any change.
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
