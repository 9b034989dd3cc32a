/* config.c: reads the JSON configuration with cJSON, keeps every value's line:col, checks each key against its table. */
#include "config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts_conf.h"

/* ---- the sections of the file ---- */

#define OFF(s, f) offsetof(struct s, f)

static const struct cfg_key listen_keys[] = {
	{"http", CFG_HOSTPORT, OFF(hd_config, listen.http), false, 0, 0, "0.0.0.0:9110", NULL,
	 "where the HTTP API listens (/health, /health/NAME, /ready, /live)"},
	{"agent", CFG_HOSTPORT, OFF(hd_config, listen.agent), false, 0, 0, "0.0.0.0:9111", NULL,
	 "where the HAProxy agent-check port listens"},
	{"admin_socket", CFG_STRING, OFF(hd_config, listen.admin_socket), false, 0, 0, "/run/healthd/healthd.sock", NULL,
	 "Unix socket for `healthd ctl` (mode 0600)"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

/* Top-level scalar keys (the sections have their own tables). */
static const struct cfg_key root_keys[] = {
	{"state_dir", CFG_PATH, OFF(hd_config, state_dir), false, 0, 0, "/var/lib/healthd", NULL,
	 "directory of the admin state (drain/maint and why), kept across restarts and crashes; created (mode 0750) at start if missing"},
	{"shutdown_grace_ms", CFG_INT, OFF(hd_config, shutdown_grace_ms), false, 0, 600000, "6000", NULL,
	 "on SIGTERM, answer `drain` to the load balancers this long before exiting (a few agent intervals); "
	 "0 exits at once"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const struct cfg_key defaults_keys[] = {
	{"interval_ms", CFG_INT, OFF(hd_defaults, interval_ms), false, 100, 86400000, "2000", NULL,
	 "time between the starts of two attempts of a check"},
	{"timeout_ms", CFG_INT, OFF(hd_defaults, timeout_ms), false, 10, 600000, "1000", NULL,
	 "hard deadline of one attempt, every phase included; at most interval_ms"},
	{"rise", CFG_INT, OFF(hd_defaults, rise), false, 1, 100, "2", NULL,
	 "consecutive successes before a down check counts as up"},
	{"fall", CFG_INT, OFF(hd_defaults, fall), false, 1, 100, "3", NULL,
	 "consecutive failures before an up check counts as down"},
	{"fastinterval_ms", CFG_INT, OFF(hd_defaults, fastinterval_ms), false, 100, 86400000, NULL, NULL,
	 "time between attempts while a check is changing state: up but failing (until fall decides), or down but "
	 "passing (until rise does); like HAProxy's fastinter. A DROP is then found in about interval + (fall - 1) x "
	 "fastinterval + timeout. Default: interval_ms; at least timeout_ms"},
	{"downinterval_ms", CFG_INT, OFF(hd_defaults, downinterval_ms), false, 100, 86400000, NULL, NULL,
	 "time between attempts while a check is down (and not rising); like HAProxy's downinter. Default: "
	 "interval_ms; at least timeout_ms"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

/* A list of address ranges ("10.0.0.0/8", "::1", "2001:db8::/32"); an empty list matches nobody. */
static int parse_cidr_list(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	struct hd_cidr_list *l = field;
	const cJSON *item;
	size_t n = 0;

	if (!cJSON_IsArray(node))
		return cfg_error(ctx, node, false, "expected an array of address ranges such as [\"10.0.0.0/8\", \"::1\"], got %s",
				 cfg_json_type_name(node));
	cJSON_ArrayForEach(item, node) n++;
	free(l->v);
	l->v = xcalloc(n + 1, sizeof(*l->v));
	l->n = 0;
	l->set = true;
	cJSON_ArrayForEach(item, node) {
		const char *why;
		if (!cJSON_IsString(item))
			return cfg_error(ctx, item, false, "expected an address range as a string, got %s", cfg_json_type_name(item));
		if (hd_cidr_parse(item->valuestring, &l->v[l->n], &why) < 0)
			return cfg_error(ctx, item, false, "%s, got \"%s\"", why, item->valuestring);
		l->n++;
	}
	return 0;
}

static void release_cidr_list(void *field)
{
	struct hd_cidr_list *l = field;

	free(l->v);
	memset(l, 0, sizeof(*l));
}

#define CIDR_LIST(name, off, def, help) \
	{name, CFG_CUSTOM, off, false, 0, 0, def, NULL, help, parse_cidr_list, release_cidr_list, "array of address ranges"}

static const struct cfg_key agent_keys[] = {
	{"degraded_weight_pct", CFG_INT, OFF(hd_config, agent.degraded_weight_pct), false, 0, 100, "50", NULL,
	 "weight the agent announces while only non-critical checks are down"},
	{"ready_window_ms", CFG_INT, OFF(hd_config, agent.ready_window_ms), false, 1000, 3600000, "10000", NULL,
	 "after leaving drain or maint, every agent poll within this window gets `ready` (about 3 agent-inter or more); "
	 "a maint set through HAProxy's runtime API after it is never undone"},
	{"max_connections", CFG_INT, OFF(hd_config, agent.max_connections), false, 1, 100000, "256", NULL,
	 "open agent connections at most; at the cap the oldest (already answered) give way to newcomers"},
	{"max_connections_per_source", CFG_INT, OFF(hd_config, agent.max_connections_per_source), false, 1, 100000, "64",
	 NULL, "open agent connections from one address at most; beyond it its oldest give way"},
	{"timeout_ms", CFG_INT, OFF(hd_config, agent.timeout_ms), false, 10, 60000, "2000", NULL,
	 "how long an agent connection may stay open"},
	CIDR_LIST("allow_from", OFF(hd_config, agent.allow_from), "everyone",
		  "address ranges that may connect to the agent port; others are closed at accept (and counted)"),
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const struct cfg_key http_keys[] = {
	{"max_connections", CFG_INT, OFF(hd_config, http.max_connections), false, 1, 100000, "512", NULL,
	 "open HTTP connections at most; at the cap idle keep-alive, then incomplete requests give way to newcomers"},
	{"max_connections_per_source", CFG_INT, OFF(hd_config, http.max_connections_per_source), false, 1, 100000, "64",
	 NULL, "open HTTP connections from one address at most; beyond it its idlest give way, or it is refused"},
	{"timeout_ms", CFG_INT, OFF(hd_config, http.timeout_ms), false, 100, 600000, "3000", NULL,
	 "deadline for a complete request head (after connecting, or after the previous answer on a keep-alive "
	 "connection) and for the client to take the answer; not extended by trickling bytes"},
	{"max_header_bytes", CFG_INT, OFF(hd_config, http.max_header_bytes), false, 512, 1048576, "8192", NULL,
	 "largest request head accepted (431 beyond); request bodies are refused"},
	CIDR_LIST("allow_from", OFF(hd_config, http.allow_from), "everyone",
		  "address ranges that may connect to the HTTP API; others are closed at accept (and counted)"),
	CIDR_LIST("details_from", OFF(hd_config, http.details_from), "[\"127.0.0.0/8\", \"::1\"]",
		  "clients that see the full /health and /ready bodies; others get the status only (no targets, "
		  "addresses, details or drain reason)"),
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const struct cfg_key history_keys[] = {
	{"max_events", CFG_INT, OFF(hd_config, history.max_events), false, 10, 100000, "500", NULL,
	 "state and admin changes kept in state_dir/history.json and shown by /history and the status page "
	 "(the oldest go first)"},
	{"max_bytes", CFG_INT, OFF(hd_config, history.max_bytes), false, 4096, 67108864, "1048576", NULL,
	 "the history file's size at most; the oldest changes go first to stay within it"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};

static const struct cfg_key log_keys[] = {
	{"syslog", CFG_BOOL, OFF(hd_config, log.syslog), false, 0, 0, "false", NULL,
	 "log to syslog (daemon facility) instead of stderr"},
	{"level", CFG_ENUM, OFF(hd_config, log.level), false, 0, 0, "info", log_levels, "least severe level logged"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

struct check_common {
	char *name;
	char *type;
	bool critical;
	struct hd_labels labels;
	char *runbook_url;
	int interval_ms, timeout_ms, rise, fall, fastinterval_ms, downinterval_ms;
};

static const struct cfg_key check_keys[] = {
	{"name", CFG_STRING, OFF(check_common, name), true, 0, 0, NULL, NULL,
	 "unique name, letters, digits, '_', '.', '-' (at most 63)"},
	{"type", CFG_STRING, OFF(check_common, type), true, 0, 0, NULL, NULL, "the check type (see below)"},
	{"critical", CFG_BOOL, OFF(check_common, critical), false, 0, 0, "true", NULL,
	 "a critical check down takes the backend out (503, agent down); a non-critical one only lowers the weight"},
	{"interval_ms", CFG_INT, OFF(check_common, interval_ms), false, 100, 86400000, NULL, NULL,
	 "overrides defaults.interval_ms"},
	{"timeout_ms", CFG_INT, OFF(check_common, timeout_ms), false, 10, 600000, NULL, NULL,
	 "overrides defaults.timeout_ms"},
	{"rise", CFG_INT, OFF(check_common, rise), false, 1, 100, NULL, NULL, "overrides defaults.rise"},
	{"fall", CFG_INT, OFF(check_common, fall), false, 1, 100, NULL, NULL, "overrides defaults.fall"},
	{"fastinterval_ms", CFG_INT, OFF(check_common, fastinterval_ms), false, 100, 86400000, NULL, NULL,
	 "overrides defaults.fastinterval_ms"},
	{"downinterval_ms", CFG_INT, OFF(check_common, downinterval_ms), false, 100, 86400000, NULL, NULL,
	 "overrides defaults.downinterval_ms"},
	{"labels", CFG_CUSTOM, OFF(check_common, labels), false, 0, 0, NULL, NULL,
	 "labels added to this check's alert events and Alertmanager alerts, over `alerts.labels` (`{\"service\": "
	 "\"billing\"}`; names as Prometheus allows, not one healthd sets)",
	 cfg_read_labels, cfg_release_labels, "object of strings"},
	{"runbook_url", CFG_STRING, OFF(check_common, runbook_url), false, 0, 0, NULL, NULL,
	 "http(s) URL of what to do when this check fails: in its alert events, the Alertmanager annotation "
	 "`runbook_url` and the Slack message"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static bool valid_check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static void free_check_conf(struct hd_check_conf *c)
{
	if (c == NULL)
		return;
	if (c->type_conf != NULL && c->type != NULL) {
		if (c->type->free_conf)
			c->type->free_conf(c->type_conf);
		cfg_free_table(c->type->keys, c->type_conf);
	}
	free(c->type_conf);
	cfg_release_labels(&c->labels);
	free(c->runbook_url);
	free(c->name);
	free(c->target);
	free(c->fingerprint);
	free(c);
}

/* The registered types, "tcp, disk, ...": the list a build really has. */
static const char *type_names(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; hd_check_types[i]; i++)
		hd_appendf(buf, len, &used, "%s%s", i ? ", " : "", hd_check_types[i]->name);
	return buf;
}

static int parse_check(struct cfg_ctx *ctx, const cJSON *obj, const struct hd_defaults *defs, struct hd_check_conf **out)
{
	struct check_common common = {0};
	const cJSON *type_node = cJSON_GetObjectItemCaseSensitive(obj, "type");
	const struct hd_check_type *type;
	struct hd_check_conf *c;
	char *json, *extra, *text, all[256], digest[33];

	if (!cJSON_IsObject(obj))
		return cfg_error(ctx, obj, false, "expected a check object, got %s", cfg_json_type_name(obj));
	if (type_node == NULL)
		return cfg_error(ctx, obj, false, "missing required key \"type\" (one of: %s)", type_names(all, sizeof(all)));
	if (!cJSON_IsString(type_node))
		return cfg_error(ctx, type_node, false, "expected a check type name, got %s", cfg_json_type_name(type_node));
	type = hd_check_type_find(type_node->valuestring);
	if (type == NULL)
		return cfg_error(ctx, type_node, false, "unknown check type \"%s\" (expected one of: %s)",
				 type_node->valuestring, type_names(all, sizeof(all)));
	c = xcalloc(1, sizeof(*c));
	c->type = type;
	c->type_conf = xcalloc(1, type->conf_size);
	struct cfg_table_ref tables[] = {{check_keys, &common}, {type->keys, c->type_conf}};
	if (cfg_read_object(ctx, obj, tables, 2) < 0)
		goto fail;
	if (!valid_check_name(common.name)) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(obj, "name"), false,
			  "\"%s\" is not a valid check name (1 to 63 of A-Z a-z 0-9 _ . -)", common.name);
		goto fail;
	}
	if (common.runbook_url && strncmp(common.runbook_url, "http://", 7) != 0 &&
	    strncmp(common.runbook_url, "https://", 8) != 0) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(obj, "runbook_url"), false,
			  "expected an http:// or https:// URL, got \"%.200s\"", common.runbook_url);
		goto fail;
	}
	c->name = common.name;
	common.name = NULL;
	c->labels = common.labels;
	common.labels = (struct hd_labels){0};
	c->runbook_url = common.runbook_url;
	common.runbook_url = NULL;
	c->critical = common.critical;
	c->interval_ms = common.interval_ms ? common.interval_ms : defs->interval_ms;
	c->timeout_ms = common.timeout_ms ? common.timeout_ms : defs->timeout_ms;
	c->rise = common.rise ? common.rise : defs->rise;
	c->fall = common.fall ? common.fall : defs->fall;
	/* unset here and in defaults: as interval_ms, so that no key changes nothing */
	c->fastinterval_ms = common.fastinterval_ms ? common.fastinterval_ms :
			     defs->fastinterval_ms ? defs->fastinterval_ms : c->interval_ms;
	c->downinterval_ms = common.downinterval_ms ? common.downinterval_ms :
			     defs->downinterval_ms ? defs->downinterval_ms : c->interval_ms;
	if (c->timeout_ms > c->interval_ms) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(obj, common.timeout_ms ? "timeout_ms" : "interval_ms") ?: obj,
			  false, "timeout_ms (%d) must not exceed interval_ms (%d): one attempt must end before the next",
			  c->timeout_ms, c->interval_ms);
		goto fail;
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k == 0 ? "fastinterval_ms" : "downinterval_ms";
		int value = k == 0 ? c->fastinterval_ms : c->downinterval_ms;
		if (c->timeout_ms > value) {
			cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(obj, key) ?: cJSON_GetObjectItemCaseSensitive(obj,
				  "timeout_ms") ?: obj, false, "timeout_ms (%d) must not exceed %s (%d): one attempt must end "
				  "before the next", c->timeout_ms, key, value);
			goto fail;
		}
	}
	ctx->check_node = obj;
	if (type->validate != NULL && type->validate(c, ctx) < 0)
		goto fail;
	if (c->target == NULL)
		c->target = xstrdup("");
	json = cJSON_PrintUnformatted(obj);
	if (json == NULL)
		hd_fatal("cJSON: out of memory");
	/* validate() may have put in c->fingerprint what it read from elsewhere (a password file's digest):
	 * a change there is a change of the check, so that a reload restarts it. Only a keyed digest of it all is
	 * kept: the text holds inline passwords and header values, and is wiped before it is freed. */
	extra = c->fingerprint;
	text = xasprintf("%s|%d|%d|%d|%d|%d|%d|%s", json, c->interval_ms, c->timeout_ms, c->rise, c->fall,
			 c->fastinterval_ms, c->downinterval_ms, extra ? extra : "");
	cfg_secret_digest(text, strlen(text), digest);
	c->fingerprint = xasprintf("sip:%s", digest);
	explicit_bzero(text, strlen(text));
	free(text);
	free(extra);
	explicit_bzero(json, strlen(json));
	cJSON_free(json);
	cfg_free_table(check_keys, &common);
	*out = c;
	return 0;
fail:
	cfg_free_table(check_keys, &common);
	free_check_conf(c);
	return -1;
}

static int parse_checks(struct cfg_ctx *ctx, const cJSON *arr, struct hd_config *cfg)
{
	const cJSON *item;
	size_t n = 0;

	if (!cJSON_IsArray(arr))
		return cfg_error(ctx, arr, false, "expected an array of check objects, got %s", cfg_json_type_name(arr));
	cfg->checks = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->checks));
	cJSON_ArrayForEach(item, arr) {
		if (parse_check(ctx, item, &cfg->defaults, &cfg->checks[n]) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->checks[i]->name, cfg->checks[n]->name) == 0) {
				const cJSON *first = cJSON_GetArrayItem(arr, (int)i);
				int first_line = cfg_line_of(ctx, first);
				free_check_conf(cfg->checks[n]);
				cfg->checks[n] = NULL;
				return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "name"), false,
						 "duplicate check name \"%s\" (checks[%zu], line %d, has it too)",
						 cJSON_GetObjectItemCaseSensitive(item, "name")->valuestring, i,
						 first_line);
			}
		cfg->n_checks = ++n;
	}
	return 0;
}

/* A password in a file others can read is worth a warning, not a refusal. */
static bool has_password_key(const cJSON *node)
{
	const cJSON *child;

	if (node->string && strcmp(node->string, "password") == 0)
		return true;
	for (child = node->child; child != NULL; child = child->next)
		if (has_password_key(child))
			return true;
	return false;
}

/* The top-level scalars sit beside the sections, so they are read one by one against root_keys. */
static int read_root_keys(struct cfg_ctx *ctx, const cJSON *root, struct hd_config *cfg)
{
	for (const struct cfg_key *k = root_keys; k->name; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, k->name);
		if (cfg_read_key(ctx, v, k, cfg) < 0)
			return -1;
	}
	return 0;
}

/* The listeners bind without resolving names: catch "localhost:9110" here rather than at start-up. */
static int check_listen_ip(struct cfg_ctx *ctx, const cJSON *listen, const char *key, const char *value)
{
	char host[256];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *why;
	int port;

	if (hd_split_hostport(value, host, sizeof(host), &port, &why) == 0 &&
	    (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1))
		return 0;
	return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(listen, key) ?: listen, false,
			 "expected an IP address to listen on (names are not resolved here), got \"%s\"", value);
}

static struct hd_config *parse_root(struct cfg_ctx *ctx, const cJSON *root)
{
	struct hd_config *cfg = xcalloc(1, sizeof(*cfg));
	const cJSON *item;
	/* The top level's keys, for the unknown-key check and its "did you mean" (each section has its own table). */
	static const struct cfg_key sections[] = {{"node_name"}, {"state_dir"}, {"shutdown_grace_ms"}, {"listen"},
						  {"defaults"}, {"agent"}, {"http"}, {"log"}, {"history"}, {"checks"}, {"alerts"}, {NULL}};
	static const struct cfg_table_ref top_level = {sections, NULL};

	if (!cJSON_IsObject(root)) {
		cfg_error(ctx, root, false, "expected a JSON object at the top, got %s", cfg_json_type_name(root));
		goto fail;
	}
	cJSON_ArrayForEach(item, root) {
		bool known = false;
		for (const cJSON *prev = root->child; prev != item; prev = prev->next)
			if (strcmp(prev->string, item->string) == 0) {
				cfg_error(ctx, item, true, "duplicate key \"%s\"", item->string);
				goto fail;
			}
		for (const struct cfg_key *k = sections; k->name; k++)
			known |= strcmp(k->name, item->string) == 0;
		if (!known) {
			cfg_unknown_key(ctx, item, &top_level, 1);
			goto fail;
		}
	}
	/* Every section is read, present or not, so that its defaults apply. */
	static const cJSON empty = {.type = cJSON_Object};
#define SECTION(name) (cJSON_GetObjectItemCaseSensitive(root, name) ?: &empty)
	if ((item = cJSON_GetObjectItemCaseSensitive(root, "node_name")) != NULL) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
			cfg_error(ctx, item, false, "expected a non-empty string, got %s", cfg_json_type_name(item));
			goto fail;
		}
		cfg->node_name = xstrdup(item->valuestring);
	} else {
		char host[256] = "unknown";
		gethostname(host, sizeof(host) - 1);
		cfg->node_name = xstrdup(host);
	}
	if (read_root_keys(ctx, root, cfg) < 0)
		goto fail;
	struct cfg_table_ref listen = {listen_keys, cfg}, defaults = {defaults_keys, &cfg->defaults},
			     agent = {agent_keys, cfg}, http = {http_keys, cfg}, log = {log_keys, cfg},
			     history = {history_keys, cfg};
	if (cfg_read_object(ctx, SECTION("listen"), &listen, 1) < 0 ||
	    cfg_read_object(ctx, SECTION("defaults"), &defaults, 1) < 0 ||
	    cfg_read_object(ctx, SECTION("agent"), &agent, 1) < 0 || cfg_read_object(ctx, SECTION("http"), &http, 1) < 0 ||
	    cfg_read_object(ctx, SECTION("log"), &log, 1) < 0 || cfg_read_object(ctx, SECTION("history"), &history, 1) < 0)
		goto fail;
	if (check_listen_ip(ctx, SECTION("listen"), "http", cfg->listen.http) < 0 ||
	    check_listen_ip(ctx, SECTION("listen"), "agent", cfg->listen.agent) < 0)
		goto fail;
	if (cfg->defaults.timeout_ms > cfg->defaults.interval_ms) {
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(SECTION("defaults"), "timeout_ms") ?: root, false,
			  "timeout_ms (%d) must not exceed interval_ms (%d): one attempt must end before the next",
			  cfg->defaults.timeout_ms,
			  cfg->defaults.interval_ms);
		goto fail;
	}
	if ((cfg->defaults.fastinterval_ms && cfg->defaults.timeout_ms > cfg->defaults.fastinterval_ms) ||
	    (cfg->defaults.downinterval_ms && cfg->defaults.timeout_ms > cfg->defaults.downinterval_ms)) {
		bool fast = cfg->defaults.fastinterval_ms && cfg->defaults.timeout_ms > cfg->defaults.fastinterval_ms;
		cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(SECTION("defaults"), fast ? "fastinterval_ms" :
				"downinterval_ms") ?: root, false,
			  "timeout_ms (%d) must not exceed %s (%d): one attempt must end before the next",
			  cfg->defaults.timeout_ms, fast ? "fastinterval_ms" : "downinterval_ms",
			  fast ? cfg->defaults.fastinterval_ms : cfg->defaults.downinterval_ms);
		goto fail;
	}
	if ((item = cJSON_GetObjectItemCaseSensitive(root, "checks")) == NULL) {
		cfg_error(ctx, root, false, "missing required key \"checks\" (an array of checks)");
		goto fail;
	}
	if (parse_checks(ctx, item, cfg) < 0)
		goto fail;
	if ((item = cJSON_GetObjectItemCaseSensitive(root, "alerts")) != NULL &&
	    alerts_parse_config(ctx, item, &cfg->alerts) < 0)
		goto fail;
#undef SECTION
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

static bool only_space_after(const char *p, const char *end)
{
	for (; p != NULL && p < end && *p != '\0'; p++)
		if (strchr(" \t\r\n", *p) == NULL)
			return false;
	return true;
}

/*
 * What the parser stopped at, named without quoting the text: a password may sit right there, and the message goes
 * to the log and to `healthd ctl reload`. The line and column are exact.
 */
static const char *token_at(const char *p)
{
	switch (*p) {
	case '{': return "'{'";
	case '}': return "'}'";
	case '[': return "'['";
	case ']': return "']'";
	case ',': return "','";
	case ':': return "':'";
	case '"': return "a string";
	default: break;
	}
	if (*p == '-' || (*p >= '0' && *p <= '9'))
		return "a number";
	if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
		return "a word without quotes";
	return "an unexpected character";
}

/* cJSON tells only where it stopped: say where, what kind of token is there, and what is likely wrong. */
static char *json_syntax_error(const char *file, const char *text, size_t len, const char *failed_at, const char *end)
{
	int line, col;

	if (failed_at == NULL) { /* parsed, but more follows the top-level value */
		const char *next = end;
		while (next < text + len && strchr(" \t\r\n", *next) != NULL)
			next++;
		hd_line_col(text, next, &line, &col);
		return xasprintf("%s:%d:%d: invalid JSON: more text after the end of the top-level object", file, line, col);
	}
	if (only_space_after(failed_at, text + len)) {
		hd_line_col(text, text + len, &line, &col);
		return xasprintf("%s:%d:%d: invalid JSON: the text ends too early (an unclosed { [ or \"?)", file, line, col);
	}
	hd_line_col(text, failed_at, &line, &col);
	return xasprintf("%s:%d:%d: invalid JSON: cannot continue at %s (a comma missing or one too many, a missing "
			 "colon, bracket or quote, just before it?)", file, line, col, token_at(failed_at));
}

/*
 * Comments (// to the end of the line, and / * ... * /) are allowed so that example files can explain themselves.
 * They are blanked in place, newlines kept, so every position in an error message stays exact.
 */
static char *blank_comments(const char *text, size_t len)
{
	char *out = xmalloc(len + 1);
	bool in_string = false;

	memcpy(out, text, len);
	out[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (out[i] == '\\')
				i++;
			else if (out[i] == '"')
				in_string = false;
		} else if (out[i] == '"') {
			in_string = true;
		} else if (out[i] == '/' && i + 1 < len && out[i + 1] == '/') {
			for (; i < len && out[i] != '\n'; i++)
				out[i] = ' ';
		} else if (out[i] == '/' && i + 1 < len && out[i + 1] == '*') {
			size_t j = i + 2;
			while (j + 1 < len && !(out[j] == '*' && out[j + 1] == '/'))
				j++;
			if (j + 1 >= len)
				break; /* unterminated: leave it for the JSON parser to point at */
			for (; i <= j + 1; i++)
				if (out[i] != '\n')
					out[i] = ' ';
			i--;
		}
	}
	return out;
}

/* Every string of the parsed tree is wiped before cJSON frees it: inline passwords and tokens are among them. */
static void wipe_tree(cJSON *node)
{
	for (; node != NULL; node = node->next) {
		if (node->valuestring != NULL)
			explicit_bzero(node->valuestring, strlen(node->valuestring));
		wipe_tree(node->child);
	}
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

struct hd_config *config_parse_opts(const char *file, const char *raw_text, size_t len,
				    const struct hd_config_opts *opts, char **error)
{
	static const struct hd_config_opts defaults;
	char *text = blank_comments(raw_text, len);
	struct cfg_ctx ctx = {.file = file, .text = text, .text_len = len, .opts = opts ? opts : &defaults};
	const char *end = NULL;
	struct hd_config *cfg = NULL;
	cJSON *root;

	*error = NULL;
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL || !only_space_after(end, text + len)) {
		*error = json_syntax_error(file, text, len, root == NULL ? (end ? end : text) : NULL, end);
		wipe_tree(root);
		cJSON_Delete(root);
		explicit_bzero(text, len);
		free(text);
		return NULL;
	}
	cfg_record_positions(&ctx, root);
	cfg = parse_root(&ctx, root);
	if (cfg != NULL) {
		cfg->path = xstrdup(file);
		cfg->warnings = ctx.warnings;
		cfg->n_warnings = ctx.n_warnings;
		ctx.warnings = NULL;
		ctx.n_warnings = 0;
		cfg->unopened = ctx.unopened;
		cfg->n_unopened = ctx.n_unopened;
		ctx.unopened = NULL;
		ctx.n_unopened = 0;
	} else {
		*error = ctx.error ? ctx.error : xasprintf("%s: invalid configuration", file);
		ctx.error = NULL;
	}
	if (cfg != NULL && has_password_key(root)) {
		struct stat st;
		if (stat(file, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH))) {
			cfg->warnings = xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
			cfg->warnings[cfg->n_warnings++] =
				xasprintf("%s holds a password and is readable by others (mode %03o): chmod 600 it, or use "
					  "password_file", file, (unsigned)(st.st_mode & 0777));
		}
	}
	if (cfg != NULL && !ctx.opts->keep_warnings)
		config_log_warnings(cfg);
	free_list(ctx.warnings, ctx.n_warnings);
	free_list(ctx.unopened, ctx.n_unopened);
	free(ctx.error);
	free(ctx.pos);
	wipe_tree(root);
	cJSON_Delete(root);
	explicit_bzero(text, len);
	free(text);
	return cfg;
}

struct hd_config *config_parse(const char *file, const char *text, size_t len, char **error)
{
	return config_parse_opts(file, text, len, NULL, error);
}

void config_log_warnings(struct hd_config *cfg)
{
	for (size_t i = 0; i < cfg->n_warnings; i++)
		log_warn("%s", cfg->warnings[i]);
	free_list(cfg->warnings, cfg->n_warnings);
	cfg->warnings = NULL;
	cfg->n_warnings = 0;
}

#define CONFIG_FILE_MAX (4 * 1024 * 1024)

struct hd_config *config_load_opts(const char *path, const struct hd_config_opts *opts, char **error)
{
	const char *why = NULL;
	struct hd_config *cfg;
	size_t len = 0;
	char *text;

	if (opts != NULL && opts->on_open != NULL)
		opts->on_open(path, opts->on_open_arg);
	text = cfg_read_regular_file(path, CONFIG_FILE_MAX, &len, NULL, &why);
	if (text == NULL) {
		*error = xasprintf("%s:0:0: cannot read the configuration: %s", path,
				   strcmp(why, "too large") == 0 ? "larger than 4 MiB" : why);
		return NULL;
	}
	cfg = config_parse_opts(path, text, strlen(text), opts, error);
	explicit_bzero(text, len);
	free(text);
	return cfg;
}

struct hd_config *config_load(const char *path, char **error)
{
	return config_load_opts(path, NULL, error);
}

void config_free(struct hd_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; cfg->checks && cfg->checks[i]; i++)
		free_check_conf(cfg->checks[i]);
	free(cfg->checks);
	cfg_free_table(listen_keys, cfg);
	cfg_free_table(root_keys, cfg);
	cfg_free_table(agent_keys, cfg);
	cfg_free_table(http_keys, cfg);
	alerts_conf_unref(cfg->alerts);
	free_list(cfg->warnings, cfg->n_warnings);
	free_list(cfg->unopened, cfg->n_unopened);
	free(cfg->node_name);
	free(cfg->path);
	free(cfg);
}

const struct hd_check_conf *config_find_check(const struct hd_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_checks; i++)
		if (strcmp(cfg->checks[i]->name, name) == 0)
			return cfg->checks[i];
	return NULL;
}

void config_print_reference(void)
{
	printf("| key | type | default | meaning |\n|---|---|---|---|\n");
	printf("| `node_name` | string | the host name | this backend's name in alerts and /health |\n");
	cfg_print_keys("", root_keys);
	cfg_print_keys("listen", listen_keys);
	cfg_print_keys("defaults", defaults_keys);
	cfg_print_keys("agent", agent_keys);
	cfg_print_keys("http", http_keys);
	cfg_print_keys("log", log_keys);
	cfg_print_keys("history", history_keys);
	alerts_print_reference();
	printf("\nEvery check (`checks[]`):\n\n| key | type | default | meaning |\n|---|---|---|---|\n");
	cfg_print_keys("", check_keys);
	for (size_t i = 0; hd_check_types[i]; i++) {
		printf("\n`type: \"%s\"`: %s\n\n| key | type | default | meaning |\n|---|---|---|---|\n",
		       hd_check_types[i]->name, hd_check_types[i]->summary);
		cfg_print_keys("", hd_check_types[i]->keys);
	}
}
