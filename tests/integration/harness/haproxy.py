"""HAProxy driven through its stats socket.

    hp = HAProxy(cfg_text, workdir, netns=None).start()

cfg_text may contain "{stats_socket}" (replaced by a socket path in the work dir); when
it has no "stats socket" line, one is added to its global section (or a global section
is prepended).  HAProxy runs in the foreground (-db) as our child, its stdout/stderr
going to hp.log(); add `log stderr format short local0` to `global` and `log global` +
`option log-health-checks` to a backend to see health-check transitions in that log.

The stats socket is a path-named UNIX socket, reachable from the test process even when
HAProxy runs inside a network namespace.
"""

import csv
import io
import os
import re
import socket

from .proc import ManagedProcess
from .util import HarnessError, wait_until


# The global and defaults sections of the tests' TCP-mode HAProxy (stats socket, health-check log): a test adds
# its backend after it.
TCP_TEST_HEAD = """
global
    stats socket {stats_socket} mode 600 level admin
    log stderr format short local0 info

defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
"""


class HAProxy(ManagedProcess):
    kind = "haproxy"
    expect = "haproxy"
    start_timeout = 10.0

    def __init__(self, cfg_text, workdir, netns=None):
        super().__init__(workdir, netns)
        self.stats_socket = os.path.join(workdir, "haproxy.sock")
        self.config_path = os.path.join(workdir, "haproxy.cfg")
        self.cfg_text = self._prepare(cfg_text)
        with open(self.config_path, "w") as f:
            f.write(self.cfg_text)

    def _prepare(self, text):
        text = text.replace("{stats_socket}", self.stats_socket)
        if not re.search(r"^\s*stats\s+socket\s", text, re.M):
            line = "    stats socket %s mode 600 level admin\n" % self.stats_socket
            m = re.search(r"^global[ \t]*\n", text, re.M)
            if m:
                text = text[:m.end()] + line + text[m.end():]
            else:
                text = "global\n" + line + "\n" + text
        if not text.endswith("\n"):
            text += "\n"
        return text

    def _argv(self):
        return ["haproxy", "-db", "-f", self.config_path]

    def _ready(self):
        return "Name: HAProxy" in self.cmd("show info", timeout=1.0)

    def close(self):
        self.stop(timeout=5)

    # -- stats socket
    def cmd(self, text, timeout=3.0):
        """Send one command to the stats socket -> its whole answer as text."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect(self.stats_socket)
            s.sendall(text.rstrip("\n").encode() + b"\n")
            chunks = []
            total = 0
            while total < (64 << 20):
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
                total += len(data)
            return b"".join(chunks).decode("utf-8", "replace")
        finally:
            s.close()

    def show_stat(self):
        """`show stat` -> list of dicts (one per frontend/backend/server line)."""
        out = self.cmd("show stat")
        lines = [l for l in out.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            raise HarnessError("unexpected show stat output: %r" % out[:300])
        header = lines[0][2:]
        reader = csv.DictReader(io.StringIO("\n".join([header] + lines[1:])))
        return [{k: v for k, v in row.items() if k} for row in reader]

    def server(self, backend, server):
        """The `show stat` row of one server."""
        for row in self.show_stat():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise HarnessError("no server %s/%s in show stat" % (backend, server))

    def servers_state(self, backend):
        """`show servers state BACKEND` -> list of dicts keyed by the header's names
        (srv_name, srv_op_state, srv_admin_state, srv_uweight, ...; values are str)."""
        out = self.cmd("show servers state %s" % backend)
        header = None
        rows = []
        for line in out.splitlines():
            if line.startswith("# "):
                header = line[2:].split()
            elif header and line.strip() and not line.strip().isdigit():
                if line.startswith("Can't find") or line.startswith("Unknown"):
                    raise HarnessError(line)
                vals = line.split()
                rows.append(dict(zip(header, vals)))
        if header is None:
            raise HarnessError("unexpected show servers state output: %r" % out[:300])
        return rows

    def server_state(self, backend, server):
        for row in self.servers_state(backend):
            if row.get("srv_name") == server:
                return row
        raise HarnessError("no server %s/%s in show servers state" % (backend, server))

    def wait_server(self, backend, server, pred, timeout=10.0, what=None):
        """Wait until pred(show-stat row) is truthy; return the row."""
        box = {}

        def check():
            box["row"] = self.server(backend, server)
            return pred(box["row"])

        try:
            wait_until(check, timeout, interval=0.1,
                       what=what or "haproxy server %s/%s condition" % (backend, server))
        except AssertionError as exc:
            raise AssertionError("%s; last row: %r" % (exc, box.get("row"))) from None
        return box["row"]
