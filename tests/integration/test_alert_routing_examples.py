"""examples/prometheus and examples/alertmanager with the real tools: promtool checks and unit-tests the rules,
amtool checks the Alertmanager configuration and its routes, and a real Alertmanager 0.25 running that very file
holds healthd's check alerts back while Prometheus' own alert for the same instance fires."""

import json
import os
import re
import subprocess
import time

from harness import REPO, wait_until
from harness.alertmanager import Alertmanager

PROM = os.path.join(REPO, "examples", "prometheus")
AM_CFG = os.path.join(REPO, "examples", "alertmanager", "alertmanager.yml")


def run(cmd, cwd=None):
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd)
    return cp.returncode, cp.stdout + cp.stderr


def test_promtool_checks_and_tests_the_rules():
    rc, out = run(["promtool", "check", "rules", "healthd.rules.yml"], cwd=PROM)
    assert rc == 0 and "SUCCESS: 6 rules found" in out, out
    rc, out = run(["promtool", "test", "rules", "healthd.rules.test.yml"], cwd=PROM)
    print(out.strip())
    assert rc == 0 and "SUCCESS" in out, out
    # every alert of the rules file is exercised by the test file
    with open(os.path.join(PROM, "healthd.rules.yml")) as f:
        alerts = set(re.findall(r"^\s*- alert: (\w+)", f.read(), re.M))
    with open(os.path.join(PROM, "healthd.rules.test.yml")) as f:
        tested = set(re.findall(r"alertname: (\w+)", f.read()))
    assert alerts == tested, (alerts, tested)


def test_amtool_checks_the_config_and_routes_by_node_and_check():
    rc, out = run(["amtool", "check-config", AM_CFG])
    assert rc == 0 and "SUCCESS" in out and "2 inhibit rules" in out, out
    routes = {}
    for labels in (["alertname=HealthdCheckDown", "node=be2", "check=mysql", "severity=critical"],
                   ["alertname=HealthdCriticalCheckDown", "node=be2", "check=mysql", "severity=critical"],
                   ["alertname=HealthdCheckDown", "node=be2", "check=cache", "severity=warning"],
                   ["alertname=HealthdReloadFailed", "node=be2", "severity=warning"]):
        rc, out = run(["amtool", "config", "routes", "test", "--config.file=" + AM_CFG] + labels)
        assert rc == 0, out
        routes[" ".join(labels)] = out.splitlines()[0].strip()
    print(routes)
    assert list(routes.values()) == ["network-oncall", "network-oncall", "ops", "ops"], routes


def test_a_real_alertmanager_inhibits_check_alerts_of_an_instance_prometheus_says_is_gone(workdirs, start_receiver):
    rx = start_receiver()
    am = Alertmanager(workdirs.new("am-example"), rx.url)
    with open(AM_CFG) as f:
        text = f.read().replace("http://127.0.0.1:9099", rx.url)
    with open(am.config_path, "w") as f:
        f.write(text)
    am.start()
    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # healthd's own alert (Alertmanager format: instance = the API address as Prometheus scrapes it)
        check_alert = {"labels": {"alertname": "HealthdCheckDown", "instance": "be2:9110", "node": "be2",
                                  "check": "mysql", "severity": "critical", "job": "healthd"},
                       "startsAt": now}
        other = {"labels": {"alertname": "HealthdCheckDown", "instance": "be1:9110", "node": "be1",
                            "check": "mysql", "severity": "critical", "job": "healthd"}, "startsAt": now}
        # Prometheus' own alert for be2's target
        gone = {"labels": {"alertname": "HealthdNotScraped", "instance": "be2:9110", "job": "healthd",
                           "severity": "critical"}, "startsAt": now}
        am.post_alerts([check_alert, other, gone])

        def states():
            got = {(a["labels"]["alertname"], a["labels"]["instance"]): a["status"] for a in am.alerts()}
            # inhibition is evaluated after an alert is first seen active: wait until it has been
            settled = len(got) == 3 and all(s["state"] != "unprocessed" for s in got.values()) \
                and got[("HealthdCheckDown", "be2:9110")]["state"] == "suppressed"
            return got if settled else None
        got = wait_until(states, 10, what="alertmanager processed the alerts and inhibited be2's")
        print(json.dumps({"%s %s" % k: v["state"] for k, v in got.items()}))
        assert got[("HealthdCheckDown", "be2:9110")]["state"] == "suppressed"
        assert got[("HealthdCheckDown", "be2:9110")]["inhibitedBy"], got
        assert got[("HealthdCheckDown", "be1:9110")]["state"] == "active"  # another instance: not held
        assert got[("HealthdNotScraped", "be2:9110")]["state"] == "active"
    finally:
        am.stop()
