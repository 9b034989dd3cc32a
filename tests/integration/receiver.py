#!/usr/bin/env python3
"""A webhook receiver for the integration tests.

Records every POST (and PUT) as one JSON line appended to --record:
    {"path": "/x", "headers": {...}, "body": <parsed JSON or raw text>, "t": <unix time>}
and answers according to --mode:
    ok            200 {"status":"ok"}
    status:NNN    that status with a short body
    text:NNN:BODY that status with BODY as text/plain (as Slack answers: "channel_is_archived")
    slow:SECONDS  200 after SECONDS
    hang          read and record the request, then never answer
GET answers 200 "receiver" (a liveness probe that records nothing).

Prints "READY <port>" on stdout once listening. Exits by itself after --max-seconds
(default 900). Usage:
    receiver.py --port P [--bind 127.0.0.1] --record FILE [--mode ok]
"""

import argparse
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--record", required=True)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()

    mode = args.mode
    if not (mode in ("ok", "hang") or mode.startswith("status:") or mode.startswith("slow:")
            or re.fullmatch(r"text:\d{3}:.*", mode)):
        ap.error("unknown --mode %r" % mode)
    write_lock = threading.Lock()
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % a))

        def reply(self, status, body, content_type="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(200, "receiver\n")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            rec = {"path": self.path, "headers": dict(self.headers.items()),
                   "body": body, "t": time.time()}
            line = json.dumps(rec, sort_keys=True) + "\n"
            with write_lock:
                with open(args.record, "a") as f:
                    f.write(line)
                    f.flush()
            if mode == "ok":
                self.reply(200, '{"status":"ok"}\n')
            elif mode.startswith("status:"):
                code = int(mode.split(":", 1)[1])
                self.reply(code, '{"status":"error","code":%d}\n' % code)
            elif mode.startswith("text:"):
                _, code, text = mode.split(":", 2)
                self.reply(int(code), text, "text/plain")
            elif mode.startswith("slow:"):
                stopping.wait(float(mode.split(":", 1)[1]))
                self.reply(200, '{"status":"ok"}\n')
            else:  # hang: keep the connection open and silent until we are stopped
                stopping.wait(args.max_seconds)
                self.close_connection = True

        do_PUT = do_POST

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
        request_queue_size = 256

    srv = Server((args.bind, args.port), Handler)
    t = threading.Timer(args.max_seconds, lambda: os._exit(0))
    t.daemon = True
    t.start()
    sys.stdout.write("READY %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
