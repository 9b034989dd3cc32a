"""/health in the IETF draft health check format (application/health+json) when the client asks for it."""

import json

from harness import wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, parse_iso, tcp_check

HJ = {"Accept": "application/health+json"}


def get_hj(hd, headers=HJ):
    status, h, body = hd.get("/health", headers=headers)
    return status, h["content-type"], json.loads(body)


def test_health_json_on_request_only(start_healthd, start_tcp_listener):
    db, cache = start_tcp_listener(), start_tcp_listener()
    hd = start_healthd(config([tcp_check("db", db.port), tcp_check("cache", cache.port, critical=False)],
                              interval_ms=200, timeout_ms=150))
    wait_until(lambda: get_hj(hd)[2]["status"] == "pass", 5, what="pass")
    status, ctype, doc = get_hj(hd)
    print(json.dumps(doc))
    assert status == 200 and ctype == "application/health+json"
    assert set(doc["checks"]) == {"db:responseTime", "cache:responseTime"}
    entry = doc["checks"]["db:responseTime"][0]
    assert entry["componentId"] == "db" and entry["componentType"] == "component"
    assert entry["status"] == "pass" and entry["observedUnit"] == "ms" and entry["observedValue"] >= 0
    parse_iso(entry["time"])
    assert "output" not in entry
    # default stays as today
    status, h, body = hd.get("/health")
    assert h["content-type"] == "application/json" and json.loads(body)["status"] == "up"
    assert hd.get("/health", headers={"Accept": "application/health+json;q=0, application/json"})[1][
        "content-type"] == "application/json"

    cache.stop()  # non-critical: warn, still 200
    wait_until(lambda: get_hj(hd)[2]["status"] == "warn", 5, what="warn")
    status, _, doc = get_hj(hd)
    assert status == 200 and doc["checks"]["cache:responseTime"][0]["status"] == "warn"
    assert doc["checks"]["cache:responseTime"][0]["output"].startswith("refused: connect 127.0.0.1:")
    db.stop()  # critical: fail, 503
    wait_until(lambda: get_hj(hd)[2]["status"] == "fail", 5, what="fail")
    status, _, doc = get_hj(hd)
    assert status == 503 and doc["output"] == "db refused"
    assert doc["checks"]["db:responseTime"][0]["status"] == "fail"
    # back to pass once both are reachable again
    db.start(), cache.start()
    wait_until(lambda: get_hj(hd)[2]["status"] == "pass", 5, what="pass again")
