//! Seeds of the packet targets: the input frames of the golden tables
//! (`fastpath/tests/fixtures/`, included as they are, so that the seeds follow the tables).
//! Shared by `examples/seeds.rs` and `tests/packet_seeds.rs` (both may use the tables'
//! dev-dependency, etherparse; the fuzz targets do not link them).

#[path = "../../fastpath/tests/fixtures/mod.rs"]
pub mod fixtures;

use fixtures::{
    dr, frag, fullnat, host, host6, l2, malformed, malformed6, mtu, nat, nat66, tun, Fixture,
};
use rvs_fuzz::packet::{encode, Step};

/// Every golden table, each as its input frames in order, by name.
pub fn tables() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let inputs = |table: Vec<Fixture>| table.into_iter().map(|f| f.input).collect();
    vec![
        ("l2", inputs(l2::fixtures())),
        ("nat", inputs(nat::fixtures())),
        ("dr", inputs(dr::fixtures())),
        ("tun", inputs(tun::fixtures())),
        ("fullnat", fullnat::table(None).inputs()),
        ("host", inputs(host::fixtures())),
        ("malformed", inputs(malformed::fixtures())),
        ("mtu", inputs(mtu::fixtures())),
        ("frag", frag::table().inputs()),
        ("frag-limits", frag::limits().inputs()),
        ("frag-timing", frag::timing().inputs()),
        ("host6", inputs(host6::fixtures(true))),
        ("nat66", inputs(nat66::fixtures())),
        ("malformed6", inputs(malformed6::fixtures())),
    ]
}

/// `pipeline_frame`: every input frame of every table on port 0 (a first byte of 0), the
/// first few on port 1 too.
pub fn frame_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (table, frames) in tables() {
        for (i, frame) in frames.iter().enumerate() {
            for port in [0u8, 1] {
                if port == 1 && i >= 8 {
                    continue;
                }
                let mut seed = vec![port];
                seed.extend_from_slice(frame);
                seeds.push((format!("{table}-{i:03}-port{port}"), seed));
            }
        }
    }
    seeds
}

/// `pipeline_sequence`: every table as one sequence on port 0, 1 ms between rows (the
/// fragment timing table at its rows' own times), and each table's rows in windows of 8.
pub fn sequence_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (table, frames) in tables() {
        let at: Vec<u64> = if table == "frag-timing" {
            frag::timing().rows.iter().map(|r| r.at_ms).collect()
        } else {
            (0..frames.len() as u64).collect()
        };
        let steps = |range: std::ops::Range<usize>| -> Vec<Step<'_>> {
            range
                .map(|i| Step {
                    port: 0,
                    advance_ms: if i == 0 {
                        0
                    } else {
                        at[i].saturating_sub(at[i - 1]).min(u64::from(u16::MAX)) as u16
                    },
                    frame: &frames[i],
                })
                .collect()
        };
        seeds.push((table.to_owned(), encode(&steps(0..frames.len()))));
        for start in (0..frames.len()).step_by(8) {
            let end = (start + 8).min(frames.len());
            seeds.push((format!("{table}-{start:03}"), encode(&steps(start..end))));
        }
    }
    seeds
}
