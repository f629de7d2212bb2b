//! keepalived 2.2's checker state machine for one check, free of I/O and clocks: it is told
//! each probe's outcome and answers how long to wait before the next probe and whether the
//! check changed state. Real time (the runtime's clock) or a fake clock in tests drives it.
//!
//! - A healthy check probes every `delay_loop`.
//! - A failed probe of a healthy check is retried `retry` times, `delay_before_retry` apart;
//!   when the last retry fails too the check goes down, and is probed every `delay_loop`.
//! - One success brings a down check up (keepalived has no rise count) and resets the retries.
//! - `alpha`: the check starts down, so its first success is a transition.

use std::time::Duration;

use conf::health::Check;

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The probe passed; `weight` is a MISC_CHECK `dynamic` weight.
    Pass { weight: Option<u32>, detail: String },
    /// The probe failed, and why.
    Fail(String),
}

/// What to do after a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Wait this long before the next probe.
    pub next: Duration,
    /// `Some(up)` when the check changed state.
    pub transition: Option<bool>,
    /// A failed probe that will be retried: the number of this retry (1-based).
    pub retrying: Option<u32>,
}

/// The state of one check.
#[derive(Debug, Clone)]
pub struct Machine {
    retry: u32,
    delay_before_retry: Duration,
    delay_loop: Duration,
    up: bool,
    /// Failed probes of the current failure run (0 while healthy).
    failures: u32,
    /// The latest dynamic weight.
    weight: Option<u32>,
    /// Whether the check has reached a verdict yet: a success, or going down.
    settled: bool,
}

impl Machine {
    /// A check starting up, or down under `alpha`.
    pub fn new(check: &Check, alpha: bool) -> Machine {
        Machine {
            retry: check.retry,
            delay_before_retry: check.delay_before_retry,
            delay_loop: check.delay_loop,
            up: !alpha,
            failures: 0,
            weight: None,
            settled: false,
        }
    }

    /// Whether the check is up.
    pub fn up(&self) -> bool {
        self.up
    }

    /// The MISC_CHECK dynamic weight of the latest success.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    /// Whether the check has reached its first verdict.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// Takes a probe's outcome.
    pub fn outcome(&mut self, outcome: &Outcome) -> Step {
        match outcome {
            Outcome::Pass { weight, .. } => {
                self.failures = 0;
                self.weight = *weight;
                self.settled = true;
                let transition = (!self.up).then_some(true);
                self.up = true;
                Step {
                    next: self.delay_loop,
                    transition,
                    retrying: None,
                }
            }
            Outcome::Fail(_) if !self.up => {
                // Already down: keepalived does not retry, it probes again next loop.
                self.settled = true;
                Step {
                    next: self.delay_loop,
                    transition: None,
                    retrying: None,
                }
            }
            Outcome::Fail(_) => {
                self.failures += 1;
                if self.failures <= self.retry {
                    return Step {
                        next: self.delay_before_retry,
                        transition: None,
                        retrying: Some(self.failures),
                    };
                }
                self.failures = 0;
                self.up = false;
                self.weight = None;
                self.settled = true;
                Step {
                    next: self.delay_loop,
                    transition: Some(false),
                    retrying: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use conf::health::CheckKind;

    fn check(retry: u32, dbr: u64, delay_loop: u64) -> Check {
        Check {
            kind: CheckKind::Tcp,
            connect: "10.0.0.11:80".parse().unwrap(),
            bindto: None,
            bind_port: 0,
            connect_timeout: Duration::from_secs(5),
            retry,
            delay_before_retry: Duration::from_secs(dbr),
            delay_loop: Duration::from_secs(delay_loop),
            warmup: Duration::ZERO,
        }
    }

    fn pass() -> Outcome {
        Outcome::Pass {
            weight: None,
            detail: "ok".into(),
        }
    }

    fn fail() -> Outcome {
        Outcome::Fail("connection refused".into())
    }

    /// Runs `m` on a fake clock from 0 with probes that take `probe_time` and whose outcome is
    /// `server_up(start time)`; returns the times (probe end) of each transition until `end`.
    fn simulate(
        m: &mut Machine,
        probe_time: Duration,
        end: Duration,
        server_up: impl Fn(Duration) -> bool,
    ) -> Vec<(Duration, bool)> {
        let mut now = Duration::ZERO;
        let mut transitions = Vec::new();
        while now < end {
            let outcome = if server_up(now) { pass() } else { fail() };
            now += probe_time;
            let step = m.outcome(&outcome);
            if let Some(up) = step.transition {
                transitions.push((now, up));
            }
            now += step.next;
        }
        transitions
    }

    #[test]
    fn test_retry_timing_and_one_success_recovery() {
        let s = Duration::from_secs;
        // delay_loop 6, retry 2, delay_before_retry 1; the server dies at 10 s and comes back
        // at 30 s. Probes at 0, 6, 12 (fail), 13 (retry 1), 14 (retry 2: down), 20, 26 (down),
        // 32 (one success: up).
        let mut m = Machine::new(&check(2, 1, 6), false);
        let t = simulate(&mut m, Duration::ZERO, s(40), |now| {
            now < s(10) || now >= s(30)
        });
        assert_eq!(t, [(s(14), false), (s(32), true)]);
    }

    #[test]
    fn test_retry_counts_and_reset() {
        let mut m = Machine::new(&check(1, 3, 60), false);
        let step = m.outcome(&fail());
        assert_eq!(
            step,
            Step {
                next: Duration::from_secs(3),
                transition: None,
                retrying: Some(1)
            }
        );
        assert!(m.up() && !m.settled());
        // A success between failures resets the count: the next failure is retried again.
        assert_eq!(m.outcome(&pass()).transition, None);
        assert_eq!(m.outcome(&fail()).retrying, Some(1));
        let down = m.outcome(&fail());
        assert_eq!(down.transition, Some(false));
        assert_eq!(down.next, Duration::from_secs(60));
        assert!(!m.up() && m.settled());
        // Down: no retries, one probe per loop.
        assert_eq!(
            m.outcome(&fail()),
            Step {
                next: Duration::from_secs(60),
                transition: None,
                retrying: None
            }
        );
    }

    #[test]
    fn test_retry_zero_goes_down_at_once() {
        let mut m = Machine::new(&check(0, 1, 1), false);
        assert_eq!(m.outcome(&fail()).transition, Some(false));
    }

    #[test]
    fn test_alpha_starts_down() {
        let mut m = Machine::new(&check(1, 1, 1), true);
        assert!(!m.up() && !m.settled());
        // A first failure is no transition (and not retried): it is already down.
        assert_eq!(m.outcome(&fail()).transition, None);
        assert!(m.settled());
        assert_eq!(m.outcome(&pass()).transition, Some(true));
    }

    #[test]
    fn test_dynamic_weight() {
        let mut m = Machine::new(&check(0, 1, 1), false);
        m.outcome(&Outcome::Pass {
            weight: Some(5),
            detail: "exit 7".into(),
        });
        assert_eq!(m.weight(), Some(5));
        m.outcome(&pass());
        assert_eq!(m.weight(), None);
        m.outcome(&Outcome::Pass {
            weight: Some(0),
            detail: "exit 2".into(),
        });
        assert_eq!(m.weight(), Some(0));
        m.outcome(&fail());
        assert_eq!(m.weight(), None);
    }

    #[test]
    fn test_detection_time_of_the_e2e_settings() {
        // delay_loop 1, retry 1, delay_before_retry 1, a refused connection answers at once:
        // a server dying just after a probe is down 2 s later, back 1 s after it returns.
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let mut m = Machine::new(&check(1, 1, 1), false);
        let t = simulate(&mut m, ms(0), s(10), |now| {
            now < s(3) + ms(1) || now >= s(7) + ms(1)
        });
        assert_eq!(t, [(s(5), false), (s(8), true)]);
    }
}
