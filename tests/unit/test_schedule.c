/* test_schedule.c: the time between attempts (interval, fastinterval while changing state, downinterval while down)
 * and the detection time it gives, replayed on a simulated clock with the engine's own hysteresis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "engine.h"

static struct hd_check_conf conf_of(int interval, int fast, int down, int timeout, int rise, int fall)
{
	return (struct hd_check_conf){.interval_ms = interval, .fastinterval_ms = fast, .downinterval_ms = down,
				      .timeout_ms = timeout, .rise = rise, .fall = fall};
}

static void each_state_has_its_interval(void **unused)
{
	struct hd_check_conf c = conf_of(2000, 500, 5000, 300, 2, 3);

	(void)unused;
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_PENDING, 0, 0), 2000);
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_UP, 5, 0), 2000);
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_UP, 0, 1), 500); /* begun failing */
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_UP, 0, 2), 500);
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_DOWN, 0, 3), 5000); /* down, not rising */
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_DOWN, 1, 0), 500);  /* rising */
}

static void unset_intervals_fall_back_to_interval(void **unused)
{
	struct hd_check_conf c = conf_of(1000, 0, 0, 300, 2, 3);

	(void)unused;
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_UP, 0, 1), 1000);
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_DOWN, 0, 3), 1000);
	assert_int_equal(hd_schedule_interval_ms(&c, HD_STATE_DOWN, 1, 0), 1000);
}

/*
 * A simulated check: attempts due every slot as the engine schedules them (the next start counts from the
 * latest attempt's slot with the interval of the state its result left), the dependency broken from
 * break_ms to repair_ms (an attempt that starts then fails at its timeout, like a DROP; else it passes at once).
 * Returns when the check went down (goal DOWN) or up again (goal UP), as a time on the simulated clock.
 */
static long simulate(const struct hd_check_conf *c, long break_ms, long repair_ms, enum hd_state goal, int *attempts)
{
	enum hd_state state = HD_STATE_UP;
	int ok = 5, fail = 0;
	long slot = 0;

	*attempts = 0;
	for (int i = 0; i < 1000; i++) {
		bool pass = slot < break_ms || slot >= repair_ms;
		long ended = slot + (pass ? 0 : c->timeout_ms);
		enum hd_state before = state;

		(*attempts)++;
		state = hd_hysteresis(state, pass, &ok, &fail, c->rise, c->fall);
		if (state == goal && before != goal)
			return ended;
		slot += hd_schedule_interval_ms(c, state, ok, fail);
	}
	fail_msg("no transition to %s within 1000 attempts", hd_state_name(goal));
	return -1;
}

static void a_drop_is_found_in_interval_plus_fall_minus_one_fastintervals(void **unused)
{
	/* the demo's settings: interval 1 s, timeout 500 ms, fall 3, fastinterval 500 ms */
	struct hd_check_conf fast = conf_of(1000, 500, 1000, 500, 2, 3), plain = conf_of(1000, 1000, 1000, 500, 2, 3);
	int n_fast, n_plain;
	/* the DROP arrives just after an attempt started (the worst case): the next slot is a whole interval away */
	long t_fast = simulate(&fast, 1, 1000000, HD_STATE_DOWN, &n_fast) - 1;
	long t_plain = simulate(&plain, 1, 1000000, HD_STATE_DOWN, &n_plain) - 1;

	(void)unused;
	printf("DROP found in %ld ms with fastinterval 500 ms, %ld ms without (interval 1000, timeout 500, fall 3)\n",
	       t_fast, t_plain);
	assert_int_equal(t_fast, 1000 + 2 * 500 + 500 - 1);  /* interval + (fall - 1) x fastinterval + timeout */
	assert_int_equal(t_plain, 3 * 1000 + 500 - 1);       /* fall x interval + timeout */
	assert_int_equal(n_fast, n_plain); /* the same attempts, only sooner */
}

static void no_extra_attempts_while_everything_is_up(void **unused)
{
	struct hd_check_conf c = conf_of(1000, 100, 1000, 50, 2, 3);
	int n;

	(void)unused;
	/* broken at 60 s: before that, exactly one attempt per interval (slots 0, 1000, ..., 60000 fails) */
	simulate(&c, 60000, 1000000, HD_STATE_DOWN, &n);
	assert_int_equal(n, 61 + 2);
}

static void down_uses_downinterval_and_rising_uses_fastinterval(void **unused)
{
	struct hd_check_conf c = conf_of(1000, 200, 4000, 100, 3, 1);
	int n;
	long back;

	(void)unused;
	/* down at slot 1000 (fall 1); polled every 4000 ms while down; repaired at 10000: the slot at 13000 passes,
	 * then 13200 and 13400 (rise 3) bring it up */
	back = simulate(&c, 1000, 10000, HD_STATE_UP, &n);
	assert_int_equal(back, 1000 + 3 * 4000 + 2 * 200);
	assert_int_equal(n, 7); /* slots 0, 1000; 5000, 9000 (down); 13000, 13200, 13400 (rising) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_state_has_its_interval),
		cmocka_unit_test(unset_intervals_fall_back_to_interval),
		cmocka_unit_test(a_drop_is_found_in_interval_plus_fall_minus_one_fastintervals),
		cmocka_unit_test(no_extra_attempts_while_everything_is_up),
		cmocka_unit_test(down_uses_downinterval_and_rising_uses_fastinterval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
