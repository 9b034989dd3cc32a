/* agent.c: answers HAProxy's agent-check at once with the cached line, reads what it sent, and closes without a reset. */
#include "agent.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config.h"
#include "connlimit.h"
#include "listen.h"
#include "status.h"

struct agent_conn {
	struct hd_agent *agent;
	struct bufferevent *bev;
	struct hd_conn_slot slot;
	bool reply_sent;
	bool peer_closed; /* the peer shut its side before the reply was out: close once it is */
	TAILQ_ENTRY(agent_conn) link;
};

struct hd_agent {
	struct event_base *base;
	struct evconnlistener *listener;
	struct hd_status *status;
	struct hd_connlimit *limit;
	TAILQ_HEAD(, agent_conn) conns;
	uint64_t replies;
};

static void conn_close(struct agent_conn *c)
{
	connlimit_remove(&c->slot);
	TAILQ_REMOVE(&c->agent->conns, c, link);
	bufferevent_free(c->bev);
	free(c);
}

static void evict(struct hd_conn_slot *slot)
{
	conn_close((struct agent_conn *)((char *)slot - offsetof(struct agent_conn, slot)));
}

/* HAProxy may send a line first (agent-send); it is read and dropped, so that closing never resets. */
static void on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

/* The reply is out: half-close, then wait (bounded by the timeout) for the peer to close its side. */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct agent_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0 || c->reply_sent)
		return;
	c->reply_sent = true;
	if (c->peer_closed) {
		conn_close(c);
		return;
	}
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	connlimit_set_level(&c->slot, HD_SLOT_IDLE_FIRST); /* answered: the first to give way */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct agent_conn *c = arg;

	/* A client that sends nothing and shuts its side at once (nc -N, socat) must still get the line. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->reply_sent) {
		c->peer_closed = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	conn_close(c); /* EOF after the reply, error or timeout: the conversation is over */
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct hd_agent *a = arg;
	const struct hd_config *cfg = status_config(a->status);
	struct hd_conn_policy policy = {
		.max_total = cfg->agent.max_connections,
		.max_per_source = cfg->agent.max_connections_per_source,
		.allow = &cfg->agent.allow_from,
		.max_total_key = "agent.max_connections",
		.max_per_source_key = "agent.max_connections_per_source",
		.allow_key = "not in agent.allow_from",
	};
	struct timeval tv = hd_ms_tv(cfg->agent.timeout_ms);
	struct agent_conn *c = calloc(1, sizeof(*c));
	const char *line;
	size_t len;

	(void)l;
	(void)salen;
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->agent = a;
	c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warn("agent: out of memory for a new connection; closing it");
		evutil_closesocket(fd);
		free(c);
		return;
	}
	if (!connlimit_admit(a->limit, &policy, sa, &c->slot, evict)) {
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&a->conns, c, link);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 4096);
	line = status_agent_line(a->status, &len);
	/* After leaving drain/maint every poll within agent.ready_window_ms gets "ready" (see status.h). */
	if ((status_take_ready_announcement(a->status) && bufferevent_write(c->bev, "ready ", 6) < 0) ||
	    bufferevent_write(c->bev, line, len) < 0 || bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0) {
		log_warn("agent: out of memory for a reply; closing the connection");
		conn_close(c);
		return;
	}
	a->replies++;
}

struct hd_agent *agent_start(struct event_base *base, const struct hd_config *cfg, struct hd_status *status)
{
	struct hd_agent *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->status = status;
	TAILQ_INIT(&a->conns);
	a->listener = hd_listen_tcp(base, cfg->listen.agent, "agent", on_accept, a);
	if (a->listener == NULL) {
		free(a);
		return NULL;
	}
	a->limit = connlimit_new(base, "agent");
	connlimit_attach(a->limit, a->listener, on_accept, a);
	log_info("agent port listening on %s", cfg->listen.agent);
	return a;
}

void agent_free(struct hd_agent *a)
{
	if (a == NULL)
		return;
	while (!TAILQ_EMPTY(&a->conns))
		conn_close(TAILQ_FIRST(&a->conns));
	evconnlistener_free(a->listener);
	connlimit_free(a->limit);
	free(a);
}

uint64_t agent_replies(const struct hd_agent *a)
{
	return a->replies;
}

struct hd_connlimit *agent_connlimit(const struct hd_agent *a)
{
	return a->limit;
}
