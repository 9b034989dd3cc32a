/* listen.c: binds a TCP listener for the HTTP API or the agent port (evhttp_bind_socket's backlog is only 128). */
#include "listen.h"

#include <errno.h>
#include <event2/util.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

struct evconnlistener *hd_listen_tcp(struct event_base *base, const char *addr, const char *what, evconnlistener_cb cb,
				     void *arg)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct evconnlistener *l;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) < 0) {
		log_err("%s: cannot listen on \"%s\": expected an IP address and a port", what, addr);
		return NULL;
	}
	l = evconnlistener_new_bind(base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				    1024, (struct sockaddr *)&ss, sslen);
	if (l == NULL)
		log_err("%s: cannot listen on %s: %s", what, addr, strerror(errno));
	return l;
}
