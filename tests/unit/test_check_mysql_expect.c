/* test_check_mysql_expect.c: the mysql check's expect_value / expect_rows comparison grammar and its verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "check_mysql.h"

static struct hd_mysql_expect parsed(const char *s)
{
	struct hd_mysql_expect e;
	const char *why = NULL;

	assert_int_equal(hd_mysql_expect_parse(s, &e, &why), 0);
	return e;
}

static int verdict(const char *expect, const char *value)
{
	struct hd_mysql_expect e = parsed(expect);

	return hd_mysql_expect_match(&e, value, value ? strlen(value) : 0);
}

static void test_operators_and_operands(void **state)
{
	static const struct { const char *s; enum hd_mysql_cmp op; const char *text; double n; } cases[] = {
		{"<= 5", HD_CMP_LE, "<=", 5},   {"<5", HD_CMP_LT, "<", 5},      {">= 0.5", HD_CMP_GE, ">=", 0.5},
		{"> -3", HD_CMP_GT, ">", -3},   {"== 1e3", HD_CMP_EQ, "==", 1000}, {" != 0 ", HD_CMP_NE, "!=", 0},
		{">=.25", HD_CMP_GE, ">=", 0.25}, {"<=\t+7", HD_CMP_LE, "<=", 7},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hd_mysql_expect e = parsed(cases[i].s);

		assert_int_equal(e.op, cases[i].op);
		assert_string_equal(e.text, cases[i].text);
		assert_true(e.number == cases[i].n);
	}
}

static void test_strings_match_byte_for_byte(void **state)
{
	struct hd_mysql_expect e = parsed("ON");

	(void)state;
	assert_int_equal(e.op, HD_CMP_STRING);
	assert_int_equal(verdict("ON", "ON"), 1);
	assert_int_equal(verdict("ON", "on"), 0);
	assert_int_equal(verdict("ON", "ON "), 0);
	assert_int_equal(verdict("ON", NULL), 0);
	assert_int_equal(verdict("5", "5.0"), 0); /* no operator: a string, not a number */
}

static void test_a_comparison_without_a_number_is_refused(void **state)
{
	static const char *const bad[] = {"<= five", "<=", ">= 5x", "== 1e", "!= -", "< 5 5", "> 0x10", "<= 1.2.3"};
	struct hd_mysql_expect e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		assert_int_equal(hd_mysql_expect_parse(bad[i], &e, &why), -1);
		assert_non_null(why);
		assert_non_null(strstr(why, "decimal number after the operator"));
	}
}

static void test_numeric_verdicts(void **state)
{
	(void)state;
	assert_int_equal(verdict("<= 5", "5"), 1);
	assert_int_equal(verdict("<= 5", "7"), 0);
	assert_int_equal(verdict("< 5", "5"), 0);
	assert_int_equal(verdict(">= 1", "1.000"), 1);
	assert_int_equal(verdict("> 1", "0"), 0);
	assert_int_equal(verdict("== 4", "4"), 1);
	assert_int_equal(verdict("!= 4", "4"), 0);
	assert_int_equal(verdict("<= 5", "Synced"), -1); /* a value that is no number */
	assert_int_equal(verdict("<= 5", NULL), -1);    /* SQL NULL */
	assert_int_equal(verdict("<= 5", ""), -1);
}

static void test_number_bounds(void **state)
{
	char longnum[100];
	double v;

	(void)state;
	memset(longnum, '1', sizeof(longnum));
	assert_int_equal(hd_mysql_number(longnum, sizeof(longnum), &v), -1); /* too long to be a value we take */
	assert_int_equal(hd_mysql_number("12", 1, &v), 0);                    /* only len bytes are read */
	assert_true(v == 1);
	assert_int_equal(hd_mysql_number(" -2.5e1 ", 8, &v), 0);
	assert_true(v == -25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operators_and_operands),
		cmocka_unit_test(test_strings_match_byte_for_byte),
		cmocka_unit_test(test_a_comparison_without_a_number_is_refused),
		cmocka_unit_test(test_numeric_verdicts),
		cmocka_unit_test(test_number_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
