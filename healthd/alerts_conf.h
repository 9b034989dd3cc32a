/* alerts_conf.h: the "alerts" section as read from the configuration: webhooks, spool, policy and routing. */
#ifndef HEALTHD_ALERTS_CONF_H
#define HEALTHD_ALERTS_CONF_H

#include "check.h"

struct cJSON;
struct cfg_ctx;

struct webhook_conf {
	char *url;
	int format; /* enum hd_alert_format */
	char **headers;
	int timeout_ms;
	int connect_timeout_ms;
	int repeat_interval_s; /* reminders to this webhook; -1 (unset): as alerts.repeat_interval_s */
	int resend_interval_s; /* alertmanager: how often firing alerts are posted again; 0 for the other formats */
	/* derived */
	char *post_url;   /* alertmanager: the base URL + /api/v2/alerts */
	char queue[24];   /* spool subdirectory: q-<hash of format and url> */
	char display[160]; /* for logs: never the URL's path, which is a Slack webhook's secret */
};

struct webhook_list {
	struct webhook_conf *items;
	size_t n;
};

struct hd_alerts_conf {
	int refs;
	struct webhook_list webhooks;
	char *spool_dir;
	int spool_max_bytes;
	int spool_max_age_s;
	int repeat_interval_s;
	int min_gap_s;
	int retry_initial_ms;
	int retry_max_ms;
	int max_in_flight;
	char *health_url;
	struct hd_labels labels;
	char *job;
};

/* "generic", "alertmanager", "slack" (enum hd_alert_format order), NULL-terminated. */
extern const char *const hd_alert_format_names[];

/* Reads the "alerts" section (one reference held). Returns 0 or -1 (error in ctx). */
int alerts_parse_config(struct cfg_ctx *ctx, const struct cJSON *node, struct hd_alerts_conf **out);
/* Drops one reference (the configuration's, or running alerts'); the last frees it. */
void alerts_conf_unref(struct hd_alerts_conf *conf);
/* The section of a configuration without "alerts": every default, no webhook. */
struct hd_alerts_conf *alerts_default_conf(void);
/* Prints the section's keys for the configuration reference. */
void alerts_print_reference(void);

#endif
