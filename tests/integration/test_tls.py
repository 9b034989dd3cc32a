"""The tls check (and the certificate facts of https http checks) against a real TLS server
(tls_server.py, Python's ssl) with certificates the test makes with the openssl command: a CA
with a server certificate expiring in 200 days and one in 2 days, and a self-signed one."""

import calendar
import json
import os
import re
import subprocess
import time

import pytest

from harness import free_port, run_healthd, wait_until
from harness.proc import ScriptProcess, PYTHON
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, wait_check

HERE = os.path.dirname(os.path.abspath(__file__))
TLS_SERVER = os.path.join(HERE, "tls_server.py")


class TlsServer(ScriptProcess):
    kind = "tls-server"

    def __init__(self, workdir, mode, cert=None):
        super().__init__(workdir)
        self.mode, self.cert = mode, cert
        self.port = free_port()

    def _argv(self):
        argv = [PYTHON, TLS_SERVER, "--port", self.port, "--mode", self.mode]
        if self.cert:
            argv += ["--cert", self.cert + ".pem", "--key", self.cert + ".key"]
        return argv

    def close(self):
        if self.running:
            self.stop()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


def cert_facts(path):
    """(subject, issuer, notAfter as Unix time) as the openssl command reads them."""
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-issuer", "-enddate",
                          "-nameopt", "RFC2253"], check=True, capture_output=True, text=True).stdout
    f = dict(line.split("=", 1) for line in out.splitlines())
    not_after = calendar.timegm(time.strptime(f["notAfter"], "%b %d %H:%M:%S %Y GMT"))
    return f["subject"], f["issuer"], not_after


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-subj", "/CN=healthd test CA", "-days", "30", "-keyout", "ca.key",
            "-out", "ca.pem", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, days in (("s200", 200), ("s2", 2)):
        openssl("req", *ec, "-subj", "/O=healthd tests/CN=db-main.test", "-keyout", name + ".key",
                "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", str(days), "-extfile", "san.ext", "-out", name + ".pem", cwd=d)
    openssl("req", "-x509", *ec, "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-days", "30", "-keyout", "self.key", "-out", "self.pem", cwd=d)
    # "-days 2" ends 172800 s after the second it was made in: a second later fewer than 2 whole days are
    # left, whatever the second healthd looks in, and the 2-day certificate has 1 day left.
    time.sleep(1.0)
    return d


@pytest.fixture
def tls_server(request, workdirs, certs):
    started = []

    def start(mode, cert=None):
        d = workdirs.new("tls")
        srv = TlsServer(d, mode, os.path.join(certs, cert) if cert else None)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.close()


def tls_check(name, port, **extra):
    check = {"name": name, "type": "tls", "host": "127.0.0.1", "port": port}
    check.update(extra)
    return check


def settled(c):
    return c["status"] != "pending"


def whole_days_left(c, not_after):
    """The check's days_left, once checked against the clock: whole days from when the result was made. The
    certificates are made seconds before, with -days N: N - 1 now, or N if the check ran within that second."""
    days = (not_after - int(time.time())) // 86400
    assert c["cert"]["days_left"] in (days, days + 1), (c, not_after, time.time())
    return c["cert"]["days_left"]


def test_tls_up_records_the_certificate_and_the_metric(start_healthd, tls_server, certs):
    srv = tls_server("tls", "s200")
    ca = os.path.join(certs, "ca.pem")
    hd = start_healthd(config([tls_check("db-main", srv.port, servername="localhost", ca=ca, min_cert_days=14)],
                              timeout_ms=2000, interval_ms=2500))
    c = wait_check(hd, "db-main", settled)
    subject, issuer, not_after = cert_facts(os.path.join(certs, "s200.pem"))
    days = whole_days_left(c, not_after)
    assert c["status"] == "up" and c["kind"] == "ok", c
    assert re.fullmatch(r"TLS handshake with 127\.0\.0\.1:%d: TLSv1\.3 \S+, certificate valid until %s \(%d days\)"
                        % (srv.port, time.strftime("%Y-%m-%d", time.gmtime(not_after)), days), c["detail"]), c
    assert subject == "CN=db-main.test,O=healthd tests" and issuer == "CN=healthd test CA"
    assert c["cert"] == {"subject": subject, "issuer": issuer, "days_left": days,
                         "not_after": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(not_after))}
    status, health = hd.json("/health")
    assert health["checks"]["db-main"]["cert"] == c["cert"]
    _, _, body = hd.get("/metrics")
    line = '\nhealthd_check_cert_expiry_timestamp_seconds{check="db-main"} %d\n' % not_after
    assert line in body.decode(), body.decode()


def test_the_certificate_shown_is_the_latest_results_even_while_the_next_attempt_runs(start_healthd, tls_server,
                                                                                      certs):
    # The first attempt's handshake succeeds; the second hangs until its deadline. Nothing is asked of healthd
    # until that second attempt is in flight: every answer is then rendered while the type's own state is being
    # rewritten by the attempt, and must still tell the latest result, certificate included.
    srv = tls_server("tls-then-stall", "s200")
    hd = start_healthd(config([tls_check("db-main", srv.port, ca=os.path.join(certs, "ca.pem"))],
                              timeout_ms=1500, interval_ms=1500))
    wait_until(lambda: "CONNECTION 2" in srv.log_current(), 10, interval=0.05, what="the second attempt connected")
    _, _, not_after = cert_facts(os.path.join(certs, "s200.pem"))
    status, c = hd.json("/health/db-main")
    assert c["kind"] == "ok" and c["cert"]["not_after"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                                          time.gmtime(not_after)), c
    _, health = hd.json("/health")
    assert health["checks"]["db-main"]["cert"] == c["cert"], health
    _, _, body = hd.get("/metrics")
    assert '\nhealthd_check_cert_expiry_timestamp_seconds{check="db-main"} %d\n' % not_after in body.decode()
    # once the stalled attempt ends (timeout), what it saw is shown: no certificate
    c = wait_check(hd, "db-main", lambda c: c["kind"] == "timeout", timeout=8)
    assert "cert" not in c, c
    _, _, body = hd.get("/metrics")
    assert "healthd_check_cert_expiry_timestamp_seconds{" not in body.decode()


def test_tls_certificate_expiring_soon_is_threshold(start_healthd, tls_server, certs):
    srv = tls_server("tls", "s2")
    hd = start_healthd(config([tls_check("db-main", srv.port, ca=os.path.join(certs, "ca.pem"), min_cert_days=14)],
                              timeout_ms=2000, interval_ms=2500))
    c = wait_check(hd, "db-main", settled)
    _, _, not_after = cert_facts(os.path.join(certs, "s2.pem"))
    days = whole_days_left(c, not_after)
    assert days in (1, 2), (not_after, time.time())
    assert c["status"] == "down" and c["kind"] == "threshold", c
    assert c["detail"] == "certificate for db-main expires in %d day%s (%s), below 14" % (
        days, "" if days == 1 else "s", time.strftime("%Y-%m-%d", time.gmtime(not_after)))


def test_tls_verification_failures(start_healthd, tls_server, certs):
    selfsigned = tls_server("tls", "self")
    good = tls_server("tls", "s200")
    ca = os.path.join(certs, "ca.pem")
    hd = start_healthd(config([
        tls_check("self", selfsigned.port, servername="localhost"),
        tls_check("self-noverify", selfsigned.port, verify=False),
        tls_check("wrongname", good.port, servername="wrong.example", ca=ca),
    ], timeout_ms=2000, interval_ms=2500))
    c = wait_check(hd, "self", settled)
    assert c["kind"] == "tls" and c["detail"] == (
        "TLS handshake with 127.0.0.1:%d (servername localhost): certificate verify failed: "
        "self-signed certificate" % selfsigned.port), c
    assert c["cert"]["subject"] == "CN=localhost"  # its facts are still known
    c = wait_check(hd, "self-noverify", settled)
    assert c["status"] == "up" and c["cert"]["issuer"] == "CN=localhost", c
    c = wait_check(hd, "wrongname", settled)
    assert c["kind"] == "tls" and c["detail"] == (
        "TLS handshake with 127.0.0.1:%d (servername wrong.example): certificate verify failed: "
        "hostname mismatch" % good.port), c


def test_tls_not_a_tls_server_garbage_and_refused(start_healthd, tls_server):
    plain = tls_server("plain")
    garbage = tls_server("garbage")
    closed = free_port()
    hd = start_healthd(config([
        tls_check("plain", plain.port),
        tls_check("garbage", garbage.port, verify=False),
        tls_check("closed", closed),
    ], timeout_ms=2000, interval_ms=2500))
    c = wait_check(hd, "plain", settled)
    assert c["kind"] == "protocol" and c["detail"] == (
        "TLS handshake with 127.0.0.1:%d: wrong version number (the server does not speak TLS on this port?)"
        % plain.port), c
    assert "cert" not in c
    c = wait_check(hd, "garbage", settled)
    assert c["status"] == "down" and c["kind"] in ("tls", "protocol"), c
    assert c["detail"].startswith("TLS handshake with 127.0.0.1:%d: " % garbage.port), c
    c = wait_check(hd, "closed", settled)
    assert c["kind"] == "refused" and c["detail"] == (
        "connect 127.0.0.1:%d: Connection refused (nothing listening, or a firewall REJECT)" % closed), c
    # several garbage handshakes later it is still running and answering
    time.sleep(1.0)
    assert hd.running and hd.json("/health")[0] == 503


def test_https_http_check_records_the_certificate(start_healthd, tls_server, certs):
    good = tls_server("tls", "s200")
    soon = tls_server("tls", "s2")
    ca = os.path.join(certs, "ca.pem")
    hd = start_healthd(config([
        {"name": "web", "type": "http", "url": "https://localhost:%d/" % good.port, "ca": ca, "min_cert_days": 14},
        {"name": "web-soon", "type": "http", "url": "https://localhost:%d/" % soon.port, "ca": ca,
         "min_cert_days": 14},
    ], timeout_ms=2000, interval_ms=2500))
    subject, issuer, not_after = cert_facts(os.path.join(certs, "s200.pem"))
    c = wait_check(hd, "web", settled)
    assert c["status"] == "up", c
    assert c["cert"] == {"subject": subject, "issuer": issuer, "days_left": whole_days_left(c, not_after),
                         "not_after": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(not_after))}
    _, _, soon_after = cert_facts(os.path.join(certs, "s2.pem"))
    c = wait_check(hd, "web-soon", settled)
    soon = whole_days_left(c, soon_after)
    assert c["kind"] == "threshold" and c["detail"] == "certificate for web-soon expires in %d day%s (%s), below 14" % (
        soon, "" if soon == 1 else "s", time.strftime("%Y-%m-%d", time.gmtime(soon_after))), c
    _, _, body = hd.get("/metrics")
    assert '\nhealthd_check_cert_expiry_timestamp_seconds{check="web"} %d\n' % not_after in body.decode()


@pytest.mark.parametrize("key,value,message", [
    ("min_cert_days", -1, "checks[\"db-main\"].min_cert_days: expected an integer from 0 to 36500, got -1"),
    ("min_cert_days", 36501, "checks[\"db-main\"].min_cert_days: expected an integer from 0 to 36500, got 36501"),
    ("ca", "/nonexistent/ca.pem", "checks[\"db-main\"].ca: cannot read the CA file /nonexistent/ca.pem: No such file or directory"),
])
def test_tls_config_errors(workdirs, key, value, message):
    d = workdirs.new("tlscfg")
    check = tls_check("db-main", 443)
    check[key] = value
    text = json.dumps(config([check]), indent=1)
    path = os.path.join(d, "bad.json")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    anchor = text.index('"%s": ' % key) + len('"%s": ' % key)
    line = text.count("\n", 0, anchor) + 1
    col = anchor - (text.rfind("\n", 0, anchor) + 1) + 1
    assert rc == 2 and err == "%s:%d:%d: %s\n" % (path, line, col, message), err


def test_http_min_cert_days_needs_https(workdirs):
    d = workdirs.new("tlscfg")
    text = json.dumps(config([{"name": "web", "type": "http", "url": "http://127.0.0.1:8080/",
                               "min_cert_days": 14}]), indent=1)
    path = os.path.join(d, "bad.json")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    anchor = text.index('"min_cert_days"')
    line = text.count("\n", 0, anchor) + 1
    col = anchor - (text.rfind("\n", 0, anchor) + 1) + 1
    assert rc == 2 and err == ("%s:%d:%d: checks[\"web\"].min_cert_days: min_cert_days needs an https:// URL "
                               "(an http:// server has no certificate)\n" % (path, line, col)), err


def test_a_ca_file_that_is_not_pem_certificates_is_a_configuration_error(workdirs):
    """A malformed certificate: a CA file with no certificate, or with a broken one, is refused where it is named
    (tls, https and mysql checks), not found out at the first handshake."""
    d = workdirs.new("badca")
    files = {"text": "not a certificate\n",
             "broken": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}
    for name, text in files.items():
        with open(os.path.join(d, name + ".pem"), "w") as f:
            f.write(text)
    expected = {"text": "holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)",
                "broken": "certificate 1 is not a valid PEM certificate: error:"}
    for check in ({"name": "db-main", "type": "tls", "host": "127.0.0.1", "port": 443},
                  {"name": "db-main", "type": "http", "url": "https://127.0.0.1/"},
                  {"name": "db-main", "type": "mysql", "host": "127.0.0.1", "user": "u", "tls": "required"}):
        for name in files:
            path = os.path.join(d, name + ".pem")
            cfg = config([dict(check, ca=path)])
            text = json.dumps(cfg, indent=1)
            cfg_path = os.path.join(d, "bad.json")
            with open(cfg_path, "w") as f:
                f.write(text)
            rc, _, err = run_healthd(["--check-config", "--config", cfg_path])
            assert rc == 2, (check["type"], name, err)
            assert re.match(r"%s:\d+:\d+: checks\[\"db-main\"\]\.ca: the CA file %s[: ]" % (
                re.escape(cfg_path), re.escape(path)), err), err
            assert expected[name] in err, (check["type"], err)
    # the system's bundle (many certificates) is fine
    cfg_path = os.path.join(d, "good.json")
    with open(cfg_path, "w") as f:
        json.dump(config([tls_check("db-main", 443, ca="/etc/ssl/certs/ca-certificates.crt")]), f)
    rc, out, err = run_healthd(["--check-config", "--config", cfg_path])
    assert rc == 0, err
