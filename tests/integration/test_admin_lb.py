"""The admin state (drain, maint, graceful stop) for every kind of load balancer: a real HAProxy 2.6 with the
shipped haproxy.cfg (httpchk on the dependency-only /ready/deps plus the agent) keeps a drain as DRAIN, a plain
HTTP poller on /ready gets 503 under drain, maint and the SIGTERM grace, and several HAProxy processes polling
from different addresses all leave drain after `healthd ctl ready` while a later runtime-API maint stays."""

import signal
import time

from harness import free_port, run_healthd, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, render_haproxy_cfg, tcp_check
from harness.haproxy import TCP_TEST_HEAD

ADMIN_MAINT = 0x01  # srv_admin_state: forced maintenance
ADMIN_DRAIN = 0x08  # srv_admin_state: forced drain


def ctl(hd, *args):
    rc, out, err = run_healthd(["ctl", "--socket", hd.admin_socket] + [str(a) for a in args], timeout=10)
    assert rc == 0, (args, rc, out, err)
    return out


def server_view(hp, backend, server):
    row, state = hp.server(backend, server), hp.server_state(backend, server)
    # HAProxy prefixes the last result with "* " while the next check is in progress: the result is the same
    return {"status": row["status"], "check_status": row["check_status"].removeprefix("* "),
            "op": int(state["srv_op_state"]),
            "admin": int(state["srv_admin_state"]), "weight": row["weight"]}


def ready(hd):
    status, _, body = hd.get("/ready")
    return status, body.decode()


# --------------------------------------------------------------------------- HAProxy with the agent

def test_shipped_haproxy_keeps_drain_a_drain(start_healthd, start_tcp_listener, start_http_app, start_haproxy):
    """httpchk on /ready/deps + agent: `ctl drain` gives DRAIN (sessions finish), never DOWN. The same file with
    the httpchk on /ready instead (what the shipped file said before) turns the drain into DOWN."""
    db = start_tcp_listener()
    app = start_http_app(body="be1")
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=200, timeout_ms=150))
    shipped = render_haproxy_cfg([("be1", app.port, hd.http_port, hd.agent_port)], free_port(), free_port())
    assert "uri /ready/deps" in shipped
    on_ready = render_haproxy_cfg([("be1", app.port, hd.http_port, hd.agent_port)], free_port(), free_port())
    on_ready = on_ready.replace("uri /ready/deps", "uri /ready")
    with_deps, with_ready = start_haproxy(shipped), start_haproxy(on_ready)
    for hp in (with_deps, with_ready):
        hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["weight"] == "100", timeout=10)

    ctl(hd, "drain", "--reason", "deploy 42")
    wait_until(lambda: server_view(with_deps, "app", "be1")["admin"] & ADMIN_DRAIN, 5, what="HAProxy sees drain")
    wait_until(lambda: server_view(with_ready, "app", "be1")["op"] == 0, 5, what="/ready-httpchk HAProxy: DOWN")
    # Well past HAProxy's fall (3 x 150 ms fastinter after a 300 ms inter): the shipped one is still DRAIN.
    views = []
    for _ in range(10):
        time.sleep(0.2)
        views.append(server_view(with_deps, "app", "be1"))
    print("shipped cfg under drain: %s; httpchk on /ready: %s" % (views[-1], server_view(with_ready, "app", "be1")))
    for v in views:
        assert v["status"].startswith("DRAIN") and v["op"] == 2 and v["check_status"] == "L7OK", views
    assert server_view(with_ready, "app", "be1")["status"].startswith("DOWN")

    ctl(hd, "ready")
    for hp in (with_deps, with_ready):
        hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["weight"] == "100", timeout=10)
    assert not server_view(with_deps, "app", "be1")["admin"] & ADMIN_DRAIN


# --------------------------------------------------------------------------- a plain HTTP poller

def test_ready_answers_503_in_drain_maint_and_the_stop_grace(start_healthd, start_tcp_listener):
    """Kubernetes readiness, target groups, Consul: only the status code of /ready counts."""
    db = start_tcp_listener()
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=200, timeout_ms=150,
                              shutdown_grace_ms=2000))
    wait_until(lambda: ready(hd) == (200, "up\n"), 5, what="/ready up")

    ctl(hd, "drain", "--reason", "deploy 42")
    seen = {"drain": ready(hd)}
    assert seen["drain"] == (503, "drain #deploy 42\n"), seen
    assert hd.get("/ready/deps")[0] == 200 and hd.get("/ready/deps")[2] == b"up\n"
    assert hd.get("/health")[0] == 200  # /health keeps telling the dependencies' state

    ctl(hd, "maint", "--reason", "kernel update")
    seen["maint"] = ready(hd)
    assert seen["maint"] == (503, "maint #kernel update\n"), seen
    ctl(hd, "ready")
    assert ready(hd) == (200, "up\n")

    # A dependency down: 503 from both, whatever the admin state.
    db.stop()
    wait_until(lambda: hd.get("/ready/deps")[0] == 503, 5, what="/ready/deps 503 with db down")
    assert ready(hd)[0] == 503 and ready(hd)[1].startswith("down #db ")
    db.start()
    wait_until(lambda: ready(hd)[0] == 200, 5, what="/ready 200 again")

    hd.signal(signal.SIGTERM)
    seen["stopping"] = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(ready(hd)), 2,
                                  interval=0.01, what="/ready 503 once SIGTERM is handled")
    t0 = time.monotonic()
    codes = []
    while time.monotonic() - t0 < 1.5 and hd.running:
        codes.append(ready(hd)[0])
        time.sleep(0.1)
    assert seen["stopping"][0] == 503 and seen["stopping"][1].startswith("stopping #healthd is stopping (SIGTERM)"), seen
    assert codes and set(codes) == {503}, codes
    assert hd.get("/ready/deps")[0] == 200  # the dependencies are still fine: HAProxy's agent says drain
    print("plain poller on /ready: %s; %d polls during the grace, all 503" % (seen, len(codes)))
    assert hd.wait_exit(timeout=5) == 0


# --------------------------------------------------------------------------- several HAProxy processes

HAPROXY_TCP = TCP_TEST_HEAD + """
backend be
    option log-health-checks
    server s1 127.0.0.1:%(app)d source %(source)s weight 100 check inter 100ms rise 1 fall 1 agent-check agent-port %(agent)d agent-inter 100ms
"""


def test_two_haproxy_on_different_addresses_leave_drain_and_a_later_maint_stays(
        start_tcp_listener, start_healthd, start_haproxy):
    app = start_tcp_listener()
    window_ms = 1000  # agent-inter 100 ms: about 10 polls per HAProxy within the window
    hd = start_healthd(config([tcp_check("app", app.port)], interval_ms=200, timeout_ms=150,
                              agent={"ready_window_ms": window_ms}))
    lbs = []
    for source in ("127.0.0.2", "127.0.0.3"):
        hp = start_haproxy(HAPROXY_TCP % {"app": app.port, "agent": hd.agent_port, "source": source})
        hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
        lbs.append(hp)

    ctl(hd, "drain", "--reason", "deploy 43")
    for hp in lbs:
        wait_until(lambda: server_view(hp, "be", "s1")["admin"] & ADMIN_DRAIN, 5, what="drain on both")
    ctl(hd, "ready")
    t0 = time.monotonic()
    left = []
    for hp in lbs:
        wait_until(lambda: not server_view(hp, "be", "s1")["admin"] & ADMIN_DRAIN, 5, what="both leave drain")
        left.append(time.monotonic() - t0)
        hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
    print("left drain after ctl ready: %s s" % ["%.2f" % x for x in left])

    # Once the window is over, an operator's maint through each HAProxy's runtime API is never undone.
    wait_until(lambda: 'the "ready" window is over' in hd.log(), window_ms / 1000 + 5, what="window over")
    for hp in lbs:
        hp.cmd("set server be/s1 state maint")
        assert server_view(hp, "be", "s1")["admin"] & ADMIN_MAINT
    time.sleep(2.0)  # about 20 agent polls per HAProxy
    views = [server_view(hp, "be", "s1") for hp in lbs]
    print("2 s after a runtime-API maint: %s" % views)
    for v in views:
        assert v["admin"] & ADMIN_MAINT and v["status"] == "MAINT", views
    assert hd.agent() == "up 100%"
