#!/usr/bin/env bash
# bench/run.sh: healthd's answers under load, side by side with a reference measured in the same run.
#   /health, the status page, /history and /ready  vs  nginx serving the same bytes as static files (the cost floor of an HTTP answer)
#   agent port          vs  line_server.c (an epoll loop that writes one fixed line: the floor of that protocol)
# Prints requests/s, latency and the ratio healthd/reference. Bounded: each load runs DURATION seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CHECKS=${CHECKS:-50}
CONNS=${CONNS:-32}
BIN=${HEALTHD_BIN:-build/healthd}
work=$(mktemp -d /tmp/healthd-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cc -O2 -Wall -o "$work/agent_load" bench/agent_load.c
cc -O2 -Wall -o "$work/line_server" bench/line_server.c

target_port=$(free_port); ref_agent_port=$(free_port)
http_port=$(free_port); agent_port=$(free_port); nginx_port=$(free_port)
"$work/line_server" "$target_port" & pids+=($!)
"$work/line_server" "$ref_agent_port" & pids+=($!)

# healthd with CHECKS tcp checks, all up, so that /health carries a realistic body.
{
	printf '{"state_dir":"%s","listen":{"http":"127.0.0.1:%s","agent":"127.0.0.1:%s","admin_socket":"%s/ctl.sock"},\n' \
		"$work" "$http_port" "$agent_port" "$work"
	printf ' "http":{"max_connections":1024},"agent":{"max_connections":1024},\n'
	printf ' "defaults":{"interval_ms":1000,"timeout_ms":500,"rise":1,"fall":1},\n "checks":['
	for i in $(seq 1 "$CHECKS"); do
		[ "$i" -gt 1 ] && printf ','
		printf '\n  {"name":"dep-%03d","type":"tcp","host":"127.0.0.1","port":%s}' "$i" "$target_port"
	done
	printf ']}\n'
} >"$work/healthd.json"
"$BIN" --config "$work/healthd.json" 2>"$work/healthd.log" & pids+=($!)
for _ in $(seq 1 50); do
	curl -sf "http://127.0.0.1:$http_port/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$http_port/ready" >/dev/null || { echo "healthd did not become ready"; cat "$work/healthd.log"; exit 1; }

# The reference serves the very bytes healthd answers.
mkdir -p "$work/www"
curl -s "http://127.0.0.1:$http_port/health" >"$work/www/health"
curl -s "http://127.0.0.1:$http_port/ready" >"$work/www/ready"
curl -s -H 'Accept: text/html' "http://127.0.0.1:$http_port/" >"$work/www/page"
curl -s "http://127.0.0.1:$http_port/history" >"$work/www/history"
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
NGINX
nginx -c "$work/nginx.conf" & pids+=($!)
sleep 0.5

# The CPU a process has used, in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
healthd_pid=${pids[2]}
ref_agent_pid=${pids[1]}
nginx_worker=$(pgrep -P "${pids[3]}" | head -1)

# wrk against the server whose process is PID: "rps p50 p99 cpu_us_per_request".
run_wrk() {
	local pid=$1 t0 t1
	shift
	t0=$(cpu_ticks "$pid")
	wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" >"$work/wrk.out"
	t1=$(cpu_ticks "$pid")
	awk -v ticks=$((t1 - t0)) -v tck="$tck" '/Requests\/sec/ {rps=$2}
	     / requests in / {n=$1}
	     /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
	     END {print rps, p50, p99, (n > 0) ? ticks * 1e6 / tck / n : 0}' "$work/wrk.out"
}
run_agent() {
	local pid=$1 t0 t1
	t0=$(cpu_ticks "$pid")
	"$work/agent_load" "$2" 2000000 "$CONNS" "$DURATION" >"$work/agent.out"
	t1=$(cpu_ticks "$pid")
	awk -v ticks=$((t1 - t0)) -v tck="$tck" -v d="$DURATION" \
		'{print $1, $2"ms", $3"ms", ($1 > 0) ? ticks * 1e6 / tck / ($1 * d) : 0}' "$work/agent.out"
}

printf '\nhealthd %s benchmark: %s checks, %s connections, %ss per run, %s cores (reference measured in the same run)\n\n' \
	"$("$BIN" --version | awk '{print $2}')" "$CHECKS" "$CONNS" "$DURATION" "$(nproc)"
printf '%-20s %11s %10s %6s %8s %8s %6s   %-20s %-20s\n' "answer" "healthd r/s" "ref r/s" "ratio" \
	"us/req" "ref" "ratio" "healthd p50/p99" "ref p50/p99"
row() {
	read -r h_rps h_p50 h_p99 h_cpu <<<"$2"
	read -r r_rps r_p50 r_p99 r_cpu <<<"$3"
	printf '%-20s %11.0f %10.0f %6.2f %8.1f %8.1f %6.2f   %-20s %-20s\n' "$1" "$h_rps" "$r_rps" \
		"$(awk -v a="$h_rps" -v b="$r_rps" 'BEGIN{print (b>0)? a/b : 0}')" "$h_cpu" "$r_cpu" \
		"$(awk -v a="$h_cpu" -v b="$r_cpu" 'BEGIN{print (b>0)? a/b : 0}')" "$h_p50/$h_p99" "$r_p50/$r_p99"
}
row "/health ($(wc -c <"$work/www/health") B)" "$(run_wrk "$healthd_pid" "http://127.0.0.1:$http_port/health")" \
	"$(run_wrk "$nginx_worker" "http://127.0.0.1:$nginx_port/health")"
row "/ page ($(wc -c <"$work/www/page") B)" \
	"$(run_wrk "$healthd_pid" -H 'Accept: text/html' "http://127.0.0.1:$http_port/")" \
	"$(run_wrk "$nginx_worker" -H 'Accept: text/html' "http://127.0.0.1:$nginx_port/page")"
row "/history ($(wc -c <"$work/www/history") B)" "$(run_wrk "$healthd_pid" "http://127.0.0.1:$http_port/history")" \
	"$(run_wrk "$nginx_worker" "http://127.0.0.1:$nginx_port/history")"
row "/ready" "$(run_wrk "$healthd_pid" "http://127.0.0.1:$http_port/ready")" \
	"$(run_wrk "$nginx_worker" "http://127.0.0.1:$nginx_port/ready")"
row "agent port" "$(run_agent "$healthd_pid" "$agent_port")" "$(run_agent "$ref_agent_pid" "$ref_agent_port")"
printf '\nreference: nginx %s (1 worker, static files) for HTTP; bench/line_server.c for the agent port.\n' \
	"$(nginx -v 2>&1 | sed 's/.*nginx\///')"
printf 'healthd ran %s checks at 1/s during the load; a ratio near 1 means answering costs what serving a file costs.\n' "$CHECKS"
printf 'us/req: CPU microseconds the server process used per answer (its own, not the load client'"'"'s); steadier than r/s on a\n'
printf 'shared machine, where the client and the server compete for the same cores.\n'
