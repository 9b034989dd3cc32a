/* status.c: renders the engine's state into the bodies that HTTP and the agent port serve, and caches them. */
#include "status.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "config.h"
#include "refbuf.h"

/* What status.c keeps of one check: its rendered pieces, each with the check's version it was rendered at. */
struct check_pieces {
	struct check_pieces *same_bucket;
	uint64_t serial;           /* the check's (hd_check.serial) */
	unsigned seen_generation;  /* the engine's checks generation at which the check was last listed */
	/* its "name":{...} member of the /health body, rendered when its result arrives (spread over the schedule),
	 * so that a /health body is only copies: at 10,000 checks, rendering them all on a request held the loop
	 * 20-70 ms and made the deadlines that fell due meanwhile late */
	char *member;
	size_t member_len, member_cap;
	size_t member_key_len;     /* "name", quoted: /health/NAME is the value with it appended as "name" */
	unsigned member_version;
	bool member_valid;
};

struct hd_status {
	struct hd_engine *engine;
	/* the checks' pieces by serial; swept of gone checks when the engine's list changes */
	struct check_pieces **pieces;
	size_t pieces_size, n_pieces; /* a power of two; the entries */
	unsigned pieces_generation;
	struct hd_admin admin;
	struct hd_admin stop_admin; /* what clients see while stopping */
	bool stopping;
	unsigned admin_version;
	hd_admin_changed_fn on_admin; /* told of every change of the operator's mode */
	void *on_admin_arg;
	/* the "ready" announcement: until when, and how many polls got it */
	int64_t announce_until_mono_ms;
	uint64_t n_announced;
	/* the status-only /health body for clients outside http.details_from */
	char health_summary[96];
	size_t health_summary_len;
	unsigned health_summary_state_version, health_summary_admin_version;
	bool health_summary_valid;
	char ready_summary[16];
	char deps_summary[16];
	/* caches and the versions they were built at */
	struct hd_refbuf *health; /* the /health body, shared with the replies still sending it */
	unsigned health_results_version, health_admin_version;
	char ready_body[320];
	size_t ready_len;
	unsigned ready_admin_version;
	char deps_body[160];
	size_t deps_len;
	unsigned deps_version;
	char agent_line[192];
	size_t agent_len;
	unsigned agent_state_version, agent_admin_version;
	bool health_valid, ready_valid, deps_valid, agent_valid;
	/* /health in the IETF draft health check format (application/health+json) */
	char *ietf_json;
	size_t ietf_len;
	unsigned ietf_results_version, ietf_admin_version;
	bool ietf_valid;
	/* the last configuration load: at start, then every reload */
	bool reload_ok;
	int64_t reload_success_wall_ms;
	/* the overall state, which only a state or configuration change moves */
	enum hd_overall overall;
	const struct hd_check *overall_first;
	unsigned overall_version;
	bool overall_valid;
};

const char *hd_overall_name(enum hd_overall o)
{
	return o == HD_OVERALL_UP ? "up" : o == HD_OVERALL_DEGRADED ? "degraded" : "down";
}

const char *hd_admin_name(enum hd_admin_mode m)
{
	return m == HD_ADMIN_DRAIN ? "drain" : m == HD_ADMIN_MAINT ? "maint" : "ready";
}

static void pieces_free(struct check_pieces *p)
{
	free(p->member);
	free(p);
}

static void pieces_link(struct check_pieces **table, size_t size, struct check_pieces *p)
{
	size_t b = (size_t)(hd_hash_u64(p->serial) & (size - 1));

	p->same_bucket = table[b];
	table[b] = p;
}

/* After a reload: drops the pieces of checks that are gone (once per change of the list, not per request). */
static void pieces_sweep(struct hd_status *s, unsigned generation)
{
	for (size_t i = 0; i < engine_n_checks(s->engine); i++) {
		const struct hd_check *c = engine_check(s->engine, i);
		size_t b = s->pieces_size ? (size_t)(hd_hash_u64(c->serial) & (s->pieces_size - 1)) : 0;
		for (struct check_pieces *p = s->pieces_size ? s->pieces[b] : NULL; p; p = p->same_bucket)
			if (p->serial == c->serial)
				p->seen_generation = generation;
	}
	for (size_t b = 0; b < s->pieces_size; b++)
		for (struct check_pieces **pp = &s->pieces[b]; *pp;) {
			struct check_pieces *p = *pp;
			if (p->seen_generation != generation) {
				*pp = p->same_bucket;
				pieces_free(p);
				s->n_pieces--;
			} else {
				pp = &p->same_bucket;
			}
		}
	s->pieces_generation = generation;
}

/* The pieces of check c, made empty on first use; O(1). */
static struct check_pieces *pieces_of(struct hd_status *s, const struct hd_check *c)
{
	unsigned generation = engine_checks_generation(s->engine);
	struct check_pieces *p;

	if (generation != s->pieces_generation)
		pieces_sweep(s, generation);
	if (s->pieces_size > 0)
		for (p = s->pieces[hd_hash_u64(c->serial) & (s->pieces_size - 1)]; p; p = p->same_bucket)
			if (p->serial == c->serial)
				return p;
	if (s->n_pieces + 1 > s->pieces_size) {
		size_t size = s->pieces_size ? s->pieces_size * 2 : 64;
		struct check_pieces **table = xcalloc(size, sizeof(*table));
		for (size_t b = 0; b < s->pieces_size; b++)
			while (s->pieces[b] != NULL) {
				struct check_pieces *q = s->pieces[b];
				s->pieces[b] = q->same_bucket;
				pieces_link(table, size, q);
			}
		free(s->pieces);
		s->pieces = table;
		s->pieces_size = size;
	}
	p = xcalloc(1, sizeof(*p));
	p->serial = c->serial;
	p->seen_generation = generation;
	pieces_link(s->pieces, s->pieces_size, p);
	s->n_pieces++;
	return p;
}

static void on_result(const struct hd_check *c, void *arg);

struct hd_status *status_new(struct hd_engine *e)
{
	struct hd_status *s = xcalloc(1, sizeof(*s));

	s->engine = e;
	engine_subscribe(e, on_result, NULL, s);
	return s;
}

void status_free(struct hd_status *s)
{
	if (s == NULL)
		return;
	engine_unsubscribe(s->engine, s);
	for (size_t b = 0; b < s->pieces_size; b++)
		while (s->pieces[b] != NULL) {
			struct check_pieces *p = s->pieces[b];
			s->pieces[b] = p->same_bucket;
			pieces_free(p);
		}
	free(s->pieces);
	hd_refbuf_unref(s->health);
	free(s->ietf_json);
	free(s);
}

static enum hd_overall compute_overall(struct hd_status *s, const struct hd_check **first_down)
{
	enum hd_overall o = HD_OVERALL_UP;
	const struct hd_check *first_noncritical = NULL;

	*first_down = NULL;
	for (size_t i = 0; i < engine_n_checks(s->engine); i++) {
		const struct hd_check *c = engine_check(s->engine, i);
		if (c->state == HD_STATE_UP || (c->state == HD_STATE_PENDING && c->added_on_reload))
			continue; /* a check added by a reload counts from its first result: no blip at reload */
		if (c->conf->critical) {
			*first_down = c;
			return HD_OVERALL_DOWN;
		}
		if (first_noncritical == NULL)
			first_noncritical = c;
		o = HD_OVERALL_DEGRADED;
	}
	*first_down = first_noncritical;
	return o;
}

enum hd_overall status_overall(struct hd_status *s, const struct hd_check **first_down)
{
	unsigned sv = engine_state_version(s->engine);

	/* Every state change, reload and first result bumps the state version: recompute only then. */
	if (!s->overall_valid || s->overall_version != sv) {
		s->overall = compute_overall(s, &s->overall_first);
		s->overall_version = sv;
		s->overall_valid = true;
	}
	*first_down = s->overall_first;
	return s->overall;
}

int status_http_code(struct hd_status *s)
{
	const struct hd_check *first;

	return status_overall(s, &first) == HD_OVERALL_DOWN ? 503 : 200;
}

const char *hd_check_kind_word(const struct hd_check *c)
{
	if (c->state == HD_STATE_PENDING)
		return "pending";
	return hd_kind_name(c->state == HD_STATE_DOWN ? c->down_kind : c->last.kind);
}

const char *hd_check_status_word(const struct hd_check *c)
{
	return c->state == HD_STATE_UP && c->last.warn ? "warn" : hd_state_name(c->state);
}

void hd_agent_line(char *buf, size_t len, enum hd_overall overall, const char *failing_name, const char *failing_kind,
		   int degraded_weight_pct, enum hd_admin_mode admin, bool announce_ready)
{
	const char *admin_word = admin == HD_ADMIN_DRAIN ? "drain " : admin == HD_ADMIN_MAINT ? "maint " :
				 announce_ready ? "ready " : "";

	switch (overall) {
	case HD_OVERALL_UP:
		snprintf(buf, len, "%sup 100%%\n", admin_word);
		break;
	case HD_OVERALL_DEGRADED:
		snprintf(buf, len, "%sup %d%% #%s %s\n", admin_word, degraded_weight_pct, failing_name, failing_kind);
		break;
	case HD_OVERALL_DOWN:
		snprintf(buf, len, "%sdown #%s %s\n", admin_word, failing_name, failing_kind);
		break;
	}
}

const char *status_agent_line(struct hd_status *s, size_t *len)
{
	unsigned sv = engine_state_version(s->engine);

	if (!s->agent_valid || s->agent_state_version != sv || s->agent_admin_version != s->admin_version) {
		const struct hd_check *first;
		enum hd_overall o = status_overall(s, &first);
		hd_agent_line(s->agent_line, sizeof(s->agent_line), o, first ? first->conf->name : "",
			      first ? hd_check_kind_word(first) : "", engine_config(s->engine)->agent.degraded_weight_pct,
			      status_effective_admin(s)->mode, false);
		s->agent_len = strlen(s->agent_line);
		s->agent_state_version = sv;
		s->agent_admin_version = s->admin_version;
		s->agent_valid = true;
	}
	*len = s->agent_len;
	return s->agent_line;
}

static void add_time(cJSON *obj, const char *key, int64_t wall_ms)
{
	char ts[40];

	if (wall_ms <= 0) {
		cJSON_AddNullToObject(obj, key);
		return;
	}
	hd_iso8601(wall_ms, ts, sizeof(ts));
	cJSON_AddStringToObject(obj, key, ts);
}

cJSON *hd_check_to_json(const struct hd_check *c)
{
	cJSON *o = cJSON_CreateObject();
	const struct hd_result *r = hd_check_reason(c);

	/* A passing attempt with a warning (a plugin's WARNING) keeps the check up, shown as "warn". */
	cJSON_AddStringToObject(o, "status", hd_check_status_word(c));
	if (c->state == HD_STATE_PENDING) {
		cJSON_AddNullToObject(o, "kind");
		cJSON_AddStringToObject(o, "detail", "no result yet");
		cJSON_AddNullToObject(o, "latency_ms");
	} else {
		/* While down but rising, show why it is down and that the latest attempt passed. */
		cJSON_AddStringToObject(o, "kind", hd_check_kind_word(c));
		cJSON_AddStringToObject(o, "detail", c->state == HD_STATE_DOWN && c->last.kind == HD_KIND_OK ?
							    r->detail : c->last.detail);
		cJSON_AddNumberToObject(o, "latency_ms", (double)(int64_t)(c->last.latency_ms * 1000.0) / 1000.0);
		if (r->kind != HD_KIND_OK) /* where the attempt that explains the kind failed */
			cJSON_AddStringToObject(o, "phase", hd_phase_name(r->phase));
	}
	add_time(o, "since", c->since_wall_ms);
	add_time(o, "last_checked", c->last.wall_ms);
	cJSON_AddNumberToObject(o, "consecutive_failures", c->consecutive_failures);
	cJSON_AddBoolToObject(o, "critical", c->conf->critical);
	cJSON_AddStringToObject(o, "type", c->conf->type->name);
	cJSON_AddStringToObject(o, "target", c->conf->target);
	if (c->last.peer[0])
		cJSON_AddStringToObject(o, "address", c->last.peer);
	if (c->last.source_addr[0])
		cJSON_AddStringToObject(o, "source_addr", c->last.source_addr);
	if (c->state == HD_STATE_DOWN && c->last.kind != HD_KIND_OK)
		cJSON_AddNumberToObject(o, "consecutive_successes", 0);
	else if (c->state == HD_STATE_DOWN)
		cJSON_AddNumberToObject(o, "consecutive_successes", c->consecutive_successes);
	if (hd_check_cert(c) != NULL)
		cJSON_AddItemToObject(o, "cert", hd_cert_json(hd_check_cert(c), hd_now_wall_ms() / 1000));
	return o;
}

cJSON *status_admin_json(const struct hd_status *s)
{
	const struct hd_admin *a = status_effective_admin(s);
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "state", hd_admin_name(a->mode));
	if (a->mode != HD_ADMIN_READY || a->since_wall_ms > 0) {
		cJSON_AddStringToObject(o, "reason", a->reason);
		add_time(o, "since", a->since_wall_ms);
	}
	if (s->stopping)
		cJSON_AddBoolToObject(o, "stopping", true);
	return o;
}

static char *print_owned(cJSON *root, size_t *len)
{
	char *printed = cJSON_PrintUnformatted(root);
	char *out;

	*len = strlen(printed);
	out = xmalloc(*len + 2);
	memcpy(out, printed, *len);
	out[(*len)++] = '\n';
	out[*len] = '\0';
	cJSON_free(printed);
	cJSON_Delete(root);
	return out;
}

/* Keeps the check's member of the /health "checks" object, "name":{...}, as cJSON prints it, current. */
static void update_member(const struct hd_check *c, struct check_pieces *p)
{
	cJSON *key, *value;
	char *k, *v;
	size_t klen, vlen;

	if (p->member_valid && p->member_version == c->version)
		return;
	key = cJSON_CreateString(c->conf->name);
	value = hd_check_to_json(c);
	k = cJSON_PrintUnformatted(key);
	v = cJSON_PrintUnformatted(value);
	if (key == NULL || value == NULL || k == NULL || v == NULL)
		hd_fatal("status: out of memory");
	klen = strlen(k);
	vlen = strlen(v);
	if (klen + 1 + vlen > p->member_cap) {
		p->member_cap = klen + 1 + vlen + 32; /* a latency or a detail a few digits longer fits */
		free(p->member);
		p->member = xmalloc(p->member_cap);
	}
	memcpy(p->member, k, klen);
	p->member[klen] = ':';
	memcpy(p->member + klen + 1, v, vlen);
	p->member_len = klen + 1 + vlen;
	p->member_key_len = klen;
	p->member_version = c->version;
	p->member_valid = true;
	cJSON_free(k);
	cJSON_free(v);
	cJSON_Delete(key);
	cJSON_Delete(value);
}

static void on_result(const struct hd_check *c, void *arg)
{
	struct hd_status *s = arg;

	update_member(c, pieces_of(s, c));
}

/* The body cJSON would print for the whole tree, built from the head (an empty "checks", printed last) and each
 * check's member, current already unless the check has had no result yet (or a reload changed it). */
static struct hd_refbuf *render_health(struct hd_status *s)
{
	static const char tail[] = "}}\n";
	const struct hd_check *first;
	cJSON *root = cJSON_CreateObject();
	size_t n = engine_n_checks(s->engine), head_len, total, used;
	struct check_pieces **pieces = xcalloc(n + 1, sizeof(*pieces));
	struct hd_refbuf *body;
	char *head, *out;

	cJSON_AddStringToObject(root, "status", hd_overall_name(status_overall(s, &first)));
	cJSON_AddStringToObject(root, "node", engine_config(s->engine)->node_name);
	cJSON_AddItemToObject(root, "admin", status_admin_json(s));
	cJSON_AddObjectToObject(root, "checks");
	head = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (head == NULL)
		hd_fatal("status: out of memory");
	head_len = strlen(head);
	if (head_len < 3 || strcmp(head + head_len - 3, "{}}") != 0)
		hd_fatal("status: /health head does not end with its empty checks object");
	head_len -= 2; /* up to and with the opening brace of "checks" */
	total = head_len + sizeof(tail) - 1;
	for (size_t i = 0; i < n; i++) {
		const struct hd_check *c = engine_check(s->engine, i);
		pieces[i] = pieces_of(s, c);
		update_member(c, pieces[i]);
		total += pieces[i]->member_len + 1;
	}
	body = hd_refbuf_new(total - (n > 0)); /* n members and n - 1 commas */
	out = body->data;
	memcpy(out, head, head_len);
	used = head_len;
	cJSON_free(head);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			out[used++] = ',';
		memcpy(out + used, pieces[i]->member, pieces[i]->member_len);
		used += pieces[i]->member_len;
	}
	memcpy(out + used, tail, sizeof(tail) - 1);
	free(pieces);
	return body;
}

static struct hd_refbuf *health_body(struct hd_status *s)
{
	unsigned rv = engine_results_version(s->engine);

	if (!s->health_valid || s->health_results_version != rv || s->health_admin_version != s->admin_version) {
		hd_refbuf_unref(s->health);
		s->health = render_health(s);
		s->health_results_version = rv;
		s->health_admin_version = s->admin_version;
		s->health_valid = true;
	}
	return s->health;
}

const char *status_health_json(struct hd_status *s, size_t *len)
{
	struct hd_refbuf *b = health_body(s);

	*len = b->len;
	return b->data;
}

size_t status_health_add(struct hd_status *s, struct evbuffer *out)
{
	struct hd_refbuf *b = health_body(s);

	return hd_refbuf_add(out, b) == 0 ? b->len : 0;
}

/* The draft's componentType: a datastore, the system itself, or any other component. */
static const char *component_type(const struct hd_check_conf *conf)
{
	const char *t = conf->type->name;

	if (strcmp(t, "mysql") == 0 || strcmp(t, "redis") == 0)
		return "datastore";
	return strcmp(t, "disk") == 0 ? "system" : "component";
}

/* pass, warn or fail: a non-critical check down (or a check still pending) warns; a critical one down fails. */
static const char *ietf_check_status(const struct hd_check *c)
{
	if (c->state == HD_STATE_UP)
		return c->last.warn ? "warn" : "pass"; /* a plugin's WARNING: up, and said so */
	if (c->state == HD_STATE_PENDING && (c->added_on_reload || !c->conf->critical))
		return "warn";
	return c->conf->critical ? "fail" : "warn";
}

static cJSON *ietf_check_json(const struct hd_check *c)
{
	cJSON *o = cJSON_CreateObject();
	const char *status = ietf_check_status(c);
	char output[448];

	cJSON_AddStringToObject(o, "componentId", c->conf->name);
	cJSON_AddStringToObject(o, "componentType", component_type(c->conf));
	if (c->attempts > 0) {
		cJSON_AddNumberToObject(o, "observedValue", (double)(int64_t)(c->last.latency_ms * 1000.0) / 1000.0);
		cJSON_AddStringToObject(o, "observedUnit", "ms");
	}
	cJSON_AddStringToObject(o, "status", status);
	add_time(o, "time", c->last.wall_ms > 0 ? c->last.wall_ms : c->since_wall_ms);
	if (strcmp(status, "pass") != 0) {
		const struct hd_result *r = hd_check_reason(c);
		if (c->state == HD_STATE_PENDING)
			hd_strlcpy(output, "pending: no result yet", sizeof(output));
		else
			snprintf(output, sizeof(output), "%s: %s", hd_check_kind_word(c), r->detail);
		cJSON_AddStringToObject(o, "output", output);
	}
	return o;
}

const char *status_health_ietf_json(struct hd_status *s, bool full_details, size_t *len)
{
	unsigned rv = engine_results_version(s->engine);
	const struct hd_check *first;
	enum hd_overall overall;
	cJSON *root, *checks;
	const struct hd_admin *admin;

	if (!full_details) { /* status only, as the summary /health: nothing about the topology */
		static const char *const brief[] = {"{\"status\":\"pass\"}\n", "{\"status\":\"warn\"}\n",
						    "{\"status\":\"fail\"}\n"};
		overall = status_overall(s, &first);
		*len = strlen(brief[overall]);
		return brief[overall];
	}
	if (s->ietf_valid && s->ietf_results_version == rv && s->ietf_admin_version == s->admin_version) {
		*len = s->ietf_len;
		return s->ietf_json;
	}
	overall = status_overall(s, &first);
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "status",
				overall == HD_OVERALL_UP ? "pass" : overall == HD_OVERALL_DEGRADED ? "warn" : "fail");
	cJSON_AddStringToObject(root, "version", HD_VERSION);
	cJSON_AddStringToObject(root, "serviceId", engine_config(s->engine)->node_name);
	cJSON_AddStringToObject(root, "description", "healthd: can this backend reach what it depends on");
	if (first != NULL) {
		char output[128];
		snprintf(output, sizeof(output), "%s %s", first->conf->name, hd_check_kind_word(first));
		cJSON_AddStringToObject(root, "output", output);
	}
	admin = status_effective_admin(s);
	if (admin->mode != HD_ADMIN_READY || s->stopping) {
		char note[320];
		snprintf(note, sizeof(note), "admin %s%s%s", status_admin_word(s), admin->reason[0] ? ": " : "",
			 admin->reason);
		cJSON_AddItemToObject(root, "notes", cJSON_CreateArray());
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(root, "notes"), cJSON_CreateString(note));
	}
	checks = cJSON_AddObjectToObject(root, "checks");
	for (size_t i = 0; i < engine_n_checks(s->engine); i++) {
		const struct hd_check *c = engine_check(s->engine, i);
		char key[96];
		cJSON *list = cJSON_CreateArray();
		snprintf(key, sizeof(key), "%s:responseTime", c->conf->name);
		cJSON_AddItemToArray(list, ietf_check_json(c));
		cJSON_AddItemToObject(checks, key, list);
	}
	free(s->ietf_json);
	s->ietf_json = print_owned(root, &s->ietf_len);
	s->ietf_results_version = rv;
	s->ietf_admin_version = s->admin_version;
	s->ietf_valid = true;
	*len = s->ietf_len;
	return s->ietf_json;
}

size_t status_check_body(struct hd_status *s, const struct hd_check *c, struct evbuffer *out)
{
	struct check_pieces *p = pieces_of(s, c);
	const char *value;
	size_t value_len;

	update_member(c, p); /* current unless the check has had no result yet */
	value = p->member + p->member_key_len + 1;
	value_len = p->member_len - p->member_key_len - 1; /* {...}: its closing brace is written after "name" */
	if (evbuffer_add(out, value, value_len - 1) < 0 || evbuffer_add(out, ",\"name\":", 8) < 0 ||
	    evbuffer_add(out, p->member, p->member_key_len) < 0 || evbuffer_add(out, "}\n", 2) < 0)
		return 0;
	return value_len - 1 + 8 + p->member_key_len + 2;
}

const char *status_deps_body(struct hd_status *s, size_t *len)
{
	unsigned sv = engine_state_version(s->engine);

	if (!s->deps_valid || s->deps_version != sv) {
		const struct hd_check *first;
		enum hd_overall o = status_overall(s, &first);
		if (first != NULL)
			snprintf(s->deps_body, sizeof(s->deps_body), "%s #%s %s\n", hd_overall_name(o), first->conf->name,
				 hd_check_kind_word(first));
		else
			snprintf(s->deps_body, sizeof(s->deps_body), "%s\n", hd_overall_name(o));
		s->deps_len = strlen(s->deps_body);
		s->deps_version = sv;
		s->deps_valid = true;
	}
	*len = s->deps_len;
	return s->deps_body;
}

const char *status_admin_word(const struct hd_status *s)
{
	if (s->admin.mode != HD_ADMIN_READY)
		return hd_admin_name(s->admin.mode);
	return s->stopping ? "stopping" : NULL;
}

int status_ready_code(struct hd_status *s)
{
	return status_admin_word(s) != NULL ? 503 : status_http_code(s);
}

const char *status_ready_body(struct hd_status *s, size_t *len)
{
	const char *word = status_admin_word(s);

	if (word == NULL)
		return status_deps_body(s, len);
	if (!s->ready_valid || s->ready_admin_version != s->admin_version) {
		const char *reason = status_effective_admin(s)->reason;
		snprintf(s->ready_body, sizeof(s->ready_body), "%s%s%s\n", word, reason[0] ? " #" : "", reason);
		s->ready_len = strlen(s->ready_body);
		s->ready_admin_version = s->admin_version;
		s->ready_valid = true;
	}
	*len = s->ready_len;
	return s->ready_body;
}

/* For clients outside http.details_from: the overall state and the admin state, nothing about the topology. */
const char *status_health_summary_json(struct hd_status *s, size_t *len)
{
	unsigned sv = engine_state_version(s->engine);

	if (!s->health_summary_valid || s->health_summary_state_version != sv ||
	    s->health_summary_admin_version != s->admin_version) {
		const struct hd_check *first;
		snprintf(s->health_summary, sizeof(s->health_summary), "{\"status\":\"%s\",\"admin\":{\"state\":\"%s\"}}\n",
			 hd_overall_name(status_overall(s, &first)), hd_admin_name(status_effective_admin(s)->mode));
		s->health_summary_len = strlen(s->health_summary);
		s->health_summary_state_version = sv;
		s->health_summary_admin_version = s->admin_version;
		s->health_summary_valid = true;
	}
	*len = s->health_summary_len;
	return s->health_summary;
}

const char *status_deps_summary(struct hd_status *s, size_t *len)
{
	const struct hd_check *first;

	snprintf(s->deps_summary, sizeof(s->deps_summary), "%s\n", hd_overall_name(status_overall(s, &first)));
	*len = strlen(s->deps_summary);
	return s->deps_summary;
}

const char *status_ready_summary(struct hd_status *s, size_t *len)
{
	const char *word = status_admin_word(s);

	if (word == NULL)
		return status_deps_summary(s, len);
	snprintf(s->ready_summary, sizeof(s->ready_summary), "%s\n", word);
	*len = strlen(s->ready_summary);
	return s->ready_summary;
}

const struct hd_admin *status_admin(const struct hd_status *s)
{
	return &s->admin;
}

const struct hd_admin *status_effective_admin(const struct hd_status *s)
{
	return s->stopping && s->admin.mode == HD_ADMIN_READY ? &s->stop_admin : &s->admin;
}

static void end_ready_announcement(struct hd_status *s)
{
	if (s->announce_until_mono_ms != 0)
		log_info("agent: the \"ready\" window is over; %llu polls got \"ready\"", (unsigned long long)s->n_announced);
	s->announce_until_mono_ms = 0;
	s->n_announced = 0;
}

void status_begin_ready_announcement(struct hd_status *s)
{
	int window_ms = engine_config(s->engine)->agent.ready_window_ms;

	end_ready_announcement(s);
	s->announce_until_mono_ms = hd_now_mono_ms() + window_ms;
	log_info("agent: every poll for the next %d ms gets \"ready\" (leaving drain/maint), so that every load "
		 "balancer leaves it", window_ms);
}

bool status_set_admin(struct hd_status *s, enum hd_admin_mode mode, const char *reason, int64_t since_wall_ms)
{
	bool leaving = s->admin.mode != HD_ADMIN_READY && mode == HD_ADMIN_READY;

	if (reason == NULL)
		reason = "";
	if (s->admin.mode == mode && strcmp(s->admin.reason, reason) == 0)
		return false;
	if (s->admin.mode != mode || s->admin.since_wall_ms <= 0)
		s->admin.since_wall_ms = since_wall_ms;
	s->admin.mode = mode;
	hd_strlcpy(s->admin.reason, reason, sizeof(s->admin.reason));
	if (leaving)
		status_begin_ready_announcement(s);
	else if (mode != HD_ADMIN_READY)
		end_ready_announcement(s);
	s->admin_version++;
	if (s->on_admin != NULL)
		s->on_admin(mode, s->on_admin_arg);
	return true;
}

void status_on_admin_change(struct hd_status *s, hd_admin_changed_fn fn, void *arg)
{
	s->on_admin = fn;
	s->on_admin_arg = arg;
	fn(s->admin.mode, arg);
}

bool status_take_ready_announcement(struct hd_status *s)
{
	if (s->announce_until_mono_ms == 0 || s->admin.mode != HD_ADMIN_READY || s->stopping)
		return false;
	if (hd_now_mono_ms() >= s->announce_until_mono_ms) {
		end_ready_announcement(s);
		return false;
	}
	s->n_announced++;
	return true;
}

const struct hd_config *status_config(const struct hd_status *s)
{
	return engine_config(s->engine);
}

void status_set_stopping(struct hd_status *s, const char *reason, int64_t since_wall_ms)
{
	s->stopping = true;
	s->stop_admin.mode = HD_ADMIN_DRAIN;
	hd_strlcpy(s->stop_admin.reason, reason, sizeof(s->stop_admin.reason));
	s->stop_admin.since_wall_ms = since_wall_ms;
	s->admin_version++;
}

bool status_stopping(const struct hd_status *s)
{
	return s->stopping;
}

void status_note_reload(struct hd_status *s, bool ok, int64_t wall_ms)
{
	s->reload_ok = ok;
	if (ok)
		s->reload_success_wall_ms = wall_ms;
}

bool status_last_reload(const struct hd_status *s, int64_t *success_wall_ms)
{
	*success_wall_ms = s->reload_success_wall_ms;
	return s->reload_ok;
}
