"""Anyone who can reach a port: pipelining clients that never read, 10,000 idle and 512 slow-drip
connections, descriptors exhausted, strangers polling the agent after a drain, strangers reading
/health, and http.*/agent.* keys changed by a reload. Everything runs on loopback; the attackers
use 127.0.0.2 and up as their source addresses, HAProxy and the direct probes 127.0.0.1. Each
test prints the figure it measures."""

import errno
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import threading
import time

from harness import free_port, run_healthd, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, render_haproxy_cfg, tcp_check, wait_check
from harness.haproxy import TCP_TEST_HEAD

PIPELINE_RSS_BOUND_MB = 48  # growth allowed while clients pipeline and never read (ASan's quarantine included)


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < new:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def request_from(source, port, path="/ready", timeout=2.0, head=None):
    """One HTTP/1.0 request from a given source address -> (status, body) or raises OSError."""
    s = socket.socket()
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(head or ("GET %s HTTP/1.0\r\n\r\n" % path).encode())
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    head_part, _, body = got.partition(b"\r\n\r\n")
    if not head_part.startswith(b"HTTP/1."):
        raise OSError("no HTTP answer: %r" % got[:100])
    return int(head_part.split()[1]), body


def agent_from(source, port, timeout=2.0):
    s = socket.socket()
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        got = b""
        while b"\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got.decode(errors="replace").strip()
    finally:
        s.close()


def metric(hd, name, **labels):
    text = hd.get("/metrics")[2].decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    raise AssertionError("no %s{%s} in /metrics" % (name, want))


# --------------------------------------------------------------------------- 1. pipelining

def pipeline_and_never_read(hd, clients, seconds=5.0):
    """Clients send pipelined GET /health as fast as the server takes them and never read. Returns
    (peak RSS growth in MB, bytes the server took)."""
    socks = []
    for _ in range(clients):
        s = hd.connect("http")
        s.setblocking(False)
        socks.append(s)
    burst = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 200
    rss0 = proc_status_kb(hd.pid, "VmRSS")
    peak, sent = rss0, 0
    deadline = time.monotonic() + seconds
    next_sample = 0.0
    try:
        while time.monotonic() < deadline:
            progressed = False
            for s in socks:
                try:
                    sent += s.send(burst)
                    progressed = True
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass  # closed by the server: fine, it bounded the connection by closing it
            if time.monotonic() >= next_sample:
                peak = max(peak, proc_status_kb(hd.pid, "VmRSS"))
                next_sample = time.monotonic() + 0.05
            if not progressed:
                time.sleep(0.01)
        peak = max(peak, proc_status_kb(hd.pid, "VmRSS"))
    finally:
        for s in socks:
            s.close()
    return (peak - rss0) / 1024.0, sent


def test_pipelining_clients_that_never_read_stay_bounded(start_healthd, start_tcp_listener, monkeypatch):
    # Under ASan, freed answers sit in its quarantine (256 MB by default) and look like growth: keep it small.
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4") if x))
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    wait_check(hd, "app", lambda c: c["status"] == "up")
    for clients in (1, 8):
        growth, sent = pipeline_and_never_read(hd, clients)
        print("\n%d pipelining client(s), 5 s: RSS grew by %.1f MB (bound %d MB); the server took %.1f MB of "
              "requests" % (clients, growth, PIPELINE_RSS_BOUND_MB, sent / 1e6))
        assert growth < PIPELINE_RSS_BOUND_MB, \
            "%d clients: RSS grew by %.1f MB (bound %d MB)" % (clients, growth, PIPELINE_RSS_BOUND_MB)
        assert hd.get("/ready")[0] == 200


# --------------------------------------------------------------------------- 2. idle and slow-drip

class Attacker(threading.Thread):
    """Holds `idle` connections to each (port, count) target and `drip` connections sending one header
    byte per second, all from one source address; reopens what the server closes, at most
    `reopen_per_s` a second. Bounded in time by stop()."""

    DRIP = b"GET /ready HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000

    def __init__(self, source, idle_targets, drip_port, drip, reopen_per_s=1000):
        super().__init__(daemon=True)
        self.source, self.idle_targets, self.drip_port, self.drip = source, idle_targets, drip_port, drip
        self.reopen_per_s = reopen_per_s
        self.ep = select.epoll()
        self.socks = {}  # fd -> [sock, port, kind, bytes_sent]
        self.closed_by_server = 0
        self.opened = 0
        self.open_errors = 0
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def open(self, port, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.bind((self.source, 0))
            rc = s.connect_ex(("127.0.0.1", port))
        except OSError:
            s.close()
            self.open_errors += 1
            return False
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.open_errors += 1
            return False
        self.socks[s.fileno()] = [s, port, kind, 0]
        self.ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLERR | select.EPOLLHUP)
        self.opened += 1
        return True

    def drop(self, fd):
        s = self.socks.pop(fd)[0]
        self.ep.unregister(fd)
        s.close()

    def run(self):
        wanted = [(port, "idle") for port, n in self.idle_targets for _ in range(n)] + \
                 [(self.drip_port, "drip")] * self.drip
        pending = []
        for port, kind in wanted:
            if not self.open(port, kind):
                pending.append((port, kind))
        self.ready.set()
        next_tick = time.monotonic() + 1
        while not self.stopping.is_set():
            for fd, _ in self.ep.poll(0.1):
                if fd not in self.socks:
                    continue
                sock, port, kind, _ = self.socks[fd]
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.closed_by_server += 1
                    self.drop(fd)
                    pending.append((port, kind))
            if time.monotonic() >= next_tick:
                next_tick += 1
                for fd, entry in list(self.socks.items()):
                    if entry[2] != "drip":
                        continue
                    i = entry[3] % len(self.DRIP)
                    try:
                        entry[0].send(self.DRIP[i:i + 1])
                        entry[3] += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        self.closed_by_server += 1
                        self.drop(fd)
                        pending.append((entry[1], "drip"))
                budget = self.reopen_per_s
                while pending and budget > 0:
                    port, kind = pending.pop(0)
                    if not self.open(port, kind):
                        pending.append((port, kind))
                    budget -= 1

    def stop(self):
        self.stopping.set()
        self.join(10)
        for fd in list(self.socks):
            self.drop(fd)
        self.ep.close()


HAPROXY_TIMES = {"inter": ("2s", "500ms"), "fastinter": ("1s", "250ms"), "downinter": ("1s", "250ms"),
                 "agent-inter": ("2s", "500ms")}


def test_idle_and_slow_drip_connections_do_not_take_the_backend_out(start_healthd, start_tcp_listener,
                                                                    start_http_app, start_haproxy):
    idle_http, idle_agent, drip, attack_s = 8000, 2000, 512, 20
    limit = raise_nofile(idle_http + idle_agent + drip + 2000)
    assert limit >= idle_http + idle_agent + drip + 500, "RLIMIT_NOFILE %d is too low for this test" % limit
    db = start_tcp_listener()
    app = start_http_app(body="served")
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=500, timeout_ms=300))
    wait_check(hd, "db", lambda c: c["status"] == "up")
    hp = start_haproxy(render_haproxy_cfg([("be1", app.port, hd.http_port, hd.agent_port)], free_port(),
                                          free_port(), times=HAPROXY_TIMES, check_timeout="1s"))
    hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["agent_status"] == "L7OK", timeout=15)
    chkfail0 = int(hp.server("app", "be1")["chkfail"] or 0)

    attacker = Attacker("127.0.0.2", [(hd.http_port, idle_http), (hd.agent_port, idle_agent)], hd.http_port, drip)
    attacker.start()
    assert attacker.ready.wait(60), "the attacker could not open its connections"
    probes = failures = 0
    states = []
    failures_seen = []
    t_end = time.monotonic() + attack_s
    try:
        while time.monotonic() < t_end:
            for what in ("ready", "agent"):
                probes += 1
                try:
                    if what == "ready":
                        status, body = request_from("127.0.0.1", hd.http_port, "/ready")
                        ok = status == 200 and body == b"up\n"
                    else:
                        line = agent_from("127.0.0.1", hd.agent_port)
                        ok = line == "up 100%"
                except OSError as exc:
                    ok, body = False, repr(exc)
                if not ok:
                    failures += 1
                    failures_seen.append(what)
            states.append(hp.server("app", "be1")["status"])
            time.sleep(0.5)
        row = hp.server("app", "be1")
    finally:
        attacker.stop()
    down = [s for s in states if not s.startswith("UP")]
    chkfail = int(row["chkfail"] or 0) - chkfail0
    print("\n%d s attack from 127.0.0.2: %d idle (HTTP) + %d idle (agent) + %d slow-drip connections kept up, "
          "%d opened in all, %d closed by healthd; direct probes: %d of %d failed; HAProxy: %d of %d samples "
          "not UP, %d failed httpchk, agent %s"
          % (attack_s, idle_http, idle_agent, drip, attacker.opened, attacker.closed_by_server, failures, probes,
             len(down), len(states), chkfail, row["agent_status"]))
    assert failures == 0, "%d of %d direct probes failed: %r" % (failures, probes, failures_seen[:10])
    assert not down, "HAProxy saw the server %r during the attack" % sorted(set(down))
    assert row["status"] == "UP" and row["agent_status"].endswith("L7OK"), row  # "* L7OK": one in progress
    evicted_http = metric(hd, "healthd_connections_evicted_total", listener="http")
    evicted_agent = metric(hd, "healthd_connections_evicted_total", listener="agent")
    log = hd.log()
    per_source = log.count("127.0.0.2 has 64 connections open")
    print("evicted: http %d, agent %d; per-source limit log lines: %d" % (evicted_http, evicted_agent, per_source))
    assert evicted_http > 0 and evicted_agent > 0
    assert per_source == 2, "expected one line per listener and episode, got %d" % per_source


def test_many_sources_at_the_cap_evict_the_idlest(start_healthd, start_tcp_listener):
    """300 sources x 4 idle connections against a cap of 256: newcomers (the probes) are served, the cap
    is logged once for the episode and counted."""
    raise_nofile(4000)
    db = start_tcp_listener()
    hd = start_healthd(config([tcp_check("db", db.port)], http={"max_connections": 256, "timeout_ms": 30000}))
    wait_check(hd, "db", lambda c: c["status"] == "up")
    socks = []
    try:
        for i in range(300):
            src = "127.0.%d.%d" % (10 + i // 250, 1 + i % 250)
            for _ in range(4):
                s = socket.socket()
                s.bind((src, 0))
                s.connect(("127.0.0.1", hd.http_port))
                socks.append(s)
        ok = 0
        for _ in range(20):
            status, _ = request_from("127.0.0.1", hd.http_port, "/ready")
            ok += status == 200
        episodes = metric(hd, "healthd_connection_cap_episodes_total", listener="http")
        evicted = metric(hd, "healthd_connections_evicted_total", listener="http")
        print("\n1200 idle connections from 300 sources, cap 256: %d of 20 probes answered, %d evicted, "
              "%d cap episode(s)" % (ok, evicted, episodes))
        assert ok == 20
        assert evicted >= 1200 - 256
        assert episodes == 1 and hd.log().count("the cap (http.max_connections 256)") == 1
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------- 3. descriptors exhausted

def test_descriptors_exhausted_pause_accepting_quietly(start_healthd, start_tcp_listener):
    db = start_tcp_listener()
    hd = start_healthd(config([tcp_check("db", db.port)], interval_ms=500, timeout_ms=300,
                              http={"timeout_ms": 20000}))
    wait_check(hd, "db", lambda c: c["status"] == "up")
    open_fds = len(os.listdir("/proc/%d/fd" % hd.pid))
    nofile = max(40, open_fds + 8)
    subprocess.run(["prlimit", "--pid", str(hd.pid), "--nofile=%d:%d" % (nofile, nofile)], check=True)
    lines_before = len(hd.log().splitlines())
    clients = []
    try:
        for i in range(60):
            clients.append(hd.connect("http" if i % 2 else "agent"))
        time.sleep(0.3)
        cpu0, t0 = cpu_seconds(hd.pid), time.monotonic()
        time.sleep(3)
        cpu = cpu_seconds(hd.pid) - cpu0
        wall = time.monotonic() - t0
        lines = len(hd.log().splitlines()) - lines_before
        accept_lines = len([l for l in hd.log().splitlines()[lines_before:] if "accept" in l])
        print("\nRLIMIT_NOFILE %d (%d open at start), 60 clients: healthd used %.2f s of CPU in %.1f s; %d log "
              "lines (%d about accept)" % (nofile, open_fds, cpu, wall, lines, accept_lines))
        assert cpu < 0.3 * wall, "healthd spun: %.2f s of CPU in %.1f s" % (cpu, wall)
        # one pause line and one "accepting again" per listener and episode; an episode ends at the first
        # accept that works, which the agent's 2 s connection timeout allows within these 3 s
        assert accept_lines <= 12 and lines < 50, "log flood: %d lines (%d about accept)" % (lines, accept_lines)
    finally:
        for s in clients:
            s.close()
    assert wait_until(lambda: hd.get("/ready", timeout=1)[0] == 200, 10, what="/ready answers again")
    assert hd.agent() == "up 100%"
    assert metric(hd, "healthd_accept_pauses_total", listener="http") >= 1
    assert "accepting again" in hd.log()


# --------------------------------------------------------------------------- 4. "ready" for everyone

HAPROXY_AGENT_CFG = TCP_TEST_HEAD + """
backend be
    option log-health-checks
    server s1 127.0.0.1:%(app)d weight 100 check inter 1s rise 1 fall 1 agent-check agent-port %(agent)d agent-inter 1s
"""
ADMIN_MAINT, ADMIN_DRAIN = 0x01, 0x08


def ctl(hd, *args):
    return run_healthd(["ctl", "--socket", hd.admin_socket] + list(args))


def admin_flags(hp):
    return int(hp.server_state("be", "s1")["srv_admin_state"])


def test_strangers_polling_from_1024_addresses_cannot_keep_haproxy_drained(start_healthd, start_tcp_listener,
                                                                             start_haproxy):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    hp = start_haproxy(HAPROXY_AGENT_CFG % {"app": app.port, "agent": hd.agent_port})
    hp.wait_server("be", "s1", lambda r: r["status"] == "UP", timeout=10)
    assert ctl(hd, "drain", "--reason", "deploy")[0] == 0
    wait_until(lambda: admin_flags(hp) & ADMIN_DRAIN, 5, what="HAProxy in DRAIN")

    stop = threading.Event()
    polled = {"n": 0, "ready": 0}

    def strangers():  # 1,024 source addresses, polling the agent as fast as they can
        i = 0
        while not stop.is_set() and polled["n"] < 20000:
            src = "127.0.%d.%d" % (100 + (i % 1024) // 256, i % 256)
            try:
                line = agent_from(src, hd.agent_port, timeout=1)
                polled["ready"] += line.startswith("ready")
            except OSError:
                pass
            polled["n"] += 1
            i += 1

    worker = threading.Thread(target=strangers, daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        assert ctl(hd, "ready")[0] == 0
        t0 = time.monotonic()
        left = False
        while time.monotonic() - t0 < 8:
            if not admin_flags(hp) & ADMIN_DRAIN:
                left = True
                break
            time.sleep(0.1)
        took = time.monotonic() - t0
    finally:
        stop.set()
        worker.join(10)
    print("\n1,024 strangers made %d agent polls (%d got \"ready\"); HAProxy %s DRAIN %.2f s after ctl ready"
          % (polled["n"], polled["ready"], "left" if left else "still in", took))
    assert left, "HAProxy still drained %.1f s after ctl ready" % took


def test_two_haproxy_processes_on_one_address_both_leave_drain(start_healthd, start_tcp_listener, start_haproxy):
    window_ms = 3000
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)], agent={"ready_window_ms": window_ms}))
    lbs = [start_haproxy(HAPROXY_AGENT_CFG % {"app": app.port, "agent": hd.agent_port}) for _ in range(2)]
    for hp in lbs:
        hp.wait_server("be", "s1", lambda r: r["status"] == "UP", timeout=10)
    assert ctl(hd, "drain")[0] == 0
    for hp in lbs:
        wait_until(lambda: admin_flags(hp) & ADMIN_DRAIN, 5, what="both in DRAIN")
    assert ctl(hd, "ready")[0] == 0
    t0 = time.monotonic()
    took = []
    for hp in lbs:
        wait_until(lambda: not admin_flags(hp) & ADMIN_DRAIN, window_ms / 1000.0 + 2,
                   what="both HAProxy processes (same source address) leave DRAIN")
        took.append(time.monotonic() - t0)
    print("\ntwo HAProxy processes on 127.0.0.1 left DRAIN %.2f s and %.2f s after ctl ready" % tuple(took))
    # After the window, a maintenance set through the runtime API stays.
    time.sleep(window_ms / 1000.0 + 0.3)
    lbs[0].cmd("set server be/s1 state maint")
    time.sleep(2.5)  # two agent polls
    assert admin_flags(lbs[0]) & ADMIN_MAINT, lbs[0].server("be", "s1")


# --------------------------------------------------------------------------- 5. what strangers see

def test_strangers_get_the_status_only_and_allow_from_refuses(start_healthd, start_tcp_listener, start_http_app):
    db = start_tcp_listener()
    api = start_http_app(status=500, body="backend error: TOKEN-s3cr3t-echoed")
    hd = start_healthd(config([tcp_check("db", db.port),
                               {"name": "api", "type": "http", "url": "http://127.0.0.1:%d/" % api.port,
                                "critical": False}],
                              http={"details_from": ["127.0.0.1/32"], "allow_from": ["127.0.0.0/24"]}))
    wait_check(hd, "db", lambda c: c["status"] == "up")
    wait_check(hd, "api", lambda c: c["status"] == "down")
    assert ctl(hd, "drain", "--reason", "secret-reason-42")[0] == 0

    secrets = ["TOKEN-s3cr3t", "secret-reason-42", "127.0.0.1:%d" % db.port, str(api.port), "be-test",
               "healthd", "tcp", "detail", "address", "target"]
    # In drain /ready is 503 for every load balancer (the reason stays with the detail set); /ready/deps follows
    # the dependencies only, as HAProxy's httpchk beside the agent needs.
    for path in ("/health", "/health/db", "/health/api", "/ready", "/ready/deps"):
        status, body = request_from("127.0.0.2", hd.http_port, path)
        text = body.decode()
        print("stranger %s -> %d %s" % (path, status, text.strip()))
        assert [s for s in secrets if s in text] == [], (path, text)
        assert status == {"/health": 200, "/health/db": 200, "/health/api": 503, "/ready": 503,
                          "/ready/deps": 200}[path]
        if path == "/ready":
            assert text.strip() == "drain", text
    assert json.loads(request_from("127.0.0.2", hd.http_port, "/health")[1]) == \
        {"status": "degraded", "admin": {"state": "drain"}}
    # The detail set sees everything.
    status, body = request_from("127.0.0.1", hd.http_port, "/health")
    full = json.loads(body)
    assert full["admin"]["reason"] == "secret-reason-42" and "TOKEN-s3cr3t" in full["checks"]["api"]["detail"]
    assert full["checks"]["db"]["address"] == "127.0.0.1:%d" % db.port
    # Outside allow_from: closed at accept, counted, logged once.
    refused = 0
    for _ in range(5):
        try:
            request_from("127.0.1.9", hd.http_port, "/ready")
        except OSError:
            refused += 1
    print("outside http.allow_from: %d of 5 refused" % refused)
    assert refused == 5
    assert metric(hd, "healthd_connections_refused_total", listener="http", reason="allow_from") == 5
    assert hd.log().count("refused a connection from 127.0.1.9") == 1


# --------------------------------------------------------------------------- reload

def test_reload_applies_http_and_agent_keys(start_healthd, start_tcp_listener):
    db = start_tcp_listener()
    cfg = config([tcp_check("db", db.port)])
    hd = start_healthd(cfg)
    wait_check(hd, "db", lambda c: c["status"] == "up")
    assert request_from("127.0.0.5", hd.http_port)[0] == 200
    assert agent_from("127.0.0.5", hd.agent_port) == "up 100%"

    cfg = dict(hd.config)
    cfg["http"] = {"timeout_ms": 400, "allow_from": ["127.0.0.1"], "details_from": []}
    cfg["agent"] = {"timeout_ms": 300, "allow_from": ["127.0.0.1"]}
    hd.write_config(cfg)
    rc, out, err = ctl(hd, "reload")
    assert rc == 0, (out, err)

    def closed_after(which):
        s = hd.connect(which)
        s.settimeout(5)
        t0 = time.monotonic()
        while s.recv(4096):  # the agent half-closes once its line is out, and closes at agent.timeout_ms
            pass
        if which == "agent":
            wait_until(lambda: metric(hd, "healthd_connections_open", listener="agent") == 0, 5, interval=0.02,
                       what="healthd to close the agent connection")
        took = time.monotonic() - t0
        s.close()
        return took

    http_s, agent_s = closed_after("http"), closed_after("agent")
    results = {}
    for what, fn in (("http", lambda: request_from("127.0.0.5", hd.http_port)),
                     ("agent", lambda: agent_from("127.0.0.5", hd.agent_port))):
        try:
            results[what] = fn()
        except OSError as exc:
            results[what] = exc
    print("\nafter reload: idle HTTP closed after %.2f s (http.timeout_ms 400), agent after %.2f s "
          "(agent.timeout_ms 300); from 127.0.0.5: %r" % (http_s, agent_s, results))
    assert 0.2 <= http_s < 1.5 and 0.15 <= agent_s < 1.2
    assert isinstance(results["http"], OSError)
    assert results["agent"] in ("", ) or isinstance(results["agent"], OSError)
    assert request_from("127.0.0.1", hd.http_port, "/ready")[1] == b"up\n"  # details_from [] now
