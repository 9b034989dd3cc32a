"""Driving the healthd daemon under test.

Binary: $HEALTHD_BIN, else <repo>/build/healthd.

    hd = Healthd(config_dict, workdir, netns=None, extra_args=())
    hd.start(wait_ready=True)      # healthd --config FILE, stdout+stderr -> log file

config["listen"]["http"] / ["agent"] are filled with <bind>:<free port> when absent
(bind="127.0.0.1" by default; "0.0.0.0" to be polled over a namespace LAN),
and ["admin_socket"] with <workdir>/admin.sock (hd.admin_socket) when absent.
config["state_dir"] defaults to <workdir> (hd.state_dir) and config["shutdown_grace_ms"]
to 0 (tests stop at once; set it to test the graceful stop).
A listen address of 0.0.0.0 / :: is reached through 127.0.0.1 / ::1.

Reaching a healthd that runs inside a network namespace: all client helpers (.get,
.json, .agent, .connect) open their sockets inside hd.netns (see harness.netns:
sockets are created by a thread that setns()'d into the namespace), so tests call
them exactly the same way whether or not a namespace is used.  Other programs
(curl, haproxy) must run in the namespace themselves (ns.run / start_haproxy(netns=)).
"""

import copy
import json
import os
import signal
import socket
import subprocess
import time

from .proc import ManagedProcess, die_with_parent
from .util import (HarnessError, free_port, http_request, open_connection,
                   parse_hostport, connect_host, register_pid, stop_popen)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def healthd_bin():
    return os.environ.get("HEALTHD_BIN") or os.path.join(REPO, "build", "healthd")


def require_healthd_bin():
    path = healthd_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HarnessError("healthd binary not found at %s (build it first, or set HEALTHD_BIN)"
                           % path)
    return path


def run_healthd(args, timeout=10, netns=None, env=None, input=None):
    """One-shot run (e.g. ["--check-config", FILE]) -> (rc, stdout, stderr) as text."""
    argv = [require_healthd_bin()] + [str(a) for a in args]
    if netns is not None:
        argv = netns.wrap(argv)
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                         preexec_fn=die_with_parent)
    register_pid(p.pid, "healthd", "healthd one-shot")
    try:
        out, err = p.communicate(input=input.encode() if isinstance(input, str) else input,
                                 timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_popen(p, timeout=0, sig=signal.SIGKILL)
        out, err = p.communicate()
        raise HarnessError("healthd %s did not exit within %ss\nstdout: %s\nstderr: %s"
                           % (" ".join(map(str, args)), timeout,
                              out.decode(errors="replace"), err.decode(errors="replace")))
    finally:
        stop_popen(p, timeout=0, sig=signal.SIGKILL)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class Healthd(ManagedProcess):
    kind = "healthd"
    expect = "healthd"
    start_timeout = 10.0

    def __init__(self, config, workdir, netns=None, extra_args=(), env=None, bind="127.0.0.1"):
        super().__init__(workdir, netns)
        self.bind = bind
        self.binary = require_healthd_bin()
        self.extra_args = [str(a) for a in extra_args]
        self.extra_env = dict(env or {})
        self.config_path = os.path.join(workdir, "healthd.json")
        self.config = self._fill_listen(copy.deepcopy(config))
        self.write_config(self.config)

    # -- configuration
    def _fill_listen(self, config):
        listen = config.setdefault("listen", {})
        for key in ("http", "agent"):
            if not listen.get(key):
                listen[key] = "%s:%d" % (self.bind, free_port())
        if "admin_socket" not in listen:
            # the default (/run/healthd/healthd.sock) would be shared by every instance
            listen["admin_socket"] = os.path.join(self.workdir, "admin.sock")
        # the default (/var/lib/healthd) would be shared too; and a default grace would slow every stop
        config.setdefault("state_dir", self.workdir)
        config.setdefault("shutdown_grace_ms", 0)
        return config

    def write_config(self, config=None):
        """(Re)write the config file; `listen` is kept from the current config when the
        new one lacks it, so a following SIGHUP/restart uses the same ports."""
        if config is not None:
            config = copy.deepcopy(config)
            old = self.config.get("listen", {}) if hasattr(self, "config") else {}
            listen = config.setdefault("listen", {})
            for key in ("http", "agent", "admin_socket"):
                if key not in listen and old.get(key):
                    listen[key] = old[key]
            self.config = self._fill_listen(config)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        return self.config_path

    @property
    def http_addr(self):
        host, port = parse_hostport(self.config["listen"]["http"])
        return connect_host(host), port

    @property
    def agent_addr(self):
        host, port = parse_hostport(self.config["listen"]["agent"])
        return connect_host(host), port

    @property
    def admin_socket(self):
        return self.config["listen"].get("admin_socket")

    @property
    def state_dir(self):
        return self.config.get("state_dir")

    @property
    def http_port(self):
        return self.http_addr[1]

    @property
    def agent_port(self):
        return self.agent_addr[1]

    def url(self, path="/"):
        host, port = self.http_addr
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d%s" % (host, port, path)

    # -- process
    def _argv(self):
        return [self.binary, "--config", self.config_path] + self.extra_args

    def _env(self):
        env = dict(os.environ)
        env.update(self.extra_env)
        return env

    def _ready(self):
        status, _, _ = self.get("/live", timeout=1.0)
        return status == 200

    def start(self, wait_ready=True, timeout=None):
        if self.running:
            raise HarnessError("healthd already running (pid %d)" % self.pid)
        self._spawn()
        if wait_ready:
            self.wait_ready(timeout if timeout is not None else self.start_timeout)
        return self

    def restart(self, wait_ready=True, timeout=None):
        """Stop (SIGTERM) and start again with the same config file and ports."""
        self.stop()
        with open(self.log_path, "ab") as f:
            f.write(b"\n=== harness: restart ===\n")
        return self.start(wait_ready=wait_ready, timeout=timeout)

    def wait_exit(self, timeout=10.0):
        """Wait for the process to exit by itself; return its status (None if it did not)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- clients
    def connect(self, which="http", timeout=3.0):
        """A raw TCP socket to the http or agent listener (inside the netns if any)."""
        addr = self.http_addr if which == "http" else self.agent_addr
        return open_connection(addr, timeout=timeout, netns=self.netns)

    def get(self, path, method="GET", headers=None, body=None, timeout=3.0):
        """-> (status, headers (case-insensitive dict), body bytes)."""
        host, port = self.http_addr
        return http_request(host, port, path, method=method, headers=headers, body=body,
                            timeout=timeout, netns=self.netns)

    def json(self, path, timeout=3.0):
        """-> (status, parsed JSON body, or None when the body is not JSON)."""
        status, _, body = self.get(path, timeout=timeout)
        try:
            return status, json.loads(body.decode("utf-8"))
        except ValueError:
            return status, None

    def agent(self, send=b"", timeout=3.0):
        """Talk to the agent port like HAProxy: connect, send `send` (if any), read one
        line (until \\n or EOF); return it decoded, without the line ending."""
        if isinstance(send, str):
            send = send.encode()
        s = self.connect("agent", timeout=timeout)
        try:
            if send:
                s.sendall(send)
            buf = b""
            deadline = time.monotonic() + timeout
            while b"\n" not in buf and len(buf) < 65536:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("agent answered no full line within %ss: %r"
                                         % (timeout, buf))
                s.settimeout(remaining)
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        line = buf.split(b"\n", 1)[0]
        return line.rstrip(b"\r").decode("utf-8", "replace")
