/* test_admin.c: the admin state as the agent tells it: ready once per peer, drain while stopping, ctl requests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "status.h"

struct fixture {
	struct event_base *base;
	struct hd_engine *engine;
	struct hd_status *status;
};

static int setup(void **state)
{
	static const char text[] = "{\"agent\": {\"ready_window_ms\": 1000}, \"checks\": []}";
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;
	struct hd_config *cfg = config_parse("test.json", text, strlen(text), &error);

	assert_non_null(cfg);
	f->base = event_base_new();
	f->engine = engine_new(f->base, NULL);
	engine_apply_config(f->engine, cfg);
	f->status = status_new(f->engine);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	status_free(f->status);
	engine_free(f->engine);
	event_base_free(f->base);
	free(f);
	return 0;
}


static const char *agent_line(struct fixture *f)
{
	size_t len;

	return status_agent_line(f->status, &len);
}

static void test_admin_words_in_agent_line(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(agent_line(f), "up 100%\n");
	assert_false(status_take_ready_announcement(f->status)); /* never drained: no "ready" */
	assert_true(status_set_admin(f->status, HD_ADMIN_DRAIN, "deploy", 1000));
	assert_string_equal(agent_line(f), "drain up 100%\n");
	assert_false(status_take_ready_announcement(f->status));
	assert_true(status_set_admin(f->status, HD_ADMIN_MAINT, "disk swap", 2000));
	assert_string_equal(agent_line(f), "maint up 100%\n");
	assert_true(status_set_admin(f->status, HD_ADMIN_READY, "", 3000));
	assert_string_equal(agent_line(f), "up 100%\n"); /* the shared line never carries "ready" itself */
}

static void test_ready_to_every_poll_within_the_window(void **state)
{
	struct fixture *f = *state;

	status_set_admin(f->status, HD_ADMIN_DRAIN, "deploy", 1000);
	status_set_admin(f->status, HD_ADMIN_READY, "", 2000);
	/* every poll, whoever polls (two HAProxy processes behind one address included): no table to fill */
	for (int i = 0; i < 5000; i++)
		assert_true(status_take_ready_announcement(f->status));
	/* draining again ends the announcement; leaving again starts a fresh one */
	status_set_admin(f->status, HD_ADMIN_DRAIN, "again", 3000);
	assert_false(status_take_ready_announcement(f->status));
	status_set_admin(f->status, HD_ADMIN_READY, "", 4000);
	assert_true(status_take_ready_announcement(f->status));
	/* an explicit re-announcement (healthd ctl ready while ready) starts the window again */
	status_begin_ready_announcement(f->status);
	assert_true(status_take_ready_announcement(f->status));
}

static void test_ready_window_ends(void **state)
{
	struct fixture *f = *state;

	status_set_admin(f->status, HD_ADMIN_MAINT, "x", 1000);
	status_set_admin(f->status, HD_ADMIN_READY, "", 2000);
	assert_true(status_take_ready_announcement(f->status));
	usleep(1100 * 1000); /* agent.ready_window_ms is 1000 here */
	assert_false(status_take_ready_announcement(f->status));
}

static void test_stopping_says_drain(void **state)
{
	struct fixture *f = *state;

	status_set_admin(f->status, HD_ADMIN_DRAIN, "x", 1000);
	status_set_admin(f->status, HD_ADMIN_READY, "", 2000);
	status_set_stopping(f->status, "healthd is stopping", 3000);
	assert_true(status_stopping(f->status));
	assert_string_equal(agent_line(f), "drain up 100%\n");
	assert_false(status_take_ready_announcement(f->status)); /* never "ready" while stopping */
	assert_int_equal(status_admin(f->status)->mode, HD_ADMIN_READY);  /* what is persisted is unchanged */
	assert_int_equal(status_effective_admin(f->status)->mode, HD_ADMIN_DRAIN);
	assert_string_equal(status_effective_admin(f->status)->reason, "healthd is stopping");
	status_set_admin(f->status, HD_ADMIN_MAINT, "m", 4000);
	assert_string_equal(agent_line(f), "maint up 100%\n"); /* maint stays maint while stopping */
}

static void test_since_kept_when_only_the_reason_changes(void **state)
{
	struct fixture *f = *state;

	assert_true(status_set_admin(f->status, HD_ADMIN_DRAIN, "deploy 1", 1000));
	assert_false(status_set_admin(f->status, HD_ADMIN_DRAIN, "deploy 1", 2000));
	assert_true(status_set_admin(f->status, HD_ADMIN_DRAIN, "deploy 1, slow", 3000));
	assert_true(status_admin(f->status)->since_wall_ms == 1000);
	assert_string_equal(status_admin(f->status)->reason, "deploy 1, slow");
	assert_true(status_set_admin(f->status, HD_ADMIN_MAINT, "deploy 1, slow", 4000));
	assert_true(status_admin(f->status)->since_wall_ms == 4000);
}

static void test_parse_requests(void **unused)
{
	enum hd_control_cmd cmd;
	char reason[16];
	const char *error;

	(void)unused;
	assert_int_equal(control_parse_request("drain", &cmd, reason, sizeof(reason), &error), 0);
	assert_int_equal(cmd, HD_CTL_DRAIN);
	assert_string_equal(reason, "");
	assert_int_equal(control_parse_request("MAINT  disk\tswap  ", &cmd, reason, sizeof(reason), &error), 0);
	assert_int_equal(cmd, HD_CTL_MAINT);
	assert_string_equal(reason, "disk swap");
	assert_int_equal(control_parse_request("ready", &cmd, reason, sizeof(reason), &error), 0);
	assert_int_equal(cmd, HD_CTL_READY);
	assert_int_equal(control_parse_request("status", &cmd, reason, sizeof(reason), &error), 0);
	assert_int_equal(cmd, HD_CTL_STATUS);
	assert_int_equal(control_parse_request("reload", &cmd, reason, sizeof(reason), &error), 0);
	assert_int_equal(cmd, HD_CTL_RELOAD);
	/* control characters never reach the log or /health; long reasons are cut on a character boundary */
	assert_int_equal(control_parse_request("drain a\x1b[31mb", &cmd, reason, sizeof(reason), &error), 0);
	assert_string_equal(reason, "a [31mb");
	assert_int_equal(control_parse_request("drain 0123456789abcdé", &cmd, reason, sizeof(reason), &error), 0);
	assert_string_equal(reason, "0123456789abcd");
	assert_int_equal(control_parse_request("drain 0123456789abcdéf", &cmd, reason, sizeof(reason), &error), 0);
	assert_string_equal(reason, "0123456789abcd");
	assert_int_equal(control_parse_request("drain 0123456789abcéf", &cmd, reason, sizeof(reason), &error), 0);
	assert_string_equal(reason, "0123456789abcé");
	assert_int_equal(control_parse_request("", &cmd, reason, sizeof(reason), &error), -1);
	assert_int_equal(control_parse_request("drained", &cmd, reason, sizeof(reason), &error), -1);
	assert_int_equal(control_parse_request("dra", &cmd, reason, sizeof(reason), &error), -1);
	assert_int_equal(control_parse_request("status now", &cmd, reason, sizeof(reason), &error), -1);
	assert_int_equal(control_parse_request("reload x", &cmd, reason, sizeof(reason), &error), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_admin_words_in_agent_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready_to_every_poll_within_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready_window_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopping_says_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_since_kept_when_only_the_reason_changes, setup, teardown),
		cmocka_unit_test(test_parse_requests),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
