//! IPv4 fragments of TCP and UDP datagrams, forwarded without reassembly.
//!
//! Linux IPVS sees reassembled datagrams (`nf_defrag_ipv4` runs before it); DPVS drops
//! fragments. rvs forwards each fragment as it comes, with the rewrite of its datagram's
//! connection, and keeps per worker only what that takes.
//!
//! - **The first fragment** (offset 0, MF set) carries the TCP or UDP header: it walks the
//!   forwarding stage like any packet (connection lookup or scheduling, state machine,
//!   counters, the method's rewrite). NAT's incremental update of the L4 checksum is right for
//!   the reassembled datagram: the checksum covers the whole datagram and only addresses and
//!   ports change (a UDP datagram sent without a checksum keeps none). The worker then
//!   remembers under the datagram's key (source, destination, protocol, identification: RFC
//!   791) what became of it: the addresses the rewrite left and where the packet went, or why
//!   it was dropped.
//! - **Later fragments** (offset > 0) carry no ports: each gets the remembered IP-level rewrite
//!   (TTL − 1 and the addresses, one header checksum update: NAT's one address, FULLNAT's
//!   two, none for DR and TUN) and leaves the same way (TUN encapsulates each, DR writes the
//!   MACs), or is dropped for the first fragment's reason. No connection state moves for them.
//! - **Counters**: a datagram is one packet, as IPVS counts the reassembled datagram once:
//!   `inpkts`/`outpkts` and the TCP state move with the first fragment. Its bytes are the first
//!   fragment's IP length plus every later fragment's payload: the reassembled datagram's
//!   length, what IPVS counts.
//!
//! **Out of order.** A later fragment whose first has not come is held by the worker (the frame
//! stays in its buffer, in [`Held`], as frames waiting for ARP do): at most [`HOLD_MAX`] frames
//! per worker, each datagram's for at most [`HOLD_MS`] from the first one held. When the first
//! fragment comes they go through the pipeline again right behind it, in the order they came;
//! held too long they are dropped (`frag_no_first`), and one more than the worker may hold is
//! dropped at once (`frag_hold_full`). 64 frames hold the largest datagram cut into 1500-byte
//! fragments (45) and bound the buffers a flood can pin per worker; 100 ms is far beyond any
//! reordering inside a network path (microseconds to a few milliseconds) and short enough that
//! held buffers come back soon.
//!
//! **The table.** At most [`TABLE_MAX`] datagrams per worker, each remembered at most
//! [`ENTRY_MS`] after its first fragment and forgotten as soon as its fragments add up to the
//! whole datagram (the last one, MF clear, gives the length). Nothing is ever evicted: a first
//! fragment that finds the table full is dropped (`frag_table_full`) before its connection sees
//! it. So a flood of first fragments can keep new datagrams out until its own entries age out,
//! but never takes the place of a datagram in progress, nor of held fragments (bounded on their
//! own, and only later fragments are held). The same first fragment again is a duplicate
//! (`frag_duplicate`: the connection sees a datagram once, as after reassembly); a first
//! fragment under the same key with other ports is a new datagram reusing the identification,
//! and replaces the old one. One second: generous for fragments that travel together, short
//! enough that a reused identification (16 bits, per source and destination) is rarely met.
//!
//! **Workers.** The owner of a flow ([`super::owner`]) needs its ports, which only the first
//! fragment has. So every fragment goes first to its datagram's *fragment owner*, a hash of the
//! key over the workers ([`owner`]): it holds the fragments that come early, reads the flow's
//! owner from the first fragment, and hands the first and then every later fragment to it
//! through the one hand-over queue between them, in order, so that the flow's owner sees the
//! first fragment before the others. When the two are the same worker (always, with one
//! worker), nothing is handed over.
//!
//! **Refused** (`fragment`): fragments of other protocols; a first fragment too short for its
//! TCP or UDP header, and a later one starting inside that header (RFC 1858: it could rewrite
//! the TCP flags rvs decided on); TCP to a FULLNAT service that hands the client's address on
//! (TOA, on by default, or PROXY: what it inserts into the first fragment would shift every
//! later one); fragments to the host's own addresses (see [`classify`]). ICMP errors quoting a
//! fragment are `icmp_error`'s, and no ICMP error is sent about a fragment: a TTL that runs
//! out drops it (`ttl_exceeded`).

use super::classify::{Class, Flow};
use super::egress::Out;
use super::{forward, Parsed, Pipeline};
use crate::conn::{Dir, Fwd};
use crate::frame::Frame;
use crate::service::Real;
use crate::snapshot::{Owned, PortView, Snapshot};
use crate::verdict::{DropReason, PuntReason, Verdict};
use crate::wire::ether;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::{tcp, udp};
use crate::xmit;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// Frames one worker holds at most while their datagram's first fragment has not come.
pub const HOLD_MAX: usize = 64;
/// How long a datagram's held fragments wait for its first fragment, from the first held.
pub const HOLD_MS: u64 = 100;
/// Datagrams one worker follows at most (their first fragment seen).
pub const TABLE_MAX: usize = 1024;
/// How long after its first fragment a datagram's later fragments are forwarded.
pub const ENTRY_MS: u64 = 1000;

/// Which datagram a fragment belongs to: source, destination, protocol and identification
/// (RFC 791).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ident: u16,
    pub protocol: u8,
}

/// The fragment owner of datagram `key` among `workers`: the worker each of its fragments
/// goes to first (see the module documentation).
#[inline]
pub fn owner(key: &FragmentKey, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let addresses = u64::from(u32::from(key.src)) << 32 | u64::from(u32::from(key.dst));
    let rest = u64::from(key.ident) << 8 | u64::from(key.protocol);
    let x =
        addresses.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ rest.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    ((x >> 32) as usize) % workers
}

/// What becomes of the frames a worker holds under one key ([`Pipeline::take_released`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Their first fragment came: put each through [`Pipeline::packet`] again, in the order
    /// they were held.
    Retry,
    /// Drop each, counted for this reason.
    Drop(DropReason),
}

/// The frames a worker holds for its pipeline ([`Verdict::Hold`]), in the order they came: at
/// most [`HOLD_MAX`], room for them allocated once. The pipeline decides what becomes of them
/// ([`Pipeline::take_released`]); this only keeps them.
pub struct Held<T> {
    frames: Vec<(FragmentKey, usize, T)>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held {
            frames: Vec::with_capacity(HOLD_MAX),
        }
    }
}

impl<T> Held<T> {
    /// Keeps `frame`, received on port `in_port`, under `key`; gives it back when
    /// [`HOLD_MAX`] frames are held already (the pipeline never asks for more).
    pub fn hold(&mut self, key: FragmentKey, in_port: usize, frame: T) -> Result<(), T> {
        if self.frames.len() >= HOLD_MAX {
            return Err(frame);
        }
        self.frames.push((key, in_port, frame));
        Ok(())
    }

    /// Moves the frames held under `key` to `out`, each with the port it came in on, in the
    /// order they came.
    pub fn take(&mut self, key: FragmentKey, out: &mut Vec<(usize, T)>) {
        let mut i = 0;
        while let Some((k, _, _)) = self.frames.get(i) {
            if *k == key {
                let (_, port, frame) = self.frames.remove(i);
                out.push((port, frame));
            } else {
                i += 1;
            }
        }
    }

    /// Every frame still held, in the order they came (the worker stopping).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.frames.drain(..).map(|(_, _, frame)| frame)
    }

    /// Number of frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// One worker's fragment state: the datagrams it follows and the frames it holds.
pub(super) struct Fragments {
    table: Table,
    /// Datagrams with held fragments whose first has not come: at most [`HOLD_MAX`], since
    /// each holds one frame or more.
    waiting: Vec<Waiting>,
    /// Frames the worker holds, for `waiting` and for `released` not yet taken.
    held: usize,
    /// What becomes of held frames, for the worker to take, with how many there are.
    released: VecDeque<(FragmentKey, Released, usize)>,
}

/// A datagram with held fragments whose first fragment has not come.
struct Waiting {
    key: FragmentKey,
    /// When its first fragment was held.
    since_ms: u64,
    held: usize,
}

impl Fragments {
    pub(super) fn new() -> Fragments {
        Fragments {
            table: Table::new(),
            waiting: Vec::with_capacity(HOLD_MAX),
            held: 0,
            released: VecDeque::with_capacity(HOLD_MAX),
        }
    }

    /// Timer work: forgets datagrams older than [`ENTRY_MS`], gives up on held fragments older
    /// than [`HOLD_MS`] (`frag_no_first`).
    pub(super) fn expire(&mut self, now_ms: u64) {
        self.table.expire(now_ms);
        let Fragments {
            waiting, released, ..
        } = self;
        waiting.retain(|w| {
            let late = now_ms >= w.since_ms.saturating_add(HOLD_MS);
            if late {
                released.push_back((w.key, Released::Drop(DropReason::FragNoFirst), w.held));
            }
            !late
        });
    }

    /// Whether held frames wait for the worker to take them ([`Fragments::take_released`]).
    #[inline]
    pub(super) fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// The next key whose held frames the worker is to put through the pipeline again or drop.
    pub(super) fn take_released(&mut self) -> Option<(FragmentKey, Released)> {
        let (key, release, frames) = self.released.pop_front()?;
        self.held = self.held.saturating_sub(frames);
        Some((key, release))
    }

    /// Holds a later fragment of `key`, or drops it if the worker holds all it may.
    fn hold(&mut self, key: FragmentKey, now_ms: u64) -> Verdict {
        if self.held >= HOLD_MAX {
            return Verdict::Drop(DropReason::FragHoldFull);
        }
        match self.waiting.iter_mut().find(|w| w.key == key) {
            Some(w) => w.held += 1,
            None => self.waiting.push(Waiting {
                key,
                since_ms: now_ms,
                held: 1,
            }),
        }
        self.held += 1;
        Verdict::Hold(key)
    }

    /// Makes the entry of `key` and lets the fragments held for it go through the pipeline
    /// again, which finds it; or, when the table is full, drops them. False when the table is
    /// full.
    fn record(&mut self, key: FragmentKey, entry: Entry, now_ms: u64) -> bool {
        let made = self.table.insert(key, entry, now_ms);
        let release = if made {
            Released::Retry
        } else {
            Released::Drop(DropReason::FragTableFull)
        };
        self.settle(key, release);
        made
    }

    /// The first fragment of `key` came: its held fragments, if any, are released.
    fn settle(&mut self, key: FragmentKey, release: Released) {
        if let Some(i) = self.waiting.iter().position(|w| w.key == key) {
            let w = self.waiting.remove(i);
            self.released.push_back((key, release, w.held));
        }
    }
}

/// What a worker remembers of a datagram whose first fragment it saw.
struct Entry {
    /// When the first fragment came.
    born_ms: u64,
    /// Which insertion made it (to match it with its expiry record).
    serial: u64,
    /// The first fragment's ports: the same again is a duplicate, others a new datagram.
    ports: (u16, u16),
    /// Where the first fragment's TCP or UDP header ends, in the datagram's payload: no later
    /// fragment may start before.
    l4_end: u32,
    /// Payload bytes seen so far, and the datagram's payload length once its last fragment
    /// came (0 before).
    seen: u32,
    total: u32,
    fate: Fate,
}

/// What becomes of a datagram's later fragments.
enum Fate {
    /// On its fragment owner: hand them to this worker, which owns the flow.
    Route(usize),
    /// Forward them with these addresses, to `out`, adding their bytes to the counters of
    /// `real` in direction `dir` (the connection's).
    Forward {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        out: Out,
        real: Arc<Real>,
        dir: Dir,
    },
    /// Drop them, for the first fragment's reason.
    Refused(DropReason),
}

impl Entry {
    fn new(ports: (u16, u16), l4_end: u32, first_len: u32, fate: Fate) -> Entry {
        Entry {
            born_ms: 0,
            serial: 0,
            ports,
            l4_end,
            seen: first_len,
            total: 0,
            fate,
        }
    }
}

/// The datagrams one worker follows: at most [`TABLE_MAX`], each at most [`ENTRY_MS`]. The
/// map and the queue of expiry records are allocated once.
struct Table {
    entries: HashMap<FragmentKey, Entry, ahash::RandomState>,
    /// (key, serial, born) in the order the entries were made, so the oldest is in front. A
    /// record whose entry went early (complete, replaced) stays until it comes to the front or
    /// the queue is compacted.
    order: VecDeque<(FragmentKey, u64, u64)>,
    serial: u64,
}

impl Table {
    fn new() -> Table {
        Table {
            entries: HashMap::with_capacity_and_hasher(TABLE_MAX, ahash::RandomState::new()),
            order: VecDeque::with_capacity(2 * TABLE_MAX),
            serial: 0,
        }
    }

    /// The entry of `key`, if it is not older than [`ENTRY_MS`].
    fn get_mut(&mut self, key: &FragmentKey, now_ms: u64) -> Option<&mut Entry> {
        let born = self.entries.get(key)?.born_ms;
        if now_ms >= born.saturating_add(ENTRY_MS) {
            self.entries.remove(key);
            return None;
        }
        self.entries.get_mut(key)
    }

    /// Forgets the entries older than [`ENTRY_MS`].
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(key, serial, born)) = self.order.front() {
            if now_ms < born.saturating_add(ENTRY_MS) {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|e| e.serial == serial) {
                self.entries.remove(&key);
            }
        }
    }

    /// Whether an entry for `key` may be made at `now_ms`.
    fn has_room(&mut self, key: &FragmentKey, now_ms: u64) -> bool {
        self.expire(now_ms);
        self.entries.len() < TABLE_MAX || self.entries.contains_key(key)
    }

    /// Makes the entry of `key`, replacing one there may be; false (nothing changed) when
    /// [`TABLE_MAX`] other datagrams are followed.
    fn insert(&mut self, key: FragmentKey, mut entry: Entry, now_ms: u64) -> bool {
        if !self.has_room(&key, now_ms) {
            return false;
        }
        if self.order.len() >= 2 * TABLE_MAX {
            // Only the records of live entries stay: at most TABLE_MAX, so this runs at most
            // once per TABLE_MAX insertions.
            let entries = &self.entries;
            self.order
                .retain(|(k, serial, _)| entries.get(k).is_some_and(|e| e.serial == *serial));
        }
        self.serial += 1;
        entry.serial = self.serial;
        entry.born_ms = now_ms;
        self.order.push_back((key, self.serial, now_ms));
        self.entries.insert(key, entry);
        true
    }

    fn remove(&mut self, key: &FragmentKey) {
        self.entries.remove(key);
    }
}

/// [`super::classify`] for an IPv4 fragment (its header otherwise valid): a TCP or UDP
/// fragment for this stage, or a drop. Out of line: rare.
#[inline(never)]
pub(super) fn classify(snapshot: &Snapshot, port: &PortView, ip: &ipv4::Packet<&[u8]>) -> Class {
    if snapshot.is_martian_source(ip.src_addr()) {
        return Class::Drop(DropReason::MartianSource);
    }
    let owned = snapshot.owned(ip.dst_addr());
    match (owned, ip.protocol()) {
        // The host's own addresses (a DIP, an address the kernel twin holds that no service
        // uses) are the kernel's, which reassembles: their fragments go to the twin.
        (Some(Owned::Host), protocol) if port.twin => Class::Punt(match protocol {
            Protocol::Tcp => PuntReason::LocalTcp,
            Protocol::Udp => PuntReason::LocalUdp,
            Protocol::Icmp => PuntReason::LocalIcmp,
            _ => PuntReason::OtherProto,
        }),
        (Some(Owned::Host), _) => Class::Drop(DropReason::Fragment),
        (None, _) if snapshot.is_unheld_vip(ip.dst_addr()) => Class::Drop(DropReason::VipNotOwned),
        (_, Protocol::Tcp | Protocol::Udp) => Class::Fragment {
            local: owned.is_some(),
            handed: false,
        },
        _ => Class::Drop(DropReason::Fragment),
    }
}

/// What the stage reads of a fragment whose IPv4 header was validated.
struct Piece {
    key: FragmentKey,
    /// Where its payload goes in the datagram's payload, in bytes.
    offset: u32,
    /// Its payload length.
    len: u32,
    /// More fragments follow (MF).
    more: bool,
}

impl Piece {
    fn read(frame: &[u8]) -> Option<Piece> {
        let ip = ipv4::Packet::new_checked(frame.get(ether::HEADER_LEN..)?).ok()?;
        let header_len = u32::try_from(ip.header_len()).ok()?;
        Some(Piece {
            key: FragmentKey {
                src: ip.src_addr(),
                dst: ip.dst_addr(),
                ident: ip.ident(),
                protocol: u8::from(ip.protocol()),
            },
            offset: u32::from(ip.frag_offset()) * 8,
            len: u32::from(ip.total_len()).saturating_sub(header_len),
            more: ip.more_frags(),
        })
    }
}

/// What the fragment stage leaves to the walk ([`Pipeline::packet_parsed`]).
pub(super) enum Step {
    /// A later fragment rewritten, for the egress stage.
    Send(Out),
    /// Decided.
    Done(Verdict),
}

/// The fragment stage, for `frame` ([`Class::Fragment`], to an owned address when `local`,
/// handed over by another worker when `handed`), received on `in_port`.
///
/// It reuses the walk rather than calling the forwarding and egress stages itself: a first
/// fragment goes through [`Pipeline::packet_parsed`] as the TCP or UDP packet it is, a later
/// one back to it for the egress stage ([`Step::Send`]). So those stages keep their one
/// caller each, which is what lets the compiler inline them into the per-packet path.
#[inline(never)]
pub(super) fn forward<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    local: bool,
    now_ms: u64,
    handed: bool,
) -> Step {
    // Ethernet padding goes, as for any packet (`trim_to`).
    super::trim_to_ipv4(frame);
    let Some(piece) = Piece::read(frame.data()) else {
        return Step::Done(Verdict::Drop(DropReason::Truncated));
    };
    let fragment_owner = owner(&piece.key, p.workers);
    // Handed over to a worker that is not its fragment owner, a fragment comes from its
    // fragment owner, which found that this worker owns the flow.
    let routes = fragment_owner == p.worker;
    if !routes && !handed {
        return Step::Done(Verdict::Redirect {
            worker: fragment_owner,
        });
    }
    if piece.offset == 0 {
        Step::Done(first(
            p, snapshot, in_port, frame, &piece, local, now_ms, routes,
        ))
    } else {
        later(p, frame, &piece, now_ms, routes)
    }
}

/// A first fragment: hand it to the flow's owner (from its fragment owner, when `routes`), or
/// forward it as any packet of its connection and remember what became of it.
#[allow(clippy::too_many_arguments)]
fn first<F: Frame>(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    in_port: usize,
    frame: &mut F,
    piece: &Piece,
    local: bool,
    now_ms: u64,
    routes: bool,
) -> Verdict {
    let (flow, l4_end) = match first_flow(frame.data()) {
        Ok(parsed) => parsed,
        Err(reason) => {
            // The later fragments follow it, dropped.
            let entry = Entry::new((0, 0), 0, piece.len, Fate::Refused(reason));
            p.fragments.record(piece.key, entry, now_ms);
            return Verdict::Drop(reason);
        }
    };
    let ports = (flow.src.port(), flow.dst.port());
    if p.fragments
        .table
        .get_mut(&piece.key, now_ms)
        .is_some_and(|e| e.ports == ports)
    {
        return Verdict::Drop(DropReason::FragDuplicate);
    }
    // Only the fragment owner hands a first fragment on: one sent here by it stays (were the
    // flow another's after all, the forwarding stage would say so: refused below), so
    // nothing is handed on twice.
    let (owning, _) = forward::flow_owner(snapshot, &flow, local, p.workers);
    if routes && owning != p.worker {
        // The fragment owner's part: the flow's owner forwards it and what follows.
        let entry = Entry::new(ports, l4_end, piece.len, Fate::Route(owning));
        if !p.fragments.record(piece.key, entry, now_ms) {
            return Verdict::Drop(DropReason::FragTableFull);
        }
        return Verdict::Redirect { worker: owning };
    }
    // Room first: a refused datagram changes no connection.
    if !p.fragments.table.has_room(&piece.key, now_ms) {
        p.fragments
            .settle(piece.key, Released::Drop(DropReason::FragTableFull));
        return Verdict::Drop(DropReason::FragTableFull);
    }
    let verdict = if hands_client_on(snapshot, &flow, local) {
        Verdict::Drop(DropReason::Fragment)
    } else {
        let parsed = Parsed {
            class: Class::L4 { flow, local },
            probe: None,
            hit: None,
        };
        match p.packet_parsed(snapshot, in_port, frame, now_ms, &parsed) {
            Verdict::Redirect { .. } => Verdict::Drop(DropReason::RedirectFull),
            verdict => verdict,
        }
    };
    let fate = match verdict {
        Verdict::Drop(reason) => Fate::Refused(reason),
        _ => forwarded(p, &flow),
    };
    // Cannot fail: there was room, and nothing was added since.
    p.fragments.record(
        piece.key,
        Entry::new(ports, l4_end, piece.len, fate),
        now_ms,
    );
    verdict
}

/// A later fragment: as its first fragment went, or held until that comes (by the fragment
/// owner; a flow's owner always has the first fragment before, unless it was lost on the way).
fn later<F: Frame>(
    p: &mut Pipeline,
    frame: &mut F,
    piece: &Piece,
    now_ms: u64,
    routes: bool,
) -> Step {
    let worker = p.worker;
    let Some(entry) = p.fragments.table.get_mut(&piece.key, now_ms) else {
        return Step::Done(if routes {
            p.fragments.hold(piece.key, now_ms)
        } else {
            Verdict::Drop(DropReason::FragNoFirst)
        });
    };
    if piece.offset < entry.l4_end {
        return Step::Done(Verdict::Drop(DropReason::Fragment));
    }
    entry.seen = entry.seen.saturating_add(piece.len);
    if !piece.more {
        entry.total = piece.offset.saturating_add(piece.len);
    }
    let complete = entry.total != 0 && entry.seen >= entry.total;
    let step = match &entry.fate {
        Fate::Route(owner) => Step::Done(Verdict::Redirect { worker: *owner }),
        Fate::Refused(reason) => Step::Done(Verdict::Drop(*reason)),
        Fate::Forward {
            src,
            dst,
            out,
            real,
            dir,
        } => match xmit::readdress_fragment(frame.data_mut(), *src, *dst) {
            Ok(()) => {
                count_bytes(real, *dir, worker, u64::from(piece.len));
                Step::Send(*out)
            }
            // No ICMP error about a later fragment (a TTL that ran out included).
            Err(reason) => Step::Done(Verdict::Drop(reason)),
        },
    };
    if complete {
        p.fragments.table.remove(&piece.key);
    }
    step
}

/// Adds `bytes` of a later fragment to its connection's real server and service, on worker
/// `worker`, in direction `dir`.
fn count_bytes(real: &Real, dir: Dir, worker: usize, bytes: u64) {
    match dir {
        Dir::In => {
            real.traffic.inbound_bytes(worker, bytes);
            real.service_traffic.inbound_bytes(worker, bytes);
        }
        Dir::Out => {
            real.traffic.outbound_bytes(worker, bytes);
            real.service_traffic.outbound_bytes(worker, bytes);
        }
    }
}

/// What the later fragments of a datagram get whose first fragment `flow` its connection
/// forwarded: the addresses the connection's method writes in that direction and the way it
/// leaves (what `forward::inbound` and `forward::outbound` chose for the first), and the
/// connection's counters for their bytes. Refused (`no_conn`) if the connection is gone.
fn forwarded(p: &Pipeline, flow: &Flow) -> Fate {
    let Some((hit, c)) = p
        .conns
        .lookup(&flow.key())
        .and_then(|hit| Some((hit, p.conns.get(hit.id)?)))
    else {
        return Fate::Refused(DropReason::NoConn);
    };
    let (src, dst, rip) = (*flow.src.ip(), *flow.dst.ip(), *c.real().ip());
    let (src, dst, out) = match (hit.dir, c.fwd(), c.local()) {
        (Dir::In, Some(Fwd::Nat), _) => (src, rip, Out::Real(rip)),
        (Dir::In, Some(Fwd::Dr), _) => (src, dst, Out::Direct(rip)),
        (Dir::In, Some(Fwd::Tun), _) => (src, dst, Out::Tunnel(rip, forward::encap_of(c))),
        (Dir::In, Some(Fwd::FullNat), Some(local)) => (*local.ip(), rip, Out::Real(rip)),
        (Dir::Out, Some(Fwd::Nat | Fwd::FullNat), _) => {
            let client = *c.client().ip();
            (*c.virt().ip(), client, Out::Route(client))
        }
        _ => return Fate::Refused(DropReason::NoConn),
    };
    Fate::Forward {
        src,
        dst,
        out,
        real: Arc::clone(c.dest()),
        dir: hit.dir,
    }
}

/// Whether `flow` goes to a FULLNAT service that hands the client's address on in the TCP
/// stream (TOA, on by default, or PROXY): what it inserts into a first fragment would shift
/// every later one.
fn hands_client_on(snapshot: &Snapshot, flow: &Flow, local: bool) -> bool {
    // The service a new connection would be scheduled for (`schedule::new_conn`).
    let any_port = SocketAddrV4::new(*flow.dst.ip(), 0);
    local
        && flow.proto == conf::Proto::Tcp
        && snapshot
            .service(flow.proto, flow.dst.into())
            .or_else(|| snapshot.service(flow.proto, any_port.into()))
            .is_some_and(|s| {
                !s.laddrs.is_empty() && (s.toa.is_some() || s.proxy_protocol.is_some())
            })
}

/// The flow of a first fragment (validated IPv4 header, offset 0, MF set) and where its TCP or
/// UDP header ends in the payload.
///
/// # Errors
/// [`DropReason::Fragment`] for a fragment too short for the TCP or UDP header (RFC 1858:
/// the header would need reassembling) or of another protocol; [`DropReason::BadL4Header`]
/// for a TCP data offset below 5.
fn first_flow(data: &[u8]) -> Result<(Flow, u32), DropReason> {
    let ip = data
        .get(ether::HEADER_LEN..)
        .map(ipv4::Packet::new_unchecked)
        .ok_or(DropReason::Truncated)?;
    let segment = ip.payload();
    let at = xmit::Headers {
        protocol: ip.protocol(),
        l4: ether::HEADER_LEN + ip.header_len(),
        end: ether::HEADER_LEN + usize::from(ip.total_len()),
    };
    let (proto, sport, dport, flags, l4_len) = match at.protocol {
        Protocol::Tcp => {
            let t = segment
                .first_chunk::<{ tcp::HEADER_LEN }>()
                .map(tcp::Packet::new_unchecked)
                .ok_or(DropReason::Fragment)?;
            let header_len = t.header_len();
            if header_len < tcp::HEADER_LEN {
                return Err(DropReason::BadL4Header);
            }
            if header_len > segment.len() {
                return Err(DropReason::Fragment);
            }
            (
                conf::Proto::Tcp,
                t.src_port(),
                t.dst_port(),
                t.flags(),
                header_len,
            )
        }
        Protocol::Udp => {
            // Its length field counts the whole datagram, more than this fragment holds.
            let u = segment
                .first_chunk::<{ udp::HEADER_LEN }>()
                .map(udp::Packet::new_unchecked)
                .ok_or(DropReason::Fragment)?;
            let flags = tcp::Flags::default();
            (
                conf::Proto::Udp,
                u.src_port(),
                u.dst_port(),
                flags,
                udp::HEADER_LEN,
            )
        }
        _ => return Err(DropReason::Fragment),
    };
    let flow = Flow {
        proto,
        src: SocketAddrV4::new(ip.src_addr(), sport),
        dst: SocketAddrV4::new(ip.dst_addr(), dport),
        flags,
        ip_len: ip.total_len(),
        at,
    };
    // A TCP header is at most 60 bytes.
    Ok((flow, u32::try_from(l4_len).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> FragmentKey {
        FragmentKey {
            src: Ipv4Addr::new(198, 51, 100, 7),
            dst: Ipv4Addr::new(10, 0, 0, 100),
            ident: n as u16,
            protocol: (17 + (n >> 16)) as u8,
        }
    }

    fn entry() -> Entry {
        Entry::new((1, 2), 8, 1480, Fate::Refused(DropReason::NoConn))
    }

    #[test]
    fn datagrams_forgotten_early_never_grow_the_expiry_queue() {
        let mut table = Table::new();
        let capacity = table.order.capacity();
        // One datagram stays (and blocks the front of the queue); many come and go.
        assert!(table.insert(key(0), entry(), 0));
        for n in 1..20 * TABLE_MAX {
            assert!(table.insert(key(n), entry(), 0), "datagram {n}");
            table.remove(&key(n));
            assert!(table.order.len() <= 2 * TABLE_MAX);
        }
        assert_eq!(table.order.capacity(), capacity, "never reallocated");
        assert_eq!(table.entries.len(), 1);
        assert!(table.get_mut(&key(0), ENTRY_MS - 1).is_some());
    }

    #[test]
    fn a_full_table_refuses_until_its_entries_age_out() {
        let mut table = Table::new();
        for n in 0..TABLE_MAX {
            assert!(table.insert(key(n), entry(), n as u64 % 10));
        }
        assert!(!table.insert(key(TABLE_MAX), entry(), 10), "full");
        assert!(
            table.insert(key(5), entry(), 10),
            "the same key is replaced"
        );
        assert_eq!(table.entries.len(), TABLE_MAX);
        // Entries made at 0 ms are gone at ENTRY_MS (key 5 was made again at 10 ms).
        assert!(table.insert(key(TABLE_MAX), entry(), ENTRY_MS));
        assert!(table.get_mut(&key(10), ENTRY_MS).is_none());
        assert!(table.get_mut(&key(5), ENTRY_MS).is_some());
        assert!(table.get_mut(&key(5), ENTRY_MS + 10).is_none());
    }

    #[test]
    fn held_frames_come_back_by_key_in_order_and_are_bounded() {
        let mut held = Held::default();
        for n in 0..HOLD_MAX {
            assert_eq!(held.hold(key(n % 3), n, n), Ok(()));
        }
        assert_eq!(held.hold(key(0), 0, 999), Err(999));
        let mut out = Vec::new();
        held.take(key(1), &mut out);
        let ones: Vec<(usize, usize)> = (0..HOLD_MAX)
            .filter(|n| n % 3 == 1)
            .map(|n| (n, n))
            .collect();
        assert_eq!(out, ones);
        assert_eq!(held.len(), HOLD_MAX - ones.len());
        let rest: Vec<usize> = held.drain().collect();
        assert_eq!(
            rest,
            (0..HOLD_MAX).filter(|n| n % 3 != 1).collect::<Vec<_>>()
        );
        assert!(held.is_empty());
    }

    #[test]
    fn held_fragments_wait_at_most_hold_ms_and_the_count_is_bounded() {
        let mut f = Fragments::new();
        assert_eq!(f.hold(key(1), 0), Verdict::Hold(key(1)));
        assert_eq!(f.hold(key(1), 50), Verdict::Hold(key(1)));
        for n in 2..HOLD_MAX {
            assert_eq!(f.hold(key(n), 60), Verdict::Hold(key(n)));
        }
        assert_eq!(f.hold(key(0), 60), Verdict::Drop(DropReason::FragHoldFull));
        f.expire(HOLD_MS - 1);
        assert!(!f.has_released());
        // Key 1's two frames go together, from the first held.
        f.expire(HOLD_MS);
        assert_eq!(
            f.take_released(),
            Some((key(1), Released::Drop(DropReason::FragNoFirst)))
        );
        assert_eq!(f.take_released(), None);
        assert_eq!(f.held, HOLD_MAX - 2);
        // A first fragment releases its own.
        assert!(f.record(key(2), entry(), 70));
        assert_eq!(f.take_released(), Some((key(2), Released::Retry)));
        assert_eq!(f.held, HOLD_MAX - 3);
        assert_eq!(f.hold(key(0), 70), Verdict::Hold(key(0)));
    }
}
