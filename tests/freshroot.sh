#!/usr/bin/env bash
# tests/freshroot.sh: a fresh minbase Debian 12 root inside this machine, to run what a newcomer would run.
#
#   tests/freshroot.sh new ROOT          a new root from the cached base (made once with mmdebstrap), mounted
#   tests/freshroot.sh run ROOT CMD...   CMD inside, as root, with a newcomer's clean environment, no stdin
#   tests/freshroot.sh destroy ROOT      stops what runs inside (by PID), unmounts, removes ROOT
#
# The base is minbase plus make, git and ca-certificates: what the README says a fresh machine needs.
# It is cached in HEALTHD_BASE_CACHE (default /var/cache/healthd-ci); only the base is ever reused.
set -euo pipefail

CACHE_DIR=${HEALTHD_BASE_CACHE:-/var/cache/healthd-ci}
BASE_TAR=$CACHE_DIR/bookworm-minbase.tar
MIRROR=${HEALTHD_DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() { echo "freshroot: $*" >&2; exit 2; }

ensure_base() {
	[ -f "$BASE_TAR" ] && [ -s "$BASE_TAR" ] && return 0
	command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
	mkdir -p "$CACHE_DIR"
	echo "freshroot: building the base root once ($BASE_TAR)" >&2
	# A temporary name, so that an interrupted build never leaves a truncated base behind; its suffix says nothing
	# of the format, so --format=tar (without it mmdebstrap writes a directory).
	mmdebstrap --quiet --format=tar --variant=minbase --include=make,git,ca-certificates bookworm "$BASE_TAR.tmp" "$MIRROR"
	mv "$BASE_TAR.tmp" "$BASE_TAR"
}

cmd_new() {
	local root=$1
	[ -e "$root" ] && die "$root exists already"
	ensure_base
	mkdir -p "$root"
	# ip netns exec remounts / with rslave propagation: the root must be a mount point of its own.
	mount --bind "$root" "$root"
	tar -C "$root" -xf "$BASE_TAR"
	mount --bind /dev "$root/dev"
	mount --bind /dev/pts "$root/dev/pts"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --make-rslave "$root/sys"
	mount -t tmpfs -o mode=0755 tmpfs "$root/run"
	mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	# Services never start on package installation inside the root (there is no init to own them).
	printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
}

cmd_run() {
	local root=$1; shift
	[ -d "$root/proc/self" ] || die "$root is not a mounted fresh root"
	chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb ${CI:+CI=$CI} "$@" </dev/null
}

# Every process whose root directory is inside ROOT, by PID.
pids_inside() {
	local root p link
	root=$(readlink -f "$1")
	for p in /proc/[0-9]*; do
		link=$(readlink "$p/root" 2>/dev/null) || continue
		case "$link" in "$root" | "$root"/*) echo "${p#/proc/}" ;; esac
	done
}

cmd_destroy() {
	local root=$1 pids i m
	[ -d "$root" ] || return 0
	for i in 1 2 3 4 5; do
		pids=$(pids_inside "$root")
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086
		kill -s "$([ "$i" -lt 3 ] && echo TERM || echo KILL)" $pids 2>/dev/null || true
		sleep 1
	done
	# Unmount deepest first (network namespaces, FUSE and tmpfs mounts the tests left included).
	for m in $(awk -v r="$(readlink -f "$root")" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	if awk -v r="$(readlink -f "$root")" '$5 == r || index($5, r "/") == 1 { found=1 } END { exit !found }' \
		/proc/self/mountinfo; then
		die "$root: still mounted; not removing it"
	fi
	rm -rf --one-file-system "$root"
}

[ $# -ge 2 ] || die "usage: $0 new|run|destroy ROOT [CMD...]"
[ "$(id -u)" = 0 ] || die "needs root (chroot and mounts)"
verb=$1; shift
case "$verb" in
new) cmd_new "$1" ;;
run) cmd_run "$@" ;;
destroy) cmd_destroy "$1" ;;
*) die "unknown verb $verb" ;;
esac
