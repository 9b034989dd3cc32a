"""`healthd fleet --prometheus URL`: the fleet view built from a real Prometheus 2.42 that scrapes three healthd,
instead of polling each: one all up, one with a down check (a closed port: refused), one stopped after Prometheus
saw it (its failing scrape is a row of its own). Also what /metrics gained for it (node, state, since), and
Prometheus unreachable or not Prometheus."""

import json
import re
import time

from harness import free_port, run_healthd, wait_until
from core_common import config, sanitizer_reports, tcp_check  # noqa: F401 (autouse)


def node(name, checks):
    cfg = config(checks, interval_ms=300, timeout_ms=200)
    cfg["node_name"] = name
    return cfg


def test_the_fleet_view_from_prometheus(start_healthd, start_prometheus, start_tcp_listener):
    app = start_tcp_listener()
    closed = free_port()
    be1 = start_healthd(node("be1", [tcp_check("db", app.port), tcp_check("cache", app.port)]))
    be2 = start_healthd(node("be2", [tcp_check("db", app.port), tcp_check("cache", closed, critical=False)]))
    be3 = start_healthd(node("be3", [tcp_check("db", app.port)]))
    targets = ["127.0.0.1:%d" % hd.http_port for hd in (be1, be2, be3)]
    prom = start_prometheus(targets)

    # What /metrics carries for the view: the node, each check's state, kind, address and source, and since.
    # start_healthd waits for readiness, which a non-critical check does not hold up: wait for its first result.
    wait_until(lambda: be2.json("/health/cache")[1]["status"] == "down", 10, interval=0.05,
               what="be2's cache check has its first result")
    _, _, body = be2.get("/metrics")
    text = body.decode()
    assert 'healthd_node_info{node="be2"} 1' in text
    assert ('healthd_check_state_info{check="cache",status="down",kind="refused",address="127.0.0.1:%d",'
            'source_addr="127.0.0.1"} 1' % closed) in text, text
    assert re.search(r'\nhealthd_check_since_timestamp_seconds\{check="cache"\} 1\d{9}\.\d{3}\n', text)

    wait_until(lambda: len(prom.query("healthd_check_state_info")) == 5 and
               len(prom.query("up == 1")) == 3, 30, interval=0.5, what="Prometheus scraped all three")
    be3.kill()
    wait_until(lambda: prom.query('up{instance="%s"} == 0' % targets[2]), 20, interval=0.5,
               what="Prometheus sees be3's scrape fail")

    rc, out, err = run_healthd(["fleet", "--json", "--prometheus", prom.url + "/"], timeout=30)
    assert rc == 2, err  # a healthd that does not answer is a critical row
    view = json.loads(out)
    rows = {(r["node"], r["check"]): r for r in view["rows"]}
    assert set(rows) == {("be1", "db"), ("be1", "cache"), ("be2", "db"), ("be2", "cache"),
                         (targets[2], "(healthd)")}, rows
    cache = rows[("be2", "cache")]
    assert cache["status"] == "down" and cache["kind"] == "refused" and cache["critical"] is False, cache
    assert cache["address"] == "127.0.0.1:%d" % closed and cache["source_addr"] == "127.0.0.1"
    assert cache["target"] == "127.0.0.1:%d" % closed and cache["type"] == "tcp"
    assert re.fullmatch(r"down: refused since 20\d\d-\d\d-\d\dT[\d:.]+Z \(from Prometheus; the detail is in that "
                        r"healthd's /health\)", cache["detail"]), cache
    assert view["rows"][0] == cache or view["rows"][1] == cache  # failing rows first
    assert rows[("be1", "db")]["status"] == "up" and rows[("be1", "db")]["kind"] == "ok"
    stopped = rows[(targets[2], "(healthd)")]
    assert stopped["kind"] == "refused" and "Prometheus' last scrape failed" in stopped["detail"], stopped
    assert "connection refused" in stopped["detail"]
    db = [d for d in view["dependencies"] if d["target"] == "127.0.0.1:%d" % app.port]
    assert db and db[0]["verdict"] == "up"

    rc, table, _ = run_healthd(["fleet", "--prometheus", prom.url], timeout=30)
    assert rc == 2
    assert table.splitlines()[0].split() == ["NODE", "CHECK", "STATUS", "KIND", "DETAIL", "SINCE"]
    assert "3 backends, 2 answered; 4 checks, 1 down" in table, table
    assert "%s: healthd did not answer (refused)" % targets[2] in table


def test_prometheus_unreachable_or_not_prometheus(start_healthd, start_prometheus):
    closed = free_port()
    rc, out, err = run_healthd(["fleet", "--prometheus", "http://127.0.0.1:%d" % closed], timeout=20)
    assert rc == 2 and out == ""
    assert err.startswith("healthd fleet: Prometheus at http://127.0.0.1:%d: " % closed) and "connect" in err, err
    # A healthd is not Prometheus: its 404 JSON index is not the API's answer.
    hd = start_healthd(node("be1", [tcp_check("db", closed)]))
    rc, out, err = run_healthd(["fleet", "--prometheus", hd.url("")], timeout=20)
    assert rc == 2 and "not Prometheus' API JSON" in err, err
    # A Prometheus that scrapes no healthd says so.
    prom = start_prometheus(["127.0.0.1:%d" % closed])
    rc, out, err = run_healthd(["fleet", "--prometheus", prom.url], timeout=20)
    assert rc == 2 and "knows no healthd" in err, err
    rc, _, err = run_healthd(["fleet", "--prometheus", prom.url, "127.0.0.1:1"], timeout=20)
    assert rc == 3 and "not both" in err
