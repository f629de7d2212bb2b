#!/usr/bin/env bash
# The data-path benchmarks in one command: builds rvsd, dataplane_bench, pipeline_ipp and the
# NAT floor reference (bench/floor/nat_floor.c) in release mode, then runs dataplane_bench,
# which prints one table (established-flow throughput of rvsd against dpdk-testpmd and the NAT
# floor measured in the same run, new connections per second, instructions per packet under
# callgrind, bytes per connection) and the details under it.
#
# Run as root so that hugepages can be reserved (they are given back at the end); otherwise
# DPDK runs with --no-huge and the output says so. Arguments go to dataplane_bench, e.g.
#   bench/run.sh --only throughput --reps 5
#   bench/run.sh --help
# Needs the packages of scripts/setup.sh (dpdk for dpdk-testpmd, valgrind); installs nothing.
#
# `bench/run.sh control [ARGS]` runs control_bench instead: live changes per second through the
# control socket at 10 and at 10,000 services and their ratio (`bench/run.sh control --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = control ]; then
  shift
  cargo build --release -p dataplane --bin rvsd -p bench --bin control_bench
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  exec "$target_dir/release/control_bench" "$@"
fi

for tool in dpdk-testpmd valgrind callgrind_annotate stdbuf; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench/run.sh: $tool not found; run scripts/setup.sh first" >&2
    exit 1
  fi
done

cargo build --release -p dataplane --bin rvsd -p bench --bin dataplane_bench --bin pipeline_ipp
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
# The NAT floor reference: plain C against the system DPDK (shared libraries, drivers loaded
# as plugins, as dpdk-testpmd is built), next to dataplane_bench, which runs it.
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -O3 -Wall -Wextra -Werror -o "$target_dir/release/nat_floor" bench/floor/nat_floor.c \
  $(pkg-config --cflags --libs libdpdk)
exec "$target_dir/release/dataplane_bench" "$@"
