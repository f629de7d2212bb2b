//! A fixed-capacity hash table keyed by IP address, for the lblc/lblcr
//! caches: sized once when the scheduler is bound, so a pick never allocates.
//! Open addressing with linear probing and backward-shift deletion (no
//! tombstones, so probe lengths do not degrade as entries come and go).

use std::net::IpAddr;

/// An address as a table key: IPv4 as its IPv4-mapped IPv6 form.
pub(crate) type Key = [u32; 4];

pub(crate) fn key(addr: &IpAddr) -> Key {
    let v6 = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => *a,
    };
    let b = u128::from(v6);
    // Truncating casts pick the four 32-bit words.
    [
        (b >> 96) as u32,
        (b >> 64) as u32,
        (b >> 32) as u32,
        b as u32,
    ]
}

#[derive(Clone, Copy, Debug)]
struct Slot<V> {
    used: bool,
    key: Key,
    value: V,
}

#[derive(Debug)]
pub(crate) struct AddrTable<V> {
    slots: Box<[Slot<V>]>,
    len: usize,
    limit: usize,
}

impl<V: Copy + Default> AddrTable<V> {
    /// Room for `limit` entries at a load factor of at most 3/4.
    pub(crate) fn with_limit(limit: usize) -> AddrTable<V> {
        let size = if limit == 0 {
            0
        } else {
            (limit * 4).div_ceil(3).next_power_of_two()
        };
        let empty = Slot {
            used: false,
            key: [0; 4],
            value: V::default(),
        };
        AddrTable {
            slots: vec![empty; size].into_boxed_slice(),
            len: 0,
            limit,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &Key) -> Option<&V> {
        let i = self.find(key)?;
        Some(&self.slots[i].value)
    }

    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots[i].value)
    }

    /// Adds an entry for a key that is not in the table; false when full.
    pub(crate) fn insert(&mut self, key: Key, value: V) -> bool {
        if self.len >= self.limit {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(&key, mask);
        while self.slots[i].used {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            used: true,
            key,
            value,
        };
        self.len += 1;
        true
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots
            .iter_mut()
            .filter(|s| s.used)
            .map(|s| &mut s.value)
    }

    /// Visits the slots once, cyclically from `*rover + 1`, removing entries
    /// for which `evict` returns true (it may release what they hold), until
    /// `goal` entries are gone; leaves `*rover` at the last slot visited, as
    /// the kernel's bucket rover.
    pub(crate) fn sweep(
        &mut self,
        rover: &mut usize,
        goal: usize,
        mut evict: impl FnMut(&V) -> bool,
    ) {
        let size = self.slots.len();
        if size == 0 {
            return;
        }
        let mut removed = 0;
        let mut visited = 0;
        let mut i = *rover % size;
        while visited < size && removed < goal {
            i = (i + 1) % size;
            visited += 1;
            // A removal shifts a later entry into this slot: look again. Only
            // entries not visited yet (or already kept) can move here.
            while self.slots[i].used && evict(&self.slots[i].value) {
                self.remove_at(i);
                removed += 1;
                if removed == goal {
                    break;
                }
            }
        }
        *rover = i;
    }

    fn find(&self, key: &Key) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        while self.slots[i].used {
            if self.slots[i].key == *key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Backward-shift deletion: pull later entries of the probe run into the
    /// hole when their home slot allows it.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if !self.slots[j].used {
                break;
            }
            let h = home(&self.slots[j].key, mask);
            // Move j back unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole].used = false;
        self.len -= 1;
    }
}

/// Fibonacci hashing of the folded key; not visible outside (the kernel's
/// `hash_32` of the folded address is not either: lookups are exact).
fn home(key: &Key, mask: usize) -> usize {
    let folded = (u64::from(key[0]) << 32 | u64::from(key[1]))
        ^ (u64::from(key[2]) << 32 | u64::from(key[3])).rotate_left(17);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> Key {
        key(&IpAddr::V4(i.into()))
    }

    #[test]
    fn insert_find_remove_keep_entries_reachable() {
        let mut t: AddrTable<u32> = AddrTable::with_limit(100);
        for i in 0..100 {
            assert!(t.insert(k(i), i));
        }
        assert!(!t.insert(k(1000), 1000), "limit reached");
        let mut rover = 0;
        // Remove the odd values; every even one must still be found.
        t.sweep(&mut rover, usize::MAX, |v| v % 2 == 1);
        assert_eq!(t.len(), 50);
        for i in 0..100 {
            assert_eq!(t.get_mut(&k(i)).copied(), (i % 2 == 0).then_some(i), "{i}");
        }
        let mut rover = 0;
        t.sweep(&mut rover, 5, |_| true);
        assert_eq!(t.len(), 45);
        assert_eq!(t.values_mut().count(), 45);
    }

    #[test]
    fn v4_and_v6_keys_differ() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "::a00:1".parse().unwrap();
        assert_ne!(key(&v4), key(&v6));
        assert_eq!(key(&v4), key(&"::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn disabled_table_holds_nothing() {
        let mut t: AddrTable<u32> = AddrTable::with_limit(0);
        assert!(!t.insert(k(1), 1));
        assert!(t.get_mut(&k(1)).is_none());
        t.sweep(&mut 0, usize::MAX, |_| true);
    }
}
