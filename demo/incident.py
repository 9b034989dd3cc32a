#!/usr/bin/env python3
"""incident.py: `make demo`: the firewall incident healthd exists for, played and narrated on this machine.

Builds the sandbox of demo/sandbox.py (network namespaces: db, fw, be1..be3, lb, ops), sends users'
traffic through HAProxy, cuts be2 from MySQL at the firewall (DROP, then REJECT, then restored), then
from Redis, then kills healthd on be3, and tells at each step what HAProxy shows, what the central
webhook received and how long each took, next to what the configuration predicts; after the first cut, the
fleet view (`healthd fleet`), its graph (build/demo/fleet.svg) and page (build/demo/fleet.html). Runs as root;
removes every namespace, rule and process at the end, also on Ctrl-C or failure.

Exit status: 0 when everything behaved as narrated, 1 when something did not (the message says what),
2 when the machine cannot run it (not root, a tool missing), 130 when interrupted.
Environment: HEALTHD_BIN (default build/healthd), NO_COLOR (plain output even on a terminal).
"""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sandbox as sbx  # noqa: E402
from scenario import Cut, HealthdCrash  # noqa: E402

TOTAL_LIMIT_S = 300   # the whole demo, cleanup excluded: a hung step cannot keep it running
TRAFFIC_RATE = 20     # users' requests per second through the load balancer
CALM_S = 3.0          # steady traffic watched before each step
OUT_DIR = os.path.join(sbx.REPO, "build", "demo")
FLEET_PAGE = os.path.join(OUT_DIR, "fleet.html")  # `healthd fleet --html` while be2 has lost MySQL
FLEET_SVG = os.path.join(OUT_DIR, "fleet.svg")    # `healthd fleet --dot | dot -Tsvg`, the same moment


class Interrupted(Exception):
    pass


class Out:
    """Plain text, or with a few colors on a terminal; never needs one."""

    def __init__(self):
        self.color = sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb" \
            and not os.environ.get("NO_COLOR")
        self.broken = False

    def _c(self, code, text):
        return "\033[%sm%s\033[0m" % (code, text) if self.color else text

    def bold(self, text):
        return self._c("1", text)

    def red(self, text):
        return self._c("31", text)

    def green(self, text):
        return self._c("32", text)

    def yellow(self, text):
        return self._c("33", text)

    def dim(self, text):
        return self._c("2", text)

    def line(self, text=""):
        if self.broken:
            return
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except OSError:
            # the reader went away (`make demo | head`, or Ctrl-C killed it): keep going, and clean up
            self.broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def heading(self, text):
        self.line()
        self.line(self.bold(text))

    def para(self, text, indent=2, width=100):
        words, cur = text.split(), ""
        for w in words:
            if cur and len(cur) + 1 + len(w) > width - indent:
                self.line(" " * indent + cur)
                cur = w
            else:
                cur = "%s %s" % (cur, w) if cur else w
        if cur:
            self.line(" " * indent + cur)


OUT = Out()


def seconds_range(r):
    return "%.1f to %.1f s" % r


def haproxy_table(sb, indent="    "):
    rows = sb.rows()
    OUT.line(indent + OUT.dim("%-6s %-14s %-7s %-7s %s" % ("server", "status", "weight", "check", "agent says (last_agt)")))
    for name in sbx.BACKENDS:
        r = rows[name]
        status = r["status"]
        shown = OUT.green("%-14s" % status) if status == "UP" else OUT.red("%-14s" % status)
        OUT.line(indent + "%-6s %s %-7s %-7s %s" % (name, shown, r["weight"], r["check_status"], r["last_agt"]))


def traffic_line(sb, since):
    reqs = sb.traffic.requests(since=since)
    ok = [r for r in reqs if r.ok]
    per = ", ".join("%s %d" % (b, sum(r.backend == b for r in ok)) for b in sbx.BACKENDS)
    failed = len(reqs) - len(ok)
    text = "users: %d requests in the last %.0f s, %d answered 200 (%s), %s" % (
        len(reqs), time.time() - since, len(ok), per,
        OUT.red("%d failed" % failed) if failed else "0 failed")
    OUT.line("  " + text)


def webhook_text(body):
    """A generic webhook event as one line: who, what, how, and healthd's own summary."""
    if not isinstance(body, dict):
        return repr(body)[:160]
    text = "%s %s: %s %s" % (body.get("host", "?"), body.get("event", "?"), body.get("check", "?"),
                             body.get("kind", "?"))
    if body.get("source_addr"):
        text += ", from %s" % body["source_addr"]
    if body.get("summary"):
        text += ': "%s"' % body["summary"]
    return text


def haproxy_why(row, previous):
    """What made HAProxy change its mind, in words."""
    status, check, code = row["status"], row.get("check_status", ""), row.get("check_code", "")
    if check == "L4CON":
        return "/ready/deps refused: healthd does not answer"
    if check == "L4TOUT":
        return "/ready/deps: no answer"
    if status.startswith("DOWN (agent)"):
        return 'the agent said "%s"' % row["last_agt"]
    if status == "UP" and previous.startswith("DOWN"):
        return 'the agent says "%s" and /ready/deps answers %s' % (row["last_agt"], code or check)
    return "/ready/deps answered %s" % (code or check)


def event_line(ev, text, style=None):
    """'   +2.92 s  text', long text wrapped under itself (the output may be a narrow terminal or a file)."""
    when = OUT.dim("%9s" % ("+%.2f s" % ev.dt))
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > 86:
            lines.append(cur)
            cur = "         " + word
        else:
            cur = "%s %s" % (cur, word) if cur else word
    lines.append(cur)
    for i, line in enumerate(lines):
        OUT.line("  %s  %s" % (when if i == 0 else " " * 9, style(line) if style else line))


def narrate(ev):
    """One line per thing seen, timed from the step's action."""
    if ev.source == "action":
        event_line(ev, ev.text if ev.text.startswith(("healthd", "rule")) else "rule in place", OUT.bold)
    elif ev.source == "haproxy":
        before, after = ev.text.split(" -> ")
        event_line(ev, "HAProxy  %s: %s -> %s (%s)" % (ev.subject, before, after, haproxy_why(ev.data, before)),
                   OUT.yellow)
    elif ev.source == "healthd":
        body = ev.data
        state, kind = body.get("status"), body.get("kind")
        if state == "up" and kind != "ok":
            what = "%s failed a try (%s), still up until %d in a row" % (body.get("name"), kind, OUT_TIMING["fall"])
        else:
            what = "%s %s (%s)" % (body.get("name"), state, kind)
        event_line(ev, "healthd  on %s: %s: %s" % (ev.subject, what, body.get("detail", "")))
    elif ev.source == "webhook":
        event_line(ev, "webhook  " + webhook_text(ev.data.get("body")), OUT.bold)
    elif ev.source == "users":
        event_line(ev, "users    first failed request: %s" % ev.text, OUT.red)


OUT_TIMING = {"fall": 3}


def calm(sb, seconds=CALM_S):
    t = time.time()
    time.sleep(seconds)
    traffic_line(sb, t)


def expectation_drop(t, service):
    lo, hi = t.healthd_down(True)
    hlo, hhi = t.haproxy_down(True)
    OUT.para("What to expect: healthd on be2 tries %s every %g s (every %g s once a try failed); each try now "
             "gets no answer and fails after %g ms; after %d failures in a row healthd says down (%s after the "
             "rule), and HAProxy "
             "hears it at its next agent poll, every %g s (%s). Meanwhile HAProxy still sends be2 a third "
             "of the traffic, and those users get errors."
             % (service, t.interval_s, t.fastinterval_s, t.timeout_s * 1000, t.fall, seconds_range((lo, hi)),
                t.agent_inter_s,
                seconds_range((hlo, hhi))))


def run_cut(sb, service, step, results):
    t = sb.timing
    port = sbx.SERVICE_PORT[service]
    OUT.heading("Step %d. The firewall upgrade: be2 loses %s (%s:%d)" % (step, service, sbx.ADDR["db"], port))
    OUT.para("The new rule set on fw silently drops what be2 sends to %s; be1 and be3 are not affected:" % service)
    cut = Cut(sb, "be2", service, narrate)
    OUT.line()
    cmd = " ".join(sb.rule_args("be2", service, "drop"))
    OUT.line("    " + OUT.bold("iptables -A " + cmd))
    OUT.line()
    expectation_drop(t, service)
    OUT.line()
    m = cut.cut("drop")
    OUT.line()
    haproxy_table(sb)
    OUT.line()
    OUT.para("be2 is out: HAProxy took it out %.2f s after the rule (predicted %s), and says why. The other "
             "backends carry the traffic." % (m["haproxy_down_s"], seconds_range(m["predicted_haproxy"])))
    if step == 1:
        fleet_view(sb, service)

    OUT.heading("Step %d. A second change on the firewall: REJECT instead of DROP" % (step + 1))
    OUT.line()
    OUT.line("    " + OUT.bold("iptables -A " + " ".join(sb.rule_args("be2", service, "reject"))))
    OUT.line()
    gap = sb.base_config.get("alerts", {}).get("min_gap_s")
    OUT.para("Connections now fail at once with an ICMP error instead of timing out. be2 stays out; the reason "
             "HAProxy shows follows the facts, and the webhook hears of the change too%s."
             % (" (at most one alert per check every min_gap_s = %d s: a flapping check cannot flood it)" % gap
                if gap else ""))
    OUT.line()
    cut.change("reject")
    OUT.heading("Step %d. The rule is removed" % (step + 2))
    lo, hi = t.haproxy_up()
    OUT.para("healthd needs %d good tries in a row (%s), then HAProxy's next agent poll and %d passing "
             "checks of /ready/deps bring be2 back (%s)."
             % (t.rise, seconds_range(t.healthd_up()), t.check_rise, seconds_range((lo, hi))))
    OUT.line()
    cut.restore()
    m = cut.settle()
    OUT.line()
    haproxy_table(sb)
    OUT.line()
    OUT.para("Users: %d requests failed while be2 was still in (sent between the rule and HAProxy taking it "
             "out, %.1f s at %d requests/s, a third of them to be2), %s after."
             % (m["failed_before"], m["haproxy_down_s"], TRAFFIC_RATE,
                OUT.green("none") if m["failed_after"] == 0 else OUT.red("%d" % m["failed_after"])))
    check_cut(sb, m, service)
    results.append((service, m))


def fleet_view(sb, service):
    """What the on-call engineer runs first: every backend's view at once, the path told from the server."""
    OUT.para("On the ops host, the engineer on call asks every backend's healthd at once:")
    OUT.line()
    OUT.line("    " + OUT.bold("healthd fleet --html %s %s" % (os.path.relpath(FLEET_PAGE, sbx.REPO),
                                                             " ".join("http://%s:9110" % sbx.ADDR[b]
                                                                      for b in sbx.BACKENDS))))
    OUT.line()
    os.makedirs(OUT_DIR, exist_ok=True)
    rc, table, err = sb.fleet("--html", FLEET_PAGE)
    for line in table.rstrip("\n").split("\n"):
        OUT.line("    " + (OUT.red(line) if " down " in line or "unreachable" in line else line))
    OUT.line()
    verdict = "%s %s:%d: down on be2 only (timeout, from %s), up on be1, be3 — the path from be2, not the server" % (
        service, sbx.ADDR["db"], sbx.SERVICE_PORT[service], sbx.ADDR["be2"])
    if rc != 2 or verdict not in table:
        raise sbx.SandboxError("healthd fleet did not say that only be2 lost %s (exit %d): %s%s"
                               % (service, rc, table, err))
    rc, dot, err = sb.fleet("--dot")
    drawn = subprocess.run(["dot", "-Tsvg", "-o", FLEET_SVG], input=dot, text=True, capture_output=True,
                           timeout=60)
    if drawn.returncode != 0:
        raise sbx.SandboxError("Graphviz could not draw healthd fleet --dot: %s" % drawn.stderr.strip())
    OUT.para("One verdict per dependency: down on be2 only, so the path from be2 (the firewall), not the "
             "server. The same view as a graph (healthd fleet --dot | dot -Tsvg), the red dashed edge from be2, "
             "and as a page, both written to files named at the end.")


def check_cut(sb, m, service):
    """What the narration claimed, verified: a demo that shows something else fails loudly."""
    problems = []
    if m["last_agt"] != "via agent : down (%s timeout)" % service:
        problems.append("HAProxy's reason was %r, not '%s timeout'" % (m["last_agt"], service))
    if {name for name, _ in m["haproxy_changes"]} != {"be2"}:
        problems.append("HAProxy changed other servers too: %r" % m["haproxy_changes"])
    if m["failed_after"]:
        problems.append("%d requests failed after be2 was taken out: %r" % (m["failed_after"], m["failures_after"]))
    if "alerts" in sb.base_config:
        hosts = {b.get("host") for b in m["webhook_posts"] if isinstance(b, dict)}
        events = [b.get("event") for b in m["webhook_posts"] if isinstance(b, dict)]
        if hosts != {"be2"}:
            problems.append("webhook posts came from %s, not only be2" % sorted(map(str, hosts)))
        if events.count("regression") != 1 or events.count("recovery") != 1:
            problems.append("webhook events were %r, not one regression and one recovery" % events)
    if problems:
        raise sbx.SandboxError("; ".join(problems))


def run_crash(sb, step, results):
    t = sb.timing
    OUT.heading("Step %d. healthd itself dies on be3 (kill -9)" % step)
    OUT.para("An agent that does not answer is ignored by HAProxy, so the agent alone would leave be3 in. "
             "The httpchk on /ready/deps fails closed: %d refused checks take be3 out (%s)."
             % (t.check_fall, seconds_range(t.haproxy_dead_agent())))
    OUT.line()
    crash = HealthdCrash(sb, "be3", narrate)
    crash.kill()
    OUT.line()
    haproxy_table(sb)
    OUT.line()
    OUT.para("be3's application itself was fine; it is out because nothing vouches for its dependencies any "
             "more. healthd is restarted:")
    OUT.line()
    crash.restart()
    m = crash.settle()
    OUT.line()
    if m["failed"]:
        OUT.para("Users: %d of %d requests failed, all of them in flight to be3 at the moment HAProxy took it out "
                 "(haproxy.cfg's on-marked-down shutdown-sessions closes them)." % (m["failed"], m["requests"]))
    else:
        OUT.para("Users: none of %d requests failed." % m["requests"])
    if m["failed"] != m["failed_in_flight_at_down"]:
        raise sbx.SandboxError("after killing healthd on be3, requests failed that were not in flight when "
                               "HAProxy took be3 out: %r" % m["failures"])
    if m["check_status"] != "L4CON" or {n for n, _ in m["haproxy_changes"]} != {"be3"} or m["webhook_posts"]:
        raise sbx.SandboxError("after killing healthd on be3: check %s, HAProxy changes %r, webhook posts %r"
                               % (m["check_status"], m["haproxy_changes"], m["webhook_posts"]))
    results.append(("healthd", m))


def summary(sb, results):
    OUT.heading("Summary (measured on this machine, next to what the configuration predicts)")
    OUT.line("  " + sb.timing.describe())
    OUT.line()
    OUT.line("  " + OUT.dim("%-42s %-16s %s" % ("from -> to", "predicted", "measured")))
    for name, m in results:
        if name == "healthd":
            OUT.line("  %-42s %-16s %.2f s" % ("healthd killed on be3 -> HAProxy DOWN",
                                               seconds_range(m["predicted_haproxy"]), m["haproxy_down_s"]))
            continue
        OUT.line("  %-42s %-16s %.2f s" % ("%s DROP -> healthd on be2 says down" % name,
                                           seconds_range(m["predicted_healthd"]), m["healthd_down_s"]))
        if "webhook_s" in m:
            OUT.line("  %-42s %-16s %.2f s" % ("%s DROP -> webhook received" % name,
                                               seconds_range(m["predicted_healthd"]), m["webhook_s"]))
        OUT.line("  %-42s %-16s %.2f s" % ("%s DROP -> HAProxy takes be2 out" % name,
                                           seconds_range(m["predicted_haproxy"]), m["haproxy_down_s"]))
        OUT.line("  %-42s %-16s %.2f s" % ("%s restored -> be2 back in" % name,
                                           seconds_range(m["predicted_up"]), m["haproxy_up_s"]))
    OUT.line()
    for name, m in results:
        if name != "healthd":
            OUT.line("  %s cut: %d of %d requests failed before be2 was taken out, %d of %d after."
                     % (name, m["failed_before"], m["requests_before"], m["failed_after"], m["requests_after"]))


def intro():
    OUT.line(OUT.bold("healthd demo: a firewall change cuts one backend off its database"))
    OUT.line()
    OUT.para("A network team upgrades a firewall; one of three backend servers loses its path to the main "
             "database; the load balancer keeps sending it traffic, and a third of the users get errors. "
             "With healthd beside each backend, HAProxy takes that backend out within seconds, and the central "
             "webhook says which backend lost which dependency, and how.", indent=0)
    OUT.line()
    OUT.para("This builds that network on this machine out of network namespaces (nothing outside them is "
             "touched, and everything is removed at the end):", indent=0)
    OUT.line()
    for text in (
            "users (ops) --> lb: HAProxy --> be1, be2, be3: application + healthd --> fw --> db: MariaDB, Redis",
            "                                     '--> alerts --> ops: the central webhook",
            None,
            "lb  %s   HAProxy with haproxy/haproxy.cfg (httpchk on /ready/deps, agent-check)" % sbx.ADDR["lb"],
            "be* %s-13  the application :8080 and healthd with examples/incident/be.json" % sbx.ADDR["be1"],
            "fw  %s / %s   the firewall between the two networks" % (sbx.ADDR["fw"], sbx.ADDR["fw-data"]),
            "db  %s   MariaDB :3306, Redis :6379" % sbx.ADDR["db"],
            "ops %s   the webhook receiver :9000, and the users' traffic" % sbx.ADDR["ops"]):
        OUT.line("    " + text if text else "")


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def on_alarm(signum, frame):
    raise sbx.SandboxError("the demo took more than %d s; stopping" % TOTAL_LIMIT_S)


def main():
    problems = sbx.check_environment()
    if problems:
        for p in problems:
            sys.stderr.write("make demo: %s\n" % p)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TOTAL_LIMIT_S)
    intro()
    sb = sbx.Sandbox(fast=os.environ.get("DEMO_FAST") == "1",
                     progress=lambda text: OUT.line("  " + OUT.dim("... " + text)))
    results = []
    status = 0
    try:
        OUT.heading("Building the sandbox")
        t = time.time()
        sb.start()
        OUT_TIMING["fall"] = sb.timing.fall
        OUT.line("  ready in %.1f s. HAProxy's view (echo 'show stat' | socat stdio UNIX-CONNECT:...):" % (time.time() - t))
        OUT.line()
        haproxy_table(sb)
        OUT.line()
        sb.start_traffic(rate=TRAFFIC_RATE)
        OUT.para("Users start sending %d requests per second to lb; each request reads MySQL and Redis on "
                 "the backend that serves it." % TRAFFIC_RATE)
        calm(sb)
        run_cut(sb, "mysql", 1, results)
        calm(sb)
        run_cut(sb, "redis", 4, results)
        calm(sb)
        run_crash(sb, 7, results)
        summary(sb, results)
        OUT.line()
        OUT.line(OUT.green("Everything behaved as narrated."))
    except Interrupted as exc:
        OUT.line()
        OUT.line(OUT.yellow("Interrupted (%s)." % exc))
        status = 130
    except (sbx.SandboxError, sbx.HarnessError) as exc:
        OUT.line()
        OUT.line(OUT.red("FAILED: %s" % exc))
        logs = sb.failure_logs or sb.log_tails(8)
        if logs:
            OUT.line(OUT.dim("The last lines of each log:"))
            OUT.line(logs)
        status = 1
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        status = cleanup(sb, status)
    return status


def cleanup(sb, status):
    OUT.heading("Cleaning up")
    names = [ns.name for ns in sb.namespaces]
    procs = len(sb.processes)
    try:
        sb.close()
    except sbx.SandboxError as exc:
        OUT.line(OUT.red("  %s" % exc))
        return status or 1
    left = set(names) & set(sbx.namespaces_left())
    if left:
        OUT.line(OUT.red("  namespaces still present: %s" % ", ".join(sorted(left))))
        return status or 1
    OUT.line("  stopped %d processes, removed %d network namespaces and the firewall rules in them; "
             "nothing left behind." % (procs, len(names)))
    if status == 0:
        OUT.line()
        OUT.para("The files this ran: examples/incident/be.json (healthd on each backend) and "
                 "haproxy/haproxy.cfg (HAProxy). Copy them, change the addresses, and see haproxy/README.md.",
                 indent=0)
        if os.path.exists(FLEET_SVG) and os.path.exists(FLEET_PAGE):
            OUT.para("The fleet view while be2 had lost MySQL: the graph %s and the page %s (open them in a "
                     "browser)." % (FLEET_SVG, FLEET_PAGE), indent=0)
    return status


if __name__ == "__main__":
    sys.exit(main())
