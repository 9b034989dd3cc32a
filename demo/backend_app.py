#!/usr/bin/env python3
"""backend_app.py: the small application each sandbox backend runs: every request needs MySQL and Redis.

    backend_app.py --name be2 --port 8080 --mysql 10.77.2.10:3306 --mysql-user app
                   --mysql-password app-secret --redis 10.77.2.10:6379
                   --redis-password redis-secret [--timeout 1.0]

GET /        logs in to MySQL and runs SELECT 1, then PINGs Redis, like a page that reads a
             session and a row: 200 "be2: ok", or 503 "be2: mysql 10.77.2.10:3306: timed out"
             when a dependency cannot be reached (so a load balancer that keeps sending traffic
             to this backend makes its users see errors).
GET /health  200 while the process runs: the application's own liveness, no dependencies
             (healthd checks those itself, and names the one that fails).
Every answer carries "X-Backend: NAME". Prints "READY <port>" once listening; exits by itself
after --max-seconds (default 900) so that nothing outlives a crashed run. Standard library only:
the MySQL client below speaks just enough of the protocol (mysql_native_password, COM_QUERY,
COM_QUIT) to log in, query and leave cleanly, so the server never counts an aborted connect.
"""

import argparse
import hashlib
import os
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_LONG_PASSWORD = 0x1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
COM_QUIT = 0x01
COM_QUERY = 0x03


class DependencyError(Exception):
    pass


def hostport(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise DependencyError("connection closed by the server")
        data += chunk
    return data


def _read_packet(sock):
    header = _recv_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _recv_exact(sock, length)


def _send_packet(sock, seq, payload):
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def _check_ok(payload, what):
    if payload[:1] == b"\xff":
        code = struct.unpack("<H", payload[1:3])[0]
        raise DependencyError("%s: error %d: %s" % (what, code, payload[9:].decode("utf-8", "replace")))


def _native_password(password, scramble):
    if not password:
        return b""
    p1 = hashlib.sha1(password.encode()).digest()
    p2 = hashlib.sha1(p1).digest()
    p3 = hashlib.sha1(scramble + p2).digest()
    return bytes(a ^ b for a, b in zip(p1, p3))


def mysql_select_one(addr, user, password, timeout):
    """Log in, SELECT 1, COM_QUIT. Raises DependencyError or OSError."""
    sock = socket.create_connection(addr, timeout=timeout)
    try:
        _, greeting = _read_packet(sock)
        _check_ok(greeting, "greeting")
        if greeting[0] != 10:
            raise DependencyError("unexpected protocol version %d" % greeting[0])
        end = greeting.index(b"\0", 1)                    # server version string
        pos = end + 1 + 4                                  # connection id
        scramble = greeting[pos:pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2                       # filler, caps, charset, status, caps
        auth_len = greeting[pos]
        pos += 1 + 10                                      # reserved (MariaDB's extended caps inside)
        scramble += greeting[pos:pos + max(13, auth_len - 8) - 1]
        caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
        token = _native_password(password, scramble[:20])
        reply = (struct.pack("<IIB", caps, 1 << 24, 33) + b"\0" * 23 + user.encode() + b"\0"
                 + bytes([len(token)]) + token + b"mysql_native_password\0")
        _send_packet(sock, 1, reply)
        _, answer = _read_packet(sock)
        _check_ok(answer, "login as %s" % user)
        if answer[:1] == b"\xfe":
            raise DependencyError("login as %s: server asks for another auth method" % user)
        _send_packet(sock, 0, bytes([COM_QUERY]) + b"SELECT 1")
        _, first = _read_packet(sock)
        _check_ok(first, "SELECT 1")
        eofs = 0
        for _ in range(16):  # column definition, EOF, row, EOF: read up to the second EOF
            _, pkt = _read_packet(sock)
            _check_ok(pkt, "SELECT 1")
            if pkt[:1] == b"\xfe" and len(pkt) < 9:
                eofs += 1
                if eofs == 2:
                    break
        _send_packet(sock, 0, bytes([COM_QUIT]))
    finally:
        sock.close()


def redis_ping(addr, password, timeout):
    sock = socket.create_connection(addr, timeout=timeout)
    try:
        if password:
            sock.sendall(b"AUTH %s\r\n" % password.encode())
        sock.sendall(b"PING\r\n")
        data = b""
        expect = 2 if password else 1
        while data.count(b"\r\n") < expect and len(data) < 1024:
            chunk = sock.recv(512)
            if not chunk:
                break
            data += chunk
        if not data.endswith(b"+PONG\r\n"):
            raise DependencyError("AUTH and PING answered %r" % data[:120])
        sock.sendall(b"QUIT\r\n")
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--mysql", type=hostport, required=True)
    ap.add_argument("--mysql-user", default="app")
    ap.add_argument("--mysql-password", default="")
    ap.add_argument("--redis", type=hostport, required=True)
    ap.add_argument("--redis-password", default="")
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()

    def serve_page():
        deps = (("mysql", args.mysql, lambda: mysql_select_one(args.mysql, args.mysql_user,
                                                                  args.mysql_password, args.timeout)),
                ("redis", args.redis, lambda: redis_ping(args.redis, args.redis_password, args.timeout)))
        for name, addr, call in deps:
            try:
                call()
            except socket.timeout:
                return 503, "%s: %s %s:%d: timed out\n" % (args.name, name, addr[0], addr[1])
            except (OSError, DependencyError, ValueError, IndexError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                return 503, "%s: %s %s:%d: %s\n" % (args.name, name, addr[0], addr[1], reason)
        return 200, "%s: ok\n" % args.name

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def answer(self, status, text, head=False):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Backend", args.name)
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def do_GET(self, head=False):
            if self.path.startswith("/health"):
                self.answer(200, '{"app":"%s","status":"ok"}\n' % args.name, head)
            else:
                self.answer(*serve_page(), head=head)

        def do_HEAD(self):
            self.do_GET(head=True)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

        def handle_error(self, request, client_address):
            exc = sys.exc_info()[1]
            if isinstance(exc, ConnectionError):  # a client that closed or reset its connection: routine
                return
            super().handle_error(request, client_address)

    srv = Server((args.bind, args.port), Handler)
    timer = threading.Timer(args.max_seconds, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    sys.stdout.write("READY %d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
