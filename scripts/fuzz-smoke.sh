#!/usr/bin/env bash
# Short run of every fuzz target (fuzz/README.md): builds them with cargo-fuzz on the stable
# toolchain (no sanitizer, SanitizerCoverage and debug assertions on), writes the seed corpora,
# then runs each target for SECONDS (default 20) from its corpus. Fails on a crash, a panic, a
# hang (-timeout) or memory above -rss_limit_mb; libFuzzer leaves the input in
# fuzz/artifacts/<target>/. `fuzz/dict/<target>.dict` and the libFuzzer flags in
# `fuzz/options/<target>` (one line) are used when they exist.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${1:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked --version 0.13.2 cargo-fuzz
fi
cargo run --quiet --manifest-path fuzz/Cargo.toml --example seeds
cargo fuzz build -s none --debug-assertions
for target in $(cargo fuzz list); do
    echo "== $target: ${seconds}s"
    extra=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        extra+=("-dict=fuzz/dict/$target.dict")
    fi
    if [ -f "fuzz/options/$target" ]; then
        read -r -a options <"fuzz/options/$target"
        extra+=("${options[@]}")
    fi
    cargo fuzz run -s none --debug-assertions "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}"
done
