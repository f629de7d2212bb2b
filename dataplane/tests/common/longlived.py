#!/usr/bin/env python3
"""Holds long-lived TCP connections to a line-echo service and checks every answer.

usage: longlived.py HOST PORT CONNECTIONS SECONDS [STOPFILE [TIMEOUT [SOURCES]]]

Opens CONNECTIONS connections (from the comma-separated SOURCES addresses in turn, when given,
so that a scheduler hashing the client address spreads them), then until SECONDS have passed
(or STOPFILE exists, after one last round) sends a numbered line on each every 50 ms and expects it echoed back,
prefixed with the real server's name, by the same real server as the first answer on that
connection. Prints one JSON object: connections opened, round trips completed, the longest
wait for an answer in ms (how long a failover stalled the connections), and the failures
(resets, timeouts, wrong answers, a connection moving to another real server). Exit status 0
only without failures.
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
sources = sys.argv[7].split(",") if len(sys.argv) > 7 else [None]
conns, servers, failures, trips, longest = [], [], [], 0, 0.0
for i in range(count):
    source = sources[i % len(sources)]
    s = socket.create_connection((host, port), timeout=5,
                                 source_address=(source, 0) if source else None)
    s.settimeout(timeout)
    conns.append((s, s.makefile("rb")))
    servers.append(None)
end = time.time() + seconds
n = 0
def one_round(n):
    """Sends line n on every live connection and checks each answer."""
    global trips, longest
    for i, (s, r) in enumerate(conns):
        if s is None:
            continue
        line = f"{i}:{n}"
        try:
            sent = time.time()
            s.sendall(line.encode() + b"\n")
            answer = r.readline().decode().strip()
            longest = max(longest, time.time() - sent)
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


stopped = lambda: bool(stop_file) and os.path.exists(stop_file)
while time.time() < end and len(failures) < 20 and not stopped():
    n += 1
    one_round(n)
    time.sleep(0.05)
# Asked to stop: one more whole round, so that every connection is tried after whatever the
# test did before it stopped us (a round under way then may have passed some connections
# before it).
if stopped() and len(failures) < 20:
    one_round(n + 1)
print(json.dumps({"connections": count, "round_trips": trips, "longest_wait_ms": round(longest * 1000),
                  "servers": servers, "failures": failures}))
sys.exit(1 if failures else 0)
