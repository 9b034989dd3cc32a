/* test_check_blocked_config.c: expect "blocked" and blocked_kinds on tcp and http: valid forms, errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_CHECK_TYPE "tcp"
#define TEST_CHECK_NAME "jenkins"
#include "check_config.h"

#define HOST "\"host\": \"10.0.0.5\", \"port\": 8080, "

static void expect_valid(const char *type, const char *keys)
{
	char text[1024], *error = NULL;
	struct hd_config *cfg;

	snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"jenkins\", \"type\": \"%s\", %s}]}", type, keys);
	cfg = config_parse("t.json", text, strlen(text), &error);
	if (cfg == NULL)
		fail_msg("for %s: %s", keys, error);
	config_free(cfg);
}

static void test_valid_forms(void **state)
{
	(void)state;
	expect_valid("tcp", HOST "\"expect\": \"blocked\"");
	expect_valid("tcp", HOST "\"expect\": \"open\"");
	expect_valid("tcp", HOST "\"expect\": \"blocked\", \"blocked_kinds\": [\"timeout\"]");
	expect_valid("tcp", HOST "\"expect\": \"blocked\", \"blocked_kinds\": [\"refused\", \"unreachable\", \"timeout\"]");
	expect_valid("http", "\"url\": \"http://10.0.0.5:8080/login\", \"expect\": \"blocked\"");
	expect_valid("http", "\"url\": \"https://[::1]/\", \"expect\": \"blocked\", \"blocked_kinds\": [\"refused\"]");
}

static void test_errors_name_the_position_and_the_key(void **state)
{
	(void)state;
	expect_error(HOST "\"expect\": \"blocked\", \"blocked_kinds\": [\"dns\"]",
		     "t.json:2:75: checks[\"jenkins\"].blocked_kinds[0]: \"dns\" cannot count as blocked: a name that does "
		     "not resolve is a failure of its own (one of timeout, refused, unreachable)");
	expect_error(HOST "\"expect\": \"blocked\", \"blocked_kinds\": [\"timeout\", \"exposed\"]",
		     "t.json:2:86: checks[\"jenkins\"].blocked_kinds[1]: \"exposed\" is not a way of being blocked (one of "
		     "timeout, refused, unreachable)");
	expect_error(HOST "\"expect\": \"blocked\", \"blocked_kinds\": [\"droped\"]",
		     "checks[\"jenkins\"].blocked_kinds[0]: \"droped\" is not a way of being blocked");
	expect_error(HOST "\"expect\": \"blocked\", \"blocked_kinds\": [1]",
		     "checks[\"jenkins\"].blocked_kinds[0]: a number is not a way of being blocked");
	expect_error(HOST "\"expect\": \"blocked\", \"blocked_kinds\": []",
		     "checks[\"jenkins\"].blocked_kinds: expected a non-empty array of kinds");
	expect_error(HOST "\"blocked_kinds\": [\"timeout\"]",
		     "t.json:2:36: checks[\"jenkins\"].blocked_kinds: blocked_kinds needs expect: \"blocked\"");
	expect_error(HOST "\"expect\": \"closed\"", "checks[\"jenkins\"].expect: expected one of \"open\", \"blocked\"");
}

static void expect_http_error(const char *keys, const char *fragment)
{
	char text[1024], *error = NULL;
	struct hd_config *cfg;

	snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"jenkins\", \"type\": \"http\", %s}]}", keys);
	cfg = config_parse("t.json", text, strlen(text), &error);
	if (cfg != NULL || error == NULL || strstr(error, fragment) == NULL)
		fail_msg("for %s: expected an error containing \"%s\", got %s", keys, fragment, error ? error : "none");
	free(error);
}

static void test_http_request_keys_have_no_effect_when_blocked(void **state)
{
	(void)state;
	expect_http_error("\"url\": \"http://10.0.0.5:8080/login\", \"expect\": \"blocked\", \"expect_status\": 403",
			  "t.json:1:107: checks[\"jenkins\"].expect_status: expect_status has no effect with expect: "
			  "\"blocked\" (no request is sent, only a TCP connect to 10.0.0.5:8080)");
	expect_http_error("\"url\": \"https://ci.internal/\", \"expect\": \"blocked\", \"ca\": \"/x.pem\"",
			  "cannot read the CA file /x.pem");
	expect_http_error("\"url\": \"https://ci.internal/\", \"expect\": \"blocked\", \"tls_verify\": false",
			  "checks[\"jenkins\"].tls_verify: tls_verify has no effect with expect: \"blocked\" (no request is "
			  "sent, only a TCP connect to ci.internal:443)");
	expect_http_error("\"url\": \"http://ci.internal/\", \"blocked_kinds\": [\"timeout\"]",
			  "checks[\"jenkins\"].blocked_kinds: blocked_kinds needs expect: \"blocked\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_forms),
		cmocka_unit_test(test_errors_name_the_position_and_the_key),
		cmocka_unit_test(test_http_request_keys_have_no_effect_when_blocked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
