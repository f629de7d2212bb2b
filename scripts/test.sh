#!/usr/bin/env bash
# Runs rvs's whole test suite on a fresh Debian 12 machine, as root: installs what it needs,
# checks formatting and lints, then runs every unit, golden-pcap and end-to-end test, the fuzz
# checks over their seeds, and every fuzz target for 10 s (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo test --manifest-path fuzz/Cargo.toml --locked
scripts/fuzz-smoke.sh 10
