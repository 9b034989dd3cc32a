"""Integration-test harness for healthd: real servers (MariaDB, Redis, HAProxy,
Alertmanager), small helper peers, network namespaces, and the daemon itself.

The pytest fixtures live in tests/integration/conftest.py; this package holds the plain
classes and helpers they build on, usable without pytest too.  See the module
docstrings (netns.py explains how tests reach processes inside a namespace).
"""

from .util import (HarnessError, free_port, wait_until, http_request, open_connection,
                   parse_hostport, CIDict, WorkDirs, registered_pids, kill_registered, mounted_fstype, unmount)
from .netns import NetNS, Lan, Link, make_veth
from .healthd import Healthd, run_healthd, healthd_bin, REPO
from .mariadb import MariaDB, MariaDBTemplate, CHECK_USER, CHECK_PASSWORD
from .redis import Redis
from .haproxy import HAProxy
from .alertmanager import Alertmanager
from .prometheus import Prometheus
from .servers import TcpListener, HttpApp, TcpProxy, WebhookReceiver

__all__ = [
    "HarnessError", "free_port", "wait_until", "http_request", "open_connection",
    "parse_hostport", "CIDict", "WorkDirs", "registered_pids", "kill_registered", "mounted_fstype", "unmount",
    "NetNS", "Lan", "Link", "make_veth",
    "Healthd", "run_healthd", "healthd_bin", "REPO",
    "MariaDB", "MariaDBTemplate", "CHECK_USER", "CHECK_PASSWORD",
    "Redis", "HAProxy", "Alertmanager", "Prometheus",
    "TcpListener", "HttpApp", "TcpProxy", "WebhookReceiver",
]
