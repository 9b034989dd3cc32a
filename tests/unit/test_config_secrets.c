/* test_config_secrets.c: the configuration never shows a secret, fingerprints only digests, refuses pipes, ranges every number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define SECRET "hunter2-S3cret"

static char *parse_error(const char *text)
{
	char *error = NULL;
	struct hd_config *cfg = config_parse("healthd.json", text, strlen(text), &error);

	if (cfg != NULL)
		fail_msg("expected an error for: %s", text);
	assert_non_null(error);
	return error;
}

/* Syntax errors right at, inside, before and after an inline password: the message never holds any of it. */
static void test_syntax_errors_never_quote_a_password(void **unused)
{
	static const char *const files[] = {
		/* a value without quotes */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"127.0.0.1\",\n"
		"  \"password\": " SECRET ", \"port\": 6379}]}",
		/* a comma missing after it */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"password\": \"" SECRET "\" \"host\": \"h\"}]}",
		/* a comma missing before it */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\" \"password\": \"" SECRET "\"}]}",
		/* an invalid escape inside it */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"password\": \"hunter2\\q-S3cret\"}]}",
		/* the closing quote missing: the string runs on */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"password\": \"" SECRET ", \"host\": \"h\"}\n]}",
		/* a colon missing */
		"{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"password\" \"" SECRET "\"}]}",
		/* in a header value of a webhook */
		"{\"checks\": [], \"alerts\": {\"webhooks\": [{\"url\": \"http://127.0.0.1:1/\",\n"
		"  \"headers\": {\"Authorization\": \"Bearer " SECRET "\" }}}]}}",
	};

	(void)unused;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *error = parse_error(files[i]);
		printf("syntax error %zu: %s\n", i, error);
		assert_non_null(strstr(error, "healthd.json:"));
		assert_null(strstr(error, "hunter2"));
		assert_null(strstr(error, "S3cret"));
		free(error);
	}
}

/* Errors about a secret key say where it is (its key path), never what it holds. */
static void test_errors_name_the_key_path_of_a_secret(void **unused)
{
	char *error;

	(void)unused;
	error = parse_error("{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"127.0.0.1\", \"password\": \"\"}]}");
	printf("%s\n", error);
	assert_non_null(strstr(error, "checks[\"db\"].password: expected a non-empty string"));
	free(error);
	error = parse_error("{\"checks\": [{\"name\": \"db\", \"type\": \"mysql\", \"host\": \"h\", \"user\": \"u\", "
			    "\"password\": \"" SECRET "\", \"password_file\": \"/nonexistent\"}]}");
	printf("%s\n", error);
	assert_non_null(strstr(error, "checks[\"db\"].password_file: give password or password_file, not both"));
	assert_null(strstr(error, "hunter2"));
	free(error);
	error = parse_error("{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"h\", \"password\": 5}]}");
	printf("%s\n", error);
	assert_non_null(strstr(error, "checks[\"db\"].password: expected a non-empty string, got a number"));
	free(error);
}

/* The fingerprint (kept for the whole run, compared on reload) is a keyed digest: no password in it. */
static void test_fingerprint_is_a_digest(void **unused)
{
	static const char b[] = "{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"127.0.0.1\", "
				"\"password\": \"" SECRET "\"}]}";
	static const char c[] = "{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"127.0.0.1\", "
				"\"password\": \"" SECRET "x\"}]}";
	static const char h[] = "{\"checks\": [{\"name\": \"app\", \"type\": \"http\", \"url\": \"http://127.0.0.1/\", "
				"\"headers\": {\"Authorization\": \"Bearer " SECRET "\"}}]}";
	char *error = NULL;
	struct hd_config *cb = config_parse("t.json", b, strlen(b), &error);
	struct hd_config *cb2 = config_parse("t.json", b, strlen(b), &error);
	struct hd_config *cc = config_parse("t.json", c, strlen(c), &error);
	struct hd_config *ch = config_parse("t.json", h, strlen(h), &error);
	const char *fp = cb->checks[0]->fingerprint;

	(void)unused;
	printf("fingerprint: %s\n", fp);
	assert_null(strstr(fp, "hunter2"));
	assert_int_equal(strlen(fp), 4 + 32);
	assert_memory_equal(fp, "sip:", 4);
	assert_int_equal(strspn(fp + 4, "0123456789abcdef"), 32);
	assert_string_equal(fp, cb2->checks[0]->fingerprint);        /* same file: unchanged on reload */
	assert_string_not_equal(fp, cc->checks[0]->fingerprint);     /* one more byte of password: changed */
	assert_null(strstr(ch->checks[0]->fingerprint, "S3cret"));
	config_free(cb);
	config_free(cb2);
	config_free(cc);
	config_free(ch);
}

/* A password file that is a named pipe is refused at once (it used to block until a writer came). */
static void test_password_file_must_be_a_regular_file(void **unused)
{
	char dir[] = "/tmp/hd-secrets-XXXXXX", fifo[64], text[256], *error;

	(void)unused;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/pw", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"h\", "
		 "\"password_file\": \"%s\"}]}", fifo);
	alarm(10); /* before the fix this blocked in open(): fail loudly instead of hanging the suite */
	error = parse_error(text);
	alarm(0);
	printf("%s\n", error);
	assert_non_null(strstr(error, "cannot read the password file"));
	assert_non_null(strstr(error, "a named pipe"));
	free(error);
	snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"h\", "
		 "\"password_file\": \"%s\"}]}", dir);
	error = parse_error(text);
	assert_non_null(strstr(error, "a directory"));
	free(error);
	unlink(fifo);
	rmdir(dir);
}

/* --no-secrets: files the configuration names are not opened (and listed); everything else is still checked. */
static void test_no_files_checks_everything_else(void **unused)
{
	static const char text[] =
		"{\"checks\": [\n"
		"  {\"name\": \"db\", \"type\": \"mysql\", \"host\": \"127.0.0.1\", \"user\": \"u\",\n"
		"   \"password_file\": \"/nonexistent/db.pw\", \"tls\": \"required\", \"ca\": \"/nonexistent/ca.pem\"},\n"
		"  {\"name\": \"app\", \"type\": \"http\", \"url\": \"https://127.0.0.1/\", \"ca\": \"/nonexistent/app-ca.pem\"}\n"
		"], \"alerts\": {\"webhooks\": [{\"url\": \"http://127.0.0.1:1/\",\n"
		"  \"headers\": {\"Authorization\": {\"file\": \"/nonexistent/token\"}}}]}}";
	static const char bad[] = "{\"checks\": [{\"name\": \"db\", \"type\": \"redis\", \"host\": \"h\", "
				  "\"password_file\": \"/nonexistent/pw\", \"port\": 0}]}";
	struct hd_config_opts opts = {.no_files = true};
	char *error = NULL;
	struct hd_config *cfg;

	(void)unused;
	assert_null(config_parse("t.json", text, strlen(text), &error)); /* as today without the flag */
	printf("without --no-secrets: %s\n", error);
	free(error);
	cfg = config_parse_opts("t.json", text, strlen(text), &opts, &error);
	if (cfg == NULL)
		fail_msg("with no_files: %s", error);
	assert_int_equal(cfg->n_unopened, 4);
	assert_string_equal(cfg->unopened[0], "/nonexistent/db.pw");
	config_free(cfg);
	assert_null(config_parse_opts("t.json", bad, strlen(bad), &opts, &error)); /* other errors still count */
	assert_non_null(strstr(error, "expected an integer from 1 to 65535"));
	free(error);
}

/* Every number is range-checked before it is converted: 1e300 is a clear error, not undefined behaviour. */
static void test_huge_numbers_are_errors(void **unused)
{
	static const struct {
		const char *check_keys, *want;
	} cases[] = {
		{"\"type\": \"http\", \"url\": \"http://h/\", \"expect_status\": 1e300",
		 "expected a status code from 100 to 599, got 1e+300"},
		{"\"type\": \"http\", \"url\": \"http://h/\", \"expect_status\": -1e300",
		 "expected a status code from 100 to 599, got -1e+300"},
		{"\"type\": \"http\", \"url\": \"http://h/\", \"expect_status\": 1e999",
		 "expected a status code from 100 to 599, got inf"},
		{"\"type\": \"http\", \"url\": \"http://h/\", \"expect_status\": 200.5",
		 "expected a status code from 100 to 599, got 200.5"},
		{"\"type\": \"tcp\", \"host\": \"h\", \"port\": 1e300", "expected an integer from 1 to 65535, got 1e+300"},
		{"\"type\": \"tcp\", \"host\": \"h\", \"port\": 80, \"interval_ms\": -1e300",
		 "expected an integer from 100 to 86400000, got -1e+300"},
	};
	char text[512], *error;

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"c\", %s}]}", cases[i].check_keys);
		error = parse_error(text);
		printf("%s\n", error);
		if (strstr(error, cases[i].want) == NULL)
			fail_msg("for %s: expected \"%s\", got %s", cases[i].check_keys, cases[i].want, error);
		free(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax_errors_never_quote_a_password),
		cmocka_unit_test(test_errors_name_the_key_path_of_a_secret),
		cmocka_unit_test(test_fingerprint_is_a_digest),
		cmocka_unit_test(test_password_file_must_be_a_regular_file),
		cmocka_unit_test(test_no_files_checks_everything_else),
		cmocka_unit_test(test_huge_numbers_are_errors),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
