"""A reload never stops the loop: the configuration and every file it names are read on a worker thread, so a
password file that is a named pipe is refused at once, and one on a frozen FUSE mount (memfs.py, SIGSTOP) times
out while /ready and the agent port keep answering, and the running configuration stays."""

import os
import signal
import threading
import time

from harness import free_port, run_healthd, wait_until
from test_disk import memfs  # noqa: F401  (the FUSE fixture, reused)

PROBE_INTERVAL_S = 0.1


def ctl(hd, *args, timeout=15):
    return run_healthd(["ctl", "--socket", hd.admin_socket] + list(args), timeout=timeout)


def base_config(app_port):
    return {"defaults": {"interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 1},
            "checks": [{"name": "app", "type": "tcp", "host": "127.0.0.1", "port": app_port}]}


def with_password_file(cfg, path):
    new = dict(cfg)
    new["checks"] = cfg["checks"] + [{"name": "cache", "type": "redis", "host": "127.0.0.1", "port": free_port(),
                                      "password_file": path}]
    return new


class Prober:
    """Asks /ready and the agent every 100 ms on a thread; every answer and its latency is recorded."""

    def __init__(self, hd):
        self.hd = hd
        self.results = []  # (what, ok, seconds, answer)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_flag.is_set():
            for what in ("ready", "agent"):
                started = time.monotonic()
                try:
                    if what == "ready":
                        status, _, _ = self.hd.get("/ready", timeout=1)
                        answer, ok = status, status == 200
                    else:
                        answer = self.hd.agent(timeout=1)
                        ok = answer.startswith("up")
                except Exception as e:  # a timeout is the failure this test looks for
                    answer, ok = repr(e), False
                self.results.append((what, ok, time.monotonic() - started, answer))
            self.stop_flag.wait(PROBE_INTERVAL_S)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(5)

    def summary(self):
        ok = sum(1 for r in self.results if r[1])
        worst = max((r[2] for r in self.results), default=0)
        failed = [r for r in self.results if not r[1]][:5]
        return ok, len(self.results), worst, failed


def test_password_file_that_is_a_named_pipe_is_refused_and_the_loop_keeps_answering(
        start_tcp_listener, start_healthd, workdirs):
    app = start_tcp_listener()
    hd = start_healthd(base_config(app.port))
    wait_until(lambda: hd.get("/ready")[0] == 200, 5, what="ready")
    fifo = os.path.join(workdirs.new("fifo"), "cache.pw")
    os.mkfifo(fifo, 0o600)
    hd.write_config(with_password_file(hd.config, fifo))

    with Prober(hd) as probes:
        time.sleep(0.3)
        started = time.monotonic()
        rc, out, err = ctl(hd, "reload")
        took = time.monotonic() - started
        hd.signal(signal.SIGHUP)
        time.sleep(1.0)
    ok, total, worst, failed = probes.summary()
    print("named pipe: ctl reload answered in %.3f s: %s; probes %d/%d answered, slowest %.3f s"
          % (took, err.strip(), ok, total, worst))
    wait_until(lambda: hd.log_current().count("a named pipe") >= 2, 5, what="the SIGHUP refusal in the log")
    assert rc == 1, (rc, out, err)
    assert "reload refused" in err and fifo in err and "a named pipe" in err, err
    assert total >= 10 and ok == total, "probes %d/%d answered (slowest %.3f s): %s" % (ok, total, worst, failed)
    assert list(hd.json("/health")[1]["checks"]) == ["app"]  # the old configuration runs on


def test_password_file_on_a_frozen_mount_times_out_without_blocking(memfs, start_tcp_listener,  # noqa: F811
                                                                     start_healthd):
    app = start_tcp_listener()
    hd = start_healthd(base_config(app.port))
    wait_until(lambda: hd.get("/ready")[0] == 200, 5, what="ready")
    secret = os.path.join(memfs.mountpoint, "cache.pw")
    with open(secret, "w") as f:
        f.write("S3cret\n")
    hd.write_config(with_password_file(hd.config, secret))

    memfs.freeze()
    try:
        with Prober(hd) as probes:
            time.sleep(0.3)
            started = time.monotonic()
            rc, out, err = ctl(hd, "reload")
            took = time.monotonic() - started
            # while that read is still blocked, another reload is refused at once, naming the file
            started2 = time.monotonic()
            rc2, out2, err2 = ctl(hd, "reload")
            took2 = time.monotonic() - started2
        ok, total, worst, failed = probes.summary()
        print("frozen mount: ctl reload answered after %.2f s: %s" % (took, err.strip()))
        print("frozen mount: second reload answered after %.3f s: %s" % (took2, err2.strip()))
        print("frozen mount: probes %d/%d answered during the reload, slowest %.3f s" % (ok, total, worst))
        assert rc == 1 and "reload timed out: still reading %s after 8000 ms" % secret in err, (rc, err)
        assert 7.5 < took < 10, took
        assert rc2 == 1 and "still blocked reading %s" % secret in err2 and took2 < 2, (took2, err2)
        assert total >= 60 and ok == total, "probes %d/%d answered (slowest %.3f s): %s" % (ok, total, worst, failed)
        assert list(hd.json("/health")[1]["checks"]) == ["app"]  # the old configuration runs on
    finally:
        memfs.thaw()
    wait_until(lambda: "its result is dropped" in hd.log_current(), 5, what="the late read dropped")
    rc, out, err = ctl(hd, "reload")  # now it reads, and applies
    assert rc == 0 and "added: cache" in out, (rc, out, err)
    assert sorted(hd.json("/health")[1]["checks"]) == ["app", "cache"]


def test_a_reload_asked_for_during_a_read_follows_it(memfs, start_tcp_listener, start_healthd):  # noqa: F811
    app = start_tcp_listener()
    hd = start_healthd(base_config(app.port))
    wait_until(lambda: hd.get("/ready")[0] == 200, 5, what="ready")
    secret = os.path.join(memfs.mountpoint, "cache.pw")
    with open(secret, "w") as f:
        f.write("S3cret\n")
    hd.write_config(with_password_file(hd.config, secret))
    answers = {}

    def reload(name):
        answers[name] = ctl(hd, "reload")

    memfs.freeze()
    try:
        first = threading.Thread(target=reload, args=("first",))
        first.start()
        time.sleep(0.5)
        second = threading.Thread(target=reload, args=("second",))
        second.start()
        wait_until(lambda: "while one is reading: it follows" in hd.log_current(), 5, what="the second one queued")
    finally:
        memfs.thaw()
    first.join(15)
    second.join(15)
    print("queued reload: first %r, second %r" % (answers["first"][1].strip(), answers["second"][1].strip()))
    assert answers["first"][0] == 0 and "added: cache" in answers["first"][1], answers
    assert answers["second"][0] == 0 and "2 unchanged" in answers["second"][1], answers
    assert "reading %s again" % hd.config_path in hd.log_current()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def test_renaming_every_check_on_each_reload_does_not_grow_memory(start_healthd, monkeypatch):
    """Each check's state (results ring, /health member, alert state) goes with the check: 1,000 checks given new
    names on each of 12 reloads (12,000 names seen) keep healthd within 3 MiB of where the first names left it
    (measured: +0.1 MiB, +1.4 under ASan). Kept for every name ever seen, the results rings and the alert states
    were 19 MiB more, the alert states alone 4.6."""
    # Under ASan, freed memory sits in its quarantine (256 MB by default) and looks like growth: keep it small.
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4") if x))
    closed = free_port()  # nothing listens: every attempt is refused at once

    def config(generation):
        cfg = base_config(closed)
        cfg["defaults"]["interval_ms"] = 500
        cfg["checks"] = [{"name": "g%02d-c%04d" % (generation, i), "type": "tcp", "host": "127.0.0.1",
                          "port": closed} for i in range(1000)]
        return cfg

    def reload_to(generation):
        hd.write_config(config(generation))
        rc, out = ctl(hd, "reload")[:2]
        assert rc == 0, out
        # every check of this generation has a result (its ring and member exist) before the next reload
        wait_until(lambda: all(c["status"] != "pending" for c in hd.json("/health")[1]["checks"].values()), 15,
                   what="results for generation %d" % generation)

    hd = start_healthd(config(0), wait_ready=False)
    wait_until(lambda: hd.get("/live")[0] == 200, 10, what="healthd answering")  # started: its file was read
    reload_to(1)
    reload_to(2)  # the first reload's own allocations (the old list, the reader's) counted in the baseline
    before = rss_kib(hd.proc.pid)
    for generation in range(3, 15):
        reload_to(generation)
    after = rss_kib(hd.proc.pid)
    print("RSS: %d KiB after 3 generations of 1,000 names, %d KiB after 15 (+%d KiB)" % (before, after,
                                                                                          after - before))
    assert after - before < 3 * 1024, (before, after)
