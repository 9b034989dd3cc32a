/* check.h: the contract between the engine and each check type: results, the ops table, one attempt. */
#ifndef HEALTHD_CHECK_H
#define HEALTHD_CHECK_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinds.h"
#include "util.h"

struct event_base;
struct evdns_base;
struct cfg_ctx;
struct cfg_key;
struct hd_check;
struct hd_perfdata;
struct hd_cert_info;

/* Labels added to alert events (Alertmanager labels): names as Prometheus allows them, values one line. */
struct hd_labels {
	size_t n;
	char **names;
	char **values;
};

/* The configuration of one check: common keys, plus the type's own struct in type_conf. */
struct hd_check_conf {
	char *name;
	const struct hd_check_type *type;
	bool critical;
	int interval_ms;
	int timeout_ms;
	int rise;
	int fall;
	int fastinterval_ms; /* between attempts while changing state (up but failing, down but passing) */
	int downinterval_ms; /* between attempts while down */
	char *target;      /* what it reaches, for people: "db1:3306", "/var/lib/mysql", a URL */
	struct hd_labels labels; /* added to this check's alert events, over alerts.labels */
	char *runbook_url;       /* in this check's alert events; NULL = none */
	char *fingerprint; /* canonical text of everything configured; equal fingerprints = unchanged on reload */
	void *type_conf;   /* the type's own struct, conf_size bytes, filled from its key table */
};

/* What one attempt found. */
struct hd_result {
	enum hd_kind kind;
	char detail[384];
	double latency_ms;
	char peer[64];
	char source_addr[64];
	int64_t wall_ms;
	enum hd_phase phase; /* where it failed (none when it passed) */
	bool warn; /* ok, with a warning: stays up, shown as "warn" */
};

/* One attempt of one check, from start to its single hd_check_done() or cancel. */
struct hd_check_run {
	const struct hd_check_conf *conf;
	struct event_base *base;
	struct evdns_base *dns;
	void *state;             /* the type's own per-attempt state */
	enum hd_phase phase;     /* where it is now, set by hd_run_phase(): what a failure (and a timeout) names */
	const char *step;        /* the same in the type's words ("INFO replication"), for details; NULL: the phase's name */
	char peer[64];           /* "10.0.13.1:3306" once the address is known */
	char source_addr[64];    /* the local address used, once connected: what a firewall rule sees */
	double started_ms;       /* hd_now_mono_ms_f() at start */
	int64_t deadline_ms;     /* hd_now_mono_ms() at which the engine gives up */
	struct hd_check *check;  /* engine-owned; types do not touch it */
	/* engine-owned: called by hd_check_done() with the result, by hd_check_skip() with NULL */
	void (*end)(struct hd_check_run *run, const struct hd_result *r);
	struct hd_persist *persist; /* state a type keeps across attempts (e.g. a persistent session) */
	int ended;               /* engine-owned: HD_RUN_* once done or cancelled; a second end aborts */
	const char *state_dir;   /* the state_dir (where state that must survive a restart lives); valid in start() */
	bool warn;               /* set before an OK hd_check_done(): passed, with a warning (a plugin's WARNING) */
	bool oneshot;            /* `healthd check`: this attempt is the only one, and the process writes no state */
};
enum { HD_RUN_RUNNING, HD_RUN_DONE, HD_RUN_CANCELLED };

/*
 * A check type. start() begins one attempt and must end it with exactly one hd_check_done(), now or later,
 * unless cancel() comes first. cancel() (deadline passed, or shutdown) releases everything the attempt holds
 * and reports nothing: the engine records the timeout itself, naming run->phase (its step) and run->peer.
 */
struct hd_check_type {
	const char *name;
	const char *summary;             /* one line, for the configuration reference */
	const struct cfg_key *keys;      /* the type's own keys; NULL-name terminated */
	size_t conf_size;                /* size of the struct those keys fill */
	/* Cross-key validation after the keys are read; sets conf->target. Returns 0 or -1 (error set in ctx). */
	int (*validate)(struct hd_check_conf *conf, struct cfg_ctx *ctx);
	void (*start)(struct hd_check_run *run);
	void (*cancel)(struct hd_check_run *run);
	void (*free_conf)(void *type_conf); /* may be NULL: the keys' strings are freed generically */
	/* May be NULL: releases what a check keeps across attempts when it is removed. */
	void (*free_persist)(struct hd_persist *persist);
	/* May be NULL: the latest attempt's measurements (a plugin's perfdata), for /metrics. Returns how many. */
	size_t (*perfdata)(const struct hd_persist *persist, const struct hd_perfdata **items);
	/* May be NULL: the peer certificate the attempt that just ended saw (cert.h), or NULL when none was seen;
	 * the engine copies it when it records the result (faces read hd_check_cert(), never this mid-attempt). */
	const struct hd_cert_info *(*cert)(const struct hd_persist *persist);
};

/* Every registered type, NULL-terminated (checks.c). */
extern const struct hd_check_type *const hd_check_types[];
const struct hd_check_type *hd_check_type_find(const char *name);

/* ---- attempt.c: what a check type calls during an attempt ---- */

/* The one way an attempt ends. detail is for people: what was tried, against what, what happened.
 * A second call for one attempt, or one after its cancel(), is a broken contract: healthd aborts, naming the check. */
void hd_check_done(struct hd_check_run *run, enum hd_kind kind, const char *fmt, ...) HD_PRINTF(3, 4);
/* Ends an attempt without a result: the check stays as it is (a push check waiting for its first report). */
void hd_check_skip(struct hd_check_run *run);
/* Where the attempt is now (a timeout, or a failure from here on, names it): step in the type's own words for
 * the detail ("tls handshake", "fsync"), NULL for the phase's name. */
void hd_run_phase(struct hd_check_run *run, enum hd_phase phase, const char *step);
/* The step of run->phase as a detail names it: run->step, or the phase's name. */
const char *hd_run_step(const struct hd_check_run *run);
/* Milliseconds left before the deadline (at least 1). */
int hd_run_remaining_ms(const struct hd_check_run *run);
/* The IP address of sa as text (no port): 0, or -1 for a family other than IPv4 and IPv6. */
int hd_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len);
/* Fills run->peer from a socket address. */
void hd_run_set_peer(struct hd_check_run *run, const struct sockaddr *sa);
/* Fills run->source_addr from a connected socket. */
void hd_run_set_source(struct hd_check_run *run, int fd);
/* The result of an attempt ending now with kind and the detail fmt/ap (sanitized: details quote peers). */
void hd_run_result(const struct hd_check_run *run, struct hd_result *r, enum hd_kind kind, const char *fmt,
		   va_list ap) HD_PRINTF(4, 0);

#endif
