//! wrr: weighted round robin (ip_vs_wrr.c).
//!
//! Passes over the list with a falling current weight cw = mw, mw - di, ...,
//! down to 1; a pass picks, in list order, every dest whose weight is at
//! least cw. di is the gcd of the non-zero weights and mw the maximum weight
//! minus (di - 1), so the last pass has cw = 1 and a cycle is sum(w) / di picks.

use crate::dest::Dest;

/// di and mw, recomputed off the fast path whenever the dests change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    /// `di`: gcd of the weights > 0, or 1 if there are none.
    di: i64,
    /// `mw`: the maximum weight - (di - 1); 0 means no dest has a weight.
    mw: i64,
}

impl Params {
    pub(crate) fn new(list: &[Dest]) -> Params {
        let di = list
            .iter()
            .map(|d| i64::from(d.weight))
            .filter(|&w| w > 0)
            .reduce(gcd)
            .unwrap_or(1);
        let max = list.iter().map(|d| i64::from(d.weight)).max().unwrap_or(0);
        Params {
            di,
            mw: max - (di - 1),
        }
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The per-worker part of `struct ip_vs_wrr_mark`: the last dest picked
/// (`None` = list head) and the current weight.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mark {
    cl: Option<usize>,
    cw: i64,
}

impl Mark {
    /// `ip_vs_wrr_init_svc`.
    pub(crate) fn new(params: &Params) -> Mark {
        Mark {
            cl: None,
            cw: params.mw,
        }
    }

    /// `ip_vs_wrr_dest_changed`: restart from the head; keep cw if it is still
    /// a possible value, aligned to the new step.
    pub(crate) fn dest_changed(&mut self, params: &Params) {
        self.cl = None;
        if self.cw > params.mw || self.cw == 0 {
            self.cw = params.mw;
        } else if params.di > 1 {
            self.cw = (self.cw / params.di) * params.di + 1;
        }
    }

    /// `ip_vs_wrr_schedule`, with the same stop rules: after a full pass at
    /// cw = 1 over every dest without a hit, give up.
    pub(crate) fn pick(&mut self, params: &Params, list: &[Dest]) -> Option<usize> {
        if params.mw == 0 {
            return None;
        }
        let last = self.cl;
        let mut from = self.cl.map_or(0, |c| c + 1);
        let mut stop = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            let full_pass = from == 0;
            // The largest weight of a dest that is not overloaded, in this pass.
            let mut available = 0;
            for (i, dest) in list.iter().enumerate().skip(from) {
                if !dest.load.is_overloaded() {
                    let weight = i64::from(dest.weight);
                    if weight >= self.cw {
                        self.cl = Some(i);
                        return Some(i);
                    }
                    available = available.max(weight);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            from = 0;
            // The passes at a cw above every available weight find nothing, and before the
            // last pass (cw <= di) they have no stop either: after a pass over the whole list,
            // go straight to the first cw that can match, or to the last pass. With weights up
            // to 2^31 - 1 and every dest overloaded, walking them would take 2^31 passes.
            let steps = if full_pass {
                let wanted = (self.cw - available + params.di - 1) / params.di;
                wanted.min((self.cw - 1) / params.di).max(1)
            } else {
                1
            };
            self.cw -= steps * params.di;
            if self.cw <= 0 {
                self.cw = params.mw;
                // Either the pass that just ended already covered every dest
                // at cw <= di, or it started from the head: nothing can match.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= params.di;
            if last_pass && restarted && last.is_some() {
                // The first traversal at w >= 1 covered only the dests after
                // `last`; finish with the ones up to it.
                stop = last;
            }
        }
    }
}
