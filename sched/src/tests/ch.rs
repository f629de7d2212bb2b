//! ch (Maglev): balance, weights, disruption on changes, determinism.
//!
//! Load is measured on the table itself: each of the M slots covers 1/M of
//! the hash space, so the share of flows a dest receives is its slot count /
//! M, exactly, and "flows moved" is the fraction of slots whose owner changed.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use super::{flow, Conn::Untracked, Service};
use crate::ch::{lookup_slot, permutation, Table};
use crate::{Dest, DestLoad, Dests, FlowKey, Kind, SchedConfig, SchedFlags, Scheduler};

const M: u32 = 65537;

fn dest(addr: SocketAddr, weight: u32) -> Dest {
    Dest::new(addr, weight, Arc::new(DestLoad::default()))
}

/// Slot owners by address, so tables over different lists compare.
fn owners(list: &[Dest], size: u32) -> Vec<SocketAddr> {
    Table::new(list, size)
        .as_slice()
        .iter()
        .map(|&i| list[usize::from(i)].addr)
        .collect()
}

fn slot_counts(list: &[Dest], size: u32) -> Vec<usize> {
    let owners = owners(list, size);
    list.iter()
        .map(|d| owners.iter().filter(|&&a| a == d.addr).count())
        .collect()
}

/// Fraction of slots, among those not owned by `except` before, whose
/// owner differs.
fn moved(before: &[SocketAddr], after: &[SocketAddr], except: &HashSet<SocketAddr>) -> f64 {
    let kept: Vec<(&SocketAddr, &SocketAddr)> = before
        .iter()
        .zip(after)
        .filter(|(b, _)| !except.contains(b))
        .collect();
    if kept.is_empty() {
        return 0.0;
    }
    kept.iter().filter(|(b, a)| b != a).count() as f64 / kept.len() as f64
}

/// Dests whose skip equals another's. Their permutations are then the same
/// cycle from different starts, so they compete for the same slots in the
/// same order and any change to the fill can shift many slots between them
/// (kernel mh and the Maglev paper share this). It happens for about
/// N^2 / 2M of dest sets: 7% at N = 100, M = 65537.
fn skip_sharers(addrs: &[SocketAddr]) -> HashSet<SocketAddr> {
    let skips: Vec<u32> = addrs.iter().map(|a| permutation(a, M).1).collect();
    addrs
        .iter()
        .zip(&skips)
        .filter(|(_, s)| skips.iter().filter(|t| t == s).count() > 1)
        .map(|(a, _)| *a)
        .collect()
}

/// `min..=max` dests on distinct random IPv4 addresses, port 80 or 8080 (a
/// BTreeSet, so that a fixed seed gives the same list on every run).
fn dest_set(min: usize, max: usize) -> impl Strategy<Value = Vec<SocketAddr>> {
    prop::collection::btree_set((any::<u32>(), prop::bool::ANY), min..=max).prop_map(|set| {
        set.into_iter()
            .map(|(a, alt)| SocketAddr::from((Ipv4Addr::from(a), if alt { 8080 } else { 80 })))
            .collect()
    })
}

proptest! {
    // A fixed seed keeps CI deterministic.
    #![proptest_config(ProptestConfig {
        rng_seed: RngSeed::Fixed(0x5eed),
        ..ProptestConfig::with_cases(32)
    })]

    /// Equal weights: slot counts differ by at most one, far inside 1% of
    /// the mean (>= 655 slots for N <= 100).
    #[test]
    fn equal_weights_balance(addrs in dest_set(1, 100)) {
        let list: Vec<Dest> = addrs.iter().map(|&a| dest(a, 1)).collect();
        let counts = slot_counts(&list, M);
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        let mean = f64::from(M) / list.len() as f64;
        prop_assert!(max - min <= 1, "{min}..{max}");
        prop_assert!((max - min) as f64 <= 0.01 * mean);
    }

    /// Any weights: each dest owns its exact share M * w / W to within one
    /// slot, so load per unit of weight is equal to within 1 / share.
    #[test]
    fn weights_are_honoured(addrs in dest_set(1, 100), seed in any::<u64>()) {
        let list: Vec<Dest> = addrs
            .iter()
            .enumerate()
            .map(|(i, &a)| dest(a, (seed.rotate_left(i as u32 * 7) % 1000) as u32 + 1))
            .collect();
        let total: u32 = list.iter().map(|d| d.weight).sum();
        for (d, count) in list.iter().zip(slot_counts(&list, M)) {
            let ideal = f64::from(M) * f64::from(d.weight) / f64::from(total);
            prop_assert!((count as f64 - ideal).abs() < 1.0, "{}: {count} vs {ideal}", d.addr);
        }
    }

    /// Removing one of N >= 20 dests moves its flows and at most 1.5% of the
    /// others' (measured: 0.4% to 0.6% on average, 1.2% at worst); dests
    /// sharing a skip are left out of the count (see `skip_sharers`).
    #[test]
    fn removal_moves_little_else(addrs in dest_set(20, 100), gone in any::<prop::sample::Index>(), weighted in prop::bool::ANY) {
        let list: Vec<Dest> = addrs
            .iter()
            .enumerate()
            .map(|(i, &a)| dest(a, if weighted { 1 + i as u32 % 5 } else { 1 }))
            .collect();
        let gone = gone.index(list.len());
        let mut fewer = list.clone();
        fewer.remove(gone);
        let (before, after) = (owners(&list, M), owners(&fewer, M));
        prop_assert!(!after.contains(&list[gone].addr));
        let mut left_out = skip_sharers(&addrs);
        left_out.insert(list[gone].addr);
        let others = moved(&before, &after, &left_out);
        prop_assert!(others <= 0.015, "{:.4} of the others' flows moved", others);
    }

    /// Adding a dest to N >= 20 moves its 1 / (N + 1) share plus at most 1.5%.
    #[test]
    fn addition_moves_one_share(addrs in dest_set(21, 101)) {
        let list: Vec<Dest> = addrs[1..].iter().map(|&a| dest(a, 1)).collect();
        let mut more = list.clone();
        more.insert(0, dest(addrs[0], 1));
        let (before, after) = (owners(&list, M), owners(&more, M));
        let share = 1.0 / more.len() as f64;
        let total = moved(&before, &after, &HashSet::new());
        prop_assert!(total >= share - 1.0 / f64::from(M), "{} < {}", total, share);
        let others = moved(&before, &after, &skip_sharers(&addrs)) - share;
        prop_assert!(others <= 0.015, "{:.4} beyond the new share", others);
    }

    /// The table depends on the set of dests and weights only: the same
    /// mapping in every process, on every worker, whatever the list order.
    #[test]
    fn mapping_is_deterministic_and_order_independent(addrs in dest_set(1, 50), rotate in 0usize..50) {
        let list: Vec<Dest> = addrs.iter().enumerate().map(|(i, &a)| dest(a, 1 + i as u32 % 3)).collect();
        let mut reordered = list.clone();
        reordered.reverse();
        let by = rotate % reordered.len();
        reordered.rotate_left(by);
        let first = owners(&list, 4099);
        prop_assert_eq!(&first, &owners(&list, 4099));
        prop_assert_eq!(&first, &owners(&reordered, 4099));
    }
}

// The pinned values below were computed by an independent implementation of
// the definition in the crate docs (a few lines of Python, with its own
// SipHash-1-3 checked against the kernel's mh vector 0x439c0cbe). Changing
// them means balancers of different rvs versions would disagree.

/// Fixed-seed xorshift: the sweep below is the same on every run.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Maglev's minimal disruption on average, measured on 30 random dest sets
/// per N (the proptests above check each set from N = 20 on), with
/// M = 65537: removing one dest must move its slots and few others; adding
/// one must move about 1 / (N + 1) of all slots. "Others moved" is the
/// fraction of the remaining dests' slots that changed owner, leaving out
/// dests that share a skip. Measured over thousands of sets: the mean is
/// 0.05% (N = 3) to 0.6% (N = 100); the worst about 1.2% from N = 12 on, but
/// a rare small service (N = 3, 1 set in 3000) reaches 17%, which is why the
/// per-set bound only applies from N = 20.
#[test]
fn disruption_is_about_one_percent() {
    let mut seed = 0x5eed_0fc4_5eed_u64;
    for n in [3usize, 5, 10, 20, 50, 100] {
        let (mut removal, mut addition) = (Vec::new(), Vec::new());
        for _ in 0..30 {
            let addrs: Vec<SocketAddr> = (0..=n)
                .map(|_| (Ipv4Addr::from(xorshift(&mut seed) as u32), 80).into())
                .collect();
            let list: Vec<Dest> = addrs[..n].iter().map(|&a| dest(a, 1)).collect();
            let before = owners(&list, M);

            let gone = xorshift(&mut seed) as usize % n;
            let mut fewer = list.clone();
            fewer.remove(gone);
            let after = owners(&fewer, M);
            assert!(!after.contains(&list[gone].addr));
            let mut left_out = skip_sharers(&addrs[..n]);
            left_out.insert(list[gone].addr);
            removal.push(moved(&before, &after, &left_out));

            let mut more = list.clone();
            more.insert(0, dest(addrs[n], 1));
            let after = owners(&more, M);
            let share = 1.0 / (n + 1) as f64;
            let total = moved(&before, &after, &HashSet::new());
            assert!(
                total >= share - 1.0 / f64::from(M),
                "n={n}: {total} < {share}"
            );
            addition.push(moved(&before, &after, &skip_sharers(&addrs)) - share);
        }
        for (what, values) in [("removal", &removal), ("addition", &addition)] {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let worst = values.iter().copied().fold(0.0, f64::max);
            assert!(mean <= 0.01, "n={n} {what}: mean {mean:.4}");
            if n >= 20 {
                assert!(worst <= 0.015, "n={n} {what}: worst {worst:.4}");
            }
        }
    }
}

#[test]
fn lookup_hash_is_the_documented_one() {
    // SipHash-1-3 of the address bytes (and big-endian port), top 32 bits
    // scaled onto 0..M.
    let v4: IpAddr = "192.168.1.100".parse().unwrap();
    let slots = [
        lookup_slot(&v4, None, M),
        lookup_slot(&v4, Some(40000), M),
        lookup_slot(&"2001:db8::1".parse().unwrap(), None, M),
    ];
    assert_eq!(slots, PINNED_SLOTS);
    // Distinct inputs land apart and inside the table.
    assert!(slots.iter().all(|&s| s < M as usize));
    assert_eq!(slots.iter().collect::<HashSet<_>>().len(), 3);
}

const PINNED_SLOTS: [usize; 3] = [45986, 54090, 53599];

#[test]
fn table_is_pinned_for_a_small_service() {
    let list: Vec<Dest> = (1..=3)
        .map(|i| dest((Ipv4Addr::new(10, 0, 0, i), 80).into(), u32::from(i)))
        .collect();
    let names: String = owners(&list, 13).iter().map(super::name).collect();
    // Quotas of 13 slots for weights 1:2:3: 2, 4, 7 (13 * 3 / 6 = 6.5 and
    // 13 / 6 = 2.17, 13 * 2 / 6 = 4.33: C's 0.5 is the largest remainder).
    assert_eq!(names, "CBCCBACCCABBC");
    assert_eq!(slot_counts(&list, 13), [2, 4, 7]);
}

/// sum((slot + 1) * (dest index + 1)) mod 2^32: a digest of a whole table.
fn digest(list: &[Dest], size: u32) -> u32 {
    let owners = owners(list, size);
    owners.iter().zip(1u32..).fold(0u32, |acc, (a, slot)| {
        let index = list.iter().position(|d| d.addr == *a).unwrap() as u32 + 1;
        acc.wrapping_add(slot.wrapping_mul(index))
    })
}

#[test]
fn larger_tables_are_pinned() {
    // These fills reach the tail (the last 128 free slots found without
    // probing): it must give the slots the probing would.
    let weighted: Vec<Dest> = (1..=10)
        .map(|i| dest((Ipv4Addr::new(10, 0, 0, i), 80).into(), u32::from(i)))
        .collect();
    assert_eq!(digest(&weighted, 1021), 3_609_671);
    assert_eq!(
        slot_counts(&weighted, 1021),
        [19, 37, 56, 74, 93, 111, 130, 148, 167, 186]
    );
    let equal: Vec<Dest> = (1..=100)
        .map(|i| dest((Ipv4Addr::new(10, 0, 0, i), 80).into(), 1))
        .collect();
    assert_eq!(digest(&equal, M), 853_210_161);
}

#[test]
fn weight_0_dests_get_no_slots_and_empty_service_none() {
    let a = (Ipv4Addr::new(10, 0, 0, 1), 80).into();
    let b = (Ipv4Addr::new(10, 0, 0, 2), 80).into();
    assert_eq!(slot_counts(&[dest(a, 0), dest(b, 3)], 251), [0, 251]);
    let mut svc = Service::bound(Kind::Ch, "A0 B0");
    assert_eq!(svc.picks(1, Untracked), "-");
}

#[test]
fn overloaded_dest_gives_none_or_falls_back_to_the_next_slot() {
    let config = SchedConfig {
        ch_table_size: 251,
        ..SchedConfig::default()
    };
    let mut svc = Service::bound_with(Kind::Ch, config.clone(), "A B C");
    let client = flow("192.168.1.100");
    let home = svc.pick_for(&client, Untracked).unwrap();
    svc.overload(home);
    assert_eq!(svc.pick_for(&client, Untracked), None);

    let fallback = SchedConfig {
        flags: SchedFlags {
            fallback: true,
            port: false,
        },
        ..config
    };
    let mut svc = Service::bound_with(Kind::Ch, fallback, "A B C");
    svc.overload(home);
    let list = svc.sched.dests().as_slice().to_vec();
    let slot = lookup_slot(&client.caddr, None, 251);
    let names = owners(&list, 251);
    let next = names[slot..]
        .iter()
        .chain(&names[..slot])
        .map(super::name)
        .find(|&n| n != home)
        .unwrap();
    assert_eq!(svc.pick_for(&client, Untracked), Some(next));
}

#[test]
fn port_flag_spreads_one_client_over_dests() {
    let port = SchedConfig {
        flags: SchedFlags {
            fallback: false,
            port: true,
        },
        ..SchedConfig::default()
    };
    let mut with_port = Service::bound_with(Kind::Ch, port, "A B C");
    let mut without = Service::bound(Kind::Ch, "A B C");
    let seen = |svc: &mut Service| -> HashSet<Option<char>> {
        (0..32u16)
            .map(|p| {
                let mut f = flow("192.168.1.100");
                f.cport = 1000 + p;
                svc.pick_for(&f, Untracked)
            })
            .collect()
    };
    assert_eq!(seen(&mut with_port).len(), 3);
    assert_eq!(seen(&mut without).len(), 1);
}

#[test]
fn ipv6_services_work() {
    let list: Vec<Dest> = (1..=4u16)
        .map(|i| {
            dest(
                SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)),
                    80,
                ),
                1,
            )
        })
        .collect();
    let dests = Arc::new(Dests::new(Kind::Ch, SchedConfig::default(), list).unwrap());
    let mut sched = Scheduler::bind(dests);
    let picks: HashSet<usize> = (0..64u16)
        .map(|i| {
            let f = FlowKey {
                caddr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i)),
                ..flow("0.0.0.0")
            };
            sched.pick(&f, Duration::ZERO).unwrap()
        })
        .collect();
    assert_eq!(picks.len(), 4);
}

#[test]
fn every_worker_gets_the_same_table() {
    let svc = Service::bound(Kind::Ch, "A3 B1 C2 D5");
    let mut workers: Vec<Scheduler> = (0..3)
        .map(|_| Scheduler::bind(Arc::clone(svc.sched.dests())))
        .collect();
    for c in 0..200u32 {
        let f = flow(&Ipv4Addr::from(0xc0a8_0000 + c).to_string());
        let picks: HashSet<Option<usize>> = workers
            .iter_mut()
            .map(|w| w.pick(&f, Duration::ZERO))
            .collect();
        assert_eq!(picks.len(), 1);
    }
}
