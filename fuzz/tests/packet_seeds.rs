//! The packet targets' checks over their seeds (the golden tables' input frames), without
//! libFuzzer: every seed passes, and the seeds reach the verdicts the checks are about.

#[path = "../seeds/packet.rs"]
mod packet_seeds;

use rvs_fuzz::packet::{check_frame, check_sequence, encode, steps, Step};

#[test]
fn every_frame_seed_passes() {
    let seeds = packet_seeds::frame_seeds();
    assert!(seeds.len() > 300, "{} seeds", seeds.len());
    let mut reached = std::collections::BTreeSet::new();
    for (name, seed) in &seeds {
        println!("{name}");
        let verdict = check_frame(seed).expect("a frame");
        let kind = format!("{verdict:?}");
        reached.insert(kind[..kind.find([' ', '(']).unwrap_or(kind.len())].to_owned());
    }
    // Every verdict a worker acts on (Redirect needs a second worker).
    let expected = [
        "Drop",
        "Fragment",
        "Hold",
        "Punt",
        "Resolve",
        "Resolve6",
        "ResolveFragment",
        "Tx",
    ];
    assert_eq!(reached, expected.map(str::to_owned).into(), "{reached:?}");
}

#[test]
fn every_sequence_seed_passes() {
    let seeds = packet_seeds::sequence_seeds();
    assert!(seeds.len() > 50, "{} seeds", seeds.len());
    for (name, seed) in &seeds {
        println!("{name}");
        check_sequence(seed);
    }
}

#[test]
fn steps_round_trip_and_the_last_takes_what_is_left() {
    let a = [1u8, 2, 3];
    let b = [9u8; 70];
    let written = [
        Step {
            port: 1,
            advance_ms: 500,
            frame: &a,
        },
        Step {
            port: 0,
            advance_ms: 0,
            frame: &b,
        },
    ];
    let bytes = encode(&written);
    assert_eq!(steps(&bytes), written);
    let cut = &bytes[..bytes.len() - 10];
    assert_eq!(steps(cut)[1].frame.len(), 60);
    assert_eq!(steps(&bytes[..4]), []);
}
