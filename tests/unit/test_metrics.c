/* test_metrics.c: the Prometheus text rendering: label escaping, one HELP/TYPE per family, samples per check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "metrics.h"

extern const struct hd_check_type hd_check_tcp;

static char *drain(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	char *text = malloc(len + 1);

	evbuffer_remove(buf, text, len);
	text[len] = '\0';
	return text;
}

static size_t count(const char *haystack, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_label_escaping(void **state)
{
	struct evbuffer *buf = evbuffer_new();
	char *text;

	(void)state;
	hd_prom_add_label_value(buf, "plain");
	hd_prom_add_label_value(buf, "|a\\b\"c\nd|");
	hd_prom_add_label_value(buf, "");
	text = drain(buf);
	assert_string_equal(text, "plain|a\\\\b\\\"c\\nd|");
	free(text);
	evbuffer_free(buf);
}

static void test_render_families_and_samples(void **state)
{
	struct hd_check_conf conf_up = {.name = "db", .type = &hd_check_tcp, .critical = true, .target = "10.0.0.1:3306"};
	struct hd_check_conf conf_new = {.name = "cache", .type = &hd_check_tcp, .critical = false,
					 .target = "odd\"host:6379"};
	struct hd_check up = {.conf = &conf_up, .state = HD_STATE_UP, .attempts = 7, .transitions = 3};
	struct hd_check pending = {.conf = &conf_new, .state = HD_STATE_PENDING};
	const struct hd_check *checks[] = {&up, &pending};
	struct evbuffer *buf = evbuffer_new();
	char *text;

	(void)state;
	up.last.latency_ms = 12.5;
	up.last.wall_ms = 1700000000123;
	up.since_wall_ms = 1699999990500;
	hd_strlcpy(up.last.peer, "10.0.0.1:3306", sizeof(up.last.peer));
	hd_strlcpy(up.last.source_addr, "10.0.1.12", sizeof(up.last.source_addr));
	struct hd_failure_count failures[] = {{.count = 2, .kind = HD_KIND_TIMEOUT, .phase = HD_PHASE_CONNECT},
					      {.count = 1, .kind = HD_KIND_REFUSED, .phase = HD_PHASE_CONNECT},
					      {.count = 1, .kind = HD_KIND_TIMEOUT, .phase = HD_PHASE_REQUEST}};
	up.failures = failures;
	up.n_failures = HD_ARRAY_LEN(failures);
	hd_prom_render_checks(buf, checks, 2);
	text = drain(buf);

	/* every family once, HELP before TYPE */
	assert_int_equal(count(text, "# TYPE healthd_check_up gauge\n"), 1);
	assert_int_equal(count(text, "# TYPE healthd_check_failures_total counter\n"), 1);
	assert_int_equal(count(text, "# TYPE healthd_check_transitions_total counter\n"), 1);
	assert_int_equal(count(text, "# HELP "), count(text, "# TYPE "));
	assert_non_null(strstr(text, "healthd_check_up{check=\"db\",critical=\"true\"} 1\n"));
	assert_non_null(strstr(text, "healthd_check_up{check=\"cache\",critical=\"false\"} 0\n"));
	assert_non_null(strstr(text, "healthd_check_info{check=\"cache\",type=\"tcp\",target=\"odd\\\"host:6379\","
				     "critical=\"false\"} 1\n"));
	assert_non_null(strstr(text, "healthd_check_latency_seconds{check=\"db\"} 0.012500\n"));
	assert_non_null(strstr(text, "healthd_check_last_result_timestamp_seconds{check=\"db\"} 1700000000.123\n"));
	/* no result yet: no latency, no timestamp, no failure series (only the pairs seen have one) */
	assert_null(strstr(text, "healthd_check_latency_seconds{check=\"cache\"}"));
	assert_null(strstr(text, "healthd_check_last_result_timestamp_seconds{check=\"cache\"}"));
	assert_null(strstr(text, "healthd_check_failures_total{check=\"cache\""));
	assert_non_null(strstr(text, "healthd_check_attempts_total{check=\"db\"} 7\n"));
	assert_non_null(strstr(text, "healthd_check_transitions_total{check=\"db\"} 3\n"));
	assert_non_null(strstr(text, "healthd_check_failures_total{check=\"db\",kind=\"timeout\",phase=\"connect\"} 2\n"));
	assert_non_null(strstr(text, "healthd_check_failures_total{check=\"db\",kind=\"refused\",phase=\"connect\"} 1\n"));
	assert_non_null(strstr(text, "healthd_check_failures_total{check=\"db\",kind=\"timeout\",phase=\"request\"} 1\n"));
	/* ok is not a failure; only the pairs seen are series */
	assert_null(strstr(text, "healthd_check_failures_total{check=\"db\",kind=\"ok\""));
	assert_int_equal(count(text, "healthd_check_failures_total{check=\"db\","), 3);
	/* the state as /health says it, one series per check; before a result: pending, no since */
	assert_int_equal(count(text, "healthd_check_state_info{"), 2);
	assert_non_null(strstr(text, "healthd_check_state_info{check=\"cache\",status=\"pending\",kind=\"pending\","
				     "address=\"\",source_addr=\"\"} 1\n"));
	assert_null(strstr(text, "healthd_check_since_timestamp_seconds{check=\"cache\"}"));
	assert_non_null(strstr(text, "healthd_check_state_info{check=\"db\",status=\"up\",kind=\"ok\","
				     "address=\"10.0.0.1:3306\",source_addr=\"10.0.1.12\"} 1\n"));
	assert_non_null(strstr(text, "healthd_check_since_timestamp_seconds{check=\"db\"} 1699999990.500\n"));
	/* a family's samples are contiguous: no other family between two samples of one */
	{
		const char *first = strstr(text, "healthd_check_up{"), *last = strstr(text, "healthd_check_up{check=\"cache\"");
		assert_true(first < last);
		assert_null(memmem(first, (size_t)(last - first), "# TYPE", 6));
	}
	free(text);
	evbuffer_free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_render_families_and_samples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
