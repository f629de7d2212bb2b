//! Writes the seed corpora: `cargo run --example seeds [DIR]` puts each target's seeds into
//! `DIR/<target>/` (default `fuzz/corpus`, where `cargo fuzz run` looks) as `seed-<name>` files,
//! replacing earlier seeds of the same name and leaving what libFuzzer added. An example rather
//! than a bin because `cargo fuzz build` instruments every bin, and only the fuzz targets link
//! libFuzzer's runtime.

use std::path::PathBuf;

#[path = "../seeds/packet.rs"]
mod packet_seeds;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let targets = [
        ("control_proto", rvs_fuzz::control::seeds()),
        ("config_toml", rvs_fuzz::config::seeds()),
        ("keepalived_conf", rvs_fuzz::keepalived::seeds()),
        ("pipeline_frame", packet_seeds::frame_seeds()),
        ("pipeline_sequence", packet_seeds::sequence_seeds()),
        ("sync_message", rvs_fuzz::sync::seeds()),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{}: {} seeds", dir.display(), seeds.len());
    }
    Ok(())
}
