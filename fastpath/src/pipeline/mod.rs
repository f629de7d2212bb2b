//! One worker's packet pipeline: the state it owns and the walk of one frame through the
//! stages, in packet order:
//!
//! 1. [`classify`]: what the frame is (Ethernet and IPv4 validated, TCP/UDP ports parsed);
//!    the worker runs it for a whole burst first ([`Pipeline::prefetch`]), together with the
//!    connection lookup, so that the cache misses of the burst's lookups overlap. An IPv4
//!    frame is then trimmed to its packet's end (Ethernet padding is not forwarded).
//! 2. ARP and ICMP echo for owned addresses are answered in place ([`crate::l2`]).
//! 3. [`forward`]: TCP and UDP: the connection (or a new one, [`schedule`]), the state
//!    machine, the counters and the forwarding method's rewrite ([`fullnat`] for FULLNAT).
//!    [`icmp_error`]: ICMP errors about a connection, rewritten the same way. [`fragment`]:
//!    fragments of TCP and UDP datagrams, the first one through [`forward`], the later ones
//!    with what their first one got (held while it has not come: [`Verdict::Hold`]).
//! 4. [`egress`]: the route, the next hop's MAC, TUN's encapsulation, the egress MTU (a
//!    longer packet is fragmented by the worker, [`Verdict::Fragment`]), and the ICMP errors
//!    rvs answers with instead of forwarding (time exceeded, fragmentation needed; the
//!    forwarding stage decides the latter for DF packets, before it rewrites them).
//!
//! Each stage hands the next a value (a [`classify::Class`], an [`egress::Out`] or a drop
//! reason), so a frame walks down once; the result is a [`Verdict`].
//!
//! Pure over a [`Frame`] and a clock passed in, so the same code runs on DPDK mbufs in
//! workers and on byte vectors in tests and benchmarks. A packet of a flow that another
//! worker owns is handed to it ([`Verdict::Redirect`]); see [`owner`] for the rule, and
//! [`fragment`] for fragments, which go to their datagram's fragment owner first.

mod classify;
mod classify6;
mod egress;
mod egress6;
mod forward;
mod forward6;
mod fragment;
mod fullnat;
mod icmp6_error;
mod icmp_error;
mod schedule;
mod slots;
mod sync;

use crate::conn;
use crate::frame::Frame;
use crate::l2;
use crate::service::Real;
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, Verdict};
use crate::wire::ether::{self, EthernetAddress};
use crate::wire::ipv4;
use crate::xmit::isn::IsnKey;
use classify::Class;
use egress::Out;
use slots::Slots;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub use fragment::{
    owner as fragment_owner, FragmentKey, Held, Released, ENTRY_MS, HOLD_MAX, HOLD_MS, TABLE_MAX,
};
pub use sync::{
    record as sync_record, Installed as SyncInstalled, Refused as SyncRefused, OUTBOX_MAX,
};

/// Neighbours learned in one burst that the worker has not yet passed to its peers.
const LEARNED_MAX: usize = 64;

/// The worker that owns the flow whose client is `client_ip:client_port`.
///
/// Both directions of a NAT, DR or TUN connection carry the client address and port
/// unchanged (source inbound, destination in the replies), so both are mapped to the same
/// worker without any state. The hash mixes address and port so that one client's many
/// connections spread over the workers.
#[inline]
pub fn owner(client_ip: Ipv4Addr, client_port: u16, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let x = (u64::from(u32::from(client_ip)) << 16 | u64::from(client_port))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 32) as usize) % workers
}

/// Everything one worker owns: its connections, its scheduler per service, its neighbours.
pub struct Pipeline {
    /// This worker's index and the number of workers (for [`owner`]).
    worker: usize,
    workers: usize,
    conns: conn::Table<Arc<Real>>,
    /// IPv6 connections: a table of their own, so that IPv4 entries keep one cache line.
    conns6: conn::Table<Arc<Real>, Ipv6Addr>,
    /// The scheduler and FULLNAT local address pool of every service, at the service's slot
    /// ([`Snapshot::service_index`]).
    slots: Slots,
    neighbors: l2::neighbor::Table,
    /// IPv6 neighbours, from neighbour discovery and the static entries.
    neighbors6: l2::neighbor::Table<Ipv6Addr>,
    /// The next hop of the last [`Verdict::Resolve6`] ([`Pipeline::resolving6`]).
    resolving6: Ipv6Addr,
    /// Where packets to each real server leave, from the last route and neighbour lookups.
    egress: l2::egress::Cache,
    /// Neighbours learned since the worker last drained this list.
    learned: Vec<(usize, IpAddr, EthernetAddress)>,
    /// IP identification of the tunnel outer headers rvs makes.
    ip_ident: u16,
    /// IP identification of the ICMP errors rvs answers with: a counter of their own, as
    /// Linux's ICMP socket does not share the tunnel's.
    icmp_ident: u16,
    /// Secret of the FULLNAT initial sequence numbers.
    isn_key: IsnKey,
    /// Events worth counting that do not drop the packet.
    events: Events,
    /// The datagrams whose fragments this worker follows, and the fragments it holds.
    fragments: fragment::Fragments,
    /// Sync master: the connections to send, until the worker hands them to the sync thread.
    sync_outbox: Vec<crate::sync::SyncConn>,
    /// FULLNAT: the TOA and PROXY settings of the service of the last packet.
    insertions: fullnat::Insertions,
}

/// What [`Pipeline::prefetch`] found out about a frame: what it is and, for a TCP or UDP
/// packet, the probe of its connection lookup and then ([`Pipeline::candidate`]) the likely
/// connection. [`Pipeline::packet_parsed`] takes it instead of reading the frame again (the
/// connection only as a hint, checked there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    class: Class,
    probe: Option<conn::Probe>,
    hit: Option<conn::Hit>,
}

impl Parsed {
    /// Whether the frame is ARP, which the worker also copies to the kernel twin of a port
    /// that has one (the kernel must see its neighbours' ARP to keep its table right).
    pub fn is_arp(&self) -> bool {
        self.class == Class::Arp
    }
}

impl Default for Parsed {
    fn default() -> Parsed {
        Parsed {
            class: Class::Drop(DropReason::Truncated),
            probe: None,
            hit: None,
        }
    }
}

/// Events worth counting that do not drop the packet (FULLNAT's insertions, ICMP answers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Events {
    /// Segments that got a TOA option.
    pub toa_inserted: u64,
    /// Segments due a TOA option that had no room for it (forwarded without).
    pub toa_no_room: u64,
    /// PROXY protocol headers inserted (retransmissions included).
    pub proxy_inserted: u64,
    /// ICMP errors sent back instead of a packet (time exceeded, fragmentation needed).
    pub icmp_errors_sent: u64,
    /// Sync records lost because the worker's outbox was full.
    pub sync_overflow: u64,
}

/// Why a pipeline could not be created.
pub type BuildError = conn::TableError;

impl Pipeline {
    /// The state of worker `worker` of `workers`, with a connection table of
    /// `conn_table_size` entries and an IPv6 one of the default size for it
    /// ([`conf::default_conn_table_size6`]), set up for `snapshot`.
    pub fn new(
        worker: usize,
        workers: usize,
        conn_table_size: u32,
        snapshot: &Snapshot,
        now_ms: u64,
    ) -> Result<Pipeline, BuildError> {
        let size6 = conf::default_conn_table_size6(conn_table_size);
        Pipeline::with_tables(worker, workers, (conn_table_size, size6), snapshot, now_ms)
    }

    /// [`Pipeline::new`] with `sizes` entries in the IPv4 and IPv6 connection tables.
    pub fn with_tables(
        worker: usize,
        workers: usize,
        sizes: (u32, u32),
        snapshot: &Snapshot,
        now_ms: u64,
    ) -> Result<Pipeline, BuildError> {
        let mut config = conn::Config::new(sizes.0);
        config.timeouts = snapshot.timeouts;
        let mut config6 = config;
        config6.capacity = sizes.1;
        let mut pipeline = Pipeline {
            worker,
            workers: workers.max(1),
            conns: conn::Table::new(config, now_ms)?,
            conns6: conn::Table::new(config6, now_ms)?,
            slots: Slots::new(worker, workers.max(1)),
            neighbors: l2::neighbor::Table::with_capacity(1024),
            neighbors6: l2::neighbor::Table::with_capacity(256),
            resolving6: Ipv6Addr::UNSPECIFIED,
            egress: l2::egress::Cache::default(),
            learned: Vec::with_capacity(LEARNED_MAX),
            ip_ident: (worker as u16).wrapping_mul(0x1000),
            icmp_ident: (worker as u16).wrapping_mul(0x1000),
            isn_key: IsnKey([0; 2]),
            events: Events::default(),
            fragments: fragment::Fragments::new(),
            sync_outbox: Vec::with_capacity(OUTBOX_MAX),
            insertions: fullnat::Insertions::default(),
        };
        pipeline.adopt(None, snapshot);
        Ok(pipeline)
    }

    /// Sets the secret of FULLNAT initial sequence numbers (one per process, shared by the
    /// workers; without it they are predictable).
    pub fn with_isn_key(mut self, key: IsnKey) -> Pipeline {
        self.isn_key = key;
        self
    }

    /// Copies the use of every local address pool into its service's shared figures (of the
    /// services of the snapshot adopted last).
    pub fn publish_laddr_usage(&self) {
        self.slots.publish_laddr_usage();
    }

    /// FULLNAT events counted so far.
    pub fn events(&self) -> Events {
        self.events
    }

    /// Switches to `next` (published after `previous`, the snapshot this worker had): the
    /// services that changed since get their new destination lists (the scheduler keeping its
    /// state as the kernel's hooks do) and local address pools (keeping their counters), new
    /// services fresh state; every other service keeps its state untouched, and the cost
    /// depends on what changed, not on the number of services. Static neighbours and timeouts
    /// are applied.
    pub fn adopt(&mut self, previous: Option<&Snapshot>, next: &Snapshot) {
        self.slots.adopt(previous, next);
        for &(port, ip, mac) in &next.neighbors {
            self.neighbors.learn(port, ip, mac);
        }
        for &(port, ip, mac) in &next.neighbors6 {
            self.neighbors6.learn(port, ip, mac);
        }
        self.conns.set_timeouts(next.timeouts);
        self.conns6.set_timeouts(next.timeouts);
    }

    /// Neighbours learned from ARP and neighbour discovery since the last call, to pass to
    /// the other workers.
    pub fn take_learned(&mut self) -> impl Iterator<Item = (usize, IpAddr, EthernetAddress)> + '_ {
        self.learned.drain(..)
    }

    /// Whether neighbours were learned since the last [`Pipeline::take_learned`].
    #[inline]
    pub fn has_learned(&self) -> bool {
        !self.learned.is_empty()
    }

    /// Records a neighbour another worker learned.
    pub fn learn(&mut self, port: usize, ip: IpAddr, mac: EthernetAddress) {
        match ip {
            IpAddr::V4(ip) => self.neighbors.learn(port, ip, mac),
            IpAddr::V6(ip) => self.neighbors6.learn(port, ip, mac),
        };
    }

    /// The neighbour table (for releasing packets that waited for ARP).
    pub fn neighbors(&self) -> &l2::neighbor::Table {
        &self.neighbors
    }

    /// The next hop whose MAC the frame of the last [`Verdict::Resolve6`] waits for; valid
    /// until the next packet.
    pub fn resolving6(&self) -> Ipv6Addr {
        self.resolving6
    }

    /// The IPv6 neighbour table (for releasing packets that waited for neighbour
    /// discovery).
    pub fn neighbors6(&self) -> &l2::neighbor::Table<Ipv6Addr> {
        &self.neighbors6
    }

    /// Number of connections and templates in this worker's tables.
    pub fn conns(&self) -> usize {
        self.conns.len() + self.conns6.len()
    }

    /// This worker's connections and templates as `ipvsadm -L -c` lists them.
    pub fn conn_entries(&self, now_ms: u64) -> Vec<conf::proto::ConnEntry> {
        let v4 = self.conns.iter().map(|(_, c)| conn_entry(c, now_ms));
        let v6 = self.conns6.iter().map(|(_, c)| conn_entry(c, now_ms));
        v4.chain(v6).collect()
    }

    /// Whether connections wait to be sent to the sync backups ([`Pipeline::take_sync`]).
    #[inline]
    pub fn has_sync(&self) -> bool {
        !self.sync_outbox.is_empty()
    }

    /// The connections a sync master sends, recorded since the last call (see
    /// `pipeline::sync`).
    pub fn take_sync(&mut self) -> impl Iterator<Item = crate::sync::SyncConn> + '_ {
        self.sync_outbox.drain(..)
    }

    /// Adds or refreshes a connection a sync master sent (the worker owns its flow).
    pub fn install_synced(
        &mut self,
        snapshot: &Snapshot,
        record: &crate::sync::SyncConn,
        now_ms: u64,
    ) -> Result<SyncInstalled, SyncRefused> {
        sync::install(self, snapshot, record, now_ms)
    }

    /// Timer work for one loop: expires at most `budget` connections, unbinding them from
    /// their real servers, and lets the schedulers age their caches.
    pub fn expire(&mut self, now_ms: u64, budget: usize) {
        let slots = &mut self.slots;
        self.conns.expire(now_ms, budget, |gone| {
            forward::unbind(&gone.dest, gone.counter);
            if let Some(local) = gone.local {
                slots.release_local(&gone.dest, local);
            }
        });
        self.conns6.expire(now_ms, budget, |gone| {
            forward::unbind(&gone.dest, gone.counter);
        });
        self.slots.expire(std::time::Duration::from_millis(now_ms));
        self.fragments.expire(now_ms);
    }

    /// Whether the worker has held fragments to take care of ([`Pipeline::take_released`]):
    /// their first fragment just came, or they waited too long. The worker asks after every
    /// packet (so that released fragments leave right behind their first one) and after
    /// [`Pipeline::expire`].
    #[inline]
    pub fn has_released(&self) -> bool {
        self.fragments.has_released()
    }

    /// The next key whose frames the worker holds ([`Verdict::Hold`]) and what becomes of
    /// them: each put through [`Pipeline::packet`] again, in the order held, or dropped.
    pub fn take_released(&mut self) -> Option<(FragmentKey, Released)> {
        self.fragments.take_released()
    }

    /// Looks at `frame`, received on port `in_port`, before [`Pipeline::packet_parsed`]
    /// processes it: classifies it and, for a TCP or UDP packet, hashes its flow and starts
    /// loading the index bucket of its connection ([`conn::Table::probe`]). The first of the
    /// three stages a worker takes a whole burst through (then [`Pipeline::candidate`], then
    /// [`Pipeline::packet_parsed`]), so that each packet's cache misses overlap with the
    /// others' instead of stalling it in turn. Nothing changes.
    #[inline]
    pub fn prefetch(&self, snapshot: &Snapshot, in_port: usize, frame: &[u8]) -> Parsed {
        let class = classify::classify(snapshot, in_port, frame);
        let probe = match &class {
            Class::L4 { flow, .. } => Some(self.conns.probe(&flow.key())),
            _ => None,
        };
        Parsed {
            class,
            probe,
            hit: None,
        }
    }

    /// The second stage: reads the index bucket [`Pipeline::prefetch`] started loading and
    /// starts loading the connection entry it points at ([`conn::Table::candidate`]).
    /// Nothing changes.
    #[inline]
    pub fn candidate(&self, parsed: &mut Parsed) {
        if let Some(probe) = parsed.probe {
            parsed.hit = self.conns.candidate(probe);
        }
    }

    /// Decides what happens to `frame`, received on port `in_port` at `now_ms`, rewriting it
    /// in place when it is to be sent.
    pub fn packet<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
    ) -> Verdict {
        let parsed = Parsed {
            class: classify::classify(snapshot, in_port, frame.data()),
            probe: None,
            hit: None,
        };
        self.packet_parsed(snapshot, in_port, frame, now_ms, &parsed)
    }

    /// [`Pipeline::packet`] for a frame [`Pipeline::prefetch`] (and maybe
    /// [`Pipeline::candidate`]) looked at (`parsed`), in the same snapshot, the frame unchanged
    /// since: the same verdict and the same rewrite, without reading the headers again.
    #[inline]
    pub fn packet_parsed<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
        parsed: &Parsed,
    ) -> Verdict {
        let out = match &parsed.class {
            Class::L4 { flow, local } => {
                trim_to(frame, flow.at.end);
                forward::l4(self, snapshot, frame, flow, *local, now_ms, parsed.hit)
            }
            Class::Arp => {
                let out = self.arp(snapshot, in_port, frame.data_mut());
                if out.is_ok() {
                    // The reply is written over the request, whose padding may run to any
                    // length the port receives (beyond its MTU even): it leaves as a minimum
                    // frame, as the kernel's does.
                    trim_to(frame, ether::MIN_FRAME_LEN);
                }
                out
            }
            Class::Echo => {
                trim_to_ipv4(frame);
                echo(snapshot, in_port, frame.data_mut())
            }
            Class::Nd => self.nd(snapshot, in_port, frame),
            Class::L4v6 { local } => {
                return forward6::l4(self, snapshot, in_port, frame, *local, now_ms);
            }
            Class::Icmp6Error { local } => {
                trim_to_ipv6(frame);
                return icmp6_error::forward(self, snapshot, in_port, frame, *local);
            }
            Class::Echo6 => {
                trim_to_ipv6(frame);
                echo6(snapshot, in_port, frame.data_mut())
            }
            Class::IcmpError => {
                trim_to_ipv4(frame);
                match icmp_error::forward(self, snapshot, in_port, frame) {
                    // No ICMP error is ever sent about an ICMP error.
                    Err(DropReason::TtlExceeded) => return Verdict::Drop(DropReason::TtlExceeded),
                    out => out,
                }
            }
            Class::Fragment { local, handed } => {
                match fragment::forward(self, snapshot, in_port, frame, *local, now_ms, *handed) {
                    fragment::Step::Send(out) => Ok(out),
                    fragment::Step::Done(verdict) => return verdict,
                }
            }
            Class::Punt(reason) => Ok(Out::Punt(*reason)),
            Class::Drop(reason) => Err(*reason),
        };
        egress::send(self, snapshot, in_port, frame, out)
    }

    /// [`Pipeline::packet`] for a frame another worker handed over ([`Verdict::Redirect`]),
    /// received on its port `in_port`. A packet is handed on at most once more, from a
    /// fragment's fragment owner to its flow's owner (see [`fragment`]); anything else that
    /// would be (a changed number of workers, which cannot happen while running) is dropped as
    /// `redirect_full`.
    pub fn handed_over<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
    ) -> Verdict {
        let class = match classify::classify(snapshot, in_port, frame.data()) {
            Class::Fragment { local, .. } => Class::Fragment {
                local,
                handed: true,
            },
            class => class,
        };
        let parsed = Parsed {
            class,
            probe: None,
            hit: None,
        };
        match self.packet_parsed(snapshot, in_port, frame, now_ms, &parsed) {
            Verdict::Redirect { .. } if !matches!(class, Class::Fragment { .. }) => {
                Verdict::Drop(DropReason::RedirectFull)
            }
            verdict => verdict,
        }
    }

    /// Answers ARP for addresses owned on the port and learns the sender. Out of line, as the
    /// other paths that are not a connection's packets are, so that the per-packet path
    /// stays small and keeps its values in registers.
    #[inline(never)]
    fn arp(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        data: &mut [u8],
    ) -> Result<Out, DropReason> {
        let port_mac = snapshot.ports.get(in_port).ok_or(DropReason::NotOurs)?.mac;
        let outcome = l2::arp::respond(data, port_mac, |ip| snapshot.owns_on(in_port, ip))?;
        let seen = outcome.received();
        let (ip, mac) = (seen.sender_protocol_addr, seen.sender_hardware_addr);
        let on_link = snapshot
            .routes
            .lookup(ip)
            .is_some_and(|hop| hop.port == in_port && hop.via.is_none());
        if !ip.is_unspecified()
            && on_link
            && !snapshot.owns(ip)
            && self.neighbors.learn(in_port, ip, mac)
            && self.learned.len() < LEARNED_MAX
        {
            self.learned.push((in_port, IpAddr::V4(ip), mac));
        }
        match outcome {
            l2::arp::Outcome::Reply(_) => Ok(Out::Back),
            l2::arp::Outcome::NoReply(_, reason) => Err(reason),
        }
    }

    /// Answers a neighbour solicitation for an address owned on the receiving port with an
    /// advertisement written over it, and learns the neighbour a solicitation or an
    /// advertisement names with its link-layer address (as Linux, and as [`Pipeline::arp`]
    /// learns from ARP); hands the rest of neighbour discovery to the kernel twin
    /// (solicitations for other addresses, which the kernel may own; advertisements, which
    /// its cache needs too) or drops it. Out of line, as [`Pipeline::arp`].
    #[inline(never)]
    fn nd<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
    ) -> Result<Out, DropReason> {
        let port = snapshot.ports.get(in_port).ok_or(DropReason::NotOurs)?;
        let data = frame.data();
        let (Some(eth), Some(ip)) = (
            data.first_chunk::<{ ether::HEADER_LEN }>(),
            data.get(ether::HEADER_LEN..),
        ) else {
            return Err(DropReason::Truncated);
        };
        let eth_src = ether::Packet::new_unchecked(&eth[..]).src_addr();
        let kernel_or = |reason| {
            if port.twin {
                Ok(Out::Punt(crate::verdict::PuntReason::Nd))
            } else {
                Err(reason)
            }
        };
        let (advert, seen) = match l2::nd::validate_ns(ip) {
            Ok(ns) => {
                let seen = ns.source_lladdr.map(|mac| (ns.src_addr, mac));
                if snapshot.owns6_on(in_port, ns.target) {
                    // rvs forwards between its ports (NAT), so it advertises itself a router,
                    // as Linux does with forwarding on.
                    let advert = l2::nd::solicited_advert(port.mac, &ns, eth_src, true);
                    (Ok(advert), seen)
                } else {
                    (Err(DropReason::NdNotOurs), seen)
                }
            }
            Err(l2::nd::Invalid::WrongType) => match l2::nd::validate_na(ip) {
                Ok(na) => (
                    Err(DropReason::NdIgnored),
                    na.target_lladdr.map(|mac| (na.target, mac)),
                ),
                Err(_) => return Err(DropReason::BadNd),
            },
            Err(_) => return Err(DropReason::BadNd),
        };
        if let Some((ip, mac)) = seen {
            self.learn_neighbor6(snapshot, in_port, ip, mac);
        }
        match advert {
            Ok(advert) if frame.set_data(&advert) => Ok(Out::Back),
            Ok(_) => Err(DropReason::NoHeadroom),
            Err(reason) => kernel_or(reason),
        }
    }

    /// Records `ip` at `mac` on `in_port` if it is a neighbour there (on-link by the IPv6
    /// routes, or link-local) and not the balancer's, and queues it for the other workers.
    fn learn_neighbor6(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        ip: Ipv6Addr,
        mac: EthernetAddress,
    ) {
        let on_link = crate::wire::ipv6::is_link_local(&ip)
            || snapshot
                .routes6
                .lookup(ip)
                .is_some_and(|hop| hop.port == in_port && hop.via.is_none());
        if on_link
            && !ip.is_unspecified()
            && snapshot.owned6(ip).is_none()
            && mac.is_unicast()
            && self.neighbors6.learn(in_port, ip, mac)
            && self.learned.len() < LEARNED_MAX
        {
            self.learned.push((in_port, IpAddr::V6(ip), mac));
        }
    }

    /// The identification of the next ICMP error rvs answers with; taken by
    /// [`Pipeline::sent_icmp_error`] once it is sent, so that a refused answer uses none.
    fn next_icmp_ident(&self) -> u16 {
        self.icmp_ident.wrapping_add(1)
    }

    /// Counts an ICMP error sent with [`Pipeline::next_icmp_ident`].
    fn sent_icmp_error(&mut self) {
        self.icmp_ident = self.next_icmp_ident();
        self.events.icmp_errors_sent += 1;
    }
}

/// Cuts `frame` to `end` bytes, the end of its IPv4 packet, when it is longer: Ethernet
/// padding (a short packet in a 60-byte frame) or trailing bytes beyond the total length
/// are not forwarded, as the kernel trims them on receipt (`pskb_trim_rcsum` in `ip_rcv`);
/// the NIC pads a short frame again on the wire. From here on a frame ends where its packet
/// ends. A compare per packet; the trim itself only for padded frames.
#[inline]
fn trim_to<F: Frame>(frame: &mut F, end: usize) {
    let len = frame.len();
    if len > end {
        // Cannot fail: `end` is within the frame.
        frame.trim(len - end);
    }
}

/// [`trim_to`] the end of a validated IPv4 packet, read from its header. Out of line: for
/// the classes that are not a connection's packets.
#[inline(never)]
fn trim_to_ipv4<F: Frame>(frame: &mut F) {
    let end = frame
        .data()
        .get(ether::HEADER_LEN..)
        .map(|ip| ether::HEADER_LEN + usize::from(ipv4::Packet::new_unchecked(ip).total_len()));
    if let Some(end) = end {
        trim_to(frame, end);
    }
}

/// A connection as `ipvsadm -L -c` lists it.
fn conn_entry<A: conn::Family>(c: &conn::Conn<Arc<Real>, A>, now_ms: u64) -> conf::proto::ConnEntry
where
    A::Sock: Into<std::net::SocketAddr>,
{
    conf::proto::ConnEntry {
        proto: c.proto(),
        expire: u32::try_from(c.expires().saturating_sub(now_ms).div_ceil(1000))
            .unwrap_or(u32::MAX),
        state: c.state().as_str().to_owned(),
        client: c.client().into(),
        virt: c.virt().into(),
        dest: c.real().into(),
    }
}

/// [`trim_to`] the end of a valid IPv6 packet, read from its header. Out of line, as
/// [`trim_to_ipv4`].
#[inline(never)]
fn trim_to_ipv6<F: Frame>(frame: &mut F) {
    let end = frame.data().get(ether::HEADER_LEN..).map(|ip| {
        ether::HEADER_LEN
            + crate::wire::ipv6::HEADER_LEN
            + usize::from(crate::wire::ipv6::Packet::new_unchecked(ip).payload_len())
    });
    if let Some(end) = end {
        trim_to(frame, end);
    }
}

/// Answers an ICMPv6 echo request to an owned address. Out of line, as [`Pipeline::arp`].
#[inline(never)]
fn echo6(snapshot: &Snapshot, in_port: usize, data: &mut [u8]) -> Result<Out, DropReason> {
    let port_mac = snapshot
        .ports
        .get(in_port)
        .map_or(EthernetAddress([0; 6]), |p| p.mac);
    l2::echo6::respond(data, port_mac)?;
    Ok(Out::Back)
}

/// Answers an ICMP echo request to an owned address. Out of line, as [`Pipeline::arp`].
#[inline(never)]
fn echo(snapshot: &Snapshot, in_port: usize, data: &mut [u8]) -> Result<Out, DropReason> {
    let port_mac = snapshot
        .ports
        .get(in_port)
        .map_or(EthernetAddress([0; 6]), |p| p.mac);
    l2::icmp::respond(data, port_mac, |a| snapshot.owns(a))?;
    Ok(Out::Back)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::wire::ether::{self, EthernetAddress};
    use crate::xmit::testing::{frame, tcp_header, Ip, ROUTER_MAC};

    #[test]
    fn owner_is_stable_in_range_and_spreads() {
        let ip = Ipv4Addr::new(198, 51, 100, 7);
        for workers in 1..=8 {
            let mut seen = vec![0u32; workers];
            for port in 1024..3072 {
                let w = owner(ip, port, workers);
                assert!(w < workers);
                assert_eq!(w, owner(ip, port, workers));
                seen[w] += 1;
            }
            let mean = 2048 / workers as u32;
            assert!(
                seen.iter().all(|&n| n > mean / 2),
                "{workers} workers: {seen:?}"
            );
        }
        assert_eq!(owner(ip, 80, 0), 0, "no division by zero");
    }

    const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const OTHER_PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const GW1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x01];
    const GW2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0x02];
    const REAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x0b];
    const NEW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x99];

    /// One port; NAT real 172.16.0.11:8080 behind gateway `gateway`, DR real 10.0.0.11 on
    /// link (or behind the gateway when `dr_on_link` is false).
    fn config(mode: &str, gateway: &str, dr_on_link: bool) -> conf::Config {
        let real = if mode == "nat" {
            "172.16.0.11:8080"
        } else {
            "10.0.0.11:80"
        };
        let dr_route = if dr_on_link {
            String::new()
        } else {
            format!("[[route]]\ndst = \"10.0.0.11/32\"\nvia = \"{gateway}\"\nport = \"dpdk0\"\n")
        };
        let text = format!(
            r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[route]]
dst = "172.16.0.0/24"
via = "{gateway}"
port = "dpdk0"
{dr_route}
[[neighbor]]
ip = "10.0.0.254"
mac = "02:00:00:00:fe:01"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.253"
mac = "02:00:00:00:fe:02"
port = "dpdk0"
[[neighbor]]
ip = "10.0.0.11"
mac = "02:00:00:00:0a:0b"
port = "dpdk0"
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
  [[service.real]]
  addr = "{real}"
  mode = "{mode}"
"#
        );
        conf::Config::parse(&text, "t.toml").unwrap()
    }

    fn snapshot(config: &conf::Config, port_mac: [u8; 6], previous: Option<&Snapshot>) -> Snapshot {
        Snapshot::build(config, &[port_mac], previous, 1).unwrap()
    }

    /// A segment of the client's connection to the VIP, sent to `port_mac`.
    fn segment(syn: bool, port_mac: [u8; 6]) -> VecFrame {
        let ip = Ip::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = tcp_header(syn, !syn, false, false, false);
        let packet = ip.tcp(40312, 80, &tcp, b"x");
        VecFrame::new(frame(ROUTER_MAC, EthernetAddress(port_mac), &packet, &[]))
    }

    /// Sends one segment; returns the verdict and the Ethernet (destination, source).
    fn send(p: &mut Pipeline, snapshot: &Snapshot, syn: bool) -> (Verdict, [u8; 6], [u8; 6]) {
        let mut f = segment(syn, snapshot.ports[0].mac.0);
        let verdict = p.packet(snapshot, 0, &mut f, 0);
        let eth = ether::Packet::new_unchecked(f.data());
        (verdict, eth.dst_addr().0, eth.src_addr().0)
    }

    const TX: Verdict = Verdict::Tx { port: 0 };

    /// A segment from client port `cport` with the given flags.
    fn flagged(cport: u16, syn: bool, ack: bool, fin: bool, rst: bool) -> VecFrame {
        let ip = Ip::new(Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = tcp_header(syn, ack, fin, rst, false);
        let packet = ip.tcp(cport, 80, &tcp, b"x");
        VecFrame::new(frame(ROUTER_MAC, EthernetAddress(PORT_MAC), &packet, &[]))
    }

    #[test]
    fn bursts_with_hints_give_what_single_packets_give() {
        // Flows opening, closing, resetting and reusing their port, several packets of a flow
        // in one burst (so that earlier packets change what later hints name).
        let mut frames = Vec::new();
        for cport in 1000..1006 {
            frames.push(flagged(cport, true, false, false, false));
        }
        for cport in 1000..1006 {
            frames.push(flagged(cport, false, true, false, false));
            frames.push(flagged(cport, false, true, true, false));
        }
        for cport in 1000..1003 {
            frames.push(flagged(cport, false, false, false, true));
            frames.push(flagged(cport, true, false, false, false));
            frames.push(flagged(cport, false, true, false, false));
        }
        frames.push(flagged(2000, false, true, false, false));
        for mode in ["nat", "dr"] {
            let config = config(mode, "10.0.0.254", true);
            let (one, burst) = (
                snapshot(&config, PORT_MAC, None),
                snapshot(&config, PORT_MAC, None),
            );
            let mut single = Pipeline::new(0, 1, 64, &one, 0).unwrap();
            let mut bursty = Pipeline::new(0, 1, 64, &burst, 0).unwrap();
            for (b, chunk) in frames.chunks(4).enumerate() {
                let mut a: Vec<VecFrame> = chunk.to_vec();
                let mut c: Vec<VecFrame> = chunk.to_vec();
                let now = b as u64;
                let hints: Vec<_> = c
                    .iter()
                    .map(|f| bursty.prefetch(&burst, 0, f.data()))
                    .collect();
                for ((fa, fc), hint) in a.iter_mut().zip(&mut c).zip(hints) {
                    let va = single.packet(&one, 0, fa, now);
                    let vc = bursty.packet_parsed(&burst, 0, fc, now, &hint);
                    assert_eq!((va, fa.data()), (vc, fc.data()), "{mode}, burst {b}");
                }
            }
            assert_eq!(single.conns(), bursty.conns(), "{mode}");
            let totals = |s: &Snapshot| {
                let service = s.services().next().expect("one service");
                service.traffic.totals()
            };
            assert_eq!(totals(&one), totals(&burst), "{mode}");
            assert_eq!(
                totals(&one).conns,
                9,
                "{mode}: 6 opened, 3 reopened after RST"
            );
        }
    }

    #[test]
    fn egress_cache_sees_neighbour_and_route_changes_at_the_next_packet() {
        let first = snapshot(&config("nat", "10.0.0.254", true), PORT_MAC, None);
        let mut p = Pipeline::new(0, 1, 64, &first, 0).unwrap();
        assert_eq!(send(&mut p, &first, true), (TX, GW1_MAC, PORT_MAC));
        assert_eq!(
            send(&mut p, &first, false),
            (TX, GW1_MAC, PORT_MAC),
            "cached"
        );
        // The gateway announces a new MAC (ARP seen by this worker or a peer).
        p.learn(
            0,
            Ipv4Addr::new(10, 0, 0, 254).into(),
            EthernetAddress(NEW_MAC),
        );
        assert_eq!(send(&mut p, &first, false), (TX, NEW_MAC, PORT_MAC));
        // A new configuration routes the real server's network through the other gateway.
        let second = snapshot(&config("nat", "10.0.0.253", true), PORT_MAC, Some(&first));
        p.adopt(Some(&first), &second);
        assert_eq!(send(&mut p, &second, false), (TX, GW2_MAC, PORT_MAC));
        // Same routes, another port MAC: a new snapshot is never answered from the old one.
        let third = snapshot(
            &config("nat", "10.0.0.253", true),
            OTHER_PORT_MAC,
            Some(&second),
        );
        p.adopt(Some(&second), &third);
        assert_eq!(send(&mut p, &third, false), (TX, GW2_MAC, OTHER_PORT_MAC));
    }

    #[test]
    fn egress_cache_tun_sees_neighbour_and_route_changes_at_the_next_packet() {
        let first = snapshot(&config("tun", "10.0.0.254", true), PORT_MAC, None);
        let mut p = Pipeline::new(0, 1, 64, &first, 0).unwrap();
        assert_eq!(send(&mut p, &first, true), (TX, REAL_MAC, PORT_MAC));
        assert_eq!(
            send(&mut p, &first, false),
            (TX, REAL_MAC, PORT_MAC),
            "cached"
        );
        p.learn(
            0,
            Ipv4Addr::new(10, 0, 0, 11).into(),
            EthernetAddress(NEW_MAC),
        );
        assert_eq!(send(&mut p, &first, false), (TX, NEW_MAC, PORT_MAC));
        // The real server is now reached through the gateway (a tunnel may cross routers).
        let second = snapshot(&config("tun", "10.0.0.254", false), PORT_MAC, Some(&first));
        p.adopt(Some(&first), &second);
        assert_eq!(send(&mut p, &second, false), (TX, GW1_MAC, PORT_MAC));
    }

    #[test]
    fn egress_cache_dr_real_server_leaving_the_link_is_no_route() {
        let first = snapshot(&config("dr", "10.0.0.254", true), PORT_MAC, None);
        let mut p = Pipeline::new(0, 1, 64, &first, 0).unwrap();
        assert_eq!(send(&mut p, &first, true), (TX, REAL_MAC, PORT_MAC));
        assert_eq!(
            send(&mut p, &first, false),
            (TX, REAL_MAC, PORT_MAC),
            "cached"
        );
        p.learn(
            0,
            Ipv4Addr::new(10, 0, 0, 11).into(),
            EthernetAddress(NEW_MAC),
        );
        assert_eq!(send(&mut p, &first, false), (TX, NEW_MAC, PORT_MAC));
        let second = snapshot(&config("dr", "10.0.0.254", false), PORT_MAC, Some(&first));
        p.adopt(Some(&first), &second);
        let (verdict, _, _) = send(&mut p, &second, false);
        assert_eq!(verdict, Verdict::Drop(DropReason::NoRoute));
    }
}
