"""The push check: reports with `healthd ctl push NAME ok|fail [--detail TEXT]` over the admin
socket; silence past ttl_ms is a timeout in human units; the last report survives a restart (neither
resetting nor tripping the TTL); pending until the first report, then down after ttl_ms; a push for an
unknown check or a check of another type is a ctl error."""

import json
import os
import time

from harness import run_healthd, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, parse_iso, tcp_check, wait_check


def push(hd, *args):
    return run_healthd(["ctl", "--socket", hd.admin_socket, "push"] + list(args))


def test_ok_then_fail_with_detail_then_silence(start_healthd):
    hd = start_healthd(config([{"name": "backup", "type": "push", "ttl_ms": 2000}], interval_ms=200,
                              timeout_ms=100, rise=2, fall=3))
    rc, out, err = push(hd, "backup", "ok", "--detail", "nightly dump, 3.2 GB")
    assert rc == 0, (out, err)
    assert "backup ok recorded" in out
    c = wait_check(hd, "backup", lambda c: c["status"] == "up", timeout=2)
    assert c["kind"] == "ok" and c["detail"].startswith("reported ok ") and \
        c["detail"].endswith(": nightly dump, 3.2 GB"), c
    assert c["target"] == "a report every 2 s"

    # fail: down at the next attempt, though defaults say fall 3: one report is one fact, so a push
    # check counts reports (rise/fall 1) unless the check itself sets rise/fall. Control characters
    # are not kept.
    rc, out, err = push(hd, "backup", "fail", "--detail", "pg_dump: disk full\x1b[31m")
    assert rc == 0, err
    c = wait_check(hd, "backup", lambda c: c["status"] == "down", timeout=2)
    assert c["kind"] == "error", c
    assert c["detail"].startswith("reported fail ") and "pg_dump: disk full [31m" in c["detail"], c
    assert "\x1b" not in c["detail"]

    rc, out, err = push(hd, "backup", "ok")
    assert rc == 0, err
    wait_check(hd, "backup", lambda c: c["status"] == "up", timeout=2)
    # silence: down, kind timeout, in human units
    c = wait_check(hd, "backup", lambda c: c["status"] == "down", timeout=4)
    print(c["detail"])
    assert c["kind"] == "timeout", c
    assert c["detail"].startswith("no report for 2"), c
    assert ", expected every 2 s (the last, at " in c["detail"] and c["detail"].endswith(", was ok)"), c
    _, _, text = hd.get("/metrics")
    assert b'healthd_check_failures_total{check="backup",kind="timeout",phase="response"}' in text
    assert c["phase"] == "response", c  # waiting for the report


def test_pending_until_the_first_report_then_down_after_ttl(start_healthd):
    hd = start_healthd(config([{"name": "cron", "type": "push", "ttl_ms": 1500},
                               tcp_check("other", 1)], interval_ms=200, timeout_ms=100))
    t0 = time.monotonic()
    status, c = hd.json("/health/cron")
    assert c["status"] == "pending", c
    c = wait_check(hd, "cron", lambda c: c["status"] == "down", timeout=4)
    waited = time.monotonic() - t0
    print("pending for %.1f s, then: %s" % (waited, c["detail"]))
    assert c["kind"] == "timeout" and "since the check was set up, expected every 1.5 s" in c["detail"], c
    assert waited > 1.0, "down after %.1f s, before ttl_ms" % waited


def test_last_report_survives_a_restart(start_healthd):
    ttl = 4000
    hd = start_healthd(config([{"name": "job", "type": "push", "ttl_ms": ttl}], interval_ms=200,
                              timeout_ms=100))
    rc, out, err = push(hd, "job", "ok", "--detail", "ran")
    assert rc == 0, err
    pushed = time.time()
    wait_check(hd, "job", lambda c: c["status"] == "up", timeout=2)
    with open(os.path.join(hd.state_dir, "push-job.json")) as f:
        saved = json.load(f)
    assert saved["report"]["result"] == "ok" and saved["report"]["detail"] == "ran", saved
    at_ms = saved["report"]["at_ms"]

    hd.stop()
    time.sleep(1.5)
    hd.start()
    # Not reset to pending: the first result after the restart is up, from the saved report.
    status, c = hd.json("/health/job")
    c = wait_check(hd, "job", lambda c: c["status"] != "pending", timeout=2)
    assert c["status"] == "up" and c["detail"].endswith(": ran"), c
    # Not restarted either: down ttl after the report, not ttl after the restart.
    c = wait_check(hd, "job", lambda c: c["status"] == "down", timeout=ttl / 1000 + 3)
    down_at = parse_iso(c["since"]).timestamp()
    print("report at %.3f, restart 1.5 s later, down %.2f s after the report (ttl %d ms): %s"
          % (at_ms / 1000, down_at - at_ms / 1000, ttl, c["detail"]))
    assert c["kind"] == "timeout"
    assert down_at - at_ms / 1000 < ttl / 1000 + 1.0, "the TTL restarted with healthd"
    assert abs(pushed - at_ms / 1000) < 1.0


def test_push_errors(start_healthd):
    hd = start_healthd(config([{"name": "job", "type": "push", "ttl_ms": 60000}, tcp_check("web", 1)],
                              interval_ms=200, timeout_ms=100))
    rc, out, err = push(hd, "nope", "ok")
    assert rc == 1 and 'no check named "nope"' in err, (rc, err)
    rc, out, err = push(hd, "web", "ok")
    assert rc == 1 and 'check "web" is of type tcp, not push' in err, (rc, err)
    rc, out, err = push(hd, "job", "maybe")
    assert rc == 2 and "usage" in err, (rc, err)
    rc, out, err = push(hd, "job")
    assert rc == 2, (rc, err)
    rc, out, err = run_healthd(["ctl", "--socket", hd.admin_socket, "drain", "--detail", "x"])
    assert rc == 2 and "--detail is for push only" in err, (rc, err)
    # No file was written for the refused pushes.
    assert not os.path.exists(os.path.join(hd.state_dir, "push-nope.json"))
    assert not os.path.exists(os.path.join(hd.state_dir, "push-web.json"))
    status, c = hd.json("/health/job")
    assert c["status"] == "pending", c


def test_healthd_check_reads_the_saved_reports_and_writes_nothing(start_healthd):
    hd = start_healthd(config([{"name": "job", "type": "push", "ttl_ms": 60000},
                               {"name": "never", "type": "push", "ttl_ms": 60000}],
                              interval_ms=200, timeout_ms=100))
    rc, out, err = push(hd, "job", "ok", "--detail", "done")
    assert rc == 0, err
    never_file = os.path.join(hd.state_dir, "push-never.json")
    wait_until(lambda: os.path.exists(never_file) or None, timeout=3, what="when 'never' was set up, saved")
    hd.stop()
    before = sorted(os.listdir(hd.state_dir))
    os.unlink(os.path.join(hd.state_dir, "push-never.json"))
    rc, out, err = run_healthd(["check", "--config", hd.config_path, "--json"])
    snap = {c["name"]: c for c in json.loads(out)["checks"]}
    print(snap["job"]["detail"], "|", snap["never"]["detail"])
    assert snap["job"]["status"] == "up" and snap["job"]["detail"].endswith(": done"), snap
    assert snap["never"]["status"] == "down" and snap["never"]["kind"] == "timeout", snap
    assert snap["never"]["detail"] == "no report yet (expected every 60 s)", snap
    assert sorted(os.listdir(hd.state_dir)) == sorted(f for f in before if f != "push-never.json"), \
        "healthd check wrote to the state directory"
