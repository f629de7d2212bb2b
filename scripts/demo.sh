#!/usr/bin/env bash
# The rvs demo on a fresh Debian 12 machine, as root: installs what it needs (idempotent),
# builds rvs, then balances real HTTP traffic from a client namespace over three real-server
# namespaces through rvsd (LVS-NAT, DPDK net_af_packet ports) and shows rvsadm's view, and a
# real server failing its health check and recovering.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q -p dataplane -p control -p rvscheck
exec cargo run --release --locked -q -p dataplane --example demo
