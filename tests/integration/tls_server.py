#!/usr/bin/env python3
"""A TLS peer for the tls and https tests, on loopback, stopped by PID:

    tls_server.py --port P --mode tls --cert C --key K
        TLS handshake with that certificate (chain in C), then answers one HTTP request
        with "HTTP/1.1 200 OK" and "ok" (for https http checks) and closes
    tls_server.py --port P --mode plain
        no TLS: sends a line of text and closes (what a non-TLS service on the port does)
    tls_server.py --port P --mode garbage
        reads the ClientHello and answers with a TLS handshake record full of junk bytes
    tls_server.py --port P --mode tls-then-stall --cert C --key K
        the first connection as --mode tls; every later one is accepted and never answered (a peer that hangs)

Prints "CONNECTION <n>" as it accepts the n-th connection.

Prints "READY <port>" once listening and exits by itself after --max-seconds.
"""

import argparse
import os
import socket
import ssl
import threading
import time


def serve_tls(conn, ctx):
    conn.settimeout(3.0)
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                data += chunk
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except (OSError, ssl.SSLError):
        pass


def serve_plain(conn):
    try:
        conn.sendall(b"220 not a TLS server here\r\n")
        time.sleep(0.2)
    except OSError:
        pass


def serve_garbage(conn):
    conn.settimeout(3.0)
    try:
        conn.recv(4096)
        junk = os.urandom(300)
        # handshake record, TLS 1.2, 300 bytes: a ServerHello that is noise
        conn.sendall(b"\x16\x03\x03" + len(junk).to_bytes(2, "big") + b"\x02" + junk[1:])
        time.sleep(0.2)
    except OSError:
        pass


def serve_stall(conn, end):
    conn.settimeout(0.5)
    while time.monotonic() < end:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--mode", choices=("tls", "plain", "garbage", "tls-then-stall"), required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    ctx = None
    if args.mode in ("tls", "tls-then-stall"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(64)
    print("READY %d" % args.port, flush=True)
    end = time.monotonic() + args.max_seconds
    srv.settimeout(1.0)
    accepted = 0
    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        accepted += 1
        print("CONNECTION %d" % accepted, flush=True)
        if args.mode == "tls-then-stall" and accepted > 1:
            target, targs = serve_stall, (conn, end)
        elif args.mode in ("tls", "tls-then-stall"):
            target, targs = serve_tls, (conn, ctx)
        elif args.mode == "plain":
            target, targs = serve_plain, (conn,)
        else:
            target, targs = serve_garbage, (conn,)

        def run(t=target, a=targs, c=conn):
            try:
                t(*a)
            finally:
                c.close()
        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
