/* history.c: the last state and admin changes (bounded, kept in state_dir/history.json) and per-check result rings. */
#include "history.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "fileio.h"
#include "http_api.h"
#include "refbuf.h"
#include "util.h"
#include "worker.h"

#define HISTORY_VERSION 1
#define HISTORY_EXIT_WAIT_S 3
#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL

struct event_rec {
	int64_t wall_ms;
	int64_t previous_ms;
	char what[8];
	char check[128];
	char from[16], to[16];
	char kind[32];
	char detail[200];
};

_Static_assert(sizeof(struct hd_history_sample) == 4, "a sample is 4 bytes: 120 per check");

struct check_hist {
	char *name;
	uint64_t hash;
	struct check_hist *next;
	unsigned seen_generation; /* the engine's checks generation at which the check was last listed */
	struct hd_history_sample ring[HD_HISTORY_RING];
	size_t head, n; /* head: the next slot written */
	struct hd_avail_bucket minutes[HD_HISTORY_MINUTES];
	struct hd_avail_bucket hours[HD_HISTORY_HOURS];
	int64_t state_since_ms; /* the last state change seen (or the first result), for how long a state lasted */
};

struct hd_history {
	struct hd_engine *engine;
	struct hd_status *status;
	char *dir;
	struct event_rec *events; /* a ring of max_events */
	size_t max_events, head, n;
	size_t max_bytes;
	unsigned version, flushed_version;
	enum hd_admin_mode admin_mode;
	int64_t admin_since_ms;
	struct check_hist **table; /* hash chains of the per-check states, as many as states (doubled when full) */
	size_t table_size, n_checks;
	unsigned generation; /* the engine's checks generation the table was last swept at */
	struct hd_refbuf *json;   /* the /history body (also the file's text), a new one on each change; never modified */
	struct event *flush;      /* coalesces the changes of one loop turn into one rebuild and write */
	/* the writer thread */
	struct hd_worker *writer;
	pthread_mutex_t lock;
	char *pending;            /* guarded by lock: the newest text to write, or NULL */
	int last_rc;              /* guarded by lock */
	char last_error[512];
};

void hd_avail_add(struct hd_avail_bucket *b, size_t n, int64_t width_ms, int64_t now_ms, bool ok)
{
	int64_t epoch = now_ms / width_ms;
	struct hd_avail_bucket *slot = &b[(size_t)(epoch % (int64_t)n)];

	if (slot->epoch != (int32_t)epoch)
		*slot = (struct hd_avail_bucket){.epoch = (int32_t)epoch};
	if (slot->total == UINT16_MAX)
		return;
	slot->total++;
	if (ok)
		slot->ok++;
}

void hd_avail_sum(const struct hd_avail_bucket *b, size_t n, int64_t width_ms, int64_t now_ms, uint64_t *ok,
		  uint64_t *total)
{
	int64_t epoch = now_ms / width_ms;

	*ok = *total = 0;
	for (size_t i = 0; i < n; i++)
		if (b[i].total > 0 && b[i].epoch <= epoch && b[i].epoch > epoch - (int64_t)n) {
			*ok += b[i].ok;
			*total += b[i].total;
		}
}

static struct check_hist *find_check(const struct hd_history *h, const char *name)
{
	uint64_t hash = hd_hash_str(name);

	if (h->table_size == 0)
		return NULL;
	for (struct check_hist *c = h->table[hash & (h->table_size - 1)]; c != NULL; c = c->next)
		if (c->hash == hash && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Doubles the chains when there are as many states as chains, so that a lookup stays one or two compares. */
static void grow_table(struct hd_history *h)
{
	size_t size = h->table_size ? h->table_size * 2 : 64;
	struct check_hist **table = xcalloc(size, sizeof(*table));

	for (size_t i = 0; i < h->table_size; i++)
		while (h->table[i] != NULL) {
			struct check_hist *c = h->table[i];

			h->table[i] = c->next;
			c->next = table[c->hash & (size - 1)];
			table[c->hash & (size - 1)] = c;
		}
	free(h->table);
	h->table = table;
	h->table_size = size;
}

/* After a reload: drops the results of checks that are gone, so that renaming checks never grows memory. */
static void sweep_table(struct hd_history *h, unsigned generation)
{
	for (size_t i = 0; i < engine_n_checks(h->engine); i++) {
		struct check_hist *c = find_check(h, engine_check(h->engine, i)->conf->name);
		if (c != NULL)
			c->seen_generation = generation;
	}
	for (size_t i = 0; i < h->table_size; i++)
		for (struct check_hist **cp = &h->table[i]; *cp != NULL;) {
			struct check_hist *c = *cp;
			if (c->seen_generation != generation) {
				*cp = c->next;
				free(c->name);
				free(c);
				h->n_checks--;
			} else {
				cp = &c->next;
			}
		}
	h->generation = generation;
}

static struct check_hist *get_check(struct hd_history *h, const char *name)
{
	unsigned generation = engine_checks_generation(h->engine);
	struct check_hist *c;

	if (generation != h->generation)
		sweep_table(h, generation);
	c = find_check(h, name);
	if (c == NULL) {
		if (h->n_checks >= h->table_size)
			grow_table(h);
		h->n_checks++;
		c = xcalloc(1, sizeof(*c));
		c->name = xstrdup(name);
		c->hash = hd_hash_str(name);
		c->seen_generation = generation;
		c->next = h->table[c->hash & (h->table_size - 1)];
		h->table[c->hash & (h->table_size - 1)] = c;
	}
	return c;
}

/* ---- the events and their JSON ---- */

static cJSON *event_json(const struct event_rec *e)
{
	cJSON *o = cJSON_CreateObject();
	char when[40];

	hd_iso8601(e->wall_ms, when, sizeof(when));
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddNumberToObject(o, "time_ms", (double)e->wall_ms);
	cJSON_AddStringToObject(o, "what", e->what);
	if (e->check[0])
		cJSON_AddStringToObject(o, "check", e->check);
	cJSON_AddStringToObject(o, "from", e->from);
	cJSON_AddStringToObject(o, "to", e->to);
	if (e->kind[0])
		cJSON_AddStringToObject(o, "kind", e->kind);
	cJSON_AddStringToObject(o, "detail", e->detail);
	if (e->previous_ms >= 0)
		cJSON_AddNumberToObject(o, "previous_lasted_ms", (double)e->previous_ms);
	return o;
}

static const struct event_rec *event_at(const struct hd_history *h, size_t newest_first)
{
	return &h->events[(h->head + h->max_events - 1 - newest_first) % h->max_events];
}

/* Rebuilds the body from the newest event back, dropping the oldest ones beyond max_bytes. */
static void rebuild_json(struct hd_history *h)
{
	struct evbuffer *buf = evbuffer_new();
	size_t kept = 0;

	evbuffer_add_printf(buf, "{\"version\":%d,\"events\":[", HISTORY_VERSION);
	for (size_t i = 0; i < h->n; i++) {
		cJSON *o = event_json(event_at(h, i));
		char *text = cJSON_PrintUnformatted(o);
		size_t len = strlen(text);

		cJSON_Delete(o);
		if (evbuffer_get_length(buf) + len + 8 > h->max_bytes) {
			cJSON_free(text);
			break;
		}
		evbuffer_add_printf(buf, "%s\n%s", i ? "," : "", text);
		cJSON_free(text);
		kept++;
	}
	h->n = kept; /* what did not fit is gone from memory too, so that /history and the file agree */
	evbuffer_add(buf, "]}\n", 3);
	hd_refbuf_unref(h->json); /* answers still queued keep their references to its bytes */
	h->json = hd_refbuf_take(buf);
	evbuffer_free(buf);
}

static void queue_write(struct hd_history *h)
{
	pthread_mutex_lock(&h->lock);
	free(h->pending);
	h->pending = xmalloc(h->json->len + 1);
	memcpy(h->pending, h->json->data, h->json->len + 1); /* with its NUL */
	pthread_mutex_unlock(&h->lock);
	hd_worker_kick(h->writer);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct hd_history *h = arg;

	(void)fd;
	(void)what;
	rebuild_json(h);
	queue_write(h);
	h->flushed_version = h->version;
}

static void add_event(struct hd_history *h, const struct event_rec *e)
{
	h->events[h->head] = *e;
	h->head = (h->head + 1) % h->max_events;
	if (h->n < h->max_events)
		h->n++;
	h->version++;
	event_active(h->flush, EV_TIMEOUT, 0);
}

static void on_result(const struct hd_check *c, void *arg)
{
	struct hd_history *h = arg;
	struct check_hist *ch = get_check(h, c->conf->name);
	bool ok = c->last.kind == HD_KIND_OK;
	int64_t now = c->last.wall_ms ? c->last.wall_ms : hd_now_wall_ms();
	double us = c->last.latency_ms * 1000.0;

	ch->ring[ch->head] = (struct hd_history_sample){
		.latency_us = us <= 0 ? 0 : us >= HD_SAMPLE_MAX_US ? HD_SAMPLE_MAX_US : (uint32_t)(us + 0.5),
		.ok = ok,
	};
	ch->head = (ch->head + 1) % HD_HISTORY_RING;
	if (ch->n < HD_HISTORY_RING)
		ch->n++;
	hd_avail_add(ch->minutes, HD_HISTORY_MINUTES, MINUTE_MS, now, ok);
	hd_avail_add(ch->hours, HD_HISTORY_HOURS, HOUR_MS, now, ok);
	if (ch->state_since_ms == 0)
		ch->state_since_ms = now;
}

static void on_transition(const struct hd_transition *t, void *arg)
{
	struct hd_history *h = arg;
	const struct hd_check *c = t->check;
	const struct hd_result *r = t->to == HD_STATE_DOWN ? hd_check_last_failure(c) : &c->last;
	struct check_hist *ch = get_check(h, c->conf->name);
	struct event_rec e = {.wall_ms = hd_now_wall_ms(), .previous_ms = -1};

	hd_strlcpy(e.what, "state", sizeof(e.what));
	hd_sanitize_text(c->conf->name, strlen(c->conf->name), e.check, sizeof(e.check));
	hd_strlcpy(e.from, hd_state_name(t->from), sizeof(e.from));
	hd_strlcpy(e.to, hd_state_name(t->to), sizeof(e.to));
	hd_strlcpy(e.kind, hd_kind_name(t->to == HD_STATE_DOWN ? c->down_kind : HD_KIND_OK), sizeof(e.kind));
	hd_sanitize_text(r->detail, strlen(r->detail), e.detail, sizeof(e.detail));
	if (t->from != HD_STATE_PENDING && ch->state_since_ms > 0)
		e.previous_ms = e.wall_ms - ch->state_since_ms;
	ch->state_since_ms = e.wall_ms;
	add_event(h, &e);
}

void history_admin_changed(struct hd_history *h)
{
	struct event_rec e = {.wall_ms = hd_now_wall_ms(), .previous_ms = -1};
	const struct hd_admin *a;

	if (h == NULL || (a = status_admin(h->status))->mode == h->admin_mode)
		return;
	hd_strlcpy(e.what, "admin", sizeof(e.what));
	hd_strlcpy(e.from, hd_admin_name(h->admin_mode), sizeof(e.from));
	hd_strlcpy(e.to, hd_admin_name(a->mode), sizeof(e.to));
	hd_sanitize_text(a->reason, strlen(a->reason), e.detail, sizeof(e.detail));
	if (h->admin_since_ms > 0)
		e.previous_ms = e.wall_ms - h->admin_since_ms;
	h->admin_mode = a->mode;
	h->admin_since_ms = e.wall_ms;
	add_event(h, &e);
}

/* ---- the file ---- */

static void copy_field(const cJSON *o, const char *key, char *out, size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsString(v))
		hd_sanitize_text(v->valuestring, strlen(v->valuestring), out, len);
}

/* Fills the ring from the file's text (newest first in the file). 0, or -1 with *error. */
static int decode_events(struct hd_history *h, const char *text, char **error)
{
	cJSON *root = cJSON_Parse(text);
	const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "events");
	size_t n;
	int rc = -1;

	if (root == NULL || !cJSON_IsArray(events)) {
		*error = xasprintf("not a JSON object with an \"events\" array");
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(events);
	if (n > h->max_events)
		n = h->max_events;
	for (size_t i = n; i-- > 0;) {
		const cJSON *o = cJSON_GetArrayItem(events, (int)i);
		const cJSON *when = cJSON_GetObjectItemCaseSensitive(o, "time_ms");
		const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "previous_lasted_ms");
		struct event_rec e = {.previous_ms = -1};

		if (!cJSON_IsObject(o) || !cJSON_IsNumber(when)) {
			*error = xasprintf("event %zu has no \"time_ms\"", i);
			goto out;
		}
		e.wall_ms = (int64_t)when->valuedouble;
		if (cJSON_IsNumber(prev))
			e.previous_ms = (int64_t)prev->valuedouble;
		copy_field(o, "what", e.what, sizeof(e.what));
		copy_field(o, "check", e.check, sizeof(e.check));
		copy_field(o, "from", e.from, sizeof(e.from));
		copy_field(o, "to", e.to, sizeof(e.to));
		copy_field(o, "kind", e.kind, sizeof(e.kind));
		copy_field(o, "detail", e.detail, sizeof(e.detail));
		h->events[h->head] = e;
		h->head = (h->head + 1) % h->max_events;
		h->n++;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static void load_file(struct hd_history *h)
{
	char *path = xasprintf("%s/%s", h->dir, HD_HISTORY_FILE);
	char *text = hd_read_small_file(path, h->max_bytes * 2 + 65536);
	char *why = NULL;

	if (text == NULL) {
		if (errno != ENOENT)
			why = xasprintf("cannot read it: %s", strerror(errno));
	} else if (decode_events(h, text, &why) < 0) {
		h->head = h->n = 0;
	}
	if (why != NULL) {
		char *aside = xasprintf("%s.damaged-%lld", path, (long long)(hd_now_wall_ms() / 1000));

		if (rename(path, aside) == 0)
			log_err("%s: %s; moved aside to %s, history starts empty", path, why, aside);
		else
			log_err("%s: %s; history starts empty (and it cannot be moved aside: %s)", path, why,
				strerror(errno));
		free(aside);
		free(why);
	}
	free(text);
	free(path);
}

static void on_written(void *arg)
{
	struct hd_history *h = arg;
	char error[sizeof(h->last_error)];
	int rc;

	pthread_mutex_lock(&h->lock);
	rc = h->last_rc;
	hd_strlcpy(error, h->last_error, sizeof(error));
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		log_err("history not saved, it will not survive a restart: %s", error);
}

/* On the writer thread: writes the newest text queued, if the previous run did not already. */
static void write_pending(void *arg)
{
	struct hd_history *h = arg;
	char *text, *error = NULL;
	int rc;

	pthread_mutex_lock(&h->lock);
	text = h->pending;
	h->pending = NULL;
	pthread_mutex_unlock(&h->lock);
	if (text == NULL)
		return;
	rc = hd_write_file_atomic(h->dir, HD_HISTORY_FILE, text, strlen(text), &error);
	free(text);
	pthread_mutex_lock(&h->lock);
	h->last_rc = rc;
	hd_strlcpy(h->last_error, error ? error : "", sizeof(h->last_error));
	pthread_mutex_unlock(&h->lock);
	free(error);
}

/* ---- GET /history ---- */

static int serve_history(const struct hd_http_request *req, struct evbuffer *body, const char **content_type,
			 void *arg)
{
	struct hd_history *h = arg;

	*content_type = "application/json";
	if (!req->full_details) {
		evbuffer_add_printf(body, "{\"error\":\"the history is shown to http.details_from only\"}\n");
		return 403;
	}
	hd_refbuf_add(body, h->json);
	return 200;
}

struct hd_history *history_new(struct event_base *base, struct hd_engine *engine, struct hd_status *status,
			       struct hd_http *http)
{
	const struct hd_config *cfg = engine_config(engine);
	struct hd_history *h = xcalloc(1, sizeof(*h));

	h->engine = engine;
	h->status = status;
	h->dir = xstrdup(cfg->state_dir);
	h->max_events = (size_t)cfg->history.max_events;
	h->max_bytes = (size_t)cfg->history.max_bytes;
	h->events = xcalloc(h->max_events, sizeof(*h->events));
	h->admin_mode = status_admin(status)->mode;
	h->admin_since_ms = status_admin(status)->since_wall_ms;
	load_file(h);
	for (size_t i = 0; i < h->n; i++) { /* the admin state restored at start is no change when history knew it */
		const struct event_rec *e = event_at(h, i);
		if (strcmp(e->what, "admin") == 0) {
			h->admin_mode = strcmp(e->to, "drain") == 0 ? HD_ADMIN_DRAIN :
					strcmp(e->to, "maint") == 0 ? HD_ADMIN_MAINT : HD_ADMIN_READY;
			h->admin_since_ms = e->wall_ms;
			break;
		}
	}
	rebuild_json(h);
	h->flush = event_new(base, -1, 0, on_flush, h);
	pthread_mutex_init(&h->lock, NULL);
	h->writer = hd_worker_new(base, "history writer", write_pending, on_written, h);
	engine_subscribe(engine, on_result, on_transition, h);
	if (http != NULL)
		http_api_add_route(http, "/history", serve_history, h);
	return h;
}

unsigned history_version(const struct hd_history *h)
{
	return h ? h->version : 0;
}

void history_each_event(const struct hd_history *h, size_t max,
			void (*fn)(const struct hd_history_event_view *ev, void *arg), void *arg)
{
	for (size_t i = 0; h != NULL && i < h->n && i < max; i++) {
		const struct event_rec *e = event_at(h, i);
		struct hd_history_event_view v = {e->wall_ms, e->what, e->check, e->from, e->to, e->kind, e->detail,
						  e->previous_ms};
		fn(&v, arg);
	}
}

const struct hd_history_sample *history_samples(const struct hd_history *h, const char *check, size_t *n,
						size_t *start)
{
	const struct check_hist *c = h ? find_check(h, check) : NULL;

	if (c == NULL || c->n == 0)
		return NULL;
	*n = c->n;
	*start = (c->head + HD_HISTORY_RING - c->n) % HD_HISTORY_RING;
	return c->ring;
}

bool history_availability(const struct hd_history *h, const char *check, int64_t now_ms, double *hour_pct,
			  double *day_pct)
{
	const struct check_hist *c = h ? find_check(h, check) : NULL;
	uint64_t ok, total;

	if (c == NULL)
		return false;
	hd_avail_sum(c->minutes, HD_HISTORY_MINUTES, MINUTE_MS, now_ms, &ok, &total);
	*hour_pct = total ? 100.0 * (double)ok / (double)total : -1;
	hd_avail_sum(c->hours, HD_HISTORY_HOURS, HOUR_MS, now_ms, &ok, &total);
	*day_pct = total ? 100.0 * (double)ok / (double)total : -1;
	return true;
}

void history_free(struct hd_history *h)
{
	if (h == NULL)
		return;
	engine_unsubscribe(h->engine, h);
	if (h->version != h->flushed_version)
		on_flush(-1, 0, h);
	if (!hd_worker_stop(h->writer, HISTORY_EXIT_WAIT_S * 1000)) {
		log_err("history: the write to %s did not finish within %d s at exit; it may be lost", h->dir,
			HISTORY_EXIT_WAIT_S);
		return;
	}
	if (h->last_rc < 0)
		log_err("history not saved at exit: %s", h->last_error);
	for (size_t i = 0; i < h->table_size; i++)
		while (h->table[i] != NULL) {
			struct check_hist *c = h->table[i];
			h->table[i] = c->next;
			free(c->name);
			free(c);
		}
	free(h->table);
	event_free(h->flush);
	pthread_mutex_destroy(&h->lock);
	free(h->pending);
	hd_refbuf_unref(h->json);
	free(h->events);
	free(h->dir);
	free(h);
}
