"""healthd reports on itself in /metrics: the last configuration load (and the unit's ExecReload, which fails on a
refused file), the admin and overall state, deliveries per webhook, and the standard process_* metrics read from
/proc; promtool accepts the whole exposition."""

import os
import re
import shlex
import signal
import time

from harness import REPO, run_healthd, wait_until
from harness.healthd import healthd_bin
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check
from test_metrics import parse_exposition, promtool_check, scrape, value

UNIT = os.path.join(REPO, "systemd", "healthd.service")


def samples_of(hd):
    text = scrape(hd)
    promtool_check(text)
    return parse_exposition(text)[0]


def exec_reload_command(hd):
    """The unit's ExecReload, run against this test's daemon (its binary and admin socket)."""
    with open(UNIT) as f:
        line = next(l for l in f if l.startswith("ExecReload="))
    argv = shlex.split(line[len("ExecReload="):])
    assert argv[0] == "/usr/local/sbin/healthd" and argv[1:] == ["ctl", "reload"], argv
    return [healthd_bin(), "ctl", "--socket", hd.admin_socket, "reload"]


def test_reload_state_admin_and_overall_gauges_and_exec_reload(start_healthd, start_tcp_listener):
    db = start_tcp_listener()
    t_start = time.time()
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=200, timeout_ms=150, shutdown_grace_ms=3000))
    wait_until(lambda: hd.json("/health/db")[1]["status"] == "up", 5, what="db up")
    s = samples_of(hd)
    assert value(s, "healthd_config_last_reload_successful") == 1
    started_ok = value(s, "healthd_config_last_reload_success_timestamp_seconds")
    assert t_start - 1 <= started_ok <= time.time(), started_ok
    assert value(s, "healthd_overall_up") == 1 and value(s, "healthd_overall_state", state="up") == 1
    assert [value(s, "healthd_admin_state", state=m) for m in ("ready", "drain", "maint")] == [1, 0, 0]

    # A refused file: the unit's ExecReload exits non-zero (systemctl reload fails), the gauge says 0.
    good = dict(hd.config)
    bad = dict(good, checks=[{"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 70000}])
    hd.write_config(bad)
    cmd = exec_reload_command(hd)
    import subprocess
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    print("ExecReload on a refused file: exit %d: %s" % (cp.returncode, cp.stderr.strip()))
    assert cp.returncode == 1 and "reload refused" in cp.stderr and "65535" in cp.stderr, cp
    s = samples_of(hd)
    assert value(s, "healthd_config_last_reload_successful") == 0
    assert value(s, "healthd_config_last_reload_success_timestamp_seconds") == started_ok

    # SIGHUP with the bad file: still 0. Then a good file through ExecReload: 1, and a newer timestamp.
    hd.signal(signal.SIGHUP)
    wait_until(lambda: hd.log().count("reload refused") >= 2, 5, what="the SIGHUP refusal")
    assert value(samples_of(hd), "healthd_config_last_reload_successful") == 0
    hd.write_config(good)
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert cp.returncode == 0 and cp.stdout.startswith("reloaded: "), cp
    s = samples_of(hd)
    assert value(s, "healthd_config_last_reload_successful") == 1
    assert value(s, "healthd_config_last_reload_success_timestamp_seconds") > started_ok

    # The admin state, one-hot; the overall state follows the dependencies, not the admin state.
    assert run_healthd(["ctl", "--socket", hd.admin_socket, "drain"])[0] == 0
    s = samples_of(hd)
    assert [value(s, "healthd_admin_state", state=m) for m in ("ready", "drain", "maint")] == [0, 1, 0]
    assert value(s, "healthd_overall_up") == 1
    db.stop()
    wait_until(lambda: value(samples_of(hd), "healthd_overall_up") == 0, 5, what="overall down")
    s = samples_of(hd)
    assert [value(s, "healthd_overall_state", state=x) for x in ("up", "degraded", "down")] == [0, 0, 1]
    assert value(s, "healthd_stopping") == 0

    # process_*: what /proc says about this very process
    pid = hd.pid
    s = samples_of(hd)
    fds = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/status" % pid) as f:
        rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))
    with open("/proc/%d/limits" % pid) as f:
        max_fds = int(re.search(r"^Max open files\s+(\d+)", f.read(), re.M).group(1))
    print("process_open_fds %d (ls /proc: %d), rss %d (VmRSS %d kB), max_fds %d, start %.2f, cpu %.2f s"
          % (value(s, "process_open_fds"), fds, value(s, "process_resident_memory_bytes"), rss_kb,
             value(s, "process_max_fds"), value(s, "process_start_time_seconds"), value(s, "process_cpu_seconds_total")))
    assert abs(value(s, "process_open_fds") - fds) <= 2
    assert 0.5 * rss_kb * 1024 <= value(s, "process_resident_memory_bytes") <= 2 * rss_kb * 1024
    assert value(s, "process_max_fds") == max_fds
    assert value(s, "process_virtual_memory_bytes") >= value(s, "process_resident_memory_bytes")
    assert t_start - 2 <= value(s, "process_start_time_seconds") <= time.time()
    assert value(s, "process_cpu_seconds_total") >= 0

    hd.signal(signal.SIGTERM)  # scrape during the grace
    wait_until(lambda: value(samples_of(hd), "healthd_stopping") == 1, 3, what="stopping gauge")


def test_per_webhook_counters(workdirs, start_healthd, start_tcp_listener, start_receiver):
    app = start_tcp_listener()
    ok, refusing = start_receiver(), start_receiver(mode="status:400")
    cfg = config([tcp_check("app", app.port)], interval_ms=200, timeout_ms=150,
                 alerts={"spool_dir": os.path.join(workdirs.new("spool"), "spool"), "min_gap_s": 0,
                         "repeat_interval_s": 0,
                         "webhooks": [{"url": ok.url + "/secret-token-path"},
                                      {"url": refusing.url + "/other-secret"}]})
    hd = start_healthd(cfg)
    wait_until(lambda: hd.json("/health/app")[1]["status"] == "up", 5, what="app up")
    app.stop()
    wait_until(lambda: ok.posts() and refusing.posts(), 5, what="both webhooks tried")
    labels = {"ok": "http://127.0.0.1:%d (generic)" % ok.port, "refusing": "http://127.0.0.1:%d (generic)" % refusing.port}

    def counts():
        s = samples_of(hd)
        return {k: {f: value(s, "healthd_alert_webhook_%s" % f, webhook=label)
                    for f in ("deliveries_total", "failures_total", "rejections_total", "dropped_total",
                              "queue_depth")}
                for k, label in labels.items()}
    # a 400 is a webhook to fix: the event is kept (queue_depth 1) and retried, each refusal a rejection
    got = wait_until(lambda: (lambda c: c if c["ok"]["deliveries_total"] == 1 and
                              c["refusing"]["rejections_total"] >= 2 else None)(counts()), 5, what="per-webhook counts")
    print("per webhook: %s" % got)
    assert got["ok"] == {"deliveries_total": 1, "failures_total": 0, "rejections_total": 0, "dropped_total": 0,
                         "queue_depth": 0}
    assert got["refusing"]["deliveries_total"] == 0 and got["refusing"]["dropped_total"] == 0
    assert got["refusing"]["queue_depth"] == 1 and got["refusing"]["failures_total"] >= 2
    assert "secret" not in scrape(hd)  # the label is the URL without its path
