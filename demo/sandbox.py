"""sandbox.py: the firewall incident's network, built from network namespaces, for `make demo` and its test.

    app network 10.77.1.0/24                        data network 10.77.2.0/24
    lb   10.77.1.10  HAProxy :80 (haproxy/haproxy.cfg)
    be1  10.77.1.11  app :8080, healthd :9110/:9111   fw 10.77.1.1 | 10.77.2.1   db 10.77.2.10
    be2  10.77.1.12  (examples/incident/be.json)     (routes, and holds the    MariaDB :3306
    be3  10.77.1.13                                   firewall's rules)         Redis   :6379
    ops  10.77.1.20  the central webhook receiver :9000, and the users sending traffic to lb

Each host is a network namespace; the two networks are bridges (harness.Lan); fw forwards between them,
so a rule in fw's FORWARD chain is exactly what a firewall between the backends and the database does.
Nothing here touches the machine's own network: addresses, routes and rules live in the namespaces and
disappear with them.

demo/incident.py (make demo) narrates it; tests/integration/test_incident.py asserts it. Both drive the
same Sandbox, so the demo shows exactly what the test proves. The harness (tests/integration/harness)
starts every server; Sandbox.close() stops all of it and deletes the namespaces, also after a failure.
"""

import copy
import ctypes
import http.client
import json
import os
import queue
import re
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness import (  # noqa: E402
    CHECK_PASSWORD, HAProxy, HarnessError, Healthd, Lan, MariaDB, MariaDBTemplate, NetNS, Redis, WebhookReceiver,
    WorkDirs, kill_registered, registered_pids, run_healthd, wait_until,
)
from harness.proc import PYTHON, ScriptProcess  # noqa: E402

BE_JSON = os.path.join(REPO, "examples", "incident", "be.json")
HAPROXY_CFG = os.path.join(REPO, "haproxy", "haproxy.cfg")
BACKEND_APP = os.path.join(REPO, "demo", "backend_app.py")

APP_NET, DATA_NET = "10.77.1.0/24", "10.77.2.0/24"
ADDR = {"fw": "10.77.1.1", "fw-data": "10.77.2.1", "lb": "10.77.1.10", "be1": "10.77.1.11",
        "be2": "10.77.1.12", "be3": "10.77.1.13", "ops": "10.77.1.20", "db": "10.77.2.10"}
BACKENDS = ("be1", "be2", "be3")
APP_PORT, MYSQL_PORT, REDIS_PORT, WEBHOOK_PORT, FRONTEND_PORT = 8080, 3306, 6379, 9000, 80
SERVICE_PORT = {"mysql": MYSQL_PORT, "redis": REDIS_PORT}
APP_DB_USER, APP_DB_PASSWORD = "app", "app-secret"
REDIS_PASSWORD = "redis-secret"  # a Redis on a network needs one (without, it only answers loopback)
HAPROXY_BACKEND = "app"
# The check users' passwords (the harness creates MariaDB's `healthd` user with GRANT USAGE only).
CHECK_PASSWORDS = {"mysql": CHECK_PASSWORD, "redis": REDIS_PASSWORD}

# What a firewall rule does, as iptables arguments, and what a client then sees.
FIREWALL_ACTIONS = {
    "drop": (["-j", "DROP"], "packets silently dropped: connects time out"),
    "reject": (["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"],
               "rejected with ICMP 'administratively prohibited': connects fail at once"),
    "reset": (["-j", "REJECT", "--reject-with", "tcp-reset"], "rejected with a TCP reset: connection refused"),
}

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """Something in the sandbox did not behave as expected; the message says what."""


# --------------------------------------------------------------------------- timing

class Timing:
    """The detection-relevant settings, read back from the configurations actually run."""

    def __init__(self, healthd_defaults, haproxy_times, haproxy_fall, haproxy_rise):
        self.interval_s = healthd_defaults["interval_ms"] / 1000.0
        self.timeout_s = healthd_defaults["timeout_ms"] / 1000.0
        self.rise = healthd_defaults["rise"]
        self.fall = healthd_defaults["fall"]
        # as healthd: unset, they are the interval
        self.fastinterval_s = healthd_defaults.get("fastinterval_ms", healthd_defaults["interval_ms"]) / 1000.0
        self.downinterval_s = healthd_defaults.get("downinterval_ms", healthd_defaults["interval_ms"]) / 1000.0
        self.inter_s = _seconds(haproxy_times["inter"])
        self.fastinter_s = _seconds(haproxy_times["fastinter"])
        self.downinter_s = _seconds(haproxy_times["downinter"])
        self.agent_inter_s = _seconds(haproxy_times["agent-inter"])
        self.check_fall = haproxy_fall
        self.check_rise = haproxy_rise

    def healthd_down(self, silent):
        """(earliest, latest) seconds from a fault to healthd's down: `fall` failed attempts, the first
        starting within one interval, the others one fastinterval apart; with a silent DROP each attempt
        fails only at its timeout: interval + (fall - 1) x fastinterval + timeout at most."""
        extra = self.timeout_s if silent else 0.0
        return ((self.fall - 1) * self.fastinterval_s + extra,
                self.interval_s + (self.fall - 1) * self.fastinterval_s + extra)

    def haproxy_down(self, silent):
        """healthd's detection, then HAProxy's next agent poll (the agent has no fall of its own)."""
        lo, hi = self.healthd_down(silent)
        return lo, hi + self.agent_inter_s

    def healthd_up(self):
        """The first passing attempt within one downinterval, then `rise - 1` more one fastinterval apart."""
        return ((self.rise - 1) * self.fastinterval_s, self.downinterval_s + (self.rise - 1) * self.fastinterval_s)

    def haproxy_up(self):
        """healthd's recovery, then the agent's next `up` and `rise` passing httpchk polls while DOWN."""
        lo, hi = self.healthd_up()
        return lo, hi + self.agent_inter_s + self.check_rise * self.downinter_s

    def haproxy_dead_agent(self):
        """healthd itself gone: the httpchk on /ready/deps fails closed after `fall` refused checks."""
        return ((self.check_fall - 1) * self.fastinter_s,
                self.inter_s + (self.check_fall - 1) * self.fastinter_s)

    def describe(self):
        return ("healthd: interval %s, fastinterval %s, downinterval %s, timeout %s, fall %d, rise %d; "
                "HAProxy: agent-inter %s, inter %s, fastinter %s, fall %d"
                % (_fmt_s(self.interval_s), _fmt_s(self.fastinterval_s), _fmt_s(self.downinterval_s),
                   _fmt_s(self.timeout_s), self.fall, self.rise, _fmt_s(self.agent_inter_s), _fmt_s(self.inter_s),
                   _fmt_s(self.fastinter_s), self.check_fall))


def _seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", text)
    if not m:
        raise SandboxError("cannot read the HAProxy time %r" % text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 0.001}[m.group(2)]


def _fmt_s(seconds):
    return "%g ms" % (seconds * 1000) if seconds < 1 else "%g s" % seconds


# Shorter times for the automated test (same shapes, faster): healthd defaults and HAProxy's
# default-server times. The demo runs the files as they are.
FAST_HEALTHD = {"interval_ms": 300, "fastinterval_ms": 250, "downinterval_ms": 300, "timeout_ms": 250, "rise": 2,
                "fall": 2}
FAST_HAPROXY = {"inter": "300ms", "fastinter": "150ms", "downinter": "150ms", "agent-inter": "300ms"}


# --------------------------------------------------------------------------- configurations

def _sub_once(pattern, repl, text, what):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != 1:
        raise SandboxError("%s: expected %r once, found it %d times (was the file changed?)" % (what, pattern, n))
    return new


def render_haproxy_cfg(times=None):
    """haproxy/haproxy.cfg for the sandbox's lb. Changed: the log goes to stderr, the stats socket to the
    harness's path, the example server lines become be1..be3; with `times`, the default-server timings.
    Everything else (ports 9110/9111, httpchk on /ready/deps, agent-check, the frontend on :80) is the file
    as users copy it. -> (text, {inter, fastinter, downinter, agent-inter}, fall, rise)"""
    with open(HAPROXY_CFG) as f:
        text = f.read()
    what = HAPROXY_CFG
    text = _sub_once(r"^(\s*)log /dev/log local0$", r"\1log stderr format short local0 info", text, what)
    text = _sub_once(r"stats socket /run/haproxy/admin\.sock ", "stats socket {stats_socket} ", text, what)
    m = re.search(r"^\s*default-server .*$", text, re.M)
    if not m:
        raise SandboxError("%s has no default-server line" % what)
    line = m.group(0)
    for key, value in (times or {}).items():
        line = _sub_once(r"(?<=\s)%s \S+(?=\s|$)" % re.escape(key), "%s %s" % (key, value), line, what)
    text = text[:m.start()] + line + text[m.end():]
    found = {}
    for key in ("inter", "fastinter", "downinter", "agent-inter", "fall", "rise"):
        km = re.search(r"(?<=\s)%s (\S+)" % re.escape(key), line)
        if not km:
            raise SandboxError("%s: the default-server line has no %s" % (what, key))
        found[key] = km.group(1)
    for key, port in (("port", 9110), ("agent-port", 9111)):
        if not re.search(r"(?<=\s)%s %d(?=\s)" % (key, port), line):
            raise SandboxError("%s: the default-server line should have %s %d" % (what, key, port))
    lines = text.split("\n")
    servers = [i for i, l in enumerate(lines) if re.match(r"^\s*server \S+ \S+", l)]
    if not servers or servers != list(range(servers[0], servers[0] + len(servers))):
        raise SandboxError("%s: expected one block of example server lines" % what)
    indent = re.match(r"^(\s*)", lines[servers[0]]).group(1)
    lines[servers[0]:servers[-1] + 1] = ["%sserver %s %s:%d" % (indent, be, ADDR[be], APP_PORT)
                                         for be in BACKENDS]
    fall, rise = int(found.pop("fall")), int(found.pop("rise"))
    return "\n".join(lines), found, fall, rise


_JSON_TOKENS = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.S)


def strip_json_comments(text):
    """healthd's configuration allows // and /* */ comments; Python's json does not."""
    return _JSON_TOKENS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)


def load_be_json():
    with open(BE_JSON) as f:
        return json.loads(strip_json_comments(f.read()))


def backend_config(base, name, workdir, healthd_overrides=None):
    """examples/incident/be.json for backend `name`: its node_name, its password files and alert spool in
    workdir, and the test's faster defaults when given. Its addresses are the sandbox's already."""
    cfg = copy.deepcopy(base)
    cfg["node_name"] = name
    for check in cfg["checks"]:
        if check.get("password_file"):
            secret = CHECK_PASSWORDS.get(check["type"])
            if secret is None:
                raise SandboxError("%s: no password known for the %s check" % (BE_JSON, check["name"]))
            path = os.path.join(workdir, "%s.password" % check["name"])
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
            check["password_file"] = path
    if healthd_overrides:
        cfg.setdefault("defaults", {}).update(healthd_overrides)
    if "alerts" in cfg:
        cfg["alerts"]["spool_dir"] = os.path.join(workdir, "spool")
    return cfg


# --------------------------------------------------------------------------- processes

class BackendApp(ScriptProcess):
    """demo/backend_app.py inside a backend's namespace."""

    kind = "app"
    expect = "backend_app.py"

    def __init__(self, workdir, netns, name):
        super().__init__(workdir, netns)
        self.name = name
        self.port = APP_PORT

    def _argv(self):
        return [PYTHON, BACKEND_APP, "--name", self.name, "--port", self.port, "--bind", "0.0.0.0",
                "--mysql", "%s:%d" % (ADDR["db"], MYSQL_PORT), "--mysql-user", APP_DB_USER,
                "--mysql-password", APP_DB_PASSWORD, "--redis", "%s:%d" % (ADDR["db"], REDIS_PORT),
                "--redis-password", REDIS_PASSWORD,
                "--timeout", "1.0"]


class Backend:
    def __init__(self, name, ns, app, healthd):
        self.name, self.ns, self.app, self.healthd = name, ns, app, healthd
        self.ip = ADDR[name]


def _enter_netns(name):
    """Moves the calling thread into network namespace `name` (threads have their own)."""
    fd = os.open("/run/netns/%s" % name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (name, os.strerror(err)))
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- traffic

class Request:
    __slots__ = ("t_sent", "t_done", "status", "backend", "error")

    def __init__(self, t_sent):
        self.t_sent, self.t_done, self.status, self.backend, self.error = t_sent, None, None, None, None

    @property
    def ok(self):
        return self.status == 200

    def outcome(self):
        if self.error:
            return self.error
        return "%s %s" % (self.status, self.backend or "")


def _one_line(body):
    """An answer's body as one short line: HAProxy's HTML error pages become "502 Bad Gateway: why"."""
    text = body.decode("utf-8", "replace")
    m = re.search(r"<h1>(.*?)</h1>(.*)", text, re.S)
    if m:
        text = "%s: %s" % (m.group(1), re.sub(r"<[^>]*>", " ", m.group(2)))
    return " ".join(text.split())[:160]


class Traffic:
    """A bounded stream of `GET /` through the load balancer, sent from the ops host at `rate` per second
    by a pool of worker threads (each moved into ops's namespace), each request with its own timeout.
    Times are wall-clock (time.time()), like the webhook receiver's."""

    def __init__(self, ns, host, port, rate=20.0, workers=24, timeout=5.0, max_seconds=300.0):
        self.ns, self.host, self.port = ns, host, port
        self.rate, self.n_workers, self.timeout = rate, workers, timeout
        self.max_requests = int(rate * max_seconds)
        self.max_seconds = max_seconds
        self.jobs = queue.Queue()
        self.done = []
        self.inflight = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.errors = []

    def start(self):
        for i in range(self.n_workers):
            t = threading.Thread(target=self._worker, name="traffic-%d" % i, daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._schedule, name="traffic-schedule", daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for _ in range(self.n_workers):
            self.jobs.put(None)
        for t in self.threads:
            t.join(self.timeout + 2)
        self.threads = []

    def _schedule(self):
        t0 = time.monotonic()
        for i in range(self.max_requests):
            if self.stopping.wait(max(0.0, t0 + i / self.rate - time.monotonic())):
                return
            if time.monotonic() - t0 > self.max_seconds:
                return
            self.jobs.put(i)

    def _worker(self):
        try:
            _enter_netns(self.ns.name)
        except OSError as exc:
            self.errors.append(str(exc))
            return
        while True:
            job = self.jobs.get()
            if job is None or self.stopping.is_set():
                return
            req = Request(time.time())
            with self.lock:
                self.inflight.add(req)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read()
                req.status = resp.status
                req.backend = resp.getheader("X-Backend")
                if resp.status != 200:
                    text = _one_line(body)
                    req.error = text if text.startswith(str(resp.status)) else "%d %s" % (resp.status, text)
            except OSError as exc:
                req.error = "%s: %s" % (type(exc).__name__, exc)
            except http.client.HTTPException as exc:
                req.error = "%s: %s" % (type(exc).__name__, exc)
            finally:
                conn.close()
            req.t_done = time.time()
            with self.lock:
                self.inflight.discard(req)
                self.done.append(req)

    def requests(self, since=None, until=None):
        """Completed requests sent in [since, until)."""
        with self.lock:
            items = list(self.done)
        return [r for r in items if (since is None or r.t_sent >= since) and (until is None or r.t_sent < until)]

    def wait_settled(self, until, timeout=None):
        """Waits until every request sent before `until` has completed (each has its own timeout)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout + 2)
        while time.monotonic() < deadline:
            with self.lock:
                pending = [r for r in self.inflight if r.t_sent < until]
            if not pending and time.time() >= until:
                return True
            time.sleep(0.05)
        return False


# --------------------------------------------------------------------------- the sandbox

class Sandbox:
    """Builds, runs and removes the incident's network. `fast` uses the test's short timings;
    `progress(text)` is told about each setup step."""

    def __init__(self, fast=False, progress=None):
        self.fast = fast
        self.progress = progress or (lambda text: None)
        self.workdirs = None
        self.namespaces = []     # NetNS, deleted last
        self.processes = []      # objects with close(), stopped in reverse order
        self.rules = []          # active firewall rules (argument lists for -D)
        self.ns = {}
        self.backends = {}
        self.db = self.redis = self.haproxy = self.receiver = None
        self.traffic = None
        self.timing = None
        self.base_config = load_be_json()
        self.haproxy_cfg_text = None
        self.failure_logs = ""
        # Processes registered before the sandbox (a test run's shared servers) are not the sandbox's to kill.
        self.foreign_pids = registered_pids()

    # -- life cycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _own(self, obj):
        self.processes.append(obj)
        return obj

    def start(self):
        try:
            self._build()
        except BaseException:
            self.failure_logs = self.log_tails()
            self.close()
            raise
        return self

    def _build(self):
        self.workdirs = WorkDirs(prefix="hdt-incident-")
        self.progress("network namespaces: app network %s, data network %s, a firewall between them"
                      % (APP_NET, DATA_NET))
        for name in ("sw-app", "sw-data", "fw", "db", "lb", "ops") + BACKENDS:
            ns = NetNS(name)
            self.namespaces.append(ns)
            ns.create()
            self.ns[name] = ns
        app_lan = Lan(self.ns["sw-app"], APP_NET)
        data_lan = Lan(self.ns["sw-data"], DATA_NET)
        app_lan.attach(self.ns["fw"], ADDR["fw"])
        data_lan.attach(self.ns["fw"], ADDR["fw-data"])
        # A router; its REJECTs answer every packet (Linux rate-limits ICMP errors to about one per second
        # per peer by default, which would turn some rejected connects into timeouts).
        self.ns["fw"].run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"])
        data_lan.attach(self.ns["db"], ADDR["db"])
        self.ns["db"].ip("route", "add", APP_NET, "via", ADDR["fw-data"])
        for name in ("lb", "ops") + BACKENDS:
            app_lan.attach(self.ns[name], ADDR[name])
            self.ns[name].ip("route", "add", DATA_NET, "via", ADDR["fw"])

        self.progress("db %s: MariaDB on :%d and Redis on :%d" % (ADDR["db"], MYSQL_PORT, REDIS_PORT))
        template = MariaDBTemplate(self.workdirs.new("mariadb-template"))
        d = self.workdirs.new("mariadb")
        self.db = self._own(MariaDB(d, template, netns=self.ns["db"], port=MYSQL_PORT, bind="0.0.0.0"))
        self.db.start()
        self.db.sql("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'; GRANT USAGE ON *.* TO '%s'@'%%'"
                    % (APP_DB_USER, APP_DB_PASSWORD, APP_DB_USER))
        self.redis = self._own(Redis(self.workdirs.new("redis"), password=REDIS_PASSWORD, netns=self.ns["db"],
                                     port=REDIS_PORT, bind="0.0.0.0"))
        self.redis.start()

        self.progress("ops %s: the central webhook receiver on :%d" % (ADDR["ops"], WEBHOOK_PORT))
        self.receiver = self._own(WebhookReceiver(self.workdirs.new("receiver"), port=WEBHOOK_PORT,
                                                  netns=self.ns["ops"], bind="0.0.0.0"))
        self.receiver.start()

        overrides = FAST_HEALTHD if self.fast else None
        for name in BACKENDS:
            self.progress("%s %s: the application on :%d, healthd on :9110 (HTTP) and :9111 (agent)"
                          % (name, ADDR[name], APP_PORT))
            ns = self.ns[name]
            app = self._own(BackendApp(self.workdirs.new("app-" + name), ns, name))
            app.start()
            d = self.workdirs.new("healthd-" + name)
            hd = self._own(Healthd(backend_config(self.base_config, name, d, overrides), d, netns=ns,
                                   bind="0.0.0.0"))
            hd.start(wait_ready=True)
            self.backends[name] = Backend(name, ns, app, hd)

        text, times, fall, rise = render_haproxy_cfg(FAST_HAPROXY if self.fast else None)
        self.haproxy_cfg_text = text
        defaults = dict(self.base_config.get("defaults", {}))
        defaults.update(overrides or {})
        self.timing = Timing(defaults, times, fall, rise)
        self.progress("lb %s: HAProxy on :%d, checking each backend's healthd" % (ADDR["lb"], FRONTEND_PORT))
        self.haproxy = self._own(HAProxy(text, self.workdirs.new("haproxy"), netns=self.ns["lb"]))
        self.haproxy.start()
        for name in BACKENDS:
            self.wait_server(name, lambda r: r["status"] == "UP" and r["agent_status"] == "L7OK"
                             and r["weight"] == "100", timeout=30, what="%s UP in HAProxy" % name)

    def close(self):
        """Stops everything, removes every rule and namespace. Safe to call twice, and after a failed start."""
        errors = []
        if self.traffic is not None:
            try:
                self.traffic.stop()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append("traffic: %r" % (exc,))
            self.traffic = None
        for rule in list(self.rules):
            try:
                self.ns["fw"].iptables("-D", *rule)
            except Exception as exc:  # noqa: BLE001
                errors.append("firewall rule: %r" % (exc,))
            self.rules.remove(rule)
        while self.processes:
            obj = self.processes.pop()
            try:
                obj.close()
            except Exception as exc:  # noqa: BLE001
                errors.append("%s: %r" % (getattr(obj, "kind", obj), exc))
        while self.namespaces:
            ns = self.namespaces.pop()
            try:
                ns.delete()
            except Exception as exc:  # noqa: BLE001
                errors.append("%s: %r" % (ns.name, exc))
        leftovers = kill_registered(keep=self.foreign_pids)
        if leftovers:
            errors.append("killed leftover processes: " + ", ".join(leftovers))
        if self.workdirs is not None:
            self.workdirs.cleanup()
            self.workdirs = None
        if errors:
            raise SandboxError("cleanup problems: " + "; ".join(errors))

    # -- HAProxy's view
    def server_row(self, name):
        return self.haproxy.server(HAPROXY_BACKEND, name)

    def rows(self):
        return {r["svname"]: r for r in self.haproxy.show_stat()
                if r.get("pxname") == HAPROXY_BACKEND and r.get("svname") in BACKENDS}

    def wait_server(self, name, pred, timeout, what=None, interval=0.05):
        """Polls HAProxy until pred(row) holds -> (row, wall time of that poll)."""
        box = {}

        def probe():
            box["row"] = self.server_row(name)
            box["t"] = time.time()
            return pred(box["row"])

        try:
            wait_until(probe, timeout, interval=interval, what=what or "HAProxy's view of %s" % name)
        except AssertionError as exc:
            raise SandboxError("%s; HAProxy's last row: %s" % (exc, _row_text(box.get("row")))) from None
        return box["row"], box["t"]

    # -- the firewall in fw
    def rule_args(self, backend, service, action):
        if service not in SERVICE_PORT:
            raise ValueError("service must be one of %s" % ", ".join(SERVICE_PORT))
        return ["FORWARD", "-s", ADDR[backend], "-d", ADDR["db"], "-p", "tcp", "--dport",
                str(SERVICE_PORT[service])] + FIREWALL_ACTIONS[action][0]

    def firewall(self, backend, service, action):
        """Replaces any rule for backend -> db:service with `action` (drop, reject, reset).
        Returns (the iptables command as a person would type it, wall time once it is in place)."""
        self.restore(backend, service)
        rule = self.rule_args(backend, service, action)
        self.ns["fw"].iptables("-A", *rule)
        t = time.time()
        self.rules.append(rule)
        return "iptables -A " + " ".join(rule), t

    def restore(self, backend=None, service=None):
        """Removes the rules for backend -> db:service (all of them by default). -> wall time."""
        port = str(SERVICE_PORT[service]) if service else None
        for rule in list(self.rules):
            if (backend is None or rule[2] == ADDR[backend]) and (port is None or rule[8] == port):
                self.ns["fw"].iptables("-D", *rule)
                self.rules.remove(rule)
        return time.time()

    def firewall_listing(self):
        return self.ns["fw"].iptables("-S", "FORWARD").stdout.strip()

    # -- traffic, webhooks, healthd
    def start_traffic(self, rate=20.0):
        if self.traffic is None:
            self.traffic = Traffic(self.ns["ops"], ADDR["lb"], FRONTEND_PORT, rate=rate).start()
        return self.traffic

    def posts(self, since=None):
        return [p for p in self.receiver.posts() if since is None or p["t"] >= since]

    def kill_healthd(self, name):
        """SIGKILL, like a crash. -> wall time once it is gone."""
        self.backends[name].healthd.kill()
        return time.time()

    def restart_healthd(self, name):
        """Starts it again (same config and ports). -> wall time at which it was started."""
        hd = self.backends[name].healthd
        t = time.time()
        hd.start(wait_ready=True)
        return t

    def fleet(self, *args, timeout=20):
        """`healthd fleet ARGS URL...` from the ops host, polling every backend's healthd -> (rc, stdout, stderr)."""
        return run_healthd(["fleet"] + list(args) + ["http://%s:9110" % ADDR[b] for b in BACKENDS],
                           timeout=timeout, netns=self.ns["ops"])

    def log_tails(self, lines=30):
        """The last lines of every log, for a failure report."""
        out = []
        for obj in self.processes:
            fn = getattr(obj, "log_tail", None)
            if fn is None:
                continue
            try:
                text = fn(lines)
            except Exception as exc:  # noqa: BLE001
                text = "<cannot read: %r>" % (exc,)
            desc = obj.describe() if hasattr(obj, "describe") else repr(obj)
            out.append("--- %s\n%s" % (desc, text))
        return "\n".join(out)


def _row_text(row):
    if not row:
        return "none"
    return "status=%s weight=%s check=%s agent=%s last_agt=%r" % (
        row.get("status"), row.get("weight"), row.get("check_status"), row.get("agent_status"),
        row.get("last_agt"))


def row_text(row):
    return _row_text(row)


def namespaces_left():
    """Namespaces of ours (hdt-*) that still exist: for a check after cleanup."""
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith("hdt-"))
    except FileNotFoundError:
        return []


def check_environment():
    """What is missing to run the sandbox, as a list of readable problems."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (it creates network namespaces and firewall rules)")
    for tool in ("ip", "iptables", "mariadbd", "mariadb-install-db", "mariadb", "redis-server", "redis-cli",
                 "haproxy"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin").split(":") + ["/usr/sbin", "/sbin"]):
            problems.append("%s not found (make deps installs it)" % tool)
    if not os.path.isfile(HAPROXY_CFG):
        problems.append("%s is missing" % HAPROXY_CFG)
    return problems


__all__ = ["Sandbox", "SandboxError", "Timing", "Traffic", "Request", "BACKENDS", "ADDR", "FIREWALL_ACTIONS",
           "render_haproxy_cfg", "backend_config", "load_be_json", "row_text", "namespaces_left",
           "check_environment", "HarnessError"]
