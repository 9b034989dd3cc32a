/* fleet_prom.c: the fleet view from Prometheus' HTTP API: one reply per healthd it scrapes, /health-shaped. */
#include "fleet_prom.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "util.h"

#define PROM_BODY_MAX (64 * 1024 * 1024)
#define PROM_LOOKBACK "1h" /* a healthd that stopped answering is still known for this long */

struct body {
	char *data;
	size_t len;
	bool too_big;
};

/* One healthd as Prometheus knows it: by job and instance, its node and its checks so far. */
struct instance {
	char *job, *instance;
	bool up;
	char *last_error;
	cJSON *root, *checks; /* the /health-shaped body being built */
};

struct prom_run {
	const char *base;
	int timeout_ms;
	struct instance *inst;
	size_t n;
	char *why;
	size_t whylen;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;

	if (!hd_append_bounded(&b->data, &b->len, PROM_BODY_MAX, data, size * n)) {
		b->too_big = true;
		return 0;
	}
	return size * n;
}

/* GET base + path (+ the encoded query): Prometheus' "data", or NULL with run->why. The caller frees *root. */
static cJSON *api_get(struct prom_run *run, const char *path, const char *query, cJSON **root)
{
	CURL *easy = curl_easy_init();
	struct body b = {0};
	char errbuf[CURL_ERROR_SIZE] = "", *url, *escaped = NULL;
	long status = 0;
	CURLcode rc;
	cJSON *data = NULL, *st;

	*root = NULL;
	if (easy == NULL)
		hd_fatal("libcurl: out of memory");
	if (query)
		escaped = curl_easy_escape(easy, query, 0);
	url = xasprintf("%s%s%s%s", run->base, path, escaped ? "?query=" : "", escaped ? escaped : "");
	curl_free(escaped);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)run->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)run->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "healthd-fleet/" HD_VERSION);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	free(url);
	if (b.too_big)
		snprintf(run->why, run->whylen, "Prometheus at %s: an answer over %d MiB", run->base, PROM_BODY_MAX >> 20);
	else if (rc != CURLE_OK)
		snprintf(run->why, run->whylen, "Prometheus at %s: %s", run->base, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else if ((*root = cJSON_ParseWithLength(b.data ? b.data : "", b.len)) == NULL ||
		 !cJSON_IsString(st = cJSON_GetObjectItemCaseSensitive(*root, "status")))
		hd_format_sanitized(run->why, run->whylen, "Prometheus at %s: HTTP %ld, not Prometheus' API JSON: %.60s",
				    run->base, status, b.data ? b.data : "");
	else if (strcmp(st->valuestring, "success") != 0)
		hd_format_sanitized(run->why, run->whylen, "Prometheus at %s: %s: %s", run->base, st->valuestring,
				    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(*root, "error"))
					    ? cJSON_GetObjectItemCaseSensitive(*root, "error")->valuestring
					    : "no reason given");
	else
		data = cJSON_GetObjectItemCaseSensitive(*root, "data");
	free(b.data);
	return data;
}

static const char *label(const cJSON *series, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(series, "metric"), name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double sample_value(const cJSON *series)
{
	const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(series, "value"), 1);
	return cJSON_IsString(v) ? strtod(v->valuestring, NULL) : 0;
}

static struct instance *find_instance(struct prom_run *run, const char *job, const char *instance)
{
	for (size_t i = 0; i < run->n; i++)
		if (strcmp(run->inst[i].job, job) == 0 && strcmp(run->inst[i].instance, instance) == 0)
			return &run->inst[i];
	return NULL;
}

/* The vector an instant query returns, or NULL with run->why. */
static cJSON *query_vector(struct prom_run *run, const char *promql, cJSON **root)
{
	cJSON *data = api_get(run, "/api/v1/query", promql, root), *result;

	if (data == NULL)
		return NULL;
	result = cJSON_GetObjectItemCaseSensitive(data, "result");
	if (!cJSON_IsArray(result)) {
		snprintf(run->why, run->whylen, "Prometheus at %s: the answer to %s has no result vector", run->base, promql);
		return NULL;
	}
	return result;
}

/* The check's object in its instance's body, made on first sight. */
static cJSON *check_of(struct prom_run *run, const cJSON *series)
{
	struct instance *in = find_instance(run, label(series, "job"), label(series, "instance"));
	const char *name = label(series, "check");
	cJSON *c;

	if (in == NULL || !name[0])
		return NULL;
	c = cJSON_GetObjectItemCaseSensitive(in->checks, name);
	if (c == NULL) {
		c = cJSON_AddObjectToObject(in->checks, name);
		cJSON_AddStringToObject(c, "status", "pending");
	}
	return c;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddStringToObject(obj, key, value);
}

/* Each query adds what its series carry; the first, the healthd seen in the last hour, makes the instances. */
static int read_instances(struct prom_run *run)
{
	cJSON *root, *v = query_vector(run, "last_over_time(healthd_node_info[" PROM_LOOKBACK "])", &root), *s;

	if (v == NULL) {
		cJSON_Delete(root);
		return -1;
	}
	cJSON_ArrayForEach(s, v) {
		struct instance *in;
		if (!label(s, "instance")[0] || find_instance(run, label(s, "job"), label(s, "instance")))
			continue;
		run->inst = xrealloc(run->inst, (run->n + 1) * sizeof(*run->inst));
		in = &run->inst[run->n++];
		memset(in, 0, sizeof(*in));
		in->job = xstrdup(label(s, "job"));
		in->instance = xstrdup(label(s, "instance"));
		in->root = cJSON_CreateObject();
		cJSON_AddStringToObject(in->root, "node", label(s, "node"));
		in->checks = cJSON_AddObjectToObject(in->root, "checks");
	}
	cJSON_Delete(root);
	if (run->n == 0) {
		snprintf(run->why, run->whylen,
			 "Prometheus at %s knows no healthd: no healthd_node_info series in the last " PROM_LOOKBACK
			 " (does it scrape each healthd's /metrics?)", run->base);
		return -1;
	}
	return 0;
}

static int read_checks(struct prom_run *run)
{
	static const char *const queries[] = {"up", "healthd_check_state_info", "healthd_check_info",
					      "healthd_check_since_timestamp_seconds"};

	for (size_t q = 0; q < HD_ARRAY_LEN(queries); q++) {
		cJSON *root, *v = query_vector(run, queries[q], &root), *s;
		if (v == NULL) {
			cJSON_Delete(root);
			return -1;
		}
		cJSON_ArrayForEach(s, v) {
			cJSON *c;
			if (q == 0) {
				struct instance *in = find_instance(run, label(s, "job"), label(s, "instance"));
				if (in)
					in->up = sample_value(s) == 1;
				continue;
			}
			if ((c = check_of(run, s)) == NULL)
				continue;
			if (q == 1) {
				set_string(c, "status", label(s, "status"));
				set_string(c, "kind", label(s, "kind"));
				set_string(c, "address", label(s, "address"));
				set_string(c, "source_addr", label(s, "source_addr"));
			} else if (q == 2) {
				set_string(c, "type", label(s, "type"));
				set_string(c, "target", label(s, "target"));
				cJSON_DeleteItemFromObjectCaseSensitive(c, "critical");
				cJSON_AddBoolToObject(c, "critical", strcmp(label(s, "critical"), "false") != 0);
			} else {
				char iso[40];
				hd_iso8601((int64_t)(sample_value(s) * 1000.0), iso, sizeof(iso));
				set_string(c, "since", iso);
			}
		}
		cJSON_Delete(root);
	}
	return 0;
}

/* Why the scrapes of a healthd fail, from the targets page: best effort (an older Prometheus, a proxy...). */
static void read_scrape_errors(struct prom_run *run)
{
	char saved[256];
	cJSON *root, *data, *t;

	hd_strlcpy(saved, run->why, sizeof(saved));
	data = api_get(run, "/api/v1/targets", NULL, &root);
	hd_strlcpy(run->why, saved, run->whylen);
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(data, "activeTargets")) {
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(t, "labels"),
			    *err = cJSON_GetObjectItemCaseSensitive(t, "lastError");
		const cJSON *job = cJSON_GetObjectItemCaseSensitive(labels, "job"),
			    *instance = cJSON_GetObjectItemCaseSensitive(labels, "instance");
		struct instance *in;
		if (!cJSON_IsString(job) || !cJSON_IsString(instance) || !cJSON_IsString(err) || !err->valuestring[0])
			continue;
		in = find_instance(run, job->valuestring, instance->valuestring);
		if (in && !in->last_error)
			in->last_error = xstrdup(err->valuestring);
	}
	cJSON_Delete(root);
}

/* A scrape error as a kind: what the fleet's own polls would have said. */
static enum hd_kind scrape_kind(const char *error)
{
	if (error == NULL)
		return HD_KIND_ERROR;
	if (strstr(error, "connection refused"))
		return HD_KIND_REFUSED;
	if (strstr(error, "deadline exceeded") || strstr(error, "timeout") || strstr(error, "i/o timeout"))
		return HD_KIND_TIMEOUT;
	if (strstr(error, "no such host"))
		return HD_KIND_DNS;
	if (strstr(error, "no route to host") || strstr(error, "network is unreachable"))
		return HD_KIND_UNREACHABLE;
	return HD_KIND_ERROR;
}

static char *own(struct hd_fleet_prom *p, char *s)
{
	p->owned = xrealloc(p->owned, (p->n_owned + 1) * sizeof(*p->owned));
	p->owned[p->n_owned++] = s;
	return s;
}

/* Details are free text: metrics carry none. Each check gets one made of its kind and since. */
static void add_details(cJSON *checks)
{
	cJSON *c;

	cJSON_ArrayForEach(c, checks) {
		const cJSON *status = cJSON_GetObjectItemCaseSensitive(c, "status"),
			    *kind = cJSON_GetObjectItemCaseSensitive(c, "kind"),
			    *since = cJSON_GetObjectItemCaseSensitive(c, "since");
		const char *st = cJSON_IsString(status) ? status->valuestring : "pending";
		char detail[256];
		if (strcmp(st, "pending") == 0)
			snprintf(detail, sizeof(detail), "no result yet");
		else
			snprintf(detail, sizeof(detail), "%s%s%s since %s (from Prometheus; the detail is in that healthd's /health)",
				 st, strcmp(st, "down") == 0 ? ": " : "",
				 strcmp(st, "down") == 0 && cJSON_IsString(kind) ? kind->valuestring : "",
				 cJSON_IsString(since) ? since->valuestring : "?");
		set_string(c, "detail", detail);
	}
}

static void free_instances(struct prom_run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		free(run->inst[i].job);
		free(run->inst[i].instance);
		free(run->inst[i].last_error);
		cJSON_Delete(run->inst[i].root);
	}
	free(run->inst);
}

int hd_fleet_prometheus(const char *base_url, int timeout_ms, struct hd_fleet_prom *out, char *why, size_t whylen)
{
	char *base = xstrdup(base_url);
	struct prom_run run = {.base = base, .timeout_ms = timeout_ms, .why = why, .whylen = whylen};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	while (strlen(base) > 0 && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	if (read_instances(&run) == 0 && read_checks(&run) == 0) {
		read_scrape_errors(&run);
		out->replies = xcalloc(run.n, sizeof(*out->replies));
		out->n = run.n;
		for (size_t i = 0; i < run.n; i++) {
			struct instance *in = &run.inst[i];
			struct hd_fleet_reply *r = &out->replies[i];
			r->url = own(out, xasprintf("%s (job %s, from Prometheus)", in->instance, in->job));
			r->name = own(out, xstrdup(in->instance));
			if (!in->up) {
				r->kind = scrape_kind(in->last_error);
				r->detail = own(out, xasprintf("Prometheus' last scrape failed: %s",
							       in->last_error ? in->last_error : "(no reason known)"));
				continue;
			}
			add_details(in->checks);
			r->answered = true;
			r->http_status = 200;
			r->body = own(out, cJSON_PrintUnformatted(in->root));
			if (r->body == NULL)
				hd_fatal("cJSON: out of memory");
			r->body_len = strlen(r->body);
		}
		rc = 0;
	}
	free_instances(&run);
	free(base);
	return rc;
}

void hd_fleet_prom_free(struct hd_fleet_prom *p)
{
	for (size_t i = 0; i < p->n_owned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->replies);
	memset(p, 0, sizeof(*p));
}
