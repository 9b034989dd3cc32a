/* alert_event.h: one alert event: its facts, the summary a person reads, its body in each webhook format. */
#ifndef HEALTHD_ALERT_EVENT_H
#define HEALTHD_ALERT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

struct cJSON;

enum hd_alert_event {
	HD_ALERT_REGRESSION, /* a check that was up went down */
	HD_ALERT_RECOVERY,   /* an announced regression ended */
	HD_ALERT_UPDATE,     /* still down, but for another reason (a DROP became a REJECT) */
	HD_ALERT_REMINDER,   /* still down, every repeat_interval_s */
	HD_ALERT_EVENT_COUNT
};

enum hd_alert_format { HD_FORMAT_GENERIC, HD_FORMAT_ALERTMANAGER, HD_FORMAT_SLACK, HD_FORMAT_COUNT };

/* Everything an event says; strings are borrowed. */
struct hd_alert_facts {
	enum hd_alert_event event;
	const char *id;
	int64_t time_wall_ms;  /* when the event was made */
	const char *host;      /* this backend's node_name */
	const char *source_addr;
	const char *check;
	const char *type;
	const char *target;    /* as configured: "db1:3306" */
	const char *peer;      /* the resolved address last tried: "10.0.13.1:3306"; may be "" */
	enum hd_kind kind;     /* now (ok for a recovery) */
	enum hd_kind previous_kind;
	enum hd_phase phase;   /* where the attempt behind kind failed (none for a recovery) */
	const char *detail;
	int64_t since_wall_ms; /* when it went down */
	bool critical;
	const char *health_url; /* this check's /health/NAME */
	bool down_since_start;    /* it has been down since its first result (no "up" was ever seen) */
	bool held_by_maintenance; /* it waited for maint to end */
	const char *instance;     /* this backend's API as HOST:PORT (Alertmanager's instance label) */
	const char *job;          /* the job label */
	const struct hd_labels *labels;       /* alerts.labels; may be NULL */
	const struct hd_labels *check_labels; /* the check's labels, over those; may be NULL */
	const char *runbook_url;  /* may be NULL */
};

const char *hd_alert_event_name(enum hd_alert_event e);
/* The title of the event's Slack message ("DOWN", "RECOVERED"...). */
const char *hd_alert_slack_title(enum hd_alert_event e);
/* Returns the event for a name, or -1. */
int hd_alert_event_from_name(const char *name);
/* A random RFC 4122 version 4 UUID: 36 characters and the NUL. */
void hd_alert_new_id(char id[37]);
/* The one-line account of the change for a person: "traffic to 10.0.13.1:3306 silently dropped since 04:12:07
 * (firewall DROP?)". */
void hd_alert_summary(const struct hd_alert_facts *f, char *buf, size_t len);
/* The event in the generic format (what is spooled and what generic webhooks receive). Caller deletes. */
struct cJSON *hd_alert_event_json(const struct hd_alert_facts *f);
/* Whether a generic event (one read back from the spool, say) has every field the formats render. */
bool hd_alert_event_valid(const struct cJSON *event);
/* The request body for a webhook format, built from a generic event; NULL if the event lacks a field.
 * now_wall_ms dates an Alertmanager alert's validity: it stays firing for 4 x resend_interval_s unless re-sent. */
char *hd_alert_render(enum hd_alert_format format, const struct cJSON *event, int64_t now_wall_ms,
		      int resend_interval_s);
/* The event as one log line of key=value pairs (values with spaces quoted), delivery says what happens to it. */
char *hd_alert_log_line(const struct cJSON *event, const char *delivery);
/* "45s", "12m05s", "3h02m", "2d04h". */
void hd_duration_text(int64_t seconds, char *buf, size_t len);
/* Parses "2026-11-23T04:12:07.123Z" (as hd_iso8601 writes it); -1 if it is not one. */
int64_t hd_parse_iso8601(const char *s);
/* Delay before retry number failures (1, 2...): initial doubling up to max, then "equal jitter": a uniform
 * draw (random01 in [0,1)) in the upper half, so that many healthd do not retry in step. */
int64_t hd_alert_backoff_ms(int failures, int initial_ms, int max_ms, double random01);

#endif
