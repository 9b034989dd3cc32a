"""The HTTP API's edges: methods on every URL, the header-size limit, the connection cap, idle
timeouts; after each abuse the daemon must keep answering."""

import re
import socket
import time

from harness import free_port, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check, wait_check

URLS = {  # path -> expected status with one critical check up and one non-critical down
    "/health": 200,
    "/health/db": 200,
    "/health/cache": 503,
    "/health/nosuch": 404,
    "/ready": 200,
    "/live": 200,
    "/metrics": 200,  # one reply helper for every route: HEAD /metrics has its Content-Length too
    "/": 404,
    "/nothing/here": 404,
}


def healthd_with_two_checks(start_healthd, start_tcp_listener, **sections):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("db", app.port),
                               tcp_check("cache", free_port(), critical=False)], **sections))
    wait_check(hd, "db", lambda c: c["status"] == "up")
    wait_check(hd, "cache", lambda c: c["status"] == "down")
    return hd


def raw_request(hd, data, timeout=3.0):
    """Send bytes on a fresh connection, read until the server closes -> (bytes, error or None)."""
    s = hd.connect("http")
    s.settimeout(timeout)
    got, err = b"", None
    try:
        s.sendall(data)
        while len(got) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError as exc:  # a reset after the server refused the rest of a request
        err = exc
    finally:
        s.close()
    return got, err


def first_line(hd, data):
    """Send bytes on a fresh connection -> the first line of the answer."""
    s = hd.connect("http")
    s.settimeout(3)
    got = b""
    try:
        s.sendall(data)
        while b"\r\n" not in got and len(got) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return got


def status_of(response):
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), response[:200]
    return int(line.split()[1])


def test_get_head_options_on_every_url(start_healthd, start_tcp_listener):
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener)
    for path, expected in URLS.items():
        status, headers, body = hd.get(path)
        assert status == expected, (path, status, body)
        assert body.endswith(b"\n") and len(body) == int(headers["content-length"]), path
        assert headers["cache-control"] == "no-store", path
        status, headers, head_body = hd.get(path, method="HEAD")
        assert (status, head_body) == (expected, b""), path
        assert int(headers["content-length"]) == len(body), path
        status, headers, _ = hd.get(path, method="OPTIONS")
        assert status == expected, path  # HAProxy's default httpchk is "OPTIONS /"
        assert headers["allow"] == "GET, HEAD, OPTIONS", path
    assert hd.get("/health")[1]["content-type"] == "application/json"
    assert hd.get("/ready")[1]["content-type"] == "text/plain; charset=utf-8"
    assert hd.get("/live")[2] == b"live\n"
    # HTTP/1.0 without Host, as HAProxy's httpchk sends it by default
    response, err = raw_request(hd, b"GET /ready HTTP/1.0\r\n\r\n")
    assert err is None and response.startswith(b"HTTP/1.0 200 OK\r\n")
    assert response.endswith(b"\r\n\r\ndegraded #cache refused\n")


def test_other_methods_are_refused_with_405_and_allow(start_healthd, start_tcp_listener):
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener)
    for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "BREW"):
        for path in ("/health", "/ready", "/live", "/metrics"):
            body = b"x" * 100 if method in ("POST", "PUT", "PATCH") else b""
            head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (method, path, len(body))
            response, err = raw_request(hd, head.encode() + body)
            assert err is None, (method, path, err)  # the unread body does not reset the answer away
            head_part, _, payload = response.partition(b"\r\n\r\n")
            assert status_of(response) == 405, (method, path, response[:200])
            assert b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in head_part and b"Connection: close" in head_part
            assert payload.startswith(b'{"error":"method not allowed') and payload.endswith(b"}\n"), payload
            assert int(re.search(rb"Content-Length: (\d+)", head_part).group(1)) == len(payload)
    assert hd.get("/live")[0] == 200


def test_a_get_with_a_body_is_refused(start_healthd, start_tcp_listener):
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener)
    for extra in (b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"):
        response, err = raw_request(hd, b"GET /health HTTP/1.1\r\nHost: x\r\n" + extra)
        assert err is None and status_of(response) == 400, response[:200]
        print("GET with a body:", response.split(b"\r\n", 1)[0], response.rsplit(b"\r\n", 1)[-1])
        assert response.endswith(b'{"error":"a GET, HEAD or OPTIONS request carries no body"}\n'), response
    response, err = raw_request(hd, b"GET /live HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert err is None and status_of(response) == 200


def test_header_size_limit(start_healthd, start_tcp_listener):
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener, http={"max_header_bytes": 1024})
    fits = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 700 + b"\r\nConnection: close\r\n\r\n"
    response, err = raw_request(hd, fits)
    assert err is None and status_of(response) == 200

    too_big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
    response, err = raw_request(hd, too_big)
    assert err is None, err
    assert status_of(response) == 431 and b"Connection: close" in response
    assert hd.get("/live")[0] == 200

    # Many header lines, each small: the limit is on the whole head.
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(300)) + b"\r\n"
    response, err = raw_request(hd, many)
    assert err is None and status_of(response) == 431

    # A megabyte of header: refused while it is still arriving (the client may see a reset).
    response, err = raw_request(hd, b"GET /health HTTP/1.1\r\nX-Huge: " + b"b" * (1 << 20) + b"\r\n\r\n")
    assert (err is not None and isinstance(err, (ConnectionResetError, BrokenPipeError))) \
        or status_of(response) == 431
    status, health = hd.json("/health")
    assert status == 200 and health["status"] == "degraded"


def test_at_the_cap_idle_connections_give_way(start_healthd, start_tcp_listener):
    """At http.max_connections a newcomer is accepted and the idlest connection closed for it
    (idle keep-alive ones first), instead of leaving newcomers in the kernel's backlog."""
    cap = 3
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener,
                                 http={"max_connections": cap, "timeout_ms": 5000})
    keepalive = hd.connect("http")  # served once, then idle: the first to go
    keepalive.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
    keepalive.settimeout(3)
    assert keepalive.recv(1000).endswith(b"live\n")
    silent = [hd.connect("http") for _ in range(cap - 1)]
    time.sleep(0.2)
    newcomer = hd.connect("http")
    newcomer.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
    newcomer.settimeout(3)
    assert newcomer.recv(1000).startswith(b"HTTP/1.1 200 OK")
    assert keepalive.recv(100) == b"", "the idle keep-alive connection was not the one evicted"
    silent[0].settimeout(0.3)
    try:
        got = silent[0].recv(100)
    except socket.timeout:
        got = None
    assert got is None, "a connection was evicted while an idle keep-alive one could go"
    second = hd.connect("http")  # next: the oldest connection that never sent a request
    second.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    second.settimeout(3)
    assert second.recv(1000).startswith(b"HTTP/1.1 200 OK")
    silent[0].settimeout(3)
    assert silent[0].recv(100) == b""
    for s in [keepalive, newcomer, second] + silent:
        s.close()
    for _ in range(2 * cap):  # and it keeps serving, one connection after another
        assert hd.get("/live")[0] == 200
    metrics = hd.get("/metrics")[2].decode()
    evicted = int(re.search(r'^healthd_connections_evicted_total\{listener="http"\} (\d+)$', metrics, re.M).group(1))
    print("evicted at a cap of %d: %d" % (cap, evicted))
    assert evicted >= 2, metrics
    assert hd.log().count("the cap (http.max_connections 3)") == 1


def test_idle_connections_time_out(start_healthd, start_tcp_listener):
    timeout_ms = 600
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener, http={"timeout_ms": timeout_ms})

    def closed_after(sock):
        sock.settimeout(timeout_ms / 1000.0 + 2)
        t0 = time.monotonic()
        assert sock.recv(100) == b""
        return time.monotonic() - t0

    s = hd.connect("http")  # never sends a byte
    took = closed_after(s)
    s.close()
    assert timeout_ms / 2000.0 <= took <= timeout_ms / 1000.0 + 1

    s = hd.connect("http")  # keep-alive after one request
    s.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(2)
    response = b""
    while not response.endswith(b"live\n"):
        chunk = s.recv(1000)
        assert chunk, response
        response += chunk
    took = closed_after(s)
    s.close()
    assert timeout_ms / 2000.0 <= took <= timeout_ms / 1000.0 + 1

    s = hd.connect("http")  # half a request, then silence: closed without an answer
    s.sendall(b"GET /health HTTP/1.1\r\nHost:")
    took = closed_after(s)
    s.close()
    assert timeout_ms / 2000.0 <= took <= timeout_ms / 1000.0 + 1
    assert hd.get("/live")[0] == 200


def test_clients_that_half_close_get_their_answer(start_healthd, start_tcp_listener):
    """`printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' | nc -N host 9110`: the request, then EOF at once."""
    hd = healthd_with_two_checks(start_healthd, start_tcp_listener)
    for i in range(40):
        s = hd.connect("http")
        s.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(3)
        got = b""
        while len(got) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        assert got.startswith(b"HTTP/1.0 200 OK\r\n") and got.endswith(b"\r\n\r\ndegraded #cache refused\n"), \
            "attempt %d: %r" % (i, got)
