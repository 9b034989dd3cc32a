"""pytest fixtures of the healthd integration tests (the classes are in harness/).

Factories (function scope; everything they start is stopped, and its temp dir removed,
at the end of the test, also when it fails):
    make_netns(label="ns")                      -> NetNS
    make_lan(subnet="10.77.0.0/24")             -> Lan (bridge in its own namespace)
    netns_resolv_conf(ns, text)                 gives a namespace its own /etc/resolv.conf
    tmpfs                                       a 2 MiB tmpfs on a fresh directory (its path)
    start_healthd(config, netns=None, extra_args=(), wait_ready=True, env=None,
                  bind="127.0.0.1")             -> Healthd
    start_mariadb(netns=None, log_bin=False, replica_of=None, bind="127.0.0.1",
                  primary_host=None, port=None, extra_args=(), grants=()) -> MariaDB
    start_redis(password=None, replica_of=None, netns=None, bind="127.0.0.1",
                primary_host=None, port=None)   -> Redis
    start_haproxy(cfg_text, netns=None)         -> HAProxy
    start_receiver(mode="ok", port=None, netns=None, bind="127.0.0.1") -> WebhookReceiver
    start_alertmanager(receiver_url, netns=None, **kw) -> Alertmanager
    start_tcp_listener(port=None, netns=None, mode="accept", bind="127.0.0.1",
                       reply=None)              -> TcpListener
    start_http_app(port=None, netns=None, status=200, body="ok", delay=0.0,
                   bind="127.0.0.1")            -> HttpApp
    start_tcp_proxy(target, delay=0.2, port=None, netns=None, bind="127.0.0.1") -> TcpProxy
Shared:
    mariadb      one MariaDB for the session, started on first use; after each test it is
                 started again if stopped and read_only is reset.  Tests that change
                 more than that should use start_mariadb().
    workdirs     the session's temp root (WorkDirs)
When a test fails, the log tails of everything it started are added to its report.
"""

import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    Alertmanager, HAProxy, Prometheus, Healthd, HttpApp, Lan, MariaDB, MariaDBTemplate, NetNS, Redis,
    TcpListener, TcpProxy, WebhookReceiver, WorkDirs, kill_registered, unmount,
)


# --------------------------------------------------------------------------- plumbing

@pytest.fixture(scope="session")
def workdirs():
    wd = WorkDirs()
    yield wd
    leftovers = kill_registered()
    wd.cleanup()
    if leftovers:
        sys.stderr.write("harness: killed leftover processes: %s\n" % ", ".join(leftovers))


class _Owner:
    """Objects started for one test; closed in reverse order at teardown."""

    def __init__(self, request, workdirs):
        self.request = request
        self.workdirs = workdirs
        self.items = []  # (obj, workdir or None)
        request.addfinalizer(self.close)

    def new_dir(self, name):
        return self.workdirs.new(name)

    def adopt(self, obj, workdir=None):
        self.items.append((obj, workdir))
        node = self.request.node
        if not hasattr(node, "_hdt_objects"):
            node._hdt_objects = []
        node._hdt_objects.append(obj)
        return obj

    def start(self, obj, workdir, *args, **kw):
        self.adopt(obj, workdir)
        obj.start(*args, **kw)
        return obj

    def close(self):
        errors = []
        while self.items:
            obj, workdir = self.items.pop()
            try:
                closer = getattr(obj, "close", None) or getattr(obj, "delete")
                closer()
            except Exception as exc:  # noqa: BLE001 - reported after full cleanup
                errors.append("%r: %r" % (obj, exc))
            if workdir:
                self.workdirs.remove(workdir)
        if errors:
            raise RuntimeError("harness teardown problems: " + "; ".join(errors))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when in ("setup", "call") and rep.failed:
        for obj in getattr(item, "_hdt_objects", []):
            fn = getattr(obj, "log_tail", None)
            if fn is None:
                continue
            try:
                text = fn(60)
            except Exception as exc:  # noqa: BLE001
                text = "<cannot read log: %r>" % (exc,)
            desc = obj.describe() if hasattr(obj, "describe") else repr(obj)
            rep.sections.append(("log tail: %s" % desc, text))


# --------------------------------------------------------------------------- namespaces

@pytest.fixture
def make_netns(request, workdirs):
    owner = _Owner(request, workdirs)

    def make(label="ns"):
        ns = NetNS(label)
        owner.adopt(ns)
        return ns.create()

    return make


@pytest.fixture
def make_lan(request, workdirs, make_netns):
    def make(subnet="10.77.0.0/24"):
        return Lan(make_netns("sw"), subnet)

    return make


@pytest.fixture
def netns_resolv_conf():
    """Gives a namespace its own /etc/resolv.conf (ip netns exec bind-mounts /etc/netns/NAME/*)."""
    made = []

    def write(ns, text):
        d = os.path.join("/etc/netns", ns.name)
        os.makedirs(d, exist_ok=True)
        made.append(d)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write(text)

    yield write
    for d in made:
        shutil.rmtree(d, ignore_errors=True)
    try:
        os.rmdir("/etc/netns")
    except OSError:
        pass  # not empty (someone else's namespace) or already gone


@pytest.fixture
def tmpfs(workdirs):
    """A 2 MiB tmpfs mounted on a fresh directory; unmounted at the end."""
    path = workdirs.new("tmpfs")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", path], check=True,
                   capture_output=True, timeout=10)
    try:
        yield path
    finally:
        unmount(path)


# --------------------------------------------------------------------------- healthd

@pytest.fixture
def start_healthd(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(config, netns=None, extra_args=(), wait_ready=True, env=None, bind="127.0.0.1"):
        d = owner.new_dir("healthd")
        hd = Healthd(config, d, netns=netns, extra_args=extra_args, env=env, bind=bind)
        return owner.start(hd, d, wait_ready=wait_ready)

    return start


# --------------------------------------------------------------------------- MariaDB

@pytest.fixture(scope="session")
def mariadb_template(workdirs):
    return MariaDBTemplate(workdirs.new("mariadb-template"))


@pytest.fixture(scope="session")
def _mariadb_session(workdirs, mariadb_template):
    d = workdirs.new("mariadb")
    db = MariaDB(d, mariadb_template)
    try:
        db.start()
        yield db
    finally:
        db.close()


@pytest.fixture
def mariadb(_mariadb_session):
    db = _mariadb_session
    yield db
    if not db.running:
        db.start()
    if db.variable("read_only") != "OFF":
        db.set_read_only(False)


@pytest.fixture
def start_mariadb(request, workdirs, mariadb_template, make_netns):
    owner = _Owner(request, workdirs)

    def start(netns=None, log_bin=False, replica_of=None, bind="127.0.0.1",
              primary_host=None, port=None, extra_args=(), grants=()):
        d = owner.new_dir("mariadb")
        db = MariaDB(d, mariadb_template, netns=netns, port=port, bind=bind,
                     log_bin=log_bin, extra_args=extra_args, grants=grants)
        owner.start(db, d)
        if replica_of is not None:
            db.make_replica_of(replica_of, primary_host=primary_host)
        return db

    return start


# --------------------------------------------------------------------------- Redis, HAProxy

@pytest.fixture
def start_redis(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(password=None, replica_of=None, netns=None, bind="127.0.0.1",
              primary_host=None, port=None):
        d = owner.new_dir("redis")
        r = Redis(d, password=password, replica_of=replica_of, netns=netns, port=port,
                  bind=bind, primary_host=primary_host)
        return owner.start(r, d)

    return start


@pytest.fixture
def start_haproxy(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(cfg_text, netns=None):
        d = owner.new_dir("haproxy")
        return owner.start(HAProxy(cfg_text, d, netns=netns), d)

    return start


# --------------------------------------------------------------------------- webhooks

@pytest.fixture
def start_receiver(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(mode="ok", port=None, netns=None, bind="127.0.0.1"):
        d = owner.new_dir("receiver")
        return owner.start(WebhookReceiver(d, mode=mode, port=port, netns=netns, bind=bind), d)

    return start


@pytest.fixture
def start_alertmanager(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(receiver_url, netns=None, **kw):
        d = owner.new_dir("alertmanager")
        return owner.start(Alertmanager(d, receiver_url, netns=netns, **kw), d)

    return start


@pytest.fixture
def start_prometheus(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(targets, netns=None, **kw):
        d = owner.new_dir("prometheus")
        return owner.start(Prometheus(d, targets, netns=netns, **kw), d)

    return start


# --------------------------------------------------------------------------- small peers

@pytest.fixture
def start_tcp_listener(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(port=None, netns=None, mode="accept", bind="127.0.0.1", reply=None):
        d = owner.new_dir("tcp")
        lst = TcpListener(d, port=port, netns=netns, mode=mode, bind=bind, reply=reply)
        return owner.start(lst, d)

    return start


@pytest.fixture
def start_http_app(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(port=None, netns=None, status=200, body="ok", delay=0.0, bind="127.0.0.1"):
        d = owner.new_dir("http")
        app = HttpApp(d, port=port, netns=netns, status=status, body=body, delay=delay,
                      bind=bind)
        return owner.start(app, d)

    return start


@pytest.fixture
def start_tcp_proxy(request, workdirs, make_netns):
    owner = _Owner(request, workdirs)

    def start(target, delay=0.2, port=None, netns=None, bind="127.0.0.1"):
        d = owner.new_dir("proxy")
        return owner.start(TcpProxy(d, target, delay=delay, port=port, netns=netns, bind=bind), d)

    return start
