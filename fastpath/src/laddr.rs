//! Local addresses for FULLNAT: each FULLNAT connection goes to its real server from a local
//! address and port of the balancer, `LIP:lport`, taken from its service's pool (`laddrs` in
//! the configuration; `ipvsadm -P/-Q/-G` in DPVS and alibaba/LVS). One [`Pool`] per service
//! per worker, owned by the worker: no sharing, no atomics, nothing allocated after
//! [`Pool::new`].
//!
//! ## Which ports a worker uses: the ownership rule ([`owner`])
//!
//! A connection lives in the table of the worker that owns its client side
//! ([`pipeline::owner`](crate::pipeline::owner)); the real server's replies come back to
//! `LIP:lport`, and must reach the same worker. So worker `w` of `W` only hands out ports
//! with
//!
//! ```text
//! lport % W == w          (owner(lport, W) == w)
//! ```
//!
//! and the owner of a packet addressed to a local address is `owner(destination port, W)`
//! (for an ICMP error about a FULLNAT packet: `owner(embedded source port, W)`). This is
//! DPVS's rule (`sa_pool.c`: each lcore owns the ports whose low bits equal its index,
//! `(port & mask) == port_base`, the low bits so that a configured port range does not starve
//! some lcores): with `W` a power of two it is `lport & (W − 1)`, which a NIC flow rule
//! (`rte_flow` on the destination address and the masked destination port, DPVS's FDIR
//! filters) can steer to the right queue without a hand-over ([`crate::steering`],
//! `[dataplane] laddr_steering`); with any `W` the software hand-over works.
//!
//! ## Which pair ([`Pool::alloc`])
//!
//! - **Local address:** round robin over the pool's addresses, as DPVS `__get_laddr` and
//!   alibaba `ip_vs_get_laddr`; with [`Config::skip_percent`] (DPVS: 5, for rr and wrr
//!   services) the round robin skips one address that often, so that a round-robin scheduler
//!   over as many real servers does not pair every real server with the same address forever
//!   (DPVS `__laddr_step`). The skip is drawn from a generator seeded by the caller: pure and
//!   deterministic.
//! - **Port:** each address has a cursor walking, circularly, over the ports this worker owns
//!   in the range (`[dataplane] laddr_ports`; default [`PortRange::DPVS`], 1025..=65535;
//!   alibaba's sysctls give 5000..=65535, [`PortRange::ALIBABA`]). A candidate pair is asked to the caller's
//!   `is_used(lip, lport)`, which answers from the connection table whether a connection of
//!   the same protocol already goes from `LIP:lport` to the chosen `RIP:rport` (the reply
//!   key); a used pair is a *conflict* (counted per address, alibaba's `port_conflict`) and
//!   the cursor moves on. So a pair is never handed out while in use towards the same real
//!   server, and the same pair serves any number of other real servers at once (as alibaba's
//!   lookup does, and as DPVS approximates with 16 per-destination hashed free lists per
//!   address). The cursor keeps going round, so a released port is reused as late as
//!   possible, which gives the real server's TIME_WAIT for that four-tuple the longest time
//!   to end.
//! - **Cost:** one `is_used` lookup per probe; when a fraction `u` of an address's ports is in
//!   use towards that real server, `1/(1 − u)` probes on average. At most
//!   [`Config::probes`] per address (alibaba: `fullnat_lport_tries`, 10000; DPVS: at most
//!   16 addresses), every address tried once per allocation, so the worst case is bounded.
//! - **Exhaustion:** no free pair within the probes of every address:
//!   [`DropReason::LaddrExhausted`], counted in [`Pool::exhausted`]; the new connection is
//!   refused, existing ones are not touched. With [`Config::probes`] ≥ the ports per address
//!   the answer is exact.
//! - **Release** ([`Pool::release`]): when the connection expires; it only updates the
//!   address's connection count: the connection table is the truth about what is in use, so
//!   a missed or repeated release cannot leak or double-allocate a port.
//!
//! The pool keeps per address the current connection count and the conflicts
//! ([`Pool::stats`], for `rvsadm -G`); [`Pool::inherit`] carries them (and the cursors) over
//! to the pool rebuilt by a configuration change.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::verdict::DropReason;

/// The worker that owns local port `lport` among `workers` (at least one): see the module
/// documentation.
pub fn owner(lport: u16, workers: usize) -> usize {
    usize::from(lport).checked_rem(workers).unwrap_or_default()
}

/// An inclusive range of local ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port.
    pub min: u16,
    /// The highest port.
    pub max: u16,
}

impl PortRange {
    /// DPVS's default (`sa_pool.c` `DEF_MIN_PORT`..`DEF_MAX_PORT`), rvs's default.
    pub const DPVS: PortRange = PortRange {
        min: 1025,
        max: 65535,
    };
    /// alibaba/LVS's default (sysctls `fullnat_lport_min`, `fullnat_lport_max`).
    pub const ALIBABA: PortRange = PortRange {
        min: 5000,
        max: 65535,
    };
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::DPVS
    }
}

/// How a [`Pool`] allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The local ports to use.
    pub ports: PortRange,
    /// The most ports probed per local address in one allocation (at least 1 is used).
    pub probes: u32,
    /// How often, in percent, the round robin over local addresses skips one.
    pub skip_percent: u8,
}

impl Config {
    /// The default number of probes per address.
    pub const DEFAULT_PROBES: u32 = 64;
    /// DPVS's skip rate for rr and wrr services.
    pub const DPVS_SKIP_PERCENT: u8 = 5;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ports: PortRange::default(),
            probes: Config::DEFAULT_PROBES,
            skip_percent: Config::DPVS_SKIP_PERCENT,
        }
    }
}

/// Why a [`Pool`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// No local address.
    NoAddress,
    /// The same local address twice.
    DuplicateAddress(Ipv4Addr),
    /// The worker owns no port of the range (empty range, or fewer ports than workers).
    NoPort,
    /// `worker` is not below `workers`.
    BadWorker,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::NoAddress => f.write_str("no local address"),
            BuildError::DuplicateAddress(addr) => write!(f, "local address {addr} twice"),
            BuildError::NoPort => f.write_str("no local port for this worker in the range"),
            BuildError::BadWorker => f.write_str("worker index out of range"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The counters of one local address in one worker's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LipStats {
    /// The local address.
    pub addr: Ipv4Addr,
    /// Connections using it now (allocations minus releases).
    pub conns: u32,
    /// Probes that found the pair in use towards the real server, since start.
    pub conflicts: u64,
}

/// One local address of a pool.
#[derive(Debug, Clone)]
struct Lip {
    stats: LipStats,
    /// Index of the next port to probe among the worker's ports.
    cursor: u32,
}

/// The local addresses of one service in one worker; see the module documentation.
#[derive(Debug, Clone)]
pub struct Pool {
    lips: Box<[Lip]>,
    /// The address the next allocation tries first.
    next: usize,
    /// The worker's ports: `first + k * step` for `k` in `0..count`.
    first: u32,
    step: u32,
    count: u32,
    /// Probes per address and allocation: `min(config.probes, count)`, at least 1.
    probes: u32,
    skip_percent: u8,
    /// State of the skip generator (xorshift64, never 0).
    rng: u64,
    exhausted: u64,
}

impl Pool {
    /// The pool of local addresses `lips` for worker `worker` of `workers`, allocating as
    /// `config` says; `seed` (any value, e.g. the start time) places the port cursors and
    /// seeds the round robin's skips, so that a restart does not reuse the same ports first.
    ///
    /// # Errors
    /// [`BuildError`]: no address, a duplicate address, no port owned by the worker in the
    /// range, or `worker >= workers`.
    pub fn new(
        lips: &[Ipv4Addr],
        config: &Config,
        worker: usize,
        workers: usize,
        seed: u64,
    ) -> Result<Pool, BuildError> {
        if lips.is_empty() {
            return Err(BuildError::NoAddress);
        }
        for (i, addr) in lips.iter().enumerate() {
            if lips.get(..i).is_some_and(|before| before.contains(addr)) {
                return Err(BuildError::DuplicateAddress(*addr));
            }
        }
        let step = u32::try_from(workers).map_err(|_| BuildError::NoPort)?;
        let worker = u32::try_from(worker).map_err(|_| BuildError::BadWorker)?;
        if worker >= step {
            return Err(BuildError::BadWorker);
        }
        let (min, max) = (u32::from(config.ports.min), u32::from(config.ports.max));
        // The first port >= min congruent to worker modulo step.
        let first = min
            .checked_rem(step)
            .and_then(|r| worker.checked_add(step)?.checked_sub(r))
            .and_then(|up| up.checked_rem(step))
            .and_then(|up| min.checked_add(up))
            .ok_or(BuildError::NoPort)?;
        let count = max
            .checked_sub(first)
            .and_then(|span| span.checked_div(step))
            .and_then(|k| k.checked_add(1))
            .ok_or(BuildError::NoPort)?;
        let mut rng = splitmix64(seed) | 1;
        let lips = lips
            .iter()
            .map(|&addr| {
                rng = xorshift64(rng);
                Lip {
                    stats: LipStats {
                        addr,
                        conns: 0,
                        conflicts: 0,
                    },
                    cursor: u32::try_from(rng.checked_rem(u64::from(count)).unwrap_or(0))
                        .unwrap_or(0),
                }
            })
            .collect();
        Ok(Pool {
            lips,
            next: 0,
            first,
            step,
            count,
            probes: config.probes.clamp(1, count),
            skip_percent: config.skip_percent,
            rng,
            exhausted: 0,
        })
    }

    /// Allocate a local address and port for a new connection towards a real server:
    /// `is_used(lip, lport)` says whether a connection of the same protocol from `lip:lport`
    /// to that real server exists. See the module documentation.
    ///
    /// # Errors
    /// [`DropReason::LaddrExhausted`] when every probe found its pair in use (counted in
    /// [`Pool::exhausted`]).
    pub fn alloc(
        &mut self,
        mut is_used: impl FnMut(Ipv4Addr, u16) -> bool,
    ) -> Result<SocketAddrV4, DropReason> {
        let n = self.lips.len();
        let start = self.next_lip();
        for i in 0..n {
            let index = start.wrapping_add(i).checked_rem(n).unwrap_or(0);
            let (first, step, count) = (self.first, self.step, self.count);
            let Some(lip) = self.lips.get_mut(index) else {
                continue;
            };
            for _ in 0..self.probes {
                let port = lip
                    .cursor
                    .checked_mul(step)
                    .and_then(|offset| first.checked_add(offset))
                    .and_then(|port| u16::try_from(port).ok());
                lip.cursor = lip.cursor.wrapping_add(1).checked_rem(count).unwrap_or(0);
                let Some(port) = port else {
                    continue;
                };
                if is_used(lip.stats.addr, port) {
                    lip.stats.conflicts = lip.stats.conflicts.wrapping_add(1);
                    continue;
                }
                lip.stats.conns = lip.stats.conns.saturating_add(1);
                return Ok(SocketAddrV4::new(lip.stats.addr, port));
            }
        }
        self.exhausted = self.exhausted.wrapping_add(1);
        Err(DropReason::LaddrExhausted)
    }

    /// Record the end of a connection that used local address `lip`; false if the pool has
    /// no such address (it was removed by a configuration change).
    pub fn release(&mut self, lip: Ipv4Addr) -> bool {
        match self.lips.iter_mut().find(|l| l.stats.addr == lip) {
            Some(l) => {
                l.stats.conns = l.stats.conns.saturating_sub(1);
                true
            }
            None => false,
        }
    }

    /// Record a connection that uses local address `lip` without having been allocated here
    /// (one a sync master made); false if the pool has no such address.
    pub fn take(&mut self, lip: Ipv4Addr) -> bool {
        match self.lips.iter_mut().find(|l| l.stats.addr == lip) {
            Some(l) => {
                l.stats.conns = l.stats.conns.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Take over the counters of `old`, the pool this one replaces, for the addresses both
    /// have (and their cursors, when the worker's ports are the same), and its exhaustion
    /// count.
    pub fn inherit(&mut self, old: &Pool) {
        let same_ports = (self.first, self.step, self.count) == (old.first, old.step, old.count);
        for lip in self.lips.iter_mut() {
            if let Some(previous) = old.lips.iter().find(|l| l.stats.addr == lip.stats.addr) {
                lip.stats = previous.stats;
                if same_ports {
                    lip.cursor = previous.cursor;
                }
            }
        }
        self.exhausted = old.exhausted;
    }

    /// Return the counters of every local address, in configuration order.
    pub fn stats(&self) -> impl Iterator<Item = LipStats> + '_ {
        self.lips.iter().map(|lip| lip.stats)
    }

    /// Return how many allocations failed for lack of a free pair, since start.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }

    /// Return how many ports of each local address this worker owns.
    pub fn ports_per_address(&self) -> u32 {
        self.count
    }

    /// Return the index of the address to try first, and move the round robin on (by two
    /// every `skip_percent` in a hundred).
    fn next_lip(&mut self) -> usize {
        let n = self.lips.len();
        let current = self.next;
        let mut step = 1usize;
        if self.skip_percent > 0 {
            self.rng = xorshift64(self.rng);
            if self.rng.checked_rem(100).unwrap_or(0) < u64::from(self.skip_percent) {
                step = 2;
            }
        }
        self.next = current.wrapping_add(step).checked_rem(n).unwrap_or(0);
        current
    }
}

/// One step of xorshift64 (Marsaglia 2003); `x` must not be 0.
fn xorshift64(mut x: u64) -> u64 {
    x ^= x.wrapping_shl(13);
    x ^= x.wrapping_shr(7);
    x ^= x.wrapping_shl(17);
    x
}

/// SplitMix64's output function: spreads any seed over the 64 bits.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ z.wrapping_shr(30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ z.wrapping_shr(27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ z.wrapping_shr(31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const LIPS: [Ipv4Addr; 3] = [
        Ipv4Addr::new(10, 1, 0, 100),
        Ipv4Addr::new(10, 1, 0, 101),
        Ipv4Addr::new(10, 1, 0, 102),
    ];

    fn config(min: u16, max: u16, probes: u32, skip_percent: u8) -> Config {
        Config {
            ports: PortRange { min, max },
            probes,
            skip_percent,
        }
    }

    /// The connection table's reply keys towards one real server, as `is_used` sees them.
    type Used = HashSet<(Ipv4Addr, u16)>;

    /// Allocate and record the pair as used.
    fn take(pool: &mut Pool, used: &mut Used) -> Result<SocketAddrV4, DropReason> {
        let local = pool.alloc(|lip, port| used.contains(&(lip, port)))?;
        assert!(
            used.insert((*local.ip(), local.port())),
            "{local} handed out twice"
        );
        Ok(local)
    }

    #[test]
    fn defaults() {
        assert_eq!(
            PortRange::default(),
            PortRange {
                min: 1025,
                max: 65535
            }
        );
        assert_eq!(
            PortRange::ALIBABA,
            PortRange {
                min: 5000,
                max: 65535
            }
        );
        let config = Config::default();
        assert_eq!((config.probes, config.skip_percent), (64, 5));
        let pool = Pool::new(&LIPS, &config, 0, 1, 0).unwrap();
        assert_eq!(pool.ports_per_address(), 64511);
        let pool = Pool::new(&LIPS, &config, 3, 4, 0).unwrap();
        // 1027, 1031, ..., 65535.
        assert_eq!(pool.ports_per_address(), (65535 - 1027) / 4 + 1);
    }

    #[test]
    fn ownership_rule() {
        // Every port a worker hands out maps back to it, whatever the number of workers.
        for workers in 1..=7 {
            for worker in 0..workers {
                let mut pool = Pool::new(&LIPS, &Config::default(), worker, workers, 42).unwrap();
                let mut used = Used::new();
                for _ in 0..500 {
                    let local = take(&mut pool, &mut used).unwrap();
                    assert_eq!(owner(local.port(), workers), worker, "{local}");
                    assert_eq!(usize::from(local.port()) % workers, worker);
                    assert!(local.port() >= 1025);
                }
            }
        }
        assert_eq!(owner(5003, 4), 3);
        assert_eq!(owner(5003, 0), 0);
        // A power of two: the low bits, as an rte_flow mask would match.
        for port in [1025u16, 4096, 65535] {
            assert_eq!(owner(port, 8), usize::from(port & 7));
        }
    }

    #[test]
    fn round_robin_over_addresses() {
        let mut pool = Pool::new(&LIPS, &config(1025, 65535, 64, 0), 0, 1, 7).unwrap();
        let mut used = Used::new();
        for i in 0..30 {
            let local = take(&mut pool, &mut used).unwrap();
            assert_eq!(*local.ip(), LIPS[i % 3], "allocation {i}");
        }
        let conns: Vec<u32> = pool.stats().map(|s| s.conns).collect();
        assert_eq!(conns, [10, 10, 10]);
        // With DPVS's 5 % skip: still spread evenly, but not in lockstep.
        let mut pool = Pool::new(&LIPS, &Config::default(), 0, 1, 7).unwrap();
        let mut used = Used::new();
        let mut sequence = Vec::new();
        for _ in 0..3000 {
            sequence.push(*take(&mut pool, &mut used).unwrap().ip());
        }
        for stats in pool.stats() {
            assert!((900..=1100).contains(&stats.conns), "{stats:?}");
        }
        let lockstep = sequence
            .iter()
            .enumerate()
            .all(|(i, ip)| *ip == LIPS[i % 3]);
        assert!(!lockstep);
    }

    #[test]
    fn one_probe_per_allocation_when_free() {
        let mut pool = Pool::new(&LIPS, &Config::default(), 1, 2, 9).unwrap();
        let mut used = Used::new();
        let mut probes = 0;
        for _ in 0..1000 {
            let local = pool
                .alloc(|lip, port| {
                    probes += 1;
                    used.contains(&(lip, port))
                })
                .unwrap();
            used.insert((*local.ip(), local.port()));
        }
        assert_eq!(probes, 1000);
        assert!(pool.stats().all(|s| s.conflicts == 0));
    }

    #[test]
    fn never_a_used_pair_and_conflicts_counted() {
        // Every other port of the first address is in use towards this real server (by
        // connections of another worker's pool before a reload, say).
        let mut pool = Pool::new(&LIPS[..1], &config(2000, 2099, 64, 0), 0, 1, 0).unwrap();
        let mut used: Used = (2000..2100).step_by(2).map(|p| (LIPS[0], p)).collect();
        let mut probes = 0u64;
        for _ in 0..50 {
            let local = pool
                .alloc(|lip, port| {
                    probes += 1;
                    used.contains(&(lip, port))
                })
                .unwrap();
            assert_eq!(local.port() % 2, 1);
            assert!(used.insert((*local.ip(), local.port())));
        }
        let stats: Vec<LipStats> = pool.stats().collect();
        assert_eq!(stats[0].conns, 50);
        assert_eq!(stats[0].conflicts, probes - 50);
        assert!(stats[0].conflicts > 0);
        // Full now.
        assert_eq!(take(&mut pool, &mut used), Err(DropReason::LaddrExhausted));
    }

    #[test]
    fn exhaustion_release_and_reuse() {
        // Ports 1025..=1034 over two workers: worker 1 owns 1025, 1027, ..., 1033 (5), on
        // two addresses: 10 pairs.
        let lips = &LIPS[..2];
        let mut pool = Pool::new(lips, &config(1025, 1034, 64, 0), 1, 2, 3).unwrap();
        assert_eq!(pool.ports_per_address(), 5);
        let mut used = Used::new();
        let mut taken = Vec::new();
        for _ in 0..10 {
            taken.push(take(&mut pool, &mut used).unwrap());
        }
        let expected: HashSet<(Ipv4Addr, u16)> = lips
            .iter()
            .flat_map(|&lip| [1025, 1027, 1029, 1031, 1033].map(|p| (lip, p)))
            .collect();
        assert_eq!(used, expected);
        assert_eq!(take(&mut pool, &mut used), Err(DropReason::LaddrExhausted));
        assert_eq!(take(&mut pool, &mut used), Err(DropReason::LaddrExhausted));
        assert_eq!(pool.exhausted(), 2);
        assert_eq!(pool.stats().map(|s| s.conns).sum::<u32>(), 10);
        // A connection expires: its pair is free again, and is the one handed out next.
        let freed = taken[3];
        used.remove(&(*freed.ip(), freed.port()));
        assert!(pool.release(*freed.ip()));
        assert_eq!(pool.stats().map(|s| s.conns).sum::<u32>(), 9);
        assert_eq!(take(&mut pool, &mut used), Ok(freed));
        // Unknown address: nothing to release.
        assert!(!pool.release(Ipv4Addr::new(192, 0, 2, 1)));
        // Releasing more than allocated does not wrap.
        for _ in 0..20 {
            pool.release(lips[0]);
        }
        assert_eq!(pool.stats().next().unwrap().conns, 0);
    }

    #[test]
    fn other_real_servers_share_the_pairs() {
        // One address, three ports: each real server can use all three at once.
        let mut pool = Pool::new(&LIPS[..1], &config(6000, 6002, 64, 0), 0, 1, 0).unwrap();
        let mut per_real: Vec<Used> = vec![Used::new(); 3];
        for used in &mut per_real {
            for _ in 0..3 {
                take(&mut pool, used).unwrap();
            }
            assert_eq!(take(&mut pool, used), Err(DropReason::LaddrExhausted));
        }
        assert_eq!(pool.stats().next().unwrap().conns, 9);
    }

    #[test]
    fn probes_bound_the_work() {
        // 1000 ports, all used but the last: with 16 probes per address the pool gives up
        // after 16 × 2 lookups (exhaustion reported although one pair is free).
        let lips = &LIPS[..2];
        let mut pool = Pool::new(lips, &config(1000, 1999, 16, 0), 0, 1, 0).unwrap();
        let mut lookups = 0;
        let result = pool.alloc(|_, port| {
            lookups += 1;
            port != 1999
        });
        assert_eq!(result, Err(DropReason::LaddrExhausted));
        assert_eq!(lookups, 32);
        assert_eq!(pool.stats().map(|s| s.conflicts).sum::<u64>(), 32);
    }

    #[test]
    fn cursor_goes_round_all_ports() {
        // A released port is reused only after every other port has been offered.
        let mut pool = Pool::new(&LIPS[..1], &config(3000, 3009, 64, 0), 0, 1, 11).unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let local = pool.alloc(|_, _| false).unwrap();
            pool.release(*local.ip());
            seen.push(local.port());
        }
        let first: HashSet<u16> = seen[..10].iter().copied().collect();
        assert_eq!(first.len(), 10);
        assert_eq!(seen[..10], seen[10..]);
        assert!(seen.iter().all(|p| (3000..=3009).contains(p)));
        // Other seeds start elsewhere.
        let starts: HashSet<u16> = (0..5)
            .map(|seed| {
                let mut pool =
                    Pool::new(&LIPS[..1], &config(3000, 3009, 64, 0), 0, 1, seed).unwrap();
                pool.alloc(|_, _| false).unwrap().port()
            })
            .collect();
        assert!(starts.len() > 1);
    }

    #[test]
    fn inherit_keeps_counters_and_cursors() {
        let mut old = Pool::new(&LIPS[..2], &config(3000, 3099, 64, 0), 0, 1, 1).unwrap();
        let mut used = Used::new();
        for _ in 0..4 {
            take(&mut old, &mut used).unwrap();
        }
        let _ = old.alloc(|_, _| true);
        // The new configuration drops the first address and adds a third.
        let mut new = Pool::new(&LIPS[1..], &config(3000, 3099, 64, 0), 0, 1, 2).unwrap();
        new.inherit(&old);
        let stats: Vec<LipStats> = new.stats().collect();
        assert_eq!(stats[0], old.stats().nth(1).unwrap());
        assert_eq!(stats[1].conns, 0);
        assert_eq!(new.exhausted(), 1);
        // The cursor of the kept address continues where it was: no pair handed out again.
        let mut next_old = old.clone();
        next_old.next = 1;
        new.next = 0;
        let a = new.alloc(|lip, port| used.contains(&(lip, port))).unwrap();
        let b = next_old
            .alloc(|lip, port| used.contains(&(lip, port)))
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn build_errors() {
        let cfg = Config::default();
        assert_eq!(
            Pool::new(&[], &cfg, 0, 1, 0).err(),
            Some(BuildError::NoAddress)
        );
        assert_eq!(
            Pool::new(&[LIPS[0], LIPS[1], LIPS[0]], &cfg, 0, 1, 0).err(),
            Some(BuildError::DuplicateAddress(LIPS[0]))
        );
        assert_eq!(
            Pool::new(&LIPS, &cfg, 2, 2, 0).err(),
            Some(BuildError::BadWorker)
        );
        assert_eq!(
            Pool::new(&LIPS, &cfg, 0, 0, 0).err(),
            Some(BuildError::BadWorker)
        );
        assert_eq!(
            Pool::new(&LIPS, &config(2000, 1999, 64, 0), 0, 1, 0).err(),
            Some(BuildError::NoPort)
        );
        // 1025..=1026 over 4 workers: workers 2 and 3 own nothing.
        assert!(Pool::new(&LIPS, &config(1025, 1026, 64, 0), 1, 4, 0).is_ok());
        assert!(Pool::new(&LIPS, &config(1025, 1026, 64, 0), 2, 4, 0).is_ok());
        assert_eq!(
            Pool::new(&LIPS, &config(1025, 1026, 64, 0), 3, 4, 0).err(),
            Some(BuildError::NoPort)
        );
        assert_eq!(
            Pool::new(&LIPS, &config(1025, 1026, 64, 0), 0, 4, 0).err(),
            Some(BuildError::NoPort)
        );
        // The whole port space, one worker; and probes clamped to at least 1.
        let mut pool = Pool::new(&LIPS[..1], &config(0, 65535, 0, 100), 0, 1, 0).unwrap();
        assert_eq!(pool.ports_per_address(), 65536);
        assert!(pool.alloc(|_, _| false).is_ok());
        assert_eq!(
            BuildError::NoPort.to_string(),
            "no local port for this worker in the range"
        );
    }

    proptest! {
        /// Any configuration and occupancy: no panic, every pair handed out is owned by the
        /// worker, in range, on a pool address, and was free.
        #[test]
        fn random_pools(
            min in any::<u16>(),
            span in 0u16..200,
            workers in 1usize..10,
            worker in 0usize..10,
            lips in 1usize..4,
            probes in 0u32..50,
            skip in 0u8..=100,
            seed in any::<u64>(),
            occupied in proptest::collection::hash_set((0usize..3, any::<u16>()), 0..100),
            allocations in 0usize..300,
        ) {
            let max = min.saturating_add(span);
            let Ok(mut pool) = Pool::new(&LIPS[..lips], &config(min, max, probes, skip), worker, workers, seed) else {
                return Ok(());
            };
            let mut used: Used = occupied.into_iter().map(|(i, port)| (LIPS[i], port)).collect();
            for _ in 0..allocations {
                match pool.alloc(|lip, port| used.contains(&(lip, port))) {
                    Ok(local) => {
                        prop_assert!(LIPS[..lips].contains(local.ip()));
                        prop_assert_eq!(owner(local.port(), workers), worker);
                        prop_assert!((min..=max).contains(&local.port()));
                        prop_assert!(used.insert((*local.ip(), local.port())));
                    }
                    Err(reason) => prop_assert_eq!(reason, DropReason::LaddrExhausted),
                }
            }
        }
    }
}
