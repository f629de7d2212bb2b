#!/usr/bin/env bash
# Installs everything rvs needs to build, test and run its demo on Debian 12 (bookworm).
# Idempotent: packages already present are left alone. Run as root.
set -euo pipefail

packages=(
  # build: DPDK 22.11 headers and static archives, bindgen's libclang, the C shim's compiler
  dpdk dpdk-dev libdpdk-dev libpcap-dev pkg-config clang libclang-dev build-essential
  # tests and demo: namespaces, veth/tap tuning, real clients and servers, captures
  iproute2 ethtool iputils-ping curl wrk nginx-light tcpdump python3
  # host path: the netdev ingress drop rule that keeps the kernel of rvsd's namespace off
  # the af_packet veth (only the twin may deliver to it)
  nftables
  # health checks: the self-signed certificate of the SSL_GET test's server
  openssl
  # benchmarks: instruction counts
  valgrind
  # `rvsd --import-keepalived` tests (keepalived --config-test) and the failover tests
  # (stock keepalived VRRP on the twins); BIRD 2 for the routed-VIP/ECMP test; tshark decodes
  # the sync encoder's messages
  keepalived bird2 tshark
  # the Debian package (scripts/package.sh): dpkg-shlibdeps works out its Depends;
  # systemd-analyze checks its units
  dpkg-dev systemd
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx-light starts a server on port 80 when installed; tests start their own in namespaces.
  systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  # keepalived is only needed for its --config-test; a daemon would run VRRP and IPVS here.
  systemctl disable --now keepalived >/dev/null 2>&1 || service keepalived stop >/dev/null 2>&1 || true
  # bird2 starts a routing daemon when installed; tests run their own in namespaces.
  systemctl disable --now bird >/dev/null 2>&1 || service bird stop >/dev/null 2>&1 || true
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) and re-run" >&2
    exit 1
  fi
fi
