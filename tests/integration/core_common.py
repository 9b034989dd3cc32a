"""Helpers shared by the core tests (test_core_*.py): check configs, polling a check, ISO times,
and rendering haproxy/haproxy.cfg for a test run."""

import datetime
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import REPO, wait_until

HAPROXY_CFG = os.path.join(REPO, "haproxy", "haproxy.cfg")
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(autouse=True)
def sanitizer_reports():
    """With a `make SANITIZE=address,undefined` binary, a sanitizer report from any healthd the test
    started (also the leak check at exit) fails the test. Reports go to files, since the daemon's
    log is removed with its work directory before this teardown runs."""
    d = tempfile.mkdtemp(prefix="hdt-san-")
    saved = {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
    for key, name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan")):
        extra = "log_path=%s/%s" % (d, name) + (":print_stacktrace=1" if name == "ubsan" else "")
        os.environ[key] = ":".join(x for x in (saved[key], extra) if x)
    try:
        yield
        reports = []
        for path in sorted(glob.glob(os.path.join(d, "*"))):
            with open(path, errors="replace") as f:
                reports.append("%s:\n%s" % (os.path.basename(path), f.read()[-4000:]))
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(d, ignore_errors=True)


def tcp_check(name, port, host="127.0.0.1", **extra):
    check = {"name": name, "type": "tcp", "host": host, "port": port}
    check.update(extra)
    return check


def config(checks, interval_ms=300, timeout_ms=200, rise=1, fall=1, **sections):
    cfg = {"node_name": "be-test",
           "defaults": {"interval_ms": interval_ms, "timeout_ms": timeout_ms, "rise": rise,
                        "fall": fall},
           "checks": checks}
    cfg.update(sections)
    return cfg


def parse_iso(text):
    """An ISO 8601 UTC time as healthd writes it (2026-01-02T03:04:05.678Z) -> datetime."""
    assert isinstance(text, str) and ISO_8601.match(text), "not an ISO 8601 UTC time: %r" % (text,)
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_state(hd, name):
    """(HTTP status of /health/NAME, its JSON)."""
    return hd.json("/health/" + name)


def wait_check(hd, name, pred, timeout=5.0, what=None):
    """Poll /health/NAME until pred(json) holds; return the JSON."""
    last = {}

    def probe_keep():
        last["c"] = check_state(hd, name)
        body = last["c"][1]
        return body if body is not None and pred(body) else None

    try:
        return wait_until(probe_keep, timeout, interval=0.03, what=what or "check %s condition" % name)
    except AssertionError as exc:
        raise AssertionError("%s; last answer: %r" % (exc, last.get("c"))) from None


def watch_check(hd, name, until, timeout=5.0, interval=0.03):
    """Poll /health/NAME, recording every (http status, json) seen, until until(json) holds.
    Returns the list of observations (the last one satisfies `until`)."""
    seen = []
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        status, body = check_state(hd, name)
        seen.append((status, body))
        if body is not None and until(body):
            return seen
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("check %s: condition not reached within %.1fs; last: %r"
                         % (name, timeout, seen[-1] if seen else None))


def listener_queue(port, netns=None):
    """Connections waiting in the accept queue of the TCP listener on `port` (ss's Recv-Q)."""
    cmd = ["ss", "-Hltn", "sport = :%d" % port]
    if netns is not None:
        cmd = netns.wrap(cmd)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert len(rows) == 1, "expected one listener on port %d, ss says %r" % (port, out)
    return int(rows[0][1])


def syn_sent_to(port, netns=None):
    """Number of sockets in SYN-SENT towards `port` (a connect that is still pending)."""
    cmd = ["ss", "-Htn", "state", "syn-sent", "dport = :%d" % port]
    if netns is not None:
        cmd = netns.wrap(cmd)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


# --------------------------------------------------------------------------- haproxy.cfg

# Production times in haproxy/haproxy.cfg -> the shorter ones a test runs with.
TEST_TIMES = {"inter": ("2s", "300ms"), "fastinter": ("1s", "150ms"),
              "downinter": ("1s", "150ms"), "agent-inter": ("2s", "300ms")}


def _sub_once(pattern, repl, text, flags=re.M):
    new, n = re.subn(pattern, repl, text, flags=flags)
    assert n == 1, "haproxy/haproxy.cfg changed: %r matched %d times (expected once)" % (pattern, n)
    return new


def render_haproxy_cfg(servers, frontend_port, stats_port, times=None, check_timeout="500ms"):
    """haproxy/haproxy.cfg as a test runs it. Only these parts change; everything else is the file
    users copy, as is:
      - `log /dev/log local0` -> stderr (the harness keeps HAProxy's output in hp.log()),
      - the stats socket path -> the harness's {stats_socket},
      - `timeout check 2s` -> check_timeout,
      - `bind :80` and the stats page's bind -> 127.0.0.1 and free ports,
      - inter/fastinter/downinter/agent-inter on the default-server line -> TEST_TIMES,
      - the example server lines -> `servers`: [(name, app_port, healthd_http_port, agent_port)],
        each on 127.0.0.1 and overriding `port` and `agent-port` (every healthd of a test shares
        127.0.0.1, so each needs its own ports; in production they are the same on every host).
    """
    with open(HAPROXY_CFG) as f:
        text = f.read()
    text = _sub_once(r"^(\s*)log /dev/log local0$", r"\1log stderr format short local0 info", text)
    text = _sub_once(r"stats socket /run/haproxy/admin\.sock ", "stats socket {stats_socket} ", text)
    text = _sub_once(r"^(\s*timeout check) 2s$", r"\1 %s" % check_timeout, text)
    text = _sub_once(r"^(\s*bind) :80$", r"\1 127.0.0.1:%d" % frontend_port, text)
    text = _sub_once(r"^(\s*bind) 127\.0\.0\.1:8404$", r"\1 127.0.0.1:%d" % stats_port, text)
    times = dict(TEST_TIMES, **(times or {}))
    ds = re.search(r"^\s*default-server .*$", text, re.M)
    assert ds, "haproxy/haproxy.cfg has no default-server line"
    line = ds.group(0)
    for key, (prod, test) in times.items():
        line = _sub_once(r"(?<=\s)%s %s(?=\s)" % (re.escape(key), re.escape(prod)),
                         "%s %s" % (key, test), line)
    text = text[:ds.start()] + line + text[ds.end():]
    lines = text.split("\n")
    first = next(i for i, l in enumerate(lines) if re.match(r"^\s*server \S+ \S+", l))
    example = [i for i, l in enumerate(lines) if re.match(r"^\s*server \S+ \S+", l)]
    assert example == list(range(first, first + len(example))), "server lines are not together"
    indent = re.match(r"^(\s*)", lines[first]).group(1)
    new = ["%sserver %s 127.0.0.1:%d port %d agent-port %d" % (indent, name, app, http, agent)
           for name, app, http, agent in servers]
    lines[first:first + len(example)] = new
    return "\n".join(lines)
