"""The http check against real servers: the kind of every failure, TLS, headers and methods,
DNS through a namespace's own resolv.conf, and 100 checks in flight at once."""

import os
import signal
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import wait_until

FAST = {"interval_ms": 300, "timeout_ms": 250, "rise": 1, "fall": 1}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def config(*checks, **defaults):
    d = dict(FAST)
    d.update(defaults)
    return {"defaults": d, "checks": list(checks)}


def http_check(name, url, **keys):
    c = {"name": name, "type": "http", "url": url}
    c.update(keys)
    return c


def result(hd, name, pred=None, timeout=5.0):
    """The check's JSON once it has a result (and pred(check) holds)."""
    def ready():
        _, c = hd.json("/health/" + name)
        if c is None or c.get("status") == "pending":
            return None
        return c if pred is None or pred(c) else None
    return wait_until(ready, timeout, what="check %s with a result%s"
                      % (name, "" if pred is None else " matching the predicate"))


def is_kind(kind):
    return lambda c: c["kind"] == kind


@pytest.fixture
def healthd(start_healthd):
    """start_healthd, and at the end: SIGTERM must end it cleanly, with no sanitizer report."""
    started = []

    def start(cfg, **kw):
        hd = start_healthd(cfg, **kw)
        started.append(hd)
        return hd

    yield start
    for hd in started:
        if hd.running:
            rc = hd.stop()
            assert rc == 0, "healthd exited with %s:\n%s" % (rc, hd.log_tail(60))
        log = hd.log()
        for mark in SANITIZER_MARKS:
            assert mark not in log, "sanitizer report in the healthd log:\n%s" % hd.log_tail(80)


class LocalServer:
    """An HTTP(S) server in a thread of the test, recording every request.
    GET /status/NNN answers NNN; GET /big answers 200 KiB with "MARKER" at the end; else 200."""

    def __init__(self, certfile=None, keyfile=None):
        self.requests = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *a):
                pass

            def answer(self, with_body=True):
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length) if length else b""
                with lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": dict(self.headers.items()),
                                           "body": body_in.decode("utf-8", "replace")})
                status, body = 200, b"all dependencies fine\n"
                if self.path.startswith("/status/"):
                    status = int(self.path.split("/")[2])
                    body = b"answer %d\n" % status
                elif self.path == "/big":
                    body = b"x" * (200 * 1024) + b"MARKER"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self):
                self.answer()

            def do_POST(self):
                self.answer()

            def do_HEAD(self):
                self.answer(with_body=False)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # failed TLS handshakes are part of the tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if certfile else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def url(self, path="/", host="127.0.0.1"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def local_server():
    servers = []

    def start(**kw):
        s = LocalServer(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def self_signed(workdirs):
    """A self-signed certificate for 127.0.0.1 (and only that), made with openssl."""
    d = workdirs.new("tls")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=healthd test",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


# --------------------------------------------------------------------------- answers

def test_status_and_body_decide(healthd, start_http_app):
    ok = start_http_app(body="db ok, cache ok")
    broken = start_http_app(status=500, body="database unreachable")
    hd = healthd(config(
        http_check("app", ok.url("/health"), expect_body="cache ok"),
        http_check("app_500", broken.url("/health")),
        http_check("app_body", ok.url("/health"), expect_body="ready"),
    ))
    c = result(hd, "app", is_kind("ok"))
    assert c["status"] == "up"
    assert c["address"] == "127.0.0.1:%d" % ok.port and c["source_addr"] == "127.0.0.1"
    assert c["target"] == ok.url("/health")
    assert c["latency_ms"] < FAST["timeout_ms"] + 50

    c = result(hd, "app_500")
    assert (c["status"], c["kind"]) == ("down", "http_status")
    assert "status 500" in c["detail"] and "database unreachable" in c["detail"], c["detail"]

    c = result(hd, "app_body")
    assert (c["status"], c["kind"]) == ("down", "protocol")
    assert '"ready"' in c["detail"] and "db ok, cache ok" in c["detail"], c["detail"]

    broken.set(status=200, body="recovered")
    c = result(hd, "app_500", is_kind("ok"))
    assert c["status"] == "up"


def test_expect_status_codes_ranges_and_body_cap(healthd, local_server):
    srv = local_server()
    hd = healthd(config(
        http_check("s204", srv.url("/status/204")),
        http_check("s404_default", srv.url("/status/404")),
        http_check("s404_expected", srv.url("/status/404"), expect_status=404),
        http_check("s301_list", srv.url("/status/301"), expect_status="200-204, 301,302"),
        http_check("s503_class", srv.url("/status/503"), expect_status="2xx,3xx"),
        http_check("big_far", srv.url("/big"), expect_body="MARKER"),
        http_check("big_near", srv.url("/big"), expect_body="xxxx"),
    ))
    assert result(hd, "s204")["kind"] == "ok"
    c = result(hd, "s404_default")
    assert c["kind"] == "http_status" and "status 404, expected 2xx" in c["detail"], c["detail"]
    assert result(hd, "s404_expected")["kind"] == "ok"
    assert result(hd, "s301_list")["kind"] == "ok"
    c = result(hd, "s503_class")
    assert c["kind"] == "http_status" and "expected 2xx,3xx" in c["detail"], c["detail"]
    # Only the first 64 KiB are read: a marker after them is not found, one inside them is.
    c = result(hd, "big_far")
    assert c["kind"] == "protocol" and "first 65536 bytes" in c["detail"], c["detail"]
    assert result(hd, "big_near")["kind"] == "ok"


def test_headers_methods_and_body_are_sent(healthd, local_server):
    srv = local_server()
    hd = healthd(config(
        http_check("get", srv.url("/get"), headers={"X-Check": "healthd", "Authorization": "Bearer t0k3n",
                                                   "Host": "app.example"}),
        http_check("head", srv.url("/head"), method="HEAD"),
        http_check("post", srv.url("/post"), method="POST", body='{"ping": 1}',
                   headers={"Content-Type": "application/json"}),
    ))
    for name in ("get", "head", "post"):
        assert result(hd, name)["kind"] == "ok", name
    by_path = {}
    for r in list(srv.requests):
        by_path.setdefault(r["path"], r)
    get, head, post = by_path["/get"], by_path["/head"], by_path["/post"]
    assert get["method"] == "GET"
    assert get["headers"]["X-Check"] == "healthd"
    assert get["headers"]["Authorization"] == "Bearer t0k3n"
    assert get["headers"]["Host"] == "app.example"
    assert get["headers"]["User-Agent"].startswith("healthd/")
    assert head["method"] == "HEAD"
    assert (post["method"], post["body"]) == ("POST", '{"ping": 1}')
    assert post["headers"]["Content-Type"] == "application/json"


def test_secrets_in_the_url_stay_out_of_health(healthd, local_server):
    srv = local_server()
    url = "http://monitor:s3cret@127.0.0.1:%d/get?token=t0k3n" % srv.port
    hd = healthd(config(http_check("app", url)))
    c = result(hd, "app", is_kind("ok"))
    assert c["target"] == "http://127.0.0.1:%d/get" % srv.port
    _, _, body = hd.get("/health")
    assert b"s3cret" not in body and b"t0k3n" not in body
    assert srv.requests[0]["path"] == "/get?token=t0k3n"
    assert srv.requests[0]["headers"]["Authorization"].startswith("Basic ")


# --------------------------------------------------------------------------- TLS

def test_tls_self_signed(healthd, local_server, self_signed):
    cert, key = self_signed
    tls = local_server(certfile=cert, keyfile=key)
    plain = local_server()
    hd = healthd(config(
        http_check("no_ca", tls.url("/health")),
        http_check("with_ca", tls.url("/health"), ca=cert),
        http_check("no_verify", tls.url("/health"), tls_verify=False),
        http_check("wrong_name", tls.url("/health", host="localhost"), ca=cert),
        http_check("not_tls", plain.url("/health").replace("http:", "https:"), ca=cert),
    ))
    c = result(hd, "no_ca")
    assert c["kind"] == "tls" and "set \"ca\"" in c["detail"], c["detail"]
    assert c["address"] == "127.0.0.1:%d" % tls.port
    c = result(hd, "with_ca", is_kind("ok"))
    assert c["status"] == "up" and c["target"].startswith("https://")
    assert result(hd, "no_verify", is_kind("ok"))["status"] == "up"
    c = result(hd, "wrong_name")
    assert c["kind"] == "tls" and "localhost" in c["detail"], c["detail"]
    c = result(hd, "not_tls")
    assert c["kind"] == "tls" and "does not speak TLS" in c["detail"], c["detail"]


# --------------------------------------------------------------------------- transport failures

def test_refused(healthd, start_tcp_listener):
    gone = start_tcp_listener()
    port = gone.port
    gone.stop()
    hd = healthd(config(http_check("app", "http://127.0.0.1:%d/health" % port)))
    c = result(hd, "app")
    assert c["kind"] == "refused" and c["address"] == "127.0.0.1:%d" % port
    assert "Connection refused" in c["detail"], c["detail"]


def test_hung_server_times_out_in_the_response(healthd, start_tcp_listener):
    silent = start_tcp_listener(mode="silent")
    hd = healthd(config(http_check("app", "http://127.0.0.1:%d/health" % silent.port)))
    c = result(hd, "app")
    assert c["kind"] == "timeout", c
    assert "connected to 127.0.0.1:%d" % silent.port in c["detail"], c["detail"]
    assert "no complete answer" in c["detail"], c["detail"]
    assert c["latency_ms"] <= FAST["timeout_ms"] + 100


def test_dropped_connect_times_out_in_connect(healthd, make_netns):
    ns = make_netns("drop")
    ns.block(8080, how="drop")
    hd = healthd(config(http_check("app", "http://127.0.0.1:8080/health")), netns=ns)
    c = result(hd, "app")
    assert c["kind"] == "timeout", c
    assert c["detail"].startswith("connect 127.0.0.1:8080: no answer within"), c["detail"]
    assert c["latency_ms"] <= FAST["timeout_ms"] + 100


@pytest.mark.parametrize("peer", ["garbage", "redis"])
def test_not_http_is_protocol(healthd, start_tcp_listener, start_redis, peer):
    if peer == "garbage":
        port = start_tcp_listener(reply=b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").port
    else:
        port = start_redis().port
    hd = healthd(config(http_check("app", "http://127.0.0.1:%d/" % port)))
    c = result(hd, "app")
    assert c["kind"] == "protocol", c
    assert "no valid HTTP answer" in c["detail"], c["detail"]


def test_dns_failure_and_a_dns_server_that_never_answers(healthd, make_netns, netns_resolv_conf):
    """Names resolve through the namespace's own resolv.conf, so no query leaves the test: nothing
    listens on 127.0.0.1:53 (an immediate failure), or a DROP rule swallows the query (curl's
    deadline ends the resolve, and the loop keeps serving meanwhile)."""
    ns = make_netns("dns")
    netns_resolv_conf(ns, "nameserver 127.0.0.1\n")
    hd = healthd(config(http_check("nx", "http://healthd-test.invalid/health")), netns=ns)
    c = result(hd, "nx")
    assert c["kind"] == "dns", c
    assert "healthd-test.invalid" in c["detail"], c["detail"]
    assert hd.stop() == 0

    ns.iptables("-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP")
    hd2 = healthd(config(http_check("silent_dns", "http://healthd-test.invalid/health")), netns=ns)
    c = result(hd2, "silent_dns")
    assert c["kind"] == "timeout", c
    assert c["detail"].startswith("resolve healthd-test.invalid:80: no answer within"), c["detail"]
    # glibc waits 5 s for the dropped query; the loop must not: /live answers at once throughout.
    worst = 0.0
    for _ in range(10):
        t0 = time.monotonic()
        status, _, _ = hd2.get("/live", timeout=3.0)
        worst = max(worst, time.monotonic() - t0)
        assert status == 200
        time.sleep(0.1)
    assert worst < 0.5, "the loop stalled for %.3f s" % worst
    c = result(hd2, "silent_dns")
    assert c["latency_ms"] <= FAST["timeout_ms"] + 100


# --------------------------------------------------------------------------- scale and life cycle

def test_100_checks_in_flight_at_once(healthd, start_http_app):
    """Each request takes 1 s at the app, the first starts are spread over 1 s: all 100 overlap,
    and every one must still end within its own 2.5 s deadline."""
    app = start_http_app(delay=1.0, body="ok")
    n = 100
    hd = healthd(config(*[http_check("app%03d" % i, app.url("/health/%d" % i)) for i in range(n)],
                        interval_ms=4000, timeout_ms=2500))
    t0 = time.monotonic()

    def all_done():
        _, h = hd.json("/health")
        checks = h["checks"] if h else {}
        done = [c for c in checks.values() if c["status"] != "pending"]
        return checks if len(done) == n else None

    checks = wait_until(all_done, 15, interval=0.1, what="a first result from all 100 checks")
    elapsed = time.monotonic() - t0
    latencies = sorted(c["latency_ms"] for c in checks.values())
    kinds = {c["kind"] for c in checks.values()}
    assert kinds == {"ok"}, {k: c["detail"] for k, c in checks.items() if c["kind"] != "ok"}
    assert latencies[0] >= 1000 and latencies[-1] < 2500
    assert elapsed < 2.5 + 1.0 + 2.0  # one round, not one hundred seconds of queueing
    print("100 checks: first round in %.2f s, latency min %.0f median %.0f max %.0f ms"
          % (elapsed, latencies[0], latencies[n // 2], latencies[-1]))


def test_stop_and_reload_with_transfers_in_flight(healthd, start_tcp_listener, local_server):
    """Cancelling transfers that hang (reload of a changed check, shutdown) releases them cleanly:
    each step happens just after the silent server accepted the request, ~2 s before curl gives up."""
    silent = start_tcp_listener(mode="silent")
    srv = local_server()
    hd = healthd(config(
        http_check("hung", "http://127.0.0.1:%d/" % silent.port),
        http_check("app", srv.url("/health")),
        interval_ms=2000, timeout_ms=2000))
    wait_until(lambda: silent.accepted() >= 1, 5, what="the hung request connected")
    cfg = hd.config
    cfg["checks"][0]["url"] = "http://127.0.0.1:%d/other" % silent.port
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "check hung: changed, restarted" in hd.log(), 5, what="the reload")
    wait_until(lambda: silent.accepted() >= 2, 5, what="the changed check's request connected")
    assert result(hd, "app")["kind"] == "ok"
    _, c = hd.json("/health/hung")
    assert c["status"] == "pending"  # no attempt of it ended yet: both were cancelled in flight
    assert hd.stop() == 0
