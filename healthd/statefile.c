/* statefile.c: the admin state on disk, written atomically on a worker thread, read back at start-up. */
#include "statefile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "worker.h"

#define STATEFILE_MAX_BYTES 65536
#define STATEFILE_VERSION 1
/* At exit, how long to wait for a pending write before giving up on it (a hung disk must not hang the stop). */
#define STATEFILE_EXIT_WAIT_S 3

struct hd_statefile {
	char *dir;
	hd_statefile_done_fn done;
	void *done_arg;
	struct hd_worker *writer;
	pthread_mutex_t lock;
	/* guarded by lock */
	struct hd_saved_admin pending;
	uint64_t pending_generation;  /* the newest state queued */
	uint64_t taken_generation;    /* the newest state the worker took */
	uint64_t written_generation;  /* the newest write that finished (well or not) */
	uint64_t reported_generation; /* the newest one on_written told about */
	int last_rc;
	char last_error[512];
};

static char *state_path(const char *dir)
{
	return xasprintf("%s/%s", dir, HD_STATEFILE_NAME);
}

char *statefile_encode(const struct hd_saved_admin *st)
{
	cJSON *root = cJSON_CreateObject();
	char since[40], *printed, *out;

	hd_iso8601(st->admin.since_wall_ms, since, sizeof(since));
	cJSON_AddNumberToObject(root, "version", STATEFILE_VERSION);
	cJSON_AddStringToObject(root, "state", hd_admin_name(st->admin.mode));
	cJSON_AddStringToObject(root, "reason", st->admin.reason);
	cJSON_AddNumberToObject(root, "since_ms", (double)st->admin.since_wall_ms);
	cJSON_AddStringToObject(root, "since", since); /* for people reading the file; since_ms is what counts */
	cJSON_AddBoolToObject(root, "stopped_draining", st->stopped_draining);
	printed = cJSON_Print(root);
	out = xasprintf("%s\n", printed);
	cJSON_free(printed);
	cJSON_Delete(root);
	return out;
}

int statefile_decode(const char *text, struct hd_saved_admin *out, char **error)
{
	cJSON *root = cJSON_ParseWithLengthOpts(text, strlen(text), NULL, 0);
	const cJSON *state, *reason, *since, *stopped;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (root == NULL || !cJSON_IsObject(root)) {
		*error = xasprintf("not a JSON object");
		goto done;
	}
	state = cJSON_GetObjectItemCaseSensitive(root, "state");
	reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
	since = cJSON_GetObjectItemCaseSensitive(root, "since_ms");
	stopped = cJSON_GetObjectItemCaseSensitive(root, "stopped_draining");
	if (!cJSON_IsString(state)) {
		*error = xasprintf("\"state\" is missing or not a string");
		goto done;
	}
	if (strcmp(state->valuestring, "ready") == 0)
		out->admin.mode = HD_ADMIN_READY;
	else if (strcmp(state->valuestring, "drain") == 0)
		out->admin.mode = HD_ADMIN_DRAIN;
	else if (strcmp(state->valuestring, "maint") == 0)
		out->admin.mode = HD_ADMIN_MAINT;
	else {
		*error = xasprintf("\"state\" is \"%.40s\", expected ready, drain or maint", state->valuestring);
		goto done;
	}
	if (reason != NULL && !cJSON_IsString(reason)) {
		*error = xasprintf("\"reason\" is not a string");
		goto done;
	}
	if (since != NULL && (!cJSON_IsNumber(since) || since->valuedouble < 0 || since->valuedouble > 1e15)) {
		*error = xasprintf("\"since_ms\" is not a time in milliseconds");
		goto done;
	}
	if (stopped != NULL && !cJSON_IsBool(stopped)) {
		*error = xasprintf("\"stopped_draining\" is not true or false");
		goto done;
	}
	hd_strlcpy(out->admin.reason, reason ? reason->valuestring : "", sizeof(out->admin.reason));
	out->admin.since_wall_ms = since ? (int64_t)since->valuedouble : 0;
	out->stopped_draining = cJSON_IsTrue(stopped);
	rc = 0;
done:
	cJSON_Delete(root);
	return rc;
}

int statefile_prepare_dir(const char *dir, char **error)
{
	char *copy = xstrdup(dir), *slash;
	struct stat st;
	int rc = -1;

	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			rc = 0;
		else
			*error = xasprintf("state_dir %s exists and is not a directory", dir);
		goto out;
	}
	if (errno != ENOENT) {
		*error = xasprintf("cannot create state_dir %s: %s", dir, strerror(errno));
		goto out;
	}
	for (slash = strchr(copy + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			*error = xasprintf("cannot create state_dir %s: mkdir %s: %s", dir, copy, strerror(errno));
			goto out;
		}
		*slash = '/';
	}
	/* chmod: the mode is 0750 whatever the umask */
	if ((mkdir(dir, 0750) < 0 && errno != EEXIST) || chmod(dir, 0750) < 0) {
		*error = xasprintf("cannot create state_dir %s: %s", dir, strerror(errno));
		goto out;
	}
	if ((slash = strrchr(copy, '/')) != NULL && slash != copy) {
		*slash = '\0';
		hd_fsync_dir(copy);
	}
	rc = 1;
out:
	free(copy);
	return rc;
}

int statefile_load(const char *dir, struct hd_saved_admin *out, char **error)
{
	char *path = state_path(dir);
	char *text = hd_read_small_file(path, STATEFILE_MAX_BYTES);
	char *why = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (text == NULL) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc < 0)
			*error = xasprintf("cannot read %s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	rc = statefile_decode(text, out, &why) < 0 ? -1 : 1;
	if (rc < 0) {
		*error = xasprintf("%s is not a valid admin state file: %s", path, why);
		free(why);
	}
	free(text);
	free(path);
	return rc;
}

int statefile_write(const char *dir, const struct hd_saved_admin *st, char **error)
{
	char *text = statefile_encode(st);
	int rc = hd_write_file_atomic(dir, HD_STATEFILE_NAME, text, strlen(text), error);

	free(text);
	return rc;
}

/* ---- the writer thread ---- */

static void on_written(void *arg)
{
	struct hd_statefile *sf = arg;
	uint64_t generation;
	char error[sizeof(sf->last_error)];
	int rc;

	pthread_mutex_lock(&sf->lock);
	generation = sf->reported_generation = sf->written_generation;
	rc = sf->last_rc;
	hd_strlcpy(error, sf->last_error, sizeof(error));
	pthread_mutex_unlock(&sf->lock);
	if (rc < 0)
		log_err("admin state not saved, it will not survive a restart: %s", error);
	if (sf->done)
		sf->done(generation, rc, rc < 0 ? error : NULL, sf->done_arg);
}

/* On the writer thread: writes the newest state queued, if the previous run did not already. */
static void write_pending(void *arg)
{
	struct hd_statefile *sf = arg;
	struct hd_saved_admin snapshot;
	uint64_t generation;
	char *error = NULL;
	int rc;

	pthread_mutex_lock(&sf->lock);
	if (sf->taken_generation == sf->pending_generation) {
		pthread_mutex_unlock(&sf->lock);
		return;
	}
	snapshot = sf->pending;
	generation = sf->taken_generation = sf->pending_generation;
	pthread_mutex_unlock(&sf->lock);
	rc = statefile_write(sf->dir, &snapshot, &error);
	pthread_mutex_lock(&sf->lock);
	sf->written_generation = generation;
	sf->last_rc = rc;
	hd_strlcpy(sf->last_error, error ? error : "", sizeof(sf->last_error));
	pthread_mutex_unlock(&sf->lock);
	free(error);
}

struct hd_statefile *statefile_new(struct event_base *base, const char *dir, hd_statefile_done_fn done, void *arg)
{
	struct hd_statefile *sf = xcalloc(1, sizeof(*sf));

	sf->dir = xstrdup(dir);
	sf->done = done;
	sf->done_arg = arg;
	pthread_mutex_init(&sf->lock, NULL);
	sf->writer = hd_worker_new(base, "state file writer", write_pending, on_written, sf);
	return sf;
}

uint64_t statefile_save(struct hd_statefile *sf, const struct hd_admin *admin, bool stopped_draining)
{
	uint64_t generation;

	pthread_mutex_lock(&sf->lock);
	sf->pending.admin = *admin;
	sf->pending.stopped_draining = stopped_draining;
	generation = ++sf->pending_generation;
	pthread_mutex_unlock(&sf->lock);
	hd_worker_kick(sf->writer);
	return generation;
}

const char *statefile_dir(const struct hd_statefile *sf)
{
	return sf->dir;
}

void statefile_free(struct hd_statefile *sf)
{
	if (sf == NULL)
		return;
	if (!hd_worker_stop(sf->writer, STATEFILE_EXIT_WAIT_S * 1000)) {
		/* The thread is stuck in the kernel (a hung disk): leave it and its memory, the process is ending. */
		log_err("admin state: the write to %s did not finish within %d s at exit; it may be lost", sf->dir,
			STATEFILE_EXIT_WAIT_S);
		return;
	}
	if (sf->written_generation > sf->reported_generation && sf->last_rc < 0)
		log_err("admin state not saved at exit: %s", sf->last_error);
	pthread_mutex_destroy(&sf->lock);
	free(sf->dir);
	free(sf);
}
