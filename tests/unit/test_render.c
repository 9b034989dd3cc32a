/* test_render.c: a check as JSON (/health/NAME) and the status bodies, from hand-built state; no loop runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "status.h"

#define T_SINCE 1795000000123LL   /* 2026-11-18T11:06:40.123Z */
#define T_CHECKED 1795000012007LL /* 2026-11-18T11:06:52.007Z */

static char check_name[] = "db";
static char check_target[] = "10.0.13.1:3306";

static struct hd_check_conf tcp_conf(void)
{
	return (struct hd_check_conf){.name = check_name, .type = hd_check_type_find("tcp"), .critical = true,
				      .interval_ms = 2000, .timeout_ms = 1000, .rise = 2, .fall = 3,
				      .target = check_target};
}

static const cJSON *field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (v == NULL)
		fail_msg("field \"%s\" is missing", key);
	return v;
}

static void has_string(const cJSON *o, const char *key, const char *want)
{
	const cJSON *v = field(o, key);

	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, want);
}

static void has_number(const cJSON *o, const char *key, double want)
{
	const cJSON *v = field(o, key);

	assert_true(cJSON_IsNumber(v));
	assert_true(v->valuedouble == want);
}

static void has_null(const cJSON *o, const char *key)
{
	assert_true(cJSON_IsNull(field(o, key)));
}

static void has_bool(const cJSON *o, const char *key, bool want)
{
	const cJSON *v = field(o, key);

	assert_true(cJSON_IsBool(v));
	assert_int_equal(cJSON_IsTrue(v), want);
}

static struct hd_result result(enum hd_kind kind, const char *detail, double latency_ms, int64_t wall_ms)
{
	struct hd_result r = {.kind = kind, .latency_ms = latency_ms, .wall_ms = wall_ms};

	hd_strlcpy(r.detail, detail, sizeof(r.detail));
	hd_strlcpy(r.peer, "10.0.13.1:3306", sizeof(r.peer));
	hd_strlcpy(r.source_addr, "10.0.13.7", sizeof(r.source_addr));
	return r;
}

static void up_check(void **unused)
{
	struct hd_check_conf conf = tcp_conf();
	struct hd_check c = {.conf = &conf, .state = HD_STATE_UP, .since_wall_ms = T_SINCE, .consecutive_successes = 12};
	cJSON *o;

	(void)unused;
	c.last = result(HD_KIND_OK, "connect 10.0.13.1:3306: connected", 1.2344, T_CHECKED);
	o = hd_check_to_json(&c);
	has_string(o, "status", "up");
	has_string(o, "kind", "ok");
	has_string(o, "detail", "connect 10.0.13.1:3306: connected");
	has_number(o, "latency_ms", 1.234);
	has_string(o, "since", "2026-11-18T11:06:40.123Z");
	has_string(o, "last_checked", "2026-11-18T11:06:52.007Z");
	has_number(o, "consecutive_failures", 0);
	has_bool(o, "critical", true);
	has_string(o, "type", "tcp");
	has_string(o, "target", "10.0.13.1:3306");
	has_string(o, "address", "10.0.13.1:3306");
	has_string(o, "source_addr", "10.0.13.7");
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "consecutive_successes")); /* only while down */
	cJSON_Delete(o);
}

static void down_check(void **unused)
{
	struct hd_check_conf conf = tcp_conf();
	struct hd_check c = {.conf = &conf, .state = HD_STATE_DOWN, .down_kind = HD_KIND_TIMEOUT,
			     .since_wall_ms = T_SINCE, .consecutive_failures = 4};
	cJSON *o;

	(void)unused;
	conf.critical = false;
	c.last = result(HD_KIND_TIMEOUT, "connect 10.0.13.1:3306: no answer within 1000 ms", 1000.5, T_CHECKED);
	o = hd_check_to_json(&c);
	has_string(o, "status", "down");
	has_string(o, "kind", "timeout");
	has_string(o, "detail", "connect 10.0.13.1:3306: no answer within 1000 ms");
	has_number(o, "latency_ms", 1000.5);
	has_string(o, "since", "2026-11-18T11:06:40.123Z");
	has_string(o, "last_checked", "2026-11-18T11:06:52.007Z");
	has_number(o, "consecutive_failures", 4);
	has_number(o, "consecutive_successes", 0);
	has_bool(o, "critical", false);
	has_string(o, "target", "10.0.13.1:3306");
	cJSON_Delete(o);
}

/* Down, but the latest attempt passed (rise not reached yet): why it is down stays visible. */
static void down_and_rising_check_keeps_the_reason(void **unused)
{
	struct hd_check_conf conf = tcp_conf();
	struct hd_check c = {.conf = &conf, .state = HD_STATE_DOWN, .down_kind = HD_KIND_REFUSED,
			     .since_wall_ms = T_SINCE, .consecutive_successes = 1};
	cJSON *o;

	(void)unused;
	struct hd_result refused = result(HD_KIND_REFUSED, "connect 10.0.13.1:3306: Connection refused", 0.2, T_SINCE);
	c.failure_before = &refused;
	c.last = result(HD_KIND_OK, "connect 10.0.13.1:3306: connected", 0.3, T_CHECKED);
	o = hd_check_to_json(&c);
	has_string(o, "status", "down");
	has_string(o, "kind", "refused");
	has_string(o, "detail", "connect 10.0.13.1:3306: Connection refused");
	has_string(o, "last_checked", "2026-11-18T11:06:52.007Z");
	has_number(o, "consecutive_failures", 0);
	has_number(o, "consecutive_successes", 1);
	cJSON_Delete(o);
}

static void pending_check(void **unused)
{
	struct hd_check_conf conf = tcp_conf();
	struct hd_check c = {.conf = &conf, .state = HD_STATE_PENDING};
	cJSON *o;

	(void)unused;
	o = hd_check_to_json(&c);
	has_string(o, "status", "pending");
	has_null(o, "kind");
	has_string(o, "detail", "no result yet");
	has_null(o, "latency_ms");
	has_null(o, "since");
	has_null(o, "last_checked");
	has_number(o, "consecutive_failures", 0);
	has_bool(o, "critical", true);
	has_string(o, "type", "tcp");
	has_string(o, "target", "10.0.13.1:3306");
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "address"));
	cJSON_Delete(o);
}

static void iso8601_is_utc_with_milliseconds(void **unused)
{
	char buf[32];

	(void)unused;
	hd_iso8601(1000, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:01.000Z");
	hd_iso8601(T_CHECKED, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-18T11:06:52.007Z");
	hd_iso8601(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

/* ---- the bodies built from an engine's checks ---- */

static const char two_checks[] =
	"{\"node_name\": \"web-7\", \"checks\": [\n"
	"  {\"name\": \"cache\", \"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 6379, \"critical\": false},\n"
	"  {\"name\": \"data\", \"type\": \"disk\", \"path\": \"/var/lib/mysql\"}\n"
	"]}";

/* body is, byte for byte, what cJSON prints for its own parse (a newline after): members in order, cJSON's
 * escapes and numbers. */
/* /health/NAME's body, as a string the caller frees. */
static char *check_body(struct hd_status *s, const struct hd_check *c)
{
	struct evbuffer *b = evbuffer_new();
	size_t len = status_check_body(s, c, b);
	char *out = malloc(len + 1);

	assert_int_equal(evbuffer_get_length(b), len);
	assert_int_equal(evbuffer_remove(b, out, len), (int)len);
	out[len] = '\0';
	evbuffer_free(b);
	return out;
}

static void assert_prints_as_cjson(const cJSON *root, const char *body, size_t len)
{
	char *printed = cJSON_PrintUnformatted(root);

	assert_int_equal(strlen(printed) + 1, len);
	assert_memory_equal(printed, body, len - 1);
	assert_int_equal(body[len - 1], '\n');
	cJSON_free(printed);
}

static void health_and_ready_bodies(void **unused)
{
	char *error = NULL;
	struct hd_config *cfg = config_parse("render.json", two_checks, strlen(two_checks), &error);
	struct event_base *base = event_base_new();
	struct hd_engine *e = engine_new(base, NULL);
	struct hd_status *s;
	struct hd_check *cache, *data;
	char *cache_member, *data_json, *again;
	const cJSON *checks, *one;
	cJSON *root;
	const char *body;
	size_t len;

	(void)unused;
	assert_non_null(cfg);
	engine_apply_config(e, cfg);
	cache = (struct hd_check *)(uintptr_t)engine_find(e, "cache"); /* the test plays the engine */
	data = (struct hd_check *)(uintptr_t)engine_find(e, "data");
	cache->state = HD_STATE_DOWN;
	cache->down_kind = cache->last.kind = HD_KIND_REFUSED;
	hd_strlcpy(cache->last.detail, "connect 127.0.0.1:6379: Connection refused", sizeof(cache->last.detail));
	cache->last.wall_ms = T_CHECKED;
	data->state = HD_STATE_UP;
	data->last.kind = HD_KIND_OK;
	hd_strlcpy(data->last.detail, "/var/lib/mysql: 41.0% used (29.5 GiB free of 50 GiB)", sizeof(data->last.detail));
	data->last.wall_ms = T_CHECKED;
	data->since_wall_ms = T_SINCE;
	s = status_new(e);

	body = status_health_json(s, &len);
	assert_int_equal(body[len - 1], '\n');
	assert_int_equal(body[len], '\0');
	{
		/* what a reply sends: the same bytes, by reference to the cached body (no second rendering) */
		struct evbuffer *reply = evbuffer_new();
		assert_int_equal(status_health_add(s, reply), len);
		assert_int_equal(evbuffer_get_length(reply), len);
		assert_memory_equal(evbuffer_pullup(reply, -1), body, len);
		assert_ptr_equal(status_health_json(s, &len), body);
		evbuffer_free(reply);
	}
	root = cJSON_Parse(body);
	assert_non_null(root);
	has_string(root, "status", "degraded");
	has_string(root, "node", "web-7");
	has_string(field(root, "admin"), "state", "ready");
	checks = field(root, "checks");
	assert_int_equal(cJSON_GetArraySize(checks), 2);
	has_string(field(checks, "cache"), "status", "down");
	has_string(field(checks, "cache"), "kind", "refused");
	has_string(field(checks, "data"), "status", "up");
	has_string(field(checks, "data"), "type", "disk");
	has_string(field(checks, "data"), "target", "/var/lib/mysql");
	has_string(field(checks, "data"), "since", "2026-11-18T11:06:40.123Z");
	assert_prints_as_cjson(root, body, len);
	cJSON_Delete(root);
	assert_int_equal(status_http_code(s), 200);

	data_json = check_body(s, data);
	root = cJSON_Parse(data_json);
	one = root;
	has_string(one, "name", "data");
	has_string(one, "detail", "/var/lib/mysql: 41.0% used (29.5 GiB free of 50 GiB)");
	/* the member of /health with its name: the bytes cJSON prints for the check's object with "name" last */
	cJSON_DeleteItemFromObjectCaseSensitive(root, "name");
	cJSON_AddStringToObject(root, "name", "data");
	assert_prints_as_cjson(root, data_json, strlen(data_json));
	cJSON_Delete(root);
	free(data_json);

	assert_string_equal(status_ready_body(s, &len), "degraded #cache refused\n");

	/* A result renders that check again, and only that one: each check's member is cached by status.c, so a
	 * change made without a result (no version bump) is not seen, and one with a result is. */
	cache_member = check_body(s, cache);
	data_json = check_body(s, data);
	hd_strlcpy(data->last.detail, "/var/lib/mysql: \"42%\" used\\", sizeof(data->last.detail));
	again = check_body(s, data);
	assert_string_equal(again, data_json); /* no result: the same bytes, not rebuilt */
	free(again);
	data->version++;
	again = check_body(s, cache);
	assert_string_equal(again, cache_member);
	free(again);
	again = check_body(s, data);
	root = cJSON_Parse(again);
	has_string(root, "detail", "/var/lib/mysql: \"42%\" used\\");
	cJSON_Delete(root);
	free(again);
	free(cache_member);
	free(data_json);
	status_free(s);
	s = status_new(e); /* the whole body is cached by the engine's results version, which this test cannot bump */
	body = status_health_json(s, &len);
	root = cJSON_Parse(body);
	assert_non_null(root);
	has_string(field(field(root, "checks"), "data"), "detail", "/var/lib/mysql: \"42%\" used\\");
	assert_prints_as_cjson(root, body, len);
	cJSON_Delete(root);
	status_free(s);

	data->state = HD_STATE_DOWN;
	data->down_kind = data->last.kind = HD_KIND_THRESHOLD;
	s = status_new(e);
	assert_int_equal(status_http_code(s), 503);
	assert_string_equal(status_ready_body(s, &len), "down #data threshold\n");
	status_free(s);

	engine_free(e);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(up_check),
		cmocka_unit_test(down_check),
		cmocka_unit_test(down_and_rising_check_keeps_the_reason),
		cmocka_unit_test(pending_check),
		cmocka_unit_test(iso8601_is_utc_with_milliseconds),
		cmocka_unit_test(health_and_ready_bodies),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
