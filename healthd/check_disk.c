/* check_disk.c: the disk check: space, inodes and a write+fsync probe, measured on a worker thread so that a hung mount never blocks the loop. */
#include "check_disk.h"
#include "fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "worker.h"

#define PROBE_BYTES 4096

struct disk_conf {
	char *path;
	bool probe;
	struct hd_disk_limits lim;
};

/*
 * One measurement, shared by the loop and its worker thread. Each side holds a reference; whoever lets go last
 * frees it. The loop lets go when the result arrives, or keeps the reference in hd_persist when the deadline
 * passed while the thread was still blocked (then the next attempts see it and start no new thread).
 */
struct disk_job {
	pthread_mutex_t lock;
	int refs;
	/* under lock */
	struct event *wake; /* activated by the thread when done; NULL once the loop stopped waiting */
	const char *step;   /* what the thread is doing now */
	bool done;
	struct hd_disk_sample sample;
	/* read-only while the thread runs */
	char *path;
	char *probe_path;
	bool probe;
	int64_t started_ms;
	/* loop side only */
	struct hd_check_run *run;
};

/* What a disk check keeps across attempts. */
struct hd_persist {
	int cycles_over;        /* consecutive measurements over a limit */
	struct disk_job *stuck; /* a job whose thread outlived its attempt's deadline */
	const char *stuck_step; /* where it was when the deadline passed */
};

static const struct cfg_key disk_keys[] = {
	{"path", CFG_PATH, offsetof(struct disk_conf, path), true, 0, 0, NULL, NULL,
	 "absolute path of a directory on the filesystem to watch; the probe file .healthd-probe.NAME is written there"},
	{"probe", CFG_BOOL, offsetof(struct disk_conf, probe), false, 0, 0, "true", NULL,
	 "write, fsync and remove the probe file on every attempt; false measures space and inodes only, for a "
	 "filesystem healthd may not write to (under the unit's ProtectSystem=strict, all but its state directory)"},
	{"max_used_pct", CFG_INT, offsetof(struct disk_conf, lim.max_used_pct), false, 1, 100, "95", NULL,
	 "space used above this percentage (as df computes it: used / (used + available)) is a threshold failure"},
	{"max_inodes_pct", CFG_INT, offsetof(struct disk_conf, lim.max_inodes_pct), false, 1, 100, "95", NULL,
	 "inodes used above this percentage is a threshold failure; skipped where the filesystem reports no inodes (btrfs)"},
	{"max_latency_ms", CFG_INT, offsetof(struct disk_conf, lim.max_latency_ms), false, 1, 600000, "300", NULL,
	 "creating, writing and fsyncing a 4 KiB probe file taking longer than this is a slow failure; below timeout_ms"},
	{"for_cycles", CFG_INT, offsetof(struct disk_conf, lim.for_cycles), false, 1, 100, "1", NULL,
	 "consecutive attempts over a limit before it counts as a failure; until then the result is ok"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

/* ---- the verdict (pure) ---- */

static void human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	double tenths;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < HD_ARRAY_LEN(units)) {
		v /= 1024.0;
		u++;
	}
	tenths = round(v * 10.0) / 10.0;
	if (u == 0 || tenths == floor(tenths))
		snprintf(buf, len, "%.0f %s", tenths, units[u]);
	else
		snprintf(buf, len, "%.1f %s", tenths, units[u]);
}

/* How an errno reads to someone on call; step NULL matches any step. */
static const struct {
	int err;
	const char *step;
	const char *what;
	const char *hint;
} errno_words[] = {
	{ENOENT, "stat", "does not exist", "not mounted, or a wrong path?"},
	{ENOENT, "probe create", "cannot hold files", "a pseudo filesystem such as /proc?"},
	{ENOTDIR, NULL, "cannot be reached", "a component of the path is not a directory"},
	{EACCES, NULL, "permission denied", "healthd needs search and write access to the directory"},
	{EPERM, NULL, "permission denied", "healthd needs search and write access to the directory"},
	{EROFS, NULL, "read-only filesystem", "remounted read-only after I/O errors? see the kernel log"},
	{ENOSPC, NULL, "no space left", "a 4 KiB probe file did not fit"},
	{EDQUOT, NULL, "over quota", "a 4 KiB probe file did not fit in healthd's quota"},
	{EIO, NULL, "I/O error", "a failing disk or a lost storage path? see the kernel log"},
	{ESTALE, NULL, "stale file handle", "the NFS export changed under the mount: remount"},
	{ENOTCONN, NULL, "not connected", "the FUSE or network filesystem's daemon is gone: remount"},
	{EEXIST, NULL, "probe file in the way", "a file of that name appeared while healthd replaced it"},
};

static enum hd_kind error_detail(const char *path, const struct hd_disk_sample *s, char *detail, size_t len)
{
	const char *what = "failed", *hint = NULL;

	if (s->not_dir) {
		snprintf(detail, len, "%s: not a directory", path);
		return HD_KIND_ERROR;
	}
	if (s->read_only) {
		snprintf(detail, len, "%s: read-only filesystem (statvfs reports it mounted read-only; "
			 "remounted after I/O errors? see the kernel log)", path);
		return HD_KIND_ERROR;
	}
	if (s->view_read_only) {
		snprintf(detail, len, "%s: read-only to healthd, the filesystem itself is writable (a read-only mount "
			 "such as systemd's ProtectSystem=strict; set \"probe\": false to watch space and inodes only, "
			 "or allow writes with ReadWritePaths=)", path);
		return HD_KIND_ERROR;
	}
	for (size_t i = 0; i < HD_ARRAY_LEN(errno_words); i++)
		if (errno_words[i].err == s->err &&
		    (errno_words[i].step == NULL || strcmp(errno_words[i].step, s->failed_step) == 0)) {
			what = errno_words[i].what;
			hint = errno_words[i].hint;
			break;
		}
	snprintf(detail, len, "%s: %s (%s %s: %s%s%s)", path, what, s->failed_step,
		 s->failed_object ? s->failed_object : path, strerror(s->err), hint ? "; " : "", hint ? hint : "");
	return HD_KIND_ERROR;
}

enum hd_kind hd_disk_evaluate(const char *path, const struct hd_disk_sample *s, const struct hd_disk_limits *lim,
			      int *cycles_over, char *detail, size_t len)
{
	uint64_t used = s->blocks > s->bfree ? s->blocks - s->bfree : 0;
	double used_pct = used + s->bavail ? (double)used * 100.0 / (double)(used + s->bavail) : 0.0;
	double inodes_pct = s->files ? (double)(s->files - (s->ffree < s->files ? s->ffree : s->files)) * 100.0 /
					       (double)s->files : 0.0;
	bool over_space = used_pct > lim->max_used_pct;
	bool over_inodes = s->files > 0 && inodes_pct > lim->max_inodes_pct;
	bool slow = s->probe_ms > lim->max_latency_ms;
	char free_h[32], total_h[32];
	enum hd_kind kind;
	size_t n = 0;

	if (s->failed_step != NULL || s->not_dir || s->read_only || (s->view_read_only && !s->probe_off)) {
		*cycles_over = 0; /* nothing was measured: the run of consecutive cycles is broken */
		return error_detail(path, s, detail, len);
	}
	human_bytes(s->bavail * s->frsize, free_h, sizeof(free_h));
	human_bytes(s->blocks * s->frsize, total_h, sizeof(total_h));
	if (!over_space && !over_inodes && !slow) {
		*cycles_over = 0;
		hd_appendf(detail, len, &n, "%s: %.1f%% used (%s free of %s), ", path, used_pct, free_h, total_h);
		if (s->files > 0)
			hd_appendf(detail, len, &n, "inodes %.1f%% used, ", inodes_pct);
		else
			hd_appendf(detail, len, &n, "inodes not counted by this filesystem, ");
		if (s->probe_off)
			hd_appendf(detail, len, &n, "write probe off");
		else
			hd_appendf(detail, len, &n, "write+fsync %.1f ms", s->probe_ms);
		return HD_KIND_OK;
	}
	if (*cycles_over < lim->for_cycles)
		(*cycles_over)++;
	kind = over_space || over_inodes ? HD_KIND_THRESHOLD : HD_KIND_SLOW;
	hd_appendf(detail, len, &n, "%s: ", path);
	if (over_space)
		hd_appendf(detail, len, &n, "%.1f%% used > %d%% (%s free of %s)", used_pct, lim->max_used_pct, free_h, total_h);
	if (over_inodes)
		hd_appendf(detail, len, &n, "%sinodes %.1f%% used > %d%% (%llu free of %llu)", over_space ? "; " : "",
		       inodes_pct, lim->max_inodes_pct, (unsigned long long)s->ffree, (unsigned long long)s->files);
	if (slow)
		hd_appendf(detail, len, &n, "%swrite+fsync of a 4 KiB probe file took %.0f ms > %d ms",
		       over_space || over_inodes ? "; " : "", s->probe_ms, lim->max_latency_ms);
	if (*cycles_over < lim->for_cycles) {
		hd_appendf(detail, len, &n, ", cycle %d of %d before it counts", *cycles_over, lim->for_cycles);
		return HD_KIND_OK;
	}
	if (lim->for_cycles > 1)
		hd_appendf(detail, len, &n, " for %d cycles", lim->for_cycles);
	return kind;
}

/* ---- the worker thread: every call that can hang on a dead mount happens here ---- */

static void job_set_step(struct disk_job *job, const char *step)
{
	pthread_mutex_lock(&job->lock);
	job->step = step;
	pthread_mutex_unlock(&job->lock);
}

static void job_release(struct disk_job *job)
{
	bool last;

	pthread_mutex_lock(&job->lock);
	last = --job->refs == 0;
	pthread_mutex_unlock(&job->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&job->lock);
	free(job->path);
	free(job->probe_path);
	free(job);
}

static void fail_step(struct hd_disk_sample *s, const char *step, const char *object, int err)
{
	s->failed_step = step;
	s->failed_object = object;
	s->err = err;
}

/* Creates a fresh probe file (never following a link someone left there), writes, fsyncs, removes it. */
static void probe(struct disk_job *job, struct hd_disk_sample *s)
{
	static const char block[PROBE_BYTES] = "healthd write probe; safe to delete\n";
	double t0;
	int fd;

	job_set_step(job, "probe create");
	t0 = hd_now_mono_ms_f();
	if (unlink(job->probe_path) < 0 && errno != ENOENT) {
		fail_step(s, "probe create", job->probe_path, errno);
		return;
	}
	fd = open(job->probe_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fail_step(s, "probe create", job->probe_path, errno);
		return;
	}
	job_set_step(job, "probe write");
	if (hd_write_all(fd, block, sizeof(block)) < 0) {
		fail_step(s, "probe write", job->probe_path, errno);
	} else {
		job_set_step(job, "probe fsync");
		if (fsync(fd) < 0)
			fail_step(s, "probe fsync", job->probe_path, errno);
	}
	if (close(fd) < 0 && s->failed_step == NULL && errno != EINTR)
		fail_step(s, "probe write", job->probe_path, errno); /* NFS reports write errors at close */
	s->probe_ms = hd_now_mono_ms_f() - t0;
	job_set_step(job, "probe unlink");
	if (unlink(job->probe_path) < 0 && s->failed_step == NULL)
		fail_step(s, "probe unlink", job->probe_path, errno);
}

int hd_disk_mountinfo_read_only(const char *line, unsigned int major, unsigned int minor)
{
	unsigned int maj, min;
	const char *opts, *end;

	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNTOPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS; spaces in fields are \040 */
	if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || maj != major || min != minor)
		return -1;
	opts = strstr(line, " - ");
	if (opts == NULL)
		return -1;
	opts += 3;
	for (int field = 0; field < 2; field++) {
		opts = strchr(opts, ' ');
		if (opts == NULL)
			return -1;
		opts++;
	}
	end = opts + strcspn(opts, " \n");
	while (opts < end) {
		size_t n = strcspn(opts, ",");
		if (opts + n > end)
			n = (size_t)(end - opts);
		if (n == 2 && memcmp(opts, "ro", 2) == 0)
			return 1;
		opts += n + 1;
	}
	return 0;
}

/* Whether the filesystem on dev is read-only itself, not only in this mount namespace: 1, 0, or -1 unknown. */
static int filesystem_read_only(dev_t dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int ro = -1;

	if (f == NULL)
		return -1;
	while (ro < 0 && getline(&line, &cap, f) > 0)
		ro = hd_disk_mountinfo_read_only(line, major(dev), minor(dev));
	free(line);
	fclose(f);
	return ro;
}

static void measure(struct disk_job *job, struct hd_disk_sample *s)
{
	struct statvfs vfs;
	struct stat st;

	if (stat(job->path, &st) < 0) {
		fail_step(s, "stat", job->path, errno);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		s->not_dir = true;
		return;
	}
	job_set_step(job, "statvfs");
	if (statvfs(job->path, &vfs) < 0) {
		fail_step(s, "statvfs", job->path, errno);
		return;
	}
	s->frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
	s->blocks = vfs.f_blocks;
	s->bfree = vfs.f_bfree;
	s->bavail = vfs.f_bavail;
	s->files = vfs.f_files;
	s->ffree = vfs.f_ffree;
	if (vfs.f_flag & ST_RDONLY) {
		/* A read-only bind mount of a writable filesystem (ProtectSystem=strict) is healthd's view, not a fault. */
		job_set_step(job, "mountinfo");
		if (filesystem_read_only(st.st_dev) != 0) {
			s->read_only = true;
			return;
		}
		s->view_read_only = true;
	}
	if (!job->probe) {
		s->probe_off = true;
		return;
	}
	if (!s->view_read_only)
		probe(job, s);
}

static void *worker(void *arg)
{
	struct disk_job *job = arg;
	struct hd_disk_sample s = {0};

	measure(job, &s);
	pthread_mutex_lock(&job->lock);
	job->sample = s;
	job->done = true;
	if (job->wake != NULL)
		event_active(job->wake, EV_READ, 0); /* thread-safe: the base was made with evthread locks */
	pthread_mutex_unlock(&job->lock);
	job_release(job);
	return NULL;
}

/* ---- the attempt, on the loop ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct disk_job *job = arg;
	struct hd_check_run *run = job->run;
	const struct disk_conf *dc = run->conf->type_conf;
	struct hd_disk_sample s;
	char detail[384];
	struct event *wake;
	enum hd_kind kind;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&job->lock);
	s = job->sample;
	wake = job->wake;
	job->wake = NULL;
	pthread_mutex_unlock(&job->lock);
	event_free(wake);
	run->state = NULL;
	detail[0] = '\0';
	kind = hd_disk_evaluate(dc->path, &s, &dc->lim, &run->persist->cycles_over, detail, sizeof(detail));
	job_release(job); /* s points into the job's strings: released only after they were used */
	hd_check_done(run, kind, "%s", detail);
}

static struct hd_persist *persist_of(struct hd_check_run *run)
{
	if (run->persist == NULL)
		run->persist = xcalloc(1, sizeof(*run->persist));
	return run->persist;
}

/* Returns true while the previous attempt's thread is still blocked (and ends this attempt). */
static bool still_blocked(struct hd_check_run *run, struct hd_persist *p)
{
	struct disk_job *job = p->stuck;
	const char *step;
	bool done;

	if (job == NULL)
		return false;
	pthread_mutex_lock(&job->lock);
	done = job->done;
	step = job->step;
	pthread_mutex_unlock(&job->lock);
	if (done) {
		log_info("check %s: the blocked %s %s returned; probing again", run->conf->name, p->stuck_step, job->path);
		p->stuck = NULL;
		job_release(job);
		return false;
	}
	p->cycles_over = 0;
	hd_check_done(run, HD_KIND_TIMEOUT, "%s %s: still blocked after %lld ms (hung mount?)", step, job->path,
		      (long long)(hd_now_mono_ms() - job->started_ms));
	return true;
}

static char *probe_path_for(const char *dir, const char *check_name)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return xasprintf("%.*s/.healthd-probe.%s", (int)(n == 1 && dir[0] == '/' ? 0 : n), dir, check_name);
}

static void disk_start(struct hd_check_run *run)
{
	const struct disk_conf *dc = run->conf->type_conf;
	struct hd_persist *p = persist_of(run);
	struct disk_job *job;
	int err;

	if (still_blocked(run, p))
		return;
	job = xcalloc(1, sizeof(*job));
	pthread_mutex_init(&job->lock, NULL);
	job->refs = 2; /* the loop's and the thread's */
	job->step = "stat";
	job->path = xstrdup(dc->path);
	job->probe_path = probe_path_for(dc->path, run->conf->name);
	job->probe = dc->probe;
	job->started_ms = hd_now_mono_ms();
	job->run = run;
	job->wake = event_new(run->base, -1, 0, on_wake, job);
	run->state = job;
	hd_run_phase(run, HD_PHASE_REQUEST, "stat");
	err = hd_thread_start(NULL, true, worker, job);
	if (err != 0) {
		event_free(job->wake);
		job->wake = NULL;
		run->state = NULL;
		job->refs = 1;
		job_release(job);
		log_err("check %s: cannot start a worker thread: %s", run->conf->name, strerror(err));
		hd_check_done(run, HD_KIND_ERROR, "%s: cannot start a worker thread: %s", dc->path, strerror(err));
	}
}

/* The deadline passed (or shutdown): stop waiting; a blocked thread is remembered, never waited for. */
static void disk_cancel(struct hd_check_run *run)
{
	struct disk_job *job = run->state;
	struct hd_persist *p = persist_of(run);
	struct event *wake;
	bool done;

	if (job == NULL)
		return;
	pthread_mutex_lock(&job->lock);
	wake = job->wake;
	job->wake = NULL;
	done = job->done;
	hd_run_phase(run, HD_PHASE_REQUEST, job->step);
	pthread_mutex_unlock(&job->lock);
	event_free(wake);
	run->state = NULL;
	p->cycles_over = 0;
	if (done) {
		job_release(job);
		return;
	}
	if (p->stuck != NULL) /* cannot happen: an attempt never starts a thread while one is stuck */
		job_release(p->stuck);
	p->stuck = job;
	p->stuck_step = run->step;
	log_warn("check %s: %s %s has not returned after %lld ms; no new probe starts until it does", run->conf->name,
		 run->step, job->path, (long long)(hd_now_mono_ms() - job->started_ms));
}

static void disk_free_persist(struct hd_persist *p)
{
	if (p == NULL)
		return;
	if (p->stuck != NULL)
		job_release(p->stuck);
	free(p);
}

static int disk_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	const struct disk_conf *dc = conf->type_conf;

	/* CFG_PATH already insists on an absolute path. A probe slower than the deadline ends as a timeout first. */
	if (dc->lim.max_latency_ms >= conf->timeout_ms) {
		const cJSON *at = cJSON_GetObjectItemCaseSensitive(ctx->check_node, "max_latency_ms");
		if (at == NULL)
			at = cJSON_GetObjectItemCaseSensitive(ctx->check_node, "timeout_ms");
		return cfg_error(ctx, at ? at : ctx->check_node, false,
				 "max_latency_ms (%d%s) must be below timeout_ms (%d): a slower probe would end as a timeout",
				 dc->lim.max_latency_ms, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "max_latency_ms") ?
				 "" : ", the default", conf->timeout_ms);
	}
	conf->target = xstrdup(dc->path);
	return 0;
}

const struct hd_check_type hd_check_disk = {
	.name = "disk",
	.summary = "a directory's filesystem has space and inodes left and takes a small write+fsync in time (unless "
		   "\"probe\": false); "
		   "measured on a worker thread, so a hung mount is reported as a timeout and never stalls healthd",
	.keys = disk_keys,
	.conf_size = sizeof(struct disk_conf),
	.validate = disk_validate,
	.start = disk_start,
	.cancel = disk_cancel,
	.free_persist = disk_free_persist,
};
