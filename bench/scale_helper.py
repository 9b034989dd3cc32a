#!/usr/bin/python3
"""scale_helper.py: bench/scale.sh's parts in Python: the listener its tcp checks connect to, and readings of /health.

  serve PORT             accepts on 0.0.0.0:PORT and closes at once (every 127.x.y.z address reaches it)
  health URL TIMEOUT_MS  reads /health once: "checks pending oldest_age_ms timeouts p50_ratio max_ratio get_ms"
  byname URL PREFIX N S  asks /health/PREFIXi for i in 0..N-1 in turn over one keep-alive connection for S
                         seconds: "requests_per_s"
"""
import datetime
import http.client
import json
import selectors
import socket
import sys
import time
import urllib.parse


def serve(port):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(4096)
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    while True:
        sel.select()
        while True:
            try:
                conn, _ = lsock.accept()
            except BlockingIOError:
                break
            conn.close()


def wall_ms(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000.0


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def get(url):
    """GET url: (the body whatever the status, as /health answers 503 while a critical check is down; the wall
    time in ms when the answer's head arrived, that is when healthd had made the answer)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path)
    response = conn.getresponse()
    answered_ms = time.time() * 1000.0
    body = response.read()
    conn.close()
    return body, answered_ms


def health(url, timeout_ms):
    start = time.monotonic()
    raw, now = get(url)
    get_ms = (time.monotonic() - start) * 1000.0
    body = json.loads(raw)
    checks = body["checks"]
    pending = sum(1 for c in checks.values() if c["status"] == "pending")
    ages = [now - wall_ms(c["last_checked"]) for c in checks.values() if c.get("last_checked")]
    ratios = sorted(c["latency_ms"] / timeout_ms for c in checks.values()
                    if c.get("kind") == "timeout" and c.get("latency_ms") is not None)
    print(len(checks), pending, round(max(ages) if ages else 0.0), len(ratios),
          "%.3f" % percentile(ratios, 0.5), "%.3f" % (ratios[-1] if ratios else 0.0), "%.1f" % get_ms)


def byname(url, prefix, n, seconds):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    done = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        conn.request("GET", "/health/%s%05d" % (prefix, done % n))
        r = conn.getresponse()
        r.read()
        if r.status not in (200, 503):
            sys.exit("GET /health/NAME answered %d" % r.status)
        done += 1
    print("%.0f" % (done / (time.monotonic() - start)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "health":
        health(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1] == "byname":
        byname(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(__doc__)
