/* notify.c: tells systemd (Type=notify) where healthd stands, and pings the watchdog from the event loop itself. */
#include "notify.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct hd_notify {
	struct event *watchdog;
};

static void send_state(const char *state, const char *fmt, va_list ap)
{
	char status[256];

	vsnprintf(status, sizeof(status), fmt, ap);
	/* sd_notify is a no-op without NOTIFY_SOCKET; a failure to reach systemd is not worth failing over. */
	if (state != NULL)
		sd_notifyf(0, "%s\nSTATUS=%s", state, status);
	else
		sd_notifyf(0, "STATUS=%s", status);
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("READY=1", fmt, ap);
	va_end(ap);
}

void notify_stopping(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("STOPPING=1", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state(NULL, fmt, ap);
	va_end(ap);
}

void notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

/* Pinged by a timer on the loop: a stuck loop (a blocking call) stops the pings and systemd restarts healthd. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

struct hd_notify *notify_start(struct event_base *base)
{
	struct hd_notify *n = xcalloc(1, sizeof(*n));
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		struct timeval tv = {.tv_sec = (time_t)(usec / 2 / 1000000), .tv_usec = (suseconds_t)(usec / 2 % 1000000)};
		n->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
		event_add(n->watchdog, &tv);
		log_info("systemd watchdog: pinging every %llu ms", (unsigned long long)(usec / 2 / 1000));
	}
	return n;
}

void notify_free(struct hd_notify *n)
{
	if (n == NULL)
		return;
	if (n->watchdog)
		event_free(n->watchdog);
	free(n);
}
