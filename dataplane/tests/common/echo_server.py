#!/usr/bin/env python3
"""Line echo server for long-lived connection tests: answers each line with
"<name> <line>". usage: echo_server.py ADDR PORT NAME"""
import socketserver
import sys

addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(f"{name} {line.decode().strip()}\n".encode())


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


print("ready", flush=True)
Server((addr, port), Echo).serve_forever()
