#!/usr/bin/env python3
"""Holds long-lived TCP connections to a line-echo service and checks every answer.

usage: longlived.py HOST PORT CONNECTIONS SECONDS [STOPFILE [TIMEOUT]]

Opens CONNECTIONS connections, then until SECONDS have passed (or STOPFILE exists) sends a numbered line on each
every 50 ms and expects it echoed back, prefixed with the real server's name, by the same
real server as the first answer on that connection. Prints one JSON object: connections
opened, round trips completed, and the failures (resets, timeouts, wrong answers, a
connection moving to another real server). Exit status 0 only without failures.
"""
import json
import os
import socket
import sys
import time

host, port, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
stop_file = sys.argv[5] if len(sys.argv) > 5 else None
# Seconds a connection may wait for an answer before it counts as broken.
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 5.0
conns, servers, failures, trips = [], [], [], 0
for i in range(count):
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(timeout)
    conns.append((s, s.makefile("rb")))
    servers.append(None)
end = time.time() + seconds
n = 0
while time.time() < end and len(failures) < 20 and not (stop_file and os.path.exists(stop_file)):
    n += 1
    for i, (s, r) in enumerate(conns):
        if s is None:
            continue
        line = f"{i}:{n}"
        try:
            s.sendall(line.encode() + b"\n")
            answer = r.readline().decode().strip()
        except OSError as e:
            failures.append(f"conn {i} round {n}: {e!r}")
            conns[i] = (None, None)
            continue
        name, _, echoed = answer.partition(" ")
        if echoed != line:
            failures.append(f"conn {i} round {n}: answer {answer!r}")
        elif servers[i] is None:
            servers[i] = name
        elif servers[i] != name:
            failures.append(f"conn {i} moved from {servers[i]} to {name}")
        else:
            trips += 1
    time.sleep(0.05)
print(json.dumps({"connections": count, "round_trips": trips, "servers": servers, "failures": failures}))
sys.exit(1 if failures else 0)
