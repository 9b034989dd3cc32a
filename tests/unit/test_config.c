/* test_config.c: config_parse() on good files and on every kind of bad file, with the exact FILE:LINE:COL message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* ---- helpers ---- */

static struct hd_config *parse_ok(const char *text)
{
	char *error = NULL;
	struct hd_config *cfg = config_parse("healthd.json", text, strlen(text), &error);

	if (cfg == NULL)
		fail_msg("unexpected error: %s", error);
	assert_null(error);
	return cfg;
}

static void expect_error(const char *text, const char *want)
{
	char *error = NULL;
	struct hd_config *cfg = config_parse("healthd.json", text, strlen(text), &error);

	assert_null(cfg);
	assert_non_null(error);
	assert_string_equal(error, want);
	free(error);
}

/* The registered check types, as the messages list them: "tcp, disk, ..." */
static void type_list(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; hd_check_types[i] != NULL; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", hd_check_types[i]->name);
}

/* ---- good files ---- */

static void minimal_file_gets_every_default(void **unused)
{
	struct hd_config *cfg = parse_ok("{\"checks\": []}");
	char host[256] = "";

	(void)unused;
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(cfg->node_name, host);
	assert_string_equal(cfg->listen.http, "0.0.0.0:9110");
	assert_string_equal(cfg->listen.agent, "0.0.0.0:9111");
	assert_string_equal(cfg->listen.admin_socket, "/run/healthd/healthd.sock");
	assert_string_equal(cfg->state_dir, "/var/lib/healthd");
	assert_int_equal(cfg->shutdown_grace_ms, 6000);
	assert_int_equal(cfg->agent.ready_window_ms, 10000);
	assert_int_equal(cfg->defaults.interval_ms, 2000);
	assert_int_equal(cfg->defaults.timeout_ms, 1000);
	assert_int_equal(cfg->defaults.rise, 2);
	assert_int_equal(cfg->defaults.fall, 3);
	assert_int_equal(cfg->agent.degraded_weight_pct, 50);
	assert_int_equal(cfg->agent.max_connections, 256);
	assert_int_equal(cfg->agent.timeout_ms, 2000);
	assert_int_equal(cfg->http.max_connections, 512);
	assert_int_equal(cfg->http.timeout_ms, 3000);
	assert_int_equal(cfg->http.max_connections_per_source, 64);
	assert_int_equal(cfg->agent.max_connections_per_source, 64);
	assert_false(cfg->http.allow_from.set);
	assert_false(cfg->http.details_from.set);
	assert_false(cfg->agent.allow_from.set);
	assert_int_equal(cfg->http.max_header_bytes, 8192);
	assert_false(cfg->log.syslog);
	assert_int_equal(cfg->log.level, HD_LOG_INFO);
	assert_null(cfg->alerts);
	assert_int_equal(cfg->n_checks, 0);
	assert_string_equal(cfg->path, "healthd.json");
	config_free(cfg);
}

static const char full_file[] =
	"{\n"
	"  \"node_name\": \"web-7\",\n"
	"  \"listen\": {\"http\": \"127.0.0.1:8080\", \"agent\": \"[::1]:8081\", \"admin_socket\": \"/tmp/h.sock\"},\n"
	"  \"defaults\": {\"interval_ms\": 5000, \"timeout_ms\": 1500, \"rise\": 4, \"fall\": 5},\n"
	"  \"agent\": {\"degraded_weight_pct\": 25},\n"
	"  \"log\": {\"level\": \"debug\", \"syslog\": true},\n"
	"  \"checks\": [\n"
	"    {\"name\": \"db\", \"type\": \"tcp\", \"host\": \"10.0.13.1\", \"port\": 3306},\n"
	"    {\"name\": \"cache\", \"type\": \"tcp\", \"host\": \"::1\", \"port\": 6379, \"critical\": false,\n"
	"     \"interval_ms\": 700, \"timeout_ms\": 300, \"rise\": 1, \"fall\": 2},\n"
	"    {\"name\": \"data.disk-1\", \"type\": \"disk\", \"path\": \"/var/lib/mysql\"}\n"
	"  ]\n"
	"}\n";

static void sections_and_defaults_apply_and_checks_override_them(void **unused)
{
	struct hd_config *cfg = parse_ok(full_file);
	const struct hd_check_conf *db, *cache, *disk;

	(void)unused;
	assert_string_equal(cfg->node_name, "web-7");
	assert_string_equal(cfg->listen.http, "127.0.0.1:8080");
	assert_string_equal(cfg->listen.agent, "[::1]:8081");
	assert_int_equal(cfg->agent.degraded_weight_pct, 25);
	assert_int_equal(cfg->agent.max_connections, 256); /* untouched keys of a present section keep their default */
	assert_true(cfg->log.syslog);
	assert_int_equal(cfg->log.level, HD_LOG_DEBUG);
	assert_int_equal(cfg->n_checks, 3);

	db = config_find_check(cfg, "db");
	assert_non_null(db);
	assert_string_equal(db->type->name, "tcp");
	assert_true(db->critical);
	assert_int_equal(db->interval_ms, 5000);
	assert_int_equal(db->timeout_ms, 1500);
	assert_int_equal(db->rise, 4);
	assert_int_equal(db->fall, 5);
	assert_string_equal(db->target, "10.0.13.1:3306");

	cache = config_find_check(cfg, "cache");
	assert_non_null(cache);
	assert_false(cache->critical);
	assert_int_equal(cache->interval_ms, 700);
	assert_int_equal(cache->timeout_ms, 300);
	assert_int_equal(cache->rise, 1);
	assert_int_equal(cache->fall, 2);
	assert_string_equal(cache->target, "[::1]:6379");

	disk = config_find_check(cfg, "data.disk-1");
	assert_non_null(disk);
	assert_string_equal(disk->type->name, "disk");
	assert_string_equal(disk->target, "/var/lib/mysql");
	assert_int_equal(disk->interval_ms, 5000);

	assert_null(config_find_check(cfg, "nope"));
	config_free(cfg);
}

/* A reload keeps a check's state only when its fingerprint is unchanged: inherited values are part of it. */
static void fingerprint_changes_with_any_effective_value(void **unused)
{
	struct hd_config *a = parse_ok("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}");
	struct hd_config *same = parse_ok("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}");
	struct hd_config *port = parse_ok("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 2}]}");
	struct hd_config *inherited = parse_ok("{\"defaults\": {\"fall\": 9}, "
					       "\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}");

	(void)unused;
	assert_string_equal(a->checks[0]->fingerprint, same->checks[0]->fingerprint);
	assert_string_not_equal(a->checks[0]->fingerprint, port->checks[0]->fingerprint);
	assert_string_not_equal(a->checks[0]->fingerprint, inherited->checks[0]->fingerprint);
	config_free(a);
	config_free(same);
	config_free(port);
	config_free(inherited);
}

/* ---- bad files: the exact message, position and key path ---- */

static void invalid_json_points_at_the_spot(void **unused)
{
	(void)unused;
	expect_error("{\n"
		     "  \"checks\": [\n"
		     "    {\"name\": \"db\" \"type\": \"tcp\"}\n"
		     "  ]\n"
		     "}\n",
		     "healthd.json:3:19: invalid JSON: cannot continue at a string "
		     "(a comma missing or one too many, a missing colon, bracket or quote, just before it?)");
	expect_error("{\n"
		     "  \"checks\": [\n",
		     "healthd.json:3:1: invalid JSON: the text ends too early (an unclosed { [ or \"?)");
	expect_error("{\"checks\": []}\n"
		     "{\"checks\": []}\n",
		     "healthd.json:2:1: invalid JSON: more text after the end of the top-level object");
	expect_error("", "healthd.json:1:1: invalid JSON: the text ends too early (an unclosed { [ or \"?)");
}

static void top_level_must_be_an_object_with_checks(void **unused)
{
	(void)unused;
	expect_error("[]", "healthd.json:1:1: expected a JSON object at the top, got an array");
	expect_error("{}", "healthd.json:1:1: missing required key \"checks\" (an array of checks)");
	expect_error("{\"checks\": {}}", "healthd.json:1:12: checks: expected an array of check objects, got an object");
}

static void unknown_top_level_key(void **unused)
{
	(void)unused;
	expect_error("{\n"
		     "  \"chekcs\": []\n"
		     "}\n",
		     "healthd.json:2:3: chekcs: unknown key \"chekcs\" (did you mean \"checks\"?)");
	expect_error("{\"checks\": [], \"metrics\": {}}",
		     "healthd.json:1:16: metrics: unknown key \"metrics\" (expected one of: node_name, state_dir, "
		     "shutdown_grace_ms, listen, defaults, agent, http, log, history, checks, alerts)");
}

static void unknown_check_key_suggests_the_close_one(void **unused)
{
	(void)unused;
	expect_error("{\n"
		     "  \"checks\": [\n"
		     "    {\n"
		     "      \"name\": \"db\",\n"
		     "      \"type\": \"tcp\",\n"
		     "      \"host\": \"127.0.0.1\",\n"
		     "      \"prot\": 3306\n"
		     "    }\n"
		     "  ]\n"
		     "}\n",
		     "healthd.json:7:7: checks[\"db\"].prot: unknown key \"prot\" (did you mean \"port\"?)");
	expect_error("{\"listen\": {\"htp\": \"127.0.0.1:1\"}, \"checks\": []}",
		     "healthd.json:1:13: listen.htp: unknown key \"htp\" (did you mean \"http\"?)");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1, \"color\": 1}]}",
		     "healthd.json:1:67: checks[\"db\"].color: unknown key \"color\" (expected one of: name, type, critical, "
		     "interval_ms, timeout_ms, rise, fall, fastinterval_ms, downinterval_ms, labels, runbook_url, host, port, expect, blocked_kinds)");
}

static void wrong_types(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": \"3306\"}]}",
		     "healthd.json:1:64: checks[\"db\"].port: expected an integer from 1 to 65535, got a string (\"3306\")");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1, \"critical\": \"yes\"}]}",
		     "healthd.json:1:79: checks[\"db\"].critical: expected true or false, got a string (\"yes\")");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": 7, \"port\": 1}]}",
		     "healthd.json:1:51: checks[\"db\"].host: expected a non-empty string, got a number");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"\", \"port\": 1}]}",
		     "healthd.json:1:51: checks[\"db\"].host: expected a non-empty string, got an empty string");
	expect_error("{\"log\": {\"level\": \"verbose\"}, \"checks\": []}",
		     "healthd.json:1:19: log.level: expected one of \"error\", \"warning\", \"info\", \"debug\", got \"verbose\"");
	expect_error("{\"checks\": [\"db\"]}", "healthd.json:1:13: checks[0]: expected a check object, got a string");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": 3}]}",
		     "healthd.json:1:36: checks[\"db\"].type: expected a check type name, got a number");
}

static void numbers_out_of_range_or_not_integers(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 70000}]}",
		     "healthd.json:1:64: checks[\"db\"].port: expected an integer from 1 to 65535, got 70000");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 0}]}",
		     "healthd.json:1:64: checks[\"db\"].port: expected an integer from 1 to 65535, got 0");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 33.5}]}",
		     "healthd.json:1:64: checks[\"db\"].port: expected an integer from 1 to 65535, got 33.5");
	expect_error("{\"defaults\": {\"rise\": 1e3}, \"checks\": []}",
		     "healthd.json:1:23: defaults.rise: expected an integer from 1 to 100, got 1000");
	expect_error("{\"checks\": [{\"name\": \"d\", \"type\": \"disk\", \"path\": \"/x\", \"max_used_pct\": 101}]}",
		     "healthd.json:1:73: checks[\"d\"].max_used_pct: expected an integer from 1 to 100, got 101");
}

static void duplicate_check_names(void **unused)
{
	(void)unused;
	expect_error("{\n"
		     "  \"checks\": [\n"
		     "    {\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1},\n"
		     "    {\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 2}\n"
		     "  ]\n"
		     "}\n",
		     "healthd.json:4:14: checks[\"db\"].name: duplicate check name \"db\" (checks[0], line 3, has it too)");
}

static void duplicate_keys(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1, \"port\": 2}]}",
		     "healthd.json:1:67: checks[\"db\"].port: duplicate key \"port\"");
	expect_error("{\"checks\": [], \"checks\": []}", "healthd.json:1:16: checks: duplicate key \"checks\"");
}

static void missing_required_keys(void **unused)
{
	char want[512], types[256];

	(void)unused;
	expect_error("{\n"
		     "  \"checks\": [\n"
		     "    {\"name\": \"db\", \"type\": \"tcp\", \"host\": \"127.0.0.1\"}\n"
		     "  ]\n"
		     "}\n",
		     "healthd.json:3:5: checks[\"db\"]: missing required key \"port\" (TCP port)");
	expect_error("{\"checks\": [{\"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}",
		     "healthd.json:1:13: checks[0]: missing required key \"name\" (unique name, letters, digits, '_', '.', "
		     "'-' (at most 63))");
	expect_error("{\"checks\": [{\"name\": \"d\", \"type\": \"disk\"}]}",
		     "healthd.json:1:13: checks[\"d\"]: missing required key \"path\" (absolute path of a directory on the "
		     "filesystem to watch; the probe file .healthd-probe.NAME is written there)");
	type_list(types, sizeof(types));
	snprintf(want, sizeof(want), "healthd.json:1:13: checks[\"db\"]: missing required key \"type\" (one of: %s)", types);
	expect_error("{\"checks\": [{\"name\": \"db\", \"host\": \"h\", \"port\": 1}]}", want);
}

static void unknown_check_type(void **unused)
{
	char want[512], types[256];

	(void)unused;
	type_list(types, sizeof(types));
	snprintf(want, sizeof(want), "healthd.json:1:36: checks[\"db\"].type: unknown check type \"tpc\" (expected one of: %s)",
		 types);
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tpc\", \"host\": \"h\", \"port\": 1}]}", want);
}

static void invalid_check_names(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"db 1\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}",
		     "healthd.json:1:22: checks[\"db 1\"].name: \"db 1\" is not a valid check name "
		     "(1 to 63 of A-Z a-z 0-9 _ . -)");
	expect_error("{\"checks\": [{\"name\": \"db/main\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}",
		     "healthd.json:1:22: checks[\"db/main\"].name: \"db/main\" is not a valid check name "
		     "(1 to 63 of A-Z a-z 0-9 _ . -)");
	expect_error("{\"checks\": [{\"name\": \"0123456789012345678901234567890123456789012345678901234567890123\", "
		     "\"type\": \"tcp\", \"host\": \"h\", \"port\": 1}]}",
		     "healthd.json:1:22: checks[\"0123456789012345678901234567890123456789012345678901234567890123\"].name: "
		     "\"0123456789012345678901234567890123456789012345678901234567890123\" is not a valid check name "
		     "(1 to 63 of A-Z a-z 0-9 _ . -)");
}

static void timeout_must_not_exceed_interval(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1, \"timeout_ms\": 3000}]}",
		     "healthd.json:1:81: checks[\"db\"].timeout_ms: timeout_ms (3000) must not exceed interval_ms (2000): "
		     "one attempt must end before the next");
	expect_error("{\"checks\": [{\"name\": \"db\", \"type\": \"tcp\", \"host\": \"h\", \"port\": 1, \"interval_ms\": 500}]}",
		     "healthd.json:1:82: checks[\"db\"].interval_ms: timeout_ms (1000) must not exceed interval_ms (500): "
		     "one attempt must end before the next");
	expect_error("{\"defaults\": {\"timeout_ms\": 5000}, \"checks\": []}",
		     "healthd.json:1:29: defaults.timeout_ms: timeout_ms (5000) must not exceed interval_ms (2000): "
		     "one attempt must end before the next");
}

static void bad_listen_addresses(void **unused)
{
	(void)unused;
	expect_error("{\"listen\": {\"http\": \"127.0.0.1\"}, \"checks\": []}",
		     "healthd.json:1:21: listen.http: expected \"ADDR:PORT\", got \"127.0.0.1\"");
	expect_error("{\"listen\": {\"http\": \"127.0.0.1:0\"}, \"checks\": []}",
		     "healthd.json:1:21: listen.http: port must be a number from 1 to 65535, got \"127.0.0.1:0\"");
	expect_error("{\"listen\": {\"agent\": \"[::1:9111\"}, \"checks\": []}",
		     "healthd.json:1:22: listen.agent: expected \"[IPv6]:PORT\", got \"[::1:9111\"");
	expect_error("{\"listen\": {\"http\": 9110}, \"checks\": []}",
		     "healthd.json:1:21: listen.http: expected \"ADDR:PORT\", got a number");
	expect_error("{\"listen\": {\"agent\": \"localhost:9111\"}, \"checks\": []}",
		     "healthd.json:1:22: listen.agent: expected an IP address to listen on (names are not resolved here), "
		     "got \"localhost:9111\"");
}

static void disk_path_must_be_absolute(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"d\", \"type\": \"disk\", \"path\": \"var/lib\"}]}",
		     "healthd.json:1:51: checks[\"d\"].path: expected an absolute path (starting with /), got \"var/lib\"");
}

/* A probe slower than the attempt's deadline could never be "slow": it would always end as a timeout. */
static void disk_latency_limit_must_be_below_the_timeout(void **unused)
{
	(void)unused;
	expect_error("{\"checks\": [{\"name\": \"d\", \"type\": \"disk\", \"path\": \"/x\", \"timeout_ms\": 200}]}",
		     "healthd.json:1:71: checks[\"d\"].timeout_ms: max_latency_ms (300, the default) must be below "
		     "timeout_ms (200): a slower probe would end as a timeout");
	expect_error("{\"checks\": [{\"name\": \"d\", \"type\": \"disk\", \"path\": \"/x\", \"max_latency_ms\": 1000}]}",
		     "healthd.json:1:75: checks[\"d\"].max_latency_ms: max_latency_ms (1000) must be below "
		     "timeout_ms (1000): a slower probe would end as a timeout");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal_file_gets_every_default),
		cmocka_unit_test(sections_and_defaults_apply_and_checks_override_them),
		cmocka_unit_test(fingerprint_changes_with_any_effective_value),
		cmocka_unit_test(invalid_json_points_at_the_spot),
		cmocka_unit_test(top_level_must_be_an_object_with_checks),
		cmocka_unit_test(unknown_top_level_key),
		cmocka_unit_test(unknown_check_key_suggests_the_close_one),
		cmocka_unit_test(wrong_types),
		cmocka_unit_test(numbers_out_of_range_or_not_integers),
		cmocka_unit_test(duplicate_check_names),
		cmocka_unit_test(duplicate_keys),
		cmocka_unit_test(missing_required_keys),
		cmocka_unit_test(unknown_check_type),
		cmocka_unit_test(invalid_check_names),
		cmocka_unit_test(timeout_must_not_exceed_interval),
		cmocka_unit_test(bad_listen_addresses),
		cmocka_unit_test(disk_path_must_be_absolute),
		cmocka_unit_test(disk_latency_limit_must_be_below_the_timeout),
	};

	hd_log_init(false, HD_LOG_ERR); /* quiet */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
