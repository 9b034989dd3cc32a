#!/usr/bin/env bash
# tests/fresh-machine.sh: the README's two commands, then the fuzzers, on a fresh Debian 12 root, as a newcomer.
#
# Two new minbase roots (tests/freshroot.sh), each with a clone of this repository's HEAD, run as root with a
# clean environment:
#   1. `make` and `make unit`, which must install the build packages only (no server, no test tool);
#   2. `make demo`, `make test`, then `make fuzz` with a short budget.
# It fails when `make deps` misses a package, when a build step needs something installed by hand, or when a
# test needs a tool nothing installs. Only the minbase base is cached between runs; the project's files and
# every package install are fresh.
#
# Usage: tests/fresh-machine.sh [all|build|full]   (default all; build = root 1 only, full = root 2 only)
set -euo pipefail

stages=${1:-all}
case "$stages" in all | build | full) ;; *) echo "usage: $0 [all|build|full]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
work=$(mktemp -d /var/tmp/healthd-fresh.XXXXXX)
root=$work/root
freshroot=$here/tests/freshroot.sh
cache=${HEALTHD_BASE_CACHE:-/var/cache/healthd-ci}

cleanup() { "$freshroot" destroy "$root" || echo "fresh-machine: could not remove $root" >&2; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

stamp() { date +%s; }
t0=$(stamp)

new_root() {
	local s; s=$(stamp)
	"$freshroot" new "$root"
	# The repository's committed HEAD, as `git clone` gives it to a newcomer: nothing from this work tree.
	git clone --quiet --no-local "$here" "$root/root/healthd"
	# The cached base is lent read-only to the tests that build fresh roots of their own (the package test).
	mkdir -p "$root$cache"
	mount --bind "$cache" "$root$cache" && mount -o remount,bind,ro "$root$cache"
	echo "fresh-machine: fresh Debian 12 root in $root ($(($(stamp) - s)) s)"
}

passed=0 failed=0
step() {
	local name=$1; shift
	local s; s=$(stamp)
	echo "fresh-machine: == $name"
	if "$freshroot" run "$root" /bin/bash -c "cd /root/healthd && $*"; then
		passed=$((passed + 1)); echo "fresh-machine: $name passed ($(($(stamp) - s)) s)"
	else
		failed=$((failed + 1)); echo "fresh-machine: $name FAILED ($(($(stamp) - s)) s)"
		return 1
	fi
}

# Servers and test tools that building must never install.
test_only="mariadb-server redis-server haproxy prometheus prometheus-alertmanager ansible-core valgrind"
rc=0
if [ "$stages" != full ]; then
new_root
step "make, make unit (build packages only)" "make && make unit && \
	for p in $test_only; do if dpkg-query -W -f='\${Status}' \$p 2>/dev/null | grep -q 'ok installed'; then \
		echo \"make installed \$p, a test package\" >&2; exit 1; fi; done" || rc=1
"$freshroot" destroy "$root"
fi

if [ $rc -eq 0 ] && [ "$stages" != build ]; then
	new_root
	step "make demo" "make demo" || rc=1
	[ $rc -eq 0 ] && { step "make test" "make test" || rc=1; }
	[ $rc -eq 0 ] && { step "make fuzz" "make fuzz FUZZ_SECONDS=$FUZZ_SECONDS" || rc=1; }
fi
echo "fresh-machine: whole run $(($(stamp) - t0)) s"
echo "fresh-machine: $passed passed, $failed failed"
exit $rc
