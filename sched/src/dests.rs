//! A service's dest list and the tables derived from it: built by the control
//! thread, shared read-only by the workers.

use std::fmt;
use std::net::SocketAddr;

use crate::dest::{Dest, MAX_WEIGHT};
use crate::scheduler::{Kind, SchedConfig};
use crate::{ch, hash, mh, wrr};

/// Most dests one service may have: tables store dest indices as `u16`, with
/// `u16::MAX` meaning "no dest".
pub const MAX_DESTS: usize = u16::MAX as usize;

/// Why [`Dests::new`] refused a list or a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// More than [`MAX_DESTS`] dests, or more than the mh/ch table has slots
    /// (the kernel's mh refuses `num_dests > M` with -EINVAL).
    TooManyDests { count: usize, max: usize },
    /// A weight or last weight above [`MAX_WEIGHT`].
    WeightOutOfRange { addr: SocketAddr, weight: u32 },
    /// Two dests with the same address and port.
    DuplicateDest(SocketAddr),
    /// `mh_table_size` is not one of the kernel's primes.
    MhTableSize(u32),
    /// `ch_table_size` is not a prime in 2..=`CH_MAX_TABLE_SIZE`.
    ChTableSize(u32),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TooManyDests { count, max } => {
                write!(f, "{count} destinations, at most {max} allowed")
            }
            BuildError::WeightOutOfRange { addr, weight } => {
                write!(
                    f,
                    "destination {addr}: weight {weight} not in 0..={MAX_WEIGHT}"
                )
            }
            BuildError::DuplicateDest(addr) => write!(f, "destination {addr} listed twice"),
            BuildError::MhTableSize(m) => write!(
                f,
                "mh table size {m} must be one of {:?}",
                crate::MH_TABLE_SIZES
            ),
            BuildError::ChTableSize(m) => write!(
                f,
                "ch table size {m} must be a prime in 2..={}",
                crate::CH_MAX_TABLE_SIZE
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// What a scheduler precomputes from the list, one variant per scheduler.
#[derive(Debug)]
pub(crate) enum Derived {
    Rr,
    Wrr(wrr::Params),
    Lc,
    Wlc,
    Sed,
    Nq,
    Lblc,
    Lblcr,
    Dh(hash::Buckets),
    Sh(hash::Buckets),
    Mh(mh::Table),
    Ch(ch::Table),
}

impl Derived {
    fn build(kind: Kind, config: &SchedConfig, list: &[Dest]) -> Derived {
        match kind {
            Kind::Rr => Derived::Rr,
            Kind::Wrr => Derived::Wrr(wrr::Params::new(list)),
            Kind::Lc => Derived::Lc,
            Kind::Wlc => Derived::Wlc,
            Kind::Sed => Derived::Sed,
            Kind::Nq => Derived::Nq,
            Kind::Lblc => Derived::Lblc,
            Kind::Lblcr => Derived::Lblcr,
            Kind::Dh => Derived::Dh(hash::Buckets::dh(list)),
            Kind::Sh => Derived::Sh(hash::Buckets::sh(list)),
            Kind::Mh => Derived::Mh(mh::Table::new(list, config.mh_table_size)),
            Kind::Ch => Derived::Ch(ch::Table::new(list, config.ch_table_size)),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Derived::Rr => Kind::Rr,
            Derived::Wrr(_) => Kind::Wrr,
            Derived::Lc => Kind::Lc,
            Derived::Wlc => Kind::Wlc,
            Derived::Sed => Kind::Sed,
            Derived::Nq => Kind::Nq,
            Derived::Lblc => Kind::Lblc,
            Derived::Lblcr => Kind::Lblcr,
            Derived::Dh(_) => Kind::Dh,
            Derived::Sh(_) => Kind::Sh,
            Derived::Mh(_) => Kind::Mh,
            Derived::Ch(_) => Kind::Ch,
        }
    }
}

/// One service's dests in kernel list order, with the tables its scheduler
/// needs. Immutable: build a new one for every change and hand it to each
/// worker's [`crate::Scheduler::set_dests`] (share it with `Arc`).
#[derive(Debug)]
pub struct Dests {
    config: SchedConfig,
    list: Box<[Dest]>,
    /// (address, index) sorted by address, for identity lookups across rebuilds.
    by_addr: Box<[(SocketAddr, u16)]>,
    pub(crate) derived: Derived,
}

impl Dests {
    /// Validates `config` and `list` (kernel order: the most recently added
    /// dest first) and builds the tables `kind` needs. May take about a
    /// millisecond for `ch` with 1000 dests: call it off the fast path.
    pub fn new(kind: Kind, config: SchedConfig, list: Vec<Dest>) -> Result<Dests, BuildError> {
        config.validate()?;
        let max = match kind {
            Kind::Mh => config.mh_table_size as usize,
            Kind::Ch => (config.ch_table_size as usize).min(MAX_DESTS),
            _ => MAX_DESTS,
        };
        if list.len() > max {
            return Err(BuildError::TooManyDests {
                count: list.len(),
                max,
            });
        }
        if let Some(d) = list
            .iter()
            .find(|d| d.weight > MAX_WEIGHT || d.last_weight > MAX_WEIGHT)
        {
            return Err(BuildError::WeightOutOfRange {
                addr: d.addr,
                weight: d.weight.max(d.last_weight),
            });
        }
        let mut by_addr: Vec<(SocketAddr, u16)> =
            list.iter().zip(0u16..).map(|(d, i)| (d.addr, i)).collect();
        by_addr.sort_unstable();
        if let Some(w) = by_addr.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BuildError::DuplicateDest(w[0].0));
        }
        let derived = Derived::build(kind, &config, &list);
        Ok(Dests {
            config,
            list: list.into_boxed_slice(),
            by_addr: by_addr.into_boxed_slice(),
            derived,
        })
    }

    /// A service with no dests yet (`ipvsadm -A` before any `-a`).
    pub fn empty(kind: Kind, config: SchedConfig) -> Dests {
        Dests {
            derived: Derived::build(kind, &config, &[]),
            config,
            list: Box::new([]),
            by_addr: Box::new([]),
        }
    }

    /// The scheduler these tables were built for.
    pub fn kind(&self) -> Kind {
        self.derived.kind()
    }

    /// The configuration they were built with.
    pub fn config(&self) -> &SchedConfig {
        &self.config
    }

    /// The dests in kernel order; picks are indices into this slice.
    pub fn as_slice(&self) -> &[Dest] {
        &self.list
    }

    /// The dest at `index`.
    pub fn get(&self, index: usize) -> Option<&Dest> {
        self.list.get(index)
    }

    /// Number of dests.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the service has no dests.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Index of the dest with this address and port (e.g. to find a
    /// persistence template's dest again after a rebuild).
    pub fn position(&self, addr: &SocketAddr) -> Option<usize> {
        self.by_addr
            .binary_search_by(|(a, _)| a.cmp(addr))
            .ok()
            .map(|i| usize::from(self.by_addr[i].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DestLoad;
    use std::sync::Arc;

    fn dest(addr: &str, weight: u32) -> Dest {
        Dest::new(addr.parse().unwrap(), weight, Arc::new(DestLoad::default()))
    }

    #[test]
    fn rejects_bad_lists() {
        let cfg = SchedConfig::default();
        let dup = vec![dest("10.0.0.1:80", 1), dest("10.0.0.1:80", 2)];
        assert_eq!(
            Dests::new(Kind::Rr, cfg.clone(), dup).unwrap_err(),
            BuildError::DuplicateDest("10.0.0.1:80".parse().unwrap())
        );
        let heavy = vec![dest("10.0.0.1:80", 2147483648)];
        let err = Dests::new(Kind::Wrr, cfg.clone(), heavy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "destination 10.0.0.1:80: weight 2147483648 not in 0..=2147483647"
        );
        let small_mh = SchedConfig {
            mh_table_size: 251,
            ..cfg.clone()
        };
        let many: Vec<Dest> = (0..252u32)
            .map(|i| dest(&format!("10.0.{}.{}:80", i / 256, i % 256), 1))
            .collect();
        assert_eq!(
            Dests::new(Kind::Mh, small_mh.clone(), many.clone()).unwrap_err(),
            BuildError::TooManyDests {
                count: 252,
                max: 251
            }
        );
        assert!(Dests::new(Kind::Mh, small_mh, many[..251].to_vec()).is_ok());
        let bad_ch = SchedConfig {
            ch_table_size: 65536,
            ..cfg
        };
        assert_eq!(
            Dests::new(Kind::Rr, bad_ch, vec![]).unwrap_err(),
            BuildError::ChTableSize(65536)
        );
    }

    #[test]
    fn position_finds_dests_by_address() {
        let list = vec![
            dest("10.0.0.3:80", 1),
            dest("10.0.0.1:80", 1),
            dest("10.0.0.2:8080", 1),
        ];
        let dests = Dests::new(Kind::Rr, SchedConfig::default(), list).unwrap();
        assert_eq!(dests.position(&"10.0.0.1:80".parse().unwrap()), Some(1));
        assert_eq!(dests.position(&"10.0.0.2:8080".parse().unwrap()), Some(2));
        assert_eq!(dests.position(&"10.0.0.2:80".parse().unwrap()), None);
        assert_eq!(dests.kind(), Kind::Rr);
        assert_eq!(dests.len(), 3);
    }
}
