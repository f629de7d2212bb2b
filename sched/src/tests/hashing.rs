//! dh, sh, mh: bucket/slot fills and lookups against the spec's numbers.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use super::{flow, Conn::Untracked, Service};
use crate::dests::Derived;
use crate::{Dest, DestLoad, Dests, FlowKey, Kind, SchedConfig, SchedFlags, IPPROTO_TCP};

/// The dest names of table entries (indices into the current list).
fn letters(svc: &Service, slots: &[u16]) -> String {
    let list = svc.sched.dests().as_slice();
    slots
        .iter()
        .map(|&i| super::name(&list[usize::from(i)].addr).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn counts(slots: &[u16], n: usize) -> Vec<usize> {
    (0..n)
        .map(|d| slots.iter().filter(|&&s| usize::from(s) == d).count())
        .collect()
}

fn buckets(svc: &Service) -> Vec<u16> {
    match &svc.sched.dests().derived {
        Derived::Dh(b) | Derived::Sh(b) => b.as_slice().to_vec(),
        Derived::Mh(t) => t.as_slice().to_vec(),
        other => panic!("no buckets in {other:?}"),
    }
}

fn to_vip(vaddr: Ipv4Addr) -> FlowKey {
    FlowKey::v4(
        IPPROTO_TCP,
        Ipv4Addr::new(192, 168, 1, 100),
        40000,
        vaddr,
        80,
    )
}

fn pick(svc: &mut Service, f: &FlowKey) -> Option<char> {
    svc.pick_for(f, Untracked)
}

fn flags(fallback: bool, port: bool) -> SchedConfig {
    SchedConfig {
        flags: SchedFlags { fallback, port },
        ..SchedConfig::default()
    }
}

#[test]
fn dh_fills_buckets_cyclically_ignoring_weights() {
    let mut svc = Service::bound(Kind::Dh, "A3 B1 C7");
    let b = buckets(&svc);
    assert!(b.iter().enumerate().all(|(i, &d)| usize::from(d) == i % 3));
    // Destination 10.1.1.1 -> bucket 177 -> A; x.x.x.2 -> 98 -> C.
    assert_eq!(
        pick(&mut svc, &to_vip(Ipv4Addr::new(10, 1, 1, 1))),
        Some('A')
    );
    assert_eq!(
        pick(&mut svc, &to_vip(Ipv4Addr::new(172, 16, 0, 2))),
        Some('C')
    );
    // Quiescing keeps the buckets: no dest, no fallback.
    svc.edit('A', 0);
    assert_eq!(buckets(&svc), b);
    assert_eq!(pick(&mut svc, &to_vip(Ipv4Addr::new(10, 1, 1, 1))), None);
    svc.edit('A', 1);
    svc.overload('A');
    assert_eq!(pick(&mut svc, &to_vip(Ipv4Addr::new(10, 1, 1, 1))), None);
    // A new dest at the head refills: bucket i -> list[i mod 4] = D A B C.
    svc.add('D', 1);
    assert_eq!(letters(&svc, &buckets(&svc)[..8]), "D A B C D A B C");
}

#[test]
fn sh_spec_example() {
    let mut svc = Service::bound(Kind::Sh, "A1 B2 C3");
    let b = buckets(&svc);
    assert_eq!(letters(&svc, &b[..12]), "A B B C C C A B B C C C");
    assert_eq!(counts(&b, 3), [43, 86, 127]);
    for (client, dest) in [
        ("10.0.0.1", 'C'),
        ("10.0.0.2", 'B'),
        ("10.0.0.3", 'B'),
        ("192.168.1.100", 'A'),
        ("192.168.1.101", 'C'),
    ] {
        assert_eq!(pick(&mut svc, &flow(client)), Some(dest), "{client}");
    }
}

#[test]
fn sh_port_flag() {
    let mut svc = Service::bound_with(Kind::Sh, flags(false, true), "A1 B2 C3");
    let mut f = flow("10.0.0.1");
    f.cport = 12345;
    // (12345 + 10.0.0.1) low byte 0x3a * 0xb1 mod 256 = 26 -> B.
    assert_eq!(pick(&mut svc, &f), Some('B'));
    // ICMP has no port: back to bucket 177 -> C.
    f.proto = 1;
    assert_eq!(pick(&mut svc, &f), Some('C'));
    // Without the flag the port is ignored.
    let mut plain = Service::bound(Kind::Sh, "A1 B2 C3");
    f.proto = IPPROTO_TCP;
    assert_eq!(pick(&mut plain, &f), Some('C'));
}

#[test]
fn sh_fallback_probes_from_twice_the_bucket() {
    let mut plain = Service::bound(Kind::Sh, "A1 B2 C3");
    plain.overload('C');
    assert_eq!(pick(&mut plain, &flow("10.0.0.1")), None);
    let mut svc = Service::bound_with(Kind::Sh, flags(true, false), "A1 B2 C3");
    svc.overload('C');
    // Bucket 177 (C) unavailable; first probe is bucket 2 * 177 mod 256 = 98: B.
    assert_eq!(pick(&mut svc, &flow("10.0.0.1")), Some('B'));
    // Bucket 36 (A) quiesced: probes 72 (A), 73 (B).
    svc.edit('A', 0);
    assert_eq!(letters(&svc, &buckets(&svc)[72..74]), "A B");
    assert_eq!(pick(&mut svc, &flow("192.168.1.100")), Some('B'));
    svc.overload('B');
    assert_eq!(pick(&mut svc, &flow("192.168.1.100")), None);
}

#[test]
fn sh_weight_0_gets_one_bucket_per_round_and_refills_on_edit() {
    let mut svc = Service::bound(Kind::Sh, "A1 B0");
    assert_eq!(counts(&buckets(&svc), 2), [128, 128]);
    // 10.0.0.1 -> bucket 177 (odd) -> B, which has weight 0.
    assert_eq!(pick(&mut svc, &flow("10.0.0.1")), None);
    svc.edit('B', 3);
    assert_eq!(letters(&svc, &buckets(&svc)[..8]), "A B B B A B B B");
    assert_eq!(pick(&mut svc, &flow("10.0.0.1")), Some('B'));
}

fn mh_list(weights: &[u32]) -> Vec<Dest> {
    weights
        .iter()
        .zip(1u8..)
        .map(|(&w, i)| {
            Dest::new(
                (Ipv4Addr::new(10, 0, 0, i), 80).into(),
                w,
                Arc::new(DestLoad::default()),
            )
        })
        .collect()
}

#[test]
fn mh_spec_example() {
    let mut svc = Service::bound(Kind::Mh, "A B C");
    assert_eq!(counts(&buckets(&svc), 3), [1365, 1364, 1364]);
    assert_eq!(pick(&mut svc, &flow("192.168.1.100")), Some('B'));
    assert_eq!(pick(&mut svc, &flow("192.168.1.101")), Some('C'));
    let weighted = Service::bound(Kind::Mh, "A2 B1 C1");
    assert_eq!(counts(&buckets(&weighted), 3), [2047, 1023, 1023]);
}

#[test]
fn mh_quiesced_dest_keeps_its_slots() {
    let mut svc = Service::bound(Kind::Mh, "A B C");
    let before = buckets(&svc);
    svc.edit('B', 0);
    assert_eq!(buckets(&svc), before, "last_weight keeps B's slots");
    assert_eq!(pick(&mut svc, &flow("192.168.1.100")), None);

    let mut fallback = Service::bound_with(Kind::Mh, flags(true, false), "A B C");
    fallback.edit('B', 0);
    let got = pick(&mut fallback, &flow("192.168.1.100"));
    assert!(matches!(got, Some('A' | 'C')), "{got:?}");
    // Clients of other dests are not affected.
    assert_eq!(pick(&mut fallback, &flow("192.168.1.101")), Some('C'));
}

#[test]
fn mh_dest_added_with_weight_0_gets_no_slots() {
    let config = SchedConfig::default();
    let dests = Dests::new(Kind::Mh, config, mh_list(&[1, 0, 1])).unwrap();
    let Derived::Mh(table) = &dests.derived else {
        panic!("mh table")
    };
    assert_eq!(counts(table.as_slice(), 3)[1], 0);
    let all_zero = Dests::new(Kind::Mh, SchedConfig::default(), mh_list(&[0, 0])).unwrap();
    let mut sched = crate::Scheduler::bind(Arc::new(all_zero));
    assert_eq!(sched.pick(&flow("192.168.1.100"), Duration::ZERO), None);
}

#[test]
fn mh_large_weights_are_shifted_to_table_bits() {
    // gcd 1, max 1000: fls(1000) = 10 > 6 bits -> rshift 4: turns 62 and 0 -> 1.
    let dests = Dests::new(Kind::Mh, SchedConfig::default(), mh_list(&[1000, 1])).unwrap();
    let Derived::Mh(table) = &dests.derived else {
        panic!("mh table")
    };
    let c = counts(table.as_slice(), 2);
    // 62 + 1 turns per round: 64 rounds fill 4032 slots, A takes the last 61.
    assert_eq!(c, [64 * 62 + 61, 64]);
}

#[test]
fn mh_port_flag_changes_the_slot_only_for_port_protocols() {
    let mut with_port = Service::bound_with(Kind::Mh, flags(false, true), "A B C");
    let mut without = Service::bound(Kind::Mh, "A B C");
    let picks = |svc: &mut Service, proto: u8| -> Vec<Option<char>> {
        (0..64u16)
            .map(|p| {
                let mut f = flow("192.168.1.100");
                f.proto = proto;
                f.cport = 1000 + p;
                pick(svc, &f)
            })
            .collect()
    };
    let ported = picks(&mut with_port, IPPROTO_TCP);
    assert!(
        ported.iter().any(|&p| p != Some('B')),
        "ports spread the client"
    );
    assert_eq!(picks(&mut with_port, 1), vec![Some('B'); 64]);
    assert_eq!(picks(&mut without, IPPROTO_TCP), vec![Some('B'); 64]);
}
