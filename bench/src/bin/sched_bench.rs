//! Scheduler micro-benchmark: ns per pick for every scheduler with 8, 64 and
//! 1024 dests, and the time to build a ch (Maglev) table for 1000 dests at
//! M = 65537 (target: at most 1 ms).
//!
//! Run with `cargo run --release -p bench --bin sched_bench`.
//!
//! Picks only: connections are not bound, so the counters stay as set up
//! (every dest has 1..=8 active and some inactive connections, so nq finds
//! no idle dest and lc/wlc/sed/nq scan the whole list, their worst case).
//! Flows cycle through 4096 clients and 64 destination addresses, so the
//! lblc/lblcr caches see hits after the first round.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sched::{ConnClass, Dest, DestLoad, Dests, FlowKey, Kind, SchedConfig, Scheduler, IPPROTO_TCP};

const SIZES: [usize; 3] = [8, 64, 1024];
/// Each measurement runs at least this long.
const MIN_TIME: Duration = Duration::from_millis(200);

fn dests(n: usize) -> Vec<Dest> {
    (0..n)
        .map(|i| {
            let i = u32::try_from(i).expect("small");
            let load = Arc::new(DestLoad::default());
            for _ in 0..(1 + i % 8) {
                load.bind(ConnClass::Inactive);
                load.activate();
            }
            for _ in 0..(i % 5) {
                load.bind(ConnClass::Inactive);
            }
            let addr = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i + 1), 80));
            Dest::new(addr, 1 + i % 7, load)
        })
        .collect()
}

fn flows() -> Vec<FlowKey> {
    (0..4096u32)
        .map(|i| {
            let client =
                Ipv4Addr::from(0xc0a8_0000_u32.wrapping_add(i.wrapping_mul(2_654_435_761)));
            let vip = Ipv4Addr::from(0xc000_0200 + i % 64);
            FlowKey::v4(IPPROTO_TCP, client, 1024 + (i % 60000) as u16, vip, 80)
        })
        .collect()
}

/// Mean ns per pick over at least `MIN_TIME`.
fn ns_per_pick(sched: &mut Scheduler, flows: &[FlowKey]) -> f64 {
    let now = Duration::from_secs(1);
    let mut picks = 0u64;
    let start = Instant::now();
    loop {
        for flow in flows {
            black_box(sched.pick(black_box(flow), now));
        }
        picks += flows.len() as u64;
        let elapsed = start.elapsed();
        if elapsed >= MIN_TIME {
            return elapsed.as_nanos() as f64 / picks as f64;
        }
    }
}

fn build_times(kind: Kind, list: &[Dest], runs: usize) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let list = list.to_vec();
            let start = Instant::now();
            let built = Dests::new(kind, SchedConfig::default(), list).expect("valid dests");
            let elapsed = start.elapsed();
            black_box(built);
            elapsed
        })
        .collect();
    times.sort();
    times
}

fn main() {
    let flows = flows();
    println!("ns per pick (release, picks only)");
    println!("{:<8}{:>10}{:>10}{:>10}", "sched", "8", "64", "1024");
    for kind in Kind::ALL {
        let row: Vec<String> = SIZES
            .iter()
            .map(|&n| {
                let built =
                    Dests::new(kind, SchedConfig::default(), dests(n)).expect("valid dests");
                let mut sched = Scheduler::bind(Arc::new(built));
                // Warm the caches and the branch predictors.
                for flow in &flows {
                    black_box(sched.pick(flow, Duration::ZERO));
                }
                format!("{:>10.1}", ns_per_pick(&mut sched, &flows))
            })
            .collect();
        println!("{:<8}{}", kind.name(), row.concat());
    }

    let weighted = dests(1000);
    let equal: Vec<Dest> = weighted.iter().map(|d| d.with_weight(1)).collect();
    let config = SchedConfig::default();
    println!();
    println!("table build (Dests::new), 1000 dests, 50 runs: min / median / max");
    for (kind, size, list, weights) in [
        (Kind::Ch, config.ch_table_size, &equal, "equal"),
        (Kind::Ch, config.ch_table_size, &weighted, "1..=7"),
        (Kind::Mh, config.mh_table_size, &equal, "equal"),
        (Kind::Mh, config.mh_table_size, &weighted, "1..=7"),
    ] {
        let times = build_times(kind, list, 50);
        println!(
            "{:<3} M={:<6} weights {:<6} {:>9.1?} / {:>9.1?} / {:>9.1?}",
            kind.name(),
            size,
            weights,
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
