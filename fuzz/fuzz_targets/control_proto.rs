//! A control-socket client's byte stream, decoded as the server does: see
//! `rvs_fuzz::control`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rvs_fuzz::control::check_stream(data));
