//! The expiry timer wheel and the free list, as intrusive lists over slab indices.
//!
//! One [`Link`] per slab entry, plus one sentinel per wheel slot and one for the *due* list,
//! all in one array so that list operations never branch on "entry or head". Lists are
//! circular and doubly linked; a node on no list links to itself, so unlinking it again is a
//! no-op. Free entries are a stack threaded through `next`.
//!
//! The wheel is *lazy*: an entry sits in the slot of the expiry it had when it was placed and
//! is not moved when a packet pushes its expiry later (that is a store into the entry, nothing
//! more). When its slot comes due, the table looks at the real expiry and either removes the
//! entry or places it again. Only an expiry that moves *earlier* (a state with a shorter
//! timeout) re-places the entry at once.
//!
//! Slot `t mod SLOTS` holds the entries placed with expiry tick `t` (`tick = ms >>
//! TICK_SHIFT`). The cursor is the next tick to visit; tick `t` is visited once `now` has
//! passed its end (`now >> TICK_SHIFT > t`), when its whole slot is spliced onto the due
//! list in O(1). An entry placed with a tick the cursor has passed (a clock that went back)
//! goes to the cursor's slot. Entries further than `SLOTS` ticks away share slots with
//! nearer ones and are re-placed once per revolution.

/// log2 of the tick in milliseconds: ticks of 16 ms.
pub(super) const TICK_SHIFT: u32 = 4;
/// Number of slots: 65536 ticks of 16 ms, one revolution ≈ 1049 s, more than the default
/// ESTABLISHED timeout, so default-timeout entries are never looked at before they are due.
pub(super) const SLOTS: u32 = 1 << 16;

/// Sentinel "no node" for the free list.
const NIL: u32 = u32::MAX;

/// Neighbours of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    prev: u32,
    next: u32,
}

/// The wheel slots, the due list and the free list.
#[derive(Debug)]
pub(super) struct Wheel {
    /// `[0, base)`: slab entries; `[base, base + SLOTS)`: slot sentinels; `base + SLOTS`:
    /// the due list's sentinel.
    links: Vec<Link>,
    /// Number of slab entries (the table's capacity).
    base: u32,
    /// The next tick to splice onto the due list.
    cursor: u64,
    /// Top of the free stack, or [`NIL`].
    free: u32,
}

impl Wheel {
    /// A wheel for `capacity` entries, all free, the cursor at the tick of `now` (ms).
    /// Fails only when the allocation fails; `capacity + SLOTS + 1` must fit a `u32`.
    pub(super) fn new(capacity: u32, now: u64) -> Result<Wheel, std::collections::TryReserveError> {
        let nodes = capacity as usize + SLOTS as usize + 1;
        let mut links = Vec::new();
        links.try_reserve_exact(nodes)?;
        // Free stack 0 → 1 → … → capacity-1 (allocation order is ascending).
        links.extend((0..capacity).map(|i| Link {
            prev: i,
            next: if i + 1 < capacity { i + 1 } else { NIL },
        }));
        // Sentinels of empty lists point at themselves.
        links.extend((capacity..=capacity + SLOTS).map(|i| Link { prev: i, next: i }));
        Ok(Wheel {
            links,
            base: capacity,
            cursor: now >> TICK_SHIFT,
            free: if capacity > 0 { 0 } else { NIL },
        })
    }

    /// The due list's sentinel.
    const fn due(&self) -> u32 {
        self.base + SLOTS
    }

    fn link(&self, node: u32) -> Link {
        self.links.get(node as usize).copied().unwrap_or(Link {
            prev: node,
            next: node,
        })
    }

    fn set_prev(&mut self, node: u32, prev: u32) {
        if let Some(l) = self.links.get_mut(node as usize) {
            l.prev = prev;
        }
    }

    fn set_next(&mut self, node: u32, next: u32) {
        if let Some(l) = self.links.get_mut(node as usize) {
            l.next = next;
        }
    }

    /// Take an entry off the free stack, linked to nothing.
    pub(super) fn alloc(&mut self) -> Option<u32> {
        let node = self.free;
        if node == NIL {
            return None;
        }
        self.free = self.link(node).next;
        self.set_prev(node, node);
        self.set_next(node, node);
        Some(node)
    }

    /// Put an entry (on no list) back on the free stack.
    pub(super) fn release(&mut self, node: u32) {
        let next = self.free;
        self.set_next(node, next);
        self.free = node;
    }

    /// Take `node` off whatever list it is on; a no-op for a node on none.
    pub(super) fn unlink(&mut self, node: u32) {
        let Link { prev, next } = self.link(node);
        self.set_next(prev, next);
        self.set_prev(next, prev);
        self.set_prev(node, node);
        self.set_next(node, node);
    }

    /// Append `node` (on no list) at the tail of the list of sentinel `head`.
    fn push_back(&mut self, head: u32, node: u32) {
        let tail = self.link(head).prev;
        self.set_next(tail, node);
        self.set_prev(node, tail);
        self.set_next(node, head);
        self.set_prev(head, node);
    }

    /// Move `node` to the slot of its expiry `expires` (ms), or to the cursor's slot if the
    /// cursor has passed that tick (only a clock that went back can ask for that).
    pub(super) fn place(&mut self, node: u32, expires: u64) {
        self.unlink(node);
        let tick = (expires >> TICK_SHIFT).max(self.cursor);
        // Truncation intended: the slot is the tick modulo SLOTS.
        let head = self.base + (tick as u32 & (SLOTS - 1));
        self.push_back(head, node);
    }

    /// Move `node` to the tail of the due list.
    pub(super) fn make_due(&mut self, node: u32) {
        self.unlink(node);
        let due = self.due();
        self.push_back(due, node);
    }

    /// Take the first node of the due list, leaving it on no list.
    pub(super) fn pop_due(&mut self) -> Option<u32> {
        let due = self.due();
        let first = self.link(due).next;
        if first == due {
            return None;
        }
        self.unlink(first);
        Some(first)
    }

    /// Whether an entry expiring at `expires` (ms) is over at `now`: the tick of its expiry
    /// has ended. Its slot is visited at that moment, never before, so an entry lives until
    /// exactly the end of its expiry's tick, wherever the lazy wheel had it.
    pub(super) const fn passed(expires: u64, now: u64) -> bool {
        expires >> TICK_SHIFT < now >> TICK_SHIFT
    }

    /// Whether the cursor has a tick to visit at `now` (ms).
    pub(super) fn behind(&self, now: u64) -> bool {
        self.cursor < now >> TICK_SHIFT
    }

    /// Whether the due list is empty.
    pub(super) fn nothing_due(&self) -> bool {
        let due = self.due();
        self.link(due).next == due
    }

    /// Visit the cursor's tick if `now` has passed it: splice its slot onto the due list and
    /// step the cursor. A cursor more than a revolution behind first jumps to one revolution
    /// behind (every slot is still visited once). Returns false when there was nothing to do.
    pub(super) fn advance(&mut self, now: u64) -> bool {
        let now_tick = now >> TICK_SHIFT;
        if self.cursor >= now_tick {
            return false;
        }
        if now_tick - self.cursor > u64::from(SLOTS) {
            self.cursor = now_tick - u64::from(SLOTS);
        }
        // Truncation intended: the slot is the tick modulo SLOTS.
        let slot = self.base + (self.cursor as u32 & (SLOTS - 1));
        self.cursor += 1;
        let Link {
            prev: last,
            next: first,
        } = self.link(slot);
        if first == slot {
            return true;
        }
        let due = self.due();
        let tail = self.link(due).prev;
        self.set_next(tail, first);
        self.set_prev(first, tail);
        self.set_next(last, due);
        self.set_prev(due, last);
        self.set_prev(slot, slot);
        self.set_next(slot, slot);
        true
    }

    /// Bytes allocated for the links.
    pub(super) fn allocation_size(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<Link>()
    }

    /// Every list (each slot's, then the due list's), as the entry indices on it, walking
    /// `next` and checking `prev` on the way; and the free stack. For consistency checks.
    #[cfg(test)]
    pub(super) fn lists(&self) -> (Vec<Vec<u32>>, Vec<u32>) {
        let mut lists = Vec::new();
        for head in self.base..=self.due() {
            let mut list = Vec::new();
            let mut prev = head;
            let mut node = self.link(head).next;
            while node != head {
                assert!(node < self.base, "sentinel {node} inside list {head}");
                assert_eq!(self.link(node).prev, prev, "broken prev of {node}");
                assert!(list.len() < self.base as usize, "cycle in list {head}");
                list.push(node);
                prev = node;
                node = self.link(node).next;
            }
            assert_eq!(self.link(head).prev, prev, "broken tail of {head}");
            lists.push(list);
        }
        let mut free = Vec::new();
        let mut node = self.free;
        while node != NIL {
            assert!(free.len() < self.base as usize, "cycle in free stack");
            free.push(node);
            node = self.link(node).next;
        }
        (lists, free)
    }

    /// Whether `node` is on no list (links to itself).
    #[cfg(test)]
    pub(super) fn is_alone(&self, node: u32) -> bool {
        self.link(node)
            == Link {
                prev: node,
                next: node,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: u64 = 1 << TICK_SHIFT;

    fn due_all(w: &mut Wheel) -> Vec<u32> {
        std::iter::from_fn(|| w.pop_due()).collect()
    }

    #[test]
    fn free_stack_hands_out_every_entry_once_then_none() {
        let mut w = Wheel::new(3, 0).unwrap();
        assert_eq!(
            (w.alloc(), w.alloc(), w.alloc(), w.alloc()),
            (Some(0), Some(1), Some(2), None)
        );
        w.release(1);
        assert_eq!(w.alloc(), Some(1));
        assert_eq!(w.alloc(), None);
        let mut empty = Wheel::new(0, 0).unwrap();
        assert_eq!(empty.alloc(), None);
    }

    #[test]
    fn a_slot_becomes_due_once_now_has_passed_its_tick() {
        let mut w = Wheel::new(4, 0).unwrap();
        let n = w.alloc().unwrap();
        w.place(n, 5 * TICK + 3);
        for now in [0, 5 * TICK, 6 * TICK - 1] {
            while w.advance(now) {}
            assert!(due_all(&mut w).is_empty(), "due too early at {now}");
        }
        while w.advance(6 * TICK) {}
        assert_eq!(due_all(&mut w), [n]);
        assert!(w.is_alone(n));
    }

    #[test]
    fn a_tick_the_cursor_passed_goes_to_the_cursors_slot() {
        let mut w = Wheel::new(2, 10 * TICK).unwrap();
        let n = w.alloc().unwrap();
        w.place(n, 3 * TICK);
        assert!(w.nothing_due());
        assert!(!w.advance(10 * TICK + TICK - 1));
        assert!(w.advance(11 * TICK));
        assert_eq!(due_all(&mut w), [n]);
    }

    #[test]
    fn unlink_from_anywhere_and_twice_is_safe() {
        let mut w = Wheel::new(3, 0).unwrap();
        let (a, b, c) = (w.alloc().unwrap(), w.alloc().unwrap(), w.alloc().unwrap());
        for n in [a, b, c] {
            w.place(n, 7 * TICK);
        }
        w.unlink(b);
        w.unlink(b);
        assert!(w.is_alone(b));
        while w.advance(8 * TICK) {}
        assert_eq!(due_all(&mut w), [a, c]);
    }

    #[test]
    fn far_entries_share_slots_and_a_large_jump_visits_each_slot_once() {
        let mut w = Wheel::new(2, 0).unwrap();
        let (near, far) = (w.alloc().unwrap(), w.alloc().unwrap());
        w.place(near, 2 * TICK);
        w.place(far, (2 + u64::from(SLOTS)) * TICK);
        while w.advance(3 * TICK) {}
        // Same slot: both come due; the table re-places the far one.
        assert_eq!(due_all(&mut w), [near, far]);
        w.place(far, (2 + u64::from(SLOTS)) * TICK);
        // Jump far ahead: at most one revolution of advances.
        let mut steps = 0;
        while w.advance(1_000_000 * TICK) {
            steps += 1;
        }
        assert_eq!(steps, SLOTS);
        assert_eq!(due_all(&mut w), [far]);
        assert!(!w.behind(1_000_000 * TICK));
    }
}
