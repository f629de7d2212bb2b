//! Scheduler names and configuration, and the per-worker [`Scheduler`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::dests::{BuildError, Derived, Dests};
use crate::flow::FlowKey;
use crate::{ch, lblc, lblcr, least, rr, wrr};

pub use crate::lblc::CACHE_LIMIT;
pub use crate::mh::TABLE_SIZES as MH_TABLE_SIZES;

/// Largest `ch_table_size` accepted: the largest prime below 2^24 (a 32 MiB
/// table of `u16`).
pub const CH_MAX_TABLE_SIZE: u32 = 16_777_213;

/// A scheduling algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Round robin (ip_vs_rr.c).
    Rr,
    /// Weighted round robin (ip_vs_wrr.c).
    Wrr,
    /// Least connection (ip_vs_lc.c).
    Lc,
    /// Weighted least connection, the kernel's default (ip_vs_wlc.c).
    Wlc,
    /// Locality-based least connection (ip_vs_lblc.c).
    Lblc,
    /// Locality-based least connection with replication (ip_vs_lblcr.c).
    Lblcr,
    /// Destination hashing (ip_vs_dh.c).
    Dh,
    /// Source hashing (ip_vs_sh.c).
    Sh,
    /// Shortest expected delay (ip_vs_sed.c).
    Sed,
    /// Never queue (ip_vs_nq.c).
    Nq,
    /// Maglev consistent hashing with a configurable table (rvs only).
    Ch,
    /// Maglev hashing as the kernel's ip_vs_mh.c.
    Mh,
}

impl Kind {
    /// Every scheduler, in the order of [`crate::NAMES`].
    pub const ALL: [Kind; 12] = [
        Kind::Rr,
        Kind::Wrr,
        Kind::Lc,
        Kind::Wlc,
        Kind::Lblc,
        Kind::Lblcr,
        Kind::Dh,
        Kind::Sh,
        Kind::Sed,
        Kind::Nq,
        Kind::Ch,
        Kind::Mh,
    ];

    /// The name used by ipvsadm and the config file.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rr => "rr",
            Kind::Wrr => "wrr",
            Kind::Lc => "lc",
            Kind::Wlc => "wlc",
            Kind::Lblc => "lblc",
            Kind::Lblcr => "lblcr",
            Kind::Dh => "dh",
            Kind::Sh => "sh",
            Kind::Sed => "sed",
            Kind::Nq => "nq",
            Kind::Ch => "ch",
            Kind::Mh => "mh",
        }
    }

    /// The scheduler called `name` (exact, lower case, as ipvsadm).
    pub fn from_name(name: &str) -> Result<Kind, UnknownScheduler> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownScheduler {
                name: name.to_owned(),
            })
    }
}

impl FromStr for Kind {
    type Err = UnknownScheduler;

    fn from_str(name: &str) -> Result<Kind, UnknownScheduler> {
        Kind::from_name(name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that is not in [`crate::NAMES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScheduler {
    /// The name asked for.
    pub name: String,
}

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scheduler {:?}, expected one of: {}",
            self.name,
            crate::NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownScheduler {}

/// The scheduler flags of `ipvsadm -b`. Their meaning depends on the
/// scheduler (sh, mh and ch read them; the others ignore them, as the kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags {
    /// `sh-fallback` / `mh-fallback` (`IP_VS_SVC_F_SCHED1`, 0x0008): when the
    /// hashed dest is unavailable, probe further instead of giving up.
    pub fallback: bool,
    /// `sh-port` / `mh-port` (`IP_VS_SVC_F_SCHED2`, 0x0010): hash the client
    /// port too (TCP, UDP and SCTP only).
    pub port: bool,
}

/// Per-service scheduler settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedConfig {
    /// `ipvsadm -b` flags.
    pub flags: SchedFlags,
    /// ch lookup table size M: a prime, at least the number of dests; the
    /// spread of load between equal dests is about N/M.
    pub ch_table_size: u32,
    /// mh table size: one of [`MH_TABLE_SIZES`] (the kernel's
    /// `CONFIG_IP_VS_MH_TAB_INDEX`, default 4093).
    pub mh_table_size: u32,
    /// Sysctl `lblc_expiration`: an lblc cache entry unused this long is
    /// removed by the half-hourly full check.
    pub lblc_expiration: Duration,
    /// Sysctl `lblcr_expiration`: as `lblc_expiration`, and also how long an
    /// lblcr set must stay unchanged before it shrinks by one dest.
    pub lblcr_expiration: Duration,
}

impl Default for SchedConfig {
    fn default() -> SchedConfig {
        // DEFAULT_EXPIRATION of ip_vs_lblc.c / ip_vs_lblcr.c: one day.
        let day = Duration::from_secs(24 * 60 * 60);
        SchedConfig {
            flags: SchedFlags::default(),
            ch_table_size: ch::DEFAULT_TABLE_SIZE,
            mh_table_size: MH_TABLE_SIZES[4],
            lblc_expiration: day,
            lblcr_expiration: day,
        }
    }
}

impl SchedConfig {
    /// Checks the table sizes.
    pub fn validate(&self) -> Result<(), BuildError> {
        if !MH_TABLE_SIZES.contains(&self.mh_table_size) {
            return Err(BuildError::MhTableSize(self.mh_table_size));
        }
        if !(2..=CH_MAX_TABLE_SIZE).contains(&self.ch_table_size) || !is_prime(self.ch_table_size) {
            return Err(BuildError::ChTableSize(self.ch_table_size));
        }
        Ok(())
    }
}

/// Maglev needs a prime table size so that every skip visits every slot.
fn is_prime(n: u32) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// One worker's scheduler for one service: the dests it picks from and the
/// per-pick state the kernel keeps in `svc->sched_data`.
#[derive(Debug)]
pub struct Scheduler {
    dests: Arc<Dests>,
    rr: rr::Cursor,
    wrr: wrr::Mark,
    lblc: lblc::Cache,
    lblcr: lblcr::Cache,
}

impl Scheduler {
    /// A scheduler by name for a service with no dests yet; give it its dests
    /// with [`Scheduler::set_dests`].
    pub fn new(name: &str, config: &SchedConfig) -> Result<Scheduler, UnknownScheduler> {
        let kind = Kind::from_name(name)?;
        Ok(Scheduler::bind(Arc::new(Dests::empty(
            kind,
            config.clone(),
        ))))
    }

    /// A scheduler bound to a service that already has `dests`, with the
    /// state of a fresh `init_service` (what `ipvsadm -E -s` does).
    pub fn bind(dests: Arc<Dests>) -> Scheduler {
        let kind = dests.kind();
        Scheduler {
            rr: rr::Cursor::default(),
            wrr: match &dests.derived {
                Derived::Wrr(params) => wrr::Mark::new(params),
                _ => wrr::Mark::default(),
            },
            lblc: lblc::Cache::new(kind == Kind::Lblc),
            lblcr: lblcr::Cache::new(kind == Kind::Lblcr),
            dests,
        }
    }

    /// The dests picks refer to.
    pub fn dests(&self) -> &Arc<Dests> {
        &self.dests
    }

    /// The algorithm in use.
    pub fn kind(&self) -> Kind {
        self.dests.kind()
    }

    /// Swap in the service's new dests (between bursts). Passing the `Arc`
    /// already held does nothing; any other list counts as a change, which the
    /// state follows as the kernel's `add_dest`/`del_dest`/`upd_dest` hooks
    /// do: rr keeps its cursor (moved back if that dest was deleted), wrr
    /// restarts from the head with its current weight adjusted, lblc/lblcr
    /// keep their caches. A list built for another scheduler rebinds.
    pub fn set_dests(&mut self, dests: Arc<Dests>) {
        if Arc::ptr_eq(&self.dests, &dests) {
            return;
        }
        if dests.kind() != self.kind() {
            *self = Scheduler::bind(dests);
            return;
        }
        let old = std::mem::replace(&mut self.dests, dests);
        let new = &*self.dests;
        match &new.derived {
            Derived::Rr => self.rr.remap(&old, new),
            Derived::Wrr(params) => self.wrr.dest_changed(params),
            Derived::Lblc => self.lblc.remap(&old, new),
            Derived::Lblcr => self.lblcr.remap(&old, new),
            _ => {}
        }
    }

    /// The dest for a new connection, as an index into `dests().as_slice()`,
    /// or `None` when no dest is available (the dataplane then answers with
    /// ICMP port unreachable, as `ip_vs_leave`). `now` is any monotonic clock
    /// (only lblc/lblcr read it). Allocates nothing and takes no lock.
    pub fn pick(&mut self, flow: &FlowKey, now: Duration) -> Option<usize> {
        let dests = &*self.dests;
        let list = dests.as_slice();
        let flags = dests.config().flags;
        match &dests.derived {
            Derived::Rr => self.rr.pick(list),
            Derived::Wrr(params) => self.wrr.pick(params, list),
            Derived::Lc => least::lc(list),
            Derived::Wlc => least::wlc(list),
            Derived::Sed => least::sed(list),
            Derived::Nq => least::nq(list),
            Derived::Lblc => self.lblc.pick(list, &flow.vaddr, millis(now)),
            Derived::Lblcr => {
                let expiration = millis(dests.config().lblcr_expiration);
                self.lblcr.pick(list, &flow.vaddr, millis(now), expiration)
            }
            Derived::Dh(buckets) => buckets.dh_pick(list, &flow.vaddr),
            Derived::Sh(buckets) => buckets.sh_pick(list, flow, flags),
            Derived::Mh(table) => table.pick(list, flow, flags),
            Derived::Ch(table) => table.pick(list, flow, flags),
        }
    }

    /// Garbage-collects the lblc/lblcr cache like the kernel's periodic timer
    /// (`ip_vs_lblc_check_expire`): call it from the worker's timer slot, as
    /// often as convenient; it does work at most once per 60 s of `now`.
    /// Nothing to do for the other schedulers.
    pub fn expire(&mut self, now: Duration) {
        let config = self.dests.config();
        match self.kind() {
            Kind::Lblc => self
                .lblc
                .expire(millis(now), millis(config.lblc_expiration)),
            Kind::Lblcr => self
                .lblcr
                .expire(millis(now), millis(config.lblcr_expiration)),
            _ => {}
        }
    }
}

#[cfg(test)]
impl Scheduler {
    /// Entries in the lblc or lblcr cache.
    pub(crate) fn cache_len(&self) -> usize {
        self.lblc.len() + self.lblcr.len()
    }

    /// The lblcr set cached for `daddr`, most recent member first.
    pub(crate) fn lblcr_set(&self, daddr: &std::net::IpAddr) -> Option<Vec<usize>> {
        self.lblcr.set(daddr)
    }
}

/// Milliseconds, the cache clock (the kernel uses jiffies).
fn millis(t: Duration) -> u64 {
    u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kinds() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::NAMES);
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>(), Ok(k));
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = Scheduler::new("fo", &SchedConfig::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown scheduler \"fo\", expected one of: \
             rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, ch, mh"
        );
        assert!("WRR".parse::<Kind>().is_err());
    }

    #[test]
    fn scheduler_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Scheduler>();
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Dests>();
    }

    #[test]
    fn config_validation() {
        let ok = SchedConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!((ok.ch_table_size, ok.mh_table_size), (65537, 4093));
        let small_ch = SchedConfig {
            ch_table_size: 251,
            ..ok.clone()
        };
        assert_eq!(small_ch.validate(), Ok(()));
        for bad in [0, 1, 4, 65535, CH_MAX_TABLE_SIZE + 2] {
            let cfg = SchedConfig {
                ch_table_size: bad,
                ..ok.clone()
            };
            assert_eq!(cfg.validate(), Err(BuildError::ChTableSize(bad)));
        }
        let mh = SchedConfig {
            mh_table_size: 4091,
            ..ok
        };
        assert_eq!(mh.validate(), Err(BuildError::MhTableSize(4091)));
    }

    #[test]
    fn primes() {
        let small: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537) && is_prime(4093) && !is_prime(65535));
        assert!(is_prime(CH_MAX_TABLE_SIZE));
    }
}
