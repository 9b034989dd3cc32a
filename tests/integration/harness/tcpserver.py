#!/usr/bin/env python3
"""Tiny network peers for the integration tests, run as a subprocess (so that they can
run inside a network namespace with `ip netns exec`).

    tcpserver.py listen --port P [--bind H] --mode accept|silent [--reply-hex HEX]
        accept: accept each connection and close it at once; with --reply-hex, first
                send those bytes, then half-close and wait (at most 1 s) for the peer
                to close (a fake HAProxy agent, for instance)
        silent: accept and hold every connection open, never sending a byte
    tcpserver.py http --port P [--bind H] [--status N] [--body TEXT] [--delay S]
                      [--state-file F]
        a threaded HTTP/1.1 server answering every GET/HEAD/OPTIONS/POST with status
        and body; when --state-file exists it is re-read per request as JSON
        {"status": N, "body": "...", "delay": S} (lets a test flip the answer live)
    tcpserver.py proxy --port P [--bind H] --target HOST:PORT --delay S
        forwards TCP to target, delaying every chunk by S seconds in each direction
        (latency without netem)

Every mode writes the number of accepted connections to --count-file (if given),
prints "READY <port>" on stdout once listening, and exits by itself after
--max-seconds (default 900) so that nothing outlives a crashed test run.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_HELD = 20000


class Counter:
    def __init__(self, path):
        self.path = path
        self.n = 0
        self.lock = threading.Lock()

    def hit(self):
        with self.lock:
            self.n += 1
            if self.path:
                tmp = self.path + ".tmp"
                with open(tmp, "w") as f:
                    f.write(str(self.n))
                os.replace(tmp, self.path)


def family_for(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen_socket(host, port):
    s = socket.socket(family_for(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(512)
    return s


def ready(port):
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()


def run_listen(args, counter):
    srv = listen_socket(args.bind, args.port)
    ready(srv.getsockname()[1])
    held = []
    reply = bytes.fromhex(args.reply_hex) if args.reply_hex is not None else None

    def answer(conn):
        try:
            conn.settimeout(1.0)
            conn.sendall(reply)
            conn.shutdown(socket.SHUT_WR)
            for _ in range(64):
                if not conn.recv(4096):
                    break
        except OSError:
            pass
        finally:
            conn.close()

    while True:
        conn, _ = srv.accept()
        counter.hit()
        if args.mode == "accept" and reply is not None:
            threading.Thread(target=answer, args=(conn,), daemon=True).start()
        elif args.mode == "accept":
            conn.close()
        else:
            if len(held) >= MAX_HELD:
                held.pop(0).close()
            held.append(conn)


def run_proxy(args, counter):
    thost, _, tport = args.target.rpartition(":")
    thost = thost.strip("[]")
    srv = listen_socket(args.bind, args.port)
    ready(srv.getsockname()[1])

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(args.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(conn):
        try:
            up = socket.create_connection((thost, int(tport)), timeout=10)
            up.settimeout(None)
        except OSError:
            conn.close()
            return
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()

    while True:
        conn, _ = srv.accept()
        counter.hit()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def run_http(args, counter):
    def current():
        st = {"status": args.status, "body": args.body, "delay": args.delay}
        if args.state_file and os.path.exists(args.state_file):
            try:
                with open(args.state_file) as f:
                    st.update(json.load(f))
            except (OSError, ValueError):
                pass
        return st

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            counter.hit()
            super().setup()

        def log_message(self, fmt, *a):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % a))

        def answer(self, with_body=True):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 1 << 20))
            st = current()
            if st.get("delay"):
                time.sleep(float(st["delay"]))
            body = str(st.get("body", "")).encode()
            self.send_response(int(st.get("status", 200)))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self):
            self.answer()

        def do_POST(self):
            self.answer()

        def do_OPTIONS(self):
            self.answer()

        def do_HEAD(self):
            self.answer(with_body=False)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = family_for(args.bind)
        request_queue_size = 512

    srv = Server((args.bind, args.port), Handler)
    ready(srv.server_address[1])
    srv.serve_forever(poll_interval=0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["listen", "http", "proxy"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--mode", default="accept", choices=["accept", "silent"])
    ap.add_argument("--reply-hex")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--body", default="ok")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--state-file")
    ap.add_argument("--target")
    ap.add_argument("--count-file")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()

    t = threading.Timer(args.max_seconds, lambda: os._exit(0))
    t.daemon = True
    t.start()
    counter = Counter(args.count_file)
    {"listen": run_listen, "http": run_http, "proxy": run_proxy}[args.kind](args, counter)


if __name__ == "__main__":
    main()
