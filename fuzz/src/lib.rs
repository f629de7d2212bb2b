//! What each fuzz target checks, as plain functions of the input bytes so that the unit tests
//! (`cargo test --manifest-path fuzz/Cargo.toml`) run them on the seeds without libFuzzer.
//!
//! A target file in `fuzz_targets/` only hands libFuzzer's input to one of these; a finding is
//! a panic (including a failed property below), an abort, a hang or memory above libFuzzer's
//! `-rss_limit_mb`.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod keepalived;
pub mod packet;
pub mod sync;
