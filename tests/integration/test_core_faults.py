"""Firewall faults inside a network namespace (healthd and its target both on the namespace's
127.0.0.1): DROP gives `timeout` at the deadline while the API keeps answering at once; REJECT gives
`refused` or `unreachable` as the kernel reports it.

What the kernel reports for a connect() hitting each rule (Linux, loopback, INPUT chain):
  -j DROP                                    no answer: the connect stays in SYN-SENT -> timeout
  -j REJECT --reject-with tcp-reset          RST -> ECONNREFUSED -> refused
  -j REJECT --reject-with icmp-port-unreachable
                                             ICMP port unreachable -> ECONNREFUSED -> refused
                                             (indistinguishable from a closed port)
  -j REJECT --reject-with icmp-host-unreachable
                                             ICMP host unreachable -> EHOSTUNREACH -> unreachable
"""

import time

from harness import free_port, wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import check_state, config, syn_sent_to, tcp_check, wait_check

MARGIN_MS = 400  # scheduling slack on a loaded 2-core machine
# libevent schedules timers from the loop's cached, coarse (4 ms) monotonic clock: a deadline can fire a
# few milliseconds before the attempt's own start time says it should.
EARLY_MS = 10


def test_firewall_rules_give_each_kind(make_netns, start_tcp_listener, start_healthd):
    ns = make_netns("fw")
    target = start_tcp_listener(netns=ns)
    addr = "127.0.0.1:%d" % target.port
    hd = start_healthd(config([tcp_check("svc", target.port)], interval_ms=400, timeout_ms=300),
                       netns=ns)
    wait_check(hd, "svc", lambda c: c["status"] == "up")

    ns.block(target.port, "drop")
    c = wait_check(hd, "svc", lambda c: c["status"] == "down")
    assert c["kind"] == "timeout"
    assert c["detail"] == "connect %s: no answer within 300 ms" % addr
    assert 300 - EARLY_MS <= c["latency_ms"] <= 300 + MARGIN_MS
    assert hd.agent() == "down #svc timeout"
    unblock_and_wait_up(ns, hd, target.port, "drop")

    refused = "connect %s: Connection refused (nothing listening, or a firewall REJECT)" % addr
    ns.block(target.port, "reset")
    c = wait_check(hd, "svc", lambda c: c["status"] == "down")
    assert c["kind"] == "refused" and c["detail"] == refused
    assert hd.agent() == "down #svc refused"
    unblock_and_wait_up(ns, hd, target.port, "reset")

    ns.block(target.port, "unreachable")  # icmp-port-unreachable: the kernel says ECONNREFUSED
    c = wait_check(hd, "svc", lambda c: c["status"] == "down")
    assert c["kind"] == "refused" and c["detail"] == refused
    unblock_and_wait_up(ns, hd, target.port, "unreachable")

    ns.block(target.port, "host-unreachable")  # icmp-host-unreachable: EHOSTUNREACH
    c = wait_check(hd, "svc", lambda c: c["status"] == "down")
    assert c["kind"] == "unreachable"
    assert c["detail"] == "connect %s: No route to host" % addr
    assert hd.agent() == "down #svc unreachable"

    # While it stays down, the reason follows the fault (the agent line too).
    ns.block(target.port, "reset")
    ns.unblock(target.port, "host-unreachable")
    c = wait_check(hd, "svc", lambda c: c["kind"] == "refused")
    assert c["status"] == "down" and hd.agent() == "down #svc refused"
    unblock_and_wait_up(ns, hd, target.port, "reset")
    wait_until(lambda: target.accepted() >= 5, 3, what="the listener counted every successful connect")


def unblock_and_wait_up(ns, hd, port, how):
    ns.unblock(port, how)
    c = wait_check(hd, "svc", lambda c: c["status"] == "up")
    assert c["kind"] == "ok"


def test_a_hanging_connect_never_delays_the_api(make_netns, start_tcp_listener, start_healthd):
    ns = make_netns("hang")
    target = start_tcp_listener(netns=ns)
    ns.block(target.port, "drop")
    timeout_ms = 1500
    hd = start_healthd(config([tcp_check("db", target.port)], interval_ms=3000,
                              timeout_ms=timeout_ms), netns=ns)

    # The first attempt is still connecting: the check is pending, and pending counts as down.
    wait_until(lambda: syn_sent_to(target.port, ns) == 1, 3, interval=0.02,
               what="healthd's connect in SYN-SENT")
    t0 = time.monotonic()
    status, health = hd.json("/health")
    health_s = time.monotonic() - t0
    t0 = time.monotonic()
    agent = hd.agent()
    agent_s = time.monotonic() - t0
    t0 = time.monotonic()
    ready = hd.get("/ready")
    ready_s = time.monotonic() - t0
    assert syn_sent_to(target.port, ns) == 1, "the connect must still be pending after the requests"
    for what, took in (("/health", health_s), ("agent", agent_s), ("/ready", ready_s)):
        assert took < MARGIN_MS / 1000.0, "%s took %.3fs while a connect hung" % (what, took)
    assert status == 503 and health["status"] == "down"
    c = health["checks"]["db"]
    assert c["status"] == "pending" and c["kind"] is None and c["last_checked"] is None
    assert agent == "down #db pending"
    assert ready[0] == 503 and ready[2] == b"down #db pending\n"

    # The deadline ends it with kind timeout, naming the phase and the address.
    c = wait_check(hd, "db", lambda c: c["status"] == "down", timeout=(timeout_ms + 2000) / 1000.0)
    assert c["kind"] == "timeout"
    assert c["detail"] == "connect 127.0.0.1:%d: no answer within %d ms" % (target.port, timeout_ms)
    assert timeout_ms - EARLY_MS <= c["latency_ms"] <= timeout_ms + MARGIN_MS
    assert syn_sent_to(target.port, ns) == 0, "the timed-out connect must be closed"
    assert target.accepted() == 0

    # The rule goes away: the next attempt connects.
    ns.unblock(target.port, "drop")
    c = wait_check(hd, "db", lambda c: c["status"] == "up", timeout=5)
    assert check_state(hd, "db")[0] == 200
    # The kernel completes the handshake before the listener's accept() runs and counts it.
    wait_until(lambda: target.accepted() >= 1, 3, what="the listener accepted healthd's connect")


def test_sigterm_during_a_hanging_connect_exits_at_once(make_netns, start_healthd):
    ns = make_netns("term")
    port = free_port(netns=ns)
    ns.block(port, "drop")
    hd = start_healthd(config([tcp_check("db", port)], interval_ms=10000, timeout_ms=8000),
                       netns=ns)
    wait_until(lambda: syn_sent_to(port, ns) == 1, 3, interval=0.02, what="connect in SYN-SENT")
    t0 = time.monotonic()
    assert hd.stop(timeout=2) == 0
    assert time.monotonic() - t0 < 2
    assert "SIGTERM received: stopping" in hd.log()
