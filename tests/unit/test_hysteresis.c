/* test_hysteresis.c: rise/fall counting as HAProxy does it: pending decides at once, then fall failures / rise successes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>

#include "engine.h"

struct counters {
	enum hd_state state;
	int ok, fail;
	int rise, fall;
};

/* Feeds a sequence like "FFS" (F failure, S success) and returns the state after each step, as "DDU". */
static void feed(struct counters *c, const char *outcomes, char *states)
{
	for (size_t i = 0; outcomes[i]; i++) {
		c->state = hd_hysteresis(c->state, outcomes[i] == 'S', &c->ok, &c->fail, c->rise, c->fall);
		states[i] = c->state == HD_STATE_UP ? 'U' : c->state == HD_STATE_DOWN ? 'D' : 'P';
		states[i + 1] = '\0';
	}
}

static void pending_decides_on_the_first_result(void **unused)
{
	struct counters up = {HD_STATE_PENDING, 0, 0, 2, 3}, down = {HD_STATE_PENDING, 0, 0, 2, 3};
	char states[16];

	(void)unused;
	feed(&up, "S", states);
	assert_string_equal(states, "U");
	assert_int_equal(up.ok, 1);
	assert_int_equal(up.fail, 0);
	feed(&down, "F", states);
	assert_string_equal(states, "D");
	assert_int_equal(down.fail, 1);
	assert_int_equal(down.ok, 0);
}

static void up_needs_fall_consecutive_failures(void **unused)
{
	struct counters c = {HD_STATE_UP, 0, 0, 2, 3};
	char states[16];

	(void)unused;
	feed(&c, "FFF", states);
	assert_string_equal(states, "UUD");
	assert_int_equal(c.fail, 3);
}

static void down_needs_rise_consecutive_successes(void **unused)
{
	struct counters c = {HD_STATE_DOWN, 0, 0, 2, 3};
	char states[16];

	(void)unused;
	feed(&c, "SS", states);
	assert_string_equal(states, "DU");
	assert_int_equal(c.ok, 2);
	assert_int_equal(c.fail, 0);
}

static void an_interleaved_success_resets_the_failures(void **unused)
{
	struct counters c = {HD_STATE_UP, 0, 0, 2, 3};
	char states[16];

	(void)unused;
	feed(&c, "FFSFFSFFF", states);
	assert_string_equal(states, "UUUUUUUUD");
}

static void an_interleaved_failure_resets_the_successes(void **unused)
{
	struct counters c = {HD_STATE_DOWN, 0, 0, 3, 2};
	char states[16];

	(void)unused;
	feed(&c, "SSFSSFSSS", states);
	assert_string_equal(states, "DDDDDDDDU");
}

static void rise_and_fall_of_one_follow_every_result(void **unused)
{
	struct counters c = {HD_STATE_PENDING, 0, 0, 1, 1};
	char states[16];

	(void)unused;
	feed(&c, "SFSFFSS", states);
	assert_string_equal(states, "UDUDDUU");
}

static void failures_while_down_and_successes_while_up_change_nothing(void **unused)
{
	struct counters down = {HD_STATE_DOWN, 0, 0, 2, 2}, up = {HD_STATE_UP, 0, 0, 2, 2};
	char states[16];

	(void)unused;
	feed(&down, "FFFFF", states);
	assert_string_equal(states, "DDDDD");
	assert_int_equal(down.fail, 5); /* the count keeps growing: /health shows consecutive_failures */
	feed(&up, "SSSSS", states);
	assert_string_equal(states, "UUUUU");
	assert_int_equal(up.ok, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pending_decides_on_the_first_result),
		cmocka_unit_test(up_needs_fall_consecutive_failures),
		cmocka_unit_test(down_needs_rise_consecutive_successes),
		cmocka_unit_test(an_interleaved_success_resets_the_failures),
		cmocka_unit_test(an_interleaved_failure_resets_the_successes),
		cmocka_unit_test(rise_and_fall_of_one_follow_every_result),
		cmocka_unit_test(failures_while_down_and_successes_while_up_change_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
