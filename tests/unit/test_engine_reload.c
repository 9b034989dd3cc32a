/* test_engine_reload.c: a reload keeps unchanged checks as they are, and never causes a transition by itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
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

#include "config.h"
#include "engine.h"
#include "status.h"

struct fixture {
	struct event_base *base;
	struct evdns_base *dns;
	struct hd_engine *engine;
	struct hd_status *status;
	int listen_fd, closed_fd;
	int up_port, closed_port;
	int transitions_seen;
	uint64_t same_attempts_before, down_attempts_before;
};

static int bound_socket(bool do_listen, int *port)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 64), 0);
	getsockname(fd, (struct sockaddr *)&in, &len);
	*port = ntohs(in.sin_port);
	return fd;
}

static void on_transition(const struct hd_transition *t, void *arg)
{
	struct fixture *f = arg;

	(void)t;
	f->transitions_seen++;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->listen_fd = bound_socket(true, &f->up_port);
	f->closed_fd = bound_socket(false, &f->closed_port); /* bound, not listening: connects are refused */
	f->base = event_base_new();
	f->dns = evdns_base_new(f->base, 0);
	f->engine = engine_new(f->base, f->dns);
	f->status = status_new(f->engine);
	engine_subscribe(f->engine, NULL, on_transition, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	status_free(f->status);
	engine_free(f->engine);
	evdns_base_free(f->dns, 0);
	event_base_free(f->base);
	close(f->listen_fd);
	close(f->closed_fd);
	free(f);
	return 0;
}

/* checks: a JSON array body where %1$d stands for the up port and %2$d for the refused port. Substituted by
 * hand, not by printf: a template that names only %2$d is invalid for a fortified printf. */
static struct hd_config *make_config(struct fixture *f, const char *defaults, const char *checks)
{
	char *tmpl = xasprintf("{\"defaults\": %s, \"checks\": [%s]}", defaults, checks);
	char text[4096], *error = NULL, *out = text;
	struct hd_config *cfg;

	for (const char *p = tmpl; *p != '\0' && out < text + sizeof(text) - 16; p++) {
		if ((strncmp(p, "%1$d", 4) == 0 || strncmp(p, "%2$d", 4) == 0)) {
			out += sprintf(out, "%d", p[1] == '1' ? f->up_port : f->closed_port);
			p += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	free(tmpl);
	cfg = config_parse("test.json", text, strlen(text), &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	return cfg;
}

/* Runs the loop until pred holds (bounded: 5 s). */
static void run_until(struct fixture *f, bool (*pred)(struct fixture *f))
{
	struct timeval slice = {0, 20 * 1000};

	for (int i = 0; i < 250 && !pred(f); i++) {
		event_base_loopexit(f->base, &slice);
		event_base_dispatch(f->base);
	}
	assert_true(pred(f));
}

static bool all_have_three_results(struct fixture *f)
{
	for (size_t i = 0; i < engine_n_checks(f->engine); i++)
		if (engine_check(f->engine, i)->attempts < 3)
			return false;
	return true;
}

static bool fresh_and_same_ran(struct fixture *f)
{
	return engine_find(f->engine, "fresh")->attempts >= 1 &&
	       engine_find(f->engine, "same")->attempts > f->same_attempts_before &&
	       engine_find(f->engine, "down")->attempts > f->down_attempts_before;
}

static const char *const defaults = "{\"interval_ms\": 100, \"timeout_ms\": 50, \"rise\": 2, \"fall\": 2}";
static const char *const checks_a =
	"{\"name\": \"same\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d},"
	"{\"name\": \"down\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %2$d, \"critical\": false},"
	"{\"name\": \"edit\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d},"
	"{\"name\": \"gone\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d}";

static void test_reload_keeps_unchanged_restarts_changed(void **state)
{
	struct fixture *f = *state;
	const struct hd_check *same, *down, *edit;
	uint64_t same_attempts, down_attempts;
	int64_t same_since, edit_since;
	int down_failures;
	const struct hd_check *first;

	engine_apply_config(f->engine, make_config(f, defaults, checks_a));
	run_until(f, all_have_three_results);
	same = engine_find(f->engine, "same");
	down = engine_find(f->engine, "down");
	edit = engine_find(f->engine, "edit");
	assert_int_equal(same->state, HD_STATE_UP);
	assert_int_equal(down->state, HD_STATE_DOWN);
	assert_int_equal(edit->state, HD_STATE_UP);
	same_attempts = same->attempts;
	same_since = same->since_wall_ms;
	down_attempts = down->attempts;
	down_failures = down->consecutive_failures;
	edit_since = edit->since_wall_ms;
	f->transitions_seen = 0;

	engine_apply_config(f->engine, make_config(f, defaults,
		"{\"name\": \"fresh\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %2$d},"
		"{\"name\": \"edit\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d, \"timeout_ms\": 60},"
		"{\"name\": \"down\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %2$d, \"critical\": false},"
		"{\"name\": \"same\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d}"));

	assert_int_equal(engine_n_checks(f->engine), 4);
	assert_null(engine_find(f->engine, "gone"));
	/* unchanged (and moved in the list): the very same object, state and counters */
	assert_ptr_equal(engine_find(f->engine, "same"), same);
	assert_true(same->attempts == same_attempts && same->since_wall_ms == same_since);
	assert_int_equal(same->state, HD_STATE_UP);
	assert_ptr_equal(engine_find(f->engine, "down"), down);
	assert_true(down->attempts == down_attempts);
	assert_int_equal(down->consecutive_failures, down_failures);
	assert_int_equal(engine_config(f->engine)->checks[3], same->conf);
	/* changed: restarted, but still up, since unchanged, until rise/fall say otherwise */
	edit = engine_find(f->engine, "edit");
	assert_int_equal(edit->conf->timeout_ms, 60);
	assert_int_equal(edit->state, HD_STATE_UP);
	assert_true(edit->since_wall_ms == edit_since);
	assert_true(edit->attempts == 0);
	/* new: pending, and not counted until its first result */
	assert_int_equal(engine_find(f->engine, "fresh")->state, HD_STATE_PENDING);
	assert_true(engine_find(f->engine, "fresh")->added_on_reload);
	assert_int_equal(status_overall(f->status, &first), HD_OVERALL_DEGRADED);
	assert_string_equal(first->conf->name, "down");
	assert_int_equal(f->transitions_seen, 0);

	f->same_attempts_before = same_attempts;
	f->down_attempts_before = down_attempts;
	run_until(f, fresh_and_same_ran);
	/* the new critical check's first result decides at once, like any first result */
	assert_int_equal(engine_find(f->engine, "fresh")->state, HD_STATE_DOWN);
	assert_int_equal(status_overall(f->status, &first), HD_OVERALL_DOWN);
	assert_int_equal(f->transitions_seen, 1);
	assert_true(down->consecutive_failures > down_failures);
	assert_int_equal(engine_find(f->engine, "edit")->state, HD_STATE_UP);
}

static void test_reload_changed_down_check_stays_down(void **state)
{
	struct fixture *f = *state;
	static const char *const before = "{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %2$d}";
	/* pointed at a working port: it needs rise (2) successes before it is up again */
	static const char *const after = "{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": %1$d}";
	const struct hd_check *db;

	engine_apply_config(f->engine, make_config(f, defaults, before));
	run_until(f, all_have_three_results);
	assert_int_equal(engine_find(f->engine, "db")->state, HD_STATE_DOWN);
	f->transitions_seen = 0;
	engine_apply_config(f->engine, make_config(f, defaults, after));
	db = engine_find(f->engine, "db");
	assert_int_equal(db->state, HD_STATE_DOWN);
	assert_int_equal(db->down_kind, HD_KIND_REFUSED);
	assert_int_equal(f->transitions_seen, 0);
	run_until(f, all_have_three_results);
	assert_int_equal(db->state, HD_STATE_UP);
	assert_int_equal(f->transitions_seen, 1);
	assert_true(db->transitions == 1);
}

static void test_reload_same_file_changes_nothing(void **state)
{
	struct fixture *f = *state;
	const struct hd_check *before[4];
	uint64_t attempts[4];

	engine_apply_config(f->engine, make_config(f, defaults, checks_a));
	run_until(f, all_have_three_results);
	for (size_t i = 0; i < 4; i++) {
		before[i] = engine_check(f->engine, i);
		attempts[i] = before[i]->attempts;
	}
	f->transitions_seen = 0;
	engine_apply_config(f->engine, make_config(f, defaults, checks_a));
	for (size_t i = 0; i < 4; i++) {
		assert_ptr_equal(engine_check(f->engine, i), before[i]);
		assert_true(before[i]->attempts == attempts[i]);
	}
	/* the defaults change every check that inherits them: all restart, none changes state */
	engine_apply_config(f->engine, make_config(f, "{\"interval_ms\": 150, \"timeout_ms\": 50, \"rise\": 2, \"fall\": 2}",
						   checks_a));
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(engine_check(f->engine, i)->conf->interval_ms, 150);
		assert_int_equal(engine_check(f->engine, i)->state, i == 1 ? HD_STATE_DOWN : HD_STATE_UP);
		assert_true(engine_check(f->engine, i)->attempts == 0);
	}
	run_until(f, all_have_three_results);
	assert_int_equal(f->transitions_seen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reload_keeps_unchanged_restarts_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_changed_down_check_stays_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_same_file_changes_nothing, setup, teardown),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
