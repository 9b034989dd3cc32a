/* spool.h: the durable on-disk queue of alert events (one file per event and webhook), written by a thread off the loop. */
#ifndef HEALTHD_SPOOL_H
#define HEALTHD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hd_spool;

/*
 * Layout under the spool directory (created 0700):
 *   lock                   flock()ed by the healthd that owns the spool
 *   q-<16 hex>/<seq>.json  one event for one webhook queue (the generic event JSON); seq (20 digits) orders them
 *   q-<16 hex>/tmp-*.json  a write in progress: removed on load
 *   open/<check>.json      the regression announced for a check that has not recovered yet, with "seq": the last
 *                          event number given before it (a queued event of that check above it is newer)
 * A file is written under a temporary name, fsynced, renamed, and the directory fsynced: a crash leaves either the
 * whole file or none, and never touches older ones. Writes queued together share one flush of the disk, and the
 * events of a batch are in place before its records.
 */

struct hd_spool_item {
	uint64_t seq;
	char *name; /* states: the check's name */
	char *text;
	size_t len;
};

struct hd_spool_loaded {
	struct hd_spool_item *items; /* of the queue asked for, in seq order; or the states */
	size_t n;
};

struct hd_spool_load {
	struct hd_spool_loaded *queues; /* one per queue asked for, in the same order */
	size_t n_queues;
	struct hd_spool_loaded states;  /* open alerts (hd_spool_load_all only) */
	char **problems;                /* what the loop should log (unreadable files, orphaned queues...) */
	size_t n_problems;
	bool usable;                    /* false: writes will fail (directory or lock unavailable) */
};

typedef void (*hd_spool_loaded_fn)(struct hd_spool_load *result, void *arg);
/* written[i] tells whether queues[i] got the file; error is the first failure, or NULL. */
typedef void (*hd_spool_written_fn)(uint64_t seq, const bool *written, const char *error, void *arg);

/* Starts the writer thread for dir (created if missing). Callbacks run on base's loop, in the order the
 * requests were made. */
struct hd_spool *hd_spool_open(struct event_base *base, const char *dir);
/* Finishes the queued writes (waiting at most wait_ms for a hung disk), stops the thread; no callback runs. */
void hd_spool_close(struct hd_spool *sp, int wait_ms);
const char *hd_spool_dir(const struct hd_spool *sp);

/* Reads queues back (and the open alerts when with_states); done owns nothing after it returns. */
void hd_spool_load(struct hd_spool *sp, const char *const *queues, size_t n_queues, bool with_states,
		   hd_spool_loaded_fn done, void *arg);
/* Appends one event to each queue, durably, under the next sequence number. */
void hd_spool_append(struct hd_spool *sp, const char *const *queues, size_t n_queues, const char *text, size_t len,
		     hd_spool_written_fn done, void *arg);
/* Removes a delivered (or dropped) event. */
void hd_spool_remove(struct hd_spool *sp, const char *queue, uint64_t seq);
/* Records (text != NULL) or forgets (text == NULL) the open alert of a check. */
void hd_spool_set_state(struct hd_spool *sp, const char *name, const char *text);
/* Requests not finished yet (for tests and the shutdown log). */
size_t hd_spool_pending(struct hd_spool *sp);

#endif
