//! Rate estimation as IPVS does it (`ip_vs_est.c`), for the CPS/PPS/BPS columns of
//! `ipvsadm -L --rate`.
//!
//! Every 2 seconds the kernel takes the counter increments of the interval and moves a smoothed
//! average a quarter of the way to the new rate:
//!
//! ```text
//! rate = delta << 9                    (per second, scaled by 2^10: conns and packets)
//! rate = delta << 4                    (per second, scaled by 2^5: bytes)
//! avg += (rate - avg) >> 2             (W = 1/4, arithmetic shift)
//! shown = (avg + 0x1FF) >> 10          (bytes: (avg + 0xF) >> 5)
//! ```
//!
//! The same arithmetic is done here on samples the caller passes in with their time: the
//! estimator reads no clock. A sample less than 2 seconds after the last estimate is ignored;
//! a later one is turned into the per-second rate of the whole elapsed time (which is the
//! kernel's `<< 9` / `<< 4` when exactly 2 seconds passed) and applied once per 2 seconds
//! elapsed, as the kernel timer would have fired that often, up to [`MAX_CATCH_UP`] times.

use std::time::Duration;

use conf::proto::{Counters, Rates};

/// The kernel's estimation interval.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Most estimation steps one late sample stands for; after this many identical steps the
/// average has converged to the rate anyway (it keeps (3/4)^32 < 0.01% of the old value).
pub const MAX_CATCH_UP: u32 = 32;

/// Scale of conns and packets averages (`<< 10`).
const PKT_SHIFT: u32 = 10;
/// Scale of byte averages (`<< 5`).
const BYTE_SHIFT: u32 = 5;

/// The estimator of one service or real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimator {
    /// Counters at the last estimate.
    last: Counters,
    /// Time of the last estimate.
    last_at: Duration,
    /// Smoothed rates, scaled as in the kernel.
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Estimator {
    /// Starts estimating from `counters` read at `now` (any monotonic time base).
    pub fn new(now: Duration, counters: Counters) -> Estimator {
        Estimator {
            last: counters,
            last_at: now,
            cps: 0,
            inpps: 0,
            outpps: 0,
            inbps: 0,
            outbps: 0,
        }
    }

    /// Feeds the counters read at `now`; returns whether an estimate was made. Counters that
    /// went down (a reset the caller did not report with [`Estimator::zero`]) count as no
    /// traffic.
    pub fn update(&mut self, now: Duration, counters: Counters) -> bool {
        let elapsed = now.saturating_sub(self.last_at);
        if elapsed < INTERVAL {
            return false;
        }
        let steps = u32::try_from(elapsed.as_nanos() / INTERVAL.as_nanos())
            .unwrap_or(u32::MAX)
            .min(MAX_CATCH_UP);
        let nanos = elapsed.as_nanos();
        let rate = |new: u64, old: u64, shift: u32| -> i64 {
            let delta = u128::from(new.saturating_sub(old));
            let per_sec = (delta << shift) * 1_000_000_000 / nanos;
            i64::try_from(per_sec).unwrap_or(i64::MAX)
        };
        let (new, old) = (counters, self.last);
        let targets = [
            (&mut self.cps, rate(new.conns, old.conns, PKT_SHIFT)),
            (&mut self.inpps, rate(new.inpkts, old.inpkts, PKT_SHIFT)),
            (&mut self.outpps, rate(new.outpkts, old.outpkts, PKT_SHIFT)),
            (&mut self.inbps, rate(new.inbytes, old.inbytes, BYTE_SHIFT)),
            (
                &mut self.outbps,
                rate(new.outbytes, old.outbytes, BYTE_SHIFT),
            ),
        ];
        for (avg, rate) in targets {
            for _ in 0..steps {
                *avg += (rate - *avg) >> 2;
            }
        }
        self.last = counters;
        self.last_at = now;
        true
    }

    /// The rates `ipvsadm --rate` shows, rounded as the kernel rounds them.
    pub fn rates(&self) -> Rates {
        let show = |avg: i64, shift: u32| {
            let round = (1i64 << (shift - 1)) - 1;
            u64::try_from(avg.saturating_add(round) >> shift).unwrap_or(0)
        };
        Rates {
            cps: show(self.cps, PKT_SHIFT),
            inpps: show(self.inpps, PKT_SHIFT),
            outpps: show(self.outpps, PKT_SHIFT),
            inbps: show(self.inbps, BYTE_SHIFT),
            outbps: show(self.outbps, BYTE_SHIFT),
        }
    }

    /// `-Z`: the rates restart from 0 and `counters` (read at `now`) become the new base, as
    /// `ip_vs_zero_estimator` does.
    pub fn zero(&mut self, now: Duration, counters: Counters) {
        *self = Estimator::new(now, counters);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn conns(n: u64) -> Counters {
        Counters {
            conns: n,
            inpkts: 10 * n,
            outpkts: 0,
            inbytes: 1000 * n,
            outbytes: 5 * n,
        }
    }

    #[test]
    fn test_kernel_sequence() {
        // 100 conns/s: rate = 200 << 9 = 102400; avg 25600, 44800, 59200, 70000, ...
        let mut e = Estimator::new(secs(0), conns(0));
        let mut shown = Vec::new();
        for i in 1..=6 {
            assert!(e.update(secs(2 * i), conns(200 * i)));
            shown.push(e.rates().cps);
        }
        assert_eq!(shown, [25, 44, 58, 68, 76, 82]);
        // 1000 pps, 100 kB/s in and 500 B/s out (bytes: rate = 200000 << 4 = 3200000).
        assert_eq!(e.rates().inpps, 822);
        assert_eq!(e.rates().inbps, 82_202);
        assert_eq!(e.rates().outbps, 411);
        assert_eq!(e.rates().outpps, 0);
        for i in 7..=60 {
            e.update(secs(2 * i), conns(200 * i));
        }
        assert_eq!(
            e.rates(),
            Rates {
                cps: 100,
                inpps: 1000,
                outpps: 0,
                inbps: 100_000,
                outbps: 500
            }
        );
    }

    #[test]
    fn test_decay_and_rounding() {
        // One connection in the first interval: rate 512, avg 128, shown (128 + 511) >> 10 = 0.
        let mut e = Estimator::new(secs(0), conns(0));
        e.update(secs(2), conns(1));
        assert_eq!(e.rates().cps, 0);
        // 2000 conns then silence: 256000 -> 192000 -> 144000 ...
        let mut e = Estimator::new(secs(0), conns(0));
        e.update(secs(2), conns(2000));
        assert_eq!(e.rates().cps, 250);
        e.update(secs(4), conns(2000));
        assert_eq!(e.rates().cps, 187);
        e.update(secs(6), conns(2000));
        assert_eq!(e.rates().cps, 141);
        for i in 4..200 {
            e.update(secs(2 * i), conns(2000));
        }
        assert_eq!(e.rates().cps, 0);
    }

    #[test]
    fn test_sampling_interval() {
        let mut e = Estimator::new(secs(10), conns(0));
        assert!(!e.update(Duration::from_millis(11_999), conns(100)));
        assert_eq!(e.rates().cps, 0);
        // A sample 4 s late stands for two steps at the average rate of the 4 s.
        let mut late = e.clone();
        assert!(late.update(secs(14), conns(400)));
        let mut on_time = e.clone();
        on_time.update(secs(12), conns(200));
        on_time.update(secs(14), conns(400));
        assert_eq!(late.rates(), on_time.rates());
        assert_eq!(late.rates().cps, 44);
        // Slightly late samples keep the rate per second right.
        let mut e = Estimator::new(secs(0), conns(0));
        let mut t = Duration::ZERO;
        for i in 1..=80 {
            t += Duration::from_millis(2_500);
            e.update(t, conns(250 * i));
        }
        assert_eq!(e.rates().cps, 100);
    }

    #[test]
    fn test_zero_and_backwards() {
        let mut e = Estimator::new(secs(0), conns(0));
        e.update(secs(2), conns(2000));
        e.zero(secs(3), conns(2000));
        assert_eq!(e.rates(), Rates::default());
        assert!(!e.update(secs(4), conns(2100)));
        assert!(e.update(secs(5), conns(2000)));
        assert_eq!(e.rates(), Rates::default());
        // Huge byte counters do not overflow.
        let mut e = Estimator::new(secs(0), Counters::default());
        let big = Counters {
            inbytes: u64::MAX,
            ..Counters::default()
        };
        e.update(secs(2), big);
        // The rate saturates at i64::MAX: avg = 2^61 - 1, shown (avg + 15) >> 5 = 2^56.
        assert_eq!(e.rates().inbps, 1 << 56);
    }
}
