/* alert_event.c: builds alert events from a check's facts; renders them for generic, Alertmanager and Slack webhooks. */
#include "alert_event.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

static const char *const event_names[] = {
	[HD_ALERT_REGRESSION] = "regression",
	[HD_ALERT_RECOVERY] = "recovery",
	[HD_ALERT_UPDATE] = "update",
	[HD_ALERT_REMINDER] = "reminder",
};
_Static_assert(HD_ARRAY_LEN(event_names) == HD_ALERT_EVENT_COUNT, "every event needs its name");

const char *hd_alert_event_name(enum hd_alert_event e)
{
	return (unsigned)e < HD_ARRAY_LEN(event_names) ? event_names[e] : "regression";
}

int hd_alert_event_from_name(const char *name)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(event_names); i++)
		if (strcmp(event_names[i], name) == 0)
			return (int)i;
	return -1;
}

void hd_alert_new_id(char id[37])
{
	static uint64_t fallback_counter;
	unsigned char b[16];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		/* No entropy yet (early boot): time and a counter are still unique on this host. */
		uint64_t t = (uint64_t)hd_now_wall_ms(), c = ++fallback_counter ^ (uint64_t)hd_now_mono_ms() << 20;
		memcpy(b, &t, 8);
		memcpy(b + 8, &c, 8);
	}
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
	snprintf(id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
		 b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void hd_duration_text(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

int64_t hd_parse_iso8601(const char *s)
{
	struct tm tm = {0};
	int ms = 0, n = 0;

	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
				&tm.tm_min, &tm.tm_sec, &ms, &n) != 7 || s[n] != '\0')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

int64_t hd_alert_backoff_ms(int failures, int initial_ms, int max_ms, double random01)
{
	int64_t delay = initial_ms;

	for (int i = 1; i < failures && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	if (random01 < 0 || random01 >= 1)
		random01 = 0.5;
	return delay / 2 + (int64_t)((double)(delay - delay / 2) * random01);
}

static int64_t down_for_s(const struct hd_alert_facts *f)
{
	return f->since_wall_ms > 0 && f->time_wall_ms > f->since_wall_ms ? (f->time_wall_ms - f->since_wall_ms) / 1000 : 0;
}

/* What the summary names: the resolved address when known (what a firewall rule matches), else the target;
 * for a name that no longer resolves, the name. */
static void where_for(const struct hd_alert_facts *f, enum hd_kind kind, char *buf, size_t len)
{
	const char *target = f->target && f->target[0] ? f->target : f->check;
	char host[256];
	const char *why;
	int port;

	if (kind == HD_KIND_DNS && hd_split_hostport(target, host, sizeof(host), &port, &why) == 0)
		hd_strlcpy(buf, host, len);
	else if (kind != HD_KIND_DNS && f->peer && f->peer[0])
		hd_strlcpy(buf, f->peer, len);
	else
		hd_strlcpy(buf, target, len);
}

static void phrase(const struct hd_alert_facts *f, enum hd_kind kind, char *buf, size_t len)
{
	char where[256];

	where_for(f, kind, where, sizeof(where));
	snprintf(buf, len, hd_kind_words(kind, f->target)->now, where);
}

void hd_alert_summary(const struct hd_alert_facts *f, char *buf, size_t len)
{
	const struct hd_kind_words *now = hd_kind_words(f->kind, f->target), *before = hd_kind_words(f->previous_kind, f->target);
	char what[384], since[16] = "?", dur[32], where[256];

	if (f->since_wall_ms > 0)
		hd_hhmmss(f->since_wall_ms, since, sizeof(since));
	hd_duration_text(down_for_s(f), dur, sizeof(dur));
	switch (f->event) {
	case HD_ALERT_RECOVERY:
		where_for(f, f->previous_kind, where, sizeof(where));
		snprintf(buf, len, "%s healthy again after %s (down since %s: %s)", where, dur, since, before->was);
		return;
	case HD_ALERT_UPDATE:
		phrase(f, f->kind, what, sizeof(what));
		snprintf(buf, len, "%s now, down since %s (was: %s%s%s)", what, since, before->was, now->hint[0] ? "; " : "",
			 now->hint);
		return;
	case HD_ALERT_REMINDER:
	case HD_ALERT_REGRESSION:
	case HD_ALERT_EVENT_COUNT: /* not an event */
		phrase(f, f->kind, what, sizeof(what));
		snprintf(buf, len, "%s%s%s%s since %s%s%s%s%s%s", f->event == HD_ALERT_REMINDER ? "still down after " : "",
			 f->event == HD_ALERT_REMINDER ? dur : "", f->event == HD_ALERT_REMINDER ? ": " : "", what, since,
			 f->down_since_start ? ", down since healthd started" : "", now->hint[0] ? " (" : "", now->hint,
			 now->hint[0] ? ")" : "", f->held_by_maintenance ? "; held while in maint" : "");
		return;
	}
}

cJSON *hd_alert_event_json(const struct hd_alert_facts *f)
{
	cJSON *o = cJSON_CreateObject();
	char time_s[32], since_s[32], summary[768];

	hd_iso8601(f->time_wall_ms, time_s, sizeof(time_s));
	hd_iso8601(f->since_wall_ms, since_s, sizeof(since_s));
	hd_alert_summary(f, summary, sizeof(summary));
	cJSON_AddStringToObject(o, "id", f->id);
	cJSON_AddStringToObject(o, "event", hd_alert_event_name(f->event));
	cJSON_AddStringToObject(o, "time", time_s);
	cJSON_AddStringToObject(o, "host", f->host ? f->host : "");
	cJSON_AddStringToObject(o, "check", f->check);
	cJSON_AddStringToObject(o, "type", f->type ? f->type : "");
	cJSON_AddStringToObject(o, "target", f->target ? f->target : "");
	cJSON_AddStringToObject(o, "peer", f->peer ? f->peer : "");
	cJSON_AddStringToObject(o, "source_addr", f->source_addr ? f->source_addr : "");
	cJSON_AddStringToObject(o, "kind", hd_kind_name(f->kind));
	cJSON_AddStringToObject(o, "previous_kind", hd_kind_name(f->previous_kind));
	cJSON_AddStringToObject(o, "phase", hd_phase_name(f->phase));
	cJSON_AddStringToObject(o, "detail", f->detail ? f->detail : "");
	cJSON_AddStringToObject(o, "since", since_s);
	cJSON_AddNumberToObject(o, "down_for_s", (double)down_for_s(f));
	cJSON_AddBoolToObject(o, "critical", f->critical);
	cJSON_AddBoolToObject(o, "down_since_start", f->down_since_start);
	cJSON_AddBoolToObject(o, "held_by_maintenance", f->held_by_maintenance);
	cJSON_AddStringToObject(o, "summary", summary);
	cJSON_AddStringToObject(o, "health_url", f->health_url ? f->health_url : "");
	cJSON_AddStringToObject(o, "healthd_version", HD_VERSION);
	cJSON_AddStringToObject(o, "instance", f->instance ? f->instance : "");
	cJSON_AddStringToObject(o, "job", f->job && f->job[0] ? f->job : "healthd");
	cJSON *labels = cJSON_AddObjectToObject(o, "labels");
	for (int pass = 0; pass < 2; pass++) { /* the check's labels win over alerts.labels */
		const struct hd_labels *l = pass == 0 ? f->labels : f->check_labels;
		for (size_t i = 0; l && i < l->n; i++) {
			cJSON_DeleteItemFromObjectCaseSensitive(labels, l->names[i]);
			cJSON_AddStringToObject(labels, l->names[i], l->values[i]);
		}
	}
	cJSON_AddStringToObject(o, "runbook_url", f->runbook_url ? f->runbook_url : "");
	return o;
}

/* ---- rendering a spooled event for a webhook format ---- */

/* The fields renderers read, borrowed from the event object. */
struct event_view {
	const char *id, *event, *time, *host, *check, *type, *target, *peer, *source_addr, *kind, *previous_kind,
		*detail, *since, *summary, *health_url;
	double down_for_s;
	bool critical;
	/* optional: events spooled by an older healthd lack them */
	const char *instance, *job, *runbook_url, *phase;
	const cJSON *labels; /* an object of strings, or NULL */
};

static const char *optional_field(const cJSON *o, const char *name, const char *fallback)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));

	return s && s[0] ? s : fallback;
}

static const char *field(const cJSON *o, const char *name, bool *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(v)) {
		*ok = false;
		return "";
	}
	return v->valuestring;
}

static bool view_of(const cJSON *o, struct event_view *v)
{
	bool ok = true;
	const cJSON *n;

	v->id = field(o, "id", &ok);
	v->event = field(o, "event", &ok);
	v->time = field(o, "time", &ok);
	v->host = field(o, "host", &ok);
	v->check = field(o, "check", &ok);
	v->type = field(o, "type", &ok);
	v->target = field(o, "target", &ok);
	v->peer = field(o, "peer", &ok);
	v->source_addr = field(o, "source_addr", &ok);
	v->kind = field(o, "kind", &ok);
	v->previous_kind = field(o, "previous_kind", &ok);
	v->detail = field(o, "detail", &ok);
	v->since = field(o, "since", &ok);
	v->summary = field(o, "summary", &ok);
	v->health_url = field(o, "health_url", &ok);
	n = cJSON_GetObjectItemCaseSensitive(o, "down_for_s");
	v->down_for_s = cJSON_IsNumber(n) ? n->valuedouble : 0;
	v->critical = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "critical"));
	v->instance = optional_field(o, "instance", v->host);
	v->job = optional_field(o, "job", "healthd");
	v->runbook_url = optional_field(o, "runbook_url", "");
	v->phase = optional_field(o, "phase", "none"); /* events spooled before phases existed */
	v->labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
	if (!cJSON_IsObject(v->labels))
		v->labels = NULL;
	return ok && v->id[0] && hd_alert_event_from_name(v->event) >= 0;
}

/* What an on-call engineer reads under the summary: which check, where from, what it said, since when. */
static char *description(const struct event_view *v)
{
	char since[16] = "?", dur[32];
	int64_t since_ms = hd_parse_iso8601(v->since);
	bool via = v->peer[0] && strcmp(v->peer, v->target) != 0;

	if (since_ms > 0)
		hd_hhmmss(since_ms, since, sizeof(since));
	hd_duration_text((int64_t)v->down_for_s, dur, sizeof(dur));
	return xasprintf("%s check %s on %s (%s) to %s%s%s from %s: %s. Down since %s UTC%s%s.", v->type, v->check,
			 v->host, v->instance, v->target, via ? " at " : "", via ? v->peer : "",
			 v->source_addr[0] ? v->source_addr : "an unknown source address", v->detail[0] ? v->detail : v->kind,
			 since, v->down_for_s > 0 ? ", for " : "", v->down_for_s > 0 ? dur : "");
}

static cJSON *am_alert(const struct event_view *v, const char *kind, const char *ends_at)
{
	cJSON *a = cJSON_CreateObject(), *labels = cJSON_AddObjectToObject(a, "labels"),
	      *ann = cJSON_AddObjectToObject(a, "annotations"), *l;
	char *text;

	cJSON_AddStringToObject(labels, "alertname", "HealthdCheckDown");
	cJSON_AddStringToObject(labels, "instance", v->instance);
	cJSON_AddStringToObject(labels, "node", v->host);
	cJSON_AddStringToObject(labels, "job", v->job);
	cJSON_AddStringToObject(labels, "check", v->check);
	cJSON_AddStringToObject(labels, "kind", kind);
	cJSON_AddStringToObject(labels, "severity", v->critical ? "critical" : "warning");
	cJSON_ArrayForEach(l, v->labels) /* never over healthd's own (the configuration refuses those names) */
		if (cJSON_IsString(l) && l->valuestring[0] && !cJSON_HasObjectItem(labels, l->string))
			cJSON_AddStringToObject(labels, l->string, l->valuestring);
	cJSON_AddStringToObject(ann, "summary", v->summary);
	text = description(v);
	cJSON_AddStringToObject(ann, "description", text);
	free(text);
	if (v->runbook_url[0])
		cJSON_AddStringToObject(ann, "runbook_url", v->runbook_url);
	cJSON_AddStringToObject(ann, "detail", v->detail);
	cJSON_AddStringToObject(ann, "target", v->target);
	cJSON_AddStringToObject(ann, "source_addr", v->source_addr);
	cJSON_AddStringToObject(ann, "phase", v->phase);
	cJSON_AddStringToObject(ann, "event_id", v->id);
	if (v->since[0])
		cJSON_AddStringToObject(a, "startsAt", v->since);
	if (ends_at && ends_at[0])
		cJSON_AddStringToObject(a, "endsAt", ends_at);
	if (v->health_url[0])
		cJSON_AddStringToObject(a, "generatorURL", v->health_url);
	return a;
}

/* Alertmanager resolves an alert that is not re-sent before its endsAt: while down, ask for 4 periods. */
static cJSON *render_alertmanager(const struct event_view *v, int64_t now_wall_ms, int resend_interval_s)
{
	cJSON *list = cJSON_CreateArray();
	char valid_until[32] = "";

	if (resend_interval_s > 0)
		hd_iso8601(now_wall_ms + 4000LL * resend_interval_s, valid_until, sizeof(valid_until));
	switch (hd_alert_event_from_name(v->event)) {
	case HD_ALERT_RECOVERY:
		cJSON_AddItemToArray(list, am_alert(v, v->previous_kind, v->time));
		break;
	case HD_ALERT_UPDATE: /* the kind is a label: the old alert ends, one with the new kind starts */
		cJSON_AddItemToArray(list, am_alert(v, v->previous_kind, v->time));
		cJSON_AddItemToArray(list, am_alert(v, v->kind, valid_until));
		break;
	default:
		cJSON_AddItemToArray(list, am_alert(v, v->kind, valid_until));
		break;
	}
	return list;
}

/* Slack's mrkdwn gives &, < and > a meaning. */
static void slack_escape(char *out, size_t len, const char *s)
{
	size_t used = 0;

	for (; *s && used + 6 < len; s++) {
		const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
		if (rep) {
			memcpy(out + used, rep, strlen(rep));
			used += strlen(rep);
		} else {
			out[used++] = *s;
		}
	}
	out[used] = '\0';
}

/* A link in Slack's markup: <URL|text>; a URL with markup characters of its own is shown escaped, unlinked. */
static void slack_link(char *out, size_t len, const char *prefix, const char *url, const char *text)
{
	char shown[600];

	out[0] = '\0';
	if (url[0] == '\0')
		return;
	slack_escape(shown, sizeof(shown), url);
	if (strpbrk(url, "<>| ") == NULL)
		snprintf(out, len, "%s<%s|%s>", prefix, shown, text);
	else
		snprintf(out, len, "%s%s: %s", prefix, text, shown);
}

static const char *const slack_titles[] = {
	[HD_ALERT_REGRESSION] = "DOWN",
	[HD_ALERT_RECOVERY] = "RECOVERED",
	[HD_ALERT_UPDATE] = "STILL DOWN, NEW REASON",
	[HD_ALERT_REMINDER] = "STILL DOWN",
};
_Static_assert(HD_ARRAY_LEN(slack_titles) == HD_ALERT_EVENT_COUNT, "every event needs its Slack title");

const char *hd_alert_slack_title(enum hd_alert_event e)
{
	return (unsigned)e < HD_ALERT_EVENT_COUNT ? slack_titles[e] : slack_titles[HD_ALERT_REGRESSION];
}

static cJSON *render_slack(const struct event_view *v)
{
	int e = hd_alert_event_from_name(v->event);
	const char *icon = e == HD_ALERT_RECOVERY ? ":large_green_circle:" : ":large_orange_circle:";
	char check[128], host[256], summary[1024], detail[1024], target[512], peer[160], source[160], type[64],
		kind[64], was[64], health[256], link[800], runbook[800], labels[1200] = "", part[600];
	size_t used = 0;
	cJSON *o = cJSON_CreateObject(), *l;
	char *text;

	if (e != HD_ALERT_RECOVERY && v->critical)
		icon = ":red_circle:";
	slack_escape(check, sizeof(check), v->check);
	slack_escape(host, sizeof(host), v->host);
	slack_escape(summary, sizeof(summary), v->summary);
	slack_escape(detail, sizeof(detail), v->detail);
	slack_escape(target, sizeof(target), v->target);
	slack_escape(peer, sizeof(peer), v->peer);
	slack_escape(source, sizeof(source), v->source_addr);
	slack_escape(type, sizeof(type), v->type);
	slack_escape(kind, sizeof(kind), v->kind);
	slack_escape(was, sizeof(was), v->previous_kind);
	snprintf(health, sizeof(health), "/health/%s", check);
	slack_link(link, sizeof(link), " · ", v->health_url, health);
	slack_link(runbook, sizeof(runbook), " · ", v->runbook_url, "runbook");
	cJSON_ArrayForEach(l, v->labels) {
		if (!cJSON_IsString(l))
			continue;
		char name[128], value[300];
		slack_escape(name, sizeof(name), l->string);
		slack_escape(value, sizeof(value), l->valuestring);
		snprintf(part, sizeof(part), "%s%s=%s", used ? " · " : "\nlabels: ", name, value);
		hd_appendf(labels, sizeof(labels), &used, "%s", part);
	}
	text = xasprintf("%s *%s%s* `%s` on *%s*: %s\n> %s\n%s check · target %s%s%s · from %s · kind %s (was %s)%s%s%s",
			 icon, hd_alert_slack_title((enum hd_alert_event)(e < 0 ? 0 : e)), v->critical ? "" : " (non-critical)", check, host, summary, detail,
			 type, target, peer[0] && strcmp(peer, target) != 0 ? " → " : "",
			 peer[0] && strcmp(peer, target) != 0 ? peer : "", source[0] ? source : "?", kind, was, link,
			 runbook, labels);
	cJSON_AddStringToObject(o, "text", text);
	free(text);
	return o;
}

bool hd_alert_event_valid(const cJSON *event)
{
	struct event_view v;

	return cJSON_IsObject(event) && view_of(event, &v) && v.check[0];
}

char *hd_alert_render(enum hd_alert_format format, const cJSON *event, int64_t now_wall_ms, int resend_interval_s)
{
	struct event_view v;
	cJSON *body;
	char *out, *copy;

	if (!view_of(event, &v))
		return NULL;
	switch (format) {
	case HD_FORMAT_ALERTMANAGER:
		body = render_alertmanager(&v, now_wall_ms, resend_interval_s);
		break;
	case HD_FORMAT_SLACK:
		body = render_slack(&v);
		break;
	default:
		body = cJSON_Duplicate(event, true);
		break;
	}
	out = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (out == NULL)
		hd_fatal("out of memory");
	copy = xstrdup(out); /* callers free() */
	cJSON_free(out);
	return copy;
}

/* ---- the structured log line ---- */

static void append_pair(char **buf, size_t *len, size_t *cap, const char *key, const char *value)
{
	bool quote = value[0] == '\0' || strpbrk(value, " \"=\\\t") != NULL;
	size_t need = strlen(key) + 2 * strlen(value) + 6;

	if (*len + need > *cap) {
		*cap = (*len + need) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	*len += (size_t)sprintf(*buf + *len, "%s%s=%s", *len ? " " : "", key, quote ? "\"" : "");
	for (const char *p = value; *p; p++) {
		if (*p == '"' || *p == '\\')
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
	}
	if (quote)
		(*buf)[(*len)++] = '"';
	(*buf)[*len] = '\0';
}

char *hd_alert_log_line(const cJSON *event, const char *delivery)
{
	static const char *const keys[] = {"event", "id", "host", "check", "type", "target", "peer", "source_addr",
					   "kind", "previous_kind", "phase", "since", "down_for_s", "critical", "detail", "summary"};
	size_t len = 0, cap = 512;
	char *buf = xmalloc(cap), num[32];

	buf[0] = '\0';
	append_pair(&buf, &len, &cap, "event", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "event")) ?: "");
	append_pair(&buf, &len, &cap, "delivery", delivery);
	for (size_t i = 1; i < HD_ARRAY_LEN(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(event, keys[i]);
		if (cJSON_IsString(v))
			append_pair(&buf, &len, &cap, keys[i], v->valuestring);
		else if (cJSON_IsNumber(v)) {
			snprintf(num, sizeof(num), "%.0f", v->valuedouble);
			append_pair(&buf, &len, &cap, keys[i], num);
		} else if (cJSON_IsBool(v))
			append_pair(&buf, &len, &cap, keys[i], cJSON_IsTrue(v) ? "true" : "false");
	}
	return buf;
}
