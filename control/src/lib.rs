//! rvs control plane (issue 5): the control socket rvsd serves, the configuration model it
//! applies changes to, the IPVS rate estimator, and `rvsadm`, the ipvsadm-compatible client.
//!
//! - [`server`]: the UNIX socket server and the [`server::Handler`] trait rvsd implements.
//! - [`model`]: services and real servers as ipvsadm sees them, with ipvsadm's rules and
//!   errors; seeded from and reloaded with a [`conf::Config`].
//! - [`estimator`]: CPS/PPS/BPS as `ip_vs_est.c` computes them, from counter samples.
//! - [`sync`]: which connection sync daemons run, with ipvsadm's errors.
//! - [`cli`], [`listing`], [`names`], [`admin`], [`client`]: `rvsadm`.
//!
//! The protocol itself is [`conf::proto`], so rvsd and other clients share it without this
//! crate.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod client;
pub mod estimator;
pub mod health;
pub mod listing;
pub mod model;
pub mod names;
mod ordered;
pub mod server;
pub mod sync;
