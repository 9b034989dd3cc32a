/* test_alerts_config.c: the "alerts" section: defaults, header values read from files, and FILE:LINE:COL errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

static const char *head = "{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 3306}],\n";

/* Parses head + alerts text; returns the error (caller frees) or NULL when valid. */
static char *parse_error(const char *alerts)
{
	char *text = xasprintf("%s \"alerts\": %s\n}\n", head, alerts), *error = NULL;
	struct hd_config *cfg = config_parse("t.json", text, strlen(text), &error);

	if (cfg != NULL)
		assert_non_null(cfg->alerts);
	config_free(cfg);
	free(text);
	return error;
}

static void expect_error(const char *alerts, const char *expected)
{
	char *error = parse_error(alerts);

	assert_non_null(error);
	if (strstr(error, expected) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", expected, error);
	if (strstr(error, "S3cret") != NULL || strstr(error, "T0ken") != NULL) /* the secrets of the bad URLs below */
		fail_msg("a secret in \"%s\"", error);
	free(error);
}

static void test_valid(void **state)
{
	(void)state;
	assert_null(parse_error("{}"));
	assert_null(parse_error("{\"webhooks\": [{\"url\": \"http://127.0.0.1:9/hook\"},\n"
				"  {\"url\": \"https://am.example:9093/\", \"format\": \"alertmanager\", \"timeout_ms\": 2000},\n"
				"  {\"url\": \"https://hooks.slack.com/services/T/B/x\", \"format\": \"slack\",\n"
				"   \"headers\": {\"X-Team\": \"db\"}}],\n"
				" \"spool_dir\": \"/tmp/x\", \"repeat_interval_s\": 0, \"min_gap_s\": 0,\n"
				" \"retry_initial_ms\": 50, \"retry_max_ms\": 50, \"health_url\": \"http://10.0.0.5:9110\"}"));
}

static void test_header_from_file(void **state)
{
	char path[] = "/tmp/hd-token-XXXXXX", *alerts, *error;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\n", 7), 7);
	close(fd);
	alerts = xasprintf("{\"webhooks\": [{\"url\": \"http://127.0.0.1:9/\", \"headers\":\n"
			   "  {\"Authorization\": {\"file\": \"%s\", \"prefix\": \"Bearer \"}}}]}",
			   path);
	assert_null(parse_error(alerts));
	free(alerts);
	unlink(path);
	alerts = xasprintf("{\"webhooks\": [{\"url\": \"http://127.0.0.1:9/\", \"headers\":\n"
			   "  {\"Authorization\": {\"file\": \"%s\"}}}]}",
			   path);
	error = parse_error(alerts);
	assert_non_null(error);
	assert_non_null(strstr(error, "t.json:3:30: alerts.webhooks[0].headers.Authorization.file: cannot read the "
				      "value of header \"Authorization\" from /tmp/hd-token-"));
	assert_non_null(strstr(error, "No such file or directory"));
	free(error);
	free(alerts);
}

static void test_errors_point_at_the_value(void **state)
{
	(void)state;
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"formt\": \"slack\"}]}",
		     "t.json:2:47: alerts.webhooks[0].formt: unknown key \"formt\" (did you mean \"format\"?)");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"format\": \"teams\"}]}",
		     "t.json:2:57: alerts.webhooks[0].format: expected one of \"generic\", \"alertmanager\", \"slack\", got \"teams\"");
	expect_error("{\"webhooks\": [{\"url\": \"ftp://x/\"}]}",
		     "t.json:2:34: alerts.webhooks[0].url: expected an http:// or https:// URL without spaces");
	/* a bad URL is never quoted back: its user info, path or query may be the secret */
	expect_error("{\"webhooks\": [{\"url\": \"http://hook:S3cret@[::1/hook?token=T0ken\"}]}",
		     "t.json:2:34: alerts.webhooks[0].url: expected an http:// or https:// URL: Bad IPv6 address");
	expect_error("{\"webhooks\": [{\"url\": \"https://hook:S3cret@host:99999/T0ken\"}]}",
		     "t.json:2:34: alerts.webhooks[0].url: expected an http:// or https:// URL: Port number was not a decimal "
		     "number between 0 and 65535");
	expect_error("{\"webhooks\": [{\"format\": \"slack\"}]}",
		     "t.json:2:26: alerts.webhooks[0]: missing required key \"url\"");
	expect_error("{\"webhooks\": {\"url\": \"http://x/\"}}", "t.json:2:25: alerts.webhooks: expected an array");
	expect_error("{\"spool_dir\": \"spool\"}", "t.json:2:26: alerts.spool_dir: expected an absolute path");
	expect_error("{\"retry_initial_ms\": 500, \"retry_max_ms\": 100}",
		     "alerts.retry_max_ms: retry_max_ms (100) must be at least retry_initial_ms (500)");
	expect_error("{\"repeat_interval_s\": -1}", "alerts.repeat_interval_s: expected an integer from 0 to 604800, got -1");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"timeout_ms\": 500, \"connect_timeout_ms\": 900}]}",
		     "alerts.webhooks[0].connect_timeout_ms: connect_timeout_ms (900) must not exceed timeout_ms (500)");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\"}, {\"url\": \"http://x/\"}]}",
		     "alerts.webhooks[1]: the same url and format as alerts.webhooks[0]");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"headers\": {\"Bad Name\": \"v\"}}]}",
		     "alerts.webhooks[0].headers.Bad Name: \"Bad Name\" is not a valid header name");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"headers\": {\"X\": 5}}]}",
		     "alerts.webhooks[0].headers.X: expected a string, or {\"file\": PATH}");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"headers\": {\"X\": {\"path\": \"/x\"}}}]}",
		     "unknown key \"path\"");
}

/* Parses a whole file; returns the error (caller frees) or NULL. */
static char *parse_file_error(const char *text)
{
	char *error = NULL;
	struct hd_config *cfg = config_parse("t.json", text, strlen(text), &error);

	config_free(cfg);
	return error;
}

static void expect_file_error(const char *text, const char *expected)
{
	char *error = parse_file_error(text);

	assert_non_null(error);
	if (strstr(error, expected) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", expected, error);
	free(error);
}

static void test_labels_and_routing(void **state)
{
	const char *ok = "{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 3306,\n"
			 "  \"labels\": {\"service\": \"billing\", \"team\": \"dba\"},\n"
			 "  \"runbook_url\": \"https://wiki.example/runbooks/db\"}],\n"
			 " \"alerts\": {\"labels\": {\"team\": \"payments\", \"env\": \"prod\", \"_x9\": \"y\"}, \"job\": \"hd\",\n"
			 "  \"webhooks\": [{\"url\": \"http://127.0.0.1:9/a\", \"repeat_interval_s\": 0},\n"
			 "   {\"url\": \"http://127.0.0.1:9093\", \"format\": \"alertmanager\", \"resend_interval_s\": 30}]}}\n";
	char *error = NULL;
	struct hd_config *cfg;

	(void)state;
	cfg = config_parse("t.json", ok, strlen(ok), &error);
	if (cfg == NULL)
		fail_msg("%s", error);
	assert_int_equal(cfg->checks[0]->labels.n, 2);
	assert_string_equal(cfg->checks[0]->labels.names[0], "service");
	assert_string_equal(cfg->checks[0]->labels.values[1], "dba");
	assert_string_equal(cfg->checks[0]->runbook_url, "https://wiki.example/runbooks/db");
	config_free(cfg);

	/* names as Prometheus allows them, never one healthd sets; every error names file:line:col and the key */
	expect_error("{\"labels\": {\"9team\": \"x\"}}",
		     "t.json:2:24: alerts.labels.9team: \"9team\" is not a valid label name");
	expect_error("{\"labels\": {\"te-am\": \"x\"}}", "alerts.labels.te-am: \"te-am\" is not a valid label name");
	expect_error("{\"labels\": {\"__name\": \"x\"}}",
		     "alerts.labels.__name: label names starting with \"__\" are reserved");
	expect_error("{\"labels\": {\"instance\": \"x\"}}",
		     "t.json:2:24: alerts.labels.instance: label \"instance\" is set by healthd");
	expect_error("{\"labels\": {\"severity\": \"x\"}}", "label \"severity\" is set by healthd");
	expect_error("{\"labels\": {\"team\": \"\"}}", "t.json:2:32: alerts.labels.team: expected a non-empty string");
	expect_error("{\"labels\": {\"team\": 5}}", "alerts.labels.team: expected a non-empty string");
	expect_error("{\"labels\": {\"team\": \"a\\nb\"}}", "alerts.labels.team: expected one line");
	expect_error("{\"labels\": [\"team\"]}", "alerts.labels: expected an object of \"name\": \"value\" labels");
	expect_error("{\"job\": \"\"}", "alerts.job: expected a non-empty string");
	expect_file_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1,\n"
			  "  \"labels\": {\"check\": \"x\"}}]}",
			  "t.json:2:14: checks[\"db\"].labels.check: label \"check\" is set by healthd");
	expect_file_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1,\n"
			  "  \"runbook_url\": \"wiki/db\"}]}",
			  "t.json:2:18: checks[\"db\"].runbook_url: expected an http:// or https:// URL");
	/* reminders are per webhook, re-posts are Alertmanager's */
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"format\": \"alertmanager\", \"repeat_interval_s\": 60}]}",
		     "alerts.webhooks[0].repeat_interval_s: repeat_interval_s is not for an alertmanager webhook");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"resend_interval_s\": 60}]}",
		     "alerts.webhooks[0].resend_interval_s: resend_interval_s is for alertmanager webhooks only");
	expect_error("{\"webhooks\": [{\"url\": \"http://x/\", \"format\": \"alertmanager\", \"resend_interval_s\": 0}]}",
		     "alerts.webhooks[0].resend_interval_s: expected an integer from 1 to 3600");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_header_from_file),
		cmocka_unit_test(test_errors_point_at_the_value),
		cmocka_unit_test(test_labels_and_routing),
	};
	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
