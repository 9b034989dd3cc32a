"""/metrics: a live exposition that promtool accepts, with values that agree with /health.

Failures of different kinds are made the way a firewall makes them, inside a namespace:
DROP (timeout), nothing listening (refused), REJECT host-unreachable (unreachable).
"""

import os
import re
import subprocess

from harness import free_port, wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """-> {(name, frozenset(labels.items())): float}, plus the TYPE of each family."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, "family %s declared twice" % name
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def failures_of(samples, check):
    """-> {(kind, phase): count}: the check's healthd_check_failures_total series (only the pairs seen)."""
    out = {}
    for (name, labels), v in samples.items():
        labels = dict(labels)
        if name == "healthd_check_failures_total" and labels["check"] == check:
            assert set(labels) == {"check", "kind", "phase"}, labels
            out[(labels["kind"], labels["phase"])] = v
    return out


def scrape(hd):
    status, headers, body = hd.get("/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return body.decode("utf-8")


def promtool_check(text):
    cp = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, "promtool: %s%s" % (cp.stdout, cp.stderr)
    assert cp.stdout.strip() == "" and cp.stderr.strip() == "", cp.stdout + cp.stderr


def checks_of(hd):
    status, health = hd.json("/health")
    assert health is not None, status
    return health["checks"]


def test_metrics_pass_promtool_and_agree_with_health(start_healthd, start_tcp_listener, start_http_app,
                                                     make_netns):
    ns = make_netns("metrics")
    app = start_tcp_listener(netns=ns)
    web = start_http_app(netns=ns, status=500, body="boom")
    flapping = start_tcp_listener(netns=ns)
    dropped, refused, unreachable = (free_port(netns=ns) for _ in range(3))
    ns.block(dropped, "drop")
    ns.block(unreachable, "host-unreachable")
    cfg = {
        "node_name": "web-metrics",
        "defaults": {"interval_ms": 300, "timeout_ms": 250, "rise": 1, "fall": 1},
        "checks": [
            {"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port},
            {"name": "flapping", "type": "tcp", "host": "127.0.0.1", "port": flapping.port},
            {"name": "firewalled", "type": "tcp", "host": "127.0.0.1", "port": dropped},
            {"name": "stopped", "type": "tcp", "host": "127.0.0.1", "port": refused},
            {"name": "rejected", "type": "tcp", "host": "127.0.0.1", "port": unreachable,
             "critical": False},
            {"name": "web", "type": "http", "url": "http://127.0.0.1:%d/" % web.port, "critical": False},
        ],
    }
    hd = start_healthd(cfg, netns=ns)
    wait_until(lambda: all(c["status"] != "pending" for c in checks_of(hd).values()), 5,
               what="a result for every check")

    text = scrape(hd)
    promtool_check(text)
    samples, types = parse_exposition(text)
    health = checks_of(hd)
    assert types["healthd_check_up"] == "gauge"
    assert types["healthd_check_failures_total"] == "counter"
    assert types["healthd_check_transitions_total"] == "counter"
    expected_kind = {"app": "ok", "flapping": "ok", "firewalled": "timeout", "stopped": "refused",
                     "rejected": "unreachable", "web": "http_status"}
    # where each failed: the connect for the tcp checks, the answer (its status) for the http one
    expected_phase = {"firewalled": "connect", "stopped": "connect", "rejected": "connect", "web": "response"}
    for name, check in health.items():
        assert check["kind"] == expected_kind[name], (name, check)
        assert check.get("phase") == expected_phase.get(name), (name, check)
        crit = "true" if check["critical"] else "false"
        assert value(samples, "healthd_check_up", check=name, critical=crit) == (check["status"] == "up")
        assert value(samples, "healthd_check_info", check=name, type=check["type"], target=check["target"],
                     critical=crit) == 1
        attempts = value(samples, "healthd_check_attempts_total", check=name)
        failures = failures_of(samples, name)
        assert attempts >= 1
        if check["status"] == "up":
            assert failures == {}, (name, failures)  # only non-zero series: none for a check that never failed
        else:
            # every attempt of a steadily failing check failed the same way, in the same phase: one series
            assert failures == {(check["kind"], check["phase"]): attempts}, (name, failures, attempts)
        assert value(samples, "healthd_check_transitions_total", check=name) == 1  # pending -> first state
        assert value(samples, "healthd_check_latency_seconds", check=name) >= 0
    # the timeout is measured as such: the deadline (less libevent's 4 ms coarse clock), not an instant failure
    assert value(samples, "healthd_check_latency_seconds", check="firewalled") >= 0.25 - 0.005

    # transitions follow what /health shows: up -> down -> up
    flapping.stop()
    wait_until(lambda: checks_of(hd)["flapping"]["status"] == "down", 5, what="flapping down")
    samples, _ = parse_exposition(scrape(hd))
    assert value(samples, "healthd_check_up", check="flapping", critical="true") == 0
    assert value(samples, "healthd_check_transitions_total", check="flapping") == 2
    assert value(samples, "healthd_check_failures_total", check="flapping", kind="refused", phase="connect") >= 1
    flapping.start()
    wait_until(lambda: checks_of(hd)["flapping"]["status"] == "up", 5, what="flapping up again")
    text = scrape(hd)
    promtool_check(text)
    samples, _ = parse_exposition(text)
    assert value(samples, "healthd_check_up", check="flapping", critical="true") == 1
    assert value(samples, "healthd_check_transitions_total", check="flapping") == 3
    assert value(samples, "healthd_check_transitions_total", check="app") == 1


def test_metrics_request_counters_move_per_scrape_while_checks_stand_still(start_healthd,
                                                                          start_tcp_listener):
    app = start_tcp_listener()
    cfg = {"checks": [{"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port,
                       "interval_ms": 60000, "timeout_ms": 500}]}
    hd = start_healthd(cfg)
    wait_until(lambda: checks_of(hd)["app"]["status"] == "up", 5, what="app up")

    first = scrape(hd)
    for _ in range(3):
        assert hd.agent().startswith("up")
    second = scrape(hd)
    s1, _ = parse_exposition(first)
    s2, _ = parse_exposition(second)
    # nothing but this test talks to the daemon: the scrape counts itself, the agent its replies
    assert value(s2, "healthd_http_requests_total") - value(s1, "healthd_http_requests_total") == 1
    assert value(s2, "healthd_agent_requests_total") - value(s1, "healthd_agent_requests_total") == 3
    assert value(s2, "healthd_build_info", version=value_label(second, "healthd_build_info", "version")) == 1
    assert value(s2, "healthd_alert_queue_depth") == 0
    # no result in between: the per-check part is the same text
    per_check = lambda text: [l for l in text.splitlines() if l.startswith("healthd_check_")]
    assert per_check(first) == per_check(second)
    assert value(s2, "healthd_check_attempts_total", check="app") == 1

    status, _, body = hd.get("/metrics", method="HEAD")
    assert status == 200 and body == b""
    status, headers, _ = hd.get("/metrics", method="OPTIONS")
    assert status == 200 and headers["allow"] == "GET, HEAD, OPTIONS"
    status, _, _ = hd.get("/metrics", method="POST", body=b"x")
    assert status == 405  # methods outside GET, HEAD, OPTIONS: 405 with Allow


def value_label(text, name, label):
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return dict(LABEL.findall(SAMPLE.match(line).group(2)))[label]
    raise AssertionError("no %s sample" % name)


def test_alert_counters_follow_deliveries(workdirs, start_healthd, start_tcp_listener, start_receiver):
    app = start_tcp_listener()
    rx = start_receiver()
    cfg = {"node_name": "web-alerts",
           "defaults": {"interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 1},
           "checks": [{"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port}],
           "alerts": {"spool_dir": os.path.join(workdirs.new("spool"), "spool"), "min_gap_s": 0,
                      "repeat_interval_s": 0, "retry_initial_ms": 50, "retry_max_ms": 200,
                      "webhooks": [{"url": rx.url + "/hook", "timeout_ms": 1000}]}}
    hd = start_healthd(cfg)
    wait_until(lambda: checks_of(hd)["app"]["status"] == "up", 5, what="app up")

    def counters():
        samples, _ = parse_exposition(scrape(hd))
        return {name: value(samples, "healthd_alert_" + name) for name in
                ("queue_depth", "events_total", "deliveries_total", "delivery_failures_total",
                 "deliveries_dropped_total", "events_held_total")}

    start = counters()
    assert start["queue_depth"] == 0 and start["deliveries_total"] == 0, start

    # a regression, delivered
    app.stop()
    wait_until(lambda: len(rx.posts()) >= 1, 5, what="the regression at the receiver")
    after = wait_until(lambda: (lambda c: c if c["deliveries_total"] == 1 else None)(counters()), 5,
                       what="one delivery counted")
    assert after["events_total"] >= 1 and after["queue_depth"] == 0, after
    assert after["delivery_failures_total"] == 0

    # the receiver goes away: the recovery waits in the queue and its attempts fail
    rx.stop()
    app.start()
    failing = wait_until(lambda: (lambda c: c if c["delivery_failures_total"] >= 2 else None)(counters()), 8,
                         what="failed delivery attempts counted")
    assert failing["queue_depth"] >= 1 and failing["deliveries_total"] == 1, failing
    promtool_check(scrape(hd))

    # back: the queue drains
    rx.start()
    drained = wait_until(lambda: (lambda c: c if c["queue_depth"] == 0 else None)(counters()), 8,
                         what="the queue drained")
    assert drained["deliveries_total"] == 2, drained
