/* check_push.c: the push check: up while `healthd ctl push NAME ok` reports arrive within ttl_ms; kept in state_dir. */
#include "check_push.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "fileio.h"
#include "nagios.h"

#define PUSH_FILE_MAX 8192
#define PUSH_FILE_VERSION 1
#define PUSH_MAX_QUEUED 256

extern const struct hd_check_type hd_check_push;

struct push_conf {
	int ttl_ms;
};

/* What is known of one push check, by name (it outlives reloads that change the check). */
struct push_record {
	SLIST_ENTRY(push_record) link; /* records */
	char name[64];
	bool loaded;
	int64_t first_seen_ms; /* when healthd first ran this check: the TTL counts from here until a first report */
	bool has_report;
	bool ok;
	int64_t at_ms;
	char detail[HD_PUSH_DETAIL_MAX + 1];
};

static SLIST_HEAD(push_records, push_record) records = SLIST_HEAD_INITIALIZER(records);

/* ---- the writer: one worker thread at a time, started on demand, so that no fsync runs on the loop ---- */

struct push_job {
	STAILQ_ENTRY(push_job) link; /* writer.todo, then writer.finished */
	char *dir, *file, *text;
	uint64_t generation;
	int rc;
	char *error;
	hd_push_saved_fn done;
	void *arg;
};

static struct {
	pthread_mutex_t lock;
	STAILQ_HEAD(push_jobs, push_job) todo, finished; /* guarded by lock */
	size_t queued;                                                  /* guarded by lock */
	bool running;                                                   /* guarded by lock */
	int efd;               /* the worker wakes the loop through it */
	struct event *ev;
	uint64_t generation;
} writer = {.lock = PTHREAD_MUTEX_INITIALIZER, .todo = STAILQ_HEAD_INITIALIZER(writer.todo),
	    .finished = STAILQ_HEAD_INITIALIZER(writer.finished), .efd = -1};

static void *writer_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct push_job *job;
		uint64_t one = 1;

		pthread_mutex_lock(&writer.lock);
		job = STAILQ_FIRST(&writer.todo);
		if (job == NULL) {
			writer.running = false;
			pthread_mutex_unlock(&writer.lock);
			return NULL;
		}
		STAILQ_REMOVE_HEAD(&writer.todo, link);
		pthread_mutex_unlock(&writer.lock);
		job->rc = hd_write_file_atomic(job->dir, job->file, job->text, strlen(job->text), &job->error);
		pthread_mutex_lock(&writer.lock);
		STAILQ_INSERT_TAIL(&writer.finished, job, link);
		writer.queued--;
		pthread_mutex_unlock(&writer.lock);
		if (write(writer.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			hd_fatal("push: eventfd write: %s", strerror(errno));
	}
}

static void on_written(evutil_socket_t fd, short what, void *arg)
{
	struct push_jobs finished = STAILQ_HEAD_INITIALIZER(finished);
	struct push_job *job;
	uint64_t count;

	(void)what;
	(void)arg;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("push: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&writer.lock);
	STAILQ_CONCAT(&finished, &writer.finished);
	pthread_mutex_unlock(&writer.lock);
	while ((job = STAILQ_FIRST(&finished)) != NULL) {
		STAILQ_REMOVE_HEAD(&finished, link);
		if (job->rc < 0)
			log_warn("push: %s", job->error ? job->error : "cannot save a report");
		if (job->done)
			job->done(job->generation, job->rc, job->error, job->arg);
		free(job->dir);
		free(job->file);
		free(job->text);
		free(job->error);
		free(job);
	}
}

/* Queues dir/file := text. Returns its generation, or 0 when the queue is full (a hung disk). */
static uint64_t queue_write(struct event_base *base, const char *dir, const char *file, char *text,
			    hd_push_saved_fn done, void *arg)
{
	struct push_job *job;
	pthread_t thread;
	pthread_attr_t attr;
	sigset_t all, old;
	bool start;

	if (writer.ev == NULL) {
		writer.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (writer.efd < 0)
			hd_fatal("push: eventfd: %s", strerror(errno));
		writer.ev = event_new(base, writer.efd, EV_READ | EV_PERSIST, on_written, NULL);
		if (writer.ev == NULL || event_add(writer.ev, NULL) < 0)
			hd_fatal("push: cannot watch the writer");
	}
	job = xcalloc(1, sizeof(*job));
	job->dir = xstrdup(dir);
	job->file = xstrdup(file);
	job->text = text;
	job->done = done;
	job->arg = arg;
	job->generation = ++writer.generation;
	pthread_mutex_lock(&writer.lock);
	if (writer.queued >= PUSH_MAX_QUEUED) {
		pthread_mutex_unlock(&writer.lock);
		free(job->dir);
		free(job->file);
		free(job->text);
		free(job);
		return 0;
	}
	STAILQ_INSERT_TAIL(&writer.todo, job, link);
	writer.queued++;
	start = !writer.running;
	writer.running = true;
	pthread_mutex_unlock(&writer.lock);
	if (!start)
		return job->generation;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all); /* signals stay with the loop's thread */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&thread, &attr, writer_main, NULL) != 0)
		hd_fatal("push: cannot start the writer thread");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return job->generation;
}

/* ---- the record and its file ---- */

static char *file_name(const char *name)
{
	return xasprintf("push-%s.json", name);
}

static char *encode_record(const struct push_record *r)
{
	cJSON *root = cJSON_CreateObject();
	char at[40], *printed, *out;

	cJSON_AddNumberToObject(root, "version", PUSH_FILE_VERSION);
	cJSON_AddStringToObject(root, "check", r->name);
	cJSON_AddNumberToObject(root, "first_seen_ms", (double)r->first_seen_ms);
	if (r->has_report) {
		cJSON *rep = cJSON_AddObjectToObject(root, "report");
		hd_iso8601(r->at_ms, at, sizeof(at));
		cJSON_AddStringToObject(rep, "result", r->ok ? "ok" : "fail");
		cJSON_AddNumberToObject(rep, "at_ms", (double)r->at_ms);
		cJSON_AddStringToObject(rep, "at", at); /* for people; at_ms is what counts */
		cJSON_AddStringToObject(rep, "detail", r->detail);
	}
	printed = cJSON_Print(root);
	out = xasprintf("%s\n", printed);
	cJSON_free(printed);
	cJSON_Delete(root);
	return out;
}

static bool is_time_ms(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15;
}

/* 0, or -1 with *why (static text): the file is left alone and the check starts afresh. */
static int decode_record(const char *text, struct push_record *r, const char **why)
{
	cJSON *root = cJSON_Parse(text);
	const cJSON *first, *rep, *result, *at, *detail;
	int rc = -1;

	*why = "not a JSON object";
	if (!cJSON_IsObject(root))
		goto out;
	first = cJSON_GetObjectItemCaseSensitive(root, "first_seen_ms");
	rep = cJSON_GetObjectItemCaseSensitive(root, "report");
	*why = "\"first_seen_ms\" is not a time in milliseconds";
	if (!is_time_ms(first))
		goto out;
	r->first_seen_ms = (int64_t)first->valuedouble;
	r->has_report = false;
	if (rep != NULL) {
		result = cJSON_GetObjectItemCaseSensitive(rep, "result");
		at = cJSON_GetObjectItemCaseSensitive(rep, "at_ms");
		detail = cJSON_GetObjectItemCaseSensitive(rep, "detail");
		*why = "\"report\" needs \"result\" ok or fail, \"at_ms\" and a \"detail\" string";
		if (!cJSON_IsString(result) || !is_time_ms(at) || !cJSON_IsString(detail) ||
		    (strcmp(result->valuestring, "ok") != 0 && strcmp(result->valuestring, "fail") != 0))
			goto out;
		r->has_report = true;
		r->ok = strcmp(result->valuestring, "ok") == 0;
		r->at_ms = (int64_t)at->valuedouble;
		hd_sanitize_text(detail->valuestring, strlen(detail->valuestring), r->detail, sizeof(r->detail));
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static void save_record(struct event_base *base, const char *state_dir, const struct push_record *r)
{
	char *file = file_name(r->name);

	if (queue_write(base, state_dir, file, encode_record(r), NULL, NULL) == 0)
		log_warn("push: check %s: not saved, the state directory %s is not keeping up", r->name, state_dir);
	free(file);
}

/*
 * The record of a check, read from state_dir the first time it is needed (one small file, once per check and
 * run). A missing or unreadable file starts the TTL now.
 */
static struct push_record *record_get(struct event_base *base, const char *state_dir, const char *name, bool oneshot)
{
	struct push_record *r;
	char *file, *path, *text;
	const char *why;

	SLIST_FOREACH(r, &records, link)
		if (strcmp(r->name, name) == 0)
			break;
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		hd_strlcpy(r->name, name, sizeof(r->name));
		SLIST_INSERT_HEAD(&records, r, link);
	}
	if (r->loaded)
		return r;
	r->loaded = true;
	file = file_name(name);
	path = xasprintf("%s/%s", state_dir, file);
	text = hd_read_small_file(path, PUSH_FILE_MAX);
	if (text != NULL && decode_record(text, r, &why) == 0) {
		log_info("push: check %s: restored from %s (%s)", name, path,
			 r->has_report ? (r->ok ? "last report ok" : "last report fail") : "no report yet");
	} else {
		if (text != NULL)
			log_warn("push: check %s: %s is not a valid report file (%s): starting afresh", name, path, why);
		else if (errno != ENOENT)
			log_warn("push: check %s: cannot read %s: %s: starting afresh", name, path, strerror(errno));
		memset(&r->has_report, 0, sizeof(*r) - offsetof(struct push_record, has_report));
		r->first_seen_ms = hd_now_wall_ms();
		if (!oneshot) /* `healthd check` only reads the daemon's state */
			save_record(base, state_dir, r);
	}
	free(text);
	free(path);
	free(file);
	return r;
}

/* ---- pure parts ---- */

void hd_push_human_ms(int64_t ms, char *buf, size_t len)
{
	static const struct {
		int64_t unit;
		const char *name;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}};
	double v;

	if (ms < 1000) {
		snprintf(buf, len, "%lld ms", (long long)(ms < 0 ? 0 : ms));
		return;
	}
	for (size_t i = 0; i < HD_ARRAY_LEN(units); i++) {
		if (ms < 2 * units[i].unit && units[i].unit != 1000)
			continue;
		v = round((double)ms / (double)units[i].unit * 10.0) / 10.0;
		snprintf(buf, len, v == floor(v) ? "%.0f %s" : "%.1f %s", v, units[i].name);
		return;
	}
}

int hd_push_parse_request(const char *args, char *name, size_t name_len, bool *ok, char *detail, size_t detail_len,
			  const char **error)
{
	const char *p = args, *word;
	size_t n;

	while (*p == ' ')
		p++;
	n = strcspn(p, " ");
	if (n == 0 || n >= name_len || n > 63 ||
	    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") < n) {
		*error = "push wants a check name (1 to 63 of A-Z a-z 0-9 _ . -), then ok or fail";
		return -1;
	}
	memcpy(name, p, n);
	name[n] = '\0';
	p += n;
	while (*p == ' ')
		p++;
	word = p;
	n = strcspn(p, " ");
	if (n == 2 && strncmp(word, "ok", 2) == 0)
		*ok = true;
	else if (n == 4 && strncmp(word, "fail", 4) == 0)
		*ok = false;
	else {
		*error = "push wants ok or fail after the check name";
		return -1;
	}
	p += n;
	while (*p == ' ')
		p++;
	hd_sanitize_text(p, strlen(p), detail, detail_len);
	return 0;
}

/* ---- the check ---- */

uint64_t hd_push_report(struct event_base *base, const char *state_dir, const struct hd_check_conf *conf,
			const char *name, bool ok, const char *detail, hd_push_saved_fn done, void *arg, char **error)
{
	struct push_record *r;
	char *file;
	uint64_t generation;

	if (conf == NULL) {
		*error = xasprintf("no check named \"%s\" in the running configuration", name);
		return 0;
	}
	if (conf->type != &hd_check_push) {
		*error = xasprintf("check \"%s\" is of type %s, not push: only push checks take reports", name,
				   conf->type->name);
		return 0;
	}
	r = record_get(base, state_dir, conf->name, false);
	r->has_report = true;
	r->ok = ok;
	r->at_ms = hd_now_wall_ms();
	hd_sanitize_text(detail, strlen(detail), r->detail, sizeof(r->detail));
	file = file_name(conf->name);
	generation = queue_write(base, state_dir, file, encode_record(r), done, arg);
	free(file);
	if (generation == 0)
		*error = xasprintf("the report counts, but it is not saved: the state directory %s is not keeping up "
				   "(a hung disk?)", state_dir);
	return generation;
}

static const struct cfg_key push_keys[] = {
	{"ttl_ms", CFG_INT, offsetof(struct push_conf, ttl_ms), true, 1000, 1814400000, NULL, NULL,
	 "a report (`healthd ctl push NAME ok` or `fail`) must arrive at least this often; silence longer than this is "
	 "down (kind timeout); before the first report the check is pending for this long"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static int push_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	const struct push_conf *pc = conf->type_conf;
	char ttl[32];

	/* Each attempt re-reads the same last report: count reports, not attempts, unless told otherwise. */
	if (cJSON_GetObjectItemCaseSensitive(ctx->check_node, "rise") == NULL)
		conf->rise = 1;
	if (cJSON_GetObjectItemCaseSensitive(ctx->check_node, "fall") == NULL)
		conf->fall = 1;
	hd_push_human_ms(pc->ttl_ms, ttl, sizeof(ttl));
	conf->target = xasprintf("a report every %s", ttl);
	return 0;
}

static void push_start(struct hd_check_run *run)
{
	const struct push_conf *pc = run->conf->type_conf;
	struct push_record *r = record_get(run->base, run->state_dir, run->conf->name, run->oneshot);
	int64_t now = hd_now_wall_ms(), age;
	char ago[32], ttl[32], at[40];

	hd_run_phase(run, HD_PHASE_RESPONSE, "report");
	hd_push_human_ms(pc->ttl_ms, ttl, sizeof(ttl));
	if (!r->has_report) {
		age = now - r->first_seen_ms;
		if (age <= pc->ttl_ms && run->oneshot) { /* a snapshot has no "later": not up, and why */
			hd_check_done(run, HD_KIND_TIMEOUT, "no report yet (expected every %s)", ttl);
			return;
		}
		if (age <= pc->ttl_ms) {
			hd_check_skip(run); /* pending: nothing reported yet, and the TTL has not passed */
			return;
		}
		hd_push_human_ms(age, ago, sizeof(ago));
		hd_check_done(run, HD_KIND_TIMEOUT, "no report for %s since the check was set up, expected every %s", ago,
			      ttl);
		return;
	}
	age = now - r->at_ms;
	hd_push_human_ms(age, ago, sizeof(ago));
	if (age > pc->ttl_ms) {
		hd_iso8601(r->at_ms, at, sizeof(at));
		hd_check_done(run, HD_KIND_TIMEOUT, "no report for %s, expected every %s (the last, at %s, was %s)", ago,
			      ttl, at, r->ok ? "ok" : "fail");
	} else if (r->ok) {
		hd_check_done(run, HD_KIND_OK, "reported ok %s ago%s%s", ago, r->detail[0] ? ": " : "", r->detail);
	} else {
		hd_check_done(run, HD_KIND_ERROR, "reported fail %s ago: %s", ago, r->detail[0] ? r->detail : "(no detail)");
	}
}

static void push_cancel(struct hd_check_run *run)
{
	(void)run; /* an attempt ends in start() */
}

const struct hd_check_type hd_check_push = {
	.name = "push",
	.summary = "a heartbeat: up while `healthd ctl push NAME ok` reports arrive within ttl_ms; `fail` is down with "
		   "its detail; the last report is kept in state_dir across restarts",
	.keys = push_keys,
	.conf_size = sizeof(struct push_conf),
	.validate = push_validate,
	.start = push_start,
	.cancel = push_cancel,
};
