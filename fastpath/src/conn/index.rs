//! The connection table's index: key hash → map values, in 64-byte buckets whose address
//! comes from the hash alone.
//!
//! hashbrown, which this replaces, hides where a key's bucket is, so a burst could only be
//! looked up one whole lookup at a time (control bytes, then value, then entry: three misses
//! in a row). Here the bucket of a hash is `buckets[hash & mask]`, known before anything is
//! read: a worker hashes the burst and prefetches every bucket line, then reads the lines
//! and prefetches the candidate entries, then processes; each packet's misses overlap with
//! the others'.
//!
//! A bucket is one cache line: ten 16-bit tags (high bits of the hash, never 0: 0 is an
//! empty slot), the count of keys that probed past it, and the ten values. A key lives in
//! its home bucket or, when that is full, in the next one with room (linear probing by
//! bucket), every bucket it passed counting it in `passed`. A search stops at the first
//! bucket whose `passed` is 0: no key from an earlier bucket went on from there. A removal
//! walks the same way and counts the passing down again, so nothing is left behind
//! (no tombstones) and lookups stay as short as the load allows.
//!
//! Sizing: [`Index::with_capacity`] takes the most keys it will hold and allocates a power of
//! two of buckets at most 80 % full then; the table never holds more, so an insertion
//! always finds room and nothing reallocates.

use crate::prefetch::prefetch;

/// Slots per bucket: ten tags and ten values fill a 64-byte line.
const SLOTS: usize = 10;
/// Highest fill (keys per slot) [`Index::with_capacity`] allows, in tenths.
const MAX_LOAD_TENTHS: usize = 8;

/// One cache line of the index.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Tag of each slot's key; 0 = empty.
    tags: [u16; SLOTS],
    /// Keys stored beyond this bucket whose probe passed through it.
    passed: u16,
    _pad: u16,
    /// The map value of each slot.
    values: [u32; SLOTS],
}

/// Tag of a hash: its top 16 bits, with the lowest of them set so that no tag is 0.
#[inline(always)]
const fn tag(hash: u64) -> u16 {
    (hash >> 48) as u16 | 1
}

/// An index from 64-bit hashes to `u32` values; see the module documentation.
#[derive(Debug)]
pub(super) struct Index {
    buckets: Vec<Bucket>,
    /// `buckets.len() - 1` (a power of two).
    mask: usize,
    len: usize,
}

/// Why an index could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutOfMemory;

impl Index {
    /// An index with room for `keys` keys at most 80 % full.
    pub(super) fn with_capacity(keys: usize) -> Result<Index, OutOfMemory> {
        let slots = keys.saturating_mul(10).div_ceil(MAX_LOAD_TENTHS).max(SLOTS);
        let n = slots
            .div_ceil(SLOTS)
            .checked_next_power_of_two()
            .ok_or(OutOfMemory)?;
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(n).map_err(|_| OutOfMemory)?;
        buckets.resize(n, Bucket::default());
        Ok(Index {
            buckets,
            mask: n - 1,
            len: 0,
        })
    }

    /// Keys held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Keys the index is sized for (80 % of its slots).
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buckets.len() * SLOTS * MAX_LOAD_TENTHS / 10
    }

    /// Bytes allocated.
    pub(super) fn allocation_size(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    /// Asks the CPU to start loading the home bucket of `hash` (the first stage of a burst's
    /// lookups).
    #[inline(always)]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            prefetch(b);
        }
    }

    /// The first value in the home bucket of `hash` whose tag matches: the likely answer,
    /// unverified (a tag is 15 bits; the key is in the entry the value names), and `None`
    /// when the key is stored past its home bucket or absent. The second stage of a burst's
    /// lookups: it reads only the line [`Index::prefetch`] loaded.
    #[inline(always)]
    pub(super) fn candidate(&self, hash: u64) -> Option<u32> {
        let b = self.buckets.get(self.home(hash))?;
        let t = tag(hash);
        let s = b.tags.iter().position(|&x| x == t)?;
        b.values.get(s).copied()
    }

    /// The value stored under `hash` for which `is_it` holds (it compares the key in the
    /// entry the value names).
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut at = self.home(hash);
        for _ in 0..self.buckets.len() {
            let b = self.buckets.get(at)?;
            for (s, &x) in b.tags.iter().enumerate() {
                if x == t {
                    if let Some(&v) = b.values.get(s) {
                        if is_it(v) {
                            return Some(v);
                        }
                    }
                }
            }
            if b.passed == 0 {
                return None;
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Stores `value` under `hash` (the caller knows the key is not in yet). False only if
    /// every slot is taken, which the table's sizing rules out.
    pub(super) fn insert(&mut self, hash: u64, value: u32) -> bool {
        if self.len >= self.buckets.len() * SLOTS {
            return false;
        }
        let t = tag(hash);
        let home = self.home(hash);
        let mut at = home;
        for _ in 0..self.buckets.len() {
            let Some(b) = self.buckets.get_mut(at) else {
                return false;
            };
            if let Some(s) = b.tags.iter().position(|&x| x == 0) {
                if let (Some(tag), Some(v)) = (b.tags.get_mut(s), b.values.get_mut(s)) {
                    *tag = t;
                    *v = value;
                }
                self.count_passing(home, at, true);
                self.len += 1;
                return true;
            }
            at = (at + 1) & self.mask;
        }
        false
    }

    /// Takes `value`, stored under `hash`, out. False if it is not there.
    pub(super) fn remove(&mut self, hash: u64, value: u32) -> bool {
        let t = tag(hash);
        let home = self.home(hash);
        let mut at = home;
        for _ in 0..self.buckets.len() {
            let Some(b) = self.buckets.get_mut(at) else {
                return false;
            };
            let found = b
                .tags
                .iter()
                .zip(&b.values)
                .position(|(&x, &v)| x == t && v == value);
            if let Some(s) = found {
                if let Some(tag) = b.tags.get_mut(s) {
                    *tag = 0;
                }
                self.count_passing(home, at, false);
                self.len -= 1;
                return true;
            }
            if b.passed == 0 {
                return false;
            }
            at = (at + 1) & self.mask;
        }
        false
    }

    /// Counts a key stored at bucket `at` from home `home` in (or out of) the `passed` of
    /// every bucket from `home` up to, not including, `at`.
    fn count_passing(&mut self, home: usize, at: usize, add: bool) {
        let mut i = home;
        while i != at {
            if let Some(b) = self.buckets.get_mut(i) {
                b.passed = if add {
                    b.passed.saturating_add(1)
                } else {
                    b.passed.saturating_sub(1)
                };
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Whether `value` is stored under `hash` (tests' invariant checks).
    #[cfg(test)]
    pub(super) fn contains(&self, hash: u64, value: u32) -> bool {
        self.find(hash, |v| v == value).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn sized_for_its_keys_at_most_80_percent_full() {
        // 1000 keys → 1250 slots → 125 buckets → 128.
        let index = Index::with_capacity(1000).unwrap();
        assert_eq!(index.buckets.len(), 128);
        assert!(index.capacity() >= 1000);
        assert_eq!(Index::with_capacity(0).unwrap().buckets.len(), 1);
        // The connection table's default 2^20 entries, two keys each: 16 bytes per entry.
        let index = Index::with_capacity(2 << 20).unwrap();
        assert_eq!(index.allocation_size(), 16 << 20);
    }

    /// Hashes that all share one home bucket (low bits 0) and differ in their tags.
    fn colliding(i: u64) -> u64 {
        (i + 1) << 49
    }

    #[test]
    fn overflow_goes_to_the_next_bucket_and_removal_undoes_the_passing() {
        let mut index = Index::with_capacity(64).unwrap();
        for i in 0..25 {
            assert!(index.insert(colliding(i), i as u32));
        }
        // 10 in the home bucket, 10 in the next, 5 in the one after.
        assert_eq!(index.buckets[0].passed, 15);
        assert_eq!(index.buckets[1].passed, 5);
        assert_eq!(index.buckets[2].passed, 0);
        for i in 0..25 {
            assert_eq!(index.find(colliding(i), |v| v == i as u32), Some(i as u32));
        }
        // Candidates come from the home bucket only.
        assert_eq!(index.candidate(colliding(3)), Some(3));
        assert_eq!(index.candidate(colliding(12)), None);
        for i in (0..25).rev() {
            assert!(index.remove(colliding(i), i as u32));
            assert!(!index.remove(colliding(i), i as u32));
        }
        assert!(index
            .buckets
            .iter()
            .all(|b| b.passed == 0 && b.tags == [0; SLOTS]));
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn probing_wraps_around_the_end() {
        let mut index = Index::with_capacity(64).unwrap();
        let last = index.mask as u64;
        for i in 0..12u64 {
            assert!(index.insert((i + 1) << 49 | last, i as u32));
        }
        assert_eq!(index.buckets[index.mask].passed, 2);
        assert_eq!(index.find(12 << 49 | last, |v| v == 11), Some(11));
        assert!(index.buckets[0].tags.contains(&tag(12 << 49)));
    }

    #[test]
    fn equal_tags_are_told_apart_by_the_caller() {
        let mut index = Index::with_capacity(16).unwrap();
        index.insert(7 << 49, 1);
        index.insert(7 << 49, 2);
        assert_eq!(index.find(7 << 49, |v| v == 2), Some(2));
        assert_eq!(index.find(7 << 49, |v| v == 3), None);
        assert!(index.remove(7 << 49, 1));
        assert_eq!(index.find(7 << 49, |v| v == 2), Some(2));
    }

    #[test]
    fn full_index_refuses_and_stays_consistent() {
        let mut index = Index::with_capacity(1).unwrap();
        for i in 0..SLOTS as u32 {
            assert!(index.insert(u64::from(i + 1) << 49, i));
        }
        assert!(!index.insert(1 << 60, 99));
        assert_eq!(index.len(), SLOTS);
        assert_eq!(index.buckets[0].passed, 0);
    }
}
