"""ManagedProcess: one foreground server process we own (optionally inside a netns),
with its stdout+stderr appended to a log file, registered for last-resort cleanup,
and stoppable/restartable by PID."""

import ctypes
import os
import signal
import subprocess
import sys
import time

from .util import HarnessError, register_pid, stop_popen, read_text, tail

PYTHON = sys.executable or "/usr/bin/python3"
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the thread that started it dies, so a
    killed pytest leaves no servers behind (start servers from the main thread)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ManagedProcess:
    """Base class: subclasses build argv in _argv() and check readiness in _ready()."""

    kind = "process"
    expect = None          # substring of /proc/PID/cmdline (defaults to argv[0]'s name)
    start_timeout = 10.0

    def __init__(self, workdir, netns=None):
        self.workdir = workdir
        self.netns = netns
        self.log_path = os.path.join(workdir, "%s.log" % self.kind)
        self.proc = None

    # -- to override
    def _argv(self):
        raise NotImplementedError

    def _ready(self):
        return True

    def _env(self):
        return None

    # -- life cycle
    def _spawn(self):
        argv = [str(a) for a in self._argv()]
        expect = self.expect or os.path.basename(argv[0])
        log = open(self.log_path, "ab")
        self._log_start = log.tell()
        try:
            kw = dict(stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                      env=self._env(), start_new_session=True, cwd=self.workdir,
                      preexec_fn=die_with_parent)
            if self.netns is not None:
                self.proc = self.netns.popen(argv, expect=expect, **kw)
            else:
                self.proc = subprocess.Popen(argv, **kw)
                register_pid(self.proc.pid, expect, self.kind)
        finally:
            log.close()
        return self.proc

    def start(self, timeout=None):
        """Start (or restart after .stop()) and wait until ready."""
        if self.running:
            raise HarnessError("%s already running (pid %d)" % (self.kind, self.proc.pid))
        self._spawn()
        self.wait_ready(timeout if timeout is not None else self.start_timeout)
        return self

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise HarnessError("%s exited with status %s while starting; log tail:\n%s"
                                   % (self.kind, self.proc.returncode, self.log_tail()))
            try:
                if self._ready():
                    return
                last = None
            except Exception as exc:  # noqa: BLE001
                last = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        pid = self.proc.pid
        self.kill()
        raise HarnessError("%s (pid %d) not ready after %.1fs%s; log tail:\n%s"
                           % (self.kind, pid, timeout,
                              " (last error: %r)" % (last,) if last else "", self.log_tail()))

    def stop(self, timeout=10.0):
        """SIGTERM, wait `timeout`, then SIGKILL. Returns the exit status."""
        return stop_popen(self.proc, timeout=timeout)

    def kill(self):
        return stop_popen(self.proc, timeout=0, sig=signal.SIGKILL)

    def signal(self, sig):
        self.proc.send_signal(sig)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- logs
    def log(self):
        return read_text(self.log_path)

    def log_current(self):
        """The log written since the last start."""
        with open(self.log_path, "rb") as f:
            f.seek(getattr(self, "_log_start", 0))
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=40):
        return tail(self.log_path, lines)

    def describe(self):
        where = " in %s" % self.netns.name if self.netns is not None else ""
        return "%s pid=%s%s" % (self.kind, self.pid, where)

    def close(self):
        """Fixture teardown: stop whatever is running."""
        self.stop(timeout=5)


class ScriptProcess(ManagedProcess):
    """A harness Python script that prints "READY <port>" once it listens."""

    expect = "python"

    def _ready(self):
        return ("READY %d" % self.port) in self.log_current()
