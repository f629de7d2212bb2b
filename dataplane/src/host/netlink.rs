//! rtnetlink for the twins: their set-up at start, and the follower of their IPv4 addresses.
//!
//! Messages are built and parsed by `netlink-packet-route` over `netlink-sys` sockets
//! (synchronous; the rust-netlink crates that `rtnetlink` wraps for tokio), so no netlink
//! wire format is written here.
//!
//! [`Follower`] keeps, for every twin name, the exact set of its IPv4 `(address, prefix)`:
//! one dump at start, then `RTMGRP_IPV4_IFADDR` and `RTMGRP_LINK` events. A twin is matched
//! by name, so a twin that is deleted and created again (new ifindex) is followed on; a
//! missed event (socket overrun, `ENOBUFS`) triggers a new dump. Every change is published
//! as an [`AddrEvent`] on a channel.

use conf::Ipv4Net;
use crossbeam::channel::{self, Receiver, Sender};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// `RTMGRP_LINK` (linux/rtnetlink.h): link creation, change and removal.
const RTMGRP_LINK: u32 = 0x1;
/// `RTMGRP_IPV4_IFADDR`: IPv4 addresses added and removed.
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
/// `ENOBUFS`: the kernel dropped events because the socket's buffer was full.
const ENOBUFS: i32 = 105;
/// `EEXIST`: the address is already there.
const EEXIST: i32 = 17;
/// How long the follower waits when no event is pending.
const POLL: Duration = Duration::from_millis(2);
/// Receive buffer for one datagram (a dump part is at most a page or two).
const RECV_BUFFER: usize = 64 * 1024;

/// An address of a followed interface, with its prefix length.
pub type Owned = (Ipv4Addr, u8);

/// A change of a followed interface's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEvent {
    pub iface: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// `true` when the address appeared, `false` when it went.
    pub added: bool,
}

/// A request/response rtnetlink socket.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A link as a dump reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
}

/// An IPv4 address as a dump or an event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    /// `IFA_LABEL`: the interface name, or `name:suffix` for a labelled address.
    pub label: Option<String>,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Rtnl {
    /// A socket talking to the kernel of the current network namespace.
    pub fn new() -> io::Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Sends `message` and collects the answers: every message of a dump, or none for an
    /// acknowledged change. A kernel error becomes an `io::Error` with its errno.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), message.into());
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        let mut answers = Vec::new();
        loop {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                // net_tap's SIGIO may interrupt the call.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for m in parse(self.buf.get(..n).unwrap_or_default()) {
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        answers.push(inner);
                        if flags & NLM_F_DUMP == 0 {
                            return Ok(answers);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every link with its name.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers.into_iter().filter_map(link_of).collect())
    }

    /// Every IPv4 address of every link.
    pub fn ipv4_addrs(&mut self) -> io::Result<Vec<Address>> {
        let mut get = AddressMessage::default();
        get.header.family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetAddress(get), NLM_F_DUMP)?;
        Ok(answers.into_iter().filter_map(address_of).collect())
    }

    /// The ifindex of `name`.
    pub fn index_of(&mut self, name: &str) -> io::Result<u32> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
    }

    /// Adds `net` to link `index` (already there is fine).
    pub fn add_addr(&mut self, index: u32, net: Ipv4Net) -> io::Result<()> {
        let mut add = AddressMessage::default();
        add.header.family = AddressFamily::Inet;
        add.header.prefix_len = net.prefix_len;
        add.header.index = index;
        add.attributes
            .push(AddressAttribute::Local(IpAddr::V4(net.addr)));
        add.attributes
            .push(AddressAttribute::Address(IpAddr::V4(net.addr)));
        match self.request(
            RouteNetlinkMessage::NewAddress(add),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Adds the IPv6 `net` to link `index` without duplicate address detection (rvs owns the
    /// address and answers for it on the wire; the kernel must use it at once, as for IPv4);
    /// an address already there is no error.
    pub fn add_addr6(&mut self, index: u32, net: conf::Ipv6Net) -> io::Result<()> {
        let mut add = AddressMessage::default();
        add.header.family = AddressFamily::Inet6;
        add.header.prefix_len = net.prefix_len;
        add.header.index = index;
        add.header.flags = AddressHeaderFlags::Nodad;
        add.attributes
            .push(AddressAttribute::Address(IpAddr::V6(net.addr)));
        add.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        match self.request(
            RouteNetlinkMessage::NewAddress(add),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Removes `net` from link `index`.
    pub fn del_addr(&mut self, index: u32, net: Ipv4Net) -> io::Result<()> {
        let mut del = AddressMessage::default();
        del.header.family = AddressFamily::Inet;
        del.header.prefix_len = net.prefix_len;
        del.header.index = index;
        del.attributes
            .push(AddressAttribute::Local(IpAddr::V4(net.addr)));
        self.request(RouteNetlinkMessage::DelAddress(del), NLM_F_ACK)
            .map(drop)
    }

    /// Sets link `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut set = LinkMessage::default();
        set.header.index = index;
        set.header.flags = LinkFlags::Up;
        set.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(set), NLM_F_ACK)
            .map(drop)
    }
}

/// Every complete message of a datagram (parsing stops at the first it cannot read).
fn parse(mut bytes: &[u8]) -> Vec<NetlinkMessage<RouteNetlinkMessage>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) else {
            log::debug!("netlink: unreadable message skipped");
            break;
        };
        let len = m.header.length as usize;
        out.push(m);
        // Messages are 4-byte aligned within a datagram.
        let next = len.div_ceil(4) * 4;
        if len == 0 || next >= bytes.len() {
            break;
        }
        bytes = &bytes[next..];
    }
    out
}

fn link_of(m: RouteNetlinkMessage) -> Option<Link> {
    let (RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l)) = m else {
        return None;
    };
    let name = l.attributes.into_iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n),
        _ => None,
    })?;
    Some(Link {
        index: l.header.index,
        name,
    })
}

fn address_of(m: RouteNetlinkMessage) -> Option<Address> {
    let (RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a)) = m else {
        return None;
    };
    if a.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for attr in a.attributes {
        match attr {
            AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(ip),
            AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(ip),
            AddressAttribute::Label(l) => label = Some(l),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
    // point-to-point links and the same address otherwise.
    Some(Address {
        index: a.header.index,
        label,
        addr: local.or(address)?,
        prefix_len: a.header.prefix_len,
    })
}

/// Prepares twin `iface` for the kernel: ARP left to rvs, `addrs` on it, link up.
///
/// `arp_ignore = 8` ("do not reply for any local address"): rvs answers ARP for every
/// address on the twin itself, from the fast path, and punts the requests to the kernel
/// only so that its neighbour table stays right. Were the kernel to answer too, every
/// request would get two replies, and for an address the fast path has just stopped
/// owning (a VIP keepalived moved away) the kernel's late reply would pull traffic back.
///
/// IPv6 addresses (`addrs6`) go on without duplicate address detection: rvs answers
/// neighbour solicitations for them itself and never hands those to the kernel, so the
/// kernel's answers cannot double rvs's.
pub fn configure_twin(
    iface: &str,
    addrs: &[Ipv4Net],
    addrs6: &[conf::Ipv6Net],
) -> Result<(), String> {
    let sysctl = format!("/proc/sys/net/ipv4/conf/{iface}/arp_ignore");
    std::fs::write(&sysctl, "8").map_err(|e| format!("twin {iface}: {sysctl}: {e}"))?;
    let mut rtnl = Rtnl::new().map_err(|e| format!("twin {iface}: rtnetlink socket: {e}"))?;
    let index = rtnl
        .index_of(iface)
        .map_err(|e| format!("twin {iface}: {e}"))?;
    for &net in addrs {
        rtnl.add_addr(index, net)
            .map_err(|e| format!("twin {iface}: add address {net}: {e}"))?;
    }
    if !addrs6.is_empty() {
        // A namespace may start new interfaces with IPv6 off (`default.disable_ipv6`).
        let sysctl = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
        std::fs::write(&sysctl, "0").map_err(|e| format!("twin {iface}: {sysctl}: {e}"))?;
    }
    for &net in addrs6 {
        rtnl.add_addr6(index, net)
            .map_err(|e| format!("twin {iface}: add address {net}: {e}"))?;
    }
    rtnl.set_up(index)
        .map_err(|e| format!("twin {iface}: set up: {e}"))
}

/// The followed interfaces' addresses and what links they are, updated by events (pure).
#[derive(Debug, Default)]
struct State {
    /// Followed name → its current addresses (every followed name has an entry).
    addrs: BTreeMap<String, BTreeSet<Owned>>,
    /// ifindex → followed name, for the links that exist now.
    index: HashMap<u32, String>,
}

impl State {
    fn new(names: &[String]) -> State {
        State {
            addrs: names.iter().map(|n| (n.clone(), BTreeSet::new())).collect(),
            index: HashMap::new(),
        }
    }

    /// Removes every address of `name`.
    fn clear(&mut self, name: &str, events: &mut Vec<AddrEvent>) {
        if let Some(set) = self.addrs.get_mut(name) {
            for (addr, prefix_len) in std::mem::take(set) {
                events.push(AddrEvent {
                    iface: name.to_owned(),
                    addr,
                    prefix_len,
                    added: false,
                });
            }
        }
    }

    /// A link appeared, changed (`deleted` false) or went.
    fn link(&mut self, link: &Link, deleted: bool, events: &mut Vec<AddrEvent>) {
        let followed = self.addrs.contains_key(&link.name);
        if let Some(old) = self.index.get(&link.index).cloned() {
            // Gone, or renamed away: its addresses are no longer the twin's.
            if deleted || old != link.name {
                self.index.remove(&link.index);
                self.clear(&old, events);
            }
        }
        if followed && !deleted {
            // Another index with this name is a twin deleted without our seeing it.
            let stale: Vec<u32> = self
                .index
                .iter()
                .filter(|(i, n)| **i != link.index && **n == link.name)
                .map(|(i, _)| *i)
                .collect();
            if !stale.is_empty() {
                self.clear(&link.name, events);
            }
            for i in stale {
                self.index.remove(&i);
            }
            self.index.insert(link.index, link.name.clone());
        }
    }

    /// The followed name an address message is about: by its link, else by its label.
    fn name_of(&mut self, a: &Address) -> Option<String> {
        if let Some(name) = self.index.get(&a.index) {
            return Some(name.clone());
        }
        let label = a.label.as_deref()?;
        let name = label.split_once(':').map_or(label, |(n, _)| n);
        if !self.addrs.contains_key(name) {
            return None;
        }
        self.index.insert(a.index, name.to_owned());
        Some(name.to_owned())
    }

    /// An address appeared (`deleted` false) or went.
    fn address(&mut self, a: &Address, deleted: bool, events: &mut Vec<AddrEvent>) {
        let Some(name) = self.name_of(a) else {
            return;
        };
        let Some(set) = self.addrs.get_mut(&name) else {
            return;
        };
        let key = (a.addr, a.prefix_len);
        let changed = if deleted {
            set.remove(&key)
        } else {
            set.insert(key)
        };
        if changed {
            events.push(AddrEvent {
                iface: name,
                addr: a.addr,
                prefix_len: a.prefix_len,
                added: !deleted,
            });
        }
    }

    /// Replaces everything with a dump, emitting the differences.
    fn resync(&mut self, links: &[Link], addrs: &[Address], events: &mut Vec<AddrEvent>) {
        let mut fresh = State::new(&self.addrs.keys().cloned().collect::<Vec<_>>());
        let mut ignored = Vec::new();
        for l in links {
            fresh.link(l, false, &mut ignored);
        }
        for a in addrs {
            fresh.address(a, false, &mut ignored);
        }
        for (name, now) in &fresh.addrs {
            let before = self.addrs.get(name).cloned().unwrap_or_default();
            for &(addr, prefix_len) in before.difference(now) {
                events.push(AddrEvent {
                    iface: name.clone(),
                    addr,
                    prefix_len,
                    added: false,
                });
            }
            for &(addr, prefix_len) in now.difference(&before) {
                events.push(AddrEvent {
                    iface: name.clone(),
                    addr,
                    prefix_len,
                    added: true,
                });
            }
        }
        *self = fresh;
    }
}

/// Follows the IPv4 addresses of the named interfaces on a thread of its own.
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addrs: Arc<Mutex<BTreeMap<String, BTreeSet<Owned>>>>,
    events: Receiver<AddrEvent>,
}

impl Follower {
    /// Starts following `names` in the current network namespace: subscribes, takes the
    /// first dump (published as `added` events), then follows the events.
    pub fn start(names: &[String]) -> io::Result<Follower> {
        let mut events_socket = Socket::new(NETLINK_ROUTE)?;
        events_socket.bind(&SocketAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))?;
        events_socket.set_non_blocking(true)?;
        let mut rtnl = Rtnl::new()?;
        let (tx, rx) = channel::unbounded();
        let addrs = Arc::new(Mutex::new(BTreeMap::new()));
        let mut follow = Follow {
            state: State::new(names),
            tx,
            addrs: Arc::clone(&addrs),
        };
        // Subscribed before the dump: an event racing it is applied after it, which
        // converges to the kernel's state.
        follow.resync(&mut rtnl)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("rvs-netlink".into())
                .spawn(move || follow.run(&events_socket, &mut rtnl, &stop))?
        };
        Ok(Follower {
            stop,
            thread: Some(thread),
            addrs,
            events: rx,
        })
    }

    /// Every change, in order (the first dump's addresses come as `added`).
    pub fn events(&self) -> &Receiver<AddrEvent> {
        &self.events
    }

    /// The current addresses of every followed interface (empty while it does not exist).
    pub fn addrs(&self) -> BTreeMap<String, BTreeSet<Owned>> {
        self.addrs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The follower thread's state.
struct Follow {
    state: State,
    tx: Sender<AddrEvent>,
    addrs: Arc<Mutex<BTreeMap<String, BTreeSet<Owned>>>>,
}

impl Follow {
    fn publish(&mut self, events: Vec<AddrEvent>) {
        if events.is_empty() {
            return;
        }
        *self.addrs.lock().unwrap_or_else(|e| e.into_inner()) = self.state.addrs.clone();
        for e in events {
            log::info!(
                "{}: {}/{} {}",
                e.iface,
                e.addr,
                e.prefix_len,
                if e.added { "added" } else { "removed" }
            );
            // Nobody listening any more is fine: the set above is still kept.
            let _ = self.tx.send(e);
        }
    }

    fn resync(&mut self, rtnl: &mut Rtnl) -> io::Result<()> {
        let links = rtnl.links()?;
        let addrs = rtnl.ipv4_addrs()?;
        let mut events = Vec::new();
        self.state.resync(&links, &addrs, &mut events);
        // The first dump publishes the (possibly empty) set even without events.
        *self.addrs.lock().unwrap_or_else(|e| e.into_inner()) = self.state.addrs.clone();
        self.publish(events);
        Ok(())
    }

    fn run(&mut self, socket: &Socket, rtnl: &mut Rtnl, stop: &AtomicBool) {
        let mut buf = vec![0u8; RECV_BUFFER];
        while !stop.load(Relaxed) {
            let n = match socket.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.raw_os_error() == Some(ENOBUFS) {
                        log::warn!("netlink: events lost, re-reading the addresses");
                    } else {
                        log::warn!("netlink: {e}; re-reading the addresses");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if let Err(e) = self.resync(rtnl) {
                        log::warn!("netlink dump: {e}");
                    }
                    continue;
                }
            };
            let mut events = Vec::new();
            for m in parse(buf.get(..n).unwrap_or_default()) {
                let NetlinkPayload::InnerMessage(inner) = m.payload else {
                    continue;
                };
                match inner {
                    RouteNetlinkMessage::NewLink(_) | RouteNetlinkMessage::DelLink(_) => {
                        let deleted = matches!(inner, RouteNetlinkMessage::DelLink(_));
                        if let Some(link) = link_of(inner) {
                            self.state.link(&link, deleted, &mut events);
                        }
                    }
                    RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_) => {
                        let deleted = matches!(inner, RouteNetlinkMessage::DelAddress(_));
                        if let Some(a) = address_of(inner) {
                            self.state.address(&a, deleted, &mut events);
                        }
                    }
                    _ => {}
                }
            }
            self.publish(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
        }
    }

    fn addr(index: u32, label: Option<&str>, a: &str, p: u8) -> Address {
        Address {
            index,
            label: label.map(Into::into),
            addr: a.parse().unwrap(),
            prefix_len: p,
        }
    }

    fn ev(iface: &str, a: &str, p: u8, added: bool) -> AddrEvent {
        AddrEvent {
            iface: iface.into(),
            addr: a.parse().unwrap(),
            prefix_len: p,
            added,
        }
    }

    fn set(s: &State, name: &str) -> Vec<Owned> {
        s.addrs[name].iter().copied().collect()
    }

    #[test]
    fn follows_addresses_by_name_across_ifindex_changes() {
        let mut s = State::new(&["rvs0".into()]);
        let mut e = Vec::new();
        s.resync(
            &[link(1, "lo"), link(7, "rvs0"), link(8, "eth0")],
            &[
                addr(1, Some("lo"), "127.0.0.1", 8),
                addr(7, Some("rvs0"), "10.0.0.1", 24),
                addr(8, Some("eth0"), "10.9.0.1", 24),
            ],
            &mut e,
        );
        assert_eq!(e, [ev("rvs0", "10.0.0.1", 24, true)]);
        e.clear();
        // Added, added again (no change), labelled, removed; unrelated links ignored.
        s.address(&addr(7, Some("rvs0"), "10.0.0.100", 32), false, &mut e);
        s.address(&addr(7, Some("rvs0"), "10.0.0.100", 32), false, &mut e);
        s.address(&addr(7, Some("rvs0:vip"), "10.0.0.101", 32), false, &mut e);
        s.address(&addr(8, Some("eth0"), "10.9.0.2", 24), false, &mut e);
        s.address(&addr(7, Some("rvs0"), "10.0.0.100", 32), true, &mut e);
        assert_eq!(
            e,
            [
                ev("rvs0", "10.0.0.100", 32, true),
                ev("rvs0", "10.0.0.101", 32, true),
                ev("rvs0", "10.0.0.100", 32, false),
            ]
        );
        e.clear();
        // The twin goes (its addresses with it) and comes back with a new index.
        s.link(&link(7, "rvs0"), true, &mut e);
        assert_eq!(
            e,
            [
                ev("rvs0", "10.0.0.1", 24, false),
                ev("rvs0", "10.0.0.101", 32, false)
            ]
        );
        e.clear();
        s.link(&link(9, "rvs0"), false, &mut e);
        s.address(&addr(9, None, "10.0.0.5", 32), false, &mut e);
        assert_eq!(e, [ev("rvs0", "10.0.0.5", 32, true)]);
        assert_eq!(set(&s, "rvs0"), [("10.0.0.5".parse().unwrap(), 32)]);
        e.clear();
        // Re-created without our seeing the deletion: the old addresses are dropped.
        s.link(&link(10, "rvs0"), false, &mut e);
        assert_eq!(e, [ev("rvs0", "10.0.0.5", 32, false)]);
        e.clear();
        // Renamed away: no longer the twin.
        s.address(&addr(10, None, "10.0.0.6", 32), false, &mut e);
        s.link(&link(10, "other"), false, &mut e);
        assert_eq!(
            e,
            [
                ev("rvs0", "10.0.0.6", 32, true),
                ev("rvs0", "10.0.0.6", 32, false)
            ]
        );
        assert!(set(&s, "rvs0").is_empty());
    }

    #[test]
    fn an_address_before_its_link_is_matched_by_label_and_resync_diffs() {
        let mut s = State::new(&["rvs0".into(), "rvs1".into()]);
        let mut e = Vec::new();
        s.address(&addr(4, Some("rvs1"), "192.168.1.1", 24), false, &mut e);
        s.address(&addr(5, None, "192.168.2.1", 24), false, &mut e);
        assert_eq!(e, [ev("rvs1", "192.168.1.1", 24, true)]);
        e.clear();
        s.resync(
            &[link(4, "rvs1"), link(6, "rvs0")],
            &[
                addr(4, Some("rvs1"), "192.168.1.2", 24),
                addr(6, Some("rvs0"), "10.0.0.1", 24),
            ],
            &mut e,
        );
        assert_eq!(
            e,
            [
                ev("rvs0", "10.0.0.1", 24, true),
                ev("rvs1", "192.168.1.1", 24, false),
                ev("rvs1", "192.168.1.2", 24, true),
            ]
        );
    }
}
