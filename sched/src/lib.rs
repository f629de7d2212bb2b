//! Schedulers for rvs. See issue 6.
#![forbid(unsafe_code)]

/// Scheduler names accepted in the config file and by `rvsadm -s`.
pub const NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "ch", "mh",
];
