//! lblcr: locality-based least connection with replication (ip_vs_lblcr.c).
//!
//! Like lblc, but a destination address maps to a *set* of dests. The least
//! loaded member (wlc inside the set) serves; when it is "overloaded" in lblc's
//! sense, wlc over all dests picks one more member. A set that has not changed
//! for `lblcr_expiration` drops its most loaded member, one per pick.

use std::net::IpAddr;

use crate::dest::Dest;
use crate::dests::Dests;
use crate::lblc::{locality_overloaded, reached, Check, Timer, CACHE_CAPACITY};
use crate::least;
use crate::table::{key, AddrTable};

/// Set members across all entries. Sets start with one member and grow only
/// under overload, so twice the entries leaves room; when the pool is empty a
/// set does not grow, as when the kernel's GFP_ATOMIC allocation fails.
const POOL_CAPACITY: usize = CACHE_CAPACITY * 2;

/// `ENTRY_TIMEOUT` of ip_vs_lblcr.c, as lblc.
const ENTRY_TIMEOUT_MS: u64 = 6 * 60_000;

/// End of a member chain.
const NIL: u32 = u32::MAX;

/// `struct ip_vs_lblcr_entry` with its `ip_vs_dest_set`: members are a chain
/// in the pool, most recently inserted first (`list_add_rcu`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    lastuse: u64,
    lastmod: u64,
    head: u32,
    size: u32,
}

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            lastuse: 0,
            lastmod: 0,
            head: NIL,
            size: 0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Member {
    dest: u16,
    next: u32,
}

/// Preallocated set members with a free list.
#[derive(Debug)]
struct Pool {
    members: Box<[Member]>,
    free: u32,
}

impl Pool {
    fn with_capacity(capacity: usize) -> Pool {
        let members: Box<[Member]> = (1..=capacity)
            .map(|next| Member {
                dest: 0,
                next: if next == capacity {
                    NIL
                } else {
                    u32::try_from(next).unwrap_or(NIL)
                },
            })
            .collect();
        let free = if capacity == 0 { NIL } else { 0 };
        Pool { members, free }
    }

    fn members(&self, entry: &Entry) -> impl Iterator<Item = usize> + '_ {
        let mut at = entry.head;
        std::iter::from_fn(move || {
            let member = self.members.get(at as usize)?;
            at = member.next;
            Some(usize::from(member.dest))
        })
    }

    /// `ip_vs_dest_set_min`: wlc inside the set.
    fn min(&self, entry: &Entry, list: &[Dest]) -> Option<usize> {
        let mut members = self.members(entry);
        let mut least = members.find(|&d| !list[d].load.is_overloaded() && list[d].weight > 0)?;
        let mut loh = list[least].load.overhead();
        for d in members {
            let dest = &list[d];
            if dest.load.is_overloaded() {
                continue;
            }
            let doh = dest.load.overhead();
            if u128::from(loh) * u128::from(dest.weight)
                > u128::from(doh) * u128::from(list[least].weight)
            {
                least = d;
                loh = doh;
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: the most loaded member with a weight.
    fn max(&self, entry: &Entry, list: &[Dest]) -> Option<usize> {
        let mut members = self.members(entry);
        let mut most = members.find(|&d| list[d].weight > 0)?;
        let mut moh = list[most].load.overhead();
        for d in members {
            let dest = &list[d];
            let doh = dest.load.overhead();
            if dest.weight > 0
                && u128::from(moh) * u128::from(dest.weight)
                    < u128::from(doh) * u128::from(list[most].weight)
            {
                most = d;
                moh = doh;
            }
        }
        Some(most)
    }

    /// `ip_vs_dest_set_insert` with `check`: no duplicates, new member first.
    fn insert(&mut self, entry: &mut Entry, dest: usize, now: u64) {
        if self.members(entry).any(|d| d == dest) {
            return;
        }
        let Some(at) = self.alloc(dest) else {
            return;
        };
        self.members[at as usize].next = entry.head;
        entry.head = at;
        entry.size += 1;
        entry.lastmod = now;
    }

    /// `ip_vs_dest_set_erase`.
    fn erase(&mut self, entry: &mut Entry, dest: usize, now: u64) {
        self.unlink_if(entry, |d| d == dest, true);
        entry.lastmod = now;
    }

    /// Unlinks and frees the first member (or all, unless `first_only`) for
    /// which `remove` says so; `remove` may also rewrite kept members.
    fn unlink_if(
        &mut self,
        entry: &mut Entry,
        mut remove: impl FnMut(usize) -> bool,
        first_only: bool,
    ) {
        let mut prev = NIL;
        let mut at = entry.head;
        while at != NIL {
            let member = self.members[at as usize];
            if remove(usize::from(member.dest)) {
                if prev == NIL {
                    entry.head = member.next;
                } else {
                    self.members[prev as usize].next = member.next;
                }
                self.members[at as usize].next = self.free;
                self.free = at;
                entry.size -= 1;
                if first_only {
                    return;
                }
            } else {
                prev = at;
            }
            at = member.next;
        }
    }

    fn alloc(&mut self, dest: usize) -> Option<u32> {
        let at = self.free;
        let member = self.members.get_mut(at as usize)?;
        self.free = member.next;
        *member = Member {
            dest: u16::try_from(dest).ok()?,
            next: NIL,
        };
        Some(at)
    }

    fn release(&mut self, entry: &Entry) {
        let mut at = entry.head;
        while at != NIL {
            let next = self.members[at as usize].next;
            self.members[at as usize].next = self.free;
            self.free = at;
            at = next;
        }
    }
}

/// One worker's lblcr cache.
#[derive(Debug)]
pub(crate) struct Cache {
    table: AddrTable<Entry>,
    pool: Pool,
    timer: Timer,
}

impl Cache {
    /// A cache sized for lblcr, or an empty one for other schedulers.
    pub(crate) fn new(enabled: bool) -> Cache {
        Cache {
            table: AddrTable::with_limit(if enabled { CACHE_CAPACITY } else { 0 }),
            pool: Pool::with_capacity(if enabled { POOL_CAPACITY } else { 0 }),
            timer: Timer::default(),
        }
    }

    /// `ip_vs_lblcr_schedule`.
    pub(crate) fn pick(
        &mut self,
        list: &[Dest],
        daddr: &IpAddr,
        now: u64,
        expiration: u64,
    ) -> Option<usize> {
        let key = key(daddr);
        if let Some(entry) = self.table.get_mut(&key) {
            entry.lastuse = now;
            let dest = self.pool.min(entry, list);
            // time_after(jiffies, lastmod + expiration): strictly later.
            if entry.size > 1 && now > entry.lastmod.saturating_add(expiration) {
                if let Some(most) = self.pool.max(entry, list) {
                    self.pool.erase(entry, most, now);
                }
            }
            // The kernel serves the set's minimum even if it was the member
            // just erased.
            if let Some(d) = dest.filter(|&d| !locality_overloaded(&list[d], list)) {
                return Some(d);
            }
            let dest = least::wlc(list)?;
            self.pool.insert(entry, dest, now);
            return Some(dest);
        }
        let dest = least::wlc(list)?;
        if let Some(head) = self.pool.alloc(dest) {
            let entry = Entry {
                lastuse: now,
                lastmod: now,
                head,
                size: 1,
            };
            if !self.table.insert(key, entry) {
                self.pool.release(&entry);
            }
        }
        Some(dest)
    }

    /// Follow the dests to their new indices; members whose dest was deleted
    /// leave their sets.
    pub(crate) fn remap(&mut self, old: &Dests, new: &Dests) {
        let pool = &mut self.pool;
        for entry in self.table.values_mut() {
            let mut at = entry.head;
            while at != NIL {
                let member = &mut pool.members[at as usize];
                if let Some(i) = old
                    .get(usize::from(member.dest))
                    .and_then(|d| new.position(&d.addr))
                {
                    // Indices of a valid list fit in u16.
                    member.dest = u16::try_from(i).unwrap_or(member.dest);
                } else {
                    member.dest = u16::MAX;
                }
                at = member.next;
            }
            pool.unlink_if(entry, |d| d == usize::from(u16::MAX), false);
        }
    }

    pub(crate) fn expire(&mut self, now: u64, expiration: u64) {
        let pool = &mut self.pool;
        let timeout = match self.timer.check(now, self.table.len()) {
            Check::Nothing => return,
            Check::Full => (usize::MAX, expiration),
            Check::Trim(goal) => (goal, ENTRY_TIMEOUT_MS),
        };
        self.table.sweep(&mut self.timer.rover, timeout.0, |entry| {
            let stale = reached(now, entry.lastuse, timeout.1);
            if stale {
                pool.release(entry);
            }
            stale
        });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The set cached for `daddr`, most recent member first.
    #[cfg(test)]
    pub(crate) fn set(&self, daddr: &IpAddr) -> Option<Vec<usize>> {
        let entry = self.table.get(&key(daddr))?;
        Some(self.pool.members(entry).collect())
    }
}
