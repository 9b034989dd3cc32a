"""Self-tests of the integration harness: every fixture against the real servers.

These do not test healthd: the daemon's fixture is exercised with a stand-in script
(harness/fake_healthd.py) so that its plumbing is known to work before the binary exists.
"""

import errno
import json
import os
import signal
import socket
import time

import pytest

from harness import HarnessError, free_port, http_request, make_veth, run_healthd, wait_until
from harness.util import CIDict, parse_hostport
from harness.haproxy import TCP_TEST_HEAD

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_HEALTHD = os.path.join(HERE, "harness", "fake_healthd.py")


def refused(host, port, netns=None):
    try:
        if netns is not None:
            s = netns.connect((host, port), timeout=2)
        else:
            s = socket.create_connection((host, port), timeout=2)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


# --------------------------------------------------------------------------- helpers

def test_free_port_wait_until_and_parsing():
    p = free_port()
    assert 0 < p < 65536
    s = socket.socket()
    s.bind(("127.0.0.1", p))  # really free
    s.close()
    # never the same port twice, although each probe's socket is closed before the next (the kernel often
    # hands the same free port out again: a daemon given one port for two listeners cannot start)
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports) and p not in ports
    calls = []
    assert wait_until(lambda: calls.append(1) or len(calls) >= 3, 2, interval=0.01) is True
    with pytest.raises(AssertionError, match="the sky to fall"):
        wait_until(lambda: False, 0.2, interval=0.05, what="the sky to fall")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        wait_until(lambda: 1 / 0, 0.1, what="x")
    assert parse_hostport("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_hostport("[::1]:8080") == ("::1", 8080)
    h = CIDict([("Content-Type", "a"), ("X-A", "1"), ("x-a", "2")])
    assert h["content-type"] == "a" and "CONTENT-TYPE" in h and h.get("X-a") == "1, 2"


# --------------------------------------------------------------------------- MariaDB

def test_mariadb_answers_and_counts_connections(mariadb):
    assert mariadb.sql("select 1") == [("1",)]
    before = mariadb.status("Connections")
    mariadb.sql("select 2")
    after = mariadb.status("Connections")
    assert after - before == 2  # the "select 2" client and the second status query
    assert mariadb.variable("max_connections") == "500"


def test_mariadb_check_user_is_least_privilege(mariadb):
    ok, err = mariadb.try_login()
    assert ok, err
    ok, err = mariadb.try_login(password="wrong")
    assert not ok and "Access denied" in err
    grants = [r[0] for r in mariadb.sql("SHOW GRANTS FOR 'healthd'@'%'")]
    assert len(grants) == 1 and grants[0].startswith("GRANT USAGE ON *.*"), grants
    assert mariadb.sql("select 1", user="healthd", password="hd-secret") == [("1",)]


def test_mariadb_stop_start_and_read_only(start_mariadb):
    db = start_mariadb()
    db.sql("CREATE DATABASE t; CREATE TABLE t.x (v INT); INSERT INTO t.x VALUES (7)")
    db.set_read_only(True)
    assert db.variable("read_only") == "ON"
    db.set_read_only(False)
    port = db.port
    db.stop()
    assert not db.running and refused("127.0.0.1", port)
    db.start()
    assert db.port == port and db.sql("SELECT v FROM t.x") == [("7",)]


def test_mariadb_replica_replicates(start_mariadb):
    primary = start_mariadb(log_bin=True)
    replica = start_mariadb(replica_of=primary)
    primary.sql("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY); "
                "INSERT INTO r.t VALUES (1),(2),(3)")
    replica.wait_caught_up(timeout=15)
    assert replica.sql("SELECT COUNT(*) FROM r.t") == [("3",)]
    assert replica.seconds_behind() == 0
    # a steady lag for replication-lag checks
    replica.set_replication_delay(60)
    primary.sql("INSERT INTO r.t VALUES (4)")
    wait_until(lambda: (replica.seconds_behind() or 0) >= 1, 10,
               what="Seconds_Behind_Master >= 1 with MASTER_DELAY")
    assert replica.sql("SELECT COUNT(*) FROM r.t") == [("3",)]


# --------------------------------------------------------------------------- Redis

def test_redis_with_and_without_password(start_redis):
    plain = start_redis()
    assert plain.cli("PING") == "PONG"
    secret = start_redis(password="s3cret")
    assert secret.cli("PING") == "PONG"
    secret.password = None  # talk to it without AUTH
    try:
        assert "NOAUTH" in secret.cli("PING", check=False)
    finally:
        secret.password = "s3cret"
    port = plain.port
    plain.stop()
    assert refused("127.0.0.1", port)
    plain.start()
    assert plain.port == port and plain.cli("PING") == "PONG"


def test_redis_replica(start_redis):
    primary = start_redis(password="pw")
    replica = start_redis(replica_of=primary)
    primary.cli("SET", "k", "v1")
    wait_until(lambda: replica.cli("GET", "k") == "v1", 10, what="redis replication")
    assert replica.info("replication")["role"] == "slave"


# --------------------------------------------------------------------------- HAProxy

HAPROXY_CFG = TCP_TEST_HEAD + """
backend be
    option log-health-checks
    server s1 127.0.0.1:%(up)d weight 100 check inter 200ms rise 1 fall 1 agent-check agent-port %(agent)d agent-inter 200ms
    server s2 127.0.0.1:%(down)d check inter 200ms rise 1 fall 1
"""


def test_haproxy_stats_and_agent(start_haproxy, start_tcp_listener):
    up = start_tcp_listener()
    agent = start_tcp_listener(reply="up 50% #harness-agent\n")
    hp = start_haproxy(HAPROXY_CFG % {"up": up.port, "agent": agent.port, "down": free_port()})
    rows = hp.show_stat()
    assert {"pxname", "svname", "status", "weight", "last_agt"} <= set(rows[0])
    s1 = hp.wait_server("be", "s1", lambda r: r["status"] == "UP" and r["weight"] == "50")
    assert "harness-agent" in s1["last_agt"]
    hp.wait_server("be", "s2", lambda r: r["status"].startswith("DOWN"))
    st = hp.server_state("be", "s1")
    assert st["srv_op_state"] == "2" and st["srv_uweight"] == "50"
    assert hp.server_state("be", "s2")["srv_op_state"] == "0"
    hp.cmd("set server be/s1 state drain")
    assert int(hp.server_state("be", "s1")["srv_admin_state"]) & 0x08
    assert "Health check" in hp.log()  # option log-health-checks reaches hp.log()
    with pytest.raises(HarnessError):
        hp.servers_state("nosuchbackend")


def test_haproxy_config_without_stats_socket(start_haproxy):
    hp = start_haproxy("defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
                       "    timeout connect 1s\nbackend b\n    server a 127.0.0.1:1 disabled\n")
    assert "stats socket" in hp.cfg_text
    assert hp.server("b", "a")["status"] == "MAINT"


# --------------------------------------------------------------------------- webhooks

def post(url_host, port, path, obj, timeout=3.0, netns=None):
    return http_request(url_host, port, path, "POST",
                        headers={"Content-Type": "application/json"},
                        body=json.dumps(obj).encode(), timeout=timeout, netns=netns)


def test_receiver_records_and_restarts(start_receiver):
    rx = start_receiver()
    status, _, _ = post("127.0.0.1", rx.port, "/hook", {"a": 1})
    assert status == 200
    posts = rx.wait_for(lambda p: len(p) == 1)
    assert posts[0]["path"] == "/hook" and posts[0]["body"] == {"a": 1}
    assert posts[0]["headers"]["Content-Type"] == "application/json"
    assert abs(posts[0]["t"] - time.time()) < 30
    port = rx.port
    rx.stop()
    assert refused("127.0.0.1", port)
    rx.start(mode="status:503")
    assert rx.port == port
    status, _, _ = post("127.0.0.1", port, "/hook", {"a": 2})
    assert status == 503
    rx.stop()
    rx.start(mode="hang")
    with pytest.raises(socket.timeout):
        post("127.0.0.1", port, "/hook", {"a": 3}, timeout=0.5)
    assert [p["body"]["a"] for p in rx.wait_for(lambda p: len(p) == 3)] == [1, 2, 3]


def test_alertmanager_forwards_to_receiver(start_receiver, start_alertmanager):
    rx = start_receiver()
    am = start_alertmanager(rx.url)
    am.post_alerts([{"labels": {"alertname": "HarnessSelfTest", "instance": "be1"},
                     "annotations": {"summary": "harness"}}])
    assert any(a["labels"]["alertname"] == "HarnessSelfTest" for a in am.alerts())
    posts = rx.wait_for(lambda p: any(x["path"] == "/alertmanager" for x in p), timeout=15)
    body = [x for x in posts if x["path"] == "/alertmanager"][0]["body"]
    assert body["status"] == "firing"
    assert body["alerts"][0]["labels"]["alertname"] == "HarnessSelfTest"


# --------------------------------------------------------------------------- namespaces

def test_netns_firewall_rules(make_netns, start_tcp_listener):
    ns = make_netns("fw")
    lst = start_tcp_listener(netns=ns)
    port = lst.port
    assert refused("127.0.0.1", port)            # not on the host's loopback
    ns.connect(("127.0.0.1", port), timeout=2).close()
    ns.block(port, "drop")
    with pytest.raises(socket.timeout):
        ns.connect(("127.0.0.1", port), timeout=0.5)
    ns.unblock(port, "drop")
    ns.connect(("127.0.0.1", port), timeout=2).close()
    ns.block(port, "reset")
    assert refused("127.0.0.1", port, netns=ns)
    ns.unblock(port, "reset")
    ns.block(port, "unreachable")
    with pytest.raises(ConnectionRefusedError):  # ICMP port-unreachable reads as refused
        ns.connect(("127.0.0.1", port), timeout=2)
    ns.unblock(port, "unreachable")
    ns.block(port, "host-unreachable")
    with pytest.raises(OSError) as ei:
        ns.connect(("127.0.0.1", port), timeout=2)
    assert ei.value.errno == errno.EHOSTUNREACH
    assert "-j REJECT" in ns.iptables("-S", "INPUT").stdout
    assert lst.accepted() == 2


def test_silent_listener_and_proxy(make_netns, start_tcp_listener, start_http_app,
                                   start_tcp_proxy):
    ns = make_netns("peers")
    silent = start_tcp_listener(mode="silent", netns=ns)
    s = ns.connect(("127.0.0.1", silent.port), timeout=2)
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.close()
    app = start_http_app(netns=ns, status=200, body="hello")
    assert app.get("/")[0] == 200 and app.get("/")[2] == b"hello"
    assert app.get("/", method="HEAD")[0] == 200
    assert app.get("/", method="OPTIONS")[0] == 200
    app.set(status=503, body="down")
    assert app.get("/")[:3:2] == (503, b"down")
    proxy = start_tcp_proxy(app.addr, delay=0.2, netns=ns)
    t0 = time.monotonic()
    status, _, _ = http_request("127.0.0.1", proxy.port, "/", netns=ns)
    assert status == 503 and time.monotonic() - t0 >= 0.35  # delayed both ways


def test_veth_and_lan_topology(make_netns, make_lan, start_http_app):
    a, b = make_netns("a"), make_netns("b")
    link = make_veth(a, "10.78.0.1/30", b, "10.78.0.2/30")
    app_b = start_http_app(netns=b, bind="0.0.0.0", body="from-b")
    assert http_request(link.ip_b, app_b.port, "/", netns=a)[2] == b"from-b"

    lan = make_lan("10.77.0.0/24")
    hosts = {name: make_netns(name) for name in ("db", "be1", "lb")}
    ips = {name: lan.attach(ns) for name, ns in hosts.items()}
    assert len(set(ips.values())) == 3
    app = start_http_app(netns=hosts["be1"], bind=ips["be1"], body="be1")
    assert http_request(ips["be1"], app.port, "/", netns=hosts["lb"])[2] == b"be1"
    assert http_request(ips["be1"], app.port, "/", netns=hosts["db"])[2] == b"be1"


def test_mariadb_inside_netns(make_netns, start_mariadb):
    ns = make_netns("db")
    db = start_mariadb(netns=ns)
    assert db.sql("select 1") == [("1",)]
    assert refused("127.0.0.1", db.port)


# --------------------------------------------------------------------------- healthd fixture
# (with a stand-in binary: the real daemon is tested elsewhere)

@pytest.fixture
def fake_healthd_bin(monkeypatch):
    monkeypatch.setenv("HEALTHD_BIN", FAKE_HEALTHD)
    return FAKE_HEALTHD


def test_healthd_fixture_plumbing(fake_healthd_bin, start_healthd, make_netns):
    hd = start_healthd({"checks": [{"name": "x"}]})
    with open(hd.config_path) as f:
        cfg = json.load(f)
    assert set(cfg["listen"]) == {"http", "agent", "admin_socket"}
    assert cfg["listen"]["admin_socket"] == hd.admin_socket
    status, headers, body = hd.get("/live")
    assert status == 200 and headers["content-type"] == "application/json"
    assert hd.get("/live", method="HEAD")[2] == b""
    assert hd.json("/health") == (200, {"status": "up", "reloads": 0,
                                        "checks": [{"name": "x"}]})
    assert hd.agent() == "up 100%"
    assert hd.agent(send=b"be1\n") == "up 100%"
    hd.signal(signal.SIGHUP)
    wait_until(lambda: hd.json("/health")[1]["reloads"] == 1, 5, what="fake reload")
    ports = (hd.http_port, hd.agent_port)
    pid = hd.pid
    hd.restart()
    assert hd.pid != pid and (hd.http_port, hd.agent_port) == ports
    assert hd.get("/live")[0] == 200
    assert "fake healthd listening" in hd.log()
    assert hd.stop() == 0 and hd.returncode == 0

    ns = make_netns("hd")
    hd2 = start_healthd({}, netns=ns)
    assert hd2.get("/ready")[0] == 200 and hd2.agent() == "up 100%"
    assert refused(*hd2.http_addr)  # only reachable inside its namespace
    hd2.kill()
    assert hd2.returncode == -signal.SIGKILL


def test_healthd_fixture_reports_startup_failure(fake_healthd_bin, start_healthd):
    with pytest.raises(HarnessError, match="exited with status"):
        start_healthd({"listen": {"http": "127.0.0.1:notaport"}})


def test_run_healthd_one_shot(fake_healthd_bin, workdirs):
    d = workdirs.new("oneshot")
    good, bad = os.path.join(d, "ok.json"), os.path.join(d, "bad.json")
    with open(good, "w") as f:
        f.write("{}")
    with open(bad, "w") as f:
        f.write("{")
    assert run_healthd(["--config", good, "--check-config"])[:2] == (0, "configuration ok\n")
    rc, out, err = run_healthd(["--config", bad, "--check-config"])
    assert rc == 2 and "bad.json" in err


LAN_HAPROXY_CFG = """
global
    log stderr format short local0 info

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s

backend app
    option httpchk
    http-check send meth GET uri /ready
    server be1 %(be1)s:%(app)d weight 100 check port %(http)d inter 200ms rise 1 fall 1 agent-check agent-addr %(be1)s agent-port %(agent)d agent-inter 200ms
"""


def test_multi_host_haproxy_polls_over_lan(fake_healthd_bin, make_netns, make_lan,
                                           start_healthd, start_http_app, start_haproxy):
    lan = make_lan("10.77.0.0/24")
    lb, be1 = make_netns("lb"), make_netns("be1")
    lan.attach(lb, "10.77.0.100")
    be1_ip = lan.attach(be1, "10.77.0.11")
    app = start_http_app(netns=be1, bind="0.0.0.0", body="app")
    hd = start_healthd({}, netns=be1, bind="0.0.0.0")
    hp = start_haproxy(LAN_HAPROXY_CFG % {"be1": be1_ip, "app": app.port,
                                          "http": hd.http_port, "agent": hd.agent_port},
                       netns=lb)
    row = hp.wait_server("app", "be1", lambda r: r["status"] == "UP" and r["check_code"] == "200"
                         and r["agent_status"] == "L7OK")
    assert row["weight"] == "100"
