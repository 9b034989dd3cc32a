"""fastinterval_ms and downinterval_ms against a real firewall DROP (in a namespace): the same dependency checked
with and without fastinterval, the detection time of each measured and compared with what the schedule predicts,
and the attempts counted while up (no extra load) and while down (downinterval)."""

import re
import time

from harness import wait_until
from core_common import sanitizer_reports  # noqa: F401 (autouse)
from core_common import config, tcp_check, wait_check

INTERVAL, TIMEOUT, FALL, FAST, DOWN = 1000, 300, 3, 300, 2000
MARGIN_MS = 400  # scheduling slack on a loaded 2-core machine


def attempts(hd):
    status, _, body = hd.get("/metrics")
    assert status == 200
    found = dict(re.findall(r'^healthd_check_attempts_total\{check="(\w+)"\} (\d+)$', body.decode(), re.M))
    return {k: int(v) for k, v in found.items()}


def test_fastinterval_finds_a_drop_sooner_with_no_extra_load(make_netns, start_tcp_listener, start_healthd):
    ns = make_netns("sched")
    target = start_tcp_listener(netns=ns)
    hd = start_healthd(config([tcp_check("plain", target.port),
                               tcp_check("fast", target.port, fastinterval_ms=FAST, downinterval_ms=DOWN)],
                              interval_ms=INTERVAL, timeout_ms=TIMEOUT, rise=2, fall=FALL), netns=ns)
    for name in ("plain", "fast"):
        wait_check(hd, name, lambda c: c["status"] == "up")

    # While up: one attempt per interval for both.
    before, t0 = attempts(hd), time.monotonic()
    time.sleep(4.0)
    after, up_s = attempts(hd), time.monotonic() - t0
    up_counts = {k: after[k] - before[k] for k in ("plain", "fast")}
    print("attempts while up for %.1f s: %s" % (up_s, up_counts))
    assert abs(up_counts["fast"] - up_counts["plain"]) <= 1, up_counts
    assert up_counts["plain"] <= up_s * 1000 / INTERVAL + 1, up_counts

    ns.block(target.port, "drop")
    t_drop = time.monotonic()
    found = {}

    def both_down():
        for name in ("plain", "fast"):
            if name not in found and hd.json("/health/" + name)[1]["status"] == "down":
                found[name] = (time.monotonic() - t_drop) * 1000
        return len(found) == 2
    wait_until(both_down, 10, interval=0.02, what="both checks down")
    predicted = {"plain": ((FALL - 1) * INTERVAL + TIMEOUT, FALL * INTERVAL + TIMEOUT),
                 "fast": ((FALL - 1) * FAST + TIMEOUT, INTERVAL + (FALL - 1) * FAST + TIMEOUT)}
    for name in ("plain", "fast"):
        print("DROP -> %-5s down: measured %4.0f ms, predicted %d to %d ms" % ((name, found[name]) + predicted[name]))
    for name, (low, high) in predicted.items():
        assert low - MARGIN_MS <= found[name] <= high + MARGIN_MS, (name, found[name], predicted[name])

    # While down: downinterval_ms between attempts (2 s) instead of interval (1 s).
    before, t0 = attempts(hd), time.monotonic()
    time.sleep(6.0)
    after, down_s = attempts(hd), time.monotonic() - t0
    down_counts = {k: after[k] - before[k] for k in ("plain", "fast")}
    print("attempts while down for %.1f s: %s" % (down_s, down_counts))
    assert down_counts["fast"] <= down_s * 1000 / DOWN + 1 < down_counts["plain"], down_counts

    # Back: rising uses fastinterval too (rise 2: the second success one fastinterval after the first).
    ns.unblock(target.port, "drop")
    t_back = time.monotonic()
    back = {}

    def both_up():
        for name in ("plain", "fast"):
            if name not in back and hd.json("/health/" + name)[1]["status"] == "up":
                back[name] = (time.monotonic() - t_back) * 1000
        return len(back) == 2
    wait_until(both_up, 10, interval=0.02, what="both checks up")
    print("repaired -> up: plain %.0f ms (predicted up to %d), fast %.0f ms (predicted up to %d)"
          % (back["plain"], 2 * INTERVAL, back["fast"], DOWN + FAST))
    assert back["fast"] <= DOWN + FAST + MARGIN_MS and back["plain"] <= 2 * INTERVAL + MARGIN_MS, back


def test_timeout_above_fastinterval_is_refused(workdirs):
    import json
    import os

    from harness import run_healthd
    d = workdirs.new("sched-cfg")
    path = os.path.join(d, "bad.json")
    with open(path, "w") as f:
        json.dump({"checks": [{"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 1, "timeout_ms": 800,
                               "fastinterval_ms": 500}]}, f)
    rc, out, err = run_healthd(["--config", path, "--check-config"])
    assert rc == 2 and "timeout_ms (800) must not exceed fastinterval_ms (500)" in err, (rc, out, err)
