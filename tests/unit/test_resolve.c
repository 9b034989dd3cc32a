/* test_resolve.c: name resolution for checks against a resolver on 127.0.0.1 that never answers: literals, cancel, settle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "resolve.h"

struct fixture {
	struct event_base *base;
	struct evdns_base *dns;
	int silent_fd; /* a UDP socket that takes every query and never answers */
	struct hd_check_run run;
};

struct answer {
	int calls;
	int port;
	char error[384];
};

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct answer *a = arg;

	(void)salen;
	a->calls++;
	if (error != NULL)
		hd_strlcpy(a->error, error, sizeof(a->error));
	else
		a->port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
}

static void ignore_libevent_log(int severity, const char *msg)
{
	(void)severity;
	(void)msg;
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	char ns[64];

	fx->silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fx->silent_fd >= 0);
	assert_int_equal(bind(fx->silent_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fx->silent_fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", ntohs(sin.sin_port));
	fx->base = event_base_new();
	fx->dns = evdns_base_new(fx->base, 0);
	assert_int_equal(evdns_base_nameserver_ip_add(fx->dns, ns), 0);
	evdns_base_set_option(fx->dns, "timeout:", "30");
	fx->run.base = fx->base;
	fx->run.dns = fx->dns;
	event_set_log_callback(ignore_libevent_log);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	evdns_base_free(fx->dns, 0);
	event_base_free(fx->base);
	close(fx->silent_fd);
	event_set_log_callback(NULL);
	free(fx);
	return 0;
}

static void an_ip_literal_answers_before_start_returns(void **state)
{
	struct fixture *fx = *state;
	struct answer a = {0};

	assert_null(hd_resolve_start(&fx->run, "127.0.0.1", 3306, on_resolved, &a));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.port, 3306);
	assert_int_equal(fx->run.phase, HD_PHASE_RESOLVE);
}

static void a_cancelled_lookup_never_answers_and_settle_releases_it(void **state)
{
	struct fixture *fx = *state;
	struct answer a = {0};
	struct hd_resolve *r = hd_resolve_start(&fx->run, "healthd-unit.invalid", 80, on_resolved, &a);

	assert_non_null(r); /* the query went to the silent resolver */
	hd_resolve_cancel(r);
	/* evdns frees it only from the loop; teardown frees the bases, so a leak shows under the sanitizers */
	assert_int_equal(hd_resolve_settle(fx->base), 0);
	assert_int_equal(a.calls, 0);
}

struct inside_loop {
	struct fixture *fx;
	struct answer answer;
	int settle_inside;
};

static void cancel_and_settle_from_a_callback(evutil_socket_t fd, short what, void *arg)
{
	struct inside_loop *in = arg;
	struct hd_resolve *r = hd_resolve_start(&in->fx->run, "healthd-unit.invalid", 80, on_resolved, &in->answer);

	(void)fd;
	(void)what;
	assert_non_null(r);
	hd_resolve_cancel(r);
	in->settle_inside = hd_resolve_settle(in->fx->base); /* the loop cannot turn from inside itself */
}

static void settle_from_inside_the_loop_says_the_cancellation_is_still_in_flight(void **state)
{
	struct fixture *fx = *state;
	struct inside_loop in = {.fx = fx};
	struct timeval now = {0, 0};

	event_base_once(fx->base, -1, EV_TIMEOUT, cancel_and_settle_from_a_callback, &in, &now);
	event_base_loop(fx->base, EVLOOP_ONCE);
	assert_int_equal(in.settle_inside, -1);
	assert_int_equal(hd_resolve_settle(fx->base), 0); /* once outside, the loop delivers it */
	assert_int_equal(in.answer.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(an_ip_literal_answers_before_start_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(a_cancelled_lookup_never_answers_and_settle_releases_it, setup, teardown),
		cmocka_unit_test_setup_teardown(settle_from_inside_the_loop_says_the_cancellation_is_still_in_flight, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
