/* cfgkeys.c: the key-table reader every section and check type uses: typed keys, a value's file:line:col, errors
 * that name the key, secret files. */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

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
char *cfg_read_regular_file(const char *path, size_t max, size_t *len_out, mode_t *mode_out, const char **why)
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
	secret = cfg_read_regular_file(path, PASSWORD_FILE_MAX + 2, &len, &mode, &why); /* + CR LF */
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
	text = cfg_read_regular_file(path, max + 2, &len, NULL, &why);
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

#define CA_FILE_MAX (16 * 1024 * 1024)

int cfg_check_ca_file(struct cfg_ctx *ctx, const cJSON *node, const char *path)
{
	char *text, reason[160] = "";
	BIO *bio;
	X509 *x;
	int n = 0;
	unsigned long err;

	if (ctx->opts->no_files)
		return cfg_check_named_file(ctx, node, "CA file", path); /* noted as not opened */
	if (cfg_check_named_file(ctx, node, "CA file", path) < 0)
		return -1;
	text = hd_read_small_file(path, CA_FILE_MAX);
	if (text == NULL)
		return cfg_error(ctx, node, false, "cannot read the CA file %s: %s", path,
				 errno == EFBIG ? "over 16 MiB" : strerror(errno));
	ERR_clear_error();
	bio = BIO_new_mem_buf(text, -1);
	while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	err = ERR_peek_last_error();
	/* the end of the file is the one error that is not one */
	if (err != 0 && !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE && n > 0))
		ERR_error_string_n(err, reason, sizeof(reason));
	ERR_clear_error();
	BIO_free(bio);
	free(text);
	if (n == 0 && (!reason[0] || strstr(reason, "no start line")))
		return cfg_error(ctx, node, false,
				 "the CA file %s holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)", path);
	if (reason[0])
		return cfg_error(ctx, node, false, "the CA file %s: certificate %d is not a valid PEM certificate: %s",
				 path, n + 1, reason);
	return 0;
}

int cfg_parse_ca(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	if (!cJSON_IsString(node) || node->valuestring[0] == '\0')
		return cfg_error(ctx, node, false, "expected the path of a PEM file");
	if (cfg_check_ca_file(ctx, node, node->valuestring) < 0)
		return -1;
	free(*(char **)field);
	*(char **)field = xstrdup(node->valuestring);
	return 0;
}

/* ---- the generic key reader ---- */

const char *cfg_json_type_name(const cJSON *v)
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
		return cfg_json_type_name(v);
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

int cfg_unknown_key(struct cfg_ctx *ctx, const cJSON *item, const struct cfg_table_ref *tables, size_t n)
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
		return cfg_error(ctx, v, false, "expected an object of \"Name\": \"value\" strings, got %s", cfg_json_type_name(v));
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
				 cfg_json_type_name(node));
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
					 cJSON_IsString(item) ? "an empty string" : cfg_json_type_name(item));
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
					 cJSON_IsString(v) ? "\"" : cfg_json_type_name(v), cJSON_IsString(v) ? v->valuestring : "",
					 cJSON_IsString(v) ? "\"" : "");
		}
	case CFG_STRING:
		if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
			return cfg_error(ctx, v, false, "expected a non-empty string, got %s",
					 cJSON_IsString(v) ? "an empty string" : cfg_json_type_name(v));
		free(*(char **)field);
		*(char **)field = xstrdup(v->valuestring);
		return 0;
	case CFG_HOSTPORT:
		if (!cJSON_IsString(v))
			return cfg_error(ctx, v, false, "expected \"ADDR:PORT\", got %s", cfg_json_type_name(v));
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
					 cJSON_IsString(v) ? "\"" : cfg_json_type_name(v), cJSON_IsString(v) ? v->valuestring : "",
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
		return cfg_error(ctx, obj, false, "expected an object, got %s", cfg_json_type_name(obj));
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
			return cfg_unknown_key(ctx, item, tables, n);
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


void cfg_record_positions(struct cfg_ctx *ctx, const cJSON *root)
{
	struct scanner sc = {.s = ctx->text, .len = ctx->text_len, .line = 1, .col = 1, .ctx = ctx};

	scan_value(&sc, root, NULL, 0, 0, 0);
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

int cfg_line_of(const struct cfg_ctx *ctx, const cJSON *node)
{
	const struct cfg_pos *pos = find_pos(ctx, node);

	return pos ? pos->line : 0;
}

int cfg_read_key(struct cfg_ctx *ctx, const cJSON *v, const struct cfg_key *k, void *dst)
{
	set_default(k, dst);
	return v != NULL ? read_value(ctx, v, k, dst) : 0;
}
