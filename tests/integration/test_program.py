"""The program check against Debian's real Monitoring Plugins (check_dummy, check_tcp, check_disk,
check_procs) and against scripts this test writes into a root-owned 0755 directory it allows: a
script that hangs, one whose child hangs (the whole process group must go), one that prints
megabytes, one killed by a signal, and ones that report their own file descriptors and environment.
Bad configurations (outside the allowed directories, world-writable, relative, empty) are refused
with FILE:LINE:COL. A measurement prints the CPU and latency of 100 program checks next to 100 tcp
checks (printed, not asserted)."""

import json
import os
import re
import signal
import time

import pytest

from harness import run_healthd, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, wait_check

PLUGINS = "/usr/lib/nagios/plugins"


def need_plugins():
    if not os.path.exists(os.path.join(PLUGINS, "check_dummy")):
        pytest.fail("monitoring-plugins-basic is not installed (make deps-test installs it)")


@pytest.fixture
def scripts(workdirs):
    """A root-owned 0755 directory of root-owned 0755 scripts; .add(name, text) -> path."""
    d = workdirs.new("checks.d")
    os.chown(d, 0, 0)
    os.chmod(d, 0o755)

    class Scripts:
        dir = d

        def add(self, name, text, mode=0o755):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            os.chown(path, 0, 0)
            os.chmod(path, mode)
            return path
    return Scripts()


def program(name, command, dirs=None, **extra):
    check = {"name": name, "type": "program", "command": command}
    if dirs is not None:
        check["allowed_dirs"] = dirs
    check.update(extra)
    return check


def metrics(hd):
    status, _, body = hd.get("/metrics")
    assert status == 200
    return body.decode()


def perfdata(text, check):
    """{label: value} of healthd_check_perfdata for one check."""
    out = {}
    for m in re.finditer(r'^healthd_check_perfdata\{check="%s",label="((?:[^"\\]|\\.)*)"\} (\S+)$'
                         % re.escape(check), text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def group_members(pgid):
    """PIDs whose process group is pgid (zombies included)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def zombie_children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] == "Z":
            out.append(int(entry))
    return out


# --------------------------------------------------------------------------- real plugins

def test_real_plugins_exit_codes_perfdata_and_warning(start_healthd, start_tcp_listener):
    need_plugins()
    app = start_tcp_listener()
    closed = start_tcp_listener()
    closed_port = closed.port
    closed.stop()
    hd = start_healthd(config([
        program("ok", [PLUGINS + "/check_dummy", "0", "all good"]),
        program("warn", [PLUGINS + "/check_dummy", "1", "getting full"]),
        program("crit", [PLUGINS + "/check_dummy", "2", "on fire"], critical=False),
        program("unknown", [PLUGINS + "/check_dummy", "3", "no idea"], critical=False),
        program("tcp", [PLUGINS + "/check_tcp", "-H", "127.0.0.1", "-p", str(app.port)]),
        program("tcp-closed", [PLUGINS + "/check_tcp", "-H", "127.0.0.1", "-p", str(closed_port)],
                critical=False),
        program("disk", [PLUGINS + "/check_disk", "-w", "1%", "-c", "1%", "-p", "/"]),
        program("procs", [PLUGINS + "/check_procs", "-w", "100000", "-c", "200000"]),
    ], interval_ms=1000, timeout_ms=900))
    ok = wait_check(hd, "ok", lambda c: c["status"] == "up")
    assert ok["kind"] == "ok" and ok["detail"] == "OK: all good", ok
    assert ok["target"] == PLUGINS + "/check_dummy 0 all good"
    warn = wait_check(hd, "warn", lambda c: c["status"] != "pending")
    assert warn["status"] == "warn" and warn["kind"] == "ok", warn
    assert warn["detail"] == "WARNING: getting full", warn
    crit = wait_check(hd, "crit", lambda c: c["status"] == "down")
    assert crit["kind"] == "error" and crit["detail"] == "CRITICAL: on fire", crit
    unk = wait_check(hd, "unknown", lambda c: c["status"] == "down")
    assert unk["kind"] == "error" and unk["detail"] == "UNKNOWN (exit 3): UNKNOWN: no idea", unk
    tcp = wait_check(hd, "tcp", lambda c: c["status"] == "up")
    assert tcp["detail"].startswith("TCP OK"), tcp
    closed_c = wait_check(hd, "tcp-closed", lambda c: c["status"] == "down")
    assert "refused" in closed_c["detail"].lower(), closed_c
    disk = wait_check(hd, "disk", lambda c: c["status"] == "up")
    assert disk["detail"].startswith("DISK OK"), disk
    procs = wait_check(hd, "procs", lambda c: c["status"] == "up")
    assert procs["detail"].startswith("PROCS OK"), procs

    # A WARNING never takes the backend out: only non-critical checks are down, so 200 and "up 50%".
    status, body = hd.json("/health")
    assert status == 200 and body["status"] == "degraded", body
    _, _, body = hd.get("/health", headers={"Accept": "application/health+json"})
    ietf = json.loads(body)["checks"]
    assert ietf["warn:responseTime"][0]["status"] == "warn" and ietf["ok:responseTime"][0]["status"] == "pass", ietf
    text = metrics(hd)
    assert 'healthd_check_warning{check="warn"} 1' in text
    assert re.search(r'^healthd_check_up\{check="warn",critical="true"\} 1$', text, re.M)
    # check_tcp: time=0.000123s -> seconds; check_disk: /=NNNB -> bytes, as statvfs sees /.
    tcp_perf = perfdata(text, "tcp")
    assert "time" in tcp_perf and 0 <= tcp_perf["time"] < 0.9, tcp_perf
    disk_perf = perfdata(text, "disk")
    st = os.statvfs("/")
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    print("perfdata: tcp %s, disk %s (statvfs used %d B)" % (tcp_perf, disk_perf, used))
    assert "/" in disk_perf and abs(disk_perf["/"] - used) < 0.05 * st.f_blocks * st.f_frsize, \
        (disk_perf, used)
    assert perfdata(text, "procs").get("procs", 0) > 1


# --------------------------------------------------------------------------- scripts

def test_timeout_kills_the_whole_process_group(start_healthd, scripts):
    pidfile = os.path.join(scripts.dir, "hang.pids")
    hang = scripts.add("hang.sh", "#!/bin/sh\nsleep 1000 &\necho $$ $! > %s\nwait\n" % pidfile)
    hd = start_healthd(config([program("hang", [hang, "arg1"], dirs=[scripts.dir])],
                              interval_ms=5000, timeout_ms=700))
    c = wait_check(hd, "hang", lambda c: c["status"] == "down", timeout=5)
    assert c["kind"] == "timeout", c
    assert c["detail"] == "run %s arg1: no answer within 700 ms" % hang, c
    leader, child = (int(x) for x in open(pidfile).read().split())
    # The leader and its grandchild (sleep) are SIGKILLed and reaped: no member of the group is left.
    left = wait_until(lambda: not group_members(leader) and not os.path.exists("/proc/%d" % child) or None,
                      timeout=3, what="process group %d gone" % leader)
    print("group %d (leader %d, child %d) gone: %s; zombies of healthd: %s"
          % (leader, leader, child, left, zombie_children(hd.pid)))
    assert zombie_children(hd.pid) == []


def test_child_left_behind_is_killed_when_the_plugin_exits(start_healthd, scripts):
    pidfile = os.path.join(scripts.dir, "bg.pids")
    bg = scripts.add("bg.sh", "#!/bin/sh\nsleep 1000 &\necho $$ $! > %s\necho 'BG OK - left a child'\n"
                     "exit 0\n" % pidfile)
    hd = start_healthd(config([program("bg", [bg], dirs=[scripts.dir])], interval_ms=5000,
                              timeout_ms=2000))
    c = wait_check(hd, "bg", lambda c: c["status"] == "up", timeout=5)
    # Ended when the plugin exited, not at the deadline, though its child still held stdout.
    assert c["detail"] == "BG OK - left a child" and c["latency_ms"] < 1500, c
    leader, child = (int(x) for x in open(pidfile).read().split())
    wait_until(lambda: not group_members(leader) or None, timeout=3, what="group %d gone" % leader)
    assert not os.path.exists("/proc/%d" % child)
    assert zombie_children(hd.pid) == []


def test_megabytes_of_output_are_bounded(start_healthd, scripts):
    big = scripts.add("big.sh", "#!/bin/sh\necho 'BIG OK - then 20 MB' \nhead -c 20000000 /dev/zero\n")
    endless = scripts.add("endless.sh", "#!/bin/sh\nexec yes 'spam spam spam'\n")
    hd = start_healthd(config([program("big", [big], dirs=[scripts.dir]),
                               program("endless", [endless], dirs=[scripts.dir], critical=False)],
                              interval_ms=1000, timeout_ms=800))
    c = wait_check(hd, "big", lambda c: c["status"] == "up", timeout=5)
    assert c["detail"] == "BIG OK - then 20 MB", c
    e = wait_check(hd, "endless", lambda c: c["status"] == "down", timeout=5)
    assert e["kind"] == "timeout", e
    time.sleep(2.5)  # a few more rounds of 20 MB and of endless output
    with open("/proc/%d/status" % hd.pid) as f:
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    print("healthd RSS after reading 20 MB per second and an endless writer: %d KiB" % rss_kb)
    assert rss_kb < 64 * 1024, "healthd RSS %d KiB: output is not bounded" % rss_kb
    assert zombie_children(hd.pid) == []


def test_death_by_signal_is_unknown(start_healthd, scripts):
    seg = scripts.add("segv.sh", "#!/bin/sh\necho 'about to crash'\nkill -SEGV $$\n")
    hd = start_healthd(config([program("segv", [seg], dirs=[scripts.dir])], interval_ms=1000,
                              timeout_ms=800))
    c = wait_check(hd, "segv", lambda c: c["status"] == "down", timeout=5)
    assert c["kind"] == "error", c
    assert c["detail"] == "UNKNOWN (killed by signal 11 (SIGSEGV)): about to crash", c


def test_child_gets_no_daemon_fds_a_minimal_env_and_null_stdin(start_healthd, scripts):
    fds = scripts.add("fds.py", "#!/usr/bin/python3 -I\nimport os\nout = []\n"
                      "for x in sorted(os.listdir('/proc/self/fd'), key=int):\n"
                      "    try:\n        out.append('%s=%s' % (x, os.readlink('/proc/self/fd/' + x)))\n"
                      "    except OSError:\n        pass\n"
                      "print('FDS ' + ' '.join(out))\n")
    env = scripts.add("env.sh", "#!/bin/sh\necho \"ENV $(env | sort | tr '\\n' ' ')\"\n")
    hd = start_healthd(config([program("fds", [fds], dirs=[scripts.dir]),
                               program("env", [env], dirs=[scripts.dir])],
                              interval_ms=1000, timeout_ms=900))
    c = wait_check(hd, "fds", lambda c: c["status"] == "up", timeout=5)
    print(c["detail"])
    listed = dict(item.split("=", 1) for item in c["detail"].split()[1:])
    assert listed.get("0") == "/dev/null", listed
    assert listed.get("1", "").startswith("pipe:") and listed.get("1") == listed.get("2"), listed
    # Whatever else is open was opened by the plugin itself (the /proc listing): no socket, no file of healthd.
    extra = {k: v for k, v in listed.items() if k not in ("0", "1", "2")}
    assert all(v.startswith("/proc/") for v in extra.values()), "inherited from healthd: %s" % extra
    daemon_fds = len(os.listdir("/proc/%d/fd" % hd.pid))
    assert daemon_fds > 5, "healthd has its listeners open: %d fds" % daemon_fds
    e = wait_check(hd, "env", lambda c: c["status"] == "up", timeout=5)
    print(e["detail"])
    names = sorted(v.split("=", 1)[0] for v in e["detail"].split()[1:])
    assert "PATH=/usr/bin:/bin" in e["detail"] and "LANG=C" in e["detail"], e
    assert set(names) <= {"LANG", "PATH", "PWD"}, names


# --------------------------------------------------------------------------- bad configurations

def write_config(workdirs, checks):
    d = workdirs.new("badcfg")
    path = os.path.join(d, "healthd.json")
    text = json.dumps({"checks": checks}, indent=2)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_config_error(workdirs, checks):
    path = write_config(workdirs, checks)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert rc == 2, (rc, out, err)
    assert re.match(r"^%s:\d+:\d+: checks\[\"p\"\]\.command" % re.escape(path), err), err
    return err


def test_bad_programs_are_configuration_errors(workdirs, scripts):
    need_plugins()
    good = scripts.add("good.sh", "#!/bin/sh\necho OK\n")
    world = scripts.add("world.sh", "#!/bin/sh\necho OK\n", mode=0o757)
    sub = os.path.join(scripts.dir, "team")
    os.mkdir(sub)
    os.chmod(sub, 0o775)  # group-writable directory between the script and the allowed one
    inner = os.path.join(sub, "inner.sh")
    with open(inner, "w") as f:
        f.write("#!/bin/sh\necho OK\n")
    os.chmod(inner, 0o755)
    link = os.path.join(PLUGINS, "..", "..", "..", "bin", "true")

    err = check_config_error(workdirs, [program("p", ["/bin/true"])])
    assert "/usr/bin/true is not in an allowed directory" in err and "/usr/lib/nagios/plugins" in err, err
    err = check_config_error(workdirs, [program("p", [link])])  # escapes with ..: resolved first
    assert "not in an allowed directory" in err, err
    err = check_config_error(workdirs, [program("p", [world], dirs=[scripts.dir])])
    assert world in err and "mode 0757" in err and "not writable by group or others" in err, err
    err = check_config_error(workdirs, [program("p", [inner], dirs=[scripts.dir])])
    assert sub in err and "mode 0775" in err, err
    err = check_config_error(workdirs, [program("p", ["check_dummy", "0"])])
    assert '"check_dummy" is not an absolute path' in err, err
    err = check_config_error(workdirs, [program("p", [])])
    assert "expected a non-empty array of strings" in err, err
    err = check_config_error(workdirs, [program("p", [good])])  # not in the default directories
    assert "not in an allowed directory" in err, err
    err = check_config_error(workdirs, [program("p", [os.path.join(scripts.dir, "missing.sh")],
                                                dirs=[scripts.dir])])
    assert "No such file or directory" in err, err
    print("example:", err.strip())
    # And the good one passes.
    path = write_config(workdirs, [program("p", [good], dirs=[scripts.dir])])
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert rc == 0, err


def test_script_made_unsafe_after_start_is_not_run(start_healthd, scripts):
    marker = os.path.join(scripts.dir, "ran")
    s = scripts.add("s.sh", "#!/bin/sh\ntouch %s\necho OK\n" % marker)
    hd = start_healthd(config([program("s", [s], dirs=[scripts.dir])], interval_ms=300, timeout_ms=250))
    wait_check(hd, "s", lambda c: c["status"] == "up")
    os.chmod(s, 0o777)
    c = wait_check(hd, "s", lambda c: c["status"] == "down", timeout=3)
    os.unlink(marker)
    time.sleep(0.8)
    assert c["kind"] == "error" and "mode 0777" in c["detail"], c
    assert not os.path.exists(marker), "an unsafe script was run"


# --------------------------------------------------------------------------- the cost, measured

def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime stime cutime cstime (fields 14-17; index from the state field, which is field 3)
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def measure(hd, names, seconds=10.0):
    hz = os.sysconf("SC_CLK_TCK")
    seen = {}
    own0, kids0 = cpu_ticks(hd.pid)
    attempts0 = sum(int(v) for v in re.findall(r'^healthd_check_attempts_total\{[^}]*\} (\d+)$',
                                               metrics(hd), re.M))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status, body = hd.json("/health")
        for name, c in body["checks"].items() if isinstance(body["checks"], dict) else \
                ((c["name"], c) for c in body["checks"]):
            if c.get("last_checked") and c.get("latency_ms") is not None:
                seen[(name, c["last_checked"])] = c["latency_ms"]
        time.sleep(0.15)
    own1, kids1 = cpu_ticks(hd.pid)
    attempts1 = sum(int(v) for v in re.findall(r'^healthd_check_attempts_total\{[^}]*\} (\d+)$',
                                               metrics(hd), re.M))
    lat = sorted(seen.values())
    n = attempts1 - attempts0
    return {
        "attempts": n,
        "cpu_ms_per_attempt": (own1 - own0) * 1000.0 / hz / max(n, 1),
        "children_cpu_ms_per_attempt": (kids1 - kids0) * 1000.0 / hz / max(n, 1),
        "p50_ms": lat[len(lat) // 2] if lat else None,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
        "samples": len(lat),
    }


def test_cost_of_100_program_checks_next_to_100_tcp_checks(start_healthd, start_tcp_listener):
    need_plugins()
    app = start_tcp_listener()
    results = {}
    for kind in ("program", "tcp"):
        if kind == "program":
            checks = [program("p%03d" % i, [PLUGINS + "/check_dummy", "0", "fine"]) for i in range(100)]
        else:
            checks = [{"name": "t%03d" % i, "type": "tcp", "host": "127.0.0.1", "port": app.port}
                      for i in range(100)]
        hd = start_healthd(config(checks, interval_ms=1000, timeout_ms=900))
        wait_until(lambda: all(c["status"] == "up" for c in hd.json("/health")[1]["checks"].values())
                   or None, timeout=10, what="all 100 up")
        results[kind] = measure(hd, [c["name"] for c in checks])
        hd.stop()
    print("\n100 checks at 1 s for 10 s, %d cores:" % os.cpu_count())
    for kind, r in results.items():
        print("  %-8s attempts %4d  healthd CPU %.3f ms/attempt  plugin CPU %.3f ms/attempt  "
              "latency p50 %.2f ms p99 %.2f ms (%d samples)"
              % (kind, r["attempts"], r["cpu_ms_per_attempt"], r["children_cpu_ms_per_attempt"],
                 r["p50_ms"], r["p99_ms"], r["samples"]))
    assert results["program"]["attempts"] >= 500 and results["tcp"]["attempts"] >= 500, results


# --------------------------------------------------------------------------- under valgrind

def test_program_and_push_under_valgrind(start_tcp_listener, scripts, workdirs, request):
    """memcheck over program checks (a plugin, a script killed at the deadline with its child, one killed by
    a signal, megabytes of output), a push report and a reload that removes a running program check. valgrind
    has no pidfd_open: this also runs the fallback that polls for exits."""
    need_plugins()
    from test_valgrind import ValgrindHealthd, plain_build
    app = start_tcp_listener()
    pidfile = os.path.join(scripts.dir, "vg.pids")
    hang = scripts.add("hang.sh", "#!/bin/sh\nsleep 1000 &\necho $$ $! > %s\nwait\n" % pidfile)
    seg = scripts.add("segv.sh", "#!/bin/sh\necho crash\nkill -SEGV $$\n")
    big = scripts.add("big.sh", "#!/bin/sh\necho 'BIG OK'\nhead -c 5000000 /dev/zero\n")
    checks = [program("tcp", [PLUGINS + "/check_tcp", "-H", "127.0.0.1", "-p", str(app.port)]),
              program("hang", [hang], dirs=[scripts.dir]),
              program("segv", [seg], dirs=[scripts.dir]),
              program("big", [big], dirs=[scripts.dir]),
              {"name": "job", "type": "push", "ttl_ms": 60000}]
    slow = {"interval_ms": 1500, "timeout_ms": 1200, "rise": 1, "fall": 1}
    d = workdirs.new("healthd-vg")
    hd = ValgrindHealthd({"defaults": slow, "checks": checks}, d, None, plain_build())
    request.addfinalizer(lambda: hd.kill() if hd.running else None)
    hd.start()
    want = {"tcp": "ok", "hang": "timeout", "segv": "error", "big": "ok"}
    wait_until(lambda: all(hd.json("/health", timeout=10)[1]["checks"][n]["kind"] == k for n, k in want.items())
               or None, timeout=30, interval=0.5, what="every program check's expected kind")
    t0 = time.monotonic()
    rc, out, err = run_healthd(["ctl", "--socket", hd.admin_socket, "push", "job", "ok"], timeout=30)
    print("push under valgrind answered in %.1f s" % (time.monotonic() - t0))
    assert rc == 0, err
    want["job"] = "ok"
    wait_until(lambda: all(hd.json("/health", timeout=10)[1]["checks"][n]["kind"] == k for n, k in want.items())
               or None, timeout=30, interval=0.5, what="every check's expected kind")
    assert "watching children by polling" in hd.log_current()
    leader = int(open(pidfile).read().split()[0])
    wait_until(lambda: not group_members(leader) or None, timeout=5, what="the hung group killed")
    hd.write_config({"defaults": slow, "checks": [c for c in checks if c["name"] != "hang"]})
    hd.signal(signal.SIGHUP)
    wait_until(lambda: "hang" not in hd.json("/health", timeout=10)[1]["checks"] or None, timeout=15,
               what="hang removed")
    time.sleep(3)
    assert zombie_children(hd.pid) == [], "unreaped children"
    status = hd.stop(timeout=30)
    report = open(hd.valgrind_log).read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    assert errors is not None and int(errors.group(1)) == 0, report
    definite = re.search(r"definitely lost: ([\d,]+) bytes", report)
    assert definite is None or definite.group(1) == "0", report
    assert status == 0, hd.log_tail()
