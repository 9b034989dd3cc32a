/* metrics.c: /metrics in the Prometheus text format; the per-check block is cached until the next result. */
#include "metrics.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent.h"
#include "cert.h"
#include "alerts.h"
#include "config.h"
#include "connlimit.h"
#include "engine.h"
#include "http_api.h"
#include "nagios.h"
#include "refbuf.h"
#include "status.h"

struct hd_metrics {
	struct hd_engine *engine;
	struct hd_http *http;
	struct hd_agent *agent;
	struct hd_alerts *alerts;
	struct hd_status *status;
	struct hd_refbuf *block; /* every per-check family, as rendered at checks_version */
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

void hd_prom_render_checks(struct evbuffer *out, const struct hd_check *const *checks, size_t n)
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

	add_family(out, "healthd_check_state_info", "gauge",
		   "The check's state as /health says it (always 1): status, kind, the address tried and the local source "
		   "address. One series per check at a time: its labels change with the state, the kind or the address.");
	for (size_t i = 0; i < n; i++) {
		const struct hd_check *c = checks[i];
		start_check_sample(out, "healthd_check_state_info", c);
		evbuffer_add_printf(out, ",status=\"%s\",kind=\"%s\",address=\"", hd_check_status_word(c),
				    hd_check_kind_word(c));
		hd_prom_add_label_value(out, c->last.peer);
		evbuffer_add_printf(out, "\",source_addr=\"");
		hd_prom_add_label_value(out, c->last.source_addr);
		evbuffer_add_printf(out, "\"} 1\n");
	}

	add_family(out, "healthd_check_since_timestamp_seconds", "gauge",
		   "Unix time of the check's latest state change (absent before the first result).");
	for (size_t i = 0; i < n; i++) {
		if (checks[i]->since_wall_ms <= 0)
			continue;
		start_check_sample(out, "healthd_check_since_timestamp_seconds", checks[i]);
		evbuffer_add_printf(out, "} %.3f\n", (double)checks[i]->since_wall_ms / 1000.0);
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
		   "Failed attempts of the check, by kind of failure (timeout, refused, dns, auth...) and the phase it "
		   "failed in (resolve, connect, tls, handshake, auth, request, response...); only pairs seen.");
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < checks[i]->n_failures; j++) {
			const struct hd_failure_count *f = &checks[i]->failures[j];
			start_check_sample(out, "healthd_check_failures_total", checks[i]);
			evbuffer_add_printf(out, ",kind=\"%s\",phase=\"%s\"} %" PRIu64 "\n", hd_kind_name((enum hd_kind)f->kind),
					    hd_phase_name((enum hd_phase)f->phase), f->count);
		}

	add_family(out, "healthd_check_warning", "gauge",
		   "1 when the check's latest attempt passed with a warning (a plugin's WARNING): up, status warn.");
	for (size_t i = 0; i < n; i++) {
		if (!has_result(checks[i]))
			continue;
		start_check_sample(out, "healthd_check_warning", checks[i]);
		evbuffer_add_printf(out, "} %d\n", checks[i]->last.warn ? 1 : 0);
	}

	add_family(out, "healthd_check_perfdata", "gauge",
		   "A plugin's performance data from the latest attempt, in base units (seconds, bytes, percent).");
	for (size_t i = 0; i < n; i++) {
		const struct hd_perfdata *perf;
		size_t n_perf;
		if (checks[i]->conf->type->perfdata == NULL || checks[i]->persist == NULL)
			continue;
		n_perf = checks[i]->conf->type->perfdata(checks[i]->persist, &perf);
		for (size_t j = 0; j < n_perf; j++) {
			start_check_sample(out, "healthd_check_perfdata", checks[i]);
			evbuffer_add_printf(out, ",label=\"");
			hd_prom_add_label_value(out, perf[j].label);
			evbuffer_add_printf(out, "\"} %.15g\n", perf[j].value);
		}
	}

	add_family(out, "healthd_check_cert_expiry_timestamp_seconds", "gauge",
		   "When the peer certificate the check's latest handshake saw expires (notAfter, Unix time).");
	for (size_t i = 0; i < n; i++) {
		const struct hd_cert_info *cert = hd_check_cert(checks[i]);
		if (cert == NULL)
			continue;
		start_check_sample(out, "healthd_check_cert_expiry_timestamp_seconds", checks[i]);
		evbuffer_add_printf(out, "} %lld\n", (long long)cert->not_after_s);
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
	const struct hd_check **checks;
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
	hd_refbuf_unref(m->block);
	m->block = hd_refbuf_take(buf);
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
		    "Alert delivery attempts that failed and will be retried (transport error, timeout, any answer but 2xx).",
		    alerts.failed_attempts);
	add_counter(out, "healthd_alert_delivery_rejections_total",
		    "Of those, 3xx and 4xx answers but 429: the receiver refuses the request (url, headers or format to fix).",
		    alerts.rejected);
	add_counter(out, "healthd_alert_deliveries_dropped_total",
		    "Alert deliveries given up (spool size or age bounds, unreadable spool files).", alerts.dropped);
	add_counter(out, "healthd_alert_events_held_total",
		    "Regressions and updates held back by min_gap_s (a flapping check) or by maint.", alerts.held);
	add_counter(out, "healthd_alert_spool_write_failures_total",
		    "Alert events the spool could not write to disk (full or failing disk): kept in memory only.",
		    alerts.spool_failures);
	add_family(out, "healthd_alert_memory_only_deliveries", "gauge",
		   "Undelivered alert deliveries that are not on disk: lost if healthd stops now.");
	evbuffer_add_printf(out, "healthd_alert_memory_only_deliveries %" PRIu64 "\n", alerts.memory_only);
	add_counter(out, "healthd_http_requests_total", "HTTP requests served (this scrape included).",
		    http_api_requests(m->http));
	add_counter(out, "healthd_agent_requests_total", "HAProxy agent-check replies sent.",
		    m->agent ? agent_replies(m->agent) : 0);
	add_family(out, "healthd_build_info", "gauge", "The running healthd's version (always 1).");
	evbuffer_add_printf(out, "healthd_build_info{version=\"%s\"} 1\n", HD_VERSION);
	add_family(out, "healthd_node_info", "gauge", "The node name this healthd reports as (always 1).");
	evbuffer_add_printf(out, "healthd_node_info{node=\"");
	hd_prom_add_label_value(out, engine_config(m->engine)->node_name);
	evbuffer_add_printf(out, "\"} 1\n");
}

/* The admin state, the overall state and the last configuration load. */
static void render_state(const struct hd_metrics *m, struct evbuffer *out)
{
	static const enum hd_admin_mode modes[] = {HD_ADMIN_READY, HD_ADMIN_DRAIN, HD_ADMIN_MAINT};
	static const enum hd_overall overalls[] = {HD_OVERALL_UP, HD_OVERALL_DEGRADED, HD_OVERALL_DOWN};
	const struct hd_check *first;
	enum hd_overall overall;
	enum hd_admin_mode mode;
	int64_t success_ms;
	bool ok;

	if (m->status == NULL)
		return;
	mode = status_admin(m->status)->mode;
	overall = status_overall(m->status, &first);
	ok = status_last_reload(m->status, &success_ms);
	add_family(out, "healthd_admin_state", "gauge",
		   "The operator's admin state set with healthd ctl (one-hot): ready, drain or maint.");
	for (size_t i = 0; i < HD_ARRAY_LEN(modes); i++)
		evbuffer_add_printf(out, "healthd_admin_state{state=\"%s\"} %d\n", hd_admin_name(modes[i]),
				    modes[i] == mode);
	add_family(out, "healthd_stopping", "gauge", "1 during the graceful stop (SIGTERM: answering drain).");
	evbuffer_add_printf(out, "healthd_stopping %d\n", status_stopping(m->status));
	add_family(out, "healthd_overall_state", "gauge",
		   "The backend's state from its checks (one-hot): up, degraded (only non-critical down) or down.");
	for (size_t i = 0; i < HD_ARRAY_LEN(overalls); i++)
		evbuffer_add_printf(out, "healthd_overall_state{state=\"%s\"} %d\n", hd_overall_name(overalls[i]),
				    overalls[i] == overall);
	add_family(out, "healthd_overall_up", "gauge",
		   "1 when no critical check is down (/ready/deps answers 200), whatever the admin state.");
	evbuffer_add_printf(out, "healthd_overall_up %d\n", overall != HD_OVERALL_DOWN);
	add_family(out, "healthd_config_last_reload_successful", "gauge",
		   "1 when the last configuration load (start, SIGHUP or healthd ctl reload) succeeded, 0 when refused.");
	evbuffer_add_printf(out, "healthd_config_last_reload_successful %d\n", ok);
	add_family(out, "healthd_config_last_reload_success_timestamp_seconds", "gauge",
		   "Unix time of the last configuration load that succeeded.");
	evbuffer_add_printf(out, "healthd_config_last_reload_success_timestamp_seconds %.3f\n", (double)success_ms / 1000.0);
}

static void render_webhooks(const struct hd_metrics *m, struct evbuffer *out)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} families[] = {
		{"healthd_alert_webhook_deliveries_total", "Alert deliveries this webhook accepted (2xx).",
		 offsetof(struct hd_alerts_counters, delivered)},
		{"healthd_alert_webhook_failures_total", "Delivery attempts to this webhook that failed and will be retried.",
		 offsetof(struct hd_alerts_counters, failed_attempts)},
		{"healthd_alert_webhook_rejections_total", "Attempts this webhook answered 3xx or 4xx (but 429): retried.",
		 offsetof(struct hd_alerts_counters, rejected)},
		{"healthd_alert_webhook_dropped_total", "Deliveries to this webhook given up (spool bounds).",
		 offsetof(struct hd_alerts_counters, dropped)},
		{"healthd_alert_webhook_resends_total",
		 "Re-posts of firing alerts queued for this Alertmanager webhook (every resend_interval_s while down).",
		 offsetof(struct hd_alerts_counters, resent)},
		{"healthd_alert_webhook_queue_depth", "Deliveries to this webhook not done yet.",
		 offsetof(struct hd_alerts_counters, queue_depth)},
	};
	size_t n = alerts_n_webhooks(m->alerts);

	for (size_t f = 0; f < HD_ARRAY_LEN(families); f++) {
		bool gauge = families[f].offset == offsetof(struct hd_alerts_counters, queue_depth);
		add_family(out, families[f].name, gauge ? "gauge" : "counter", families[f].help);
		for (size_t i = 0; i < n; i++) {
			struct hd_alerts_counters c;
			const char *label = alerts_webhook_counters(m->alerts, i, &c);
			evbuffer_add_printf(out, "%s{webhook=\"", families[f].name);
			hd_prom_add_label_value(out, label);
			evbuffer_add_printf(out, "\"} %" PRIu64 "\n", *(const uint64_t *)(const void *)((const char *)&c +
								 families[f].offset));
		}
	}
	add_family(out, "healthd_alert_webhook_drops_total", "counter",
		   "Deliveries to this webhook given up, by reason: spool_max_bytes, spool_max_age_s, unreadable.");
	for (size_t i = 0; i < n; i++) {
		struct hd_alerts_counters c;
		const char *label = alerts_webhook_counters(m->alerts, i, &c);
		for (int r = 0; r < HD_DROP_COUNT; r++) {
			evbuffer_add_printf(out, "healthd_alert_webhook_drops_total{webhook=\"");
			hd_prom_add_label_value(out, label);
			evbuffer_add_printf(out, "\",reason=\"%s\"} %" PRIu64 "\n", hd_alert_drop_name((enum hd_alert_drop)r),
					    c.dropped_by[r]);
		}
	}
}

/* The standard process_* metrics, read from /proc/self at scrape time (as Prometheus' client libraries do). */
static void render_process_std(struct evbuffer *out)
{
	char buf[1024], *p;
	unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0;
	long long rss = 0, btime = 0;
	long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	size_t fds = 0;
	struct rlimit rl;
	FILE *f = fopen("/proc/self/stat", "re");
	DIR *dir;

	if (f != NULL) {
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		buf[len] = '\0';
		fclose(f);
		/* after the command name in parentheses: field 3 (state) on; utime is 14, stime 15, starttime 22,
		 * vsize 23, rss 24 */
		if ((p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
			   &utime, &stime, &starttime, &vsize, &rss) != 5)
			utime = stime = starttime = vsize = 0, rss = 0;
	}
	if ((f = fopen("/proc/stat", "re")) != NULL) {
		while (fgets(buf, sizeof(buf), f) != NULL)
			if (sscanf(buf, "btime %lld", &btime) == 1)
				break;
		fclose(f);
	}
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		for (struct dirent *de; (de = readdir(dir)) != NULL;)
			fds += de->d_name[0] != '.';
		closedir(dir);
		fds--; /* the directory's own descriptor */
	}
	if (ticks <= 0)
		ticks = 100;
	add_family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
	evbuffer_add_printf(out, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)ticks);
	add_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	evbuffer_add_printf(out, "process_resident_memory_bytes %lld\n", rss * page);
	add_family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	evbuffer_add_printf(out, "process_virtual_memory_bytes %llu\n", vsize);
	add_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
	evbuffer_add_printf(out, "process_open_fds %zu\n", fds);
	add_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		evbuffer_add_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	else
		evbuffer_add_printf(out, "process_max_fds -1\n");
	add_family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
	evbuffer_add_printf(out, "process_start_time_seconds %.2f\n", (double)btime + (double)starttime / (double)ticks);
}

static int serve_metrics(const struct hd_http_request *req, struct evbuffer *body, const char **content_type, void *arg)
{
	struct hd_metrics *m = arg;
	struct hd_connlimit *limits[2];
	size_t n_limits = 0;

	(void)req;
	refresh_checks_block(m);
	/* A reference, not a copy (megabytes for many checks): the block stays until this reply has left, even when
	 * the cache moves on to a newer one meanwhile. */
	hd_refbuf_add(body, m->block);
	render_process(m, body);
	render_state(m, body);
	render_webhooks(m, body);
	render_process_std(body);
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

void metrics_set_status(struct hd_metrics *m, struct hd_status *status)
{
	m->status = status;
}

void metrics_free(struct hd_metrics *m)
{
	if (m == NULL)
		return;
	hd_refbuf_unref(m->block); /* a reply still sending holds its own reference */
	free(m);
}
