"""expect "blocked": a Jenkins port that must not be reachable from a backend, firewalled with iptables DROP and
REJECT inside a namespace, then the rule removed (down, kind exposed); a name that does not resolve stays dns;
healthd diff names the newly exposed target as a regression."""

import json
import os
import socket
import struct
import threading

from harness import make_veth, run_healthd, wait_until

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
TIMEOUT_MS = 400
JENKINS = "10.79.1.1"
BACKEND = "10.79.1.2"


def topology(make_netns, start_tcp_listener):
    """A jenkins namespace listening on 8080 and a backend namespace, joined by a veth pair."""
    jenkins, backend = make_netns("jenkins"), make_netns("backend")
    make_veth(jenkins, JENKINS + "/24", backend, BACKEND + "/24")
    listener = start_tcp_listener(port=8080, netns=jenkins, bind=JENKINS)
    return jenkins, backend, listener


def blocked_tcp(name, host=JENKINS, port=8080, **kw):
    check = {"name": name, "type": "tcp", "host": host, "port": port, "expect": "blocked"}
    check.update(kw)
    return check


def blocked_http(name, url, **kw):
    check = {"name": name, "type": "http", "url": url, "expect": "blocked"}
    check.update(kw)
    return check


def write(workdirs, name, cfg):
    d = workdirs.new("blocked")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def one_shot(workdirs, ns, checks, name="cfg.json"):
    """healthd check --json in the backend namespace -> (rc, {name: check}, path of the JSON output)."""
    cfg = {"node_name": "be-1", "defaults": {"timeout_ms": TIMEOUT_MS}, "checks": checks}
    path = write(workdirs, name, cfg)
    rc, out, err = run_healthd(["check", "--config", path, "--json"], timeout=20, netns=ns)
    assert not any(mark in err for mark in SANITIZER_MARKS), err
    doc = json.loads(out)
    out_path = path + ".out.json"
    with open(out_path, "w") as f:
        f.write(out)
    return rc, {c["name"]: c for c in doc["checks"]}, out_path


def test_drop_reject_and_the_rule_removed(workdirs, make_netns, start_tcp_listener):
    jenkins, backend, _ = topology(make_netns, start_tcp_listener)
    target = "%s:8080" % JENKINS

    jenkins.block(8080, how="drop")
    rc, checks, before = one_shot(workdirs, backend, [blocked_tcp("jenkins")], "drop.json")
    c = checks["jenkins"]
    assert rc == 0, c
    assert (c["status"], c["kind"]) == ("up", "ok"), c
    assert c["detail"].startswith("connect %s from %s: silently dropped (no answer within " % (target, BACKEND)), c
    assert c["detail"].endswith(" ms), as expected"), c
    assert c["source_addr"] == BACKEND, c
    # the check's own connect timer ends it, before the engine's deadline
    assert c["latency_ms"] < TIMEOUT_MS, c
    jenkins.unblock(8080, how="drop")

    for how in ("reset", "unreachable"):
        jenkins.block(8080, how=how)
        rc, checks, _ = one_shot(workdirs, backend, [blocked_tcp("jenkins")], how + ".json")
        c = checks["jenkins"]
        assert (rc, c["status"], c["kind"]) == (0, "up", "ok"), c
        assert c["detail"] == ("connect %s from %s: refused (Connection refused), as expected" % (target, BACKEND)), c
        jenkins.unblock(8080, how=how)

    jenkins.block(8080, how="host-unreachable")
    rc, checks, _ = one_shot(workdirs, backend, [blocked_tcp("jenkins")], "host-unreachable.json")
    c = checks["jenkins"]
    assert (rc, c["status"], c["kind"]) == (0, "up", "ok"), c
    assert c["detail"] == ("connect %s from %s: unreachable (No route to host), as expected" % (target, BACKEND)), c

    # only a DROP counts: a REJECT is then down, with the kind it had
    rc, checks, _ = one_shot(workdirs, backend, [blocked_tcp("jenkins", blocked_kinds=["timeout"])], "only.json")
    c = checks["jenkins"]
    assert (c["status"], c["kind"]) == ("down", "unreachable"), c
    assert c["detail"].endswith("unreachable (No route to host), not one of the blocked_kinds"), c
    jenkins.unblock(8080, how="host-unreachable")

    # the rule removed: Jenkins answers, the check is down with kind exposed
    rc, checks, after = one_shot(workdirs, backend, [blocked_tcp("jenkins")], "open.json")
    c = checks["jenkins"]
    assert rc != 0, c
    assert (c["status"], c["kind"]) == ("down", "exposed"), c
    assert c["detail"] == "%s accepted a connection from %s: it must be blocked" % (target, BACKEND), c

    rc, out, err = run_healthd(["diff", before, after])
    assert rc == 1, (out, err)
    lines = out.splitlines()
    assert lines[1].startswith("REGRESSION  jenkins "), out
    assert "up   -> down  exposed: %s accepted a connection from %s" % (target, BACKEND) in lines[1], out


def nxdomain_server(ns, stop):
    """A resolver on 127.0.0.1:53 inside ns that answers every query with NXDOMAIN (the question echoed)."""
    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    sock.settimeout(0.2)
    answered = []

    def serve():
        while not stop.is_set():
            try:
                query, peer = sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(query) < 12:
                continue
            qid, flags = struct.unpack("!HH", query[:4])
            header = struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080 | 3, 1, 0, 0, 0)
            sock.sendto(header + query[12:], peer)
            answered.append(peer)
        sock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t, answered


def test_a_name_that_does_not_resolve_is_dns_not_blocked(workdirs, make_netns, netns_resolv_conf):
    ns = make_netns("dns")
    netns_resolv_conf(ns, "nameserver 127.0.0.1\n")
    stop = threading.Event()
    server, answered = nxdomain_server(ns, stop)
    try:
        run_dns_checks(workdirs, ns)
    finally:
        stop.set()
        server.join(2)
    assert answered, "the resolver was never asked"


def run_dns_checks(workdirs, ns):
    rc, checks, _ = one_shot(workdirs, ns, [blocked_tcp("gone", host="jenkins.healthd-test.invalid"),
                                           blocked_http("gone_http", "http://jenkins.healthd-test.invalid:8080/")])
    for name in ("gone", "gone_http"):
        c = checks[name]
        assert (c["status"], c["kind"]) == ("down", "dns"), c
        assert "jenkins.healthd-test.invalid" in c["detail"], c


def test_http_variant(workdirs, make_netns, start_tcp_listener):
    jenkins, backend, _ = topology(make_netns, start_tcp_listener)
    url = "http://%s:8080/login" % JENKINS
    jenkins.block(8080, how="drop")
    jenkins.block(8080, how="reset", chain="INPUT")  # never reached: DROP comes first
    rc, checks, _ = one_shot(workdirs, backend, [blocked_http("jenkins", url)])
    c = checks["jenkins"]
    assert (rc, c["status"], c["kind"]) == (0, "up", "ok"), c
    assert c["detail"].startswith("connect %s:8080 from %s: silently dropped" % (JENKINS, BACKEND)), c
    assert c["latency_ms"] < TIMEOUT_MS, c
    jenkins.unblock(8080, how="drop")
    rc, checks, _ = one_shot(workdirs, backend, [blocked_http("jenkins", url)], "reset.json")
    c = checks["jenkins"]
    assert (c["status"], c["kind"]) == ("up", "ok"), c
    assert "refused (Connection refused), as expected" in c["detail"], c
    jenkins.unblock(8080, how="reset")
    rc, checks, _ = one_shot(workdirs, backend, [blocked_http("jenkins", url)], "open.json")
    c = checks["jenkins"]
    assert (c["status"], c["kind"]) == ("down", "exposed"), c
    assert c["detail"] == "%s:8080 accepted a connection from %s: it must be blocked" % (JENKINS, BACKEND), c


def test_the_daemon_turns_exposed_when_the_rule_goes(workdirs, start_healthd, make_netns, start_tcp_listener,
                                                    start_receiver):
    jenkins, backend, _ = topology(make_netns, start_tcp_listener)
    jenkins.block(8080, how="drop")
    rx = start_receiver(netns=backend)
    cfg = {"node_name": "be-1", "defaults": {"interval_ms": 300, "timeout_ms": 300, "rise": 1, "fall": 1},
           "checks": [blocked_tcp("jenkins", critical=False)],
           "alerts": {"spool_dir": os.path.join(workdirs.new("spool"), "spool"),
                      "webhooks": [{"url": rx.url + "/hook", "timeout_ms": 1000}],
                      "min_gap_s": 0, "repeat_interval_s": 0, "retry_initial_ms": 50, "retry_max_ms": 300}}
    hd = start_healthd(cfg, netns=backend)

    def check(pred):
        def ready():
            _, c = hd.json("/health/jenkins")
            return c if c and pred(c) else None
        return wait_until(ready, 5.0, what="jenkins check")

    c = check(lambda c: c["status"] == "up")
    assert "silently dropped" in c["detail"], c
    jenkins.unblock(8080, how="drop")
    c = check(lambda c: c["status"] == "down")
    assert c["kind"] == "exposed", c
    assert c["detail"] == "%s:8080 accepted a connection from %s: it must be blocked" % (JENKINS, BACKEND), c
    _, _, body = hd.get("/metrics")
    text = body.decode()
    assert 'healthd_check_failures_total{check="jenkins",kind="exposed",phase="connect"}' in text, text

    def regression(posts):
        return [p["body"] for p in posts if isinstance(p["body"], dict) and p["body"].get("event") == "regression"]
    ev = regression(rx.wait_for(lambda posts: regression(posts), timeout=8, what="the regression"))[0]
    assert (ev["kind"], ev["previous_kind"]) == ("exposed", "ok"), ev
    assert ev["source_addr"] == BACKEND, ev
    assert ev["summary"].startswith("%s:8080 accepts connections but must be blocked since " % JENKINS), ev
    assert ev["summary"].endswith("(firewall rule removed or changed?)"), ev


def test_http_ipv6_url_and_default_port(workdirs, make_netns):
    """The URL's host without brackets, and the scheme's default port: nothing listens on [::1]:80 or :443."""
    ns = make_netns("v6")
    rc, checks, _ = one_shot(workdirs, ns, [blocked_http("v6", "http://[::1]/admin"),
                                           blocked_http("tls", "https://127.0.0.1/")])
    assert rc == 0, checks
    assert checks["v6"]["detail"] == "connect [::1]:80 from ::1: refused (Connection refused), as expected", checks
    assert checks["tls"]["detail"] == ("connect 127.0.0.1:443 from 127.0.0.1: refused (Connection refused), "
                                       "as expected"), checks
