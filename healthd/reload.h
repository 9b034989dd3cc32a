/* reload.h: reads and parses the configuration on a worker thread and hands it to the loop, which never waits on a file. */
#ifndef HEALTHD_RELOAD_H
#define HEALTHD_RELOAD_H

#include <stdbool.h>

struct event_base;
struct hd_config;
struct hd_reloader;
struct hd_reload_wait;

/* A reload that has not finished reading after this long is reported as timed out; the running configuration stays. */
#define HD_RELOAD_TIMEOUT_MS 8000

/* Applies a parsed configuration on the loop (takes it); returns the one-line summary (malloc'd). */
typedef char *(*hd_reload_apply_fn)(struct hd_config *cfg, void *arg);
/* Runs on the loop when the reload a request waits for ends: ok with the summary, or the error. */
typedef void (*hd_reload_done_fn)(bool ok, const char *text, void *arg);

struct hd_reloader *reloader_new(struct event_base *base, const char *path, hd_reload_apply_fn apply, void *apply_arg);
/* Called at the end of every reload, applied (ok) or not (refused, timed out, blocked): for /metrics. */
typedef void (*hd_reload_outcome_fn)(bool ok, void *arg);
void reloader_on_outcome(struct hd_reloader *r, hd_reload_outcome_fn fn, void *arg);
/*
 * Asks for a reload. Idle: a worker starts reading now. While one reads, the request is queued: one more read starts
 * when that one ends (the file may have changed since it was opened), and answers every request queued meanwhile.
 * While a timed-out read is still blocked (a hung mount), the request is refused at once. done may be NULL (SIGHUP).
 * Returns a handle for reloader_cancel(), or NULL when done has already run.
 */
struct hd_reload_wait *reloader_request(struct hd_reloader *r, const char *who, hd_reload_done_fn done, void *arg);
/* The requester went away: its done will not run. */
void reloader_cancel(struct hd_reload_wait *w);
/* Stops waiting; a worker still blocked is left to finish (or not) on its own and frees what it holds. */
void reloader_free(struct hd_reloader *r);

#endif
