/* attempt.c: what a check type calls during one attempt: its end, its peer and source address, its time left. */
#include "check.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

void hd_run_result(const struct hd_check_run *run, struct hd_result *r, enum hd_kind kind, const char *fmt, va_list ap)
{
	*r = (struct hd_result){.kind = kind};
	r->latency_ms = hd_now_mono_ms_f() - run->started_ms;
	r->wall_ms = hd_now_wall_ms();
	/*
	 * Details quote what peers sent (server errors, HTTP bodies, plugin output): this is where they enter the
	 * shared state, so control characters and invalid UTF-8 are escaped here, once, before any log, JSON body,
	 * agent line or alert sees them. Already-sanitized text passes unchanged (backslashes are kept as they are).
	 */
	hd_vformat_sanitized(r->detail, sizeof(r->detail), fmt, ap);
	hd_strlcpy(r->peer, run->peer, sizeof(r->peer));
	hd_strlcpy(r->source_addr, run->source_addr, sizeof(r->source_addr));
	r->warn = kind == HD_KIND_OK && run->warn;
	r->phase = kind == HD_KIND_OK ? HD_PHASE_NONE : run->phase;
}

void hd_run_phase(struct hd_check_run *run, enum hd_phase phase, const char *step)
{
	run->phase = phase;
	run->step = step;
}

const char *hd_run_step(const struct hd_check_run *run)
{
	return run->step != NULL ? run->step : hd_phase_name(run->phase);
}

void hd_check_done(struct hd_check_run *run, enum hd_kind kind, const char *fmt, ...)
{
	struct hd_result r;
	va_list ap;

	if (run->ended != HD_RUN_RUNNING)
		hd_fatal("check %s: hd_check_done(%s) for an attempt that %s: a check type must end each attempt exactly "
			 "once, and never after cancel()", run->conf->name, hd_kind_name(kind),
			 run->ended == HD_RUN_CANCELLED ? "was cancelled" : "had already ended");
	va_start(ap, fmt);
	hd_run_result(run, &r, kind, fmt, ap);
	va_end(ap);
	run->end(run, &r);
}

void hd_check_skip(struct hd_check_run *run)
{
	if (run->ended != HD_RUN_RUNNING)
		hd_fatal("check %s: hd_check_skip() for an attempt that had already ended", run->conf->name);
	run->end(run, NULL);
}

int hd_run_remaining_ms(const struct hd_check_run *run)
{
	int64_t left = run->deadline_ms - hd_now_mono_ms();

	return left < 1 ? 1 : (int)left;
}

int hd_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *addr;

	if (sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else
		return -1;
	return inet_ntop(sa->sa_family, addr, buf, (socklen_t)len) ? 0 : -1;
}

void hd_run_set_peer(struct hd_check_run *run, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];

	if (hd_sockaddr_ip(sa, ip, sizeof(ip)) < 0)
		return;
	if (sa->sa_family == AF_INET6)
		snprintf(run->peer, sizeof(run->peer), "[%s]:%d", ip,
			 ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port));
	else
		snprintf(run->peer, sizeof(run->peer), "%s:%d", ip,
			 ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port));
}

void hd_run_set_source(struct hd_check_run *run, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		hd_sockaddr_ip((struct sockaddr *)&ss, run->source_addr, sizeof(run->source_addr));
}
