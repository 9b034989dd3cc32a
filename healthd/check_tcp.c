/* check_tcp.c: the tcp check: resolve, then a TCP connect that must complete before the deadline. */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "resolve.h"

struct tcp_conf {
	char *host;
	int port;
};

struct tcp_attempt {
	struct hd_check_run *run;
	struct hd_resolve *resolve;
	struct bufferevent *bev;
};

static const struct cfg_key tcp_keys[] = {
	{"host", CFG_STRING, offsetof(struct tcp_conf, host), true, 0, 0, NULL, NULL,
	 "name or IP address; names are resolved again on every attempt"},
	{"port", CFG_INT, offsetof(struct tcp_conf, port), true, 1, 65535, NULL, NULL, "TCP port"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static int tcp_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	const struct tcp_conf *tc = conf->type_conf;

	(void)ctx;
	conf->target = hd_join_hostport(tc->host, tc->port);
	return 0;
}

static void attempt_free(struct tcp_attempt *a)
{
	hd_resolve_cancel(a->resolve);
	if (a->bev)
		bufferevent_free(a->bev);
	a->run->state = NULL;
	free(a);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_attempt *a = arg;
	struct hd_check_run *run = a->run;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		hd_run_set_source(run, bufferevent_getfd(a->bev));
		attempt_free(a);
		hd_check_done(run, HD_KIND_OK, "connect %s: connected", run->peer);
		return;
	}
	attempt_free(a);
	hd_connect_failed(run, err);
}

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct tcp_attempt *a = arg;
	struct hd_check_run *run = a->run;
	int err;

	a->resolve = NULL;
	if (error != NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_DNS, "%s", error);
		return;
	}
	a->bev = hd_connect_start(run, sa, salen, on_event, a, &err);
	if (a->bev == NULL) {
		attempt_free(a);
		hd_connect_failed(run, err);
	}
}

static void tcp_start(struct hd_check_run *run)
{
	const struct tcp_conf *tc = run->conf->type_conf;
	struct tcp_attempt *a = xcalloc(1, sizeof(*a));
	struct hd_resolve *r;

	a->run = run;
	run->state = a;
	r = hd_resolve_start(run, tc->host, tc->port, on_resolved, a);
	if (r != NULL) /* NULL: the callback already ran and may have freed a */
		a->resolve = r;
}

static void tcp_cancel(struct hd_check_run *run)
{
	if (run->state)
		attempt_free(run->state);
}

const struct hd_check_type hd_check_tcp = {
	.name = "tcp",
	.summary = "a TCP connect to host:port that completes within the deadline is up",
	.keys = tcp_keys,
	.conf_size = sizeof(struct tcp_conf),
	.validate = tcp_validate,
	.start = tcp_start,
	.cancel = tcp_cancel,
};
