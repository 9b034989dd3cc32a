"""Controllers for the harness's own small servers (subprocesses, netns-capable):
TcpListener, HttpApp, TcpProxy (harness/tcpserver.py) and WebhookReceiver
(tests/integration/receiver.py)."""

import json
import os

from .proc import ScriptProcess, PYTHON
from .util import free_port, read_text, wait_until, http_request, connect_host

HERE = os.path.dirname(os.path.abspath(__file__))
TCPSERVER = os.path.join(HERE, "tcpserver.py")
RECEIVER = os.path.join(os.path.dirname(HERE), "receiver.py")


class _TcpServerBase(ScriptProcess):
    def __init__(self, workdir, port=None, netns=None, bind="127.0.0.1"):
        super().__init__(workdir, netns)
        self.bind = bind
        self.port = port or free_port()
        self.host = connect_host(bind)
        self.count_file = os.path.join(workdir, "count")

    def accepted(self):
        """How many connections the server accepted since it was (re)started."""
        text = read_text(self.count_file, "0").strip()
        return int(text or 0)

    @property
    def addr(self):
        return (self.host, self.port)


class TcpListener(_TcpServerBase):
    """mode "accept": accept and close at once; "silent": accept, hold, never speak.
    reply="up 50%\\n" (accept mode): send that line first, e.g. as a fake HAProxy agent."""

    kind = "tcp-listener"

    def __init__(self, workdir, port=None, netns=None, mode="accept", bind="127.0.0.1",
                 reply=None):
        super().__init__(workdir, port, netns, bind)
        if mode not in ("accept", "silent"):
            raise ValueError("mode must be accept or silent")
        self.mode = mode
        self.reply = reply

    def _argv(self):
        argv = [PYTHON, TCPSERVER, "listen", "--port", self.port, "--bind", self.bind,
                "--mode", self.mode, "--count-file", self.count_file]
        if self.reply is not None:
            data = self.reply.encode() if isinstance(self.reply, str) else self.reply
            argv += ["--reply-hex", data.hex()]
        return argv


class HttpApp(_TcpServerBase):
    """A stand-in backend application / HTTP check target.  .set(status=, body=, delay=)
    changes the answer live (the server re-reads a state file per request)."""

    kind = "http-app"

    def __init__(self, workdir, port=None, netns=None, status=200, body="ok", delay=0.0,
                 bind="127.0.0.1"):
        super().__init__(workdir, port, netns, bind)
        self.state_file = os.path.join(workdir, "state.json")
        self.status, self.body, self.delay = status, body, delay

    def _argv(self):
        return [PYTHON, TCPSERVER, "http", "--port", self.port, "--bind", self.bind,
                "--status", self.status, "--body", self.body, "--delay", self.delay,
                "--state-file", self.state_file, "--count-file", self.count_file]

    def set(self, status=None, body=None, delay=None):
        st = {}
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                st = json.load(f)
        for k, v in (("status", status), ("body", body), ("delay", delay)):
            if v is not None:
                st[k] = v
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.replace(tmp, self.state_file)

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def get(self, path="/", method="GET", timeout=3.0):
        return http_request(self.host, self.port, path, method, timeout=timeout,
                            netns=self.netns)


class TcpProxy(_TcpServerBase):
    """Forward port -> target (host, port), adding `delay` seconds per chunk and direction
    (latency emulation; netem is not available on every kernel)."""

    kind = "tcp-proxy"

    def __init__(self, workdir, target, delay=0.2, port=None, netns=None, bind="127.0.0.1"):
        super().__init__(workdir, port, netns, bind)
        self.target = target
        self.delay = delay

    def _argv(self):
        host, port = self.target
        t = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
        return [PYTHON, TCPSERVER, "proxy", "--port", self.port, "--bind", self.bind,
                "--target", t, "--delay", self.delay, "--count-file", self.count_file]


class WebhookReceiver(ScriptProcess):
    """Runs receiver.py.  .posts() -> list of {"path","headers","body","t"}; .stop() and
    .start(mode=...) restart it on the same port with the same record file."""

    kind = "receiver"

    def __init__(self, workdir, mode="ok", port=None, netns=None, bind="127.0.0.1"):
        super().__init__(workdir, netns)
        self.mode = mode
        self.bind = bind
        self.port = port or free_port()
        self.host = connect_host(bind)
        self.record = os.path.join(workdir, "posts.jsonl")
        open(self.record, "a").close()

    def _argv(self):
        return [PYTHON, RECEIVER, "--port", self.port, "--bind", self.bind,
                "--record", self.record, "--mode", self.mode]

    def start(self, mode=None, timeout=None):
        if mode is not None:
            self.mode = mode
        return super().start(timeout)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def posts(self):
        out = []
        for line in read_text(self.record).splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written right now
        return out

    def clear(self):
        open(self.record, "w").close()

    def wait_for(self, pred=None, timeout=5.0, what=None):
        """Wait until pred(posts) is truthy (default: at least one post); return posts."""
        pred = pred or (lambda posts: len(posts) > 0)
        box = {}

        def check():
            box["p"] = self.posts()
            return pred(box["p"])

        wait_until(check, timeout, interval=0.05,
                   what=what or "receiver posts matching the predicate")
        return box["p"]
