/* resolve.c: evdns_getaddrinfo behind a small cancellable handle; IP literals never touch DNS. */
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Cancelled resolutions whose callback has not run yet: evdns delivers a cancellation from the loop, later. */
static unsigned cancels_in_flight;

struct hd_resolve {
	struct evdns_getaddrinfo_request *req;
	hd_resolve_fn cb;
	void *arg;
	char host[256];
	int port;
	int cancelled;
};

static void on_addrinfo(int err, struct evutil_addrinfo *res, void *arg)
{
	struct hd_resolve *r = arg;
	char why[384];

	if (r->cancelled || err == EVUTIL_EAI_CANCEL) {
		if (r->cancelled)
			cancels_in_flight--;
		if (res)
			evutil_freeaddrinfo(res);
		free(r);
		return;
	}
	r->req = NULL;
	if (err != 0 || res == NULL) {
		if (err == EVUTIL_EAI_NONAME || err == EVUTIL_EAI_NODATA)
			snprintf(why, sizeof(why), "resolve %s: the name does not exist (NXDOMAIN or no address)", r->host);
		else
			snprintf(why, sizeof(why), "resolve %s: %s", r->host, evutil_gai_strerror(err));
		r->cb(NULL, 0, why, r->arg);
	} else {
		r->cb(res->ai_addr, (socklen_t)res->ai_addrlen, NULL, r->arg);
	}
	if (res)
		evutil_freeaddrinfo(res);
	free(r);
}

static int is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void hd_resolve_begin(struct hd_check_run *run, const char *host, int port, hd_resolve_fn cb, void *arg,
		      struct hd_resolve **handle)
{
	struct hd_resolve *r = hd_resolve_start(run, host, port, cb, arg);

	if (r != NULL) /* NULL: the callback already ran and may have freed what handle points into */
		*handle = r;
}

struct hd_resolve *hd_resolve_start(struct hd_check_run *run, const char *host, int port, hd_resolve_fn cb, void *arg)
{
	struct evutil_addrinfo hints = {0};
	struct hd_resolve *r = xcalloc(1, sizeof(*r));
	struct evdns_getaddrinfo_request *req;
	char service[16];

	hd_run_phase(run, HD_PHASE_RESOLVE, NULL);
	r->cb = cb;
	r->arg = arg;
	r->port = port;
	hd_strlcpy(r->host, host, sizeof(r->host));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* ADDRCONFIG skips AAAA lookups on hosts without IPv6, but would also reject an IPv6 literal there. */
	if (!is_ip_literal(host))
		hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(service, sizeof(service), "%d", port);
	/* The callback may run (and free r) inside this call. */
	req = evdns_getaddrinfo(run->dns, host, service, &hints, on_addrinfo, r);
	if (req == NULL)
		return NULL;
	r->req = req;
	return r;
}

void hd_resolve_cancel(struct hd_resolve *r)
{
	if (r == NULL)
		return;
	r->cancelled = 1;
	cancels_in_flight++;
	evdns_getaddrinfo_cancel(r->req); /* on_addrinfo runs from the loop later, with EVUTIL_EAI_CANCEL, and frees r */
}

int hd_resolve_settle(struct event_base *base)
{
	for (int turn = 0; turn < 8 && cancels_in_flight > 0; turn++)
		if (event_base_loop(base, EVLOOP_NONBLOCK) < 0) /* called from inside the loop: it cannot turn */
			break;
	return cancels_in_flight == 0 ? 0 : -1;
}

struct bufferevent *hd_socket_connect(struct hd_check_run *run, const struct sockaddr *sa, socklen_t salen,
				      bufferevent_event_cb cb, void *arg, int *err)
{
	struct bufferevent *bev;

	hd_run_phase(run, HD_PHASE_CONNECT, NULL);
	hd_run_set_peer(run, sa);
	bev = bufferevent_socket_new(run->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, NULL, NULL, cb, arg);
	if (bufferevent_socket_connect(bev, sa, (int)salen) < 0) {
		*err = EVUTIL_SOCKET_ERROR();
		bufferevent_free(bev);
		return NULL;
	}
	hd_run_set_source(run, bufferevent_getfd(bev));
	return bev;
}

void hd_connect_failed(struct hd_check_run *run, int err)
{
	hd_check_done(run, hd_kind_from_errno(err), "connect %s: %s%s", run->peer, strerror(err),
		      err == ECONNREFUSED ? " (nothing listening, or a firewall REJECT)" : "");
}
