//! mh: Maglev hashing exactly as ip_vs_mh.c, so that a table built here
//! matches the kernel's slot for slot (x86-64, where hsiphash is SipHash-1-3
//! over the 4 little-endian bytes of the hashed value).

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use crate::dest::Dest;
use crate::flow::{fold, FlowKey};
use crate::scheduler::SchedFlags;

/// The kernel's `primes[]`; `CONFIG_IP_VS_MH_TAB_INDEX` (8..=17) selects
/// `primes[index - 8]`, default index 12: 4093.
pub const TABLE_SIZES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// `generate_hash_secret`: fixed keys, so every kernel builds the same table.
const HASH1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const HASH2: (u64, u64) = (2_654_446_892, 2_654_446_892);

/// A slot that no dest owns (a service whose dests all have last weight 0).
const NONE: u16 = u16::MAX;

/// The lookup table: one dest index per slot.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    slots: Box<[u16]>,
}

/// `struct ip_vs_mh_dest_setup`.
struct Setup {
    skip: u32,
    perm: u32,
    turns: u32,
}

impl Table {
    /// `ip_vs_mh_reassign`: permutations from each dest's address and port,
    /// weights from `last_weight` reduced by their gcd and shifted so that
    /// the largest fits in `IP_VS_MH_TAB_BITS` bits.
    /// `size` is one of [`TABLE_SIZES`] (checked by `SchedConfig::validate`).
    pub(crate) fn new(list: &[Dest], size: u32) -> Table {
        let mut slots = vec![NONE; size as usize].into_boxed_slice();
        let gcd = list
            .iter()
            .map(|d| d.last_weight)
            .filter(|&w| w > 0)
            .reduce(gcd)
            .unwrap_or(0);
        if gcd == 0 {
            return Table { slots };
        }
        let index = TABLE_SIZES.iter().position(|&p| p == size).unwrap_or(4) as u32 + 8;
        let tab_bits = index / 2;
        let max = list.iter().map(|d| d.last_weight).max().unwrap_or(0) / gcd;
        let fls = u32::BITS - max.leading_zeros();
        let rshift = fls.saturating_sub(tab_bits);
        let mut setup: Vec<Setup> = list
            .iter()
            .map(|d| {
                let (addr, port) = (fold(&d.addr.ip()), d.addr.port());
                let lw = d.last_weight;
                Setup {
                    skip: hashkey(addr, port, HASH2, 0) % (size - 1) + 1,
                    perm: hashkey(addr, port, HASH1, 0) % size,
                    turns: match (lw / gcd) >> rshift {
                        0 => u32::from(lw != 0),
                        t => t,
                    },
                }
            })
            .collect();
        let mut taken = vec![false; size as usize];
        let mut filled = 0;
        let mut turn = 0;
        // `ip_vs_mh_populate`: rounds over the list; a dest takes `turns`
        // slots in a row, each its next preferred free one.
        'fill: loop {
            let mut i = 0;
            while i < setup.len() {
                let ds = &mut setup[i];
                if ds.turns < 1 {
                    i += 1;
                    continue;
                }
                while taken[ds.perm as usize] {
                    ds.perm += ds.skip;
                    if ds.perm >= size {
                        ds.perm -= size;
                    }
                }
                taken[ds.perm as usize] = true;
                slots[ds.perm as usize] = u16::try_from(i).unwrap_or(NONE);
                filled += 1;
                if filled == size {
                    break 'fill;
                }
                turn += 1;
                if turn >= ds.turns {
                    turn = 0;
                    i += 1;
                }
            }
        }
        Table { slots }
    }

    /// `ip_vs_mh_schedule`: the slot of the client address (and port with the
    /// port flag); with the fallback flag `ip_vs_mh_get_fallback`, which
    /// rehashes with a growing offset added to the hashed value.
    pub(crate) fn pick(&self, list: &[Dest], flow: &FlowKey, flags: SchedFlags) -> Option<usize> {
        let size = self.slots.len() as u32;
        let addr = fold(&flow.caddr);
        let port = if flags.port { flow.hashed_port() } else { 0 };
        let ihash = hashkey(addr, port, HASH1, 0) % size;
        let dest = self.get(ihash)?;
        if !list[dest].is_unavailable() {
            return Some(dest);
        }
        if !flags.fallback {
            return None;
        }
        for offset in 0..size {
            let roffset = (offset + ihash) % size;
            let dest = self.get(hashkey(addr, port, HASH1, roffset) % size)?;
            if !list[dest].is_unavailable() {
                return Some(dest);
            }
        }
        None
    }

    fn get(&self, slot: u32) -> Option<usize> {
        let dest = self.slots[slot as usize];
        (dest != NONE).then_some(usize::from(dest))
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u16] {
        &self.slots
    }
}

/// `ip_vs_mh_hashkey`: hsiphash of the u32 `offset + port + addr`.
fn hashkey(addr: u32, port: u16, key: (u64, u64), offset: u32) -> u32 {
    let v = offset.wrapping_add(u32::from(port)).wrapping_add(addr);
    let mut h = SipHasher13::new_with_keys(key.0, key.1);
    h.write(&v.to_le_bytes());
    // hsiphash returns the low 32 bits of the 64-bit SipHash on 64-bit kernels.
    h.finish() as u32
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_spec_worked_example() {
        // ipvs-spec.md §1.11: h1(10.0.0.1, 80) = 0x439c0cbe, h2 = 0x97b3dc47.
        let a = 0x0a00_0001;
        assert_eq!(hashkey(a, 80, HASH1, 0), 0x439c_0cbe);
        assert_eq!(hashkey(a, 80, HASH2, 0), 0x97b3_dc47);
        assert_eq!(hashkey(a, 80, HASH1, 0) % 4093, 3167);
        assert_eq!(hashkey(a, 80, HASH2, 0) % 4092 + 1, 700);
        let offsets_skips: Vec<(u32, u32)> = [0x0a00_0002, 0x0a00_0003]
            .iter()
            .map(|&a| {
                (
                    hashkey(a, 80, HASH1, 0) % 4093,
                    hashkey(a, 80, HASH2, 0) % 4092 + 1,
                )
            })
            .collect();
        assert_eq!(offsets_skips, [(1231, 3544), (1631, 3453)]);
    }
}
