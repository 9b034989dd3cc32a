"""healthd check (one-shot, for a change window) and healthd diff, with real reachable and unreachable targets."""

import json
import os
import re
import subprocess
import time

from harness import free_port, run_healthd
from harness.healthd import healthd_bin

CHECK_KEYS = {"name", "type", "target", "status", "kind", "detail", "latency_ms", "critical",
              "address", "source_addr"}


def write_config(workdirs, name, cfg):
    d = workdirs.new("oneshot")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def tcp(name, port, critical=True, **kw):
    check = {"name": name, "type": "tcp", "host": "127.0.0.1", "port": port, "critical": critical}
    check.update(kw)
    return check


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def run_check(path, *extra, netns=None):
    rc, out, err = run_healthd(["check", "--config", path] + list(extra), timeout=20, netns=netns)
    assert not any(mark in err for mark in SANITIZER_MARKS), err
    return rc, out, err


def table_rows(stdout):
    """NAME -> the columns of its row (name, target, status, kind, latency 'N ms', detail)."""
    lines = stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "TARGET", "STATUS", "KIND", "LATENCY", "DETAIL"], stdout
    rows = {}
    for line in lines[1:]:
        if not line.strip():
            break
        cols = line.split(None, 6)
        rows[cols[0]] = cols
    return rows


def test_check_exit_codes_and_table(workdirs, start_tcp_listener):
    app = start_tcp_listener()
    closed = free_port()
    base = {"node_name": "web-1", "defaults": {"timeout_ms": 500, "rise": 5, "fall": 5}}

    only_up = write_config(workdirs, "up.json", dict(base, checks=[tcp("app", app.port)]))
    rc, out, err = run_check(only_up)
    assert rc == 0, (out, err)
    row = table_rows(out)["app"]
    assert row[1:5] == ["127.0.0.1:%d" % app.port, "up", "ok", row[4]] and row[5] == "ms", row
    assert "connected" in row[6]
    assert "node web-1: 1 of 1 checks up" in out and "exit 0" in out
    assert err == ""

    # One attempt decides, even with rise/fall of 5: the down check is reported down at once.
    critical_down = write_config(workdirs, "down.json",
                                 dict(base, checks=[tcp("app", app.port), tcp("db", closed)]))
    rc, out, err = run_check(critical_down)
    assert rc == 2, (out, err)  # Nagios CRITICAL
    rows = table_rows(out)
    assert rows["app"][2] == "up"
    assert rows["db"][2:4] == ["down", "refused"], rows["db"]
    assert "connect 127.0.0.1:%d" % closed in rows["db"][6]
    assert "CRITICAL down: db" in out and "exit 2" in out

    noncritical_down = write_config(workdirs, "degraded.json",
                                    dict(base, checks=[tcp("app", app.port), tcp("db", closed, critical=False)]))
    rc, out, err = run_check(noncritical_down)
    assert rc == 1, (out, err)  # Nagios WARNING: only non-critical checks down
    assert "non-critical down: db" in out and "CRITICAL" not in out and "exit 1" in out

    # usage and configuration errors: exit 3 (Nagios UNKNOWN), said on stderr
    rc, out, err = run_healthd(["check"])
    assert rc == 3 and "--config FILE is required" in err and out == ""
    rc, out, err = run_healthd(["check", "--config", only_up, "extra"])
    assert rc == 3 and "unexpected argument" in err
    rc, out, err = run_healthd(["check", "--config", only_up, "--yaml"])
    assert rc == 3 and "healthd check: unknown option, or one missing its value: --yaml" in err
    rc, out, err = run_healthd(["check", "--config", only_up, "--format", "xml"])
    assert rc == 3 and 'unknown --format "xml"' in err
    rc, out, err = run_healthd(["check", "--help"])
    assert rc == 0 and out.startswith("usage: healthd check --config FILE [--json | --format table|json|nagios]")
    broken = write_config(workdirs, "broken.json", {"checks": [{"name": "x", "type": "tcp", "host": "h"}]})
    rc, out, err = run_check(broken)
    assert rc == 3 and out == ""
    assert broken + ":" in err and "port" in err, err
    rc, out, err = run_check("/nonexistent/healthd.json")
    assert rc == 3 and "cannot read the configuration" in err


NAGIOS_LINE = re.compile(r"^HEALTHD (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \|( '[\w.-]+'=\d+(\.\d+)?ms;;;0)*$")


def test_check_as_a_nagios_plugin(workdirs, start_tcp_listener):
    """--format nagios: one line `HEALTHD STATE - text | perfdata`, the state matching the exit code, as
    Nagios, Icinga, Consul script checks and Monit read it; run through the Monitoring Plugins' own `negate`
    (which maps a plugin's exit codes) to show a real consumer reads the same state."""
    app = start_tcp_listener()
    closed = free_port()
    base = {"node_name": "web-1", "defaults": {"timeout_ms": 500}}
    cases = {
        "ok": (0, "OK", [tcp("app", app.port)]),
        "warning": (1, "WARNING", [tcp("app", app.port), tcp("cache", closed, critical=False)]),
        "critical": (2, "CRITICAL", [tcp("app", app.port), tcp("mysql-main", closed),
                                     tcp("cache", closed, critical=False)]),
    }
    for name, (code, state, checks) in cases.items():
        path = write_config(workdirs, name + ".json", dict(base, checks=checks))
        rc, out, err = run_healthd(["check", "--config", path, "--format", "nagios"])
        print("exit %d: %s" % (rc, out.strip()))
        assert rc == code, (name, rc, out, err)
        lines = out.splitlines()
        assert len(lines) == 1 and NAGIOS_LINE.match(lines[0]), out
        assert lines[0].startswith("HEALTHD %s - " % state), out
        for check in checks:
            assert "'%s'=" % check["name"] in lines[0].split("|")[1], out
        # negate -o/-w/-c maps OK/WARNING/CRITICAL to the given states: it reads our exit code as a plugin
        cp = subprocess.run(["/usr/lib/nagios/plugins/negate", "-o", "CRITICAL", "-w", "OK", "-c", "WARNING",
                             healthd_bin(), "check", "--config", path,
                             "--format", "nagios"], capture_output=True, text=True, timeout=30)
        assert cp.returncode == {0: 2, 1: 0, 2: 1}[code], (name, cp.returncode, cp.stdout)
    # the critical line names the critical failure first, with its detail, then the others
    assert "HEALTHD CRITICAL - mysql-main refused: connect 127.0.0.1:%d" % closed in out
    assert ", cache refused (non-critical); 1 of 3 checks up | 'app'=" in out

    rc, out, err = run_healthd(["check", "--config", "/nonexistent.json", "--format", "nagios"])
    assert rc == 3 and out.startswith("HEALTHD UNKNOWN - ") and len(out.splitlines()) == 1, (rc, out)


def test_check_runs_every_check_at_once_and_json_shape(workdirs, make_netns, start_tcp_listener):
    ns = make_netns("oneshot")
    app = start_tcp_listener(netns=ns)
    dropped = [free_port(netns=ns) for _ in range(6)]
    unreachable = free_port(netns=ns)
    for port in dropped:
        ns.block(port, "drop")
    ns.block(unreachable, "host-unreachable")
    checks = [tcp("app", app.port)] + [tcp("fw%d" % i, p) for i, p in enumerate(dropped)]
    checks.append(tcp("lan", unreachable, critical=False))
    path = write_config(workdirs, "healthd.json", {"node_name": "web-2", "defaults": {"timeout_ms": 400},
                                                  "checks": checks})
    started = time.monotonic()
    rc, out, err = run_check(path, "--json", netns=ns)
    elapsed = time.monotonic() - started
    assert rc == 2, (out, err)
    # six 400 ms timeouts one after another would take 2.4 s: they ran concurrently
    assert elapsed < 0.4 + 1.2, elapsed

    doc = json.loads(out)
    assert doc["format"] == "healthd-check" and doc["format_version"] == 1
    assert doc["node"] == "web-2"
    assert doc["config"] == os.path.realpath(path)
    assert doc["status"] == "down"
    assert doc["timestamp"].endswith("Z") and doc["timestamp"][:2] == "20"
    assert [c["name"] for c in doc["checks"]] == [c["name"] for c in checks]
    by_name = {c["name"]: c for c in doc["checks"]}
    for c in doc["checks"]:
        assert {"name", "type", "target", "status", "kind", "detail", "latency_ms", "critical"} <= set(c)
        assert set(c) <= CHECK_KEYS, c
        assert c["type"] == "tcp" and isinstance(c["latency_ms"], (int, float))
    assert by_name["app"]["status"] == "up" and by_name["app"]["kind"] == "ok"
    assert by_name["app"]["target"] == "127.0.0.1:%d" % app.port and by_name["app"]["critical"] is True
    for i, port in enumerate(dropped):
        fw = by_name["fw%d" % i]
        assert (fw["status"], fw["kind"]) == ("down", "timeout"), fw
        assert fw["detail"] == "connect 127.0.0.1:%d: no answer within 400 ms" % port
        # libevent's timers run on the 4 ms coarse monotonic clock: allow that much early
        assert 400 - 5 <= fw["latency_ms"] < 400 + 1200
    assert (by_name["lan"]["status"], by_name["lan"]["kind"], by_name["lan"]["critical"]) == \
        ("down", "unreachable", False)


def test_check_with_http_checks(workdirs, start_http_app):
    ok = start_http_app(status=200, body="fine")
    failing = start_http_app(status=503, body="maintenance")
    path = write_config(workdirs, "http.json", {"node_name": "web-h", "defaults": {"timeout_ms": 1000}, "checks": [
        {"name": "api", "type": "http", "url": "http://127.0.0.1:%d/health" % ok.port},
        {"name": "search", "type": "http", "url": "http://127.0.0.1:%d/" % failing.port, "critical": False},
    ]})
    rc, out, err = run_check(path, "--json")
    assert rc == 1, (out, err)  # only a non-critical check down: WARNING
    by_name = {c["name"]: c for c in json.loads(out)["checks"]}
    assert (by_name["api"]["type"], by_name["api"]["status"], by_name["api"]["kind"]) == ("http", "up", "ok")
    assert (by_name["search"]["status"], by_name["search"]["kind"]) == ("down", "http_status")
    assert "503" in by_name["search"]["detail"]


def test_check_with_mysql_and_redis(workdirs, mariadb, start_redis):
    redis = start_redis(password="r-secret")
    path = write_config(workdirs, "db.json", {"node_name": "web-db", "defaults": {"timeout_ms": 2000}, "checks": [
        {"name": "db", "type": "mysql", "host": mariadb.host, "port": mariadb.port, "user": mariadb.user,
         "password": mariadb.password},
        {"name": "db-wrong-user", "type": "mysql", "host": mariadb.host, "port": mariadb.port,
         "user": mariadb.user, "password": "not-the-password", "critical": False},
        {"name": "sessions", "type": "redis", "host": redis.host, "port": redis.port, "password": "r-secret"},
    ]})
    os.chmod(path, 0o600)
    rc, out, err = run_check(path)
    assert rc == 1, (out, err)  # only a non-critical check down: WARNING
    rows = table_rows(out)
    assert rows["db"][2:4] == ["up", "ok"]
    assert rows["sessions"][2:4] == ["up", "ok"]
    assert rows["db-wrong-user"][2:4] == ["down", "auth"], rows["db-wrong-user"]


def snapshot(workdirs, cfg, name):
    path = write_config(workdirs, name + "-config.json", cfg)
    rc, out, err = run_check(path, "--json")
    assert rc in (0, 1, 2), err
    out_path = os.path.join(os.path.dirname(path), name + ".json")
    with open(out_path, "w") as f:
        f.write(out)
    return out_path


def test_diff_regression_recovery_and_no_change(workdirs, start_tcp_listener):
    app = start_tcp_listener()
    cache_port = free_port()
    steady = start_tcp_listener()
    cfg = {"node_name": "web-3", "defaults": {"timeout_ms": 500},
           "checks": [tcp("app", app.port), tcp("cache", cache_port, critical=False),
                      tcp("search", steady.port)]}
    before = snapshot(workdirs, cfg, "before")

    # the "firewall change": app becomes unreachable, cache becomes reachable
    app.stop()
    cache = start_tcp_listener(port=cache_port)
    after = snapshot(workdirs, cfg, "after")
    rc, out, err = run_healthd(["diff", before, after])
    assert rc == 1, (out, err)
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("node web-3: before ")
    assert lines[1].startswith("REGRESSION  app ") and "critical" in lines[1]
    assert "up   -> down  refused: connect 127.0.0.1:%d" % app.port in lines[1]
    assert lines[2].startswith("RECOVERY    cache ") and "non-critical" in lines[2]
    assert "down -> up    ok: " in lines[2] and "(before: refused: " in lines[2]
    assert lines[3] == "3 checks: 1 regression, 1 recovery, 0 still down, 1 up before and after"

    # a recovery alone is not a failure
    rc, out, _ = run_healthd(["diff", after, before])
    assert rc == 1  # reversed, app's recovery is cache's regression
    cache.stop()
    again = snapshot(workdirs, cfg, "again")
    rc, out, err = run_healthd(["diff", after, again])
    assert rc == 1 and "REGRESSION  cache" in out and "RECOVERY" not in out
    app.start()
    recovered = snapshot(workdirs, cfg, "recovered")
    rc, out, err = run_healthd(["diff", again, recovered])
    assert rc == 0, out
    assert "RECOVERY    app " in out and "REGRESSION" not in out
    # no change
    rc, out, err = run_healthd(["diff", recovered, recovered])
    assert rc == 0
    assert out.splitlines()[-1] == "3 checks: 0 regressions, 0 recoveries, 1 still down, 2 up before and after"
    assert "STILL DOWN  cache " in out


def test_diff_refuses_files_it_cannot_compare(workdirs, start_tcp_listener):
    app = start_tcp_listener()
    cfg = {"node_name": "web-4", "defaults": {"timeout_ms": 500},
           "checks": [tcp("app", app.port), tcp("db", free_port())]}
    good = snapshot(workdirs, cfg, "good")
    other_node = snapshot(workdirs, dict(cfg, node_name="web-5"), "other-node")
    other_checks = snapshot(workdirs, dict(cfg, checks=[tcp("app", app.port), tcp("mq", free_port())]), "other")
    d = os.path.dirname(good)
    not_json = os.path.join(d, "not.json")
    with open(not_json, "w") as f:
        f.write("NAME TARGET STATUS\napp 127.0.0.1:1 up\n")  # the table, not --json
    twice = os.path.join(d, "twice.json")  # two runs appended to one file
    with open(good) as f:
        good_text = f.read()
    good_lines = good_text.count("\n")
    with open(twice, "w") as f:
        f.write(good_text + good_text)
    health = os.path.join(d, "health.json")
    with open(health, "w") as f:
        json.dump({"status": "up", "node": "web-4", "checks": {}}, f)  # /health, not a check file

    cases = [
        (["diff", good], "expected two files"),
        (["diff", good, os.path.join(d, "missing.json")], "missing.json: cannot read: No such file"),
        (["diff", good, not_json], "not.json:1:1: not JSON"),
        (["diff", good, twice], "twice.json:%d:1: more text after the end of the JSON object" % (good_lines + 1)),
        (["diff", health, good], "health.json: not a healthd check file"),
        (["diff", good, other_node], 'different nodes: %s is from "web-4", %s from "web-5"' % (good, other_node)),
        (["diff", good, other_checks], "removed (only in before): db\n  added (only in after): mq\n"),
    ]
    for args, expected in cases:
        rc, out, err = run_healthd(args)
        assert rc == 2, (args, rc, out, err)
        assert expected in err, (args, err)
        assert out == "", (args, out)
