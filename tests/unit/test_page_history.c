/* test_page_history.c: the status page's HTML escaping, the availability buckets, and the history config keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "history.h"
#include "page.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

static char *escaped(const char *in)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *out;

	hd_html_escape(b, in);
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return out;
}

static void html_escape_neutralises_markup(void **unused)
{
	static const struct { const char *in, *want; } cases[] = {
		{"plain text", "plain text"},
		{"", ""},
		{"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"a & b", "a &amp; b"},
		{"\"quoted\" 'single'", "&quot;quoted&quot; &#39;single&#39;"},
		{"&amp;", "&amp;amp;"},
		{"tab\there\nline", "tab here line"},
		{"<<>>", "&lt;&lt;&gt;&gt;"},
		{"caf\xc3\xa9", "caf\xc3\xa9"}, /* UTF-8 passes */
	};

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = escaped(cases[i].in);
		assert_string_equal(out, cases[i].want);
		free(out);
	}
}

static void availability_counts_only_the_window(void **unused)
{
	struct hd_avail_bucket min[HD_HISTORY_MINUTES] = {{0}};
	uint64_t ok, total;
	int64_t t0 = 1796600000000LL - 1796600000000LL % HOUR_MS; /* on an hour boundary */

	(void)unused;
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0, &ok, &total);
	assert_int_equal(total, 0);
	/* 3 ok and 1 failed in the first minute, 2 ok 30 minutes later */
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0, true);
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 1000, true);
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 2000, true);
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 3000, false);
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 30 * MIN_MS, true);
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 30 * MIN_MS + 5, true);
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 30 * MIN_MS, &ok, &total);
	assert_int_equal(ok, 5);
	assert_int_equal(total, 6);
	/* 59 minutes after the first one it still counts; at 60 it has left the window */
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 59 * MIN_MS, &ok, &total);
	assert_int_equal(total, 6);
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 60 * MIN_MS, &ok, &total);
	assert_int_equal(ok, 2);
	assert_int_equal(total, 2);
	/* a result an hour later reuses the first minute's bucket: the old counts are gone, not added */
	hd_avail_add(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 60 * MIN_MS, false);
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 60 * MIN_MS, &ok, &total);
	assert_int_equal(ok, 2);
	assert_int_equal(total, 3);
	/* a day later nothing of it counts */
	hd_avail_sum(min, HD_HISTORY_MINUTES, MIN_MS, t0 + 25 * HOUR_MS, &ok, &total);
	assert_int_equal(total, 0);
}

static void availability_over_a_day_in_hours(void **unused)
{
	struct hd_avail_bucket hours[HD_HISTORY_HOURS] = {{0}};
	uint64_t ok, total;
	int64_t t0 = 1796600000000LL;

	(void)unused;
	for (int h = 0; h < 30; h++) /* 30 hours, one failure in every third */
		hd_avail_add(hours, HD_HISTORY_HOURS, HOUR_MS, t0 + h * HOUR_MS, h % 3 != 0);
	hd_avail_sum(hours, HD_HISTORY_HOURS, HOUR_MS, t0 + 29 * HOUR_MS, &ok, &total);
	assert_int_equal(total, 24); /* hours 6..29 */
	assert_int_equal(ok, 16);
}

static void history_keys_have_defaults_and_ranges(void **unused)
{
	static const char good[] = "{\"checks\": []}";
	static const char set[] = "{\"history\": {\"max_events\": 20, \"max_bytes\": 8192}, \"checks\": []}";
	static const char low[] = "{\"history\": {\"max_events\": 2}, \"checks\": []}";
	static const char unknown[] = "{\"history\": {\"events\": 2}, \"checks\": []}";
	char *error = NULL;
	struct hd_config *cfg = config_parse("h.json", good, strlen(good), &error);

	(void)unused;
	assert_non_null(cfg);
	assert_int_equal(cfg->history.max_events, 500);
	assert_int_equal(cfg->history.max_bytes, 1048576);
	config_free(cfg);
	cfg = config_parse("h.json", set, strlen(set), &error);
	assert_non_null(cfg);
	assert_int_equal(cfg->history.max_events, 20);
	assert_int_equal(cfg->history.max_bytes, 8192);
	config_free(cfg);
	assert_null(config_parse("h.json", low, strlen(low), &error));
	assert_string_equal(error, "h.json:1:28: history.max_events: expected an integer from 10 to 100000, got 2");
	free(error);
	error = NULL;
	assert_null(config_parse("h.json", unknown, strlen(unknown), &error));
	assert_string_equal(error, "h.json:1:14: history.events: unknown key \"events\" (expected one of: max_events, "
				   "max_bytes)");
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(html_escape_neutralises_markup),
		cmocka_unit_test(availability_counts_only_the_window),
		cmocka_unit_test(availability_over_a_day_in_hours),
		cmocka_unit_test(history_keys_have_defaults_and_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
