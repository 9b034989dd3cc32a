#!/usr/bin/env bash
# bench/scale.sh: healthd's cost per check as the number of checks grows (1.00 = flat), in a network namespace.
#   For each N in SCALE_NS: N tcp checks (interval 2 s, timeout 1 s, rise/fall 1), half of them behind one
#   iptables DROP rule, so that their connects time out. Over MEASURE_S seconds it reads CPU (% of one core, from
#   /proc/PID/stat) and RSS, then from /health the age of the oldest result and how long the timed-out attempts
#   took against timeout_ms (and how long that GET /health took), then GET /health/NAME over one keep-alive
#   connection. Ratios are per check, against
#   the smallest N of the same run. Root only (namespaces, iptables); traffic stays inside the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE_NS=${SCALE_NS:-"100 1000 10000"}
MEASURE_S=${MEASURE_S:-20}
BYNAME_S=${BYNAME_S:-3}
BIN=$(realpath "${HEALTHD_BIN:-build/healthd}")
INTERVAL_MS=2000
TIMEOUT_MS=1000
TARGET_PORT=7000
HTTP_PORT=9110
PY=/usr/bin/python3
HELPER=$PWD/bench/scale_helper.py

[ "$(id -u)" = 0 ] || { echo "bench/scale.sh: run it as root (network namespaces, iptables)" >&2; exit 2; }
work=$(mktemp -d /tmp/healthd-scale.XXXXXX)
ns=hdscale-$$
pids=()        # the listener
healthd_pid="" # the healthd of the N being measured
cleanup() {
	for p in $healthd_pid "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in $healthd_pid "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
# Up to N/2 connects in flight at once, and the listener's accepts: the soft limit up to the hard one.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard"
for n in $SCALE_NS; do
	[ $((n + 1024)) -le "$hard" ] || { echo "bench/scale.sh: RLIMIT_NOFILE's hard limit $hard is too low for N=$n" >&2; exit 2; }
done

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
# Every 127.x.y.z reaches the loopback: up targets are 127.2.y.z, dropped ones 127.3.y.z, all on one port.
in_ns iptables -A INPUT -p tcp -d 127.3.0.0/16 --dport "$TARGET_PORT" -j DROP
ip netns exec "$ns" "$PY" "$HELPER" serve "$TARGET_PORT" & pids+=($!) # not in_ns: $! must be the process

target() { printf '127.%d.%d.%d' "$1" $(($2 / 250)) $(($2 % 250 + 1)); }

write_config() {
	local n=$1 i half=$(($1 / 2))
	{
		printf '{"node_name":"scale","state_dir":"%s/state","shutdown_grace_ms":0,"log":{"level":"warning"},\n' "$work"
		printf ' "listen":{"http":"127.0.0.1:%s","agent":"127.0.0.1:%s","admin_socket":"%s/ctl.sock"},\n' \
			"$HTTP_PORT" $((HTTP_PORT + 1)) "$work"
		printf ' "defaults":{"interval_ms":%s,"timeout_ms":%s,"rise":1,"fall":1},\n "checks":[' \
			"$INTERVAL_MS" "$TIMEOUT_MS"
		for ((i = 0; i < n; i++)); do
			[ "$i" -gt 0 ] && printf ','
			if [ "$i" -lt "$half" ]; then
				printf '\n {"name":"t-%05d","type":"tcp","host":"%s","port":%s}' "$i" "$(target 2 "$i")" "$TARGET_PORT"
			else
				printf '\n {"name":"t-%05d","type":"tcp","host":"%s","port":%s}' "$i" \
					"$(target 3 $((i - half)))" "$TARGET_PORT"
			fi
		done
		printf ']}\n'
	} >"$work/healthd.json"
}

cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# One row's numbers, run in this shell (not in $(...)) so that the trap sees healthd_pid: "n cpu_pct rss_mib oldest_age_ms timeouts p50_ratio max_ratio byname_rps".
measure() {
	local n=$1 pid t0 t1 c0 c1 hz reading i
	hz=$(getconf CLK_TCK)
	write_config "$n"
	rm -rf "$work/state" && mkdir -p "$work/state"
	ip netns exec "$ns" "$BIN" --config "$work/healthd.json" 2>"$work/healthd-$n.log" & pid=$!
	healthd_pid=$pid
	# Every check has a first result within a second or two; allow 30 s.
	for ((i = 0; i < 60; i++)); do
		sleep 0.5
		kill -0 "$pid" 2>/dev/null || { echo "healthd exited; its log:" >&2; cat "$work/healthd-$n.log" >&2; exit 1; }
		reading=$(in_ns "$PY" "$HELPER" health "http://127.0.0.1:$HTTP_PORT/health" "$TIMEOUT_MS" 2>/dev/null) || continue
		read -r _ pending _ <<<"$reading"
		[ "$pending" = 0 ] && break
	done
	[ "${pending:-1}" = 0 ] || { echo "N=$n: checks still pending after 30 s" >&2; exit 1; }
	sleep 2
	t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
	sleep "$MEASURE_S"
	t1=$(date +%s.%N); c1=$(cpu_ticks "$pid")
	rss=$(rss_mib "$pid")
	# The oldest result and the timed-out attempts, read three times: the worst of them.
	local worst_age=0 worst_max=0 p50=0 timeouts=0 get_ms=()
	for i in 1 2 3; do
		read -r _ _ age timeouts p50_i max_i get_ms[i] <<<"$(in_ns "$PY" "$HELPER" health "http://127.0.0.1:$HTTP_PORT/health" "$TIMEOUT_MS")"
		[ "$age" -gt "$worst_age" ] && worst_age=$age
		p50=$(awk -v a="$p50" -v b="$p50_i" 'BEGIN{print (b > a) ? b : a}')
		worst_max=$(awk -v a="$worst_max" -v b="$max_i" 'BEGIN{print (b > a) ? b : a}')
		sleep 0.7
	done
	byname=$(in_ns "$PY" "$HELPER" byname "http://127.0.0.1:$HTTP_PORT" t- "$n" "$BYNAME_S")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	healthd_pid=""
	echo "$n $(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.1f", (b - a) / hz / (e - s) * 100}') \
$rss $worst_age $timeouts $p50 $worst_max $byname \
$(printf '%s\n' "${get_ms[@]}" | sort -n | sed -n 2p)"
}

printf '\nhealthd %s at scale: tcp checks every %s ms, timeout %s ms, half behind a DROP rule; %ss per N, %s cores\n\n' \
	"$("$BIN" --version | awk '{print $2}')" "$INTERVAL_MS" "$TIMEOUT_MS" "$MEASURE_S" "$(nproc)"
printf '%6s %7s %8s %9s %8s %9s %9s %13s %9s %9s %10s %9s %11s %9s\n' N "cpu %" "us/att" "cpu/chk" "RSS MiB" "RSS/chk" \
	"oldest ms" "timeouts" "p50/tmo" "max/tmo" "/health ms" "per chk" "/health/N/s" "ratio"
ref=""
for n in $SCALE_NS; do
	measure "$n" >"$work/row"
	read -r n cpu rss age timeouts p50 maxr rps health_ms <"$work/row"
	[ -n "$ref" ] || ref="$n $cpu $rss $age $rps $health_ms"
	read -r rn rcpu rrss rage rrps rhealth <<<"$ref"
	# Per check at N against per check at the reference N: 1.00 = flat. The oldest result's age and a name
	# lookup's rate are not per check: their ratios are against the reference directly.
	awk -v n="$n" -v cpu="$cpu" -v rss="$rss" -v age="$age" -v t="$timeouts" -v p50="$p50" -v mx="$maxr" -v rps="$rps" \
		-v hms="$health_ms" -v rn="$rn" -v rcpu="$rcpu" -v rrss="$rrss" -v rrps="$rrps" -v rhms="$rhealth" \
		-v iv="$INTERVAL_MS" 'BEGIN {
		printf "%6d %7.1f %8.1f %9.2f %8.1f %9.2f %9d %6d/%-6d %9.3f %9.3f %10.1f %9.2f %11d %9.2f\n", n, cpu,
			cpu / 100 * 1e6 / (n * 1000 / iv), (rcpu > 0) ? (cpu / n) / (rcpu / rn) : 0, rss,
			(rrss > 0) ? (rss / n) / (rrss / rn) : 0,
			age, t, n / 2, p50, mx, hms, (rhms > 0) ? (hms / n) / (rhms / rn) : 0, rps,
			(rrps > 0) ? rrps / rps : 0 }'
done
printf '\nus/att: CPU microseconds per attempt. cpu/chk and RSS/chk: cost per check against N=%s (1.00 = flat).\n' \
	"${ref%% *}"
printf "oldest ms: the age of the oldest result when the answer's head arrived (at most about %s ms when nothing\n" \
	"$INTERVAL_MS"
printf 'lags). p50/tmo, max/tmo: timed-out attempts against timeout_ms (1.00 = on time). /health ms: one full GET\n'
printf '/health (the median of three); per chk: against N=%s.\n' "${ref%% *}"
printf 'ratio: the time of one GET /health/NAME against N=%s (1.00 = a lookup does not grow with N).\n' "${ref%% *}"
