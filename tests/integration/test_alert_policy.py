"""What gets announced: a backend that starts broken (or a check added while down) alerts once it has failed
`fall` times, a restart adds nothing, maint holds regressions until it ends, drain holds nothing."""

import signal
import time

from harness import wait_until
from harness.healthd import run_healthd
from test_alerts import by_event, config, events, tcp_check, wait_events, wait_state


def ctl(hd, *args):
    rc, out, err = run_healthd(["ctl", "--socket", hd.admin_socket] + list(args), timeout=10)
    assert rc == 0, (rc, out, err)


def attempts(hd, check):
    body = hd.get("/metrics")[2].decode()
    line = [l for l in body.splitlines() if l.startswith('healthd_check_attempts_total{check="%s"}' % check)]
    return int(float(line[0].split()[-1]))


def test_a_check_down_from_the_start_alerts_after_fall_failures_and_a_restart_adds_nothing(
        workdirs, start_tcp_listener, start_receiver, start_healthd):
    rx = start_receiver()
    lst = start_tcp_listener()
    lst.stop()  # broken before healthd starts: the backend rebooted behind the bad rule
    cfg = config(workdirs, [dict(tcp_check("db", lst.port), fall=3)], [{"url": rx.url + "/hook"}])
    hd = start_healthd(cfg)
    evs = wait_events(rx, lambda e: e, what="the regression of a check down since start")
    attempts_then = attempts(hd, "db")
    reg = evs[0]
    print("regression after %d attempts: %s" % (attempts_then, reg["summary"]))
    assert reg["event"] == "regression" and reg["down_since_start"] is True and reg["kind"] == "refused"
    assert attempts_then >= 3  # not before fall failures in a row
    assert "delivery=not-sent-yet:down-since-start:" in hd.log()
    assert "down since healthd started" in reg["summary"]

    hd.restart()  # still down: the spool says it was announced
    wait_state(hd, "db", "down")
    time.sleep(1.5)
    assert [e["event"] for e in events(rx)] == ["regression"]
    lst.start()
    evs = wait_events(rx, lambda e: by_event(e, "recovery"), what="the recovery")
    assert [e["event"] for e in evs] == ["regression", "recovery"] and evs[1]["since"] == reg["since"]


def test_a_check_added_by_a_reload_while_down_alerts(workdirs, start_tcp_listener, start_receiver, start_healthd):
    rx = start_receiver()
    up, down = start_tcp_listener(), start_tcp_listener()
    down.stop()
    cfg = config(workdirs, [tcp_check("app", up.port)], [{"url": rx.url + "/hook"}])
    hd = start_healthd(cfg)
    wait_state(hd, "app", "up")
    cfg["checks"].append(tcp_check("db", down.port))
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    evs = wait_events(rx, lambda e: e, what="the new check's regression")
    assert [(e["check"], e["event"], e["down_since_start"]) for e in evs] == [("db", "regression", True)]


def test_a_check_removed_by_a_reload_while_down_is_closed_at_once_and_stays_closed(
        workdirs, start_tcp_listener, start_receiver, start_healthd):
    """No recovery is invented for a check nobody checks any more: the reload closes its alert (the log says so,
    its open-alert record goes), a restart neither reminds nor recovers it, and a check of that name added back
    later starts afresh."""
    rx = start_receiver()
    up, down = start_tcp_listener(), start_tcp_listener()
    down.stop()
    cfg = config(workdirs, [tcp_check("app", up.port), tcp_check("db", down.port)], [{"url": rx.url + "/hook"}],
                 repeat_interval_s=1)
    hd = start_healthd(cfg)
    wait_events(rx, lambda e: by_event(e, "regression"), what="db's regression")
    cfg["checks"] = [tcp_check("app", up.port)]
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "check db was removed from the configuration while down" in hd.log_current(), 5,
               what="the alert of the removed check closed by the reload")
    settled = len(events(rx))
    hd.restart()
    wait_state(hd, "app", "up")
    time.sleep(2.5)  # more than two reminder periods
    later = events(rx)[settled:]
    assert [e for e in later if e["check"] == "db"] == [], later
    assert "was announced down" not in hd.log_current()  # no open-alert record of db survived the reload
    cfg["checks"].append(tcp_check("db", down.port))
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    evs = wait_events(rx, lambda e: len(by_event(e, "regression")) == 2, what="db's new regression")
    assert by_event(evs, "regression")[1]["check"] == "db"


def test_maint_holds_regressions_until_it_ends_and_drain_holds_nothing(workdirs, start_tcp_listener, start_receiver,
                                                                      start_healthd):
    rx = start_receiver()
    l1, l2, l3 = start_tcp_listener(), start_tcp_listener(), start_tcp_listener()
    cfg = config(workdirs, [tcp_check("db", l1.port), tcp_check("cache", l2.port), tcp_check("app", l3.port)],
                 [{"url": rx.url + "/hook"}], repeat_interval_s=1)
    hd = start_healthd(cfg)
    for c in ("db", "cache", "app"):
        wait_state(hd, c, "up")
    l3.stop()  # announced before maint: its recovery is sent during maint
    wait_events(rx, lambda e: e, what="app's regression")
    ctl(hd, "maint", "--reason", "firewall change CHG-42")
    l1.stop()  # db goes down and stays down through maint
    l2.stop()  # cache goes down and recovers within maint
    wait_state(hd, "db", "down")
    wait_state(hd, "cache", "down")
    l2.start()
    wait_state(hd, "cache", "up")
    l3.start()
    wait_state(hd, "app", "up")
    time.sleep(1.5)  # a reminder period: none is sent in maint either
    got = [(e["check"], e["event"]) for e in events(rx)]
    assert got == [("app", "regression"), ("app", "recovery")], got
    assert "held:maint" in hd.log()

    ctl(hd, "ready")
    evs = wait_events(rx, lambda e: any(x["check"] == "db" for x in e), what="db's held regression")
    db = [e for e in evs if e["check"] == "db"]
    assert [e["event"] for e in db] == ["regression"] and db[0]["held_by_maintenance"] is True
    assert "held while in maint" in db[0]["summary"]
    assert not any(e["check"] == "cache" for e in evs)  # recovered within maint: nothing to say

    ctl(hd, "drain")  # drain holds nothing
    l3.stop()
    evs = wait_events(rx, lambda e: by_event([x for x in e if x["check"] == "app"], "regression")[1:],
                      what="app's regression in drain")
    assert [e["held_by_maintenance"] for e in evs if e["check"] == "app"] == [False, False, False]
