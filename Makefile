# Makefile: builds build/healthd, installs build and test dependencies from Debian, runs the tests.
VERSION := 0.2.0
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/healthd
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc
SANITIZE ?=
WERROR ?= -Werror

PKGS := libevent libevent_pthreads libevent_openssl openssl libcjson libcurl hiredis libmariadb libsystemd
CFLAGS_WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wcast-qual -Wno-missing-field-initializers -Wno-format-nonliteral $(WERROR)

# Debian's hardening (what a package build gets): FORTIFY, stack protector, relro and now, plus stack-clash
# protection, which Debian 12's dpkg-buildflags does not add yet. CFLAGS, CPPFLAGS and LDFLAGS from the
# environment (dpkg-buildpackage exports them) or the command line win.
DPKG_BUILDFLAGS = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
CFLAGS ?= $(shell $(DPKG_BUILDFLAGS) CFLAGS 2>/dev/null || echo -O2 -g) -fstack-clash-protection
CPPFLAGS ?= $(shell $(DPKG_BUILDFLAGS) CPPFLAGS 2>/dev/null)
LDFLAGS ?= $(shell $(DPKG_BUILDFLAGS) LDFLAGS 2>/dev/null)

# Every flag that comes from a tool is expanded when a recipe runs, after `make deps-build` has installed the
# tool and the libraries (the := inside makes each $(shell) run once), never when the Makefile is read.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)
BUILD_CFLAGS = $(eval BUILD_CFLAGS := $$(filter-out $(NOT_WITH_SANITIZERS),$$(CFLAGS)))$(BUILD_CFLAGS)
BUILD_CPPFLAGS = $(eval BUILD_CPPFLAGS := $$(filter-out $(NOT_WITH_SANITIZERS),$$(CPPFLAGS)))$(BUILD_CPPFLAGS)
BUILD_LDFLAGS = $(eval BUILD_LDFLAGS := $$(LDFLAGS))$(BUILD_LDFLAGS)
ALL_CFLAGS = -std=gnu11 $(CFLAGS_WARN) $(BUILD_CFLAGS) $(BUILD_CPPFLAGS) -D_GNU_SOURCE -DHD_VERSION='"$(VERSION)"' \
	$(PKG_CFLAGS) $(SAN_CFLAGS)
ALL_LDFLAGS = $(BUILD_LDFLAGS) $(SAN_LDFLAGS)
LDLIBS = $(PKG_LIBS) -lpthread -lm
ifneq ($(SANITIZE),)
# FORTIFY's checked functions hide accesses from ASan, which checks more. Float-cast checks on top of what
# SANITIZE names; any report stops the process, so that a test fails on it.
NOT_WITH_SANITIZERS := -D_FORTIFY_SOURCE=%
SAN_CHECKS := $(SANITIZE),float-cast-overflow
SAN_CFLAGS = -fsanitize=$(SAN_CHECKS) -fno-omit-frame-pointer
SAN_LDFLAGS = -fsanitize=$(SAN_CHECKS)
BUILD := build/sanitize
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
else
BUILD := build
endif

SHELL := /bin/bash
SRCS := $(wildcard healthd/*.c)
OBJS := $(patsubst healthd/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

# Debian packages. Building (and the unit tests' cmocka) needs only DEB_BUILD: `make`, `make install` and
# `make unit` install just those. The servers and tools the tests and the demo run are DEB_TEST, installed by
# `make test` and `make demo` only.
DEB_BUILD := build-essential dpkg-dev pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libssl-dev libmariadb-dev \
	libhiredis-dev libsystemd-dev libcmocka-dev
DEB_TEST := python3 python3-pytest haproxy iptables iproute2 mariadb-server mariadb-client galera-4 redis-server \
	redis-tools prometheus-alertmanager prometheus socat curl ca-certificates openssl procps e2fsprogs python3-fusepy \
	systemd ansible-core ansible-lint valgrind man-db util-linux monitoring-plugins-basic monitoring-plugins-standard \
	clang libclang-rt-14-dev libfaketime chromium dnsmasq-base graphviz python3-diagrams \
	debhelper devscripts lintian mmdebstrap fakeroot

.PHONY: all deps deps-build deps-test test unit integration fuzz fuzz-regress clean run install uninstall bench bench-scale \
	docs demo demo-root deb
all: $(BUILD)/healthd

# Installs only what is missing, so that it costs nothing on a prepared machine.
define apt_install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$(echo $$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-build:
	$(call apt_install_missing,$(DEB_BUILD))
	@pkg-config --exists --print-errors $(PKGS)

deps-test:
	$(call apt_install_missing,$(DEB_TEST))

deps: deps-build deps-test

# The package build (debian/rules) has its Build-Depends already and sets DEPS_BUILD empty: apt is not run there.
DEPS_BUILD ?= deps-build
$(BUILD)/obj/%.o: healthd/%.c healthd/*.h | $(DEPS_BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/healthd: $(OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ihealthd -o $@ $< $(LIB_OBJS) $(ALL_LDFLAGS) $(LDLIBS) -lcmocka

unit: deps-build $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: deps $(BUILD)/healthd
	HEALTHD_BIN=$(CURDIR)/$(BUILD)/healthd /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider

# The one test command: unit and integration tests on the shipped build, then again under ASan and UBSan,
# then every fuzz target's corpus replayed (the regression part of `make fuzz`).
test: deps
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration
ifeq ($(SANITIZE),)
	$(MAKE) --no-print-directory SANITIZE=address,undefined unit integration
	$(MAKE) --no-print-directory fuzz-regress
endif

# libFuzzer targets (tests/fuzz/fuzz_*.c) over every object but main.o, all built by clang with ASan and UBSan.
# `make fuzz` runs each for FUZZ_SECONDS on a scratch copy of its corpus (tests/fuzz/corpus/NAME/, which is
# never written to); `make fuzz-regress` replays the corpus only.
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(patsubst healthd/%.c,build/fuzz/obj/%.o,$(filter-out healthd/main.c,$(SRCS)))
FUZZ_CFLAGS = -std=gnu11 -g -O1 -D_GNU_SOURCE -DHD_VERSION='"$(VERSION)"' -fno-omit-frame-pointer \
	-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined $(PKG_CFLAGS)

# Kept between runs (make would delete them as intermediate files).
.SECONDARY: $(FUZZ_LIB_OBJS)

build/fuzz/obj/%.o: healthd/%.c healthd/*.h | deps-build deps-test
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ihealthd -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do n=$${b#build/fuzz/}; n=$${n#fuzz_}; \
		scratch=build/fuzz/scratch/$$n; rm -rf $$scratch; mkdir -p $$scratch tests/fuzz/corpus/$$n; \
		echo "== $$b: $(FUZZ_SECONDS) s"; \
		$$b -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=build/fuzz/crash-$$n- $$scratch tests/fuzz/corpus/$$n; \
	done

fuzz-regress: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do n=$${b#build/fuzz/}; n=$${n#fuzz_}; \
		echo "== $$b: replaying tests/fuzz/corpus/$$n"; \
		files=$$(find tests/fuzz/corpus/$$n -type f 2>/dev/null | sort); [ -n "$$files" ] || continue; \
		$$b -timeout=10 $$files 2>&1 | tail -n 3; [ $${PIPESTATUS[0]} -eq 0 ]; \
	done

# The firewall incident, played and narrated in network namespaces (demo/incident.py); about a minute, as root.
demo: demo-root deps $(BUILD)/healthd
	@HEALTHD_BIN=$(CURDIR)/$(BUILD)/healthd /usr/bin/python3 demo/incident.py

demo-root:
	@[ "$$(id -u)" = 0 ] || { echo "make demo: run it as root (it creates network namespaces and firewall rules)" >&2; exit 2; }

run: $(BUILD)/healthd
	$(BUILD)/healthd --config examples/local.json

# The unit names /usr/local/sbin and /etc; they are rewritten to SBINDIR and SYSCONFDIR. An existing configuration
# is never overwritten. The service user and group (healthd) are made with systemd-sysusers from the installed
# sysusers file: on this system when DESTDIR is empty, inside DESTDIR (--root) when it is a root filesystem being
# built (it has etc/passwd), never in a package's staging tree (no etc/passwd: the package's postinst makes them).
# A new configuration is root:healthd 0640, so that the service reads it through its group.
install: $(BUILD)/healthd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/healthd
	install -m 0755 $(BUILD)/healthd $(DESTDIR)$(SBINDIR)/healthd
	sed -e 's#/usr/local/sbin/healthd#$(SBINDIR)/healthd#g' -e 's#/etc/healthd/#$(SYSCONFDIR)/healthd/#g' \
		systemd/healthd.service > $(DESTDIR)$(UNITDIR)/healthd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/healthd.service
	install -m 0644 systemd/healthd.sysusers $(DESTDIR)$(SYSUSERSDIR)/healthd.conf
	install -m 0644 man/healthd.8 $(DESTDIR)$(MANDIR)/man8/healthd.8
	install -m 0644 examples/healthd.json examples/default.json $(DESTDIR)$(DOCDIR)/examples/
	@if [ -n "$(DESTDIR)" ] && [ ! -e "$(DESTDIR)/etc/passwd" ]; then \
		echo "$(DESTDIR) has no etc/passwd (a package tree): the user healthd is not made here"; \
	elif command -v systemd-sysusers >/dev/null; then \
		echo "systemd-sysusers $(if $(DESTDIR),--root=$(DESTDIR) )$(DESTDIR)$(SYSUSERSDIR)/healthd.conf"; \
		systemd-sysusers $(if $(DESTDIR),--root=$(DESTDIR)) $(DESTDIR)$(SYSUSERSDIR)/healthd.conf; \
	else \
		echo "no systemd-sysusers: create the system user and group healthd (home /var/lib/healthd) yourself"; \
	fi
	@conf=$(DESTDIR)$(SYSCONFDIR)/healthd/healthd.json; \
	gid=$$(if [ -n "$(DESTDIR)" ]; then awk -F: '$$1 == "healthd" { print $$3 }' $(DESTDIR)/etc/group 2>/dev/null; \
		else getent group healthd | cut -d: -f3; fi); \
	if [ -e $$conf ]; then \
		echo "keeping the existing $$conf"; \
		[ -z "$$gid" ] || [ "$$(stat -c %g $$conf)" = "$$gid" ] || \
			echo "warning: $$conf is not of group healthd, which the service reads it as: chgrp healthd $$conf"; \
	else \
		install -m 0640 examples/default.json $$conf && \
		if [ -n "$$gid" ]; then chgrp $$gid $$conf; \
		else echo "no group healthd yet: once it exists, chgrp healthd $$conf"; fi; \
	fi

# The Debian package, build/healthd_$(VERSION)_amd64.deb, built from a copy of the tree (dpkg-buildpackage writes
# its output beside the source directory and its work into debian/).
deb: deps-build
	$(call apt_install_missing,debhelper)
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(BUILD)/deb/src
	cd $(BUILD)/deb/src && dpkg-buildpackage -b -uc -us --no-sign
	mv $(BUILD)/deb/healthd_$(VERSION)_amd64.deb $(BUILD)/
	@echo "built $(BUILD)/healthd_$(VERSION)_amd64.deb"

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/healthd $(DESTDIR)$(UNITDIR)/healthd.service $(DESTDIR)$(SYSUSERSDIR)/healthd.conf \
		$(DESTDIR)$(MANDIR)/man8/healthd.8 $(DESTDIR)$(DOCDIR)/examples/healthd.json \
		$(DESTDIR)$(DOCDIR)/examples/default.json

# Side-by-side benchmark against a reference measured in the same run (nginx, bench/line_server.c).
bench: deps $(BUILD)/healthd
	@dpkg-query -W -f='$${Status}' nginx-light wrk 2>/dev/null | grep -q 'install ok installed.*install ok installed' || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light wrk)
	HEALTHD_BIN=$(BUILD)/healthd bench/run.sh
	HEALTHD_BIN=$(BUILD)/healthd /usr/bin/python3 bench/program.py
	@$(MAKE) --no-print-directory bench-scale

# Cost per check as the number of checks grows, against the smallest N of the same run (bench/scale.sh): as root,
# in a network namespace of its own; SCALE_NS="100 1000 10000" and MEASURE_S=20 by default. `make bench` runs it too.
bench-scale: deps-build $(BUILD)/healthd
	@[ "$$(id -u)" = 0 ] || { echo "make bench-scale: run it as root (it creates a network namespace and a firewall rule)" >&2; exit 2; }
	$(call apt_install_missing,python3 iptables iproute2)
	HEALTHD_BIN=$(BUILD)/healthd bench/scale.sh

# Regenerates the README's configuration reference from the key tables the parser uses.
docs: $(BUILD)/healthd
	@/usr/bin/python3 -c 'import re,subprocess,sys; ref=subprocess.run(["$(BUILD)/healthd","--config-reference"],capture_output=True,text=True,check=True).stdout; p="README.md"; s=open(p).read(); s=re.sub(r"(<!-- BEGIN CONFIG REFERENCE -->\n).*(<!-- END CONFIG REFERENCE -->)", lambda m: m.group(1)+ref+m.group(2), s, flags=re.S); open(p,"w").write(s)'

clean:
	rm -rf build
