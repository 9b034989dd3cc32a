"""Operating healthd: healthd ctl (drain, maint, ready, status, reload) seen by a real HAProxy, the graceful
stop, reloads that keep state, the admin state across restarts and kill -9, sd_notify, the systemd unit
and make install."""

import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from harness import REPO, free_port, http_request, run_healthd, wait_until
from harness.proc import die_with_parent
from harness.unit_sandbox import UnitSandbox
from harness.util import register_pid, stop_popen, unregister_pid
from harness.haproxy import TCP_TEST_HEAD

HAPROXY_CFG = TCP_TEST_HEAD + """
backend be
    option log-health-checks
    server s1 127.0.0.1:%(app)d %(source)s weight 100 check inter 100ms rise 1 fall 1 agent-check agent-port %(agent)d agent-inter 100ms
"""

ADMIN_MAINT = 0x01  # srv_admin_state: forced maintenance
ADMIN_DRAIN = 0x08  # srv_admin_state: forced drain


def config(app_port, **extra):
    cfg = {
        "defaults": {"interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 1},
        "checks": [{"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app_port}],
    }
    cfg.update(extra)
    return cfg


def ctl(hd, *args, timeout=10):
    """healthd ctl against hd's admin socket -> (rc, stdout, stderr)."""
    return run_healthd(["ctl", "--socket", hd.admin_socket] + [str(a) for a in args], timeout=timeout)


def ctl_json(hd, *args):
    rc, out, err = ctl(hd, "--json", *args)
    assert rc == 0, (rc, out, err)
    return json.loads(out)


def haproxy_for(start_haproxy, app, hd, source=""):
    hp = start_haproxy(HAPROXY_CFG % {"app": app.port, "agent": hd.agent_port,
                                      "source": "source %s" % source if source else ""})
    hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
    return hp


def admin_flags(hp):
    return int(hp.server_state("be", "s1")["srv_admin_state"])


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def health(hd):
    status, body = hd.json("/health")
    assert body is not None, status
    return body


def agent_replies(hd):
    return ctl_json(hd, "status")["agent"]["replies"]


def wait_agent_polls(hd, count, timeout=10):
    """Wait until the agent port answered `count` more polls."""
    start = agent_replies(hd)
    wait_until(lambda: agent_replies(hd) >= start + count, timeout,
               what="%d more agent polls" % count)


# --------------------------------------------------------------------------- ctl and HAProxy

def test_ctl_drain_seen_by_haproxy_ready_undoes_it_and_runtime_maint_stays(
        start_tcp_listener, start_healthd, start_haproxy):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port, agent={"ready_window_ms": 1000}))
    hp = haproxy_for(start_haproxy, app, hd)

    rc, out, err = ctl(hd, "drain", "--reason", "deploy 42")
    assert rc == 0, err
    assert "drain" in out and "deploy 42" in out
    wait_until(lambda: admin_flags(hp) & ADMIN_DRAIN, 5, what="HAProxy sees drain")
    row = hp.server("be", "s1")
    assert row["status"].startswith("DRAIN")  # "DRAIN (agent)"; the weight column keeps the configured one
    admin = health(hd)["admin"]
    assert admin["state"] == "drain" and admin["reason"] == "deploy 42"
    assert abs(parse_iso(admin["since"]) - time.time()) < 60
    assert hd.agent().startswith("drain ")  # every poll carries it while it holds

    rc, out, err = ctl(hd, "ready")
    assert rc == 0, err
    wait_until(lambda: not admin_flags(hp) & ADMIN_DRAIN, 5, what="HAProxy leaves drain")
    hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
    assert health(hd)["admin"]["state"] == "ready"
    assert hd.log().count('every poll for the next 1000 ms gets "ready"') == 1

    # An operator's maint through HAProxy's runtime API after agent.ready_window_ms is not undone.
    time.sleep(1.2)
    hp.cmd("set server be/s1 state maint")
    assert admin_flags(hp) & ADMIN_MAINT
    wait_agent_polls(hd, 10)
    assert admin_flags(hp) & ADMIN_MAINT, hp.server("be", "s1")
    assert hp.server("be", "s1")["status"] == "MAINT"
    assert hd.log().count('the "ready" window is over') == 1


def test_ready_reaches_every_load_balancer(start_tcp_listener, start_healthd, start_haproxy):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port))
    lb1 = haproxy_for(start_haproxy, app, hd, source="127.0.0.2")
    lb2 = haproxy_for(start_haproxy, app, hd, source="127.0.0.3")

    assert ctl(hd, "maint", "--reason", "kernel update")[0] == 0
    for hp in (lb1, lb2):
        wait_until(lambda: admin_flags(hp) & ADMIN_MAINT, 5, what="maint on both LBs")
    assert ctl(hd, "ready")[0] == 0
    for hp in (lb1, lb2):  # "exactly once in total" would leave one of them in maint
        wait_until(lambda: not admin_flags(hp) & ADMIN_MAINT, 5, what="both LBs leave maint")
        hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
    assert hd.log().count('gets "ready"') == 1


# --------------------------------------------------------------------------- graceful stop

def test_sigterm_drains_before_exit_and_next_start_takes_it_back(
        start_tcp_listener, start_healthd, start_haproxy):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port, shutdown_grace_ms=1500))
    hp = haproxy_for(start_haproxy, app, hd)

    hd.signal(signal.SIGTERM)
    wait_until(lambda: admin_flags(hp) & ADMIN_DRAIN, 3, what="HAProxy sees drain during the grace period")
    assert hd.running, "healthd exited before HAProxy saw drain"
    admin = health(hd)["admin"]
    assert admin["state"] == "drain" and admin["stopping"] is True
    assert hd.wait_exit(timeout=5) == 0
    assert "answering drain for 1500 ms" in hd.log()
    assert admin_flags(hp) & ADMIN_DRAIN  # HAProxy keeps the drain after healthd is gone

    hd.start()
    wait_until(lambda: not admin_flags(hp) & ADMIN_DRAIN, 5, what="drain taken back after the restart")
    hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "100")
    assert health(hd)["admin"]["state"] == "ready"


def test_second_sigterm_or_sigint_exits_at_once(start_tcp_listener, start_healthd):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port, shutdown_grace_ms=60000))
    hd.signal(signal.SIGTERM)
    wait_until(lambda: "answering drain for 60000 ms" in hd.log(), 5, what="grace period started")
    hd.signal(signal.SIGTERM)
    assert hd.wait_exit(timeout=5) == 0
    hd.start()
    hd.signal(signal.SIGINT)
    assert hd.wait_exit(timeout=5) == 0


# --------------------------------------------------------------------------- reload

def test_reload_with_a_bad_file_keeps_the_running_checks(start_tcp_listener, start_healthd):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port))
    wait_until(lambda: health(hd)["checks"]["app"]["status"] == "up", 5, what="app up")

    bad = config(app.port)
    bad["checks"] = [{"name": "other", "type": "tcp", "host": "127.0.0.1", "port": 70000}]
    hd.write_config(bad)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in hd.log(), 5, what="the refusal in the log")
    line = [l for l in hd.log().splitlines() if "reload refused" in l][0]
    assert re.search(r"healthd\.json:\d+:\d+: checks\[\"other\"\]\.port: expected an integer from 1 to 65535", line), line
    assert hd.running
    body = health(hd)
    assert list(body["checks"]) == ["app"] and body["checks"]["app"]["status"] == "up"

    rc, out, err = ctl(hd, "reload")
    assert rc == 1
    assert "reload refused" in err and "expected an integer from 1 to 65535" in err

    with open(hd.config_path, "w") as f:
        f.write('{"checks": [\n')
    rc, out, err = ctl(hd, "reload")
    assert rc == 1 and "invalid JSON" in err
    assert hd.running and list(health(hd)["checks"]) == ["app"]


SECRET = "hunter2-S3cret"


def test_syntax_error_next_to_a_password_is_never_shown(start_tcp_listener, start_healthd):
    """A JSON syntax error right at an inline password: the reload log, the ctl reload answer and --check-config
    give FILE:LINE:COL and the kind of token there, never the text."""
    app = start_tcp_listener()
    hd = start_healthd(config(app.port))
    good = open(hd.config_path).read()
    # a password without quotes, then one with the comma after it missing
    for broken in ('"password": %s, "port": 6379' % SECRET, '"password": "%s" "port": 6379' % SECRET):
        cfg = json.loads(good)
        cfg["checks"].append({"name": "cache", "type": "redis", "host": "127.0.0.1", "port": 6379})
        text = json.dumps(cfg, indent=2).replace('"port": 6379', broken)
        with open(hd.config_path, "w") as f:
            f.write(text)
        rc, out, err = ctl(hd, "reload")
        hd.signal(signal.SIGHUP)
        wait_until(lambda: hd.log().count("invalid JSON") >= 2, 5, what="the SIGHUP refusal in the log")
        rc2, out2, err2 = run_healthd(["--config", hd.config_path, "--check-config"])
        print("ctl reload: %s--check-config: %s" % (err, err2))
        assert rc == 1 and "invalid JSON: cannot continue at" in err, err
        assert rc2 == 2 and "invalid JSON: cannot continue at" in err2, err2
        for shown in (out + err, out2 + err2, hd.log()):
            assert "hunter2" not in shown and "S3cret" not in shown, shown
        hd.write_config(config(app.port))
        assert ctl(hd, "reload")[0] == 0
        with open(hd.log_path, "w"):
            pass  # a fresh log for the next form


def test_reload_keeps_state_of_unchanged_checks(start_tcp_listener, start_healthd, start_haproxy):
    app = start_tcp_listener()
    closed = free_port()
    checks = [
        {"name": "keep", "type": "tcp", "host": "127.0.0.1", "port": app.port},
        {"name": "flaky", "type": "tcp", "host": "127.0.0.1", "port": closed, "critical": False},
        {"name": "edit", "type": "tcp", "host": "127.0.0.1", "port": app.port},
        {"name": "gone", "type": "tcp", "host": "127.0.0.1", "port": app.port},
    ]
    cfg = config(app.port)
    cfg["checks"] = checks
    hd = start_healthd(cfg)
    wait_until(lambda: all(c["attempts"] >= 5 for c in ctl_json(hd, "status")["checks"].values()), 10,
               what="a few attempts of every check")
    hp = start_haproxy(HAPROXY_CFG % {"app": app.port, "agent": hd.agent_port, "source": ""})
    hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "50")  # degraded by flaky
    before = ctl_json(hd, "status")["checks"]

    cfg["checks"] = [
        checks[0],
        checks[1],
        dict(checks[2], timeout_ms=120),
        {"name": "fresh", "type": "tcp", "host": "127.0.0.1", "port": app.port},  # critical
    ]
    hd.write_config(cfg)
    log_mark, hp_mark = len(hd.log()), len(hp.log())
    rc, out, err = ctl(hd, "reload")
    assert rc == 0, err
    assert "4 checks: 2 unchanged; changed: edit; added: fresh; removed: gone" in out
    after = ctl_json(hd, "status")["checks"]

    assert set(after) == {"keep", "flaky", "edit", "fresh"}
    for name in ("keep", "flaky"):
        assert after[name]["status"] == before[name]["status"]
        assert after[name]["since"] == before[name]["since"]
        assert after[name]["transitions"] == before[name]["transitions"]
        assert after[name]["attempts"] >= before[name]["attempts"]
    assert after["flaky"]["consecutive_failures"] >= before["flaky"]["consecutive_failures"]
    assert after["edit"]["status"] == "up" and after["edit"]["since"] == before["edit"]["since"]
    assert after["edit"]["attempts"] < before["edit"]["attempts"]  # restarted
    wait_until(lambda: ctl_json(hd, "status")["checks"]["fresh"]["status"] == "up", 5, what="fresh up")

    # Same file again through SIGHUP: nothing changes.
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "4 checks: 4 unchanged; changed: -; added: -; removed: -" in hd.log(), 5,
               what="the SIGHUP reload in the log")
    wait_agent_polls(hd, 5)
    new_log = hd.log()[log_mark:]
    assert " -> " not in new_log, new_log  # no transition of any check
    hp_new = hp.log()[hp_mark:]
    assert "be/s1" not in hp_new, hp_new  # HAProxy logged no change of the server (never down, never reweighted)
    row = hp.server("be", "s1")
    assert row["status"] == "UP" and row["weight"] == "50"


# --------------------------------------------------------------------------- admin state on disk

def test_admin_state_survives_restart_and_kill9(start_tcp_listener, start_healthd):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port))
    assert ctl(hd, "maint", "--reason", "disk swap")[0] == 0
    since = health(hd)["admin"]["since"]

    hd.restart()
    admin = health(hd)["admin"]
    assert (admin["state"], admin["reason"], admin["since"]) == ("maint", "disk swap", since)
    assert hd.agent().startswith("maint ")

    hd.kill()
    assert stat.S_ISSOCK(os.lstat(hd.admin_socket).st_mode)  # what a crash leaves behind
    hd.start()
    assert "removed the stale socket" in hd.log_current()
    admin = health(hd)["admin"]
    assert (admin["state"], admin["reason"], admin["since"]) == ("maint", "disk swap", since)

    # The reply comes after the fsync: a kill -9 right after it loses nothing.
    assert ctl(hd, "drain", "--reason", "deploy 7")[0] == 0
    hd.kill()
    hd.start()
    assert health(hd)["admin"]["reason"] == "deploy 7"
    assert hd.agent().startswith("drain ")
    assert ctl(hd, "ready")[0] == 0
    hd.kill()
    hd.start()
    assert health(hd)["admin"]["state"] == "ready"
    assert hd.agent() == "up 100%"  # nothing to take back: no "ready" after a crash in ready
    with open(os.path.join(hd.state_dir, "admin.json")) as f:
        assert json.load(f)["state"] == "ready"


def test_unreadable_state_file_starts_in_drain(start_tcp_listener, start_healthd, tmp_path):
    app = start_tcp_listener()
    (tmp_path / "admin.json").write_text('{"state": "drain", "reason": ')  # torn
    hd = start_healthd(config(app.port, state_dir=str(tmp_path)))
    admin = health(hd)["admin"]
    assert admin["state"] == "drain" and "could not be restored" in admin["reason"]
    assert str(tmp_path / "admin.json") in admin["reason"]
    assert hd.agent().startswith("drain ")
    assert ctl(hd, "ready")[0] == 0
    assert json.loads((tmp_path / "admin.json").read_text())["state"] == "ready"


def test_state_not_saved_is_reported(start_tcp_listener, start_healthd, tmp_path):
    app = start_tcp_listener()
    (tmp_path / "file").write_text("")
    state_dir = tmp_path / "file" / "state"  # cannot be created: its parent is a file
    hd = start_healthd(config(app.port, state_dir=str(state_dir)))
    line = [l for l in hd.log().splitlines() if "state_dir" in l and "error" in l][0]
    print(line)
    assert "cannot create state_dir %s" % state_dir in line and "Not a directory" in line, line
    assert "will not survive a restart" in line
    rc, out, err = ctl(hd, "drain")
    assert rc == 1 and "NOT saved" in err and "Not a directory" in err
    assert health(hd)["admin"]["state"] == "drain"  # in effect all the same


def test_missing_state_dir_is_created(start_tcp_listener, start_healthd, tmp_path):
    app = start_tcp_listener()
    state_dir = tmp_path / "var" / "lib" / "healthd"
    hd = start_healthd(config(app.port, state_dir=str(state_dir)))
    mode = stat.S_IMODE(os.stat(state_dir).st_mode)
    print("state_dir created with mode %03o" % mode)
    assert mode == 0o750, oct(mode)
    assert "state_dir %s created (mode 0750)" % state_dir in hd.log()
    assert ctl(hd, "drain")[0] == 0
    assert json.loads((state_dir / "admin.json").read_text())["state"] == "drain"


# --------------------------------------------------------------------------- ctl, the socket

def test_ctl_status_socket_mode_and_errors(start_tcp_listener, start_healthd):
    app = start_tcp_listener()
    hd = start_healthd(config(app.port))
    wait_until(lambda: health(hd)["checks"]["app"]["status"] == "up", 5, what="app up")
    st = os.lstat(hd.admin_socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600

    rc, out, err = ctl(hd, "status")
    assert rc == 0, err
    assert re.search(r"^status: +up$", out, re.M) and re.search(r"^admin: +ready", out, re.M)
    assert re.search(r"^  app +up +ok +connect 127\.0\.0\.1:%d" % app.port, out, re.M)
    rc, out, err = run_healthd(["ctl", "--config", hd.config_path, "status"])
    assert rc == 0 and "status:  up" in out
    assert ctl_json(hd, "status")["checks"]["app"]["status"] == "up"

    rc, out, err = run_healthd(["ctl", "--socket", hd.admin_socket + ".nope", "status"])
    assert rc == 3 and "cannot connect" in err
    assert ctl(hd, "bogus")[0] == 2
    assert ctl(hd, "status", "--reason", "x")[0] == 2
    rc, out, _ = run_healthd(["--help"])
    assert rc == 0 and "healthd ctl" in out and "SIGTERM" in out
    rc, out, _ = run_healthd(["ctl", "--help"])
    assert rc == 0 and "drain" in out and "Exit status" in out

    # The wire protocol is bounded and answers in JSON.
    def raw(data):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(hd.admin_socket)
        s.sendall(data)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)
    assert raw(b"x" * 5000) == {"ok": False, "error": "request longer than 1024 bytes"}
    assert raw(b"frobnicate\n")["ok"] is False
    assert raw(b"status\r\n")["status"] == "up"

    # A second daemon on the same socket refuses to start instead of stealing it.
    other = config(app.port)
    other["listen"] = {"admin_socket": hd.admin_socket}
    hd2 = start_healthd(other, wait_ready=False)
    assert hd2.wait_exit(timeout=5) == 1
    assert "another process" in hd2.log()
    assert ctl(hd, "status")[0] == 0


# --------------------------------------------------------------------------- systemd

def test_sd_notify_ready_reloading_stopping_watchdog(start_tcp_listener, start_healthd, tmp_path):
    app = start_tcp_listener()
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    messages = []

    def received(pred, timeout, what):
        def check():
            for _ in range(1000):  # what has arrived so far (bounded: pings keep coming)
                try:
                    messages.append(sock.recv(4096).decode())
                except BlockingIOError:
                    break
            return any(pred(m) for m in messages)
        wait_until(check, timeout, interval=0.01, what=what)

    try:
        hd = start_healthd(config(app.port), env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
        received(lambda m: m.startswith("READY=1\n") and "STATUS=1 checks" in m, 5, "READY=1")
        received(lambda m: messages.count("WATCHDOG=1") >= 3, 5, "watchdog pings")
        hd.signal(signal.SIGHUP)
        received(lambda m: m.startswith("READY=1\n") and "reloaded" in m, 5, "READY=1 after the reload")
        reloading = [i for i, m in enumerate(messages) if m.startswith("RELOADING=1\n")]
        ready_again = [i for i, m in enumerate(messages) if m.startswith("READY=1\n") and "reloaded" in m]
        assert reloading and reloading[0] < ready_again[0], messages
        assert re.search(r"MONOTONIC_USEC=\d+", messages[reloading[0]])
        hd.signal(signal.SIGTERM)
        received(lambda m: m.startswith("STOPPING=1"), 5, "STOPPING=1")
        assert hd.wait_exit(timeout=5) == 0
    finally:
        sock.close()


def test_make_install_and_systemd_unit_verifies(tmp_path):
    dest = tmp_path / "root"
    out = subprocess.run(["make", "-C", REPO, "--no-print-directory", "install", "DESTDIR=%s" % dest,
                          "PREFIX=/usr"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # a package's staging tree (no etc/passwd): no user is made in it, and none on this machine
    assert "has no etc/passwd (a package tree): the user healthd is not made here" in out.stdout
    assert not (dest / "etc/passwd").exists() and not (dest / "etc/group").exists()
    files = {p: os.stat(dest / p) for p in [
        "usr/sbin/healthd", "usr/lib/systemd/system/healthd.service", "usr/lib/sysusers.d/healthd.conf",
        "usr/share/man/man8/healthd.8", "usr/share/doc/healthd/examples/healthd.json",
        "etc/healthd/healthd.json"]}
    assert stat.S_IMODE(files["usr/sbin/healthd"].st_mode) == 0o755
    assert stat.S_IMODE(files["etc/healthd/healthd.json"].st_mode) == 0o640
    binary = str(dest / "usr/sbin/healthd")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("healthd ")
    check = subprocess.run([binary, "--config", str(dest / "etc/healthd/healthd.json"), "--check-config"],
                           capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr
    man = subprocess.run(["man", "-l", str(dest / "usr/share/man/man8/healthd.8")], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100"))
    assert man.returncode == 0 and "healthd ctl" in man.stdout

    unit = (dest / "usr/lib/systemd/system/healthd.service").read_text()
    assert "ExecStart=/usr/sbin/healthd --config /etc/healthd/healthd.json\n" in unit
    for line in ("Type=notify", "WatchdogSec=", "User=healthd", "ProtectSystem=strict", "ProtectHome=",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "StateDirectory=healthd",
                 "RuntimeDirectory=healthd", "ExecReload=/usr/sbin/healthd ctl reload\n"):
        assert line in unit, line
    # Verify the installed unit against the installed binary and man page.
    verify_dir = tmp_path / "verify"
    verify_dir.mkdir()
    (verify_dir / "healthd.service").write_text(unit.replace("/usr/sbin/healthd", binary))
    env = dict(os.environ, MANPATH=str(dest / "usr/share/man"), SYSTEMD_LOG_LEVEL="notice")
    verify = subprocess.run(["systemd-analyze", "verify", str(verify_dir / "healthd.service")],
                            capture_output=True, text=True, timeout=60, env=env)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stdout + verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                               str(verify_dir / "healthd.service")], capture_output=True, text=True, timeout=60,
                              env=env)
    score = re.search(r"Overall exposure level for healthd.service: ([\d.]+)", security.stdout + security.stderr)
    assert score and float(score.group(1)) <= 2.0, security.stdout[-2000:]
    shutil.rmtree(dest)


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_env():
    """A user's environment: not the MAKEFLAGS (SANITIZE...) that `make test` hands down."""
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SANITIZE", "BUILD", "WERROR", "CFLAGS")
    return {k: v for k, v in os.environ.items() if k not in outer}


def test_make_install_into_a_root_being_built_makes_the_user_there(tmp_path):
    dest = tmp_path / "image"
    (dest / "etc").mkdir(parents=True)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    host = {p: file_sha256(p) for p in ("/etc/passwd", "/etc/group")}
    out = subprocess.run(["make", "-C", REPO, "--no-print-directory", "install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
                         capture_output=True, text=True, timeout=300, env=make_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "systemd-sysusers --root=%s %s/usr/lib/sysusers.d/healthd.conf" % (dest, dest) in out.stdout
    users = {line.split(":")[0]: line.split(":") for line in (dest / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in (dest / "etc/group").read_text().splitlines()}
    assert users["healthd"][5] == "/var/lib/healthd", users
    conf = os.stat(dest / "etc/healthd/healthd.json")
    print("image's healthd gid %s, configuration %o %d:%d" % (groups["healthd"][2], stat.S_IMODE(conf.st_mode),
                                                             conf.st_uid, conf.st_gid))
    assert (stat.S_IMODE(conf.st_mode), conf.st_uid, conf.st_gid) == (0o640, 0, int(groups["healthd"][2]))
    assert {p: file_sha256(p) for p in host} == host, "make install DESTDIR=... changed this machine's users"
    # again: the configuration is kept, the user is not made twice
    out = subprocess.run(["make", "-C", REPO, "--no-print-directory", "install", "DESTDIR=%s" % dest, "PREFIX=/usr"],
                         capture_output=True, text=True, timeout=300, env=make_env())
    assert out.returncode == 0 and "keeping the existing %s/etc/healthd/healthd.json" % dest in out.stdout, out.stdout
    assert "warning" not in out.stdout
    assert [line for line in (dest / "etc/passwd").read_text().splitlines() if line.startswith("healthd:")] == \
        [":".join(users["healthd"])]


def readme_install_steps():
    """The first sh block of the README's "systemd and install", as lists of commands (split at &&)."""
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    section = readme.split("### systemd and install", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    steps = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        steps += [cmd.split() for cmd in line.split("&&") if cmd.strip()]
    return steps


def test_readme_install_steps_then_the_units_commands_run_as_healthd(make_netns, workdirs):
    """The README's steps as written (DESTDIR empty: this system, here overlays of /etc, /usr, /var/lib and /run in
    a private mount namespace), then the installed unit's ExecStartPre= and ExecStart= as user healthd under the
    unit's constraints, with the configuration make install wrote (examples/default.json: the local disks only, so
    that a new install comes up healthy before the operator names its dependencies); its listen ports (9110, 9111)
    live in a network namespace of their own."""
    steps = readme_install_steps()
    assert steps[0][:2] == ["make", "install"], steps
    box = UnitSandbox(workdirs.new("readme-install"), overlaid=("/etc", "/usr", "/var/lib", "/run"))
    started_by_systemd = []
    for argv in steps:
        if argv[0] == "systemctl":
            started_by_systemd.append(argv)  # no systemd here: the unit's own commands stand in for it, below
        elif argv[0] == "make":
            box.root_command(["make", "-C", REPO, "--no-print-directory"] + argv[1:], env=None)
        else:
            box.root_command(argv)
    assert started_by_systemd, "the README's steps never start the service"
    ns = make_netns("install")
    log_path = os.path.join(box.workdir, "healthd.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(ns.wrap(box.argv(unit="healthd.service")), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    register_pid(proc.pid, "ip", "the installed unit's commands")

    def log_text(tail=4000):
        with open(log_path, errors="replace") as f:
            text = f.read()
        return text if tail is None else text[-tail:]

    def all_up():
        if proc.poll() is not None:
            return "exited"
        status, _, body = http_request("127.0.0.1", 9110, "/health", timeout=1, netns=ns)
        doc = json.loads(body)
        return doc if status == 200 and all(c["status"] == "up" for c in doc["checks"].values()) else None

    try:
        doc = wait_until(all_up, 30, interval=0.2, what="/health of the installed daemon, every check up")
        assert doc != "exited", "the unit's commands exited %s:\n%s" % (proc.returncode, log_text())
        print("installed daemon: %s" % {n: (c["status"], c["detail"]) for n, c in doc["checks"].items()})
        with open(os.path.join(REPO, "examples/default.json")) as f:
            assert sorted(doc["checks"]) == sorted(c["name"] for c in json.load(f)["checks"])
        # the installed files, as the service saw them (the namespace's writes are in the overlays)
        etc = box.overlay_upper("/etc")
        gid = [line.split(":")[2] for line in open(os.path.join(etc, "group")) if line.startswith("healthd:")]
        conf = os.stat(os.path.join(etc, "healthd/healthd.json"))
        assert (stat.S_IMODE(conf.st_mode), conf.st_uid, str(conf.st_gid)) == (0o640, 0, gid[0]), (conf, gid)
        state = os.stat(os.path.join(box.overlay_upper("/var/lib"), "healthd"))
        assert (stat.S_IMODE(state.st_mode), str(state.st_gid)) == (0o750, gid[0])
        assert "healthd.service: ExecStartPre=[['/usr/sbin/healthd', '--config', '/etc/healthd/healthd.json', " \
            "'--check-config']] ExecStart=['/usr/sbin/healthd', '--config', '/etc/healthd/healthd.json']" in \
            log_text(tail=None)
    finally:
        stop_popen(proc, timeout=10, sig=signal.SIGTERM)
        unregister_pid(proc.pid)
