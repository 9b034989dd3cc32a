"""The dns check against a real dnsmasq in a network namespace: every record type, answers changed
under it (addn-hosts rewritten, SIGHUP), NXDOMAIN and REFUSED, a dropped and a closed port, the
default server from the namespace's resolv.conf, IPv6 servers, hostile answers (forged id, control
bytes, TC, rdlength past the end) and SERVFAIL, NOTIMP and an unknown rcode from a UDP peer in the namespace, and
configuration errors."""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading

from harness import run_healthd, wait_until

PORT = 53
SERVER = "127.0.0.1"


def dns_check(name, query, record="A", **extra):
    check = {"name": name, "type": "dns", "query": query, "record": record}
    check.update(extra)
    return check


def config(checks):
    return {"node_name": "be-test",
            "defaults": {"interval_ms": 300, "timeout_ms": 250, "rise": 1, "fall": 1},
            "checks": checks}


def wait_check(hd, name, pred, timeout=5.0):
    last = {}

    def probe():
        last["c"] = hd.json("/health/" + name)[1]
        return last["c"] if last["c"] is not None and pred(last["c"]) else None

    try:
        return wait_until(probe, timeout, interval=0.03, what="check %s" % name)
    except AssertionError as exc:
        raise AssertionError("%s; last answer: %r" % (exc, last.get("c"))) from None


def start_dnsmasq(ns, workdirs, hosts_text):
    d = workdirs.new("dnsmasq")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write(hosts_text)
    proc = ns.popen(["dnsmasq", "--no-daemon", "--port=%d" % PORT, "--listen-address=%s,::1" % SERVER,
                     "--bind-interfaces", "--no-resolv", "--no-hosts", "--local=/example/",
                     "--user=root", "--pid-file=" + os.path.join(d, "pid"),
                     "--addn-hosts=" + hosts,
                     "--host-record=v6.example,2001:db8::53",
                     "--mx-host=example,Mail.Example,10",
                     "--txt-record=t.example,v=spf1 -all",
                     "--srv-host=_sip._udp.example,sip.example,5060,0,5",
                     "--cname=alias.example,db-main.example"],
                    stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
    wait_until(lambda: ns.run(["sh", "-c", "ss -Hlun 'sport = :%d'" % PORT]).stdout.strip(), 5,
               what="dnsmasq listening")
    return proc, hosts


def rewrite(path, text, proc):
    with open(path, "w") as f:
        f.write(text)
    os.kill(proc.pid, signal.SIGHUP)


def test_every_record_type_a_change_rcodes_and_silent_servers(make_netns, netns_resolv_conf,
                                                                workdirs, start_healthd):
    ns = make_netns("dns")
    netns_resolv_conf(ns, "# test\nsearch example\nnameserver 127.0.0.1\nnameserver 10.9.9.9\n")
    proc, hosts = start_dnsmasq(ns, workdirs, "10.0.13.1 db-main.example\n")
    ns.block(5400, proto="udp")  # DROP: the server never answers
    srv = "%s:%d" % (SERVER, PORT)
    checks = [
        dns_check("a", "db-main.example", server=SERVER, expect_answers=["10.0.13.1"]),
        dns_check("default", "DB-MAIN.example."),  # the first nameserver of resolv.conf
        dns_check("aaaa", "v6.example", "AAAA", server=srv, expect_answers=["2001:DB8:0::53"]),
        dns_check("cname", "alias.example", "CNAME", server=srv, expect_answers=["DB-main.example."]),
        dns_check("mx", "example", "MX", server=srv, expect_answers=["10 mail.example"]),
        dns_check("txt", "t.example", "TXT", server=srv, expect_answers=["v=spf1 -all"]),
        dns_check("srv", "_sip._udp.example", "SRV", server=srv,
                  expect_answers=["0 5 5060 sip.example"]),
        dns_check("nx", "gone.example", server=srv),
        dns_check("refused", "db.elsewhere.test", server=srv),
        dns_check("dropped", "db-main.example", server="127.0.0.1:5400"),
        dns_check("closed", "db-main.example", server="127.0.0.1:5401"),
        dns_check("v6-server", "db-main.example", server="[::1]:53"),
        dns_check("v6-bare", "db-main.example", server="::1"),
    ]
    hd = start_healthd(config(checks), netns=ns)
    want = {"a": "A db-main.example at %s: 10.0.13.1" % srv,
            "default": "A db-main.example at %s: 10.0.13.1" % srv,
            "aaaa": "AAAA v6.example at %s: 2001:db8::53" % srv,
            "cname": "CNAME alias.example at %s: db-main.example" % srv,
            "mx": "MX example at %s: 10 mail.example" % srv,
            "txt": "TXT t.example at %s: v=spf1 -all" % srv,
            "srv": "SRV _sip._udp.example at %s: 0 5 5060 sip.example" % srv,
            "v6-server": "A db-main.example at [::1]:53: 10.0.13.1",
            "v6-bare": "A db-main.example at [::1]:53: 10.0.13.1"}
    for name, detail in want.items():
        c = wait_check(hd, name, lambda c: c["status"] == "up")
        assert c["kind"] == "ok" and c["detail"] == detail, c
        assert c["type"] == "dns"
        if name.startswith("v6"):
            assert c["address"] == "[::1]:53" and c["source_addr"] == "::1"
        else:
            assert c["address"] == srv and c["source_addr"] == SERVER
    c = wait_check(hd, "nx", lambda c: c["status"] == "down")
    assert c["kind"] == "dns"
    assert c["detail"] == "A gone.example at %s: NXDOMAIN (no such name)" % srv
    c = wait_check(hd, "refused", lambda c: c["status"] == "down")
    assert c["kind"] == "dns"
    assert c["detail"] == ("A db.elsewhere.test at %s: REFUSED (the server refuses to answer for "
                           "this name)" % srv)
    c = wait_check(hd, "dropped", lambda c: c["status"] == "down")
    assert c["kind"] == "timeout"
    assert c["detail"] == "query 127.0.0.1:5400: no answer within 250 ms"
    c = wait_check(hd, "closed", lambda c: c["status"] == "down")
    assert c["kind"] == "refused"
    assert c["detail"] == ("A db-main.example at 127.0.0.1:5401: Connection refused (no DNS server "
                           "listening there: ICMP port unreachable)")

    # The record changes under the check: the answer set no longer matches.
    rewrite(hosts, "10.0.13.9 db-main.example\n", proc)
    c = wait_check(hd, "a", lambda c: c["status"] == "down")
    assert c["kind"] == "threshold"
    assert c["detail"] == ("db-main.example now resolves to 10.0.13.9, expected 10.0.13.1 (A at %s)"
                           % srv)
    c = wait_check(hd, "default", lambda c: c["detail"].endswith("10.0.13.9"))
    assert c["status"] == "up"  # no expectation: any answer passes
    # Two addresses where one was expected: a set differs by a member too.
    rewrite(hosts, "10.0.13.1 db-main.example\n10.0.13.2 db-main.example\n", proc)
    c = wait_check(hd, "a", lambda c: "10.0.13.2" in c["detail"])
    assert c["kind"] == "threshold"
    assert c["detail"] == ("db-main.example now resolves to 10.0.13.1, 10.0.13.2, expected "
                           "10.0.13.1 (A at %s)" % srv)
    # The name removed: NXDOMAIN; then back as expected.
    rewrite(hosts, "", proc)
    c = wait_check(hd, "a", lambda c: c["kind"] == "dns")
    assert c["detail"] == "A db-main.example at %s: NXDOMAIN (no such name)" % srv
    rewrite(hosts, "10.0.13.1 db-main.example\n", proc)
    wait_check(hd, "a", lambda c: c["status"] == "up")


def check_config_error(workdirs, check):
    d = workdirs.new("badcfg")
    path = os.path.join(d, "healthd.json")
    with open(path, "w") as f:
        f.write(json.dumps({"checks": [check]}, indent=2))
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert rc == 2, (rc, out, err)
    m = re.match(r"^%s:\d+:\d+: (.*)$" % re.escape(path), err.strip())
    assert m, err
    return m.group(1)


def test_no_server_and_no_nameserver_is_a_configuration_error(make_netns, netns_resolv_conf, workdirs):
    ns = make_netns("dnsconf")
    netns_resolv_conf(ns, "search example\n# nameserver 10.0.0.53\n")
    d = workdirs.new("noserver")
    path = os.path.join(d, "healthd.json")
    with open(path, "w") as f:
        f.write(json.dumps({"checks": [{"name": "d", "type": "dns", "query": "db.example"}]}))
    rc, out, err = run_healthd(["--check-config", "--config", path], netns=ns)
    assert rc == 2, (rc, out, err)
    assert err.strip() == ('%s:1:13: checks["d"]: no server given and no nameserver line in '
                           '/etc/resolv.conf: set server' % path)


def test_configuration_errors_name_the_key(workdirs):
    base = {"name": "d", "type": "dns", "query": "db.example", "server": "10.0.0.53"}
    assert check_config_error(workdirs, dict(base, record="PTR")) == (
        'checks["d"].record: expected one of "A", "AAAA", "CNAME", "MX", "TXT", "SRV", got "PTR"')
    assert check_config_error(workdirs, dict(base, server="10.0.0.53:99999")) == (
        'checks["d"].server: "10.0.0.53:99999" is not ADDR or ADDR:PORT (an IP address, e.g. '
        '10.0.0.53 or 10.0.0.53:5353 or [2001:db8::53]:53)')
    assert check_config_error(workdirs, dict(base, server="dns.example")).startswith(
        'checks["d"].server: "dns.example" is not ADDR or ADDR:PORT')
    assert check_config_error(workdirs, dict(base, expect_answers=["db.example"])) == (
        'checks["d"].expect_answers: "db.example" is not an IPv4 address (record A)')
    assert check_config_error(workdirs, dict(base, expect_answers=[])) == (
        'checks["d"].expect_answers: expected an array of 1 to 32 strings (the answers, e.g. '
        '["10.0.13.1"] or ["10 mail.example"])')
    assert check_config_error(workdirs, dict(base, query="a..example")) == (
        'checks["d"].query: "a..example" is not a DNS name: each label (between dots) needs 1 to '
        '63 characters')
    assert check_config_error(workdirs, {"name": "d", "type": "dns"}).startswith('checks["d"]')


class HostileServer:
    """A UDP peer in the namespace that answers every query with what reply(query) builds."""

    def __init__(self, ns, port, reply):
        self.sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((SERVER, port))
        self.sock.settimeout(0.2)
        self.reply = reply
        self.queries = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.queries += 1
            for packet in self.reply(q):
                self.sock.sendto(packet, peer)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def txt_answer(q, strings, flags=0x8180, qid=None):
    """An answer to query q (its id and question copied) with one TXT record of strings."""
    qid = q[:2] if qid is None else qid
    rdata = b"".join(bytes([len(s)]) + s for s in strings)
    rr = b"\xc0\x0c" + struct.pack(">HHIH", 16, 1, 60, len(rdata)) + rdata
    return qid + struct.pack(">HHHHH", flags, 1, 1, 0, 0) + q[12:] + rr


def test_hostile_answers_are_escaped_judged_or_ignored(make_netns, start_healthd):
    ns = make_netns("dnsbad")
    # A forged answer (another id) first, then the real one whose text carries control bytes and escapes.
    evil = HostileServer(ns, 5402, lambda q: [txt_answer(q, [b"ignored"], qid=bytes([q[0] ^ 1, q[1]])),
                                              txt_answer(q, [b"v=1\n\x1b[31mred", b"\\x00 \xff"])])
    trunc = HostileServer(ns, 5403, lambda q: [txt_answer(q, [b"part"], flags=0x8380)])
    broken = HostileServer(ns, 5404, lambda q: [txt_answer(q, [b"x" * 10])[:-4]])
    try:
        hd = start_healthd(config([
            dns_check("evil", "t.example", "TXT", server="127.0.0.1:5402"),
            dns_check("trunc", "t.example", "TXT", server="127.0.0.1:5403"),
            dns_check("broken", "t.example", "TXT", server="127.0.0.1:5404")]), netns=ns)
        c = wait_check(hd, "evil", lambda c: c["status"] == "up")
        assert c["detail"] == ("TXT t.example at 127.0.0.1:5402: "
                               "v=1\\x0a\\x1b[31mred\\x5cx00 \\xff")
        c = wait_check(hd, "trunc", lambda c: c["status"] == "down")
        assert c["kind"] == "protocol"
        assert c["detail"] == ("TXT t.example at 127.0.0.1:5403: the answer is truncated (TC set; "
                               "healthd does not retry over TCP)")
        c = wait_check(hd, "broken", lambda c: c["status"] == "down")
        assert c["kind"] == "protocol"
        assert c["detail"] == ("TXT t.example at 127.0.0.1:5404: an answer record (1 of 1) longer "
                               "than the message")
    finally:
        for s in (evil, trunc, broken):
            s.close()


def test_servfail_and_other_rcodes_are_dns_with_the_rcode(make_netns, start_healthd):
    """A resolver whose upstream is broken answers SERVFAIL (dnsmasq itself only retries in silence, so a UDP
    peer in the namespace answers with the rcode): kind dns, the rcode named; an unknown rcode by number."""
    ns = make_netns("dnsrc")

    def rcode_answer(rcode):
        return lambda q: [q[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, 0, 0, 0) + q[12:]]

    servfail = HostileServer(ns, 5405, rcode_answer(2))
    notimp = HostileServer(ns, 5406, rcode_answer(4))
    odd = HostileServer(ns, 5407, rcode_answer(13))
    try:
        hd = start_healthd(config([
            dns_check("servfail", "db-main.example", server="127.0.0.1:5405"),
            dns_check("notimp", "db-main.example", "MX", server="127.0.0.1:5406"),
            dns_check("odd", "db-main.example", server="127.0.0.1:5407")]), netns=ns)
        c = wait_check(hd, "servfail", lambda c: c["status"] == "down")
        assert c["kind"] == "dns" and c["detail"].startswith("A db-main.example at 127.0.0.1:5405: SERVFAIL"), c
        c = wait_check(hd, "notimp", lambda c: c["status"] == "down")
        assert c["kind"] == "dns" and c["detail"].startswith("MX db-main.example at 127.0.0.1:5406: NOTIMP"), c
        c = wait_check(hd, "odd", lambda c: c["status"] == "down")
        assert c["kind"] == "dns" and c["detail"].startswith("A db-main.example at 127.0.0.1:5407: rcode 13"), c
        assert servfail.queries > 0 and hd.running
    finally:
        for s in (servfail, notimp, odd):
            s.close()
