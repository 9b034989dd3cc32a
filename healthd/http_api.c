/* http_api.c: a small HTTP/1.1 server on bufferevents for the read-only API, bounded per connection and in total. */
#include "http_api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "config.h"
#include "connlimit.h"
#include "engine.h"
#include "http_parse.h"
#include "listen.h"
#include "status.h"

/* After the last answer of a connection, how long its unread input is drained so that closing does not reset. */
#define LINGER_MS 1000
#define ALLOWED_METHODS "GET, HEAD, OPTIONS"
#define HEALTH_JSON "application/health+json"
/* How much of an answer one write may take: as much as the socket takes (the kernel's buffer bounds it). */
#define HTTP_MAX_SINGLE_WRITE (4u << 20)
/* The status page is all inline: nothing it could be made to load from elsewhere runs or is fetched. */
#define PAGE_CSP "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:\r\n"

struct route {
	char *path;
	hd_http_handler fn;
	void *arg;
};

struct http_conn {
	struct hd_http *h;
	struct bufferevent *bev;
	struct event *deadline;
	struct hd_conn_slot slot;
	size_t scanned;      /* bytes of the input already searched for the end of the head */
	bool closing;        /* the last answer is queued: close once it is out */
	bool lingering;      /* the last answer is out and our side shut: draining what the client still sends */
	bool full_details;
	TAILQ_ENTRY(http_conn) link;
};

struct hd_http {
	struct event_base *base;
	struct evconnlistener *listener;
	struct hd_engine *engine;
	struct hd_status *status;
	struct hd_connlimit *limit;
	TAILQ_HEAD(, http_conn) conns;
	uint64_t requests;
	struct route routes[8];
	size_t n_routes;
};

static void conn_close(struct http_conn *c)
{
	struct hd_http *h = c->h;

	connlimit_remove(&c->slot);
	TAILQ_REMOVE(&h->conns, c, link);
	bufferevent_free(c->bev);
	event_free(c->deadline);
	free(c);
}

static void evict(struct hd_conn_slot *slot)
{
	conn_close((struct http_conn *)((char *)slot - offsetof(struct http_conn, slot)));
}

static void arm_deadline(struct http_conn *c, int ms)
{
	struct timeval tv = hd_ms_tv(ms);

	evtimer_add(c->deadline, &tv);
}

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/*
 * The one reply helper of every route and error (body_buf, when given, is moved, not copied): status line, Content-Type, Content-Length (also for HEAD, which
 * gets no body), Cache-Control, Allow for OPTIONS and 405, and Connection when the connection ends after it.
 */
static void send_reply(struct http_conn *c, const struct hd_http_head *req, int code, const char *type,
		       const char *body, size_t len, struct evbuffer *body_buf, bool close_after)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool keep = req != NULL && req->keep_alive && !close_after;
	int minor = req != NULL ? req->minor : 1;
	bool allow = code == 405 || (req != NULL && req->method == HD_HTTP_OPTIONS);
	bool head_only = req != NULL && req->method == HD_HTTP_HEAD;

	if (evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			       "Cache-Control: no-store\r\n%s%s%s\r\n", minor, code, reason_phrase(code), type, len,
			       strncmp(type, "text/html", 9) == 0 ? PAGE_CSP : "", allow ? "Allow: " ALLOWED_METHODS "\r\n" : "",
			       !keep ? "Connection: close\r\n" : minor == 0 ? "Connection: keep-alive\r\n" : "") < 0 ||
	    (!head_only && (body_buf != NULL ? evbuffer_add_buffer(out, body_buf) : evbuffer_add(out, body, len)) < 0)) {
		log_warn("http: out of memory for an answer; closing the connection");
		c->closing = true;
		evbuffer_drain(out, evbuffer_get_length(out));
		return;
	}
	c->closing = !keep;
	connlimit_set_level(&c->slot, HD_SLOT_BUSY);
	arm_deadline(c, engine_config(c->h->engine)->http.timeout_ms);
}

/* send_reply with the body in memory that stays the caller's (copied). */
static void send_answer(struct http_conn *c, const struct hd_http_head *req, int code, const char *type,
			const char *body, size_t len, bool close_after)
{
	send_reply(c, req, code, type, body, len, NULL, close_after);
}

static void send_error(struct http_conn *c, const struct hd_http_head *req, int code, const char *error)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", error);

	send_answer(c, req, code, "application/json", body, (size_t)n, true);
}

/* send_reply with a body built into an evbuffer that is then freed (len 0: it could not be built). */
static void send_built(struct http_conn *c, const struct hd_http_head *req, int code, const char *type,
		       struct evbuffer *body, size_t len)
{
	if (len == 0)
		send_error(c, req, 500, "out of memory");
	else
		send_reply(c, req, code, type, NULL, len, body, false);
	if (body != NULL)
		evbuffer_free(body);
}

/* Accept names the draft's media type (with a q other than 0): /health answers in that format. */
static bool wants_health_json(const char *accept)
{
	const char *p = strcasestr(accept, HEALTH_JSON);
	const char *q;

	if (p == NULL)
		return false;
	p += strlen(HEALTH_JSON);
	q = strchr(p, ',');
	for (const char *param = strchr(p, ';'); param != NULL && (q == NULL || param < q); param = strchr(param + 1, ';')) {
		param += 1 + strspn(param + 1, " \t");
		if ((param[0] == 'q' || param[0] == 'Q') && param[1] == '=' && strtod(param + 2, NULL) <= 0.0)
			return false;
	}
	return true;
}

static void serve_check(struct http_conn *c, const struct hd_http_head *req, const char *name)
{
	const struct hd_check *chk = engine_find(c->h->engine, name);
	int code;

	if (chk == NULL) {
		send_answer(c, req, 404, "application/json", "{\"error\":\"no check with that name\"}\n", 36, false);
		return;
	}
	code = chk->state == HD_STATE_UP ? 200 : 503;
	if (c->full_details) {
		struct evbuffer *body = evbuffer_new();
		send_built(c, req, code, "application/json", body, body != NULL ? status_check_body(c->h->status, chk, body) : 0);
	} else {
		char brief[64];
		int n = snprintf(brief, sizeof(brief), "{\"status\":\"%s\"}\n", hd_state_name(chk->state));
		send_answer(c, req, code, "application/json", brief, (size_t)n, false);
	}
}

/* false when the route declined the request (returned 0): the caller answers as if it were not there. */
static bool serve_route(struct http_conn *c, const struct hd_http_head *req, const struct route *r)
{
	struct hd_http_request hr = {.method = req->method, .path = req->path, .accept = req->accept,
				     .full_details = c->full_details};
	struct evbuffer *body = evbuffer_new();
	const char *type = "text/plain; charset=utf-8";
	int code;

	if (body == NULL) {
		send_error(c, req, 500, "out of memory");
		return true;
	}
	code = r->fn(&hr, body, &type, r->arg);
	if (code == 0) {
		evbuffer_free(body);
		return false;
	}
	/* moved, not copied: a route may answer with a reference to bytes it keeps (hd_refbuf_add) */
	send_reply(c, req, code, type, NULL, evbuffer_get_length(body), body, false);
	evbuffer_free(body);
	return true;
}

static void dispatch(struct http_conn *c, const struct hd_http_head *req)
{
	struct hd_http *h = c->h;
	const char *path = req->path, *body;
	size_t len;

	h->requests++;
	if (req->method == HD_HTTP_OTHER) {
		send_error(c, req, 405, "method not allowed (GET, HEAD and OPTIONS are)");
		return;
	}
	if (req->has_body) {
		send_error(c, req, 400, "a GET, HEAD or OPTIONS request carries no body");
		return;
	}
	if (strcmp(path, "*") == 0) {
		send_answer(c, req, 200, "text/plain; charset=utf-8", "", 0, false);
	} else if (strcmp(path, "/health") == 0 || strcmp(path, "/health/") == 0) {
		if (wants_health_json(req->accept)) {
			body = status_health_ietf_json(h->status, c->full_details, &len);
			send_answer(c, req, status_http_code(h->status), HEALTH_JSON, body, len, false);
			return;
		}
		if (c->full_details) {
			struct evbuffer *shared = evbuffer_new();
			send_built(c, req, status_http_code(h->status), "application/json", shared,
				   shared != NULL ? status_health_add(h->status, shared) : 0);
			return;
		}
		body = status_health_summary_json(h->status, &len);
		send_answer(c, req, status_http_code(h->status), "application/json", body, len, false);
	} else if (strncmp(path, "/health/", 8) == 0) {
		serve_check(c, req, path + 8);
	} else if (strcmp(path, "/ready") == 0) {
		/* for every load balancer: 503 in drain, maint and while stopping, and when a critical check is down */
		body = c->full_details ? status_ready_body(h->status, &len) : status_ready_summary(h->status, &len);
		send_answer(c, req, status_ready_code(h->status), "text/plain; charset=utf-8", body, len, false);
	} else if (strcmp(path, "/ready/deps") == 0) {
		/* the dependencies only: HAProxy's httpchk beside the agent, which carries drain and maint itself */
		body = c->full_details ? status_deps_body(h->status, &len) : status_deps_summary(h->status, &len);
		send_answer(c, req, status_http_code(h->status), "text/plain; charset=utf-8", body, len, false);
	} else if (strcmp(path, "/live") == 0) {
		send_answer(c, req, 200, "text/plain; charset=utf-8", "live\n", 5, false);
	} else {
		static const char index_body[] = "{\"error\":\"not found\",\"endpoints\":[\"/health\",\"/health/NAME\","
						 "\"/ready\",\"/ready/deps\",\"/live\",\"/metrics\",\"/history\",\"/graph\","
						 "\"/ (HTML, for browsers)\"]}\n";
		for (size_t i = 0; i < h->n_routes; i++)
			if (strcmp(path, h->routes[i].path) == 0 && serve_route(c, req, &h->routes[i]))
				return;
		send_answer(c, req, 404, "application/json", index_body, sizeof(index_body) - 1, false);
	}
}

/*
 * Answers the requests waiting in the input, one at a time: the next is read only once the last answer is out.
 * false when the connection was closed.
 */
static bool process_input(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t max_head = (size_t)engine_config(c->h->engine)->http.max_header_bytes;

	while (!c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		size_t len = evbuffer_get_length(in), end;
		struct hd_http_head req;
		const char *error, *data;
		int status;

		if (len == 0)
			return true;
		connlimit_set_level(&c->slot, HD_SLOT_EVICTABLE); /* a request has begun: no longer idle */
		data = (const char *)evbuffer_pullup(in, (ev_ssize_t)(len < max_head + 1 ? len : max_head + 1));
		if (data == NULL) {
			conn_close(c);
			return false;
		}
		end = hd_http_head_end(data, len < max_head + 1 ? len : max_head + 1, c->scanned > 3 ? c->scanned - 3 : 0);
		if (end == 0 || end > max_head) {
			if (len > max_head) {
				send_error(c, NULL, 431, "request head too large (http.max_header_bytes)");
				return true;
			}
			c->scanned = len;
			return true;
		}
		c->scanned = 0;
		if (hd_http_parse_head(data, end, &req, &status, &error) < 0) {
			evbuffer_drain(in, end);
			send_error(c, NULL, status, error);
			return true;
		}
		evbuffer_drain(in, end);
		dispatch(c, &req);
	}
	return true;
}

/* The last answer is out: shut our side, then read (and drop) what the client still sends, for a short while. */
static void start_linger(struct http_conn *c)
{
	c->lingering = true;
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	connlimit_set_level(&c->slot, HD_SLOT_IDLE_FIRST);
	arm_deadline(c, LINGER_MS);
	bufferevent_enable(c->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->lingering) {
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	(void)process_input(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	if (c->lingering)
		return;
	if (c->closing) {
		start_linger(c);
		return;
	}
	connlimit_set_level(&c->slot, HD_SLOT_IDLE_FIRST);
	(void)process_input(c); /* a pipelined request may be waiting */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	/* A client that half-closes after its request (nc -N) still gets the answer; then the connection ends. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->lingering) {
		if (!process_input(c))
			return;
		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
			c->closing = true;
			return;
		}
	}
	conn_close(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_close(arg); /* no complete request head, or the answer not taken, within http.timeout_ms */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct hd_http *h = arg;
	const struct hd_config *cfg = engine_config(h->engine);
	struct hd_conn_policy policy = {
		.max_total = cfg->http.max_connections,
		.max_per_source = cfg->http.max_connections_per_source,
		.allow = &cfg->http.allow_from,
		.max_total_key = "http.max_connections",
		.max_per_source_key = "http.max_connections_per_source",
		.allow_key = "not in http.allow_from",
	};
	struct http_conn *c = calloc(1, sizeof(*c));

	(void)l;
	(void)salen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->h = h;
	/* An answer bigger than one segment ends in a small one that Nagle holds until the client ACKs, which a
	 * keep-alive client delays: 40 ms per request on the second and later requests. Answers are written whole. */
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(h->base, on_deadline, c);
	if (c->bev == NULL || c->deadline == NULL) {
		log_warn("http: out of memory for a new connection; closing it");
		if (c->bev)
			bufferevent_free(c->bev);
		else
			evutil_closesocket(fd);
		if (c->deadline)
			event_free(c->deadline);
		free(c);
		return;
	}
	if (!connlimit_admit(h->limit, &policy, sa, &c->slot, evict)) {
		bufferevent_free(c->bev);
		event_free(c->deadline);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&h->conns, c, link);
	c->full_details = cfg->http.details_from.set ? hd_cidr_list_match(&cfg->http.details_from, sa)
						     : hd_sockaddr_is_loopback(sa);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* libevent writes at most 16 KiB per wake-up by default: a 49 KB page took four trips through the loop. */
	(void)bufferevent_set_max_single_write(c->bev, HTTP_MAX_SINGLE_WRITE);
	/* Reading stops while a full head's worth waits unanswered: a client that never reads cannot grow memory. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)cfg->http.max_header_bytes + 1);
	arm_deadline(c, cfg->http.timeout_ms);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0)
		conn_close(c);
}

struct hd_http *http_api_start(struct event_base *base, const struct hd_config *cfg, struct hd_engine *engine,
			       struct hd_status *status)
{
	struct hd_http *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->engine = engine;
	h->status = status;
	TAILQ_INIT(&h->conns);
	h->listener = hd_listen_tcp(base, cfg->listen.http, "http", on_accept, h);
	if (h->listener == NULL) {
		free(h);
		return NULL;
	}
	h->limit = connlimit_new(base, "http");
	connlimit_attach(h->limit, h->listener, on_accept, h);
	hd_check_nofile(cfg);
	log_info("http API listening on %s", cfg->listen.http);
	return h;
}

void http_api_add_route(struct hd_http *h, const char *path, hd_http_handler fn, void *arg)
{
	if (h->n_routes == HD_ARRAY_LEN(h->routes))
		hd_fatal("too many HTTP routes");
	h->routes[h->n_routes++] = (struct route){xstrdup(path), fn, arg};
}

uint64_t http_api_requests(const struct hd_http *h)
{
	return h->requests;
}

size_t http_api_open_connections(const struct hd_http *h)
{
	return connlimit_open(h->limit);
}

struct hd_connlimit *http_api_connlimit(const struct hd_http *h)
{
	return h->limit;
}

void http_api_free(struct hd_http *h)
{
	if (h == NULL)
		return;
	while (!TAILQ_EMPTY(&h->conns))
		conn_close(TAILQ_FIRST(&h->conns));
	evconnlistener_free(h->listener);
	connlimit_free(h->limit);
	for (size_t i = 0; i < h->n_routes; i++)
		free(h->routes[i].path);
	free(h);
}
