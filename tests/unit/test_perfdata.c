/* test_perfdata.c: plugin output (summary, perfdata in base units), exit-status mapping, text sanitizing, push's words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <stdio.h>
#include <sys/wait.h>

#include "check_push.h"
#include "nagios.h"
#include "util.h"

static struct hd_plugin_output out;

static void parse(const char *text)
{
	hd_plugin_parse_output(text, strlen(text), &out);
}

static double value_of(const char *label)
{
	for (size_t i = 0; i < out.n_perf; i++)
		if (strcmp(out.perf[i].label, label) == 0)
			return out.perf[i].value;
	fail_msg("no perfdata label \"%s\"", label);
	return 0;
}

static void exit_codes_map_to_plugin_states(void **unused)
{
	(void)unused;
	/* W_EXITCODE(code, 0) and a signal number in the low bits, as waitpid reports them */
	assert_int_equal(hd_plugin_status_from_wait(0 << 8), HD_PLUGIN_OK);
	assert_int_equal(hd_plugin_status_from_wait(1 << 8), HD_PLUGIN_WARNING);
	assert_int_equal(hd_plugin_status_from_wait(2 << 8), HD_PLUGIN_CRITICAL);
	assert_int_equal(hd_plugin_status_from_wait(3 << 8), HD_PLUGIN_UNKNOWN);
	assert_int_equal(hd_plugin_status_from_wait(4 << 8), HD_PLUGIN_UNKNOWN);
	assert_int_equal(hd_plugin_status_from_wait(127 << 8), HD_PLUGIN_UNKNOWN);
	assert_int_equal(hd_plugin_status_from_wait(255 << 8), HD_PLUGIN_UNKNOWN);
	assert_int_equal(hd_plugin_status_from_wait(9), HD_PLUGIN_UNKNOWN);  /* SIGKILL */
	assert_int_equal(hd_plugin_status_from_wait(11), HD_PLUGIN_UNKNOWN); /* SIGSEGV */
	assert_string_equal(hd_plugin_status_name(HD_PLUGIN_WARNING), "WARNING");
}

static void summary_is_the_first_line_before_the_bar(void **unused)
{
	(void)unused;
	parse("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\nlong text\n");
	assert_string_equal(out.summary, "DISK OK - free space: / 3326 MB (56%);");
	assert_int_equal(out.n_perf, 1);
	assert_true(value_of("/") == 2643.0 * 1024 * 1024);
	parse("");
	assert_string_equal(out.summary, "");
	assert_int_equal(out.n_perf, 0);
	parse("no newline and no perfdata");
	assert_string_equal(out.summary, "no newline and no perfdata");
}

static void units_become_base_units(void **unused)
{
	(void)unused;
	parse("OK | a=1.5s b=250ms c=40us d=12% e=3B f=2KB g=1.5MB h=1GB i=2TB j=17c k=42 l=-3.5");
	assert_int_equal(out.n_perf, 12);
	assert_true(value_of("a") == 1.5);
	assert_true(value_of("b") == 0.25);
	assert_true(value_of("c") > 39.999e-6 && value_of("c") < 40.001e-6);
	assert_true(value_of("d") == 12);
	assert_true(value_of("e") == 3);
	assert_true(value_of("f") == 2048);
	assert_true(value_of("g") == 1.5 * 1024 * 1024);
	assert_true(value_of("h") == 1024.0 * 1024 * 1024);
	assert_true(value_of("i") == 2.0 * 1024 * 1024 * 1024 * 1024);
	assert_true(value_of("j") == 17);
	assert_true(value_of("k") == 42);
	assert_true(value_of("l") == -3.5);
	assert_int_equal(out.n_skipped, 0);
}

static void quoted_labels_thresholds_and_long_output(void **unused)
{
	(void)unused;
	parse("PROCS OK | 'free space /var'=10GB;20:;10:;0;100 'it''s'=1;;; 'x=y'=2\n"
	      "more text\nand more | load1=0.5;5;10;0; 'two words'=3s");
	assert_int_equal(out.n_perf, 5);
	assert_true(value_of("free space /var") == 10.0 * 1024 * 1024 * 1024);
	assert_true(value_of("it's") == 1);
	assert_true(value_of("x=y") == 2);
	assert_true(value_of("load1") == 0.5);
	assert_true(value_of("two words") == 3);
}

static void broken_items_are_skipped_not_fatal(void **unused)
{
	(void)unused;
	parse("OK | good=1 nounit=U unknown=5parsecs =3 'unterminated=4 novalue= bare also=2");
	assert_int_equal(out.n_perf, 1);
	assert_true(value_of("good") == 1);
	assert_true(out.n_skipped >= 4);
	parse("OK | dup=1 dup=2 big=1e400 nan=nan");
	assert_int_equal(out.n_perf, 1);
	assert_true(value_of("dup") == 1);
	/* a locale's decimal comma */
	parse("OK | t=0,25s");
	assert_true(value_of("t") == 0.25);
}

static void perfdata_items_are_bounded(void **unused)
{
	char text[4096] = "OK |";
	size_t used = strlen(text);

	(void)unused;
	for (int i = 0; i < HD_PERFDATA_MAX + 10; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " m%d=%d", i, i);
	parse(text);
	assert_int_equal(out.n_perf, HD_PERFDATA_MAX);
	assert_int_equal(out.n_skipped, 10);
}

static void control_characters_and_bad_utf8_are_escaped(void **unused)
{
	char buf[64];

	(void)unused;
	parse("CRIT\x1b[31m red\tand\rmore\x7f \xff\xfe caf\xc3\xa9 | 'a\x01" "b'=1");
	assert_string_equal(out.summary, "CRIT\\x1b[31m red\\tand\\rmore\\x7f \\xff\\xfe caf\xc3\xa9");
	assert_string_equal(out.perf[0].label, "a\\x01b");
	/* overlong and surrogate encodings are not UTF-8 */
	hd_sanitize_text("\xc0\xaf \xed\xa0\x80", 6, buf, sizeof(buf));
	assert_string_equal(buf, "\\xc0\\xaf \\xed\\xa0\\x80");
	/* a cut is marked, never inside an escape or a character */
	hd_sanitize_text("abcdefghij", 10, buf, 8);
	assert_string_equal(buf, "abcd...");
	hd_sanitize_text("ab\x01\x02\x03", 5, buf, 10);
	assert_string_equal(buf, "ab\\x01...");
	hd_sanitize_text("caf\xc3\xa9\xc3\xa9xx", 9, buf, 9);
	assert_string_equal(buf, "caf\xc3\xa9...");
	hd_sanitize_text("exact", 5, buf, 6);
	assert_string_equal(buf, "exact");
	/* a long first line is bounded */
	{
		char longline[2000];
		memset(longline, 'x', sizeof(longline) - 1);
		longline[sizeof(longline) - 1] = '\0';
		parse(longline);
		assert_int_equal(strlen(out.summary), HD_PLUGIN_SUMMARY_MAX - 1);
		assert_string_equal(out.summary + HD_PLUGIN_SUMMARY_MAX - 4, "...");
	}
}

static void nul_bytes_in_output_are_escaped(void **unused)
{
	static const char text[] = "OK\0hidden | a=1";

	(void)unused;
	hd_plugin_parse_output(text, sizeof(text) - 1, &out);
	assert_string_equal(out.summary, "OK\\x00hidden");
	assert_int_equal(out.n_perf, 1);
}

static void push_words_and_human_units(void **unused)
{
	char name[64], detail[HD_PUSH_DETAIL_MAX + 1], buf[32];
	const char *error;
	bool ok;

	(void)unused;
	assert_int_equal(hd_push_parse_request("backup ok", name, sizeof(name), &ok, detail, sizeof(detail), &error), 0);
	assert_string_equal(name, "backup");
	assert_true(ok);
	assert_string_equal(detail, "");
	assert_int_equal(hd_push_parse_request("db.dump fail disk full ", name, sizeof(name), &ok, detail, sizeof(detail),
					       &error), 0);
	assert_false(ok);
	assert_string_equal(detail, "disk full ");
	assert_int_equal(hd_push_parse_request("backup maybe", name, sizeof(name), &ok, detail, sizeof(detail), &error),
			 -1);
	assert_int_equal(hd_push_parse_request("", name, sizeof(name), &ok, detail, sizeof(detail), &error), -1);
	assert_int_equal(hd_push_parse_request("a/b ok", name, sizeof(name), &ok, detail, sizeof(detail), &error), -1);

	hd_push_human_ms(26LL * 3600 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "26 h");
	hd_push_human_ms(25LL * 3600 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "25 h");
	hd_push_human_ms(90 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "90 s");
	hd_push_human_ms(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 s");
	hd_push_human_ms(5 * 60 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "5 min");
	hd_push_human_ms(3LL * 86400 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "3 d");
	hd_push_human_ms(36LL * 3600 * 1000, buf, sizeof(buf));
	assert_string_equal(buf, "36 h");
	hd_push_human_ms(250, buf, sizeof(buf));
	assert_string_equal(buf, "250 ms");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_codes_map_to_plugin_states),
		cmocka_unit_test(summary_is_the_first_line_before_the_bar),
		cmocka_unit_test(units_become_base_units),
		cmocka_unit_test(quoted_labels_thresholds_and_long_output),
		cmocka_unit_test(broken_items_are_skipped_not_fatal),
		cmocka_unit_test(perfdata_items_are_bounded),
		cmocka_unit_test(control_characters_and_bad_utf8_are_escaped),
		cmocka_unit_test(nul_bytes_in_output_are_escaped),
		cmocka_unit_test(push_words_and_human_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
