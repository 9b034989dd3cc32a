"""The mysql check against a real MariaDB 10.11: outcomes and their kinds, clean quits, concurrency."""

import calendar
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from harness import run_healthd, wait_until

MARGIN_MS = 150  # scheduling slack on a loaded 2-core machine


def mysql_check(db, name="db", **kw):
    check = {"name": name, "type": "mysql", "host": db.host, "port": db.port, "user": db.user,
             "password": db.password}
    check.update(kw)
    return check


def config(*checks, interval=300, timeout=250):
    return {"defaults": {"interval_ms": interval, "timeout_ms": timeout, "rise": 1, "fall": 1},
            "checks": list(checks)}


def check_json(hd, name="db"):
    status, body = hd.json("/health/" + name)
    assert status in (200, 503) and body is not None, (status, body)
    return body


def wait_check(hd, pred, name="db", timeout=6.0, what=None):
    """Waits until check `name` satisfies pred; returns its JSON."""
    def probe():
        c = check_json(hd, name)
        return c if pred(c) else None
    return wait_until(probe, timeout, what=what or "check %s to match" % name)


def is_kind(kind):
    return lambda c: c["kind"] == kind


def counters(db):
    rows = db.sql("SHOW GLOBAL STATUS WHERE Variable_name IN "
                  "('Connections', 'Aborted_connects', 'Aborted_clients')")
    return {k: int(v) for k, v in rows}


# --------------------------------------------------------------------------- outcomes

def test_up_then_auth_with_a_wrong_password(mariadb, start_healthd):
    hd = start_healthd(config(mysql_check(mariadb), mysql_check(mariadb, "badpw", password="not-it")))
    c = wait_check(hd, lambda c: c["status"] == "up")
    assert c["kind"] == "ok" and c["type"] == "mysql"
    assert c["address"] == "%s:%d" % (mariadb.host, mariadb.port) and c["source_addr"] == "127.0.0.1"
    assert "MariaDB" in c["detail"] and "SELECT 1: 1 row" in c["detail"]
    bad = wait_check(hd, is_kind("auth"), "badpw")
    assert bad["status"] == "down"
    assert "error 1045" in bad["detail"] and "'healthd'" in bad["detail"]
    assert hd.agent() == "down #badpw auth"


def test_server_stopped_is_refused_and_comes_back(mariadb, start_healthd):
    hd = start_healthd(config(mysql_check(mariadb)))
    wait_check(hd, is_kind("ok"))
    mariadb.stop()
    c = wait_check(hd, is_kind("refused"))
    assert c["detail"].startswith("connect %s:%d: Connection refused" % (mariadb.host, mariadb.port))
    mariadb.start()
    wait_check(hd, is_kind("ok"), timeout=10)


def test_firewall_drop_times_out_in_connect(make_netns, start_mariadb, start_healthd):
    ns = make_netns("drop")
    db = start_mariadb(netns=ns)
    hd = start_healthd(config(mysql_check(db), interval=500, timeout=300), netns=ns)
    wait_check(hd, is_kind("ok"))
    ns.block(db.port, "drop")
    c = wait_check(hd, is_kind("timeout"))
    assert c["detail"] == "connect 127.0.0.1:%d: no answer within 300 ms" % db.port
    assert c["latency_ms"] <= 300 + MARGIN_MS
    ns.unblock(db.port, "drop")
    wait_check(hd, is_kind("ok"))


def test_silent_listener_times_out_in_handshake(start_tcp_listener, start_healthd):
    lst = start_tcp_listener(mode="silent")
    hd = start_healthd(config({"name": "db", "type": "mysql", "host": "127.0.0.1", "port": lst.port,
                               "user": "healthd", "password": "x"}))
    c = wait_check(hd, is_kind("timeout"))
    assert c["detail"] == "handshake 127.0.0.1:%d: no answer within 250 ms" % lst.port
    assert c["latency_ms"] <= 250 + MARGIN_MS
    assert c["source_addr"] == "127.0.0.1"


def test_not_a_mysql_server(start_redis, start_tcp_listener, start_healthd):
    """A Redis port waits for the client to speak, as a hung MySQL would: timeout in the handshake.
    A peer that speaks first with something else (an SSH banner, a Redis refusing a client) is protocol."""
    redis = start_redis()
    ssh = start_tcp_listener(reply=b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    hd = start_healthd(config(
        {"name": "redis", "type": "mysql", "host": "127.0.0.1", "port": redis.port, "user": "u", "password": "p"},
        {"name": "ssh", "type": "mysql", "host": "127.0.0.1", "port": ssh.port, "user": "u", "password": "p"}))
    c = wait_check(hd, is_kind("timeout"), "redis")
    assert c["detail"].startswith("handshake 127.0.0.1:%d: no answer" % redis.port)
    c = wait_check(hd, is_kind("protocol"), "ssh")
    assert c["detail"].startswith("127.0.0.1:%d sent a first packet of " % ssh.port), c["detail"]
    assert "53 53 48 2d" in c["detail"] and "is this port a MySQL/MariaDB server?" in c["detail"]

    redis.cli("CONFIG", "SET", "maxclients", "1")
    hold = socket.create_connection((redis.host, redis.port), timeout=3)  # the one client Redis allows
    try:
        c = wait_check(hd, is_kind("protocol"), "redis")
        assert "not a MySQL greeting" in c["detail"] and "2d 45 52 52" in c["detail"], c["detail"]  # "-ERR"
    finally:
        hold.close()


def mysql_packet(payload, number=0):
    return len(payload).to_bytes(3, "little") + bytes([number]) + payload


# Nine bytes that crash MariaDB Connector/C 3.3 when it reads them as the greeting: an error packet with code
# 0xffff (a "progress report") before any greeting; it then calls strstr() on a NULL server version.
CRASHING_GREETING = bytes.fromhex("05000000ffffff4141")


@pytest.mark.parametrize("first", [CRASHING_GREETING, mysql_packet(b"\xff\xff\xff#HY000boom"),
                                   mysql_packet(b"\x0a5.5.5-10.11.6-MariaDB"),  # cut before the NUL
                                   mysql_packet(b"\x0a8.0\x00" + b"\x01" * 4), mysql_packet(b"\x09old\x00")],
                         ids=["progress-report", "progress-report-with-state", "no-nul", "short", "protocol-9"])
def test_a_hostile_first_packet_is_protocol_and_never_reaches_the_library(start_tcp_listener, start_healthd,
                                                                          workdirs, first):
    """No bytes from a peer may crash healthd: the first packet is judged before Connector/C reads it."""
    lst = start_tcp_listener(reply=first)
    cfg = config({"name": "db", "type": "mysql", "host": "127.0.0.1", "port": lst.port, "user": "u",
                  "password": "p"}, interval=300)
    d = workdirs.new("hostile-greeting")
    path = os.path.join(d, "healthd.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    rc, out, err = run_healthd(["check", "--config", path], timeout=20)
    print("healthd check against %s: exit %d\n%s%s" % (first.hex(), rc, out, err))
    assert rc == 2 and "protocol" in out and "is this port a MySQL/MariaDB server?" in out, (rc, out, err)

    hd = start_healthd(cfg)
    c = wait_check(hd, is_kind("protocol"))
    assert "sent " in c["detail"] and c["detail"].endswith("is this port a MySQL/MariaDB server?"), c["detail"]
    n = lst.accepted()
    wait_until(lambda: lst.accepted() >= n + 10, 10, what="ten more attempts")
    assert hd.proc.poll() is None, "healthd died: " + hd.log()[-2000:]
    assert check_json(hd)["kind"] == "protocol"


def test_a_server_error_text_cannot_forge_log_lines_or_reach_a_terminal(start_tcp_listener, start_healthd,
                                                                         workdirs):
    """An error packet before the greeting ("Too many connections") is real, and its text is the server's: newlines
    and escape sequences in it are escaped once, where the detail enters healthd, for every output."""
    forged = b"Too many connections\n2026-12-03T04:30:00.000Z healthd[1] info: check db: up\x1b[2J\x07"
    lst = start_tcp_listener(reply=mysql_packet(b"\xff" + (1040).to_bytes(2, "little") + forged))
    cfg = config({"name": "db", "type": "mysql", "host": "127.0.0.1", "port": lst.port, "user": "u",
                  "password": "p"}, interval=300)
    hd = start_healthd(cfg)
    c = wait_check(hd, lambda c: "Too many connections" in c["detail"])
    print("detail: %r" % c["detail"])
    assert "\\n2026-12-03T04:30:00.000Z healthd[1] info: check db: up\\x1b[2J\\x07" in c["detail"], c["detail"]
    assert not any(ch in c["detail"] for ch in "\n\r\x1b\x07")
    log = hd.log()
    assert "\x1b" not in log and "\x07" not in log
    assert not any(line.startswith("2026-12-03T04:30:00.000Z") for line in log.splitlines()), log[-2000:]

    d = workdirs.new("forged-log")
    path = os.path.join(d, "healthd.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    rc, out, err = run_healthd(["check", "--config", path], timeout=20)
    assert rc == 2 and "Too many connections\\n2026" in out, (rc, out)
    assert not any(ch in out + err for ch in "\x1b\x07")


def test_read_only_flip_is_threshold(mariadb, start_healthd):
    hd = start_healthd(config(mysql_check(mariadb, expect_read_only=False),
                              mysql_check(mariadb, "replica", expect_read_only=True)))
    c = wait_check(hd, is_kind("ok"))
    assert "read_only OFF as expected" in c["detail"]
    c = wait_check(hd, is_kind("threshold"), "replica")
    assert "is writable" in c["detail"]
    mariadb.set_read_only(True)
    c = wait_check(hd, is_kind("threshold"))
    assert c["status"] == "down" and "is read-only (@@global.read_only=1)" in c["detail"]
    wait_check(hd, is_kind("ok"), "replica")
    mariadb.set_read_only(False)
    wait_check(hd, is_kind("ok"))


def test_replication_lag_and_stopped_replication(start_mariadb, start_healthd):
    primary = start_mariadb(log_bin=True, grants=("REPLICA MONITOR",))
    replica = start_mariadb(replica_of=primary, grants=("REPLICA MONITOR",))
    hd = start_healthd(config(mysql_check(replica, max_replication_lag_s=2),
                              mysql_check(primary, "primary", max_replication_lag_s=2)))
    c = wait_check(hd, is_kind("ok"))
    assert "replication lag 0 s (max 2)" in c["detail"]
    c = wait_check(hd, is_kind("threshold"), "primary")
    assert "is not a replica" in c["detail"]

    replica.sql("STOP SLAVE SQL_THREAD")
    c = wait_check(hd, is_kind("threshold"))
    assert "is not running (Seconds_Behind_Master is NULL; IO thread: Yes, SQL thread: No" in c["detail"]
    replica.sql("START SLAVE SQL_THREAD")
    wait_check(hd, is_kind("ok"))

    replica.set_replication_delay(60)  # a real, growing lag
    primary.sql("CREATE DATABASE lagtest; CREATE TABLE lagtest.t (id INT PRIMARY KEY); "
                "INSERT INTO lagtest.t VALUES (1)")
    c = wait_check(hd, is_kind("threshold"), timeout=10)
    assert "s behind its primary (max_replication_lag_s 2)" in c["detail"]


def test_query_error_carries_the_server_code(mariadb, start_healthd):
    hd = start_healthd(config(mysql_check(mariadb, query="SELECT * FROM mysql.user"),
                              mysql_check(mariadb, "lag", max_replication_lag_s=5)))
    c = wait_check(hd, is_kind("error"))
    assert "SELECT * FROM mysql.user on" in c["detail"] and "error 1142 (42000)" in c["detail"]
    c = wait_check(hd, is_kind("error"), "lag")
    assert "error 1227" in c["detail"] and "GRANT REPLICA MONITOR" in c["detail"]


def test_expect_rows_and_expect_value(mariadb, start_healthd):
    mariadb.sql("DROP DATABASE IF EXISTS expecttest; CREATE DATABASE expecttest; CREATE TABLE expecttest.q (n INT); "
                "GRANT SELECT ON expecttest.* TO '%s'@'%%'" % mariadb.user)
    count = "SELECT COUNT(*) FROM expecttest.q"
    hd = start_healthd(config(
        mysql_check(mariadb, "rows", query="SELECT n FROM expecttest.q", expect_rows=">= 1"),
        mysql_check(mariadb, "exact", query="SELECT n FROM expecttest.q", expect_rows=2),
        mysql_check(mariadb, "value", query=count, expect_value="<= 5"),
        mysql_check(mariadb, "string", query="SELECT @@global.read_only", expect_value="0"),
        mysql_check(mariadb, "nan", query="SELECT 'x\x1b[31m'", expect_value="<= 5")))
    c = wait_check(hd, is_kind("threshold"), "rows")
    assert c["status"] == "down"
    assert 'query "SELECT n FROM expecttest.q" on 127.0.0.1:%d returned 0 rows, expected >= 1' % mariadb.port \
        in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("threshold"), "exact")
    assert "returned 0 rows, expected == 2" in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("ok"), "value")
    assert "first value 0 as expected" in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("ok"), "string")
    assert "first value 0 as expected" in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("threshold"), "nan")
    assert "is not a number, expected <= 5" in c["detail"] and "\x1b" not in c["detail"], c["detail"]

    mariadb.sql("INSERT INTO expecttest.q VALUES (1), (2)")
    wait_check(hd, is_kind("ok"), "rows")
    c = wait_check(hd, is_kind("ok"), "exact")
    mariadb.sql("INSERT INTO expecttest.q VALUES (3), (4), (5), (6), (7)")
    c = wait_check(hd, is_kind("threshold"), "value")
    assert c["status"] == "down"
    assert 'first value 7, expected <= 5 (query "%s" on' % count in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("threshold"), "exact")
    assert "returned 7 rows, expected == 2" in c["detail"], c["detail"]
    mariadb.set_read_only(True)
    c = wait_check(hd, is_kind("threshold"), "string")
    assert 'first value 1, expected "0"' in c["detail"], c["detail"]
    mariadb.set_read_only(False)
    mariadb.sql("DELETE FROM expecttest.q WHERE n > 2")
    wait_check(hd, is_kind("ok"), "value")
    wait_check(hd, is_kind("ok"), "string")


# --------------------------------------------------------------------------- what the server sees

def test_10000_checks_leave_aborted_connects_unchanged(make_netns, start_mariadb, start_healthd):
    """200 checks every 200 ms (1000 logins a second) in a namespace of their own (TIME_WAITs stay there)."""
    ns = make_netns("load")
    db = start_mariadb(netns=ns)
    checks = [mysql_check(db, "db%03d" % i) for i in range(200)]
    before = counters(db)
    own = 1  # counters() itself is one connection
    t0 = time.monotonic()
    hd = start_healthd(config(*checks, interval=200, timeout=200), netns=ns)

    def enough():
        nonlocal own
        now = counters(db)
        own += 1
        return now if now["Connections"] - before["Connections"] - own >= 10000 else None

    after = wait_until(enough, 60, interval=0.5, what="10,000 checks")
    elapsed = time.monotonic() - t0
    completed = after["Connections"] - before["Connections"] - own
    status, health = hd.json("/health")
    kinds = {c["kind"] for c in health["checks"].values()}
    print("\n%d logins in %.1f s (%.0f/s); Aborted_connects %+d, Aborted_clients %+d; kinds %s"
          % (completed, elapsed, completed / elapsed, after["Aborted_connects"] - before["Aborted_connects"],
             after["Aborted_clients"] - before["Aborted_clients"], kinds))
    assert completed >= 10000
    assert after["Aborted_connects"] == before["Aborted_connects"]  # never a step towards max_connect_errors
    # An attempt that times out in its query phase leaves the server an Aborted_clients (the README's limit); on a
    # quiet machine none does, on a loaded one a few may: never more than the timeouts healthd counted.
    _, _, metrics = hd.get("/metrics")
    timeouts = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
                   if line.startswith("healthd_check_failures_total{") and 'kind="timeout"' in line)
    print("timeouts %d" % timeouts)
    assert after["Aborted_clients"] - before["Aborted_clients"] <= timeouts
    assert kinds == {"ok"} or (timeouts and kinds <= {"ok", "timeout"}), kinds


def test_a_timed_out_login_still_completes_and_quits(mariadb, start_tcp_proxy, start_healthd):
    """A server slower than the deadline: the attempt reports a handshake timeout, but its login goes on
    in the background and quits with COM_QUIT, so the server counts no aborted connect."""
    proxy = start_tcp_proxy((mariadb.host, mariadb.port), delay=0.25)  # greeting, login, OK: ~0.75 s
    before = counters(mariadb)
    hd = start_healthd(config({"name": "db", "type": "mysql", "host": "127.0.0.1", "port": proxy.port,
                               "user": mariadb.user, "password": mariadb.password},
                              interval=1500, timeout=300), extra_args=["--debug"])
    c = wait_check(hd, is_kind("timeout"))
    assert c["detail"] == "handshake 127.0.0.1:%d: no answer within 300 ms" % proxy.port
    wait_until(lambda: hd.log().count("the timed-out login completed") >= 2, 6, what="two drained logins")
    hd.stop()
    after = counters(mariadb)
    assert after["Aborted_connects"] == before["Aborted_connects"]
    assert after["Connections"] - before["Connections"] >= 3  # two drained logins and counters()


def test_200_checks_do_not_wait_on_each_other(mariadb, start_healthd):
    interval, timeout = 1000, 400
    hd = start_healthd(config(*[mysql_check(mariadb, "db%03d" % i) for i in range(200)],
                              interval=interval, timeout=timeout))

    def all_ok():
        checks = hd.json("/health")[1]["checks"]
        return checks if all(c["kind"] == "ok" for c in checks.values()) else None

    first = wait_until(all_ok, 10, what="200 checks up")
    time.sleep(interval / 1000.0 * 1.2)
    second = hd.json("/health")[1]["checks"]
    assert len(second) == 200
    stamps = []
    for name, c in second.items():
        assert c["kind"] == "ok", (name, c)
        assert c["latency_ms"] < timeout, (name, c)
        assert c["last_checked"] != first[name]["last_checked"], name  # one more cycle each
        stamps.append(time.mktime(time.strptime(c["last_checked"][:19], "%Y-%m-%dT%H:%M:%S"))
                      + float(c["last_checked"][19:23]))
    # one cycle: every check's latest result within one interval (a check that waited would lag behind)
    assert max(stamps) - min(stamps) <= (interval + MARGIN_MS) / 1000.0
    print("\n200 checks: max latency %.1f ms" % max(c["latency_ms"] for c in second.values()))


def test_persistent_session_is_reused_and_replaced(mariadb, start_healthd):
    hd = start_healthd(config(mysql_check(mariadb, persistent=True)))
    wait_check(hd, is_kind("ok"))
    before = counters(mariadb)
    first = check_json(hd)["last_checked"]
    wait_until(lambda: check_json(hd)["last_checked"] != first, 3, what="a later attempt")
    time.sleep(1.0)  # about three more attempts on the same session
    after = counters(mariadb)
    assert after["Connections"] - before["Connections"] == 1  # counters() only
    assert "(persistent session)" in check_json(hd)["detail"]

    ids = mariadb.sql("SELECT id FROM information_schema.processlist WHERE user = 'healthd'")
    assert len(ids) == 1
    mariadb.sql("KILL %s" % ids[0][0])
    wait_until(lambda: "persistent session to" in hd.log(), 3, what="the lost session to be noticed")
    c = wait_check(hd, lambda c: "(persistent session)" in c["detail"])
    assert c["status"] == "up" and c["consecutive_failures"] == 0  # replaced within the same attempt

    # removing the check closes its session with COM_QUIT
    before = counters(mariadb)
    hd.write_config(config(mysql_check(mariadb, "other")))
    hd.signal(signal.SIGHUP)
    wait_check(hd, is_kind("ok"), "other")
    wait_until(lambda: not mariadb.sql("SELECT id FROM information_schema.processlist WHERE user = 'healthd' "
                                       "AND command = 'Sleep' AND time > 0"), 3, what="the session closed")
    assert counters(mariadb)["Aborted_clients"] == before["Aborted_clients"]


# --------------------------------------------------------------------------- secrets and configuration

SECRET = "Xyzzy-S3cret-4711"
WRONG = "Plugh-Wr0ng-0815"


def test_password_never_in_output(mariadb, start_healthd, workdirs):
    mariadb.sql("CREATE USER IF NOT EXISTS 'pwcheck'@'%%' IDENTIFIED BY '%s'" % SECRET)
    d = workdirs.new("pw")
    pw_file = os.path.join(d, "pw")
    with open(pw_file, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(pw_file, 0o600)
    try:
        hd = start_healthd(config(
            mysql_check(mariadb, "inline", user="pwcheck", password=SECRET),
            mysql_check(mariadb, "wrong", user="pwcheck", password=WRONG),
            {"name": "file", "type": "mysql", "host": mariadb.host, "port": mariadb.port, "user": "pwcheck",
             "password_file": pw_file}), extra_args=["--debug"])
        wait_check(hd, is_kind("ok"), "inline")
        wait_check(hd, is_kind("ok"), "file")
        wait_check(hd, is_kind("auth"), "wrong")
        hd.signal(signal.SIGHUP)
        wait_until(lambda: "reload:" in hd.log(), 3, what="the reload")
        seen = [hd.get(p)[2].decode() for p in ("/health", "/health/inline", "/health/wrong", "/health/file",
                                                 "/ready", "/live")]
        seen.append(hd.agent())
        rc, out, err = run_healthd(["--check-config", "--config", hd.config_path])
        assert rc == 0
        seen += [out, err, hd.log()]
        for text in seen:
            assert SECRET not in text and WRONG not in text
    finally:
        mariadb.sql("DROP USER IF EXISTS 'pwcheck'@'%'")


def test_readable_password_warnings(mariadb, start_healthd, workdirs):
    d = workdirs.new("pwmode")
    pw_file = os.path.join(d, "pw")
    with open(pw_file, "w") as f:
        f.write(mariadb.password)
    # a config file with a password, mode 644 (the harness writes it with umask 022)
    hd = start_healthd(config(mysql_check(mariadb)))
    assert os.stat(hd.config_path).st_mode & 0o777 == 0o644
    wait_until(lambda: "holds a password and is readable by others (mode 644)" in hd.log(), 3,
               what="the config-file warning")
    # a password file readable by everyone
    os.chmod(pw_file, 0o644)
    check = mysql_check(mariadb, password_file=pw_file)
    del check["password"]
    hd2 = start_healthd(config(check))
    wait_check(hd2, is_kind("ok"))
    assert "is readable by everyone (mode 644)" in hd2.log()
    assert "holds a password" not in hd2.log()
    # mode 600 for both: quiet
    os.chmod(pw_file, 0o600)
    old = os.umask(0o077)
    try:
        hd3 = start_healthd(config(check))
    finally:
        os.umask(old)
    wait_check(hd3, is_kind("ok"))
    assert "readable" not in hd3.log()


def test_password_file_is_read_again_on_reload(mariadb, start_healthd, workdirs):
    d = workdirs.new("pwreload")
    pw_file = os.path.join(d, "pw")
    with open(pw_file, "w") as f:
        f.write("an-old-password\n")
    os.chmod(pw_file, 0o600)
    check = mysql_check(mariadb, password_file=pw_file)
    del check["password"]
    hd = start_healthd(config(check))
    wait_check(hd, is_kind("auth"))
    with open(pw_file, "w") as f:
        f.write(mariadb.password + "\n")
    hd.signal(signal.SIGHUP)
    wait_check(hd, is_kind("ok"))
    assert "check db: changed, restarted" in hd.log()


@pytest.mark.parametrize("extra, message", [
    ({"password_file": "/nonexistent"}, "give password or password_file, not both"),
    ({"ca": "/etc/hostname"}, "ca verifies the server's certificate, which needs \"tls\": \"required\""),
    ({"tls": "maybe"}, "expected one of \"off\", \"preferred\", \"required\", got \"maybe\""),
    ({"expect_value": "<= five"}, 'checks["db"].expect_value: "<= five": a comparison needs a decimal number after '
                                  'the operator'),
    ({"expect_rows": ">= many"}, 'checks["db"].expect_rows: ">= many": a comparison needs a decimal number'),
    ({"expect_rows": "ten"}, 'checks["db"].expect_rows: "ten": a row count compares with a number, not a string'),
    ({"expect_rows": -1}, 'checks["db"].expect_rows: expected a row count 0..1000000000, got -1'),
    ({"available_when_donor": True}, 'checks["db"].available_when_donor: this judges a Galera node\'s state, '
                                     'which needs "galera": true'),
    ({"expect_rows": True}, 'checks["db"].expect_rows: expected a row count or a comparison such as ">= 1", got'),
    ({"min_cert_days": 14}, 'checks["db"].min_cert_days: min_cert_days needs "tls": "preferred" or "required" (a '
                            'plain session has no certificate)'),
])
def test_configuration_errors(workdirs, extra, message):
    d = workdirs.new("cfg")
    path = os.path.join(d, "healthd.json")
    check = {"name": "db", "type": "mysql", "host": "127.0.0.1", "user": "u", "password": "p"}
    check.update(extra)
    with open(path, "w") as f:
        json.dump({"checks": [check]}, f, indent=1)
    rc, out, err = run_healthd(["--check-config", "--config", path])
    assert rc == 2
    assert err.startswith(path + ":") and message in err, err


# --------------------------------------------------------------------------- TLS

def make_certs(d):
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=healthd test " + ca,
                "-keyout", os.path.join(d, ca + ".key"), "-out", os.path.join(d, ca + ".pem"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=db.test", "-keyout", os.path.join(d, "server.key"),
            "-out", os.path.join(d, "server.csr"))
    openssl("x509", "-req", "-days", "2", "-in", os.path.join(d, "server.csr"), "-CA", os.path.join(d, "ca.pem"),
            "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial", "-out", os.path.join(d, "server.pem"))
    return {name: os.path.join(d, name + ".pem") for name in ("ca", "other-ca", "server")}


def test_tls(mariadb, start_mariadb, start_healthd, workdirs):
    d = workdirs.new("tls")
    certs = make_certs(d)
    tls_db = start_mariadb(extra_args=["--ssl-cert=" + certs["server"], "--ssl-key=" + os.path.join(d, "server.key"),
                                       "--ssl-ca=" + certs["ca"]])
    hd = start_healthd(config(
        mysql_check(mariadb, "plain_required", tls="required"),
        mysql_check(tls_db, "required", tls="required"),
        mysql_check(tls_db, "required_ca", tls="required", ca=certs["ca"]),
        mysql_check(tls_db, "wrong_ca", tls="required", ca=certs["other-ca"]),
        mysql_check(tls_db, "preferred", tls="preferred"),
        mysql_check(tls_db, "expiring", tls="required", min_cert_days=14),
        mysql_check(tls_db, "not_expiring", tls="preferred", min_cert_days=1),
        interval=500, timeout=400))
    c = wait_check(hd, is_kind("tls"), "plain_required")
    assert "does not offer TLS" in c["detail"]
    for name in ("required", "required_ca", "preferred"):
        c = wait_check(hd, is_kind("ok"), name)
        assert " over TLS: " in c["detail"], (name, c)
    c = wait_check(hd, is_kind("tls"), "wrong_ca")
    assert "self-signed certificate in certificate chain" in c["detail"]
    c = wait_check(hd, is_kind("tls"), "plain_required")
    assert "cert" not in c, c  # no TLS, no certificate

    # the certificate of the session (Connector/C 3.3 through its OpenSSL handle), in /health and /metrics
    out = subprocess.run(["openssl", "x509", "-in", certs["server"], "-noout", "-enddate"], check=True,
                         capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    not_after = calendar.timegm(time.strptime(out, "%b %d %H:%M:%S %Y GMT"))
    # Whole days from the moment the result was rendered: the certificate was made seconds ago with -days 2, so
    # that is 1, or 2 when the check ran within the second the certificate was made.
    days = (not_after - int(time.time())) // 86400
    for name in ("required", "required_ca", "preferred", "not_expiring"):
        c = wait_check(hd, is_kind("ok"), name)
        assert c["cert"]["days_left"] in (days, days + 1), c
        assert c["cert"] == {"subject": "CN=db.test", "issuer": "CN=healthd test ca", "days_left": c["cert"]["days_left"],
                             "not_after": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(not_after))}, c
    c = wait_check(hd, is_kind("threshold"), "expiring")
    left = c["cert"]["days_left"]
    assert left in (days, days + 1), c
    assert c["detail"] == "certificate for expiring expires in %d day%s (%s), below 14 (%s)" % (
        left, "" if left == 1 else "s", time.strftime("%Y-%m-%d", time.gmtime(not_after)), c["address"]), c
    _, _, body = hd.get("/metrics")
    assert '\nhealthd_check_cert_expiry_timestamp_seconds{check="required"} %d\n' % not_after in body.decode()
