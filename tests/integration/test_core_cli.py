"""The command line and signals: --check-config (0 valid, 2 invalid with FILE:LINE:COL and the key),
start-up refusals, SIGTERM/SIGINT, and SIGHUP with a bad file keeping the running checks."""

import json
import os
import signal
import time

import pytest

from harness import REPO, run_healthd, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check, wait_check

GOOD = """{
  "node_name": "be1",
  "defaults": {"interval_ms": 1000, "timeout_ms": 500},
  "checks": [
    {
      "name": "db",
      "type": "tcp",
      "host": "127.0.0.1",
      "port": 3306
    },
    {"name": "cache", "type": "tcp", "host": "127.0.0.1", "port": 6379, "critical": false}
  ]
}
"""

# (id, replace this in GOOD, with this, the anchor where the error must point, words in the message)
BAD = [
    ("unknown-key", '"port": 3306', '"prot": 3306', '"prot"',
     ['checks["db"].prot', 'unknown key "prot"', 'did you mean "port"']),
    ("out-of-range", '"port": 3306', '"port": 70000', "70000",
     ['checks["db"].port', "from 1 to 65535", "70000"]),
    ("wrong-type", '"port": 3306', '"port": "3306"', '"3306"',
     ['checks["db"].port', "got a string"]),
    ("missing-key", ',\n      "port": 3306', "", '{\n      "name": "db"',
     ['checks["db"]', 'missing required key "port"']),
    ("unknown-type", '"type": "tcp",\n      "host"', '"type": "tcpp",\n      "host"', '"tcpp"',
     ['checks["db"].type', 'unknown check type "tcpp"', "tcp"]),
    ("bool", '"critical": false', '"critical": "no"', '"no"',
     ['checks["cache"].critical', "expected true or false"]),
    ("duplicate", '{"name": "cache"', '{"name": "db"', '"db", "type": "tcp", "host": "127.0.0.1", "port": 6379',
     ['checks["db"].name', 'duplicate check name "db"']),
    ("timeout-over-interval", '"timeout_ms": 500', '"timeout_ms": 5000', "5000",
     ["defaults.timeout_ms", "must not exceed interval_ms"]),
    ("bad-name", '"name": "db"', '"name": "d b"', '"d b"', ['"d b" is not a valid check name']),
    ("unknown-section", '"node_name"', '"nod_name"', '"nod_name"', ['unknown key "nod_name"']),
    ("trailing-comma", '"critical": false}\n  ]', '"critical": false},\n  ]', "]\n}",
     ["invalid JSON"]),
]


def line_col(text, anchor):
    at = text.index(anchor)
    before = text[:at]
    return before.count("\n") + 1, at - (before.rfind("\n") + 1) + 1


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_check_config_accepts_good_files(workdirs):
    d = workdirs.new("cli")
    path = write(os.path.join(d, "good.json"), GOOD)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert (rc, out, err) == (0, "%s: valid, 2 checks\n" % path, "")
    example = os.path.join(REPO, "examples", "local.json")
    rc, out, err = run_healthd(["-t", "-c", example])
    assert rc == 0 and out.startswith(example + ": valid, "), (out, err)


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_check_config_points_at_the_error(workdirs, case):
    _, old, new, anchor, words = case
    assert GOOD.count(old) == 1
    text = GOOD.replace(old, new)
    d = workdirs.new("cli")
    path = write(os.path.join(d, "bad.json"), text)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    line, col = line_col(text, anchor)
    assert rc == 2 and out == ""
    assert err.startswith("%s:%d:%d: " % (path, line, col)), (err, line, col)
    for w in words:
        assert w in err, (w, err)
    assert err.count("\n") == 1
    # Starting the daemon with it fails the same way, before listening on anything.
    rc, out, err2 = run_healthd(["--config", path])
    assert rc == 2 and err2 == err


def test_check_config_unreadable_file_and_usage(workdirs):
    d = workdirs.new("cli")
    missing = os.path.join(d, "missing.json")
    rc, out, err = run_healthd(["--check-config", "--config", missing])
    assert rc == 2 and err.startswith(missing + ":") and "No such file" in err
    rc, out, err = run_healthd(["--check-config"])
    assert rc == 2 and "usage:" in err


def test_sigterm_and_sigint_exit_zero(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        hd = start_healthd(config([tcp_check("app", app.port)]))
        wait_check(hd, "app", lambda c: c["status"] == "up")
        t0 = time.monotonic()
        hd.signal(sig)
        assert hd.wait_exit(2) == 0
        assert time.monotonic() - t0 < 2
        assert "%s received: stopping" % name in hd.log() and "healthd stopped" in hd.log()


def test_sighup_with_a_bad_file_keeps_the_running_checks(start_healthd, start_tcp_listener):
    app = start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port)]))
    before = wait_check(hd, "app", lambda c: c["status"] == "up")

    with open(hd.config_path) as f:
        good_text = f.read()
    bad_text = good_text.replace('"port": %d' % app.port, '"port": "oops"')
    assert bad_text != good_text
    write(hd.config_path, bad_text)
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in hd.log(), 3, what="the refused reload in the log")
    log = hd.log()
    assert "reload refused, the running configuration stays: %s:" % hd.config_path in log
    assert 'checks["app"].port' in log
    assert hd.running
    status, health = hd.json("/health")
    assert status == 200 and list(health["checks"]) == ["app"]
    after = wait_check(hd, "app", lambda c: c["last_checked"] != before["last_checked"])
    assert after["since"] == before["since"]  # still the same running check

    # A good file then applies: the unchanged check keeps its state, the new one starts.
    cfg = json.loads(good_text)
    cfg["checks"].append(tcp_check("extra", app.port))
    hd.write_config(cfg)
    hd.signal(signal.SIGHUP)
    extra = wait_check(hd, "extra", lambda c: c["status"] == "up")
    assert extra["name"] == "extra"
    status, health = hd.json("/health")
    assert list(health["checks"]) == ["app", "extra"]
    assert health["checks"]["app"]["since"] == before["since"]
    assert hd.running and hd.stop() == 0


def test_check_config_no_secrets_opens_none_of_the_files_it_names(workdirs):
    """--no-secrets: valid while the password, header and CA files do not exist yet (as in CI or Ansible's
    validate: before the secrets are deployed), and every other error still counts."""
    d = workdirs.new("nosecrets")
    cfg = {"checks": [
        {"name": "db", "type": "mysql", "host": "127.0.0.1", "user": "healthd",
         "password_file": os.path.join(d, "absent", "db.pw"), "tls": "required", "ca": os.path.join(d, "absent", "ca.pem")},
    ], "alerts": {"webhooks": [{"url": "http://127.0.0.1:9/hook",
                                "headers": {"Authorization": {"file": os.path.join(d, "absent", "token")}}}]}}
    path = os.path.join(d, "healthd.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    rc, out, err = run_healthd(["--config", path, "--check-config"])
    assert rc == 2 and "cannot read the password file %s/absent/db.pw" % d in err, (rc, err)
    rc, out, err = run_healthd(["--config", path, "--check-config", "--no-secrets"])
    print(out)
    assert rc == 0, (rc, out, err)
    assert out.splitlines()[0] == "%s: valid, 1 checks" % path
    assert "3 files it names not opened (--no-secrets):" in out
    for name in ("db.pw", "ca.pem", "token"):
        assert os.path.join(d, "absent", name) in out
    cfg["checks"][0]["port"] = 70000
    with open(path, "w") as f:
        json.dump(cfg, f)
    rc, out, err = run_healthd(["--config", path, "--check-config", "--no-secrets"])
    assert rc == 2 and "expected an integer from 1 to 65535" in err
    rc, out, err = run_healthd(["--config", path, "--no-secrets"])
    assert rc == 2 and "--no-secrets goes with --check-config only" in err
    rc, out, _ = run_healthd(["--help"])
    assert "--no-secrets" in out
