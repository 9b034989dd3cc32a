/* page.c: the status page (GET / for browsers): overall, admin and every check, failing first, with history. */
#include "page.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "history.h"
#include "http_api.h"
#include "refbuf.h"
#include "status.h"
#include "util.h"

#define PAGE_EVENTS 30 /* recent changes shown */
#define SPARK_W 240
#define SPARK_H 36

struct hd_page {
	struct hd_engine *engine;
	struct hd_status *status;
	struct hd_history *history;
	struct hd_refbuf *html; /* the rendered page, a new one on each change; never modified */
	/* what the cached page was rendered from */
	unsigned results_version, state_version, history_version;
	struct hd_admin admin;
	bool stopping, rendered;
};

const char hd_page_style[] =
	"body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:8px;color:#111;background:#fff}"
	"h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.1em;margin:1em 0 .3em}"
	".badge{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:bold;border:2px solid}"
	".up{background:#dff5df;border-color:#1a7f1a;color:#0b4d0b}"
	".down{background:#fde0e0;border-color:#b00;color:#700}"
	".warn,.degraded,.drain,.maint,.stopping{background:#fff3cd;border-color:#a67c00;color:#5c4400}"
	".pending,.ready{background:#eee;border-color:#666;color:#222}"
	".checks{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(330px,100%),1fr));gap:8px}"
	".check{border:1px solid #999;border-left-width:8px;border-radius:4px;padding:6px 8px}"
	".check.down{border-color:#b00}.check.up{border-color:#1a7f1a}.check.warn{border-color:#a67c00}"
	".check h3{margin:0 0 4px;font-size:1em;word-break:break-all}"
	".check dl{display:grid;grid-template-columns:auto 1fr;gap:0 8px;margin:0;background:#fff;color:#111}"
	".check dt{color:#555}.check dd{margin:0;word-break:break-word}"
	"table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:2px 6px;border-bottom:1px solid #ddd;"
	"vertical-align:top;word-break:break-word}svg{display:block;max-width:100%}.check{min-width:0}"
	"@media (max-width:600px){.checks{grid-template-columns:1fr}.hide-narrow{display:none}}";

void hd_html_escape(struct evbuffer *out, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: rep = (unsigned char)*s < 0x20 || *s == 0x7f ? " " : NULL;
		}
		if (rep == NULL)
			continue;
		evbuffer_add(out, run, (size_t)(s - run));
		evbuffer_add(out, rep, strlen(rep));
		run = s + 1;
	}
	evbuffer_add(out, run, (size_t)(s - run));
}

static void add_time(struct evbuffer *b, int64_t wall_ms)
{
	char when[40];

	if (wall_ms <= 0) {
		evbuffer_add_printf(b, "-");
		return;
	}
	hd_iso8601(wall_ms, when, sizeof(when));
	hd_html_escape(b, when);
}

static void add_duration(struct evbuffer *b, int64_t ms)
{
	int64_t s = ms / 1000;

	if (ms < 0)
		evbuffer_add_printf(b, "-");
	else if (s < 120)
		evbuffer_add_printf(b, "%lld s", (long long)s);
	else if (s < 7200)
		evbuffer_add_printf(b, "%lld min", (long long)(s / 60));
	else if (s < 172800)
		evbuffer_add_printf(b, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		evbuffer_add_printf(b, "%lld d", (long long)(s / 86400));
}

/* The word a check's badge shows: up, warn, down or pending. */
static const char *check_word(const struct hd_check *c)
{
	return c->state == HD_STATE_UP && c->last.warn ? "warn" : hd_state_name(c->state);
}

/* Failing first: down, then pending, then warn, then up. */
static int check_rank(const struct hd_check *c)
{
	return c->state == HD_STATE_DOWN ? 0 : c->state == HD_STATE_PENDING ? 1 : c->last.warn ? 2 : 3;
}

static void add_sparkline(struct evbuffer *b, const struct hd_page *p, const char *name)
{
	size_t n = 0, start = 0;
	const struct hd_history_sample *ring = history_samples(p->history, name, &n, &start);
	double max = 1;

	if (ring == NULL) {
		evbuffer_add_printf(b, "no results yet");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (hd_sample_ms(&ring[(start + i) % HD_HISTORY_RING]) > max)
			max = hd_sample_ms(&ring[(start + i) % HD_HISTORY_RING]);
	evbuffer_add_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"latency "
			    "of the last %zu results, at most %.1f ms\"><rect width=\"%d\" height=\"%d\" fill=\"#f6f6f6\"/>"
			    "<polyline fill=\"none\" stroke=\"#2457a6\" stroke-width=\"1.5\" points=\"",
			    SPARK_W, SPARK_H, SPARK_W, SPARK_H, n, max, SPARK_W, SPARK_H);
	for (size_t i = 0; i < n; i++) {
		const struct hd_history_sample *r = &ring[(start + i) % HD_HISTORY_RING];
		double x = n > 1 ? (double)i * (SPARK_W - 4) / (double)(n - 1) + 2 : SPARK_W / 2.0;
		double y = SPARK_H - 2 - hd_sample_ms(r) * (SPARK_H - 4) / max;
		evbuffer_add_printf(b, "%s%.1f,%.1f", i ? " " : "", x, y);
	}
	evbuffer_add_printf(b, "\"/>");
	for (size_t i = 0; i < n; i++) { /* a failed attempt is a red bar the full height */
		const struct hd_history_sample *r = &ring[(start + i) % HD_HISTORY_RING];
		double x = n > 1 ? (double)i * (SPARK_W - 4) / (double)(n - 1) + 2 : SPARK_W / 2.0;
		if (!r->ok)
			evbuffer_add_printf(b, "<rect x=\"%.1f\" y=\"0\" width=\"2\" height=\"%d\" fill=\"#c00\"/>", x - 1,
					    SPARK_H);
	}
	evbuffer_add_printf(b, "</svg>max %.1f ms over the last %zu results%s", max, n,
			    n > 0 ? "; red bars are failed attempts" : "");
}

static void add_pct(struct evbuffer *b, double pct)
{
	if (pct < 0)
		evbuffer_add_printf(b, "no results");
	else
		evbuffer_add_printf(b, "%.2f%%", pct);
}

static void add_field(struct evbuffer *b, const char *label, const char *value)
{
	evbuffer_add_printf(b, "<dt>%s</dt><dd>", label);
	hd_html_escape(b, value && value[0] ? value : "-");
	evbuffer_add_printf(b, "</dd>");
}

static void add_check(struct evbuffer *b, const struct hd_page *p, const struct hd_check *c, int64_t now)
{
	const struct hd_result *r = hd_check_reason(c);
	const char *word = check_word(c);
	double hour, day;
	char latency[32];

	evbuffer_add_printf(b, "<section class=\"check %s\"><h3><span class=\"badge %s\">%s</span> ", word, word,
			    c->state == HD_STATE_DOWN ? "DOWN" : c->state == HD_STATE_PENDING ? "PENDING" :
			    c->last.warn ? "WARN" : "UP");
	hd_html_escape(b, c->conf->name);
	evbuffer_add_printf(b, "%s</h3><dl>", c->conf->critical ? "" : " <small>(not critical)</small>");
	add_field(b, "status", word);
	add_field(b, "kind", c->state == HD_STATE_PENDING ? "-" : hd_kind_name(c->state == HD_STATE_DOWN ? c->down_kind :
										   c->last.kind));
	add_field(b, "detail", c->state == HD_STATE_PENDING ? "no result yet" : r->detail);
	add_field(b, "type", c->conf->type->name);
	add_field(b, "target", c->conf->target);
	add_field(b, "address", c->last.peer);
	add_field(b, "source address", c->last.source_addr);
	evbuffer_add_printf(b, "<dt>since</dt><dd>");
	add_time(b, c->since_wall_ms);
	evbuffer_add_printf(b, "</dd>");
	snprintf(latency, sizeof(latency), "%.1f ms", c->last.latency_ms);
	add_field(b, "latency", c->state == HD_STATE_PENDING ? "-" : latency);
	evbuffer_add_printf(b, "<dt>availability</dt><dd>");
	if (history_availability(p->history, c->conf->name, now, &hour, &day)) {
		evbuffer_add_printf(b, "last hour ");
		add_pct(b, hour);
		evbuffer_add_printf(b, ", last day ");
		add_pct(b, day);
	} else {
		evbuffer_add_printf(b, "no results yet");
	}
	evbuffer_add_printf(b, "</dd></dl>");
	add_sparkline(b, p, c->conf->name);
	evbuffer_add_printf(b, "</section>\n");
}

/* A state word in its colour, and as text. */
static void add_badge(struct evbuffer *b, const char *word)
{
	evbuffer_add_printf(b, "<span class=\"badge ");
	hd_html_escape(b, word);
	evbuffer_add_printf(b, "\">");
	hd_html_escape(b, word);
	evbuffer_add_printf(b, "</span>");
}

static void add_event_row(const struct hd_history_event_view *e, void *arg)
{
	struct evbuffer *b = arg;

	evbuffer_add_printf(b, "<tr><td>");
	add_time(b, e->wall_ms);
	evbuffer_add_printf(b, "</td><td>");
	hd_html_escape(b, e->what[0] == 'a' ? "admin" : e->check);
	evbuffer_add_printf(b, "</td><td>");
	add_badge(b, e->from);
	evbuffer_add_printf(b, " &rarr; ");
	add_badge(b, e->to);
	evbuffer_add_printf(b, "</td><td>");
	hd_html_escape(b, e->kind);
	evbuffer_add_printf(b, " ");
	hd_html_escape(b, e->detail);
	evbuffer_add_printf(b, "</td><td class=\"hide-narrow\">");
	add_duration(b, e->previous_ms);
	evbuffer_add_printf(b, "</td></tr>\n");
}

static int by_rank(const void *a, const void *b)
{
	const struct hd_check *x = *(const struct hd_check *const *)a, *y = *(const struct hd_check *const *)b;
	int d = check_rank(x) - check_rank(y);

	return d ? d : strcmp(x->conf->name, y->conf->name);
}

static void render(struct hd_page *p)
{
	struct evbuffer *b = evbuffer_new();
	const struct hd_config *cfg = engine_config(p->engine);
	const struct hd_admin *admin = status_effective_admin(p->status);
	const struct hd_check *first_down = NULL;
	enum hd_overall overall = status_overall(p->status, &first_down);
	const char *overall_word = hd_overall_name(overall);
	const char *admin_word = status_stopping(p->status) ? "stopping" : hd_admin_name(admin->mode);
	size_t n = engine_n_checks(p->engine);
	const struct hd_check **order = xcalloc(n ? n : 1, sizeof(*order));
	int64_t now = hd_now_wall_ms();

	for (size_t i = 0; i < n; i++)
		order[i] = engine_check(p->engine, i);
	qsort(order, n, sizeof(*order), by_rank);
	evbuffer_add_printf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			    "<meta http-equiv=\"refresh\" content=\"5\"><title>");
	hd_html_escape(b, overall_word);
	evbuffer_add_printf(b, " - ");
	hd_html_escape(b, cfg->node_name);
	evbuffer_add_printf(b, " - healthd</title><style>%s</style></head><body>\n<h1>healthd on ", hd_page_style);
	hd_html_escape(b, cfg->node_name);
	evbuffer_add_printf(b, "</h1>\n<p id=\"overall\">overall: <span class=\"badge %s\">%s</span>", overall_word,
			    overall_word);
	if (first_down != NULL) {
		evbuffer_add_printf(b, " (first failing critical check: ");
		hd_html_escape(b, first_down->conf->name);
		evbuffer_add_printf(b, ")");
	}
	evbuffer_add_printf(b, "<br>admin: <span class=\"badge %s\">%s</span>", admin_word, admin_word);
	if (admin->reason[0]) {
		evbuffer_add_printf(b, " reason: ");
		hd_html_escape(b, admin->reason);
	}
	if (admin->since_wall_ms > 0) {
		evbuffer_add_printf(b, " since ");
		add_time(b, admin->since_wall_ms);
	}
	evbuffer_add_printf(b, "<br><small>rendered ");
	add_time(b, now);
	evbuffer_add_printf(b, "; %zu checks; this page reloads every 5 s; JSON at /health and /history</small></p>\n"
			    "<h2>Checks</h2>\n<div class=\"checks\" id=\"checks\">\n", n);
	for (size_t i = 0; i < n; i++)
		add_check(b, p, order[i], now);
	evbuffer_add_printf(b, "</div>\n<h2>Recent changes</h2>\n<table id=\"changes\"><tr><th>time</th><th>check</th>"
			    "<th>change</th><th>why</th><th class=\"hide-narrow\">previous state lasted</th></tr>\n");
	history_each_event(p->history, PAGE_EVENTS, add_event_row, b);
	evbuffer_add_printf(b, "</table>\n</body></html>\n");
	free(order);
	hd_refbuf_unref(p->html); /* answers still queued keep their references to its bytes */
	p->html = hd_refbuf_take(b);
	evbuffer_free(b);
}

/* Accept names text/html (a browser): the page; anything else keeps the JSON index at /. */
static bool wants_html(const char *accept)
{
	return accept != NULL && strcasestr(accept, "text/html") != NULL;
}

static int serve_page(const struct hd_http_request *req, struct evbuffer *body, const char **content_type, void *arg)
{
	struct hd_page *p = arg;
	const struct hd_admin *admin = status_effective_admin(p->status);

	if (!wants_html(req->accept))
		return 0; /* not ours: the index */
	if (!req->full_details) {
		*content_type = "application/json";
		evbuffer_add_printf(body, "{\"error\":\"the status page is shown to http.details_from only\"}\n");
		return 403;
	}
	if (!p->rendered || p->results_version != engine_results_version(p->engine) ||
	    p->state_version != engine_state_version(p->engine) || p->history_version != history_version(p->history) ||
	    p->stopping != status_stopping(p->status) || p->admin.mode != admin->mode ||
	    p->admin.since_wall_ms != admin->since_wall_ms || strcmp(p->admin.reason, admin->reason) != 0) {
		render(p);
		p->rendered = true;
		p->results_version = engine_results_version(p->engine);
		p->state_version = engine_state_version(p->engine);
		p->history_version = history_version(p->history);
		p->stopping = status_stopping(p->status);
		p->admin = *admin;
	}
	*content_type = "text/html; charset=utf-8";
	hd_refbuf_add(body, p->html);
	return 200;
}

struct hd_page *page_new(struct hd_engine *engine, struct hd_status *status, struct hd_history *history,
			 struct hd_http *http)
{
	struct hd_page *p = xcalloc(1, sizeof(*p));

	p->engine = engine;
	p->status = status;
	p->history = history;
	http_api_add_route(http, "/", serve_page, p);
	return p;
}

void page_free(struct hd_page *p)
{
	if (p == NULL)
		return;
	hd_refbuf_unref(p->html);
	free(p);
}
