"""The status page (GET / for browsers) in a real headless Chromium, HTML escaping of a hostile detail, JSON for
other clients at /, a page that triggers no check; and the history (/history): across a restart and a kill -9, a
damaged file set aside, and its bounds with many flapping checks."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

from harness import free_port, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check, wait_check

PLUGINS = "/usr/lib/nagios/plugins"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def page_requests(netlog, origin):
    """The URLs of the requests the page caused, from a Chromium net log: the navigation to it (its site is the
    page's) and anything it loads (its initiator is the page's origin). Chromium's own background requests
    (update checks, which fail inside the namespace) have neither."""
    with open(netlog) as f:
        log = json.load(f)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    site = origin.rsplit(":", 1)[0]  # site_for_cookies names the site without the port
    urls = []
    for e in log["events"]:
        p = e.get("params") or {}
        if e["type"] == start_job and "url" in p and (
                p.get("initiator") == origin or "site=%s;" % site in p.get("site_for_cookies", "")):
            urls.append(p["url"])
    return urls


def chromium(ns, workdir, url, *args):
    """Headless Chromium inside the namespace ns (only its loopback exists there), with a fresh profile and a
    net log. -> (stdout, the URLs of the requests the page caused)."""
    profile = os.path.join(workdir, "chromium-profile-%d" % len(os.listdir(workdir)))
    netlog = os.path.join(workdir, "netlog-%d.json" % len(os.listdir(workdir)))
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + profile, "--log-net-log=" + netlog,
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"] + list(args) + [url]
    cp = subprocess.run(ns.wrap(cmd), capture_output=True, timeout=120,
                        env=dict(os.environ, HOME=workdir))
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")[-3000:]
    urls = page_requests(netlog, url.split("/", 3)[0] + "//" + url.split("/", 3)[2])
    shutil.rmtree(profile, ignore_errors=True)
    return cp.stdout.decode(), urls


def program(name, command, **extra):
    check = {"name": name, "type": "program", "command": command}
    check.update(extra)
    return check


def healthd_requests(hd):
    status, _, body = hd.get("/metrics")
    assert status == 200
    return float(re.search(r"^healthd_http_requests_total (\S+)$", body.decode(), re.M).group(1))


def metric(hd, name, check):
    status, _, body = hd.get("/metrics")
    assert status == 200
    m = re.search(r'^%s\{check="%s"[^}]*\} (\S+)$' % (name, re.escape(check)), body.decode(), re.M)
    assert m, "no %s for %s" % (name, check)
    return float(m.group(1))


def test_the_page_in_a_browser_shows_failing_checks_first(start_healthd, start_tcp_listener, make_netns):
    ns = make_netns("page")
    app = start_tcp_listener(netns=ns)
    closed = free_port()
    hd = start_healthd(config([tcp_check("a-passing", app.port), tcp_check("z-failing", closed)]), netns=ns)
    wait_check(hd, "a-passing", lambda c: c["status"] == "up")
    wait_check(hd, "z-failing", lambda c: c["status"] == "down")
    base = hd.url("")

    dom, urls = chromium(ns, hd.workdir, base + "/", "--dump-dom")
    # every check is there, the failing one first although its name sorts last, and the state is text
    sections = re.findall(r'<section class="check (\w+)"><h3><span class="badge \w+">(\w+)</span> ([\w-]+)', dom)
    assert [(s[2], s[1]) for s in sections] == [("z-failing", "DOWN"), ("a-passing", "UP")], sections
    assert "refused" in dom and "127.0.0.1:%d" % closed in dom
    assert re.search(r'overall: <span class="badge down">down</span>', dom)
    assert re.search(r'admin: <span class="badge ready">ready</span>', dom)
    assert 'http-equiv="refresh" content="5"' in dom and 'name="viewport"' in dom
    assert "<svg" in dom and "last hour" in dom and "last day" in dom
    # recent changes from the history
    changes = dom[dom.index('id="changes"'):]
    assert "z-failing" in changes and "a-passing" in changes
    assert "<script" not in dom.lower()  # no JavaScript at all

    # the browser asked healthd only, and nothing else (no font, script, stylesheet or favicon elsewhere)
    assert urls and all(u.startswith(base + "/") for u in urls), urls
    assert base + "/" in urls
    requests_before, shot_urls = healthd_requests(hd), []

    # a screenshot, wide and narrow, in the test's work dir (a PNG)
    for name, size in (("page-wide.png", "1280,900"), ("page-narrow.png", "400,900")):
        shot = os.path.join(hd.workdir, name)
        _, urls = chromium(ns, hd.workdir, base + "/", "--screenshot=" + shot, "--window-size=" + size)
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert urls and all(u.startswith(base + "/") for u in urls), urls
        shot_urls += urls
    # healthd saw what the net log lists, and no more: the log misses no request of the page's
    assert healthd_requests(hd) - requests_before == len(shot_urls) + 1  # and the /metrics read before

    # the headers a browser gets
    status, headers, body = hd.get("/", headers=HTML)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CSP
    assert headers["cache-control"] == "no-store"


def test_other_clients_keep_the_json_index_at_root(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}):
        status, h, body = hd.get("/", headers=headers)
        assert status == 404 and h["content-type"] == "application/json", headers
        doc = json.loads(body)
        assert doc["error"] == "not found" and "/health" in doc["endpoints"] and "/history" in doc["endpoints"]
        assert "content-security-policy" not in h


def test_a_hostile_detail_is_escaped(start_healthd):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>&\"'"
    hd = start_healthd(config([program("evil", [PLUGINS + "/check_dummy", "2", hostile])],
                              interval_ms=2000, timeout_ms=1500))
    c = wait_check(hd, "evil", lambda c: c["status"] == "down")
    assert hostile in c["detail"]
    status, _, body = hd.get("/", headers=HTML)
    page = body.decode()
    assert status == 200
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&amp;&quot;&#39;" in page
    # the target (from the config) is escaped too
    assert "check_dummy 2 &lt;script&gt;" in page


def test_the_page_does_not_trigger_checks(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)], interval_ms=60000, timeout_ms=1000))
    wait_check(hd, "app", lambda c: c["status"] == "up")
    before = metric(hd, "healthd_check_attempts_total", "app")
    bodies = set()
    for _ in range(50):
        status, _, body = hd.get("/", headers=HTML)
        assert status == 200
        bodies.add(body)
    assert metric(hd, "healthd_check_attempts_total", "app") == before == 1
    assert len(bodies) == 1  # the cached page: nothing changed, so nothing was rendered again


def history(hd):
    status, doc = hd.json("/history")
    assert status == 200, doc
    return doc["events"]


def test_history_survives_a_restart_and_a_kill_9(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    wait_check(hd, "app", lambda c: c["status"] == "up")
    app.stop()
    wait_check(hd, "app", lambda c: c["status"] == "down")
    subprocess.run([hd.binary, "ctl", "--socket", hd.admin_socket, "drain", "--reason", "deploy 42"],
                   check=True, capture_output=True, timeout=10)
    events = wait_until(lambda: (lambda e: e if any(x["what"] == "admin" for x in e) else None)(history(hd)),
                        timeout=5)
    newest = events[0]
    assert newest["what"] == "admin" and newest["from"] == "ready" and newest["to"] == "drain"
    assert newest["detail"] == "deploy 42"
    down = next(e for e in events if e["what"] == "state" and e["to"] == "down")
    assert down["check"] == "app" and down["from"] == "up" and down["kind"] == "refused"
    assert down["previous_lasted_ms"] >= 0
    before = [(e["time_ms"], e["what"], e.get("check"), e["from"], e["to"]) for e in events]

    hd.restart()
    after = [(e["time_ms"], e["what"], e.get("check"), e["from"], e["to"]) for e in history(hd)]
    assert after[-len(before):] == before  # everything is still there, oldest last
    # the restored drain is no new change: the newest admin event is the one from before
    assert [e for e in after if e[1] == "admin"] == [e for e in before if e[1] == "admin"]

    # kill -9 right after a change: the change was written before (fsync + rename on the worker thread)
    app.start()
    wait_check(hd, "app", lambda c: c["status"] == "up")
    wait_until(lambda: any(e["to"] == "up" and e["from"] == "down" for e in history(hd)), timeout=5)
    time.sleep(0.5)  # the write of that change is on the disk well within this
    with open(os.path.join(hd.state_dir, "history.json")) as f:
        on_disk = json.load(f)["events"]
    assert on_disk[0]["from"] == "down" and on_disk[0]["to"] == "up"
    hd.signal(signal.SIGKILL)
    hd.proc.wait(timeout=5)
    hd.start()
    events = history(hd)
    assert any(e["from"] == "down" and e["to"] == "up" and e.get("check") == "app" for e in events)
    assert any(e["what"] == "admin" and e["to"] == "drain" for e in events)
    assert not glob.glob(os.path.join(hd.state_dir, "tmp-history*"))


def test_a_damaged_history_file_is_set_aside(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    wait_check(hd, "app", lambda c: c["status"] == "up")
    hd.stop()
    path = os.path.join(hd.state_dir, "history.json")
    with open(path, "w") as f:
        f.write('{"version":1,"events":[{"time_ms": 1, "what": "sta')  # cut off mid-write by something else
    hd.start()
    wait_check(hd, "app", lambda c: c["status"] == "up")
    aside = glob.glob(path + ".damaged-*")
    assert len(aside) == 1
    with open(aside[0]) as f:
        assert f.read().endswith('"sta')
    assert re.search(r"error: %s: not a JSON object with an \"events\" array; moved aside to %s, history starts "
                     r"empty" % (re.escape(path), re.escape(aside[0])), hd.log())
    events = wait_until(lambda: history(hd) or None, timeout=5)
    assert events[0]["check"] == "app" and events[0]["to"] == "up"
    assert status_of(hd) == 200


def status_of(hd):
    return hd.get("/health")[0]


def test_history_stays_within_its_bounds_with_many_flapping_checks(start_healthd, start_tcp_listener):
    # 20 checks on one listener that is stopped and started: 40 changes per cycle, beyond max_events 30
    app = start_tcp_listener()
    checks = [tcp_check("flap-%02d" % i, app.port) for i in range(20)]
    max_bytes = 6000
    hd = start_healthd(config(checks, interval_ms=100, timeout_ms=80,
                              history={"max_events": 30, "max_bytes": max_bytes}))
    path = os.path.join(hd.state_dir, "history.json")
    for cycle in range(3):
        wait_until(lambda: all(c["status"] == "up" for c in hd.json("/health")[1]["checks"].values()), timeout=10)
        app.stop()
        wait_until(lambda: all(c["status"] == "down" for c in hd.json("/health")[1]["checks"].values()), timeout=10)
        app.start()
    wait_until(lambda: all(c["status"] == "up" for c in hd.json("/health")[1]["checks"].values()), timeout=10)
    time.sleep(0.5)
    status, _, body = hd.get("/history")
    assert status == 200 and len(body) <= max_bytes
    events = json.loads(body)["events"]
    assert 10 <= len(events) <= 30
    times = [e["time_ms"] for e in events]
    assert times == sorted(times, reverse=True)  # newest first
    assert events[0]["to"] == "up"
    assert os.path.getsize(path) <= max_bytes
    with open(path) as f:
        assert json.load(f)["events"] == events
