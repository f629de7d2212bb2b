//! rvsd, the rvs data plane.
#![deny(unsafe_code)]

pub mod verdict;
pub mod wire;
