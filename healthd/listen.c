/* listen.c: binds a TCP listener for the HTTP API or the agent port with a large backlog; checks the descriptor limit. */
#include "listen.h"

#include <errno.h>
#include <event2/util.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "config.h"
#include "util.h"

/* Descriptors beyond the two connection caps: checks in flight, the admin socket, logs, the spool. */
#define NOFILE_HEADROOM 256

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

void hd_check_nofile(const struct hd_config *cfg)
{
	struct rlimit rl;
	rlim_t needed = (rlim_t)cfg->http.max_connections + (rlim_t)cfg->agent.max_connections + NOFILE_HEADROOM;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed)
		log_warn("RLIMIT_NOFILE is %llu, below the %llu that http.max_connections + agent.max_connections + %d "
			 "need: at that point accepts pause (see LimitNOFILE in healthd.service)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)needed, NOFILE_HEADROOM);
}
