#!/usr/bin/env python3
"""ARP probe for the host-path tests: asks `iface` for `target` from `sender` every
`interval_ms` until an answer comes or `timeout_ms` passes, and prints `ready` once its
socket is open (before the first request), then `reply <t>` (t the wall-clock time of the
answer, time.time()) or `none`. A raw AF_PACKET socket, so the
kernel's neighbour cache plays no part."""
import socket
import struct
import sys
import time


def main():
    iface, sender, target = sys.argv[1], sys.argv[2], sys.argv[3]
    timeout_ms, interval_ms = int(sys.argv[4]), int(sys.argv[5])
    mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind((iface, 0))
    s.settimeout(interval_ms / 1000)
    request = (b"\xff" * 6 + mac + b"\x08\x06" +
               struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) +
               mac + socket.inet_aton(sender) + b"\x00" * 6 + socket.inet_aton(target))
    request += b"\x00" * (60 - len(request))
    print("ready", flush=True)
    deadline = time.time() + timeout_ms / 1000
    while time.time() < deadline:
        s.send(request)
        end = time.time() + interval_ms / 1000
        while time.time() < end:
            try:
                frame = s.recv(2048)
            except socket.timeout:
                break
            if (len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x02"
                    and frame[28:32] == socket.inet_aton(target)):
                print(f"reply {time.time():.6f}", flush=True)
                return
    print("none", flush=True)


main()
