//! rvs configuration model.
#![forbid(unsafe_code)]
