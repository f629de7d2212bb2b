//! A config file, parsed and validated as `rvsd --config` does: see `rvs_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::config::check_text(data));
