/* fleet.c: `healthd fleet` polls every backend's /health at once and tells a broken path from a broken server. */
#include "fleet.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kinds.h"
#include "page.h"
#include "curl_loop.h"
#include "fleet_prom.h"
#include "util.h"

#define FLEET_BODY_MAX (4 * 1024 * 1024)
#define FLEET_FILE_MAX (1024 * 1024)
#define FLEET_TIMEOUT_DEFAULT_MS 3000
#define FLEET_DETAIL_COLUMN 60 /* the table pads details up to this width; longer ones push SINCE right */
#define SAMPLE_BYTES 48

enum { FLEET_EXIT_OK = 0, FLEET_EXIT_WARNING = 1, FLEET_EXIT_CRITICAL = 2, FLEET_EXIT_UNKNOWN = 3 };

/* One line of the table: a check of a backend, or a backend whose healthd did not answer as healthd. */
struct row {
	size_t backend;
	size_t order; /* in the replies, then in the body: keeps the sort stable */
	char node[128], check[128], status[16], kind[24], detail[512], since[40];
	char target[256], address[96], source[96], type[24];
	bool critical, failing;
	bool healthd_row; /* the backend itself: unreachable, or an answer that is not healthd's */
};

/* The checks of every backend that go to one target: what tells a path from a server. */
struct group {
	const char *target;
	size_t *rows;
	size_t n_rows;
	size_t n_backends, n_down;
	char label[512], summary[1024];
	const char *verdict; /* "up", "path", "server", "single" */
	size_t local_to;     /* the backend whose own host the target is, or SIZE_MAX */
};

struct fleet {
	const struct hd_fleet_reply *replies;
	size_t n_replies;
	char (*names)[128]; /* each backend's node name, or its host:port */
	bool *answered;     /* answered as healthd */
	struct row *rows;
	size_t n_rows, cap_rows;
	size_t *sorted; /* failing rows first */
	struct group *groups;
	size_t n_groups;
	size_t n_unanswered, n_checks, n_down;
	bool critical_down;
	int exit_code;
};

static void sanitize(const char *in, char *out, size_t outlen)
{
	hd_sanitize_text(in ? in : "", in ? strlen(in) : 0, out, outlen);
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

static struct row *new_row(struct fleet *f, size_t backend)
{
	struct row *r;

	if (f->n_rows == f->cap_rows) {
		f->cap_rows = f->cap_rows ? f->cap_rows * 2 : 16;
		f->rows = xrealloc(f->rows, f->cap_rows * sizeof(*f->rows));
	}
	r = &f->rows[f->n_rows];
	memset(r, 0, sizeof(*r));
	r->backend = backend;
	r->order = f->n_rows++;
	return r;
}

static void backend_failed(struct fleet *f, size_t b, const char *status, const char *kind, const char *fmt, ...)
	HD_PRINTF(5, 6);
static void backend_failed(struct fleet *f, size_t b, const char *status, const char *kind, const char *fmt, ...)
{
	struct row *r = new_row(f, b);
	va_list ap;

	hd_strlcpy(r->node, f->names[b], sizeof(r->node));
	hd_strlcpy(r->check, "(healthd)", sizeof(r->check));
	hd_strlcpy(r->status, status, sizeof(r->status));
	hd_strlcpy(r->kind, kind, sizeof(r->kind));
	hd_strlcpy(r->since, "-", sizeof(r->since));
	va_start(ap, fmt);
	hd_vformat_sanitized(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	r->failing = r->healthd_row = r->critical = true;
	f->answered[b] = false;
}

/* The first bytes of an answer that is not healthd's, as one printable line. */
static void body_sample(const struct hd_fleet_reply *rep, char *out, size_t len)
{
	size_t n = rep->body_len < SAMPLE_BYTES ? rep->body_len : SAMPLE_BYTES;

	hd_sanitize_text(rep->body ? rep->body : "", n, out, len);
	if (n < rep->body_len && strlen(out) + 4 < len)
		strcat(out, "...");
}

static void add_check_row(struct fleet *f, size_t b, const cJSON *c)
{
	struct row *r = new_row(f, b);
	const cJSON *critical = cJSON_GetObjectItemCaseSensitive(c, "critical");

	hd_strlcpy(r->node, f->names[b], sizeof(r->node));
	sanitize(c->string, r->check, sizeof(r->check));
	sanitize(json_str(c, "status"), r->status, sizeof(r->status));
	sanitize(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "kind")) ? json_str(c, "kind") : "-", r->kind,
		 sizeof(r->kind));
	sanitize(json_str(c, "detail"), r->detail, sizeof(r->detail));
	sanitize(json_str(c, "since")[0] ? json_str(c, "since") : "-", r->since, sizeof(r->since));
	sanitize(json_str(c, "target"), r->target, sizeof(r->target));
	sanitize(json_str(c, "address"), r->address, sizeof(r->address));
	sanitize(json_str(c, "source_addr"), r->source, sizeof(r->source));
	sanitize(json_str(c, "type"), r->type, sizeof(r->type));
	if (!r->target[0])
		hd_strlcpy(r->target, r->check, sizeof(r->target));
	r->critical = !cJSON_IsFalse(critical);
	r->failing = strcmp(r->status, "up") != 0 && strcmp(r->status, "warn") != 0;
}

/* One reply: its checks as rows, or the one row that says why there are none. */
static void read_reply(struct fleet *f, size_t b)
{
	const struct hd_fleet_reply *rep = &f->replies[b];
	cJSON *root, *checks, *node, *c;
	char sample[SAMPLE_BYTES * 4 + 8];

	sanitize(rep->name, f->names[b], sizeof(f->names[b]));
	f->answered[b] = true;
	if (!rep->answered) {
		backend_failed(f, b, "unreachable", hd_kind_name((enum hd_kind)rep->kind), "%s: %s", rep->url,
			       rep->detail ? rep->detail : "");
		return;
	}
	root = cJSON_ParseWithLength(rep->body ? rep->body : "", rep->body_len);
	checks = cJSON_GetObjectItemCaseSensitive(root, "checks");
	node = cJSON_GetObjectItemCaseSensitive(root, "node");
	body_sample(rep, sample, sizeof(sample));
	if (!cJSON_IsObject(root) || !cJSON_IsObject(checks) || !cJSON_IsString(node)) {
		if (rep->http_status != 200 && rep->http_status != 503)
			backend_failed(f, b, "invalid", "http_status", "%s: HTTP %ld, not healthd's /health: \"%s\"",
				       rep->url, rep->http_status, sample);
		else if (cJSON_IsObject(root) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "status")) &&
			 cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "admin")))
			backend_failed(f, b, "invalid", "protocol",
				       "%s: status \"%s\" only, no checks: is this host in the backend's http.details_from?",
				       rep->url, json_str(root, "status"));
		else
			backend_failed(f, b, "invalid", "protocol", "%s: not healthd's /health JSON (HTTP %ld, %zu bytes): \"%s\"",
				       rep->url, rep->http_status, rep->body_len, sample);
		cJSON_Delete(root);
		return;
	}
	if (node->valuestring[0])
		sanitize(node->valuestring, f->names[b], sizeof(f->names[b]));
	cJSON_ArrayForEach(c, checks)
		if (cJSON_IsObject(c) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "status")))
			add_check_row(f, b, c);
	cJSON_Delete(root);
}

static int cmp_rows(const void *a, const void *b, void *arg)
{
	const struct fleet *f = arg;
	const struct row *x = &f->rows[*(const size_t *)a], *y = &f->rows[*(const size_t *)b];

	if (x->failing != y->failing)
		return x->failing ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- grouping by target, and the verdict: a path (some backends) or the server (all of them) ---- */

static bool row_of_backend_in(const struct fleet *f, const struct group *g, size_t upto, size_t backend, bool failing)
{
	for (size_t i = 0; i < upto; i++) {
		const struct row *r = &f->rows[g->rows[i]];
		if (r->backend == backend && (!failing || r->failing))
			return true;
	}
	return false;
}

/* Appends ", word" to list unless it is there already (word boundaries are ", "). */
static void append_unique(char *list, size_t len, const char *word, const char *sep)
{
	size_t used = strlen(list), wl = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += wl)
		if ((p == list || strncmp(p - strlen(sep), sep, strlen(sep)) == 0) && (p[wl] == '\0' ||
		    strncmp(p + wl, sep, strlen(sep)) == 0))
			return;
	hd_appendf(list, len, &used, "%s%s", used ? sep : "", word);
}

static void describe_group(struct fleet *f, struct group *g)
{
	char names[256] = "", addrs[256] = "", down[512] = "", down_names[256] = "", kinds[128] = "", up_names[256] = "";
	char first_kind[160] = "";
	size_t used = 0, n_addrs = 0;

	for (size_t i = 0; i < g->n_rows; i++) {
		const struct row *r = &f->rows[g->rows[i]];
		append_unique(names, sizeof(names), r->check, "/");
		if (r->address[0] && strcmp(r->address, r->target) != 0 && strstr(addrs, r->address) == NULL) {
			append_unique(addrs, sizeof(addrs), r->address, ", ");
			n_addrs++;
		}
		if (!r->failing || row_of_backend_in(f, g, i, r->backend, true))
			continue;
		append_unique(kinds, sizeof(kinds), r->kind, ", ");
		append_unique(down_names, sizeof(down_names), f->names[r->backend], ", ");
		if (!used)
			snprintf(first_kind, sizeof(first_kind), "(%s%s%s)", r->kind, r->source[0] ? ", from " : "", r->source);
		hd_appendf(down, sizeof(down), &used, "%s%s (%s%s%s)", used ? ", " : "", f->names[r->backend], r->kind,
			   r->source[0] ? ", from " : "", r->source);
	}
	for (size_t i = 0; i < g->n_rows; i++) {
		const struct row *r = &f->rows[g->rows[i]];
		if (!row_of_backend_in(f, g, g->n_rows, r->backend, true))
			append_unique(up_names, sizeof(up_names), f->names[r->backend], ", ");
	}
	used = 0;
	hd_appendf(g->label, sizeof(g->label), &used, "%s %s", names, g->target);
	if (n_addrs == 1)
		hd_appendf(g->label, sizeof(g->label), &used, " (%s)", addrs);
	used = 0;
	if (g->n_down == 0) {
		g->verdict = "up";
		hd_appendf(g->summary, sizeof(g->summary), &used, "%s: up on all %zu", g->label, g->n_backends);
	} else if (g->n_backends == 1) {
		g->verdict = "single";
		hd_appendf(g->summary, sizeof(g->summary), &used,
			   "%s: down on %s, the only backend that checks it — the path or the server: check it from another host",
			   g->label, down);
	} else if (g->n_down == g->n_backends) {
		g->verdict = "server";
		hd_appendf(g->summary, sizeof(g->summary), &used, "%s: down on all %zu (%s) — the server itself",
			   g->label, g->n_backends, kinds);
	} else {
		g->verdict = "path";
		if (g->n_down == 1) /* "down on be2 only (timeout, from 10.0.1.12), up on be1, be3" */
			hd_appendf(g->summary, sizeof(g->summary), &used, "%s: down on %s only %s", g->label, down_names,
				   first_kind);
		else
			hd_appendf(g->summary, sizeof(g->summary), &used, "%s: down on %s only", g->label, down);
		hd_appendf(g->summary, sizeof(g->summary), &used, ", up on %s — the path%s from %s, not the server", up_names,
			   g->n_down > 1 ? "s" : "", down_names);
	}
	if (g->n_down > 0 && f->n_unanswered > 0)
		hd_appendf(g->summary, sizeof(g->summary), &used, " (%zu backend%s did not answer)", f->n_unanswered,
			   f->n_unanswered > 1 ? "s" : "");
}

/* A target on the backend itself (127.0.0.1, ::1, localhost): the same name on two backends is two servers. */
static bool target_is_local(const char *target)
{
	const char *host = strstr(target, "://");

	host = host ? host + 3 : target;
	host += strcspn(host, "@/") < strlen(host) && host[strcspn(host, "@/")] == '@' ? strcspn(host, "@/") + 1 : 0;
	return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 || strncmp(host, "[::1]", 5) == 0 ||
	       strncmp(host, "::1", 3) == 0;
}

static void group_rows(struct fleet *f)
{
	f->groups = xcalloc(f->n_rows + 1, sizeof(*f->groups));
	for (size_t i = 0; i < f->n_rows; i++) {
		struct row *r = &f->rows[i];
		struct group *g = NULL;
		if (r->healthd_row)
			continue;
		bool local = target_is_local(r->target);
		for (size_t k = 0; k < f->n_groups && g == NULL; k++)
			if (strcmp(f->groups[k].target, r->target) == 0 && (!local || f->groups[k].local_to == r->backend))
				g = &f->groups[k];
		if (g == NULL) {
			g = &f->groups[f->n_groups++];
			g->target = r->target;
			g->local_to = local ? r->backend : SIZE_MAX;
			g->rows = xcalloc(f->n_rows, sizeof(*g->rows));
		}
		if (!row_of_backend_in(f, g, g->n_rows, r->backend, false))
			g->n_backends++;
		if (r->failing && !row_of_backend_in(f, g, g->n_rows, r->backend, true))
			g->n_down++;
		g->rows[g->n_rows++] = i;
	}
	for (size_t k = 0; k < f->n_groups; k++)
		describe_group(f, &f->groups[k]);
}

static void fleet_build(struct fleet *f, const struct hd_fleet_reply *replies, size_t n)
{
	bool any_down = false;

	memset(f, 0, sizeof(*f));
	f->replies = replies;
	f->n_replies = n;
	f->names = xcalloc(n + 1, sizeof(*f->names));
	f->answered = xcalloc(n + 1, sizeof(*f->answered));
	for (size_t b = 0; b < n; b++)
		read_reply(f, b);
	for (size_t b = 0; b < n; b++)
		f->n_unanswered += !f->answered[b];
	f->sorted = xcalloc(f->n_rows + 1, sizeof(*f->sorted));
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[i];
		f->sorted[i] = i;
		if (r->healthd_row)
			continue;
		f->n_checks++;
		f->n_down += r->failing;
		any_down |= r->failing;
		f->critical_down |= r->failing && r->critical;
	}
	qsort_r(f->sorted, f->n_rows, sizeof(*f->sorted), cmp_rows, f);
	group_rows(f);
	f->exit_code = f->critical_down || f->n_unanswered ? FLEET_EXIT_CRITICAL
		       : any_down			   ? FLEET_EXIT_WARNING
							   : FLEET_EXIT_OK;
}

static void fleet_free(struct fleet *f)
{
	for (size_t k = 0; k < f->n_groups; k++)
		free(f->groups[k].rows);
	free(f->groups);
	free(f->sorted);
	free(f->rows);
	free(f->names);
	free(f->answered);
}

static const char *result_text(const struct fleet *f)
{
	if (f->critical_down)
		return "a critical check is down";
	if (f->n_unanswered)
		return "a backend's healthd did not answer";
	if (f->exit_code == FLEET_EXIT_WARNING)
		return "only non-critical checks are down";
	return "every check of every backend is up";
}

/* The summary lines: one per dependency down somewhere, one per backend that did not answer. */
static void for_each_summary(const struct fleet *f, void (*emit)(const char *line, void *arg), void *arg)
{
	char line[1024];

	for (size_t k = 0; k < f->n_groups; k++)
		if (f->groups[k].n_down > 0)
			emit(f->groups[k].summary, arg);
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[i];
		if (!r->healthd_row)
			continue;
		snprintf(line, sizeof(line), "%s: healthd %s (%s) — its dependencies are unknown from here",
			 r->node, strcmp(r->status, "unreachable") == 0 ? "did not answer" : "answered, but not as healthd",
			 r->kind);
		emit(line, arg);
	}
}

/* ---- the table ---- */

/* Columns count characters, not bytes (a detail may quote UTF-8). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void print_cell(FILE *out, const char *s, size_t width, bool last)
{
	size_t w = text_width(s);

	fputs(s, out);
	if (!last)
		for (fputs("  ", out); w < width; w++)
			fputc(' ', out);
}

static void print_line(const char *line, void *arg)
{
	fprintf(arg, "%s\n", line);
}

static void print_table(FILE *out, const struct fleet *f)
{
	static const char *const heads[] = {"NODE", "CHECK", "STATUS", "KIND", "DETAIL", "SINCE"};
	size_t width[HD_ARRAY_LEN(heads)];

	for (size_t c = 0; c < HD_ARRAY_LEN(heads); c++)
		width[c] = strlen(heads[c]);
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[i];
		const char *cells[] = {r->node, r->check, r->status, r->kind, r->detail, r->since};
		for (size_t c = 0; c < HD_ARRAY_LEN(cells); c++) {
			size_t w = text_width(cells[c]);
			if (w > width[c] && (c != 4 || w <= FLEET_DETAIL_COLUMN))
				width[c] = w;
		}
	}
	for (size_t c = 0; c < HD_ARRAY_LEN(heads); c++)
		print_cell(out, heads[c], width[c], c + 1 == HD_ARRAY_LEN(heads));
	fputc('\n', out);
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[f->sorted[i]];
		const char *cells[] = {r->node, r->check, r->status, r->kind, r->detail, r->since};
		for (size_t c = 0; c < HD_ARRAY_LEN(cells); c++)
			print_cell(out, cells[c], width[c], c + 1 == HD_ARRAY_LEN(cells));
		fputc('\n', out);
	}
	fputc('\n', out);
	for_each_summary(f, print_line, out);
	fprintf(out, "%zu backends, %zu answered; %zu checks, %zu down\n", f->n_replies, f->n_replies - f->n_unanswered,
		f->n_checks, f->n_down);
	fprintf(out, "result: %s (exit %d)\n", result_text(f), f->exit_code);
}

/* ---- --json ---- */

static void add_summary_json(const char *line, void *arg)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(line));
}

static void print_json(FILE *out, const struct fleet *f)
{
	cJSON *root = cJSON_CreateObject(), *backends, *rows, *deps, *summary;
	char *text;

	cJSON_AddStringToObject(root, "format", "healthd-fleet");
	cJSON_AddNumberToObject(root, "version", 1);
	cJSON_AddStringToObject(root, "status", f->exit_code == FLEET_EXIT_OK	   ? "up"
						: f->exit_code == FLEET_EXIT_WARNING ? "degraded"
										     : "down");
	cJSON_AddNumberToObject(root, "exit", f->exit_code);
	backends = cJSON_AddArrayToObject(root, "backends");
	for (size_t b = 0; b < f->n_replies; b++) {
		cJSON *o = cJSON_CreateObject();
		char url[512];
		sanitize(f->replies[b].url, url, sizeof(url));
		cJSON_AddStringToObject(o, "url", url);
		cJSON_AddStringToObject(o, "node", f->names[b]);
		cJSON_AddBoolToObject(o, "answered", f->answered[b]);
		cJSON_AddItemToArray(backends, o);
	}
	rows = cJSON_AddArrayToObject(root, "rows");
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[f->sorted[i]];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "node", r->node);
		cJSON_AddStringToObject(o, "check", r->check);
		cJSON_AddStringToObject(o, "status", r->status);
		cJSON_AddStringToObject(o, "kind", r->kind);
		cJSON_AddStringToObject(o, "detail", r->detail);
		cJSON_AddStringToObject(o, "since", r->since);
		cJSON_AddStringToObject(o, "target", r->healthd_row ? "" : r->target);
		cJSON_AddStringToObject(o, "address", r->address);
		cJSON_AddStringToObject(o, "source_addr", r->source);
		cJSON_AddStringToObject(o, "type", r->healthd_row ? "healthd" : r->type);
		cJSON_AddBoolToObject(o, "critical", r->critical);
		cJSON_AddBoolToObject(o, "failing", r->failing);
		cJSON_AddItemToArray(rows, o);
	}
	deps = cJSON_AddArrayToObject(root, "dependencies");
	for (size_t k = 0; k < f->n_groups; k++) {
		const struct group *g = &f->groups[k];
		cJSON *o = cJSON_CreateObject(), *checked = cJSON_CreateArray(), *down = cJSON_CreateArray();
		cJSON_AddStringToObject(o, "target", g->target);
		cJSON_AddStringToObject(o, "label", g->label);
		for (size_t i = 0; i < g->n_rows; i++) {
			const struct row *r = &f->rows[g->rows[i]];
			if (!row_of_backend_in(f, g, i, r->backend, false))
				cJSON_AddItemToArray(checked, cJSON_CreateString(r->node));
			if (r->failing && !row_of_backend_in(f, g, i, r->backend, true))
				cJSON_AddItemToArray(down, cJSON_CreateString(r->node));
		}
		cJSON_AddItemToObject(o, "checked_by", checked);
		cJSON_AddItemToObject(o, "down_on", down);
		cJSON_AddStringToObject(o, "verdict", g->verdict);
		cJSON_AddStringToObject(o, "summary", g->summary);
		cJSON_AddItemToArray(deps, o);
	}
	summary = cJSON_AddArrayToObject(root, "summary");
	for_each_summary(f, add_summary_json, summary);
	text = cJSON_Print(root);
	if (text == NULL)
		hd_fatal("cJSON: out of memory");
	fprintf(out, "%s\n", text);
	free(text);
	cJSON_Delete(root);
}

/* ---- the graph: --dot (Graphviz) and --diagrams (the Diagrams library's Python) ---- */

static void escape_quoted(const char *in, char *out, size_t outlen, bool python)
{
	size_t used = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char piece[8];
		if (*p == '"' || *p == '\\')
			snprintf(piece, sizeof(piece), "\\%c", *p);
		else if (*p == '\n')
			snprintf(piece, sizeof(piece), "\\n");
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(piece, sizeof(piece), "\\\\x%02x", *p); /* shown as text, never the byte itself */
		else if (python || *p != '\r')
			snprintf(piece, sizeof(piece), "%c", *p);
		if (used + strlen(piece) + 1 > outlen)
			break;
		memcpy(out + used, piece, strlen(piece) + 1);
		used += strlen(piece);
	}
}

void hd_fleet_escape_dot(const char *in, char *out, size_t outlen)
{
	escape_quoted(in, out, outlen, false);
}

void hd_fleet_escape_python(const char *in, char *out, size_t outlen)
{
	escape_quoted(in, out, outlen, true);
}

/* "timeout: silently dropped (firewall DROP?)", "ok", "pending". */
static void edge_meaning(const struct row *r, char *buf, size_t len)
{
	int kind = hd_kind_from_name(r->kind);
	const struct hd_kind_words *w;
	char meaning[256];

	if (!r->failing) {
		snprintf(buf, len, "%s: %s", r->check, r->status);
		return;
	}
	if (kind < 0 || kind == HD_KIND_OK) {
		snprintf(buf, len, "%s: %s", r->check, r->status);
		return;
	}
	w = hd_kind_words((enum hd_kind)kind, r->target);
	snprintf(meaning, sizeof(meaning), "%s%s%s%s", w->was, w->hint[0] ? " (" : "", w->hint, w->hint[0] ? ")" : "");
	if (strncmp(meaning, r->kind, strlen(r->kind)) == 0) /* "refused (firewall REJECT...)" says its kind */
		snprintf(buf, len, "%s: %s", r->check, meaning);
	else
		snprintf(buf, len, "%s: %s: %s", r->check, r->kind, meaning);
}

static const struct group *group_of(const struct fleet *f, size_t row, size_t *index)
{
	for (size_t k = 0; k < f->n_groups; k++)
		for (size_t i = 0; i < f->groups[k].n_rows; i++)
			if (f->groups[k].rows[i] == row) {
				*index = k;
				return &f->groups[k];
			}
	return NULL;
}

static void backend_label(const struct fleet *f, size_t b, char *buf, size_t len)
{
	size_t used = 0;

	hd_appendf(buf, len, &used, "%s", f->names[b]);
	if (strcmp(f->names[b], f->replies[b].name ? f->replies[b].name : "") != 0)
		hd_appendf(buf, len, &used, "\n%s", f->replies[b].name ? f->replies[b].name : "");
	for (size_t i = 0; i < f->n_rows; i++)
		if (f->rows[i].backend == b && f->rows[i].healthd_row)
			hd_appendf(buf, len, &used, "\nhealthd %s: %s", f->rows[i].status, f->rows[i].kind);
}

/* The state of a dependency node: "up", "down", "down on 1 of 3: the path", "down on all 3: the server". */
static const char *verdict_words(const struct group *g)
{
	static char buf[64];

	if (g->n_down == 0)
		return "up";
	if (g->n_backends == 1)
		return "down";
	if (g->n_down == g->n_backends)
		snprintf(buf, sizeof(buf), "down on all %zu: the server", g->n_backends);
	else
		snprintf(buf, sizeof(buf), "down on %zu of %zu: the path", g->n_down, g->n_backends);
	return buf;
}

static void print_dot(FILE *out, const struct fleet *f)
{
	char label[1024], esc[2048];

	fprintf(out, "// healthd fleet: each backend, what it depends on, one edge per check (render: dot -Tsvg)\n"
		     "digraph healthd_fleet {\n"
		     "\trankdir=LR;\n"
		     "\tnode [fontname=\"Helvetica\", fontsize=10];\n"
		     "\tedge [fontname=\"Helvetica\", fontsize=9];\n");
	for (size_t b = 0; b < f->n_replies; b++) {
		backend_label(f, b, label, sizeof(label));
		hd_fleet_escape_dot(label, esc, sizeof(esc));
		fprintf(out, "\t\"b%zu\" [label=\"%s\", shape=box%s];\n", b, esc,
			f->answered[b] ? "" : ", color=red, fontcolor=red, style=dashed");
	}
	for (size_t k = 0; k < f->n_groups; k++) {
		const struct group *g = &f->groups[k];
		const char *type = f->rows[g->rows[0]].type;
		snprintf(label, sizeof(label), "%s\n%s", g->label, verdict_words(g));
		hd_fleet_escape_dot(label, esc, sizeof(esc));
		fprintf(out, "\t\"d%zu\" [label=\"%s\", shape=%s%s];\n", k, esc,
			strcmp(type, "mysql") == 0 || strcmp(type, "redis") == 0 ? "cylinder" : "ellipse",
			g->n_down == g->n_backends && g->n_down ? ", color=red" : "");
	}
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[i];
		size_t k;
		if (r->healthd_row || group_of(f, i, &k) == NULL)
			continue;
		edge_meaning(r, label, sizeof(label));
		hd_fleet_escape_dot(label, esc, sizeof(esc));
		fprintf(out, "\t\"b%zu\" -> \"d%zu\" [label=\"%s\", %s];\n", r->backend, k, esc,
			r->failing ? "color=red, fontcolor=red, style=dashed" : "color=darkgreen, style=solid");
	}
	fprintf(out, "}\n");
}

/* The Diagrams class that draws a dependency of this check type. */
static const char *diagrams_class(const char *type)
{
	if (strcmp(type, "mysql") == 0)
		return "Mysql";
	if (strcmp(type, "redis") == 0)
		return "Redis";
	if (strcmp(type, "http") == 0)
		return "Internet";
	if (strcmp(type, "tcp") == 0)
		return "Switch";
	return "Rack";
}

static void print_diagrams(FILE *out, const struct fleet *f)
{
	char label[1024], esc[2048];

	fprintf(out, "# healthd fleet: each backend, what it depends on, one edge per check.\n"
		     "# Draw it with the Diagrams library (needs Graphviz): python3 THIS_FILE -> healthd-fleet.png\n"
		     "from diagrams import Diagram, Edge\n"
		     "from diagrams.generic.compute import Rack\n"
		     "from diagrams.generic.network import Switch\n"
		     "from diagrams.onprem.compute import Server\n"
		     "from diagrams.onprem.database import Mysql\n"
		     "from diagrams.onprem.inmemory import Redis\n"
		     "from diagrams.onprem.network import Internet\n"
		     "\n"
		     "with Diagram(\"healthd fleet\", filename=\"healthd-fleet\", show=False, direction=\"LR\"):\n");
	for (size_t b = 0; b < f->n_replies; b++) {
		backend_label(f, b, label, sizeof(label));
		hd_fleet_escape_python(label, esc, sizeof(esc));
		fprintf(out, "    b%zu = Server(\"%s\")\n", b, esc);
	}
	for (size_t k = 0; k < f->n_groups; k++) {
		const struct group *g = &f->groups[k];
		snprintf(label, sizeof(label), "%s\n%s", g->label, verdict_words(g));
		hd_fleet_escape_python(label, esc, sizeof(esc));
		fprintf(out, "    d%zu = %s(\"%s\")\n", k, diagrams_class(f->rows[g->rows[0]].type), esc);
	}
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[i];
		size_t k;
		if (r->healthd_row || group_of(f, i, &k) == NULL)
			continue;
		edge_meaning(r, label, sizeof(label));
		hd_fleet_escape_python(label, esc, sizeof(esc));
		fprintf(out, "    b%zu >> Edge(label=\"%s\", %s) >> d%zu\n", r->backend, esc,
			r->failing ? "color=\"red\", style=\"dashed\"" : "color=\"darkgreen\"", k);
	}
	if (f->n_replies == 0 && f->n_groups == 0)
		fprintf(out, "    pass\n");
}

/* ---- --html: the same view as a page; the graph drawn by Graphviz when it is installed ---- */

#define DOT_RUN_MS 10000
#define SVG_MAX (8 * 1024 * 1024)

/* Runs `dot -Tsvg` on the graph, bounded in time and bytes: the SVG from its "<svg", or NULL with why. */
static char *render_svg(const char *dot, size_t dot_len, char *why, size_t whylen)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {"dot", "-Tsvg", NULL}, *svg = NULL, *start;
	FILE *in = tmpfile();
	int out[2] = {-1, -1}, status = 0, err;
	size_t len = 0;
	int64_t deadline = hd_now_mono_ms() + DOT_RUN_MS;
	pid_t pid;

	if (in == NULL || fwrite(dot, 1, dot_len, in) != dot_len || fflush(in) != 0 || fseek(in, 0, SEEK_SET) != 0 ||
	    pipe2(out, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "cannot run Graphviz: %s", strerror(errno));
		if (in)
			fclose(in);
		return NULL;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fileno(in), 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	err = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	fclose(in);
	if (err != 0) {
		snprintf(why, whylen, err == ENOENT ? "Graphviz is not installed (apt install graphviz): no graph"
						    : "cannot run Graphviz's dot: %s", strerror(err));
		close(out[0]);
		return NULL;
	}
	svg = xmalloc(SVG_MAX + 1);
	for (;;) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		int64_t left = deadline - hd_now_mono_ms();
		ssize_t got;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || len == SVG_MAX)
			break;
		got = read(out[0], svg + len, SVG_MAX - len);
		if (got <= 0 && !(got < 0 && errno == EINTR))
			break;
		len += got > 0 ? (size_t)got : 0;
	}
	close(out[0]);
	kill(pid, SIGKILL); /* harmless once it exited: it stays a zombie until the wait below */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	svg[len] = '\0';
	start = strstr(svg, "<svg");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || start == NULL) {
		snprintf(why, whylen, "Graphviz's dot did not draw the graph (%s)",
			 WIFEXITED(status) ? "it failed" : "over 10 s or 8 MiB");
		free(svg);
		return NULL;
	}
	memmove(svg, start, strlen(start) + 1);
	return svg;
}

static const char *row_class(const struct row *r)
{
	if (strcmp(r->status, "up") == 0 || strcmp(r->status, "warn") == 0 || strcmp(r->status, "pending") == 0)
		return r->status;
	return "down";
}

static void print_html(FILE *out, const struct fleet *f)
{
	static const char *const words[] = {"up", "degraded", "down", "down"};
	const char *word = words[f->exit_code & 3];
	struct evbuffer *b = evbuffer_new();
	char *dot = NULL, *svg, why[256], when[40];
	size_t dot_len = 0;
	FILE *dot_out = open_memstream(&dot, &dot_len);
	bool any = false;

	if (b == NULL || dot_out == NULL)
		hd_fatal("out of memory");
	print_dot(dot_out, f);
	fclose(dot_out);
	svg = render_svg(dot, dot_len, why, sizeof(why));
	hd_iso8601(hd_now_wall_ms(), when, sizeof(when));
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
			    "style-src 'unsafe-inline'\"><title>%s - healthd fleet</title><style>%s"
			    "#rows td:nth-child(-n+4){word-break:normal;white-space:nowrap}</style></head><body>\n"
			    "<h1>healthd fleet: %zu backends</h1>\n<p id=\"overall\">result: <span class=\"badge %s\">%s</span> ",
			    word, hd_page_style, f->n_replies, word, word);
	hd_html_escape(b, result_text(f));
	evbuffer_add_printf(b, "<br><small>polled %s; %zu answered; %zu checks, %zu down</small></p>\n"
			    "<h2>Dependencies</h2>\n<ul id=\"summary\">\n", when, f->n_replies - f->n_unanswered, f->n_checks,
			    f->n_down);
	for (size_t k = 0; k < f->n_groups; k++)
		if (f->groups[k].n_down > 0) {
			evbuffer_add_printf(b, "<li class=\"%s\">", f->groups[k].verdict);
			hd_html_escape(b, f->groups[k].summary);
			evbuffer_add_printf(b, "</li>\n");
			any = true;
		}
	for (size_t i = 0; i < f->n_rows; i++)
		if (f->rows[i].healthd_row) {
			evbuffer_add_printf(b, "<li class=\"healthd\">healthd on ");
			hd_html_escape(b, f->rows[i].node);
			evbuffer_add_printf(b, " did not answer as healthd (");
			hd_html_escape(b, f->rows[i].kind);
			evbuffer_add_printf(b, "): its dependencies are unknown from here</li>\n");
			any = true;
		}
	if (!any)
		evbuffer_add_printf(b, "<li>every dependency is up on every backend that checks it</li>\n");
	evbuffer_add_printf(b, "</ul>\n<h2>Graph</h2>\n<div id=\"graph\">");
	if (svg != NULL)
		evbuffer_add(b, svg, strlen(svg)); /* Graphviz's own XML: it escapes every label it draws */
	else {
		evbuffer_add_printf(b, "<p>");
		hd_html_escape(b, why);
		evbuffer_add_printf(b, "</p>");
	}
	evbuffer_add_printf(b, "</div>\n<h2>Checks</h2>\n<table id=\"rows\"><tr><th>node</th><th>check</th><th>status</th>"
			    "<th>kind</th><th>detail</th><th class=\"hide-narrow\">since</th></tr>\n");
	for (size_t i = 0; i < f->n_rows; i++) {
		const struct row *r = &f->rows[f->sorted[i]];
		const char *cells[] = {r->node, r->check, r->status, r->kind, r->detail, r->since};
		evbuffer_add_printf(b, "<tr class=\"%s\">", row_class(r));
		for (size_t c = 0; c < HD_ARRAY_LEN(cells); c++) {
			evbuffer_add_printf(b, c == 2 ? "<td><span class=\"badge %s\">" : c == 5 ? "<td class=\"hide-narrow\">"
											      : "<td>",
					    row_class(r));
			hd_html_escape(b, cells[c]);
			evbuffer_add_printf(b, c == 2 ? "</span></td>" : "</td>");
		}
		evbuffer_add_printf(b, "</tr>\n");
	}
	evbuffer_add_printf(b, "</table>\n</body></html>\n");
	for (struct evbuffer_iovec v; evbuffer_peek(b, -1, NULL, &v, 1) > 0 && v.iov_len > 0;) {
		fwrite(v.iov_base, 1, v.iov_len, out);
		evbuffer_drain(b, v.iov_len);
	}
	evbuffer_free(b);
	free(svg);
	free(dot);
}

int hd_fleet_report(const struct hd_fleet_reply *replies, size_t n, enum hd_fleet_format format, FILE *out)
{
	struct fleet f;
	int rc;

	fleet_build(&f, replies, n);
	switch (format) {
	case HD_FLEET_JSON:
		print_json(out, &f);
		break;
	case HD_FLEET_DOT:
		print_dot(out, &f);
		break;
	case HD_FLEET_DIAGRAMS:
		print_diagrams(out, &f);
		break;
	case HD_FLEET_HTML:
		print_html(out, &f);
		break;
	default:
		print_table(out, &f);
		break;
	}
	rc = f.exit_code;
	fleet_free(&f);
	return rc;
}

/* ---- polling: one libcurl transfer per backend, all on the one event loop ---- */

struct poll {
	struct poll_run *run;
	char *url, *shown, *name;
	CURL *easy;
	char *body;
	size_t len;
	bool too_big, finished;
	char errbuf[CURL_ERROR_SIZE];
	char detail[CURL_ERROR_SIZE + 256];
	struct hd_fleet_reply reply;
};

struct poll_run {
	struct event_base *base;
	size_t left;
	int timeout_ms;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct poll *p = arg;

	if (!hd_append_bounded(&p->body, &p->len, FLEET_BODY_MAX, data, size * n)) {
		p->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	return size * n;
}

static void poll_failed(struct poll *p, enum hd_kind kind, const char *fmt, ...) HD_PRINTF(3, 4);
static void poll_failed(struct poll *p, enum hd_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
	p->reply.answered = false;
	p->reply.kind = kind;
	p->reply.detail = p->detail;
}

static void judge_transfer(struct poll *p, CURLcode result)
{
	const char *why = p->errbuf[0] ? p->errbuf : curl_easy_strerror(result);
	char *ip = NULL;
	long os_errno = 0, port = 0;
	curl_off_t connected_us = 0;
	char peer[96] = "";

	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &p->reply.http_status);
	curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(p->easy, CURLINFO_CONNECT_TIME_T, &connected_us);
	if (curl_easy_getinfo(p->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && ip[0] &&
	    curl_easy_getinfo(p->easy, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK && port > 0) {
		char *joined = hd_join_hostport(ip, (int)port);
		hd_strlcpy(peer, joined, sizeof(peer));
		free(joined);
	}
	if (!peer[0])
		hd_strlcpy(peer, p->name, sizeof(peer));
	p->reply.body = p->body;
	p->reply.body_len = p->len;
	if (p->too_big) {
		poll_failed(p, HD_KIND_PROTOCOL, "body over %d MiB: not healthd's /health", FLEET_BODY_MAX >> 20);
	} else if (result == CURLE_OK) {
		p->reply.answered = true;
	} else if (result == CURLE_COULDNT_RESOLVE_HOST) {
		poll_failed(p, HD_KIND_DNS, "resolve %s: %s", p->name, why);
	} else if (result == CURLE_COULDNT_CONNECT) {
		enum hd_kind kind = os_errno ? hd_kind_from_errno((int)os_errno) : HD_KIND_UNREACHABLE;
		poll_failed(p, kind == HD_KIND_ERROR ? HD_KIND_UNREACHABLE : kind, "connect %s: %s%s", peer,
			    os_errno ? strerror((int)os_errno) : why,
			    os_errno == ECONNREFUSED ? " (healthd not running, or a firewall REJECT)" : "");
	} else if (result == CURLE_OPERATION_TIMEDOUT) {
		if (connected_us > 0)
			poll_failed(p, HD_KIND_TIMEOUT, "connected to %s, no complete answer within %d ms (%zu bytes so far)",
				    peer, p->run->timeout_ms, p->len);
		else
			poll_failed(p, HD_KIND_TIMEOUT, "connect %s: no answer within %d ms", peer, p->run->timeout_ms);
	} else if (result == CURLE_SSL_CONNECT_ERROR || result == CURLE_PEER_FAILED_VERIFICATION ||
		   result == CURLE_SSL_CERTPROBLEM || result == CURLE_SSL_CACERT_BADFILE) {
		poll_failed(p, HD_KIND_TLS, "tls handshake with %s: %s", peer, why);
	} else if (result == CURLE_WEIRD_SERVER_REPLY || result == CURLE_GOT_NOTHING || result == CURLE_RECV_ERROR ||
		   result == CURLE_SEND_ERROR || result == CURLE_PARTIAL_FILE || result == CURLE_UNSUPPORTED_PROTOCOL ||
		   result == CURLE_BAD_CONTENT_ENCODING) {
		poll_failed(p, HD_KIND_PROTOCOL, "%s: no valid HTTP answer: %s", peer, why);
	} else {
		poll_failed(p, HD_KIND_ERROR, "%s: %s (curl error %d)", peer, why, (int)result);
	}
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
	struct poll *p = arg;

	(void)easy;
	judge_transfer(p, result);
	p->finished = true;
	if (--p->run->left == 0)
		event_base_loopbreak(p->run->base);
}

/* "be1:8080" and "http://be1:8080/" -> "http://be1:8080/health"; a URL with a path is kept as it is. */
static char *full_url(const char *arg)
{
	const char *rest = strstr(arg, "://");
	char *with_scheme = rest ? xstrdup(arg) : xasprintf("http://%s", arg), *out;

	rest = strstr(with_scheme, "://") + 3;
	if (strchr(rest, '/') == NULL || strcmp(strchr(rest, '/'), "/") == 0) {
		rest = strchr(rest, '/');
		out = xasprintf("%.*s/health", (int)(strlen(with_scheme) - (rest ? 1 : 0)), with_scheme);
		free(with_scheme);
		return out;
	}
	return with_scheme;
}

static void start_poll(struct poll *p)
{
	p->easy = curl_easy_init();
	if (p->easy == NULL)
		hd_fatal("libcurl: cannot create a transfer (out of memory?)");
	curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
	curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p->easy, CURLOPT_PROXY, ""); /* an http_proxy in the environment must not decide the answer */
	curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->run->timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->run->timeout_ms); /* a slow drip ends here too */
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "healthd-fleet/" HD_VERSION);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(p->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FLEET_BODY_MAX);
	if (hd_curl_start(p->run->base, p->easy, on_done, p) < 0) {
		poll_failed(p, HD_KIND_ERROR, "libcurl refused to start the request");
		p->finished = true;
		p->run->left--;
	}
}

/* The engine's hard deadline for the whole run: curl's own ends every transfer first; this is for a bug. */
static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

struct fleet_options {
	enum hd_fleet_format format;
	int timeout_ms;
	const char *html_path;
	const char *prometheus; /* the view from there instead of polling */
	int watch_s;            /* 0: once */
	char **urls;
	size_t n_urls;
};

static void fleet_usage(FILE *out)
{
	fprintf(out,
		"usage: healthd fleet [--timeout-ms N] [--json | --dot | --diagrams] [--html FILE] [--watch[=S]]\n"
		"                     URL... | --from FILE | --inventory FILE | --prometheus URL\n"
		"\n"
		"Polls every backend's healthd GET /health at once (URL: http://HOST:PORT, /health is added when the URL\n"
		"has no path) and prints one table of every check, failing rows first, then one verdict per dependency:\n"
		"down on some backends (the path from them) or on all (the server itself).\n"
		"\n"
		"  --from FILE      the URLs, one a line (# comments), besides those on the command line\n"
		"  --inventory FILE an Ansible inventory as `ansible-inventory -i INVENTORY --list` prints it (- for stdin):\n"
		"                   the hosts of group backends (--group NAME), each at its healthd_listen.http port\n"
		"  --group NAME     the inventory group to poll (default backends)\n"
		"  --prometheus URL the same view from a Prometheus that scrapes every healthd (its HTTP API), instead of\n"
		"                   polling them: each healthd it saw in the last hour, a failing scrape as a row\n"
		"  --timeout-ms N   connect and total deadline of each request (default %d)\n"
		"  --json           the rows and verdicts as JSON\n"
		"  --dot            a Graphviz graph: dot -Tsvg -o fleet.svg\n"
		"  --diagrams       a Python script for the Diagrams library drawing the same graph\n"
		"  --html FILE      also write the view as a page to FILE, with the graph when Graphviz is installed\n"
		"  --watch[=S]      poll again every S seconds (default 2), redrawing the terminal, until interrupted\n"
		"\n"
		"Exits as `healthd check`: 0 every check up, 1 only non-critical checks down, 2 a critical check down or\n"
		"a backend whose healthd did not answer, 3 usage error.\n",
		FLEET_TIMEOUT_DEFAULT_MS);
}

static void add_url(struct fleet_options *o, const char *url)
{
	o->urls = xrealloc(o->urls, (o->n_urls + 1) * sizeof(*o->urls));
	o->urls[o->n_urls++] = xstrdup(url);
}

/* Appends the URLs of a --from file; -1 (said on stderr) when it cannot be read. */
static int read_url_file(const char *path, struct fleet_options *o)
{
	char *text = hd_read_small_file(path, FLEET_FILE_MAX), *save = NULL;

	if (text == NULL) {
		fprintf(stderr, "healthd fleet: --from %s: %s\n", path, errno == EFBIG ? "over 1 MiB" : strerror(errno));
		return -1;
	}
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#'), *end;
		if (hash)
			*hash = '\0';
		line += strspn(line, " \t\r");
		end = line + strcspn(line, " \t\r");
		*end = '\0';
		if (line[0])
			add_url(o, line);
	}
	free(text);
	return 0;
}

/* The port of an inventory host's healthd_listen.http ("0.0.0.0:9110", "[::]:9110"), else 9110. */
static int inventory_port(const cJSON *vars)
{
	const cJSON *listen = cJSON_GetObjectItemCaseSensitive(vars, "healthd_listen");
	const char *http = json_str(listen, "http"), *colon = strrchr(http, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;

	return port > 0 && port < 65536 ? (int)port : 9110;
}

/* Standard input (a pipe from ansible-inventory) up to max bytes; NULL with errno EFBIG beyond. */
static char *read_stdin(size_t max)
{
	char *buf = xmalloc(max + 1);
	size_t used = 0;
	ssize_t n;

	while (used <= max && (n = read(STDIN_FILENO, buf + used, max + 1 - used)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		used += (size_t)n;
	}
	if (used > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[used] = '\0';
	return buf;
}

/* Appends a URL per host of the group in `ansible-inventory --list` JSON; -1 (said on stderr) on a bad file. */
static int read_inventory(const char *path, const char *group, struct fleet_options *o)
{
	char *text = strcmp(path, "-") == 0 ? read_stdin(FLEET_FILE_MAX) : hd_read_small_file(path, FLEET_FILE_MAX);
	cJSON *root, *hosts, *hostvars, *h;
	size_t before = o->n_urls;

	if (text == NULL) {
		fprintf(stderr, "healthd fleet: --inventory %s: %s\n", path, errno == EFBIG ? "over 1 MiB" : strerror(errno));
		return -1;
	}
	root = cJSON_Parse(text);
	free(text);
	hosts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, group), "hosts");
	hostvars = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "_meta"), "hostvars");
	if (!cJSON_IsObject(root) || !cJSON_IsArray(hosts)) {
		fprintf(stderr,
			"healthd fleet: --inventory %s: %s (give the JSON of `ansible-inventory -i INVENTORY --list`)\n", path,
			!cJSON_IsObject(root) ? "not JSON" : "no group with hosts by that name (--group NAME)");
		cJSON_Delete(root);
		return -1;
	}
	cJSON_ArrayForEach(h, hosts) {
		const cJSON *vars = cJSON_GetObjectItemCaseSensitive(hostvars, cJSON_IsString(h) ? h->valuestring : "");
		const char *addr = json_str(vars, "ansible_host");
		char *joined, *url;
		if (!cJSON_IsString(h) || !h->valuestring[0])
			continue;
		joined = hd_join_hostport(addr[0] ? addr : h->valuestring, inventory_port(vars));
		url = xasprintf("http://%s", joined);
		add_url(o, url);
		free(url);
		free(joined);
	}
	cJSON_Delete(root);
	if (o->n_urls == before) {
		fprintf(stderr, "healthd fleet: --inventory %s: group %s has no hosts\n", path, group);
		return -1;
	}
	return 0;
}

static int parse_int_option(const char *name, const char *arg, long lo, long hi, const char *unit, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "healthd fleet: %s \"%s\": an integer of %s, %ld..%ld\n", name, arg, unit, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Returns 0 to run, 1 when --help was answered, -1 on a usage error (said on stderr). */
static int parse_fleet_args(int argc, char **argv, struct fleet_options *o)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},	  {"timeout-ms", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},	  {"dot", no_argument, NULL, 'd'},
		{"diagrams", no_argument, NULL, 'D'},	  {"html", required_argument, NULL, 'H'},
		{"watch", optional_argument, NULL, 'w'},  {"inventory", required_argument, NULL, 'i'},
		{"group", required_argument, NULL, 'g'},  {"help", no_argument, NULL, 'h'},
		{"prometheus", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	const char *inventory = NULL, *group = "backends";
	int opt, formats = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "f:t:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (read_url_file(optarg, o) < 0)
				return -1;
			break;
		case 'i':
			inventory = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'P':
			o->prometheus = optarg;
			break;
		case 't':
			if (parse_int_option("--timeout-ms", optarg, 10, 600000, "milliseconds", &o->timeout_ms) < 0)
				return -1;
			break;
		case 'w':
			o->watch_s = 2;
			if (optarg && parse_int_option("--watch", optarg, 1, 3600, "seconds", &o->watch_s) < 0)
				return -1;
			break;
		case 'H':
			o->html_path = optarg;
			break;
		case 'j':
		case 'd':
		case 'D':
			o->format = opt == 'j' ? HD_FLEET_JSON : opt == 'd' ? HD_FLEET_DOT : HD_FLEET_DIAGRAMS;
			formats++;
			break;
		case 'h':
			fleet_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "healthd fleet: unknown option, or one missing its value: %s\n", argv[optind - 1]);
			fleet_usage(stderr);
			return -1;
		}
	}
	if (formats > 1) {
		fprintf(stderr, "healthd fleet: choose one of --json, --dot and --diagrams\n");
		return -1;
	}
	if (inventory && read_inventory(inventory, group, o) < 0)
		return -1;
	for (; optind < argc; optind++)
		add_url(o, argv[optind]);
	if (o->prometheus && o->n_urls > 0) {
		fprintf(stderr, "healthd fleet: give the backends (URLs, --from, --inventory) or --prometheus, not both\n");
		return -1;
	}
	if (o->n_urls == 0 && !o->prometheus) {
		fprintf(stderr, "healthd fleet: no backend: give URLs, --from FILE or --inventory FILE\n");
		fleet_usage(stderr);
		return -1;
	}
	return 0;
}

/* One round: every backend polled at once, each within the deadline. */
static void poll_all(struct poll_run *run, struct poll *polls, size_t n)
{
	struct timeval guard_tv = {.tv_sec = run->timeout_ms / 1000 + 2, .tv_usec = (run->timeout_ms % 1000) * 1000};
	struct event *guard = evtimer_new(run->base, on_guard, run->base);

	run->left = n;
	for (size_t i = 0; i < n; i++) {
		struct poll *p = &polls[i];
		if (p->easy)
			curl_easy_cleanup(p->easy);
		free(p->body);
		p->easy = NULL;
		p->body = NULL;
		p->len = 0;
		p->too_big = p->finished = false;
		p->errbuf[0] = '\0';
		p->run = run;
		p->reply = (struct hd_fleet_reply){.url = p->shown, .name = p->name};
		start_poll(p);
	}
	evtimer_add(guard, &guard_tv);
	if (run->left > 0)
		event_base_dispatch(run->base);
	for (size_t i = 0; i < n; i++)
		if (!polls[i].finished) {
			hd_curl_cancel(polls[i].easy);
			poll_failed(&polls[i], HD_KIND_TIMEOUT, "no result within %d ms", run->timeout_ms + 2000);
		}
	event_free(guard);
}

/* Prints the round's view (and writes the page): its exit code. */
static int report_replies(const struct fleet_options *o, const struct hd_fleet_reply *replies, size_t n)
{
	int rc;

	if (o->watch_s && isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	rc = hd_fleet_report(replies, n, o->format, stdout);
	if (o->html_path) {
		char tmp[PATH_MAX];
		FILE *page;
		snprintf(tmp, sizeof(tmp), "%s.tmp", o->html_path);
		page = fopen(tmp, "w");
		if (page == NULL) {
			fprintf(stderr, "healthd fleet: --html %s: %s\n", o->html_path, strerror(errno));
			rc = FLEET_EXIT_UNKNOWN;
		} else {
			hd_fleet_report(replies, n, HD_FLEET_HTML, page);
			if (fclose(page) != 0 || rename(tmp, o->html_path) != 0) {
				fprintf(stderr, "healthd fleet: --html %s: %s\n", o->html_path, strerror(errno));
				unlink(tmp);
				rc = FLEET_EXIT_UNKNOWN;
			}
		}
	}
	if (o->watch_s)
		printf("every %d s; Ctrl-C to stop\n", o->watch_s);
	fflush(stdout);
	return rc;
}

static int report_round(const struct fleet_options *o, const struct poll *polls, size_t n)
{
	struct hd_fleet_reply *replies = xcalloc(n ? n : 1, sizeof(*replies));
	int rc;

	for (size_t i = 0; i < n; i++)
		replies[i] = polls[i].reply;
	rc = report_replies(o, replies, n);
	free(replies);
	return rc;
}

/* A round from Prometheus: its view, or why there is none (exit 2: the fleet is unknown). */
static int prometheus_round(const struct fleet_options *o)
{
	struct hd_fleet_prom view;
	char why[512];
	int rc;

	if (hd_fleet_prometheus(o->prometheus, o->timeout_ms, &view, why, sizeof(why)) < 0) {
		fprintf(stderr, "healthd fleet: %s\n", why);
		return FLEET_EXIT_CRITICAL;
	}
	rc = report_replies(o, view.replies, view.n);
	hd_fleet_prom_free(&view);
	return rc;
}

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* Ctrl-C or SIGTERM ends --watch after the round in flight, even when the caller's shell started it with SIGINT
 * ignored (a background job): the sleep between rounds is interrupted, not restarted. */
static void catch_watch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_watch_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int fleet_main(int argc, char **argv)
{
	struct fleet_options o = {.format = HD_FLEET_TABLE, .timeout_ms = FLEET_TIMEOUT_DEFAULT_MS};
	struct poll_run run = {0};
	struct poll *polls;
	size_t n;
	int parsed = parse_fleet_args(argc, argv, &o), rc = parsed;

	n = o.n_urls;
	polls = xcalloc(n ? n : 1, sizeof(*polls));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *why = "";
		polls[i].url = full_url(o.urls[i]);
		polls[i].shown = hd_url_public(polls[i].url, true, &polls[i].name, &why);
		if (polls[i].shown == NULL) {
			char shown[256];
			sanitize(o.urls[i], shown, sizeof(shown));
			fprintf(stderr, "healthd fleet: \"%s\" is not a URL: %s\n", shown, why);
			rc = parsed = -1;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(o.urls[i]);
	free(o.urls);
	if (rc == 0) {
		hd_log_init(false, HD_LOG_WARN);
		signal(SIGPIPE, SIG_IGN);
		if (evthread_use_pthreads() < 0)
			hd_fatal("libevent: cannot enable threads");
		run.base = event_base_new();
		if (run.base == NULL)
			hd_fatal("libevent: cannot create the event loop");
		run.timeout_ms = o.timeout_ms;
		if (o.watch_s)
			catch_watch_signals();
		for (;;) {
			if (o.prometheus) {
				rc = prometheus_round(&o);
			} else {
				poll_all(&run, polls, n);
				rc = report_round(&o, polls, n);
			}
			if (!o.watch_s || watch_stop)
				break;
			sleep((unsigned)o.watch_s);
			if (watch_stop)
				break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (polls[i].easy)
			curl_easy_cleanup(polls[i].easy);
		free(polls[i].url);
		free(polls[i].shown);
		free(polls[i].name);
		free(polls[i].body);
	}
	free(polls);
	if (run.base) {
		hd_curl_shutdown();
		event_base_free(run.base);
	}
	return parsed > 0 ? FLEET_EXIT_OK : parsed < 0 ? FLEET_EXIT_UNKNOWN : rc;
}
