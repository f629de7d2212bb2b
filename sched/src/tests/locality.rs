//! lblc and lblcr: caches keyed by destination address, overload rules,
//! list changes and expiry.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{Conn, Service};
use crate::lblc::CACHE_CAPACITY;
use crate::{FlowKey, Kind, SchedConfig, CACHE_LIMIT, IPPROTO_TCP};

fn to(vaddr: u32) -> FlowKey {
    FlowKey::v4(
        IPPROTO_TCP,
        Ipv4Addr::new(192, 168, 1, 100),
        40000,
        Ipv4Addr::from(0x0a0a_0000 + vaddr),
        80,
    )
}

const X: u32 = 1;
const Y: u32 = 2;

fn at(svc: &mut Service, vaddr: u32, now: Duration, conn: Conn) -> Option<char> {
    svc.pick_at(&to(vaddr), now, conn)
}

fn go(svc: &mut Service, vaddr: u32) -> Option<char> {
    at(svc, vaddr, Duration::ZERO, Conn::Established)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn lblc_spec_example() {
    let mut svc = Service::bound(Kind::Lblc, "A1 B1");
    assert_eq!(go(&mut svc, X), Some('A'), "wlc tie: first in list");
    assert_eq!(go(&mut svc, Y), Some('B'));
    // A keeps X although it has more active connections than its weight:
    // no dest has 2 * active < weight.
    assert_eq!(go(&mut svc, X), Some('A'));
    assert_eq!(go(&mut svc, X), Some('A'));
    assert_eq!(svc.load('A').activeconns(), 3);
    // An idle C(4) makes A overloaded for lblc: wlc moves X to C.
    svc.add('C', 4);
    assert_eq!(go(&mut svc, X), Some('C'));
    assert_eq!(go(&mut svc, X), Some('C'));
    assert_eq!(go(&mut svc, Y), Some('B'), "B is not over its weight");
}

#[test]
fn lblc_cached_dest_quiesced_or_deleted_is_replaced() {
    let mut svc = Service::bound(Kind::Lblc, "A B");
    assert_eq!(go(&mut svc, X), Some('A'));
    svc.edit('A', 0);
    assert_eq!(go(&mut svc, X), Some('B'));
    svc.edit('A', 1);
    assert_eq!(go(&mut svc, X), Some('B'), "the entry now names B");
    svc.del('B');
    assert_eq!(go(&mut svc, X), Some('A'));
}

#[test]
fn lblc_cached_path_ignores_the_overload_flag() {
    let mut svc = Service::bound(Kind::Lblc, "A B");
    assert_eq!(go(&mut svc, X), Some('A'));
    svc.overload('A');
    assert_eq!(go(&mut svc, X), Some('A'), "ip_vs_lblc.c does not test it");
    assert_eq!(go(&mut svc, Y), Some('B'), "but wlc skips A");
}

#[test]
fn lblc_full_check_expires_unused_entries() {
    let config = SchedConfig {
        lblc_expiration: Duration::from_secs(600),
        ..SchedConfig::default()
    };
    let mut svc = Service::bound_with(Kind::Lblc, config, "A10 B10");
    svc.sched.expire(secs(0));
    assert_eq!(go(&mut svc, X), Some('A'));
    for _ in 0..5 {
        svc.load('A').bind(crate::ConnClass::Active);
    }
    assert_eq!(at(&mut svc, Y, secs(25 * 60), Conn::Established), Some('B'));
    // Checks every minute; the 30th (at 30 min) is the full one.
    for minute in 1..30 {
        svc.sched.expire(secs(minute * 60));
        assert_eq!(svc.sched.cache_len(), 2, "minute {minute}");
    }
    svc.sched.expire(secs(30 * 60));
    assert_eq!(svc.sched.cache_len(), 1, "X unused for 30 min > 10 min");
    // Uncached, X goes where wlc says: B (1/10) rather than A (6/10).
    assert_eq!(at(&mut svc, X, secs(30 * 60), Conn::Established), Some('B'));
}

#[test]
fn lblc_trims_idle_entries_above_the_limit() {
    let mut svc = Service::bound(Kind::Lblc, "A B");
    svc.sched.expire(secs(0));
    let n = CACHE_LIMIT as u32 + 3616;
    for v in 0..n {
        at(&mut svc, v, secs(0), Conn::Untracked);
    }
    assert_eq!(svc.sched.cache_len(), n as usize);
    // At 1 min the table is over the limit but nothing is idle for 6 min.
    svc.sched.expire(secs(60));
    assert_eq!(svc.sched.cache_len(), n as usize);
    // At 6 min: goal = min((n - limit) * 4 / 3, limit / 2) = 4821 entries.
    svc.sched.expire(secs(360));
    assert_eq!(svc.sched.cache_len(), n as usize - 4821);
}

#[test]
fn lblc_full_cache_still_schedules() {
    let mut svc = Service::bound(Kind::Lblc, "A B");
    for v in 0..CACHE_CAPACITY as u32 + 10 {
        at(&mut svc, v, secs(0), Conn::Untracked);
    }
    assert_eq!(svc.sched.cache_len(), CACHE_CAPACITY);
    let far = CACHE_CAPACITY as u32 + 100;
    assert_eq!(at(&mut svc, far, secs(0), Conn::Untracked), Some('A'));
}

fn set(svc: &Service, vaddr: u32) -> Vec<char> {
    let daddr = to(vaddr).vaddr;
    let list = svc.sched.dests().as_slice();
    svc.sched
        .lblcr_set(&daddr)
        .unwrap()
        .iter()
        .map(|&i| super::name(&list[i].addr))
        .collect()
}

#[test]
fn lblcr_grows_the_set_under_overload_and_shrinks_it_later() {
    let config = SchedConfig {
        lblcr_expiration: Duration::from_secs(60),
        ..SchedConfig::default()
    };
    let mut svc = Service::bound_with(Kind::Lblcr, config, "A1 B1");
    let est = Conn::Established;
    assert_eq!(at(&mut svc, X, secs(0), est), Some('A'));
    assert_eq!(at(&mut svc, Y, secs(0), est), Some('B'));
    assert_eq!(at(&mut svc, X, secs(1), est), Some('A'));
    assert_eq!(at(&mut svc, X, secs(1), est), Some('A'));
    // C(4) idle: A (3 active > 1) is overloaded for lblcr; C joins X's set.
    svc.add('C', 4);
    assert_eq!(at(&mut svc, X, secs(2), est), Some('C'));
    assert_eq!(set(&svc, X), ['C', 'A']);
    // wlc inside the set: C (256/4) beats A (768/1).
    assert_eq!(at(&mut svc, X, secs(3), est), Some('C'));
    // Not strictly later than lastmod + 60 s: no shrink yet.
    assert_eq!(at(&mut svc, X, secs(62), est), Some('C'));
    assert_eq!(set(&svc, X), ['C', 'A']);
    // Later: the most loaded member per weight (A) leaves.
    let later = secs(62) + Duration::from_millis(1);
    assert_eq!(at(&mut svc, X, later, est), Some('C'));
    assert_eq!(set(&svc, X), ['C']);
    assert_eq!(set(&svc, Y), ['B']);
}

#[test]
fn lblcr_deleted_members_leave_the_set() {
    let mut svc = Service::bound(Kind::Lblcr, "A1 B1");
    go(&mut svc, X);
    go(&mut svc, Y);
    go(&mut svc, X);
    go(&mut svc, X);
    svc.add('C', 4);
    assert_eq!(go(&mut svc, X), Some('C'));
    assert_eq!(set(&svc, X), ['C', 'A']);
    svc.del('A');
    assert_eq!(set(&svc, X), ['C']);
    svc.del('C');
    assert!(set(&svc, X).is_empty());
    // An empty set: wlc picks and the dest joins.
    assert_eq!(go(&mut svc, X), Some('B'));
    assert_eq!(set(&svc, X), ['B']);
}

#[test]
fn lblcr_entries_expire_like_lblc() {
    let config = SchedConfig {
        lblcr_expiration: Duration::from_secs(600),
        ..SchedConfig::default()
    };
    let mut svc = Service::bound_with(Kind::Lblcr, config, "A B");
    svc.sched.expire(secs(0));
    go(&mut svc, X);
    at(&mut svc, Y, secs(25 * 60), Conn::Established);
    for minute in 1..=30 {
        svc.sched.expire(secs(minute * 60));
    }
    assert_eq!(svc.sched.cache_len(), 1);
    assert!(svc.sched.lblcr_set(&to(X).vaddr).is_none());
}
