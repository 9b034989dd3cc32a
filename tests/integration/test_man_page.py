"""The manual page as man renders it: groff finds nothing to warn about, it covers every command `healthd --help`
lists and every HTTP endpoint, and its HAProxy example is a configuration HAProxy accepts."""
import os
import re
import subprocess

from harness import free_port
from harness.healthd import REPO, healthd_bin

MAN_PAGE = os.path.join(REPO, "man/healthd.8")


def render(width=80):
    cp = subprocess.run(["man", "--warnings", "-l", MAN_PAGE], capture_output=True, text=True, timeout=30,
                        env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH=str(width), LC_ALL="C.UTF-8"))
    assert cp.returncode == 0, cp.stderr
    return cp.stdout, cp.stderr


def section(text, title):
    """The rendered section TITLE: from its heading (flush left) to the next heading."""
    match = re.search(r"^%s\n(.*?)(?=^\S)" % re.escape(title), text, re.M | re.S)
    assert match, "no section %s in the rendered page" % title
    return match.group(1)


def prose(text):
    """TEXT as one line: hyphenated line ends joined, runs of blanks made one."""
    return re.sub(r"\s+", " ", re.sub("\u2010\n\\s*", "", text))


def test_groff_warns_about_nothing_at_80_columns():
    _, warnings = render(80)
    assert warnings == "", warnings


def test_synopsis_has_every_command_of_the_usage():
    usage = subprocess.run([healthd_bin(), "--help"], capture_output=True, text=True, check=True).stdout
    commands = set(re.findall(r"^(?:usage:)?\s+healthd (ctl|check|diff|fleet)\b", usage, re.M))
    assert commands == {"ctl", "check", "diff", "fleet"}, usage
    synopsis = section(render(200)[0], "SYNOPSIS")
    for command in commands:
        assert re.search(r"^\s+healthd %s\b" % command, synopsis, re.M), (command, synopsis)
    for option in ("--json", "--format table|json|nagios", "BEFORE.json AFTER.json", "--dot", "--inventory FILE"):
        assert option in synopsis, option


def test_endpoints_alerts_and_the_agent_line_are_described():
    text = render(200)[0]
    endpoints = section(text, "ENDPOINTS")
    for url in ("/health", "/health/NAME", "/ready", "/ready/deps", "/live", "/metrics", "/", "/history", "/graph"):
        assert re.search(r"^\s+%s(\s|$)" % re.escape(url), endpoints, re.M), url  # a tag of its own
    alerts = prose(section(text, "ALERTS"))
    for word in ("/var/lib/healthd/alerts", "generic", "alertmanager", "slack", "regression", "recovery",
                 "reminder", "alerts.repeat_interval_s", "alerts.min_gap_s", "alerts.retry_initial_ms"):
        assert word in alerts, word
    agent = section(text, "AGENT-CHECK")
    for line in ("up 100%", "up 50% #NAME KIND", "down #NAME KIND", "drain", "maint", "ready"):
        assert line in agent, line
    assert "/var/lib/healthd/alerts" in section(text, "FILES")


def test_the_haproxy_example_passes_haproxy_c(tmp_path):
    examples = section(render(200)[0], "EXAMPLES")
    block = examples.split("The HAProxy side", 1)[1]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("backend "))
    backend = []
    for line in lines[start:]:
        if not line.strip():
            break
        backend.append(line.strip())
    assert any(" weight 100" in line for line in backend), backend
    assert not any(line.endswith("\\") for line in backend), "HAProxy has no line continuation: %s" % backend
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("global\n    log stdout format raw local0\n"
                   "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n" +
                   ("frontend fe\n    bind 127.0.0.1:%d\n    default_backend app\n" % free_port()) +
                   backend[0] + "\n" + "".join("    %s\n" % line for line in backend[1:]))
    cp = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    print("the man page's example:\n%s\nhaproxy -c: %s" % ("\n".join(backend), (cp.stdout + cp.stderr).strip()))
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "[WARNING]" not in cp.stdout + cp.stderr, cp.stdout + cp.stderr
