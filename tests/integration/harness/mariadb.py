"""MariaDB servers for the tests.

A pristine data directory is initialised once per session (mariadb-install-db, about
0.5 s) by MariaDBTemplate and copied for every server.  A server:

    db = MariaDB(workdir, template, netns=None, bind="127.0.0.1", log_bin=False)
    db.start()      # first start also creates the check users
    db.sql("select 1") -> [("1",)]       (mariadb -N -B, as root over TCP)
    db.status("Connections") -> int
    db.stop(); db.start()                (same port, same datadir)

Users: root (no password, from 127.0.0.1/localhost), `healthd`@`%` and
`healthd`@`localhost` with password "hd-secret" and GRANT USAGE only (give more with
grants=("REPLICA MONITOR",) or db.sql("GRANT ...")).  With log_bin=True a `repl`@`%`
user (password "repl-secret", REPLICATION SLAVE) exists too, and .make_replica_of()
points another server at this one.  User creation is not written to the binlog.
"""

import os
import shutil
import subprocess
import threading

from .proc import ManagedProcess
from .util import HarnessError, free_port, wait_until, connect_host

CHECK_USER = "healthd"
CHECK_PASSWORD = "hd-secret"
REPL_USER = "repl"
REPL_PASSWORD = "repl-secret"

# settings shared by install and server (the redo log size must match to skip a resize)
COMMON_ARGS = ["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M"]

_server_ids = iter(range(1, 1 << 30))
_server_id_lock = threading.Lock()


def _next_server_id():
    with _server_id_lock:
        return next(_server_ids)


class MariaDBTemplate:
    """A freshly initialised datadir, created once and copied for each server."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.datadir = os.path.join(workdir, "data")
        self._ready = False
        self._lock = threading.Lock()

    def ensure(self):
        with self._lock:
            if self._ready:
                return self.datadir
            cmd = ["mariadb-install-db", "--no-defaults", "--datadir=" + self.datadir,
                   "--auth-root-authentication-method=normal", "--skip-test-db",
                   "--user=root"] + COMMON_ARGS
            cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if cp.returncode != 0:
                raise HarnessError("mariadb-install-db failed (rc=%d):\n%s\n%s"
                                   % (cp.returncode, cp.stdout[-3000:], cp.stderr[-3000:]))
            self._ready = True
            return self.datadir

    def copy_to(self, dest):
        shutil.copytree(self.ensure(), dest, symlinks=True)


class MariaDB(ManagedProcess):
    kind = "mariadbd"
    expect = "mariadbd"
    start_timeout = 30.0

    user = CHECK_USER
    password = CHECK_PASSWORD

    def __init__(self, workdir, template, netns=None, port=None, bind="127.0.0.1",
                 log_bin=False, server_id=None, extra_args=(), grants=()):
        super().__init__(workdir, netns)
        self.template = template
        self.datadir = os.path.join(workdir, "data")
        self.socket = os.path.join(workdir, "sock")
        self.pid_file = os.path.join(workdir, "pid")
        self.port = port or free_port()
        self.bind = bind
        self.host = connect_host(bind)
        self.log_bin = log_bin
        self.server_id = server_id or _next_server_id()
        self.extra_args = list(extra_args)
        self.grants = list(grants)
        self.initialised = False
        self.primary = None

    def _argv(self):
        argv = ["mariadbd", "--no-defaults", "--datadir=" + self.datadir,
                "--socket=" + self.socket, "--port=%d" % self.port,
                "--bind-address=" + self.bind, "--user=root",
                "--pid-file=" + self.pid_file, "--skip-name-resolve",
                "--max-connections=500", "--server-id=%d" % self.server_id] + COMMON_ARGS
        if self.log_bin:
            argv += ["--log-bin=" + os.path.join(self.datadir, "binlog"),
                     "--binlog-format=ROW"]
        else:
            argv += ["--skip-log-bin"]
        argv += ["--relay-log=" + os.path.join(self.datadir, "relay")]
        return argv + self.extra_args

    def _ready(self):
        cp = self._client(["-e", "select 1"], timeout=5, check=False)
        return cp.returncode == 0

    def start(self, timeout=None):
        if not os.path.isdir(self.datadir):
            self.template.copy_to(self.datadir)
        super().start(timeout)
        if not self.initialised:
            self._create_users()
            self.initialised = True
        return self

    def stop(self, timeout=30.0):
        return super().stop(timeout)

    def close(self):
        self.stop(timeout=15)

    def _create_users(self):
        stmts = ["SET sql_log_bin=0"]
        for host in ("%", "localhost"):
            u = "'%s'@'%s'" % (CHECK_USER, host)
            stmts.append("CREATE USER IF NOT EXISTS %s IDENTIFIED BY '%s'" % (u, CHECK_PASSWORD))
            stmts.append("GRANT USAGE ON *.* TO %s" % u)
            for g in self.grants:
                stmts.append("GRANT %s ON *.* TO %s" % (g, u))
        if self.log_bin:
            stmts.append("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'"
                         % (REPL_USER, REPL_PASSWORD))
            stmts.append("GRANT REPLICATION SLAVE ON *.* TO '%s'@'%%'" % REPL_USER)
        self.sql("; ".join(stmts))

    # -- client
    def _client(self, args, timeout=30, check=True, user="root", password=None, database=None):
        argv = ["mariadb", "--no-defaults", "-u" + user, "-h" + self.host,
                "-P%d" % self.port, "--protocol=TCP", "--connect-timeout=3"]
        if password is not None:
            argv.append("-p" + password)
        if database:
            argv.append("-D" + database)
        argv += args
        if self.netns is not None:
            argv = self.netns.wrap(argv)
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError("mariadb client timed out after %ss: %s" % (timeout, args)) from exc
        if check and cp.returncode != 0:
            raise HarnessError("mariadb client failed (rc=%d) on %s: %s"
                               % (cp.returncode, args, cp.stderr.strip()))
        return cp

    def sql(self, stmt, user="root", password=None, database=None, timeout=30):
        """Run SQL (several statements separated by ';' allowed) -> the rows of every
        result set, as a list of tuples of str (NULL comes back as "NULL"; tabs and
        newlines inside values come back escaped, as mariadb -B prints them)."""
        cp = self._client(["-N", "-B", "-e", stmt], timeout=timeout, user=user,
                          password=password, database=database)
        return [tuple(line.split("\t")) for line in cp.stdout.splitlines()]

    def query(self, stmt, **kw):
        """Like sql() but -> list of dicts keyed by column name."""
        cp = self._client(["-B", "-e", stmt], **kw)
        lines = cp.stdout.splitlines()
        if not lines:
            return []
        cols = lines[0].split("\t")
        return [dict(zip(cols, line.split("\t"))) for line in lines[1:]]

    def try_login(self, user=CHECK_USER, password=CHECK_PASSWORD):
        """(ok, error text) for a login as `user`."""
        cp = self._client(["-N", "-B", "-e", "select current_user()"], check=False,
                          user=user, password=password, timeout=10)
        return cp.returncode == 0, cp.stderr.strip()

    def status(self, var):
        rows = self.sql("SHOW GLOBAL STATUS LIKE '%s'" % var)
        if not rows:
            raise HarnessError("no status variable %s" % var)
        return int(rows[0][1])

    def variable(self, var):
        rows = self.sql("SHOW GLOBAL VARIABLES LIKE '%s'" % var)
        return rows[0][1] if rows else None

    def set_read_only(self, on=True):
        self.sql("SET GLOBAL read_only=%s" % ("ON" if on else "OFF"))

    # -- replication
    def master_status(self):
        rows = self.query("SHOW MASTER STATUS")
        if not rows:
            raise HarnessError("server on port %d has no binary log (start it with log_bin=True)"
                               % self.port)
        return rows[0]["File"], int(rows[0]["Position"])

    def make_replica_of(self, primary, primary_host=None, timeout=20.0):
        """Replicate from `primary` (a MariaDB started with log_bin=True) starting at its
        current binlog position.  primary_host: the address this server uses to reach
        the primary (default primary.host; give the primary's LAN address across
        namespaces)."""
        if not primary.log_bin:
            raise HarnessError("the primary must be started with log_bin=True")
        f, pos = primary.master_status()
        host = primary_host or primary.host
        self.sql("STOP SLAVE; CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, "
                 "MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_LOG_FILE='%s', "
                 "MASTER_LOG_POS=%d, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=no; START SLAVE"
                 % (host, primary.port, REPL_USER, REPL_PASSWORD, f, pos))
        self.primary = primary

        def running():
            st = self.replica_status()
            return st.get("Slave_IO_Running") == "Yes" and st.get("Slave_SQL_Running") == "Yes"

        wait_until(running, timeout, interval=0.1,
                   what="replica on port %d to connect to its primary" % self.port)

    def replica_status(self):
        rows = self.query("SHOW SLAVE STATUS")
        return rows[0] if rows else {}

    def seconds_behind(self):
        """Seconds_Behind_Master as int, or None (NULL: not replicating)."""
        v = self.replica_status().get("Seconds_Behind_Master")
        return None if v in (None, "NULL", "") else int(v)

    def set_replication_delay(self, seconds):
        """Delayed replication (MASTER_DELAY): a real, steady replication lag."""
        self.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=%d; START SLAVE" % int(seconds))

    def wait_caught_up(self, timeout=20.0):
        """Wait until this replica executed everything its primary has written so far."""
        f, pos = self.primary.master_status()
        rows = self.sql("SELECT MASTER_POS_WAIT('%s', %d, %d)" % (f, pos, max(1, int(timeout))),
                        timeout=timeout + 10)
        if not rows or rows[0][0] in ("NULL", "-1"):
            raise HarnessError("replica did not reach %s:%d within %ss: %s"
                               % (f, pos, timeout, self.replica_status()))
