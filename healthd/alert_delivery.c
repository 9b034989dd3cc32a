/* alert_delivery.c: alert events on their way to webhooks: the spool first, then per-webhook queues, retries with
 * backoff, Alertmanager re-posts, drops only at the spool's bounds. */
#include "alerts_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert_event.h"
#include "curl_loop.h"
#include "spool.h"

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

struct webhook *alert_find_webhook(struct hd_alerts *a, const char *queue)
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
	TAILQ_REMOVE(&wh->queue, d, link);
	wh->n_queued--;
	wh->n_memory_only -= !d->spooled && !d->resend;
	wh->bytes -= d->len;
	if (d->spooled && wh->a->spool)
		hd_spool_remove(wh->a->spool, wh->conf->queue, d->seq);
	cJSON_Delete(d->event);
	free(d);
}

void alert_count_drop(struct webhook *wh, enum hd_alert_drop reason)
{
	wh->a->counters.dropped++;
	wh->a->counters.dropped_by[reason]++;
	wh->counted.dropped++;
	wh->counted.dropped_by[reason]++;
}

static void delivery_drop(struct delivery *d, enum hd_alert_drop reason, const char *why)
{
	alert_count_drop(d->wh, reason);
	log_err("alerts: %s: event %s (%s of check %s) dropped (%s): %s", d->wh->conf->display, d->id,
		d->kind_of_event, d->check, hd_alert_drop_name(reason), why);
	delivery_finish(d);
}

const char *alert_event_string(const cJSON *event, const char *name)
{
	return hd_json_string(event, name, "");
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
struct delivery *alert_delivery_add(struct webhook *wh, cJSON *event, size_t len, uint64_t seq, bool spooled,
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
	d->id = alert_event_string(event, "id");
	d->check = alert_event_string(event, "check");
	d->kind_of_event = alert_event_string(event, "event");
	d->time_wall_ms = hd_parse_iso8601(alert_event_string(event, "time"));
	d->born_mono_ms = hd_now_mono_ms();
	if (restored)
		d->born_mono_ms -= age_at_load_ms(d->time_wall_ms, wh->a->conf->spool_max_age_s);
	d->len = len;
	d->seq = seq;
	d->spooled = spooled;
	TAILQ_INSERT_TAIL(&wh->queue, d, link);
	wh->n_queued++;
	wh->n_memory_only += !spooled;
	wh->bytes += len;
	return d;
}

/* spool_max_bytes: the oldest undelivered events give way to new ones. */
void alert_enforce_size(struct webhook *wh)
{
	struct delivery *d = TAILQ_FIRST(&wh->queue), *next;

	while (wh->bytes > (size_t)wh->a->conf->spool_max_bytes && d != NULL) {
		next = TAILQ_NEXT(d, link);
		if (!d->in_flight && d != TAILQ_LAST(&wh->queue, delivery_list))
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
	tv = hd_ms_tv(delay);
	evtimer_add(wh->retry_timer, &tv);
	return delay;
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	alert_webhook_pump(arg);
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
	alert_webhook_pump(wh);
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
void alert_webhook_pump(struct webhook *wh)
{
	struct hd_alerts *a = wh->a;
	size_t limit = wh->probing ? 1 : (size_t)a->conf->max_in_flight, n_busy = 0, cap = 0;
	int64_t now = hd_now_mono_ms(), max_age_ms = (int64_t)a->conf->spool_max_age_s * 1000;
	const char **busy = NULL;
	struct delivery *d, *next;

	if (evtimer_pending(wh->retry_timer, NULL))
		return;
	for (d = TAILQ_FIRST(&wh->queue); d != NULL && wh->n_in_flight < limit; d = next) {
		next = TAILQ_NEXT(d, link);
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
	struct check_alert *st;
	char id[37];

	(void)fd;
	(void)what;
	SLIST_FOREACH(st, &a->checks, link) {
		cJSON *event;
		struct delivery *d;

		if (!st->open || st->firing == NULL || has_pending(a, wh, st->name))
			continue;
		event = cJSON_Duplicate(st->firing, true);
		hd_alert_new_id(id);
		cJSON_ReplaceItemInObjectCaseSensitive(event, "id", cJSON_CreateString(id));
		cJSON_ReplaceItemInObjectCaseSensitive(event, "event", cJSON_CreateString("reminder"));
		if ((d = alert_delivery_add(wh, event, alert_event_size(event), 0, false, false)) == NULL)
			continue;
		d->resend = true;
		wh->n_memory_only--; /* counted by delivery_add; a lost re-post is replaced by the next one */
		a->counters.resent++;
		wh->counted.resent++;
	}
	alert_enforce_size(wh);
	alert_webhook_pump(wh);
}

/* (Re)starts a webhook's re-post schedule after a start or reload. */
void alert_webhook_arm_resend(struct webhook *wh)
{
	struct timeval tv = {.tv_sec = wh->conf->resend_interval_s};

	if (wh->resend_timer == NULL)
		wh->resend_timer = event_new(wh->a->base, -1, EV_PERSIST, on_resend_timer, wh);
	event_del(wh->resend_timer);
	if (wh->conf->resend_interval_s > 0)
		event_add(wh->resend_timer, &tv);
}

struct webhook *alert_webhook_new(struct hd_alerts *a, const struct webhook_conf *conf)
{
	struct webhook *wh = xcalloc(1, sizeof(*wh));

	wh->a = a;
	wh->conf = conf;
	TAILQ_INIT(&wh->queue);
	wh->retry_timer = evtimer_new(a->base, on_retry_timer, wh);
	alert_webhook_arm_resend(wh);
	return wh;
}

void alert_webhook_free(struct webhook *wh)
{
	struct delivery *d;

	while ((d = TAILQ_FIRST(&wh->queue)) != NULL) {
		d->spooled = false; /* stays on disk for the next start */
		delivery_finish(d);
	}
	event_free(wh->retry_timer);
	event_free(wh->resend_timer);
	free(wh);
}

/* ---- from events to deliveries, through the spool ---- */

void alert_pending_write_free(struct pending_write *pw)
{
	for (size_t i = 0; i < pw->n_queues; i++)
		free(pw->queues[i]);
	free(pw->queues);
	if (pw->stall_timer != NULL) /* libevent's event_free(NULL) crashes */
		event_free(pw->stall_timer);
	cJSON_Delete(pw->event);
	free(pw);
}

size_t alert_event_size(const cJSON *event)
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
	size_t len = alert_event_size(pw->event);

	for (size_t i = 0; i < pw->n_queues; i++) {
		struct webhook *wh = alert_find_webhook(a, pw->queues[i]);
		bool spooled = written && written[i];
		struct delivery *d = NULL;

		if (wh == NULL)
			continue; /* removed by a reload meanwhile: its file stays for when it comes back */
		if (pw->released) {
			const char *id = alert_event_string(pw->event, "id");
			TAILQ_FOREACH(d, &wh->queue, link)
				if (strcmp(d->id, id) == 0)
					break;
			if (d != NULL) {
				wh->n_memory_only += (size_t)!spooled - (size_t)!d->spooled;
				d->seq = seq;
				d->spooled = spooled;
			} else if (spooled) {
				hd_spool_remove(a->spool, pw->queues[i], seq); /* delivered (or dropped) from memory already */
			}
			continue;
		}
		alert_delivery_add(wh, cJSON_Duplicate(pw->event, true), len, seq, spooled, false);
		alert_enforce_size(wh);
		alert_webhook_pump(wh);
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
			alert_event_string(pw->event, "id"), alert_event_string(pw->event, "event"), alert_event_string(pw->event, "check"),
			error);
	}
	TAILQ_REMOVE(&a->writes, pw, link);
	distribute(pw, seq, written);
	alert_pending_write_free(pw);
}

static void on_spool_stall(evutil_socket_t fd, short what, void *arg)
{
	struct pending_write *pw = arg;

	(void)fd;
	(void)what;
	log_warn("alerts: the spool has not written event %s (%s of check %s) within %d ms (is the disk under %s hung?); "
		 "sending it from memory meanwhile",
		 alert_event_string(pw->event, "id"), alert_event_string(pw->event, "event"), alert_event_string(pw->event, "check"),
		 SPOOL_STALL_MS, pw->a->conf->spool_dir);
	distribute(pw, 0, NULL);
	pw->released = true;
}

/* Whether a webhook has something for check still to deliver (then a reminder adds nothing). */
static bool has_pending(struct hd_alerts *a, struct webhook *wh, const char *check)
{
	struct pending_write *pw;
	struct delivery *d;

	TAILQ_FOREACH(d, &wh->queue, link)
		if (strcmp(d->check, check) == 0)
			return true;
	TAILQ_FOREACH(pw, &a->writes, link)
		if (strcmp(alert_event_string(pw->event, "check"), check) == 0)
			for (size_t i = 0; i < pw->n_queues; i++)
				if (strcmp(pw->queues[i], wh->conf->queue) == 0)
					return true;
	return false;
}

/*
 * Logs the event as one structured line, then spools it for the webhooks it is for (owns event): every webhook, or
 * with due (a reminder) those marked due that have nothing for the check still to deliver.
 */
void alert_enqueue(struct hd_alerts *a, cJSON *event, const bool *due)
{
	const char *check = alert_event_string(event, "check");
	struct pending_write *pw;
	char *line, *text, delivery[128];
	struct timeval tv = hd_ms_tv(SPOOL_STALL_MS);
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
		alert_pending_write_free(pw);
		return;
	}
	text = cJSON_PrintUnformatted(event);
	TAILQ_INSERT_TAIL(&a->writes, pw, link);
	pw->stall_timer = evtimer_new(a->base, on_spool_stall, pw);
	evtimer_add(pw->stall_timer, &tv);
	hd_spool_append(a->spool, (const char *const *)pw->queues, pw->n_queues, text, strlen(text), on_spooled, pw);
	cJSON_free(text);
}

