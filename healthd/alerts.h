/* alerts.h: connectivity-regression and recovery events, spooled to disk and delivered to webhooks. */
#ifndef HEALTHD_ALERTS_H
#define HEALTHD_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct cfg_ctx;
struct event_base;
struct hd_alerts;
struct hd_alerts_conf;
struct hd_engine;

/* Starts alerting for the engine's configuration (without an "alerts" section: structured log lines only) and
 * subscribes to its transitions. Start it after the engine has its configuration. */
struct hd_alerts *alerts_start(struct event_base *base, struct hd_engine *engine);
/* Applies the engine's new configuration after a reload: webhooks added, removed or changed (headers, timeouts),
 * intervals. A webhook keeps its queue while its url and format stay the same; spool_dir changes on restart only. */
void alerts_reload(struct hd_alerts *a);
/* Stops delivery (undelivered events stay in the spool for the next start) and frees everything. */
void alerts_free(struct hd_alerts *a);
/* The operator's admin state changed: in maint, regressions, updates and reminders are held; when it ends,
 * every check still down gets its regression. */
void alerts_admin_changed(struct hd_alerts *a, bool maint);

/* Why a delivery was given up. */
enum hd_alert_drop {
	HD_DROP_SPOOL_MAX_BYTES, /* the queue reached spool_max_bytes: the oldest gave way */
	HD_DROP_SPOOL_MAX_AGE,   /* older than spool_max_age_s */
	HD_DROP_UNREADABLE,      /* a spool file that is not an event */
	HD_DROP_COUNT
};
/* "spool_max_bytes", "spool_max_age_s", "unreadable": the reason label of healthd_alert_drops_total. */
const char *hd_alert_drop_name(enum hd_alert_drop why);

struct hd_alerts_counters {
	uint64_t queue_depth;     /* deliveries not done yet, one per event and webhook (spooled, waiting or in flight) */
	uint64_t events;          /* events made: regression, recovery, update, reminder */
	uint64_t delivered;       /* deliveries a webhook accepted (2xx) */
	uint64_t failed_attempts; /* attempts to be retried: transport errors, timeouts, any answer but 2xx */
	uint64_t rejected;        /* of those, 3xx and 4xx answers (but 429): a url, header or format to fix */
	uint64_t dropped;         /* deliveries given up: spool bounds (size, age), unreadable files */
	uint64_t dropped_by[HD_DROP_COUNT]; /* the same, by reason */
	uint64_t resent;          /* Alertmanager re-posts of firing alerts queued (resend_interval_s) */
	uint64_t held;            /* regressions and updates held back by min_gap_s (flapping) or maint */
	uint64_t spool_failures;  /* events the spool could not write for one webhook or more (full or failing disk) */
	uint64_t memory_only;     /* deliveries not on disk now: lost if healthd stops (a gauge) */
};
/* The counters since start, for /metrics. */
void alerts_get_counters(const struct hd_alerts *a, struct hd_alerts_counters *out);
/* Per webhook (index below alerts_n_webhooks): delivered, failed_attempts, rejected, dropped and queue_depth of that
 * webhook since it was configured; returns its label, the URL without its path and the format
 * ("http://10.0.0.5:9093 (alertmanager)": a Slack URL's path is its secret). */
size_t alerts_n_webhooks(const struct hd_alerts *a);
const char *alerts_webhook_counters(const struct hd_alerts *a, size_t i, struct hd_alerts_counters *out);

#endif
