/* test_alert_event.c: alert events: the summary a person reads, the JSON fields, each webhook format, backoff, the log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert_event.h"
#include "util.h"

/* 2026-11-23 04:12:07.250 UTC */
static int64_t at_041207(void)
{
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 4, .tm_min = 12, .tm_sec = 7};

	return (int64_t)timegm(&tm) * 1000 + 250;
}

static struct hd_alert_facts base_facts(enum hd_alert_event ev, enum hd_kind kind, enum hd_kind previous)
{
	return (struct hd_alert_facts){
		.event = ev,
		.id = "0b6f4a4e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
		.time_wall_ms = at_041207(),
		.host = "be3",
		.source_addr = "10.0.13.5",
		.check = "mysql",
		.type = "tcp",
		.target = "db1.example:3306",
		.peer = "10.0.13.1:3306",
		.kind = kind,
		.previous_kind = previous,
		.detail = "connect 10.0.13.1:3306: no answer within 1000 ms",
		.since_wall_ms = at_041207(),
		.critical = true,
		.health_url = "http://be3:9110/health/mysql",
	};
}

static void summary_of(const struct hd_alert_facts *f, char *buf, size_t len)
{
	hd_alert_summary(f, buf, len);
}

static void test_summary_regressions(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_TIMEOUT, HD_KIND_OK);
	char s[512];

	(void)state;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "traffic to 10.0.13.1:3306 silently dropped since 04:12:07 (firewall DROP?)");
	f.kind = HD_KIND_REFUSED;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "connections to 10.0.13.1:3306 refused since 04:12:07 (firewall REJECT, or nothing listening?)");
	f.kind = HD_KIND_UNREACHABLE;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "10.0.13.1:3306 unreachable since 04:12:07 (firewall REJECT, or no route?)");
	f.kind = HD_KIND_AUTH;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "10.0.13.1:3306 rejects our credentials since 04:12:07 (credentials or grants changed?)");
	f.kind = HD_KIND_DNS; /* the name, not an address it no longer has */
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "db1.example no longer resolves since 04:12:07 (DNS record removed, or the resolver down?)");
	f.kind = HD_KIND_TIMEOUT;
	f.peer = ""; /* never resolved: the configured target */
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "traffic to db1.example:3306 silently dropped since 04:12:07 (firewall DROP?)");
	f.target = "/var/lib/mysql"; /* a disk check that hangs is not a firewall */
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "I/O on /var/lib/mysql hangs since 04:12:07 (hung mount or failing disk?)");
}

static void test_summary_recovery_update_reminder(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_RECOVERY, HD_KIND_OK, HD_KIND_TIMEOUT);
	char s[512];

	(void)state;
	f.time_wall_ms = f.since_wall_ms + 725 * 1000;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "10.0.13.1:3306 healthy again after 12m05s (down since 04:12:07: silently dropped)");
	f.event = HD_ALERT_UPDATE;
	f.kind = HD_KIND_REFUSED;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "connections to 10.0.13.1:3306 refused now, down since 04:12:07 (was: silently dropped; "
			       "firewall REJECT, or nothing listening?)");
	f.event = HD_ALERT_REMINDER;
	f.time_wall_ms = f.since_wall_ms + 3720 * 1000;
	summary_of(&f, s, sizeof(s));
	assert_string_equal(s, "still down after 1h02m: connections to 10.0.13.1:3306 refused since 04:12:07 (firewall "
			       "REJECT, or nothing listening?)");
}

static void test_event_json_fields(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_RECOVERY, HD_KIND_OK, HD_KIND_TIMEOUT);
	static const char *const fields[] = {"id", "event", "time", "host", "check", "type", "target", "peer",
					     "source_addr", "kind", "previous_kind", "detail", "since", "summary",
					     "health_url", "healthd_version"};
	cJSON *o;

	(void)state;
	f.time_wall_ms = f.since_wall_ms + 90 * 1000;
	o = hd_alert_event_json(&f);
	for (size_t i = 0; i < HD_ARRAY_LEN(fields); i++)
		assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, fields[i])));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "event")->valuestring, "recovery");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "kind")->valuestring, "ok");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "previous_kind")->valuestring, "timeout");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "since")->valuestring, "2026-11-23T04:12:07.250Z");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "healthd_version")->valuestring, HD_VERSION);
	assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(o, "down_for_s")->valuedouble, 90);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "critical")));
	assert_int_equal(hd_parse_iso8601(cJSON_GetObjectItemCaseSensitive(o, "time")->valuestring), f.time_wall_ms);
	cJSON_Delete(o);
}

static cJSON *render(enum hd_alert_format fmt, const struct hd_alert_facts *f, int64_t now, int repeat)
{
	cJSON *event = hd_alert_event_json(f), *out;
	char *body = hd_alert_render(fmt, event, now, repeat);

	assert_non_null(body);
	out = cJSON_Parse(body);
	assert_non_null(out);
	free(body);
	cJSON_Delete(event);
	return out;
}

static const char *label(const cJSON *alert, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(alert, "labels"), name)->valuestring;
}

static void test_alertmanager(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_TIMEOUT, HD_KIND_OK);
	int64_t now = at_041207() + 5000;
	char expect_end[32];
	cJSON *list, *a;

	(void)state;
	list = render(HD_FORMAT_ALERTMANAGER, &f, now, 60);
	assert_int_equal(cJSON_GetArraySize(list), 1);
	a = cJSON_GetArrayItem(list, 0);
	assert_string_equal(label(a, "alertname"), "HealthdCheckDown");
	assert_string_equal(label(a, "instance"), "be3");
	assert_string_equal(label(a, "check"), "mysql");
	assert_string_equal(label(a, "kind"), "timeout");
	assert_string_equal(label(a, "severity"), "critical");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "startsAt")->valuestring, "2026-11-23T04:12:07.250Z");
	hd_iso8601(now + 240000, expect_end, sizeof(expect_end)); /* firing for 4 re-send periods */
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "endsAt")->valuestring, expect_end);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "generatorURL")->valuestring, "http://be3:9110/health/mysql");
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "annotations"), "summary"));
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "annotations"), "detail"));
	cJSON_Delete(list);

	/* recovery: the alert with the kind it was down with ends when it recovered */
	f = base_facts(HD_ALERT_RECOVERY, HD_KIND_OK, HD_KIND_TIMEOUT);
	f.time_wall_ms += 60000;
	f.critical = false;
	list = render(HD_FORMAT_ALERTMANAGER, &f, now + 99000, 60);
	assert_int_equal(cJSON_GetArraySize(list), 1);
	a = cJSON_GetArrayItem(list, 0);
	assert_string_equal(label(a, "kind"), "timeout");
	assert_string_equal(label(a, "severity"), "warning");
	hd_iso8601(f.time_wall_ms, expect_end, sizeof(expect_end));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(a, "endsAt")->valuestring, expect_end);
	cJSON_Delete(list);

	/* update: kind is a label, so the old alert ends and a new one fires */
	f = base_facts(HD_ALERT_UPDATE, HD_KIND_REFUSED, HD_KIND_TIMEOUT);
	list = render(HD_FORMAT_ALERTMANAGER, &f, now, 0);
	assert_int_equal(cJSON_GetArraySize(list), 2);
	assert_string_equal(label(cJSON_GetArrayItem(list, 0), "kind"), "timeout");
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "endsAt"));
	assert_string_equal(label(cJSON_GetArrayItem(list, 1), "kind"), "refused");
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 1), "endsAt")); /* no re-posts: AM decides */
	cJSON_Delete(list);
}

static void test_slack(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_TIMEOUT, HD_KIND_OK);
	const char *text;
	cJSON *o;

	(void)state;
	f.detail = "query <select 1> & co";
	o = render(HD_FORMAT_SLACK, &f, at_041207(), 60);
	text = cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring;
	assert_non_null(strstr(text, "*DOWN*"));
	assert_non_null(strstr(text, "`mysql` on *be3*"));
	assert_non_null(strstr(text, "traffic to 10.0.13.1:3306 silently dropped since 04:12:07"));
	assert_non_null(strstr(text, "query &lt;select 1&gt; &amp; co"));
	assert_non_null(strstr(text, "from 10.0.13.5"));
	assert_non_null(strstr(text, "<http://be3:9110/health/mysql|/health/mysql>"));
	cJSON_Delete(o);
	f.event = HD_ALERT_RECOVERY;
	o = render(HD_FORMAT_SLACK, &f, at_041207(), 60);
	assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring, "*RECOVERED*"));
	cJSON_Delete(o);
}

static const char *annotation(const cJSON *alert, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(alert, "annotations"), name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* alerts.labels and the check's labels reach every format; the check's win; healthd's own labels stay its own. */
static void test_routing_labels(void **state)
{
	char *team = "team", *env = "env", *service = "service", *payments = "payments", *prod = "prod", *dba = "dba",
	     *billing = "bill<ing>&";
	char *global_names[] = {team, env}, *global_values[] = {payments, prod};
	char *check_names[] = {team, service}, *check_values[] = {dba, billing};
	struct hd_labels global = {2, global_names, global_values}, own = {2, check_names, check_values};
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_TIMEOUT, HD_KIND_OK);
	cJSON *event, *labels, *list, *a, *o;
	const char *text;

	(void)state;
	f.instance = "10.0.1.13:9110";
	f.job = "healthd-db";
	f.labels = &global;
	f.check_labels = &own;
	f.runbook_url = "https://wiki.example/runbooks/mysql?a=1&b=2";
	f.time_wall_ms += 185000;
	event = hd_alert_event_json(&f);
	labels = cJSON_GetObjectItemCaseSensitive(event, "labels");
	assert_int_equal(cJSON_GetArraySize(labels), 3);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "team")->valuestring, "dba");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(labels, "env")->valuestring, "prod");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(event, "instance")->valuestring, "10.0.1.13:9110");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(event, "job")->valuestring, "healthd-db");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(event, "runbook_url")->valuestring, f.runbook_url);
	cJSON_Delete(event);

	list = render(HD_FORMAT_ALERTMANAGER, &f, at_041207(), 60);
	a = cJSON_GetArrayItem(list, 0);
	assert_string_equal(label(a, "instance"), "10.0.1.13:9110"); /* as Prometheus scrapes it: inhibit rules match */
	assert_string_equal(label(a, "node"), "be3");
	assert_string_equal(label(a, "job"), "healthd-db");
	assert_string_equal(label(a, "team"), "dba");
	assert_string_equal(label(a, "env"), "prod");
	assert_string_equal(label(a, "service"), "bill<ing>&");
	assert_string_equal(label(a, "alertname"), "HealthdCheckDown");
	assert_string_equal(annotation(a, "runbook_url"), f.runbook_url);
	assert_string_equal(annotation(a, "description"),
			    "tcp check mysql on be3 (10.0.1.13:9110) to db1.example:3306 at 10.0.13.1:3306 from 10.0.13.5: "
			    "connect 10.0.13.1:3306: no answer within 1000 ms. Down since 04:12:07 UTC, for 3m05s.");
	cJSON_Delete(list);

	/* Slack: every text escaped, the labels on a line, the runbook a link (its & escaped) */
	f.check_labels = NULL;
	f.host = "be3<&>";
	o = render(HD_FORMAT_SLACK, &f, at_041207(), 0);
	text = cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring;
	assert_non_null(strstr(text, "on *be3&lt;&amp;&gt;*"));
	assert_non_null(strstr(text, "\nlabels: team=payments · env=prod"));
	assert_non_null(strstr(text, " · <https://wiki.example/runbooks/mysql?a=1&amp;b=2|runbook>"));
	cJSON_Delete(o);
	own.names[1] = "x";
	own.values[1] = "<!channel>";
	f.check_labels = &own;
	o = render(HD_FORMAT_SLACK, &f, at_041207(), 0);
	text = cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring;
	assert_null(strstr(text, "<!channel>")); /* a label cannot page the whole channel */
	assert_non_null(strstr(text, "x=&lt;!channel&gt;"));
	cJSON_Delete(o);
}

/* An event spooled by an older healthd (no instance, job, labels, runbook) still renders. */
static void test_render_older_spooled_event(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_REFUSED, HD_KIND_OK);
	cJSON *event = hd_alert_event_json(&f), *list, *a;
	char *body;

	(void)state;
	cJSON_DeleteItemFromObjectCaseSensitive(event, "instance");
	cJSON_DeleteItemFromObjectCaseSensitive(event, "job");
	cJSON_DeleteItemFromObjectCaseSensitive(event, "labels");
	cJSON_DeleteItemFromObjectCaseSensitive(event, "runbook_url");
	assert_true(hd_alert_event_valid(event));
	body = hd_alert_render(HD_FORMAT_ALERTMANAGER, event, at_041207(), 60);
	assert_non_null(body);
	list = cJSON_Parse(body);
	a = cJSON_GetArrayItem(list, 0);
	assert_string_equal(label(a, "instance"), "be3");
	assert_string_equal(label(a, "job"), "healthd");
	assert_null(annotation(a, "runbook_url"));
	cJSON_Delete(list);
	free(body);
	cJSON_Delete(event);
}

static void test_render_refuses_foreign_json(void **state)
{
	cJSON *o = cJSON_Parse("{\"event\":\"regression\",\"check\":\"x\"}");

	(void)state;
	assert_null(hd_alert_render(HD_FORMAT_GENERIC, o, 0, 0));
	cJSON_Delete(o);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(hd_alert_backoff_ms(1, 1000, 60000, 0.0), 500);
	assert_int_equal(hd_alert_backoff_ms(1, 1000, 60000, 0.999999), 999);
	assert_int_equal(hd_alert_backoff_ms(3, 1000, 60000, 0.0), 2000);
	assert_int_equal(hd_alert_backoff_ms(30, 1000, 60000, 0.0), 30000); /* capped, no overflow */
	for (int n = 1; n < 100; n++) {
		int64_t d = hd_alert_backoff_ms(n, 50, 300, (double)n / 100.0);
		assert_true(d >= 25 && d <= 300);
	}
}

static void test_log_line_and_ids(void **state)
{
	struct hd_alert_facts f = base_facts(HD_ALERT_REGRESSION, HD_KIND_TIMEOUT, HD_KIND_OK);
	cJSON *o;
	char *line, a[37], b[37];

	(void)state;
	f.detail = "say \"hi\"";
	o = hd_alert_event_json(&f);
	line = hd_alert_log_line(o, "queued:1");
	assert_true(strncmp(line, "event=regression delivery=queued:1 id=0b6f4a4e", 46) == 0);
	assert_non_null(strstr(line, " check=mysql "));
	assert_non_null(strstr(line, " kind=timeout previous_kind=ok "));
	assert_non_null(strstr(line, " detail=\"say \\\"hi\\\"\" "));
	assert_non_null(strstr(line, " summary=\"traffic to 10.0.13.1:3306 silently dropped since 04:12:07 (firewall DROP?)\""));
	free(line);
	cJSON_Delete(o);
	hd_alert_new_id(a);
	hd_alert_new_id(b);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_string_not_equal(a, b);
	assert_int_equal(hd_parse_iso8601("2026-11-23T04:12:07.250Z"), at_041207());
	assert_int_equal(hd_parse_iso8601("yesterday"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_regressions),
		cmocka_unit_test(test_summary_recovery_update_reminder),
		cmocka_unit_test(test_event_json_fields),
		cmocka_unit_test(test_alertmanager),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_routing_labels),
		cmocka_unit_test(test_render_older_spooled_event),
		cmocka_unit_test(test_render_refuses_foreign_json),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_log_line_and_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
