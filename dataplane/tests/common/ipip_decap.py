#!/usr/bin/env python3
"""IP-in-IP decapsulation for an LVS-TUN real server whose kernel has no ipip driver.

The kernel this project's CI runs on has no tunnel modules, so `ip link add tunl0 type
ipip` fails. This does what the ipip driver does on a real server: receive every IPv4
packet of protocol 4 (a raw socket), strip the outer header, and hand the inner packet to
the kernel on a TUN device that holds the VIP. The inner packet is then processed, and
answered, by the real server's own TCP/IP stack exactly as after in-kernel decapsulation.

usage: ipip_decap.py IFNAME
"""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4

tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
print("ready", flush=True)
while True:
    outer = raw.recv(65535)
    ihl = (outer[0] & 0x0F) * 4
    if len(outer) < ihl + 20 or outer[9] != IPPROTO_IPIP or outer[ihl] >> 4 != 4:
        continue
    os.write(tun, outer[ihl:])
