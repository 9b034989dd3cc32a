"""healthd under valgrind (memcheck): every check type against real servers and real faults, alerts to a
webhook receiver and to a port behind DROP, two reloads (a check added, one removed, one changed, the rest
unchanged), then SIGTERM. Asserts no memory error and no definitely lost block. Everything runs in one network
namespace: MariaDB, Redis, an HTTP app, a silent listener, a port behind a DROP rule, a refused port, and a
resolver that never answers."""

import os
import re
import signal
import subprocess
import time

from harness import REPO, Healthd, free_port, wait_until, healthd_bin

VALGRIND = "/usr/bin/valgrind"
# Under valgrind healthd runs 10 to 50 times slower: wide deadlines, so that what must be up is up.
SLOW = {"interval_ms": 1500, "timeout_ms": 1200, "rise": 1, "fall": 1}


def plain_build():
    """valgrind cannot run an AddressSanitizer build: use (and if needed make) the plain one."""
    path = healthd_bin()
    with open(path, "rb") as f:
        if b"__asan_init" not in f.read():
            return path
    subprocess.run(["make", "-C", REPO, "--no-print-directory", "SANITIZE=", "build/healthd"], check=True,
                   capture_output=True, timeout=300)
    return os.path.join(REPO, "build", "healthd")


class ValgrindHealthd(Healthd):
    start_timeout = 30.0

    def __init__(self, config, workdir, netns, binary):
        super().__init__(config, workdir, netns=netns)
        self.binary = binary
        self.valgrind_log = os.path.join(workdir, "valgrind.log")

    def _argv(self):
        return [VALGRIND, "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=definite",
                "--show-leak-kinds=definite", "--num-callers=40", "--error-exitcode=99",
                "--log-file=" + self.valgrind_log] + super()._argv()


def checks(mariadb, redis, app, silent_port, dropped_port, refused_port, disk_path):
    db = {"type": "mysql", "host": "127.0.0.1", "port": mariadb.port, "user": mariadb.user,
          "password": mariadb.password}
    return [
        dict(db, name="db"),
        dict(db, name="db-persistent", persistent=True, expect_read_only=False),
        {"name": "db-silent", "type": "mysql", "host": "127.0.0.1", "port": silent_port, "user": "x",
         "password": "y"},
        {"name": "cache", "type": "redis", "host": "127.0.0.1", "port": redis.port, "db": 1,
         "expect_role": "master"},
        {"name": "cache-silent", "type": "redis", "host": "127.0.0.1", "port": silent_port},
        {"name": "app", "type": "http", "url": app.url("/health"), "expect_body": "ok"},
        {"name": "app-dropped", "type": "http", "url": "http://127.0.0.1:%d/" % dropped_port},
        {"name": "tcp-refused", "type": "tcp", "host": "127.0.0.1", "port": refused_port},
        {"name": "tcp-dropped", "type": "tcp", "host": "127.0.0.1", "port": dropped_port},
        {"name": "tcp-nx", "type": "tcp", "host": "healthd-vg.invalid", "port": 80},
        {"name": "redis-nx", "type": "redis", "host": "healthd-vg.invalid"},
        {"name": "data", "type": "disk", "path": disk_path, "max_latency_ms": 1000},
        {"name": "dns-dropped", "type": "dns", "query": "db.example", "record": "MX"},  # resolv.conf's
        {"name": "dns-closed", "type": "dns", "query": "db.example", "server": "127.0.0.1:%d" % refused_port,
         "expect_answers": ["10.0.13.1"]},
    ]


def health(hd):
    status, body = hd.json("/health", timeout=10.0)
    assert body is not None, "no JSON from /health (HTTP %s)" % status
    return body["checks"]


def wait_all_reported(hd, names, timeout):
    def done():
        h = health(hd)
        return all(n in h and h[n]["status"] != "pending" for n in names)
    wait_until(done, timeout, interval=0.5, what="a result from every check")


def alerts(receiver, dropped_port, spool_dir):
    return {"spool_dir": spool_dir, "min_gap_s": 0, "retry_initial_ms": 300, "retry_max_ms": 1000,
            "webhooks": [{"url": receiver.url + "/hook"},
                         {"url": "http://127.0.0.1:%d/" % dropped_port, "format": "alertmanager",
                          "timeout_ms": 500, "connect_timeout_ms": 300}]}


def test_every_check_type_and_two_reloads_under_valgrind(make_netns, netns_resolv_conf, start_mariadb,
                                                        start_redis, start_http_app, start_tcp_listener,
                                                        start_receiver, tmpfs, request, workdirs):
    ns = make_netns("vg")
    netns_resolv_conf(ns, "nameserver 127.0.0.1\n")
    ns.iptables("-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP")  # a resolver that never answers
    dropped_port = free_port(netns=ns)
    ns.block(dropped_port, "drop")
    refused_port = free_port(netns=ns)
    db = start_mariadb(netns=ns)
    redis = start_redis(netns=ns)
    app = start_http_app(netns=ns, body="ok")
    silent = start_tcp_listener(netns=ns, mode="silent")
    receiver = start_receiver(netns=ns)

    first = checks(db, redis, app, silent.port, dropped_port, refused_port, tmpfs)
    d = workdirs.new("healthd-vg")
    hooks = alerts(receiver, dropped_port, os.path.join(d, "spool"))
    hd = ValgrindHealthd({"defaults": SLOW, "checks": first, "alerts": hooks}, d, ns, plain_build())
    request.addfinalizer(lambda: hd.kill() if hd.running else None)
    hd.start()
    wait_all_reported(hd, [c["name"] for c in first], 20)
    h = health(hd)
    for name, kind in (("db", "ok"), ("db-persistent", "ok"), ("cache", "ok"), ("app", "ok"), ("data", "ok"),
                       ("tcp-refused", "refused"), ("tcp-dropped", "timeout"), ("db-silent", "timeout"),
                       ("dns-dropped", "timeout"), ("dns-closed", "refused")):
        assert h[name]["kind"] == kind, (name, h[name])
    assert h["tcp-dropped"]["phase"] == "connect" and h["dns-dropped"]["phase"] == "request", h
    # /metrics answers with a reference to its cached block: two scrapes, the second after new results, so that
    # a block a reply still holds outlives its replacement, under memcheck
    for _ in range(2):
        status, _, text = hd.get("/metrics", timeout=10.0)
        assert status == 200 and b'healthd_check_failures_total{check="tcp-dropped",kind="timeout",phase="connect"}' in text
        time.sleep(2)
    dropped_since = h["tcp-dropped"]["since"]
    app.set(status=500)  # a regression: alerts go out (the DROPped webhook keeps retrying)
    receiver.wait_for(timeout=10, what="an alert at the receiver")
    app.set(status=200)
    time.sleep(4)

    # Reload 1: tcp-refused removed, app changed, cache2 added, the rest unchanged.
    second = [c for c in first if c["name"] != "tcp-refused"]
    second = [dict(c, expect_body="o") if c["name"] == "app" else c for c in second]
    second.append({"name": "cache2", "type": "redis", "host": "127.0.0.1", "port": redis.port})
    hd.write_config({"defaults": SLOW, "checks": second, "alerts": hooks})
    hd.signal(signal.SIGHUP)
    wait_all_reported(hd, ["cache2", "app"], 15)
    time.sleep(5)

    # Reload 2: the silent ones removed (a mysql login may be draining), disk and db changed, a tcp check added.
    third = [c for c in second if c["name"] not in ("db-silent", "cache-silent")]
    third = [dict(c, timeout_ms=1100) if c["name"] in ("data", "db") else c for c in third]
    third = [dict(c, expect_answers=["10.0.13.2"]) if c["name"] == "dns-closed" else c for c in third]
    third.append({"name": "tcp-db", "type": "tcp", "host": "127.0.0.1", "port": db.port})
    hd.write_config({"defaults": SLOW, "checks": third, "alerts": hooks})
    hd.signal(signal.SIGHUP)
    wait_all_reported(hd, ["tcp-db", "db", "data", "dns-closed"], 15)
    time.sleep(5)

    h = health(hd)
    assert sorted(h) == sorted(c["name"] for c in third)
    assert h["tcp-dropped"]["since"] == dropped_since, "an unchanged check kept its state over both reloads"
    log = hd.log_current()
    for line in ("check tcp-refused: removed", "check app: changed, restarted", "check cache2: added",
                 "check db-silent: removed", "check data: changed, restarted", "check tcp-db: added",
                 "check dns-closed: changed, restarted"):
        assert line in log, line

    status = hd.stop(timeout=30)
    report = open(hd.valgrind_log).read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    assert errors is not None, "no valgrind summary; healthd log:\n" + hd.log_tail()
    assert int(errors.group(1)) == 0, report
    definite = re.search(r"definitely lost: ([\d,]+) bytes", report)
    assert definite is None or definite.group(1) == "0", report
    assert status == 0, hd.log_tail()
