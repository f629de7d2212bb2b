//! One frame through a fresh pipeline (the first byte picks the port): see
//! `rvs_fuzz::packet::check_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rvs_fuzz::packet::check_frame(data);
});
