"""The firewall incident, end to end: three backends behind a real HAProxy (haproxy/haproxy.cfg), each with
its application and healthd (examples/incident/be.json), MariaDB and Redis behind a firewall, and the
central webhook. A rule on the firewall cuts one backend from one dependency; HAProxy must take exactly
that backend out, the users' requests must stop failing once it is out, and the webhook must say which
backend lost which dependency and how. Also: healthd itself killed (HAProxy's httpchk fails closed).

The sandbox and the steps are demo/sandbox.py and demo/scenario.py: `make demo` runs the same code with
the shipped timings and narrates it. This test uses shorter timings (sandbox.FAST_*), prints the measured
detection times next to what the configuration predicts, and asserts timings only with generous margins.
"""

import glob
import os
import shutil
import sys
import tempfile

import pytest

from harness import REPO

sys.path.insert(0, os.path.join(REPO, "demo"))

import sandbox as sbx  # noqa: E402
from scenario import Cut, HealthdCrash  # noqa: E402

RATE = 25  # users' requests per second through HAProxy
OTHERS = {"be2": ("be1", "be3"), "be3": ("be1", "be2")}


@pytest.fixture(scope="module")
def sandbox():
    """One sandbox for the module (about 3 s to build); every test starts from all three backends UP.
    With a sanitizer build, a report from any healthd fails the module."""
    reports = tempfile.mkdtemp(prefix="hdt-san-")
    saved = {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
    for key, name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan")):
        os.environ[key] = ":".join(x for x in (saved[key], "log_path=%s/%s" % (reports, name)) if x)
    sb = sbx.Sandbox(fast=True)
    names = []
    try:
        try:
            sb.start()
        except Exception as exc:
            raise AssertionError("%s\n%s" % (exc, sb.failure_logs)) from None
        names = [ns.name for ns in sb.namespaces]
        sb.start_traffic(rate=RATE)
        yield sb
    finally:
        try:
            sb.close()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            found = []
            for path in sorted(glob.glob(os.path.join(reports, "*"))):
                with open(path, errors="replace") as f:
                    found.append("%s:\n%s" % (os.path.basename(path), f.read()[-4000:]))
            shutil.rmtree(reports, ignore_errors=True)
    assert not found, "sanitizer reports:\n" + "\n".join(found)
    assert not set(names) & set(sbx.namespaces_left()), "namespaces left behind"


@pytest.fixture
def all_up(sandbox):
    sandbox.restore()
    for name in sbx.BACKENDS:
        if not sandbox.backends[name].healthd.running:
            sandbox.restart_healthd(name)
        sandbox.wait_server(name, lambda r: r["status"] == "UP" and r["weight"] == "100", timeout=20)
    return sandbox


def report(capsys, title, lines):
    with capsys.disabled():
        sys.stdout.write("\n  %s\n" % title)
        for line in lines:
            sys.stdout.write("    %s\n" % line)


def fmt_range(r):
    return "%.2f to %.2f s" % r


def webhook_bodies(measure, host=None):
    return [b for b in measure["webhook_posts"] if isinstance(b, dict) and (host is None or b.get("host") == host)]


def run_cut(sb, backend, service, capsys):
    cut = Cut(sb, backend, service)
    try:
        cut.cut("drop")
        cut.change("reject")
        cut.restore()
        m = cut.settle()
    except sbx.SandboxError as exc:
        raise AssertionError("%s\n%s" % (exc, sb.log_tails())) from None
    t = sb.timing
    lines = [
        "config: %s" % t.describe(),
        "rule applied -> healthd down:  %.2f s (predicted %s)" % (m["healthd_down_s"], fmt_range(m["predicted_healthd"])),
        "rule applied -> HAProxy DOWN:  %.2f s (predicted %s)" % (m["haproxy_down_s"], fmt_range(m["predicted_haproxy"])),
    ]
    if "webhook_s" in m:
        lines.append("rule applied -> webhook:       %.2f s (predicted %s, plus delivery)"
                     % (m["webhook_s"], fmt_range(m["predicted_healthd"])))
    lines += [
        "rule removed -> HAProxy UP:    %.2f s (predicted %s)" % (m["haproxy_up_s"], fmt_range(m["predicted_up"])),
        "requests failed before detection: %d of %d (expected about %.0f: %g/s x %.2f s, a third to %s); "
        "after: %d of %d" % (m["failed_before"], m["requests_before"], RATE * m["haproxy_down_s"] / 3, RATE,
                             m["haproxy_down_s"], backend, m["failed_after"], m["requests_after"]),
        "HAProxy: %s -> %s" % (m["last_agt"], m["last_agt2"]),
    ]
    report(capsys, "%s loses %s (DROP, then REJECT, then restored)" % (backend, service), lines)
    return m


def assert_cut(sb, m, backend, service):
    ip = sbx.ADDR[backend]
    # HAProxy took exactly this backend out, naming the dependency and the kind of failure.
    assert m["last_agt"] == "via agent : down (%s timeout)" % service
    assert m["kind"] == "timeout" and m["source_addr"] == ip
    assert m["kind2"] in ("refused", "unreachable")
    assert m["last_agt2"] == "via agent : down (%s %s)" % (service, m["kind2"])
    assert {name for name, _ in m["haproxy_changes"]} == {backend}, m["haproxy_changes"]
    # healthd's own time of the change (ms precision) against the schedule's prediction, fastinterval included
    lo, hi = m["predicted_healthd"]
    assert lo - 0.1 <= m["healthd_down_s"] <= hi + 0.4, (m["healthd_down_s"], (lo, hi))
    assert m["haproxy_down_s"] <= 2 * m["predicted_haproxy"][1] + 5
    assert m["haproxy_up_s"] <= 2 * m["predicted_up"][1] + 5
    # Users saw errors only until HAProxy took the backend out; the others served everything after.
    assert m["failed_before"] >= 1, "the cut never reached the users: is the app really using %s?" % service
    assert m["failed_after"] == 0, m["failures_after"]
    for other in OTHERS[backend]:
        assert m["served_after"][other] > 0
    # The webhook: one regression (timeout), one change of kind, one recovery, all from this backend.
    if "alerts" not in sb.base_config:
        return
    bodies = webhook_bodies(m)
    assert webhook_bodies(m, backend) == bodies, "alerts from other backends: %r" % bodies
    events = [(b.get("event"), b.get("check"), b.get("kind")) for b in bodies]
    assert events[0] == ("regression", service, "timeout"), events
    assert bodies[0].get("source_addr") == ip
    assert events[-1][:2] == ("recovery", service), events
    assert [e for e in events if e[0] == "regression"] == [events[0]]
    assert [e for e in events if e[0] == "recovery"] == [events[-1]]
    middle = events[1:-1]
    assert middle == [("update", service, m["kind2"])], events
    assert m["webhook_s"] <= 2 * m["predicted_healthd"][1] + 5


def test_mysql_cut_at_the_firewall(all_up, capsys):
    m = run_cut(all_up, "be2", "mysql", capsys)
    assert_cut(all_up, m, "be2", "mysql")


def test_redis_cut_at_the_firewall(all_up, capsys):
    m = run_cut(all_up, "be2", "redis", capsys)
    assert_cut(all_up, m, "be2", "redis")


def test_healthd_killed_fails_closed(all_up, capsys):
    sb = all_up
    crash = HealthdCrash(sb, "be3")
    try:
        crash.kill()
        crash.restart()
        m = crash.settle()
    except sbx.SandboxError as exc:
        raise AssertionError("%s\n%s" % (exc, sb.log_tails())) from None
    report(capsys, "healthd killed on be3 (SIGKILL), then restarted", [
        "killed -> HAProxy DOWN: %.2f s (predicted %s); restarted -> UP: %.2f s"
        % (m["haproxy_down_s"], fmt_range(m["predicted_haproxy"]), m["haproxy_up_s"]),
        "HAProxy: status %s, check %s, agent %s; requests failed: %d of %d (%d in flight when be3 went down)"
        % (m["status"], m["check_status"], m["agent_status"], m["failed"], m["requests"],
           m["failed_in_flight_at_down"]),
    ])
    # The agent cannot be reached (HAProxy ignores that); the httpchk on /ready/deps is what takes it out.
    assert m["status"] == "DOWN" and m["check_status"] == "L4CON"
    assert m["haproxy_down_s"] <= 2 * m["predicted_haproxy"][1] + 5
    assert {name for name, _ in m["haproxy_changes"]} == {"be3"}, m["haproxy_changes"]
    # be3's application itself was fine: the only requests that may fail are those HAProxy cut short when it
    # marked be3 down (on-marked-down shutdown-sessions); and a dead healthd sends no alert.
    assert m["failed"] == m["failed_in_flight_at_down"], m["failures"]
    assert m["webhook_posts"] == []
