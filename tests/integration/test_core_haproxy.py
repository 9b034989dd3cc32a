"""A real HAProxy 2.6 running haproxy/haproxy.cfg (the file users copy; see core_common.
render_haproxy_cfg for the few lines a test changes) polls healthd's agent port and /ready:
weight, DOWN with the reason in last_agt, UP again, and fail-closed when healthd dies."""

import signal
import subprocess
import threading
import time

from harness import free_port, http_request
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import HAPROXY_CFG, config, render_haproxy_cfg, tcp_check, wait_check

WAIT_S = 10


def op_state(hp):
    st = hp.server_state("app", "be1")
    return int(st["srv_op_state"]), int(st["srv_uweight"])


def through_frontend(port, timeout=3):
    status, _, body = http_request("127.0.0.1", port, "/", timeout=timeout)
    return status, body


def test_the_shipped_config_is_valid():
    cp = subprocess.run(["haproxy", "-c", "-f", HAPROXY_CFG], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_haproxy_follows_healthd(start_healthd, start_tcp_listener, start_http_app, start_haproxy):
    db, cache = start_tcp_listener(), start_tcp_listener()
    app = start_http_app(body="served by be1")
    hd = start_healthd(config([tcp_check("db", db.port), tcp_check("cache", cache.port, critical=False)],
                              interval_ms=200, timeout_ms=150, rise=1, fall=1))
    fe, stats = free_port(), free_port()
    hp = start_haproxy(render_haproxy_cfg([("be1", app.port, hd.http_port, hd.agent_port)], fe, stats))

    row = hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["agent_status"] == "L7OK",
                         timeout=WAIT_S)
    assert row["check_status"] == "L7OK" and row["check_code"] == "200"
    assert row["weight"] == "100" and op_state(hp) == (2, 100)
    assert through_frontend(fe) == (200, b"served by be1")
    status, _, csv_page = http_request("127.0.0.1", stats, "/;csv")
    assert status == 200 and b"app,be1," in csv_page
    assert http_request("127.0.0.1", stats, "/")[0] == 200

    # A non-critical dependency down: still UP, at half the weight, and HAProxy shows why.
    cache.stop()
    t0 = time.monotonic()
    row = hp.wait_server("app", "be1", lambda r: r["weight"] == "50", timeout=WAIT_S)
    lowered_s = time.monotonic() - t0
    assert row["status"] == "UP" and row["last_agt"] == "via agent : up (cache refused)"
    assert op_state(hp) == (2, 50)
    assert through_frontend(fe)[0] == 200
    cache.start()
    row = hp.wait_server("app", "be1", lambda r: r["weight"] == "100", timeout=WAIT_S)
    assert row["status"] == "UP" and op_state(hp) == (2, 100)

    # A critical dependency down: DOWN with the reason; established sessions are cut.
    app.set(delay=8)  # a request in flight while the server goes down
    slow = {}

    def slow_request():
        t = time.monotonic()
        try:
            slow["result"] = through_frontend(fe, timeout=15)
        except (OSError, Exception) as exc:  # noqa: BLE001 - the cut is the point
            slow["result"] = exc
        slow["took"] = time.monotonic() - t

    worker = threading.Thread(target=slow_request, daemon=True)
    worker.start()
    time.sleep(0.3)
    db.stop()
    t0 = time.monotonic()
    row = hp.wait_server("app", "be1", lambda r: r["status"].startswith("DOWN"), timeout=WAIT_S)
    down_s = time.monotonic() - t0
    assert row["last_agt"] == "via agent : down (db refused)", row["last_agt"]
    assert op_state(hp)[0] == 0
    worker.join(6)
    # on-marked-down shutdown-sessions: the request in flight is cut (502) instead of waiting 8 s
    assert not worker.is_alive() and slow["took"] < 8, slow
    assert isinstance(slow["result"], tuple) and slow["result"][0] == 502, slow
    app.set(delay=0)
    assert through_frontend(fe)[0] == 503  # no server left
    db.start()
    t0 = time.monotonic()
    row = hp.wait_server("app", "be1", lambda r: r["status"] == "UP", timeout=WAIT_S)
    up_s = time.monotonic() - t0
    assert op_state(hp) == (2, 100) and row["weight"] == "100"
    assert through_frontend(fe) == (200, b"served by be1")

    # healthd dies: the agent is ignored when unreachable, so it is httpchk on /ready that takes
    # the server out (fail closed), and brings it back once healthd answers again.
    hd.kill()
    t0 = time.monotonic()
    row = hp.wait_server("app", "be1", lambda r: r["status"].startswith("DOWN"), timeout=WAIT_S)
    dead_s = time.monotonic() - t0
    assert row["check_status"] in ("L4CON", "L4TOUT"), row["check_status"]
    assert op_state(hp)[0] == 0
    assert through_frontend(fe)[0] == 503
    hd.start()
    t0 = time.monotonic()
    hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["check_code"] == "200",
                   timeout=WAIT_S)
    back_s = time.monotonic() - t0
    # Until its first result the non-critical check is pending (degraded: 50%) for a moment.
    hp.wait_server("app", "be1", lambda r: r["weight"] == "100", timeout=WAIT_S)
    assert op_state(hp) == (2, 100)

    log = hp.log()
    assert "Agent check for server app/be1" in log and "db refused" in log
    assert "Health check for server app/be1 failed" in log
    print("\nHAProxy reaction times (healthd interval 200 ms, fall 1; HAProxy inter 300ms "
          "fastinter 150ms downinter 150ms rise 2 fall 3, agent-inter 300ms):\n"
          "  weight lowered %.2fs, DOWN (critical) %.2fs, UP again %.2fs, "
          "DOWN (healthd killed) %.2fs, UP (healthd restarted) %.2fs"
          % (lowered_s, down_s, up_s, dead_s, back_s))


def test_a_hung_healthd_fails_closed(start_healthd, start_tcp_listener, start_http_app,
                                     start_haproxy):
    """A stopped (SIGSTOP) healthd still completes TCP handshakes from its backlog but never
    answers: httpchk times out (timeout check) and takes the server out; it returns on SIGCONT."""
    db = start_tcp_listener()
    app = start_http_app()
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=200, timeout_ms=150))
    hp = start_haproxy(render_haproxy_cfg([("be1", app.port, hd.http_port, hd.agent_port)],
                                          free_port(), free_port()))
    hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["agent_status"] == "L7OK",
                   timeout=WAIT_S)
    hd.signal(signal.SIGSTOP)
    try:
        row = hp.wait_server("app", "be1", lambda r: r["status"].startswith("DOWN"), timeout=WAIT_S)
        assert row["check_status"] == "L7TOUT", row["check_status"]
        assert op_state(hp)[0] == 0
    finally:
        hd.signal(signal.SIGCONT)
    hp.wait_server("app", "be1", lambda r: r["status"] == "UP", timeout=WAIT_S)
    assert op_state(hp) == (2, 100)


def test_two_backends_one_degraded_one_down(start_healthd, start_tcp_listener, start_http_app,
                                            start_haproxy):
    """Traffic follows the weights: a degraded backend still serves, a down one does not."""
    dep1, dep2 = start_tcp_listener(), start_tcp_listener()
    app1, app2 = start_http_app(body="one"), start_http_app(body="two")
    hd1 = start_healthd(config([tcp_check("db", dep1.port)], interval_ms=200, timeout_ms=150))
    hd2 = start_healthd(config([tcp_check("db", dep2.port),
                                tcp_check("search", free_port(), critical=False)],
                               interval_ms=200, timeout_ms=150))
    fe = free_port()
    hp = start_haproxy(render_haproxy_cfg([("be1", app1.port, hd1.http_port, hd1.agent_port),
                                           ("be2", app2.port, hd2.http_port, hd2.agent_port)],
                                          fe, free_port()))
    hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["weight"] == "100",
                   timeout=WAIT_S)
    row = hp.wait_server("app", "be2", lambda r: r["status"] == "UP" and r["weight"] == "50",
                         timeout=WAIT_S)
    assert row["last_agt"] == "via agent : up (search refused)"
    bodies = [through_frontend(fe)[1] for _ in range(12)]
    assert set(bodies) == {b"one", b"two"}
    assert bodies.count(b"one") > bodies.count(b"two")  # 100 vs 50 in round robin

    dep1.stop()
    hp.wait_server("app", "be1", lambda r: r["status"].startswith("DOWN"), timeout=WAIT_S)
    assert {through_frontend(fe)[1] for _ in range(6)} == {b"two"}
    wait_check(hd1, "db", lambda c: c["status"] == "down")
