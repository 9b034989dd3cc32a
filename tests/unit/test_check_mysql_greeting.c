/* test_check_mysql_greeting.c: which first packets of a server the mysql check lets Connector/C read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "check_mysql.h"

/* A greeting laid out as MariaDB 10.11 sends it (version, id, scramble, capabilities, plugin name). */
static const unsigned char mariadb[] =
	"\x63\x00\x00\x00\x0a" "5.5.5-10.11.6-MariaDB-0+deb12u1\x00" "\x05\x00\x00\x00" "abcdefgh\x00" "\xfe\xf7"
	"\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00" "ijklmnopqrst\x00"
	"mysql_native_password\x00";

static enum hd_greeting judge(const void *buf, size_t len, char *why)
{
	why[0] = '\0';
	return hd_mysql_greeting_check(buf, len, why, 200);
}

static void test_a_real_greeting_passes_and_every_cut_of_it_waits_for_more(void **state)
{
	char why[200];
	size_t whole = sizeof(mariadb) - 1;

	(void)state;
	assert_int_equal(mariadb[0] + 4, whole);
	assert_int_equal(judge(mariadb, whole, why), HD_GREETING_OK);
	for (size_t n = 0; n < whole; n++)
		assert_int_equal(judge(mariadb, n, why), HD_GREETING_NEED_MORE);
}

static void test_server_errors_before_the_greeting_pass_for_the_library_to_report(void **state)
{
	char why[200];

	(void)state;
	/* 1040 Too many connections; 1129 Host is blocked */
	assert_int_equal(judge("\x17\x00\x00\x00\xff\x10\x04Too many connections", 27, why), HD_GREETING_OK);
	assert_int_equal(judge("\x05\x00\x00\x00\xff\x69\x04xx", 9, why), HD_GREETING_OK);
}

static void test_what_would_crash_or_confuse_the_library_is_refused_with_a_reason(void **state)
{
	char why[200];

	(void)state;
	assert_int_equal(judge("\x05\x00\x00\x00\xff\xff\xff\x41\x41", 9, why), HD_GREETING_BAD);
	assert_non_null(strstr(why, "code 65535"));
	assert_non_null(strstr(why, "05 00 00 00 ff ff ff 41 41"));
	assert_int_equal(judge("\x01\x00\x00\x00\xff", 5, why), HD_GREETING_BAD); /* no code */
	assert_int_equal(judge("\x03\x00\x00\x00\xff\x01\x00", 7, why), HD_GREETING_BAD); /* code 1: not MySQL's */
	assert_int_equal(judge("\x05\x00\x00\x00\x09old\x00", 9, why), HD_GREETING_BAD);
	assert_non_null(strstr(why, "protocol version 9"));
	assert_int_equal(judge("\x05\x00\x00\x00\x0a" "8.0\x00", 9, why), HD_GREETING_BAD); /* nothing after it */
	assert_int_equal(judge("\x04\x00\x00\x00\x0a" "8.0x", 8, why), HD_GREETING_BAD); /* no NUL */
	assert_int_equal(judge("\x05\x00\x00\x01\x0a" "8.0\x00", 9, why), HD_GREETING_BAD); /* number 1 */
	assert_int_equal(judge("\x00\x00\x00\x00", 4, why), HD_GREETING_BAD); /* empty */
	/* "SSH-": a first packet of 4,739,923 bytes, refused at once rather than waited for */
	assert_int_equal(judge("SSH-2.0-OpenSSH_9.2p1\r\n", 23, why), HD_GREETING_BAD);
	assert_non_null(strstr(why, "53 53 48 2d"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_real_greeting_passes_and_every_cut_of_it_waits_for_more),
		cmocka_unit_test(test_server_errors_before_the_greeting_pass_for_the_library_to_report),
		cmocka_unit_test(test_what_would_crash_or_confuse_the_library_is_refused_with_a_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
