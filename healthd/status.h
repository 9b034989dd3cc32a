/* status.h: the answers clients get (/health JSON, /ready, the agent line), rendered from the engine's state and cached. */
#ifndef HEALTHD_STATUS_H
#define HEALTHD_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

enum hd_overall { HD_OVERALL_UP, HD_OVERALL_DEGRADED, HD_OVERALL_DOWN };
enum hd_admin_mode { HD_ADMIN_READY, HD_ADMIN_DRAIN, HD_ADMIN_MAINT };

const char *hd_overall_name(enum hd_overall o);
const char *hd_admin_name(enum hd_admin_mode m);

struct hd_admin {
	enum hd_admin_mode mode;
	char reason[256];
	int64_t since_wall_ms;
};

struct evbuffer;
struct hd_status;

struct hd_status *status_new(struct hd_engine *e);
void status_free(struct hd_status *s);

/* Overall state; *first_down is the first critical check that is down (or pending), if any. */
enum hd_overall status_overall(struct hd_status *s, const struct hd_check **first_down);
/* HTTP status code for /health and /ready/deps (the dependencies only): 200 up or degraded, 503 down. */
int status_http_code(struct hd_status *s);
/* /ready: 503 also in drain, in maint and while stopping (for load balancers that have no agent). */
int status_ready_code(struct hd_status *s);
/* "drain", "maint" or "stopping" when the admin state keeps new traffic away; NULL when ready. */
const char *status_admin_word(const struct hd_status *s);
/* Cached bodies; valid until the next result. /ready's body is the admin word and reason when not ready
 * ("drain #deploy 42"), else the dependencies' line, which is always /ready/deps's body ("down #db timeout"). */
const char *status_health_json(struct hd_status *s, size_t *len);
/* The same /health body added to out by reference (no copy per reply). Returns its length, 0 when out of memory. */
size_t status_health_add(struct hd_status *s, struct evbuffer *out);
const char *status_ready_body(struct hd_status *s, size_t *len);
const char *status_deps_body(struct hd_status *s, size_t *len);
/* /health/NAME's body added to out: the check's /health member with its "name" (copies, rendered when its result
 * arrived). Returns its length, 0 when out of memory. */
size_t status_check_body(struct hd_status *s, const struct hd_check *c, struct evbuffer *out);
/* The same for clients outside http.details_from: the status (and admin state) only. */
const char *status_health_summary_json(struct hd_status *s, size_t *len);
const char *status_ready_summary(struct hd_status *s, size_t *len);
const char *status_deps_summary(struct hd_status *s, size_t *len);
/*
 * /health in the IETF draft health check format (application/health+json): status pass/warn/fail and, with
 * full_details, "NAME:responseTime" checks (componentType, observedValue in ms, status, time, output). Rendered
 * once per result or admin change.
 */
const char *status_health_ietf_json(struct hd_status *s, bool full_details, size_t *len);
/* The agent reply line (with its "\n"), rebuilt only on a state or admin change. */
const char *status_agent_line(struct hd_status *s, size_t *len);

/* The operator's admin state (what is persisted); while stopping, the agent says drain regardless. */
const struct hd_admin *status_admin(const struct hd_status *s);
/*
 * Changes the admin state (drain, maint, ready) with a reason; returns true when it changed. since_wall_ms is
 * kept when only the reason changes. Leaving drain/maint starts the "ready" announcement.
 */
bool status_set_admin(struct hd_status *s, enum hd_admin_mode mode, const char *reason, int64_t since_wall_ms);
/* fn learns of every change of the operator's admin mode (and of the current one, at once). One listener. */
typedef void (*hd_admin_changed_fn)(enum hd_admin_mode mode, void *arg);
void status_on_admin_change(struct hd_status *s, hd_admin_changed_fn fn, void *arg);
/*
 * The "ready" announcement: for agent.ready_window_ms from now, every agent poll gets "ready". Every poll, not
 * once per peer address: no table a stranger could fill, and several load balancers behind one address (two
 * HAProxy processes, NAT) all leave drain. Only within the window, so that a maint set later through HAProxy's
 * runtime API is never undone.
 */
void status_begin_ready_announcement(struct hd_status *s);
/* True when an agent poll now is due the "ready" word. */
bool status_take_ready_announcement(struct hd_status *s);
/* The running configuration (it changes on reload). */
const struct hd_config *status_config(const struct hd_status *s);
/* Graceful stop: the agent answers drain (maint stays maint) and /health says why; not persisted. */
void status_set_stopping(struct hd_status *s, const char *reason, int64_t since_wall_ms);
bool status_stopping(const struct hd_status *s);
/* The admin state clients see: the operator's, or drain while stopping. */
const struct hd_admin *status_effective_admin(const struct hd_status *s);

/* The outcome of the last configuration load (the start counts as one) and when one last succeeded, for
 * healthd_config_last_reload_successful and _success_timestamp_seconds. */
void status_note_reload(struct hd_status *s, bool ok, int64_t wall_ms);
bool status_last_reload(const struct hd_status *s, int64_t *success_wall_ms);

/* Pure parts, for tests: the agent line for a given state. buf gets at most len bytes. */
void hd_agent_line(char *buf, size_t len, enum hd_overall overall, const char *failing_name, const char *failing_kind,
		   int degraded_weight_pct, enum hd_admin_mode admin, bool announce_ready);
/* The admin state clients see, as /health shows it: state, reason, since (and stopping). Caller deletes. */
struct cJSON *status_admin_json(const struct hd_status *s);
/* A check as a cJSON object (caller deletes). */
struct cJSON *hd_check_to_json(const struct hd_check *c);
/* As /health says them: "up", "warn", "down", "pending"; the kind ("timeout"; "pending" before a result). */
const char *hd_check_status_word(const struct hd_check *c);
const char *hd_check_kind_word(const struct hd_check *c);

#endif
