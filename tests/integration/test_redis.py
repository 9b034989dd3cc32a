"""The redis check against a real Redis 7.0 (and MariaDB, silent listeners, firewall rules in a
namespace): every kind it can report, the role of a replica, many checks at once, and the password
never leaving the configuration."""

import json
import os
import signal

from harness import free_port, run_healthd, wait_until

MARGIN_MS = 400  # scheduling slack on a loaded 2-core machine (more under the sanitizers)
PASSWORD = "Rd-pw-7f3a91c2e8"
HOST = "127.0.0.1"


def redis_check(name, port, host=HOST, **extra):
    check = {"name": name, "type": "redis", "host": host, "port": port}
    check.update(extra)
    return check


def config(checks, interval_ms=300, timeout_ms=250, rise=1, fall=1):
    return {"node_name": "be-test",
            "defaults": {"interval_ms": interval_ms, "timeout_ms": timeout_ms, "rise": rise,
                         "fall": fall},
            "checks": checks}


def wait_check(hd, name, pred, timeout=5.0, what=None):
    """Poll /health/NAME until pred(json) holds; return the JSON."""
    last = {}

    def probe():
        last["c"] = hd.json("/health/" + name)
        body = last["c"][1]
        return body if body is not None and pred(body) else None

    try:
        return wait_until(probe, timeout, interval=0.03, what=what or "check %s condition" % name)
    except AssertionError as exc:
        raise AssertionError("%s; last answer: %r" % (exc, last.get("c"))) from None


def is_up(c):
    return c["status"] == "up"


def is_down(c):
    return c["status"] == "down"


def secret_file(workdirs, text, name="redis.pw"):
    d = workdirs.new("secret")
    path = os.path.join(d, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def test_up_names_the_address_and_leaves_no_connection_behind(start_redis, start_healthd):
    r = start_redis()
    hd = start_healthd(config([redis_check("cache", r.port),
                               redis_check("by-name", r.port, host="localhost", db=3)]))
    c = wait_check(hd, "cache", is_up)
    addr = "%s:%d" % (HOST, r.port)
    assert c["kind"] == "ok" and c["detail"] == "PING %s: PONG" % addr
    assert c["type"] == "redis" and c["target"] == addr and c["address"] == addr
    assert c["source_addr"] == HOST
    assert 0 <= c["latency_ms"] < 250
    c = wait_check(hd, "by-name", is_up)
    assert c["target"] == "localhost:%d" % r.port and c["address"] == addr
    # Every attempt says QUIT and closes: after many attempts the server holds no healthd connection.
    wait_until(lambda: int(r.info("stats")["total_connections_received"]) >= 20, 10,
               what="20 attempts")
    wait_until(lambda: int(r.info("clients")["connected_clients"]) == 1, 3,
               what="only redis-cli connected")


def test_passwords_auth_kinds_and_the_secret_never_shown(start_redis, start_healthd,
                                                          start_tcp_listener, workdirs):
    r = start_redis(password=PASSWORD)
    pw_file = secret_file(workdirs, PASSWORD + "\n")
    # A peer that echoes the password back, as Redis does when AUTH is renamed away:
    # "ERR unknown command 'AUTH', with args beginning with: '<password>'".
    echo = start_tcp_listener(
        reply="-ERR unknown command 'AUTH', with args beginning with: '%s' \r\n" % PASSWORD)
    checks = [
        redis_check("inline", r.port, password=PASSWORD),
        redis_check("from-file", r.port, password_file=pw_file),
        redis_check("wrong", r.port, password=PASSWORD[:-1] + "x"),
        redis_check("none", r.port),
        redis_check("echoed", echo.port, password=PASSWORD),
    ]
    hd = start_healthd(config(checks), extra_args=["--debug"])
    addr = "%s:%d" % (HOST, r.port)
    wait_check(hd, "inline", is_up)
    wait_check(hd, "from-file", is_up)
    c = wait_check(hd, "wrong", is_down)
    assert c["kind"] == "auth"
    assert c["detail"] == ("AUTH %s: WRONGPASS invalid username-password pair or user is disabled."
                           % addr)
    c = wait_check(hd, "none", is_down)
    assert c["kind"] == "auth"
    assert c["detail"] == ("PING %s: NOAUTH Authentication required. (the server requires a "
                           "password: set password or password_file)" % addr)
    c = wait_check(hd, "echoed", is_down)
    assert c["kind"] == "auth"
    assert c["detail"] == ("AUTH %s:%d: ERR unknown command 'AUTH', with args beginning with: '***'"
                           % (HOST, echo.port))
    assert hd.agent() == "down #wrong auth"  # the first critical check down, in config order

    # Several attempts later: nowhere in the API, the agent line or the (debug) log.
    wait_until(lambda: echo.accepted() >= 3, 5, what="3 attempts against the echoing peer")
    pages = [hd.get("/health")[2], hd.get("/ready")[2], hd.agent().encode()]
    pages += [hd.get("/health/" + c["name"])[2] for c in checks]
    for page in pages:
        assert PASSWORD.encode() not in page
    with open(hd.log_path, "rb") as f:
        log = f.read()
    assert b"echoed" in log and PASSWORD.encode() not in log


def test_password_file_is_read_at_load_and_again_on_reload(start_redis, start_healthd, workdirs):
    r = start_redis(password=PASSWORD)
    pw_file = secret_file(workdirs, "old-password\n")
    hd = start_healthd(config([redis_check("cache", r.port, password_file=pw_file)]))
    c = wait_check(hd, "cache", is_down)
    assert c["kind"] == "auth"
    with open(pw_file, "w") as f:
        f.write(PASSWORD + "\r\n")  # an editor's CRLF is not part of the password
    hd.signal(signal.SIGHUP)
    wait_check(hd, "cache", is_up)


def test_acl_user_select_and_noperm(start_redis, start_healthd):
    r = start_redis()
    r.cli("ACL", "SETUSER", "healthd", "on", ">hc-pass", "+ping", "+select", "+info")
    r.cli("ACL", "SETUSER", "pingonly", "on", ">po-pass", "+ping")
    addr = "%s:%d" % (HOST, r.port)
    hd = start_healthd(config([
        redis_check("acl", r.port, username="healthd", password="hc-pass", db=2,
                    expect_role="master"),
        redis_check("acl-wrong", r.port, username="healthd", password="nope"),
        redis_check("acl-noperm", r.port, username="pingonly", password="po-pass",
                    expect_role="master"),
        redis_check("db-range", r.port, db=99),
    ]))
    c = wait_check(hd, "acl", is_up)
    assert c["detail"] == "PING %s: PONG, role master" % addr
    c = wait_check(hd, "acl-wrong", is_down)
    assert c["kind"] == "auth"
    assert c["detail"] == ("AUTH %s as healthd: WRONGPASS invalid username-password pair or user "
                           "is disabled." % addr)
    c = wait_check(hd, "acl-noperm", is_down)
    assert c["kind"] == "auth"
    assert c["detail"].startswith("INFO replication %s: NOPERM " % addr)
    assert "'info' command" in c["detail"] and c["detail"].endswith("+ping +info +select)")
    c = wait_check(hd, "db-range", is_down)
    assert c["kind"] == "error"
    assert c["detail"] == "SELECT %s: ERR DB index is out of range" % addr


def test_server_error_reply_is_kind_error_with_its_message(start_redis, start_healthd):
    r = start_redis()
    hd = start_healthd(config([redis_check("cache", r.port)]))
    wait_check(hd, "cache", is_up)
    # A replica cut off from its master and told not to serve stale data refuses PING.
    r.cli("REPLICAOF", HOST, str(free_port()))
    r.cli("CONFIG", "SET", "replica-serve-stale-data", "no")
    c = wait_check(hd, "cache", is_down)
    assert c["kind"] == "error"
    assert c["detail"] == ("PING %s:%d: MASTERDOWN Link with MASTER is down and "
                           "replica-serve-stale-data is set to 'no'." % (HOST, r.port))
    r.cli("REPLICAOF", "NO", "ONE")
    wait_check(hd, "cache", is_up)


def test_stopped_server_is_refused_then_up_again(start_redis, start_healthd):
    r = start_redis()
    hd = start_healthd(config([redis_check("cache", r.port)]))
    wait_check(hd, "cache", is_up)
    r.stop()
    c = wait_check(hd, "cache", is_down)
    assert c["kind"] == "refused"
    assert c["detail"] == ("connect %s:%d: Connection refused (nothing listening, or a firewall "
                           "REJECT)" % (HOST, r.port))
    assert hd.agent() == "down #cache refused"
    r.start()
    wait_check(hd, "cache", is_up)


def test_firewall_drop_is_timeout_and_unreachable_kinds(make_netns, start_redis, start_healthd):
    ns = make_netns("rdfw")
    r = start_redis(netns=ns)
    addr = "%s:%d" % (HOST, r.port)
    hd = start_healthd(config([redis_check("cache", r.port),
                               redis_check("no-route", 6379, host="10.1.2.3")],
                              interval_ms=400, timeout_ms=300), netns=ns)
    wait_check(hd, "cache", is_up)
    # No route at all inside the namespace: connect() fails at once.
    c = wait_check(hd, "no-route", is_down)
    assert c["kind"] == "unreachable"
    assert c["detail"] == "connect 10.1.2.3:6379: Network is unreachable"

    ns.block(r.port, "drop")
    c = wait_check(hd, "cache", is_down)
    assert c["kind"] == "timeout"
    assert c["detail"] == "connect %s: no answer within 300 ms" % addr
    assert c["latency_ms"] <= 300 + MARGIN_MS
    assert hd.get("/live", timeout=1.0)[0] == 200  # the loop never blocked
    ns.unblock(r.port, "drop")
    wait_check(hd, "cache", is_up)

    ns.block(r.port, "host-unreachable")
    c = wait_check(hd, "cache", is_down)
    assert c["kind"] == "unreachable"
    assert c["detail"] == "connect %s: No route to host" % addr
    ns.unblock(r.port, "host-unreachable")
    wait_check(hd, "cache", is_up)


def test_silent_peer_times_out_in_the_phase_it_waits_in(start_tcp_listener, start_healthd):
    silent = start_tcp_listener(mode="silent")
    hd = start_healthd(config([redis_check("plain", silent.port),
                               redis_check("with-auth", silent.port, password=PASSWORD)],
                              interval_ms=500, timeout_ms=300))
    addr = "%s:%d" % (HOST, silent.port)
    c = wait_check(hd, "plain", is_down)
    assert c["kind"] == "timeout" and c["detail"] == "ping %s: no answer within 300 ms" % addr
    assert c["latency_ms"] <= 300 + MARGIN_MS
    assert c["source_addr"] == HOST
    c = wait_check(hd, "with-auth", is_down)
    assert c["kind"] == "timeout" and c["detail"] == "auth %s: no answer within 300 ms" % addr


def test_not_redis_is_protocol(mariadb, start_tcp_listener, start_healthd):
    closer = start_tcp_listener(mode="accept")  # accepts and closes at once
    hd = start_healthd(config([redis_check("mysql-port", mariadb.port),
                               redis_check("closer", closer.port)]))
    # MariaDB greets first with a binary handshake packet; hiredis reads its first byte as the
    # reply type and gives up.
    c = wait_check(hd, "mysql-port", is_down)
    assert c["kind"] == "protocol"
    assert c["detail"].startswith("PING %s:%d: Protocol error, got " % (HOST, mariadb.port))
    assert c["detail"].endswith(" as reply type byte (this port does not speak Redis: another "
                                "service, e.g. MySQL, which greets first?)")
    c = wait_check(hd, "closer", is_down)
    assert c["kind"] in ("refused", "protocol")  # RST or FIN, as the race goes
    assert "not Redis, or a proxy without a live backend?" in c["detail"]


def test_replica_roles(start_redis, start_healthd):
    primary = start_redis()
    replica = start_redis(replica_of=primary)
    wait_until(lambda: replica.info("replication").get("master_link_status") == "up", 10,
               what="replica link up")
    hd = start_healthd(config([
        redis_check("primary-master", primary.port, expect_role="master"),
        redis_check("replica-master", replica.port, expect_role="master"),
        redis_check("replica-replica", replica.port, expect_role="replica"),
        redis_check("primary-replica", primary.port, expect_role="replica"),
        redis_check("replica-any", replica.port),
    ]))
    upstream = "of %s:%d, link up" % (HOST, primary.port)
    c = wait_check(hd, "primary-master", is_up)
    assert c["detail"] == "PING %s:%d: PONG, role master" % (HOST, primary.port)
    c = wait_check(hd, "replica-master", is_down)
    assert c["kind"] == "threshold"
    assert c["detail"] == ("INFO replication %s:%d: role replica %s, expected master"
                           % (HOST, replica.port, upstream))
    c = wait_check(hd, "replica-replica", is_up)
    assert c["detail"] == "PING %s:%d: PONG, role replica %s" % (HOST, replica.port, upstream)
    c = wait_check(hd, "primary-replica", is_down)
    assert c["kind"] == "threshold"
    assert c["detail"] == ("INFO replication %s:%d: role master, expected replica"
                           % (HOST, primary.port))
    wait_check(hd, "replica-any", is_up)
    # A failover: the replica is promoted, the checks follow.
    replica.cli("REPLICAOF", "NO", "ONE")
    wait_check(hd, "replica-master", is_up)
    c = wait_check(hd, "replica-replica", is_down)
    assert c["kind"] == "threshold"


def test_many_concurrent_checks_each_within_its_deadline(start_redis, start_tcp_listener,
                                                         start_healthd):
    r = start_redis(password=PASSWORD)
    silent = start_tcp_listener(mode="silent")
    timeout_ms = 500
    ups = ["r%03d" % i for i in range(100)]
    hangs = ["h%02d" % i for i in range(20)]
    checks = [redis_check(n, r.port, password=PASSWORD, expect_role="master", db=i % 4)
              for i, n in enumerate(ups)]
    checks += [redis_check(n, silent.port) for n in hangs]
    hd = start_healthd(config(checks, interval_ms=1000, timeout_ms=timeout_ms))

    def all_reported():
        status, body = hd.json("/health")
        if body is None or any(c["status"] == "pending" for c in body["checks"].values()):
            return None
        return body

    for _ in range(2):  # two full rounds, the second one with every check running again
        body = wait_until(all_reported, 10, interval=0.2, what="every check reported")
        for name in ups:
            c = body["checks"][name]
            assert c["status"] == "up", (name, c)
            assert c["latency_ms"] < timeout_ms, (name, c)
        for name in hangs:
            c = body["checks"][name]
            assert c["kind"] == "timeout", (name, c)
            assert c["latency_ms"] <= timeout_ms + MARGIN_MS, (name, c)
        first = {n: body["checks"][n]["last_checked"] for n in ups + hangs}
        wait_until(lambda: all(hd.json("/health/" + n)[1]["last_checked"] != first[n]
                               for n in ups + hangs), 5, interval=0.2, what="another round")
    assert hd.running


def test_config_errors(workdirs):
    pw_file = secret_file(workdirs, "x")
    path = os.path.join(workdirs.new("config"), "healthd.json")

    def check_config(check):
        with open(path, "w") as f:
            json.dump({"checks": [check]}, f, indent=1)
        return run_healthd(["--config", path, "--check-config"])

    # Line 9, column 4: the password_file key of the check (json.dump with indent=1).
    rc, _, err = check_config(redis_check("c", 6379, password="a", password_file=pw_file))
    assert rc == 2
    assert err.strip() == ('%s:9:4: checks["c"].password_file: give either password or '
                           'password_file, not both' % path)
    rc, _, err = check_config(redis_check("c", 6379, password_file="/nonexistent/pw"))
    assert rc == 2
    assert err.strip() == ('%s:8:21: checks["c"].password_file: cannot read the password file '
                           '/nonexistent/pw: No such file or directory' % path)
    rc, _, err = check_config(redis_check("c", 6379, password_file=secret_file(workdirs, "\n")))
    assert rc == 2 and err.strip().endswith(" is empty")
    rc, _, err = check_config(redis_check("c", 6379, username="u"))
    assert rc == 2
    assert err.strip() == ('%s:8:4: checks["c"].username: username needs password or '
                           'password_file (AUTH username password)' % path)
    rc, _, err = check_config(redis_check("c", 6379, expect_role="primary"))
    assert rc == 2 and 'expected one of "any", "master", "replica", got "primary"' in err
    rc, out, _ = check_config(redis_check("c", 6379, password_file=pw_file, expect_role="replica"))
    assert rc == 0 and "valid, 1 checks" in out
