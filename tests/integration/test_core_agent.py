"""The agent port as HAProxy's agent-check uses it: one full line at once, whatever arrives first,
and a clean close. Run in a namespace of its own so that its TCP counters (RSTs sent) count only
these conversations."""

import socket
import time

from harness import wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check, wait_check

MARGIN_S = 0.4


def tcp_out_rsts(ns):
    """The namespace's TCP OutRsts counter (resets sent by anyone in it)."""
    text = ns.run(["cat", "/proc/net/snmp"]).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("Tcp:")]
    header, values = rows[0], rows[1]
    return int(values[header.index("OutRsts")])


def healthd_agent_sockets(ns, hd):
    """Connections on the agent port that healthd still holds open."""
    out = ns.run(["ss", "-Htnp", "state", "all", "sport = :%d" % hd.agent_port]).stdout
    return len([line for line in out.splitlines()
                if "healthd" in line and not line.startswith("LISTEN")])


def read_all(sock, timeout=3.0, limit=65536):
    """Read until EOF -> bytes."""
    sock.settimeout(timeout)
    got = b""
    while len(got) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            return got
        got += chunk
    raise AssertionError("no EOF after %d bytes" % len(got))


def test_agent_conversations_end_cleanly(make_netns, start_tcp_listener, start_healthd):
    ns = make_netns("agent")
    app = start_tcp_listener(netns=ns)
    hd = start_healthd(config([tcp_check("app", app.port)], agent={"timeout_ms": 500}), netns=ns)
    wait_check(hd, "app", lambda c: c["status"] == "up")
    rsts_before = tcp_out_rsts(ns)

    # 1. Nothing sent: the full line comes at once, ending in "\n", then the server's FIN.
    s = hd.connect("agent")
    t0 = time.monotonic()
    s.settimeout(3)
    first = s.recv(4096)
    assert time.monotonic() - t0 < MARGIN_S
    assert first == b"up 100%\n"
    assert read_all(s) == b""
    # The server half-closed and still reads: a late line neither resets nor breaks anything.
    s.sendall(b"late\n")
    time.sleep(0.1)
    s.sendall(b"later\n")
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    s.close()

    # 2. agent-send style: a line first (HAProxy adds no newline unless configured: both).
    for sent in (b"app\n", b"backend/app", b"x" * 3000 + b"\n"):
        s = hd.connect("agent")
        s.sendall(sent)
        assert read_all(s) == b"up 100%\n", sent[:20]
        s.close()

    # 3. A client that half-closes at once, with or without sending (nc -N, socat with empty
    # input), still gets the whole line: the EOF may be seen before the reply is written.
    for i in range(60):
        s = hd.connect("agent")
        if i % 2:
            s.sendall(b"app\n")
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b"up 100%\n", "attempt %d" % i
        s.close()

    # 4. A client that reads its line and then just stays: the server closes after
    # agent.timeout_ms, and cleanly too.
    s = hd.connect("agent")
    assert read_all(s) == b"up 100%\n"
    assert healthd_agent_sockets(ns, hd) == 1
    wait_until(lambda: healthd_agent_sockets(ns, hd) == 0, 0.5 + MARGIN_S + 1, interval=0.05,
               what="healthd to close an agent connection after agent.timeout_ms")
    s.close()

    time.sleep(0.2)
    assert tcp_out_rsts(ns) == rsts_before, "a reset was sent during clean agent conversations"

    # The counter does see resets: a client that closes with the reply unread sends one.
    s = hd.connect("agent")
    time.sleep(0.2)  # the line is in our receive buffer, unread
    s.close()
    time.sleep(0.2)
    assert tcp_out_rsts(ns) > rsts_before
    assert hd.agent() == "up 100%"


def test_agent_line_follows_the_state(start_healthd, start_tcp_listener):
    app, cache = start_tcp_listener(), start_tcp_listener()
    hd = start_healthd(config([tcp_check("app", app.port),
                               tcp_check("cache", cache.port, critical=False)],
                              agent={"degraded_weight_pct": 30}))
    wait_check(hd, "cache", lambda c: c["status"] == "up")
    wait_check(hd, "app", lambda c: c["status"] == "up")
    assert hd.agent() == "up 100%"
    cache.stop()
    wait_check(hd, "cache", lambda c: c["status"] == "down")
    assert hd.agent() == "up 30% #cache refused"
    app.stop()
    wait_check(hd, "app", lambda c: c["status"] == "down")
    assert hd.agent() == "down #app refused"  # the critical one is named, not the first one down
    # Many at once (HAProxy with many backends polls in bursts): every one gets its line.
    socks = [hd.connect("agent") for _ in range(50)]
    try:
        assert {read_all(s) for s in socks} == {b"down #app refused\n"}
    finally:
        for s in socks:
            s.close()
