#!/usr/bin/python3
"""A stand-in for the healthd binary, used ONLY by test_harness.py to prove the
`start_healthd` / `run_healthd` plumbing (config file, ports, HTTP and agent clients,
signals, restart, network namespaces) without depending on the real daemon.

    fake_healthd.py --config FILE      serve /live /ready /health on listen.http and
                                       "up 100%" on listen.agent; SIGHUP re-reads FILE
    fake_healthd.py --config FILE --check-config
                                       exit 0 if FILE is a JSON object, else 2
It exits by itself after 900 s.
"""

import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def main(argv):
    if len(argv) == 3 and argv[0] == "--config" and argv[2] == "--check-config":
        try:
            with open(argv[1]) as f:
                ok = isinstance(json.load(f), dict)
        except (OSError, ValueError) as exc:
            print("%s: %s" % (argv[1], exc), file=sys.stderr)
            return 2
        print("configuration ok" if ok else "not an object")
        return 0 if ok else 2
    if len(argv) < 2 or argv[0] != "--config":
        print("usage: fake_healthd.py --config FILE", file=sys.stderr)
        return 2
    path = argv[1]
    state = {"config": None, "reloads": 0}

    def load():
        with open(path) as f:
            state["config"] = json.load(f)

    load()

    def on_hup(signum, frame):
        load()
        state["reloads"] += 1
        print("reloaded", flush=True)

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, lambda s, f: os._exit(0))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def do_GET(self, with_body=True):
            if self.path in ("/live", "/ready"):
                code, body = 200, {"status": "up"}
            elif self.path == "/health":
                code, body = 200, {"status": "up", "reloads": state["reloads"],
                                   "checks": state["config"].get("checks", [])}
            else:
                code, body = 404, {"error": "not found"}
            data = (json.dumps(body) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def do_HEAD(self):
            self.do_GET(with_body=False)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    listen = state["config"]["listen"]
    srv = Server(hostport(listen["http"]), Handler)
    agent = socket.socket()
    agent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    agent.bind(hostport(listen["agent"]))
    agent.listen(64)

    def agent_loop():
        while True:
            c, _ = agent.accept()
            try:
                c.settimeout(0.5)
                c.sendall(b"up 100%\n")
                c.shutdown(socket.SHUT_WR)
                c.recv(4096)
            except OSError:
                pass
            finally:
                c.close()

    threading.Thread(target=agent_loop, daemon=True).start()
    t = threading.Timer(900, lambda: os._exit(0))
    t.daemon = True
    t.start()
    print("fake healthd listening", flush=True)
    srv.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
