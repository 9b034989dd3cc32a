"""`healthd fleet`: every backend's healthd polled at once, one table, a path told from a server, the graph.

Against the incident's sandbox (demo/sandbox.py): three real healthd in their network namespaces, polled from
the ops host. be2 is cut from MySQL by a DROP on the firewall, then healthd on be3 is stopped: the table, the
summary's "on be2 only", the exit code, --json, the DOT rendered by Graphviz with the red edge where it belongs,
and the Diagrams script run by Python with the real Diagrams library. Then, on loopback, healthd-shaped servers that are not healthd:
garbage, foreign JSON, a huge body, a slow drip, a status-only answer. Each is a row of its own, never a crash.
"""

import json
import os
import py_compile
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from harness import REPO, free_port, healthd_bin, run_healthd, wait_until
from core_common import config, sanitizer_reports, tcp_check  # noqa: F401 (autouse)

sys.path.insert(0, os.path.join(REPO, "demo"))

import sandbox as sbx  # noqa: E402

URLS = ["http://%s:9110" % sbx.ADDR[b] for b in sbx.BACKENDS]


@pytest.fixture(scope="module")
def sandbox():
    sb = sbx.Sandbox(fast=True)
    try:
        try:
            sb.start()
        except Exception as exc:
            raise AssertionError("%s\n%s" % (exc, sb.failure_logs)) from None
        yield sb
    finally:
        sb.close()


def fleet(sb, *args, timeout=20):
    """healthd fleet ARGS from the ops host -> (rc, stdout, stderr)."""
    return run_healthd(["fleet"] + list(args), timeout=timeout, netns=sb.ns["ops"])


def json_view(sb, *args):
    rc, out, err = fleet(sb, "--json", *args)
    return rc, json.loads(out), err


def test_all_up_exits_0_with_every_check_of_every_backend(sandbox):
    rc, view, _ = wait_until(lambda: (lambda r: r if r[0] == 0 else None)(json_view(sandbox, *URLS)), 15,
                             interval=0.3, what="every check of every backend up")
    assert view["format"] == "healthd-fleet" and view["status"] == "up" and view["exit"] == 0
    assert sorted(b["node"] for b in view["backends"]) == ["be1", "be2", "be3"]
    assert all(b["answered"] for b in view["backends"])
    assert {(r["node"], r["check"]) for r in view["rows"]} == {(b, c) for b in sbx.BACKENDS
                                                               for c in ("mysql", "redis", "app")}
    mysql = [d for d in view["dependencies"] if d["target"] == "%s:3306" % sbx.ADDR["db"]]
    assert len(mysql) == 1, view["dependencies"]  # merged: three backends check the same target
    assert sorted(mysql[0]["checked_by"]) == ["be1", "be2", "be3"] and mysql[0]["verdict"] == "up"
    # Each backend checks its own application on 127.0.0.1:8080: the same name, three servers, never merged.
    apps = [d for d in view["dependencies"] if "127.0.0.1:8080" in d["target"]]
    assert sorted(tuple(d["checked_by"]) for d in apps) == [("be1",), ("be2",), ("be3",)], apps
    assert view["summary"] == []


def test_a_drop_on_be2_is_the_path_from_be2_and_a_stopped_healthd_a_row_of_its_own(sandbox, tmp_path):
    sb = sandbox
    sb.firewall("be2", "mysql", "drop")
    try:
        def be2_mysql_down():
            rc, view, _ = json_view(sb, *URLS)
            rows = [r for r in view["rows"] if r["failing"]]
            return (rc, view) if [(r["node"], r["check"]) for r in rows] == [("be2", "mysql")] else None

        rc, view = wait_until(be2_mysql_down, 20, interval=0.3, what="be2's mysql down, nothing else")
        assert rc == 2 and view["status"] == "down"
        assert view["rows"][0]["node"] == "be2" and view["rows"][0]["kind"] == "timeout"  # failing rows first
        assert view["rows"][0]["source_addr"] == sbx.ADDR["be2"]
        mysql = [d for d in view["dependencies"] if d["target"] == "%s:3306" % sbx.ADDR["db"]][0]
        assert mysql["verdict"] == "path" and mysql["down_on"] == ["be2"]
        assert mysql["summary"] == view["summary"][0]
        assert mysql["summary"] == ("mysql 10.77.2.10:3306: down on be2 only (timeout, from 10.77.1.12), up on be1, be3"
                                    " — the path from be2, not the server"), mysql["summary"]

        rc, table, err = fleet(sb, *URLS)
        assert rc == 2, err
        lines = table.splitlines()
        assert lines[0].split() == ["NODE", "CHECK", "STATUS", "KIND", "DETAIL", "SINCE"]
        assert lines[1].split()[:4] == ["be2", "mysql", "down", "timeout"]  # failing first
        assert mysql["summary"] in table
        assert "result: a critical check is down (exit 2)" in table

        rc, dot, _ = fleet(sb, "--dot", *URLS)
        assert rc == 2
        red = [ln for ln in dot.splitlines() if "->" in ln and "color=red" in ln]
        assert len(red) == 1 and "mysql: timeout: silently dropped (firewall DROP?)" in red[0], dot
        be2 = re.search(r'"(b\d+)" \[label="be2', dot).group(1)
        assert red[0].strip().startswith('"%s" -> ' % be2)
        assert len([ln for ln in dot.splitlines() if "->" in ln and "darkgreen" in ln]) == 8
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30)
        assert svg.returncode == 0 and svg.stderr == "" and "<svg" in svg.stdout, svg.stderr
        (tmp_path / "fleet.svg").write_text(svg.stdout)

        # --html: the table on stdout as before, and the page with the graph drawn by Graphviz, inline.
        page_path = "/tmp/hdt-fleet-%d.html" % os.getpid()
        try:
            rc, table2, _ = fleet(sb, "--html", page_path, *URLS)
            assert rc == 2 and table2.splitlines()[0] == lines[0]
            with open(page_path) as f:
                page = f.read()
        finally:
            if os.path.exists(page_path):
                os.unlink(page_path)
        assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
        assert page.count("<svg") == 1 and "silently dropped (firewall DROP?)" in page
        assert "<script" not in page and "http://" not in page.split("<svg")[0].replace(
            "http://10.77.1.1", "")  # nothing to fetch: everything inline
        assert html_text(mysql["summary"]) in page
        first = re.search(r'<table id="rows">.*?</tr>\n(<tr.*?</tr>)', page, re.S).group(1)
        assert first.startswith('<tr class="down"><td>be2</td><td>mysql</td>'), first

        # Each healthd serves its own part of the graph at /graph: be2's has the red edge, be1's has none.
        rc, out, _ = run_healthd(["fleet", "--dot", URLS[1]], netns=sb.ns["ops"])
        be2_graph = http_get(sb, URLS[1] + "/graph")
        assert be2_graph[0] == 200 and "digraph" in be2_graph[1]
        assert [ln for ln in be2_graph[1].splitlines() if "color=red" in ln and "->" in ln] == \
            [ln for ln in out.splitlines() if "color=red" in ln and "->" in ln]
        be1_graph = http_get(sb, URLS[0] + "/graph")
        assert be1_graph[0] == 200 and "color=red" not in be1_graph[1]
        assert subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=be2_graph[1], text=True,
                              timeout=30).returncode == 0

        rc, script, _ = fleet(sb, "--diagrams", *URLS)
        assert rc == 2 and "from diagrams import Diagram, Edge" in script
        path = tmp_path / "fleet_diagram.py"
        path.write_text(script)
        py_compile.compile(str(path), doraise=True)
        # ... and the Diagrams library (Debian's python3-diagrams) draws it, through Graphviz.
        drawn = subprocess.run(["/usr/bin/python3", str(path)], cwd=str(tmp_path), capture_output=True, text=True,
                               timeout=120)
        assert drawn.returncode == 0, drawn.stderr
        assert (tmp_path / "healthd-fleet.png").stat().st_size > 10000
        assert 'Edge(label="mysql: timeout: silently dropped (firewall DROP?)", color="red"' in script

        # healthd on be3 stops: its row says so, its dependencies are unknown, the verdict counts two.
        sb.kill_healthd("be3")
        try:
            rc, view, _ = json_view(sb, *URLS)
            assert rc == 2
            be3 = [r for r in view["rows"] if r["node"] == "%s:9110" % sbx.ADDR["be3"]]
            assert len(be3) == 1 and be3[0]["type"] == "healthd" and be3[0]["kind"] == "refused", view["rows"]
            assert [b["answered"] for b in view["backends"]] == [True, True, False]
            assert any("10.77.1.13:9110: healthd did not answer (refused)" in s for s in view["summary"])
            mysql = [d for d in view["dependencies"] if d["target"] == "%s:3306" % sbx.ADDR["db"]][0]
            assert mysql["down_on"] == ["be2"] and sorted(mysql["checked_by"]) == ["be1", "be2"]
            assert "(1 backend did not answer)" in mysql["summary"]
        finally:
            sb.restart_healthd("be3")
    finally:
        sb.restore()


def test_down_on_every_backend_is_the_server_itself(sandbox):
    sb = sandbox
    for b in sbx.BACKENDS:
        sb.firewall(b, "redis", "reset")
    try:
        def redis_down_everywhere():
            rc, view, _ = json_view(sb, *URLS)
            deps = [d for d in view["dependencies"] if d["target"] == "%s:6379" % sbx.ADDR["db"]]
            return (rc, deps[0]) if deps and len(deps[0]["down_on"]) == 3 else None

        rc, redis = wait_until(redis_down_everywhere, 20, interval=0.3, what="redis down on all three")
        assert rc == 2 and redis["verdict"] == "server"
        assert "down on all 3 (refused) — the server itself" in redis["summary"], redis["summary"]
    finally:
        sb.restore()


def html_text(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace(
        "'", "&#39;")


def http_get(sb, url):
    """GET url from the ops host -> (status, body)."""
    p = sb.ns["ops"].run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url], check=False)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


def test_the_inventory_of_the_ansible_example(sandbox, tmp_path):
    """`ansible-inventory --list` of an inventory in examples/ansible's shape names the backends to poll."""
    inv = tmp_path / "inventory.yml"
    inv.write_text("backends:\n  hosts:\n" + "".join(
        "    %s:\n      ansible_host: %s\n" % (b, sbx.ADDR[b]) for b in sbx.BACKENDS)
        + "  vars:\n    healthd_listen:\n      http: \"0.0.0.0:9110\"\n      agent: \"0.0.0.0:9111\"\n")
    listing = subprocess.run(["ansible-inventory", "-i", str(inv), "--list"], capture_output=True, text=True,
                             timeout=60, env=dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path)))
    assert listing.returncode == 0, listing.stderr
    (tmp_path / "inventory.json").write_text(listing.stdout)
    rc, view, err = json_view(sandbox, "--inventory", str(tmp_path / "inventory.json"))
    assert sorted(b["node"] for b in view["backends"]) == ["be1", "be2", "be3"], err
    assert sorted(b["url"] for b in view["backends"]) == sorted(u + "/health" for u in URLS)
    rc, _, err = fleet(sandbox, "--inventory", str(tmp_path / "inventory.json"), "--group", "web")
    assert rc == 3 and "no group with hosts by that name" in err
    # The example inventory itself: two hosts, its healthd_listen port.
    example = subprocess.run(["ansible-inventory", "-i", os.path.join(REPO, "examples", "ansible",
                                                                      "inventory.example.yml"), "--list"],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path)))
    assert example.returncode == 0, example.stderr
    rc, out, err = run_healthd(["fleet", "--json", "--timeout-ms", "200", "--inventory", "-"], input=example.stdout)
    urls = [b["url"] for b in json.loads(out)["backends"]]
    assert urls == ["http://web1.example.net:9110/health", "http://web2.example.net:9110/health"], urls


def test_watch_redraws_until_interrupted(sandbox):
    # SIGINT ignored, as in a background job of a script (CI): --watch must still end on Ctrl-C.
    p = subprocess.Popen(sandbox.ns["ops"].wrap([healthd_bin(), "fleet", "--watch=1", URLS[0]]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        time.sleep(2.6)
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    assert p.returncode == 0, "Ctrl-C ends --watch with the last round's exit code: %r" % p.returncode
    assert out.count("NODE  ") >= 2 and out.count("every 1 s; Ctrl-C to stop") >= 2, out


def test_urls_from_a_file_and_usage_errors(sandbox, tmp_path):
    listing = tmp_path / "backends.txt"
    listing.write_text("# the incident's backends\n%s\n\n  %s   # be2\n" % (URLS[0], URLS[1]))
    rc, view, _ = json_view(sandbox, "--from", str(listing), URLS[2])
    assert sorted(b["node"] for b in view["backends"]) == ["be1", "be2", "be3"]
    rc, _, err = fleet(sandbox)
    assert rc == 3 and "no backend" in err
    rc, _, err = fleet(sandbox, "--from", str(tmp_path / "missing.txt"))
    assert rc == 3 and "missing.txt" in err and "No such file" in err
    rc, _, err = fleet(sandbox, "--json", "--dot", URLS[0])
    assert rc == 3 and "choose one" in err
    rc, _, err = fleet(sandbox, "--timeout-ms", "soon", URLS[0])
    assert rc == 3 and "--timeout-ms" in err


# --------------------------------------------------------------------------- not healthd, on loopback

class Peer:
    """A loopback server that answers every connection with `script(conn)`: a stranger posing as healthd."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.script = script
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.settimeout(10)
            conn.recv(4096)
            self.script(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


def http_answer(body, status="200 OK", ctype="application/json"):
    def script(conn, stop):
        conn.sendall(("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % (status, ctype, len(body))).encode() + body)
    return script


def garbage(conn, stop):
    conn.sendall(b"\x00\x01\x02 not http at all \xff\xfe\r\n\r\n")


def huge(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    chunk = b"[" * 65536
    for _ in range(160):  # 10 MiB at most, over the 4 MiB bound
        if stop.is_set():
            return
        conn.sendall(chunk)


def drip(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100):
        if stop.is_set():
            return
        conn.sendall(b"{")
        time.sleep(0.1)


@pytest.fixture
def strangers():
    peers = {
        "garbage": Peer(garbage),
        "foreign": Peer(http_answer(b'{"status": "UP", "components": {"db": {"status": "UP"}}}')),
        "html_404": Peer(http_answer(b"<html>\x1b[31mnot found</html>", "404 Not Found", "text/html")),
        "huge": Peer(huge),
        "drip": Peer(drip),
    }
    yield peers
    for p in peers.values():
        p.close()


def test_strangers_posing_as_healthd_are_rows_of_their_own(strangers, start_healthd):
    closed = free_port()
    # A real healthd that shows this host the status only: a row that says why, not a crash or an empty table.
    hidden = start_healthd(config([tcp_check("db", closed)], http={"details_from": ["10.0.0.0/8"]}))
    t = time.monotonic()
    rc, out, err = run_healthd(["fleet", "--json", "--timeout-ms", "1500"] + [p.url for p in strangers.values()]
                               + ["http://127.0.0.1:%d" % closed, hidden.url()], timeout=20)
    took = time.monotonic() - t
    assert rc == 2, err
    assert took < 5, "the polls run at once, each within its deadline: %.1f s" % took
    view = json.loads(out)
    rows = {r["node"]: r for r in view["rows"]}
    assert len(rows) == 7 and all(r["type"] == "healthd" and r["failing"] for r in rows.values())

    def row(name):
        return rows["127.0.0.1:%d" % strangers[name].port]

    assert row("garbage")["kind"] == "protocol"
    assert row("foreign")["kind"] == "protocol" and "not healthd's /health JSON" in row("foreign")["detail"]
    only = rows["127.0.0.1:%d" % hidden.http_port]
    assert only["kind"] == "protocol" and "http.details_from" in only["detail"], only
    # Its graph names targets and addresses: outside http.details_from it is refused too.
    p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", hidden.url("/graph")], capture_output=True, text=True,
                       timeout=10)
    assert p.stdout.endswith("\n403") and "digraph" not in p.stdout and str(closed) not in p.stdout
    assert row("html_404")["kind"] == "http_status" and "HTTP 404" in row("html_404")["detail"]
    assert "\x1b" not in out and "\\u001b" not in out  # peer bytes never reach the terminal raw
    assert row("huge")["kind"] == "protocol" and "over 4 MiB" in row("huge")["detail"]
    assert row("drip")["kind"] == "timeout" and "no complete answer within 1500 ms" in row("drip")["detail"]
    assert rows["127.0.0.1:%d" % closed]["kind"] == "refused"
    assert view["exit"] == 2 and view["dependencies"] == []


def test_the_table_shows_stranger_bytes_escaped(strangers):
    rc, out, _ = run_healthd(["fleet", strangers["html_404"].url, strangers["garbage"].url], timeout=20)
    assert rc == 2
    assert "\x1b" not in out and "\x00" not in out and "\xff" not in out
    assert "2 backends, 0 answered; 0 checks, 0 down" in out
