//! The per-worker connection table: slab, two-direction index, expiry, templates.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use ahash::RandomState;
use conf::Proto;

use super::family::{ipv6_prefix_mask, Family};
use super::index::Index;
use super::seq::TcpSeq;
use super::state::{
    tcp_next, Counter, Dir, Move, State, TcpTable, Timeouts, Transition, NEW_CONN_TIMEOUT,
};
use super::wheel::Wheel;
use crate::wire::tcp::Flags;

/// Largest capacity: slab indices and a direction bit share the `u32` map values.
pub const MAX_CAPACITY: u32 = conf::MAX_CONN_TABLE_SIZE;

/// Out keys of new connections held back from the index to be inserted together: see
/// [`Table::add`].
const PENDING: usize = 4;

/// "No entry" in `Conn::control`.
const NIL: u32 = u32::MAX;

/// `Conn::flags`: the connection has not seen an OUTPUT packet and its forwarding method
/// hides the replies (`IP_VS_CONN_F_NOOUTPUT`): INPUT_ONLY is its input table.
const NO_OUTPUT: u8 = 1;
/// `Conn::flags`: a template taken out of the index (its real server became unusable);
/// still alive for the connections it controls.
const UNHASHED: u8 = 2;
/// `Conn::flags`: a template past its expiry kept for the connections it controls; on no
/// wheel list until the last of them goes.
const PARKED: u8 = 4;

/// `Conn::flags`, bits 4-7: the state the connection had when a sync master last sent it
/// (the kernel's `cp->old_state`): a change from it into a closing state is sent at once.
const SYNCED_SHIFT: u8 = 4;
const SYNCED_MASK: u8 = 0xf0;

/// Milliseconds of a timeout in seconds.
const fn ms(secs: u32) -> u64 {
    secs as u64 * 1000
}

/// A flow as one packet shows it on the wire: protocol, source and destination, of family
/// `A` ([`Ipv4Addr`] or [`Ipv6Addr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey<A = Ipv4Addr> {
    /// L4 protocol.
    pub proto: Proto,
    /// Source address.
    pub src: A,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: A,
    /// Destination port.
    pub dport: u16,
}

impl<A: Family> FlowKey<A> {
    /// The key of a packet from `src` to `dst`.
    pub fn new(proto: Proto, src: A::Sock, dst: A::Sock) -> FlowKey<A> {
        A::key(proto, src, dst)
    }

    /// The key of the packets going the other way (for the header embedded in an ICMP
    /// error, which shows the flow in reverse).
    pub const fn reversed(&self) -> FlowKey<A> {
        FlowKey {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }

    /// The key of a persistence template (spec §3): `(proto, client & netmask, 0, vip,
    /// vport)`; pass `virt` with port 0 for a port-zero (all ports) or FTP service. An IPv6
    /// service's netmask is a prefix length: [`FlowKey::template_prefix`].
    pub fn template(proto: Proto, client: A, netmask: A, virt: A::Sock) -> FlowKey<A> {
        FlowKey {
            proto,
            src: client.mask(netmask),
            sport: 0,
            dst: A::ip(&virt),
            dport: A::port(&virt),
        }
    }

    /// What the index hashes.
    fn pack(&self) -> A::Packed {
        A::pack(
            self.proto.number(),
            self.src,
            self.sport,
            self.dst,
            self.dport,
        )
    }
}

impl FlowKey<Ipv4Addr> {
    /// The key as an IPv6 table holds it: both addresses mapped (`::ffff:a.b.c.d`). A NAT64
    /// FULLNAT connection (IPv6 client and VIP, IPv4 real server and local address) lives in
    /// the IPv6 table with its real server's replies indexed so: see the module
    /// documentation and [`Table::lookup_mapped`].
    pub const fn to_ipv6_mapped(&self) -> FlowKey<Ipv6Addr> {
        FlowKey {
            proto: self.proto,
            src: self.src.to_ipv6_mapped(),
            sport: self.sport,
            dst: self.dst.to_ipv6_mapped(),
            dport: self.dport,
        }
    }
}

impl FlowKey<Ipv6Addr> {
    /// [`FlowKey::template`] for an IPv6 service, whose netmask is a prefix length
    /// (`ipvsadm -M 64`; the kernel's `ipv6_addr_prefix(.., svc->netmask)`): the client's
    /// first `prefix_len` bits (0: every client shares one template; 128 or more: the
    /// whole address).
    pub fn template_prefix(
        proto: Proto,
        client: Ipv6Addr,
        prefix_len: u8,
        virt: SocketAddrV6,
    ) -> FlowKey<Ipv6Addr> {
        FlowKey::template(proto, client, ipv6_prefix_mask(prefix_len), virt)
    }
}

/// Forwarding method of a connection: what the data path does with its packets, and
/// whether the replies pass the balancer.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fwd {
    /// Masquerading: the replies come back through the balancer (indexed "out" key).
    Nat,
    /// Direct routing: the replies bypass the balancer (no "out" key, NOOUTPUT).
    Dr,
    /// IP-in-IP tunnel: the replies bypass the balancer (no "out" key, NOOUTPUT).
    Tun,
    /// Full NAT: both addresses rewritten; the replies come back to a local address of the
    /// balancer (indexed "out" key RIP:rport → LIP:lport).
    FullNat,
}

impl From<conf::Mode> for Fwd {
    fn from(mode: conf::Mode) -> Fwd {
        match mode {
            conf::Mode::Nat => Fwd::Nat,
            conf::Mode::Dr => Fwd::Dr,
            conf::Mode::Tun => Fwd::Tun,
            conf::Mode::FullNat => Fwd::FullNat,
        }
    }
}

impl Fwd {
    /// Whether the real server's replies pass the balancer.
    pub const fn sees_replies(self) -> bool {
        matches!(self, Fwd::Nat | Fwd::FullNat)
    }
}

/// What an entry is: a connection with its forwarding method, or a template.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Nat,
    Dr,
    Tun,
    FullNat,
    Template,
}

/// Handle of an entry: valid from its insertion until it is removed (by [`Table::remove`]
/// or handed out by [`Table::expire`]); a stale handle may name a newer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u32);

/// A lookup that found a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hit {
    /// The connection.
    pub id: ConnId,
    /// Which of its keys matched: [`Dir::In`] for client → VIP, [`Dir::Out`] for the real
    /// server's reply.
    pub dir: Dir,
}

/// The hash of a key whose index bucket is being loaded: from [`Table::probe`], for
/// [`Table::candidate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe(u64);

/// A new connection, as the scheduler decided it. In an IPv6 table, a real server or local
/// address of IPv4 (NAT64, or a TUN real server of the other family) is given mapped
/// (`::ffff:a.b.c.d`, [`Ipv4Addr::to_ipv6_mapped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConn<D, A: Family = Ipv4Addr> {
    /// L4 protocol.
    pub proto: Proto,
    /// Client address and port (the packet's source).
    pub client: A::Sock,
    /// Virtual address and port (the packet's destination).
    pub virt: A::Sock,
    /// Real server address and port (the port may differ from the virtual one only in NAT).
    pub real: A::Sock,
    /// Forwarding method.
    pub fwd: Fwd,
    /// FULLNAT: the local address and port the connection uses towards the real server.
    pub local: Option<A::Sock>,
    /// The real server's handle, handed back on lookup and removal.
    pub dest: D,
}

/// A new persistence template (spec §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplate<D, A: Family = Ipv4Addr> {
    /// Its key, from [`FlowKey::template`].
    pub key: FlowKey<A>,
    /// The real server address and port (port 0 for a port-zero service's template).
    pub real: A::Sock,
    /// The service's persistence timeout in seconds (`-p`).
    pub timeout: u32,
    /// The real server's handle.
    pub dest: D,
}

/// When a sync master sends a connection (the kernel's sysctls `net.ipv4.vs.sync_threshold`
/// and `sync_period`; `sync_refresh_period` is 0, its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRules {
    /// Send at this inbound packet (default 3)...
    pub threshold: u32,
    /// ... and every `period` packets after it (default 50; 0 = only once).
    pub period: u32,
}

impl Default for SyncRules {
    fn default() -> SyncRules {
        SyncRules {
            threshold: 3,
            period: 50,
        }
    }
}

/// A connection a sync message describes, to install on a backup
/// ([`Table::install_synced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedConn<D, A: Family = Ipv4Addr> {
    /// The connection as a scheduler would have made it.
    pub new: NewConn<D, A>,
    /// Its state on the master.
    pub state: State,
    /// Its timeout in seconds on the master (0: the state's timeout here).
    pub timeout: u32,
    /// FULLNAT: the sequence translation.
    pub seq: TcpSeq,
}

/// An insertion refused because every entry is in use; carries the handle back. Nothing in
/// the table changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFull<D>(pub D);

/// An entry that left the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed<D, A: Family = Ipv4Addr> {
    /// Its real server's handle.
    pub dest: D,
    /// Its state when it left.
    pub state: State,
    /// The real server counter to decrement (`ip_vs_unbind_dest`).
    pub counter: Counter,
    /// FULLNAT: the local address and port it used, to return to the pool.
    pub local: Option<A::Sock>,
}

/// The outcome of one [`Table::expire`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sweep {
    /// Entries removed (and handed to the visitor).
    pub removed: usize,
    /// Whether everything due at `now` has been dealt with; when false the budget ran out.
    pub done: bool,
}

/// Why a table could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// More than [`MAX_CAPACITY`] entries asked for.
    TooLarge(u32),
    /// The allocation failed.
    OutOfMemory,
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::TooLarge(n) => {
                write!(f, "connection table of {n} entries exceeds {MAX_CAPACITY}")
            }
            TableError::OutOfMemory => f.write_str("out of memory for the connection table"),
        }
    }
}

impl std::error::Error for TableError {}

/// How to build a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Entries (connections and templates), allocated up front (`conn_table_size`).
    pub capacity: u32,
    /// Per-state timeouts.
    pub timeouts: Timeouts,
    /// The `conn_reuse_mode` sysctl: 0 never reschedules a reused client port; bit 0 (the
    /// kernel default, 1) reschedules a SYN that hits an uncontrolled TCP connection in
    /// TIME_WAIT or CLOSE; bit 1 also in FIN_WAIT when the connection has never seen a reply
    /// (DR/TUN).
    pub conn_reuse_mode: u8,
}

impl Config {
    /// `capacity` entries with the kernel's default timeouts and `conn_reuse_mode` 1.
    pub fn new(capacity: u32) -> Config {
        Config {
            capacity,
            timeouts: Timeouts::default(),
            conn_reuse_mode: 1,
        }
    }
}

/// One entry: a connection or a persistence template, of family `A`.
///
/// IPv4: one cache line, aligned to one, so that a lookup and the established path touch
/// one line per connection (56 bytes used when `D` is 8 bytes; FULLNAT's sequence state
/// lives apart: see the module documentation).
///
/// IPv6: two lines (104 bytes used), aligned to 64, both prefetched by the staged lookup.
/// The fields are in a fixed order (`repr(C)`) that puts the in key (protocol, client and
/// virtual address and port), kind, state, flags, expiry, timeout, template link and `D`
/// in the first line: what a client packet's lookup compares and its state transition
/// reads and writes. The second holds the count, the real server's and the local address
/// (the forwarding rewrite and the out key).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Conn<D, A = Ipv4Addr> {
    /// Expiry in ms, on the caller's clock.
    expires: u64,
    dest: D,
    /// Client address (templates: client & netmask).
    caddr: A,
    /// Virtual address.
    vaddr: A,
    cport: u16,
    vport: u16,
    proto: Proto,
    kind: Kind,
    state: State,
    flags: u8,
    /// Current timeout in seconds (`cp->timeout`): the state's, or a template's persistence.
    timeout: u32,
    /// Index of the template controlling this connection, or [`NIL`].
    control: u32,
    /// Templates: the number of connections they control (`n_control`). Connections: their
    /// inbound packets while a sync master runs (`in_pkts`, see [`Table::sync_due`]). One
    /// field for both keeps room in the line.
    count: u32,
    dport: u16,
    /// FULLNAT: local port. Here rather than with the sequence state: the out key of a
    /// FULLNAT reply is compared against it on every lookup.
    lport: u16,
    /// Real server address (IPv6 table: an IPv4 one mapped).
    daddr: A,
    /// FULLNAT: local address (IPv6 table: an IPv4 one mapped, NAT64).
    laddr: A,
}

// The layouts described above, with the 8-byte handle the pipeline uses (`Arc`): IPv4 in
// one line, IPv6 in two with the in key, kind, state, flags, expiry, timeout, template link
// and handle in the first. `None` (a free entry) costs nothing (niches in the handle and
// the enums).
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    type V4 = Conn<std::sync::Arc<()>, Ipv4Addr>;
    type V6 = Conn<std::sync::Arc<()>, Ipv6Addr>;
    assert!(size_of::<Option<V4>>() == 64 && align_of::<V4>() == 64);
    assert!(size_of::<Option<V6>>() == 128 && align_of::<V6>() == 64);
    assert!(offset_of!(V6, control) + size_of::<u32>() == 64);
    assert!(offset_of!(V6, count) == 64);
};

impl<D, A: Family> Conn<D, A> {
    /// L4 protocol.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Client address and port (templates: the client network, port 0).
    pub fn client(&self) -> A::Sock {
        A::sock(self.caddr, self.cport)
    }

    /// Virtual address and port.
    pub fn virt(&self) -> A::Sock {
        A::sock(self.vaddr, self.vport)
    }

    /// Real server address and port: the destination of NAT's rewrite, DR's next hop, TUN's
    /// outer destination.
    pub fn real(&self) -> A::Sock {
        A::sock(self.daddr, self.dport)
    }

    /// Forwarding method; `None` for a template.
    pub fn fwd(&self) -> Option<Fwd> {
        match self.kind {
            Kind::Nat => Some(Fwd::Nat),
            Kind::Dr => Some(Fwd::Dr),
            Kind::Tun => Some(Fwd::Tun),
            Kind::FullNat => Some(Fwd::FullNat),
            Kind::Template => None,
        }
    }

    /// FULLNAT: the local address and port towards the real server.
    pub fn local(&self) -> Option<A::Sock> {
        (self.kind == Kind::FullNat).then_some(A::sock(self.laddr, self.lport))
    }

    /// Whether this is a persistence template.
    pub fn is_template(&self) -> bool {
        self.kind == Kind::Template
    }

    /// The real server's handle.
    pub fn dest(&self) -> &D {
        &self.dest
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The real server counter this entry occupies.
    pub fn counter(&self) -> Counter {
        if self.is_template() {
            Counter::Persistent
        } else if self.state.is_active() {
            Counter::Active
        } else {
            Counter::Inactive
        }
    }

    /// Expiry in ms on the caller's clock; the entry lives until an [`Table::expire`] call
    /// at or after it (see the module documentation).
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// Current timeout in seconds: the state's as of the last packet (3 s before the first),
    /// or a template's persistence timeout.
    pub fn timeout(&self) -> u32 {
        self.timeout
    }

    /// Whether the connection still uses INPUT_ONLY (`IP_VS_CONN_F_NOOUTPUT`).
    pub fn no_output(&self) -> bool {
        self.flags & NO_OUTPUT != 0
    }

    /// The template controlling this connection.
    pub fn control(&self) -> Option<ConnId> {
        (self.control != NIL).then_some(ConnId(self.control))
    }

    /// Templates: the number of connections they control.
    pub fn n_control(&self) -> u32 {
        if self.is_template() {
            self.count
        } else {
            0
        }
    }

    /// The client → VIP key (templates: their template key).
    pub fn in_key(&self) -> FlowKey<A> {
        FlowKey {
            proto: self.proto,
            src: self.caddr,
            sport: self.cport,
            dst: self.vaddr,
            dport: self.vport,
        }
    }

    /// The real server → balancer key, indexed only for methods whose replies pass the
    /// balancer (NAT: to the client; FULLNAT: to the local address); `None` for DR, TUN and
    /// templates.
    pub fn out_key(&self) -> Option<FlowKey<A>> {
        matches!(self.kind, Kind::Nat | Kind::FullNat).then_some(self.out_key_unchecked())
    }

    /// The reply key, whatever the kind.
    fn out_key_unchecked(&self) -> FlowKey<A> {
        let (dst, dport) = match self.kind {
            Kind::FullNat => (self.laddr, self.lport),
            _ => (self.caddr, self.cport),
        };
        FlowKey {
            proto: self.proto,
            src: self.daddr,
            sport: self.dport,
            dst,
            dport,
        }
    }

    /// The key of one direction.
    fn key(&self, dir: Dir) -> FlowKey<A> {
        match dir {
            Dir::In => self.in_key(),
            Dir::Out => self.out_key_unchecked(),
        }
    }

    /// A connection entry for `new` in `state`, expiring `timeout` seconds after `now`, with
    /// NOOUTPUT set for the methods whose replies bypass the balancer.
    fn connection(
        new: NewConn<D, A>,
        state: State,
        timeout: u32,
        count: u32,
        now: u64,
    ) -> Conn<D, A> {
        Conn {
            expires: now.saturating_add(ms(timeout)),
            dest: new.dest,
            caddr: A::ip(&new.client),
            vaddr: A::ip(&new.virt),
            daddr: A::ip(&new.real),
            timeout,
            control: NIL,
            count,
            cport: A::port(&new.client),
            vport: A::port(&new.virt),
            dport: A::port(&new.real),
            lport: new.local.map_or(0, |l| A::port(&l)),
            laddr: new.local.map_or(A::UNSPECIFIED, |l| A::ip(&l)),
            proto: new.proto,
            kind: match new.fwd {
                Fwd::Nat => Kind::Nat,
                Fwd::Dr => Kind::Dr,
                Fwd::Tun => Kind::Tun,
                Fwd::FullNat => Kind::FullNat,
            },
            state,
            flags: if new.fwd.sees_replies() { 0 } else { NO_OUTPUT },
        }
    }

    /// Records the current state as the one a sync master last sent.
    fn mark_synced(&mut self) {
        self.flags = (self.flags & !SYNCED_MASK) | (self.state as u8) << SYNCED_SHIFT;
    }

    /// Whether the in key is in the index.
    fn in_hashed(&self) -> bool {
        self.flags & UNHASHED == 0
    }
}

/// Map value: slab index and direction bit.
const fn value(idx: u32, dir: Dir) -> u32 {
    idx << 1
        | match dir {
            Dir::In => 0,
            Dir::Out => 1,
        }
}

const fn value_idx(v: u32) -> usize {
    (v >> 1) as usize
}

const fn value_dir(v: u32) -> Dir {
    if v & 1 == 0 {
        Dir::In
    } else {
        Dir::Out
    }
}

#[inline]
fn hash_key<A: Family>(hasher: &RandomState, key: &FlowKey<A>) -> u64 {
    hasher.hash_one(key.pack())
}

/// Whether map value `v` is a `template`/connection entry whose key in its direction is
/// `key`.
fn value_matches<D, A: Family>(
    slab: &[Option<Conn<D, A>>],
    v: u32,
    key: &FlowKey<A>,
    template: bool,
) -> bool {
    match slab.get(value_idx(v)) {
        Some(Some(c)) => c.is_template() == template && c.key(value_dir(v)) == *key,
        _ => false,
    }
}

/// One worker's connection table for one address family: see the module documentation.
#[derive(Debug)]
pub struct Table<D, A = Ipv4Addr> {
    /// Both keys of every connection, the key of every hashed template: slab index << 1 |
    /// direction.
    index: Index,
    /// The entries; `None` is free.
    slab: Vec<Option<Conn<D, A>>>,
    /// FULLNAT's TCP sequence translation of the entry at the same index, kept out of the
    /// entry (it would not fit in its line) and meaningful for FULLNAT connections only.
    seqs: Vec<TcpSeq>,
    /// Expiry lists and free stack.
    wheel: Wheel,
    hasher: RandomState,
    /// Entries in use.
    len: u32,
    timeouts: Timeouts,
    reuse_mode: u8,
    /// Out keys (hash, map value) of the latest connections, not yet in `map`: the first
    /// `n_pending`. Lookups that miss `map` look here; see [`Table::add`].
    pending: [(u64, u32); PENDING],
    n_pending: usize,
}

impl<D, A: Family> Table<D, A> {
    /// A table with every entry allocated, empty; `now` (ms) starts the expiry clock.
    pub fn new(config: Config, now: u64) -> Result<Table<D, A>, TableError> {
        let capacity = config.capacity;
        if capacity > MAX_CAPACITY {
            return Err(TableError::TooLarge(capacity));
        }
        let n = capacity as usize;
        let mut slab = Vec::new();
        slab.try_reserve_exact(n)
            .map_err(|_| TableError::OutOfMemory)?;
        slab.resize_with(n, || None);
        let mut seqs = Vec::new();
        seqs.try_reserve_exact(n)
            .map_err(|_| TableError::OutOfMemory)?;
        seqs.resize(n, TcpSeq::default());
        // Two keys per entry at most.
        let index =
            Index::with_capacity(n.saturating_mul(2)).map_err(|_| TableError::OutOfMemory)?;
        let hasher = RandomState::new();
        let wheel = Wheel::new(capacity, now).map_err(|_| TableError::OutOfMemory)?;
        Ok(Table {
            index,
            slab,
            seqs,
            wheel,
            hasher,
            len: 0,
            timeouts: config.timeouts,
            reuse_mode: config.conn_reuse_mode,
            pending: [(0, 0); PENDING],
            n_pending: 0,
        })
    }

    /// Number of entries (connections and templates) in use.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entries allocated.
    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// Bytes allocated: entries, sequence states, links and index.
    pub fn allocation_size(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Option<Conn<D, A>>>()
            + self.seqs.capacity() * std::mem::size_of::<TcpSeq>()
            + self.wheel.allocation_size()
            + self.index.allocation_size()
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Replace the timeouts (`ipvsadm --set`); each connection picks up its state's new
    /// timeout with its next packet, as in the kernel.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// The entry `id` names, if it is in use.
    pub fn get(&self, id: ConnId) -> Option<&Conn<D, A>> {
        self.slab.get(id.0 as usize)?.as_ref()
    }

    /// Every entry in use, in slab order (for listings; walks the whole slab).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<D, A>)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((ConnId(i as u32), c.as_ref()?)))
    }

    /// Find the connection a packet with `key` belongs to, in either direction. Templates
    /// are never found here. Does not refresh the connection: [`Table::packet`] does.
    pub fn lookup(&self, key: &FlowKey<A>) -> Option<Hit> {
        self.find(key)
    }

    /// [`Table::lookup`], inlined where it is on the per-packet path
    /// ([`Table::lookup_hinted`]): a call there costs a dozen register saves and restores.
    #[inline(always)]
    fn find(&self, key: &FlowKey<A>) -> Option<Hit> {
        let slab = &self.slab;
        let hash = hash_key(&self.hasher, key);
        let v = match self
            .index
            .find(hash, |v| value_matches(slab, v, key, false))
        {
            Some(v) => v,
            None if self.n_pending == 0 => return None,
            None => self.find_pending(hash, key)?,
        };
        Some(Hit {
            // Truncation impossible: values are built from u32 indices.
            id: ConnId(v >> 1),
            dir: value_dir(v),
        })
    }

    /// The map value of a connection key held back in `pending`.
    #[inline(always)]
    fn find_pending(&self, hash: u64, key: &FlowKey<A>) -> Option<u32> {
        let slab = &self.slab;
        self.pending
            .get(..self.n_pending)
            .unwrap_or_default()
            .iter()
            .find(|&&(h, v)| h == hash && value_matches(slab, v, key, false))
            .map(|&(_, v)| v)
    }

    /// Insert the out keys held back in `pending` into the index.
    fn flush(&mut self) {
        for &(hash, v) in self.pending.get(..self.n_pending).unwrap_or_default() {
            self.index.insert(hash, v);
        }
        self.n_pending = 0;
    }

    /// The first stage of a burst's lookups: hashes `key` and asks the CPU to start loading
    /// its index bucket. Changes nothing; hand the probe to [`Table::candidate`] once the
    /// whole burst went through this stage.
    #[inline]
    pub fn probe(&self, key: &FlowKey<A>) -> Probe {
        let hash = hash_key(&self.hasher, key);
        self.index.prefetch(hash);
        Probe(hash)
    }

    /// The second stage: reads the bucket [`Table::probe`] loaded, and asks the CPU to start
    /// loading the entry its tag points at. The answer is a hint for
    /// [`Table::lookup_hinted`], unverified (the key is compared there, in the entry this
    /// loads): the connection the key most likely belongs to, or `None` (no tag matched, or
    /// the key lives past its home bucket or in the held-back out keys).
    #[inline]
    pub fn candidate(&self, probe: Probe) -> Option<Hit> {
        let v = self.index.candidate(probe.0)?;
        let entry = self.slab.get(value_idx(v))?;
        crate::prefetch::prefetch(entry);
        Some(Hit {
            id: ConnId(v >> 1),
            dir: value_dir(v),
        })
    }

    /// [`Table::probe`] then [`Table::candidate`] for one key, for callers with one packet
    /// (the misses do not overlap with anything).
    #[inline]
    pub fn prefetch(&self, key: &FlowKey<A>) -> Option<Hit> {
        self.candidate(self.probe(key))
    }

    /// [`Table::lookup`], trying `hint` first: what [`Table::candidate`] answered for the same
    /// key a moment ago. When the entry it names is a connection indexed under `key` in that
    /// direction, that is the answer (keys are unique in the index) and the index is not
    /// searched again; otherwise (another key with the same tag, or the entry went or was
    /// reused since) it is.
    #[inline]
    pub fn lookup_hinted(&self, key: &FlowKey<A>, hint: Option<Hit>) -> Option<Hit> {
        match hint {
            Some(hit) if self.indexed_as(hit, key) => Some(hit),
            _ => self.find(key),
        }
    }

    /// Whether the entry `hit` names is a connection indexed under `key` in `hit.dir`.
    fn indexed_as(&self, hit: Hit, key: &FlowKey<A>) -> bool {
        match self.get(hit.id) {
            // A connection's keys are in the index for as long as it lives (only templates
            // are ever taken out early), its out key only for methods that see replies.
            Some(c) if !c.is_template() => match hit.dir {
                Dir::In => c.in_key() == *key,
                Dir::Out => c.out_key() == Some(*key),
            },
            _ => false,
        }
    }

    /// Find the (hashed) persistence template with `key`.
    pub fn lookup_template(&self, key: &FlowKey<A>) -> Option<ConnId> {
        let slab = &self.slab;
        let v = self.index.find(hash_key(&self.hasher, key), |v| {
            value_matches(slab, v, key, true)
        })?;
        Some(ConnId(v >> 1))
    }

    /// Add a connection in NONE (UDP: UDP) with the 3 s timeout of a new connection. It
    /// counts as inactive from now on ([`Counter::Inactive`]); feed its first packet to
    /// [`Table::packet`] right away. The caller inserts only after a [`Table::lookup`] miss
    /// (or after removing a reusable connection).
    pub fn insert(&mut self, new: NewConn<D, A>, now: u64) -> Result<ConnId, TableFull<D>> {
        self.insert_with_seq(new, TcpSeq::default(), now)
    }

    /// [`Table::insert`] with FULLNAT's sequence translation known up front (a TCP SYN's),
    /// which saves finding the slot again with [`Table::seq_mut`]; `seq` is ignored for
    /// the other methods.
    pub fn insert_with_seq(
        &mut self,
        new: NewConn<D, A>,
        seq: TcpSeq,
        now: u64,
    ) -> Result<ConnId, TableFull<D>> {
        let state = match new.proto {
            Proto::Tcp => State::None,
            Proto::Udp => State::Udp,
        };
        let fullnat = new.fwd == Fwd::FullNat;
        let conn = Conn::connection(new, state, NEW_CONN_TIMEOUT, 0, now);
        let seq = fullnat.then_some(seq);
        self.add(conn, seq).map_err(|c| TableFull(c.dest))
    }

    /// Add a persistence template expiring `timeout` seconds from `now`; it counts as
    /// [`Counter::Persistent`]. Tie each connection scheduled through it with
    /// [`Table::control`].
    pub fn insert_template(
        &mut self,
        new: NewTemplate<D, A>,
        now: u64,
    ) -> Result<ConnId, TableFull<D>> {
        let conn = Conn {
            expires: now.saturating_add(ms(new.timeout)),
            dest: new.dest,
            caddr: new.key.src,
            vaddr: new.key.dst,
            daddr: A::ip(&new.real),
            timeout: new.timeout,
            control: NIL,
            count: 0,
            cport: new.key.sport,
            vport: new.key.dport,
            dport: A::port(&new.real),
            lport: 0,
            laddr: A::UNSPECIFIED,
            proto: new.key.proto,
            kind: Kind::Template,
            state: State::None,
            flags: 0,
        };
        self.add(conn, None).map_err(|c| TableFull(c.dest))
    }

    /// Counts an inbound packet of connection `id` and says whether a sync master must send
    /// the connection now (`ip_vs_sync_conn_needed`, `sync_refresh_period` 0): TCP only in
    /// ESTABLISHED and the closing states (FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT), a change
    /// into a closing state at once, otherwise (UDP too) at the `threshold`-th packet and
    /// every `period` packets after it. Templates are not counted here: they go with their
    /// connections.
    pub fn sync_due(&mut self, id: ConnId, rules: SyncRules) -> bool {
        let Some(Some(c)) = self.slab.get_mut(id.0 as usize) else {
            return false;
        };
        if c.kind == Kind::Template {
            return false;
        }
        c.count = c.count.wrapping_add(1);
        let synced = c.flags >> SYNCED_SHIFT;
        if c.proto == Proto::Tcp {
            if !matches!(
                c.state,
                State::Established
                    | State::FinWait
                    | State::Close
                    | State::CloseWait
                    | State::TimeWait
            ) {
                return false;
            }
            if c.state as u8 != synced && c.state != State::Established {
                c.mark_synced();
                return true;
            }
        }
        let due = match rules.period {
            0 => c.count == rules.threshold,
            period => c.count % period == rules.threshold,
        };
        if due {
            c.mark_synced();
        }
        due
    }

    /// Adds a connection a sync master sent (`ip_vs_proc_conn`'s new connection): in its
    /// state, expiring after its timeout, counted as the master left it (the kernel sets
    /// `in_pkts` to the threshold, so a backup that becomes master sends it again on the
    /// period's schedule). The caller binds it to its real server ([`Conn::counter`]).
    pub fn install_synced(
        &mut self,
        synced: SyncedConn<D, A>,
        rules: SyncRules,
        now: u64,
    ) -> Result<ConnId, TableFull<D>> {
        let SyncedConn {
            new,
            state,
            timeout,
            seq,
        } = synced;
        let timeout = match timeout {
            0 => self.timeouts.of(state),
            t => t,
        };
        let fullnat = new.fwd == Fwd::FullNat;
        let mut conn = Conn::connection(new, state, timeout, rules.threshold, now);
        conn.mark_synced();
        let seq = fullnat.then_some(seq);
        self.add(conn, seq).map_err(|c| TableFull(c.dest))
    }

    /// Updates entry `id` (a connection or a template) from a sync message
    /// (`ip_vs_proc_conn` on a known connection): its state, and its expiry `timeout`
    /// seconds (0: the state's timeout) from `now`. Returns the counter move for the
    /// caller to apply to the real server; `None` for a stale id.
    pub fn refresh_synced(
        &mut self,
        id: ConnId,
        state: State,
        timeout: u32,
        rules: SyncRules,
        now: u64,
    ) -> Option<Move> {
        let c = self.slab.get_mut(id.0 as usize)?.as_mut()?;
        let from = c.state;
        let timeout = match timeout {
            0 => self.timeouts.of(state),
            t => t,
        };
        if c.kind != Kind::Template {
            c.state = state;
            c.count = rules.threshold;
            c.mark_synced();
        }
        c.timeout = timeout;
        let expires = now.saturating_add(ms(timeout));
        // A parked template (past its expiry, kept for its connections) lives on.
        let replace = c.flags & PARKED != 0 || expires < c.expires;
        c.flags &= !PARKED;
        c.expires = expires;
        if replace {
            self.wheel.place(id.0, expires);
        }
        Some(Move::between(from, c.state))
    }

    /// Take a free entry for `conn` (and, FULLNAT, `seq` for its sequence state), index its
    /// keys, arm its expiry.
    ///
    /// The out key (NAT, FULLNAT) is held back in `pending` and inserted into the index with
    /// those of the next connections, [`PENDING`] at a time. Its bucket is in a random place
    /// of an index far larger than the cache (the in key's was loaded by the lookup that
    /// missed, usually in the prefetch of the burst): inserted at once, each new connection
    /// waited for that miss; inserted together, the misses of the batch overlap. Lookups
    /// look in `pending` when the index misses, and a removal first flushes it, so nothing
    /// else changes.
    fn add(&mut self, conn: Conn<D, A>, seq: Option<TcpSeq>) -> Result<ConnId, Conn<D, A>> {
        let Some(idx) = self.wheel.alloc() else {
            return Err(conn);
        };
        let Some(slot) = self.slab.get_mut(idx as usize) else {
            self.wheel.release(idx);
            return Err(conn);
        };
        let in_hash = hash_key(&self.hasher, &conn.in_key());
        let out_hash = conn.out_key().map(|k| hash_key(&self.hasher, &k));
        let expires = conn.expires;
        *slot = Some(conn);
        // Other methods never read their sequence slot: left untouched, not even loaded.
        // (`seqs` is as long as `slab`: the slot is there.)
        if let (Some(seq), Some(seq_slot)) = (seq, self.seqs.get_mut(idx as usize)) {
            *seq_slot = seq;
        }
        self.index.insert(in_hash, value(idx, Dir::In));
        if let Some(h) = out_hash {
            if let Some(p) = self.pending.get_mut(self.n_pending) {
                *p = (h, value(idx, Dir::Out));
                self.n_pending += 1;
            }
            if self.n_pending == PENDING {
                self.n_pending = 0;
                for (h, v) in self.pending {
                    self.index.insert(h, v);
                }
            }
        }
        self.wheel.place(idx, expires);
        self.len += 1;
        Ok(ConnId(idx))
    }

    /// Take the map value `v`, whose key hashes to `hash`, out of the index.
    fn unhash(&mut self, hash: u64, v: u32) {
        self.index.remove(hash, v);
    }

    /// Process one packet of connection `id` in direction `dir` at `now` (ms): the TCP state
    /// transition for its `flags` (ignored for UDP), the NOOUTPUT rule, and the re-arm for
    /// the new state's timeout. Returns `None` for a template or a stale id.
    pub fn packet(&mut self, id: ConnId, dir: Dir, flags: Flags, now: u64) -> Option<Transition> {
        self.packet_entry(id, dir, flags, now).map(|(t, _)| t)
    }

    /// [`Table::packet`], also handing back the connection (what the caller reads next to
    /// forward the packet) without a second look-up of the entry.
    #[inline]
    pub fn packet_entry(
        &mut self,
        id: ConnId,
        dir: Dir,
        flags: Flags,
        now: u64,
    ) -> Option<(Transition, &Conn<D, A>)> {
        let c = self.slab.get_mut(id.0 as usize)?.as_mut()?;
        let from = c.state;
        // The established fast path: an ESTABLISHED connection's segment with ACK and none of
        // SYN, FIN, RST stays ESTABLISHED in all three tables (only TCP connections reach
        // that state, never templates), so the table walk is skipped; NOOUTPUT is still
        // cleared by a reply.
        let plain_ack = flags.bits() & (Flags::SYN | Flags::FIN | Flags::RST | Flags::ACK).bits()
            == Flags::ACK.bits();
        let to = match (c.kind, c.proto) {
            (Kind::Template, _) => return None,
            _ if from == State::Established && plain_ack => {
                if dir == Dir::Out {
                    c.flags &= !NO_OUTPUT;
                }
                State::Established
            }
            (_, Proto::Udp) => State::Udp,
            (_, Proto::Tcp) => {
                let no_output = c.flags & NO_OUTPUT != 0;
                if dir == Dir::Out {
                    c.flags &= !NO_OUTPUT;
                }
                tcp_next(from, TcpTable::select(dir, no_output), flags)
            }
        };
        c.state = to;
        c.timeout = self.timeouts.of(to);
        let expires = now.saturating_add(ms(c.timeout));
        let earlier = expires < c.expires;
        c.expires = expires;
        if earlier {
            self.wheel.place(id.0, expires);
        }
        let transition = Transition {
            from,
            to,
            moved: Move::between(from, to),
        };
        Some((transition, &*c))
    }

    /// FULLNAT: the TCP sequence translation of connection `id`; `None` for a stale id or
    /// another method.
    pub fn seq(&self, id: ConnId) -> Option<&TcpSeq> {
        self.fullnat(id).map(|(_, seq)| seq)
    }

    /// FULLNAT: connection `id` and its TCP sequence translation, found once; `None` for a
    /// stale id or another method.
    #[inline]
    pub fn fullnat(&self, id: ConnId) -> Option<(&Conn<D, A>, &TcpSeq)> {
        let i = id.0 as usize;
        match (self.slab.get(i), self.seqs.get(i)) {
            (Some(Some(c)), Some(seq)) if c.kind == Kind::FullNat => Some((c, seq)),
            _ => None,
        }
    }

    /// FULLNAT: the TCP sequence translation of connection `id`, to update.
    pub fn seq_mut(&mut self, id: ConnId) -> Option<&mut TcpSeq> {
        if !self.is_fullnat(id) {
            return None;
        }
        self.seqs.get_mut(id.0 as usize)
    }

    /// Whether `id` names a live FULLNAT connection (whose sequence slot is its own).
    fn is_fullnat(&self, id: ConnId) -> bool {
        self.get(id).is_some_and(|c| c.kind == Kind::FullNat)
    }

    /// Whether a SYN that hit connection `id` (in direction In) must instead expire it and
    /// be scheduled afresh (`is_new_conn_expected` under `conn_reuse_mode`): a TCP
    /// connection controlled by no template, in TIME_WAIT or CLOSE, or (mode bit 1) in
    /// FIN_WAIT without having seen a reply. Remove it with [`Table::remove`], then insert.
    pub fn reusable(&self, id: ConnId) -> bool {
        let Some(c) = self.get(id) else {
            return false;
        };
        self.reuse_mode != 0
            && c.proto == Proto::Tcp
            && !c.is_template()
            && c.control == NIL
            && match c.state {
                State::TimeWait | State::Close => true,
                State::FinWait => self.reuse_mode & 2 != 0 && c.no_output(),
                _ => false,
            }
    }

    /// Tie connection `conn` to template `template` (`ip_vs_control_add`; a previous
    /// template lets go of it) and re-arm the template for its timeout from `now`, as a
    /// connection scheduled through it does (`ip_vs_conn_put(ct)`). False when either id is
    /// stale or of the wrong kind.
    pub fn control(&mut self, conn: ConnId, template: ConnId, now: u64) -> bool {
        let is_conn = self.get(conn).is_some_and(|c| !c.is_template());
        let is_template = self.get(template).is_some_and(Conn::is_template);
        if !(is_conn && is_template) {
            return false;
        }
        let previous = match self.slab.get_mut(conn.0 as usize) {
            Some(Some(c)) => std::mem::replace(&mut c.control, template.0),
            _ => NIL,
        };
        if previous != NIL {
            self.uncontrol(previous);
        }
        let Some(Some(t)) = self.slab.get_mut(template.0 as usize) else {
            return false;
        };
        t.count += 1;
        let expires = now.saturating_add(ms(t.timeout));
        let replace = t.flags & PARKED != 0 || expires < t.expires;
        t.flags &= !PARKED;
        t.expires = expires;
        if replace {
            self.wheel.place(template.0, expires);
        }
        true
    }

    /// A connection of template `t` went away (`ip_vs_control_del`): a parked template
    /// whose last connection this was is due now.
    fn uncontrol(&mut self, t: u32) {
        if let Some(Some(tc)) = self.slab.get_mut(t as usize) {
            tc.count = tc.count.saturating_sub(1);
            if tc.count == 0 && tc.flags & PARKED != 0 {
                tc.flags &= !PARKED;
                self.wheel.make_due(t);
            }
        }
    }

    /// Take template `id` out of the index (`ip_vs_check_template` failing: its real server
    /// was removed or, with `expire_quiescent_template`, quiesced), so that the next lookup
    /// misses and a fresh template can be inserted. It stays, counted as persistent, until
    /// its expiry and its last controlled connection. False for a stale id, a connection,
    /// or a template already out.
    pub fn invalidate_template(&mut self, id: ConnId) -> bool {
        let Some(Some(c)) = self.slab.get_mut(id.0 as usize) else {
            return false;
        };
        if !c.is_template() || !c.in_hashed() {
            return false;
        }
        c.flags |= UNHASHED;
        let hash = hash_key(&self.hasher, &c.in_key());
        self.unhash(hash, value(id.0, Dir::In));
        true
    }

    /// Remove entry `id` now (conn reuse, `expire_nodest_conn`, flush) and return it for
    /// the caller to unbind. A template that still controls connections cannot go yet: it
    /// is taken out of the index and leaves with its last connection (through
    /// [`Table::expire`]); `None` then, and for a stale id.
    pub fn remove(&mut self, id: ConnId) -> Option<Removed<D, A>> {
        let c = self.slab.get_mut(id.0 as usize)?.as_mut()?;
        if c.n_control() == 0 {
            return self.release(id.0);
        }
        // Past its expiry; unless already parked, due at once, so that the next sweep parks
        // it until `uncontrol` releases it.
        c.expires = 0;
        if c.flags & PARKED == 0 {
            self.wheel.make_due(id.0);
        }
        self.invalidate_template(id);
        None
    }

    /// Free entry `idx`: out of the index, off the wheel, away from its template, back on
    /// the free stack.
    fn release(&mut self, idx: u32) -> Option<Removed<D, A>> {
        // Its out key may be held back; `unhash` finds keys in the index only.
        self.flush();
        let c = self.slab.get_mut(idx as usize)?.take()?;
        if c.in_hashed() {
            let hash = hash_key(&self.hasher, &c.in_key());
            self.unhash(hash, value(idx, Dir::In));
        }
        if let Some(out) = c.out_key() {
            let hash = hash_key(&self.hasher, &out);
            self.unhash(hash, value(idx, Dir::Out));
        }
        self.wheel.unlink(idx);
        self.wheel.release(idx);
        self.len -= 1;
        if c.control != NIL {
            self.uncontrol(c.control);
        }
        Some(Removed {
            counter: c.counter(),
            local: c.local(),
            dest: c.dest,
            state: c.state,
        })
    }

    /// Expire entries due at `now` (ms), doing at most `budget` units of work (an entry
    /// looked at, or a wheel tick visited); each removed entry goes to `visit`. Call once per
    /// worker loop. A template past its expiry that still controls connections is kept
    /// (parked) until its last connection goes.
    pub fn expire(
        &mut self,
        now: u64,
        budget: usize,
        mut visit: impl FnMut(Removed<D, A>),
    ) -> Sweep {
        let mut work = 0;
        let mut removed = 0;
        while work < budget {
            if let Some(idx) = self.wheel.pop_due() {
                work += 1;
                let Some(Some(c)) = self.slab.get_mut(idx as usize) else {
                    continue;
                };
                if !Wheel::passed(c.expires, now) {
                    let expires = c.expires;
                    self.wheel.place(idx, expires);
                } else if c.n_control() > 0 {
                    // On no list until `uncontrol` or `control` takes it back.
                    c.flags |= PARKED;
                } else if let Some(gone) = self.release(idx) {
                    removed += 1;
                    visit(gone);
                }
            } else if self.wheel.advance(now) {
                work += 1;
            } else {
                break;
            }
        }
        Sweep {
            removed,
            done: self.wheel.nothing_due() && !self.wheel.behind(now),
        }
    }
}

impl<D> Table<D, Ipv6Addr> {
    /// NAT64: [`Table::lookup`] of an IPv4 packet's `key` (a real server's reply to an IPv4
    /// local address that NAT64 connections use), with both addresses mapped as the table
    /// holds them ([`FlowKey::to_ipv6_mapped`]). For a burst, hand the mapped keys to
    /// [`Table::probe`] and [`Table::lookup_hinted`] instead.
    pub fn lookup_mapped(&self, key: &FlowKey<Ipv4Addr>) -> Option<Hit> {
        self.find(&key.to_ipv6_mapped())
    }
}

#[cfg(test)]
impl<D, A: Family> Table<D, A> {
    /// Check every invariant linking the slab, the index, the wheel and the free stack;
    /// panics on the first broken one.
    pub(super) fn check(&self) {
        let live: Vec<u32> = self.iter().map(|(id, _)| id.0).collect();
        assert_eq!(live.len(), self.len(), "len");
        let (lists, free) = self.wheel.lists();
        // Free stack: exactly the empty entries, once each.
        let mut seen = vec![false; self.capacity()];
        for &i in &free {
            assert!(
                self.slab[i as usize].is_none(),
                "live entry {i} on the free stack"
            );
            assert!(
                !std::mem::replace(&mut seen[i as usize], true),
                "{i} freed twice"
            );
        }
        assert_eq!(free.len() + self.len(), self.capacity(), "leak");
        // Wheel: every live entry on exactly one list, except parked templates.
        let mut on_list = vec![false; self.capacity()];
        for &i in lists.iter().flatten() {
            assert!(
                self.slab[i as usize].is_some(),
                "free entry {i} on the wheel"
            );
            assert!(
                !std::mem::replace(&mut on_list[i as usize], true),
                "{i} on two lists"
            );
        }
        let mut hashed = 0;
        for (id, c) in self.iter() {
            let parked = c.flags & PARKED != 0;
            assert_eq!(on_list[id.0 as usize], !parked, "{id:?} wheel presence");
            if parked {
                assert!(c.is_template() && c.n_control() > 0 && self.wheel.is_alone(id.0));
            }
            // Index: each key present under its own value.
            for (key, dir, present) in [
                (c.in_key(), Dir::In, c.in_hashed()),
                (c.out_key_unchecked(), Dir::Out, c.out_key().is_some()),
            ] {
                let v = value(id.0, dir);
                let hash = hash_key(&self.hasher, &key);
                let found = self.index.contains(hash, v)
                    || self.pending[..self.n_pending].contains(&(hash, v));
                assert_eq!(found, present, "{id:?} {dir:?} indexed");
                hashed += usize::from(present);
            }
            // Templates: n_control is the number of connections naming them.
            let controlled = self.iter().filter(|(_, x)| x.control == id.0).count();
            assert_eq!(controlled, c.n_control() as usize, "{id:?} n_control");
            if c.control != NIL {
                assert!(self.slab[c.control as usize]
                    .as_ref()
                    .is_some_and(Conn::is_template));
            }
        }
        assert_eq!(
            self.index.len() + self.n_pending,
            hashed,
            "index holds stale values"
        );
    }

    /// The keys the index is sized for.
    pub(super) fn index_capacity(&self) -> usize {
        self.index.capacity()
    }

    /// Number of free entries, counted on the free stack.
    pub(super) fn free_count(&self) -> usize {
        self.wheel.lists().1.len()
    }

    /// Number of keys in the index.
    pub(super) fn index_len(&self) -> usize {
        self.index.len() + self.n_pending
    }

    /// Put connection `id` in `state`, as if packets had led there.
    pub(super) fn set_state(&mut self, id: ConnId, state: State) {
        if let Some(Some(c)) = self.slab.get_mut(id.0 as usize) {
            c.state = state;
        }
    }
}
