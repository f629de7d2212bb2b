//! Weights above 65535, up to ipvsadm 1.31's `INT_MAX`: wrr's gcd and max, the least-connection
//! cross products, mh's shift and ch's quotas.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::{Conn, Service};
use crate::ch::Table;
use crate::dests::Derived;
use crate::{ConnClass, Dest, DestLoad, Dests, Kind, SchedConfig, MAX_WEIGHT};

fn counts(slots: &[u16], n: usize) -> Vec<usize> {
    (0..n)
        .map(|d| slots.iter().filter(|&&s| usize::from(s) == d).count())
        .collect()
}

#[test]
fn max_weight_is_int_max_and_one_more_is_refused() {
    assert_eq!(MAX_WEIGHT, 2_147_483_647);
    let list = |w: u32| {
        vec![Dest::new(
            super::addr('A'),
            w,
            Arc::new(DestLoad::default()),
        )]
    };
    for kind in [Kind::Wrr, Kind::Wlc, Kind::Mh, Kind::Ch, Kind::Sh] {
        assert!(Dests::new(kind, SchedConfig::default(), list(MAX_WEIGHT)).is_ok());
        let err = Dests::new(kind, SchedConfig::default(), list(MAX_WEIGHT + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination 10.0.0.1:80: weight 2147483648 not in 0..=2147483647"
        );
    }
}

#[test]
fn wrr_gcd_and_max_above_65535() {
    // di = 65536, mw = 131072 - 65535 = 65537: passes at cw 65537 (A) and 1 (A, B).
    let mut svc = Service::bound(Kind::Wrr, "A131072 B65536");
    assert_eq!(svc.picks(6, Conn::Untracked), "A A B A A B");
    // Equal maximal weights: di = mw... one pass at cw = 1 picks both.
    let mut svc = Service::bound(Kind::Wrr, "A2147483647 B2147483647");
    assert_eq!(svc.picks(4, Conn::Untracked), "A B A B");
    // gcd 1 with a maximal weight: A alone until cw falls to B's weight, 2^31 - 2 picks on.
    let mut svc = Service::bound(Kind::Wrr, "A2147483647 B1");
    assert_eq!(svc.picks(3, Conn::Untracked), "A A A");
}

#[test]
fn wlc_cross_products_do_not_overflow_64_bits() {
    // A: 2^25 active and 8 inactive connections, overhead 2^33 + 8; B: one active, 256. With
    // both weights 2^31 - 1, A's product is 2^64 + 2^33 - 8, which 64 bits would wrap to less
    // than B's 2^39 or so and keep A; the exact comparison picks B.
    let mut svc = Service::bound(Kind::Wlc, "A2147483647 B2147483647");
    let a = svc.load('A');
    for _ in 0..(1u32 << 25) {
        a.bind(ConnClass::Inactive);
        a.activate();
    }
    for _ in 0..8 {
        a.bind(ConnClass::Inactive);
    }
    let b = svc.load('B');
    b.bind(ConnClass::Inactive);
    b.activate();
    assert_eq!(svc.picks(1, Conn::Untracked), "B");
}

#[test]
fn sed_and_nq_keep_the_ratio_of_large_weights() {
    for kind in [Kind::Sed, Kind::Nq, Kind::Wlc] {
        let mut svc = Service::bound(kind, "A131072 B65536");
        let picks = svc.picks(300, Conn::Established);
        let a = picks.split_whitespace().filter(|&p| p == "A").count();
        assert!((199..=201).contains(&a), "{kind:?}: A picked {a} of 300");
    }
}

fn list(weights: &[u32]) -> Vec<Dest> {
    weights
        .iter()
        .zip(1u8..)
        .map(|(&w, i)| {
            let addr = SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 80));
            Dest::new(addr, w, Arc::new(DestLoad::default()))
        })
        .collect()
}

#[test]
fn ch_and_mh_shares_follow_large_weights() {
    // ch: quotas m * w / total in 64 bits: 2:1 whatever the scale.
    for scale in [1u32, 65536, 1 << 30] {
        let table = Table::new(&list(&[2 * scale, scale]), 65537);
        let counts = counts(table.as_slice(), 2);
        assert_eq!(counts, [43691, 21846], "scale {scale}");
    }
    // mh: weights reduced by their gcd, then shifted to the table's bits: the same table at
    // any scale.
    let slots = |w: &[u32]| {
        let dests = Dests::new(Kind::Mh, SchedConfig::default(), list(w)).unwrap();
        let Derived::Mh(table) = &dests.derived else {
            panic!("mh table")
        };
        counts(table.as_slice(), w.len())
    };
    let small = slots(&[2, 1]);
    assert_eq!(slots(&[2 * 65536, 65536]), small);
    assert_eq!(slots(&[2 << 29, 1 << 29]), small);
    // gcd 1 and a maximal weight: shifted down, the small one keeps one turn a round.
    let c = slots(&[MAX_WEIGHT, 1]);
    assert!(c[1] > 0 && c[0] > 60 * c[1], "{c:?}");
}

#[test]
fn wrr_with_every_dest_overloaded_gives_up_without_walking_every_weight() {
    let mut svc = Service::bound(Kind::Wrr, "A2147483647 B1");
    svc.overload('A');
    svc.overload('B');
    let started = std::time::Instant::now();
    assert_eq!(svc.picks(2, Conn::Untracked), "- -");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
