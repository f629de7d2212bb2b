//! rr: round robin (ip_vs_rr.c).
//!
//! The cursor is the last dest picked, or the list head before the first pick.
//! A pick takes the next dest after it, wrapping through the head, that is not
//! overloaded and has a weight; the cursor itself is tried last.

use crate::dest::Dest;
use crate::dests::Dests;

/// The kernel's `svc->sched_data`: index of the last pick, `None` = list head.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor(Option<usize>);

impl Cursor {
    pub(crate) fn pick(&mut self, list: &[Dest]) -> Option<usize> {
        let start = self.0.map_or(0, |c| c + 1);
        let after = start.min(list.len())..list.len();
        // Back at the head only if the cursor was not there already.
        let before = 0..self.0.map_or(0, |c| (c + 1).min(list.len()));
        let found = after
            .chain(before)
            .find(|&i| !list[i].load.is_overloaded() && list[i].weight > 0);
        if found.is_some() {
            self.0 = found;
        }
        found
    }

    /// `add_dest` is NULL in ip_vs_rr.c, so new dests (at the head) do not move
    /// the cursor; `ip_vs_rr_del_dest` moves it to the deleted dest's
    /// predecessor. Deletions in one swap are applied before additions, so a
    /// cursor whose predecessors were all deleted returns to the head.
    pub(crate) fn remap(&mut self, old: &Dests, new: &Dests) {
        self.0 = self.0.and_then(|c| {
            old.as_slice()[..=c]
                .iter()
                .rev()
                .find_map(|d| new.position(&d.addr))
        });
    }
}
