/* http_api.h: the read-only HTTP API (/health, /health/NAME, /ready, /live), served from the status cache. */
#ifndef HEALTHD_HTTP_API_H
#define HEALTHD_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parse.h"

struct event_base;
struct evbuffer;
struct hd_config;
struct hd_connlimit;
struct hd_status;
struct hd_engine;
struct hd_http;

struct hd_http *http_api_start(struct event_base *base, const struct hd_config *cfg, struct hd_engine *engine,
			       struct hd_status *status);
void http_api_free(struct hd_http *h);
uint64_t http_api_requests(const struct hd_http *h);
size_t http_api_open_connections(const struct hd_http *h);
/* The listener's admission counters, for /metrics. */
struct hd_connlimit *http_api_connlimit(const struct hd_http *h);

/* A request as a route sees it. full_details: the client is in http.details_from. */
struct hd_http_request {
	enum hd_http_method method;
	const char *path;
	const char *accept;
	bool full_details;
};

/*
 * An extra endpoint served by another module (e.g. /metrics): fills body, may set *content_type, returns the status
 * (0: not this route's request). A cached answer goes in by reference (hd_refbuf_add, refbuf.h) to bytes the module
 * never changes again (it renders new ones and drops its reference to the old): queued answers keep them alive.
 */
typedef int (*hd_http_handler)(const struct hd_http_request *req, struct evbuffer *body, const char **content_type,
			       void *arg);
void http_api_add_route(struct hd_http *h, const char *path, hd_http_handler fn, void *arg);

#endif
