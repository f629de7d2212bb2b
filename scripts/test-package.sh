#!/usr/bin/env bash
# Tests rvs's Debian package the way an operator meets it, without touching this host: builds
# it (scripts/package.sh; `--no-build` packages the existing target/release binaries), checks
# the archive (fields, file list, conffiles), then installs it with `dpkg -i` into a throwaway
# copy of this very system (an overlay over / in a private mount namespace, gone when the test
# ends) and there: checks the installed files, the --help texts, the packaged config's refusal,
# `systemd-analyze verify` of rvsd.service and of keepalived/BIRD with their drop-ins, runs the
# unit's own ExecStartPre/ExecStart/ExecStartPost/ExecReload lines against rvsd on a net_null
# port (--no-huge) with a tap twin in a private network namespace (the twin must exist when
# ExecStartPost returns), stops it, and purges the package. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

fail() {
  echo "test-package: FAIL: $*" >&2
  exit 1
}
pass() { echo "test-package: ok: $*"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true
    fail "$1"
  fi
  pass "$1"
}

# expect_lines WHAT TEXT LINE...: every LINE is a whole line of TEXT.
expect_lines() {
  local what="$1" text="$2" line
  shift 2
  for line in "$@"; do
    grep -qxF -- "$line" <<<"$text" || fail "$what: no line '$line' in:
$text"
  done
  pass "$what"
}

# --- inside: the part that runs in the private mount namespace (see the end) ---------------
inside() {
  local deb="$1" scratch="$2"
  local root="$scratch/root"
  mount -t tmpfs -o mode=0755 rvs-e-pkg "$scratch"
  mkdir "$scratch/upper" "$scratch/work" "$root"
  if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$root" 2>"$scratch/why"; then
    echo "test-package: SKIP install test: no overlay over / here ($(cat "$scratch/why"))"
    return 0
  fi
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  # /run and /tmp of the copy start empty, as on a booted machine without rvs.
  mount -t tmpfs tmpfs "$root/run"
  mount -t tmpfs tmpfs "$root/tmp"
  cp "$deb" "$root/tmp/rvs.deb"

  # A command in the copy, with a clean environment.
  in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

  in_root dpkg -i /tmp/rvs.deb >"$scratch/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$scratch/dpkg.log")"
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  expect_eq "dpkg -i: installed" "install ok installed $version" \
    "$(in_root dpkg-query -W -f='${Status} ${Version}' rvs)"
  expect_eq "installed files (dpkg -L)" "$(printf '%s\n' "${expected_files[@]}" | sort)" \
    "$(in_root dpkg -L rvs | while read -r f; do [ -d "$root$f" ] || echo "$f"; done | sort)"
  expect_eq "modes" "$(printf '%s\n' "${expected_modes[@]}")" \
    "$(cd "$root" && stat -c '%a %U %n' usr/sbin/rvsd usr/sbin/rvsadm usr/sbin/rvscheck \
      usr/libexec/rvs/rvs-hugepages usr/libexec/rvs/rvs-wait-ready etc/rvs/rvsd.toml \
      usr/lib/systemd/system/rvsd.service)"
  # shellcheck disable=SC2016
  expect_eq "conffiles registered" "$(printf '%s\n' "${expected_conffiles[@]}")" \
    "$(in_root dpkg-query -W -f='${Conffiles}\n' rvs | awk 'NF {print $1}' | sort)"
  # Installed, not enabled, not started: an unconfigured balancer must not take a NIC.
  [ ! -e "$root/etc/systemd/system/multi-user.target.wants/rvsd.service" ] ||
    fail "rvsd.service was enabled by the package"
  expect_eq "rvsd.service not enabled" "disabled" "$(in_root systemctl is-enabled rvsd.service || true)"

  # --help texts, from the installed binaries.
  local out
  out=$(in_root rvsd --help)
  expect_lines "rvsd --help names its files" "$out" \
    "Usage: rvsd [OPTIONS] <--config <FILE>|--check-config <FILE>|--import-keepalived <KEEPALIVED_CONF>>" \
    "  /etc/rvs/rvsd.toml   the configuration (rvsd.service passes RVS_CONFIG, this by default)" \
    "  /run/rvs/rvsd.sock   the control socket for rvsadm and rvscheck ([control] socket)" \
    "  SIGHUP               re-read the --config file and apply the difference (services, reals,"
  out=$(in_root rvsadm -h)
  expect_lines "rvsadm -h names its files" "$out" \
    "  /run/rvs/rvsd.sock                  rvsd's control socket, mode 0600 (rvsd.toml's" \
    "  /etc/rvs/rvsd.toml                  rvsd's file: changes made with rvsadm last until" \
    "  /etc/hosts, /etc/services           names of addresses and ports (without -n)"
  out=$(in_root rvscheck --help)
  expect_lines "rvscheck --help names its files" "$out" \
    "Usage: rvscheck [OPTIONS] --config <FILE>" \
    "  /etc/rvs/rvsd.toml   rvsd's file as the rvsd.service unit runs it" \
    "  /run/rvs/rvsd.sock   rvsd's control socket (mode 0600: run as root)"

  # The packaged file refuses to run, and says why.
  local rc=0
  out=$(in_root rvsd --check-config /etc/rvs/rvsd.toml 2>&1) || rc=$?
  expect_eq "packaged rvsd.toml refused" "1: /etc/rvs/rvsd.toml:17: rvs is not configured: edit this file, then delete this line" \
    "$rc: ${out%%: unknown field*}"

  # The units as systemd reads them: no error and no warning, keepalived and BIRD extended by
  # rvs's drop-ins (systemd-delta), and the check is shown to catch a bad unit.
  if in_root sh -c 'command -v systemd-analyze' >/dev/null; then
    local units=(/usr/lib/systemd/system/rvsd.service)
    local extended=()
    for unit in keepalived bird; do
      if [ -f "$root/usr/lib/systemd/system/$unit.service" ]; then
        units+=("/usr/lib/systemd/system/$unit.service")
        extended+=("[EXTENDED]   /usr/lib/systemd/system/$unit.service → /etc/systemd/system/$unit.service.d/rvs.conf")
      else
        echo "test-package: note: $unit is not installed here, its drop-in is not verified"
      fi
    done
    out=$(in_root systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $out"
    expect_eq "systemd-analyze verify ${units[*]}" "" "$out"
    if ((${#extended[@]})); then
      out=$(in_root systemd-delta --no-pager --type=extended)
      expect_lines "drop-ins extend keepalived/bird" "$out" "${extended[@]}"
      # verify reads the drop-ins too: a bad key in one is reported.
      local dropin="$root/etc/systemd/system/keepalived.service.d/rvs.conf"
      [ -f "$root/usr/lib/systemd/system/keepalived.service" ] ||
        dropin="$root/etc/systemd/system/bird.service.d/rvs.conf"
      cp "$dropin" "$scratch/dropin"
      echo "Wantz=rvsd.service" >>"$dropin"
      out=$(in_root systemd-analyze verify "${units[@]}" 2>&1) || true
      grep -qE "service\.d/rvs\.conf:[0-9]+: Unknown key 'Wantz' in section \[Unit\], ignoring\." <<<"$out" ||
        fail "systemd-analyze verify did not read the drop-in: $out"
      cp "$scratch/dropin" "$dropin"
      pass "systemd-analyze verify reads the drop-ins"
    fi
    for unit in keepalived bird; do
      expect_eq "$unit drop-in: Wants= and After= rvsd, nothing else" "[Unit]
Wants=rvsd.service
After=rvsd.service" "$(grep -v '^#' "$root/etc/systemd/system/$unit.service.d/rvs.conf" | grep -v '^$')"
    done
    sed 's/^Restart=on-failure$/Restart=sometimes/' "$root/usr/lib/systemd/system/rvsd.service" \
      >"$root/tmp/rvsd-broken.service"
    out=$(in_root systemd-analyze verify /tmp/rvsd-broken.service 2>&1) || true
    [ -n "$out" ] || fail "systemd-analyze verify accepted a unit with Restart=sometimes"
    pass "systemd-analyze verify rejects a broken copy"
  else
    echo "test-package: SKIP systemd-analyze verify: systemd-analyze is not installed"
  fi

  run_unit
  hugepages

  in_root dpkg --purge rvs >"$scratch/dpkg.log" 2>&1 || fail "dpkg --purge: $(cat "$scratch/dpkg.log")"
  local left=()
  for f in "${expected_files[@]}" /etc/rvs; do
    [ ! -e "$root$f" ] || left+=("$f")
  done
  expect_eq "dpkg --purge leaves nothing" "" "${left[*]}"
}

# rvsd.service's own command lines, as systemd would run them, on a configuration an operator
# wrote: ExecStartPre, ExecStart in the background, ExecStartPost, then ExecReload with a good
# and a bad edit, then SIGTERM as `systemctl stop` sends it.
run_unit() {
  local unit="$root/usr/lib/systemd/system/rvsd.service"
  local prefix="rvs-e-pkg-$$"
  # The kernel twin keepalived and BIRD would use (in this test's own network namespace).
  local twin="rvse$$"
  twin=${twin:0:15}
  write_config() {
    cat >"$root/etc/rvs/rvsd.toml" <<EOF
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
        "--file-prefix", "$prefix", "--log-level", "lib.eal:error", "--vdev", "net_null0,no-rx=1"]
[dataplane]
workers = [1]
conn_table_size = 4096
idle_sleep_us = 1000
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
exception = { iface = "$twin", kind = "tap" }
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "wrr"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  weight = $1
EOF
  }
  # The unit's Environment= defaults, then its command lines with them substituted.
  declare -A env=()
  local line key
  while IFS= read -r line; do
    key=${line#Environment=}
    env[${key%%=*}]=${key#*=}
  done < <(grep '^Environment=' "$unit")
  expand() {
    local s="$1" k
    for k in "${!env[@]}"; do s=${s//"\${$k}"/${env[$k]}}; done
    printf '%s' "${s//\$MAINPID/$mainpid}"
  }
  commands() { grep "^$1=" "$unit" | cut -d= -f2-; }
  local mainpid="" cmd

  write_config 1
  while IFS= read -r cmd; do
    # shellcheck disable=SC2046 # the unit's words, as systemd splits them
    in_root $(expand "$cmd") || fail "ExecStartPre $cmd"
  done < <(commands ExecStartPre)
  pass "ExecStartPre (check-config, hugepages with RVS_HUGEPAGES=${env[RVS_HUGEPAGES]})"
  # exec: $! is rvsd itself (chroot and env exec too), as systemd's MAINPID would be.
  # shellcheck disable=SC2046
  (exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $(expand "$(commands ExecStart)")) \
    2>"$scratch/rvsd.log" &
  mainpid=$!
  # shellcheck disable=SC2317 # run by the EXIT trap
  stop_rvsd() {
    if [ -n "$mainpid" ] && kill -0 "$mainpid" 2>/dev/null; then
      kill -TERM "$mainpid"
      wait "$mainpid" || true
    fi
  }
  trap stop_rvsd EXIT
  # shellcheck disable=SC2046
  in_root $(expand "$(commands ExecStartPost)") || fail "ExecStartPost: $(cat "$scratch/rvsd.log")"
  pass "ExecStartPost: rvsd answers on ${env[RVS_SOCKET]}"
  # What units ordered after rvsd.service rely on: once ExecStartPost is done, the twin is up.
  ip link show dev "$twin" >/dev/null 2>&1 || fail "ExecStartPost returned before the twin $twin existed"
  pass "the twin $twin exists when ExecStartPost returns"
  local table
  table=$(in_root rvsadm -L -n)
  expect_eq "rvsadm -L -n after start" "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 wrr
  -> 10.0.0.11:8080               Masq    1      0          0         " "$table"

  # systemctl reload: the check, then SIGHUP. A good edit is applied...
  write_config 5
  while IFS= read -r cmd; do
    # shellcheck disable=SC2046
    in_root $(expand "$cmd") >/dev/null || fail "ExecReload $cmd"
  done < <(commands ExecReload)
  local tries=50
  until in_root rvsadm -L -n | grep -qF -- "-> 10.0.0.11:8080               Masq    5      0          0"; do
    ((--tries)) || fail "reload: weight 5 not applied: $(in_root rvsadm -L -n)"
    sleep 0.1
  done
  pass "ExecReload applies an edit"
  # ... a broken one fails the reload at its first line and leaves rvsd as it was.
  write_config -5
  # shellcheck disable=SC2046
  if in_root $(expand "$(commands ExecReload | head -n1)") 2>/dev/null; then
    fail "ExecReload accepted weight = -5"
  fi
  sleep 0.3
  in_root rvsadm -L -n | grep -qF -- "Masq    5" || fail "a refused reload changed rvsd"
  pass "ExecReload refuses a broken edit"

  # systemctl stop: SIGTERM, exit 0, the socket gone.
  kill -TERM "$mainpid"
  rc=0
  wait "$mainpid" || rc=$?
  mainpid=""
  expect_eq "SIGTERM: rvsd exits 0" 0 "$rc"
  [ ! -e "$root${env[RVS_SOCKET]}" ] || fail "control socket left behind"
  if ip link show dev "$twin" >/dev/null 2>&1; then fail "the twin $twin outlived rvsd"; fi
  pass "control socket and twin removed"
  # rvs-wait-ready gives up at once when rvsd is gone.
  local dead
  in_root true &
  dead=$!
  wait "$dead"
  rc=0
  out=$(in_root /usr/libexec/rvs/rvs-wait-ready "${env[RVS_SOCKET]}" "$dead" 2>&1) || rc=$?
  expect_eq "rvs-wait-ready: rvsd gone" "1: rvs-wait-ready: rvsd (pid $dead) exited before ${env[RVS_SOCKET]} answered" "$rc: $out"
  trap - EXIT
}

# rvs-hugepages' decisions, on a stand-in for /proc/sys/vm/nr_hugepages.
hugepages() {
  local nr="$root/tmp/nr_hugepages" rc out
  hp() {
    rc=0
    out=$(chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin RVS_NR_HUGEPAGES_FILE=/tmp/nr_hugepages \
      /usr/libexec/rvs/rvs-hugepages "$@" 2>&1) || rc=$?
    printf '%s: %s: %s' "$rc" "$out" "$(cat "$nr")"
  }
  echo 512 >"$nr"
  expect_eq "rvs-hugepages 0: untouched" "0: : 512" "$(hp 0)"
  expect_eq "rvs-hugepages 256: never lowers" "0: rvs-hugepages: 512 hugepages reserved, 256 wanted: unchanged: 512" "$(hp 256)"
  expect_eq "rvs-hugepages 01024: raises" "0: rvs-hugepages: 512 -> 1024 hugepages reserved: 1024" "$(hp 01024)"
  expect_eq "rvs-hugepages 1k: refused" "2: rvs-hugepages: RVS_HUGEPAGES must be a number of pages, not '1k': 1024" "$(hp 1k)"
}

# --- outside ---------------------------------------------------------------------------------
if [ "${1:-}" = --inside ]; then
  deb="$2"
  version="$3"
  mapfile -t expected_files <"$4"
  mapfile -t expected_conffiles <"$5"
  mapfile -t expected_modes <"$6"
  inside "$deb" "$7"
  exit 0
fi

if [ "${1:-}" = --no-build ]; then
  deb=$(scripts/package.sh --no-build | tail -n1)
else
  deb=$(scripts/package.sh | tail -n1)
fi
echo "test-package: $deb"
version=$(dpkg-deb -f "$deb" Version)
expect_eq "control fields" "Package: rvs
Version: $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)-1
Architecture: $(dpkg --print-architecture)
Section: net
Suggests: keepalived, bird2" "$(dpkg-deb -f "$deb" Package Version Architecture Section Suggests)"
# DPDK is linked in: nothing of it at run time, only what the static archives still load.
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libc6' <<<"$depends" || fail "Depends lacks libc6: $depends"
if grep -q -i 'dpdk\|librte' <<<"$depends"; then fail "Depends names DPDK: $depends"; fi
pass "Depends: $depends"

expected_files=(
  /usr/sbin/rvsd /usr/sbin/rvsadm /usr/sbin/rvscheck
  /usr/libexec/rvs/rvs-hugepages /usr/libexec/rvs/rvs-wait-ready
  /etc/rvs/rvsd.toml
  /usr/lib/systemd/system/rvsd.service
  /etc/systemd/system/keepalived.service.d/rvs.conf
  /etc/systemd/system/bird.service.d/rvs.conf
  /usr/share/doc/rvs/README.md /usr/share/doc/rvs/ARCHITECTURE.md /usr/share/doc/rvs/deploy.md
  /usr/share/doc/rvs/copyright
)
for f in conf/examples/*; do
  expected_files+=("/usr/share/doc/rvs/examples/${f##*/}")
done
expected_conffiles=(
  /etc/rvs/rvsd.toml
  /etc/systemd/system/bird.service.d/rvs.conf
  /etc/systemd/system/keepalived.service.d/rvs.conf
)
expected_modes=(
  "755 root usr/sbin/rvsd" "755 root usr/sbin/rvsadm" "755 root usr/sbin/rvscheck"
  "755 root usr/libexec/rvs/rvs-hugepages" "755 root usr/libexec/rvs/rvs-wait-ready"
  "644 root etc/rvs/rvsd.toml" "644 root usr/lib/systemd/system/rvsd.service"
)
expect_eq "archive files" "$(printf '%s\n' "${expected_files[@]}" | sort)" \
  "$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}' | sort)"
expect_eq "conffiles" "$(printf '%s\n' "${expected_conffiles[@]}")" \
  "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | sort)"

# The maintainer scripts: daemon-reload and try-restart on upgrade, stop on remove, never a
# start or an enable.
ctrl() { dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - "./$1"; }
expect_lines "postinst" "$(ctrl postinst)" \
  "		systemctl --system daemon-reload >/dev/null || true" \
  "			deb-systemd-invoke try-restart rvsd.service >/dev/null || true"
expect_lines "prerm" "$(ctrl prerm)" "	deb-systemd-invoke stop rvsd.service >/dev/null || true"
# (Not enabled after `dpkg -i` is checked on the installed copy below.)
if ctrl postinst | grep -Eq 'deb-systemd-invoke (start|restart) '; then
  fail "postinst starts rvsd: $(ctrl postinst)"
fi
pass "postinst never starts rvsd"

scratch=$(mktemp -d /tmp/rvs-e-pkg.XXXXXX)
lists=$(mktemp -d /tmp/rvs-e-pkg-lists.XXXXXX)
trap 'rmdir "$scratch" 2>/dev/null || true; rm -rf "$lists"' EXIT
printf '%s\n' "${expected_files[@]}" >"$lists/files"
printf '%s\n' "${expected_conffiles[@]}" >"$lists/conffiles"
printf '%s\n' "${expected_modes[@]}" >"$lists/modes"
# A private mount namespace: every mount above (and the copy's changes) vanishes with it. No
# network namespace is needed (net_null, no twins), but one keeps rvsd off the host's links.
unshare --mount --propagation private --net "$0" --inside "$(realpath "$deb")" "$version" \
  "$lists/files" "$lists/conffiles" "$lists/modes" "$scratch"
echo "test-package: all checks passed"
