//! The pipeline: one received frame in, one verdict out, with the state one worker owns.
//!
//! Pure over a [`Frame`] and a clock passed in, so the same code runs on DPDK mbufs in workers
//! and on byte vectors in tests and benchmarks. Stages, in packet order:
//!
//! 1. Ethernet dispatch; ARP answered and learned from ([`l2::arp`], [`l2::neighbor`]).
//! 2. IPv4 header validation; frames for another MAC dropped.
//! 3. Owned destination: ICMP echo answered ([`l2::icmp`]); ICMP errors about a connection
//!    and TCP/UDP to a virtual service go to [`forward`].
//! 4. Other destinations: replies of NAT connections (real server → client) go to
//!    [`forward`]; everything else is dropped (`not_ours`): rvs is not a router.
//!
//! A packet of a flow that another worker owns is handed to it ([`Verdict::Redirect`]); see
//! [`owner`] for the rule.
//!
//! Bursts: before processing a burst, the worker passes every frame to
//! [`Pipeline::prefetch`], which looks its connection up and asks the CPU for the entry, so
//! that the cache misses of a burst's lookups overlap; each frame then goes through
//! [`Pipeline::packet_hinted`] with what was found ([`Hint`]), which reuses it when it still
//! holds. [`Pipeline::packet`] is the same without a hint.

use crate::conn;
use crate::forward;
use crate::frame::Frame;
use crate::l2;
use crate::laddr;
use crate::service::Real;
use crate::snapshot::Snapshot;
use crate::verdict::{DropReason, Verdict};
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::icmp::{self, Message};
use crate::wire::ipv4::{self, Protocol};
use crate::wire::udp;
use crate::xmit::{self, fullnat::IsnKey};
use crate::MacAddr;
use sched::Scheduler;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

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
    pub(crate) worker: usize,
    pub(crate) workers: usize,
    pub(crate) conns: conn::Table<Arc<Real>>,
    /// `scheds[i]` schedules `snapshot.services[i]`.
    pub(crate) scheds: Vec<Scheduler>,
    pub(crate) neighbors: l2::neighbor::Table,
    /// Where packets to each real server leave, from the last route and neighbour lookups.
    pub(crate) egress: l2::egress::Cache,
    /// Neighbours learned since the worker last drained this list.
    learned: Vec<(usize, Ipv4Addr, MacAddr)>,
    /// IP identification of the tunnel outer headers rvs makes.
    pub(crate) ip_ident: u16,
    /// IP identification of the ICMP errors rvs answers with: a counter of their own, as
    /// Linux's ICMP socket does not share the tunnel's.
    pub(crate) icmp_ident: u16,
    /// `pools[i]`: this worker's FULLNAT local addresses and ports of `snapshot.services[i]`
    /// (`None` for services without local addresses).
    pub(crate) pools: Vec<Option<laddr::Pool>>,
    /// `pool_keys[i]`: protocol and VIP of the service of `pools[i]`.
    pub(crate) pool_keys: Vec<(conf::Proto, std::net::SocketAddrV4)>,
    /// Secret of the FULLNAT initial sequence numbers.
    pub(crate) isn_key: IsnKey,
    /// FULLNAT events that are not drops.
    pub(crate) events: Events,
}

/// What [`Pipeline::prefetch`] found for a frame: its connection, if any, as the lookup
/// answered then. Only a hint: [`Pipeline::packet_hinted`] checks it still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hint(Option<conn::Hit>);

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
}

/// Why a pipeline could not be created.
pub type BuildError = conn::TableError;

impl Pipeline {
    /// The state of worker `worker` of `workers`, with a connection table of
    /// `conn_table_size` entries, set up for `snapshot`.
    pub fn new(
        worker: usize,
        workers: usize,
        conn_table_size: u32,
        snapshot: &Snapshot,
        now_ms: u64,
    ) -> Result<Pipeline, BuildError> {
        let mut config = conn::Config::new(conn_table_size);
        config.timeouts = snapshot.timeouts;
        let mut pipeline = Pipeline {
            worker,
            workers: workers.max(1),
            conns: conn::Table::new(config, now_ms)?,
            scheds: Vec::new(),
            neighbors: l2::neighbor::Table::with_capacity(1024),
            egress: l2::egress::Cache::default(),
            learned: Vec::with_capacity(LEARNED_MAX),
            ip_ident: (worker as u16).wrapping_mul(0x1000),
            icmp_ident: (worker as u16).wrapping_mul(0x1000),
            pools: Vec::new(),
            pool_keys: Vec::new(),
            isn_key: IsnKey([0; 2]),
            events: Events::default(),
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

    /// Copies the use of every local address pool into its service's shared figures.
    pub fn publish_laddr_usage(&self, snapshot: &Snapshot) {
        for (pool, service) in self.pools.iter().zip(&snapshot.services) {
            let Some(pool) = pool else {
                continue;
            };
            for lip in pool.stats() {
                let usage = &service.laddr_usage;
                usage.store(self.worker, lip.addr, u64::from(lip.conns), lip.conflicts);
            }
        }
    }

    /// FULLNAT events counted so far.
    pub fn events(&self) -> Events {
        self.events
    }

    /// Where this worker's port cursors start: per worker, so that workers do not walk their
    /// port ranges in step.
    fn pool_seed(&self) -> u64 {
        (self.worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Switches to `next` (published after `previous`): schedulers of services that
    /// continue get the new destination lists, new services get fresh schedulers, local
    /// address pools are rebuilt keeping their counters, static neighbours and timeouts are
    /// applied.
    pub fn adopt(&mut self, previous: Option<&Snapshot>, next: &Snapshot) {
        self.adopt_pools(previous, next);
        let mut old: Vec<Option<Scheduler>> = std::mem::take(&mut self.scheds)
            .into_iter()
            .map(Some)
            .collect();
        for service in &next.services {
            let kept = previous
                .and_then(|p| p.service_index(service.proto, service.vip))
                .and_then(|i| old.get_mut(i))
                .and_then(Option::take);
            let sched = match kept {
                Some(mut s) => {
                    if !Arc::ptr_eq(s.dests(), &service.dests) {
                        s.set_dests(Arc::clone(&service.dests));
                    }
                    s
                }
                None => Scheduler::bind(Arc::clone(&service.dests)),
            };
            self.scheds.push(sched);
        }
        for &(port, ip, mac) in &next.neighbors {
            self.neighbors.learn(port, ip, mac);
        }
        self.conns.set_timeouts(next.timeouts);
    }

    /// Rebuilds the local address pools for `next`, carrying over each continuing service's
    /// cursors and counters.
    fn adopt_pools(&mut self, previous: Option<&Snapshot>, next: &Snapshot) {
        let mut old_pools = std::mem::take(&mut self.pools);
        self.pool_keys = next.services.iter().map(|s| (s.proto, s.vip)).collect();
        let seed = self.pool_seed();
        for service in &next.services {
            let kept = previous
                .and_then(|p| p.service_index(service.proto, service.vip))
                .and_then(|i| old_pools.get_mut(i))
                .and_then(Option::take);
            let pool = if service.laddrs.is_empty() {
                None
            } else {
                let config = laddr::Config {
                    ports: next.laddr_ports,
                    ..laddr::Config::default()
                };
                match laddr::Pool::new(&service.laddrs, &config, self.worker, self.workers, seed) {
                    Ok(mut pool) => {
                        if let Some(old) = &kept {
                            pool.inherit(old);
                        }
                        Some(pool)
                    }
                    Err(e) => {
                        log::error!("service {}: local addresses unusable: {e:?}", service.vip);
                        None
                    }
                }
            };
            self.pools.push(pool);
        }
    }

    /// Neighbours learned from ARP since the last call, to pass to the other workers.
    pub fn take_learned(&mut self) -> impl Iterator<Item = (usize, Ipv4Addr, MacAddr)> + '_ {
        self.learned.drain(..)
    }

    /// Whether neighbours were learned since the last [`Pipeline::take_learned`].
    #[inline]
    pub fn has_learned(&self) -> bool {
        !self.learned.is_empty()
    }

    /// Records a neighbour another worker learned.
    pub fn learn(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr) {
        self.neighbors.learn(port, ip, mac);
    }

    /// The neighbour table (for releasing packets that waited for ARP).
    pub fn neighbors(&self) -> &l2::neighbor::Table {
        &self.neighbors
    }

    /// Number of connections and templates in this worker's table.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    /// This worker's connections and templates as `ipvsadm -L -c` lists them.
    pub fn conn_entries(&self, now_ms: u64) -> Vec<conf::proto::ConnEntry> {
        self.conns
            .iter()
            .map(|(_, c)| conf::proto::ConnEntry {
                proto: c.proto(),
                expire: u32::try_from(c.expires().saturating_sub(now_ms).div_ceil(1000))
                    .unwrap_or(u32::MAX),
                state: c.state().as_str().to_owned(),
                client: c.client(),
                virt: c.virt(),
                dest: c.real(),
            })
            .collect()
    }

    /// Timer work for one loop: expires at most `budget` connections, unbinding them from
    /// their real servers, and lets the schedulers age their caches.
    pub fn expire(&mut self, now_ms: u64, budget: usize) {
        let (pools, keys) = (&mut self.pools, &self.pool_keys);
        self.conns.expire(now_ms, budget, |gone| {
            forward::unbind(&gone.dest, gone.counter);
            if let Some(local) = gone.local {
                forward::release_local(pools, keys, &gone.dest, local);
            }
        });
        let now = std::time::Duration::from_millis(now_ms);
        for s in &mut self.scheds {
            s.expire(now);
        }
    }

    /// Warms the caches for `frame` before [`Pipeline::packet_hinted`] sees it: looks up the
    /// connection of a TCP or UDP packet and prefetches its entry ([`conn::Table::prefetch`]).
    /// The worker does this for a whole burst first, so that the cache misses of the lookups
    /// overlap instead of stalling each packet in turn, and hands what was found to
    /// [`Pipeline::packet_hinted`], which then need not search the index again. The frame is
    /// read without being validated (a malformed one only costs a useless lookup); nothing
    /// changes. Frames that [`Pipeline::packet`] drops at once (another MAC) are skipped.
    pub fn prefetch(&self, snapshot: &Snapshot, in_port: usize, frame: &[u8]) -> Hint {
        // Ethernet and the fixed IPv4 header through views of known size; the ports (first
        // in TCP and UDP alike) after the header, whatever its length.
        let Some((head, rest)) = frame.split_first_chunk::<{ ether::HEADER_LEN }>() else {
            return Hint::default();
        };
        let eth = ether::Packet::new_unchecked(head);
        let ours = snapshot
            .ports
            .get(in_port)
            .is_some_and(|p| eth.dst_addr() == EthernetAddress(p.mac));
        let Some(ip) = rest.first_chunk::<{ ipv4::HEADER_LEN }>() else {
            return Hint::default();
        };
        let ip = ipv4::Packet::new_unchecked(ip);
        let proto = match ip.protocol() {
            Protocol::Tcp => conf::Proto::Tcp,
            Protocol::Udp => conf::Proto::Udp,
            _ => return Hint::default(),
        };
        if !ours || eth.ethertype() != EtherType::Ipv4 {
            return Hint::default();
        }
        let Some(ports) = rest
            .get(ip.header_len()..)
            .and_then(<[u8]>::first_chunk::<4>)
        else {
            return Hint::default();
        };
        let ports = udp::Packet::new_unchecked(ports);
        let key = conn::FlowKey::new(
            proto,
            SocketAddrV4::new(ip.src_addr(), ports.src_port()),
            SocketAddrV4::new(ip.dst_addr(), ports.dst_port()),
        );
        Hint(self.conns.prefetch(&key))
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
        self.packet_hinted(snapshot, in_port, frame, now_ms, Hint::default())
    }

    /// [`Pipeline::packet`] for a frame whose connection [`Pipeline::prefetch`] looked up
    /// (`hint`): the same verdict and the same rewrite, with the lookup's answer reused when it
    /// still holds ([`conn::Table::lookup_hinted`]).
    pub fn packet_hinted<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
        hint: Hint,
    ) -> Verdict {
        let Some(port) = snapshot.ports.get(in_port) else {
            return Verdict::Drop(DropReason::NotOurs);
        };
        let (ethertype, dst_mac) = match ether::Packet::new_checked(frame.data()) {
            Ok(eth) => (eth.ethertype(), eth.dst_addr()),
            Err(reason) => return Verdict::Drop(reason),
        };
        match ethertype {
            EtherType::Arp => self.arp(snapshot, in_port, port.mac, frame.data_mut()),
            EtherType::Ipv4 if dst_mac != EthernetAddress(port.mac) => {
                Verdict::Drop(DropReason::ForeignMac)
            }
            EtherType::Ipv4 => self.ipv4(snapshot, in_port, frame, now_ms, hint),
            t if t.is_vlan() => Verdict::Drop(DropReason::VlanTagged),
            _ => Verdict::Drop(DropReason::UnsupportedEthertype),
        }
    }

    /// Answers ARP for addresses owned on the port and learns the sender. Kept out of
    /// [`Pipeline::packet_hinted`] (as the other paths that are not a connection's packets
    /// are), so that the per-packet path stays small and keeps its values in registers.
    #[inline(never)]
    fn arp(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        port_mac: MacAddr,
        data: &mut [u8],
    ) -> Verdict {
        let outcome = match l2::arp::respond(data, port_mac, |ip| snapshot.owns_on(in_port, ip)) {
            Ok(outcome) => outcome,
            Err(reason) => return Verdict::Drop(reason),
        };
        let seen = outcome.received();
        let (ip, mac) = (seen.sender_protocol_addr, seen.sender_hardware_addr.0);
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
            self.learned.push((in_port, ip, mac));
        }
        match outcome {
            l2::arp::Outcome::Reply(_) => Verdict::Tx { port: in_port },
            l2::arp::Outcome::NoReply(_, reason) => Verdict::Drop(reason),
        }
    }

    fn ipv4<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
        hint: Hint,
    ) -> Verdict {
        let eth = ether::Packet::new_unchecked(frame.data());
        let ip = ipv4::Packet::new_unchecked(eth.payload());
        if let Err(reason) = ip.validate() {
            return Verdict::Drop(reason);
        }
        let (dst, protocol) = (ip.dst_addr(), ip.protocol());
        let (header_len, total_len) = (ip.header_len(), usize::from(ip.total_len()));
        let local = snapshot.owns(dst);
        if let Protocol::Tcp | Protocol::Udp = protocol {
            let at = xmit::Headers {
                protocol,
                l4: ether::HEADER_LEN + header_len,
                end: ether::HEADER_LEN + total_len,
            };
            return forward::l4(self, snapshot, in_port, frame, at, local, now_ms, hint.0);
        }
        self.not_l4(snapshot, in_port, frame, now_ms, local, protocol)
    }

    /// [`Pipeline::ipv4`] for a validated packet that is neither TCP nor UDP: ICMP echo
    /// requests answered, ICMP errors about a connection forwarded, the rest dropped. Out of
    /// line, as [`Pipeline::arp`].
    #[inline(never)]
    fn not_l4<F: Frame>(
        &mut self,
        snapshot: &Snapshot,
        in_port: usize,
        frame: &mut F,
        now_ms: u64,
        local: bool,
        protocol: Protocol,
    ) -> Verdict {
        let eth = ether::Packet::new_unchecked(frame.data());
        let ip = ipv4::Packet::new_unchecked(eth.payload());
        let icmp_type = match protocol {
            Protocol::Icmp => icmp::Packet::new_checked(ip.payload())
                .map(|p| p.msg_type())
                .ok(),
            _ => None,
        };
        match (local, protocol, icmp_type) {
            (true, Protocol::Icmp, Some(Message::EchoRequest)) => {
                echo(snapshot, in_port, frame.data_mut())
            }
            (_, Protocol::Icmp, Some(m)) if m.is_error() => {
                forward::icmp_error(self, snapshot, in_port, frame, now_ms)
            }
            (true, Protocol::Icmp, _) => Verdict::Drop(DropReason::IcmpIgnored),
            (true, _, _) => Verdict::Drop(DropReason::UnsupportedProtocol),
            (false, _, _) => Verdict::Drop(DropReason::NotOurs),
        }
    }
}

/// Answers an ICMP echo request to an owned address.
fn echo(snapshot: &Snapshot, in_port: usize, data: &mut [u8]) -> Verdict {
    let port_mac = snapshot.ports.get(in_port).map_or([0; 6], |p| p.mac);
    match l2::icmp::respond(data, port_mac, |a| snapshot.owns(a)) {
        Ok(()) => Verdict::Tx { port: in_port },
        Err(reason) => Verdict::Drop(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
