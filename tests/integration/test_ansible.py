"""examples/ansible: the healthd role applied for real to this machine (connection local), and the change-window
playbook run before and after a change that breaks one target and fixes another.

The machine has no systemd as PID 1, so the role runs with healthd_service_start=false: files are installed into
a staging root per host, nothing is enabled or started by systemd. The running result is the installed binary
with the installed configuration: the role's own one-shot `healthd check`, and the daemon started from those
files by this test.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess

import pytest

from harness import free_port, http_request, wait_until
from harness.healthd import REPO, healthd_bin
from harness.proc import die_with_parent
from harness.package import (FRESHROOT, debian_package, in_root, installed_in_root, makefile_version, passwd_entry,
                             start_unit_in_root)
from harness.util import register_pid, stop_popen, unregister_pid

ANSIBLE_DIR = os.path.join(REPO, "examples", "ansible")
UNIT = os.path.join(REPO, "systemd", "healthd.service")
SYSUSERS = os.path.join(REPO, "systemd", "healthd.sysusers")


def ansible_playbook(workdir, playbook, *extra, timeout=180):
    # A user's shell, not ours: `make test` passes SANITIZE and friends down in MAKEFLAGS, and the role's
    # `make install` must build and install what a user gets.
    # GNU make hands its command-line variables to recipes in the environment too, not only in MAKEFLAGS.
    outer_make = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "SANITIZE", "BUILD", "WERROR", "CFLAGS",
                  "UBSAN_OPTIONS")
    env = {k: v for k, v in os.environ.items() if k not in outer_make}
    env.update({
        "ANSIBLE_CONFIG": os.path.join(ANSIBLE_DIR, "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": os.path.join(workdir, "ansible-remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    argv = ["ansible-playbook", "-i", os.path.join(workdir, "inventory.json"),
            os.path.join(ANSIBLE_DIR, playbook)] + list(extra)
    cp = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    return cp.returncode, cp.stdout + cp.stderr


def file_digest(path):
    """Compared by digest: a failed comparison of two binaries must not make pytest diff megabytes."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def recap(output):
    """PLAY RECAP lines -> {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    hosts, in_recap = {}, False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line:
            host, _, counters = line.partition(":")
            hosts[host.strip()] = {k: int(v) for k, v in (kv.split("=") for kv in counters.split())}
    return hosts


@pytest.fixture
def staging(workdirs, start_tcp_listener):
    """Two backends on this machine (web1, web2), each with a staging root and one reachable (app)
    and one unreachable (db) target."""
    root = workdirs.new("ansible")
    hosts = {}
    for name, prefix in (("web1", "/usr/local"), ("web2", "/opt/healthd")):
        app = start_tcp_listener()
        db_port = free_port()
        hosts[name] = {
            "root": os.path.join(root, name),
            "prefix": prefix,
            "app": app,
            "db_port": db_port,
            "http_port": free_port(),
            "vars": {
                "healthd_root": os.path.join(root, name),
                "healthd_prefix": prefix,
                "healthd_listen": {"http": "127.0.0.1:%d" % free_port(), "agent": "127.0.0.1:%d" % free_port(),
                                   "admin_socket": os.path.join(root, name, "healthd.sock")},
                # the daemon this test starts from the staged files keeps its state there too
                "healthd_config_extra": {"state_dir": os.path.join(root, name, "var/lib/healthd"),
                                         "shutdown_grace_ms": 0},
                "healthd_checks": [
                    {"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port},
                    {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": db_port},
                ],
            },
        }
    inventory = {"backends": {
        "hosts": {name: h["vars"] for name, h in hosts.items()},
        "vars": {
            "ansible_connection": "local",
            "ansible_python_interpreter": "/usr/bin/python3",
            "healthd_become": False,
            "healthd_service_start": False,
            "healthd_install_from": "binary",
            "healthd_binary_src": os.path.abspath(healthd_bin()),
            "healthd_unit_src": UNIT,
            "healthd_sysusers_src": SYSUSERS,
            "healthd_defaults": {"interval_ms": 1000, "timeout_ms": 500, "rise": 1, "fall": 1},
        },
    }}
    with open(os.path.join(root, "inventory.json"), "w") as f:
        json.dump(inventory, f, indent=2)
    yield root, hosts
    shutil.rmtree(root, ignore_errors=True)


def test_role_installs_healthd_and_it_runs(staging):
    root, hosts = staging
    rc, out = ansible_playbook(root, "site.yml")
    assert rc == 0, out
    for name, h in hosts.items():
        assert recap(out)[name]["failed"] == 0, out
        installed_bin = h["root"] + h["prefix"] + "/sbin/healthd"
        config_path = os.path.join(h["root"], "etc/healthd/healthd.json")
        unit_path = h["root"] + h["prefix"] + "/lib/systemd/system/healthd.service"
        assert file_digest(installed_bin) == file_digest(healthd_bin())
        assert os.stat(installed_bin).st_mode & 0o777 == 0o755
        assert os.stat(config_path).st_mode & 0o777 == 0o640
        with open(config_path) as f:
            config = json.load(f)
        assert config["node_name"] == name
        assert config["listen"] == h["vars"]["healthd_listen"]
        assert config["checks"] == h["vars"]["healthd_checks"]
        assert config["state_dir"] == h["vars"]["healthd_config_extra"]["state_dir"]
        # the project's unit, as make install would have written it for this prefix
        with open(unit_path) as a, open(UNIT) as b:
            assert a.read() == b.read().replace("/usr/local/sbin/healthd", h["prefix"] + "/sbin/healthd")
        assert os.path.isdir(os.path.join(h["root"], "var/lib/healthd"))
        # the service user, created by systemd-sysusers inside the staging root only
        with open(os.path.join(h["root"], "etc/passwd")) as f:
            assert any(line.startswith("healthd:") for line in f)
    # the role's smoke run: the installed binary ran every check with the installed configuration
    assert "result: a critical check is down (exit 2)" in out
    assert "CRITICAL down: db" in out

    # applied again, it changes nothing
    rc, out = ansible_playbook(root, "site.yml")
    assert rc == 0, out
    assert {name: counts["changed"] for name, counts in recap(out).items()} == {"web1": 0, "web2": 0}, out

    # the daemon, started from the installed files, serves what the checks found
    h = hosts["web1"]
    installed_bin = h["root"] + h["prefix"] + "/sbin/healthd"
    config_path = os.path.join(h["root"], "etc/healthd/healthd.json")
    log = open(os.path.join(root, "web1-daemon.log"), "wb")
    proc = subprocess.Popen([installed_bin, "--config", config_path], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    register_pid(proc.pid, "healthd", "installed by the ansible role")
    try:
        host, port = h["vars"]["healthd_listen"]["http"].rsplit(":", 1)

        def health():
            status, _, body = http_request(host, int(port), "/health", timeout=1)
            doc = json.loads(body)
            return (status, doc) if all(c["status"] != "pending" for c in doc["checks"].values()) else None

        status, doc = wait_until(health, 10, what="/health of the installed daemon")
        assert status == 503 and doc["node"] == "web1"
        assert doc["checks"]["app"]["status"] == "up"
        assert (doc["checks"]["db"]["status"], doc["checks"]["db"]["kind"]) == ("down", "refused")
    finally:
        stop_popen(proc, timeout=5, sig=signal.SIGTERM)
        unregister_pid(proc.pid)
        log.close()


def test_change_window_reports_regressions_and_recoveries_per_host(staging, start_tcp_listener):
    root, hosts = staging
    reports = os.path.join(root, "reports")
    rc, out = ansible_playbook(root, "site.yml", "-e", "healthd_smoke_check=false")
    assert rc == 0, out

    common = ("-e", "change_id=CHG-42", "-e", "report_dir=%s" % reports)
    rc, out = ansible_playbook(root, "change-window.yml", "-e", "phase=before", *common)
    assert rc == 0, out
    with open(os.path.join(reports, "before.txt")) as f:
        before = f.read()
    assert "\n== web1: baseline kept, 2 checks, down before the change: db\n" in before, before
    assert "\n== web2: baseline kept, 2 checks, down before the change: db\n" in before, before
    for name, h in hosts.items():
        with open(os.path.join(reports, "%s-before.json" % name)) as f:
            snap = json.load(f)
        assert snap["format"] == "healthd-check" and snap["node"] == name
        assert os.path.exists(os.path.join(h["root"], "var/lib/healthd/change-window/CHG-42-before.json"))

    # the change, on web1 only: its app becomes unreachable, its db reachable
    hosts["web1"]["app"].stop()
    start_tcp_listener(port=hosts["web1"]["db_port"])

    rc, out = ansible_playbook(root, "change-window.yml", "-e", "phase=after", *common)
    assert rc != 0, out
    counts = recap(out)
    assert counts["web1"]["failed"] == 1 and counts["web2"]["failed"] == 0, out
    assert "web1: regression after change CHG-42" in out
    with open(os.path.join(reports, "after.txt")) as f:
        after = f.read()
    web1, web2 = after.split("== web1: ")[1].split("== web2: ")
    assert web1.startswith("REGRESSION (healthd diff exit 1)\nnode web1: before "), after
    assert "\nREGRESSION  app " in web1 and "up   -> down  refused: " in web1
    assert "\nRECOVERY    db " in web1 and "down -> up    ok: " in web1
    assert "2 checks: 1 regression, 1 recovery, 0 still down, 0 up before and after" in web1
    assert web2.startswith("no regression (healthd diff exit 0)\nnode web2: before "), after
    assert "\nSTILL DOWN  db " in web2 and "REGRESSION  " not in web2
    assert "2 checks: 0 regressions, 0 recoveries, 1 still down, 1 up before and after" in web2
    assert os.path.exists(os.path.join(reports, "web1-after.json"))

    # an after without its before says what to do
    rc, out = ansible_playbook(root, "change-window.yml", "-e", "phase=after", "-e", "change_id=CHG-43",
                               "-e", "report_dir=%s" % reports)
    assert rc != 0
    assert "no before snapshot" in out and "CHG-43-before.json" in out and "run the before phase first" in out


def test_role_installs_from_source_with_make_install(workdirs, start_tcp_listener):
    """healthd_install_from=source: `make install` in a checkout (this one) into the staging root."""
    root = workdirs.new("ansible-src")
    app = start_tcp_listener()
    stage = os.path.join(root, "web3")
    inventory = {"backends": {"hosts": {"web3": {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "healthd_become": False,
        "healthd_service_start": False,
        "healthd_root": stage,
        "healthd_install_from": "source",
        "healthd_source_dir": REPO,
        "healthd_listen": {"http": "127.0.0.1:%d" % free_port(), "agent": "127.0.0.1:%d" % free_port()},
        "healthd_checks": [{"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port}],
    }}}}
    with open(os.path.join(root, "inventory.json"), "w") as f:
        json.dump(inventory, f)
    try:
        rc, out = ansible_playbook(root, "site.yml", timeout=600)
        assert rc == 0, out
        assert file_digest(stage + "/usr/local/sbin/healthd") == file_digest(os.path.join(REPO, "build/healthd"))
        # make install's own files are there too; the role's configuration replaced nothing it should keep
        assert os.path.exists(stage + "/usr/local/share/man/man8/healthd.8")
        with open(stage + "/usr/local/lib/systemd/system/healthd.service") as a, open(UNIT) as b:
            assert a.read() == b.read()
        with open(stage + "/etc/healthd/healthd.json") as f:
            assert json.load(f)["checks"][0]["port"] == app.port
        assert "result: every check is up (exit 0)" in out
        rc, out = ansible_playbook(root, "site.yml", timeout=600)
        assert rc == 0, out
        assert recap(out)["web3"]["changed"] == 0, out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_ansible_lint_is_clean_on_the_role_and_playbooks():
    cp = subprocess.run(["ansible-lint", "--offline", "--nocolor", "-p"], cwd=ANSIBLE_DIR, capture_output=True,
                        text=True, timeout=300, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg")))
    summary = [line for line in (cp.stdout + cp.stderr).splitlines() if "profile" in line]
    print("ansible-lint: %s" % summary)
    assert cp.returncode == 0 and any("0 failure(s), 0 warning(s)" in line for line in summary), \
        cp.stdout + cp.stderr


def test_role_refuses_missing_secrets_and_writes_the_given_ones_unlogged(workdirs, start_tcp_listener):
    root = workdirs.new("ansible-nosecret")
    stage = os.path.join(root, "web4")
    inventory = {"backends": {"hosts": {"web4": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "healthd_become": False,
        "healthd_service_start": False, "healthd_root": stage, "healthd_install_from": "binary",
        "healthd_binary_src": os.path.abspath(healthd_bin()),
        "healthd_checks": [{"name": "db", "type": "mysql", "host": "127.0.0.1", "user": "healthd",
                            "password_file": "/etc/healthd/mysql.pw"},
                           {"name": "api", "type": "http", "url": "https://127.0.0.1:1/", "ca": "/etc/healthd/ca.pem"}],
        "healthd_config_extra": {"alerts": {"webhooks": [{"url": "http://127.0.0.1:1/", "headers": {
            "Authorization": {"file": "/etc/healthd/token", "prefix": "Bearer "}, "X-Team": "ops"}}]}},
        "healthd_secrets": {"/etc/healthd/mysql.pw": "s3cret-not-to-be-logged"},
    }}}}
    with open(os.path.join(root, "inventory.json"), "w") as f:
        json.dump(inventory, f)
    rc, out = ansible_playbook(root, "site.yml")
    assert rc != 0, out
    assert "the configuration names /etc/healthd/ca.pem, /etc/healthd/token: give each its content in " \
           "healthd_secrets" in out, out
    assert not os.path.exists(stage + "/etc/healthd/healthd.json"), "nothing is installed before the inputs are right"
    assert "s3cret-not-to-be-logged" not in out

    # given every file, it writes them (into the staging root: validated there with --no-secrets), never logged
    secrets = {"/etc/healthd/mysql.pw": "s3cret-not-to-be-logged", "/etc/healthd/token": "t0ken-not-to-be-logged",
               "/etc/healthd/ca.pem": "-----BEGIN CERTIFICATE-----\n"}
    inventory["backends"]["hosts"]["web4"]["healthd_secrets"] = secrets
    with open(os.path.join(root, "inventory.json"), "w") as f:
        json.dump(inventory, f)
    rc, out = ansible_playbook(root, "site.yml", "-e", "healthd_smoke_check=false")
    assert rc == 0, out
    for path, content in secrets.items():
        st = os.stat(stage + path)
        with open(stage + path) as f:
            assert (f.read(), st.st_mode & 0o777, st.st_uid) == (content, 0o640, 0), path
        assert content.strip() not in out, "%s reached the role's output" % path
    # validated although the files are not where the configuration names them (this machine's /etc/healthd)
    assert not any(os.path.exists(path) for path in secrets)
    with open(stage + "/etc/healthd/healthd.json") as f:
        assert json.load(f)["checks"][0]["password_file"] == "/etc/healthd/mysql.pw"


# ---- package mode, in a fresh Debian 12 root ----


def test_role_installs_the_package_in_a_fresh_root_and_it_starts_as_healthd(workdirs, mariadb, start_tcp_listener):
    """The role's default mode on a fresh minbase Debian 12 (tests/freshroot.sh), as its own controller (connection
    local): the package copied and installed with apt, which must bring the runtime libraries; the secret deployed
    root:healthd 0640 before the configuration is validated and written. Then the installed unit's ExecStartPre= and
    ExecStart= run as healthd in that root, and /health answers 200 with every check up."""
    work = workdirs.new("ansible-package")
    deb = debian_package()
    origin = "make deb"
    version = makefile_version()
    with open(os.path.join(ANSIBLE_DIR, "roles/healthd/defaults/main.yml")) as f:
        assert 'healthd_version: "%s"' % version in f.read(), "the role's healthd_version is not the Makefile's"
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True, check=True).stdout
    libraries = sorted({d.split()[0] for d in depends.split(",") if d.strip().startswith("lib")})
    app = start_tcp_listener()
    http_port, agent_port = free_port(), free_port()
    root = os.path.join(work, "root")
    try:
        cp = subprocess.run([FRESHROOT, "new", root], capture_output=True, text=True, timeout=600)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        rc, out = in_root(root, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                          "apt-get install -y -qq --no-install-recommends ansible-core >/dev/null")
        assert rc == 0, out
        before = installed_in_root(root, libraries)  # with the controller's own packages in place
        # the controller's files: the examples, the unit, and the package where the role looks for it
        project = os.path.join(root, "root/project")
        shutil.copytree(ANSIBLE_DIR, os.path.join(project, "examples/ansible"))
        shutil.copytree(os.path.join(REPO, "systemd"), os.path.join(project, "systemd"))
        os.makedirs(os.path.join(project, "build"))
        shutil.copy(deb, os.path.join(project, "build", "healthd_%s_amd64.deb" % version))
        inventory = {"backends": {"hosts": {"web1": {
            "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
            "healthd_become": False, "healthd_service_start": False,
            "healthd_listen": {"http": "127.0.0.1:%d" % http_port, "agent": "127.0.0.1:%d" % agent_port},
            "healthd_defaults": {"interval_ms": 500, "timeout_ms": 400, "rise": 1, "fall": 1},
            "healthd_config_extra": {"shutdown_grace_ms": 0},
            "healthd_checks": [
                {"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app.port},
                {"name": "db", "type": "mysql", "host": "127.0.0.1", "port": mariadb.port, "user": mariadb.user,
                 "password_file": "/etc/healthd/mysql.pw"},
                {"name": "root-disk", "type": "disk", "path": "/", "probe": False, "critical": False},
            ],
            "healthd_secrets": {"/etc/healthd/mysql.pw": mariadb.password},
        }}}}
        with open(os.path.join(root, "root/inventory.json"), "w") as f:
            json.dump(inventory, f)
        playbook = ["env", "ANSIBLE_NOCOLOR=1", "ANSIBLE_CONFIG=/root/project/examples/ansible/ansible.cfg",
                    "ansible-playbook", "-i", "/root/inventory.json", "/root/project/examples/ansible/site.yml"]
        rc, out = in_root(root, *playbook)
        print("package (%s): %s; libraries before: %s" % (origin, os.path.basename(deb), sorted(before)))
        assert rc == 0, out[-6000:]
        assert recap(out)["web1"]["failed"] == 0, out[-3000:]
        assert "result: every check is up (exit 0)" in out, out[-3000:]
        assert mariadb.password not in out, "a secret reached the role's output"
        after = installed_in_root(root, libraries)
        print("runtime libraries the package named: %s; installed by apt with it: %s"
              % (libraries, sorted(after - before)))
        assert after == set(libraries), "not installed: %s" % sorted(set(libraries) - after)
        assert before != after, "the fresh root had every library already: nothing shows apt brought them"
        user, group = passwd_entry(root, "healthd"), passwd_entry(root, "healthd", "group")
        assert user and group, "the package made no user healthd"
        for path in ("etc/healthd/healthd.json", "etc/healthd/mysql.pw"):
            st = os.stat(os.path.join(root, path))
            assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, int(group[2])), (path, st)
        with open(os.path.join(root, "etc/healthd/mysql.pw")) as f:
            assert f.read() == mariadb.password

        rc, out = in_root(root, *playbook)
        assert rc == 0 and recap(out)["web1"]["changed"] == 0, out[-4000:]

        # what systemd would do: StateDirectory= and RuntimeDirectory=, then the unit's commands as healthd
        units = [u for u in ("usr/lib/systemd/system/healthd.service", "lib/systemd/system/healthd.service")
                 if os.path.exists(os.path.join(root, u))]
        assert units, "the package installed no unit"
        with open(os.path.join(root, units[0])) as f:
            proc, log_path = start_unit_in_root(root, work, f.read(), user)
        try:
            def health():
                if proc.poll() is not None:
                    return "exited"
                status, _, body = http_request("127.0.0.1", http_port, "/health", timeout=1)
                doc = json.loads(body)
                return (status, doc) if all(c["status"] == "up" for c in doc["checks"].values()) else None

            result = wait_until(health, 20, interval=0.2, what="/health of the package's daemon, every check up")
            with open(log_path, errors="replace") as f:
                assert result != "exited", "the unit's commands exited %s: %s" % (proc.returncode, f.read())
            status, doc = result
            print("package's daemon as healthd: %d %s" % (status, {n: c["status"] for n, c in doc["checks"].items()}))
            assert status == 200 and sorted(doc["checks"]) == ["app", "db", "root-disk"]
        finally:
            stop_popen(proc, timeout=10, sig=signal.SIGTERM)
            unregister_pid(proc.pid)
    finally:
        subprocess.run([FRESHROOT, "destroy", root], capture_output=True, timeout=300)
