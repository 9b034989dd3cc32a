/* tcp_connect.h: a resolve + TCP connect attempt that must connect, or (expect "blocked") must fail; tcp and http. */
#ifndef HEALTHD_TCP_CONNECT_H
#define HEALTHD_TCP_CONNECT_H

#include <stdbool.h>

#include "check.h"
#include "config.h"

enum { HD_EXPECT_OPEN, HD_EXPECT_BLOCKED };
extern const char *const hd_expect_choices[];

/* The two keys, for a type's key table: expect (an int, HD_EXPECT_*) and blocked_kinds (an unsigned, a bit per
 * kind; 0 = the default, timeout, refused and unreachable). */
int hd_blocked_parse_kinds(struct cfg_ctx *ctx, const struct cJSON *node, void *field);
#define HD_BLOCKED_KEYS(type, expect, kinds)                                                                        \
	{"expect", CFG_ENUM, offsetof(type, expect), false, 0, 0, "open", hd_expect_choices,                        \
	 "`blocked`: up while the connection fails (a firewall must stop it), down with kind `exposed` once it "    \
	 "connects", NULL, NULL, NULL},                                                                               \
	{"blocked_kinds", CFG_CUSTOM, offsetof(type, kinds), false, 0, 0, "[\"timeout\", \"refused\", \"unreachable\"]", \
	 NULL, "with expect `blocked`: the ways of failing that count as blocked (not `dns`: a name that does not "   \
	 "resolve is a failure of its own)", hd_blocked_parse_kinds, NULL, "array of kinds"}

/* Cross-key check: blocked_kinds only with expect blocked. 0 or -1 (error set in ctx). */
int hd_blocked_validate(int expect, unsigned kinds, struct cfg_ctx *ctx);

/* One attempt: resolve host (a failure is kind dns), then a TCP connect to port. expect open: up once connected, the
 * engine's deadline ends a connect without an answer. expect blocked: the connect must fail with one of kinds
 * (0 = the default) before its own timer, set short of the engine's deadline so that a silent DROP is seen by the
 * check itself; a connect that succeeds is kind exposed. Ends the attempt like any start(); hd_connect_cancel() is
 * then the type's cancel(). */
void hd_connect_start(struct hd_check_run *run, const char *host, int port, int expect, unsigned kinds);
void hd_connect_cancel(struct hd_check_run *run);

#endif
