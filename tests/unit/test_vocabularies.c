/* test_vocabularies.c: every value of every vocabulary (kinds, alert events, formats) has its name and words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "alert_event.h"
#include "alerts_conf.h"
#include "kinds.h"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
