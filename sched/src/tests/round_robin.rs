//! rr and wrr: cursors across weight changes, additions and deletions.

use super::{Conn::Untracked, Service};
use crate::Kind;
use proptest::prelude::*;

#[test]
fn rr_skips_weight_0_and_resumes_after_cursor() {
    let mut svc = Service::bound(Kind::Rr, "A B C");
    svc.edit('B', 0);
    assert_eq!(svc.picks(5, Untracked), "A C A C A");
    // Re-enabled: the cycle goes on after the cursor (A).
    svc.edit('B', 1);
    assert_eq!(svc.picks(4, Untracked), "B C A B");
}

#[test]
fn rr_skips_overloaded() {
    let mut svc = Service::bound(Kind::Rr, "A B C");
    svc.overload('A');
    assert_eq!(svc.picks(4, Untracked), "B C B C");
    svc.overload('B');
    svc.overload('C');
    assert_eq!(svc.picks(2, Untracked), "- -");
}

#[test]
fn rr_single_eligible_dest_is_picked_again() {
    let mut svc = Service::bound(Kind::Rr, "A B C");
    svc.edit('A', 0);
    svc.edit('C', 0);
    assert_eq!(svc.picks(3, Untracked), "B B B");
}

#[test]
fn rr_deleting_the_cursor_moves_it_back() {
    // ip_vs_rr_del_dest: the cursor goes to the deleted dest's predecessor,
    // so the next pick is its successor.
    let mut svc = Service::bound(Kind::Rr, "A B C D");
    assert_eq!(svc.picks(2, Untracked), "A B");
    svc.del('B');
    assert_eq!(svc.picks(4, Untracked), "C D A C");
    // Cursor at C; delete C and its predecessor A: back to the head.
    svc.list
        .retain(|d| d.addr != super::addr('A') && d.addr != super::addr('C'));
    svc.publish();
    assert_eq!(svc.picks(2, Untracked), "D D");
}

#[test]
fn rr_new_dests_wait_for_the_wrap() {
    // add_dest is NULL for rr: a dest added at the head is reached after the
    // cursor wraps.
    let mut svc = Service::bound(Kind::Rr, "A B C");
    assert_eq!(svc.picks(1, Untracked), "A");
    svc.add('D', 1);
    assert_eq!(svc.picks(5, Untracked), "B C D A B");
}

#[test]
fn wrr_weight_change_mid_sequence() {
    let mut svc = Service::bound(Kind::Wrr, "A4 B3 C2");
    assert_eq!(svc.picks(3, Untracked), "A A B");
    // dest_changed: restart at the head, cw = 3 kept (di = 1).
    svc.edit('C', 4);
    assert_eq!(svc.picks(14, Untracked), "A B C A B C A B C A C A B C");
}

#[test]
fn wrr_change_realigns_cw_to_new_gcd() {
    // A4 B2: di = 2, mw = 3. After two picks cw = 1 (the B A pass)... then a
    // change to A6 B4 (di = 2, mw = 5): cw = (cw / 2) * 2 + 1.
    let mut svc = Service::bound(Kind::Wrr, "A4 B2");
    assert_eq!(svc.picks(3, Untracked), "A A B");
    svc.edit('A', 6);
    svc.edit('B', 4);
    // cw was 1 -> stays 1 (1 / 2 * 2 + 1); pass cw=1: A B; then cw=5: A;
    // cw=3: A B; cw=1: A B.
    assert_eq!(svc.picks(9, Untracked), "A B A A B A B A A");
}

#[test]
fn wrr_deleting_restarts_from_head() {
    let mut svc = Service::bound(Kind::Wrr, "A B C");
    assert_eq!(svc.picks(2, Untracked), "A B");
    svc.del('B');
    assert_eq!(svc.picks(4, Untracked), "A C A C");
}

#[test]
fn wrr_weight_0_and_overload() {
    let mut svc = Service::bound(Kind::Wrr, "A2 B0 C1");
    assert_eq!(svc.picks(6, Untracked), "A A C A A C");
    svc.overload('A');
    assert_eq!(svc.picks(3, Untracked), "C C C");
    svc.overload('C');
    assert_eq!(svc.picks(2, Untracked), "- -");
    let mut zero = Service::bound(Kind::Wrr, "A0 B0");
    assert_eq!(zero.picks(2, Untracked), "- -");
}

proptest! {
    /// Over one full cycle (sum(w) / gcd picks) each dest is picked exactly
    /// w / gcd times, whatever the weights and list order.
    #[test]
    fn wrr_cycle_matches_weight_ratios(weights in prop::collection::vec(0u32..=12, 1..=7)) {
        let spec: Vec<String> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}{}", char::from(b'A' + i as u8), w))
            .collect();
        let mut svc = Service::bound(Kind::Wrr, &spec.join(" "));
        let nonzero: Vec<u32> = weights.iter().copied().filter(|&w| w > 0).collect();
        prop_assume!(!nonzero.is_empty());
        let gcd = nonzero.iter().copied().reduce(|a, b| {
            let (mut a, mut b) = (a, b);
            while b != 0 { (a, b) = (b, a % b); }
            a
        }).unwrap();
        let cycle: u32 = nonzero.iter().sum::<u32>() / gcd;
        let picks = svc.picks(cycle as usize * 2, Untracked);
        let picks: Vec<&str> = picks.split(' ').collect();
        for half in picks.chunks(cycle as usize) {
            for (i, w) in weights.iter().enumerate() {
                let letter = char::from(b'A' + i as u8).to_string();
                let count = half.iter().filter(|p| **p == letter).count() as u32;
                prop_assert_eq!(count, w / gcd, "dest {} of {:?}", letter, weights);
            }
        }
    }
}

#[test]
fn same_list_is_no_change_but_a_rebuilt_one_is() {
    // A4 B3 C2 after "A A B": cursor B, cw 3.
    let mut svc = Service::bound(Kind::Wrr, "A4 B3 C2");
    assert_eq!(svc.picks(3, Untracked), "A A B");
    let same = std::sync::Arc::clone(svc.sched.dests());
    svc.sched.set_dests(same);
    assert_eq!(svc.picks(3, Untracked), "A B C", "cw 2 pass goes on");
    // An identical but new list is an edit (upd_dest): back to the head.
    let mut svc = Service::bound(Kind::Wrr, "A4 B3 C2");
    assert_eq!(svc.picks(3, Untracked), "A A B");
    svc.publish();
    assert_eq!(svc.picks(3, Untracked), "A B A", "cw 3 again from the head");
}

#[test]
fn a_list_for_another_scheduler_rebinds() {
    // ipvsadm -E -s wrr on an rr service: a fresh wrr mark (cw = mw).
    let mut svc = Service::bound(Kind::Rr, "A4 B3 C2");
    assert_eq!(svc.picks(2, Untracked), "A B");
    svc.kind = Kind::Wrr;
    svc.publish();
    assert_eq!(svc.sched.kind(), Kind::Wrr);
    assert_eq!(svc.picks(9, Untracked), "A A B A B C A B C");
}
