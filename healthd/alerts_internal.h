/* alerts_internal.h: what alerts.c (policy: what to announce, when) and alert_delivery.c (queues, retries, the
 * spool) share: the runtime state of alerting. Not for other modules. */
#ifndef HEALTHD_ALERTS_INTERNAL_H
#define HEALTHD_ALERTS_INTERNAL_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <sys/queue.h>

#include "alerts.h"
#include "alerts_conf.h"
#include "engine.h"

/* A spool write slower than this (a hung disk) no longer holds the event back: it is sent from memory meanwhile. */
#define SPOOL_STALL_MS 2000
/* How long shutdown waits for the spool's last writes. */
#define SPOOL_CLOSE_WAIT_MS 3000
/* The most of a rejecting answer's body that is logged. */
#define RESPONSE_KEEP 512

struct webhook;

/* One event on its way to one webhook. */
struct delivery {
	TAILQ_ENTRY(delivery) link; /* in the webhook's queue, oldest first */
	struct webhook *wh;
	cJSON *event;
	const char *id, *check, *kind_of_event; /* borrowed from event */
	size_t len;                             /* its size in the spool */
	int64_t time_wall_ms;
	int64_t born_mono_ms; /* its age counts from here, on the monotonic clock: a wall-clock step changes nothing */
	uint64_t seq;
	bool spooled;
	bool resend;  /* an Alertmanager re-post of a firing alert: memory only by design (the next one replaces it) */
	int attempts;
	bool in_flight;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	char response[RESPONSE_KEEP + 1];
	size_t response_len;
	char curl_error[CURL_ERROR_SIZE];
};

struct webhook {
	struct hd_alerts *a;
	const struct webhook_conf *conf; /* into a->conf */
	TAILQ_HEAD(delivery_list, delivery) queue; /* oldest first */
	size_t n_queued, n_in_flight, bytes;
	size_t n_memory_only; /* deliveries whose event the spool could not keep: lost if healthd stops */
	int failures;  /* consecutive retryable failures: the backoff's exponent */
	bool probing;  /* after a failure, one request at a time until one succeeds */
	struct event *retry_timer;
	struct event *resend_timer; /* alertmanager: re-posts every firing alert each resend_interval_s */
	struct hd_alerts_counters counted; /* this webhook's share of a->counters */
};

/* What alerting remembers of one check. */
struct check_alert {
	SLIST_ENTRY(check_alert) link;   /* a->checks */
	struct check_alert *same_bucket; /* the chain of a->index */
	uint64_t hash;                   /* hd_hash_str(name) */
	struct hd_alerts *a;
	char *name;
	bool open;                  /* a regression was announced and no recovery yet */
	bool down_at_start;         /* down since its first result: announced once it has failed fall times */
	bool held_by_maint;         /* an announcement waits for maint to end */
	enum hd_kind kind;          /* the kind announced while open */
	int64_t since_wall_ms;      /* when it went down, as announced */
	int64_t last_announce_mono; /* the last regression or update: min_gap_s counts from it */
	char source_addr[64];       /* the local address of the last attempt that had one */
	unsigned reminder_ticks;    /* reminder periods (a->reminder_tick_s) since it was announced */
	cJSON *firing;              /* while open, with an Alertmanager webhook: the last event that said it is down */
	struct event *hold_timer;   /* NULL until first needed, as reminder_timer */
	struct event *reminder_timer;
};

/* An event waiting for the spool to have it on disk. */
struct pending_write {
	TAILQ_ENTRY(pending_write) link; /* a->writes */
	struct hd_alerts *a;
	cJSON *event;
	char **queues;
	size_t n_queues;
	bool released; /* the spool stalled: sent from memory already */
	struct event *stall_timer;
};

struct hd_alerts {
	struct event_base *base;
	struct hd_engine *engine;
	struct hd_alerts_conf *conf;
	struct hd_spool *spool;
	struct webhook **webhooks;
	size_t n_webhooks;
	SLIST_HEAD(check_alert_list, check_alert) checks;
	struct check_alert **index; /* the checks by hash of their name: a result finds its state in O(1) */
	size_t index_size;          /* a power of two, at least n_checks */
	size_t n_checks;
	TAILQ_HEAD(pending_write_list, pending_write) writes; /* in the order written */
	struct hd_alerts_counters counters;
	char *health_base;
	char *instance;         /* HOST:PORT of health_base: the Alertmanager instance label */
	int reminder_tick_s;    /* the greatest common divisor of the webhooks' repeat_interval_s (0: no reminders) */
	unsigned short rand_state[3];
	bool maint;       /* the operator's maint: regressions, updates and reminders are held */
	bool restored;    /* what was announced before this start is known (the spool was read) */
	bool keep_firing; /* a webhook re-posts firing alerts (resend_interval_s): each open alert's event is kept */
};

/* ---- alert_delivery.c ---- */

struct webhook *alert_webhook_new(struct hd_alerts *a, const struct webhook_conf *conf);
void alert_webhook_free(struct webhook *wh);
void alert_webhook_pump(struct webhook *wh);
void alert_webhook_arm_resend(struct webhook *wh);
struct webhook *alert_find_webhook(struct hd_alerts *a, const char *queue);
struct delivery *alert_delivery_add(struct webhook *wh, cJSON *event, size_t len, uint64_t seq, bool spooled,
				     bool restored);
void alert_enforce_size(struct webhook *wh);
void alert_count_drop(struct webhook *wh, enum hd_alert_drop reason);
void alert_enqueue(struct hd_alerts *a, cJSON *event, const bool *due);
size_t alert_event_size(const cJSON *event);
const char *alert_event_string(const cJSON *event, const char *name);
void alert_pending_write_free(struct pending_write *pw);

#endif
