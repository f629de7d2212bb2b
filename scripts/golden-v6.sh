#!/bin/bash
# Capture the IPv6 reference frames of fastpath/src/wire/golden_v6.rs from the Linux stack:
# two network namespaces joined by a veth pair with fixed MACs, transmit checksum offload off
# (else TCP/UDP checksums are left partial in the capture), `nodad` addresses, ndisc_notify on
# (the unsolicited NA) and one address added with DAD (the probe). Prints one line per frame:
# index, length, hex. Needs root, ip, tcpdump, ethtool, ping, python3.
set -euo pipefail
A=rvs-g6f-a-$$
B=rvs-g6f-b-$$
OUT=$(mktemp -d)
cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add va type veth peer name vb netns "$B"
ip -n "$A" link set va address 02:00:00:00:00:0a
ip -n "$B" link set vb address 02:00:00:00:00:0b
ip netns exec "$A" sysctl -qw net.ipv6.conf.va.ndisc_notify=1
ip netns exec "$A" ethtool -K va tx off >/dev/null
ip netns exec "$B" ethtool -K vb tx off >/dev/null
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" link set va up
ip -n "$B" link set vb up
ip netns exec "$A" tcpdump -i va -w "$OUT/cap.pcap" -U -s 0 ip6 2>/dev/null &
TCPDUMP=$!
sleep 1.5
ip -n "$B" addr add 2001:db8::2/64 dev vb nodad
ip -n "$A" addr add 2001:db8::1/64 dev va nodad
ip -n "$A" addr add 2001:db8::3/64 dev va
sleep 0.5
ip netns exec "$A" ping -6 -c1 -p 61626364 -s 4 2001:db8::2 >/dev/null
ip netns exec "$A" python3 -c "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(('2001:db8::1', 4660))
for data in (b'hello', b'', b'\xff\xff'):
    s.sendto(data, ('2001:db8::2', 53))
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.settimeout(1)
try:
    t.connect(('2001:db8::2', 80))
except OSError:
    pass
"
sleep 2.5
kill "$TCPDUMP"
wait "$TCPDUMP" || true
tcpdump -r "$OUT/cap.pcap" -nn 2>/dev/null | awk '{print "# " NR-1 ": " $0}'
python3 - "$OUT/cap.pcap" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
off, i = 24, 0
while off < len(data):
    _, _, incl, _ = struct.unpack('<IIII', data[off:off + 16])
    off += 16
    print(i, incl, data[off:off + incl].hex())
    off += incl
    i += 1
PY
