/* spool.c: alert events on disk so that an outage or a crash loses none; file operations run on one writer thread. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"
#include "worker.h"

#define SPOOL_MAX_FILE (1024 * 1024)
#define STATE_DIR "open"

enum job_kind { JOB_LOAD, JOB_APPEND, JOB_REMOVE, JOB_SET_STATE };

struct job {
	STAILQ_ENTRY(job) link; /* sp->todo, then sp->done */
	enum job_kind kind;
	char **queues;
	size_t n_queues;
	bool with_states;
	char *name;   /* REMOVE: the queue; SET_STATE: the check */
	uint64_t seq; /* REMOVE; APPEND: the result */
	char *text;   /* APPEND, SET_STATE (NULL = forget) */
	size_t len;
	/* results, filled by the thread */
	bool *written;
	char *error;
	struct hd_spool_load *load;
	hd_spool_loaded_fn loaded_fn;
	hd_spool_written_fn written_fn;
	void *arg;
};

struct hd_spool {
	char *dir;
	struct event *wake; /* made active by the thread when jobs are done */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work_cv, exit_cv;
	STAILQ_HEAD(job_list, job) todo, done; /* guarded by mu: queued by the loop; finished by the thread */
	bool stopping, exited;
	size_t pending; /* loop side: requests whose completion has not been handled */
	/* thread side */
	bool usable;
	int lock_fd;
	uint64_t next_seq;
	char **init_problems;
	size_t n_init_problems;
};

static void add_problem(char ***list, size_t *n, const char *fmt, ...) HD_PRINTF(3, 4);
static void add_problem(char ***list, size_t *n, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		hd_fatal("out of memory");
	*list = xrealloc(*list, (*n + 1) * sizeof(char *));
	(*list)[(*n)++] = s;
}

/* ---- file operations (writer thread only) ---- */

/* mkdir -p; the last component gets mode, and its parent is fsynced so that the new entry survives a crash. */
static int make_dirs(const char *path, mode_t mode)
{
	char *copy = xstrdup(path), *slash;
	struct stat st;
	int rc = 0;

	if (stat(path, &st) == 0) {
		free(copy);
		return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
	}
	for (slash = strchr(copy + 1, '/'); slash && rc == 0; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*slash = '/';
	}
	if (rc == 0 && mkdir(path, mode) < 0 && errno != EEXIST)
		rc = -1;
	if (rc == 0 && (slash = strrchr(copy, '/')) != NULL && slash != copy) {
		*slash = '\0';
		hd_fsync_dir(copy);
	}
	free(copy);
	return rc;
}

/*
 * Sequence numbers stay far below 2^64 (one per event: 2^62 outlasts any disk), so that next_seq never wraps and
 * a new event never sorts before an old one.
 */
#define SEQ_MAX (UINT64_C(1) << 62)

/* An event file's name, "00000000000000000042.json" (20 digits): true, with *seq in 1..SEQ_MAX when it is one
 * healthd could have written; *seq is 0 for a name of that shape that it never writes (0, above SEQ_MAX). */
static bool parse_seq_name(const char *name, uint64_t *seq)
{
	char *end;

	if (strlen(name) != 25 || strspn(name, "0123456789") != 20 || strcmp(name + 20, ".json") != 0)
		return false;
	errno = 0;
	*seq = strtoull(name, &end, 10);
	if (errno == ERANGE || *seq > SEQ_MAX)
		*seq = 0;
	return true;
}

/* What is at path, not following a symbolic link: "a named pipe", "a directory"..., or NULL for a regular file. */
static const char *not_regular(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return "gone";
	if (S_ISREG(st.st_mode))
		return NULL;
	return S_ISFIFO(st.st_mode) ? "a named pipe" : S_ISLNK(st.st_mode) ? "a symbolic link" :
	       S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket" : "a device";
}

static int by_seq(const void *a, const void *b)
{
	const struct hd_spool_item *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads every event of one queue directory, in order; removes what a crash left half written. */
static void read_queue(const char *dir, struct hd_spool_loaded *out, struct hd_spool_load *load)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	out->items = NULL;
	out->n = 0;
	if (d == NULL) {
		if (errno != ENOENT)
			add_problem(&load->problems, &load->n_problems, "cannot read %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char *path = xasprintf("%s/%s", dir, de->d_name);
		uint64_t seq;

		if (strncmp(de->d_name, HD_TMP_PREFIX, strlen(HD_TMP_PREFIX)) == 0) {
			add_problem(&load->problems, &load->n_problems, "removed %s: a write interrupted by a crash", path);
			unlink(path);
		} else if (parse_seq_name(de->d_name, &seq)) {
			const char *what = not_regular(path);
			char *text = NULL;

			if (seq == 0 || what != NULL) {
				/* not an event healthd wrote: never re-sent at every start, never blocking the thread */
				add_problem(&load->problems, &load->n_problems, "removed %s: %s%s", path,
					    what ? what : "a number healthd never gives an event",
					    what && strcmp(what, "a directory") == 0 ? " (left: remove it by hand)" : "");
				if (what == NULL || strcmp(what, "a directory") != 0)
					unlink(path);
			} else if ((text = hd_read_small_file(path, SPOOL_MAX_FILE)) == NULL) {
				add_problem(&load->problems, &load->n_problems, "cannot read %s: %s", path, strerror(errno));
			} else {
				if (out->n == cap) {
					cap = cap ? cap * 2 : 16;
					out->items = xrealloc(out->items, cap * sizeof(*out->items));
				}
				out->items[out->n++] = (struct hd_spool_item){.seq = seq, .text = text, .len = strlen(text)};
			}
		}
		free(path);
	}
	closedir(d);
	if (out->n > 1) /* qsort on a NULL array is undefined even for 0 items */
		qsort(out->items, out->n, sizeof(*out->items), by_seq);
}

static void read_states(const char *dir, struct hd_spool_load *load)
{
	char *sdir = xasprintf("%s/" STATE_DIR, dir);
	DIR *d = opendir(sdir);
	struct dirent *de;

	if (d == NULL) {
		free(sdir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char *path = xasprintf("%s/%s", sdir, de->d_name), *text;

		if (strncmp(de->d_name, HD_TMP_PREFIX, strlen(HD_TMP_PREFIX)) == 0) {
			unlink(path);
		} else if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0 && not_regular(path) != NULL) {
			add_problem(&load->problems, &load->n_problems, "ignored %s: %s, not an open-alert record", path,
				    not_regular(path));
		} else if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0 && (text = hd_read_small_file(path, 65536))) {
			struct hd_spool_loaded *s = &load->states;
			s->items = xrealloc(s->items, (s->n + 1) * sizeof(*s->items));
			s->items[s->n++] = (struct hd_spool_item){.name = xasprintf("%.*s", (int)(n - 5), de->d_name), .text = text,
								  .len = strlen(text)};
		}
		free(path);
	}
	closedir(d);
	free(sdir);
}

/* Queue directories nobody asked for: a webhook removed from the configuration, or its URL changed. */
static void report_orphans(const char *dir, const struct job *j, struct hd_spool_load *load)
{
	DIR *d = opendir(dir), *q;
	struct dirent *de, *qe;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		bool asked = false;
		size_t count = 0;
		char *path;

		if (strncmp(de->d_name, "q-", 2) != 0)
			continue;
		for (size_t i = 0; i < j->n_queues; i++)
			asked |= strcmp(j->queues[i], de->d_name) == 0;
		if (asked)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if ((q = opendir(path)) != NULL) {
			uint64_t seq;
			while ((qe = readdir(q)) != NULL)
				count += parse_seq_name(qe->d_name, &seq) && seq != 0;
			closedir(q);
		}
		if (count > 0)
			add_problem(&load->problems, &load->n_problems,
				    "%s holds %zu undelivered events for a webhook that is no longer configured (its URL or "
				    "format changed?); they are kept, and sent if it comes back; delete the directory otherwise",
				    path, count);
		free(path);
	}
	closedir(d);
}

/* At thread start: the directory, the lock, and the next sequence number. */
static void spool_init(struct hd_spool *sp)
{
	char *lock_path = xasprintf("%s/lock", sp->dir);
	DIR *d;
	struct dirent *de, *qe;

	sp->lock_fd = -1;
	if (make_dirs(sp->dir, 0700) < 0) {
		add_problem(&sp->init_problems, &sp->n_init_problems, "cannot create the spool directory %s: %s", sp->dir,
			    strerror(errno));
		goto out;
	}
	sp->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		add_problem(&sp->init_problems, &sp->n_init_problems, "cannot lock %s: %s%s", lock_path, strerror(errno),
			    errno == EWOULDBLOCK ? " (another healthd uses this spool_dir)" : "");
		goto out;
	}
	sp->next_seq = 1;
	if ((d = opendir(sp->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char *path;
			DIR *q;
			if (strncmp(de->d_name, "q-", 2) != 0)
				continue;
			path = xasprintf("%s/%s", sp->dir, de->d_name);
			if ((q = opendir(path)) != NULL) {
				uint64_t seq;
				while ((qe = readdir(q)) != NULL)
					if (parse_seq_name(qe->d_name, &seq) && seq != 0 && seq >= sp->next_seq)
						sp->next_seq = seq + 1;
				closedir(q);
			}
			free(path);
		}
		closedir(d);
	}
	sp->usable = true;
out:
	free(lock_path);
}

static void run_job(struct hd_spool *sp, struct job *j)
{
	char *path;

	switch (j->kind) {
	case JOB_LOAD:
		j->load = xcalloc(1, sizeof(*j->load));
		j->load->usable = sp->usable;
		for (size_t i = 0; i < sp->n_init_problems; i++)
			add_problem(&j->load->problems, &j->load->n_problems, "%s", sp->init_problems[i]);
		j->load->queues = xcalloc(j->n_queues, sizeof(*j->load->queues));
		j->load->n_queues = j->n_queues;
		if (!sp->usable)
			break;
		for (size_t i = 0; i < j->n_queues; i++) {
			path = xasprintf("%s/%s", sp->dir, j->queues[i]);
			read_queue(path, &j->load->queues[i], j->load);
			free(path);
		}
		if (j->with_states) {
			read_states(sp->dir, j->load);
			report_orphans(sp->dir, j, j->load);
		}
		break;
	case JOB_APPEND: /* written in batches: write_batch */
	case JOB_SET_STATE:
		break;
	case JOB_REMOVE:
		if (!sp->usable)
			break;
		path = xasprintf("%s/%s/%020" PRIu64 ".json", sp->dir, j->name, j->seq);
		if (unlink(path) < 0 && errno != ENOENT)
			j->error = xasprintf("cannot remove %s: %s", path, strerror(errno));
		free(path);
		break;
	}
}

/* A file of a batch: which job (and which of its queues) it is for. */
struct batch_file {
	struct job *job;
	size_t queue; /* APPEND: the index in job->queues */
	char *dir;
	struct hd_staged staged;
	bool ok;
};

/* At most this many files wait for the disk together (each holds a descriptor until its fsync). */
#define BATCH_MAX_FILES 64

static void stage(struct batch_file *f, struct job *j, size_t queue, char *dir, const char *name, const char *text,
		  size_t len)
{
	*f = (struct batch_file){.job = j, .queue = queue, .dir = dir, .staged = {.fd = -1}};
	if (make_dirs(dir, 0700) < 0) {
		if (j->error == NULL)
			j->error = xasprintf("cannot create the directory %s: %s", dir, strerror(errno));
		return;
	}
	f->ok = hd_staged_write(&f->staged, dir, name, text, len, &j->error) == 0;
}

/* fsync of each distinct directory among files[0..n) that got a file, once. */
static void sync_dirs(struct batch_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		if (!files[i].ok)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = files[k].ok && strcmp(files[k].dir, files[i].dir) == 0;
		if (!seen && hd_fsync_dir(files[i].dir) < 0) {
			for (size_t k = i; k < n; k++)
				if (files[k].ok && strcmp(files[k].dir, files[i].dir) == 0) {
					files[k].ok = false;
					if (files[k].job->error == NULL)
						files[k].job->error = xasprintf("cannot fsync the directory %s: %s", files[k].dir,
										strerror(errno));
				}
		}
	}
}

/*
 * Appends and open-alert records of one batch reach the disk together: every file is written, then each is
 * fsynced while the others' writes are already under way, so the wait is about one disk flush whatever the burst.
 * Events are renamed into place (and their directories fsynced) before any record of the batch, and a record is
 * stamped with the last sequence number given when it was made: after a crash, an event newer than the record of
 * its check tells the truth (alerts.c, restore), so no crash leaves an alert that nothing will resolve.
 */
static void write_batch(struct hd_spool *sp, struct job **jobs, size_t n_jobs)
{
	struct batch_file files[BATCH_MAX_FILES];
	size_t n = 0, n_events;

	for (size_t i = 0; i < n_jobs; i++) {
		struct job *j = jobs[i];
		if (j->kind == JOB_SET_STATE)
			j->seq = sp->next_seq - 1; /* every event asked for before it has this number or a lower one */
		if (j->kind == JOB_APPEND) {
			j->written = xcalloc(j->n_queues ? j->n_queues : 1, sizeof(bool));
			if (!sp->usable) {
				j->error = xasprintf("the spool directory %s is not usable", sp->dir);
				continue;
			}
			j->seq = sp->next_seq++;
			char *name = xasprintf("%020" PRIu64 ".json", j->seq);
			for (size_t q = 0; q < j->n_queues; q++)
				stage(&files[n++], j, q, xasprintf("%s/%s", sp->dir, j->queues[q]), name, j->text, j->len);
			free(name);
		}
	}
	n_events = n;
	for (size_t i = 0; i < n_jobs; i++) {
		struct job *j = jobs[i];
		if (j->kind == JOB_SET_STATE && sp->usable && j->text != NULL) {
			/* the record as the loop made it (a JSON object: "{...}"), with "seq" added */
			char *name = xasprintf("%s.json", j->name);
			char *text = j->len >= 2 && j->text[j->len - 1] == '}'
					     ? xasprintf("%.*s,\"seq\":%" PRIu64 "}", (int)(j->len - 1), j->text, j->seq)
					     : xstrdup(j->text);
			stage(&files[n++], j, 0, xasprintf("%s/" STATE_DIR, sp->dir), name, text, strlen(text));
			free(text);
			free(name);
		}
	}
	/* one flush of the filesystem for the whole batch; each file's own fsync then finds nothing left to write */
	for (size_t i = 0; i < n && n > 1; i++)
		if (files[i].ok) {
			(void)syncfs(files[i].staged.fd);
			break;
		}
	for (size_t i = 0; i < n; i++)
		if (files[i].ok)
			files[i].ok = hd_staged_sync(&files[i].staged, &files[i].job->error) == 0;
	for (size_t i = 0; i < n_events; i++)
		if (files[i].ok)
			files[i].ok = hd_staged_commit(&files[i].staged, &files[i].job->error) == 0;
	sync_dirs(files, n_events);
	/* records and forgotten records in the order they were asked for */
	bool forgot = false;
	for (size_t i = 0, f = n_events; i < n_jobs; i++) {
		struct job *j = jobs[i];
		if (j->kind != JOB_SET_STATE || !sp->usable)
			continue;
		if (j->text != NULL) {
			if (files[f].ok)
				files[f].ok = hd_staged_commit(&files[f].staged, &j->error) == 0;
			f++;
		} else {
			char *file = xasprintf("%s/" STATE_DIR "/%s.json", sp->dir, j->name);
			if (unlink(file) < 0 && errno != ENOENT)
				j->error = xasprintf("cannot remove %s: %s", file, strerror(errno));
			forgot = true;
			free(file);
		}
	}
	sync_dirs(files + n_events, n - n_events);
	if (forgot && n == n_events) {
		char *dir = xasprintf("%s/" STATE_DIR, sp->dir);
		hd_fsync_dir(dir);
		free(dir);
	}
	for (size_t i = 0; i < n; i++) {
		if (files[i].job->kind == JOB_APPEND)
			files[i].job->written[files[i].queue] = files[i].ok;
		hd_staged_end(&files[i].staged);
		free(files[i].dir);
	}
	for (size_t i = 0; i < n_jobs; i++) /* an event is removed only after the record that followed it */
		if (jobs[i]->kind == JOB_REMOVE)
			run_job(sp, jobs[i]);
}

/* How many files a job adds to a batch. */
static size_t files_of(const struct job *j)
{
	return j->kind == JOB_APPEND ? j->n_queues : j->kind == JOB_SET_STATE && j->text != NULL;
}

/* Runs what the loop queued, in order: writes and removals in batches, a load after the batch before it. */
static void run_jobs(struct hd_spool *sp, struct job_list *list)
{
	struct job *batch[BATCH_MAX_FILES], *j;
	size_t n = 0, files = 0;

	STAILQ_FOREACH(j, list, link) {
		bool writes = j->kind != JOB_LOAD;
		if (n > 0 && (!writes || n == BATCH_MAX_FILES || files + files_of(j) > BATCH_MAX_FILES)) {
			write_batch(sp, batch, n);
			n = files = 0;
		}
		if (writes && files_of(j) > BATCH_MAX_FILES) { /* more webhooks than a batch holds: split it */
			j->written = xcalloc(j->n_queues, sizeof(bool));
			j->error = xasprintf("an event for %zu webhooks exceeds the spool's batch of %d files", j->n_queues,
					     BATCH_MAX_FILES);
		} else if (writes) {
			batch[n++] = j;
			files += files_of(j);
		} else {
			run_job(sp, j);
		}
	}
	if (n > 0)
		write_batch(sp, batch, n);
}

static void *writer_thread(void *arg)
{
	struct hd_spool *sp = arg;
	struct job_list list = STAILQ_HEAD_INITIALIZER(list);

	spool_init(sp);
	pthread_mutex_lock(&sp->mu);
	for (;;) {
		while (STAILQ_EMPTY(&sp->todo) && !sp->stopping)
			pthread_cond_wait(&sp->work_cv, &sp->mu);
		if (STAILQ_EMPTY(&sp->todo))
			break; /* stopping, and every queued job is done */
		STAILQ_CONCAT(&list, &sp->todo); /* everything queued so far is one batch */
		pthread_mutex_unlock(&sp->mu);
		run_jobs(sp, &list);
		pthread_mutex_lock(&sp->mu);
		STAILQ_CONCAT(&sp->done, &list);
		if (!sp->stopping)
			event_active(sp->wake, EV_READ, 0);
	}
	sp->exited = true;
	pthread_cond_broadcast(&sp->exit_cv);
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

/* ---- the loop side ---- */

static void free_load(struct hd_spool_load *load)
{
	if (load == NULL)
		return;
	for (size_t q = 0; q < load->n_queues; q++) {
		for (size_t i = 0; i < load->queues[q].n; i++)
			free(load->queues[q].items[i].text);
		free(load->queues[q].items);
	}
	free(load->queues);
	for (size_t i = 0; i < load->states.n; i++) {
		free(load->states.items[i].name);
		free(load->states.items[i].text);
	}
	free(load->states.items);
	for (size_t i = 0; i < load->n_problems; i++)
		free(load->problems[i]);
	free(load->problems);
	free(load);
}

static void free_job(struct job *j)
{
	for (size_t i = 0; i < j->n_queues; i++)
		free(j->queues[i]);
	free(j->queues);
	free(j->name);
	free(j->text);
	free(j->written);
	free(j->error);
	free_load(j->load);
	free(j);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct hd_spool *sp = arg;
	struct job_list list = STAILQ_HEAD_INITIALIZER(list);
	struct job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&sp->mu);
	STAILQ_CONCAT(&list, &sp->done);
	pthread_mutex_unlock(&sp->mu);
	while ((j = STAILQ_FIRST(&list)) != NULL) {
		STAILQ_REMOVE_HEAD(&list, link);
		sp->pending--;
		if (j->kind == JOB_LOAD && j->loaded_fn)
			j->loaded_fn(j->load, j->arg);
		else if (j->kind == JOB_APPEND && j->written_fn)
			j->written_fn(j->seq, j->written, j->error, j->arg);
		else if (j->error)
			log_warn("alerts spool: %s", j->error);
		free_job(j);
	}
}

struct hd_spool *hd_spool_open(struct event_base *base, const char *dir)
{
	struct hd_spool *sp = xcalloc(1, sizeof(*sp));

	sp->dir = xstrdup(dir);
	sp->wake = event_new(base, -1, 0, on_wake, sp);
	STAILQ_INIT(&sp->todo);
	STAILQ_INIT(&sp->done);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->work_cv, NULL);
	pthread_cond_init(&sp->exit_cv, NULL);
	if (sp->wake == NULL || hd_thread_start(&sp->thread, false, writer_thread, sp) != 0)
		hd_fatal("alerts spool: cannot start the writer thread");
	return sp;
}

static void submit(struct hd_spool *sp, struct job *j)
{
	sp->pending++;
	pthread_mutex_lock(&sp->mu);
	STAILQ_INSERT_TAIL(&sp->todo, j, link);
	pthread_cond_signal(&sp->work_cv);
	pthread_mutex_unlock(&sp->mu);
}

static char **copy_list(const char *const *list, size_t n)
{
	char **out = xcalloc(n ? n : 1, sizeof(char *));

	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(list[i]);
	return out;
}

void hd_spool_load(struct hd_spool *sp, const char *const *queues, size_t n_queues, bool with_states,
		   hd_spool_loaded_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_LOAD;
	j->queues = copy_list(queues, n_queues);
	j->n_queues = n_queues;
	j->with_states = with_states;
	j->loaded_fn = done;
	j->arg = arg;
	submit(sp, j);
}

void hd_spool_append(struct hd_spool *sp, const char *const *queues, size_t n_queues, const char *text, size_t len,
		     hd_spool_written_fn done, void *arg)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_APPEND;
	j->queues = copy_list(queues, n_queues);
	j->n_queues = n_queues;
	j->text = xmalloc(len + 1);
	memcpy(j->text, text, len);
	j->text[len] = '\0';
	j->len = len;
	j->written_fn = done;
	j->arg = arg;
	submit(sp, j);
}

void hd_spool_remove(struct hd_spool *sp, const char *queue, uint64_t seq)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_REMOVE;
	j->name = xstrdup(queue);
	j->seq = seq;
	submit(sp, j);
}

void hd_spool_set_state(struct hd_spool *sp, const char *name, const char *text)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_SET_STATE;
	j->name = xstrdup(name);
	if (text != NULL) {
		j->text = xstrdup(text);
		j->len = strlen(text);
	}
	submit(sp, j);
}

size_t hd_spool_pending(struct hd_spool *sp)
{
	return sp->pending;
}

const char *hd_spool_dir(const struct hd_spool *sp)
{
	return sp->dir;
}

void hd_spool_close(struct hd_spool *sp, int wait_ms)
{
	struct timespec until;
	struct job *j;
	bool exited;

	if (sp == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sp->mu);
	sp->stopping = true;
	pthread_cond_signal(&sp->work_cv);
	while (!sp->exited && pthread_cond_timedwait(&sp->exit_cv, &sp->mu, &until) == 0)
		;
	exited = sp->exited;
	pthread_mutex_unlock(&sp->mu);
	if (!exited) {
		/* A hung disk: the thread may never return. Leave it (and what it uses) to the process exit. */
		log_err("alerts spool: %zu writes to %s not finished after %d ms (disk hung?); events not yet written are "
			"lost at exit", sp->pending, sp->dir, wait_ms);
		pthread_detach(sp->thread);
		return;
	}
	pthread_join(sp->thread, NULL);
	while ((j = STAILQ_FIRST(&sp->done)) != NULL) {
		STAILQ_REMOVE_HEAD(&sp->done, link);
		if (j->error)
			log_warn("alerts spool: %s", j->error);
		free_job(j);
	}
	for (size_t i = 0; i < sp->n_init_problems; i++)
		free(sp->init_problems[i]);
	free(sp->init_problems);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	event_free(sp->wake);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->work_cv);
	pthread_cond_destroy(&sp->exit_cv);
	free(sp->dir);
	free(sp);
}
