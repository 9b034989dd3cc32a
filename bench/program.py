#!/usr/bin/env python3
"""bench/program.py: what a program check (a Nagios plugin run as a child) costs, next to a tcp check.

Runs healthd with N program checks (Debian's check_dummy, which does nothing: the cost is healthd's fork, exec,
pipes, reaping and parsing), every second, for MEASURE_S seconds; then the same N as tcp checks of a loopback
listener. Prints, side by side and as the ratio program/tcp: attempts, healthd's CPU (% of one core, from
/proc/PID/stat), the children's CPU (the plugins themselves, reaped), and the attempts' latency p50/p99 (each
check's latency_ms in /health, read every 200 ms). Bounded: two runs of MEASURE_S seconds each.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

N = int(os.environ.get("N", "100"))
MEASURE_S = float(os.environ.get("MEASURE_S", "10"))
BIN = os.path.realpath(os.environ.get("HEALTHD_BIN", "build/healthd"))
PLUGIN = "/usr/lib/nagios/plugins/check_dummy"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listener():
    """A loopback TCP listener that accepts and closes: the tcp checks' target."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return s


def cpu_ticks(pid):
    """(healthd's utime+stime, its reaped children's cutime+cstime) in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def health(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
        return json.loads(r.read())


def attempts(port):
    """The sum of healthd_check_attempts_total over every check, from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("healthd_check_attempts_total{"))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def run(kind, target_port, work):
    port = free_port()
    if kind == "program":
        checks = [{"name": "p%03d" % i, "type": "program", "command": [PLUGIN, "0", "fine"]} for i in range(N)]
    else:
        checks = [{"name": "t%03d" % i, "type": "tcp", "host": "127.0.0.1", "port": target_port} for i in range(N)]
    state = os.path.join(work, kind + ".state")
    os.makedirs(state, exist_ok=True)
    cfg = {"state_dir": state, "listen": {"http": "127.0.0.1:%d" % port, "agent": "127.0.0.1:%d" % free_port(),
                      "admin_socket": os.path.join(work, kind + ".sock")},
           "defaults": {"interval_ms": 1000, "timeout_ms": 900, "rise": 1, "fall": 1},
           "checks": checks}
    path = os.path.join(work, kind + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(work, kind + ".log"), "w")
    p = subprocess.Popen([BIN, "--config", path], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if all(c["status"] == "up" for c in health(port)["checks"].values()):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or p.poll() is not None:
                sys.exit("bench/program.py: healthd with %d %s checks did not come up; see %s" % (N, kind, log.name))
            time.sleep(0.2)
        before = health(port)["checks"]
        attempts0 = attempts(port)
        self0, kids0 = cpu_ticks(p.pid)
        t0 = time.monotonic()
        latencies, seen = [], {name: c["last_checked"] for name, c in before.items()}
        while time.monotonic() - t0 < MEASURE_S:
            time.sleep(0.2)
            for name, c in health(port)["checks"].items():
                if c["last_checked"] != seen[name]:
                    seen[name] = c["last_checked"]
                    latencies.append(c["latency_ms"])
        elapsed = time.monotonic() - t0
        self1, kids1 = cpu_ticks(p.pid)
        done = attempts(port) - attempts0
        down = sum(c["status"] != "up" for c in health(port)["checks"].values())
    finally:
        p.terminate()
        p.wait(30)
        log.close()
    return {"attempts": done, "per_s": done / elapsed, "down": down,
            "cpu": 100.0 * (self1 - self0) / TICK / elapsed, "kids": 100.0 * (kids1 - kids0) / TICK / elapsed,
            "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99), "samples": len(latencies)}


def main():
    if not os.access(PLUGIN, os.X_OK):
        sys.exit("bench/program.py: %s is missing (monitoring-plugins-basic; make deps installs it)" % PLUGIN)
    target = listener()
    with tempfile.TemporaryDirectory(prefix="healthd-bench-program.") as work:
        r = {kind: run(kind, target.getsockname()[1], work) for kind in ("program", "tcp")}
    target.close()
    print("\nhealthd program checks next to tcp checks: %d checks at 1 s, %g s each, %d cores\n"
          % (N, MEASURE_S, os.cpu_count()))
    rows = [("attempts/s", "per_s", "%.1f"), ("healthd CPU % of a core", "cpu", "%.2f"),
            ("plugins' CPU % of a core", "kids", "%.2f"), ("latency p50 ms", "p50", "%.3f"),
            ("latency p99 ms", "p99", "%.3f")]
    print("%-26s %12s %12s %10s" % ("", "program", "tcp", "ratio"))
    for label, key, fmt in rows:
        a, b = r["program"][key], r["tcp"][key]
        ratio = "%.1f" % (a / b) if b else "-"
        print("%-26s %12s %12s %10s" % (label, fmt % a, fmt % b, ratio))
    print("\nprogram: %s 0 (does nothing: the cost is healthd's fork, exec, pipes, reaping and parsing); tcp: a "
          "loopback connect.\n%d and %d latencies sampled; checks down at the end: %d and %d."
          % (PLUGIN, r["program"]["samples"], r["tcp"]["samples"], r["program"]["down"], r["tcp"]["down"]))
    if r["program"]["down"] or r["tcp"]["down"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
