"""The tcp check against a real listener that stops and starts: kinds, details, rise/fall, the
/health, /health/NAME, /ready and agent answers, and their HTTP codes."""

import datetime

from harness import free_port
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import (check_state, config, parse_iso, tcp_check, wait_check, watch_check)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def assert_recent(ts, slack_s=30):
    t = parse_iso(ts)
    assert abs((now_utc() - t).total_seconds()) < slack_s, ts
    return t


def test_tcp_check_follows_a_listener_with_rise_and_fall(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    addr = "127.0.0.1:%d" % app.port
    # interval 500 ms: the states between (up with one failure, down with one success) last that
    # long, and the test polls every 30 ms to see them.
    hd = start_healthd(config([tcp_check("app", app.port)], interval_ms=500, timeout_ms=200,
                              rise=2, fall=2))

    # Up: every field of /health, with ISO 8601 times.
    up = wait_check(hd, "app", lambda c: c["status"] == "up")
    status, headers, _ = hd.get("/health")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    status, health = hd.json("/health")
    assert health["status"] == "up" and health["node"] == "be-test"
    assert health["admin"] == {"state": "ready"}
    c = health["checks"]["app"]
    assert c["status"] == "up" and c["kind"] == "ok"
    assert c["detail"] == "connect %s: connected" % addr
    assert c["type"] == "tcp" and c["target"] == addr and c["address"] == addr
    assert c["critical"] is True and c["consecutive_failures"] == 0
    assert c["source_addr"] == "127.0.0.1"
    assert isinstance(c["latency_ms"], (int, float)) and 0 <= c["latency_ms"] < 200
    since_up = assert_recent(c["since"])
    assert since_up <= assert_recent(c["last_checked"])
    assert up["name"] == "app"
    assert hd.agent() == "up 100%"
    assert hd.get("/ready")[0] == 200 and hd.get("/ready")[2] == b"up\n"

    # The listener stops: fall 2 keeps the check up after the first refused connect.
    app.stop()
    seen = watch_check(hd, "app", lambda c: c["status"] == "down")
    first_failure = [(s, c) for s, c in seen if c["consecutive_failures"] == 1]
    assert first_failure, "never saw the check up with one failure: %r" % seen
    s, c = first_failure[0]
    assert s == 200 and c["status"] == "up" and c["kind"] == "refused"
    status, down = check_state(hd, "app")
    assert status == 503
    assert down["kind"] == "refused" and down["consecutive_failures"] >= 2
    assert addr in down["detail"] and "refused" in down["detail"].lower()
    since_down = assert_recent(down["since"])
    assert since_down > since_up
    status, health = hd.json("/health")
    assert status == 503 and health["status"] == "down"
    assert hd.agent() == "down #app refused"
    status, _, body = hd.get("/ready")
    assert status == 503 and body == b"down #app refused\n"

    # It comes back: rise 2 keeps it down after the first success, still naming why it went down.
    app.start()
    seen = watch_check(hd, "app", lambda c: c["status"] == "up")
    rising = [(s, c) for s, c in seen if c["status"] == "down" and c.get("consecutive_successes") == 1]
    assert rising, "never saw the check down with one success: %r" % seen
    s, c = rising[0]
    assert s == 503 and c["kind"] == "refused" and addr in c["detail"]
    status, back = check_state(hd, "app")
    assert status == 200 and back["kind"] == "ok" and back["consecutive_failures"] == 0
    assert parse_iso(back["since"]) > since_down
    assert hd.agent() == "up 100%"
    assert hd.json("/health")[0] == 200


def test_degraded_and_per_check_urls(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    unused = free_port()
    hd = start_healthd(config([tcp_check("db", app.port),
                               tcp_check("cache", unused, critical=False)]))
    wait_check(hd, "cache", lambda c: c["status"] == "down")
    wait_check(hd, "db", lambda c: c["status"] == "up")

    # A non-critical check down: still 200, "degraded", the agent halves the weight and says why.
    status, health = hd.json("/health")
    assert status == 200 and health["status"] == "degraded"
    assert health["checks"]["cache"]["critical"] is False
    assert hd.agent() == "up 50% #cache refused"
    status, _, body = hd.get("/ready")
    assert status == 200 and body == b"degraded #cache refused\n"

    # /health/NAME: 200 up, 503 down, 404 unknown (JSON in each case).
    status, db = check_state(hd, "db")
    assert status == 200 and db["name"] == "db" and db["status"] == "up"
    status, cache = check_state(hd, "cache")
    assert status == 503 and cache["status"] == "down" and cache["kind"] == "refused"
    assert "127.0.0.1:%d" % unused in cache["detail"]
    status, missing = check_state(hd, "nosuch")
    assert status == 404 and missing == {"error": "no check with that name"}
    assert hd.json("/health/%63%61%63%68%65")[0] == 503  # percent-encoded "cache"

    # The critical one goes down too: 503 everywhere, and the agent names the critical check.
    app.stop()
    wait_check(hd, "db", lambda c: c["status"] == "down")
    status, health = hd.json("/health")
    assert status == 503 and health["status"] == "down"
    assert hd.agent() == "down #db refused"
    assert hd.get("/ready")[0] == 503

