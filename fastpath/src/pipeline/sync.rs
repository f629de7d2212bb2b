//! Connection sync in the pipeline (IPVS sync protocol version 1, [`crate::sync`]).
//!
//! - **Master**: after the state transition of every inbound packet, the kernel's rule
//!   ([`conn::Table::sync_due`]) says whether the connection is sent; it is then recorded in
//!   the worker's outbox, followed by the persistence template that controls it
//!   (`ip_vs_sync_conn` sends a connection's template with it). The worker hands the outbox
//!   to the sync thread between bursts; a full outbox counts `sync_overflow` and the record is
//!   lost, as a full kernel sync queue loses it.
//! - **Backup**: the sync thread hands each received record to the worker that owns its
//!   flow; [`install`] adds or refreshes it between bursts (`ip_vs_proc_conn`). As in the
//!   kernel, the forwarding method comes from the backup's own real server, not from the
//!   message (a kernel peer's flags name the master's method), and a connection whose real
//!   server is not configured here is not installed (the kernel keeps such entries unbound;
//!   rvs counts them as `no_dest`). FULLNAT connections need rvs's own option with their
//!   local address and sequence translation (a kernel master cannot send them).

use super::{forward, Pipeline};
use crate::conn::{self, Counter, FlowKey, Fwd, Move, NewConn, NewTemplate, State, SyncedConn};
use crate::service::Real;
use crate::snapshot::Snapshot;
use crate::sync::wire::{
    CONN_F_DROUTE, CONN_F_FULLNAT, CONN_F_INACTIVE, CONN_F_MASQ, CONN_F_NOOUTPUT, CONN_F_TEMPLATE,
    CONN_F_TUNNEL,
};
use crate::sync::{FullNatSync, SyncConn};
use sched::ConnClass;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Records one worker keeps for the sync thread between two hand-overs (the worker hands
/// them over after every burst, so this only bounds a burst's worth).
pub const OUTBOX_MAX: usize = 1024;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Why a backup did not install a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refused {
    /// Neither TCP nor UDP.
    Protocol,
    /// A TCP state number the kernel does not have.
    State,
    /// No service here for its virtual address and port (or a firewall-mark entry).
    NoService,
    /// Its real server is not one of the service's here.
    NoDest,
    /// The real server is FULLNAT here and the record has no FULLNAT state (a kernel master,
    /// or another method there).
    NoFullNatState,
    /// The connection table is full.
    TableFull,
}

impl Refused {
    /// The counter name.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Protocol => "protocol",
            Refused::State => "state",
            Refused::NoService => "no_service",
            Refused::NoDest => "no_dest",
            Refused::NoFullNatState => "no_fullnat_state",
            Refused::TableFull => "table_full",
        }
    }

    /// Every reason, in counter order.
    pub const ALL: [Refused; 6] = [
        Refused::Protocol,
        Refused::State,
        Refused::NoService,
        Refused::NoDest,
        Refused::NoFullNatState,
        Refused::TableFull,
    ];
}

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Installed {
    /// A new connection or template.
    New,
    /// An existing one refreshed (state, timeout).
    Updated,
    /// A record ignored as the kernel ignores it: an INACTIVE record about a connection
    /// whose real server changed.
    Ignored,
}

/// The master's step for an inbound packet of connection `id`, just processed: records it
/// (and its template) when the kernel's rule says so.
#[inline(never)]
pub(super) fn after_inbound(p: &mut Pipeline, id: conn::ConnId, rules: conn::SyncRules) {
    if !p.conns.sync_due(id, rules) {
        return;
    }
    let Some(c) = p.conns.get(id) else {
        return;
    };
    let template = c
        .control()
        .and_then(|t| p.conns.get(t))
        .map(|t| record(t, None));
    let first = record(c, p.conns.seq(id));
    for r in std::iter::once(first).chain(template) {
        if p.sync_outbox.len() < OUTBOX_MAX {
            p.sync_outbox.push(r);
        } else {
            p.events.sync_overflow += 1;
        }
    }
}

/// A connection or template as the sync protocol carries it.
pub fn record<D>(c: &conn::Conn<D>, seq: Option<&conn::TcpSeq>) -> SyncConn {
    let method = match c.fwd() {
        Some(Fwd::Nat) | None => CONN_F_MASQ,
        Some(Fwd::Dr) => CONN_F_DROUTE,
        Some(Fwd::Tun) => CONN_F_TUNNEL,
        Some(Fwd::FullNat) => CONN_F_FULLNAT,
    };
    let mut flags = method;
    if c.is_template() {
        flags |= CONN_F_TEMPLATE;
    }
    if c.counter() == Counter::Inactive {
        flags |= CONN_F_INACTIVE;
    }
    if c.no_output() {
        flags |= CONN_F_NOOUTPUT;
    }
    let fullnat = c.local().map(|local| {
        let seq = seq.copied().unwrap_or_default();
        FullNatSync {
            laddr: *local.ip(),
            lport: local.port(),
            client_isn: seq.client_isn(),
            delta: seq.delta(),
            fdata_seq: seq.fdata_seq(),
            inserted: seq.inserted(),
        }
    });
    let (client, virt, real) = (c.client(), c.virt(), c.real());
    SyncConn {
        protocol: c.proto().number(),
        flags,
        state: match c.state() {
            State::Udp => 0,
            state => state as u16,
        },
        cport: client.port(),
        vport: virt.port(),
        dport: real.port(),
        fwmark: 0,
        timeout: c.timeout(),
        caddr: *client.ip(),
        vaddr: *virt.ip(),
        daddr: *real.ip(),
        seq: None,
        fullnat,
    }
}

/// Adds or refreshes the connection (or template) of `r` in this worker's table, bound to
/// the real server of the snapshot's service (the caller chose this worker by the flow's
/// owner, as packets are).
pub fn install(
    p: &mut Pipeline,
    snapshot: &Snapshot,
    r: &SyncConn,
    now_ms: u64,
) -> Result<Installed, Refused> {
    let proto = match r.protocol {
        IPPROTO_TCP => conf::Proto::Tcp,
        IPPROTO_UDP => conf::Proto::Udp,
        _ => return Err(Refused::Protocol),
    };
    let state = match proto {
        conf::Proto::Udp => State::Udp,
        conf::Proto::Tcp => *State::TCP.get(usize::from(r.state)).ok_or(Refused::State)?,
    };
    if r.fwmark != 0 {
        return Err(Refused::NoService);
    }
    let virt = SocketAddrV4::new(r.vaddr, r.vport);
    let (_, service) = snapshot
        .service_in_slot(proto, virt)
        .or_else(|| snapshot.service_in_slot(proto, SocketAddrV4::new(r.vaddr, 0)))
        .ok_or(Refused::NoService)?;
    let real = service
        .reals
        .iter()
        .find(|real| {
            real.addr.ip() == std::net::IpAddr::V4(r.daddr)
                && (real.addr.port() == r.dport || real.addr.port() == 0)
        })
        .cloned()
        .ok_or(Refused::NoDest)?;
    let rules = snapshot.sync.rules;
    let client = SocketAddrV4::new(r.caddr, r.cport);
    let dest = SocketAddrV4::new(r.daddr, r.dport);
    if r.flags & CONN_F_TEMPLATE != 0 {
        return install_template(p, proto, client, virt, dest, real, r, rules, now_ms);
    }
    let key = FlowKey::new(proto, client, virt);
    if let Some(hit) = p.conns.lookup(&key) {
        let same = p.conns.get(hit.id).is_some_and(|c| c.real() == dest);
        if !same && r.flags & CONN_F_INACTIVE != 0 {
            return Ok(Installed::Ignored);
        }
        if same {
            let moved = p
                .conns
                .refresh_synced(hit.id, state, r.timeout, rules, now_ms)
                .unwrap_or(Move::Stay);
            if let Some(c) = p.conns.get(hit.id) {
                forward::account(c.dest(), moved);
            }
            return Ok(Installed::Updated);
        }
        // The master moved the client to another real server.
        forward::forget(p, hit.id);
    }
    let fwd = Fwd::from(real.mode);
    let (local, seq) = match (fwd, r.fullnat) {
        (Fwd::FullNat, Some(f)) => (
            Some(SocketAddrV4::new(f.laddr, f.lport)),
            conn::TcpSeq::restore(f.client_isn, f.delta, f.fdata_seq, f.inserted),
        ),
        (Fwd::FullNat, None) => return Err(Refused::NoFullNatState),
        _ => (None, conn::TcpSeq::default()),
    };
    let synced = SyncedConn {
        new: NewConn {
            proto,
            client,
            virt,
            real: dest,
            fwd,
            local,
            dest: real,
        },
        state,
        timeout: r.timeout,
        seq,
    };
    let id = p
        .conns
        .install_synced(synced, rules, now_ms)
        .map_err(|_| Refused::TableFull)?;
    if let Some(c) = p.conns.get(id) {
        let real = c.dest();
        real.load.bind(match c.counter() {
            Counter::Active => ConnClass::Active,
            Counter::Inactive => ConnClass::Inactive,
            Counter::Persistent => ConnClass::Template,
        });
        if let Some(local) = local {
            p.slots.take_local(real, local);
        }
    }
    Ok(Installed::New)
}

/// A persistence template: refreshed if this worker has it for the same real server,
/// replaced if for another, added otherwise.
#[allow(clippy::too_many_arguments)]
fn install_template(
    p: &mut Pipeline,
    proto: conf::Proto,
    client: SocketAddrV4,
    virt: SocketAddrV4,
    dest: SocketAddrV4,
    real: Arc<Real>,
    r: &SyncConn,
    rules: conn::SyncRules,
    now_ms: u64,
) -> Result<Installed, Refused> {
    let key = FlowKey {
        proto,
        src: *client.ip(),
        sport: client.port(),
        dst: *virt.ip(),
        dport: virt.port(),
    };
    if let Some(t) = p.conns.lookup_template(&key) {
        if p.conns.get(t).is_some_and(|c| c.real() == dest) {
            p.conns
                .refresh_synced(t, State::None, r.timeout, rules, now_ms);
            return Ok(Installed::Updated);
        }
        p.conns.invalidate_template(t);
    }
    let timeout = if r.timeout == 0 { 360 } else { r.timeout };
    let new = NewTemplate {
        key,
        real: dest,
        timeout,
        dest: Arc::clone(&real),
    };
    p.conns
        .insert_template(new, now_ms)
        .map_err(|_| Refused::TableFull)?;
    real.load.bind(ConnClass::Template);
    Ok(Installed::New)
}
