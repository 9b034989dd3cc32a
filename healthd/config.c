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

#include "alerts.h"

/* Where one node of the parsed tree sits in the file; cJSON keeps no positions, so a scanner records them. */
struct cfg_pos {
	const cJSON *node;
	const cJSON *parent;
	int index;
	int key_line, key_col;
	int line, col;
};

struct scanner {
	const char *s;
	size_t len, i;
	int line, col;
	struct cfg_ctx *ctx;
};

static void scan_value(struct scanner *sc, const cJSON *node, const cJSON *parent, int index, int kl, int kc);

static void scan_step(struct scanner *sc)
{
	if (sc->i >= sc->len)
		return;
	if (sc->s[sc->i] == '\n') {
		sc->line++;
		sc->col = 1;
	} else if (((unsigned char)sc->s[sc->i] & 0xC0) != 0x80) {
		sc->col++; /* columns count characters, not UTF-8 continuation bytes */
	}
	sc->i++;
}

static void scan_ws(struct scanner *sc)
{
	while (sc->i < sc->len && strchr(" \t\r\n", sc->s[sc->i]) != NULL && sc->s[sc->i] != '\0')
		scan_step(sc);
}

static void scan_string(struct scanner *sc)
{
	scan_step(sc); /* opening quote */
	while (sc->i < sc->len && sc->s[sc->i] != '"') {
		if (sc->s[sc->i] == '\\')
			scan_step(sc);
		scan_step(sc);
	}
	scan_step(sc); /* closing quote */
}

static void scan_scalar(struct scanner *sc)
{
	while (sc->i < sc->len && strchr(",]} \t\r\n", sc->s[sc->i]) == NULL)
		scan_step(sc);
}

static void record(struct cfg_ctx *ctx, const cJSON *node, const cJSON *parent, int index, int kl, int kc, int l, int c)
{
	if (ctx->n_pos == ctx->cap_pos) {
		ctx->cap_pos = ctx->cap_pos ? ctx->cap_pos * 2 : 64;
		ctx->pos = xrealloc(ctx->pos, ctx->cap_pos * sizeof(*ctx->pos));
	}
	ctx->pos[ctx->n_pos++] = (struct cfg_pos){node, parent, index, kl, kc, l, c};
}

static void scan_value(struct scanner *sc, const cJSON *node, const cJSON *parent, int index, int kl, int kc)
{
	const cJSON *child;
	int i = 0;

	scan_ws(sc);
	record(sc->ctx, node, parent, index, kl, kc, sc->line, sc->col);
	if (cJSON_IsObject(node)) {
		scan_step(sc); /* { */
		for (child = node->child; child != NULL; child = child->next, i++) {
			scan_ws(sc);
			int ckl = sc->line, ckc = sc->col;
			scan_string(sc);
			scan_ws(sc);
			scan_step(sc); /* : */
			scan_value(sc, child, node, i, ckl, ckc);
			scan_ws(sc);
			scan_step(sc); /* , or } */
		}
		if (node->child == NULL) {
			scan_ws(sc);
			scan_step(sc);
		}
	} else if (cJSON_IsArray(node)) {
		scan_step(sc); /* [ */
		for (child = node->child; child != NULL; child = child->next, i++) {
			scan_value(sc, child, node, i, 0, 0);
			scan_ws(sc);
			scan_step(sc); /* , or ] */
		}
		if (node->child == NULL) {
			scan_ws(sc);
			scan_step(sc);
		}
	} else if (cJSON_IsString(node)) {
		scan_string(sc);
	} else {
		scan_scalar(sc);
	}
}

static const struct cfg_pos *find_pos(const struct cfg_ctx *ctx, const cJSON *node)
{
	for (size_t i = 0; i < ctx->n_pos; i++)
		if (ctx->pos[i].node == node)
			return &ctx->pos[i];
	return NULL;
}

static void build_path(const struct cfg_ctx *ctx, const cJSON *node, char *buf, size_t len, size_t *used)
{
	const struct cfg_pos *p = find_pos(ctx, node);
	const cJSON *name;

	if (p == NULL || p->parent == NULL)
		return;
	build_path(ctx, p->parent, buf, len, used);
	if (cJSON_IsObject(p->parent)) {
		hd_appendf(buf, len, used, "%s%s", *used ? "." : "", node->string);
	} else {
		name = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, "name") : NULL;
		if (cJSON_IsString(name))
			hd_appendf(buf, len, used, "[\"%s\"]", name->valuestring);
		else
			hd_appendf(buf, len, used, "[%d]", p->index);
	}
}

const char *cfg_path(struct cfg_ctx *ctx, const cJSON *node, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	build_path(ctx, node, buf, len, &used);
	return buf;
}

static char *vformat_at(struct cfg_ctx *ctx, const cJSON *node, bool at_key, const char *fmt, va_list ap)
{
	const struct cfg_pos *p = node ? find_pos(ctx, node) : NULL;
	char path[256], msg[768];
	int line = 1, col = 1;

	if (p != NULL) {
		line = at_key && p->key_line ? p->key_line : p->line;
		col = at_key && p->key_line ? p->key_col : p->col;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	cfg_path(ctx, node, path, sizeof(path));
	if (path[0] != '\0')
		return xasprintf("%s:%d:%d: %s: %s", ctx->file, line, col, path, msg);
	return xasprintf("%s:%d:%d: %s", ctx->file, line, col, msg);
}

int cfg_error(struct cfg_ctx *ctx, const cJSON *node, bool at_key, const char *fmt, ...)
{
	va_list ap;

	if (ctx->error != NULL)
		return -1;
	va_start(ap, fmt);
	ctx->error = vformat_at(ctx, node, at_key, fmt, ap);
	va_end(ap);
	return -1;
}

void cfg_warn(struct cfg_ctx *ctx, const cJSON *node, const char *fmt, ...)
{
	va_list ap;

	ctx->warnings = xrealloc(ctx->warnings, (ctx->n_warnings + 1) * sizeof(char *));
	va_start(ap, fmt);
	ctx->warnings[ctx->n_warnings++] = vformat_at(ctx, node, true, fmt, ap);
	va_end(ap);
}

/* ---- files the configuration names, and digests of secrets ---- */

#define PASSWORD_FILE_MAX 4096
#define CONFIG_FILE_MAX (4 * 1024 * 1024)

static const char *file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a named pipe";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/*
 * Reads a whole regular file of at most max bytes, allocated by its size. O_NONBLOCK so that opening a named pipe
 * returns at once (then refused) instead of waiting for a writer. NULL with *why (static text, or strerror) on error.
 */
static char *read_regular_file(const char *path, size_t max, size_t *len_out, mode_t *mode_out, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t used = 0, cap;
	struct stat st = {0};
	char *buf;

	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why = S_ISREG(st.st_mode) || st.st_mode == 0 ? strerror(errno) : file_kind(st.st_mode);
		close(fd);
		return NULL;
	}
	if (st.st_size > 0 && (uint64_t)st.st_size > max) {
		close(fd);
		*why = "too large";
		return NULL;
	}
	cap = (st.st_size > 0 ? (size_t)st.st_size : 64) + 2; /* + 1: EOF is seen without growing */
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;
		if (used + 1 == cap) { /* the file grew, or its size was not known (0 in /proc) */
			if (cap > max + 1)
				break;
			cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + used, cap - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			explicit_bzero(buf, used);
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	if (used > max) {
		explicit_bzero(buf, used);
		free(buf);
		*why = "too large";
		return NULL;
	}
	buf[used] = '\0';
	*len_out = used;
	if (mode_out)
		*mode_out = st.st_mode;
	return buf;
}

static void strip_newline(char *s, size_t *len)
{
	if (*len > 0 && s[*len - 1] == '\n')
		s[--*len] = '\0';
	if (*len > 0 && s[*len - 1] == '\r')
		s[--*len] = '\0';
}

/* With --no-secrets: remember what would have been opened, so that --check-config can say so. */
static bool skip_file(struct cfg_ctx *ctx, const char *path)
{
	if (!ctx->opts->no_files)
		return false;
	ctx->unopened = xrealloc(ctx->unopened, (ctx->n_unopened + 1) * sizeof(char *));
	ctx->unopened[ctx->n_unopened++] = xstrdup(path);
	return true;
}

static void tell_open(struct cfg_ctx *ctx, const char *path)
{
	if (ctx->opts->on_open)
		ctx->opts->on_open(path, ctx->opts->on_open_arg);
}

/* SipHash-2-4 (Aumasson and Bernstein), keyed once per process from getrandom(). */
#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                                   \
	do {                                                                                       \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);                      \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                                           \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                                           \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);                      \
	} while (0)

static uint64_t siphash24(const uint64_t key[2], const unsigned char *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, full = len - len % 8;

	for (i = 0; i < full; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = (m << 8) | in[i + (size_t)j];
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; j < len % 8; j++)
		b |= (uint64_t)in[full + j] << (8 * j);
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t digest_keys[4];
static pthread_once_t digest_keys_once = PTHREAD_ONCE_INIT;

static void init_digest_keys(void)
{
	if (getrandom(digest_keys, sizeof(digest_keys), 0) != (ssize_t)sizeof(digest_keys))
		hd_fatal("getrandom: %s", strerror(errno));
}

void cfg_secret_digest(const void *data, size_t len, char out[33])
{
	pthread_once(&digest_keys_once, init_digest_keys);
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)siphash24(&digest_keys[0], data, len),
		 (unsigned long long)siphash24(&digest_keys[2], data, len));
}

char *cfg_read_password_file(struct cfg_ctx *ctx, struct hd_check_conf *conf, const char *path)
{
	const cJSON *node = cJSON_GetObjectItemCaseSensitive(ctx->check_node, "password_file");
	char digest[33], *secret;
	const char *why = NULL;
	mode_t mode = 0;
	size_t len = 0;

	if (node == NULL)
		node = ctx->check_node;
	if (skip_file(ctx, path))
		return xstrdup("(not read: --no-secrets)");
	tell_open(ctx, path);
	secret = read_regular_file(path, PASSWORD_FILE_MAX + 2, &len, &mode, &why); /* + CR LF */
	if (secret == NULL && strcmp(why, "too large") != 0) {
		cfg_error(ctx, node, false, "cannot read the password file %s: %s", path, why);
		return NULL;
	}
	if (secret != NULL)
		strip_newline(secret, &len);
	if (secret == NULL || len == 0 || len > PASSWORD_FILE_MAX || memchr(secret, '\0', len) != NULL) {
		cfg_error(ctx, node, false, secret == NULL || len > PASSWORD_FILE_MAX
			  ? "the password file %s holds more than 4096 bytes: not a password"
			  : len == 0 ? "the password file %s is empty" : "the password file %s holds a NUL byte", path);
		if (secret != NULL)
			explicit_bzero(secret, len);
		free(secret);
		return NULL;
	}
	if (mode & S_IROTH)
		cfg_warn(ctx, node, "the password file %s is readable by everyone (mode %03o): chmod 600 "
			 "(or 640 with the daemon's group)", path, (unsigned)(mode & 0777));
	cfg_secret_digest(secret, len, digest);
	free(conf->fingerprint);
	conf->fingerprint = xasprintf("password_file:%s", digest);
	return secret;
}

char *cfg_read_named_file(struct cfg_ctx *ctx, const cJSON *node, const char *what, const char *path, size_t max)
{
	const char *why = NULL;
	size_t len = 0;
	char *text;

	if (skip_file(ctx, path))
		return xstrdup("(not read: --no-secrets)");
	tell_open(ctx, path);
	text = read_regular_file(path, max + 2, &len, NULL, &why);
	if (text != NULL)
		strip_newline(text, &len);
	if (text == NULL || len > max) {
		if (text != NULL)
			explicit_bzero(text, len);
		free(text);
		if (text != NULL || strcmp(why, "too large") == 0)
			cfg_error(ctx, node, false, "the %s %s holds more than %zu bytes", what, path, max);
		else
			cfg_error(ctx, node, false, "cannot read the %s %s: %s", what, path, why);
		return NULL;
	}
	return text;
}

int cfg_check_named_file(struct cfg_ctx *ctx, const cJSON *node, const char *what, const char *path)
{
	struct stat st;

	if (skip_file(ctx, path))
		return 0;
	tell_open(ctx, path);
	if (stat(path, &st) < 0 || access(path, R_OK) < 0)
		return cfg_error(ctx, node, false, "cannot read the %s %s: %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cfg_error(ctx, node, false, "cannot read the %s %s: %s", what, path, file_kind(st.st_mode));
	return 0;
}

/* ---- the generic key reader ---- */

static const char *json_type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	return "an object";
}

/* Keys whose values are secrets: no message ever quotes them (their key path says where). */
static bool is_secret_key(const char *key)
{
	return key != NULL && (strcmp(key, "password") == 0 || strcmp(key, "token") == 0 || strcmp(key, "secret") == 0);
}

/* Like json_type_name, but shows a string's text: "3306" in quotes is the usual slip for a number. */
static const char *describe_value(const cJSON *v, char *buf, size_t len)
{
	if (!cJSON_IsString(v) || is_secret_key(v->string))
		return json_type_name(v);
	snprintf(buf, len, "a string (\"%.40s%s\")", v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
	return buf;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

static void list_keys(const struct cfg_table_ref *tables, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t t = 0; t < n; t++)
		for (const struct cfg_key *k = tables[t].keys; k->name; k++)
			hd_appendf(buf, len, &used, "%s%s", used ? ", " : "", k->name);
}

static int unknown_key(struct cfg_ctx *ctx, const cJSON *item, const struct cfg_table_ref *tables, size_t n)
{
	const char *best = NULL;
	size_t best_d = 3;
	char all[512];

	for (size_t t = 0; t < n; t++)
		for (const struct cfg_key *k = tables[t].keys; k->name; k++) {
			size_t d = edit_distance(item->string, k->name);
			if (d < best_d) {
				best_d = d;
				best = k->name;
			}
		}
	if (best != NULL)
		return cfg_error(ctx, item, true, "unknown key \"%s\" (did you mean \"%s\"?)", item->string, best);
	list_keys(tables, n, all, sizeof(all));
	return cfg_error(ctx, item, true, "unknown key \"%s\" (expected one of: %s)", item->string, all);
}

static void set_default(const struct cfg_key *k, void *dst)
{
	char *field = (char *)dst + k->offset;

	switch (k->type) {
	case CFG_INT:
		*(int *)field = k->def ? atoi(k->def) : 0;
		break;
	case CFG_BOOL:
		*(bool *)field = k->def && strcmp(k->def, "true") == 0;
		break;
	case CFG_ENUM:
		*(int *)field = 0;
		for (int i = 0; k->def && k->choices[i]; i++)
			if (strcmp(k->choices[i], k->def) == 0)
				*(int *)field = i;
		break;
	case CFG_STRING:
	case CFG_HOSTPORT:
	case CFG_PATH:
		*(char **)field = k->def ? xstrdup(k->def) : NULL;
		break;
	case CFG_STRMAP:
		*(char ***)field = NULL;
		break;
	case CFG_CUSTOM:
		break; /* the destination starts zeroed; parse() sets it */
	}
}

static int read_strmap(struct cfg_ctx *ctx, const cJSON *v, char ***out)
{
	size_t n = 0;
	const cJSON *h;
	char **list;

	if (!cJSON_IsObject(v))
		return cfg_error(ctx, v, false, "expected an object of \"Name\": \"value\" strings, got %s", json_type_name(v));
	cJSON_ArrayForEach(h, v) n++;
	list = xcalloc(n + 1, sizeof(char *));
	n = 0;
	cJSON_ArrayForEach(h, v) {
		if (!cJSON_IsString(h) || strpbrk(h->string, ":\r\n") || strpbrk(h->valuestring, "\r\n")) {
			for (size_t i = 0; i < n; i++)
				free(list[i]);
			free(list);
			return cfg_error(ctx, h, false, "expected a one-line string value for a header name without ':'");
		}
		list[n++] = xasprintf("%s: %s", h->string, h->valuestring);
	}
	*out = list;
	return 0;
}

const char *const hd_reserved_labels[] = {"alertname", "instance", "node", "job", "check", "kind", "severity", NULL};

/* The most labels one object may hold, and the longest value: an alert's labels are its identity, not a payload. */
#define MAX_LABELS 32
#define MAX_LABEL_VALUE 256

static bool valid_label_name(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* No control characters: a label value ends up in logs, chat messages and Alertmanager's UI. */
static bool printable_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

void cfg_release_labels(void *field)
{
	struct hd_labels *l = field;

	for (size_t i = 0; i < l->n; i++) {
		free(l->names[i]);
		free(l->values[i]);
	}
	free(l->names);
	free(l->values);
	*l = (struct hd_labels){0};
}

int cfg_read_labels(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	struct hd_labels *l = field;
	const cJSON *item;
	size_t n = 0;

	if (!cJSON_IsObject(node))
		return cfg_error(ctx, node, false, "expected an object of \"name\": \"value\" labels, got %s",
				 json_type_name(node));
	cJSON_ArrayForEach(item, node) n++;
	if (n > MAX_LABELS)
		return cfg_error(ctx, node, false, "at most %d labels, got %zu", MAX_LABELS, n);
	l->names = xcalloc(n + 1, sizeof(char *));
	l->values = xcalloc(n + 1, sizeof(char *));
	cJSON_ArrayForEach(item, node) {
		const char *name = item->string, *value = item->valuestring;

		if (!valid_label_name(name))
			return cfg_error(ctx, item, true,
					 "\"%.64s\" is not a valid label name (letters, digits and '_', not starting with a digit)",
					 name);
		if (strncmp(name, "__", 2) == 0)
			return cfg_error(ctx, item, true, "label names starting with \"__\" are reserved (Prometheus)");
		for (size_t i = 0; hd_reserved_labels[i]; i++)
			if (strcmp(name, hd_reserved_labels[i]) == 0)
				return cfg_error(ctx, item, true,
						 "label \"%s\" is set by healthd and cannot be configured (its own labels: alertname, "
						 "instance, node, job, check, kind, severity; `alerts.job` sets job)",
						 name);
		if (!cJSON_IsString(item) || value[0] == '\0')
			return cfg_error(ctx, item, false, "expected a non-empty string (Alertmanager drops empty labels), got %s",
					 cJSON_IsString(item) ? "an empty string" : json_type_name(item));
		if (strlen(value) > MAX_LABEL_VALUE || !printable_line(value))
			return cfg_error(ctx, item, false, "expected one line of at most %d bytes", MAX_LABEL_VALUE);
		l->names[l->n] = xstrdup(name);
		l->values[l->n] = xstrdup(value);
		l->n++;
	}
	return 0;
}

static int read_value(struct cfg_ctx *ctx, const cJSON *v, const struct cfg_key *k, void *dst)
{
	char *field = (char *)dst + k->offset;
	char host[256], shown[64];
	const char *why;
	int port;

	if (k->parse != NULL)
		return k->parse(ctx, v, field);
	switch (k->type) {
	case CFG_INT: {
		double d = v->valuedouble;
		if (!cJSON_IsNumber(v))
			return cfg_error(ctx, v, false, "expected an integer from %lld to %lld, got %s", k->min, k->max,
					 describe_value(v, shown, sizeof(shown)));
		if (d != floor(d) || d < (double)k->min || d > (double)k->max)
			return cfg_error(ctx, v, false, "expected an integer from %lld to %lld, got %g", k->min, k->max, d);
		*(int *)field = (int)d;
		return 0;
	}
	case CFG_BOOL:
		if (!cJSON_IsBool(v))
			return cfg_error(ctx, v, false, "expected true or false, got %s", describe_value(v, shown, sizeof(shown)));
		*(bool *)field = cJSON_IsTrue(v);
		return 0;
	case CFG_ENUM:
		if (cJSON_IsString(v))
			for (int i = 0; k->choices[i]; i++)
				if (strcmp(k->choices[i], v->valuestring) == 0) {
					*(int *)field = i;
					return 0;
				}
		{
			char all[256];
			size_t used = 0;
			all[0] = '\0';
			for (int i = 0; k->choices[i]; i++)
				hd_appendf(all, sizeof(all), &used, "%s\"%s\"", i ? ", " : "", k->choices[i]);
			return cfg_error(ctx, v, false, "expected one of %s, got %s%s%s", all,
					 cJSON_IsString(v) ? "\"" : json_type_name(v), cJSON_IsString(v) ? v->valuestring : "",
					 cJSON_IsString(v) ? "\"" : "");
		}
	case CFG_STRING:
		if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
			return cfg_error(ctx, v, false, "expected a non-empty string, got %s",
					 cJSON_IsString(v) ? "an empty string" : json_type_name(v));
		free(*(char **)field);
		*(char **)field = xstrdup(v->valuestring);
		return 0;
	case CFG_HOSTPORT:
		if (!cJSON_IsString(v))
			return cfg_error(ctx, v, false, "expected \"ADDR:PORT\", got %s", json_type_name(v));
		if (hd_split_hostport(v->valuestring, host, sizeof(host), &port, &why) < 0)
			return cfg_error(ctx, v, false, "%s, got \"%s\"", why, v->valuestring);
		free(*(char **)field);
		*(char **)field = xstrdup(v->valuestring);
		return 0;
	case CFG_STRMAP:
		return read_strmap(ctx, v, (char ***)field);
	case CFG_PATH:
		if (!cJSON_IsString(v) || v->valuestring[0] != '/')
			return cfg_error(ctx, v, false, "expected an absolute path (starting with /), got %s%s%s",
					 cJSON_IsString(v) ? "\"" : json_type_name(v), cJSON_IsString(v) ? v->valuestring : "",
					 cJSON_IsString(v) ? "\"" : "");
		free(*(char **)field);
		*(char **)field = xstrdup(v->valuestring);
		return 0;
	case CFG_CUSTOM:
		return -1; /* its parse() ran above */
	}
	return -1;
}

int cfg_read_object(struct cfg_ctx *ctx, const cJSON *obj, const struct cfg_table_ref *tables, size_t n)
{
	const cJSON *item, *prev;

	if (!cJSON_IsObject(obj))
		return cfg_error(ctx, obj, false, "expected an object, got %s", json_type_name(obj));
	for (size_t t = 0; t < n; t++)
		for (const struct cfg_key *k = tables[t].keys; k->name; k++)
			set_default(k, tables[t].dst);
	cJSON_ArrayForEach(item, obj) {
		const struct cfg_key *found = NULL;
		void *dst = NULL;

		for (prev = obj->child; prev != item; prev = prev->next)
			if (strcmp(prev->string, item->string) == 0)
				return cfg_error(ctx, item, true, "duplicate key \"%s\"", item->string);
		for (size_t t = 0; t < n && !found; t++)
			for (const struct cfg_key *k = tables[t].keys; k->name; k++)
				if (strcmp(k->name, item->string) == 0) {
					found = k;
					dst = tables[t].dst;
					break;
				}
		if (found == NULL)
			return unknown_key(ctx, item, tables, n);
		if (read_value(ctx, item, found, dst) < 0)
			return -1;
	}
	for (size_t t = 0; t < n; t++)
		for (const struct cfg_key *k = tables[t].keys; k->name; k++)
			if (k->required && cJSON_GetObjectItemCaseSensitive(obj, k->name) == NULL)
				return cfg_error(ctx, obj, false, "missing required key \"%s\" (%s)", k->name, k->help);
	return 0;
}

void cfg_free_table(const struct cfg_key *keys, void *dst)
{
	for (const struct cfg_key *k = keys; k->name; k++) {
		char *field = (char *)dst + k->offset;
		/* Strings are wiped before they are freed: some are passwords or header values (tokens). */
		if (k->type == CFG_STRING || k->type == CFG_HOSTPORT || k->type == CFG_PATH) {
			char *str = *(char **)field;
			if (str != NULL)
				explicit_bzero(str, strlen(str));
			free(str);
			*(char **)field = NULL;
		} else if (k->type == CFG_STRMAP) {
			char **list = *(char ***)field;
			for (size_t i = 0; list && list[i]; i++) {
				explicit_bzero(list[i], strlen(list[i]));
				free(list[i]);
			}
			free(list);
			*(char ***)field = NULL;
		} else if (k->type == CFG_CUSTOM && k->release) {
			k->release(field);
		}
	}
}

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
				 json_type_name(node));
	cJSON_ArrayForEach(item, node) n++;
	free(l->v);
	l->v = xcalloc(n + 1, sizeof(*l->v));
	l->n = 0;
	l->set = true;
	cJSON_ArrayForEach(item, node) {
		const char *why;
		if (!cJSON_IsString(item))
			return cfg_error(ctx, item, false, "expected an address range as a string, got %s", json_type_name(item));
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
		return cfg_error(ctx, obj, false, "expected a check object, got %s", json_type_name(obj));
	if (type_node == NULL)
		return cfg_error(ctx, obj, false, "missing required key \"type\" (one of: %s)", type_names(all, sizeof(all)));
	if (!cJSON_IsString(type_node))
		return cfg_error(ctx, type_node, false, "expected a check type name, got %s", json_type_name(type_node));
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
		return cfg_error(ctx, arr, false, "expected an array of check objects, got %s", json_type_name(arr));
	cfg->checks = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*cfg->checks));
	cJSON_ArrayForEach(item, arr) {
		if (parse_check(ctx, item, &cfg->defaults, &cfg->checks[n]) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (strcmp(cfg->checks[i]->name, cfg->checks[n]->name) == 0) {
				const cJSON *first = cJSON_GetArrayItem(arr, (int)i);
				const struct cfg_pos *first_pos = find_pos(ctx, first);
				free_check_conf(cfg->checks[n]);
				cfg->checks[n] = NULL;
				return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(item, "name"), false,
						 "duplicate check name \"%s\" (checks[%zu], line %d, has it too)",
						 cJSON_GetObjectItemCaseSensitive(item, "name")->valuestring, i,
						 first_pos ? first_pos->line : 0);
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
		set_default(k, cfg);
		if (v != NULL && read_value(ctx, v, k, cfg) < 0)
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
		cfg_error(ctx, root, false, "expected a JSON object at the top, got %s", json_type_name(root));
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
			unknown_key(ctx, item, &top_level, 1);
			goto fail;
		}
	}
	/* Every section is read, present or not, so that its defaults apply. */
	static const cJSON empty = {.type = cJSON_Object};
#define SECTION(name) (cJSON_GetObjectItemCaseSensitive(root, name) ?: &empty)
	if ((item = cJSON_GetObjectItemCaseSensitive(root, "node_name")) != NULL) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0') {
			cfg_error(ctx, item, false, "expected a non-empty string, got %s", json_type_name(item));
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

static void line_col_at(const char *text, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < at && *p; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)*p & 0xC0) != 0x80) {
			(*col)++;
		}
	}
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
		line_col_at(text, next, &line, &col);
		return xasprintf("%s:%d:%d: invalid JSON: more text after the end of the top-level object", file, line, col);
	}
	if (only_space_after(failed_at, text + len)) {
		line_col_at(text, text + len, &line, &col);
		return xasprintf("%s:%d:%d: invalid JSON: the text ends too early (an unclosed { [ or \"?)", file, line, col);
	}
	line_col_at(text, failed_at, &line, &col);
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
	{
		struct scanner sc = {.s = text, .len = len, .line = 1, .col = 1, .ctx = &ctx};
		scan_value(&sc, root, NULL, 0, 0, 0);
	}
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

struct hd_config *config_load_opts(const char *path, const struct hd_config_opts *opts, char **error)
{
	const char *why = NULL;
	struct hd_config *cfg;
	size_t len = 0;
	char *text;

	if (opts != NULL && opts->on_open != NULL)
		opts->on_open(path, opts->on_open_arg);
	text = read_regular_file(path, CONFIG_FILE_MAX, &len, NULL, &why);
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
	alerts_free_config(cfg->alerts);
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

void cfg_print_keys(const char *section, const struct cfg_key *keys)
{
	for (const struct cfg_key *k = keys; k->name; k++) {
		static const char *const tnames[] = {"integer", "boolean", "string", "one of", "\"ADDR:PORT\"",
						      "object of strings",
						      "absolute path"};
		char type[160];
		if (k->type == CFG_ENUM) {
			size_t used = 0;
			type[0] = '\0';
			for (int i = 0; k->choices[i]; i++)
				hd_appendf(type, sizeof(type), &used, "%s`%s`", i ? " \\| " : "", k->choices[i]);
		} else if (k->type == CFG_INT) {
			snprintf(type, sizeof(type), "integer %lld..%lld", k->min, k->max);
		} else if (k->type == CFG_CUSTOM) {
			hd_strlcpy(type, k->type_doc ? k->type_doc : "see below", sizeof(type));
		} else {
			hd_strlcpy(type, tnames[k->type], sizeof(type));
		}
		printf("| `%s%s%s` | %s | %s | %s |\n", section, section[0] ? "." : "", k->name, type,
		       k->required ? "**required**" : k->def ? k->def : "-", k->help);
	}
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
