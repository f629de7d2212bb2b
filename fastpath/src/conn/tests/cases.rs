//! Behaviour of the connection table through its public interface, with a controllable
//! clock (ms) and per-real-server counters kept the way the data path keeps them; compiled
//! once per address family (`super` gives the family's addresses: see `conn/tests.rs`).

use super::{addr, netmask, sa, Addr, Sock, HOST, VIP};
use std::collections::{HashMap, HashSet};

use conf::Proto;

use crate::conn::state::tests::spec_rows;
use crate::conn::*;
use crate::wire::tcp::Flags;

/// One second, in the table's unit.
const SEC: u64 = 1000;
/// The wheel's tick (16 ms).
const TICK: u64 = 16;
/// An arbitrary start of the clock (not 0, to catch "since boot" assumptions).
pub(super) const T0: u64 = 7_777_777;

const SYN: Flags = Flags::SYN;
const ACK: Flags = Flags::ACK;
const FIN: Flags = Flags::FIN;
const RST: Flags = Flags::RST;

fn syn_ack() -> Flags {
    Flags::SYN | Flags::ACK
}
fn fin_ack() -> Flags {
    Flags::FIN | Flags::ACK
}

/// The first `now` at which an entry expiring at `expires` is gone after a full sweep: the
/// end of its wheel tick.
fn reap_at(expires: u64) -> u64 {
    (expires / TICK + 1) * TICK
}

fn client(n: u16) -> Sock {
    sa([10, 0, 0, 1], 40000 + n)
}

fn rip(d: usize) -> Sock {
    sa([172, 16, 0, 1 + d as u8], 8080)
}

/// What a real server's counters look like to the schedulers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    active: i64,
    inactive: i64,
    persistent: i64,
}

fn counts(active: i64, inactive: i64) -> Counts {
    Counts {
        active,
        inactive,
        persistent: 0,
    }
}

/// The table plus the counters the caller keeps from what the table reports; `D` is the
/// index of the real server.
struct Lb {
    table: Table<usize, Addr>,
    dests: Vec<Counts>,
}

impl Lb {
    fn new(capacity: u32) -> Lb {
        Lb::with(Config::new(capacity))
    }

    fn with(config: Config) -> Lb {
        Lb {
            table: Table::new(config, T0).unwrap(),
            dests: vec![Counts::default(); 8],
        }
    }

    fn counter(&mut self, dest: usize, counter: Counter) -> &mut i64 {
        let c = &mut self.dests[dest];
        match counter {
            Counter::Active => &mut c.active,
            Counter::Inactive => &mut c.inactive,
            Counter::Persistent => &mut c.persistent,
        }
    }

    fn conn(&mut self, proto: Proto, n: u16, fwd: Fwd, dest: usize, now: u64) -> ConnId {
        let new = NewConn {
            proto,
            client: client(n),
            virt: VIP,
            real: rip(dest),
            fwd,
            local: None,
            dest,
        };
        let id = self.table.insert(new, now).expect("room");
        let c = self.table.get(id).unwrap().counter();
        assert_eq!(c, Counter::Inactive, "new connections count as inactive");
        *self.counter(dest, c) += 1;
        id
    }

    fn tcp(&mut self, n: u16, fwd: Fwd, dest: usize, now: u64) -> ConnId {
        self.conn(Proto::Tcp, n, fwd, dest, now)
    }

    fn template(&mut self, key: FlowKey<Addr>, dest: usize, timeout: u32, now: u64) -> ConnId {
        let new = NewTemplate {
            key,
            real: rip(dest),
            timeout,
            dest,
        };
        let id = self.table.insert_template(new, now).expect("room");
        *self.counter(dest, Counter::Persistent) += 1;
        id
    }

    fn packet(&mut self, id: ConnId, dir: Dir, flags: Flags, now: u64) -> Transition {
        let t = self
            .table
            .packet(id, dir, flags, now)
            .expect("live connection");
        let dest = *self.table.get(id).unwrap().dest();
        match t.moved {
            Move::Stay => {}
            Move::ToActive => {
                self.dests[dest].inactive -= 1;
                self.dests[dest].active += 1;
            }
            Move::ToInactive => {
                self.dests[dest].active -= 1;
                self.dests[dest].inactive += 1;
            }
        }
        t
    }

    fn unbind(&mut self, gone: &Removed<usize, Addr>) {
        *self.counter(gone.dest, gone.counter) -= 1;
    }

    fn remove(&mut self, id: ConnId) -> Option<Removed<usize, Addr>> {
        let gone = self.table.remove(id)?;
        self.unbind(&gone);
        Some(gone)
    }

    /// Sweep until everything due at `now` is dealt with; returns what left, in order.
    fn expire_all(&mut self, now: u64) -> Vec<Removed<usize, Addr>> {
        let mut out = Vec::new();
        // A wheel revolution and every entry twice is far more than a sweep can need.
        let bound = (1 << 16) + 2 * self.table.capacity();
        let mut calls = 0;
        while !self.table.expire(now, 64, |gone| out.push(gone)).done {
            calls += 1;
            assert!(calls * 64 < bound, "the sweep at {now} does not end");
        }
        for gone in &out {
            self.unbind(gone);
        }
        self.table.check();
        out
    }

    fn alive(&self, id: ConnId) -> bool {
        self.table.get(id).is_some()
    }

    fn state(&self, id: ConnId) -> State {
        self.table.get(id).unwrap().state()
    }

    fn expires(&self, id: ConnId) -> u64 {
        self.table.get(id).unwrap().expires()
    }

    /// The counters recomputed from the entries in the table.
    fn recount(&self) -> Vec<Counts> {
        let mut dests = vec![Counts::default(); self.dests.len()];
        for (_, c) in self.table.iter() {
            let d = &mut dests[*c.dest()];
            match c.counter() {
                Counter::Active => d.active += 1,
                Counter::Inactive => d.inactive += 1,
                Counter::Persistent => d.persistent += 1,
            }
        }
        dests
    }
}

/// Check `id` leaves at exactly the end of the wheel tick of its expiry: alive after a full
/// sweep one ms before, gone after one at that time. Returns what left.
fn expires_exactly(lb: &mut Lb, id: ConnId) -> Removed<usize, Addr> {
    let at = reap_at(lb.expires(id));
    assert!(lb.expire_all(at - 1).is_empty());
    assert!(lb.alive(id));
    let gone = lb.expire_all(at);
    assert!(!lb.alive(id));
    assert_eq!(gone.len(), 1);
    gone.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------------------
// Traces of spec §2.

#[test]
fn nat_trace_states_counters_timeouts_and_expiry() {
    let mut lb = Lb::new(16);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    assert_eq!(lb.state(id), State::None);
    assert_eq!(lb.table.get(id).unwrap().timeout(), 3);
    assert_eq!(lb.expires(id), T0 + 3 * SEC);
    assert_eq!(lb.dests[0], counts(0, 1));

    // (direction, flags, state after, counters after, timeout after)
    let steps = [
        (Dir::In, SYN, State::SynRecv, counts(0, 1), 60),
        (Dir::Out, syn_ack(), State::SynRecv, counts(0, 1), 60),
        (Dir::In, ACK, State::Established, counts(1, 0), 900),
        (Dir::In, fin_ack(), State::CloseWait, counts(0, 1), 60),
        (Dir::Out, ACK, State::CloseWait, counts(0, 1), 60),
        (Dir::Out, fin_ack(), State::TimeWait, counts(0, 1), 120),
        (Dir::In, ACK, State::TimeWait, counts(0, 1), 120),
    ];
    let mut now = T0;
    let mut from = State::None;
    for (dir, flags, to, after, timeout) in steps {
        now += 100;
        let t = lb.packet(id, dir, flags, now);
        assert_eq!((t.from, t.to), (from, to), "{dir:?} {flags:?}");
        assert_eq!(lb.dests[0], after, "{dir:?} {flags:?}");
        assert_eq!(lb.table.get(id).unwrap().timeout(), timeout);
        assert_eq!(lb.expires(id), now + timeout as u64 * SEC);
        from = to;
    }
    let gone = expires_exactly(&mut lb, id);
    assert_eq!(
        gone,
        Removed {
            dest: 0,
            state: State::TimeWait,
            counter: Counter::Inactive,
            local: None
        }
    );
    assert_eq!(lb.dests[0], counts(0, 0));
    assert!(lb.table.is_empty());
}

#[test]
fn dr_and_tun_traces_use_input_only() {
    for fwd in [Fwd::Dr, Fwd::Tun] {
        let mut lb = Lb::new(4);
        let id = lb.tcp(1, fwd, 2, T0);
        assert!(lb.table.get(id).unwrap().no_output());
        let steps = [
            (SYN, State::SynRecv, counts(0, 1), Move::Stay),
            (ACK, State::Established, counts(1, 0), Move::ToActive),
            // INPUT would give CLOSE_WAIT here; INPUT_ONLY gives FIN_WAIT.
            (fin_ack(), State::FinWait, counts(0, 1), Move::ToInactive),
            (ACK, State::FinWait, counts(0, 1), Move::Stay),
        ];
        let mut now = T0;
        for (flags, to, after, moved) in steps {
            now += 10;
            let t = lb.packet(id, Dir::In, flags, now);
            assert_eq!((t.to, t.moved), (to, moved), "{fwd:?} {flags:?}");
            assert_eq!(lb.dests[2], after);
        }
        assert_eq!(lb.expires(id), now + 120 * SEC);
        let gone = expires_exactly(&mut lb, id);
        assert_eq!(
            (gone.state, gone.counter),
            (State::FinWait, Counter::Inactive)
        );
        assert_eq!(lb.dests[2], counts(0, 0));
    }
}

#[test]
fn every_cell_of_every_table_through_the_table() {
    // Input: a NAT connection, In; Output: NAT, Out; InputOnly: DR, In.
    let timeouts = Timeouts::default();
    for (table, flags, next) in spec_rows() {
        let (fwd, dir) = match table {
            TcpTable::Input => (Fwd::Nat, Dir::In),
            TcpTable::Output => (Fwd::Nat, Dir::Out),
            TcpTable::InputOnly => (Fwd::Dr, Dir::In),
        };
        for (from, want) in State::TCP.into_iter().zip(next) {
            let mut lb = Lb::new(1);
            let id = lb.tcp(1, fwd, 0, T0);
            lb.table.set_state(id, from);
            // Keep the caller's counters in line with the forced state.
            if from.is_active() {
                lb.dests[0] = counts(1, 0);
            }
            let now = T0 + 5;
            let t = lb.packet(id, dir, flags, now);
            let cell = format!("{table:?} {flags:?} from {from:?}");
            assert_eq!(
                t,
                Transition {
                    from,
                    to: want,
                    moved: Move::between(from, want)
                },
                "{cell}"
            );
            assert_eq!(
                lb.expires(id),
                now + u64::from(timeouts.of(want)) * SEC,
                "{cell}"
            );
            let active = i64::from(want.is_active());
            assert_eq!(lb.dests[0], counts(active, 1 - active), "{cell}");
            assert_eq!(lb.dests[0..1], lb.recount()[0..1], "{cell}");
            // An OUTPUT packet clears NOOUTPUT for good; nothing else does.
            let no_output = fwd == Fwd::Dr && dir == Dir::In;
            assert_eq!(lb.table.get(id).unwrap().no_output(), no_output, "{cell}");
        }
    }
}

#[test]
fn rst_closes_except_from_syn_recv_last_ack_listen() {
    // NAT, client RST after the handshake: CLOSE, 10 s, back to inactive.
    let mut lb = Lb::new(4);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    lb.packet(id, Dir::Out, syn_ack(), T0 + 1);
    lb.packet(id, Dir::In, ACK, T0 + 2);
    assert_eq!(lb.dests[0], counts(1, 0));
    let t = lb.packet(id, Dir::In, RST | ACK, T0 + 3);
    assert_eq!(
        (t.from, t.to, t.moved),
        (State::Established, State::Close, Move::ToInactive)
    );
    assert_eq!(lb.dests[0], counts(0, 1));
    assert_eq!(lb.expires(id), T0 + 3 + 10 * SEC);
    assert_eq!(expires_exactly(&mut lb, id).state, State::Close);

    // Server RST in ESTABLISHED (OUTPUT): CLOSE too.
    let id = lb.tcp(2, Fwd::Nat, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    lb.packet(id, Dir::In, ACK, T0);
    assert_eq!(lb.packet(id, Dir::Out, RST, T0).to, State::Close);

    // DR: RST right after the SYN leaves SYN_RECV (60 s), counters untouched.
    let id = lb.tcp(3, Fwd::Dr, 1, T0);
    lb.packet(id, Dir::In, SYN, T0);
    let t = lb.packet(id, Dir::In, RST, T0 + 1);
    assert_eq!(
        (t.from, t.to, t.moved),
        (State::SynRecv, State::SynRecv, Move::Stay)
    );
    assert_eq!(lb.expires(id), T0 + 1 + 60 * SEC);

    // Every other state: RST in → CLOSE in INPUT and INPUT_ONLY, except LAST_ACK, LISTEN
    // (kept) and SYNACK (INPUT: SYN_RECV, INPUT_ONLY: CLOSE).
    for fwd in [Fwd::Nat, Fwd::Dr] {
        for from in State::TCP {
            let want = match (from, fwd) {
                (State::SynRecv, _) => State::SynRecv,
                (State::LastAck, _) => State::LastAck,
                (State::Listen, _) => State::Listen,
                (State::SynAck, Fwd::Nat) => State::SynRecv,
                _ => State::Close,
            };
            let mut lb = Lb::new(1);
            let id = lb.tcp(1, fwd, 0, T0);
            lb.table.set_state(id, from);
            assert_eq!(
                lb.table.packet(id, Dir::In, RST, T0).unwrap().to,
                want,
                "{fwd:?} {from:?}"
            );
        }
    }
}

#[test]
fn segments_without_syn_fin_ack_rst_close() {
    let mut lb = Lb::new(2);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    lb.packet(id, Dir::In, ACK, T0);
    let t = lb.packet(id, Dir::In, Flags::PSH, T0 + 7);
    assert_eq!((t.to, t.moved), (State::Close, Move::ToInactive));
    assert_eq!(lb.expires(id), T0 + 7 + 10 * SEC);
    assert_eq!(lb.dests[0], counts(0, 1));
    // From NONE too: a first packet with no flags at all.
    let id = lb.tcp(2, Fwd::Dr, 0, T0);
    assert_eq!(
        lb.packet(id, Dir::In, Flags::default(), T0).to,
        State::Close
    );
}

#[test]
fn first_output_packet_clears_nooutput_for_good() {
    let mut lb = Lb::new(2);
    let id = lb.tcp(1, Fwd::Dr, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    assert!(lb.table.get(id).unwrap().no_output());
    // OUTPUT table for this packet: SYN_RECV + SYN/ACK stays SYN_RECV.
    assert_eq!(lb.packet(id, Dir::Out, syn_ack(), T0).to, State::SynRecv);
    assert!(!lb.table.get(id).unwrap().no_output());
    lb.packet(id, Dir::In, ACK, T0);
    // Now INPUT, not INPUT_ONLY: a client FIN gives CLOSE_WAIT, not FIN_WAIT.
    assert_eq!(lb.packet(id, Dir::In, fin_ack(), T0).to, State::CloseWait);
}

#[test]
fn udp_refreshes_on_every_packet_and_stays_inactive() {
    let mut lb = Lb::new(4);
    let id = lb.conn(Proto::Udp, 1, Fwd::Nat, 3, T0);
    assert_eq!(lb.state(id), State::Udp);
    assert_eq!(lb.expires(id), T0 + 3 * SEC);
    for (dir, at) in [
        (Dir::In, T0),
        (Dir::Out, T0 + 200 * SEC),
        (Dir::In, T0 + 250 * SEC),
    ] {
        let t = lb.packet(id, dir, SYN | ACK, at);
        assert_eq!(
            t,
            Transition {
                from: State::Udp,
                to: State::Udp,
                moved: Move::Stay
            }
        );
        assert_eq!(lb.expires(id), at + 300 * SEC);
        assert_eq!(lb.dests[3], counts(0, 1));
    }
    // The first expiry (T0 + 300 s) has passed, the refreshed one has not.
    assert!(lb.expire_all(reap_at(T0 + 300 * SEC) + SEC).is_empty());
    let gone = expires_exactly(&mut lb, id);
    assert_eq!((gone.state, gone.counter), (State::Udp, Counter::Inactive));
    assert_eq!(lb.dests[3], counts(0, 0));

    // Configured UDP timeout applies from the next packet.
    let mut t = Timeouts::default();
    t.set(0, 0, 20);
    lb.table.set_timeouts(t);
    let t1 = T0 + 1000 * SEC;
    let id = lb.conn(Proto::Udp, 2, Fwd::Dr, 3, t1);
    lb.packet(id, Dir::In, Flags::default(), t1 + SEC);
    assert_eq!(lb.expires(id), t1 + 21 * SEC);
    expires_exactly(&mut lb, id);
}

// ---------------------------------------------------------------------------------------
// Timeouts and expiry.

#[test]
fn new_connection_without_a_packet_goes_after_3_s() {
    let mut lb = Lb::new(2);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    let gone = expires_exactly(&mut lb, id);
    assert_eq!(
        reap_at(T0 + 3 * SEC),
        T0 + 3 * SEC + TICK - (T0 + 3 * SEC) % TICK
    );
    assert_eq!((gone.state, gone.counter), (State::None, Counter::Inactive));
}

#[test]
fn each_state_lives_exactly_its_timeout_with_configured_values() {
    let mut timeouts = Timeouts::default();
    timeouts.set(60, 30, 0);
    let mut lb = Lb::with(Config {
        timeouts,
        ..Config::new(64)
    });
    // Paths (client flags; DR uses INPUT_ONLY so FIN_WAIT is reachable) → state, seconds.
    let paths: [(Fwd, &[Flags], State, u64); 6] = [
        (Fwd::Nat, &[SYN], State::SynRecv, 60),
        (Fwd::Nat, &[SYN, ACK], State::Established, 60),
        (Fwd::Nat, &[SYN, ACK, FIN], State::CloseWait, 60),
        (Fwd::Dr, &[SYN, ACK, FIN], State::FinWait, 30),
        (Fwd::Nat, &[SYN, ACK, RST], State::Close, 10),
        (Fwd::Dr, &[SYN, FIN], State::TimeWait, 120),
    ];
    let mut start = T0 + 3;
    for (n, (fwd, flags, state, secs)) in paths.into_iter().enumerate() {
        let id = lb.tcp(n as u16, fwd, 0, start);
        for &f in flags {
            lb.packet(id, Dir::In, f, start);
        }
        assert_eq!(lb.state(id), state);
        assert_eq!(lb.expires(id), start + secs * SEC, "{state:?}");
        expires_exactly(&mut lb, id);
        start = reap_at(start + secs * SEC) + 5;
    }
    assert_eq!(lb.dests[0], counts(0, 0));
}

#[test]
fn a_shorter_timeout_takes_effect_at_once() {
    // ESTABLISHED (900 s), and a sweep after the 3 s of a new connection has put it in the
    // wheel slot of its 900 s expiry. Then the timeout is lowered: the next packet re-arms
    // for 100 s and the entry must go at 100 s, not when the 900 s slot comes round.
    let mut lb = Lb::new(4);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    lb.packet(id, Dir::In, ACK, T0);
    assert!(lb.expire_all(T0 + 5 * SEC).is_empty());
    let mut t = Timeouts::default();
    t.set(100, 0, 0);
    lb.table.set_timeouts(t);
    lb.packet(id, Dir::In, ACK, T0 + 6 * SEC);
    assert_eq!(lb.expires(id), T0 + 106 * SEC);
    expires_exactly(&mut lb, id);
    // Same for a state change to a shorter state: ESTABLISHED → CLOSE (10 s).
    lb.table.set_timeouts(Timeouts::default());
    let t1 = T0 + 200 * SEC;
    let id = lb.tcp(2, Fwd::Nat, 0, t1);
    lb.packet(id, Dir::In, SYN, t1);
    lb.packet(id, Dir::In, ACK, t1);
    assert!(lb.expire_all(t1 + 5 * SEC).is_empty());
    lb.packet(id, Dir::In, RST, t1 + 6 * SEC);
    assert_eq!(lb.expires(id), t1 + 16 * SEC);
    expires_exactly(&mut lb, id);
}

#[test]
fn an_overdue_entry_lives_until_the_sweep_reaches_it_and_a_packet_revives_it() {
    // The kernel's timer is the only thing that ends a connection; a packet that finds it
    // first re-arms it. Here the sweep plays the timer.
    let mut lb = Lb::new(2);
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    let late = reap_at(T0 + 60 * SEC) + 5 * SEC;
    let hit = lb
        .table
        .lookup(&FlowKey::new(Proto::Tcp, client(1), VIP))
        .unwrap();
    assert_eq!(hit, Hit { id, dir: Dir::In });
    lb.packet(id, Dir::In, ACK, late);
    assert_eq!(lb.state(id), State::Established);
    assert!(lb.expire_all(late).is_empty());
    assert_eq!(lb.expires(id), late + 900 * SEC);
    expires_exactly(&mut lb, id);
}

#[test]
fn expiry_slices_respect_the_budget_and_remove_exactly_the_due() {
    let mut lb = Lb::new(2048);
    let mut due = Vec::new();
    for n in 0..1000 {
        let id = lb.tcp(n, Fwd::Nat, n as usize % 4, T0);
        lb.packet(id, Dir::In, SYN, T0);
        due.push(id);
    }
    let mut later = Vec::new();
    for n in 1000..1010 {
        let id = lb.tcp(n, Fwd::Dr, 5, T0);
        lb.packet(id, Dir::In, SYN, T0 + 10 * SEC);
        later.push(id);
    }
    let at = reap_at(T0 + 60 * SEC);
    // Catch the cursor up to the tick before, so that one tick is left to visit.
    assert!(lb.expire_all(at - TICK).is_empty());
    let mut per_call = Vec::new();
    let mut gone = Vec::new();
    loop {
        let sweep = lb.table.expire(at, 64, |r| gone.push(r));
        assert!(sweep.removed <= 64);
        per_call.push(sweep.removed);
        lb.table.check();
        if sweep.done {
            break;
        }
    }
    // One unit visits the tick, then 64 entries a call.
    let mut want = vec![63];
    want.extend([64; 14]);
    want.push(41);
    assert_eq!(per_call, want);
    assert_eq!(gone.len(), 1000);
    for g in &gone {
        lb.unbind(g);
        assert_eq!((g.state, g.counter), (State::SynRecv, Counter::Inactive));
    }
    assert!(due.iter().all(|&id| !lb.alive(id)));
    assert!(later.iter().all(|&id| lb.alive(id)));
    assert_eq!(lb.dests[0..4], [counts(0, 0); 4]);
    assert_eq!(lb.dests[5], counts(0, 10));
    // A call with nothing due does nothing.
    assert_eq!(
        lb.table.expire(at, 64, |_| panic!("nothing is due")),
        Sweep {
            removed: 0,
            done: true
        }
    );
}

#[test]
fn random_expiries_leave_exactly_the_live_entries() {
    let mut rng = Rng(0x5eed_0001);
    let mut lb = Lb::new(600);
    let mut expiry = HashMap::new();
    let flag_sets = [SYN, ACK, FIN, RST, fin_ack(), Flags::default()];
    let mut now = T0;
    for n in 0..500u16 {
        now += rng.below(700);
        let fwd = if rng.below(2) == 0 { Fwd::Nat } else { Fwd::Dr };
        let id = lb.tcp(n, fwd, rng.below(4) as usize, now);
        for _ in 0..rng.below(4) {
            let flags = flag_sets[rng.below(6) as usize];
            lb.packet(id, Dir::In, flags, now);
        }
        expiry.insert(id, lb.expires(id));
        if n % 25 == 0 {
            lb.expire_all(now);
            check_live(&lb, &expiry, now);
        }
    }
    while !lb.table.is_empty() {
        now += rng.below(20 * SEC);
        lb.expire_all(now);
        check_live(&lb, &expiry, now);
    }
    assert!(lb.dests.iter().all(|c| *c == Counts::default()));
}

fn check_live(lb: &Lb, expiry: &HashMap<ConnId, u64>, now: u64) {
    let live: HashSet<ConnId> = lb.table.iter().map(|(id, _)| id).collect();
    let want: HashSet<ConnId> = expiry
        .iter()
        .filter(|(_, &e)| reap_at(e) > now)
        .map(|(&id, _)| id)
        .collect();
    assert_eq!(live, want, "at {now}");
}

#[test]
fn expiries_beyond_one_wheel_revolution_and_clock_jumps() {
    // 31 days of persistence: the wheel revolves every ~1049 s.
    let mut lb = Lb::new(4);
    let key = FlowKey::template(Proto::Tcp, addr([10, 0, 0, 1]), HOST, VIP);
    let id = lb.template(key, 1, 2_678_400, T0);
    for days in [1, 10, 20, 30] {
        assert!(lb.expire_all(T0 + days * 86_400 * SEC).is_empty());
    }
    let gone = expires_exactly(&mut lb, id);
    assert_eq!(
        (gone.state, gone.counter),
        (State::None, Counter::Persistent)
    );
    assert_eq!(lb.dests[1], Counts::default());
}

// ---------------------------------------------------------------------------------------
// Index.

#[test]
fn full_table_refuses_and_keeps_what_it_has() {
    let mut lb = Lb::new(4);
    let ids: Vec<ConnId> = (0..4).map(|n| lb.tcp(n, Fwd::Nat, 0, T0)).collect();
    for &id in &ids {
        lb.packet(id, Dir::In, SYN, T0);
    }
    let refused = lb.table.insert(
        NewConn {
            proto: Proto::Tcp,
            client: client(9),
            virt: VIP,
            real: rip(1),
            fwd: Fwd::Nat,
            local: None,
            dest: 1,
        },
        T0,
    );
    assert_eq!(refused, Err(TableFull(1)));
    let key = FlowKey::template(Proto::Tcp, addr([10, 0, 0, 1]), HOST, VIP);
    let refused = lb.table.insert_template(
        NewTemplate {
            key,
            real: rip(1),
            timeout: 60,
            dest: 1,
        },
        T0,
    );
    assert_eq!(refused, Err(TableFull(1)));
    assert_eq!(lb.table.len(), 4);
    lb.table.check();
    for (n, &id) in ids.iter().enumerate() {
        let c = lb.table.get(id).unwrap();
        assert_eq!((c.state(), c.expires()), (State::SynRecv, T0 + 60 * SEC));
        let in_key = FlowKey::new(Proto::Tcp, client(n as u16), VIP);
        assert_eq!(lb.table.lookup(&in_key), Some(Hit { id, dir: Dir::In }));
        assert_eq!(
            lb.table.lookup(&c.out_key().unwrap()),
            Some(Hit { id, dir: Dir::Out })
        );
    }
    assert_eq!(
        lb.table.lookup(&FlowKey::new(Proto::Tcp, client(9), VIP)),
        None
    );
    // One leaves, one more fits.
    lb.remove(ids[2]).unwrap();
    lb.tcp(9, Fwd::Nat, 1, T0);
    assert_eq!(lb.table.len(), 4);
    lb.table.check();
}

#[test]
fn lookup_finds_nat_connections_from_both_directions_only() {
    let mut lb = Lb::new(8);
    let a = lb.tcp(1, Fwd::Nat, 0, T0);
    let b = lb.tcp(2, Fwd::Nat, 1, T0);
    let u = lb.conn(Proto::Udp, 1, Fwd::Nat, 0, T0);
    let in_a = FlowKey::new(Proto::Tcp, client(1), VIP);
    let out_a = FlowKey::new(Proto::Tcp, rip(0), client(1));
    assert_eq!(lb.table.get(a).unwrap().in_key(), in_a);
    assert_eq!(lb.table.get(a).unwrap().out_key(), Some(out_a));
    assert_eq!(
        lb.table.lookup(&in_a),
        Some(Hit {
            id: a,
            dir: Dir::In
        })
    );
    assert_eq!(
        lb.table.lookup(&out_a),
        Some(Hit {
            id: a,
            dir: Dir::Out
        })
    );
    assert_eq!(
        lb.table
            .lookup(&FlowKey::new(Proto::Tcp, rip(1), client(2))),
        Some(Hit {
            id: b,
            dir: Dir::Out
        })
    );
    // Same addresses, other protocol: the UDP connection.
    let udp_in = FlowKey {
        proto: Proto::Udp,
        ..in_a
    };
    assert_eq!(
        lb.table.lookup(&udp_in),
        Some(Hit {
            id: u,
            dir: Dir::In
        })
    );
    // Neither reversed key, nor a wrong port or address, nor b's server with a's client.
    for key in [
        in_a.reversed(),
        out_a.reversed(),
        FlowKey { dport: 81, ..in_a },
        FlowKey { sport: 1, ..out_a },
        FlowKey {
            src: addr([10, 0, 0, 2]),
            ..in_a
        },
        FlowKey::new(Proto::Tcp, rip(1), client(1)),
    ] {
        assert_eq!(lb.table.lookup(&key), None, "{key:?}");
    }
    // The embedded header of an ICMP error from the real server shows the flow as sent to
    // it (client → RIP after DNAT); reversed it is the out key.
    assert_eq!(
        FlowKey::new(Proto::Tcp, client(1), rip(0)).reversed(),
        out_a
    );
    assert_eq!(lb.table.index_len(), 6);
    let c = lb.table.get(a).unwrap();
    assert_eq!(
        (c.client(), c.virt(), c.real(), c.fwd(), *c.dest()),
        (client(1), VIP, rip(0), Some(Fwd::Nat), 0)
    );
}

#[test]
fn dr_and_tun_connections_have_only_an_in_key() {
    let mut lb = Lb::new(4);
    let d = lb.tcp(1, Fwd::Dr, 2, T0);
    let t = lb.tcp(2, Fwd::Tun, 3, T0);
    assert_eq!(lb.table.index_len(), 2);
    for (id, n, dest, fwd) in [(d, 1, 2, Fwd::Dr), (t, 2, 3, Fwd::Tun)] {
        let c = lb.table.get(id).unwrap();
        assert_eq!(c.out_key(), None);
        assert_eq!((c.real(), c.fwd()), (rip(dest), Some(fwd)));
        let in_key = FlowKey::new(Proto::Tcp, client(n), VIP);
        assert_eq!(lb.table.lookup(&in_key), Some(Hit { id, dir: Dir::In }));
        assert_eq!(
            lb.table
                .lookup(&FlowKey::new(Proto::Tcp, rip(dest), client(n))),
            None
        );
    }
    lb.remove(d).unwrap();
    lb.remove(t).unwrap();
    assert_eq!(lb.table.index_len(), 0);
    lb.table.check();
}

// ---------------------------------------------------------------------------------------
// Conn reuse.

#[test]
fn syn_on_time_wait_reschedules_afresh() {
    let mut lb = Lb::new(4);
    let key = FlowKey::new(Proto::Tcp, client(1), VIP);
    let old = lb.tcp(1, Fwd::Nat, 0, T0);
    for (dir, f) in [
        (Dir::In, SYN),
        (Dir::Out, syn_ack()),
        (Dir::In, ACK),
        (Dir::In, fin_ack()),
        (Dir::Out, fin_ack()),
    ] {
        assert!(!lb.table.reusable(old), "{:?}", lb.state(old));
        lb.packet(old, dir, f, T0);
    }
    assert_eq!(lb.state(old), State::TimeWait);
    // The caller's path: a SYN hits the old connection, which is reusable.
    let hit = lb.table.lookup(&key).unwrap();
    assert_eq!(
        hit,
        Hit {
            id: old,
            dir: Dir::In
        }
    );
    assert!(lb.table.reusable(hit.id));
    let gone = lb.remove(hit.id).unwrap();
    assert_eq!(
        (gone.dest, gone.state, gone.counter),
        (0, State::TimeWait, Counter::Inactive)
    );
    let new = lb.tcp(1, Fwd::Nat, 1, T0 + 1);
    assert_eq!(lb.packet(new, Dir::In, SYN, T0 + 1).to, State::SynRecv);
    assert_eq!(
        lb.table.lookup(&key),
        Some(Hit {
            id: new,
            dir: Dir::In
        })
    );
    assert_eq!((lb.dests[0], lb.dests[1]), (counts(0, 0), counts(0, 1)));
    lb.table.check();
}

#[test]
fn reusable_states_follow_conn_reuse_mode() {
    let cases = [
        // (mode, fwd, state, reusable)
        (1, Fwd::Nat, State::TimeWait, true),
        (1, Fwd::Nat, State::Close, true),
        (1, Fwd::Dr, State::TimeWait, true),
        (1, Fwd::Dr, State::FinWait, false),
        (2, Fwd::Dr, State::FinWait, true),
        (3, Fwd::Tun, State::FinWait, true),
        (3, Fwd::Nat, State::FinWait, false),
        (0, Fwd::Nat, State::TimeWait, false),
        (0, Fwd::Nat, State::Close, false),
    ];
    for (mode, fwd, state, want) in cases {
        let mut lb = Lb::with(Config {
            conn_reuse_mode: mode,
            ..Config::new(2)
        });
        let id = lb.tcp(1, fwd, 0, T0);
        lb.table.set_state(id, state);
        assert_eq!(lb.table.reusable(id), want, "mode {mode} {fwd:?} {state:?}");
    }
    // Never in the other states, with every mode.
    for mode in 0..4 {
        for state in State::TCP {
            if matches!(state, State::TimeWait | State::Close | State::FinWait) {
                continue;
            }
            let mut lb = Lb::with(Config {
                conn_reuse_mode: mode,
                ..Config::new(2)
            });
            let id = lb.tcp(1, Fwd::Dr, 0, T0);
            lb.table.set_state(id, state);
            assert!(!lb.table.reusable(id), "mode {mode} {state:?}");
        }
    }
    // Never UDP, never a template, never a controlled connection.
    let mut lb = Lb::new(4);
    let u = lb.conn(Proto::Udp, 1, Fwd::Nat, 0, T0);
    assert!(!lb.table.reusable(u));
    let key = FlowKey::template(Proto::Tcp, addr([10, 0, 0, 1]), HOST, VIP);
    let tpl = lb.template(key, 0, 300, T0);
    lb.table.set_state(tpl, State::TimeWait);
    assert!(!lb.table.reusable(tpl));
    let c = lb.tcp(2, Fwd::Nat, 0, T0);
    assert!(lb.table.control(c, tpl, T0));
    lb.table.set_state(c, State::TimeWait);
    assert!(!lb.table.reusable(c));
}

// ---------------------------------------------------------------------------------------
// Persistence templates.

fn tpl_key(client: [u8; 4]) -> FlowKey<Addr> {
    FlowKey::template(Proto::Tcp, addr(client), netmask(24), VIP)
}

#[test]
fn template_key_masks_the_client_and_is_separate_from_connections() {
    let key = tpl_key([10, 0, 0, 77]);
    assert_eq!(
        key,
        FlowKey {
            proto: Proto::Tcp,
            src: addr([10, 0, 0, 0]),
            sport: 0,
            dst: *VIP.ip(),
            dport: 80
        }
    );
    let all_ports = FlowKey::template(
        Proto::Udp,
        addr([10, 1, 2, 3]),
        netmask(16),
        sa([192, 168, 0, 100], 0),
    );
    assert_eq!((all_ports.src, all_ports.dport), (addr([10, 1, 0, 0]), 0));

    let mut lb = Lb::new(4);
    let tpl = lb.template(key, 2, 360, T0);
    assert_eq!(
        lb.dests[2],
        Counts {
            active: 0,
            inactive: 0,
            persistent: 1
        }
    );
    let t = lb.table.get(tpl).unwrap();
    assert!(t.is_template());
    assert_eq!(
        (t.state(), t.counter(), t.fwd(), t.real(), t.in_key()),
        (State::None, Counter::Persistent, None, rip(2), key)
    );
    assert_eq!(lb.table.lookup_template(&key), Some(tpl));
    assert_eq!(lb.table.lookup(&key), None, "a template is no connection");
    assert_eq!(lb.table.packet(tpl, Dir::In, SYN, T0), None);
    // A connection whose in key equals the template key (client port 0) is not a template.
    let odd = lb.table.insert(
        NewConn {
            proto: Proto::Tcp,
            client: sa([10, 0, 0, 0], 0),
            virt: VIP,
            real: rip(1),
            fwd: Fwd::Dr,
            local: None,
            dest: 1,
        },
        T0,
    );
    let odd = odd.unwrap();
    assert_eq!(
        lb.table.lookup(&key),
        Some(Hit {
            id: odd,
            dir: Dir::In
        })
    );
    assert_eq!(lb.table.lookup_template(&key), Some(tpl));
    lb.table.check();
}

#[test]
fn template_lives_until_last_new_connection_plus_timeout() {
    let mut lb = Lb::new(8);
    let key = tpl_key([10, 0, 0, 1]);
    let tpl = lb.template(key, 0, 360, T0);
    let c1 = lb.tcp(1, Fwd::Nat, 0, T0);
    assert!(lb.table.control(c1, tpl, T0));
    assert_eq!(lb.table.get(c1).unwrap().control(), Some(tpl));
    lb.packet(c1, Dir::In, SYN, T0);
    // SYN_RECV + RST stays SYN_RECV (60 s).
    lb.packet(c1, Dir::In, RST, T0 + SEC);
    // A second connection of the same client 100 s later re-arms the template.
    let t1 = T0 + 100 * SEC;
    assert_eq!(lb.table.lookup_template(&key), Some(tpl));
    lb.expire_all(t1);
    assert!(!lb.alive(c1), "SYN_RECV: 60 s");
    assert_eq!(lb.table.get(tpl).unwrap().n_control(), 0);
    let c2 = lb.tcp(2, Fwd::Nat, 0, t1);
    assert!(lb.table.control(c2, tpl, t1));
    assert_eq!(lb.table.get(tpl).unwrap().n_control(), 1);
    lb.packet(c2, Dir::In, SYN, t1);
    lb.packet(c2, Dir::In, RST, t1);
    assert_eq!(lb.expires(tpl), t1 + 360 * SEC);
    lb.expire_all(t1 + 61 * SEC);
    assert!(!lb.alive(c2));
    assert_eq!(lb.table.get(tpl).unwrap().n_control(), 0);
    let gone = expires_exactly(&mut lb, tpl);
    assert_eq!(
        gone,
        Removed {
            dest: 0,
            state: State::None,
            counter: Counter::Persistent,
            local: None
        }
    );
    assert_eq!(lb.dests[0], Counts::default());
    assert_eq!(lb.table.lookup_template(&key), None);
}

#[test]
fn template_outlives_its_timeout_while_it_controls_connections() {
    let mut lb = Lb::new(8);
    let key = tpl_key([10, 0, 0, 1]);
    let tpl = lb.template(key, 0, 360, T0);
    let c = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.table.control(c, tpl, T0);
    lb.packet(c, Dir::In, SYN, T0);
    lb.packet(c, Dir::In, ACK, T0);
    // Past the template's expiry: kept (parked), still found, still persistent.
    assert!(lb
        .expire_all(reap_at(T0 + 360 * SEC) + 100 * SEC)
        .is_empty());
    assert_eq!(lb.table.lookup_template(&key), Some(tpl));
    assert_eq!(
        lb.dests[0],
        Counts {
            active: 1,
            inactive: 0,
            persistent: 1
        }
    );
    // The connection carries on, then stops: it goes at its expiry and the template with it.
    let last = T0 + 800 * SEC;
    lb.packet(c, Dir::In, ACK, last);
    let at = reap_at(last + 900 * SEC);
    assert!(lb.expire_all(at - 1).is_empty());
    let gone = lb.expire_all(at);
    assert_eq!(
        gone,
        [
            Removed {
                dest: 0,
                state: State::Established,
                counter: Counter::Active,
                local: None
            },
            Removed {
                dest: 0,
                state: State::None,
                counter: Counter::Persistent,
                local: None
            },
        ]
    );
    assert!(lb.table.is_empty());
    assert_eq!(lb.dests[0], Counts::default());
}

#[test]
fn a_parked_template_taken_again_is_re_armed() {
    let mut lb = Lb::new(8);
    let key = tpl_key([10, 0, 0, 1]);
    let tpl = lb.template(key, 0, 360, T0);
    let c1 = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.table.control(c1, tpl, T0);
    lb.packet(c1, Dir::In, SYN, T0);
    lb.packet(c1, Dir::In, ACK, T0);
    let t1 = reap_at(T0 + 360 * SEC) + 10 * SEC;
    lb.expire_all(t1); // parks the template
    let c2 = lb.tcp(2, Fwd::Nat, 0, t1);
    assert!(lb.table.control(c2, tpl, t1));
    assert_eq!(lb.expires(tpl), t1 + 360 * SEC);
    lb.packet(c2, Dir::In, SYN, t1);
    // c1 is reset (CLOSE, 10 s) and c2 stays in SYN_RECV (60 s): both end before the
    // template's new expiry, which then stands.
    lb.packet(c1, Dir::In, RST, t1);
    lb.expire_all(t1 + 61 * SEC);
    assert!(!lb.alive(c1) && !lb.alive(c2));
    assert_eq!(lb.table.get(tpl).unwrap().n_control(), 0);
    expires_exactly(&mut lb, tpl);
}

#[test]
fn invalidated_template_is_not_found_but_stays_for_its_connections() {
    let mut lb = Lb::new(8);
    let key = tpl_key([10, 0, 0, 1]);
    let old = lb.template(key, 0, 60, T0);
    let c = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.table.control(c, old, T0);
    lb.packet(c, Dir::In, SYN, T0);
    lb.packet(c, Dir::In, ACK, T0);
    // Its real server went away: the next connection schedules and makes a new template.
    assert!(lb.table.invalidate_template(old));
    assert!(!lb.table.invalidate_template(old));
    assert!(!lb.table.invalidate_template(c));
    assert_eq!(lb.table.lookup_template(&key), None);
    let new = lb.template(key, 1, 60, T0 + SEC);
    assert_eq!(lb.table.lookup_template(&key), Some(new));
    lb.table.check();
    // The old one is still counted until its connection is gone (ESTABLISHED, 900 s).
    lb.expire_all(reap_at(T0 + 61 * SEC) + SEC);
    assert!(lb.alive(old) && !lb.alive(new));
    assert_eq!(lb.dests[0].persistent, 1);
    let gone = lb.expire_all(reap_at(T0 + 900 * SEC));
    assert_eq!(gone.len(), 2);
    assert!(lb.table.is_empty());
    assert_eq!(lb.dests[0], Counts::default());
}

#[test]
fn removing_a_controlling_template_defers_to_its_last_connection() {
    let mut lb = Lb::new(8);
    let key = tpl_key([10, 0, 0, 1]);
    let tpl = lb.template(key, 0, 600, T0);
    let c = lb.tcp(1, Fwd::Dr, 0, T0);
    lb.table.control(c, tpl, T0);
    lb.packet(c, Dir::In, SYN, T0);
    assert_eq!(lb.remove(tpl), None);
    assert_eq!(lb.table.lookup_template(&key), None);
    lb.expire_all(T0 + SEC);
    assert!(lb.alive(tpl));
    // The connection goes (explicitly); the template follows at the next sweep.
    lb.remove(c).unwrap();
    let gone = lb.expire_all(T0 + 2 * SEC);
    assert_eq!(
        gone,
        [Removed {
            dest: 0,
            state: State::None,
            counter: Counter::Persistent,
            local: None
        }]
    );
    assert!(lb.table.is_empty());
    assert_eq!(lb.dests[0], Counts::default());
}

#[test]
fn control_needs_a_connection_and_a_template_and_moves_between_templates() {
    let mut lb = Lb::new(8);
    let a = lb.template(tpl_key([10, 0, 0, 1]), 0, 60, T0);
    let b = lb.template(tpl_key([10, 0, 1, 1]), 0, 60, T0);
    let c = lb.tcp(1, Fwd::Nat, 0, T0);
    assert!(!lb.table.control(a, b, T0));
    assert!(!lb.table.control(c, c, T0));
    assert!(lb.table.control(c, a, T0));
    assert!(lb.table.control(c, b, T0));
    assert_eq!(
        (
            lb.table.get(a).unwrap().n_control(),
            lb.table.get(b).unwrap().n_control()
        ),
        (0, 1)
    );
    lb.table.check();
    let gone = lb.remove(c).unwrap();
    assert_eq!(gone.counter, Counter::Inactive);
    assert!(!lb.table.control(c, a, T0), "stale id");
}

// ---------------------------------------------------------------------------------------
// Churn and size.

/// SplitMix64: a small seeded generator, so that failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn churn_keeps_slab_index_wheel_and_counters_consistent() {
    const CAPACITY: u32 = 256;
    let mut rng = Rng(0xc0ff_ee00_2024);
    let mut lb = Lb::new(CAPACITY);
    let bytes = lb.table.allocation_size();
    let mut now = T0;
    let mut refused = 0;
    let flag_sets = [SYN, ACK, FIN, RST, syn_ack(), fin_ack(), Flags::PSH];
    for op in 0..100_000u32 {
        let live: Vec<ConnId> = lb.table.iter().map(|(id, _)| id).collect();
        let pick = |rng: &mut Rng| {
            live.get(rng.below(live.len().max(1) as u64) as usize)
                .copied()
        };
        match rng.below(100) {
            // New connection, if its key is free (the data path looks up first).
            0..=29 => {
                let proto = if rng.below(4) == 0 {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                let n = rng.below(400) as u16;
                let key = FlowKey::new(proto, client(n), VIP);
                if lb.table.lookup(&key).is_some() {
                    continue;
                }
                let fwd = [Fwd::Nat, Fwd::Dr, Fwd::Tun][rng.below(3) as usize];
                let dest = rng.below(6) as usize;
                let new = NewConn {
                    proto,
                    client: client(n),
                    virt: VIP,
                    real: rip(dest),
                    fwd,
                    local: None,
                    dest,
                };
                match lb.table.insert(new, now) {
                    Ok(id) => {
                        lb.dests[dest].inactive += 1;
                        lb.packet(id, Dir::In, SYN, now);
                    }
                    Err(TableFull(d)) => {
                        assert_eq!(d, dest);
                        assert_eq!(lb.table.len(), CAPACITY as usize);
                        refused += 1;
                    }
                }
            }
            // New template, or a connection tied to one.
            30..=39 => {
                let key = tpl_key([10, 0, rng.below(8) as u8, 1]);
                let tpl = match lb.table.lookup_template(&key) {
                    Some(t) => t,
                    None => {
                        let dest = rng.below(6) as usize;
                        let new = NewTemplate {
                            key,
                            real: rip(dest),
                            timeout: 1 + rng.below(30) as u32,
                            dest,
                        };
                        match lb.table.insert_template(new, now) {
                            Ok(t) => {
                                lb.dests[dest].persistent += 1;
                                t
                            }
                            Err(_) => continue,
                        }
                    }
                };
                if let Some(c) = pick(&mut rng) {
                    let ok = lb.table.control(c, tpl, now);
                    assert_eq!(ok, !lb.table.get(c).unwrap().is_template());
                }
            }
            // Packets.
            40..=74 => {
                if let Some(id) = pick(&mut rng) {
                    let dir = if rng.below(3) == 0 { Dir::Out } else { Dir::In };
                    let flags = flag_sets[rng.below(flag_sets.len() as u64) as usize];
                    if lb.table.get(id).unwrap().is_template() {
                        assert_eq!(lb.table.packet(id, dir, flags, now), None);
                    } else {
                        lb.packet(id, dir, flags, now);
                    }
                }
            }
            // Removal: reuse, or any entry.
            75..=82 => {
                if let Some(id) = pick(&mut rng) {
                    let c = lb.table.get(id).unwrap();
                    let deferred = c.is_template() && c.n_control() > 0;
                    assert_eq!(lb.remove(id).is_none(), deferred);
                }
            }
            83..=84 => {
                if let Some(id) = pick(&mut rng) {
                    lb.table.invalidate_template(id);
                }
            }
            // Time passes; a slice of expiry.
            _ => {
                now += rng.below(3 * SEC);
                let budget = 1 + rng.below(64) as usize;
                let mut gone = Vec::new();
                let sweep = lb.table.expire(now, budget, |r| gone.push(r));
                assert!(sweep.removed <= budget);
                for g in &gone {
                    lb.unbind(g);
                }
            }
        }
        if op % 1000 == 0 {
            lb.table.check();
            assert_eq!(lb.dests, lb.recount(), "op {op}");
        }
    }
    assert!(refused > 0, "the churn never filled the table");
    lb.table.check();
    assert_eq!(lb.dests, lb.recount());
    // Everything ends: 40 days later the table is empty and every entry is free again.
    lb.expire_all(now + 40 * 86_400 * SEC);
    assert!(lb.table.is_empty());
    assert!(lb.dests.iter().all(|c| *c == Counts::default()));
    assert_eq!(lb.table.free_count(), CAPACITY as usize);
    assert_eq!(lb.table.index_len(), 0);
    assert_eq!(lb.table.allocation_size(), bytes, "nothing grew");
}

/// FULLNAT's sequence state lives apart from the entry: only a live FULLNAT connection has
/// one, a new one starts from the default even in a slot whose previous FULLNAT connection
/// left its own there, and a synced one carries the master's.
#[test]
fn fullnat_sequence_state_belongs_to_fullnat_connections_only() {
    let mut table: Table<usize, Addr> = Table::new(Config::new(1), T0).unwrap();
    let local = sa([10, 1, 1, 1], 40000);
    let fullnat = NewConn {
        proto: Proto::Tcp,
        client: client(1),
        virt: VIP,
        real: rip(1),
        fwd: Fwd::FullNat,
        local: Some(local),
        dest: 1,
    };
    let a = table.insert(fullnat.clone(), T0).unwrap();
    assert_eq!(table.seq(a), Some(&TcpSeq::default()));
    *table.seq_mut(a).unwrap() = TcpSeq::new(100, 5000);
    assert_eq!(table.seq(a).map(TcpSeq::delta), Some(4900));
    assert_eq!(table.get(a).unwrap().local(), Some(local));
    let (c, seq) = table.fullnat(a).unwrap();
    assert_eq!((c.local(), seq.delta()), (Some(local), 4900));
    // Its reply key, RIP:rport -> LIP:lport, is compared in the entry.
    let out = FlowKey::new(Proto::Tcp, rip(1), local);
    assert_eq!(
        table.lookup(&out),
        Some(Hit {
            id: a,
            dir: Dir::Out
        })
    );
    assert!(table.remove(a).is_some());
    assert_eq!(table.seq(a), None, "stale id");
    assert_eq!(table.seq_mut(a), None, "stale id");

    // The one slot again: NAT has no sequence state.
    let nat = NewConn {
        fwd: Fwd::Nat,
        local: None,
        ..fullnat.clone()
    };
    let b = table.insert(nat, T0).unwrap();
    assert_eq!(b, a, "same slot");
    assert_eq!(table.seq(b), None);
    assert_eq!(table.seq_mut(b), None);
    assert!(table.fullnat(b).is_none());
    assert!(table.remove(b).is_some());

    // FULLNAT again: the previous connection's translation is gone.
    let c = table.insert(fullnat.clone(), T0).unwrap();
    assert_eq!(c, a, "same slot");
    assert_eq!(table.seq(c), Some(&TcpSeq::default()));
    assert!(table.remove(c).is_some());
    // Given up front; ignored for NAT.
    let c = table
        .insert_with_seq(fullnat.clone(), TcpSeq::new(1, 3), T0)
        .unwrap();
    assert_eq!(table.seq(c).map(TcpSeq::delta), Some(2));
    assert!(table.remove(c).is_some());
    let nat = NewConn {
        fwd: Fwd::Nat,
        local: None,
        ..fullnat.clone()
    };
    let c = table.insert_with_seq(nat, TcpSeq::new(1, 3), T0).unwrap();
    assert_eq!(table.seq(c), None);
    assert!(table.remove(c).is_some());

    let restored = TcpSeq::restore(7, 8, Some(9), 10);
    let synced = SyncedConn {
        new: fullnat,
        state: State::Established,
        timeout: 0,
        seq: restored,
    };
    let d = table
        .install_synced(synced, SyncRules::default(), T0)
        .unwrap();
    assert_eq!(table.seq(d), Some(&restored));
    table.check();
}

#[test]
fn staged_lookups_of_a_full_table_answer_as_lookup() {
    // 3000 NAT connections in a table of 4096: 6000 keys in 1024 buckets of 10 slots, some
    // past their home bucket. Looked up as a worker does a burst: every probe first, then
    // every candidate, then the hinted lookups.
    let mut lb = Lb::new(4096);
    let ids: Vec<ConnId> = (0..3000u16)
        .map(|i| lb.tcp(i, Fwd::Nat, usize::from(i % 4), T0))
        .collect();
    let mut keys: Vec<FlowKey<Addr>> = Vec::new();
    for &id in &ids {
        let c = lb.table.get(id).unwrap();
        keys.push(c.in_key());
        keys.push(c.out_key().unwrap());
    }
    keys.push(FlowKey::new(Proto::Tcp, client(5000), VIP));
    for burst in keys.chunks(32) {
        let probes: Vec<Probe> = burst.iter().map(|k| lb.table.probe(k)).collect();
        let hints: Vec<Option<Hit>> = probes.iter().map(|&p| lb.table.candidate(p)).collect();
        for (key, hint) in burst.iter().zip(hints) {
            assert_eq!(lb.table.lookup_hinted(key, hint), lb.table.lookup(key));
        }
    }
    let found = keys.iter().filter(|k| lb.table.lookup(k).is_some()).count();
    assert_eq!(found, 6000);
    lb.table.check();
}

#[test]
fn capacity_limits() {
    assert_eq!(
        Table::<u32>::new(Config::new(MAX_CAPACITY + 1), T0).err(),
        Some(TableError::TooLarge(MAX_CAPACITY + 1))
    );
    let mut empty: Table<u32, Addr> = Table::new(Config::new(0), T0).unwrap();
    let new = NewConn {
        proto: Proto::Tcp,
        client: client(1),
        virt: VIP,
        real: rip(0),
        fwd: Fwd::Nat,
        local: None,
        dest: 7,
    };
    assert_eq!(empty.insert(new, T0), Err(TableFull(7)));
    assert_eq!(
        empty.expire(T0 + SEC, 64, |_| {}),
        Sweep {
            removed: 0,
            done: true
        }
    );
    empty.check();
}

#[test]
fn prefetch_answers_as_lookup_and_a_hint_is_taken_only_while_it_holds() {
    let mut lb = Lb::new(8);
    let nat = lb.tcp(1, Fwd::Nat, 0, T0);
    let dr = lb.tcp(2, Fwd::Dr, 1, T0);
    let nat_in = lb.table.get(nat).unwrap().in_key();
    let nat_out = lb.table.get(nat).unwrap().out_key().unwrap();
    let dr_in = lb.table.get(dr).unwrap().in_key();
    let unknown = FlowKey::new(Proto::Tcp, client(9), VIP);
    for key in [nat_in, nat_out, dr_in, unknown] {
        // The staged form (probe the whole burst, then the candidates) answers as lookup
        // once the hint is checked; a tag match alone is not an answer.
        let hint = lb.table.candidate(lb.table.probe(&key));
        assert_eq!(lb.table.prefetch(&key), hint);
        // (NAT's out key is still held back with the latest connections' here: no candidate.)
        assert!(hint.is_none() || hint == lb.table.lookup(&key), "{key:?}");
        assert_eq!(lb.table.lookup_hinted(&key, hint), lb.table.lookup(&key));
        assert_eq!(lb.table.lookup_hinted(&key, None), lb.table.lookup(&key));
    }
    // A hint for another key, or the other direction, is not taken.
    let nat_hit = lb.table.lookup(&nat_in);
    assert_eq!(
        lb.table.lookup_hinted(&dr_in, nat_hit),
        lb.table.lookup(&dr_in)
    );
    let out_hit = lb.table.lookup(&nat_out);
    assert_eq!(lb.table.lookup_hinted(&nat_in, out_hit), nat_hit);
    // DR has no out key: a hint claiming one is not taken.
    let dr_as_out = Some(Hit {
        id: dr,
        dir: Dir::Out,
    });
    let dr_reply = FlowKey::new(Proto::Tcp, rip(1), client(2));
    assert_eq!(lb.table.lookup_hinted(&dr_reply, dr_as_out), None);
    // The connection goes and its entry is reused by another flow: the old hint is stale.
    let stale = lb.table.prefetch(&nat_in);
    let gone = lb.remove(nat).unwrap();
    lb.unbind(&gone);
    let other = lb.tcp(3, Fwd::Nat, 0, T0);
    assert_eq!(other, nat, "the freed entry is reused");
    assert_eq!(lb.table.lookup_hinted(&nat_in, stale), None);
    let other_in = lb.table.get(other).unwrap().in_key();
    assert_eq!(
        lb.table.lookup_hinted(&other_in, stale),
        lb.table.lookup(&other_in)
    );
    // Templates are never the answer, hint or not.
    let key = FlowKey::template(Proto::Tcp, *client(4).ip(), HOST, VIP);
    let t = lb.template(key, 0, 300, T0);
    let as_conn = Some(Hit {
        id: t,
        dir: Dir::In,
    });
    assert_eq!(lb.table.lookup_hinted(&key, as_conn), None);
    lb.table.check();
}

#[test]
fn out_keys_held_back_from_the_index_are_found_and_removed() {
    // NAT out keys reach the index a few connections at a time (`Table::add`): until then a
    // lookup finds them all the same, and a removal takes them away whichever side they are on.
    let mut lb = Lb::new(64);
    let mut ids = Vec::new();
    for n in 0..11 {
        ids.push(lb.tcp(n, Fwd::Nat, usize::from(n) % 4, T0));
        lb.table.check();
        for (&id, n) in ids.iter().zip(0u16..) {
            let c = lb.table.get(id).unwrap();
            let out = c.out_key().unwrap();
            assert_eq!(lb.table.lookup(&c.in_key()), Some(Hit { id, dir: Dir::In }));
            assert_eq!(lb.table.lookup(&out), Some(Hit { id, dir: Dir::Out }));
            assert_eq!(
                out,
                FlowKey::new(Proto::Tcp, rip(usize::from(n) % 4), client(n))
            );
        }
    }
    // The last connection's out key is still held back, the first one's is in the index.
    for &id in [ids[10], ids[0]].iter() {
        let c = lb.table.get(id).unwrap();
        let (in_key, out) = (c.in_key(), c.out_key().unwrap());
        assert!(lb.remove(id).is_some());
        lb.table.check();
        assert_eq!(lb.table.lookup(&in_key), None);
        assert_eq!(lb.table.lookup(&out), None);
    }
    let id = lb.tcp(20, Fwd::Nat, 1, T0);
    let out = lb.table.get(id).unwrap().out_key().unwrap();
    assert_eq!(lb.table.lookup(&out), Some(Hit { id, dir: Dir::Out }));
    assert_eq!(lb.expire_all(reap_at(T0 + 3 * SEC)).len(), 10);
    assert_eq!(lb.table.lookup(&out), None);
    assert_eq!(lb.table.index_len(), 0);
}

/// The packets at which a master sends a connection that stays ESTABLISHED: the 3rd, 53rd,
/// 103rd inbound packet (sync_threshold 3, sync_period 50), never before ESTABLISHED.
#[test]
fn sync_due_follows_threshold_and_period_once_established() {
    let mut lb = Lb::new(16);
    let rules = SyncRules::default();
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    // SYN: SYN_RECV is never sent, but the packet counts.
    lb.packet(id, Dir::In, SYN, T0);
    assert!(!lb.table.sync_due(id, rules));
    lb.packet(id, Dir::Out, syn_ack(), T0);
    lb.packet(id, Dir::In, ACK, T0);
    assert_eq!(lb.state(id), State::Established);
    let mut sent = Vec::new();
    for n in 2..=110u32 {
        if n > 2 {
            lb.packet(id, Dir::In, ACK, T0);
        }
        if lb.table.sync_due(id, rules) {
            sent.push(n);
        }
    }
    assert_eq!(sent, [3, 53, 103]);
}

/// A change into a closing state is sent at once, once; staying in it follows the period.
#[test]
fn sync_due_sends_a_change_into_a_closing_state_at_once() {
    let mut lb = Lb::new(16);
    let rules = SyncRules::default();
    let id = lb.tcp(1, Fwd::Dr, 0, T0);
    lb.packet(id, Dir::In, SYN, T0);
    lb.table.sync_due(id, rules);
    lb.packet(id, Dir::In, ACK, T0);
    assert!(!lb.table.sync_due(id, rules), "2nd packet");
    lb.packet(id, Dir::In, ACK, T0);
    assert!(lb.table.sync_due(id, rules), "3rd packet");
    lb.packet(id, Dir::In, fin_ack(), T0);
    assert_eq!(lb.state(id), State::FinWait);
    assert!(lb.table.sync_due(id, rules), "into FIN_WAIT");
    lb.packet(id, Dir::In, ACK, T0);
    assert!(!lb.table.sync_due(id, rules), "still FIN_WAIT, 5th packet");
}

/// UDP has one state: threshold and period only; period 0 sends once.
#[test]
fn sync_due_udp_and_period_zero() {
    let mut lb = Lb::new(16);
    let id = lb.conn(Proto::Udp, 1, Fwd::Nat, 0, T0);
    let once = SyncRules {
        threshold: 2,
        period: 0,
    };
    let sent: Vec<u32> = (1..=200).filter(|_| lb.table.sync_due(id, once)).collect();
    assert_eq!(sent, [2]);
}

/// A synced connection is installed in the master's state with the master's timeout, and
/// a later message updates state and expiry and reports the counter move.
#[test]
fn install_and_refresh_synced_connections() {
    let mut lb = Lb::new(16);
    let rules = SyncRules::default();
    let synced = SyncedConn {
        new: NewConn {
            proto: Proto::Tcp,
            client: client(7),
            virt: VIP,
            real: rip(1),
            fwd: Fwd::Nat,
            local: None,
            dest: 1,
        },
        state: State::Established,
        timeout: 900,
        seq: TcpSeq::default(),
    };
    let id = lb.table.install_synced(synced, rules, T0).expect("room");
    let c = lb.table.get(id).unwrap();
    assert_eq!(
        (
            c.state(),
            c.timeout(),
            c.expires(),
            c.counter(),
            c.no_output()
        ),
        (
            State::Established,
            900,
            T0 + 900 * SEC,
            Counter::Active,
            false
        )
    );
    *lb.counter(1, Counter::Active) += 1;
    // Found by both keys, as a scheduled connection.
    let out = FlowKey::new(Proto::Tcp, rip(1), client(7));
    assert_eq!(
        lb.table.lookup(&out).map(|h| (h.id, h.dir)),
        Some((id, Dir::Out))
    );
    // Sent again on the period's schedule if this director becomes master: 50 packets on.
    let sent: Vec<u32> = (1..=60).filter(|_| lb.table.sync_due(id, rules)).collect();
    assert_eq!(sent, [50]);
    // The master saw a FIN: FIN_WAIT, its 120 s.
    let moved = lb
        .table
        .refresh_synced(id, State::FinWait, 120, rules, T0 + SEC)
        .unwrap();
    assert_eq!(moved, Move::ToInactive);
    assert_eq!(lb.expires(id), T0 + 121 * SEC);
    lb.table.check();
    assert!(lb.expire_all(T0 + 120 * SEC).is_empty());
    assert_eq!(lb.expire_all(reap_at(T0 + 121 * SEC)).len(), 1);
}

/// A refresh with timeout 0 (a version 0 peer) takes the state's timeout here; a template
/// keeps its state and takes the timeout.
#[test]
fn refresh_synced_timeout_zero_and_templates() {
    let mut lb = Lb::new(16);
    let rules = SyncRules::default();
    let id = lb.tcp(1, Fwd::Nat, 0, T0);
    lb.table
        .refresh_synced(id, State::Established, 0, rules, T0)
        .unwrap();
    assert_eq!(lb.expires(id), T0 + 900 * SEC);
    let key = FlowKey::template(Proto::Tcp, addr([10, 0, 0, 1]), HOST, VIP);
    let t = lb.template(key, 2, 360, T0);
    let moved = lb
        .table
        .refresh_synced(t, State::Established, 100, rules, T0)
        .unwrap();
    assert_eq!(moved, Move::Stay);
    let c = lb.table.get(t).unwrap();
    assert_eq!(
        (c.state(), c.timeout(), c.expires()),
        (State::None, 100, T0 + 100 * SEC)
    );
    lb.table.check();
}
