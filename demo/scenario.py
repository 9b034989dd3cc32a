"""scenario.py: the incident's steps on a Sandbox (cut a dependency, change the rule, restore, kill healthd),
each watched until it has fully played out, with what was seen and when.

demo/incident.py narrates these steps as they happen; tests/integration/test_incident.py asserts on
what they return. One Timeline polls every source (HAProxy's stats socket, the backend's own healthd,
the webhook receiver, the users' requests) every 50 ms and reports each change once, timed from the
moment the step's action took effect.
"""

import datetime
import time

from sandbox import BACKENDS, FIREWALL_ACTIONS, SandboxError

POLL_S = 0.05


class Event:
    """One observed change. source: action (what the step did), haproxy, healthd, webhook, users.
    dt: seconds since the step's action took effect."""

    __slots__ = ("t", "dt", "source", "subject", "text", "data")

    def __init__(self, t, dt, source, subject, text, data=None):
        self.t, self.dt, self.source, self.subject, self.text, self.data = t, dt, source, subject, text, data

    def __repr__(self):
        return "<Event %s %s %s>" % (self.source, self.subject, self.text)


def agent_reason(last_agt):
    """HAProxy renders the agent line `down #mysql timeout` as `via agent : down (mysql timeout)`."""
    text = last_agt or ""
    if "(" in text and text.endswith(")"):
        return text[text.index("(") + 1:-1]
    return ""


class Timeline:
    """Everything seen since `t0`; on_event(Event) is called once per change, in the order seen."""

    def __init__(self, sb, t0, backend, check, on_event=None):
        self.sb, self.t0, self.t_ref = sb, t0, t0
        self.backend, self.check = backend, check
        self.on_event = on_event or (lambda ev: None)
        self.events = []
        self.rows = sb.rows()
        self.status = {name: row["status"] for name, row in self.rows.items()}
        self.reason = {name: agent_reason(row["last_agt"]) for name, row in self.rows.items()}
        # the last agent text HAProxy showed: it shows none while an agent check is in progress
        self.agent_text = {name: row["last_agt"] for name, row in self.rows.items()}
        self.seen_posts = len(sb.posts())
        self.posts = []
        self.health = None
        self.health_state = None
        self.health_kind = None
        self.users_failed = 0
        self.users_seen = len(sb.traffic.requests()) if sb.traffic else 0
        self.first_user_failure = None

    def mark(self, t, subject, text):
        """A step's action took effect at t: later events are timed from it."""
        self.t_ref = t
        self._emit(t, "action", subject, text)

    def _emit(self, t, source, subject, text, data=None):
        ev = Event(t, t - self.t_ref, source, subject, text, data)
        self.events.append(ev)
        self.on_event(ev)

    def poll(self):
        now = time.time()
        for name, row in self.sb.rows().items():
            self.rows[name] = row
            if row["last_agt"]:
                self.agent_text[name] = row["last_agt"]
            status, reason = row["status"], agent_reason(row["last_agt"])
            if status != self.status[name] or (status.startswith("DOWN") and reason and reason != self.reason[name]):
                self._emit(now, "haproxy", name, "%s -> %s" % (self.status[name], status), row)
                self.status[name], self.reason[name] = status, reason
            elif reason:
                self.reason[name] = reason
        if self.check is not None and self.sb.backends[self.backend].healthd.running:
            try:
                _, body = self.sb.backends[self.backend].healthd.json("/health/" + self.check, timeout=1.0)
            except OSError:
                body = None
            if body:
                state, kind = body.get("status"), body.get("kind")
                if (state, kind) != (self.health_state, self.health_kind) and self.health_state is not None:
                    self._emit(now, "healthd", self.backend, "%s %s: %s" % (self.check, state, kind), body)
                self.health, self.health_state, self.health_kind = body, state, kind
        posts = self.sb.posts()
        for post in posts[self.seen_posts:]:
            self.posts.append(post)
            body = post.get("body") if isinstance(post.get("body"), dict) else {}
            self._emit(post["t"], "webhook", body.get("host", "?"), body.get("event", "?"), post)
        self.seen_posts = len(posts)
        if self.sb.traffic is not None:
            done = self.sb.traffic.requests()
            for req in done[self.users_seen:]:
                if req.t_sent >= self.t0 - 1.0 and not req.ok:
                    self.users_failed += 1
                    if self.first_user_failure is None:
                        self.first_user_failure = req
                        self._emit(req.t_done, "users", req.backend or "?", req.outcome(), req)
            self.users_seen = len(done)

    def wait(self, pred, timeout, what):
        """Polls until pred(self) holds; SandboxError naming `what` and the last state otherwise."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL_S) + 2):
            self.poll()
            if pred(self):
                return time.time()
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        raise SandboxError("%s did not happen within %.1f s. HAProxy shows: %s; healthd on %s says: %s; "
                           "webhook posts seen: %s"
                           % (what, timeout, self.describe_rows(), self.backend, self.health,
                              [p.get("body") for p in self.posts] or "none"))

    def first(self, source, subject=None, pred=None):
        for ev in self.events:
            if ev.source == source and (subject is None or ev.subject == subject) and (pred is None or pred(ev)):
                return ev
        return None

    def describe_rows(self):
        return ", ".join("%s %s (%s)" % (n, r["status"], r["last_agt"]) for n, r in sorted(self.rows.items()))


def parse_iso(text):
    """healthd's times ("2026-11-23T04:12:07.123Z") -> Unix time, or None."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def went_down(ev):
    """A HAProxy event where the server left the UP states (UP, UP 2/3 ...) for a DOWN one."""
    return ev.data["status"].startswith("DOWN") and not ev.text.startswith("DOWN")


def went_up(ev):
    return ev.data["status"] == "UP"


def _margin(hi):
    """A generous bound for waiting: twice the prediction plus 5 s (a loaded machine must not fail it)."""
    return 2 * hi + 5.0


def _webhook_events(timeline, backend, event):
    out = []
    for p in timeline.posts:
        body = p.get("body") if isinstance(p.get("body"), dict) else {}
        if body.get("host") == backend and body.get("event") == event:
            out.append(p)
    return out


class Cut:
    """A dependency of one backend cut at the firewall: DROP, then another rule, then restored.
    Each method waits until its effect has been seen everywhere and records when."""

    def __init__(self, sb, backend, service, on_event=None):
        self.sb, self.backend, self.service = sb, backend, service
        self.on_event = on_event
        self.alerts = "alerts" in sb.base_config
        self.timeline = None
        self.t_cut = self.t_down = self.t_changed = self.t_restored = self.t_up = None
        self.measure = {}

    def cut(self, action="drop"):
        sb, t = self.sb, self.sb.timing
        silent = action == "drop"
        self.command, self.t_cut = sb.firewall(self.backend, self.service, action)
        self.timeline = tl = Timeline(sb, self.t_cut, self.backend, self.service, self.on_event)
        tl.mark(self.t_cut, self.backend, self.command)
        lo, hi = t.haproxy_down(silent)
        hd_lo, hd_hi = t.healthd_down(silent)
        self.measure.update(action=action, predicted_healthd=(hd_lo, hd_hi), predicted_haproxy=(lo, hi))

        def detected(x):
            done = x.status[self.backend].startswith("DOWN") and x.health_state == "down"
            if self.alerts:
                done = done and _webhook_events(x, self.backend, "regression")
            return done

        tl.wait(detected, _margin(hi), "%s taken out after its %s was cut" % (self.backend, self.service))
        self.t_down = tl.first("haproxy", self.backend, went_down).t
        ev_hd = tl.first("healthd", self.backend, lambda ev: " down:" in ev.text)
        # healthd's own record of when the check went down (ms precision) beats our poll's moment
        since = parse_iso(ev_hd.data.get("since"))
        self.measure.update(
            haproxy_down_s=self.t_down - self.t_cut,
            healthd_down_s=(since if since is not None else ev_hd.t) - self.t_cut,
            last_agt=tl.agent_text[self.backend],
            kind=tl.health_kind,
            detail=(tl.health or {}).get("detail"),
            source_addr=(tl.health or {}).get("source_addr"))
        if self.alerts:
            self.measure["webhook_s"] = _webhook_events(tl, self.backend, "regression")[0]["t"] - self.t_cut
        return self.measure

    def change(self, action="reject"):
        """Another rule for the same path while it is down: the reason HAProxy and the webhook give follows."""
        tl = self.timeline
        old_kind = tl.health_kind
        self.command2, self.t_changed = self.sb.firewall(self.backend, self.service, action)
        tl.mark(self.t_changed, self.backend, self.command2)
        t = self.sb.timing

        def changed(x):
            done = x.health_kind not in (None, old_kind) and x.reason[self.backend].endswith(x.health_kind)
            if self.alerts:
                done = done and any(p["t"] >= self.t_changed for p in x.posts)
            return done

        tl.wait(changed, _margin(t.interval_s + t.agent_inter_s),
                "the reason for %s to change after the %s rule" % (self.backend, action))
        self.measure.update(action2=action, kind2=tl.health_kind, last_agt2=tl.agent_text[self.backend],
                            detail2=(tl.health or {}).get("detail"))
        return self.measure

    def restore(self):
        tl, t = self.timeline, self.sb.timing
        self.t_restored = self.sb.restore(self.backend, self.service)
        tl.mark(self.t_restored, self.backend, "rule removed")
        lo, hi = t.haproxy_up()

        def recovered(x):
            done = x.status[self.backend] == "UP" and x.health_state == "up"
            if self.alerts:
                done = done and _webhook_events(x, self.backend, "recovery")
            return done

        tl.wait(recovered, _margin(hi), "%s back in after the rule was removed" % self.backend)
        self.t_up = tl.first("haproxy", self.backend, lambda ev: ev.t >= self.t_restored and went_up(ev)).t
        self.measure.update(haproxy_up_s=self.t_up - self.t_restored, predicted_up=(lo, hi))
        return self.measure

    def settle(self, quiet_s=1.0):
        """After the restore: a quiet moment (late alerts, flaps), then every request sent so far has ended.
        Counts the users' failed requests before and after HAProxy took the backend out."""
        tl = self.timeline
        end = time.time() + quiet_s
        tl.wait(lambda x: time.time() >= end, quiet_s + 1, "a quiet second")
        traffic = self.sb.traffic
        if traffic is not None:
            traffic.wait_settled(time.time())
            reqs = traffic.requests(since=self.t_cut - 1.0, until=end)
            before = [r for r in reqs if r.t_sent < self.t_down]
            after = [r for r in reqs if r.t_sent >= self.t_down]
            self.measure.update(
                requests_before=len(before), failed_before=sum(not r.ok for r in before),
                requests_after=len(after), failed_after=sum(not r.ok for r in after),
                failures_after=[r.outcome() for r in after if not r.ok][:5],
                served_after={b: sum(r.backend == b for r in after if r.ok) for b in BACKENDS})
        tl.poll()
        self.measure["webhook_posts"] = [p.get("body") for p in tl.posts]
        self.measure["haproxy_changes"] = [(ev.subject, ev.text) for ev in tl.events if ev.source == "haproxy"]
        return self.measure


class HealthdCrash:
    """healthd killed on one backend: HAProxy's httpchk on /ready/deps fails closed and takes it out."""

    def __init__(self, sb, backend, on_event=None):
        self.sb, self.backend, self.on_event = sb, backend, on_event
        self.measure = {}

    def kill(self):
        sb, t = self.sb, self.sb.timing
        self.t_kill = sb.kill_healthd(self.backend)
        self.timeline = tl = Timeline(sb, self.t_kill, self.backend, None, self.on_event)
        tl.mark(self.t_kill, self.backend, "healthd killed (SIGKILL)")
        lo, hi = t.haproxy_dead_agent()
        tl.wait(lambda x: x.status[self.backend].startswith("DOWN"), _margin(hi),
                "%s taken out after its healthd was killed" % self.backend)
        self.t_down = tl.first("haproxy", self.backend, went_down).t
        row = tl.rows[self.backend]
        self.measure.update(haproxy_down_s=self.t_down - self.t_kill, predicted_haproxy=(lo, hi),
                            check_status=row["check_status"], agent_status=row["agent_status"],
                            status=row["status"])
        return self.measure

    def restart(self):
        tl, t = self.timeline, self.sb.timing
        self.t_restart = self.sb.restart_healthd(self.backend)
        tl.mark(self.t_restart, self.backend, "healthd started again")
        lo, hi = t.haproxy_up()
        tl.wait(lambda x: x.status[self.backend] == "UP", _margin(hi), "%s back in after healthd restarted"
                % self.backend)
        up = tl.first("haproxy", self.backend, lambda ev: ev.t >= self.t_restart and went_up(ev))
        self.measure["haproxy_up_s"] = up.t - self.t_restart
        return self.measure

    def settle(self, quiet_s=1.0):
        tl = self.timeline
        end = time.time() + quiet_s
        tl.wait(lambda x: time.time() >= end, quiet_s + 1, "a quiet second")
        traffic = self.sb.traffic
        if traffic is not None:
            traffic.wait_settled(time.time())
            reqs = traffic.requests(since=self.t_kill - 1.0, until=end)
            failed = [r for r in reqs if not r.ok]
            # HAProxy closes the sessions of a server it marks down (on-marked-down shutdown-sessions):
            # a request to be3 in flight at that moment fails although be3's application was fine.
            cut_short = [r for r in failed if r.t_sent <= self.t_down and r.t_done >= self.t_down - 2 * POLL_S - 0.1]
            self.measure.update(requests=len(reqs), failed=len(failed), failed_in_flight_at_down=len(cut_short),
                                failures=[r.outcome() for r in failed][:5])
        self.measure["webhook_posts"] = [p.get("body") for p in tl.posts]
        self.measure["haproxy_changes"] = [(ev.subject, ev.text) for ev in tl.events if ev.source == "haproxy"]
        return self.measure


__all__ = ["Cut", "HealthdCrash", "Timeline", "Event", "agent_reason", "FIREWALL_ACTIONS"]
