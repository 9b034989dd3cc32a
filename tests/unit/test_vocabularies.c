/* test_vocabularies.c: every value of every vocabulary (kinds, phases, alert events, formats, drops) has its words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "alert_event.h"
#include "alerts.h"
#include "alerts_conf.h"
#include "kinds.h"

/* Each table's entry for each value: present, not empty, and unlike every other value's entry in that table. */
static void assert_distinct_names(const char *table, const char *const *names, int n)
{
	for (int i = 0; i < n; i++) {
		if (names[i] == NULL || names[i][0] == '\0')
			fail_msg("%s: value %d has no entry", table, i);
		for (int j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				fail_msg("%s: values %d and %d both read \"%s\"", table, j, i, names[i]);
	}
}

static void test_every_table_has_a_distinct_entry_for_every_value(void **state)
{
	const char *kinds[HD_KIND_COUNT], *was[HD_KIND_COUNT], *phases[HD_PHASE_COUNT];
	const char *events[HD_ALERT_EVENT_COUNT], *titles[HD_ALERT_EVENT_COUNT], *drops[HD_DROP_COUNT];

	(void)state;
	for (int k = 0; k < HD_KIND_COUNT; k++) {
		kinds[k] = hd_kind_name((enum hd_kind)k);
		was[k] = hd_kind_words((enum hd_kind)k, "db1:3306")->was;
	}
	assert_distinct_names("kind names", kinds, HD_KIND_COUNT);
	assert_distinct_names("kind phrases (was)", was, HD_KIND_COUNT);
	for (int p = 0; p < HD_PHASE_COUNT; p++) {
		phases[p] = hd_phase_name((enum hd_phase)p);
		assert_int_equal(hd_phase_from_name(phases[p]), p);
	}
	assert_distinct_names("phase names", phases, HD_PHASE_COUNT);
	for (int e = 0; e < HD_ALERT_EVENT_COUNT; e++) {
		events[e] = hd_alert_event_name((enum hd_alert_event)e);
		titles[e] = hd_alert_slack_title((enum hd_alert_event)e);
	}
	assert_distinct_names("alert event names", events, HD_ALERT_EVENT_COUNT);
	assert_distinct_names("Slack titles", titles, HD_ALERT_EVENT_COUNT);
	assert_distinct_names("alert formats", hd_alert_format_names, HD_FORMAT_COUNT);
	for (int d = 0; d < HD_DROP_COUNT; d++)
		drops[d] = hd_alert_drop_name((enum hd_alert_drop)d);
	assert_distinct_names("drop reasons", drops, HD_DROP_COUNT);
	/* out of range reads as a real entry, never NULL */
	assert_string_equal(hd_phase_name(HD_PHASE_COUNT), "none");
	assert_int_equal(hd_phase_from_name("no-such-phase"), -1);
	assert_non_null(hd_alert_slack_title(HD_ALERT_EVENT_COUNT));
}

static void test_every_kind_has_a_unique_name_and_words(void **state)
{
	(void)state;
	for (int k = 0; k < HD_KIND_COUNT; k++) {
		const char *name = hd_kind_name((enum hd_kind)k);
		const struct hd_kind_words *w = hd_kind_words((enum hd_kind)k, "db1:3306");
		assert_non_null(name);
		assert_true(name[0] != '\0');
		assert_int_equal(hd_kind_from_name(name), k); /* unique: the first with that name is k itself */
		assert_non_null(w);
		assert_non_null(w->now);
		assert_non_null(w->hint);
		assert_non_null(w->was);
		assert_true(w->was[0] != '\0');
		/* the now form is a format with exactly one %s, for where */
		const char *p = strstr(w->now, "%s");
		assert_non_null(p);
		assert_null(strchr(p + 2, '%'));
		assert_true(strchr(w->now, '%') == p);
	}
	assert_string_equal(hd_kind_name(HD_KIND_COUNT), "error"); /* out of range reads as error, never NULL */
	assert_int_equal(hd_kind_from_name("no-such-kind"), -1);
	assert_string_equal(hd_kind_words(HD_KIND_TIMEOUT, "/var/lib/mysql")->was, "I/O hung");
}

static void test_every_alert_event_and_format_has_a_name(void **state)
{
	(void)state;
	for (int e = 0; e < HD_ALERT_EVENT_COUNT; e++) {
		const char *name = hd_alert_event_name((enum hd_alert_event)e);
		assert_non_null(name);
		assert_int_equal(hd_alert_event_from_name(name), e);
	}
	for (int f = 0; f < HD_FORMAT_COUNT; f++)
		assert_non_null(hd_alert_format_names[f]);
	assert_null(hd_alert_format_names[HD_FORMAT_COUNT]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_has_a_unique_name_and_words),
		cmocka_unit_test(test_every_alert_event_and_format_has_a_name),
		cmocka_unit_test(test_every_table_has_a_distinct_entry_for_every_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
