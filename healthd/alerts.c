/* alerts.c: turns the engine's state changes into alert events (what to announce, when), and alerting's life cycle. */
#include "alerts_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert_event.h"
#include "config.h"
#include "curl_loop.h"
#include "spool.h"

static void reconcile(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c,
		      const struct hd_transition *t);
/* ---- per-check alert state ---- */

static void on_hold_timer(evutil_socket_t fd, short what, void *arg);
static void on_reminder_timer(evutil_socket_t fd, short what, void *arg);

/* A check's timers are made on first use (most checks never need them): 10,000 checks, 2.9 MB less. */
static void timer_add(struct check_alert *st, struct event **timer, event_callback_fn fn, const struct timeval *tv)
{
	if (*timer == NULL)
		*timer = evtimer_new(st->a->base, fn, st);
	evtimer_add(*timer, tv);
}

static bool timer_pending(const struct event *timer)
{
	return timer != NULL && evtimer_pending(timer, NULL);
}

static void timer_del(struct event *timer)
{
	if (timer != NULL)
		evtimer_del(timer);
}

/* Doubles the index when it is full; the states themselves never move. */
static void grow_index(struct hd_alerts *a)
{
	size_t size = a->index_size ? a->index_size * 2 : 64;
	struct check_alert **index = xcalloc(size, sizeof(*index));
	struct check_alert *st;

	SLIST_FOREACH(st, &a->checks, link) {
		size_t b = (size_t)(st->hash & (size - 1));
		st->same_bucket = index[b];
		index[b] = st;
	}
	free(a->index);
	a->index = index;
	a->index_size = size;
}

/* The alert state of a check, made on first use; a reload drops those of removed checks (drop_removed_checks). */
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
	SLIST_INSERT_HEAD(&a->checks, st, link);
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

	if (a->reminder_tick_s > 0 && st->open && !timer_pending(st->reminder_timer))
		timer_add(st, &st->reminder_timer, on_reminder_timer, &tv);
}

static void fill_facts(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c, enum hd_alert_event ev,
		       struct hd_alert_facts *f, char *id, char *url, size_t url_len)
{
	bool up = c->state == HD_STATE_UP;
	const struct hd_result *r = up ? &c->last : hd_check_last_failure(c);

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
		.phase = up ? HD_PHASE_NONE : r->phase,
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

/* Keeps event as what st's open alert says, for the Alertmanager re-posts; without such a webhook, nothing (an
 * event is about 1.7 KB: 5,000 checks down kept 8.7 MB for nobody). Takes ownership of event. */
static void set_firing(struct check_alert *st, cJSON *event)
{
	cJSON_Delete(st->firing);
	st->firing = NULL;
	if (st->a->keep_firing)
		st->firing = event;
	else
		cJSON_Delete(event);
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
		timer_del(st->reminder_timer);
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
	set_firing(st, st->open && a->keep_firing ? cJSON_Duplicate(event, true) : NULL);
	/* the event before the record: a crash between them leaves an event that restore_announced() believes */
	alert_enqueue(a, event, ev == HD_ALERT_REMINDER ? due : NULL);
	if (ev != HD_ALERT_REMINDER)
		save_open_state(a, st);
	arm_reminder(a, st);
}

/* An alert open since before this start: what it says (for Alertmanager re-posts), from the check as it is now. */
static void remember_firing(struct hd_alerts *a, struct check_alert *st, const struct hd_check *c)
{
	struct hd_alert_facts f;
	char id[37], url[512];

	if (st->firing != NULL || !a->keep_firing)
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
					timer_pending(st->hold_timer) ? "not-sent:its-regression-was-held-by-min_gap_s"
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
		if (!timer_pending(st->hold_timer)) {
			struct timeval tv = hd_ms_tv(wait_ms);
			timer_add(st, &st->hold_timer, on_hold_timer, &tv);
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
	timer_del(st->reminder_timer);
	timer_del(st->hold_timer);
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

			if (hd_alert_event_valid(e) && (ev = hd_alert_event_from_name(alert_event_string(e, "event"))) >= 0 &&
			    (kind = hd_kind_from_name(alert_event_string(e, "kind"))) >= 0 &&
			    (an = announced_of(&list, &n, alert_event_string(e, "check")))->seq < item->seq) {
				an->seq = item->seq;
				an->open = ev != HD_ALERT_RECOVERY;
				if (an->open) {
					an->kind = (enum hd_kind)kind;
					an->since_wall_ms = hd_parse_iso8601(alert_event_string(e, "since"));
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
	struct delivery_list queued_since = TAILQ_HEAD_INITIALIZER(queued_since);
	size_t restored = 0;

	TAILQ_CONCAT(&queued_since, &wh->queue, link);
	for (size_t i = 0; i < loaded->n; i++) {
		const struct hd_spool_item *item = &loaded->items[i];
		struct delivery *d = alert_delivery_add(wh, cJSON_ParseWithLength(item->text, item->len), item->len, item->seq, true,
						   true);
		if (d == NULL) {
			alert_count_drop(wh, HD_DROP_UNREADABLE);
			log_err("alerts: %s: spool file %020" PRIu64 ".json in %s/%s is not an event healthd wrote; removed",
				wh->conf->display, item->seq, a->conf->spool_dir, wh->conf->queue);
			hd_spool_remove(a->spool, wh->conf->queue, item->seq);
			continue;
		}
		restored++;
	}
	TAILQ_CONCAT(&wh->queue, &queued_since, link);
	if (restored > 0)
		log_info("alerts: %s: %zu undelivered events read back from the spool", wh->conf->display, restored);
	alert_enforce_size(wh);
	alert_webhook_pump(wh);
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
		struct webhook *wh = alert_find_webhook(a, req->queues[q]);
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
	a->keep_firing = false;
	for (size_t i = 0; i < conf->webhooks.n; i++) {
		a->reminder_tick_s = gcd(a->reminder_tick_s, conf->webhooks.items[i].repeat_interval_s);
		a->keep_firing |= conf->webhooks.items[i].resend_interval_s > 0;
	}
}

struct hd_alerts *alerts_start(struct event_base *base, struct hd_engine *engine)
{
	struct hd_alerts *a = xcalloc(1, sizeof(*a));
	uint64_t seed = (uint64_t)hd_now_wall_ms() ^ ((uint64_t)getpid() << 32);

	a->base = base;
	TAILQ_INIT(&a->writes);
	a->engine = engine;
	memcpy(a->rand_state, &seed, sizeof(a->rand_state));
	take_conf(a);
	a->webhooks = xcalloc(a->conf->webhooks.n + 1, sizeof(*a->webhooks));
	for (size_t i = 0; i < a->conf->webhooks.n; i++)
		a->webhooks[a->n_webhooks++] = alert_webhook_new(a, &a->conf->webhooks.items[i]);
	open_spool(a);
	engine_subscribe(engine, on_result, on_transition, a);
	if (a->n_webhooks > 0)
		log_info("alerts: %zu webhooks, spool in %s", a->n_webhooks, a->conf->spool_dir);
	else
		log_info("alerts: no webhook configured: state changes are logged only (lines starting \"alert \")");
	return a;
}

static void check_state_free(struct check_alert *st)
{
	if (st->hold_timer != NULL)
		event_free(st->hold_timer);
	if (st->reminder_timer != NULL)
		event_free(st->reminder_timer);
	cJSON_Delete(st->firing);
	free(st->name);
	free(st);
}

/* After the engine took a new list: a removed check's alert is closed (an open one without a recovery) and its
 * state freed, so that renaming checks on reloads never grows memory. */
static void drop_removed_checks(struct hd_alerts *a)
{
	struct check_alert *st, *next, **pp;

	for (st = SLIST_FIRST(&a->checks); st != NULL; st = next) {
		next = SLIST_NEXT(st, link);
		if (engine_find(a->engine, st->name) != NULL)
			continue;
		if (st->open)
			forget_removed_check(a, st);
		for (pp = &a->index[st->hash & (a->index_size - 1)]; *pp != st; pp = &(*pp)->same_bucket)
			;
		*pp = st->same_bucket;
		SLIST_REMOVE(&a->checks, st, check_alert, link);
		a->n_checks--;
		check_state_free(st);
	}
}

void alerts_reload(struct hd_alerts *a)
{
	struct hd_alerts_conf *old = a->conf; /* kept until the webhooks point into the new one */
	struct webhook **fresh, **added;
	struct check_alert *st;
	size_t n_fresh = 0, n_added = 0;

	old->refs++;
	take_conf(a);
	drop_removed_checks(a);
	if (a->spool != NULL && strcmp(old->spool_dir, a->conf->spool_dir) != 0)
		log_warn("alerts: reload: spool_dir changes on restart only; still %s", hd_spool_dir(a->spool));
	fresh = xcalloc(a->conf->webhooks.n + 1, sizeof(*fresh));
	added = xcalloc(a->conf->webhooks.n + 1, sizeof(*added));
	for (size_t i = 0; i < a->conf->webhooks.n; i++) {
		const struct webhook_conf *w = &a->conf->webhooks.items[i];
		struct webhook *wh = alert_find_webhook(a, w->queue);
		if (wh != NULL) {
			for (size_t j = 0; j < a->n_webhooks; j++)
				if (a->webhooks[j] == wh)
					a->webhooks[j] = NULL;
		} else {
			wh = alert_webhook_new(a, w);
			added[n_added++] = wh;
			log_info("alerts: reload: %s added", w->display);
		}
		wh->conf = w;
		alert_webhook_arm_resend(wh);
		fresh[n_fresh++] = wh;
	}
	for (size_t j = 0; j < a->n_webhooks; j++)
		if (a->webhooks[j] != NULL) {
			log_warn("alerts: reload: %s removed; its %zu undelivered events stay in the spool", a->webhooks[j]->conf->display,
				 a->webhooks[j]->n_queued);
			alert_webhook_free(a->webhooks[j]);
		}
	free(a->webhooks);
	a->webhooks = fresh;
	a->n_webhooks = n_fresh;
	if (a->spool == NULL)
		open_spool(a);
	else if (n_added > 0)
		load_queues(a, added, n_added, false);
	for (size_t i = 0; i < a->n_webhooks; i++)
		alert_webhook_pump(a->webhooks[i]);
	SLIST_FOREACH(st, &a->checks, link) { /* the reminder periods may have changed */
		const struct hd_check *c = engine_find(a->engine, st->name);
		timer_del(st->reminder_timer);
		st->reminder_ticks = 0;
		arm_reminder(a, st);
		if (!a->keep_firing)
			set_firing(st, NULL);
		else if (st->open && c != NULL)
			remember_firing(a, st, c); /* an Alertmanager webhook added: what each open alert says */
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
		const struct delivery *d;
		TAILQ_FOREACH(d, &a->webhooks[i]->queue, link) {
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
		alert_webhook_free(a->webhooks[i]);
	free(a->webhooks);
	a->n_webhooks = 0;
	hd_spool_close(a->spool, SPOOL_CLOSE_WAIT_MS);
	while ((pw = TAILQ_FIRST(&a->writes)) != NULL) {
		TAILQ_REMOVE(&a->writes, pw, link);
		alert_pending_write_free(pw);
	}
	while ((st = SLIST_FIRST(&a->checks)) != NULL) {
		SLIST_REMOVE_HEAD(&a->checks, link);
		check_state_free(st);
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
	const struct pending_write *pw;

	*out = a->counters;
	out->queue_depth = out->memory_only = 0;
	for (size_t i = 0; i < a->n_webhooks; i++) {
		out->queue_depth += a->webhooks[i]->n_queued;
		out->memory_only += a->webhooks[i]->n_memory_only;
	}
	TAILQ_FOREACH(pw, &a->writes, link)
		if (!pw->released)
			out->queue_depth += pw->n_queues;
}
