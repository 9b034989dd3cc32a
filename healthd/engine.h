/* engine.h: the running checks, their schedule and state, and the one place where every result ends. */
#ifndef HEALTHD_ENGINE_H
#define HEALTHD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "check.h"

struct event_base;
struct evdns_base;
struct hd_config;

enum hd_state { HD_STATE_PENDING, HD_STATE_UP, HD_STATE_DOWN };
const char *hd_state_name(enum hd_state s);

/* One configured check while it runs. Other modules read it; only engine.c writes it. */
/* Failed attempts of one check with one kind in one phase: a check keeps only the pairs it has seen. */
struct hd_failure_count {
	uint64_t count;
	uint8_t kind;  /* enum hd_kind */
	uint8_t phase; /* enum hd_phase */
};

struct hd_check {
	struct hd_check_conf *conf;
	enum hd_state state;
	struct hd_result last;         /* the most recent attempt */
	/* engine-owned, read through hd_check_last_failure(): while down and the latest attempt passed, the failure
	 * before it (NULL otherwise: 544 bytes a check kept only while it matters) */
	struct hd_result *failure_before;
	enum hd_kind down_kind;        /* the kind that took it down (valid while down) */
	int64_t since_wall_ms;         /* when the state last changed */
	int consecutive_failures;
	int consecutive_successes;
	uint64_t attempts;
	uint64_t transitions;
	struct hd_failure_count *failures; /* engine-owned: n_failures pairs, in the order first seen */
	size_t n_failures;
	unsigned version;              /* bumped on every result; render caches compare it */
	/* engine-owned, read through hd_check_cert(): the peer certificate the latest attempt saw, copied from the
	 * type when the result was recorded (an attempt in flight does not change it); allocated once one is seen */
	struct hd_cert_info *cert;
	bool has_cert;
	bool added_on_reload;          /* new in a reload: while pending it does not count toward the overall state */
	uint64_t serial;               /* unique for the engine's life, never reused: what faces key their caches by */
	/* engine-private */
	struct hd_engine *engine;
	struct event *tick;
	struct event *deadline;
	struct hd_check_run *run;
	struct hd_check_run *ended_run; /* the last attempt that ended, kept so that a late second end is caught */
	struct hd_persist *persist;
	int64_t next_start_ms;
	int64_t slot_ms;               /* when the latest attempt was due (the schedule counts from it) */
	bool removed;
};

/* The most recent failed attempt (an empty result, kind ok, when there is none to tell: never failed, or up). */
const struct hd_result *hd_check_last_failure(const struct hd_check *c);
/* The attempt that explains the check's state: while down, the latest failure; otherwise the latest attempt. */
const struct hd_result *hd_check_reason(const struct hd_check *c);
/* The peer certificate of the latest attempt's TLS handshake, or NULL (no TLS, or none could be read). */
const struct hd_cert_info *hd_check_cert(const struct hd_check *c);

/* A state change, as observers see it. */
struct hd_transition {
	const struct hd_check *check;
	enum hd_state from, to;
	enum hd_kind previous_kind; /* the kind before this change (ok when it was up) */
	int64_t down_since_wall_ms; /* on recovery: when it went down */
};

typedef void (*hd_result_fn)(const struct hd_check *check, void *arg);
typedef void (*hd_transition_fn)(const struct hd_transition *t, void *arg);
typedef void (*hd_all_done_fn)(struct hd_engine *engine, void *arg);

struct hd_engine *engine_new(struct event_base *base, struct evdns_base *dns);
void engine_free(struct hd_engine *e);
/* Observers run after each result / each state change, in subscription order. */
void engine_subscribe(struct hd_engine *e, hd_result_fn on_result, hd_transition_fn on_transition, void *arg);
/* Removes every subscription made with arg (an observer freed before the engine). */
void engine_unsubscribe(struct hd_engine *e, void *arg);
/*
 * Takes ownership of cfg and runs it. On a reload (checks are matched by name), unchanged ones keep their state,
 * counters and schedule; removed ones stop; changed ones restart with fresh counters but keep their up/down
 * state until rise/fall say otherwise; new ones start pending and count only from their first result.
 * No reload by itself causes a transition. The previous config is freed.
 */
void engine_apply_config(struct hd_engine *e, struct hd_config *cfg);
/* Runs every check once, concurrently, and calls done when all have a result (one-shot mode). */
void engine_run_once(struct hd_engine *e, struct hd_config *cfg, hd_all_done_fn done, void *arg);
/* Cancels every running attempt (shutdown). Call it once the loop has returned: it lets the loop deliver
 * the cancellations of pending name lookups. */
void engine_stop(struct hd_engine *e);

const struct hd_config *engine_config(const struct hd_engine *e);
size_t engine_n_checks(const struct hd_engine *e);
const struct hd_check *engine_check(const struct hd_engine *e, size_t i);
const struct hd_check *engine_find(const struct hd_engine *e, const char *name);
/* Bumped on every result, and on every state or configuration change, for caches. */
unsigned engine_results_version(const struct hd_engine *e);
unsigned engine_state_version(const struct hd_engine *e);
/* Bumped whenever the list of checks changes (a configuration applied): faces drop what they keep of gone checks. */
unsigned engine_checks_generation(const struct hd_engine *e);
struct event_base *engine_base(const struct hd_engine *e);

/*
 * Rise/fall hysteresis, as HAProxy counts it: applies one attempt's outcome to the counters and returns
 * the new state. The first result of a pending check decides at once.
 */
enum hd_state hd_hysteresis(enum hd_state cur, bool ok, int *consecutive_ok, int *consecutive_fail, int rise, int fall);

/*
 * The time between two attempts for a check in this state: fastinterval_ms while it changes state (up with
 * failures that fall has not decided yet, or down with successes that rise has not), downinterval_ms while down,
 * interval_ms otherwise (and while pending). As HAProxy's inter, fastinter and downinter.
 */
int hd_schedule_interval_ms(const struct hd_check_conf *conf, enum hd_state state, int consecutive_ok,
			    int consecutive_fail);

#endif
