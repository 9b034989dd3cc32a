/* graph.c: GET /graph, this backend's edges drawn as `healthd fleet --dot` draws the fleet, rebuilt per result. */
#include "graph.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "fleet.h"
#include "http_api.h"
#include "refbuf.h"
#include "status.h"
#include "util.h"

struct hd_graph {
	struct hd_engine *engine;
	struct hd_status *status;
	struct hd_refbuf *dot; /* never modified once built: answers reference its bytes */
	unsigned results_version, state_version;
};

/* The fleet's renderer over this healthd's own /health body: one backend, the same graph. */
static void render(struct hd_graph *g)
{
	struct hd_fleet_reply reply = {.url = "/health", .name = engine_config(g->engine)->node_name,
				       .answered = true, .http_status = 200};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (out == NULL)
		hd_fatal("out of memory");
	reply.body = status_health_json(g->status, &reply.body_len);
	hd_fleet_report(&reply, 1, HD_FLEET_DOT, out);
	fclose(out);
	hd_refbuf_unref(g->dot); /* answers still queued keep their references to its bytes */
	g->dot = hd_refbuf_new(len);
	memcpy(g->dot->data, text, len);
	free(text);
	g->results_version = engine_results_version(g->engine);
	g->state_version = engine_state_version(g->engine);
}

static int serve_graph(const struct hd_http_request *req, struct evbuffer *body, const char **content_type,
		       void *arg)
{
	struct hd_graph *g = arg;

	if (!req->full_details) {
		*content_type = "application/json";
		evbuffer_add_printf(body, "{\"error\":\"the graph is shown to http.details_from only\"}\n");
		return 403;
	}
	if (g->dot == NULL || g->results_version != engine_results_version(g->engine) ||
	    g->state_version != engine_state_version(g->engine))
		render(g);
	*content_type = "text/vnd.graphviz; charset=utf-8";
	hd_refbuf_add(body, g->dot);
	return 200;
}

struct hd_graph *graph_new(struct hd_engine *engine, struct hd_status *status, struct hd_http *http)
{
	struct hd_graph *g = xcalloc(1, sizeof(*g));

	g->engine = engine;
	g->status = status;
	http_api_add_route(http, "/graph", serve_graph, g);
	return g;
}

void graph_free(struct hd_graph *g)
{
	if (g == NULL)
		return;
	hd_refbuf_unref(g->dot);
	free(g);
}
