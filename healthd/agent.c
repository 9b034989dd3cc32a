/* agent.c: answers HAProxy's agent-check at once with the cached line, reads what it sent, and closes without a reset. */
#include "agent.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "config.h"
#include "listen.h"
#include "status.h"

struct hd_agent {
	struct evconnlistener *listener;
	struct hd_status *status;
	int open_connections;
	int max_connections;
	int timeout_ms;
	bool paused;
	uint64_t replies;
};

struct agent_conn {
	struct hd_agent *agent;
	struct bufferevent *bev;
	bool reply_sent;
	bool peer_closed; /* the peer shut its side before the reply was out: close once it is */
};

static void conn_close(struct agent_conn *c)
{
	struct hd_agent *a = c->agent;

	bufferevent_free(c->bev);
	free(c);
	if (--a->open_connections < a->max_connections && a->paused) {
		evconnlistener_enable(a->listener);
		a->paused = false;
	}
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
	struct agent_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = {.tv_sec = a->timeout_ms / 1000, .tv_usec = (a->timeout_ms % 1000) * 1000};
	const char *line;
	size_t len;

	(void)l;
	(void)salen;
	c->agent = a;
	c->bev = bufferevent_socket_new(evconnlistener_get_base(a->listener), fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	if (++a->open_connections >= a->max_connections && !a->paused) {
		evconnlistener_disable(a->listener);
		a->paused = true;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 4096);
	/* After leaving drain/maint each peer address gets "ready" once; never on every poll (see status.h). */
	if (status_take_ready_announcement(a->status, sa))
		bufferevent_write(c->bev, "ready ", 6);
	line = status_agent_line(a->status, &len);
	bufferevent_write(c->bev, line, len);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	a->replies++;
}

struct hd_agent *agent_start(struct event_base *base, const struct hd_config *cfg, struct hd_status *status)
{
	struct hd_agent *a = xcalloc(1, sizeof(*a));

	a->status = status;
	a->max_connections = cfg->agent.max_connections;
	a->timeout_ms = cfg->agent.timeout_ms;
	a->listener = hd_listen_tcp(base, cfg->listen.agent, "agent", on_accept, a);
	if (a->listener == NULL) {
		free(a);
		return NULL;
	}
	log_info("agent port listening on %s", cfg->listen.agent);
	return a;
}

void agent_free(struct hd_agent *a)
{
	if (a == NULL)
		return;
	evconnlistener_free(a->listener);
	free(a);
}

uint64_t agent_replies(const struct hd_agent *a)
{
	return a->replies;
}
