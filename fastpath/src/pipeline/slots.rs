//! A worker's own state for each service: its scheduler (rr cursor, wrr mark, lblc/lblcr
//! caches) and, for FULLNAT, its local address pool, kept at the service's slot (see
//! [`crate::service_table`]).
//!
//! Adopting a snapshot looks only at the services changed since the snapshot the worker had
//! (the snapshot's history says which), so a change costs a worker the same with 10 services
//! or 10,000, and every other service keeps its state untouched. A worker too far behind for
//! the history compares every service instead (and still keeps what did not change).

use crate::laddr;
use crate::service::{Real, Service};
use crate::service_table::{vip_key, Slotted};
use crate::snapshot::Snapshot;
use sched::{Kind, Scheduler};
use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// What the worker keeps for one service.
struct Local {
    /// The service's [`vip_key`].
    key: u64,
    /// The service this state was made for.
    service: Arc<Service>,
    sched: Scheduler,
    /// `None` for a service without local addresses.
    pool: Option<laddr::Pool>,
}

/// One worker's state of every service, by slot.
pub(super) struct Slots {
    slots: Vec<Option<Local>>,
    /// The slot of every service held.
    slot_of: hashbrown::HashMap<u64, usize, ahash::RandomState>,
    /// Slots whose scheduler has timer work (lblc, lblcr): the only ones
    /// [`Slots::expire`] visits.
    aging: BTreeSet<usize>,
    /// Slots with a local address pool.
    pooled: BTreeSet<usize>,
    worker: usize,
    workers: usize,
    /// Where the worker's port cursors start.
    seed: u64,
}

impl Slots {
    /// No service yet, for worker `worker` of `workers`.
    pub fn new(worker: usize, workers: usize) -> Slots {
        Slots {
            slots: Vec::new(),
            slot_of: hashbrown::HashMap::default(),
            aging: BTreeSet::new(),
            pooled: BTreeSet::new(),
            worker,
            workers,
            // Per worker, so that workers do not walk their port ranges in step.
            seed: (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    fn local(&mut self, slot: usize) -> Option<&mut Local> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    /// The scheduler of the service in `slot`.
    #[inline]
    pub fn sched(&mut self, slot: usize) -> Option<&mut Scheduler> {
        self.local(slot).map(|l| &mut l.sched)
    }

    /// The local address pool of the service in `slot`.
    #[inline]
    pub fn pool(&mut self, slot: usize) -> Option<&mut laddr::Pool> {
        self.local(slot).and_then(|l| l.pool.as_mut())
    }

    /// The VIP of the service in `slot`.
    pub fn vip(&self, slot: usize) -> Option<std::net::SocketAddr> {
        self.slots.get(slot)?.as_ref().map(|l| l.service.vip)
    }

    /// Returns a FULLNAT connection's local port to its service's pool (counters only: the
    /// connection table is what says a port is in use). Nothing if the service is gone.
    pub fn release_local(&mut self, real: &Real, local: SocketAddrV4) {
        if let Some(&slot) = Self::key(real).and_then(|key| self.slot_of.get(&key)) {
            if let Some(pool) = self.pool(slot) {
                pool.release(*local.ip());
            }
        }
    }

    /// Counts a connection on `local` that a sync master allocated (its service's pool in
    /// this worker); false if the service has no pool here or the pool no such address.
    pub fn take_local(&mut self, real: &Real, local: SocketAddrV4) -> bool {
        match Self::key(real).and_then(|key| self.slot_of.get(&key)) {
            Some(&slot) => self.pool(slot).is_some_and(|pool| pool.take(*local.ip())),
            None => false,
        }
    }

    /// The key of the service of `real` if it may have local addresses: an IPv4 service
    /// (fullnat from IPv6 clients is not forwarded yet, so no IPv6 service has any).
    fn key(real: &Real) -> Option<u64> {
        match real.service {
            (proto, std::net::SocketAddr::V4(vip)) => Some(vip_key(proto, vip)),
            (_, std::net::SocketAddr::V6(_)) => None,
        }
    }

    /// Lets the lblc/lblcr schedulers age their caches.
    pub fn expire(&mut self, now: std::time::Duration) {
        for &slot in &self.aging {
            if let Some(Some(l)) = self.slots.get_mut(slot) {
                l.sched.expire(now);
            }
        }
    }

    /// Copies the use of every local address pool into its service's shared figures.
    pub fn publish_laddr_usage(&self) {
        for &slot in &self.pooled {
            let Some(Some(Local {
                service,
                pool: Some(pool),
                ..
            })) = self.slots.get(slot)
            else {
                continue;
            };
            for lip in pool.stats() {
                let usage = &service.laddr_usage;
                usage.store(self.worker, lip.addr, u64::from(lip.conns), lip.conflicts);
            }
        }
    }

    /// Switches to `next` (published after `previous`): the services changed since get their
    /// new destination lists (the scheduler adjusting its state as the kernel's hooks do) and
    /// local address pools (keeping their counters), new ones fresh state, removed ones lose
    /// theirs; every other service keeps its state as it is.
    pub fn adopt(&mut self, previous: Option<&Snapshot>, next: &Snapshot) {
        let table = next.service_table();
        if self.slots.len() < table.slots() {
            self.slots.resize_with(table.slots(), || None);
        }
        // The worker's ports of every pool change with the port range: rebuild them all.
        let same_ports = previous.is_some_and(|p| p.laddr_ports == next.laddr_ports);
        let changed = previous
            .filter(|_| same_ports)
            .and_then(|p| table.changed_since(next.id(), p.id()));
        match changed {
            Some(keys) => {
                for key in keys {
                    self.follow(key, table.by_key(key), next, false);
                }
            }
            None => {
                let gone: Vec<u64> = self
                    .slot_of
                    .keys()
                    .copied()
                    .filter(|&key| table.by_key(key).is_none())
                    .collect();
                for key in gone {
                    self.follow(key, None, next, false);
                }
                for (key, entry) in table.iter() {
                    self.follow(key, Some(entry), next, !same_ports);
                }
            }
        }
    }

    /// Brings the state of service `key` in line with `entry`, its place in `next` (`None`:
    /// it is not there). With `rebuild_pool`, its pool is rebuilt even if the service is the
    /// same.
    fn follow(&mut self, key: u64, entry: Option<&Slotted>, next: &Snapshot, rebuild_pool: bool) {
        let held = self.slot_of.get(&key).copied();
        let Some(entry) = entry else {
            if let Some(slot) = held {
                self.clear(slot);
            }
            return;
        };
        if let Some(slot) = held.filter(|&s| s != entry.slot) {
            // Removed and added again between two snapshots this worker saw: another slot.
            self.clear(slot);
        }
        let slot = entry.slot;
        let current = self.slots.get_mut(slot).and_then(Option::take);
        let local = match current {
            Some(mut local) if local.key == key => {
                if rebuild_pool || !Arc::ptr_eq(&local.service, &entry.service) {
                    local.sched.set_dests(Arc::clone(&entry.service.dests));
                    local.pool = self.pool_for(&entry.service, local.pool.as_ref(), next);
                    local.service = Arc::clone(&entry.service);
                }
                local
            }
            other => {
                // The slot of a service that is gone: its leftovers go.
                if let Some(old) = other {
                    self.slot_of.remove(&old.key);
                }
                Local {
                    key,
                    service: Arc::clone(&entry.service),
                    sched: Scheduler::bind(Arc::clone(&entry.service.dests)),
                    pool: self.pool_for(&entry.service, None, next),
                }
            }
        };
        if matches!(local.sched.kind(), Kind::Lblc | Kind::Lblcr) {
            self.aging.insert(slot);
        } else {
            self.aging.remove(&slot);
        }
        if local.pool.is_some() {
            self.pooled.insert(slot);
        } else {
            self.pooled.remove(&slot);
        }
        self.slot_of.insert(key, slot);
        if let Some(place) = self.slots.get_mut(slot) {
            *place = Some(local);
        }
    }

    /// Forgets the service in `slot`.
    fn clear(&mut self, slot: usize) {
        if let Some(old) = self.slots.get_mut(slot).and_then(Option::take) {
            self.slot_of.remove(&old.key);
        }
        self.aging.remove(&slot);
        self.pooled.remove(&slot);
    }

    /// The pool of `service` in this worker, carrying over the counters and cursors of `old`.
    fn pool_for(
        &self,
        service: &Service,
        old: Option<&laddr::Pool>,
        next: &Snapshot,
    ) -> Option<laddr::Pool> {
        if service.laddrs.is_empty() {
            return None;
        }
        let config = laddr::Config {
            ports: next.laddr_ports,
            ..laddr::Config::default()
        };
        match laddr::Pool::new(
            &service.laddrs,
            &config,
            self.worker,
            self.workers,
            self.seed,
        ) {
            Ok(mut pool) => {
                if let Some(old) = old {
                    pool.inherit(old);
                }
                Some(pool)
            }
            Err(e) => {
                log::error!("service {}: local addresses unusable: {e:?}", service.vip);
                None
            }
        }
    }
}
