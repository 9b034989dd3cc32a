/* oneshot.c: `healthd check` runs every check once for a change window; `healthd diff` compares two such runs. */
#include "oneshot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "curl_loop.h"
#include "engine.h"

/* What marks a file as `healthd check --json` output, and the layout version diff understands. */
#define SNAPSHOT_FORMAT "healthd-check"
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_MAX_BYTES (16 * 1024 * 1024)
/* Beyond the longest check timeout, how long to wait before declaring the engine stuck (a bug). */
#define GUARD_MARGIN_MS 2000

/* `healthd check` exits as a Nagios / Monitoring Plugins check does (diff keeps the HD_EXIT_* codes). */
enum { CHECK_EXIT_OK = 0, CHECK_EXIT_WARNING = 1, CHECK_EXIT_CRITICAL = 2, CHECK_EXIT_UNKNOWN = 3 };

enum check_format { FORMAT_TABLE, FORMAT_JSON, FORMAT_NAGIOS };

struct run_ctx {
	struct event_base *base;
	bool all_done;
};

/* One check's outcome as the one-shot output shows it: the attempt's own result, no rise/fall. */
struct outcome {
	const struct hd_check *check;
	bool has_result;
	bool up;
	const char *kind;
	const char *detail;
	double latency_ms;
};

static void check_usage(FILE *out)
{
	fprintf(out,
		"usage: healthd check --config FILE [--json | --format table|json|nagios]\n"
		"\n"
		"Runs every configured check once, all at the same time, prints the outcome of each and exits as a\n"
		"Nagios plugin: 0 every check up, 1 only non-critical checks down, 2 a critical check down, 3 on a\n"
		"usage or configuration error. One attempt decides (rise and fall do not apply).\n"
		"--json (--format json) prints a file for `healthd diff`; --format nagios the plugin's one line\n"
		"with perfdata (each check's latency), for Nagios, Icinga, Consul script checks or Monit.\n");
}

static void diff_usage(FILE *out)
{
	fprintf(out,
		"usage: healthd diff BEFORE.json AFTER.json\n"
		"\n"
		"Compares two `healthd check --json` files of the same node: lists regressions (up -> down),\n"
		"recoveries (down -> up) and checks still down. Exits 0 without regression, 1 with at least one,\n"
		"2 on a usage error or files that cannot be compared.\n");
}

/* ---- healthd check ---- */

static void on_all_done(struct hd_engine *engine, void *arg)
{
	struct run_ctx *ctx = arg;

	(void)engine;
	ctx->all_done = true;
	event_base_loopexit(ctx->base, NULL);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static struct outcome outcome_of(const struct hd_check *c)
{
	struct outcome o = {.check = c, .has_result = c->attempts > 0};

	if (!o.has_result) {
		o.kind = hd_kind_name(HD_KIND_ERROR);
		o.detail = "no result: the check neither finished nor timed out (a healthd bug, please report it)";
		return o;
	}
	o.up = c->last.kind == HD_KIND_OK;
	o.kind = hd_kind_name(c->last.kind);
	o.detail = c->last.detail;
	o.latency_ms = c->last.latency_ms;
	return o;
}

static int max_timeout_ms(const struct hd_config *cfg)
{
	int longest = 0;

	for (size_t i = 0; i < cfg->n_checks; i++)
		if (cfg->checks[i]->timeout_ms > longest)
			longest = cfg->checks[i]->timeout_ms;
	return longest;
}

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

static double rounded_ms(double ms)
{
	return (double)(int64_t)(ms * 1000.0) / 1000.0;
}

static void print_names(FILE *out, const char *label, const struct outcome *rows, size_t n, bool critical)
{
	bool first = true;

	for (size_t i = 0; i < n; i++) {
		if (rows[i].up || rows[i].check->conf->critical != critical)
			continue;
		fprintf(out, "%s%s", first ? label : ", ", rows[i].check->conf->name);
		first = false;
	}
}

static void print_table(FILE *out, const char *node, const struct outcome *rows, size_t n)
{
	size_t w_name = strlen("NAME"), w_target = strlen("TARGET"), w_kind = strlen("KIND");
	size_t n_up = 0, n_critical_down = 0, n_other_down = 0;
	char latency[32];

	for (size_t i = 0; i < n; i++) {
		w_name = max_size(w_name, strlen(rows[i].check->conf->name));
		w_target = max_size(w_target, strlen(rows[i].check->conf->target));
		w_kind = max_size(w_kind, strlen(rows[i].kind));
	}
	fprintf(out, "%-*s  %-*s  %-6s  %-*s  %10s  %s\n", (int)w_name, "NAME", (int)w_target, "TARGET", "STATUS",
		(int)w_kind, "KIND", "LATENCY", "DETAIL");
	for (size_t i = 0; i < n; i++) {
		const struct outcome *r = &rows[i];
		if (r->has_result)
			snprintf(latency, sizeof(latency), r->latency_ms < 10 ? "%.2f ms" : "%.0f ms", r->latency_ms);
		else
			hd_strlcpy(latency, "-", sizeof(latency));
		fprintf(out, "%-*s  %-*s  %-6s  %-*s  %10s  %s\n", (int)w_name, r->check->conf->name, (int)w_target,
			r->check->conf->target, r->up ? "up" : "down", (int)w_kind, r->kind, latency, r->detail);
		if (r->up)
			n_up++;
		else if (r->check->conf->critical)
			n_critical_down++;
		else
			n_other_down++;
	}
	fprintf(out, "\nnode %s: %zu of %zu checks up", node, n_up, n);
	print_names(out, "; CRITICAL down: ", rows, n, true);
	print_names(out, "; non-critical down: ", rows, n, false);
	fprintf(out, "\n%s\n", n_critical_down ? "result: a critical check is down (exit 2)"
					       : n_other_down ? "result: only non-critical checks are down (exit 1)"
							      : "result: every check is up (exit 0)");
}

/* Plugin output may not carry '|' (it starts the perfdata) nor a line end outside the first line. */
static void print_plugin_text(FILE *out, const char *text)
{
	for (const char *p = text; *p; p++)
		fputc(*p == '|' ? '/' : *p == '\n' || *p == '\r' ? ' ' : *p, out);
}

/* "HEALTHD CRITICAL - db timeout: connect ...: no answer within 1000 ms; 1 of 2 checks up | 'db'=1000.4ms;;;0" */
static void print_nagios(FILE *out, const struct outcome *rows, size_t n, int rc)
{
	static const char *const states[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
	size_t n_up = 0, shown = 0;

	for (size_t i = 0; i < n; i++)
		n_up += rows[i].up;
	fprintf(out, "HEALTHD %s - ", states[rc]);
	/* the critical failures first, then the others; the first one with its detail */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const struct outcome *r = &rows[i];
			if (r->up || r->check->conf->critical != (pass == 0))
				continue;
			fprintf(out, "%s%s %s%s", shown ? ", " : "", r->check->conf->name, r->kind,
				r->check->conf->critical ? "" : " (non-critical)");
			if (shown++ == 0) {
				fputs(": ", out);
				print_plugin_text(out, r->detail);
			}
		}
	fprintf(out, "%s%zu of %zu checks up |", shown ? "; " : "", n_up, n);
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].has_result)
			continue;
		fprintf(out, " '%s'=%.3fms;;;0", rows[i].check->conf->name, rounded_ms(rows[i].latency_ms));
	}
	fputc('\n', out);
}

static void print_json(FILE *out, const struct hd_config *cfg, const char *config_path, const char *timestamp,
		       const struct outcome *rows, size_t n, const char *overall)
{
	cJSON *root = cJSON_CreateObject(), *checks;
	char *text;

	cJSON_AddStringToObject(root, "format", SNAPSHOT_FORMAT);
	cJSON_AddNumberToObject(root, "format_version", SNAPSHOT_VERSION);
	cJSON_AddStringToObject(root, "healthd_version", HD_VERSION);
	cJSON_AddStringToObject(root, "node", cfg->node_name);
	cJSON_AddStringToObject(root, "timestamp", timestamp);
	cJSON_AddStringToObject(root, "config", config_path);
	cJSON_AddStringToObject(root, "status", overall);
	checks = cJSON_AddArrayToObject(root, "checks");
	for (size_t i = 0; i < n; i++) {
		const struct outcome *r = &rows[i];
		const struct hd_check *c = r->check;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", c->conf->name);
		cJSON_AddStringToObject(o, "type", c->conf->type->name);
		cJSON_AddStringToObject(o, "target", c->conf->target);
		cJSON_AddStringToObject(o, "status", r->up ? "up" : "down");
		cJSON_AddStringToObject(o, "kind", r->kind);
		cJSON_AddStringToObject(o, "detail", r->detail);
		if (r->has_result)
			cJSON_AddNumberToObject(o, "latency_ms", rounded_ms(r->latency_ms));
		else
			cJSON_AddNullToObject(o, "latency_ms");
		cJSON_AddBoolToObject(o, "critical", c->conf->critical);
		if (r->has_result && c->last.peer[0])
			cJSON_AddStringToObject(o, "address", c->last.peer);
		if (r->has_result && c->last.source_addr[0])
			cJSON_AddStringToObject(o, "source_addr", c->last.source_addr);
		cJSON_AddItemToArray(checks, o);
	}
	text = cJSON_Print(root);
	fprintf(out, "%s\n", text);
	cJSON_free(text);
	cJSON_Delete(root);
}

/* Returns 0 to run, 1 when --help was answered, -1 on a usage error (said on stderr). */
static int parse_check_args(int argc, char **argv, const char **config_path, enum check_format *format)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	opterr = 0; /* getopt would name the program "check" */
	while ((opt = getopt_long(argc, argv, "c:jf:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			*config_path = optarg;
			break;
		case 'j':
			*format = FORMAT_JSON;
			break;
		case 'f':
			if (strcmp(optarg, "table") == 0) {
				*format = FORMAT_TABLE;
			} else if (strcmp(optarg, "json") == 0) {
				*format = FORMAT_JSON;
			} else if (strcmp(optarg, "nagios") == 0) {
				*format = FORMAT_NAGIOS;
			} else {
				fprintf(stderr, "healthd check: unknown --format \"%s\" (table, json or nagios)\n", optarg);
				return -1;
			}
			break;
		case 'h':
			check_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "healthd check: unknown option, or one missing its value: %s\n", argv[optind - 1]);
			check_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "healthd check: unexpected argument \"%s\"\n", argv[optind]);
		check_usage(stderr);
		return -1;
	}
	if (*config_path == NULL) {
		fprintf(stderr, "healthd check: --config FILE is required\n");
		check_usage(stderr);
		return -1;
	}
	return 0;
}

int oneshot_check_main(int argc, char **argv)
{
	const char *config_path = NULL;
	enum check_format format = FORMAT_TABLE;
	char *error = NULL, timestamp[40], absolute[PATH_MAX];
	struct hd_config *cfg;
	struct run_ctx ctx = {0};
	struct evdns_base *dns;
	struct hd_engine *engine;
	struct event *guard;
	struct timeval guard_tv;
	struct outcome *rows;
	size_t n;
	bool critical_down = false, any_down = false;
	int guard_ms, rc;

	switch (parse_check_args(argc, argv, &config_path, &format)) {
	case 0:
		break;
	case 1:
		return CHECK_EXIT_OK;
	default:
		return CHECK_EXIT_UNKNOWN;
	}
	/* Warnings and errors go to stderr; state changes are the output's business, not the log's. */
	hd_log_init(false, HD_LOG_WARN);
	cfg = config_load(config_path, &error);
	if (cfg == NULL) {
		if (format == FORMAT_NAGIOS) {
			fputs("HEALTHD UNKNOWN - ", stdout);
			print_plugin_text(stdout, error);
			fputc('\n', stdout);
		}
		fprintf(stderr, "%s\n", error);
		free(error);
		return CHECK_EXIT_UNKNOWN;
	}
	if (realpath(config_path, absolute) == NULL)
		hd_strlcpy(absolute, config_path, sizeof(absolute));
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() < 0)
		hd_fatal("libevent: cannot enable threads");
	ctx.base = event_base_new();
	if (ctx.base == NULL)
		hd_fatal("libevent: cannot create the event loop");
	dns = evdns_base_new(ctx.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (dns == NULL) /* no resolv.conf: names fail with kind dns, IP literals still work */
		dns = evdns_base_new(ctx.base, 0);
	evdns_base_set_option(dns, "timeout:", "1");
	evdns_base_set_option(dns, "attempts:", "2");
	guard_ms = max_timeout_ms(cfg) + GUARD_MARGIN_MS;
	guard_tv = hd_ms_tv(guard_ms);
	guard = evtimer_new(ctx.base, on_guard, ctx.base);
	evtimer_add(guard, &guard_tv);
	hd_iso8601(hd_now_wall_ms(), timestamp, sizeof(timestamp));

	engine = engine_new(ctx.base, dns);
	engine_run_once(engine, cfg, on_all_done, &ctx);
	if (!ctx.all_done)
		event_base_dispatch(ctx.base);
	if (!ctx.all_done)
		log_err("some checks gave no result within %d ms; reporting them as errors", guard_ms);
	engine_stop(engine);

	n = engine_n_checks(engine);
	rows = xcalloc(n + 1, sizeof(*rows));
	for (size_t i = 0; i < n; i++) {
		rows[i] = outcome_of(engine_check(engine, i));
		any_down |= !rows[i].up;
		critical_down |= !rows[i].up && rows[i].check->conf->critical;
	}
	rc = critical_down ? CHECK_EXIT_CRITICAL : any_down ? CHECK_EXIT_WARNING : CHECK_EXIT_OK;
	if (format == FORMAT_JSON)
		print_json(stdout, engine_config(engine), absolute, timestamp, rows, n,
			   critical_down ? "down" : any_down ? "degraded" : "up");
	else if (format == FORMAT_NAGIOS)
		print_nagios(stdout, rows, n, rc);
	else
		print_table(stdout, engine_config(engine)->node_name, rows, n);
	fflush(stdout);

	free(rows);
	engine_free(engine);
	hd_curl_shutdown();
	event_free(guard);
	evdns_base_free(dns, 0);
	event_base_free(ctx.base);
	return rc;
}

/* ---- healthd diff ---- */

struct snap_check {
	const char *name;
	const char *status;
	const char *kind;
	const char *detail;
	bool critical;
	bool up;
};

struct snapshot {
	const char *path;
	cJSON *root;
	const char *node;
	const char *timestamp;
	struct snap_check *checks;
	size_t n;
	/* open addressing by name, so that comparing 20,000 checks is linear, not quadratic */
	struct snap_check **index;
	size_t index_cap;
};

/* Adds c to the index; returns the check already there under that name, or NULL. */
static struct snap_check *index_add(struct snapshot *s, struct snap_check *c)
{
	size_t i = (size_t)hd_hash_str(c->name) & (s->index_cap - 1);

	for (; s->index[i] != NULL; i = (i + 1) & (s->index_cap - 1))
		if (strcmp(s->index[i]->name, c->name) == 0)
			return s->index[i];
	s->index[i] = c;
	return NULL;
}

static const struct snap_check *find_snap_check(const struct snapshot *s, const char *name)
{
	if (s->index_cap == 0)
		return NULL;
	for (size_t i = (size_t)hd_hash_str(name) & (s->index_cap - 1); s->index[i] != NULL; i = (i + 1) & (s->index_cap - 1))
		if (strcmp(s->index[i]->name, name) == 0)
			return s->index[i];
	return NULL;
}

static int snap_error(FILE *err, const char *where, const char *fmt, ...) HD_PRINTF(3, 4);
static int snap_error(FILE *err, const char *where, const char *fmt, ...)
{
	va_list ap;

	fprintf(err, "healthd diff: %s: ", where);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputc('\n', err);
	return -1;
}

/* The whole text must be one JSON value (then only white space): errors as PATH:LINE:COL. */
static int parse_json_text(const char *path, const char *text, size_t len, FILE *err, cJSON **root)
{
	const char *end = NULL;
	char where[PATH_MAX + 32];
	int line, col;

	*root = NULL;
	if (strspn(text, " \t\r\n") >= len)
		return snap_error(err, path, "empty file: expected the output of `healthd check --config FILE --json`");
	*root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (*root == NULL) {
		hd_line_col(text, end ? end : text, &line, &col);
		snprintf(where, sizeof(where), "%s:%d:%d", path, line, col);
		return snap_error(err, where, "not JSON: expected the output of `healthd check --config FILE --json`");
	}
	while (end < text + len && strchr(" \t\r\n", *end) != NULL && *end != '\0')
		end++;
	if (end < text + len) {
		hd_line_col(text, end, &line, &col);
		snprintf(where, sizeof(where), "%s:%d:%d", path, line, col);
		return snap_error(err, where, "more text after the end of the JSON object (two outputs in one file?)");
	}
	return 0;
}

static int parse_snapshot_check(const char *path, size_t index, const cJSON *item, struct snap_check *out, FILE *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(item, "status");
	const cJSON *critical = cJSON_GetObjectItemCaseSensitive(item, "critical");
	char where[PATH_MAX + 32];

	snprintf(where, sizeof(where), "%s: checks[%zu]", path, index);
	if (!cJSON_IsObject(item))
		return snap_error(err, where, "expected a check object");
	if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
		return snap_error(err, where, "missing \"name\" (a non-empty string)");
	if (!cJSON_IsString(status) || (strcmp(status->valuestring, "up") != 0 && strcmp(status->valuestring, "down") != 0))
		return snap_error(err, where, "check \"%s\": \"status\" must be \"up\" or \"down\"", name->valuestring);
	if (critical != NULL && !cJSON_IsBool(critical))
		return snap_error(err, where, "check \"%s\": \"critical\" must be true or false", name->valuestring);
	out->name = name->valuestring;
	out->status = status->valuestring;
	out->up = strcmp(status->valuestring, "up") == 0;
	out->critical = critical == NULL || cJSON_IsTrue(critical);
	out->kind = hd_json_string(item, "kind", out->up ? "ok" : "error");
	out->detail = hd_json_string(item, "detail", "");
	return 0;
}

static int load_snapshot(const char *path, const char *text, size_t len, struct snapshot *s, FILE *err)
{
	const cJSON *format, *version, *node, *checks, *item;
	size_t i = 0;

	s->path = path;
	if (parse_json_text(path, text, len, err, &s->root) < 0)
		return -1;
	format = cJSON_GetObjectItemCaseSensitive(s->root, "format");
	if (!cJSON_IsObject(s->root) || !cJSON_IsString(format) || strcmp(format->valuestring, SNAPSHOT_FORMAT) != 0)
		return snap_error(err, path, "not a healthd check file (no \"format\": \"%s\"): make one with "
					     "`healthd check --config FILE --json > FILE`", SNAPSHOT_FORMAT);
	version = cJSON_GetObjectItemCaseSensitive(s->root, "format_version");
	if (!cJSON_IsNumber(version) || version->valuedouble < 1 || version->valuedouble > SNAPSHOT_VERSION)
		return snap_error(err, path, "format_version %g is not one this healthd (%s) reads (1 to %d)",
				  cJSON_IsNumber(version) ? version->valuedouble : 0.0, HD_VERSION, SNAPSHOT_VERSION);
	node = cJSON_GetObjectItemCaseSensitive(s->root, "node");
	if (!cJSON_IsString(node))
		return snap_error(err, path, "missing \"node\" (a string)");
	s->node = node->valuestring;
	s->timestamp = hd_json_string(s->root, "timestamp", "(no timestamp)");
	checks = cJSON_GetObjectItemCaseSensitive(s->root, "checks");
	if (!cJSON_IsArray(checks))
		return snap_error(err, path, "missing \"checks\" (an array)");
	cJSON_ArrayForEach(item, checks) s->n++; /* cJSON_GetArraySize is an int */
	s->checks = xcalloc(s->n + 1, sizeof(*s->checks));
	for (s->index_cap = 16; s->index_cap < 2 * s->n; s->index_cap *= 2)
		;
	s->index = xcalloc(s->index_cap, sizeof(*s->index));
	cJSON_ArrayForEach(item, checks) {
		const struct snap_check *twin;
		if (parse_snapshot_check(path, i, item, &s->checks[i], err) < 0)
			return -1;
		if ((twin = index_add(s, &s->checks[i])) != NULL)
			return snap_error(err, path, "check \"%s\" appears twice (checks[%zu] and checks[%zu])",
					  s->checks[i].name, (size_t)(twin - s->checks), i);
		i++;
	}
	return 0;
}

static void free_snapshot(struct snapshot *s)
{
	cJSON_Delete(s->root);
	free(s->checks);
	free(s->index);
}

/* Lists the checks of a that b lacks; returns how many. */
static size_t list_missing(FILE *err, const char *label, const struct snapshot *a, const struct snapshot *b)
{
	size_t missing = 0;

	for (size_t i = 0; i < a->n; i++) {
		if (find_snap_check(b, a->checks[i].name) != NULL)
			continue;
		fprintf(err, "%s%s", missing ? ", " : label, a->checks[i].name);
		missing++;
	}
	if (missing)
		fputc('\n', err);
	return missing;
}

static int check_comparable(const struct snapshot *before, const struct snapshot *after, FILE *err)
{
	bool differ = false;

	if (strcmp(before->node, after->node) != 0) {
		fprintf(err, "healthd diff: the files come from different nodes: %s is from \"%s\", %s from \"%s\"; "
			     "compare two runs on the same backend\n", before->path, before->node, after->path, after->node);
		return -1;
	}
	for (size_t i = 0; i < before->n && !differ; i++)
		differ = find_snap_check(after, before->checks[i].name) == NULL;
	for (size_t i = 0; i < after->n && !differ; i++)
		differ = find_snap_check(before, after->checks[i].name) == NULL;
	if (!differ)
		return 0;
	fprintf(err, "healthd diff: %s and %s have different sets of checks (was the configuration changed in "
		     "between?)\n", before->path, after->path);
	list_missing(err, "  removed (only in before): ", before, after);
	list_missing(err, "  added (only in after): ", after, before);
	fprintf(err, "run `healthd check --json` again with the same configuration for both files\n");
	return -1;
}

static void print_change(FILE *out, const char *label, int name_width, const struct snap_check *b,
			 const struct snap_check *a)
{
	bool show_before = !b->up && (a->up || strcmp(b->kind, a->kind) != 0);

	fprintf(out, "%-10s  %-*s  %-12s  %-4s -> %-4s  %s: %s", label, name_width, a->name,
		a->critical ? "critical" : "non-critical", b->status, a->status, a->kind, a->detail);
	if (show_before)
		fprintf(out, " (before: %s: %s)", b->kind, b->detail);
	fputc('\n', out);
}

int oneshot_diff_texts(const char *before_path, const char *before_text, size_t before_len, const char *after_path,
		       const char *after_text, size_t after_len, FILE *out, FILE *err)
{
	struct snapshot before = {0}, after = {0};
	size_t regressions = 0, recoveries = 0, still_down = 0, unchanged_up = 0;
	int name_width = 4, rc = HD_EXIT_USAGE;

	if (load_snapshot(before_path, before_text, before_len, &before, err) < 0 ||
	    load_snapshot(after_path, after_text, after_len, &after, err) < 0 ||
	    check_comparable(&before, &after, err) < 0)
		goto out;
	for (size_t i = 0; i < after.n; i++)
		if ((int)strlen(after.checks[i].name) > name_width)
			name_width = (int)strlen(after.checks[i].name);
	fprintf(out, "node %s: before %s (%s), after %s (%s)\n", after.node, before.timestamp, before_path,
		after.timestamp, after_path);
	/* Regressions first: they are what the change window is about. */
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < after.n; i++) {
			const struct snap_check *a = &after.checks[i], *b = find_snap_check(&before, a->name);
			if (pass == 0 && b->up && !a->up) {
				print_change(out, "REGRESSION", name_width, b, a);
				regressions++;
			} else if (pass == 1 && !b->up && a->up) {
				print_change(out, "RECOVERY", name_width, b, a);
				recoveries++;
			} else if (pass == 2 && !b->up && !a->up) {
				print_change(out, "STILL DOWN", name_width, b, a);
				still_down++;
			} else if (pass == 2 && b->up && a->up) {
				unchanged_up++;
			}
		}
	fprintf(out, "%zu checks: %zu regression%s, %zu recover%s, %zu still down, %zu up before and after\n", after.n,
		regressions, regressions == 1 ? "" : "s", recoveries, recoveries == 1 ? "y" : "ies", still_down,
		unchanged_up);
	rc = regressions ? HD_EXIT_FAILED : HD_EXIT_OK;
out:
	free_snapshot(&before);
	free_snapshot(&after);
	return rc;
}

/* A file or a pipe (`healthd diff before.json <(curl -s http://be2:9110/health)`), at most SNAPSHOT_MAX_BYTES. */
static char *read_snapshot_file(const char *path, size_t *len, FILE *err)
{
	FILE *f = fopen(path, "re");
	size_t cap = 65536, used = 0, n;
	char *text;

	if (f == NULL) {
		snap_error(err, path, "cannot read: %s", strerror(errno));
		return NULL;
	}
	text = xmalloc(cap + 1);
	while ((n = fread(text + used, 1, cap - used, f)) > 0) {
		used += n;
		if (used == cap && cap <= SNAPSHOT_MAX_BYTES) {
			cap *= 2;
			text = xrealloc(text, cap + 1);
		}
		if (used > SNAPSHOT_MAX_BYTES)
			break;
	}
	if (ferror(f) || used > SNAPSHOT_MAX_BYTES) {
		snap_error(err, path, "cannot read: %s", ferror(f) ? strerror(errno) : "larger than the limit of a snapshot");
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	text[used] = '\0';
	*len = strlen(text);
	return text;
}

int oneshot_diff(const char *before_path, const char *after_path, FILE *out, FILE *err)
{
	size_t before_len = 0, after_len = 0;
	char *before = read_snapshot_file(before_path, &before_len, err), *after = NULL;
	int rc = HD_EXIT_USAGE;

	if (before != NULL && (after = read_snapshot_file(after_path, &after_len, err)) != NULL)
		rc = oneshot_diff_texts(before_path, before, before_len, after_path, after, after_len, out, err);
	free(before);
	free(after);
	return rc;
}

int oneshot_diff_main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		diff_usage(stdout);
		return HD_EXIT_OK;
	}
	if (argc != 3) {
		fprintf(stderr, "healthd diff: expected two files, got %d argument%s\n", argc - 1, argc == 2 ? "" : "s");
		diff_usage(stderr);
		return HD_EXIT_USAGE;
	}
	return oneshot_diff(argv[1], argv[2], stdout, stderr);
}
