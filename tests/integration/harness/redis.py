"""Redis servers (redis-server --daemonize yes, stopped by the PID in its pidfile).

    r = Redis(workdir, password=None, replica_of=None, netns=None)
    r.start(); r.cli("PING") -> "PONG"; r.stop(); r.start()   # same port, same dir
"""

import os
import subprocess

from .util import (HarnessError, free_port, wait_until, register_pid, stop_pid, pid_alive,
                   read_text, tail, connect_host)


class Redis:
    kind = "redis-server"
    expect = "redis-server"

    def __init__(self, workdir, password=None, replica_of=None, netns=None, port=None,
                 bind="127.0.0.1", primary_host=None):
        self.workdir = workdir
        self.password = password
        self.replica_of = replica_of
        self.primary_host = primary_host
        self.netns = netns
        self.port = port or free_port()
        self.bind = bind
        self.host = connect_host(bind)
        self.pid_file = os.path.join(workdir, "redis.pid")
        self.log_path = os.path.join(workdir, "redis.log")
        self.pid = None

    def _argv(self):
        argv = ["redis-server", "--port", str(self.port), "--bind", self.bind,
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", self.pid_file, "--logfile", self.log_path, "--dir", self.workdir]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.replica_of is not None:
            host = self.primary_host or self.replica_of.host
            argv += ["--replicaof", host, str(self.replica_of.port)]
            if self.replica_of.password:
                argv += ["--masterauth", self.replica_of.password]
        return argv

    def start(self, timeout=10.0):
        if self.running:
            raise HarnessError("redis already running (pid %d)" % self.pid)
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        argv = self._argv()
        if self.netns is not None:
            argv = self.netns.wrap(argv)
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if cp.returncode != 0:
            raise HarnessError("redis-server failed (rc=%d): %s %s\n%s"
                               % (cp.returncode, cp.stdout, cp.stderr, self.log_tail()))

        def pid_known():
            text = read_text(self.pid_file).strip()
            return int(text) if text.isdigit() else None

        try:
            self.pid = wait_until(pid_known, timeout, what="redis pidfile %s" % self.pid_file)
            register_pid(self.pid, self.expect, "redis :%d" % self.port)
            wait_until(lambda: self.cli("PING", check=False) == "PONG", timeout,
                       what="redis on port %d to answer PING" % self.port)
        except AssertionError as exc:
            self.stop(timeout=2)
            raise HarnessError("%s; log tail:\n%s" % (exc, self.log_tail())) from None
        return self

    def stop(self, timeout=10.0):
        """SIGTERM the daemon (PID from its pidfile), SIGKILL after `timeout`."""
        if self.pid is not None:
            stop_pid(self.pid, self.expect, timeout=timeout)
        self.pid = None

    def close(self):
        self.stop(timeout=5)

    @property
    def running(self):
        return self.pid is not None and pid_alive(self.pid, self.expect)

    def cli(self, *args, check=True, timeout=10):
        """redis-cli against this server -> stdout stripped (e.g. "PONG")."""
        argv = ["redis-cli", "-h", self.host, "-p", str(self.port)]
        if self.password:
            argv += ["-a", self.password, "--no-auth-warning"]
        argv += [str(a) for a in args]
        if self.netns is not None:
            argv = self.netns.wrap(argv)
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and cp.returncode != 0:
            raise HarnessError("redis-cli %s failed (rc=%d): %s"
                               % (" ".join(map(str, args)), cp.returncode, cp.stderr.strip()))
        return cp.stdout.strip()

    def info(self, section=""):
        """INFO as a dict of str."""
        out = self.cli("INFO", section) if section else self.cli("INFO")
        d = {}
        for line in out.splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                d[k.strip()] = v.strip()
        return d

    def log(self):
        return read_text(self.log_path)

    def log_tail(self, lines=40):
        return tail(self.log_path, lines)

    def describe(self):
        return "redis port=%d pid=%s" % (self.port, self.pid)
