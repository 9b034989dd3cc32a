/* test_check_http_config.c: the http check's keys: URLs, expect_status forms, cross-key rules, errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_CHECK_TYPE "http"
#define TEST_CHECK_NAME "app"
#include "check_config.h"

static void expect_valid(const char *keys, const char *target)
{
	char *error = NULL;
	struct hd_config *cfg = parse_check(keys, &error);

	if (cfg == NULL)
		fail_msg("for %s: %s", keys, error);
	assert_string_equal(cfg->checks[0]->target, target);
	config_free(cfg);
}

static void test_valid_forms(void **state)
{
	(void)state;
	expect_valid("\"url\": \"http://127.0.0.1:8080/health\"", "http://127.0.0.1:8080/health");
	expect_valid("\"url\": \"https://api.internal/v1/health\", \"expect_status\": 204", "https://api.internal/v1/health");
	expect_valid("\"url\": \"http://[::1]:81/\", \"expect_status\": \"200-299, 301,3xx\"", "http://[::1]:81/");
	expect_valid("\"url\": \"http://h/p\", \"method\": \"POST\", \"body\": \"{}\", \"headers\": {\"X-A\": \"b\"}", "http://h/p");
	/* user info and query may hold secrets: they never reach the target shown in /health */
	expect_valid("\"url\": \"http://u:secret@h:81/p?token=x\"", "http://h:81/p");
}

static void test_errors_point_at_the_value(void **state)
{
	(void)state;
	expect_error("\"url\": \"ftp://h/\"", "t.json:2:9: checks[\"app\"].url: the URL must start with http:// or https://");
	expect_error("\"url\": \"h/health\"", "the URL must start with http:// or https://");
	expect_error("\"url\": \"http://\"", "checks[\"app\"].url: not a valid URL");
	expect_error("\"url\": 80", "expected a URL");
	expect_error("\"url\": \"http://h/\", \"expect_status\": 99", "t.json:2:39: checks[\"app\"].expect_status: expected a status code from 100 to 599");
	expect_error("\"url\": \"http://h/\", \"expect_status\": \"300-200\"", "from the lower code to the higher one");
	expect_error("\"url\": \"http://h/\", \"expect_status\": \"2xx,,3xx\"", "separated by commas");
	expect_error("\"url\": \"http://h/\", \"expect_status\": \"6xx\"", "expected codes like 200");
	expect_error("\"url\": \"http://h/\", \"expect_status\": \"200-700\"", "from 100 to 599");
	expect_error("\"url\": \"http://h/\", \"expect_status\": true", "expected a status code");
	expect_error("\"url\": \"http://h/\", \"ca\": \"/nonexistent/ca.pem\"", "cannot read the CA file /nonexistent/ca.pem: No such file");
	expect_error("\"url\": \"http://h/\", \"method\": \"PUT\"", "expected one of \"GET\", \"HEAD\", \"POST\"");
	expect_error("\"url\": \"http://h/\", \"headers\": {\"X-A\": 1}", "one-line string value");
	expect_error("\"expect_status\": 200", "missing required key \"url\"");
}

static void test_cross_key_errors_point_at_the_key(void **state)
{
	(void)state;
	expect_error("\"body\": \"x\", \"url\": \"http://h/\"", "t.json:2:2: checks[\"app\"].body: a body is only sent with \"method\": \"POST\"");
	expect_error("\"url\": \"http://h/\", \"method\": \"HEAD\", \"expect_body\": \"ok\"",
		     "t.json:2:40: checks[\"app\"].expect_body: a HEAD answer has no body");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_forms),
		cmocka_unit_test(test_errors_point_at_the_value),
		cmocka_unit_test(test_cross_key_errors_point_at_the_key),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
