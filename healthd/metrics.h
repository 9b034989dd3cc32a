/* metrics.h: the Prometheus /metrics endpoint: per-check series re-rendered only when a result arrives. */
#ifndef HEALTHD_METRICS_H
#define HEALTHD_METRICS_H

#include <stddef.h>

struct evbuffer;
struct hd_agent;
struct hd_alerts;
struct hd_check;
struct hd_engine;
struct hd_http;
struct hd_metrics;
struct hd_status;

/* Serves /metrics on http's listener. agent and alerts may be NULL (their counters then read 0). */
struct hd_metrics *metrics_new(struct hd_engine *engine, struct hd_http *http, struct hd_agent *agent,
			       struct hd_alerts *alerts);
/* Adds the admin, overall and reload state (healthd_admin_state, healthd_overall_up, ...) read from status. */
void metrics_set_status(struct hd_metrics *m, struct hd_status *status);
void metrics_free(struct hd_metrics *m);

/* Pure parts, for tests: a label value in the text format's escaping (\\ \" \n), and the per-check families. */
void hd_prom_add_label_value(struct evbuffer *out, const char *value);
void hd_prom_render_checks(struct evbuffer *out, const struct hd_check *const *checks, size_t n);

#endif
