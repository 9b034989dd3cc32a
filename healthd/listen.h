/* listen.h: binding the daemon's TCP listeners ("ADDR:PORT") with a large backlog. */
#ifndef HEALTHD_LISTEN_H
#define HEALTHD_LISTEN_H

#include <event2/listener.h>

/* Binds addr ("ADDR:PORT", "[v6]:PORT"); logs and returns NULL on failure. what names it in logs. */
struct evconnlistener *hd_listen_tcp(struct event_base *base, const char *addr, const char *what, evconnlistener_cb cb,
				     void *arg);

#endif
