//! A token bucket in exact integer arithmetic, driven by the caller's millisecond clock.
//!
//! A worker's share of a port's `punt_pps` is `pps / workers` packets per second, which is
//! rarely a whole number of packets per millisecond. Counting in units of
//! `1 / (1000 · share_divisor)` token keeps every refill exact: a millisecond adds `pps` units
//! and a packet costs `1000 · share_divisor` units, so no rounding ever gains or loses a token.

/// Refills at `pps / divisor` tokens per second up to `burst` tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units added per millisecond (the port's whole `punt_pps`).
    per_ms: u64,
    /// Units one packet costs: `1000 · divisor`.
    cost: u64,
    /// Units held at most: `burst` whole tokens plus the fraction of the next one, so that a
    /// full bucket never throws away the part of a token it has already earned.
    capacity: u64,
    units: u64,
    /// The clock reading of the last refill; `None` before the first packet.
    last_ms: Option<u64>,
}

impl TokenBucket {
    /// A full bucket for a `1 / divisor` share of `pps` packets per second, holding at most
    /// `burst` packets (at least 1). `divisor` 0 counts as 1.
    pub fn new(pps: u32, divisor: u32, burst: u32) -> TokenBucket {
        let cost = 1000 * u64::from(divisor.max(1));
        let full = u64::from(burst.max(1)) * cost;
        TokenBucket {
            per_ms: u64::from(pps),
            cost,
            capacity: full + cost - 1,
            units: full,
            last_ms: None,
        }
    }

    /// The burst a worker's bucket gets for a `1 / divisor` share of `pps`: a tenth of a
    /// second of its rate, at least 32 packets (one burst of frames at once).
    pub fn default_burst(pps: u32, divisor: u32) -> u32 {
        (pps / divisor.max(1) / 10).max(32)
    }

    /// Takes one token at time `now_ms` if there is one. A clock that goes back refills
    /// nothing.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = self.last_ms.map_or(0, |last| now_ms.saturating_sub(last));
        if self.last_ms.is_none_or(|last| now_ms > last) {
            self.last_ms = Some(now_ms);
        }
        self.units = self
            .units
            .saturating_add(elapsed.saturating_mul(self.per_ms))
            .min(self.capacity);
        if self.units >= self.cost {
            self.units -= self.cost;
            true
        } else {
            false
        }
    }

    /// Whole tokens left (for tests and reports).
    pub fn tokens(&self) -> u64 {
        self.units / self.cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `n` packets at time `t` pass.
    fn pass(b: &mut TokenBucket, t: u64, n: usize) -> usize {
        (0..n).filter(|_| b.take(t)).count()
    }

    #[test]
    fn starts_full_then_refills_at_the_rate() {
        // 1000 pps, whole: one token per millisecond, burst 5.
        let mut b = TokenBucket::new(1000, 1, 5);
        assert_eq!(pass(&mut b, 100, 10), 5);
        assert_eq!(pass(&mut b, 100, 1), 0);
        assert_eq!(pass(&mut b, 101, 3), 1);
        assert_eq!(pass(&mut b, 104, 5), 3);
        // Idle for long: never more than the burst.
        assert_eq!(pass(&mut b, 10_000, 100), 5);
    }

    #[test]
    fn share_of_a_port_is_exact_over_time() {
        // 20000 pps over 3 workers: 6666.67 pps each. Over 3 s at most burst + 20000 exactly
        // (20000 · 3000 ms / 3 / 1000 = 20000 tokens, no rounding).
        let burst = TokenBucket::default_burst(20_000, 3);
        assert_eq!(burst, 666);
        let mut b = TokenBucket::new(20_000, 3, burst);
        let mut passed = 0;
        for t in 0..=3000 {
            passed += pass(&mut b, t, 100);
        }
        assert_eq!(passed, 666 + 20_000);
        // A slow share: 7 pps over 2 workers = 3.5 pps: 7 tokens in 2 s, not 6 or 8.
        let mut b = TokenBucket::new(7, 2, 1);
        assert_eq!(pass(&mut b, 0, 5), 1);
        let passed: usize = (1..=2000).map(|t| pass(&mut b, t, 5)).sum();
        assert_eq!(passed, 7);
    }

    #[test]
    fn clock_going_back_refills_nothing() {
        let mut b = TokenBucket::new(1000, 1, 2);
        assert_eq!(pass(&mut b, 50, 2), 2);
        assert_eq!(pass(&mut b, 40, 2), 0);
        assert_eq!(pass(&mut b, 50, 2), 0);
        assert_eq!(pass(&mut b, 51, 2), 1);
        assert_eq!(b.tokens(), 0);
    }

    #[test]
    fn minimum_burst_and_degenerate_arguments() {
        assert_eq!(TokenBucket::default_burst(100, 4), 32);
        assert_eq!(TokenBucket::default_burst(u32::MAX, 0), u32::MAX / 10);
        let mut b = TokenBucket::new(0, 0, 0);
        assert_eq!(pass(&mut b, 0, 3), 1);
        assert_eq!(pass(&mut b, u64::MAX, 3), 0);
    }
}
