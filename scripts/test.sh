#!/usr/bin/env bash
# Runs rvs's whole test suite on a fresh Debian 12 machine, as root: installs what it needs,
# checks formatting and lints, then runs every unit, golden-pcap and end-to-end test, the Debian
# package's install test, the fuzz checks over their seeds, and every fuzz target for 10 s
# (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The Debian package, built and installed in a throwaway copy of this machine (docs/deploy.md):
# the suite's one release build (fat LTO, several minutes on 2 cores).
scripts/test-package.sh
cargo test --manifest-path fuzz/Cargo.toml --locked
scripts/fuzz-smoke.sh 10
