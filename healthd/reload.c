/* reload.c: a reload reads and parses on a worker thread, bounded by a timeout; the loop only applies the result. */
#include "reload.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "notify.h"
#include "util.h"
#include "worker.h"

struct hd_reload_wait {
	hd_reload_done_fn done;
	void *arg;
	struct wait_list *on;
	TAILQ_ENTRY(hd_reload_wait) entry;
};
TAILQ_HEAD(wait_list, hd_reload_wait);

/* One read on a worker thread. Shared with the worker until both have let go: a worker blocked on a hung mount may
 * outlive the reloader, and then frees what it read itself. */
struct read_job {
	pthread_mutex_t lock;
	int refs;
	bool abandoned;           /* the reloader let go: nothing to tell */
	char *path;
	char current[PATH_MAX];   /* the file being read now, for the timeout's message */
	struct hd_config *cfg;    /* the result: a configuration, or the error */
	char *error;
	struct event *ready;      /* activated by the worker when it is done */
	int64_t started_ms;
};

struct hd_reloader {
	struct event_base *base;
	char *path;
	hd_reload_apply_fn apply;
	void *apply_arg;
	struct read_job *job;     /* the read in progress, or the one that timed out and is still blocked */
	bool timed_out;
	bool again;               /* requests came while reading: read once more when this read ends */
	struct event *timeout;
	struct wait_list current; /* answered by the read in progress */
	struct wait_list queued;  /* answered by the next one */
	hd_reload_outcome_fn outcome; /* told of every reload's end (for /metrics) */
	void *outcome_arg;
};

static void report_outcome(struct hd_reloader *r, bool ok)
{
	if (r->outcome)
		r->outcome(ok, r->outcome_arg);
}

static void job_release(struct read_job *job)
{
	int left;

	pthread_mutex_lock(&job->lock);
	left = --job->refs;
	pthread_mutex_unlock(&job->lock);
	if (left > 0)
		return;
	config_free(job->cfg);
	free(job->error);
	free(job->path);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static void note_open(const char *path, void *arg)
{
	struct read_job *job = arg;

	pthread_mutex_lock(&job->lock);
	hd_strlcpy(job->current, path, sizeof(job->current));
	pthread_mutex_unlock(&job->lock);
}

static void *read_main(void *arg)
{
	struct read_job *job = arg;
	struct hd_config_opts opts = {.keep_warnings = true, .on_open = note_open, .on_open_arg = job};
	char *error = NULL;
	struct hd_config *cfg = config_load_opts(job->path, &opts, &error);

	pthread_mutex_lock(&job->lock);
	job->cfg = cfg;
	job->error = error;
	if (!job->abandoned)
		event_active(job->ready, EV_READ, 1);
	pthread_mutex_unlock(&job->lock);
	job_release(job);
	return NULL;
}

static void finish_waiters(struct wait_list *list, bool ok, const char *text)
{
	struct hd_reload_wait *w;

	while ((w = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, w, entry);
		if (w->done)
			w->done(ok, text, w->arg);
		free(w);
	}
}

static void on_job_ready(evutil_socket_t fd, short what, void *arg);

/* Starts a worker for the requests in r->current. On failure they are answered at once: -1. */
static int start_read(struct hd_reloader *r)
{
	struct read_job *job = xcalloc(1, sizeof(*job));
	struct timeval tv = hd_ms_tv(HD_RELOAD_TIMEOUT_MS);
	int rc;

	pthread_mutex_init(&job->lock, NULL);
	job->refs = 2;
	job->path = xstrdup(r->path);
	hd_strlcpy(job->current, r->path, sizeof(job->current));
	job->started_ms = hd_now_mono_ms();
	job->ready = event_new(r->base, -1, 0, on_job_ready, r);
	if (job->ready == NULL)
		hd_fatal("libevent: cannot create an event");
	notify_reloading();
	rc = hd_thread_start(NULL, true, read_main, job);
	if (rc != 0) {
		char *text = xasprintf("cannot start a thread to read %s: %s", r->path, strerror(rc));
		log_err("reload refused, the running configuration stays: %s", text);
		notify_ready("reload refused (see the log); running the previous configuration");
		report_outcome(r, false);
		event_free(job->ready);
		job->refs = 1;
		job_release(job);
		finish_waiters(&r->current, false, text);
		free(text);
		return -1;
	}
	r->job = job;
	r->timed_out = false;
	evtimer_add(r->timeout, &tv);
	return 0;
}

static void start_queued(struct hd_reloader *r)
{
	if (!r->again)
		return;
	r->again = false;
	TAILQ_CONCAT(&r->current, &r->queued, entry);
	for (struct hd_reload_wait *w = TAILQ_FIRST(&r->current); w != NULL; w = TAILQ_NEXT(w, entry))
		w->on = &r->current;
	log_info("reload: reading %s again for the requests that came during the last read", r->path);
	start_read(r);
}

static void on_job_ready(evutil_socket_t fd, short what, void *arg)
{
	struct hd_reloader *r = arg;
	struct read_job *job = r->job;
	double took_s = (double)(hd_now_mono_ms() - job->started_ms) / 1000.0;
	struct hd_config *cfg;
	char *error, *summary;

	(void)fd;
	(void)what;
	evtimer_del(r->timeout);
	r->job = NULL;
	pthread_mutex_lock(&job->lock);
	cfg = job->cfg;
	error = job->error;
	job->cfg = NULL;
	job->error = NULL;
	pthread_mutex_unlock(&job->lock);
	event_free(job->ready);
	job_release(job);
	if (r->timed_out) {
		/* Its requests were answered "timed out": applying it now would surprise whoever reads that answer. */
		log_warn("reload: the read that timed out returned after %.1f s; its result is dropped (reload again to "
			 "apply %s)", took_s, r->path);
		r->timed_out = false;
		config_free(cfg);
		free(error);
		return;
	}
	if (cfg == NULL) {
		log_err("reload refused, the running configuration stays: %s", error);
		notify_ready("reload refused (see the log); running the previous configuration");
		report_outcome(r, false);
		finish_waiters(&r->current, false, error);
	} else {
		config_log_warnings(cfg);
		summary = r->apply(cfg, r->apply_arg);
		report_outcome(r, true);
		finish_waiters(&r->current, true, summary);
		free(summary);
	}
	free(error);
	start_queued(r);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hd_reloader *r = arg;
	char current[PATH_MAX], *text;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&r->job->lock);
	hd_strlcpy(current, r->job->current, sizeof(current));
	pthread_mutex_unlock(&r->job->lock);
	text = xasprintf("reload timed out: still reading %s after %d ms (a hung file system?); the running "
			 "configuration stays, and no other reload starts until that read returns", current,
			 HD_RELOAD_TIMEOUT_MS);
	log_err("%s", text);
	notify_ready("reload timed out (see the log); running the previous configuration");
	r->timed_out = true;
	r->again = false;
	report_outcome(r, false);
	finish_waiters(&r->current, false, text);
	finish_waiters(&r->queued, false, text);
	free(text);
}

void reloader_on_outcome(struct hd_reloader *r, hd_reload_outcome_fn fn, void *arg)
{
	r->outcome = fn;
	r->outcome_arg = arg;
}

struct hd_reloader *reloader_new(struct event_base *base, const char *path, hd_reload_apply_fn apply, void *apply_arg)
{
	struct hd_reloader *r = xcalloc(1, sizeof(*r));

	r->base = base;
	r->path = xstrdup(path);
	r->apply = apply;
	r->apply_arg = apply_arg;
	r->timeout = evtimer_new(base, on_timeout, r);
	if (r->timeout == NULL)
		hd_fatal("libevent: cannot create a timer");
	TAILQ_INIT(&r->current);
	TAILQ_INIT(&r->queued);
	return r;
}

struct hd_reload_wait *reloader_request(struct hd_reloader *r, const char *who, hd_reload_done_fn done, void *arg)
{
	struct hd_reload_wait *w;

	if (r->job != NULL && r->timed_out) {
		char current[PATH_MAX], *text;
		pthread_mutex_lock(&r->job->lock);
		hd_strlcpy(current, r->job->current, sizeof(current));
		pthread_mutex_unlock(&r->job->lock);
		text = xasprintf("the previous reload is still blocked reading %s (for %.1f s: a hung file system?); no "
				 "other starts until it returns", current,
				 (double)(hd_now_mono_ms() - r->job->started_ms) / 1000.0);
		log_err("reload refused, the running configuration stays: %s (requested by %s)", text, who);
		report_outcome(r, false);
		if (done)
			done(false, text, arg);
		free(text);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->done = done;
	w->arg = arg;
	if (r->job != NULL) {
		w->on = &r->queued;
		TAILQ_INSERT_TAIL(&r->queued, w, entry);
		r->again = true;
		log_info("reload requested by %s while one is reading: it follows once that one ends", who);
		return w;
	}
	w->on = &r->current;
	TAILQ_INSERT_TAIL(&r->current, w, entry);
	return start_read(r) < 0 ? NULL : w;
}

void reloader_cancel(struct hd_reload_wait *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(w->on, w, entry);
	free(w);
}

void reloader_free(struct hd_reloader *r)
{
	struct hd_reload_wait *w;

	if (r == NULL)
		return;
	while ((w = TAILQ_FIRST(&r->current)) != NULL)
		reloader_cancel(w);
	while ((w = TAILQ_FIRST(&r->queued)) != NULL)
		reloader_cancel(w);
	if (r->job != NULL) {
		pthread_mutex_lock(&r->job->lock);
		r->job->abandoned = true;
		pthread_mutex_unlock(&r->job->lock);
		event_free(r->job->ready);
		job_release(r->job);
	}
	event_free(r->timeout);
	free(r->path);
	free(r);
}
