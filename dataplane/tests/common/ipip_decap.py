#!/usr/bin/env python3
"""Tunnel decapsulation for an LVS-TUN real server whose kernel has no tunnel drivers.

The kernel this project's CI runs on has no tunnel modules, so `ip link add tunl0 type
ipip` (or `type gre`, or a `fou` GUE port) fails. This does what those drivers do on a real
server: receive the balancer's tunnelled packets, strip the tunnel headers, and hand the
inner packet to the kernel on a TUN device that holds the VIP. The inner packet is then
processed, and answered, by the real server's own TCP/IP stack exactly as after in-kernel
decapsulation.

- ipip: every IPv4 packet of protocol 4 (a raw socket); the outer header is stripped.
- gue PORT: UDP datagrams to PORT (a UDP socket: the kernel checks a non-zero UDP checksum
  and drops the datagram if it is wrong, as for any UDP); the GUE header must be version 0,
  without options or flags, carrying protocol 4 (IPv4), as `fou`'s GUE receive wants it.
- gre: every IPv4 packet of protocol 47 (a raw socket); the GRE header must be version 0
  with protocol type 0x0800, no key or sequence number; with the C bit its checksum must
  verify (RFC 2784), as `ip_gre` checks it.

Anything else is counted and dropped; the counts are printed on SIGTERM.

usage: ipip_decap.py IFNAME [ipip | gue PORT | gre]
"""
import fcntl
import os
import signal
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4
IPPROTO_GRE = 47

kind = sys.argv[2] if len(sys.argv) > 2 else "ipip"
counts = {"ok": 0, "bad": 0}


def report(*_):
    print(f"decapsulated {counts['ok']}, dropped {counts['bad']}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipip(outer):
    ihl = (outer[0] & 0x0F) * 4
    if len(outer) < ihl + 20 or outer[9] != IPPROTO_IPIP:
        return None
    return outer[ihl:]


def gue(datagram):
    if len(datagram) < 24 or datagram[0] != 0 or datagram[1] != IPPROTO_IPIP:
        return None
    if datagram[2:4] != b"\0\0":
        return None
    return datagram[4:]


def gre(outer):
    ihl = (outer[0] & 0x0F) * 4
    if len(outer) < ihl + 4 or outer[9] != IPPROTO_GRE:
        return None
    packet = outer[ihl:]
    flags, proto = struct.unpack("!HH", packet[:4])
    if proto != 0x0800 or flags & 0x7FFF:
        return None
    if flags & 0x8000:
        if checksum(packet) != 0:
            return None
        return packet[8:]
    return packet[4:]


tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
if kind == "gue":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", int(sys.argv[3])))
    strip = gue
elif kind == "gre":
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
    strip = gre
else:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    strip = ipip
print("ready", flush=True)
while True:
    inner = strip(sock.recv(65535))
    if inner is None or len(inner) < 20 or inner[0] >> 4 != 4:
        counts["bad"] += 1
        continue
    counts["ok"] += 1
    os.write(tun, inner)
