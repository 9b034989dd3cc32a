"""Every shipped example configuration (and the README's minimal one) starts as the unit starts it, every check up.

Each example runs through systemd/healthd.service's own ExecStartPre= and ExecStart= lines, as user healthd
(made by systemd-sysusers from systemd/healthd.sysusers, inside the sandbox only), under what the unit imposes
and can be reproduced without systemd (harness/unit_sandbox.py): the configuration root:healthd 0640, only the
state and runtime directories writable, every other mount read-only, a private /tmp, no capabilities.
The secrets the example names are in place (root:healthd 0640), and so are the servers it names, started from
the fixtures: MariaDB (a primary and its replica), Redis with a password, the application, a webhook receiver.
Only addresses are rewritten: to those servers, and to free loopback ports for healthd's own listeners.
No check depends on a server that is not started, so every check of every example must come up.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import urllib.parse

import pytest

from harness import free_port, http_request, wait_until
from harness.healthd import REPO, healthd_bin
from harness.proc import die_with_parent
from harness.unit_sandbox import UnitSandbox, unit_commands
from harness.util import register_pid, stop_popen, unregister_pid



def readme_minimal_configuration():
    """The README's "A minimal file:" block, the first configuration a reader copies."""
    readme = (pathlib.Path(REPO) / "README.md").read_text()
    return re.search(r"A minimal file:\n\n```json\n(.*?)```", readme, re.S).group(1)


# (name, text): every example file, and the README's minimal configuration
EXAMPLES = [(str(p.relative_to(REPO)), p.read_text())
            for p in sorted((pathlib.Path(REPO) / "examples").rglob("*.json")) if "ansible" not in p.parts] + \
    [("README.md-minimal.json", readme_minimal_configuration())]
UNIT = os.path.join(REPO, "systemd", "healthd.service")
SYSUSERS = os.path.join(REPO, "systemd", "healthd.sysusers")
MYSQL_PORT, REDIS_PORT, APP_PORT = 3306, 6379, 8080

# examples/local.json is `make run`'s file: it keeps its admin socket in the checkout's build/ (a relative path),
# so it runs as with a drop-in's WorkingDirectory= and ReadWritePaths= of a checkout; all else of the unit applies.
RUN_FROM_CHECKOUT = {"local.json"}


def without_comments(text):
    """The examples carry whole-line // comments (healthd accepts them); json does not."""
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


@pytest.fixture
def servers(start_mariadb, start_redis, start_http_app, start_receiver):
    """The servers the examples name."""
    primary = start_mariadb(log_bin=True, grants=("REPLICA MONITOR",))
    replica = start_mariadb(replica_of=primary, grants=("REPLICA MONITOR",))
    replica.set_read_only(True)
    redis = start_redis(password="example-redis-secret")
    app = start_http_app(status=200, body="ok")
    receiver = start_receiver()
    return {"primary": primary, "replica": replica, "redis": redis, "app": app, "receiver": receiver}


def rewrite_addresses(config, servers, http_port, agent_port):
    """Points every address of an example at the started servers and at free ports; nothing else changes.
    Returns the secrets the example names (path -> content)."""
    own_http = int(config["listen"]["http"].rsplit(":", 1)[1])
    ports = {MYSQL_PORT: servers["primary"].port, REDIS_PORT: servers["redis"].port, APP_PORT: servers["app"].port,
             own_http: http_port}
    config["listen"]["http"] = "127.0.0.1:%d" % http_port
    config["listen"]["agent"] = "127.0.0.1:%d" % agent_port
    secrets = {}
    for c in config["checks"]:
        if c["type"] == "mysql":
            db = servers["replica"] if c.get("expect_read_only") else servers["primary"]
            c["host"], c["port"] = "127.0.0.1", db.port
            secrets[c["password_file"]] = db.password
        elif c["type"] == "redis":
            c["host"], c["port"] = "127.0.0.1", servers["redis"].port
            secrets[c["password_file"]] = servers["redis"].password
        elif c["type"] == "tcp":
            c["host"], c["port"] = "127.0.0.1", ports[c["port"]]
        elif c["type"] == "http":
            u = urllib.parse.urlsplit(c["url"])
            c["url"] = u._replace(netloc="127.0.0.1:%d" % ports[u.port]).geturl()
        else:
            assert c["type"] == "disk", "a check type this test does not know: %s" % c["type"]
    for hook in config.get("alerts", {}).get("webhooks", []):
        hook["url"] = servers["receiver"].url + urllib.parse.urlsplit(hook["url"]).path
    unknown = [k for c in config["checks"] for k in c if k.endswith("_file") and k != "password_file"] + \
        [k for c in config["checks"] for k in ("ca", "headers") if k in c]
    assert not unknown, "an example names files this test does not put in place: %s" % unknown
    return secrets


@pytest.mark.parametrize("name,text", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_starts_under_the_unit_as_healthd_and_every_check_is_up(name, text, servers, workdirs):
    config = json.loads(without_comments(text))
    short = os.path.basename(name)
    http_port, agent_port = free_port(), free_port()
    secrets = rewrite_addresses(config, servers, http_port, agent_port)
    with open(UNIT) as f:
        pre, start = unit_commands(f.read())
    config_path = start[start.index("--config") + 1]

    box = UnitSandbox(workdirs.new("unit-" + short.replace(".json", "")))
    box.root_command(["systemd-sysusers", SYSUSERS])
    box.root_command(["install", "-D", "-m", "0755", healthd_bin(), start[0]])
    box.file(config_path, json.dumps(config, indent=2), mode=0o640, group="healthd")
    for path, secret in secrets.items():
        box.file(path, secret + "\n", mode=0o640, group="healthd")
    for c in config["checks"]:
        if c["type"] == "disk" and not os.path.isdir(c["path"]):
            box.dir(c["path"])  # the application's data directory, as root made it
    if short in RUN_FROM_CHECKOUT:
        assert not os.path.isabs(config["listen"]["admin_socket"])
        checkout = "/var/lib/healthd-checkout"  # WorkingDirectory= and ReadWritePaths= of a drop-in
        box.dir(checkout + "/build", owner="healthd", group="healthd")
        box.writable(checkout)
        box.spec["cwd"] = checkout
    argv = box.argv(pre + [start])

    log_path = os.path.join(box.workdir, "healthd.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent)
    register_pid(proc.pid, "healthd", "example %s under the unit's sandbox" % short)

    def log_text():
        with open(log_path, errors="replace") as f:
            return f.read()[-4000:]

    def settled():
        if proc.poll() is not None:
            return "exited"
        status, _, body = http_request("127.0.0.1", http_port, "/health", timeout=1)
        checks = json.loads(body)["checks"]
        return checks if all(c["status"] == "up" for c in checks.values()) else None

    try:
        try:
            checks = wait_until(settled, 40, interval=0.2, what="every check of %s up" % short)
        except AssertionError:
            checks = None  # not every check came up in time: the table below says which and why
        assert checks != "exited", "the unit's commands exited %s:\n%s" % (proc.returncode, log_text())
        if checks is None:
            status, _, body = http_request("127.0.0.1", http_port, "/health", timeout=1)
            checks = json.loads(body)["checks"]
        table = {name: (c["status"], c.get("kind"), c.get("detail")) for name, c in checks.items()}
        for name, row in sorted(table.items()):
            print("%s %s: %s" % (short, name, row))
        down = {name: row for name, row in table.items() if row[0] != "up"}
        assert not down, "%s: %d of %d checks not up under the unit: %s\n%s" % (
            short, len(down), len(table), down, log_text())
        assert len(table) == len(config["checks"])
        # as healthd, the state directory took its files; nothing else could be written
        upper = box.overlay_upper("/var/lib")
        assert os.stat(os.path.join(upper, "healthd")).st_mode & 0o777 == 0o750
    finally:
        # the unit's stop (SIGTERM: drain for shutdown_grace_ms), cut short by a second SIGTERM as a test may
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "answering drain" in log_text() or proc.poll() is not None, 5,
                       what="the drain to begin")
        stop_popen(proc, timeout=10, sig=signal.SIGTERM)
        unregister_pid(proc.pid)
    assert proc.returncode == 0, log_text()
