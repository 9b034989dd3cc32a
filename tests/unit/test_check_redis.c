/* test_check_redis.c: the redis check's pure parts: what of a server's text reaches a detail, and the role of INFO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check_redis.h"

#define SECRET "Rd-pw-7f3a91c2e8"

static void text_of(char *out, size_t outlen, const char *text, const char *secret)
{
	redis_server_text(out, outlen, text, strlen(text), secret);
}

static void test_plain_text_passes_with_line_ends_and_control_bytes_escaped(void **state)
{
	char out[128];

	(void)state;
	text_of(out, sizeof(out), "ERR DB index is out of range\r\n", NULL);
	assert_string_equal(out, "ERR DB index is out of range");
	text_of(out, sizeof(out), "Protocol error, got \"\x05\" as reply type byte", NULL);
	assert_string_equal(out, "Protocol error, got \"\\x05\" as reply type byte");
	text_of(out, sizeof(out), "a\nb\x7f", NULL);
	assert_string_equal(out, "a b\\x7f");
}

static void test_the_password_is_replaced_wherever_it_appears(void **state)
{
	char out[160];

	(void)state;
	text_of(out, sizeof(out), "ERR unknown command 'AUTH', with args beginning with: '" SECRET "' ", SECRET);
	assert_string_equal(out, "ERR unknown command 'AUTH', with args beginning with: '***'");
	text_of(out, sizeof(out), SECRET SECRET "x" SECRET, SECRET);
	assert_string_equal(out, "******x***");
	/* Redis cuts echoed arguments short: a long enough start of the password is hidden too. */
	text_of(out, sizeof(out), "args beginning with: 'Rd-pw-7f3a'", SECRET);
	assert_string_equal(out, "args beginning with: '***'");
	/* A short common prefix is ordinary text. */
	text_of(out, sizeof(out), "Rd-pw is fine", SECRET);
	assert_string_equal(out, "Rd-pw is fine");
}

static void test_long_text_is_cut_without_revealing_part_of_the_password(void **state)
{
	char out[24], text[256];

	(void)state;
	memset(text, 'a', sizeof(text));
	text[sizeof(text) - 1] = '\0';
	text_of(out, sizeof(out), text, NULL);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + strlen(out) - 3, "...");
	/* The password straddles the cut: it is either "***" or gone, never half shown. */
	for (size_t at = 0; at < 30; at++) {
		snprintf(text, sizeof(text), "%.*s%s tail", (int)at, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", SECRET);
		text_of(out, sizeof(out), text, SECRET);
		assert_null(strstr(out, "Rd-pw-7f"));
		assert_true(strlen(out) < sizeof(out));
	}
	/* Escapes are never cut in half either. */
	text_of(out, sizeof(out), "\x01\x01\x01\x01\x01\x01\x01\x01\x01", NULL);
	assert_string_equal(out, "\\x01\\x01\\x01\\x01\\x01...");
}

static void test_role_of_a_master_and_of_a_replica(void **state)
{
	char role[32], upstream[128];

	(void)state;
	assert_true(redis_parse_role("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n", role, sizeof(role),
				     upstream, sizeof(upstream)));
	assert_string_equal(role, "master");
	assert_string_equal(upstream, "");
	assert_true(redis_parse_role("# Replication\r\nrole:slave\r\nmaster_host:10.0.0.5\r\nmaster_port:6380\r\n"
				     "master_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\n",
				     role, sizeof(role), upstream, sizeof(upstream)));
	assert_string_equal(role, "replica");
	assert_string_equal(upstream, " of 10.0.0.5:6380, link down");
	/* No role line (not Redis, or an INFO that changed): reported as a protocol problem by the caller. */
	assert_false(redis_parse_role("# Replication\r\nroles:master\r\n", role, sizeof(role), upstream, sizeof(upstream)));
	assert_false(redis_parse_role("", role, sizeof(role), upstream, sizeof(upstream)));
	/* A value longer than the buffer is cut, not overflowed. */
	assert_true(redis_parse_role("role:sentinelsentinelsentinelsentinelsentinel\n", role, 8, upstream,
				     sizeof(upstream)));
	assert_string_equal(role, "sentine");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_text_passes_with_line_ends_and_control_bytes_escaped),
		cmocka_unit_test(test_the_password_is_replaced_wherever_it_appears),
		cmocka_unit_test(test_long_text_is_cut_without_revealing_part_of_the_password),
		cmocka_unit_test(test_role_of_a_master_and_of_a_replica),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
