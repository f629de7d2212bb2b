//! lblc: locality-based least connection (ip_vs_lblc.c).
//!
//! A cache maps the packet's destination address to a dest. A cached dest is
//! kept while it has a weight and is not "overloaded" in lblc's own sense
//! (more active connections than its weight while some dest has fewer than
//! half its weight); the `-x` overload flag is not checked on that path.
//! Otherwise wlc picks and the entry is replaced.

use std::net::IpAddr;

use crate::dest::Dest;
use crate::dests::Dests;
use crate::least;
use crate::table::{key, AddrTable};

/// Entries above which the periodic check starts dropping idle entries: the
/// kernel's `max_size = IP_VS_LBLC_TAB_SIZE * 16`.
pub const CACHE_LIMIT: usize = 1024 * 16;

/// Entries a cache can hold at all: room above `CACHE_LIMIT` for the minute
/// between two checks, as the kernel's table grows past max_size until then.
pub(crate) const CACHE_CAPACITY: usize = CACHE_LIMIT * 3 / 2;

/// `CHECK_EXPIRE_INTERVAL`: the periodic check runs every 60 s.
const CHECK_INTERVAL_MS: u64 = 60_000;
/// `ENTRY_TIMEOUT`: above `CACHE_LIMIT`, entries idle for 6 min go.
const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;
/// `COUNT_FOR_FULL_EXPIRATION`: every 30th check (30 min) is a full one.
const FULL_CHECK_EVERY: u32 = 30;

/// A cached dest whose dest was deleted: never valid again.
const GONE: u16 = u16::MAX;

/// The kernel's periodic timer state, shared with lblcr.
#[derive(Debug, Default)]
pub(crate) struct Timer {
    next: Option<u64>,
    /// `tbl->counter`: starts at 1, a full check when it reaches 30.
    counter: u32,
    /// `tbl->rover`: where the last sweep stopped.
    pub(crate) rover: usize,
}

/// What one periodic check should do.
pub(crate) enum Check {
    Nothing,
    /// Drop entries unused for the expiration time.
    Full,
    /// Drop up to this many entries idle for `ENTRY_TIMEOUT`.
    Trim(usize),
}

impl Timer {
    /// `ip_vs_lblc_check_expire` minus the sweep itself. The first call only
    /// arms the timer, as `mod_timer` at init does.
    pub(crate) fn check(&mut self, now: u64, entries: usize) -> Check {
        let Some(next) = self.next else {
            self.next = Some(now.saturating_add(CHECK_INTERVAL_MS));
            self.counter = 1;
            return Check::Nothing;
        };
        if now < next {
            return Check::Nothing;
        }
        self.next = Some(now.saturating_add(CHECK_INTERVAL_MS));
        if self.counter % FULL_CHECK_EVERY == 0 {
            self.counter = 1;
            return Check::Full;
        }
        if entries <= CACHE_LIMIT {
            self.counter += 1;
            return Check::Nothing;
        }
        Check::Trim(((entries - CACHE_LIMIT) * 4 / 3).min(CACHE_LIMIT / 2))
    }
}

/// Whether `after` has passed since `since` (the kernel's
/// `!time_before(now, since + after)`).
pub(crate) fn reached(now: u64, since: u64, after: u64) -> bool {
    now >= since.saturating_add(after)
}

/// `is_overloaded()` of ip_vs_lblc.c and ip_vs_lblcr.c.
pub(crate) fn locality_overloaded(dest: &Dest, list: &[Dest]) -> bool {
    dest.load.activeconns() > dest.weight
        && list
            .iter()
            .any(|d| u64::from(d.load.activeconns()) * 2 < u64::from(d.weight))
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    dest: u16,
    lastuse: u64,
}

/// One worker's lblc cache.
#[derive(Debug)]
pub(crate) struct Cache {
    table: AddrTable<Entry>,
    timer: Timer,
}

impl Cache {
    /// A cache sized for lblc, or an empty one for other schedulers.
    pub(crate) fn new(enabled: bool) -> Cache {
        Cache {
            table: AddrTable::with_limit(if enabled { CACHE_CAPACITY } else { 0 }),
            timer: Timer::default(),
        }
    }

    /// `ip_vs_lblc_schedule`.
    pub(crate) fn pick(&mut self, list: &[Dest], daddr: &IpAddr, now: u64) -> Option<usize> {
        let key = key(daddr);
        if let Some(entry) = self.table.get_mut(&key) {
            entry.lastuse = now;
            if let Some(dest) = list.get(usize::from(entry.dest)) {
                if dest.weight > 0 && !locality_overloaded(dest, list) {
                    return Some(usize::from(entry.dest));
                }
            }
        }
        let dest = least::wlc(list)?;
        let cached = u16::try_from(dest).unwrap_or(GONE);
        // `ip_vs_lblc_new`: replace a differing entry, or add one if there is
        // room (a full cache just does not remember, like a failed kmalloc).
        match self.table.get_mut(&key) {
            Some(entry) if entry.dest != cached => {
                *entry = Entry {
                    dest: cached,
                    lastuse: now,
                }
            }
            Some(_) => {}
            None => {
                self.table.insert(
                    key,
                    Entry {
                        dest: cached,
                        lastuse: now,
                    },
                );
            }
        }
        Some(dest)
    }

    /// Follow the dests to their new indices; entries of deleted dests become
    /// invalid (the kernel's dest left `IP_VS_DEST_F_AVAILABLE`).
    pub(crate) fn remap(&mut self, old: &Dests, new: &Dests) {
        for entry in self.table.values_mut() {
            entry.dest = old
                .get(usize::from(entry.dest))
                .and_then(|d| new.position(&d.addr))
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(GONE);
        }
    }

    pub(crate) fn expire(&mut self, now: u64, expiration: u64) {
        match self.timer.check(now, self.table.len()) {
            Check::Nothing => {}
            Check::Full => self.table.sweep(&mut self.timer.rover, usize::MAX, |e| {
                reached(now, e.lastuse, expiration)
            }),
            Check::Trim(goal) => self.table.sweep(&mut self.timer.rover, goal, |e| {
                reached(now, e.lastuse, ENTRY_TIMEOUT_MS)
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}
