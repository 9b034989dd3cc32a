# Makefile: builds build/healthd, installs build and test dependencies from Debian, runs the tests.
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

PKGS := libevent libevent_pthreads libcjson libcurl hiredis libmariadb libsystemd
CFLAGS_WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wcast-qual -Wno-missing-field-initializers -Wno-format-nonliteral $(WERROR)
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS_WARN) $(CFLAGS) -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
BUILD := build/sanitize
# An undefined-behaviour report stops the process, so that a test fails on it instead of printing past it.
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
else
BUILD := build
endif

SRCS := $(wildcard healthd/*.c)
OBJS := $(patsubst healthd/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

# Debian packages needed to build, test and run the demo; `make deps` installs the missing ones.
DEB_BUILD := build-essential pkg-config libevent-dev libcjson-dev libcurl4-openssl-dev libmariadb-dev \
	libhiredis-dev libsystemd-dev libcmocka-dev
DEB_TEST := python3 python3-pytest haproxy iptables iproute2 mariadb-server mariadb-client redis-server \
	redis-tools prometheus-alertmanager prometheus socat curl ca-certificates openssl procps e2fsprogs python3-fusepy \
	systemd ansible-core valgrind
DEB_ALL := $(DEB_BUILD) $(DEB_TEST)

.PHONY: all deps test unit integration clean run install uninstall check-deps bench docs demo demo-root
all: $(BUILD)/healthd

# Installs only what is missing, so that it costs nothing on a prepared machine.
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

check-deps:
	@pkg-config --exists $(PKGS) || $(MAKE) --no-print-directory deps

$(BUILD)/obj/%.o: healthd/%.c healthd/*.h | check-deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/healthd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ihealthd -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -lcmocka

unit: deps $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: deps $(BUILD)/healthd
	HEALTHD_BIN=$(CURDIR)/$(BUILD)/healthd /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider

# The one test command: unit and integration tests on the shipped build, then again under ASan and UBSan.
test: deps
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration
ifeq ($(SANITIZE),)
	$(MAKE) --no-print-directory SANITIZE=address,undefined unit integration
endif

# The firewall incident, played and narrated in network namespaces (demo/incident.py); about a minute, as root.
demo: demo-root deps $(BUILD)/healthd
	@HEALTHD_BIN=$(CURDIR)/$(BUILD)/healthd /usr/bin/python3 demo/incident.py

demo-root:
	@[ "$$(id -u)" = 0 ] || { echo "make demo: run it as root (it creates network namespaces and firewall rules)" >&2; exit 2; }

run: deps $(BUILD)/healthd
	$(BUILD)/healthd --config examples/local.json

# The unit names /usr/local/sbin and /etc; they are rewritten to SBINDIR and SYSCONFDIR. An existing configuration
# is never overwritten; a new one is readable by the service's group (healthd) when that group exists.
install: $(BUILD)/healthd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/healthd
	install -m 0755 $(BUILD)/healthd $(DESTDIR)$(SBINDIR)/healthd
	sed -e 's#/usr/local/sbin/healthd#$(SBINDIR)/healthd#g' -e 's#/etc/healthd/#$(SYSCONFDIR)/healthd/#g' \
		systemd/healthd.service > $(DESTDIR)$(UNITDIR)/healthd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/healthd.service
	install -m 0644 systemd/healthd.sysusers $(DESTDIR)$(SYSUSERSDIR)/healthd.conf
	install -m 0644 man/healthd.8 $(DESTDIR)$(MANDIR)/man8/healthd.8
	install -m 0644 examples/healthd.json $(DESTDIR)$(DOCDIR)/examples/healthd.json
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/healthd/healthd.json ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/healthd/healthd.json"; \
	else \
		install -m 0640 examples/healthd.json $(DESTDIR)$(SYSCONFDIR)/healthd/healthd.json && \
		{ ! getent group healthd >/dev/null || chgrp healthd $(DESTDIR)$(SYSCONFDIR)/healthd/healthd.json; }; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/healthd $(DESTDIR)$(UNITDIR)/healthd.service $(DESTDIR)$(SYSUSERSDIR)/healthd.conf \
		$(DESTDIR)$(MANDIR)/man8/healthd.8 $(DESTDIR)$(DOCDIR)/examples/healthd.json

# Side-by-side benchmark against a reference measured in the same run (nginx, bench/line_server.c).
bench: deps $(BUILD)/healthd
	@dpkg-query -W -f='$${Status}' nginx-light wrk 2>/dev/null | grep -q 'install ok installed.*install ok installed' || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light wrk)
	HEALTHD_BIN=$(BUILD)/healthd bench/run.sh

# Regenerates the README's configuration reference from the key tables the parser uses.
docs: $(BUILD)/healthd
	@/usr/bin/python3 -c 'import re,subprocess,sys; ref=subprocess.run(["$(BUILD)/healthd","--config-reference"],capture_output=True,text=True,check=True).stdout; p="README.md"; s=open(p).read(); s=re.sub(r"(<!-- BEGIN CONFIG REFERENCE -->\n).*(<!-- END CONFIG REFERENCE -->)", lambda m: m.group(1)+ref+m.group(2), s, flags=re.S); open(p,"w").write(s)'

clean:
	rm -rf build
