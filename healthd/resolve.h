/* resolve.h: non-blocking name resolution for checks (evdns), fresh on every attempt: a DNS change is a connectivity change. */
#ifndef HEALTHD_RESOLVE_H
#define HEALTHD_RESOLVE_H

#include <event2/bufferevent.h>
#include <sys/socket.h>

struct event_base;
struct hd_check_run;
struct hd_resolve;

/* On success sa is set and error NULL; on failure sa is NULL and error says why (kind dns). */
typedef void (*hd_resolve_fn)(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg);

/*
 * Resolves host (a name or an IP literal) for TCP to port. Sets run's phase to resolve. The callback may run
 * before this returns (IP literals); then the result is NULL. Otherwise cancel with hd_resolve_cancel().
 */
struct hd_resolve *hd_resolve_start(struct hd_check_run *run, const char *host, int port, hd_resolve_fn cb, void *arg);
/* How an attempt starts: hd_resolve_start, the pending lookup kept in *handle (a field of the attempt, arg), and
 * nothing written when the callback has already run (it may have freed the attempt). */
void hd_resolve_begin(struct hd_check_run *run, const char *host, int port, hd_resolve_fn cb, void *arg,
		      struct hd_resolve **handle);
/* Stops a pending resolution; its callback will not run. */
void hd_resolve_cancel(struct hd_resolve *r);
/*
 * At shutdown, once the loop has returned: evdns frees a cancelled request only when the loop delivers the
 * cancellation, so this gives the loop a few non-blocking turns while cancellations are still in flight.
 * Returns 0 when none is left, -1 otherwise (their memory stays allocated).
 */
int hd_resolve_settle(struct event_base *base);

/*
 * After a resolution: fills run->peer, sets run->phase to "connect" and starts a non-blocking TCP connect on a
 * new bufferevent (closed when freed) whose event callback is cb. NULL with *err set when it failed at once.
 */
struct bufferevent *hd_socket_connect(struct hd_check_run *run, const struct sockaddr *sa, socklen_t salen,
				      bufferevent_event_cb cb, void *arg, int *err);
/* Ends the attempt for a failed connect: the kind of the errno, the peer, and what a refusal means. */
void hd_connect_failed(struct hd_check_run *run, int err);

#endif
