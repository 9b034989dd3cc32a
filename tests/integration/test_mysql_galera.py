"""The mysql check's galera keys against a real single-node Galera cluster (MariaDB 10.11 with galera-4)."""

from harness import free_port

from test_mysql import config, is_kind, mysql_check, wait_check

GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"


def galera_args():
    return ["--binlog-format=ROW", "--innodb-autoinc-lock-mode=2", "--wsrep-on=ON",
            "--wsrep-provider=" + GALERA_PROVIDER, "--wsrep-cluster-address=gcomm://",
            "--wsrep-node-address=127.0.0.1", "--wsrep-sst-method=rsync",
            "--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:%d" % free_port()]


def status(db, name):
    return db.sql("SHOW GLOBAL STATUS LIKE '%s'" % name)[0][1]


def test_galera_synced_desynced_and_read_only(start_mariadb, start_healthd):
    node = start_mariadb(extra_args=galera_args())
    plain = start_mariadb()
    hd = start_healthd(config(mysql_check(node, galera=True),
                              mysql_check(node, "donor_ok", galera=True, available_when_donor=True),
                              mysql_check(node, "ro_ok", galera=True, available_when_readonly=True),
                              mysql_check(plain, "plain", galera=True)))
    c = wait_check(hd, is_kind("ok"), timeout=20)
    assert status(node, "wsrep_local_state") == "4"
    assert "galera: wsrep_local_state 4 (Synced), Primary, read_only 0" in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("threshold"), "plain")
    assert c["status"] == "down"
    assert "galera: 127.0.0.1:%d is not a Galera node (wsrep_on 0)" % plain.port in c["detail"], c["detail"]

    node.sql("SET GLOBAL wsrep_desync=ON")
    c = wait_check(hd, is_kind("threshold"), timeout=10)
    assert c["status"] == "down"
    assert status(node, "wsrep_local_state") == "2"
    assert ("galera: wsrep_local_state 2 (Donor/Desynced), expected 4 (Synced); available_when_donor accepts 2"
            in c["detail"]), c["detail"]
    c = wait_check(hd, lambda c: "Donor/Desynced" in c["detail"], "donor_ok")
    assert c["kind"] == "ok" and c["status"] == "up", c
    assert "galera: wsrep_local_state 2 (Donor/Desynced), Primary" in c["detail"], c["detail"]
    node.sql("SET GLOBAL wsrep_desync=OFF")
    wait_check(hd, is_kind("ok"), timeout=10)

    node.set_read_only(True)
    c = wait_check(hd, is_kind("threshold"))
    assert ("galera: 127.0.0.1:%d is read-only (@@global.read_only=1), expected writable; "
            "available_when_readonly accepts it" % node.port) in c["detail"], c["detail"]
    c = wait_check(hd, is_kind("ok"), "ro_ok")
    assert "read_only 1" in c["detail"], c["detail"]
    wait_check(hd, is_kind("threshold"), "donor_ok")
    node.set_read_only(False)
    wait_check(hd, is_kind("ok"))
