"""Alerts: regression, update and recovery events delivered to real webhook receivers and a real
Alertmanager 0.25, through outages, SIGKILL, error answers, a hanging receiver and a flapping target."""

import calendar
import json
import os
import re
import time

import pytest

from harness import wait_until

EVENT_FIELDS = ("id", "event", "time", "host", "source_addr", "check", "type", "target", "peer",
                "kind", "detail", "previous_kind", "since", "down_for_s", "critical", "summary",
                "health_url", "healthd_version")


def config(workdirs, checks, webhooks, **alerts):
    """A healthd config with fast checks and fast retries, for tests."""
    a = {"spool_dir": os.path.join(workdirs.new("spool"), "spool"), "webhooks": webhooks,
         "min_gap_s": 0, "repeat_interval_s": 0, "retry_initial_ms": 50, "retry_max_ms": 300}
    a.update(alerts)
    return {"node_name": "be-test",
            "defaults": {"interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 1},
            "checks": checks, "alerts": a}


def tcp_check(name, port):
    return {"name": name, "type": "tcp", "host": "127.0.0.1", "port": port}


def wait_state(hd, check, state, timeout=5):
    def current():
        status, body = hd.json("/health/" + check)
        return body and body.get("status") == state
    wait_until(current, timeout, what="check %s %s" % (check, state))


def events(rx, path=None):
    """The events the receiver got (generic format), in arrival order."""
    return [p["body"] for p in rx.posts()
            if isinstance(p["body"], dict) and "event" in p["body"]
            and (path is None or p["path"] == path)]


def wait_events(rx, pred, timeout=8, what="events"):
    box = {}

    def check():
        box["e"] = events(rx)
        return pred(box["e"])
    wait_until(check, timeout, what=what)
    return box["e"]


def by_event(evs, name):
    return [e for e in evs if e["event"] == name]


def test_regression_update_recovery_carry_every_field(workdirs, make_netns, start_tcp_listener,
                                                      start_receiver, start_healthd):
    # In a namespace: a DROP (timeout), then a REJECT (refused) while still down, then open again.
    ns = make_netns("alerts")
    lst = start_tcp_listener(netns=ns)
    rx = start_receiver(netns=ns)
    token = os.path.join(workdirs.new("token"), "token")
    with open(token, "w") as f:
        f.write("t0ken\n")
    webhook = {"url": rx.url + "/hook", "timeout_ms": 1000,
               "headers": {"Authorization": {"file": token, "prefix": "Bearer "}, "X-Team": "db"}}
    cfg = config(workdirs, [tcp_check("db", lst.port)], [webhook])
    cfg["defaults"].update(interval_ms=300, timeout_ms=200)
    hd = start_healthd(cfg, netns=ns)
    wait_state(hd, "db", "up")

    ns.block(lst.port, "drop")
    evs = wait_events(rx, lambda e: by_event(e, "regression"), what="the regression")
    reg = by_event(evs, "regression")[0]
    ns.block(lst.port, "reset")    # the DROP rule came first: remove it, the REJECT now answers
    ns.unblock(lst.port, "drop")
    evs = wait_events(rx, lambda e: by_event(e, "update"), what="the update")
    upd = by_event(evs, "update")[0]
    ns.unblock(lst.port, "reset")
    evs = wait_events(rx, lambda e: by_event(e, "recovery"), what="the recovery")
    rec = by_event(evs, "recovery")[0]

    for e in (reg, upd, rec):
        missing = [k for k in EVENT_FIELDS if k not in e]
        assert not missing, (missing, e)
        assert e["host"] == "be-test"
        assert e["check"] == "db" and e["type"] == "tcp"
        assert e["target"] == "127.0.0.1:%d" % lst.port
        assert e["source_addr"] == "127.0.0.1"
        assert e["healthd_version"]
        assert e["health_url"].endswith("/health/db")
        assert e["critical"] is True
    assert len({reg["id"], upd["id"], rec["id"]}) == 3
    assert (reg["kind"], reg["previous_kind"]) == ("timeout", "ok")
    assert "connect 127.0.0.1:%d" % lst.port in reg["detail"]
    assert re.fullmatch(r"traffic to 127\.0\.0\.1:%d silently dropped since \d\d:\d\d:\d\d "
                        r"\(firewall DROP\?\)" % lst.port, reg["summary"]), reg["summary"]
    assert (upd["kind"], upd["previous_kind"]) == ("refused", "timeout")
    assert upd["since"] == reg["since"]
    assert "refused now" in upd["summary"] and "was: silently dropped" in upd["summary"]
    assert (rec["kind"], rec["previous_kind"]) == ("ok", "refused")
    assert rec["since"] == reg["since"]
    assert rec["down_for_s"] >= 0 and "healthy again after" in rec["summary"]
    # events of one check arrive in order, once each
    assert [e["event"] for e in events(rx)] == ["regression", "update", "recovery"]
    # the request: the header read from the file, the event id for de-duplication
    post = [p for p in rx.posts() if p["body"].get("id") == reg["id"]][0]
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["x-team"] == "db"
    assert headers["x-healthd-event-id"] == reg["id"]
    assert headers["content-type"] == "application/json"
    # one structured log line per event, with the same fields
    log = hd.log()
    line = [l for l in log.splitlines() if "alert event=regression delivery=queued:1 id=%s" % reg["id"] in l]
    assert line, log[-3000:]
    assert "check=db" in line[0] and "kind=timeout" in line[0] and "source_addr=127.0.0.1" in line[0]
    assert 'summary="traffic to 127.0.0.1:%d silently dropped' % lst.port in line[0]


def test_alertmanager_receives_and_resolves(workdirs, start_tcp_listener, start_receiver,
                                            start_alertmanager, start_healthd):
    rx = start_receiver()
    am = start_alertmanager(rx.url)
    lst = start_tcp_listener()
    db = tcp_check("db", lst.port)
    db.update(labels={"team": "dba", "service": "orders"},
              runbook_url="https://wiki.example.com/runbooks/db?x=1")
    cfg = config(workdirs, [db],
                 [{"url": am.url, "format": "alertmanager", "timeout_ms": 2000, "resend_interval_s": 1}],
                 labels={"env": "prod", "team": "platform"})
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()

    def am_notifications(status):
        return [a for p in rx.posts() if p["path"] == "/alertmanager"
                for a in p["body"]["alerts"] if a["status"] == status]

    wait_until(lambda: am_notifications("firing"), 15, what="Alertmanager's firing notification")
    alert = am_notifications("firing")[0]
    instance = hd.url("").split("//", 1)[1].rstrip("/")
    # healthd's own labels, then the configured ones: the check's win over the section's
    assert alert["labels"] == {"alertname": "HealthdCheckDown", "instance": instance, "node": "be-test",
                               "job": "healthd", "check": "db", "kind": "refused", "severity": "critical",
                               "env": "prod", "team": "dba", "service": "orders"}
    ann = alert["annotations"]
    assert ann["summary"].startswith("connections to 127.0.0.1:%d refused since" % lst.port)
    assert "Connection refused" in ann["detail"]
    assert re.fullmatch(r"tcp check db on be-test \(%s\) to 127\.0\.0\.1:%d from 127\.0\.0\.1: .*"
                        r"Connection refused.*\. Down since \d\d:\d\d:\d\d UTC.*\." % (re.escape(instance), lst.port),
                        ann["description"]), ann["description"]
    assert ann["runbook_url"] == "https://wiki.example.com/runbooks/db?x=1"
    assert alert["generatorURL"] == hd.url("/health/db")
    active = [a for a in am.alerts() if a["labels"].get("check") == "db"]
    assert active and active[0]["status"]["state"] == "active"
    assert active[0]["annotations"]["runbook_url"] == ann["runbook_url"]

    # While down, healthd re-posts the alert every resend_interval_s with endsAt 4 periods ahead, so that
    # Alertmanager keeps it firing; Alertmanager itself does the reminding (its repeat_interval). Without
    # the re-posts, Alertmanager would resolve the alert on its own 4 s after the last one.
    resends = 'healthd_alert_webhook_resends_total{webhook="%s (alertmanager)"}' % am.url
    time.sleep(7)
    assert am_notifications("resolved") == [], "Alertmanager resolved an alert that is still down"
    active = [a for a in am.alerts() if a["labels"].get("check") == "db"]
    assert active and active[0]["status"]["state"] == "active"
    assert metric(hd, resends) >= 4, metric(hd, resends)
    assert "alert event=reminder" not in hd.log()  # re-posts are not reminders: no log line each second

    lst.start()
    wait_until(lambda: am_notifications("resolved"), 15, what="Alertmanager's resolved notification")
    resolved = am_notifications("resolved")[0]
    assert resolved["labels"]["check"] == "db" and resolved["labels"]["kind"] == "refused"
    assert resolved["labels"]["team"] == "dba"
    after = metric(hd, resends)
    time.sleep(2)
    assert metric(hd, resends) == after, "re-posts go on after the recovery"


def test_reminders_follow_each_webhooks_repeat_interval(workdirs, start_tcp_listener, start_receiver,
                                                        start_healthd):
    rx = start_receiver()
    lst = start_tcp_listener()
    hooks = [{"url": rx.url + "/every-1s", "repeat_interval_s": 1},
             {"url": rx.url + "/never", "repeat_interval_s": 0},
             {"url": rx.url + "/global"}]  # inherits alerts.repeat_interval_s
    cfg = config(workdirs, [tcp_check("db", lst.port)], hooks, repeat_interval_s=2)
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()
    wait_events(rx, lambda e: len(by_event(e, "regression")) == 3, what="the regression on every webhook")
    time.sleep(6.5)
    lst.start()
    wait_events(rx, lambda e: len(by_event(e, "recovery")) == 3, what="the recovery on every webhook")

    def reminders(path):
        return len(by_event(events(rx, path), "reminder"))
    fast, never, glob = reminders("/every-1s"), reminders("/never"), reminders("/global")
    assert never == 0
    assert 5 <= fast <= 8, fast
    assert 2 <= glob <= 4, glob
    for path in ("/every-1s", "/never", "/global"):
        assert [e["event"] for e in events(rx, path)][0] == "regression"
        assert [e["event"] for e in events(rx, path)][-1] == "recovery"


def test_outage_and_sigkill_lose_nothing(workdirs, start_tcp_listener, start_receiver, start_healthd):
    rx = start_receiver()
    rx.stop()  # the webhook is down for the whole story; the port stays ours
    l1, l2 = start_tcp_listener(), start_tcp_listener()
    cfg = config(workdirs, [tcp_check("c1", l1.port), tcp_check("c2", l2.port)],
                 [{"url": rx.url + "/hook", "timeout_ms": 1000, "connect_timeout_ms": 500}])
    hd = start_healthd(cfg)

    def spooled():
        """Events on disk for good (renamed into place; tmp-* is a write in progress)."""
        spool = cfg["alerts"]["spool_dir"]
        queues = [d for d in os.listdir(spool) if d.startswith("q-")]
        return sum(len([f for f in os.listdir(os.path.join(spool, q)) if re.fullmatch(r"\d{20}\.json", f)])
                   for q in queues)

    def flap(times):
        for _ in range(times):
            wait_state(hd, "c1", "up")
            wait_state(hd, "c2", "up")
            l1.stop()
            l2.stop()
            wait_state(hd, "c1", "down")
            wait_state(hd, "c2", "down")
            l1.start()
            l2.start()
        wait_state(hd, "c1", "up")
        wait_state(hd, "c2", "up")

    flap(3)
    wait_until(lambda: spooled() == 12, 5, what="12 events in the spool")
    hd.kill()  # SIGKILL: nothing is flushed at exit
    hd.start()
    flap(2)
    wait_until(lambda: spooled() == 20, 5, what="20 events in the spool")
    assert rx.posts() == []
    assert "alerts: webhook http://127.0.0.1:%d (generic): 12 undelivered events read back" \
        % rx.port in hd.log()

    rx.start()
    evs = wait_events(rx, lambda e: len(e) >= 20, timeout=15, what="20 events delivered")
    ids = [e["id"] for e in evs]
    assert len(ids) == 20 and len(set(ids)) == 20, ids
    for name in ("c1", "c2"):
        mine = [e for e in evs if e["check"] == name]
        assert [e["event"] for e in mine] == ["regression", "recovery"] * 5
        assert [e["time"] for e in mine] == sorted(e["time"] for e in mine)
    wait_until(lambda: spooled() == 0, 5, what="an empty spool")
    time.sleep(0.5)  # nothing more comes: each id exactly once
    assert len(events(rx)) == 20


def test_recovery_while_restarting_is_not_lost(workdirs, start_tcp_listener, start_receiver,
                                               start_healthd):
    rx = start_receiver()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx.url + "/hook"}])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()
    reg = by_event(wait_events(rx, lambda e: by_event(e, "regression")), "regression")[0]
    hd.kill()
    lst.start()  # recovers while healthd is away: after the start it is up at once (pending -> up)
    hd.start()
    rec = by_event(wait_events(rx, lambda e: by_event(e, "recovery")), "recovery")[0]
    assert rec["since"] == reg["since"] and rec["previous_kind"] == "refused"


def test_5xx_retried_then_delivered(workdirs, start_tcp_listener, start_receiver, start_healthd):
    rx = start_receiver(mode="status:503")
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx.url + "/hook"}])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()
    evs = wait_events(rx, lambda e: len(e) >= 3, what="three attempts of the regression")
    assert {e["id"] for e in evs} == {evs[0]["id"]} and evs[0]["event"] == "regression"
    assert "HTTP 503" in hd.log() and "retrying in" in hd.log()
    rx.stop()
    rx.start(mode="ok")
    wait_until(lambda: "event %s (regression of check db) delivered: HTTP 200 (after retries)"
               % evs[0]["id"] in hd.log(), 5, what="the regression delivered")


def metric(hd, name):
    status, _, body = hd.get("/metrics")
    assert status == 200
    line = [l for l in body.decode().splitlines() if l.startswith(name + " ")]
    return float(line[0].rsplit(None, 1)[1]) if line else None


@pytest.mark.parametrize("refusal", [302, 400, 404])
def test_a_redirect_or_4xx_is_a_configuration_error_kept_and_retried_never_dropped(
        workdirs, start_tcp_listener, start_receiver, start_healthd, refusal):
    """A receiver that redirects (302) or refuses the request (400, 404) is misconfigured; the events wait for
    the fix, logged as errors, counted as rejections; none is dropped."""
    rx = start_receiver(mode="status:%d" % refusal)
    lsts = [start_tcp_listener() for _ in range(3)]
    checks = [tcp_check("db%d" % i, lst.port) for i, lst in enumerate(lsts)]
    hd = start_healthd(config(workdirs, checks, [{"url": rx.url + "/hook"}]))
    for c in checks:
        wait_state(hd, c["name"], "up")
    for lst in lsts:  # three regressions, each refused by the receiver for a while
        lst.stop()
    for c in checks:
        wait_state(hd, c["name"], "down")
    wait_until(lambda: sum(1 for l in hd.log().splitlines() if "HTTP %d" % refusal in l and "kept, retrying" in l)
               >= 6, 10, what="refused attempts, retried")
    refused = [l for l in hd.log().splitlines() if "HTTP %d" % refusal in l and "kept, retrying" in l]
    print("%d attempts refused with HTTP %d; first: %s" % (len(refused), refusal, refused[0]))
    assert " error: " in refused[0]
    assert ("a redirect, which healthd does not follow" if refusal < 400 else "the receiver refuses the request") \
        in refused[0]
    assert '{"status":"error","code":%d}' % refusal in refused[0]  # the response body, for whoever reads the log
    assert metric(hd, "healthd_alert_delivery_rejections_total") >= 6
    assert metric(hd, "healthd_alert_deliveries_dropped_total") == 0

    rx.stop()
    rx.clear()
    rx.start(mode="ok")  # the receiver fixed: every event arrives, none lost
    evs = wait_events(rx, lambda e: len(by_event(e, "regression")) >= 3, timeout=10, what="three regressions")
    print("after the fix: %d regressions delivered" % len(by_event(evs, "regression")))
    assert sorted(e["check"] for e in by_event(evs, "regression")) == ["db0", "db1", "db2"]
    assert "dropped" not in hd.log()
    assert metric(hd, "healthd_alert_deliveries_dropped_total") == 0


@pytest.mark.parametrize("error,advice", [
    ("channel_is_archived", "the channel is archived: unarchive it, or create a webhook for another channel"),
    ("something_new", "Slack refuses the request: fix url (a reload applies it)")])
def test_a_slack_error_is_logged_with_what_to_do_and_kept(workdirs, start_tcp_listener, start_receiver,
                                                          start_healthd, error, advice):
    """Slack answers a refused incoming-webhook post with 4xx and a bare error string: the log line gives the
    string and what to do about it; the event is kept and retried, and arrives once the webhook is fixed."""
    rx = start_receiver(mode="text:410:" + error)
    lst = start_tcp_listener()
    hd = start_healthd(config(workdirs, [tcp_check("db", lst.port)],
                              [{"url": rx.url + "/services/T0/B0/secret", "format": "slack"}]))
    wait_state(hd, "db", "up")
    lst.stop()
    wait_until(lambda: "kept, retrying" in hd.log(), 10, what="a refused Slack post")
    line = [l for l in hd.log().splitlines() if "kept, retrying" in l][0]
    assert "HTTP 410, Slack error: %s: %s;" % (error, advice) in line, line
    assert "secret" not in hd.log()  # a Slack URL's path is its secret
    assert metric(hd, "healthd_alert_deliveries_dropped_total") == 0
    rx.stop()
    rx.clear()
    rx.start(mode="ok")
    wait_until(lambda: [p for p in rx.posts() if "*DOWN*" in p["body"]["text"] and "`db`" in p["body"]["text"]],
               10, what="the Slack message after the fix")


def test_hanging_receiver_times_out_while_health_answers(workdirs, start_tcp_listener,
                                                         start_receiver, start_healthd):
    rx = start_receiver(mode="hang")
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)],
                 [{"url": rx.url + "/hook", "timeout_ms": 500, "connect_timeout_ms": 200}])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()
    deadline = time.monotonic() + 10
    while len(events(rx)) < 2 and time.monotonic() < deadline:
        status, _, _ = hd.get("/health", timeout=1.0)  # the loop never waits for the webhook
        assert status in (200, 503)
        time.sleep(0.05)
    evs = events(rx)
    assert len(evs) >= 2 and evs[0]["id"] == evs[1]["id"]
    assert re.search(r"attempt 1: Operation timed out after \d+ milliseconds", hd.log()), hd.log()[-2000:]
    rx.stop()
    rx.start(mode="ok")
    wait_until(lambda: "(regression of check db) delivered" in hd.log(), 5, what="delivered at last")


def test_flapping_target_respects_min_gap(workdirs, start_tcp_listener, start_receiver,
                                          start_healthd):
    gap = 3
    rx = start_receiver()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx.url + "/hook"}],
                 min_gap_s=gap)
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    downs = 0
    for _ in range(4):
        lst.stop()
        wait_state(hd, "db", "down")
        downs += 1
        lst.start()
        wait_state(hd, "db", "up")
    lst.stop()  # and it stays down: the held regression goes out once the gap has passed
    downs += 1
    wait_state(hd, "db", "down")
    evs = wait_events(rx, lambda e: e and e[-1]["event"] == "regression" and len(by_event(e, "regression")) >= 2,
                      timeout=gap + 5, what="the held regression")
    regs = by_event(evs, "regression")
    assert len(regs) < downs  # no flood
    assert "held:min_gap_s" in hd.log()
    times = [time_of(e["time"]) for e in regs]
    assert all(b - a >= gap - 0.05 for a, b in zip(times, times[1:])), times
    # never a recovery without its regression
    assert [e["event"] for e in evs] == ["regression", "recovery"] * (len(regs) - 1) + ["regression"]


def time_of(iso):
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + int(iso[20:23]) / 1000.0


def test_spool_bound_drops_oldest(workdirs, start_tcp_listener, start_receiver, start_healthd):
    rx = start_receiver()
    rx.stop()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx.url + "/hook"}],
                 spool_max_bytes=4096)
    hd = start_healthd(cfg)
    for _ in range(4):
        wait_state(hd, "db", "up")
        lst.stop()
        wait_state(hd, "db", "down")
        lst.start()
    wait_state(hd, "db", "up")
    wait_until(lambda: "the queue reached spool_max_bytes" in hd.log(), 5, what="a drop")
    rx.start()
    evs = wait_events(rx, lambda e: e and e[-1]["event"] == "recovery", what="the newest event")
    assert 0 < len(evs) < 8
    assert evs[-1]["event"] == "recovery"
    assert sum(len(json.dumps(e)) for e in evs) <= 4096 + 1024


def queue_name(url, fmt="generic"):
    """The spool subdirectory of a webhook: q-<FNV-1a 64 of "format|url">, as healthd names it."""
    h = 14695981039346656037
    for b in ("%s|%s" % (fmt, url)).encode():
        h = ((h ^ b) * 1099511628211) % 2 ** 64
    return "q-%016x" % h


def test_hung_spool_write_does_not_hold_alerts_back(workdirs, start_tcp_listener, start_receiver,
                                                   start_healthd):
    rx = start_receiver()
    lst = start_tcp_listener()
    url = rx.url + "/hook"
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": url}])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    # The first event's temporary file is a FIFO: the spool thread's open() blocks like a hung disk.
    qdir = os.path.join(cfg["alerts"]["spool_dir"], queue_name(url))
    os.makedirs(qdir, exist_ok=True)
    fifo = os.path.join(qdir, "tmp-%020d.json" % 1)
    os.mkfifo(fifo)
    reader = None
    try:
        lst.stop()
        evs = wait_events(rx, lambda e: by_event(e, "regression"), timeout=6,
                          what="the regression sent from memory")
        assert len(evs) == 1
        assert "the spool has not written event %s" % evs[0]["id"] in hd.log()
        status, _, _ = hd.get("/health", timeout=1.0)
        assert status == 503
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the "disk" answers again
    try:
        wait_until(lambda: "cannot spool event %s" % evs[0]["id"] in hd.log(), 5,
                   what="the spool's late failure logged")
        lst.start()
        evs = wait_events(rx, lambda e: by_event(e, "recovery"), what="the recovery, spooled as usual")
        assert [e["event"] for e in evs] == ["regression", "recovery"]
    finally:
        os.close(reader)


def test_reload_adds_changes_and_removes_webhooks(workdirs, start_tcp_listener, start_receiver,
                                                  start_healthd):
    import signal
    rx1, rx2 = start_receiver(), start_receiver()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx1.url + "/a"}])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")

    cfg["alerts"]["webhooks"] = [{"url": rx1.url + "/a", "headers": {"X-Version": "2"}},
                                 {"url": rx2.url + "/b"}]
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "alerts: reload: webhook http://127.0.0.1:%d (generic) added" % rx2.port
               in hd.log(), 5, what="the reload")
    lst.stop()
    e1 = wait_events(rx1, lambda e: e, what="rx1's regression")
    e2 = wait_events(rx2, lambda e: e, what="rx2's regression")
    assert e1[0]["id"] == e2[0]["id"] and e1[0]["event"] == "regression"
    assert rx1.posts()[0]["headers"].get("X-Version") == "2"

    cfg["alerts"]["webhooks"] = [{"url": rx2.url + "/b"}]
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "alerts: reload: webhook http://127.0.0.1:%d (generic) removed" % rx1.port
               in hd.log(), 5, what="the second reload")
    lst.start()
    wait_events(rx2, lambda e: by_event(e, "recovery"), what="rx2's recovery")
    assert [e["event"] for e in events(rx1)] == ["regression"]


def test_without_alerts_section_transitions_are_logged(workdirs, start_tcp_listener, start_healthd):
    lst = start_tcp_listener()
    hd = start_healthd({"node_name": "be-test",
                        "defaults": {"interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 1},
                        "checks": [tcp_check("db", lst.port)]})
    wait_state(hd, "db", "up")
    lst.stop()
    wait_until(lambda: "alert event=regression delivery=log-only" in hd.log(), 5, what="the regression line")
    lst.start()
    wait_until(lambda: "alert event=recovery delivery=log-only" in hd.log(), 5, what="the recovery line")
    line = [l for l in hd.log().splitlines() if "alert event=regression delivery=log-only" in l][0]
    for field in ("id=", "host=be-test", "check=db", "type=tcp", "target=127.0.0.1:%d" % lst.port,
                  "kind=refused", "previous_kind=ok", "since=", "source_addr=127.0.0.1", 'summary="'):
        assert field in line, (field, line)
    assert hd.running


FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def test_a_wall_clock_step_drops_nothing_queued(workdirs, start_tcp_listener, start_receiver, start_healthd):
    """Events age on the monotonic clock: the wall clock stepping two days forward (NTP after a suspend, an
    operator's date -s) while a webhook is down leaves every queued event to be delivered."""
    step = os.path.join(workdirs.new("faketime"), "offset")
    with open(step, "w") as f:
        f.write("+0d\n")
    # libfaketime moves the wall clock only (CLOCK_REALTIME), re-reading the offset file on every call
    env = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": step, "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    rx = start_receiver(mode="status:503")
    lsts = [start_tcp_listener() for _ in range(4)]
    checks = [tcp_check("db%d" % i, lst.port) for i, lst in enumerate(lsts)]
    hd = start_healthd(config(workdirs, checks, [{"url": rx.url + "/hook"}], spool_max_age_s=3600), env=env)
    for c in checks:
        wait_state(hd, c["name"], "up")
    for lst in lsts:
        lst.stop()
    wait_until(lambda: hd.log().count("alert event=regression delivery=queued") >= 4, 5, what="four queued")
    with open(step, "w") as f:
        f.write("+2d\n")
    n = len(rx.posts())
    wait_until(lambda: len(rx.posts()) >= n + 3, 5, what="attempts after the step")  # the queue looked at again
    rx.stop()
    rx.clear()
    rx.start(mode="ok")
    evs = wait_events(rx, lambda e: len(by_event(e, "regression")) >= 4, timeout=10, what="four regressions")
    stepped = [e["time"] for e in evs if e["time"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))]
    print("after a step of +2 days: %d of 4 queued regressions delivered (times as stamped: %s)"
          % (len(by_event(evs, "regression")), sorted({e["time"][:10] for e in evs})))
    assert sorted(e["check"] for e in by_event(evs, "regression")) == ["db0", "db1", "db2", "db3"]
    assert stepped, "the events were made before the step"
    later = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    assert any(line.startswith(later) for line in hd.log().splitlines()), "the wall clock did not step"
    assert "older than spool_max_age_s" not in hd.log()


def planted_event(check, n):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {"id": "planted-%s-%d" % (check, n), "event": "regression", "time": now, "host": "be-test",
            "source_addr": "127.0.0.1", "check": check, "type": "tcp", "target": "127.0.0.1:1", "peer": "127.0.0.1:1",
            "kind": "refused", "detail": "connect 127.0.0.1:1: Connection refused " + "x" * 300,
            "previous_kind": "ok", "since": now, "down_for_s": 0, "critical": True, "summary": "planted for the test",
            "health_url": "", "healthd_version": "0.2.0"}


def vm_peak_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmPeak:")))


def test_planted_or_damaged_spool_files_are_removed_never_resent_or_blocking(workdirs, start_tcp_listener,
                                                                             start_receiver, start_healthd):
    """A number above 2^64 (or 0), a named pipe, a symbolic link: none is an event healthd wrote. Each is removed
    and logged; the real event beside them is delivered, and new ones sort after it."""
    rx = start_receiver(mode="ok")
    lst = start_tcp_listener()
    url = rx.url + "/hook"
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": url}])
    qdir = os.path.join(cfg["alerts"]["spool_dir"], queue_name(url))
    os.makedirs(qdir)
    outside = os.path.join(workdirs.new("outside"), "secret.json")
    with open(outside, "w") as f:
        json.dump(planted_event("via-symlink", 0), f)
    for name, ev in (("00000000000000000007.json", planted_event("real", 7)),
                     ("99999999999999999999.json", planted_event("above-2^64", 1)),
                     ("00000000000000000000.json", planted_event("zero", 0)),
                     ("00000000000000000006.json", {"id": "no-fields", "event": "regression", "check": "x"})):
        with open(os.path.join(qdir, name), "w") as f:
            json.dump(ev, f)
    os.mkfifo(os.path.join(qdir, "00000000000000000008.json"))
    os.symlink(outside, os.path.join(qdir, "00000000000000000009.json"))

    hd = start_healthd(cfg)
    evs = wait_events(rx, lambda e: any(x["check"] == "real" for x in e), what="the real spooled event")
    for what in ("99999999999999999999.json: a number healthd never gives an event",
                 "00000000000000000000.json: a number healthd never gives an event",
                 "00000000000000000008.json: a named pipe", "00000000000000000009.json: a symbolic link",
                 "spool file 00000000000000000006.json in "):
        assert what in hd.log(), what
    assert "is not an event healthd wrote; removed" in hd.log()
    # the rest were removed at load; the real one is removed by the spool's thread once delivered, a moment after
    # the receiver has it
    wait_until(lambda: os.listdir(qdir) == [], 5, what="the delivered event's spool file removed")
    lst.stop()  # a new event: spooled at once (the thread is not stuck on the pipe), numbered after the real one
    evs = wait_events(rx, lambda e: by_event(e, "regression") and any(x["check"] == "db" for x in e),
                      what="the new regression")
    assert "has not written event" not in hd.log() and "cannot spool" not in hd.log()
    print("delivered: %s; spool now %s" % ([e["check"] for e in evs], sorted(os.listdir(qdir))))
    assert [e["check"] for e in evs] == ["real", "db"]
    assert os.path.exists(outside)  # the link's target is not touched

    hd.restart()  # nothing planted comes back
    time.sleep(1.0)
    assert [e["check"] for e in events(rx)] == ["real", "db"]


def test_a_full_spool_loads_in_memory_of_its_size(workdirs, start_tcp_listener, start_healthd):
    """5,000 spooled events (about 3 MB) must not reserve 1 MiB each at start (5 GB of address space, an abort
    under MemoryMax or strict overcommit): files are read into buffers of their size."""
    url = "http://127.0.0.1:1/hook"  # nothing listens: the events stay queued
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": url}], spool_max_bytes=64 * 1024 * 1024)
    hd = start_healthd(cfg)
    time.sleep(1.0)
    empty_kb = vm_peak_kb(hd.proc.pid)
    hd.stop()
    qdir = os.path.join(cfg["alerts"]["spool_dir"], queue_name(url))
    os.makedirs(qdir, exist_ok=True)
    total = 0
    for n in range(1, 5001):
        text = json.dumps(planted_event("c%d" % (n % 50), n))
        total += len(text)
        with open(os.path.join(qdir, "%020d.json" % n), "w") as f:
            f.write(text)
    hd.start()
    wait_until(lambda: "5000 undelivered events read back from the spool" in hd.log(), 20, what="the spool loaded")
    full_kb = vm_peak_kb(hd.proc.pid)
    print("VmPeak with an empty spool %d MiB, with 5,000 events (%.1f MB on disk) %d MiB: +%d MiB"
          % (empty_kb // 1024, total / 1e6, full_kb // 1024, (full_kb - empty_kb) // 1024))
    assert full_kb - empty_kb < 40 * total / 1024  # a few times the bytes (parsed JSON, queue), not 1 MiB a file


def test_webhook_and_http_check_secrets_never_reach_logs_metrics_or_errors(workdirs, start_tcp_listener,
                                                                           start_receiver, start_healthd):
    """A webhook URL's user info and query (a path-less URL's token), and an http check URL's, are never shown:
    not on the delivery log lines, in /metrics, /health, nor in the error about a URL that does not parse."""
    from harness.healthd import run_healthd
    rx = start_receiver(mode="status:503")
    lst = start_tcp_listener()
    urls = ["http://hookuser:HOOKPASS-S3cret@127.0.0.1:%d/hook" % rx.port,
            "http://127.0.0.1:%d?token=QUERY-T0ken" % rx.port]
    cfg = config(workdirs, [tcp_check("db", lst.port),
                            {"name": "app", "type": "http", "critical": False,
                             "url": "http://appuser:APPPASS-S3cret@127.0.0.1:%d/health?key=APPKEY-T0ken" % lst.port}],
                 [{"url": u} for u in urls])
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    lst.stop()
    wait_until(lambda: hd.log().count("HTTP 503") >= 4, 5, what="failed deliveries to both webhooks")
    shown = hd.log() + hd.get("/metrics")[2].decode() + hd.get("/health")[2].decode()
    for secret in ("HOOKPASS", "hookuser", "QUERY-T0ken", "APPPASS", "appuser", "APPKEY"):
        assert secret not in shown, secret
    assert "webhook http://127.0.0.1:%d (generic)" % rx.port in hd.log()
    assert "http://127.0.0.1:%d/health" % lst.port in hd.get("/health")[2].decode()

    bad = dict(cfg, alerts=dict(cfg["alerts"], webhooks=[{"url": "http://u:BADPASS-S3cret@[::1/h?t=BADQ-T0ken"}]))
    path = os.path.join(workdirs.new("bad"), "bad.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert rc == 2 and "alerts.webhooks[0].url: expected an http:// or https:// URL" in err, err
    assert "BADPASS" not in out + err and "BADQ" not in out + err, err
