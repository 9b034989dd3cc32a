/* test_agent.c: the agent-check reply: up, degraded weight, down with the first failing critical check, admin words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "status.h"

/*
 * HAProxy's grammar for one agent reply (see shared notes): one line ending in "\n"; words separated by spaces,
 * each a health word, an admin word, "NN%" or "maxconn:N"; "#" starts the description, only shown with a health word.
 */
static void assert_agent_grammar(const char *line)
{
	static const char *const health[] = {"up", "down", "stopped", "fail", NULL};
	static const char *const admin[] = {"ready", "drain", "maint", NULL};
	size_t len = strlen(line);
	const char *hash = strchr(line, '#');
	size_t words_len = hash ? (size_t)(hash - line) : len - 1;
	char words[256];
	int health_words = 0;

	assert_true(len >= 2);
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', len - 1));
	assert_null(strchr(line, '\r'));
	assert_true(len <= 192); /* the size status.c keeps; HAProxy keeps about 128 bytes of description */
	assert_true(words_len < sizeof(words));
	memcpy(words, line, words_len);
	words[words_len] = '\0';
	for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		bool known = false;
		for (size_t i = 0; health[i]; i++)
			if (strcmp(w, health[i]) == 0) {
				known = true;
				health_words++;
			}
		for (size_t i = 0; admin[i]; i++)
			known |= strcmp(w, admin[i]) == 0;
		if (!known && isdigit((unsigned char)w[0])) {
			char *end;
			long pct = strtol(w, &end, 10);
			known = strcmp(end, "%") == 0 && pct >= 0 && pct <= 100;
		}
		if (!known)
			fail_msg("word \"%s\" of \"%s\" is not in HAProxy's agent grammar", w, line);
	}
	assert_int_equal(health_words, 1);
	if (hash != NULL) {
		assert_true(hash > line && hash[-1] == ' ');
		assert_true(strlen(hash + 1) - 1 <= 127);
	}
}

static void expect_line(enum hd_overall overall, const char *name, const char *kind, int weight,
			enum hd_admin_mode admin, bool announce_ready, const char *want)
{
	char buf[192];

	hd_agent_line(buf, sizeof(buf), overall, name, kind, weight, admin, announce_ready);
	assert_string_equal(buf, want);
	assert_agent_grammar(buf);
}

/* ---- the pure line ---- */

static void up_degraded_and_down_lines(void **unused)
{
	(void)unused;
	expect_line(HD_OVERALL_UP, "", "", 50, HD_ADMIN_READY, false, "up 100%\n");
	expect_line(HD_OVERALL_DEGRADED, "cache", "timeout", 50, HD_ADMIN_READY, false, "up 50% #cache timeout\n");
	expect_line(HD_OVERALL_DEGRADED, "cache", "refused", 0, HD_ADMIN_READY, false, "up 0% #cache refused\n");
	expect_line(HD_OVERALL_DOWN, "mysql-main", "auth", 50, HD_ADMIN_READY, false, "down #mysql-main auth\n");
	expect_line(HD_OVERALL_DOWN, "data", "threshold", 50, HD_ADMIN_READY, false, "down #data threshold\n");
}

static void admin_words_come_first(void **unused)
{
	(void)unused;
	expect_line(HD_OVERALL_UP, "", "", 50, HD_ADMIN_DRAIN, false, "drain up 100%\n");
	expect_line(HD_OVERALL_DOWN, "db", "timeout", 50, HD_ADMIN_MAINT, false, "maint down #db timeout\n");
	expect_line(HD_OVERALL_DEGRADED, "cache", "dns", 25, HD_ADMIN_DRAIN, false, "drain up 25% #cache dns\n");
	/* "ready" only once, when leaving drain or maint; never on every poll */
	expect_line(HD_OVERALL_UP, "", "", 50, HD_ADMIN_READY, true, "ready up 100%\n");
	expect_line(HD_OVERALL_DOWN, "db", "refused", 50, HD_ADMIN_READY, true, "ready down #db refused\n");
}

static void longest_line_still_fits(void **unused)
{
	const char *name = "a23456789012345678901234567890123456789012345678901234567890123"; /* 63, the maximum */
	char buf[192], want[192];

	(void)unused;
	snprintf(want, sizeof(want), "maint down #%s http_status\n", name);
	hd_agent_line(buf, sizeof(buf), HD_OVERALL_DOWN, name, "http_status", 50, HD_ADMIN_MAINT, false);
	assert_string_equal(buf, want);
	assert_agent_grammar(buf);
}

/* ---- which check the line names, from the engine's state ---- */

static const char three_checks[] =
	"{\"agent\": {\"degraded_weight_pct\": 30}, \"checks\": [\n"
	"  {\"name\": \"cache\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 6379, \"critical\": false},\n"
	"  {\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 3306},\n"
	"  {\"name\": \"queue\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 5672}\n"
	"]}";

struct fixture {
	struct event_base *base;
	struct hd_engine *engine;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *error = NULL;
	struct hd_config *cfg = config_parse("agent.json", three_checks, strlen(three_checks), &error);

	assert_non_null(cfg);
	f->base = event_base_new(); /* the timers are armed but the loop never runs: no check starts */
	f->engine = engine_new(f->base, NULL);
	engine_apply_config(f->engine, cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	engine_free(f->engine);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void set_state(struct hd_engine *e, const char *name, enum hd_state st, enum hd_kind kind)
{
	struct hd_check *c = (struct hd_check *)(uintptr_t)engine_find(e, name); /* the test plays the engine */

	assert_non_null(c);
	c->state = st;
	c->down_kind = kind;
	c->last.kind = kind;
}

/* A fresh status per question: the caches follow the engine's version counters, which hand edits do not bump. */
static void expect_agent(struct hd_engine *e, const char *want)
{
	struct hd_status *s = status_new(e);
	size_t len;
	const char *line = status_agent_line(s, &len);

	assert_string_equal(line, want);
	assert_int_equal(len, strlen(want));
	assert_agent_grammar(line);
	status_free(s);
}

static void names_the_first_failing_critical_check_and_its_kind(void **state)
{
	struct fixture *f = *state;

	expect_agent(f->engine, "down #db pending\n"); /* nothing known yet: not ready for traffic */
	set_state(f->engine, "cache", HD_STATE_UP, HD_KIND_OK);
	set_state(f->engine, "db", HD_STATE_UP, HD_KIND_OK);
	set_state(f->engine, "queue", HD_STATE_UP, HD_KIND_OK);
	expect_agent(f->engine, "up 100%\n");
	set_state(f->engine, "queue", HD_STATE_DOWN, HD_KIND_REFUSED);
	expect_agent(f->engine, "down #queue refused\n");
	set_state(f->engine, "db", HD_STATE_DOWN, HD_KIND_TIMEOUT);
	expect_agent(f->engine, "down #db timeout\n");
	set_state(f->engine, "cache", HD_STATE_DOWN, HD_KIND_UNREACHABLE); /* non-critical: does not hide db */
	expect_agent(f->engine, "down #db timeout\n");
}

static void a_non_critical_check_only_lowers_the_weight(void **state)
{
	struct fixture *f = *state;

	set_state(f->engine, "cache", HD_STATE_DOWN, HD_KIND_TIMEOUT);
	set_state(f->engine, "db", HD_STATE_UP, HD_KIND_OK);
	set_state(f->engine, "queue", HD_STATE_UP, HD_KIND_OK);
	expect_agent(f->engine, "up 30% #cache timeout\n");
}

static void drain_holds_and_ready_is_announced_in_a_window(void **state)
{
	struct fixture *f = *state;
	struct hd_status *s;
	size_t len;

	set_state(f->engine, "cache", HD_STATE_UP, HD_KIND_OK);
	set_state(f->engine, "db", HD_STATE_UP, HD_KIND_OK);
	set_state(f->engine, "queue", HD_STATE_UP, HD_KIND_OK);
	s = status_new(f->engine);
	assert_true(status_set_admin(s, HD_ADMIN_DRAIN, "deploy", 1795000000123));
	assert_string_equal(status_agent_line(s, &len), "drain up 100%\n");
	assert_string_equal(status_agent_line(s, &len), "drain up 100%\n"); /* every poll while it holds */
	assert_true(status_set_admin(s, HD_ADMIN_READY, "", 1795000012007));
	/* agent.c puts "ready " before the shared line for a peer that is due it: to every poll in the window */
	assert_string_equal(status_agent_line(s, &len), "up 100%\n");
	assert_true(status_take_ready_announcement(s)); /* every poll within agent.ready_window_ms */
	assert_true(status_take_ready_announcement(s));
	assert_string_equal(status_agent_line(s, &len), "up 100%\n");
	status_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(up_degraded_and_down_lines),
		cmocka_unit_test(admin_words_come_first),
		cmocka_unit_test(longest_line_still_fits),
		cmocka_unit_test_setup_teardown(names_the_first_failing_critical_check_and_its_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(a_non_critical_check_only_lowers_the_weight, setup, teardown),
		cmocka_unit_test_setup_teardown(drain_holds_and_ready_is_announced_in_a_window, setup, teardown),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
