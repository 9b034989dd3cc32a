"""Small building blocks shared by every fixture of the integration harness.

- free_port(): a TCP port that is free right now (bind port 0, read it back, close).
- wait_until(): a bounded poll loop that fails with a readable message.
- Process bookkeeping: every process the harness starts is registered here with the
  name of its executable, so that a last-resort cleanup at the end of the session can
  kill exactly the processes we started (by PID, after checking /proc/PID/cmdline) and
  nothing else.
- open_connection()/http_request(): client helpers that optionally work inside a
  network namespace (see harness.netns for how).
- mounted_fstype()/unmount(): what is mounted exactly at a path, and unmounting it.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

__all__ = [
    "HarnessError", "free_port", "wait_until", "tail", "read_text", "CIDict",
    "register_pid", "unregister_pid", "registered_pids", "kill_registered", "pid_alive", "stop_pid",
    "stop_popen", "open_connection", "http_request", "WorkDirs", "parse_hostport",
    "connect_host", "mounted_fstype", "unmount",
]


class HarnessError(AssertionError):
    """A fixture could not do its job (a server did not start, a command failed...).

    It derives from AssertionError so that pytest reports it as a plain failure with
    its message, which always carries the relevant log tail.
    """


# --------------------------------------------------------------------------- waiting

def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Call pred() until it returns something truthy; return that value.

    Bounded by `timeout` seconds (and therefore by a finite number of calls).  An
    exception raised by pred() counts as "not yet"; the last one is shown in the
    AssertionError raised on timeout, together with `what`.
    """
    deadline = time.monotonic() + timeout
    max_calls = int(timeout / max(interval, 0.001)) + 2
    last_exc = None
    last_val = None
    for _ in range(max_calls):
        try:
            last_val = pred()
            if last_val:
                return last_val
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    msg = "timed out after %.1fs waiting for %s" % (timeout, what)
    if last_exc is not None:
        msg += " (last error: %r)" % (last_exc,)
    else:
        msg += " (last value: %r)" % (last_val,)
    raise AssertionError(msg)


# --------------------------------------------------------------------------- ports

# Every port free_port has handed out in this test process: the kernel may give the same free port to two binds
# in a row (each socket is closed before the next), and a daemon given it twice cannot start.
_handed_out = set()


def free_port(host="127.0.0.1", netns=None):
    """Return a TCP port that nothing listens on right now, and that no earlier call returned.

    With `netns`, the port is probed inside that namespace (a new namespace has
    every port free, so the host's answer is usually fine too).
    """
    for _ in range(1000):
        if netns is not None:
            s = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise HarnessError("no TCP port left that was not handed out already (%d given)" % len(_handed_out))


def parse_hostport(text):
    """'127.0.0.1:80' -> ('127.0.0.1', 80); '[::1]:80' -> ('::1', 80); ':80' -> ('', 80)."""
    text = str(text).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        return "", int(text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def connect_host(host):
    """The address a client uses to reach a server listening on `host`."""
    if host in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


# --------------------------------------------------------------------------- text

def read_text(path, default=""):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return default


def tail(path_or_text, lines=40, is_text=False):
    """Last `lines` lines of a file (or of a string when is_text)."""
    text = path_or_text if is_text else read_text(path_or_text, "<no log file %s>" % path_or_text)
    parts = text.splitlines()
    return "\n".join(parts[-lines:])


class CIDict(dict):
    """A dict of HTTP headers whose lookups ignore case (keys are stored lower-case)."""

    def __init__(self, items=()):
        super().__init__()
        for k, v in items:
            k = k.lower()
            if k in self:
                dict.__setitem__(self, k, dict.__getitem__(self, k) + ", " + v)
            else:
                dict.__setitem__(self, k, v)

    def __getitem__(self, key):
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key):
        return dict.__contains__(self, key.lower())

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)


# --------------------------------------------------------------------------- processes

_REG_LOCK = threading.Lock()
_REGISTRY = {}  # pid -> (expected substring of cmdline, description)


def register_pid(pid, expect, what=""):
    """Remember a process we started (expect: substring of its /proc cmdline)."""
    with _REG_LOCK:
        _REGISTRY[int(pid)] = (expect, what)


def unregister_pid(pid):
    with _REG_LOCK:
        _REGISTRY.pop(int(pid), None)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def pid_alive(pid, expect=None):
    """True when the process exists, is not a zombie and (optionally) runs `expect`."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # state is the first field after the ")" closing the command name
    state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
    if state in (b"Z", b"X"):
        return False
    if expect is not None:
        cmd = _cmdline(pid)
        if cmd is None or expect not in cmd:
            return False
    return True


def stop_pid(pid, expect, timeout=10.0, sig=signal.SIGTERM):
    """Send `sig` to a process we started (checked against `expect`), wait, then SIGKILL.

    Returns True when the process is gone.  Never signals a PID whose command line
    does not contain `expect` (protection against PID reuse).
    """
    if not pid_alive(pid, expect):
        unregister_pid(pid)
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        unregister_pid(pid)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            unregister_pid(pid)
            return True
        time.sleep(0.02)
    if pid_alive(pid, expect):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(250):
            if not pid_alive(pid):
                break
            time.sleep(0.02)
    gone = not pid_alive(pid)
    if gone:
        unregister_pid(pid)
    return gone


def stop_popen(proc, timeout=10.0, sig=signal.SIGTERM):
    """Stop a subprocess.Popen we own: `sig`, wait `timeout`, SIGKILL. Returns returncode."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    unregister_pid(proc.pid)
    return proc.returncode


def registered_pids():
    """The pids registered now: take a snapshot to clean up later only what was started after it."""
    with _REG_LOCK:
        return set(_REGISTRY)


def kill_registered(keep=frozenset()):
    """Last-resort cleanup: SIGKILL every registered process that is still ours, except the pids in keep
    (processes that belong to someone else in this run, e.g. a session-wide server)."""
    with _REG_LOCK:
        items = [(pid, v) for pid, v in _REGISTRY.items() if pid not in keep]
        for pid, _ in items:
            del _REGISTRY[pid]
    killed = []
    for pid, (expect, what) in items:
        if pid_alive(pid, expect):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append("%d (%s)" % (pid, what or expect))
            except ProcessLookupError:
                pass
    return killed


# --------------------------------------------------------------------------- clients

def open_connection(addr, timeout=3.0, netns=None):
    """A connected TCP socket to addr=(host, port), from inside `netns` when given."""
    if netns is not None:
        return netns.connect(addr, timeout=timeout)
    return socket.create_connection(addr, timeout=timeout)


class _Conn(http.client.HTTPConnection):
    def __init__(self, host, port, timeout, netns):
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self):
        self.sock = open_connection((self.host, self.port), self.timeout, self._netns)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def http_request(host, port, path="/", method="GET", headers=None, body=None,
                 timeout=3.0, netns=None):
    """One HTTP/1.1 request on a fresh connection -> (status, CIDict headers, body bytes)."""
    conn = _Conn(host, port, timeout, netns)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, CIDict(resp.getheaders()), data
    finally:
        conn.close()


# --------------------------------------------------------------------------- temp dirs

class WorkDirs:
    """One temporary root per session (short path: UNIX socket paths are limited to 107
    bytes) handing out numbered sub-directories; removed at the end."""

    def __init__(self, prefix="hdt-"):
        self.root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self._n = 0
        self._lock = threading.Lock()

    def new(self, name):
        with self._lock:
            self._n += 1
            n = self._n
        path = os.path.join(self.root, "%s-%d" % (name, n))
        os.makedirs(path)
        return path

    def remove(self, path):
        if path and path.startswith(self.root + os.sep):
            shutil.rmtree(path, ignore_errors=True)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- mounts

def mounted_fstype(path):
    """The filesystem type mounted exactly at path, from /proc/self/mountinfo (never touches the mount)."""
    fstype = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                fstype = fields[fields.index("-") + 1]  # the last mount on a path is the visible one
    return fstype


def unmount(path):
    if mounted_fstype(path) is None:
        return
    if subprocess.run(["umount", path], capture_output=True, timeout=10).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=10)
