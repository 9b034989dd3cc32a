/* check_tcp.c: the tcp check: resolve, then a TCP connect that must complete before the deadline (or, with expect
 * "blocked", must fail); the attempt itself is tcp_connect.c's. */
#include <stddef.h>

#include "check.h"
#include "config.h"
#include "tcp_connect.h"

struct tcp_conf {
	char *host;
	int port;
	int expect;             /* HD_EXPECT_* */
	unsigned blocked_kinds; /* 0 = the default */
};

static const struct cfg_key tcp_keys[] = {
	{"host", CFG_STRING, offsetof(struct tcp_conf, host), true, 0, 0, NULL, NULL,
	 "name or IP address; names are resolved again on every attempt"},
	{"port", CFG_INT, offsetof(struct tcp_conf, port), true, 1, 65535, NULL, NULL, "TCP port"},
	HD_BLOCKED_KEYS(struct tcp_conf, expect, blocked_kinds),
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static int tcp_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	const struct tcp_conf *tc = conf->type_conf;

	conf->target = hd_join_hostport(tc->host, tc->port);
	return hd_blocked_validate(tc->expect, tc->blocked_kinds, ctx);
}

static void tcp_start(struct hd_check_run *run)
{
	const struct tcp_conf *tc = run->conf->type_conf;

	hd_connect_start(run, tc->host, tc->port, tc->expect, tc->blocked_kinds);
}

const struct hd_check_type hd_check_tcp = {
	.name = "tcp",
	.summary = "a TCP connect to host:port that completes within the deadline is up",
	.keys = tcp_keys,
	.conf_size = sizeof(struct tcp_conf),
	.validate = tcp_validate,
	.start = tcp_start,
	.cancel = hd_connect_cancel,
};
