//! dh and sh: 256 buckets indexed by a multiplicative hash of an address
//! (ip_vs_dh.c, ip_vs_sh.c).
//!
//! `(addr * 2654435761) & 255` keeps 8 bits, so only the low byte of the
//! (folded) address matters: bucket = low byte * 0xB1 mod 256.

use std::net::IpAddr;

use crate::dest::Dest;
use crate::flow::{fold, FlowKey};
use crate::scheduler::SchedFlags;

/// `IP_VS_DH_TAB_SIZE` / `IP_VS_SH_TAB_SIZE` (8 bits).
const TAB_SIZE: usize = 256;

/// Marks a bucket of a service with no dests.
const NONE: u16 = u16::MAX;

/// Golden-ratio multiplier of both files.
const GOLDEN: u64 = 2_654_435_761;

/// The bucket table: dest indices into the list.
#[derive(Clone, Debug)]
pub(crate) struct Buckets(Box<[u16; TAB_SIZE]>);

impl Buckets {
    /// `ip_vs_dh_reassign`: bucket i gets the i-th dest cyclically, one bucket
    /// per dest per round, weights ignored.
    pub(crate) fn dh(list: &[Dest]) -> Buckets {
        Buckets::fill(list, |_| 1)
    }

    /// `ip_vs_sh_reassign`: each dest gets `weight` consecutive buckets per
    /// round; a weight-0 dest still gets one (and then yields no dest).
    pub(crate) fn sh(list: &[Dest]) -> Buckets {
        Buckets::fill(list, |d| d.weight.max(1))
    }

    fn fill(list: &[Dest], run: impl Fn(&Dest) -> u32) -> Buckets {
        let mut buckets = Box::new([NONE; TAB_SIZE]);
        if !list.is_empty() {
            let mut dest = 0;
            let mut count = 0;
            for bucket in buckets.iter_mut() {
                *bucket = dest_index(dest);
                count += 1;
                if count >= run(&list[dest]) {
                    dest = (dest + 1) % list.len();
                    count = 0;
                }
            }
        }
        Buckets(buckets)
    }

    /// `ip_vs_dh_schedule`: the bucket of the packet's destination address;
    /// no fallback.
    pub(crate) fn dh_pick(&self, list: &[Dest], daddr: &IpAddr) -> Option<usize> {
        let dest = self.get(hashkey(fold(daddr), 0, 0))?;
        (!list[dest].is_unavailable()).then_some(dest)
    }

    /// `ip_vs_sh_schedule`: the bucket of the client address (and port with
    /// the port flag); with the fallback flag, probe on
    /// (`ip_vs_sh_get_fallback`).
    pub(crate) fn sh_pick(
        &self,
        list: &[Dest],
        flow: &FlowKey,
        flags: SchedFlags,
    ) -> Option<usize> {
        let addr = fold(&flow.caddr);
        let port = if flags.port { flow.hashed_port() } else { 0 };
        let ihash = hashkey(addr, port, 0);
        let dest = self.get(ihash)?;
        if !list[dest].is_unavailable() {
            return Some(dest);
        }
        if !flags.fallback {
            return None;
        }
        // The kernel passes roffset = ihash + offset as the hash *offset*, so
        // the probes are buckets 2 * ihash + offset, not ihash + 1, ihash + 2.
        for offset in 0..TAB_SIZE {
            let roffset = (offset + ihash) % TAB_SIZE;
            let dest = self.get(hashkey(addr, port, roffset))?;
            if !list[dest].is_unavailable() {
                return Some(dest);
            }
        }
        None
    }

    fn get(&self, bucket: usize) -> Option<usize> {
        let dest = self.0[bucket];
        (dest != NONE).then_some(usize::from(dest))
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u16] {
        &self.0[..]
    }
}

/// `ip_vs_sh_hashkey` (ip_vs_dh_hashkey is the same with port and offset 0).
fn hashkey(addr: u32, port: u16, offset: usize) -> usize {
    let v = u64::from(u32::from(port).wrapping_add(addr));
    // Truncation: only the low 8 bits survive the mask anyway.
    (offset as u64).wrapping_add(v.wrapping_mul(GOLDEN)) as usize & (TAB_SIZE - 1)
}

/// Lists are at most `MAX_DESTS` long, so indices fit.
fn dest_index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashkey_is_low_byte_times_b1() {
        for (addr, bucket) in [("10.0.0.1", 177), ("10.0.0.2", 98), ("10.0.0.3", 19)] {
            let a: IpAddr = addr.parse().unwrap();
            assert_eq!(hashkey(fold(&a), 0, 0), bucket, "{addr}");
        }
        let a: IpAddr = "192.168.1.100".parse().unwrap();
        assert_eq!(hashkey(fold(&a), 0, 0), 36);
        assert_eq!(hashkey(fold(&"192.168.1.101".parse().unwrap()), 0, 0), 213);
        // sh-port: 10.0.0.1:12345 -> bucket 26 (spec §1.10).
        assert_eq!(hashkey(0x0a00_0001, 12345, 0), 26);
    }
}
