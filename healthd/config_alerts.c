/* config_alerts.c: the "alerts" section's key tables and reader (webhooks, headers from files, labels). */
#include "alerts_conf.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_event.h"
#include "config.h"
#include "curl_loop.h"

struct header_file {
	char *file;
	char *prefix;
};

const char *const hd_alert_format_names[] = {"generic", "alertmanager", "slack", NULL};
_Static_assert(HD_ARRAY_LEN(hd_alert_format_names) == HD_FORMAT_COUNT + 1, "every format needs its name");

static int read_headers(struct cfg_ctx *ctx, const cJSON *value, void *field);
static int read_webhooks(struct cfg_ctx *ctx, const cJSON *value, void *field);
static void release_webhooks(void *field);

#define OFF(s, f) offsetof(struct s, f)

static const struct cfg_key header_file_keys[] = {
	{"file", CFG_PATH, OFF(header_file, file), true, 0, 0, NULL, NULL, "absolute path of the file holding the value"},
	{"prefix", CFG_STRING, OFF(header_file, prefix), false, 0, 0, NULL, NULL, "text put before the file's content"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const struct cfg_key webhook_keys[] = {
	{"url", CFG_STRING, OFF(webhook_conf, url), true, 0, 0, NULL, NULL,
	 "http:// or https:// URL; for `alertmanager`, the Alertmanager's base URL (`/api/v2/alerts` is appended)"},
	{"format", CFG_ENUM, OFF(webhook_conf, format), false, 0, 0, "generic", hd_alert_format_names,
	 "the body: the event's JSON, Alertmanager's API v2 alerts, or a Slack incoming-webhook message"},
	{"headers", CFG_STRMAP, OFF(webhook_conf, headers), false, 0, 0, NULL, NULL,
	 "extra request headers: `\"Name\": \"value\"`, or `\"Name\": {\"file\": \"/etc/healthd/token\", \"prefix\": "
	 "\"Bearer \"}` to read the value from a file (read at start and on reload; one trailing newline removed)",
	 read_headers},
	{"timeout_ms", CFG_INT, OFF(webhook_conf, timeout_ms), false, 100, 120000, "5000", NULL,
	 "the whole request, connect included; a request that takes longer is retried"},
	{"connect_timeout_ms", CFG_INT, OFF(webhook_conf, connect_timeout_ms), false, 10, 120000, "2000", NULL,
	 "the TCP (and TLS) connect; at most timeout_ms (the default shrinks to a shorter timeout_ms)"},
	{"repeat_interval_s", CFG_INT, OFF(webhook_conf, repeat_interval_s), false, 0, 604800, NULL, NULL,
	 "reminders to this webhook while a check stays down, this often; 0 = none; unset = `alerts.repeat_interval_s`. "
	 "Not for `alertmanager` (it repeats notifications itself, by its route's repeat_interval)"},
	{"resend_interval_s", CFG_INT, OFF(webhook_conf, resend_interval_s), false, 1, 3600, "60", NULL,
	 "`alertmanager` only: every firing alert is posted again this often, with an endsAt 4 periods ahead, as "
	 "Prometheus re-sends: an alert never resolves while its check is down, whatever the reminders"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const struct cfg_key alerts_keys[] = {
	{"webhooks", CFG_CUSTOM, OFF(hd_alerts_conf, webhooks), false, 0, 0, "[]", NULL,
	 "where events go, each with its own queue (see `alerts.webhooks[]`); without any, events are only logged",
	 read_webhooks, release_webhooks, "array of objects"},
	{"spool_dir", CFG_PATH, OFF(hd_alerts_conf, spool_dir), false, 0, 0, "/var/lib/healthd/alerts", NULL,
	 "the directory where events wait until delivered (created 0700; changes on restart only)"},
	{"spool_max_bytes", CFG_INT, OFF(hd_alerts_conf, spool_max_bytes), false, 4096, 1073741824, "16777216", NULL,
	 "per webhook: beyond this many bytes of undelivered events, the oldest are dropped (counted and logged)"},
	{"spool_max_age_s", CFG_INT, OFF(hd_alerts_conf, spool_max_age_s), false, 1, 31536000, "86400", NULL,
	 "an undelivered event older than this is dropped (counted and logged) instead of sent late; age counts on the "
	 "monotonic clock (a wall-clock step changes nothing), and across a restart from the event's time"},
	{"repeat_interval_s", CFG_INT, OFF(hd_alerts_conf, repeat_interval_s), false, 0, 604800, "300", NULL,
	 "while a check stays down: a `reminder` event this often, to every webhook but those that set their own "
	 "(`alertmanager` webhooks get re-posts instead: `resend_interval_s`); 0 = none"},
	{"min_gap_s", CFG_INT, OFF(hd_alerts_conf, min_gap_s), false, 0, 86400, "60", NULL,
	 "per check: least time between two regressions (or kind updates); a flapping check's next regression is held "
	 "until then and sent only if still down"},
	{"retry_initial_ms", CFG_INT, OFF(hd_alerts_conf, retry_initial_ms), false, 10, 600000, "1000", NULL,
	 "first retry delay after a failed delivery (transport error, timeout, 5xx, 429); doubles on each failure"},
	{"retry_max_ms", CFG_INT, OFF(hd_alerts_conf, retry_max_ms), false, 10, 3600000, "60000", NULL,
	 "longest retry delay (at least retry_initial_ms); each delay is drawn in its upper half (jitter)"},
	{"max_in_flight", CFG_INT, OFF(hd_alerts_conf, max_in_flight), false, 1, 64, "4", NULL,
	 "per webhook: requests at once (one per check at most, to keep each check's order)"},
	{"health_url", CFG_STRING, OFF(hd_alerts_conf, health_url), false, 0, 0, NULL, NULL,
	 "base URL of this backend's API for links (`generatorURL`, `health_url`) and the `instance` label (its "
	 "HOST:PORT, as Prometheus scrapes it); default http://ADDR:PORT from listen.http (NODE_NAME when it listens on "
	 "every address)"},
	{"labels", CFG_CUSTOM, OFF(hd_alerts_conf, labels), false, 0, 0, NULL, NULL,
	 "labels added to every event and Alertmanager alert, for routing (`{\"team\": \"payments\", \"env\": "
	 "\"prod\"}`); a check's own `labels` win over these; names as Prometheus allows, not one healthd sets",
	 cfg_read_labels, cfg_release_labels, "object of strings"},
	{"job", CFG_STRING, OFF(hd_alerts_conf, job), false, 0, 0, "healthd", NULL,
	 "the `job` label of every event and Alertmanager alert (as Prometheus names a scrape job)"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static bool valid_header_name(const char *s)
{
	return s[0] != '\0' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~") == strlen(s);
}

/* "Name": "value" or "Name": {"file": "/path", "prefix": "Bearer "}. */
static int read_headers(struct cfg_ctx *ctx, const cJSON *value, void *field)
{
	char ***out = field;
	const cJSON *h;
	size_t n = 0;

	if (!cJSON_IsObject(value))
		return cfg_error(ctx, value, false, "expected an object of \"Name\": \"value\" or \"Name\": {\"file\": PATH}");
	cJSON_ArrayForEach(h, value) n++;
	*out = xcalloc(n + 1, sizeof(char *));
	n = 0;
	cJSON_ArrayForEach(h, value) {
		char *text = NULL;

		if (!valid_header_name(h->string))
			return cfg_error(ctx, h, true, "\"%s\" is not a valid header name", h->string);
		if (cJSON_IsString(h)) {
			text = xstrdup(h->valuestring);
		} else if (cJSON_IsObject(h)) {
			struct header_file hf = {0};
			struct cfg_table_ref ref = {header_file_keys, &hf};
			if (cfg_read_object(ctx, h, &ref, 1) < 0) {
				cfg_free_table(header_file_keys, &hf);
				return -1;
			}
			char what[128];
			snprintf(what, sizeof(what), "value of header \"%s\" from", h->string);
			char *content = cfg_read_named_file(ctx, cJSON_GetObjectItemCaseSensitive(h, "file"), what, hf.file, 8192);
			if (content == NULL || content[0] == '\0') {
				int rc = content == NULL ? -1 : cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(h, "file"), false,
									   "cannot read the value of header \"%s\" from %s: the file is empty",
									   h->string, hf.file);
				free(content);
				cfg_free_table(header_file_keys, &hf);
				return rc;
			}
			text = xasprintf("%s%s", hf.prefix ? hf.prefix : "", content);
			free(content);
			cfg_free_table(header_file_keys, &hf);
		} else {
			return cfg_error(ctx, h, false, "expected a string, or {\"file\": PATH} to read the value from a file");
		}
		if (strpbrk(text, "\r\n") != NULL) {
			free(text);
			return cfg_error(ctx, h, false, "a header value must be one line");
		}
		(*out)[n++] = xasprintf("%s: %s", h->string, text);
		free(text);
	}
	return 0;
}

static void free_webhook_conf(struct webhook_conf *w)
{
	cfg_free_table(webhook_keys, w);
	free(w->post_url);
	w->post_url = NULL;
}

static void release_webhooks(void *field)
{
	struct webhook_list *list = field;

	for (size_t i = 0; i < list->n; i++)
		free_webhook_conf(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->n = 0;
}

static int read_webhooks(struct cfg_ctx *ctx, const cJSON *value, void *field)
{
	struct webhook_list *list = field;
	const cJSON *item;
	size_t i = 0;

	if (!cJSON_IsArray(value))
		return cfg_error(ctx, value, false, "expected an array of webhook objects");
	list->items = xcalloc((size_t)cJSON_GetArraySize(value) + 1, sizeof(*list->items));
	cJSON_ArrayForEach(item, value) {
		struct webhook_conf *w = &list->items[i];
		struct cfg_table_ref ref = {webhook_keys, w};
		const char *url, *why;
		char *key, *shown;

		list->n = ++i; /* counted before reading, so that a failure frees what was read */
		if (!cJSON_IsObject(item))
			return cfg_error(ctx, item, false, "expected a webhook object");
		if (cfg_read_object(ctx, item, &ref, 1) < 0)
			return -1;
		url = w->url;
		/* never quoted back: a webhook URL holds a token (its path, its query or user info) */
		if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || strpbrk(url, " \t\r\n"))
			return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "url"), false,
					 "expected an http:// or https:// URL without spaces");
		if ((shown = hd_url_public(url, false, NULL, &why)) == NULL)
			return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "url"), false,
					 "expected an http:// or https:// URL: %s", why);
		snprintf(w->display, sizeof(w->display), "webhook %.120s (%s)", shown, hd_alert_format_names[w->format]);
		free(shown);
		if (w->connect_timeout_ms > w->timeout_ms && !cJSON_GetObjectItemCaseSensitive(item, "connect_timeout_ms"))
			w->connect_timeout_ms = w->timeout_ms; /* the default gives way to a shorter timeout_ms */
		if (w->connect_timeout_ms > w->timeout_ms)
			return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "connect_timeout_ms") ?: item, false,
					 "connect_timeout_ms (%d) must not exceed timeout_ms (%d)", w->connect_timeout_ms,
					 w->timeout_ms);
		if (w->format == HD_FORMAT_ALERTMANAGER && cJSON_GetObjectItemCaseSensitive(item, "repeat_interval_s"))
			return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "repeat_interval_s"), true,
					 "repeat_interval_s is not for an alertmanager webhook: Alertmanager repeats notifications "
					 "itself (its route's repeat_interval), and healthd re-posts firing alerts every "
					 "resend_interval_s");
		if (w->format != HD_FORMAT_ALERTMANAGER && cJSON_GetObjectItemCaseSensitive(item, "resend_interval_s"))
			return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "resend_interval_s"), true,
					 "resend_interval_s is for alertmanager webhooks only (the others get reminders: "
					 "repeat_interval_s)");
		if (w->format == HD_FORMAT_ALERTMANAGER)
			w->repeat_interval_s = 0;
		else if (!cJSON_GetObjectItemCaseSensitive(item, "repeat_interval_s"))
			w->repeat_interval_s = -1; /* as alerts.repeat_interval_s, known once the whole section is read */
		if (w->format != HD_FORMAT_ALERTMANAGER)
			w->resend_interval_s = 0;
		if (w->format == HD_FORMAT_ALERTMANAGER) {
			size_t len = strlen(url);
			while (len > 0 && url[len - 1] == '/')
				len--;
			if (len >= 14 && strncmp(url + len - 14, "/api/v2/alerts", 14) == 0)
				w->post_url = xasprintf("%.*s", (int)len, url);
			else
				w->post_url = xasprintf("%.*s/api/v2/alerts", (int)len, url);
		} else {
			w->post_url = xstrdup(url);
		}
		key = xasprintf("%s|%s", hd_alert_format_names[w->format], w->post_url);
		snprintf(w->queue, sizeof(w->queue), "q-%016" PRIx64, hd_hash_str(key));
		free(key);
		for (size_t j = 0; j + 1 < i; j++)
			if (strcmp(list->items[j].queue, w->queue) == 0)
				return cfg_error(ctx, item, false, "the same url and format as alerts.webhooks[%zu]", j);
	}
	return 0;
}

void alerts_conf_unref(struct hd_alerts_conf *conf)
{
	if (conf == NULL || --conf->refs > 0)
		return;
	cfg_free_table(alerts_keys, conf);
	free(conf);
}

int alerts_parse_config(struct cfg_ctx *ctx, const cJSON *node, struct hd_alerts_conf **out)
{
	struct hd_alerts_conf *conf = xcalloc(1, sizeof(*conf));
	struct cfg_table_ref ref = {alerts_keys, conf};

	*out = NULL;
	conf->refs = 1;
	if (cfg_read_object(ctx, node, &ref, 1) < 0)
		goto fail;
	if (conf->retry_max_ms < conf->retry_initial_ms) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(node, "retry_max_ms") ?: node, false,
			  "retry_max_ms (%d) must be at least retry_initial_ms (%d)", conf->retry_max_ms,
			  conf->retry_initial_ms);
		goto fail;
	}
	if (conf->health_url && strncmp(conf->health_url, "http://", 7) != 0 &&
	    strncmp(conf->health_url, "https://", 8) != 0) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(node, "health_url"), false,
			  "expected an http:// or https:// URL, got \"%s\"", conf->health_url);
		goto fail;
	}
	for (size_t i = 0; i < conf->webhooks.n; i++)
		if (conf->webhooks.items[i].repeat_interval_s < 0)
			conf->webhooks.items[i].repeat_interval_s = conf->repeat_interval_s;
	*out = conf;
	return 0;
fail:
	alerts_conf_unref(conf);
	return -1;
}

void alerts_print_reference(void)
{
	cfg_print_keys("alerts", alerts_keys);
	cfg_print_keys("alerts.webhooks[]", webhook_keys);
}

/* The configuration of a daemon without an "alerts" section: every default, no webhook. */
struct hd_alerts_conf *alerts_default_conf(void)
{
	struct cfg_ctx ctx = {.file = "(defaults)"};
	cJSON *empty = cJSON_CreateObject();
	struct hd_alerts_conf *conf = NULL;

	if (alerts_parse_config(&ctx, empty, &conf) < 0)
		hd_fatal("alerts: the defaults do not parse: %s", ctx.error);
	cJSON_Delete(empty);
	free(ctx.error);
	return conf;
}

