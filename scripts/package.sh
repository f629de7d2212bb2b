#!/usr/bin/env bash
# Builds rvs's Debian package (rvsd, rvsadm, rvscheck, the systemd units, /etc/rvs/rvsd.toml;
# `[package.metadata.deb]` in dataplane/Cargo.toml) and prints the .deb's path as its last
# line. Installs cargo-deb (pinned) if it is missing. Release build first, one at a time: the
# fat-LTO release profile takes minutes; with --no-build the existing target/release binaries
# are packaged as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_DEB_VERSION=3.8.0

build=1
case "${1:-}" in
  --no-build) build=0 ;;
  "") ;;
  *) echo "usage: scripts/package.sh [--no-build]" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi
if ((build)); then
  cargo build --release --locked -p dataplane -p control -p rvscheck >&2
fi
for bin in rvsd rvsadm rvscheck; do
  [ -x "target/release/$bin" ] || { echo "package: target/release/$bin missing (build first)" >&2; exit 1; }
done

# --strip: the release profile keeps line tables (debug = 1) for perf and gdb on the build
# machine; the package ships the binaries without them.
out=target/debian
rm -rf "$out"
cargo deb -p dataplane --no-build --strip --output "$out/" >&2
debs=("$out"/*.deb)
if ((${#debs[@]} != 1)) || [ ! -f "${debs[0]}" ]; then
  echo "package: expected one .deb in $out, found: ${debs[*]}" >&2
  exit 1
fi
echo "${debs[0]}"
