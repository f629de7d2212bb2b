//! Adaptive polling (`[dataplane] idle_sleep_us`), as DPDK's l3fwd-power backs off: a worker
//! that has received nothing for [`PAUSE_AFTER`] polls in a row pauses the CPU between polls
//! (no system call), and after [`SLEEP_AFTER`] it sleeps between polls, the sleeps doubling
//! from an eighth of `idle_sleep_us` up to `idle_sleep_us`. The first packet ends it: the run
//! of empty polls starts again from zero, so busy polling resumes at once and the next idle
//! run starts again with short sleeps.
//!
//! Busy polling keeps a core at 100 % even with no traffic, which is right for a dedicated
//! core and wrong on a small machine shared with keepalived, BIRD or another rvsd. The price of
//! sleeping is latency for the first packet after a pause (up to one sleep, plus the kernel's
//! timer slack, 50 µs by default) and, at high rates, packets the NIC ring cannot hold while
//! the worker sleeps: it is off (0) by default.
//!
//! The worker still runs its between-burst work after every wake-up (snapshot changes,
//! packets handed over by other workers, ARP waits, connection expiry): timers stay on time to
//! within one sleep.

use std::time::Duration;

/// Empty polls in a row after which the worker pauses the CPU between polls.
pub const PAUSE_AFTER: u64 = 256;
/// Empty polls in a row after which it sleeps between polls. A worker that sleeps has
/// therefore polled its queues empty this many times since its last packet.
pub const SLEEP_AFTER: u64 = 1024;
/// CPU pause hints per paused poll (`PAUSE` on x86: tens of cycles each).
const PAUSE_SPINS: u32 = 32;
/// A sleeping worker publishes its counters after the first sleep of an idle run and then
/// after every this many.
const PUBLISH_EVERY_SLEEPS: u32 = 64;

/// What an idle worker does between two polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll again at once.
    Poll,
    /// Spin with the CPU's pause hint, no system call.
    Pause,
    /// Sleep this long.
    Sleep(Duration),
}

/// One worker's back-off state.
#[derive(Debug)]
pub struct Backoff {
    /// The longest sleep; 0 = always busy polling.
    max_us: u32,
    /// The next sleep.
    next_us: u32,
    /// Sleeps planned in the current idle run.
    run_sleeps: u32,
}

impl Backoff {
    /// The back-off of `[dataplane] idle_sleep_us = max_us`.
    pub fn new(max_us: u32) -> Backoff {
        Backoff {
            max_us,
            next_us: Self::first(max_us),
            run_sleeps: 0,
        }
    }

    fn first(max_us: u32) -> u32 {
        max_us.div_ceil(8)
    }

    /// What to do after a loop that leaves `empty_loops` polls in a row without a packet.
    #[inline]
    pub fn plan(&mut self, empty_loops: u64) -> Wait {
        if empty_loops < PAUSE_AFTER || self.max_us == 0 {
            return Wait::Poll;
        }
        self.idle(empty_loops)
    }

    /// [`Backoff::plan`] once the worker has been idle for a while: out of line, so the
    /// loop that receives packets carries one compare.
    #[inline(never)]
    fn idle(&mut self, empty_loops: u64) -> Wait {
        if empty_loops < SLEEP_AFTER {
            // Every idle run passes here before it sleeps: its sleeps start short again.
            self.next_us = Self::first(self.max_us);
            self.run_sleeps = 0;
            return Wait::Pause;
        }
        self.run_sleeps = self.run_sleeps.wrapping_add(1);
        let us = self.next_us;
        self.next_us = us.saturating_mul(2).min(self.max_us);
        Wait::Sleep(Duration::from_micros(u64::from(us)))
    }

    /// Whether the worker should publish its counters after the sleep just planned: after
    /// the first of an idle run (the counts of the traffic that just ended, and the run of
    /// empty polls `--exit-idle-ms` waits for), then now and then, so that a worker sleeping
    /// long stays visible without paying for a publication (every FULLNAT local address's
    /// usage, among others) at each wake-up.
    pub fn publish_due(&self) -> bool {
        self.run_sleeps % PUBLISH_EVERY_SLEEPS == 1
    }

    /// Waits as `plan` said; true when it slept.
    pub fn wait(plan: Wait) -> bool {
        match plan {
            Wait::Poll => false,
            Wait::Pause => {
                for _ in 0..PAUSE_SPINS {
                    std::hint::spin_loop();
                }
                false
            }
            Wait::Sleep(d) => {
                std::thread::sleep(d);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Wait {
        Wait::Sleep(Duration::from_micros(n))
    }

    #[test]
    fn off_never_waits() {
        let mut b = Backoff::new(0);
        for n in [0, 1, PAUSE_AFTER, SLEEP_AFTER, u64::MAX] {
            assert_eq!(b.plan(n), Wait::Poll);
        }
    }

    #[test]
    fn polls_then_pauses_then_sleeps_doubling_up_to_the_limit() {
        let mut b = Backoff::new(200);
        assert_eq!(b.plan(0), Wait::Poll);
        assert_eq!(b.plan(PAUSE_AFTER - 1), Wait::Poll);
        assert_eq!(b.plan(PAUSE_AFTER), Wait::Pause);
        assert_eq!(b.plan(SLEEP_AFTER - 1), Wait::Pause);
        let sleeps: Vec<Wait> = (SLEEP_AFTER..SLEEP_AFTER + 6).map(|n| b.plan(n)).collect();
        assert_eq!(sleeps, [us(25), us(50), us(100), us(200), us(200), us(200)]);
    }

    #[test]
    fn publishes_after_the_first_sleep_of_a_run_then_every_64() {
        let mut b = Backoff::new(200);
        assert_eq!(b.plan(PAUSE_AFTER), Wait::Pause);
        assert!(!b.publish_due());
        let due: Vec<u64> = (SLEEP_AFTER..SLEEP_AFTER + 130)
            .filter(|&n| {
                b.plan(n);
                b.publish_due()
            })
            .map(|n| n - SLEEP_AFTER + 1)
            .collect();
        assert_eq!(due, [1, 65, 129]);
        // A new idle run: its first sleep publishes again.
        b.plan(PAUSE_AFTER);
        b.plan(SLEEP_AFTER);
        assert!(b.publish_due());
    }

    #[test]
    fn a_packet_starts_the_next_idle_run_with_short_sleeps_again() {
        let mut b = Backoff::new(10_000);
        for n in SLEEP_AFTER..SLEEP_AFTER + 10 {
            b.plan(n);
        }
        assert_eq!(b.plan(SLEEP_AFTER + 10), us(10_000));
        // A packet: the run of empty polls restarts at 0.
        assert_eq!(b.plan(0), Wait::Poll);
        assert_eq!(b.plan(PAUSE_AFTER), Wait::Pause);
        assert_eq!(b.plan(SLEEP_AFTER), us(1250));
        assert_eq!(b.plan(SLEEP_AFTER + 1), us(2500));
    }

    #[test]
    fn the_smallest_setting_sleeps_one_microsecond() {
        let mut b = Backoff::new(1);
        assert_eq!(b.plan(SLEEP_AFTER), us(1));
        assert_eq!(b.plan(SLEEP_AFTER + 1), us(1));
    }
}
