/* alerts.c: turns the engine's state changes into alert events, and delivers them to webhooks from the spool. */
#include "alerts.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert_event.h"
#include "alerts_conf.h"
#include "config.h"
#include "curl_loop.h"
#include "engine.h"
#include "spool.h"

/* A spool write slower than this (a hung disk) no longer holds the event back: it is sent from memory meanwhile. */
#define SPOOL_STALL_MS 2000
/* How long shutdown waits for the spool's last writes. */
#define SPOOL_CLOSE_WAIT_MS 3000
/* The most of a rejecting answer's body that is logged. */
#define RESPONSE_KEEP 512

/* ---- runtime state ---- */

struct webhook;

/* One event on its way to one webhook. */
struct delivery {
	struct delivery *prev, *next; /* in the webhook's queue, oldest first */
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
	struct delivery *head, *tail;
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
	struct check_alert *next;
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
	cJSON *firing;              /* while open: the last event that said it is down, for Alertmanager re-posts */
	struct event *hold_timer;
	struct event *reminder_timer;
};

/* An event waiting for the spool to have it on disk. */
struct pending_write {
	struct pending_write *next;
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
	struct check_alert *checks;
	struct check_alert **index; /* the checks by hash of their name: a result finds its state in O(1) */
	size_t index_size;          /* a power of two, at least n_checks */
	size_t n_checks;
	struct pending_write *writes;
	struct hd_alerts_counters counters;
	char *health_base;
	char *instance;         /* HOST:PORT of health_base: the Alertmanager instance label */
	int reminder_tick_s;    /* the greatest common divisor of the webhooks' repeat_interval_s (0: no reminders) */
	unsigned short rand_state[3];
	bool maint;       /* the operator's maint: regressions, updates and reminders are held */
	bool restored;    /* what was announced before this start is known (the spool was read) */
};

static void pump(struct webhook *wh);
static size_t event_size(const cJSON *event);
static void reconcile(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c,
		      const struct hd_transition *t);

/* ---- deliveries ---- */

const char *hd_alert_drop_name(enum hd_alert_drop why)
{
	static const char *const names[] = {
		[HD_DROP_SPOOL_MAX_BYTES] = "spool_max_bytes",
		[HD_DROP_SPOOL_MAX_AGE] = "spool_max_age_s",
		[HD_DROP_UNREADABLE] = "unreadable",
	};
	_Static_assert(HD_ARRAY_LEN(names) == HD_DROP_COUNT, "a drop reason without a name");

	return (unsigned)why < HD_DROP_COUNT ? names[why] : "unreadable";
}

static struct webhook *find_webhook(struct hd_alerts *a, const char *queue)
{
	for (size_t i = 0; i < a->n_webhooks; i++) /* entries are NULL while a reload matches them */
		if (a->webhooks[i] != NULL && strcmp(a->webhooks[i]->conf->queue, queue) == 0)
			return a->webhooks[i];
	return NULL;
}

static void transfer_free(struct delivery *d)
{
	if (d->easy) {
		hd_curl_cancel(d->easy);
		curl_easy_cleanup(d->easy);
		d->easy = NULL;
	}
	curl_slist_free_all(d->headers);
	d->headers = NULL;
	free(d->body);
	d->body = NULL;
	if (d->in_flight) {
		d->in_flight = false;
		d->wh->n_in_flight--;
	}
}

/* Takes d out of its queue for good (delivered, or dropped) and forgets its spool file. */
static void delivery_finish(struct delivery *d)
{
	struct webhook *wh = d->wh;

	transfer_free(d);
	if (d->prev)
		d->prev->next = d->next;
	else
		wh->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		wh->tail = d->prev;
	wh->n_queued--;
	wh->n_memory_only -= !d->spooled && !d->resend;
	wh->bytes -= d->len;
	if (d->spooled && wh->a->spool)
		hd_spool_remove(wh->a->spool, wh->conf->queue, d->seq);
	cJSON_Delete(d->event);
	free(d);
}

static void count_drop(struct webhook *wh, enum hd_alert_drop reason)
{
	wh->a->counters.dropped++;
	wh->a->counters.dropped_by[reason]++;
	wh->counted.dropped++;
	wh->counted.dropped_by[reason]++;
}

static void delivery_drop(struct delivery *d, enum hd_alert_drop reason, const char *why)
{
	count_drop(d->wh, reason);
	log_err("alerts: %s: event %s (%s of check %s) dropped (%s): %s", d->wh->conf->display, d->id,
		d->kind_of_event, d->check, hd_alert_drop_name(reason), why);
	delivery_finish(d);
}

static const char *event_string(const cJSON *event, const char *name)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, name));

	return s ? s : "";
}

/*
 * How old an event read back from the spool at start is: its age by the wall clock (the only clock that spans a
 * restart), from 0 (a time in the future: the clock went back) to just past max_age_s. A new event starts at 0.
 * From then on every event ages on the monotonic clock.
 */
static int64_t age_at_load_ms(int64_t time_wall_ms, int max_age_s)
{
	int64_t now = hd_now_wall_ms(), cap = (int64_t)max_age_s * 1000 + 1;

	if (time_wall_ms <= 0 || time_wall_ms >= now)
		return 0;
	return now - time_wall_ms < cap ? now - time_wall_ms : cap;
}

/* Queues an event (owned by the delivery from now on) at the tail of wh; NULL if it is not an event. */
static struct delivery *delivery_add(struct webhook *wh, cJSON *event, size_t len, uint64_t seq, bool spooled,
				     bool restored)
{
	struct delivery *d;

	if (!hd_alert_event_valid(event)) { /* every field a format renders: else it could never be sent */
		cJSON_Delete(event);
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->wh = wh;
	d->event = event;
	d->id = event_string(event, "id");
	d->check = event_string(event, "check");
	d->kind_of_event = event_string(event, "event");
	d->time_wall_ms = hd_parse_iso8601(event_string(event, "time"));
	d->born_mono_ms = hd_now_mono_ms();
	if (restored)
		d->born_mono_ms -= age_at_load_ms(d->time_wall_ms, wh->a->conf->spool_max_age_s);
	d->len = len;
	d->seq = seq;
	d->spooled = spooled;
	d->prev = wh->tail;
	if (wh->tail)
		wh->tail->next = d;
	else
		wh->head = d;
	wh->tail = d;
	wh->n_queued++;
	wh->n_memory_only += !spooled;
	wh->bytes += len;
	return d;
}

/* spool_max_bytes: the oldest undelivered events give way to new ones. */
static void enforce_size(struct webhook *wh)
{
	struct delivery *d = wh->head, *next;

	while (wh->bytes > (size_t)wh->a->conf->spool_max_bytes && d != NULL) {
		next = d->next;
		if (!d->in_flight && d != wh->tail)
			delivery_drop(d, HD_DROP_SPOOL_MAX_BYTES, "the queue reached spool_max_bytes; the oldest events give way");
		d = next;
	}
}

static double next_random(struct hd_alerts *a)
{
	return erand48(a->rand_state);
}

/* A retryable failure: the whole webhook waits, then tries one request until one succeeds. */
static int64_t back_off(struct webhook *wh, int64_t retry_after_ms)
{
	struct hd_alerts *a = wh->a;
	struct timeval tv;
	int64_t delay;

	wh->probing = true;
	if (evtimer_pending(wh->retry_timer, &tv))
		return -1; /* already waiting: one failure per wait counts */
	wh->failures++;
	delay = hd_alert_backoff_ms(wh->failures, a->conf->retry_initial_ms, a->conf->retry_max_ms, next_random(a));
	if (retry_after_ms > delay)
		delay = retry_after_ms < 3600000 ? retry_after_ms : 3600000;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(wh->retry_timer, &tv);
	return delay;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static size_t on_response_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct delivery *d = arg;
	size_t n = size * nmemb, room = RESPONSE_KEEP - d->response_len;

	memcpy(d->response + d->response_len, data, n < room ? n : room);
	d->response_len += n < room ? n : room;
	d->response[d->response_len] = '\0';
	return n;
}

/* The response body on one line, for the log. */
static const char *response_text(struct delivery *d)
{
	for (size_t i = 0; i < d->response_len; i++)
		if (d->response[i] == '\n' || d->response[i] == '\r' || d->response[i] == '\0')
			d->response[i] = ' ';
	while (d->response_len > 0 && d->response[d->response_len - 1] == ' ')
		d->response[--d->response_len] = '\0';
	return d->response_len ? d->response : "(empty body)";
}

/* What to do about the error string Slack answers an incoming-webhook request with ("channel_is_archived"). */
static const char *slack_advice(const char *error)
{
	static const struct {
		const char *error, *advice;
	} known[] = {
		{"channel_is_archived", "the channel is archived: unarchive it, or create a webhook for another channel"},
		{"channel_not_found", "the channel is gone: create a webhook for an existing channel"},
		{"no_service", "the webhook was revoked or disabled in Slack: create a new one and set url to it"},
		{"no_service_id", "the webhook URL is incomplete: copy it again from Slack"},
		{"no_team", "the Slack workspace is gone or the URL is wrong: copy it again from Slack"},
		{"team_disabled", "the Slack workspace is disabled"},
		{"invalid_token", "the webhook's token is no longer valid: create a new webhook"},
		{"action_prohibited", "a Slack admin restricted posting to this channel"},
		{"posting_to_general_channel_denied", "only admins may post to this channel: choose another"},
		{"invalid_payload", "Slack cannot read the message (a healthd bug: please report it with this line)"},
	};

	for (size_t i = 0; i < HD_ARRAY_LEN(known); i++)
		if (strcmp(error, known[i].error) == 0)
			return known[i].advice;
	return "Slack refuses the request: fix url (a reload applies it)";
}

static void on_transfer_done(CURL *easy, CURLcode result, void *arg)
{
	struct delivery *d = arg;
	struct webhook *wh = d->wh;
	struct hd_alerts *a = wh->a;
	long status = 0;
	curl_off_t retry_after_s = 0;
	char why[CURL_ERROR_SIZE + 600];
	int64_t delay;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after_s);
	curl_easy_cleanup(easy);
	d->easy = NULL;
	transfer_free(d);
	if (result == CURLE_OK && status >= 200 && status < 300) {
		a->counters.delivered++;
		wh->counted.delivered++;
		hd_log(d->resend ? HD_LOG_DEBUG : HD_LOG_INFO, "alerts: %s: %s %s (%s of check %s) delivered: HTTP %ld%s",
		       wh->conf->display, d->resend ? "re-post" : "event", d->id, d->kind_of_event, d->check, status,
		       d->attempts > 1 ? " (after retries)" : "");
		wh->failures = 0;
		wh->probing = false;
		delivery_finish(d);
	} else if (result != CURLE_OK || status >= 500 || status == 429) {
		a->counters.failed_attempts++;
		wh->counted.failed_attempts++;
		if (result != CURLE_OK)
			snprintf(why, sizeof(why), "%s", d->curl_error[0] ? d->curl_error : curl_easy_strerror(result));
		else
			snprintf(why, sizeof(why), "HTTP %ld: %s", status, response_text(d));
		delay = back_off(wh, (int64_t)retry_after_s * 1000);
		if (delay >= 0)
			log_warn("alerts: %s: event %s (%s of check %s), attempt %d: %s; retrying in %.1f s", wh->conf->display,
				 d->id, d->kind_of_event, d->check, d->attempts, why, (double)delay / 1000.0);
		else
			log_warn("alerts: %s: event %s (%s of check %s), attempt %d: %s; retrying with the others",
				 wh->conf->display, d->id, d->kind_of_event, d->check, d->attempts, why);
	} else {
		/*
		 * 3xx and 4xx: the receiver refuses the request as sent: a url that redirects (never followed: a
		 * redirect could send the event elsewhere), a wrong path, token or format. That is a configuration to
		 * fix, not a reason to lose the event: it is kept and retried (the body is rendered again on each
		 * attempt, so a reload that fixes the format or headers delivers it), loudly, until the spool's bounds.
		 */
		a->counters.failed_attempts++;
		wh->counted.failed_attempts++;
		a->counters.rejected++;
		wh->counted.rejected++;
		delay = back_off(wh, (int64_t)retry_after_s * 1000);
		const char *body = response_text(d), *advice;
		if (status < 400)
			advice = "a redirect, which healthd does not follow: set url to the address it points to";
		else if (wh->conf->format == HD_FORMAT_SLACK)
			advice = slack_advice(body);
		else
			advice = "the receiver refuses the request: fix url, headers or format (a reload applies it)";
		log_err("alerts: %s: event %s (%s of check %s), attempt %d: HTTP %ld%s: %s: %s; kept, retrying in %.1f s",
			wh->conf->display, d->id, d->kind_of_event, d->check, d->attempts, status,
			wh->conf->format == HD_FORMAT_SLACK ? ", Slack error" : "", body, advice,
			delay >= 0 ? (double)delay / 1000.0 : 0.0);
	}
	pump(wh);
}

/* Starts one attempt; false if curl refused it (the webhook then backs off). */
static bool attempt(struct delivery *d)
{
	struct webhook *wh = d->wh;
	struct hd_alerts *a = wh->a;
	const struct webhook_conf *w = wh->conf;
	char *line;

	d->body = hd_alert_render((enum hd_alert_format)w->format, d->event, hd_now_wall_ms(), w->resend_interval_s);
	d->easy = curl_easy_init();
	if (d->body == NULL || d->easy == NULL) {
		transfer_free(d);
		return false;
	}
	d->headers = curl_slist_append(d->headers, "Content-Type: application/json");
	d->headers = curl_slist_append(d->headers, "Expect:"); /* no 100-continue round trip */
	line = xasprintf("X-Healthd-Event-Id: %s", d->id);
	d->headers = curl_slist_append(d->headers, line);
	free(line);
	for (size_t i = 0; w->headers && w->headers[i]; i++)
		d->headers = curl_slist_append(d->headers, w->headers[i]);
	d->response_len = 0;
	d->response[0] = '\0';
	d->curl_error[0] = '\0';
	curl_easy_setopt(d->easy, CURLOPT_URL, w->post_url);
	curl_easy_setopt(d->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(d->easy, CURLOPT_USERAGENT, "healthd/" HD_VERSION);
	curl_easy_setopt(d->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)w->connect_timeout_ms);
	curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
	curl_easy_setopt(d->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, on_response_body);
	curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->curl_error);
	d->attempts++;
	d->in_flight = true;
	wh->n_in_flight++;
	if (hd_curl_start(a->base, d->easy, on_transfer_done, d) < 0) {
		transfer_free(d);
		return false;
	}
	return true;
}

static bool listed(const char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Starts what may start: each check's oldest event (never a later one before it), up to max_in_flight. */
static void pump(struct webhook *wh)
{
	struct hd_alerts *a = wh->a;
	size_t limit = wh->probing ? 1 : (size_t)a->conf->max_in_flight, n_busy = 0, cap = 0;
	int64_t now = hd_now_mono_ms(), max_age_ms = (int64_t)a->conf->spool_max_age_s * 1000;
	const char **busy = NULL;
	struct delivery *d, *next;

	if (evtimer_pending(wh->retry_timer, NULL))
		return;
	for (d = wh->head; d != NULL && wh->n_in_flight < limit; d = next) {
		next = d->next;
		if (listed(busy, n_busy, d->check))
			continue;
		if (!d->in_flight && now - d->born_mono_ms > max_age_ms) {
			delivery_drop(d, HD_DROP_SPOOL_MAX_AGE, "older than spool_max_age_s, no longer worth sending");
			continue;
		}
		if (n_busy == cap) {
			cap = cap ? cap * 2 : 16;
			busy = xrealloc(busy, cap * sizeof(*busy));
		}
		busy[n_busy++] = d->check;
		if (!d->in_flight && !attempt(d)) {
			a->counters.failed_attempts++;
			wh->counted.failed_attempts++;
			back_off(wh, 0);
			log_warn("alerts: %s: libcurl refused a request for event %s; retrying later", wh->conf->display, d->id);
			break;
		}
	}
	free(busy);
}

static bool has_pending(struct hd_alerts *a, struct webhook *wh, const char *check);

/*
 * Alertmanager resolves an alert that is not posted again before its endsAt. Every resend_interval_s, each alert
 * still open is posted again (its endsAt 4 periods ahead), as Prometheus re-sends, unless something for its check
 * is still queued (that carries it). In maint too: an alert already firing stays firing, nothing new pages.
 */
static void on_resend_timer(evutil_socket_t fd, short what, void *arg)
{
	struct webhook *wh = arg;
	struct hd_alerts *a = wh->a;
	char id[37];

	(void)fd;
	(void)what;
	for (struct check_alert *st = a->checks; st; st = st->next) {
		cJSON *event;
		struct delivery *d;

		if (!st->open || st->firing == NULL || has_pending(a, wh, st->name))
			continue;
		event = cJSON_Duplicate(st->firing, true);
		hd_alert_new_id(id);
		cJSON_ReplaceItemInObjectCaseSensitive(event, "id", cJSON_CreateString(id));
		cJSON_ReplaceItemInObjectCaseSensitive(event, "event", cJSON_CreateString("reminder"));
		if ((d = delivery_add(wh, event, event_size(event), 0, false, false)) == NULL)
			continue;
		d->resend = true;
		wh->n_memory_only--; /* counted by delivery_add; a lost re-post is replaced by the next one */
		a->counters.resent++;
		wh->counted.resent++;
	}
	enforce_size(wh);
	pump(wh);
}

/* (Re)starts a webhook's re-post schedule after a start or reload. */
static void arm_resend(struct webhook *wh)
{
	struct timeval tv = {.tv_sec = wh->conf->resend_interval_s};

	if (wh->resend_timer == NULL)
		wh->resend_timer = event_new(wh->a->base, -1, EV_PERSIST, on_resend_timer, wh);
	event_del(wh->resend_timer);
	if (wh->conf->resend_interval_s > 0)
		event_add(wh->resend_timer, &tv);
}

static struct webhook *webhook_new(struct hd_alerts *a, const struct webhook_conf *conf)
{
	struct webhook *wh = xcalloc(1, sizeof(*wh));

	wh->a = a;
	wh->conf = conf;
	wh->retry_timer = evtimer_new(a->base, on_retry_timer, wh);
	arm_resend(wh);
	return wh;
}

static void webhook_free(struct webhook *wh)
{
	while (wh->head) {
		struct delivery *d = wh->head;
		d->spooled = false; /* stays on disk for the next start */
		delivery_finish(d);
	}
	event_free(wh->retry_timer);
	event_free(wh->resend_timer);
	free(wh);
}

/* ---- from events to deliveries, through the spool ---- */

static void pending_write_free(struct pending_write *pw)
{
	for (size_t i = 0; i < pw->n_queues; i++)
		free(pw->queues[i]);
	free(pw->queues);
	if (pw->stall_timer != NULL) /* libevent's event_free(NULL) crashes */
		event_free(pw->stall_timer);
	cJSON_Delete(pw->event);
	free(pw);
}

static size_t event_size(const cJSON *event)
{
	char *text = cJSON_PrintUnformatted(event);
	size_t n = text ? strlen(text) : 0;

	cJSON_free(text);
	return n;
}

/* Hands the event to each webhook still configured (after the spool wrote it, or stalled). */
static void distribute(struct pending_write *pw, uint64_t seq, const bool *written)
{
	struct hd_alerts *a = pw->a;
	size_t len = event_size(pw->event);

	for (size_t i = 0; i < pw->n_queues; i++) {
		struct webhook *wh = find_webhook(a, pw->queues[i]);
		bool spooled = written && written[i];
		struct delivery *d = NULL;

		if (wh == NULL)
			continue; /* removed by a reload meanwhile: its file stays for when it comes back */
		if (pw->released) {
			const char *id = event_string(pw->event, "id");
			for (d = wh->head; d != NULL && strcmp(d->id, id) != 0; d = d->next)
				;
			if (d != NULL) {
				wh->n_memory_only += (size_t)!spooled - (size_t)!d->spooled;
				d->seq = seq;
				d->spooled = spooled;
			} else if (spooled) {
				hd_spool_remove(a->spool, pw->queues[i], seq); /* delivered (or dropped) from memory already */
			}
			continue;
		}
		delivery_add(wh, cJSON_Duplicate(pw->event, true), len, seq, spooled, false);
		enforce_size(wh);
		pump(wh);
	}
}

static void unlink_write(struct hd_alerts *a, struct pending_write *pw)
{
	for (struct pending_write **p = &a->writes; *p; p = &(*p)->next)
		if (*p == pw) {
			*p = pw->next;
			return;
		}
}

static void on_spooled(uint64_t seq, const bool *written, const char *error, void *arg)
{
	struct pending_write *pw = arg;
	struct hd_alerts *a = pw->a;

	if (error != NULL) {
		a->counters.spool_failures++;
		log_err("alerts: cannot spool event %s (%s of check %s): %s; it is sent from memory, and lost if healthd "
			"stops before it is delivered",
			event_string(pw->event, "id"), event_string(pw->event, "event"), event_string(pw->event, "check"),
			error);
	}
	unlink_write(a, pw);
	distribute(pw, seq, written);
	pending_write_free(pw);
}

static void on_spool_stall(evutil_socket_t fd, short what, void *arg)
{
	struct pending_write *pw = arg;

	(void)fd;
	(void)what;
	log_warn("alerts: the spool has not written event %s (%s of check %s) within %d ms (is the disk under %s hung?); "
		 "sending it from memory meanwhile",
		 event_string(pw->event, "id"), event_string(pw->event, "event"), event_string(pw->event, "check"),
		 SPOOL_STALL_MS, pw->a->conf->spool_dir);
	distribute(pw, 0, NULL);
	pw->released = true;
}

/* Whether a webhook has something for check still to deliver (then a reminder adds nothing). */
static bool has_pending(struct hd_alerts *a, struct webhook *wh, const char *check)
{
	for (struct delivery *d = wh->head; d; d = d->next)
		if (strcmp(d->check, check) == 0)
			return true;
	for (struct pending_write *pw = a->writes; pw; pw = pw->next)
		if (strcmp(event_string(pw->event, "check"), check) == 0)
			for (size_t i = 0; i < pw->n_queues; i++)
				if (strcmp(pw->queues[i], wh->conf->queue) == 0)
					return true;
	return false;
}

/*
 * Logs the event as one structured line, then spools it for the webhooks it is for (owns event): every webhook, or
 * with due (a reminder) those marked due that have nothing for the check still to deliver.
 */
static void enqueue(struct hd_alerts *a, cJSON *event, const bool *due)
{
	const char *check = event_string(event, "check");
	struct pending_write *pw;
	char *line, *text, delivery[128];
	struct timeval tv = {SPOOL_STALL_MS / 1000, (SPOOL_STALL_MS % 1000) * 1000};
	size_t n = 0, n_due = 0;

	pw = xcalloc(1, sizeof(*pw));
	pw->a = a;
	pw->event = event;
	pw->queues = xcalloc(a->n_webhooks + 1, sizeof(char *));
	for (size_t i = 0; i < a->n_webhooks; i++) {
		if (due && !due[i])
			continue;
		n_due++;
		if (!due || !has_pending(a, a->webhooks[i], check))
			pw->queues[n++] = xstrdup(a->webhooks[i]->conf->queue);
	}
	pw->n_queues = n;
	if (a->n_webhooks == 0)
		hd_strlcpy(delivery, "log-only", sizeof(delivery));
	else if (n < n_due)
		snprintf(delivery, sizeof(delivery), "queued:%zu/%zu(others-still-pending)", n, a->n_webhooks);
	else if (n < a->n_webhooks)
		snprintf(delivery, sizeof(delivery), "queued:%zu/%zu(reminders-not-due-on-the-others)", n, a->n_webhooks);
	else
		snprintf(delivery, sizeof(delivery), "queued:%zu", n);
	line = hd_alert_log_line(event, delivery);
	log_info("alert %s", line);
	free(line);
	a->counters.events++;
	if (n == 0 || a->spool == NULL) {
		pending_write_free(pw);
		return;
	}
	text = cJSON_PrintUnformatted(event);
	pw->next = NULL;
	struct pending_write **tail = &a->writes;
	while (*tail)
		tail = &(*tail)->next;
	*tail = pw;
	pw->stall_timer = evtimer_new(a->base, on_spool_stall, pw);
	evtimer_add(pw->stall_timer, &tv);
	hd_spool_append(a->spool, (const char *const *)pw->queues, pw->n_queues, text, strlen(text), on_spooled, pw);
	cJSON_free(text);
}

/* ---- per-check alert state ---- */

static void on_hold_timer(evutil_socket_t fd, short what, void *arg);
static void on_reminder_timer(evutil_socket_t fd, short what, void *arg);

/* Doubles the index when it is full; the states themselves never move. */
static void grow_index(struct hd_alerts *a)
{
	size_t size = a->index_size ? a->index_size * 2 : 64;
	struct check_alert **index = xcalloc(size, sizeof(*index));

	for (struct check_alert *st = a->checks; st; st = st->next) {
		size_t b = (size_t)(st->hash & (size - 1));
		st->same_bucket = index[b];
		index[b] = st;
	}
	free(a->index);
	a->index = index;
	a->index_size = size;
}

/* The alert state of a check, made on first use; states are kept until alerts_free (a removed check's is closed). */
static struct check_alert *check_state(struct hd_alerts *a, const char *name)
{
	uint64_t hash = hd_hash_str(name);
	struct check_alert *st;

	if (a->index_size > 0)
		for (st = a->index[hash & (a->index_size - 1)]; st; st = st->same_bucket)
			if (st->hash == hash && strcmp(st->name, name) == 0)
				return st;
	st = xcalloc(1, sizeof(*st));
	st->a = a;
	st->name = xstrdup(name);
	st->hash = hash;
	st->hold_timer = evtimer_new(a->base, on_hold_timer, st);
	st->reminder_timer = evtimer_new(a->base, on_reminder_timer, st);
	st->next = a->checks;
	a->checks = st;
	if (++a->n_checks > a->index_size) {
		grow_index(a); /* links st too */
	} else {
		size_t b = (size_t)(hash & (a->index_size - 1));
		st->same_bucket = a->index[b];
		a->index[b] = st;
	}
	return st;
}

static void save_open_state(struct hd_alerts *a, struct check_alert *st)
{
	cJSON *o;
	char *text;

	if (a->spool == NULL)
		return;
	if (!st->open) {
		hd_spool_set_state(a->spool, st->name, NULL);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "check", st->name);
	cJSON_AddStringToObject(o, "kind", hd_kind_name(st->kind));
	cJSON_AddNumberToObject(o, "since_ms", (double)st->since_wall_ms);
	text = cJSON_PrintUnformatted(o);
	hd_spool_set_state(a->spool, st->name, text);
	cJSON_free(text);
	cJSON_Delete(o);
}

/* Reminders tick every reminder_tick_s while a check is announced down; each webhook takes the ticks that fall on
 * its own repeat_interval_s. */
static void arm_reminder(struct hd_alerts *a, struct check_alert *st)
{
	struct timeval tv = {.tv_sec = a->reminder_tick_s};

	if (a->reminder_tick_s > 0 && st->open && !evtimer_pending(st->reminder_timer, NULL))
		evtimer_add(st->reminder_timer, &tv);
}

static void fill_facts(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c, enum hd_alert_event ev,
		       struct hd_alert_facts *f, char *id, char *url, size_t url_len)
{
	bool up = c->state == HD_STATE_UP;
	const struct hd_result *r = up ? &c->last : &c->last_failure;

	hd_alert_new_id(id);
	snprintf(url, url_len, "%s/health/%s", a->health_base, c->conf->name);
	*f = (struct hd_alert_facts){
		.event = ev,
		.id = id,
		.time_wall_ms = hd_now_wall_ms(),
		.host = engine_config(a->engine)->node_name,
		.source_addr = c->last.source_addr[0] ? c->last.source_addr : st->source_addr,
		.check = c->conf->name,
		.type = c->conf->type->name,
		.target = c->conf->target,
		.peer = r->peer[0] ? r->peer : c->last.peer,
		.kind = up ? HD_KIND_OK : c->down_kind,
		.previous_kind = HD_KIND_OK,
		.detail = r->detail,
		.since_wall_ms = st->open ? st->since_wall_ms : c->since_wall_ms,
		.critical = c->conf->critical,
		.health_url = url,
		.down_since_start = st->down_at_start,
		.held_by_maintenance = st->held_by_maint,
		.instance = a->instance,
		.job = a->conf->job,
		.labels = &a->conf->labels,
		.check_labels = &c->conf->labels,
		.runbook_url = c->conf->runbook_url,
	};
}

static void set_firing(struct check_alert *st, cJSON *event)
{
	cJSON_Delete(st->firing);
	st->firing = event;
}

/* Announces a change: updates what was announced, and queues the event (a reminder: to the webhooks due). */
static void announce(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c, enum hd_alert_event ev,
		     const bool *due)
{
	struct hd_alert_facts f;
	char id[37], url[512];
	cJSON *event;

	fill_facts(a, st, c, ev, &f, id, url, sizeof(url));
	switch (ev) {
	case HD_ALERT_REGRESSION:
		st->open = true;
		st->kind = c->down_kind;
		st->since_wall_ms = c->since_wall_ms;
		st->last_announce_mono = hd_now_mono_ms();
		f.since_wall_ms = st->since_wall_ms;
		break;
	case HD_ALERT_UPDATE:
		f.previous_kind = st->kind;
		st->kind = c->down_kind;
		st->last_announce_mono = hd_now_mono_ms();
		break;
	case HD_ALERT_RECOVERY:
		f.previous_kind = st->kind;
		st->open = false;
		evtimer_del(st->reminder_timer);
		break;
	case HD_ALERT_REMINDER:
	case HD_ALERT_EVENT_COUNT: /* not an event */
		f.kind = st->kind;
		break;
	}
	if (ev != HD_ALERT_REMINDER)
		st->reminder_ticks = 0;
	st->held_by_maint = false;
	event = hd_alert_event_json(&f);
	set_firing(st, st->open ? cJSON_Duplicate(event, true) : NULL);
	/* the event before the record: a crash between them leaves an event that restore_announced() believes */
	enqueue(a, event, ev == HD_ALERT_REMINDER ? due : NULL);
	if (ev != HD_ALERT_REMINDER)
		save_open_state(a, st);
	arm_reminder(a, st);
}

/* An alert open since before this start: what it says (for Alertmanager re-posts), from the check as it is now. */
static void remember_firing(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c)
{
	struct hd_alert_facts f;
	char id[37], url[512];

	if (st->firing != NULL)
		return;
	fill_facts(a, st, c, HD_ALERT_REMINDER, &f, id, url, sizeof(url));
	f.kind = st->kind;
	set_firing(st, hd_alert_event_json(&f));
}

/* A transition that is not announced still gets its structured line. */
static void log_unannounced(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c,
			    const struct hd_transition *t, enum hd_alert_event ev, const char *delivery)
{
	struct hd_alert_facts f;
	char id[37], url[512], *line;
	cJSON *event;

	fill_facts(a, st, c, ev, &f, id, url, sizeof(url));
	f.id = "";
	f.previous_kind = t->from == HD_STATE_DOWN ? t->previous_kind : HD_KIND_OK;
	if (t->from == HD_STATE_DOWN)
		f.since_wall_ms = t->down_since_wall_ms;
	event = hd_alert_event_json(&f);
	line = hd_alert_log_line(event, delivery);
	log_info("alert %s", line);
	free(line);
	cJSON_Delete(event);
}

/* maint holds what would page (regressions, updates, reminders) until it ends; drain holds nothing. */
static bool held_by_maint(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c,
			  const struct hd_transition *t, enum hd_alert_event ev)
{
	if (!a->maint)
		return false;
	if (!st->held_by_maint)
		a->counters.held++;
	st->held_by_maint = true;
	if (t)
		log_unannounced(a, st, c, t, ev, "held:maint:sent-when-maint-ends-if-still-down");
	return true;
}

/* Compares what was announced with the check's state now, and announces the difference (or logs why not). */
static void reconcile(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c,
		      const struct hd_transition *t)
{
	int64_t wait_ms;
	enum hd_alert_event ev;

	if (c->state == HD_STATE_PENDING)
		return;
	if (c->state == HD_STATE_UP) {
		st->held_by_maint = false;
		if (st->open)
			announce(a, st, c, HD_ALERT_RECOVERY, NULL);
		else if (t && t->from == HD_STATE_DOWN)
			log_unannounced(a, st, c, t, HD_ALERT_RECOVERY,
					evtimer_pending(st->hold_timer, NULL) ? "not-sent:its-regression-was-held-by-min_gap_s"
					: a->maint || st->down_at_start      ? "not-sent:its-regression-was-never-sent"
									     : "not-sent:down-since-start");
		st->down_at_start = false;
		return;
	}
	if (!st->open && t && t->from == HD_STATE_PENDING)
		st->down_at_start = true;
	if (!st->open && st->down_at_start) {
		/* down from its first result (a backend that starts broken, a check added while down): a regression
		 * once it has failed fall times, unless an earlier run announced it (known once the spool is read) */
		if (!a->restored || c->consecutive_failures < c->conf->fall) {
			if (t)
				log_unannounced(a, st, c, t, HD_ALERT_REGRESSION,
						a->restored ? "not-sent-yet:down-since-start:sent-after-fall-failures"
							    : "not-sent-yet:down-since-start:reading-the-spool");
			return;
		}
	}
	if (st->open && st->kind == c->down_kind) {
		remember_firing(a, st, c);
		arm_reminder(a, st);
		return;
	}
	ev = st->open ? HD_ALERT_UPDATE : HD_ALERT_REGRESSION;
	if (held_by_maint(a, st, c, t, ev))
		return;
	wait_ms = st->last_announce_mono ? st->last_announce_mono + a->conf->min_gap_s * 1000LL - hd_now_mono_ms() : 0;
	if (wait_ms > 0) {
		char delivery[80];
		if (!evtimer_pending(st->hold_timer, NULL)) {
			struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
			evtimer_add(st->hold_timer, &tv);
			a->counters.held++;
		}
		if (t) {
			snprintf(delivery, sizeof(delivery), "held:min_gap_s:sent-in-%.1fs-if-still-down", (double)wait_ms / 1000);
			log_unannounced(a, st, c, t, ev, delivery);
		}
		return;
	}
	announce(a, st, c, ev, NULL);
}

/* Every check whose announcement may be due: after maint ends, or once the spool has said what was announced. */
static void reconcile_all(struct hd_alerts *a)
{
	for (size_t i = 0; i < engine_n_checks(a->engine); i++) {
		const struct hd_check *c = engine_check(a->engine, i);
		if (c->state == HD_STATE_DOWN)
			reconcile(a, check_state(a, c->conf->name), c, NULL);
	}
}

void alerts_admin_changed(struct hd_alerts *a, bool maint)
{
	if (a->maint == maint)
		return;
	a->maint = maint;
	log_info("alerts: %s", maint ? "maint: regressions, updates and reminders are held until it ends"
				      : "maint ended: every check still down gets its regression now");
	if (!maint)
		reconcile_all(a);
}

static void forget_removed_check(struct hd_alerts *a, struct check_alert *st)
{
	log_warn("alerts: check %s was removed from the configuration while down: its alert is closed without a "
		 "recovery event",
		 st->name);
	st->open = false;
	set_firing(st, NULL);
	evtimer_del(st->reminder_timer);
	evtimer_del(st->hold_timer);
	save_open_state(a, st);
}

static void on_hold_timer(evutil_socket_t fd, short what, void *arg)
{
	struct check_alert *st = arg;
	const struct hd_check *c = engine_find(st->a->engine, st->name);

	(void)fd;
	(void)what;
	if (c == NULL) {
		if (st->open)
			forget_removed_check(st->a, st);
		return;
	}
	reconcile(st->a, st, c, NULL);
}

static void on_reminder_timer(evutil_socket_t fd, short what, void *arg)
{
	struct check_alert *st = arg;
	struct hd_alerts *a = st->a;
	const struct hd_check *c = engine_find(a->engine, st->name);

	(void)fd;
	(void)what;
	if (c == NULL) {
		forget_removed_check(a, st);
		return;
	}
	if (st->open && c->state == HD_STATE_DOWN && !a->maint) {
		uint64_t elapsed = (uint64_t)++st->reminder_ticks * (uint64_t)a->reminder_tick_s;
		bool *due = xcalloc(a->n_webhooks + 1, sizeof(bool));
		size_t n_due = 0;

		for (size_t i = 0; i < a->n_webhooks; i++) {
			int every = a->webhooks[i]->conf->repeat_interval_s;
			due[i] = every > 0 && elapsed % (uint64_t)every == 0;
			n_due += due[i];
		}
		if (n_due > 0 || a->n_webhooks == 0) /* without webhooks: the log line, every alerts.repeat_interval_s */
			announce(a, st, c, HD_ALERT_REMINDER, due);
		free(due);
	}
	arm_reminder(a, st); /* a check restarted by a reload is pending: try again next period */
}

static void on_result(const struct hd_check *c, void *arg)
{
	struct hd_alerts *a = arg;
	struct check_alert *st;

	if (c->last.source_addr[0]) {
		st = check_state(a, c->conf->name);
		hd_strlcpy(st->source_addr, c->last.source_addr, sizeof(st->source_addr));
	}
	if (c->state == HD_STATE_DOWN && c->consecutive_failures == c->conf->fall && c->conf->fall > 1) {
		st = check_state(a, c->conf->name);
		if (st->down_at_start && !st->open)
			reconcile(a, st, c, NULL); /* down since start, and now fall failures in a row */
	}
}

static void on_transition(const struct hd_transition *t, void *arg)
{
	struct hd_alerts *a = arg;

	reconcile(a, check_state(a, t->check->conf->name), t->check, t);
}

/* ---- start, reload, stop ---- */

struct load_request {
	struct hd_alerts *a;
	char **queues;
	size_t n_queues;
	bool at_start;
};

/* What had been announced for one check before this start. */
struct announced {
	char *check;
	bool open, recorded; /* recorded: an open-alert record is on disk */
	enum hd_kind kind;
	int64_t since_wall_ms;
	uint64_t seq; /* the newest event it reflects */
};

static struct announced *announced_of(struct announced **list, size_t *n, const char *check)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i].check, check) == 0)
			return &(*list)[i];
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[*n] = (struct announced){.check = xstrdup(check)};
	return &(*list)[(*n)++];
}

/* Takes an announced state as this run's: an open alert waits for the check's next state. */
static void restore_one(struct hd_alerts *a, const struct announced *an)
{
	struct check_alert *st = check_state(a, an->check);
	const struct hd_check *c;
	char since_text[32];

	if (st->open)
		return; /* this run announced it already */
	if (!an->open) { /* a recovery queued after the record: the record is stale */
		log_info("alerts: check %s: its recovery was queued but its open-alert record not yet removed when healthd "
			 "stopped; the recovery decides",
			 an->check);
		hd_spool_set_state(a->spool, an->check, NULL);
		return;
	}
	st->open = true;
	st->down_at_start = false;
	st->kind = an->kind;
	st->since_wall_ms = an->since_wall_ms;
	hd_iso8601(st->since_wall_ms, since_text, sizeof(since_text));
	log_info("alerts: check %s was announced down (%s since %s) before this start: its next state decides "
		 "between a recovery and reminders",
		 st->name, hd_kind_name(an->kind), since_text);
	if (!an->recorded)
		save_open_state(a, st); /* the event was on disk, its record not yet */
	c = engine_find(a->engine, st->name);
	if (c == NULL)
		forget_removed_check(a, st);
	else
		reconcile(a, st, c, NULL);
}

/*
 * What was announced before this start, per check: its open-alert record, unless an event queued after that
 * record says otherwise (healthd stopped after the event reached the disk and before the record did).
 */
static void restore_announced(struct hd_alerts *a, const struct hd_spool_load *load)
{
	struct announced *list = NULL;
	size_t n = 0;

	for (size_t i = 0; i < load->states.n; i++) {
		const struct hd_spool_item *item = &load->states.items[i];
		cJSON *o = cJSON_ParseWithLength(item->text, item->len);
		const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
		const cJSON *since = cJSON_GetObjectItemCaseSensitive(o, "since_ms");
		const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");

		if (kind == NULL || hd_kind_from_name(kind) < 0 || !cJSON_IsNumber(since) ||
		    !(since->valuedouble >= 0 && since->valuedouble < 9e15)) { /* range-checked before the cast */
			log_warn("alerts: ignoring the unreadable open-alert record of check %s in %s", item->name,
				 a->conf->spool_dir);
		} else {
			struct announced *an = announced_of(&list, &n, item->name);
			*an = (struct announced){.check = an->check, .open = true, .recorded = true,
						 .kind = (enum hd_kind)hd_kind_from_name(kind),
						 .since_wall_ms = (int64_t)since->valuedouble,
						 .seq = cJSON_IsNumber(seq) && seq->valuedouble > 0 && seq->valuedouble < 9e18
								? (uint64_t)seq->valuedouble : 0};
		}
		cJSON_Delete(o);
	}
	for (size_t q = 0; q < load->n_queues; q++)
		for (size_t i = 0; i < load->queues[q].n; i++) {
			const struct hd_spool_item *item = &load->queues[q].items[i];
			cJSON *e = cJSON_ParseWithLength(item->text, item->len);
			struct announced *an;
			int ev, kind;

			if (hd_alert_event_valid(e) && (ev = hd_alert_event_from_name(event_string(e, "event"))) >= 0 &&
			    (kind = hd_kind_from_name(event_string(e, "kind"))) >= 0 &&
			    (an = announced_of(&list, &n, event_string(e, "check")))->seq < item->seq) {
				an->seq = item->seq;
				an->open = ev != HD_ALERT_RECOVERY;
				if (an->open) {
					an->kind = (enum hd_kind)kind;
					an->since_wall_ms = hd_parse_iso8601(event_string(e, "since"));
				}
			}
			cJSON_Delete(e);
		}
	for (size_t i = 0; i < n; i++) {
		if (list[i].open || list[i].recorded)
			restore_one(a, &list[i]);
		free(list[i].check);
	}
	free(list);
}

/* Puts the events read back from a queue in front of anything queued since. */
static void restore_queue(struct hd_alerts *a, struct webhook *wh, const struct hd_spool_loaded *loaded)
{
	struct delivery *old_head = wh->head, *old_tail = wh->tail;
	size_t restored = 0;

	wh->head = wh->tail = NULL;
	for (size_t i = 0; i < loaded->n; i++) {
		const struct hd_spool_item *item = &loaded->items[i];
		struct delivery *d = delivery_add(wh, cJSON_ParseWithLength(item->text, item->len), item->len, item->seq, true,
						   true);
		if (d == NULL) {
			count_drop(wh, HD_DROP_UNREADABLE);
			log_err("alerts: %s: spool file %020" PRIu64 ".json in %s/%s is not an event healthd wrote; removed",
				wh->conf->display, item->seq, a->conf->spool_dir, wh->conf->queue);
			hd_spool_remove(a->spool, wh->conf->queue, item->seq);
			continue;
		}
		restored++;
	}
	if (old_head != NULL) {
		if (wh->tail) {
			wh->tail->next = old_head;
			old_head->prev = wh->tail;
			wh->tail = old_tail;
		} else {
			wh->head = old_head;
			wh->tail = old_tail;
		}
	}
	if (restored > 0)
		log_info("alerts: %s: %zu undelivered events read back from the spool", wh->conf->display, restored);
	enforce_size(wh);
	pump(wh);
}

static void on_loaded(struct hd_spool_load *load, void *arg)
{
	struct load_request *req = arg;
	struct hd_alerts *a = req->a;

	for (size_t i = 0; i < load->n_problems; i++)
		log_warn("alerts spool: %s", load->problems[i]);
	if (!load->usable)
		log_err("alerts: the spool in %s is not usable: events are sent from memory only, and lost if healthd stops "
			"before they are delivered",
			a->conf->spool_dir);
	for (size_t q = 0; q < load->n_queues && q < req->n_queues; q++) {
		struct webhook *wh = find_webhook(a, req->queues[q]);
		if (wh != NULL)
			restore_queue(a, wh, &load->queues[q]);
	}
	if (req->at_start) {
		restore_announced(a, load);
		a->restored = true;
		reconcile_all(a);
	}
	for (size_t i = 0; i < req->n_queues; i++)
		free(req->queues[i]);
	free(req->queues);
	free(req);
}

static void load_queues(struct hd_alerts *a, struct webhook **list, size_t n, bool at_start)
{
	struct load_request *req = xcalloc(1, sizeof(*req));

	req->a = a;
	req->at_start = at_start;
	req->queues = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		req->queues[req->n_queues++] = xstrdup(list[i]->conf->queue);
	hd_spool_load(a->spool, (const char *const *)req->queues, req->n_queues, at_start, on_loaded, req);
}

static void open_spool(struct hd_alerts *a)
{
	if (a->spool == NULL && a->n_webhooks == 0)
		a->restored = true; /* no spool: nothing was announced anywhere but in the log */
	if (a->spool != NULL || a->n_webhooks == 0)
		return;
	a->restored = false;
	a->spool = hd_spool_open(a->base, a->conf->spool_dir);
	load_queues(a, a->webhooks, a->n_webhooks, true);
}

static char *default_health_base(const struct hd_config *cfg)
{
	char host[256];
	const char *why;
	int port = 9110;

	if (hd_split_hostport(cfg->listen.http, host, sizeof(host), &port, &why) < 0 || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0 || host[0] == '\0')
		return xasprintf("http://%s:%d", cfg->node_name, port);
	return strchr(host, ':') ? xasprintf("http://[%s]:%d", host, port) : xasprintf("http://%s:%d", host, port);
}

/* "http://10.0.1.12:9110/x" -> "10.0.1.12:9110": the address Prometheus would scrape, as its instance label. */
static char *instance_of(const char *url)
{
	const char *start = strstr(url, "://"), *end, *at;

	start = start ? start + 3 : url;
	end = start + strcspn(start, "/?#");
	at = memchr(start, '@', (size_t)(end - start));
	if (at != NULL) /* never user info in a label */
		start = at + 1;
	return xasprintf("%.*s", (int)(end - start), start);
}

static int gcd(int x, int y)
{
	while (y > 0) {
		int r = x % y;
		x = y;
		y = r;
	}
	return x;
}

static void take_conf(struct hd_alerts *a)
{
	const struct hd_config *cfg = engine_config(a->engine);
	struct hd_alerts_conf *conf = cfg->alerts;

	if (conf != NULL)
		conf->refs++;
	else
		conf = alerts_default_conf();
	alerts_conf_unref(a->conf);
	a->conf = conf;
	free(a->health_base);
	a->health_base = conf->health_url ? xstrdup(conf->health_url) : default_health_base(cfg);
	while (strlen(a->health_base) > 0 && a->health_base[strlen(a->health_base) - 1] == '/')
		a->health_base[strlen(a->health_base) - 1] = '\0';
	free(a->instance);
	a->instance = instance_of(a->health_base);
	a->reminder_tick_s = conf->webhooks.n == 0 ? conf->repeat_interval_s : 0;
	for (size_t i = 0; i < conf->webhooks.n; i++)
		a->reminder_tick_s = gcd(a->reminder_tick_s, conf->webhooks.items[i].repeat_interval_s);
}

struct hd_alerts *alerts_start(struct event_base *base, struct hd_engine *engine)
{
	struct hd_alerts *a = xcalloc(1, sizeof(*a));
	uint64_t seed = (uint64_t)hd_now_wall_ms() ^ ((uint64_t)getpid() << 32);

	a->base = base;
	a->engine = engine;
	memcpy(a->rand_state, &seed, sizeof(a->rand_state));
	take_conf(a);
	a->webhooks = xcalloc(a->conf->webhooks.n + 1, sizeof(*a->webhooks));
	for (size_t i = 0; i < a->conf->webhooks.n; i++)
		a->webhooks[a->n_webhooks++] = webhook_new(a, &a->conf->webhooks.items[i]);
	open_spool(a);
	engine_subscribe(engine, on_result, on_transition, a);
	if (a->n_webhooks > 0)
		log_info("alerts: %zu webhooks, spool in %s", a->n_webhooks, a->conf->spool_dir);
	else
		log_info("alerts: no webhook configured: state changes are logged only (lines starting \"alert \")");
	return a;
}

void alerts_reload(struct hd_alerts *a)
{
	struct hd_alerts_conf *old = a->conf; /* kept until the webhooks point into the new one */
	struct webhook **fresh, **added;
	size_t n_fresh = 0, n_added = 0;

	old->refs++;
	take_conf(a);
	if (a->spool != NULL && strcmp(old->spool_dir, a->conf->spool_dir) != 0)
		log_warn("alerts: reload: spool_dir changes on restart only; still %s", hd_spool_dir(a->spool));
	fresh = xcalloc(a->conf->webhooks.n + 1, sizeof(*fresh));
	added = xcalloc(a->conf->webhooks.n + 1, sizeof(*added));
	for (size_t i = 0; i < a->conf->webhooks.n; i++) {
		const struct webhook_conf *w = &a->conf->webhooks.items[i];
		struct webhook *wh = find_webhook(a, w->queue);
		if (wh != NULL) {
			for (size_t j = 0; j < a->n_webhooks; j++)
				if (a->webhooks[j] == wh)
					a->webhooks[j] = NULL;
		} else {
			wh = webhook_new(a, w);
			added[n_added++] = wh;
			log_info("alerts: reload: %s added", w->display);
		}
		wh->conf = w;
		arm_resend(wh);
		fresh[n_fresh++] = wh;
	}
	for (size_t j = 0; j < a->n_webhooks; j++)
		if (a->webhooks[j] != NULL) {
			log_warn("alerts: reload: %s removed; its %zu undelivered events stay in the spool", a->webhooks[j]->conf->display,
				 a->webhooks[j]->n_queued);
			webhook_free(a->webhooks[j]);
		}
	free(a->webhooks);
	a->webhooks = fresh;
	a->n_webhooks = n_fresh;
	if (a->spool == NULL)
		open_spool(a);
	else if (n_added > 0)
		load_queues(a, added, n_added, false);
	for (size_t i = 0; i < a->n_webhooks; i++)
		pump(a->webhooks[i]);
	for (struct check_alert *st = a->checks; st; st = st->next) { /* the reminder periods may have changed */
		evtimer_del(st->reminder_timer);
		st->reminder_ticks = 0;
		arm_reminder(a, st);
	}
	free(added);
	alerts_conf_unref(old);
}

/* At stop: what the spool could not keep is lost now; say which, so that someone can act on it. */
static void report_memory_only(struct hd_alerts *a)
{
	size_t total = 0, listed = 0;
	char list[1024] = "";

	for (size_t i = 0; i < a->n_webhooks; i++) {
		total += a->webhooks[i]->n_memory_only;
		for (const struct delivery *d = a->webhooks[i]->head; d; d = d->next) {
			size_t used = strlen(list);
			if (d->spooled || d->resend || listed == 10 || used > sizeof(list) - 200)
				continue;
			snprintf(list + used, sizeof(list) - used, "%s%s %s of %s to %s", listed ? "; " : "", d->id,
				 d->kind_of_event, d->check, a->webhooks[i]->conf->display);
			listed++;
		}
	}
	if (total > 0) /* (writes still queued are finished by hd_spool_close, or reported there) */
		log_err("alerts: stopping with %zu undelivered deliveries that are not on disk (the spool could not keep "
			"them: full or failing disk?): they are lost: %s%s",
			total, list, total > listed ? " ..." : "");
}

void alerts_free(struct hd_alerts *a)
{
	struct pending_write *pw;
	struct check_alert *st;

	if (a == NULL)
		return;
	report_memory_only(a);
	for (size_t i = 0; i < a->n_webhooks; i++)
		webhook_free(a->webhooks[i]);
	free(a->webhooks);
	a->n_webhooks = 0;
	hd_spool_close(a->spool, SPOOL_CLOSE_WAIT_MS);
	while ((pw = a->writes) != NULL) {
		a->writes = pw->next;
		pending_write_free(pw);
	}
	while ((st = a->checks) != NULL) {
		a->checks = st->next;
		event_free(st->hold_timer);
		event_free(st->reminder_timer);
		cJSON_Delete(st->firing);
		free(st->name);
		free(st);
	}
	free(a->index);
	alerts_conf_unref(a->conf);
	free(a->health_base);
	free(a->instance);
	free(a);
}

size_t alerts_n_webhooks(const struct hd_alerts *a)
{
	return a ? a->n_webhooks : 0;
}

const char *alerts_webhook_counters(const struct hd_alerts *a, size_t i, struct hd_alerts_counters *out)
{
	const struct webhook *wh = a->webhooks[i];
	const char *label = wh->conf->display;

	*out = wh->counted;
	out->queue_depth = wh->n_queued;
	return strncmp(label, "webhook ", 8) == 0 ? label + 8 : label;
}

void alerts_get_counters(const struct hd_alerts *a, struct hd_alerts_counters *out)
{
	*out = a->counters;
	out->queue_depth = out->memory_only = 0;
	for (size_t i = 0; i < a->n_webhooks; i++) {
		out->queue_depth += a->webhooks[i]->n_queued;
		out->memory_only += a->webhooks[i]->n_memory_only;
	}
	for (const struct pending_write *pw = a->writes; pw; pw = pw->next)
		if (!pw->released)
			out->queue_depth += pw->n_queues;
}
