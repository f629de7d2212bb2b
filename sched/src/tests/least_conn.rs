//! lc, wlc, sed, nq: load rules, ties, weight 0, thresholds.

use super::{Conn, Service};
use crate::{ConnClass, Kind};

#[test]
fn lc_counts_inactive_256_times_less() {
    // A has 1 active (256), B has 255 inactive: B is still less loaded.
    let mut svc = Service::bound(Kind::Lc, "A B");
    svc.load('A').bind(ConnClass::Inactive);
    svc.load('A').activate();
    for _ in 0..255 {
        svc.load('B').bind(ConnClass::Inactive);
    }
    assert_eq!(svc.picks(1, Conn::Untracked), "B");
    svc.load('B').bind(ConnClass::Inactive);
    assert_eq!(svc.picks(1, Conn::Untracked), "A");
}

#[test]
fn lc_ignores_weight_but_skips_weight_0() {
    let mut svc = Service::bound(Kind::Lc, "A1 B0 C100");
    assert_eq!(svc.picks(4, Conn::Established), "A C A C");
}

#[test]
fn wlc_first_pick_goes_to_first_in_list_even_if_lightest() {
    let mut svc = Service::bound(Kind::Wlc, "A1 B100");
    assert_eq!(svc.picks(1, Conn::Established), "A");
    // Then B until its load per weight exceeds A's (1/1): 100 more picks.
    let rest = svc.picks(101, Conn::Established);
    assert_eq!(rest, format!("{} A", vec!["B"; 100].join(" ")));
}

#[test]
fn wlc_skips_overloaded_and_leading_weight_0() {
    let mut svc = Service::bound(Kind::Wlc, "A0 B1 C1");
    assert_eq!(svc.picks(4, Conn::Established), "B C B C");
    svc.overload('B');
    assert_eq!(svc.picks(2, Conn::Established), "C C");
}

#[test]
fn wlc_closing_connections_rebalance() {
    let mut svc = Service::bound(Kind::Wlc, "A B");
    assert_eq!(svc.picks(4, Conn::Established), "A B A B");
    // Two of A's connections close: A is least loaded twice.
    svc.load('A').unbind(ConnClass::Active);
    svc.load('A').unbind(ConnClass::Active);
    assert_eq!(svc.picks(3, Conn::Established), "A A A");
    // A's connections leave ESTABLISHED: they weigh 1 each instead of 256
    // (3 vs 512, then 259 vs 512, then 515 vs 512).
    for _ in 0..3 {
        svc.load('A').deactivate();
    }
    assert_eq!(svc.picks(3, Conn::Established), "A A B");
}

#[test]
fn weight_change_mid_sequence_least_connection() {
    let mut svc = Service::bound(Kind::Wlc, "A1 B1");
    assert_eq!(svc.picks(2, Conn::Established), "A B");
    svc.edit('B', 3);
    assert_eq!(svc.picks(4, Conn::Established), "B B A B");
}

#[test]
fn thresholds_take_a_dest_out_and_back_with_hysteresis() {
    // B: -x 4 (no -y): out at 4 connections, back below 3 (4 * 3/4).
    let mut svc = Service::bound(Kind::Wlc, "A1 B100");
    svc.load('B').set_thresholds(4, 0);
    assert_eq!(svc.picks(6, Conn::Established), "A B B B B A");
    assert!(svc.load('B').is_overloaded());
    svc.load('B').unbind(ConnClass::Active);
    assert!(svc.load('B').is_overloaded(), "3 * 4 is not < 4 * 3");
    assert_eq!(svc.picks(1, Conn::Established), "A");
    svc.load('B').unbind(ConnClass::Active);
    assert!(!svc.load('B').is_overloaded());
    assert_eq!(svc.picks(3, Conn::Established), "B B A");
}

#[test]
fn sed_ignores_inactive_connections() {
    let mut svc = Service::bound(Kind::Sed, "A B");
    for _ in 0..1000 {
        svc.load('A').bind(ConnClass::Inactive);
    }
    // (0 + 1) / 1 ties with B: first in list wins.
    assert_eq!(svc.picks(1, Conn::Untracked), "A");
}

#[test]
fn nq_takes_first_idle_then_sed() {
    let mut svc = Service::bound(Kind::Nq, "A1 B0 C1 D5");
    // B has weight 0: never. Idle first (list order), then sed.
    assert_eq!(svc.picks(3, Conn::Established), "A C D");
    assert_eq!(svc.picks(4, Conn::Established), "D D D D");
    // Inactive connections do not make a dest busy.
    let mut svc = Service::bound(Kind::Nq, "A B");
    svc.load('A').bind(ConnClass::Inactive);
    assert_eq!(svc.picks(1, Conn::Untracked), "A");
}
