/* statefile.h: the admin state on disk (drain/maint and why), so that a deploy in progress survives a crash or restart. */
#ifndef HEALTHD_STATEFILE_H
#define HEALTHD_STATEFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

struct event_base;
struct hd_statefile;

/* What the file holds. stopped_draining: a graceful stop told the load balancers "drain" (see main.c). */
struct hd_saved_admin {
	struct hd_admin admin;
	bool stopped_draining;
};

#define HD_STATEFILE_NAME "admin.json"

/*
 * Makes sure DIR exists as a directory (at start, before any thread writes under it): a missing one is created with
 * mode 0750 (missing parents 0755) and its parent fsynced. 1 created, 0 there already, -1 with *error (why, and
 * what then does not survive a restart).
 */
int statefile_prepare_dir(const char *dir, char **error) HD_MUST_CHECK;
/* Reads DIR/admin.json (before the loop runs). 1 found, 0 absent, -1 unreadable or invalid (*error set). */
int statefile_load(const char *dir, struct hd_saved_admin *out, char **error) HD_MUST_CHECK;
/* Writes DIR/admin.json atomically and durably: temp file, fsync, rename, fsync of the directory. Blocks. */
int statefile_write(const char *dir, const struct hd_saved_admin *st, char **error) HD_MUST_CHECK;

/* Pure parts, for tests. encode returns a malloc'd JSON text; decode returns 0 or -1 with *error set. */
char *statefile_encode(const struct hd_saved_admin *st);
int statefile_decode(const char *text, struct hd_saved_admin *out, char **error) HD_MUST_CHECK;

/*
 * The writer: a worker thread, so that an fsync never stalls the loop. Saves coalesce (the latest state wins).
 * done runs on the loop after each write with the newest generation it covers, its result and error text.
 */
typedef void (*hd_statefile_done_fn)(uint64_t generation, int rc, const char *error, void *arg);
struct hd_statefile *statefile_new(struct event_base *base, const char *dir, hd_statefile_done_fn done, void *arg);
/* Queues a write of this state; returns its generation (done reports a generation >= it). */
uint64_t statefile_save(struct hd_statefile *sf, const struct hd_admin *admin, bool stopped_draining);
const char *statefile_dir(const struct hd_statefile *sf);
/* Finishes the pending write (waiting a few seconds at most), logs a failure, stops the thread. */
void statefile_free(struct hd_statefile *sf);

#endif
