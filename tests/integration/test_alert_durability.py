"""Alert durability against SIGKILL: a burst of events reaches the disk together (one wait for the disk per batch,
not two per event), and no crash leaves a receiver with an alert that nothing will resolve."""

import json
import os
import random
import re
import time

from harness import wait_until
from test_alerts import by_event, config, events, planted_event, queue_name, tcp_check, wait_events, wait_state

BURST = 200


def spooled(cfg):
    """Events on disk for good (renamed into place), over every queue."""
    spool = cfg["alerts"]["spool_dir"]
    if not os.path.isdir(spool):
        return 0
    return sum(len([f for f in os.listdir(os.path.join(spool, q)) if re.fullmatch(r"\d{20}\.json", f)])
               for q in os.listdir(spool) if q.startswith("q-"))


def logged_regressions(hd):
    return hd.log_current().count(" event=regression ")


def burst(workdirs, start_tcp_listener, start_receiver, start_healthd, kill_after_s):
    """BURST checks of one target go down at once while the webhook is down. Returns (ms from the last event's log
    line until all are on disk, or None when killed; events lost to a SIGKILL kill_after_s after that line)."""
    rx = start_receiver()
    rx.stop()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("c%03d" % i, lst.port) for i in range(BURST)],
                 [{"url": rx.url + "/hook", "timeout_ms": 500, "connect_timeout_ms": 200}])
    cfg["defaults"].update(interval_ms=100, timeout_ms=80)
    hd = start_healthd(cfg)
    wait_until(lambda: hd.json("/health")[1]["status"] == "up", 10, what="every check up")
    lst.stop()
    deadline = time.monotonic() + 10
    while logged_regressions(hd) < BURST and time.monotonic() < deadline:
        time.sleep(0.001)
    logged_at = time.monotonic()
    assert logged_regressions(hd) == BURST, hd.log_tail()
    if kill_after_s is None:
        while spooled(cfg) < BURST and time.monotonic() < logged_at + 10:
            time.sleep(0.001)
        window_ms = (time.monotonic() - logged_at) * 1000
        assert spooled(cfg) == BURST
        return window_ms, 0
    time.sleep(max(0.0, kill_after_s - (time.monotonic() - logged_at)))
    hd.kill()
    return None, BURST - spooled(cfg)


def test_a_burst_reaches_the_disk_within_milliseconds(workdirs, start_tcp_listener, start_receiver, start_healthd):
    window_ms, _ = burst(workdirs, start_tcp_listener, start_receiver, start_healthd, None)
    print("%d events logged within one interval: the last on disk %.1f ms after its log line" % (BURST, window_ms))
    # Before batching each event cost two fsync'ed writes in a row: 262 ms for this burst on the test machine.
    assert window_ms < 150, window_ms


def test_sigkill_right_after_a_burst_loses_no_event(workdirs, start_tcp_listener, start_receiver, start_healthd):
    lost = {}
    for delay_ms in (20, 100):
        _, lost[delay_ms] = burst(workdirs, start_tcp_listener, start_receiver, start_healthd, delay_ms / 1000)
    print("SIGKILL after a %d-event burst: %s" % (BURST, ", ".join(
        "%d ms later: %d lost" % (d, n) for d, n in sorted(lost.items()))))
    assert lost[100] == 0, lost  # before: 65 lost at 100 ms, 118 at 20 ms
    assert lost[20] <= BURST // 20, lost


def test_an_event_on_disk_without_its_record_is_believed(workdirs, start_tcp_listener, start_receiver,
                                                         start_healthd):
    """healthd stopped after a regression reached the disk and before its open-alert record did. The regression is
    delivered once (not announced again while the check stays down), and the recovery follows when it comes up:
    before, the check counted as "down since start" and its recovery was never sent, so the alert fired forever."""
    rx = start_receiver()
    lst = start_tcp_listener()
    lst.stop()
    url = rx.url + "/hook"
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": url}])
    qdir = os.path.join(cfg["alerts"]["spool_dir"], queue_name(url))
    os.makedirs(qdir)
    with open(os.path.join(qdir, "%020d.json" % 41), "w") as f:
        json.dump(planted_event("db", 41), f)
    hd = start_healthd(cfg)
    wait_state(hd, "db", "down")
    wait_events(rx, lambda e: e, what="the spooled regression")
    time.sleep(1.0)
    assert [e["event"] for e in events(rx)] == ["regression"]
    assert os.path.exists(os.path.join(cfg["alerts"]["spool_dir"], "open", "db.json"))  # the record caught up
    lst.start()
    evs = wait_events(rx, lambda e: by_event(e, "recovery"), what="the recovery")
    assert [e["event"] for e in evs] == ["regression", "recovery"]
    assert "delivery=not-sent:down-since-start" not in hd.log()  # the recovery is sent, not suppressed


def test_a_queued_recovery_beats_a_stale_record(workdirs, start_tcp_listener, start_receiver, start_healthd):
    """A recovery on disk whose record still says open (healthd stopped in between): delivered once, and no
    second recovery is made up from the stale record; the record goes."""
    rx = start_receiver()
    lst = start_tcp_listener()
    url = rx.url + "/hook"
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": url}])
    spool = cfg["alerts"]["spool_dir"]
    os.makedirs(os.path.join(spool, queue_name(url)))
    os.makedirs(os.path.join(spool, "open"))
    rec = dict(planted_event("db", 9), event="recovery", kind="ok", previous_kind="refused")
    with open(os.path.join(spool, queue_name(url), "%020d.json" % 9), "w") as f:
        json.dump(rec, f)
    with open(os.path.join(spool, "open", "db.json"), "w") as f:
        json.dump({"check": "db", "kind": "refused", "since_ms": int(time.time() * 1000) - 5000, "seq": 8}, f)
    hd = start_healthd(cfg)
    wait_state(hd, "db", "up")
    wait_events(rx, lambda e: e, what="the spooled recovery")
    time.sleep(1.0)
    assert [e["id"] for e in events(rx)] == [rec["id"]]
    assert not os.path.exists(os.path.join(spool, "open", "db.json"))
    assert "the recovery decides" in hd.log()


def test_sigkill_around_announcements_leaves_no_alert_unresolved(workdirs, start_tcp_listener, start_receiver,
                                                                start_healthd):
    """SIGKILL at a random moment just after a regression or a recovery is logged, ten times: at the end, with the
    check up, every regression the receiver got has its recovery."""
    rx = start_receiver()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", lst.port)], [{"url": rx.url + "/hook"}])
    hd = start_healthd(cfg)
    rnd = random.Random(11)
    for i in range(10):
        wait_state(hd, "db", "up")
        before = hd.log_current().count(" event=")
        if i % 2 == 0:
            lst.stop()
        else:
            lst.stop()
            wait_state(hd, "db", "down")
            before = hd.log_current().count(" event=")
            lst.start()
        wait_until(lambda: hd.log_current().count(" event=") > before, 5, what="an announcement")
        time.sleep(rnd.uniform(0, 0.005))
        hd.kill()
        lst.start() if i % 2 == 0 else None
        hd.start()
    wait_state(hd, "db", "up")

    def resolved():
        evs = events(rx)
        regs = {e["since"] for e in by_event(evs, "regression")}
        recs = {e["since"] for e in by_event(evs, "recovery")}
        return regs and regs <= recs
    wait_until(resolved, 10, what="every regression resolved: %s" % [
        (e["event"], e["since"]) for e in events(rx)])
    evs = events(rx)
    print("10 SIGKILLs: %d regressions, %d recoveries at the receiver" % (
        len(by_event(evs, "regression")), len(by_event(evs, "recovery"))))


def test_a_full_spool_disk_is_counted_logged_and_reported_at_stop(workdirs, tmpfs, start_tcp_listener,
                                                                  start_receiver, start_healthd):
    """The spool's filesystem is full: every event that cannot be written is logged with its id and counted, a
    gauge says how many deliveries live in memory only, and a graceful stop names each one it loses (before: 136 of
    200 events were lost at a restart with nothing logged and no metric)."""
    from test_alerts import metric
    rx = start_receiver()
    rx.stop()
    lst = start_tcp_listener()
    cfg = config(workdirs, [tcp_check("c%d" % i, lst.port) for i in range(4)],
                 [{"url": rx.url + "/hook", "timeout_ms": 500, "connect_timeout_ms": 200}])
    cfg["alerts"]["spool_dir"] = os.path.join(tmpfs, "spool")
    hd = start_healthd(cfg)
    wait_until(lambda: hd.json("/health")[1]["status"] == "up", 10, what="every check up")
    with open(os.path.join(tmpfs, "filler"), "wb") as f:  # the disk is full from here on
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    lst.stop()
    wait_until(lambda: logged_regressions(hd) == 4, 5, what="4 regressions")
    wait_until(lambda: metric(hd, "healthd_alert_spool_write_failures_total") == 4, 5, what="4 failures counted")
    assert metric(hd, "healthd_alert_memory_only_deliveries") == 4
    ids = re.findall(r"cannot spool event (\S+) \(regression of check c\d\): cannot write .*No space left", hd.log())
    assert len(ids) == 4, hd.log_tail()
    assert spooled(cfg) == 0
    hd.stop()
    line = [l for l in hd.log().splitlines() if "stopping with" in l]
    print(line)
    assert len(line) == 1 and "stopping with 4 undelivered deliveries that are not on disk" in line[0]
    assert all(i in line[0] for i in ids)
