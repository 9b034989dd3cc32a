/* tcp_connect.c: one resolve + TCP connect attempt, for tcp and for expect "blocked" (the connect must fail: its
 * own timer, then the verdict), and the keys of expect blocked. */
#include "tcp_connect.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "resolve.h"

const char *const hd_expect_choices[] = {"open", "blocked", NULL};

#define KIND_BIT(k) (1u << (unsigned)(k))
static const unsigned default_kinds = KIND_BIT(HD_KIND_TIMEOUT) | KIND_BIT(HD_KIND_REFUSED) |
				      KIND_BIT(HD_KIND_UNREACHABLE);

int hd_blocked_parse_kinds(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	const cJSON *item;
	unsigned mask = 0;

	if (!cJSON_IsArray(node) || cJSON_GetArraySize(node) == 0)
		return cfg_error(ctx, node, false, "expected a non-empty array of kinds (timeout, refused, unreachable)");
	cJSON_ArrayForEach(item, node) {
		int k = cJSON_IsString(item) ? hd_kind_from_name(item->valuestring) : -1;
		if (k == HD_KIND_DNS)
			return cfg_error(ctx, item, false, "\"dns\" cannot count as blocked: a name that does not resolve "
					 "is a failure of its own (one of timeout, refused, unreachable)");
		if (k < 0 || !(default_kinds & KIND_BIT(k)))
			return cfg_error(ctx, item, false, "%s%s%s is not a way of being blocked (one of timeout, refused, "
					 "unreachable)", cJSON_IsString(item) ? "\"" : "",
					 cJSON_IsString(item) ? item->valuestring : cfg_json_type_name(item),
					 cJSON_IsString(item) ? "\"" : "");
		mask |= KIND_BIT(k);
	}
	*(unsigned *)field = mask;
	return 0;
}

int hd_blocked_validate(int expect, unsigned kinds, struct cfg_ctx *ctx)
{
	const cJSON *k = ctx->check_node ? cJSON_GetObjectItemCaseSensitive(ctx->check_node, "blocked_kinds") : NULL;

	if (kinds != 0 && expect != HD_EXPECT_BLOCKED)
		return cfg_error(ctx, k ? k : ctx->check_node, true, "blocked_kinds needs expect: \"blocked\"");
	return 0;
}

/* How long the connect may wait for an answer: the engine's deadline less a margin. */
static int connect_ms(const struct hd_check_run *run)
{
	int left = hd_run_remaining_ms(run);
	int margin = left / 10 > 20 ? left / 10 : 20;

	return left - margin > 1 ? left - margin : 1;
}

/* The connect to run->peer connected, or failed with errno err (ETIMEDOUT: no answer within waited_ms). */
static void verdict(struct hd_check_run *run, unsigned kinds, bool connected, int err, int waited_ms)
{
	const char *from = run->source_addr[0] ? run->source_addr : "this host";
	enum hd_kind kind;
	char how[160];

	if (connected) {
		hd_check_done(run, HD_KIND_EXPOSED, "%s accepted a connection from %s: it must be blocked", run->peer,
			      from);
		return;
	}
	kind = hd_kind_from_errno(err);
	if (kind == HD_KIND_TIMEOUT)
		snprintf(how, sizeof(how), "silently dropped (no answer within %d ms)", waited_ms);
	else
		snprintf(how, sizeof(how), "%s (%s)", hd_kind_name(kind), strerror(err));
	if (kind == HD_KIND_ERROR) {
		hd_check_done(run, kind, "connect %s from %s: %s: cannot tell whether it is blocked", run->peer, from,
			      strerror(err));
		return;
	}
	if ((kinds ? kinds : default_kinds) & KIND_BIT(kind)) {
		hd_check_done(run, HD_KIND_OK, "connect %s from %s: %s, as expected", run->peer, from, how);
		return;
	}
	hd_check_done(run, kind, "connect %s from %s: %s, not one of the blocked_kinds", run->peer, from, how);
}

struct connect_attempt {
	struct hd_check_run *run;
	bool blocked;
	unsigned kinds;
	struct hd_resolve *resolve;
	struct bufferevent *bev;
	struct event *timer; /* the connect's own deadline */
	int wait_ms;
};

static void attempt_free(struct connect_attempt *a)
{
	hd_resolve_cancel(a->resolve);
	if (a->bev)
		bufferevent_free(a->bev);
	if (a->timer)
		event_free(a->timer);
	a->run->state = NULL;
	free(a);
}

static void attempt_end(struct connect_attempt *a, bool connected, int err)
{
	struct hd_check_run *run = a->run;
	bool blocked = a->blocked;
	unsigned kinds = a->kinds;
	int waited = a->wait_ms;

	attempt_free(a);
	if (blocked)
		verdict(run, kinds, connected, err, waited);
	else if (connected)
		hd_check_done(run, HD_KIND_OK, "connect %s: connected", run->peer);
	else
		hd_connect_failed(run, err);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	attempt_end(arg, what & BEV_EVENT_CONNECTED, err);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	attempt_end(arg, false, ETIMEDOUT);
}

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct connect_attempt *a = arg;
	struct hd_check_run *run = a->run;
	struct timeval tv;
	int err;

	a->resolve = NULL;
	if (error != NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_DNS, "%s", error);
		return;
	}
	a->bev = hd_socket_connect(run, sa, salen, on_event, a, &err);
	if (a->bev == NULL) {
		attempt_end(a, false, err);
		return;
	}
	if (!a->blocked)
		return; /* the engine's deadline ends a connect that gets no answer */
	a->wait_ms = connect_ms(run);
	tv = hd_ms_tv(a->wait_ms);
	a->timer = evtimer_new(run->base, on_connect_timeout, a);
	evtimer_add(a->timer, &tv);
}

void hd_connect_start(struct hd_check_run *run, const char *host, int port, int expect, unsigned kinds)
{
	struct connect_attempt *a = xcalloc(1, sizeof(*a));

	a->run = run;
	a->blocked = expect == HD_EXPECT_BLOCKED;
	a->kinds = kinds;
	run->state = a;
	hd_resolve_begin(run, host, port, on_resolved, a, &a->resolve);
}

void hd_connect_cancel(struct hd_check_run *run)
{
	if (run->state)
		attempt_free(run->state);
}
