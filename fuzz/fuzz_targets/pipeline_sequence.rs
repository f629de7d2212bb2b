//! Steps of frames through one pipeline with the clock moving: see
//! `rvs_fuzz::packet::check_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::packet::check_sequence(data));
