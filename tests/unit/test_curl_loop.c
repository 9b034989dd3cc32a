/* test_curl_loop.c: curl_loop against an evhttp server and a silent listener on the same loop: done, cancel, re-entrancy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "curl_loop.h"
#include "util.h"

struct fixture {
	struct event_base *base;
	struct evhttp *http;
	int http_port;
	int silent_fd; /* listens, never accepts: a connect succeeds, no answer ever comes */
	int silent_port;
	struct event *guard; /* ends the loop if a test hangs */
};

struct xfer {
	struct fixture *fx;
	CURL *easy;
	int n_done;
	CURLcode result;
	long status;
	struct xfer *cancel_on_done; /* re-entrancy: cancel this one from the done callback */
	struct xfer *start_on_done;  /* re-entrancy: start this one from the done callback */
	int *outstanding;
};

static void on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_reply(req, 200, "OK", NULL);
}

static int bound_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval ten_s = {10, 0};

	fx->base = event_base_new();
	fx->http = evhttp_new(fx->base);
	evhttp_set_gencb(fx->http, on_request, NULL);
	bound = evhttp_bind_socket_with_handle(fx->http, "127.0.0.1", 0);
	assert_non_null(bound);
	fx->http_port = bound_port(evhttp_bound_socket_get_fd(bound));
	fx->silent_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fx->silent_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fx->silent_fd, 64), 0);
	fx->silent_port = bound_port(fx->silent_fd);
	fx->guard = evtimer_new(fx->base, on_guard, fx->base);
	evtimer_add(fx->guard, &ten_s);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	hd_curl_shutdown();
	event_free(fx->guard);
	evhttp_free(fx->http);
	close(fx->silent_fd);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
	struct xfer *x = arg;

	assert_ptr_equal(easy, x->easy);
	x->n_done++;
	x->result = result;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->cancel_on_done != NULL)
		hd_curl_cancel(x->cancel_on_done->easy);
	if (x->start_on_done != NULL)
		assert_int_equal(hd_curl_start(x->fx->base, x->start_on_done->easy, on_done, x->start_on_done), 0);
	if (x->outstanding && --*x->outstanding == 0)
		event_base_loopbreak(x->fx->base);
}

static void xfer_init(struct xfer *x, struct fixture *fx, const char *url)
{
	memset(x, 0, sizeof(*x));
	x->fx = fx;
	x->easy = curl_easy_init();
	assert_non_null(x->easy);
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 5000L);
}

static void xfer_url(char *buf, size_t len, int port)
{
	snprintf(buf, len, "http://127.0.0.1:%d/health", port);
}

static void test_many_transfers_finish(void **state)
{
	enum { N = 50 };
	struct fixture *fx = *state;
	struct xfer x[N];
	int outstanding = N;
	char url[64];

	xfer_url(url, sizeof(url), fx->http_port);
	for (int i = 0; i < N; i++) {
		xfer_init(&x[i], fx, url);
		x[i].outstanding = &outstanding;
		assert_int_equal(hd_curl_start(fx->base, x[i].easy, on_done, &x[i]), 0);
		assert_int_equal(x[i].n_done, 0); /* never called before hd_curl_start returns */
	}
	event_base_dispatch(fx->base);
	assert_int_equal(outstanding, 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(x[i].n_done, 1);
		assert_int_equal(x[i].result, CURLE_OK);
		assert_int_equal(x[i].status, 200);
		curl_easy_cleanup(x[i].easy);
	}
}

static void test_cancel_running_transfer(void **state)
{
	struct fixture *fx = *state;
	struct xfer hung, ok;
	int outstanding = 1;
	char url[64];

	xfer_url(url, sizeof(url), fx->silent_port);
	xfer_init(&hung, fx, url);
	xfer_url(url, sizeof(url), fx->http_port);
	xfer_init(&ok, fx, url);
	ok.outstanding = &outstanding;
	assert_int_equal(hd_curl_start(fx->base, hung.easy, on_done, &hung), 0);
	assert_int_equal(hd_curl_start(fx->base, ok.easy, on_done, &ok), 0);
	event_base_dispatch(fx->base); /* until ok is done; hung is connected and waiting */
	assert_int_equal(ok.n_done, 1);
	hd_curl_cancel(hung.easy);
	hd_curl_cancel(hung.easy); /* a second cancel is harmless */
	hd_curl_cancel(ok.easy);   /* so is cancelling a finished one */
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_int_equal(hung.n_done, 0);
	/* The cancelled handle can run again. */
	xfer_url(url, sizeof(url), fx->http_port);
	curl_easy_setopt(hung.easy, CURLOPT_URL, url);
	hung.outstanding = &outstanding;
	outstanding = 1;
	assert_int_equal(hd_curl_start(fx->base, hung.easy, on_done, &hung), 0);
	event_base_dispatch(fx->base);
	assert_int_equal(hung.n_done, 1);
	assert_int_equal(hung.status, 200);
	curl_easy_cleanup(hung.easy);
	curl_easy_cleanup(ok.easy);
}

/* Both fail in the same curl_multi_socket_action() call (unsupported scheme), so both DONE messages are queued when
 * the first done callback cancels the second: the second must never be reported. */
static void test_done_cancels_a_queued_transfer(void **state)
{
	struct fixture *fx = *state;
	struct xfer a, b, c;
	int outstanding = 2;
	char url[64];

	xfer_init(&a, fx, "nosuchscheme://127.0.0.1/");
	xfer_init(&b, fx, "nosuchscheme://127.0.0.1/");
	xfer_url(url, sizeof(url), fx->http_port);
	xfer_init(&c, fx, url);
	a.cancel_on_done = &b;
	b.cancel_on_done = &a;
	a.start_on_done = &c;
	b.start_on_done = &c;
	a.outstanding = b.outstanding = c.outstanding = &outstanding;
	assert_int_equal(hd_curl_start(fx->base, a.easy, on_done, &a), 0);
	assert_int_equal(hd_curl_start(fx->base, b.easy, on_done, &b), 0);
	event_base_dispatch(fx->base);
	assert_int_equal(a.n_done + b.n_done, 1);
	assert_int_equal(a.n_done ? a.result : b.result, CURLE_UNSUPPORTED_PROTOCOL);
	assert_int_equal(c.n_done, 1);
	assert_int_equal(c.status, 200);
	curl_easy_cleanup(a.easy);
	curl_easy_cleanup(b.easy);
	curl_easy_cleanup(c.easy);
}

/* A done callback that starts the next transfer on its own handle (a retry). */
static void on_done_retry(CURL *easy, CURLcode result, void *arg)
{
	struct xfer *x = arg;

	x->n_done++;
	x->result = result;
	if (x->n_done < 3)
		assert_int_equal(hd_curl_start(x->fx->base, easy, on_done_retry, x), 0);
	else
		event_base_loopbreak(x->fx->base);
}

static void test_done_restarts_its_own_handle(void **state)
{
	struct fixture *fx = *state;
	struct xfer x;
	char url[64];

	xfer_url(url, sizeof(url), fx->http_port);
	xfer_init(&x, fx, url);
	assert_int_equal(hd_curl_start(fx->base, x.easy, on_done_retry, &x), 0);
	event_base_dispatch(fx->base);
	assert_int_equal(x.n_done, 3);
	assert_int_equal(x.result, CURLE_OK);
	curl_easy_cleanup(x.easy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_transfers_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_running_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_cancels_a_queued_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_restarts_its_own_handle, setup, teardown),
	};

	hd_log_init(false, HD_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
