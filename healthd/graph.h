/* graph.h: GET /graph, this backend's part of the fleet's dependency graph (Graphviz DOT), from the cached state. */
#ifndef HEALTHD_GRAPH_H
#define HEALTHD_GRAPH_H

struct hd_engine;
struct hd_http;
struct hd_status;
struct hd_graph;

struct hd_graph *graph_new(struct hd_engine *engine, struct hd_status *status, struct hd_http *http);
void graph_free(struct hd_graph *g);

#endif
