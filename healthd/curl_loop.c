/* curl_loop.c: libcurl's multi_socket interface on the libevent loop: one event per socket, one timer, done callbacks. */
#include "curl_loop.h"

#include <event2/event.h>
#include <stdlib.h>

#include "util.h"

/* 7.87.0: the oldest libcurl with every option healthd sets (Debian 12 has 7.88.1) */
#define CURL_NEEDED 0x075700

/* One running transfer; its easy handle's CURLOPT_PRIVATE points here. */
struct transfer {
	hd_curl_done_fn done;
	void *arg;
};

/* The process's one multi handle, bound to the one event base. */
static struct {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	int n_transfers;
	int n_socket_events;
} loop;

static void finish_done_transfers(void)
{
	CURLMsg *msg;
	int left;

	/* A done callback may start or cancel transfers: curl_multi_remove_handle() drops a cancelled handle's
	 * pending message, and curl_multi_info_read() is re-read on every turn, so this loop never sees a stale one. */
	while ((msg = curl_multi_info_read(loop.multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		struct transfer *t = NULL;
		hd_curl_done_fn done;
		void *arg;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(loop.multi, easy); /* invalidates msg */
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		loop.n_transfers--;
		if (t == NULL)
			continue;
		done = t->done;
		arg = t->arg;
		free(t);
		done(easy, result, arg);
	}
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
	int action = 0, running;

	(void)arg;
	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(loop.multi, fd, action, &running);
	finish_done_transfers();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(loop.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	finish_done_transfers();
}

/* CURLMOPT_SOCKETFUNCTION: keeps one persistent event per socket, in the state curl_multi_assign() holds. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct event *ev = socketp;
	short events;

	(void)easy;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (ev != NULL) {
			event_free(ev); /* safe even when ev is the event whose callback is running */
			loop.n_socket_events--;
		}
		return 0;
	}
	events = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (ev == NULL) {
		ev = event_new(loop.base, fd, events, on_socket_ready, NULL);
		if (ev == NULL)
			hd_fatal("libevent: cannot create an event for curl's socket %d", (int)fd);
		loop.n_socket_events++;
		curl_multi_assign(loop.multi, fd, ev);
	} else {
		event_del(ev);
		event_assign(ev, loop.base, fd, events, on_socket_ready, NULL);
	}
	if (events & (EV_READ | EV_WRITE))
		event_add(ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: only arms the timer; calling libcurl from here is not allowed. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct timeval tv;

	(void)multi;
	(void)userp;
	if (timeout_ms < 0) {
		evtimer_del(loop.timer);
		return 0;
	}
	tv = hd_ms_tv(timeout_ms);
	evtimer_add(loop.timer, &tv); /* 0 ms: runs on the next turn of the loop, outside curl */
	return 0;
}

static int loop_init(struct event_base *base)
{
	if (loop.multi != NULL) {
		if (loop.base != base)
			hd_fatal("curl_loop: one event base per process");
		return 0;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("libcurl: global initialisation failed");
		return -1;
	}
	if (curl_version_info(CURLVERSION_NOW)->version_num < CURL_NEEDED) /* setopt would fail quietly */
		hd_fatal("libcurl %s is older than 7.87.0, which healthd needs (CURLOPT_PROTOCOLS_STR, CURLOPT_QUICK_EXIT, "
			 "CURLOPT_CA_CACHE_TIMEOUT): install Debian 12's libcurl4",
			 curl_version_info(CURLVERSION_NOW)->version);
	loop.multi = curl_multi_init();
	if (loop.multi == NULL) {
		curl_global_cleanup();
		log_err("libcurl: cannot create the multi handle");
		return -1;
	}
	loop.base = base;
	loop.timer = evtimer_new(base, on_timer, NULL);
	if (loop.timer == NULL)
		hd_fatal("libevent: cannot create curl's timer");
	curl_multi_setopt(loop.multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(loop.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	return 0;
}

int hd_curl_start(struct event_base *base, CURL *easy, hd_curl_done_fn done, void *arg)
{
	struct transfer *t;
	CURLMcode rc;

	if (loop_init(base) < 0)
		return -1;
	t = xcalloc(1, sizeof(*t));
	t->done = done;
	t->arg = arg;
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	/* Without it, cancelling a transfer while the threaded resolver runs joins that thread: the loop would wait. */
	curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
	rc = curl_multi_add_handle(loop.multi, easy); /* only arms the timer: done cannot run before we return */
	if (rc != CURLM_OK) {
		log_err("libcurl: cannot start a transfer: %s", curl_multi_strerror(rc));
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(t);
		return -1;
	}
	loop.n_transfers++;
	return 0;
}

void hd_curl_cancel(CURL *easy)
{
	struct transfer *t = NULL;
	CURLMcode rc;

	if (easy == NULL || loop.multi == NULL)
		return;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
	if (t == NULL)
		return; /* not running: already finished or never started */
	rc = curl_multi_remove_handle(loop.multi, easy);
	if (rc != CURLM_OK) /* CURLM_RECURSIVE_API_CALL: called from inside one of curl's own callbacks */
		hd_fatal("curl_loop: cannot cancel a transfer: %s", curl_multi_strerror(rc));
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	loop.n_transfers--;
	free(t);
}

void hd_curl_shutdown(void)
{
	if (loop.multi == NULL)
		return;
	if (loop.n_transfers != 0)
		log_warn("curl_loop: %d transfers still running at shutdown", loop.n_transfers);
	curl_multi_cleanup(loop.multi); /* closes cached connections: their sockets' events are freed via REMOVE */
	loop.multi = NULL;
	event_free(loop.timer);
	loop.timer = NULL;
	loop.base = NULL;
	curl_global_cleanup();
}

char *hd_url_public(const char *url, bool with_path, char **host_port, const char **why)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	char *scheme = NULL, *host = NULL, *port = NULL, *explicit_port = NULL, *path = NULL, *shown = NULL;

	if (u == NULL)
		hd_fatal("libcurl: out of memory");
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (rc == CURLUE_OK) {
		curl_url_get(u, CURLUPART_PORT, &explicit_port, 0); /* absent: CURLUE_NO_PORT */
		curl_url_get(u, CURLUPART_PATH, &path, 0);
		shown = xasprintf("%s://%s%s%s%s", scheme, host, explicit_port ? ":" : "", explicit_port ? explicit_port : "",
				  with_path ? (path ? path : "/") : "");
		if (host_port != NULL)
			*host_port = xasprintf("%s:%s", host, port);
	} else if (why != NULL) {
		*why = curl_url_strerror(rc);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(explicit_port);
	curl_free(path);
	curl_url_cleanup(u);
	return shown;
}
