//! One dest (real server) and its load: connection counters, thresholds and
//! the overload flag, shared by all workers (see the crate docs for why).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// Largest weight: the kernel's dest weight is a C `int`; ipvsadm 1.31 accepts
/// `string_to_number(optarg, 0, INT_MAX)`.
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

/// The counter a connection is counted in (`ip_vs_bind_dest`, ip_vs_conn.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnClass {
    /// A connection in ESTABLISHED (only a connection synced from a master
    /// starts here; a new local one starts [`ConnClass::Inactive`]).
    Active,
    /// Any other state; every new connection starts here because the dest's
    /// `conn_flags` always carry `IP_VS_CONN_F_INACTIVE`. UDP stays here.
    Inactive,
    /// A persistence template (`IP_VS_CONN_F_TEMPLATE`): counts in persistconns.
    Template,
}

/// The load of one dest, shared by every worker and kept across [`crate::Dests`]
/// rebuilds: the control layer creates one per dest when it is added and keeps
/// it while the dest exists (including the kernel's "trash": a dest deleted and
/// re-added while connections remain keeps its counters).
///
/// All accesses are `Relaxed`: the values are statistics that publish no other
/// data. As in the kernel, the flag update after a counter change is not atomic
/// with it; a racing bind/unbind pair can leave the flag one step stale until
/// the next bind or unbind of that dest.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct DestLoad {
    activeconns: AtomicU32,
    inactconns: AtomicU32,
    persistconns: AtomicU32,
    u_threshold: AtomicU32,
    l_threshold: AtomicU32,
    overload: AtomicBool,
}

impl DestLoad {
    /// A dest with no connections and the given `-x` (upper) and `-y` (lower)
    /// thresholds; 0 means unlimited.
    pub fn new(u_threshold: u32, l_threshold: u32) -> DestLoad {
        let load = DestLoad::default();
        load.u_threshold.store(u_threshold, Relaxed);
        load.l_threshold.store(l_threshold, Relaxed);
        load
    }

    /// ActiveConn: connections in ESTABLISHED.
    pub fn activeconns(&self) -> u32 {
        self.activeconns.load(Relaxed)
    }

    /// InActConn: connections in any other state.
    pub fn inactconns(&self) -> u32 {
        self.inactconns.load(Relaxed)
    }

    /// Persistence templates bound to this dest.
    pub fn persistconns(&self) -> u32 {
        self.persistconns.load(Relaxed)
    }

    /// The `-x` threshold (0 = unlimited).
    pub fn u_threshold(&self) -> u32 {
        self.u_threshold.load(Relaxed)
    }

    /// The `-y` threshold (0 = derived from `-x`).
    pub fn l_threshold(&self) -> u32 {
        self.l_threshold.load(Relaxed)
    }

    /// `IP_VS_DEST_F_OVERLOAD`: no scheduler picks this dest while it is set.
    pub fn is_overloaded(&self) -> bool {
        self.overload.load(Relaxed)
    }

    /// A connection or template was bound to this dest (`ip_vs_bind_dest`).
    /// Sets the overload flag once active + inactive reach `-x`.
    pub fn bind(&self, class: ConnClass) {
        self.counter(class).fetch_add(1, Relaxed);
        let upper = self.u_threshold();
        if upper != 0 && self.totalconns() >= upper {
            self.overload.store(true, Relaxed);
        }
    }

    /// A connection or template bound with `class` (its class at that moment)
    /// expired (`ip_vs_unbind_dest`). Clears the overload flag below `-y`, or
    /// with no `-y` below 3/4 of `-x`, or at once with neither.
    pub fn unbind(&self, class: ConnClass) {
        decrement(self.counter(class));
        let (upper, lower) = (self.u_threshold(), self.l_threshold());
        let total = u64::from(self.totalconns());
        let clear = if lower != 0 {
            total < u64::from(lower)
        } else if upper != 0 {
            total * 4 < u64::from(upper) * 3
        } else {
            true
        };
        if clear {
            self.overload.store(false, Relaxed);
        }
    }

    /// The connection entered ESTABLISHED (ip_vs_proto_tcp.c `set_tcp_state`).
    /// The total is unchanged, so the overload flag is not re-evaluated.
    pub fn activate(&self) {
        decrement(&self.inactconns);
        self.activeconns.fetch_add(1, Relaxed);
    }

    /// The connection left ESTABLISHED.
    pub fn deactivate(&self) {
        decrement(&self.activeconns);
        self.inactconns.fetch_add(1, Relaxed);
    }

    /// `ipvsadm -a/-e ... -x upper -y lower` (`__ip_vs_update_dest`): raising
    /// or removing `-x` clears the overload flag at once; lowering it waits for
    /// the next bind.
    pub fn set_thresholds(&self, u_threshold: u32, l_threshold: u32) {
        if u_threshold == 0 || u_threshold > self.u_threshold() {
            self.overload.store(false, Relaxed);
        }
        self.u_threshold.store(u_threshold, Relaxed);
        self.l_threshold.store(l_threshold, Relaxed);
    }

    /// `ip_vs_dest_conn_overhead`: active connections weigh 256 inactive ones.
    pub(crate) fn overhead(&self) -> u64 {
        (u64::from(self.activeconns()) << 8) + u64::from(self.inactconns())
    }

    /// `ip_vs_dest_totalconns`: templates do not count.
    fn totalconns(&self) -> u32 {
        self.activeconns().saturating_add(self.inactconns())
    }

    fn counter(&self, class: ConnClass) -> &AtomicU32 {
        match class {
            ConnClass::Active => &self.activeconns,
            ConnClass::Inactive => &self.inactconns,
            ConnClass::Template => &self.persistconns,
        }
    }
}

/// Counters never wrap below zero: a stray extra unbind would otherwise make a
/// dest look infinitely loaded to lc/wlc.
fn decrement(counter: &AtomicU32) {
    let previous = counter.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1));
    debug_assert!(previous.is_ok(), "connection counter decremented below 0");
}

/// One dest as the schedulers see it.
#[derive(Clone, Debug)]
pub struct Dest {
    /// Real server address and port; unique within a service.
    pub addr: SocketAddr,
    /// 0..=[`MAX_WEIGHT`]; 0 quiesces the dest (no new connections).
    pub weight: u32,
    /// The latest non-zero weight (`dest->last_weight`, ip_vs_ctl.c); only mh
    /// reads it, so that a quiesced dest keeps its table slots.
    pub last_weight: u32,
    /// Counters, thresholds and overload flag shared by all workers.
    pub load: Arc<DestLoad>,
}

impl Dest {
    /// A dest as `ipvsadm -a` adds it: `last_weight` starts equal to `weight`
    /// (`if (add || udest->weight != 0)`), so a dest added with weight 0 gets
    /// no mh slots.
    pub fn new(addr: SocketAddr, weight: u32, load: Arc<DestLoad>) -> Dest {
        Dest {
            addr,
            weight,
            last_weight: weight,
            load,
        }
    }

    /// This dest after `ipvsadm -e ... -w weight`: same load, and
    /// `last_weight` kept when quiescing.
    pub fn with_weight(&self, weight: u32) -> Dest {
        Dest {
            addr: self.addr,
            weight,
            last_weight: if weight != 0 {
                weight
            } else {
                self.last_weight
            },
            load: Arc::clone(&self.load),
        }
    }

    /// `is_unavailable()` of ip_vs_sh.c / ip_vs_mh.c, also the test of dh and ch.
    pub(crate) fn is_unavailable(&self) -> bool {
        self.weight == 0 || self.load.is_overloaded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(load: &DestLoad) -> (u32, u32, u32, bool) {
        (
            load.activeconns(),
            load.inactconns(),
            load.persistconns(),
            load.is_overloaded(),
        )
    }

    #[test]
    fn counters_follow_connection_life() {
        let load = DestLoad::new(0, 0);
        load.bind(ConnClass::Inactive);
        load.bind(ConnClass::Template);
        assert_eq!(total(&load), (0, 1, 1, false));
        load.activate();
        assert_eq!(total(&load), (1, 0, 1, false));
        assert_eq!(load.overhead(), 256);
        load.deactivate();
        assert_eq!(load.overhead(), 1);
        load.unbind(ConnClass::Inactive);
        load.unbind(ConnClass::Template);
        assert_eq!(total(&load), (0, 0, 0, false));
    }

    #[test]
    fn overload_hysteresis_without_lower_threshold() {
        // -x 4: set at total >= 4, cleared when total * 4 < 12, i.e. at 2.
        let load = DestLoad::new(4, 0);
        let mut flags = Vec::new();
        for _ in 0..4 {
            load.bind(ConnClass::Inactive);
            flags.push(load.is_overloaded());
        }
        assert_eq!(flags, [false, false, false, true]);
        let mut flags = Vec::new();
        for _ in 0..4 {
            load.unbind(ConnClass::Inactive);
            flags.push(load.is_overloaded());
        }
        // total 3 (3*4 = 12, not < 12): still set; total 2: cleared.
        assert_eq!(flags, [true, false, false, false]);
    }

    #[test]
    fn overload_hysteresis_with_lower_threshold() {
        // -x 3 -y 1: set at 3, cleared only below 1.
        let load = DestLoad::new(3, 1);
        for _ in 0..3 {
            load.bind(ConnClass::Inactive);
        }
        assert!(load.is_overloaded());
        load.unbind(ConnClass::Inactive);
        load.unbind(ConnClass::Inactive);
        assert!(load.is_overloaded(), "total 1 is not below -y 1");
        load.unbind(ConnClass::Inactive);
        assert!(!load.is_overloaded());
    }

    #[test]
    fn templates_do_not_count_towards_threshold() {
        let load = DestLoad::new(2, 0);
        load.bind(ConnClass::Template);
        load.bind(ConnClass::Template);
        assert!(!load.is_overloaded());
        load.bind(ConnClass::Inactive);
        load.bind(ConnClass::Active);
        assert!(load.is_overloaded());
    }

    #[test]
    fn threshold_edit_clears_only_when_raised_or_removed() {
        let load = DestLoad::new(2, 0);
        load.bind(ConnClass::Inactive);
        load.bind(ConnClass::Inactive);
        assert!(load.is_overloaded());
        load.set_thresholds(1, 0);
        assert!(load.is_overloaded(), "lowering -x keeps the flag");
        load.set_thresholds(2, 0);
        assert!(!load.is_overloaded(), "raising -x clears it");
        load.bind(ConnClass::Inactive);
        assert!(load.is_overloaded());
        load.set_thresholds(0, 0);
        assert!(!load.is_overloaded(), "removing -x clears it");
    }

    #[test]
    fn unbind_without_thresholds_clears_a_stale_flag() {
        let load = DestLoad::new(1, 0);
        load.bind(ConnClass::Inactive);
        load.bind(ConnClass::Inactive);
        load.set_thresholds(1, 0);
        assert!(load.is_overloaded());
        // The kernel's last branch: no thresholds left (here after a manual
        // reset) and the flag still set -> cleared at the next unbind.
        load.u_threshold.store(0, Relaxed);
        load.unbind(ConnClass::Inactive);
        assert!(!load.is_overloaded());
    }

    #[test]
    fn quiescing_keeps_last_weight() {
        let load = Arc::new(DestLoad::default());
        let addr: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let dest = Dest::new(addr, 5, load);
        let quiesced = dest.with_weight(0);
        assert_eq!((quiesced.weight, quiesced.last_weight), (0, 5));
        let revived = quiesced.with_weight(3);
        assert_eq!((revived.weight, revived.last_weight), (3, 3));
        let added_quiesced = Dest::new(addr, 0, Arc::new(DestLoad::default()));
        assert_eq!(added_quiesced.last_weight, 0);
    }
}
