/* http_api.h: the read-only HTTP API (/health, /health/NAME, /ready, /live), served from the status cache. */
#ifndef HEALTHD_HTTP_API_H
#define HEALTHD_HTTP_API_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_request;
struct hd_config;
struct hd_status;
struct hd_engine;
struct hd_http;

struct hd_http *http_api_start(struct event_base *base, const struct hd_config *cfg, struct hd_engine *engine,
			       struct hd_status *status);
void http_api_free(struct hd_http *h);
uint64_t http_api_requests(const struct hd_http *h);
size_t http_api_open_connections(const struct hd_http *h);

/* An extra endpoint served by another module (e.g. /metrics). */
typedef void (*hd_http_handler)(struct evhttp_request *req, void *arg);
void http_api_add_route(struct hd_http *h, const char *path, hd_http_handler fn, void *arg);

#endif
