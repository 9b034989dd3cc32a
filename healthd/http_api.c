/* http_api.c: evhttp server with limits (timeouts, header size, connection cap) answering from the status cache. */
#include "http_api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "engine.h"
#include "listen.h"
#include "status.h"

struct route {
	char *path;
	hd_http_handler fn;
	void *arg;
};

struct hd_http {
	struct evhttp *http;
	struct evconnlistener *listener;
	struct hd_engine *engine;
	struct hd_status *status;
	struct bufferevent **conns; /* every open connection, each holding our extra reference */
	size_t n_conns, cap_conns;
	int max_connections;
	bool paused;
	struct event *sweep;
	uint64_t requests;
	struct route routes[8];
	size_t n_routes;
};

static void reply(struct evhttp_request *req, int code, const char *type, const char *body, size_t len)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();

	evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS)
		evhttp_add_header(out, "Allow", "GET, HEAD, OPTIONS");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) { /* evhttp omits it; HEAD must match GET */
		char length[24];
		snprintf(length, sizeof(length), "%zu", len);
		evhttp_add_header(out, "Content-Length", length);
	}
	evbuffer_add(buf, body, len);
	evhttp_send_reply(req, code, code == 200 ? "OK" : code == 503 ? "Service Unavailable" :
						  code == 404 ? "Not Found" : "Error", buf);
	evbuffer_free(buf);
}

static void serve_health(struct hd_http *h, struct evhttp_request *req)
{
	size_t len;
	const char *body = status_health_json(h->status, &len);

	reply(req, status_http_code(h->status), "application/json", body, len);
}

static void serve_check(struct hd_http *h, struct evhttp_request *req, const char *name)
{
	struct hd_check *c = engine_find(h->engine, name);
	size_t len;
	const char *body;

	if (c == NULL) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "{\"error\":\"no check with that name\"}\n");
		reply(req, 404, "application/json", msg, (size_t)n);
		return;
	}
	body = status_check_json(h->status, c, &len);
	reply(req, c->state == HD_STATE_UP ? 200 : 503, "application/json", body, len);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct hd_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t len;
	const char *body;

	h->requests++;
	if (path == NULL || path[0] == '\0')
		path = "/";
	if (strcmp(path, "/health") == 0 || strcmp(path, "/health/") == 0) {
		serve_health(h, req);
	} else if (strncmp(path, "/health/", 8) == 0) {
		char *name = evhttp_uridecode(path + 8, 0, NULL);
		serve_check(h, req, name ? name : "");
		free(name);
	} else if (strcmp(path, "/ready") == 0) {
		body = status_ready_body(h->status, &len);
		reply(req, status_http_code(h->status), "text/plain; charset=utf-8", body, len);
	} else if (strcmp(path, "/live") == 0) {
		reply(req, 200, "text/plain; charset=utf-8", "live\n", 5);
	} else {
		for (size_t i = 0; i < h->n_routes; i++)
			if (strcmp(path, h->routes[i].path) == 0) {
				h->routes[i].fn(req, h->routes[i].arg);
				return;
			}
		static const char index_body[] = "{\"error\":\"not found\",\"endpoints\":[\"/health\",\"/health/NAME\","
						 "\"/ready\",\"/live\",\"/metrics\"]}\n";
		reply(req, 404, "application/json", index_body, sizeof(index_body) - 1);
	}
}

/*
 * Connection cap. evhttp 2.1 has none and no hook when a connection ends, so each connection's bufferevent is
 * created here with one extra reference. bufferevent_free() (evhttp's close) clears its callbacks while our
 * reference keeps it allocated; a sweep finds those, drops the last reference (closing the socket) and counts
 * them out. At the cap the listener pauses and further connections wait in the kernel's backlog.
 */
static void update_listener(struct hd_http *h)
{
	bool full = h->n_conns >= (size_t)h->max_connections;

	if (full && !h->paused)
		evconnlistener_disable(h->listener);
	else if (!full && h->paused)
		evconnlistener_enable(h->listener);
	h->paused = full;
}

static void sweep_connections(evutil_socket_t fd, short what, void *arg)
{
	struct hd_http *h = arg;
	size_t kept = 0;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < h->n_conns; i++) {
		bufferevent_data_cb rd, wr;
		bufferevent_event_cb ev;
		void *cbarg;
		bufferevent_getcb(h->conns[i], &rd, &wr, &ev, &cbarg);
		if (rd == NULL && wr == NULL && ev == NULL)
			bufferevent_decref(h->conns[i]); /* evhttp let it go: this frees it and closes the socket */
		else
			h->conns[kept++] = h->conns[i];
	}
	h->n_conns = kept;
	update_listener(h);
	if (h->n_conns > 0) {
		struct timeval tv = {0, 50 * 1000};
		evtimer_add(h->sweep, &tv);
	}
}

static struct bufferevent *make_connection_bev(struct event_base *base, void *arg)
{
	struct hd_http *h = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev == NULL)
		return NULL;
	bufferevent_incref(bev);
	if (h->n_conns == h->cap_conns) {
		h->cap_conns = h->cap_conns ? h->cap_conns * 2 : 64;
		h->conns = xrealloc(h->conns, h->cap_conns * sizeof(*h->conns));
	}
	h->conns[h->n_conns++] = bev;
	update_listener(h);
	if (!evtimer_pending(h->sweep, NULL)) {
		struct timeval tv = {0, 50 * 1000};
		evtimer_add(h->sweep, &tv);
	}
	return bev;
}

struct hd_http *http_api_start(struct event_base *base, const struct hd_config *cfg, struct hd_engine *engine,
			       struct hd_status *status)
{
	struct hd_http *h = xcalloc(1, sizeof(*h));
	struct timeval tv = {.tv_sec = cfg->http.timeout_ms / 1000, .tv_usec = (cfg->http.timeout_ms % 1000) * 1000};

	h->engine = engine;
	h->status = status;
	h->max_connections = cfg->http.max_connections;
	h->listener = hd_listen_tcp(base, cfg->listen.http, "http", NULL, NULL);
	if (h->listener == NULL) {
		free(h);
		return NULL;
	}
	h->sweep = evtimer_new(base, sweep_connections, h);
	h->http = evhttp_new(base);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_timeout_tv(h->http, &tv);
	evhttp_set_max_headers_size(h->http, (ev_ssize_t)cfg->http.max_header_bytes);
	evhttp_set_max_body_size(h->http, 1024);
	evhttp_set_bevcb(h->http, make_connection_bev, h);
	evhttp_set_gencb(h->http, on_request, h);
	if (evhttp_bind_listener(h->http, h->listener) == NULL) {
		log_err("http %s: cannot attach the listener", cfg->listen.http);
		evhttp_free(h->http);
		event_free(h->sweep);
		free(h);
		return NULL;
	}
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
	return h->n_conns;
}

void http_api_free(struct hd_http *h)
{
	if (h == NULL)
		return;
	evhttp_free(h->http); /* frees the bound listener and every connection (our references remain) */
	for (size_t i = 0; i < h->n_conns; i++)
		bufferevent_decref(h->conns[i]);
	free(h->conns);
	event_free(h->sweep);
	for (size_t i = 0; i < h->n_routes; i++)
		free(h->routes[i].path);
	free(h);
}
