/* notify.h: systemd Type=notify: ready, reloading, stopping, status text, and watchdog pings from the loop. */
#ifndef HEALTHD_NOTIFY_H
#define HEALTHD_NOTIFY_H

#include "util.h"

struct event_base;
struct hd_notify;

/* Starts the watchdog pings when systemd asked for them (WatchdogSec=); a no-op outside systemd. */
struct hd_notify *notify_start(struct event_base *base);
void notify_free(struct hd_notify *n);
/* READY=1 with a status line (start-up, and the end of a reload). */
void notify_ready(const char *fmt, ...) HD_PRINTF(1, 2);
/* RELOADING=1 with MONOTONIC_USEC, as systemd's reload protocol wants. */
void notify_reloading(void);
void notify_stopping(const char *fmt, ...) HD_PRINTF(1, 2);
void notify_status(const char *fmt, ...) HD_PRINTF(1, 2);

#endif
