//! A keepalived.conf, imported as `rvsd --import-keepalived` does: see `rvs_fuzz::keepalived`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::keepalived::check_conf(data));
