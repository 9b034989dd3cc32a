"""Network namespaces for fault injection and multi-host topologies.

A NetNS is a private network stack (`ip netns add hdt-<label>-<hex>`, `lo` up).  Servers
are started inside it with `ip netns exec NAME cmd...` (iproute2 execs the command in
place, so the PID of the Popen is the server's PID).  Firewall rules added with
`.iptables()`/`.block()` live inside the namespace and disappear with it.

How the test process itself talks to something inside a namespace
-----------------------------------------------------------------
`NetNS.socket()` creates a socket *inside* the namespace: a short-lived helper thread
calls setns(2) on /run/netns/NAME (network namespaces are per thread), creates the
socket and exits.  A socket stays in the namespace it was created in, so the test's
main thread can then connect/send/recv on it normally.  Every client helper of the
harness (HTTP requests to healthd, the agent port, readiness probes of the helper
servers) takes a `netns` and uses this, so no client subprocess is needed.  For
command-line clients (mariadb, redis-cli, curl...) use `ns.run([...])`.

Topologies
----------
- `make_veth(ns_a, "10.77.1.1/24", ns_b, "10.77.1.2/24")`: one point-to-point link.
- `Lan(switch_ns, "10.77.0.0/24")` + `.attach(ns, "10.77.0.10")`: a bridge living in its
  own namespace, so any number of namespaces (db, be1..be3, lb) share one subnet.
Addresses exist only inside namespaces the test created; the host's stack is untouched.
"""

import ctypes
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import threading
import time

from .util import HarnessError, register_pid, stop_popen, pid_alive

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _in_netns(name, fn):
    """Run fn() in a fresh thread that joined network namespace `name`; return its value."""
    box = {}

    def body():
        try:
            fd = os.open("/run/netns/%s" % name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            box["err"] = exc
            return
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                box["err"] = OSError(err, "setns(%s): %s" % (name, os.strerror(err)))
                return
        finally:
            os.close(fd)
        try:
            box["val"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["err"] = exc

    t = threading.Thread(target=body, name="netns-" + name, daemon=True)
    t.start()
    t.join(30)
    if "err" in box:
        raise box["err"]
    if "val" not in box:
        raise HarnessError("entering namespace %s did not finish" % name)
    return box["val"]


def _run(cmd, check=True, timeout=30, input=None, env=None):
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                            input=input, env=env)
    except subprocess.TimeoutExpired as exc:
        raise HarnessError("command timed out after %ss: %s" % (timeout, " ".join(cmd))) from exc
    if check and cp.returncode != 0:
        raise HarnessError("command failed (rc=%d): %s\nstdout: %s\nstderr: %s"
                           % (cp.returncode, " ".join(cmd), cp.stdout.strip(), cp.stderr.strip()))
    return cp


def _with_prefix(addr, default_prefix=24):
    return addr if "/" in addr else "%s/%d" % (addr, default_prefix)


class NetNS:
    """A network namespace owned by the test.  Create with NetNS(label).create() or the
    `make_netns` fixture; always `.delete()` (the fixture does)."""

    def __init__(self, label="ns"):
        label = "".join(c for c in str(label) if c.isalnum() or c == "-")[:12] or "ns"
        self.label = label
        self.name = "hdt-%s-%s" % (label, secrets.token_hex(3))
        self._procs = []
        self._ifcount = {}
        self.addrs = []          # addresses given to this namespace's interfaces
        self.created = False

    # -- life cycle
    def create(self):
        _run(["ip", "netns", "add", self.name])
        self.created = True
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self):
        """Stop processes started here, then anything else still inside (all ours: the
        namespace is private to the test), then remove the namespace."""
        if not self.created:
            return
        errors = []
        for p in reversed(self._procs):
            try:
                stop_popen(p, timeout=5)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _ in range(100):
                if not any(pid_alive(p) for p in pids):
                    break
                time.sleep(0.02)
        cp = _run(["ip", "netns", "del", self.name], check=False)
        if cp.returncode != 0 and os.path.exists("/run/netns/" + self.name):
            errors.append(cp.stderr.strip())
        self.created = False
        if errors:
            raise HarnessError("deleting namespace %s: %s" % (self.name, "; ".join(errors)))

    def pids(self):
        cp = _run(["ip", "netns", "pids", self.name], check=False)
        return [int(x) for x in cp.stdout.split() if x.isdigit()]

    # -- commands
    def prefix(self):
        """The argv prefix that runs a command inside this namespace."""
        return ["ip", "netns", "exec", self.name]

    def wrap(self, cmd):
        return self.prefix() + [str(c) for c in cmd]

    def run(self, cmd, check=True, timeout=30, input=None, env=None):
        """Run cmd (a list) inside the namespace -> subprocess.CompletedProcess (text)."""
        return _run(self.wrap(cmd), check=check, timeout=timeout, input=input, env=env)

    def popen(self, cmd, expect=None, **kw):
        """Start cmd inside the namespace -> Popen (killed at .delete() if still running)."""
        p = subprocess.Popen(self.wrap(cmd), **kw)
        register_pid(p.pid, expect or os.path.basename(str(cmd[0])), "in " + self.name)
        self._procs.append(p)
        return p

    def ip(self, *args, check=True):
        return _run(["ip", "-n", self.name] + [str(a) for a in args], check=check)

    def iptables(self, *args, check=True):
        """Run iptables inside the namespace, e.g. ns.iptables("-A", "INPUT", ...)."""
        return self.run(["iptables", "-w", "5"] + [str(a) for a in args], check=check)

    def _block_rule(self, port, how, proto, chain):
        rule = [chain, "-p", proto, "--dport", str(port)]
        if how == "drop":
            rule += ["-j", "DROP"]
        elif how in ("reset", "tcp-reset"):
            rule += ["-j", "REJECT", "--reject-with", "tcp-reset"]
        elif how in ("unreachable", "port-unreachable"):
            rule += ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]
        elif how == "host-unreachable":
            rule += ["-j", "REJECT", "--reject-with", "icmp-host-unreachable"]
        else:
            raise ValueError("how must be drop, reset, unreachable or host-unreachable")
        return rule

    def block(self, port, how="drop", proto="tcp", chain="INPUT"):
        """Add a firewall rule for packets to `port`: drop (connects time out), reset
        (refused), unreachable / host-unreachable (ICMP errors)."""
        self.iptables("-A", *self._block_rule(port, how, proto, chain))

    def unblock(self, port, how="drop", proto="tcp", chain="INPUT"):
        self.iptables("-D", *self._block_rule(port, how, proto, chain))

    def next_ifname(self, base):
        n = self._ifcount.get(base, 0)
        self._ifcount[base] = n + 1
        return "%s%d" % (base, n)

    # -- sockets inside the namespace
    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
        return _in_netns(self.name, lambda: socket.socket(family, type, proto))

    def connect(self, addr, timeout=3.0):
        """A TCP socket connected to addr=(host, port) from inside the namespace."""
        host, port = addr
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = self.socket(fam, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        return s

    def __repr__(self):
        return "<NetNS %s>" % self.name


class Link:
    """The two ends of a veth pair: (ns_a, if_a, ip_a) <-> (ns_b, if_b, ip_b)."""

    def __init__(self, ns_a, if_a, ip_a, ns_b, if_b, ip_b):
        self.ns_a, self.if_a, self.ip_a = ns_a, if_a, ip_a
        self.ns_b, self.if_b, self.ip_b = ns_b, if_b, ip_b

    def __repr__(self):
        return "<Link %s:%s %s <-> %s:%s %s>" % (self.ns_a.name, self.if_a, self.ip_a,
                                                 self.ns_b.name, self.if_b, self.ip_b)


def make_veth(ns_a, addr_a, ns_b, addr_b):
    """Connect two namespaces with a veth pair; addr_* like "10.77.1.1/24" (default /24).

    Returns a Link whose ip_a/ip_b are the bare addresses.  Both ends are created
    directly inside their namespaces (no name can collide with the host's interfaces).
    """
    if_a = ns_a.next_ifname("veth")
    if_b = ns_b.next_ifname("veth")
    _run(["ip", "link", "add", if_a, "netns", ns_a.name, "type", "veth",
          "peer", "name", if_b, "netns", ns_b.name])
    cidr_a, cidr_b = _with_prefix(addr_a), _with_prefix(addr_b)
    ns_a.ip("addr", "add", cidr_a, "dev", if_a)
    ns_b.ip("addr", "add", cidr_b, "dev", if_b)
    ns_a.ip("link", "set", if_a, "up")
    ns_b.ip("link", "set", if_b, "up")
    ip_a, ip_b = cidr_a.split("/")[0], cidr_b.split("/")[0]
    ns_a.addrs.append(ip_a)
    ns_b.addrs.append(ip_b)
    return Link(ns_a, if_a, ip_a, ns_b, if_b, ip_b)


class Lan:
    """An L2 segment: a bridge inside its own (switch) namespace; attach namespaces to it.

        lan = Lan(switch_ns, "10.77.0.0/24")
        db_ip = lan.attach(db_ns)            # next free host address, e.g. 10.77.0.2
        lb_ip = lan.attach(lb_ns, "10.77.0.100")
    """

    def __init__(self, switch_ns, subnet="10.77.0.0/24"):
        self.ns = switch_ns
        self.net = ipaddress.ip_network(subnet)
        self._hosts = self.net.hosts()
        self._used = set()
        self.members = {}   # ns name -> ip
        self.ns.ip("link", "add", "br0", "type", "bridge")
        self.ns.ip("link", "set", "br0", "up")

    def _next_ip(self):
        for _ in range(self.net.num_addresses):
            ip = str(next(self._hosts))
            if ip not in self._used:
                return ip
        raise HarnessError("subnet %s is full" % self.net)

    def attach(self, ns, addr=None):
        """Plug `ns` into the segment with address `addr` (default: next free). -> ip str"""
        ip = addr.split("/")[0] if addr else self._next_ip()
        if ip in self._used:
            raise HarnessError("address %s already used on %s" % (ip, self.net))
        self._used.add(ip)
        port = self.ns.next_ifname("p")
        ifname = ns.next_ifname("lan")
        _run(["ip", "link", "add", port, "netns", self.ns.name, "type", "veth",
              "peer", "name", ifname, "netns", ns.name])
        self.ns.ip("link", "set", port, "master", "br0")
        self.ns.ip("link", "set", port, "up")
        ns.ip("addr", "add", "%s/%d" % (ip, self.net.prefixlen), "dev", ifname)
        ns.ip("link", "set", ifname, "up")
        ns.addrs.append(ip)
        self.members[ns.name] = ip
        return ip
