//! rvs control plane. See issue 5.
#![forbid(unsafe_code)]
