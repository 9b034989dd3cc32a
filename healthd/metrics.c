/* metrics.c: /metrics in the Prometheus text format; the per-check block is cached until the next result. */
#include "metrics.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "alerts.h"
#include "connlimit.h"
#include "engine.h"
#include "http_api.h"

struct hd_metrics {
	struct hd_engine *engine;
	struct hd_http *http;
	struct hd_agent *agent;
	struct hd_alerts *alerts;
	char *checks_block; /* every per-check family, as rendered at checks_version */
	size_t checks_len;
	unsigned checks_version;
	bool checks_valid;
};

static void add_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void hd_prom_add_label_value(struct evbuffer *out, const char *value)
{
	const char *run = value;

	for (const char *p = value; *p; p++) {
		const char *escaped = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
		if (escaped == NULL)
			continue;
		evbuffer_add(out, run, (size_t)(p - run));
		evbuffer_add(out, escaped, 2);
		run = p + 1;
	}
	evbuffer_add(out, run, strlen(run));
}

/* Starts a sample: NAME{check="..."  (the caller adds further labels, then closes with "} value"). */
static void start_check_sample(struct evbuffer *out, const char *name, const struct hd_check *c)
{
	evbuffer_add_printf(out, "%s{check=\"", name);
	hd_prom_add_label_value(out, c->conf->name);
	evbuffer_add(out, "\"", 1);
}

static bool has_result(const struct hd_check *c)
{
	return c->attempts > 0;
}

void hd_prom_render_checks(struct evbuffer *out, struct hd_check *const *checks, size_t n)
{
	add_family(out, "healthd_check_info", "gauge",
		   "Configured check: its type, target and whether it is critical (always 1).");
	for (size_t i = 0; i < n; i++) {
		start_check_sample(out, "healthd_check_info", checks[i]);
		evbuffer_add_printf(out, ",type=\"");
		hd_prom_add_label_value(out, checks[i]->conf->type->name);
		evbuffer_add_printf(out, "\",target=\"");
		hd_prom_add_label_value(out, checks[i]->conf->target);
		evbuffer_add_printf(out, "\",critical=\"%s\"} 1\n", checks[i]->conf->critical ? "true" : "false");
	}

	add_family(out, "healthd_check_up", "gauge",
		   "1 when the check is up (rise/fall applied), 0 when it is down or has no result yet.");
	for (size_t i = 0; i < n; i++) {
		start_check_sample(out, "healthd_check_up", checks[i]);
		evbuffer_add_printf(out, ",critical=\"%s\"} %d\n", checks[i]->conf->critical ? "true" : "false",
				    checks[i]->state == HD_STATE_UP ? 1 : 0);
	}

	add_family(out, "healthd_check_latency_seconds", "gauge",
		   "Duration of the check's latest attempt, whatever its outcome (absent before the first).");
	for (size_t i = 0; i < n; i++) {
		if (!has_result(checks[i]))
			continue;
		start_check_sample(out, "healthd_check_latency_seconds", checks[i]);
		evbuffer_add_printf(out, "} %.6f\n", checks[i]->last.latency_ms / 1000.0);
	}

	add_family(out, "healthd_check_last_result_timestamp_seconds", "gauge",
		   "Unix time at which the check's latest attempt ended (absent before the first).");
	for (size_t i = 0; i < n; i++) {
		if (!has_result(checks[i]))
			continue;
		start_check_sample(out, "healthd_check_last_result_timestamp_seconds", checks[i]);
		evbuffer_add_printf(out, "} %.3f\n", (double)checks[i]->last.wall_ms / 1000.0);
	}

	add_family(out, "healthd_check_attempts_total", "counter", "Attempts of the check that ended, whatever their outcome.");
	for (size_t i = 0; i < n; i++) {
		start_check_sample(out, "healthd_check_attempts_total", checks[i]);
		evbuffer_add_printf(out, "} %" PRIu64 "\n", checks[i]->attempts);
	}

	add_family(out, "healthd_check_failures_total", "counter",
		   "Failed attempts of the check, by kind of failure (timeout, refused, unreachable, dns, auth...).");
	for (size_t i = 0; i < n; i++)
		for (int kind = 0; kind < HD_KIND_COUNT; kind++) {
			if (kind == HD_KIND_OK)
				continue;
			start_check_sample(out, "healthd_check_failures_total", checks[i]);
			evbuffer_add_printf(out, ",kind=\"%s\"} %" PRIu64 "\n", hd_kind_name((enum hd_kind)kind),
					    checks[i]->results_by_kind[kind]);
		}

	add_family(out, "healthd_check_transitions_total", "counter",
		   "State changes of the check (pending, up, down), the first result included.");
	for (size_t i = 0; i < n; i++) {
		start_check_sample(out, "healthd_check_transitions_total", checks[i]);
		evbuffer_add_printf(out, "} %" PRIu64 "\n", checks[i]->transitions);
	}
}

static void refresh_checks_block(struct hd_metrics *m)
{
	unsigned version = engine_results_version(m->engine);
	size_t n = engine_n_checks(m->engine);
	struct hd_check **checks;
	struct evbuffer *buf;

	if (m->checks_valid && m->checks_version == version)
		return;
	checks = xcalloc(n + 1, sizeof(*checks));
	for (size_t i = 0; i < n; i++)
		checks[i] = engine_check(m->engine, i);
	buf = evbuffer_new();
	if (buf == NULL)
		hd_fatal("metrics: out of memory");
	hd_prom_render_checks(buf, checks, n);
	free(m->checks_block);
	m->checks_len = evbuffer_get_length(buf);
	m->checks_block = xmalloc(m->checks_len + 1);
	evbuffer_remove(buf, m->checks_block, m->checks_len);
	m->checks_block[m->checks_len] = '\0';
	evbuffer_free(buf);
	free(checks);
	m->checks_version = version;
	m->checks_valid = true;
}

static void add_counter(struct evbuffer *out, const char *name, const char *help, uint64_t value)
{
	add_family(out, name, "counter", help);
	evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, value);
}

/* What changes without a check result: alert delivery, request counters, build info. */
static void render_process(const struct hd_metrics *m, struct evbuffer *out)
{
	struct hd_alerts_counters alerts = {0};

	if (m->alerts)
		alerts_get_counters(m->alerts, &alerts);
	add_family(out, "healthd_alert_queue_depth", "gauge",
		   "Alert deliveries not done yet, one per event and webhook (spooled, waiting or in flight).");
	evbuffer_add_printf(out, "healthd_alert_queue_depth %" PRIu64 "\n", alerts.queue_depth);
	add_counter(out, "healthd_alert_events_total", "Alert events made: regression, recovery, update, reminder.",
		    alerts.events);
	add_counter(out, "healthd_alert_deliveries_total", "Alert deliveries a webhook accepted (2xx).", alerts.delivered);
	add_counter(out, "healthd_alert_delivery_failures_total",
		    "Alert delivery attempts that failed and will be retried (transport error, timeout, 5xx, 429).",
		    alerts.failed_attempts);
	add_counter(out, "healthd_alert_deliveries_dropped_total",
		    "Alert deliveries given up (other 4xx answers, spool size or age bounds, unreadable spool files).",
		    alerts.dropped);
	add_counter(out, "healthd_alert_events_held_total",
		    "Regressions and updates held back by min_gap_s (a flapping check).", alerts.held);
	add_counter(out, "healthd_http_requests_total", "HTTP requests served (this scrape included).",
		    http_api_requests(m->http));
	add_counter(out, "healthd_agent_requests_total", "HAProxy agent-check replies sent.",
		    m->agent ? agent_replies(m->agent) : 0);
	add_family(out, "healthd_build_info", "gauge", "The running healthd's version (always 1).");
	evbuffer_add_printf(out, "healthd_build_info{version=\"%s\"} 1\n", HD_VERSION);
}

static int serve_metrics(const struct hd_http_request *req, struct evbuffer *body, const char **content_type, void *arg)
{
	struct hd_metrics *m = arg;
	struct hd_connlimit *limits[2];
	size_t n_limits = 0;

	(void)req;
	refresh_checks_block(m);
	/* A copy, not a reference: the cache may be rebuilt before this reply has left. */
	evbuffer_add(body, m->checks_block, m->checks_len);
	render_process(m, body);
	limits[n_limits++] = http_api_connlimit(m->http);
	if (m->agent)
		limits[n_limits++] = agent_connlimit(m->agent);
	connlimit_render_metrics(body, limits, n_limits);
	*content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}

struct hd_metrics *metrics_new(struct hd_engine *engine, struct hd_http *http, struct hd_agent *agent,
			       struct hd_alerts *alerts)
{
	struct hd_metrics *m = xcalloc(1, sizeof(*m));

	m->engine = engine;
	m->http = http;
	m->agent = agent;
	m->alerts = alerts;
	http_api_add_route(http, "/metrics", serve_metrics, m);
	return m;
}

void metrics_free(struct hd_metrics *m)
{
	if (m == NULL)
		return;
	free(m->checks_block);
	free(m);
}
