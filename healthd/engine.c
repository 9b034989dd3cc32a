/* engine.c: schedules every check on the loop, bounds each attempt by its deadline, and decides state changes. */
#include "engine.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cert.h"
#include "config.h"
#include "resolve.h"

struct subscriber {
	hd_result_fn on_result;
	hd_transition_fn on_transition;
	void *arg;
};

/* One slot of the name index: a position in the check list (0 = empty) and its name's hash. */
struct name_slot {
	uint64_t hash;
	size_t pos_plus1;
};

/* Open addressing, linear probing, at most half full: finds a check by name in O(1). */
struct name_index {
	struct name_slot *slots;
	size_t mask; /* slot count - 1 (a power of two) */
};

struct hd_engine {
	struct event_base *base;
	struct evdns_base *dns;
	struct hd_config *cfg;
	struct hd_check **checks;
	size_t n_checks;
	struct name_index by_name; /* over checks, rebuilt whenever the list changes */
	struct subscriber subs[8];
	size_t n_subs;
	unsigned results_version;
	unsigned state_version;
	unsigned checks_generation;
	uint64_t next_serial;
	bool oneshot;
	size_t oneshot_pending;
	hd_all_done_fn oneshot_done;
	void *oneshot_arg;
};

static void start_attempt(struct hd_check *c);
static void reschedule(struct hd_check *c);

const char *hd_state_name(enum hd_state s)
{
	switch (s) {
	case HD_STATE_UP:
		return "up";
	case HD_STATE_DOWN:
		return "down";
	default:
		return "pending";
	}
}

enum hd_state hd_hysteresis(enum hd_state cur, bool ok, int *consecutive_ok, int *consecutive_fail, int rise, int fall)
{
	if (ok) {
		(*consecutive_ok)++;
		*consecutive_fail = 0;
	} else {
		(*consecutive_fail)++;
		*consecutive_ok = 0;
	}
	switch (cur) {
	case HD_STATE_PENDING:
		return ok ? HD_STATE_UP : HD_STATE_DOWN;
	case HD_STATE_UP:
		return !ok && *consecutive_fail >= fall ? HD_STATE_DOWN : HD_STATE_UP;
	case HD_STATE_DOWN:
		return ok && *consecutive_ok >= rise ? HD_STATE_UP : HD_STATE_DOWN;
	}
	return cur;
}

/* ---- the one place every attempt ends ---- */

/* The attempt is over; its struct stays until the next one ends, so that a second hd_check_done() is caught. */
static void free_run(struct hd_check *c, int how)
{
	if (c->deadline)
		event_del(c->deadline);
	if (c->run->ended == HD_RUN_RUNNING)
		c->run->ended = how;
	free(c->ended_run);
	c->ended_run = c->run;
	c->run = NULL;
}

static void cancel_run(struct hd_check *c)
{
	c->run->ended = HD_RUN_CANCELLED; /* a hd_check_done() from inside cancel() is a broken contract too */
	c->conf->type->cancel(c->run);
}

static void notify_transition(struct hd_engine *e, const struct hd_transition *t)
{
	for (size_t i = 0; i < e->n_subs; i++)
		if (e->subs[i].on_transition)
			e->subs[i].on_transition(t, e->subs[i].arg);
}

const struct hd_result *hd_check_last_failure(const struct hd_check *c)
{
	static const struct hd_result none = {.kind = HD_KIND_OK};

	if (c->last.kind != HD_KIND_OK)
		return &c->last;
	return c->failure_before != NULL ? c->failure_before : &none;
}

const struct hd_result *hd_check_reason(const struct hd_check *c)
{
	return c->state == HD_STATE_DOWN ? hd_check_last_failure(c) : &c->last;
}

const struct hd_cert_info *hd_check_cert(const struct hd_check *c)
{
	return c->has_cert ? c->cert : NULL;
}

/* Keeps what the type says the attempt's handshake saw, so that faces never read a type's state mid-attempt. */
static void record_cert(struct hd_check *c)
{
	const struct hd_cert_info *seen = NULL;

	if (c->conf->type->cert != NULL && c->persist != NULL)
		seen = c->conf->type->cert(c->persist);
	c->has_cert = seen != NULL;
	if (seen == NULL)
		return;
	if (c->cert == NULL)
		c->cert = xmalloc(sizeof(*c->cert));
	*c->cert = *seen;
}

/* Counts a failure under its (kind, phase): 16 bytes for each pair a check has seen, nothing for the others. */
static void count_failure(struct hd_check *c, const struct hd_result *r)
{
	for (size_t i = 0; i < c->n_failures; i++)
		if (c->failures[i].kind == r->kind && c->failures[i].phase == r->phase) {
			c->failures[i].count++;
			return;
		}
	c->failures = xrealloc(c->failures, (c->n_failures + 1) * sizeof(*c->failures));
	c->failures[c->n_failures++] = (struct hd_failure_count){.count = 1, .kind = (uint8_t)r->kind,
								  .phase = (uint8_t)r->phase};
}

static void record_result(struct hd_check *c, const struct hd_result *r)
{
	struct hd_engine *e = c->engine;
	bool ok = r->kind == HD_KIND_OK;
	enum hd_state before = c->state;
	enum hd_kind previous_kind = before == HD_STATE_DOWN ? c->down_kind : HD_KIND_OK;
	int64_t down_since = before == HD_STATE_DOWN ? c->since_wall_ms : 0;
	enum hd_state after;

	if (!ok) {
		free(c->failure_before);
		c->failure_before = NULL;
	} else if (c->last.kind != HD_KIND_OK) {
		if (c->failure_before == NULL)
			c->failure_before = xmalloc(sizeof(*c->failure_before));
		*c->failure_before = c->last;
	}
	c->last = *r;
	record_cert(c);
	c->attempts++;
	if (!ok)
		count_failure(c, r);
	c->version++;
	e->results_version++;
	after = hd_hysteresis(before, ok, &c->consecutive_successes, &c->consecutive_failures, c->conf->rise,
			      c->conf->fall);
	if (after == HD_STATE_DOWN && before != HD_STATE_DOWN)
		c->down_kind = r->kind;
	else if (after == HD_STATE_DOWN && !ok)
		c->down_kind = r->kind; /* still down: the latest reason is the one people need */
	if (after != before) {
		c->state = after;
		c->since_wall_ms = r->wall_ms;
		c->transitions++;
		e->state_version++;
		if (before != HD_STATE_PENDING || after == HD_STATE_DOWN)
			log_info("check %s: %s -> %s (%s: %s)", c->conf->name, hd_state_name(before), hd_state_name(after),
				 hd_kind_name(r->kind), r->detail);
	} else if (after == HD_STATE_DOWN && !ok && c->down_kind != previous_kind) {
		e->state_version++; /* the reason changed (DROP became REJECT): the agent line must follow */
	}
	if (after == HD_STATE_UP && c->failure_before != NULL) {
		free(c->failure_before);
		c->failure_before = NULL;
	}
	if (!e->oneshot)
		reschedule(c);
	for (size_t i = 0; i < e->n_subs; i++)
		if (e->subs[i].on_result)
			e->subs[i].on_result(c, e->subs[i].arg);
	if (after != before || (after == HD_STATE_DOWN && previous_kind != c->down_kind)) {
		struct hd_transition t = {c, before, after, previous_kind, down_since};
		notify_transition(e, &t);
	}
	if (e->oneshot && e->oneshot_pending > 0 && --e->oneshot_pending == 0 && e->oneshot_done)
		e->oneshot_done(e, e->oneshot_arg);
}

/* The attempt ended (attempt.c's hd_check_done(), r set) or was skipped (hd_check_skip(), r NULL). */
static void on_run_end(struct hd_check_run *run, const struct hd_result *r)
{
	struct hd_check *c = run->check;
	struct hd_engine *e = c->engine;

	if (c->run != run)
		hd_fatal("check %s: an attempt ended that is not the check's current one", run->conf->name);
	c->persist = run->persist;
	free_run(c, HD_RUN_DONE);
	if (r != NULL) {
		record_result(c, r);
		return;
	}
	/* skipped: the next tick is armed already (on_tick), at the same interval */
	if (e->oneshot && e->oneshot_pending > 0 && --e->oneshot_pending == 0 && e->oneshot_done)
		e->oneshot_done(e, e->oneshot_arg);
}

/* The engine's own ends of an attempt (its deadline), after cancel(): recorded as the type's would be. */
static void finish_fmt(struct hd_check_run *run, enum hd_kind kind, const char *fmt, ...) HD_PRINTF(3, 4);
static void finish_fmt(struct hd_check_run *run, enum hd_kind kind, const char *fmt, ...)
{
	struct hd_result r;
	struct hd_check *c = run->check;
	va_list ap;

	va_start(ap, fmt);
	hd_run_result(run, &r, kind, fmt, ap);
	va_end(ap);
	c->persist = run->persist;
	free_run(c, HD_RUN_DONE);
	record_result(c, &r);
}

/* ---- scheduling ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct hd_check *c = arg;
	struct hd_check_run *run = c->run;
	const char *where = run->peer[0] ? run->peer : c->conf->target;

	(void)fd;
	(void)what;
	cancel_run(c);
	finish_fmt(run, HD_KIND_TIMEOUT, "%s %s: no answer within %d ms", hd_run_step(run), where,
		   c->conf->timeout_ms);
}

static void start_attempt(struct hd_check *c)
{
	struct hd_engine *e = c->engine;
	struct hd_check_run *run;
	struct timeval tv;

	if (c->run != NULL) /* the previous attempt overran its slot: end it first */
		on_deadline(-1, 0, c);
	run = xcalloc(1, sizeof(*run));
	run->conf = c->conf;
	run->base = e->base;
	run->dns = e->dns;
	run->check = c;
	run->end = on_run_end;
	run->persist = c->persist;
	run->state_dir = e->cfg->state_dir;
	run->oneshot = e->oneshot;
	hd_run_phase(run, HD_PHASE_START, NULL);
	run->started_ms = hd_now_mono_ms_f();
	run->deadline_ms = hd_now_mono_ms() + c->conf->timeout_ms;
	c->run = run;
	tv = hd_ms_tv(c->conf->timeout_ms);
	/* Timers count from the loop's cached time, taken before this callback ran: count from the real start. */
	event_base_update_cache_time(e->base);
	evtimer_add(c->deadline, &tv);
	c->conf->type->start(run); /* may end the attempt before it returns */
}

static void arm_tick(struct hd_check *c, int64_t delay_ms)
{
	struct timeval tv = hd_ms_tv(delay_ms);

	c->next_start_ms = hd_now_mono_ms() + delay_ms;
	evtimer_add(c->tick, &tv);
}

int hd_schedule_interval_ms(const struct hd_check_conf *conf, enum hd_state state, int consecutive_ok,
			    int consecutive_fail)
{
	int ms = conf->interval_ms;

	if (state == HD_STATE_UP && consecutive_fail > 0)
		ms = conf->fastinterval_ms; /* begun failing: let fall decide sooner */
	else if (state == HD_STATE_DOWN)
		ms = consecutive_ok > 0 ? conf->fastinterval_ms : conf->downinterval_ms;
	return ms > 0 ? ms : conf->interval_ms; /* unset (a conf built by hand): as interval_ms */
}

static int current_interval_ms(const struct hd_check *c)
{
	return hd_schedule_interval_ms(c->conf, c->state, c->consecutive_successes, c->consecutive_failures);
}

/* The next start for an attempt that started (was due) at slot_ms: fixed rate, no drift; after a stall the
 * missed slots are skipped rather than fired in a burst. */
static int64_t next_slot_ms(int64_t slot_ms, int interval_ms, int64_t now)
{
	int64_t next = slot_ms + interval_ms;

	while (next <= now)
		next += interval_ms;
	return next;
}

/* After a result: the interval may have changed (fastinterval_ms while changing state, downinterval_ms while
 * down); the next start counts from this attempt's own slot. */
static void reschedule(struct hd_check *c)
{
	int64_t now = hd_now_mono_ms();
	int64_t next = c->slot_ms + current_interval_ms(c);

	if (c->removed || c->slot_ms == 0 || next == c->next_start_ms)
		return;
	if (next < now)
		next = now;
	arm_tick(c, next - now);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hd_check *c = arg;
	int64_t now = hd_now_mono_ms();

	(void)fd;
	(void)what;
	c->slot_ms = c->next_start_ms;
	if (!c->engine->oneshot)
		arm_tick(c, next_slot_ms(c->slot_ms, current_interval_ms(c), now) - now);
	start_attempt(c);
}

static struct hd_check *check_new(struct hd_engine *e, struct hd_check_conf *conf)
{
	struct hd_check *c = xcalloc(1, sizeof(*c));

	c->engine = e;
	c->serial = ++e->next_serial;
	c->conf = conf;
	c->state = HD_STATE_PENDING;
	c->tick = evtimer_new(e->base, on_tick, c);
	c->deadline = evtimer_new(e->base, on_deadline, c);
	return c;
}

static void check_stop(struct hd_check *c)
{
	if (c->run != NULL) {
		cancel_run(c);
		c->persist = c->run->persist;
		free_run(c, HD_RUN_CANCELLED);
	}
	if (c->tick)
		event_del(c->tick);
}

static void check_free(struct hd_check *c)
{
	check_stop(c);
	if (c->persist && c->conf->type->free_persist)
		c->conf->type->free_persist(c->persist);
	if (c->tick)
		event_free(c->tick);
	if (c->deadline)
		event_free(c->deadline);
	free(c->ended_run);
	free(c->cert);
	free(c->failure_before);
	free(c->failures);
	free(c);
}

struct hd_engine *engine_new(struct event_base *base, struct evdns_base *dns)
{
	struct hd_engine *e = xcalloc(1, sizeof(*e));

	e->base = base;
	e->dns = dns;
	return e;
}

void engine_subscribe(struct hd_engine *e, hd_result_fn on_result, hd_transition_fn on_transition, void *arg)
{
	if (e->n_subs == HD_ARRAY_LEN(e->subs))
		hd_fatal("too many engine subscribers");
	e->subs[e->n_subs++] = (struct subscriber){on_result, on_transition, arg};
}

void engine_unsubscribe(struct hd_engine *e, void *arg)
{
	size_t kept = 0;

	for (size_t i = 0; i < e->n_subs; i++)
		if (e->subs[i].arg != arg)
			e->subs[kept++] = e->subs[i];
	e->n_subs = kept;
}

/* Spreads first starts over the first second (or interval) so that checks do not fire in bursts. */
static int64_t first_delay_ms(size_t index, size_t count, int interval_ms)
{
	int64_t window = interval_ms < 1000 ? interval_ms : 1000;

	return count ? (int64_t)index * window / (int64_t)count : 0;
}

/*
 * A changed check restarts (new attempt, counters from zero) but keeps what people and the load balancer see:
 * its state, since when, why it is down and its last results. Its new settings then move it through rise/fall
 * like any result would, so a reload that only edits a timeout never takes the backend out.
 */
static void carry_state(struct hd_check *to, const struct hd_check *from)
{
	to->state = from->state;
	to->since_wall_ms = from->since_wall_ms;
	to->down_kind = from->down_kind;
	to->last = from->last;
	if (from->failure_before != NULL) {
		to->failure_before = xmalloc(sizeof(*to->failure_before));
		*to->failure_before = *from->failure_before;
	}
	to->added_on_reload = from->added_on_reload;
}

static void index_build(struct name_index *ix, struct hd_check **checks, size_t n)
{
	size_t cap = 8;

	while (cap < 2 * n)
		cap *= 2;
	free(ix->slots);
	ix->slots = xcalloc(cap, sizeof(*ix->slots));
	ix->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = hd_hash_str(checks[i]->conf->name);
		size_t k = (size_t)h & ix->mask;

		while (ix->slots[k].pos_plus1 != 0)
			k = (k + 1) & ix->mask;
		ix->slots[k] = (struct name_slot){h, i + 1};
	}
}

/* The position of the check called name in checks (the list ix was built over), or -1. Entries that are NULL
 * (taken over by a reload in progress) are skipped. */
static ssize_t index_find(const struct name_index *ix, struct hd_check *const *checks, const char *name)
{
	uint64_t h;

	if (ix->slots == NULL)
		return -1;
	h = hd_hash_str(name);
	for (size_t k = (size_t)h & ix->mask; ix->slots[k].pos_plus1 != 0; k = (k + 1) & ix->mask) {
		size_t pos = ix->slots[k].pos_plus1 - 1;

		if (ix->slots[k].hash == h && checks[pos] != NULL && strcmp(checks[pos]->conf->name, name) == 0)
			return (ssize_t)pos;
	}
	return -1;
}

void engine_apply_config(struct hd_engine *e, struct hd_config *cfg)
{
	struct hd_check **old = e->checks;
	size_t n_old = e->n_checks;
	struct hd_check **fresh = xcalloc(cfg->n_checks + 1, sizeof(*fresh));
	bool reload = e->cfg != NULL;

	for (size_t i = 0; i < cfg->n_checks; i++) {
		struct hd_check_conf *conf = cfg->checks[i];
		ssize_t j = index_find(&e->by_name, old, conf->name);

		if (j >= 0 && strcmp(old[j]->conf->fingerprint, conf->fingerprint) == 0) {
			struct hd_check *keep = old[j];
			/* Unchanged: the running check keeps its own conf object (runs point into it); swap them. The
			 * old config lists its checks in the order of the old check list. */
			cfg->checks[i] = keep->conf;
			if ((size_t)j < e->cfg->n_checks && e->cfg->checks[j] == keep->conf)
				e->cfg->checks[j] = conf;
			else
				for (size_t k = 0; k < e->cfg->n_checks; k++)
					if (e->cfg->checks[k] == keep->conf)
						e->cfg->checks[k] = conf;
			fresh[i] = keep;
			old[j] = NULL;
			continue;
		}
		fresh[i] = check_new(e, conf);
		if (j >= 0) {
			carry_state(fresh[i], old[j]);
			log_info("check %s: changed, restarted (still %s until its new settings say otherwise)", conf->name,
				 hd_state_name(fresh[i]->state));
			check_free(old[j]);
			old[j] = NULL;
		} else if (reload) {
			fresh[i]->added_on_reload = true;
			log_info("check %s: added", conf->name);
		}
		/* One-shot mode starts every check at once; the daemon spreads first starts. */
		arm_tick(fresh[i], e->oneshot ? 0 : first_delay_ms(i, cfg->n_checks, conf->interval_ms));
	}
	for (size_t j = 0; j < n_old; j++)
		if (old[j] != NULL) {
			log_info("check %s: removed", old[j]->conf->name);
			check_free(old[j]);
		}
	free(old);
	config_free(e->cfg);
	e->cfg = cfg;
	e->checks = fresh;
	e->n_checks = cfg->n_checks;
	index_build(&e->by_name, e->checks, e->n_checks);
	e->checks_generation++;
	e->state_version++;
	e->results_version++;
}

void engine_run_once(struct hd_engine *e, struct hd_config *cfg, hd_all_done_fn done, void *arg)
{
	e->oneshot = true;
	e->oneshot_pending = cfg->n_checks;
	e->oneshot_done = done;
	e->oneshot_arg = arg;
	engine_apply_config(e, cfg);
	for (size_t i = 0; i < e->n_checks; i++) /* all at once: the spread of first starts is for a schedule */
		arm_tick(e->checks[i], 0);
	if (cfg->n_checks == 0 && done)
		done(e, arg);
}

void engine_stop(struct hd_engine *e)
{
	for (size_t i = 0; i < e->n_checks; i++)
		check_stop(e->checks[i]);
	if (hd_resolve_settle(e->base) < 0) /* or the cancelled name lookups stay allocated in evdns */
		log_debug("engine: cancelled name lookups still in flight at shutdown");
}

void engine_free(struct hd_engine *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n_checks; i++)
		check_free(e->checks[i]);
	free(e->checks);
	free(e->by_name.slots);
	config_free(e->cfg);
	free(e);
}

const struct hd_config *engine_config(const struct hd_engine *e) { return e->cfg; }
size_t engine_n_checks(const struct hd_engine *e) { return e->n_checks; }
const struct hd_check *engine_check(const struct hd_engine *e, size_t i) { return i < e->n_checks ? e->checks[i] : NULL; }
unsigned engine_results_version(const struct hd_engine *e) { return e->results_version; }
unsigned engine_state_version(const struct hd_engine *e) { return e->state_version; }
unsigned engine_checks_generation(const struct hd_engine *e) { return e->checks_generation; }
struct event_base *engine_base(const struct hd_engine *e) { return e->base; }

const struct hd_check *engine_find(const struct hd_engine *e, const char *name)
{
	ssize_t pos = index_find(&e->by_name, e->checks, name);

	return pos >= 0 ? e->checks[pos] : NULL;
}
