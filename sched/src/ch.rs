//! ch: Maglev consistent hashing with a table of configurable prime size
//! (Eisenbud et al., "Maglev", NSDI 2016, §3.4), weighted. The exact
//! definition, which other implementations can reproduce, is in the crate
//! docs; the keys are below.

use std::cmp::Reverse;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

use siphasher::sip::SipHasher13;

use crate::dest::Dest;
use crate::flow::FlowKey;
use crate::scheduler::SchedFlags;

/// Default M: the paper's 65537, so that 1000 dests still differ in load by
/// only ~1.5% (N/M) and the table (128 KiB) stays in L2.
pub(crate) const DEFAULT_TABLE_SIZE: u32 = 65537;

/// SipHash-1-3 keys ("rvs-ch-lookup/offset/skip" in ASCII, zero-padded):
/// fixed so that every process and every balancer computes the same table.
pub(crate) const CH_LOOKUP_KEY: (u64, u64) = (0x7276_732d_6368_2d6c, 0x6f6f_6b75_7000_0000);
const CH_OFFSET_KEY: (u64, u64) = (0x7276_732d_6368_2d6f, 0x6666_7365_7400_0000);
const CH_SKIP_KEY: (u64, u64) = (0x7276_732d_6368_2d73, 0x6b69_7000_0000_0000);

/// Marks the slots of a table with no dests.
const NONE: u16 = u16::MAX;

/// The lookup table: one dest index per slot; empty when no dest has weight.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    size: u32,
    slots: Box<[u16]>,
}

/// One dest's place in the fill: list index, quota and Maglev permutation.
struct Entry {
    index: u16,
    quota: u64,
    credit: u64,
    next: u32,
    skip: u32,
    /// skip^-1 mod M, computed when the fill reaches its tail.
    inverse: Option<u64>,
}

impl Table {
    /// Builds the table for the dests with weight > 0. `size` is a prime
    /// (checked by `SchedConfig::validate`) and at least the list length.
    pub(crate) fn new(list: &[Dest], size: u32) -> Table {
        let mut order: Vec<usize> = (0..list.len()).filter(|&i| list[i].weight > 0).collect();
        if order.is_empty() {
            return Table {
                size,
                slots: Box::new([]),
            };
        }
        // Canonical order: the table depends on the dest set, not on the order
        // the dests were added in.
        order.sort_unstable_by_key(|&i| list[i].addr);
        let m = u64::from(size);
        let total: u64 = order.iter().map(|&i| u64::from(list[i].weight)).sum();
        let mut entries: Vec<Entry> = order
            .iter()
            .map(|&i| {
                let (offset, skip) = permutation(&list[i].addr, size);
                Entry {
                    index: u16::try_from(i).unwrap_or(NONE),
                    quota: m * u64::from(list[i].weight) / total,
                    credit: 0,
                    next: offset,
                    skip,
                    inverse: None,
                }
            })
            .collect();
        // Largest remainder: the slots left by rounding down go to the dests
        // whose exact share lost the most (ties to the lower address).
        let assigned: u64 = entries.iter().map(|e| e.quota).sum();
        // Fewer than N slots are left, so some dest is not topped up and the
        // selection below has a pivot.
        let left = (m - assigned) as usize;
        if left > 0 {
            let mut by_remainder: Vec<usize> = (0..entries.len()).collect();
            by_remainder.select_nth_unstable_by_key(left - 1, |&e| {
                (Reverse(m * u64::from(list[order[e]].weight) % total), e)
            });
            for &e in &by_remainder[..left] {
                entries[e].quota += 1;
            }
        }

        let max_quota = entries.iter().map(|e| e.quota).max().unwrap_or(1);
        // One round per slot of the largest quota (the paper's one slot per
        // turn), but at most M / N rounds so that the fill makes at most M
        // (dest, round) steps: with a very uneven split the heavy dests then
        // take a few slots per round.
        let rounds = max_quota.min((m / entries.len() as u64).max(1));
        let mut slots = vec![NONE; size as usize].into_boxed_slice();
        let mut free = Free::new(size);
        for _ in 0..rounds {
            for e in entries.iter_mut() {
                // Spread each quota evenly over the rounds, so that every dest
                // takes its preferred slots at the pace of its weight.
                // (Bresenham: after round r it has taken r * quota / rounds.)
                let credit = e.credit + e.quota;
                let takes = credit / rounds;
                e.credit = credit - takes * rounds;
                for _ in 0..takes {
                    let c = free.take(e);
                    slots[c as usize] = e.index;
                    e.next = step(c, e.skip, size);
                }
            }
        }
        Table { size, slots }
    }

    /// The slot's dest if it is available; with the fallback flag the first
    /// available dest in the following slots.
    pub(crate) fn pick(&self, list: &[Dest], flow: &FlowKey, flags: SchedFlags) -> Option<usize> {
        let port = if flags.port {
            Some(flow.hashed_port())
        } else {
            None
        };
        let slot = lookup_slot(&flow.caddr, port, self.size);
        let dest = usize::from(*self.slots.get(slot)?);
        if !list[dest].is_unavailable() {
            return Some(dest);
        }
        if !flags.fallback {
            return None;
        }
        // Neighbouring slots belong to dests in proportion to their weight, so
        // an overloaded dest's clients spread as the weights say.
        let (after, before) = self.slots.split_at(slot);
        after
            .iter()
            .chain(before)
            .map(|&d| usize::from(d))
            .find(|&d| !list[d].is_unavailable())
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u16] {
        &self.slots
    }
}

/// Next position in a dest's permutation (offset + j * skip) mod M.
fn step(c: u32, skip: u32, size: u32) -> u32 {
    let next = c + skip;
    if next >= size {
        next - size
    } else {
        next
    }
}

/// The table slot of a client: Lemire's multiply-shift maps the top 32 hash
/// bits onto 0..M without a division.
pub(crate) fn lookup_slot(caddr: &IpAddr, port: Option<u16>, size: u32) -> usize {
    let mut h = SipHasher13::new_with_keys(CH_LOOKUP_KEY.0, CH_LOOKUP_KEY.1);
    match caddr {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    if let Some(port) = port {
        h.write(&port.to_be_bytes());
    }
    (((h.finish() >> 32) * u64::from(size)) >> 32) as usize
}

/// A dest's Maglev permutation (offset, skip) in a table of `size` slots,
/// hashed from its address in network order and its port big-endian.
pub(crate) fn permutation(addr: &SocketAddr, size: u32) -> (u32, u32) {
    let mut buf = [0u8; 18];
    let len = match addr.ip() {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            buf[..16].copy_from_slice(&a.octets());
            16
        }
    };
    buf[len..len + 2].copy_from_slice(&addr.port().to_be_bytes());
    let key = &buf[..len + 2];
    let m = u64::from(size);
    // Both results are below `size`, a u32.
    let offset = (siphash(CH_OFFSET_KEY, key) % m) as u32;
    let skip = (siphash(CH_SKIP_KEY, key) % (m - 1)) as u32 + 1;
    (offset, skip)
}

fn siphash(key: (u64, u64), bytes: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(key.0, key.1);
    h.write(bytes);
    h.finish()
}

/// Below this many free slots, finding a dest's next free slot by walking its
/// permutation costs more (about M / free probes) than computing each free
/// slot's position in the permutation directly (free multiplications).
const TAIL_SLOTS: usize = 256;

/// The free slots during the fill: a bitmap (8 KiB for M = 65537, so the
/// probes stay in L1), then for the last `TAIL_SLOTS` a plain list.
struct Free {
    size: u32,
    reduce: Barrett,
    bits: Vec<u64>,
    left: usize,
    tail: Option<Vec<u32>>,
}

impl Free {
    fn new(size: u32) -> Free {
        Free {
            size,
            reduce: Barrett::new(size),
            bits: vec![u64::MAX; (size as usize).div_ceil(64)],
            left: size as usize,
            tail: None,
        }
    }

    /// The first free slot of `e`'s permutation from `e.next` on, now taken.
    /// Both ways give the same slot; the tail way just skips the probes.
    fn take(&mut self, e: &mut Entry) -> u32 {
        let size = self.size;
        let c = match &mut self.tail {
            None if self.left >= (size / 2) as usize => probe(&self.bits, e.next, e.skip, size),
            None => probe4(&self.bits, e.next, e.skip, size),
            Some(tail) => {
                // Slot f is (f - next) * skip^-1 steps after `next`.
                let inverse = *e.inverse.get_or_insert_with(|| mod_inverse(e.skip, size));
                let next = e.next;
                let reduce = &self.reduce;
                let distance = |f: u32| {
                    let delta = if f >= next { f - next } else { f + size - next };
                    reduce.rem(u64::from(delta) * inverse)
                };
                let at = (0..tail.len())
                    .min_by_key(|&i| distance(tail[i]))
                    .unwrap_or(0);
                tail.swap_remove(at)
            }
        };
        self.bits[(c / 64) as usize] &= !(1 << (c % 64));
        self.left -= 1;
        if self.left == TAIL_SLOTS && self.tail.is_none() {
            self.tail = Some(
                (0..size)
                    .filter(|&f| self.bits[(f / 64) as usize] & (1 << (f % 64)) != 0)
                    .collect(),
            );
        }
        c
    }
}

/// x mod m without a division, for x < 2^48 and m < 2^24 (Barrett: the
/// estimated quotient is at most one too small).
struct Barrett {
    m: u64,
    mu: u128,
}

impl Barrett {
    fn new(m: u32) -> Barrett {
        Barrett {
            m: u64::from(m),
            mu: u128::from(u64::MAX) / u128::from(m),
        }
    }

    fn rem(&self, x: u64) -> u64 {
        // The quotient estimate is below x, which fits in u64.
        let q = ((u128::from(x) * self.mu) >> 64) as u64;
        let r = x - q * self.m;
        if r >= self.m {
            r - self.m
        } else {
            r
        }
    }
}

/// Walks a permutation from `c` to the first free slot: the hot loop of the
/// fill while most slots are free (the first position usually is).
fn probe(bits: &[u64], mut c: u32, skip: u32, size: u32) -> u32 {
    while (bits[(c / 64) as usize] >> (c % 64)) & 1 == 0 {
        c = step(c, skip, size);
    }
    c
}

/// As `probe`, four positions per step once most slots are taken: the four
/// are computed from `c` independently, so the loads overlap instead of
/// waiting on a chain of additions (about 6% off a 1000-dest build).
fn probe4(bits: &[u64], mut c: u32, skip: u32, size: u32) -> u32 {
    let free = |c: u32| (bits[(c / 64) as usize] >> (c % 64)) & 1;
    let skip2 = step(skip, skip, size);
    let skip3 = step(skip2, skip, size);
    let skip4 = step(skip3, skip, size);
    loop {
        let (c1, c2, c3) = (
            step(c, skip, size),
            step(c, skip2, size),
            step(c, skip3, size),
        );
        let found = free(c) | free(c1) << 1 | free(c2) << 2 | free(c3) << 3;
        if found != 0 {
            return [c, c1, c2, c3][found.trailing_zeros() as usize];
        }
        c = step(c, skip4, size);
    }
}

/// a^-1 mod m for a prime m and 0 < a < m (extended Euclid).
fn mod_inverse(a: u32, m: u32) -> u64 {
    let (mut r0, mut r1) = (i64::from(m), i64::from(a));
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i64::from(m)) as u64
}
