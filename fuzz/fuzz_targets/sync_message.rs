//! A received IPVS sync datagram, decoded as the backup does: see `rvs_fuzz::sync`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::sync::check_message(data));
