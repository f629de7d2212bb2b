//! Pick sequences against the kernel algorithms: the worked examples of
//! ipvs-spec.md §1 and the vectors of §6, plus list changes, weight 0,
//! overload and several workers. Dests are letters: A = 10.0.0.1:80,
//! B = 10.0.0.2:80, ...; a sequence "A B -" means picks A, B, then none.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::{ConnClass, Dest, DestLoad, Dests, FlowKey, Kind, SchedConfig, Scheduler, IPPROTO_TCP};

mod big_weights;
mod ch;
mod hashing;
mod least_conn;
mod locality;
mod round_robin;
mod workers;

fn addr(name: char) -> SocketAddr {
    let octet = u8::try_from(u32::from(name) - u32::from('A') + 1).unwrap();
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, octet), 80))
}

fn name(addr: &SocketAddr) -> char {
    let IpAddr::V4(v4) = addr.ip() else {
        panic!("test dests are IPv4")
    };
    char::from(b'A' + v4.octets()[3] - 1)
}

/// A client flow; only the client address matters to the hashing schedulers.
fn flow(client: &str) -> FlowKey {
    FlowKey::v4(
        IPPROTO_TCP,
        client.parse().unwrap(),
        40000,
        Ipv4Addr::new(192, 0, 2, 1),
        80,
    )
}

/// What happens to each connection after it is picked.
#[derive(Clone, Copy)]
enum Conn {
    /// Nothing is bound (schedulers that ignore load).
    Untracked,
    /// Bound and established before the next connection arrives.
    Established,
    /// Bound and left in SYN_RECV (inactive).
    Inactive,
}

/// A service as the control layer would drive it: `ipvsadm` commands change
/// the list (kernel order, new dests first) and publish a new `Dests` to the
/// worker's scheduler.
struct Service {
    kind: Kind,
    config: SchedConfig,
    list: Vec<Dest>,
    sched: Scheduler,
}

impl Service {
    /// `ipvsadm -A -s kind`, no dests yet.
    fn new(kind: Kind) -> Service {
        Service::with_config(kind, SchedConfig::default())
    }

    fn with_config(kind: Kind, config: SchedConfig) -> Service {
        let sched = Scheduler::new(kind.name(), &config).unwrap();
        Service {
            kind,
            config,
            list: Vec::new(),
            sched,
        }
    }

    /// A service whose dests exist when the scheduler is bound (`-E -s`).
    /// `spec` is in kernel list order: "A4 B3 C2", weight 1 if omitted.
    fn bound(kind: Kind, spec: &str) -> Service {
        Service::bound_with(kind, SchedConfig::default(), spec)
    }

    fn bound_with(kind: Kind, config: SchedConfig, spec: &str) -> Service {
        let list: Vec<Dest> = spec
            .split_whitespace()
            .map(|d| {
                let mut chars = d.chars();
                let n = chars.next().unwrap();
                let w = chars.as_str().parse().unwrap_or(1);
                Dest::new(addr(n), w, Arc::new(DestLoad::default()))
            })
            .collect();
        let dests = Dests::new(kind, config.clone(), list.clone()).unwrap();
        Service {
            kind,
            config,
            list,
            sched: Scheduler::bind(Arc::new(dests)),
        }
    }

    fn publish(&mut self) {
        let dests = Dests::new(self.kind, self.config.clone(), self.list.clone()).unwrap();
        self.sched.set_dests(Arc::new(dests));
    }

    /// `ipvsadm -a -r name -w weight`: at the head of the list.
    fn add(&mut self, n: char, weight: u32) {
        self.list
            .insert(0, Dest::new(addr(n), weight, Arc::new(DestLoad::default())));
        self.publish();
    }

    /// `ipvsadm -e -r name -w weight`: same place, same load.
    fn edit(&mut self, n: char, weight: u32) {
        let i = self.index(n);
        self.list[i] = self.list[i].with_weight(weight);
        self.publish();
    }

    /// `ipvsadm -d -r name`.
    fn del(&mut self, n: char) {
        let i = self.index(n);
        self.list.remove(i);
        self.publish();
    }

    fn index(&self, n: char) -> usize {
        self.list.iter().position(|d| d.addr == addr(n)).unwrap()
    }

    fn load(&self, n: char) -> &DestLoad {
        &self.list[self.index(n)].load
    }

    /// Sets the `-x` threshold and binds enough connections to overload `n`.
    fn overload(&self, n: char) {
        let load = self.load(n);
        load.set_thresholds(1, 0);
        load.bind(ConnClass::Inactive);
        assert!(load.is_overloaded());
    }

    fn pick_for(&mut self, f: &FlowKey, conn: Conn) -> Option<char> {
        self.pick_at(f, Duration::ZERO, conn)
    }

    fn pick_at(&mut self, f: &FlowKey, now: Duration, conn: Conn) -> Option<char> {
        let i = self.sched.pick(f, now)?;
        let dest = &self.sched.dests().as_slice()[i];
        match conn {
            Conn::Untracked => {}
            Conn::Established => {
                dest.load.bind(ConnClass::Inactive);
                dest.load.activate();
            }
            Conn::Inactive => dest.load.bind(ConnClass::Inactive),
        }
        Some(name(&dest.addr))
    }

    /// `n` picks for the same flow, as "A B -".
    fn picks(&mut self, n: usize, conn: Conn) -> String {
        let f = flow("192.168.1.100");
        let picks: Vec<String> = (0..n)
            .map(|_| self.pick_for(&f, conn).map_or("-".into(), String::from))
            .collect();
        picks.join(" ")
    }
}

/// ipvs-spec.md §6, one row per line: scheduler, dests bound in kernel list
/// order, what connections do, expected first picks.
#[test]
fn spec_section_6_vectors() {
    use Conn::*;
    let vectors: &[(Kind, &str, Conn, &str)] = &[
        (Kind::Rr, "A B C", Untracked, "A B C A B C"),
        (Kind::Rr, "C B A", Untracked, "C B A C B A"),
        (Kind::Wrr, "A4 B3 C2", Untracked, "A A B A B C A B C"),
        (Kind::Wrr, "C2 B3 A4", Untracked, "A B A C B A C B A"),
        (
            Kind::Wrr,
            "A5 B1 C1",
            Untracked,
            "A A A A A B C A A A A A B C",
        ),
        (Kind::Lc, "A1 B2 C3", Established, "A B C A B C"),
        (
            Kind::Wlc,
            "A1 B2 C3",
            Established,
            "A B C C B C A B C C B C",
        ),
        (
            Kind::Wlc,
            "A4 B3 C2",
            Established,
            "A B C A B A C B A A B C",
        ),
        (Kind::Wlc, "A1 B2 C3", Inactive, "A B C C B C A B C C B C"),
        (
            Kind::Sed,
            "A1 B2 C3",
            Established,
            "C B C A B C C B C A B C",
        ),
        (
            Kind::Sed,
            "A4 B3 C2",
            Established,
            "A B A C B A A B C A B A",
        ),
        (Kind::Nq, "A1 B2 C3", Established, "A B C C B C C B C A B C"),
        (Kind::Nq, "A4 B3 C2", Established, "A B C A B A A B C A B A"),
    ];
    for &(kind, dests, conn, expected) in vectors {
        let n = expected.split_whitespace().count();
        let got = Service::bound(kind, dests).picks(n, conn);
        assert_eq!(got, expected, "{kind} with {dests}");
    }
}

/// The §6 rows for `ipvsadm -a` in order A, B, C: the list is C, B, A.
#[test]
fn ipvsadm_add_order() {
    let mut rr = Service::new(Kind::Rr);
    for n in ['A', 'B', 'C'] {
        rr.add(n, 1);
    }
    assert_eq!(rr.picks(6, Conn::Untracked), "C B A C B A");

    // wrr: mw/cw evolve with each add (cw = 1 after the first), so the first
    // pass is the cw = 1 one.
    let mut wrr = Service::new(Kind::Wrr);
    for (n, w) in [('A', 4), ('B', 3), ('C', 2)] {
        wrr.add(n, w);
    }
    assert_eq!(wrr.picks(12, Conn::Untracked), "C B A A B A C B A C B A");

    let mut wrr = Service::new(Kind::Wrr);
    wrr.add('A', 4);
    wrr.add('B', 2);
    assert_eq!(wrr.picks(9, Conn::Untracked), "B A A B A A B A A");

    // wlc ties go to the first in list, the last added.
    let mut wlc = Service::new(Kind::Wlc);
    for n in ['A', 'B', 'C'] {
        wlc.add(n, 1);
    }
    assert_eq!(wlc.picks(4, Conn::Established), "C B A C");
}

#[test]
fn no_dests_means_no_pick() {
    for kind in Kind::ALL {
        let mut svc = Service::new(kind);
        assert_eq!(svc.picks(2, Conn::Untracked), "- -", "{kind}");
    }
}

#[test]
fn quiesced_or_overloaded_dests_are_never_picked() {
    // Every scheduler, two dests: A quiesced, B overloaded -> nothing; then
    // B back under its threshold -> only B. lblc's cached path is the
    // exception (it ignores the flag) but a fresh cache has no entry.
    for kind in Kind::ALL {
        let mut svc = Service::bound(kind, "A B");
        svc.edit('A', 0);
        svc.overload('B');
        let clients = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.1.100"];
        for c in clients {
            assert_eq!(svc.pick_for(&flow(c), Conn::Untracked), None, "{kind} {c}");
        }
        svc.load('B').unbind(ConnClass::Inactive);
        assert!(!svc.load('B').is_overloaded());
        for c in clients {
            let got = svc.pick_for(&flow(c), Conn::Untracked);
            if matches!(kind, Kind::Dh | Kind::Sh | Kind::Mh) {
                // A keeps its buckets/slots: its clients get none.
                assert!(got == Some('B') || got.is_none(), "{kind} {c}: {got:?}");
            } else {
                assert_eq!(got, Some('B'), "{kind} {c}");
            }
        }
    }
}
