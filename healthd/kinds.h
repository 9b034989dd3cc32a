/* kinds.h: the fixed vocabulary of check outcomes (timeout, refused, ...), their names and how each reads for a person. */
#ifndef HEALTHD_KINDS_H
#define HEALTHD_KINDS_H

/* The order is part of the metrics and tests; append only (and add the kind's row to kinds.c). */
enum hd_kind {
	HD_KIND_OK,
	HD_KIND_TIMEOUT,
	HD_KIND_REFUSED,
	HD_KIND_UNREACHABLE,
	HD_KIND_DNS,
	HD_KIND_AUTH,
	HD_KIND_PROTOCOL,
	HD_KIND_TLS,
	HD_KIND_HTTP_STATUS,
	HD_KIND_THRESHOLD,
	HD_KIND_SLOW,
	HD_KIND_ERROR,
	HD_KIND_EXPOSED, /* expect "blocked": the connection was accepted */
	HD_KIND_COUNT
};

/*
 * Where in an attempt a check failed, the same words for every type (relayd's host_error idea): with the kind,
 * what /health, the alert events and healthd_check_failures_total{kind,phase} say. Append only (and add the
 * phase's row to kinds.c). A type's own wording of a step ("INFO replication", "fsync") stays in the detail.
 */
enum hd_phase {
	HD_PHASE_NONE,      /* no failure: an attempt that passed */
	HD_PHASE_START,     /* before anything was asked of the network or the system */
	HD_PHASE_RESOLVE,   /* the name lookup */
	HD_PHASE_CONNECT,   /* the TCP connect */
	HD_PHASE_TLS,       /* the TLS handshake */
	HD_PHASE_HANDSHAKE, /* the protocol's own greeting and login (MySQL) */
	HD_PHASE_AUTH,      /* credentials sent on their own (Redis AUTH) */
	HD_PHASE_REQUEST,   /* the check's question: a query, a ping, a DNS question, a disk probe, a program */
	HD_PHASE_RESPONSE,  /* the answer, read and judged (an HTTP status, a body, a push report) */
	HD_PHASE_CLOSE,     /* the goodbye after the answer (MySQL COM_QUIT, Redis QUIT) */
	HD_PHASE_COUNT
};

/* The phase's name ("connect"); "none" for a value out of range. */
const char *hd_phase_name(enum hd_phase phase);
/* Returns the phase for a name, or -1. */
int hd_phase_from_name(const char *name);

/* How a kind reads for a person: what happens now ("traffic to %s silently dropped", %s = where), a likely
 * cause ("" when there is no useful guess), and a short past form for "was: ...". */
struct hd_kind_words {
	const char *now;
	const char *hint;
	const char *was;
};

/* The kind's name ("timeout"); "error" for a value out of range. */
const char *hd_kind_name(enum hd_kind kind);
/* Returns the kind for a name, or -1. */
int hd_kind_from_name(const char *name);
/* The kind for a failed connect()'s errno: refused, unreachable, timeout or error. */
enum hd_kind hd_kind_from_errno(int err);
/* The kind's words; a timeout on a path (target starting with '/', a disk check) reads as hung I/O. */
const struct hd_kind_words *hd_kind_words(enum hd_kind kind, const char *target);

#endif
