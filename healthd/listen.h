/* listen.h: binding the daemon's TCP listeners ("ADDR:PORT") with a large backlog, and the descriptors they need. */
#ifndef HEALTHD_LISTEN_H
#define HEALTHD_LISTEN_H

#include <event2/listener.h>

struct hd_config;

/* Binds addr ("ADDR:PORT", "[v6]:PORT"); logs and returns NULL on failure. what names it in logs. */
struct evconnlistener *hd_listen_tcp(struct event_base *base, const char *addr, const char *what, evconnlistener_cb cb,
				     void *arg);
/* Warns when RLIMIT_NOFILE is too low for the configured connection caps (what LimitNOFILE must allow). */
void hd_check_nofile(const struct hd_config *cfg);

#endif
