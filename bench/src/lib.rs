//! rvs benchmarks.
#![forbid(unsafe_code)]
