//! rvs benchmarks.
//!
//! - `sched_bench`: scheduler picks and Maglev table builds.
//! - `dataplane_bench`: the data-path benchmarks (established-flow throughput of `rvsd` against
//!   `dpdk-testpmd` in the same run, new connections per second, instructions per packet and
//!   bytes per connection); `bench/run.sh` builds and runs it.
//! - `pipeline_ipp`: the pipeline workload `dataplane_bench` runs under callgrind.
//! - `control_bench`: live changes per second through rvsd's control socket at a small and a
//!   large number of services, and the ratio (`bench/run.sh control`).
#![forbid(unsafe_code)]

pub mod callgrind;
pub mod dpdk;
pub mod lab;
