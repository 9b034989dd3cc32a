/* history.h: recent state and admin changes (persisted in state_dir) and per-check recent results (in memory). */
#ifndef HEALTHD_HISTORY_H
#define HEALTHD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct event_base;
struct hd_engine;
struct hd_http;
struct hd_history;

#define HD_HISTORY_FILE "history.json"
#define HD_HISTORY_RING 120     /* recent results kept per check, for the sparkline */
#define HD_HISTORY_MINUTES 60   /* one-minute buckets: availability over the last hour */
#define HD_HISTORY_HOURS 24     /* one-hour buckets: availability over the last day */

/* One result as the sparkline sees it (4 bytes: 120 of them per check); latency in microseconds, at most 35 min. */
struct hd_history_sample {
	uint32_t latency_us : 31;
	uint32_t ok : 1;
};
#define HD_SAMPLE_MAX_US 0x7fffffffu
static inline double hd_sample_ms(const struct hd_history_sample *s)
{
	return s->latency_us / 1000.0;
}

/* ok/total within one fixed time bucket; epoch is wall_ms / width of the bucket it counts (8 bytes; an hour at the
 * shortest interval, 100 ms, counts 36,000 results; counts stop at 65,535). */
struct hd_avail_bucket {
	int32_t epoch;
	uint16_t ok, total;
};

/*
 * Subscribes to the engine's results and state changes, loads state_dir/history.json (a damaged one is renamed
 * aside and logged) and serves GET /history. Writes go to a worker thread, atomically, as the admin state's do.
 */
struct hd_history *history_new(struct event_base *base, struct hd_engine *engine, struct hd_status *status,
			       struct hd_http *http);
void history_free(struct hd_history *h);
/* The operator's admin mode changed (main.c forwards status_on_admin_change). */
void history_admin_changed(struct hd_history *h);
/* Bumped on every recorded change, for caches. */
unsigned history_version(const struct hd_history *h);
/* Calls fn for the newest events first, at most max of them. */
struct hd_history_event_view {
	int64_t wall_ms;
	const char *what;  /* "state" or "admin" */
	const char *check; /* "" for admin changes */
	const char *from, *to, *kind, *detail;
	int64_t previous_ms; /* how long the previous state lasted; -1 unknown */
};
void history_each_event(const struct hd_history *h, size_t max,
			void (*fn)(const struct hd_history_event_view *ev, void *arg), void *arg);
/* A check's recent results, oldest first (*n of them), and availability; NULL/false when it has none. */
const struct hd_history_sample *history_samples(const struct hd_history *h, const char *check, size_t *n,
						size_t *start);
bool history_availability(const struct hd_history *h, const char *check, int64_t now_ms, double *hour_pct,
			  double *day_pct);

/* Pure parts, for tests. */
void hd_avail_add(struct hd_avail_bucket *b, size_t n, int64_t width_ms, int64_t now_ms, bool ok);
/* ok and total over the buckets of the last n widths (the current one included). */
void hd_avail_sum(const struct hd_avail_bucket *b, size_t n, int64_t width_ms, int64_t now_ms, uint64_t *ok,
		  uint64_t *total);

#endif
