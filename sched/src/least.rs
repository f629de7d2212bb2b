//! The least-connection family: lc (ip_vs_lc.c), wlc (ip_vs_wlc.c, also the
//! fallback of lblc/lblcr), sed (ip_vs_sed.c) and nq (ip_vs_nq.c).
//!
//! All compare loads by cross-multiplication (`loh * w(dest) > doh * w(least)`)
//! with strict inequalities, so on a tie the dest earlier in the list wins.
//! Loads are `u64` and the cross products `u128`: an overhead reaches (2^32 << 8) + 2^32 and a
//! weight 2^31 - 1 (ipvsadm 1.31's `INT_MAX`), whose product does not fit 64 bits.

use crate::dest::Dest;

/// Minimum overhead, weight ignored except that 0 excludes.
pub(crate) fn lc(list: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, dest) in list.iter().enumerate() {
        if dest.load.is_overloaded() || dest.weight == 0 {
            continue;
        }
        let doh = dest.load.overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|(i, _)| i)
}

/// Minimum overhead / weight.
pub(crate) fn wlc(list: &[Dest]) -> Option<usize> {
    weighted_least(list, |d| d.load.overhead())
}

/// Minimum (activeconns + 1) / weight: the expected delay if the connection
/// were queued behind the active ones.
pub(crate) fn sed(list: &[Dest]) -> Option<usize> {
    weighted_least(list, sed_overhead)
}

/// The first dest with no active connection, else as sed. Unlike sed and wlc
/// it skips weight-0 dests explicitly (the same result: they cannot win).
pub(crate) fn nq(list: &[Dest]) -> Option<usize> {
    // (index, overhead, weight) of the least loaded so far.
    let mut least: Option<(usize, u128, u128)> = None;
    for (i, dest) in list.iter().enumerate() {
        if dest.load.is_overloaded() || dest.weight == 0 {
            continue;
        }
        let active = dest.load.activeconns();
        if active == 0 {
            return Some(i);
        }
        let (doh, dw) = (u128::from(active) + 1, u128::from(dest.weight));
        if least.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
            least = Some((i, doh, dw));
        }
    }
    least.map(|(i, _, _)| i)
}

fn sed_overhead(dest: &Dest) -> u64 {
    u64::from(dest.load.activeconns()) + 1
}

/// The loop of wlc/sed/lblc: the first dest that is not overloaded and has a
/// weight starts as least; later dests only need to be not overloaded (a
/// weight of 0 never compares smaller).
fn weighted_least(list: &[Dest], overhead: impl Fn(&Dest) -> u64) -> Option<usize> {
    let first = list
        .iter()
        .position(|d| !d.load.is_overloaded() && d.weight > 0)?;
    let mut least = first;
    let mut loh = u128::from(overhead(&list[first]));
    let mut lw = u128::from(list[first].weight);
    for (i, dest) in list.iter().enumerate().skip(first + 1) {
        if dest.load.is_overloaded() {
            continue;
        }
        let doh = u128::from(overhead(dest));
        let dw = u128::from(dest.weight);
        if loh * dw > doh * lw {
            (least, loh, lw) = (i, doh, dw);
        }
    }
    Some(least)
}
