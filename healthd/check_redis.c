/* check_redis.c: the redis check: resolve, connect, [AUTH], [SELECT], PING, [INFO replication], QUIT, with hiredis async. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "check_redis.h"
#include "config.h"
#include "resolve.h"

#define SERVER_TEXT_MAX 240 /* of a server's message in a detail; the detail itself holds 384 */
#define REDACT_PREFIX_MIN 8 /* a password cut short is still hidden from this many bytes on */

enum redis_role { ROLE_ANY, ROLE_MASTER, ROLE_REPLICA };

struct redis_conf {
	char *host;
	int port;
	char *username;
	char *password; /* from "password", or what validate() read from password_file */
	char *password_file;
	int db;
	int expect_role; /* enum redis_role */
};

/* The conversation, in order; steps that the configuration does not ask for are skipped. */
enum redis_step { STEP_AUTH, STEP_SELECT, STEP_PING, STEP_ROLE, STEP_DONE };

/*
 * One attempt. hiredis reaches it only through ac->data (never a command's privdata): clearing ac->data before
 * the context goes away makes every late callback (NULL replies while freeing, the disconnect callback) a no-op.
 */
struct redis_attempt {
	struct hd_check_run *run;
	const struct redis_conf *conf;
	struct hd_resolve *resolve;
	redisAsyncContext *ac;
	enum redis_step step;
};

static const char *const role_names[] = {"any", "master", "replica", NULL};

static const struct cfg_key redis_keys[] = {
	{"host", CFG_STRING, offsetof(struct redis_conf, host), true, 0, 0, NULL, NULL,
	 "name or IP address; names are resolved again on every attempt"},
	{"port", CFG_INT, offsetof(struct redis_conf, port), false, 1, 65535, "6379", NULL, "TCP port"},
	{"username", CFG_STRING, offsetof(struct redis_conf, username), false, 0, 0, NULL, NULL,
	 "ACL user (Redis 6+): sends AUTH username password; needs password or password_file"},
	{"password", CFG_STRING, offsetof(struct redis_conf, password), false, 0, 0, NULL, NULL,
	 "sends AUTH first; never shown in /health or the log (prefer password_file)"},
	{"password_file", CFG_STRING, offsetof(struct redis_conf, password_file), false, 0, 0, NULL, NULL,
	 "file holding the password (one trailing newline stripped), read when the configuration is loaded"},
	{"db", CFG_INT, offsetof(struct redis_conf, db), false, 0, 1000000, "0", NULL,
	 "database number: SELECT it before PING (0 sends no SELECT)"},
	{"expect_role", CFG_ENUM, offsetof(struct redis_conf, expect_role), false, 0, 0, "any", role_names,
	 "`master` or `replica`: compares the `role:` line of INFO replication (kind threshold when it differs)"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

/* ---- configuration ---- */

static const cJSON *check_key_node(struct cfg_ctx *ctx, const char *key)
{
	const cJSON *node = ctx->check_node ? cJSON_GetObjectItemCaseSensitive(ctx->check_node, key) : NULL;

	return node ? node : ctx->check_node;
}

static int redis_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	struct redis_conf *rc = conf->type_conf;

	if (rc->password != NULL && rc->password_file != NULL)
		return cfg_error(ctx, check_key_node(ctx, "password_file"), true,
				 "give either password or password_file, not both");
	if (rc->password_file != NULL && (rc->password = cfg_read_password_file(ctx, conf, rc->password_file)) == NULL)
		return -1;
	if (rc->username != NULL && rc->password == NULL)
		return cfg_error(ctx, check_key_node(ctx, "username"), true,
				 "username needs password or password_file (AUTH username password)");
	conf->target = hd_join_hostport(rc->host, rc->port);
	return 0;
}

static void redis_free_conf(void *type_conf)
{
	struct redis_conf *rc = type_conf;

	if (rc->password != NULL) /* the generic free releases it; leave no copy in freed memory */
		explicit_bzero(rc->password, strlen(rc->password));
}

/* ---- texts for people ---- */

/* How much of secret starts at text (up to len bytes). */
static size_t secret_prefix_at(const char *text, size_t len, const char *secret, size_t secret_len)
{
	size_t m = 0;

	while (m < secret_len && m < len && text[m] == secret[m])
		m++;
	return m;
}

void redis_server_text(char *out, size_t outlen, const char *text, size_t len, const char *secret)
{
	size_t secret_len = secret ? strlen(secret) : 0, used = 0;
	char piece[8];

	for (size_t i = 0; i < len;) {
		unsigned char ch = (unsigned char)text[i];
		size_t n, m = secret_len ? secret_prefix_at(text + i, len - i, secret, secret_len) : 0;
		/* All of it, or a long start of it: Redis cuts echoed arguments to about 128 bytes. */
		if (m > 0 && (m == secret_len || m >= REDACT_PREFIX_MIN)) {
			hd_strlcpy(piece, "***", sizeof(piece));
			i += m;
		} else {
			if (ch == '\r' || ch == '\n')
				hd_strlcpy(piece, " ", sizeof(piece));
			else if (ch < 0x20 || ch == 0x7f)
				snprintf(piece, sizeof(piece), "\\x%02x", ch);
			else
				snprintf(piece, sizeof(piece), "%c", ch);
			i++;
		}
		n = strlen(piece);
		if (used + n + 4 > outlen) { /* room for "..." and the NUL */
			hd_strlcpy(out + used, "...", outlen - used);
			return;
		}
		memcpy(out + used, piece, n);
		used += n;
	}
	while (used > 0 && out[used - 1] == ' ') /* "-ERR ...\r\n" leaves a trailing blank */
		used--;
	out[used] = '\0';
}

static const char *reply_type_name(int type)
{
	switch (type) {
	case REDIS_REPLY_STRING:
		return "a bulk string";
	case REDIS_REPLY_ARRAY:
		return "an array";
	case REDIS_REPLY_INTEGER:
		return "an integer";
	case REDIS_REPLY_NIL:
		return "nil";
	case REDIS_REPLY_STATUS:
		return "a status";
	case REDIS_REPLY_ERROR:
		return "an error";
	default:
		return "an unknown reply";
	}
}

static const char *step_command(enum redis_step step)
{
	switch (step) {
	case STEP_AUTH:
		return "AUTH";
	case STEP_SELECT:
		return "SELECT";
	case STEP_PING:
		return "PING";
	case STEP_ROLE:
		return "INFO replication";
	default:
		return "QUIT";
	}
}

/* The attempt's phase at a step; the step's name stays in the detail ("select", "role"). */
static void set_step_phase(struct hd_check_run *run, enum redis_step step)
{
	switch (step) {
	case STEP_AUTH:
		hd_run_phase(run, HD_PHASE_AUTH, NULL);
		break;
	case STEP_SELECT:
		hd_run_phase(run, HD_PHASE_REQUEST, "select");
		break;
	case STEP_PING:
		hd_run_phase(run, HD_PHASE_REQUEST, "ping");
		break;
	case STEP_ROLE:
		hd_run_phase(run, HD_PHASE_REQUEST, "role");
		break;
	default:
		hd_run_phase(run, HD_PHASE_CLOSE, "quit");
		break;
	}
}

/* hiredis reports socket errors as strerror() text only: find which errno it was to pick the kind. */
static enum hd_kind kind_from_io_text(const char *text)
{
	static const int errnos[] = {ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN,
				     ENETDOWN,     EADDRNOTAVAIL, ETIMEDOUT, EPIPE};

	for (size_t i = 0; i < HD_ARRAY_LEN(errnos); i++)
		if (strstr(text, strerror(errnos[i])) != NULL)
			return errnos[i] == EPIPE ? HD_KIND_REFUSED : hd_kind_from_errno(errnos[i]);
	return HD_KIND_ERROR;
}

/* An error reply that means "who you are" rather than "what state the server is in". */
static bool is_auth_error(const char *msg)
{
	return strncmp(msg, "NOAUTH", 6) == 0 || strncmp(msg, "WRONGPASS", 9) == 0 || strncmp(msg, "NOPERM", 6) == 0 ||
	       strstr(msg, "invalid password") != NULL || strstr(msg, "invalid username-password") != NULL;
}

static const char *auth_hint(const char *msg, const struct redis_conf *rc)
{
	if (strncmp(msg, "NOAUTH", 6) == 0)
		return rc->password ? "" : " (the server requires a password: set password or password_file)";
	if (strncmp(msg, "NOPERM", 6) == 0)
		return " (the ACL user lacks this command: grant it, e.g. +ping +info +select)";
	if (strstr(msg, "without any password configured") != NULL)
		return " (the server has no password: remove password from the check, or set requirepass)";
	if (strstr(msg, "wrong number of arguments") != NULL && rc->username)
		return " (AUTH with a username needs Redis 6 or later)";
	return "";
}

/* ---- the attempt ---- */

static void send_step(struct redis_attempt *a);

/* Forgets the context: later callbacks see ac->data == NULL and do nothing. Does not free it. */
static redisAsyncContext *detach_context(struct redis_attempt *a)
{
	redisAsyncContext *ac = a->ac;

	if (ac != NULL)
		ac->data = NULL;
	a->ac = NULL;
	return ac;
}

static void attempt_free(struct redis_attempt *a)
{
	hd_resolve_cancel(a->resolve);
	a->resolve = NULL;
	if (a->ac != NULL)
		redisAsyncFree(detach_context(a)); /* pending callbacks run now with NULL replies, and return */
	a->run->state = NULL;
	free(a);
}

/*
 * Ends the attempt from inside a reply callback with the connection healthy: QUIT is written at once (the socket
 * takes a few bytes without blocking), then the context is freed as soon as hiredis leaves the callback.
 */
static void quit_and_release(struct redis_attempt *a)
{
	redisAsyncContext *ac = detach_context(a);
	int done = 0;

	if (ac == NULL)
		return;
	if (redisAsyncCommand(ac, NULL, NULL, "QUIT") == REDIS_OK)
		(void)redisBufferWrite(&ac->c, &done);
	redisAsyncFree(ac); /* deferred by hiredis until this callback returns */
}

/* The connection failed: hiredis frees the context itself, so only forget it. */
static void report_connection_error(struct redis_attempt *a, const redisAsyncContext *ac, const char *doing)
{
	struct hd_check_run *run = a->run;
	const char *errstr = ac->errstr ? ac->errstr : ac->c.errstr;
	int err = ac->err ? ac->err : ac->c.err;
	char text[SERVER_TEXT_MAX];
	enum hd_kind kind;
	const char *hint = "";

	redis_server_text(text, sizeof(text), errstr, strlen(errstr), a->conf->password);
	switch (err) {
	case REDIS_ERR_PROTOCOL:
		kind = HD_KIND_PROTOCOL;
		hint = " (this port does not speak Redis: another service, e.g. MySQL, which greets first?)";
		break;
	case REDIS_ERR_EOF:
		kind = HD_KIND_PROTOCOL;
		hint = " before answering (not Redis, or a proxy without a live backend?)";
		break;
	case REDIS_ERR_IO:
		kind = kind_from_io_text(errstr);
		if (kind == HD_KIND_REFUSED && strcmp(doing, "connect") == 0)
			hint = " (nothing listening, or a firewall REJECT)";
		else if (kind == HD_KIND_REFUSED)
			hint = " (the server dropped the connection: not Redis, or a proxy without a live backend?)";
		break;
	case REDIS_ERR_OTHER:
		kind = kind_from_io_text(errstr);
		break;
	default:
		kind = HD_KIND_ERROR;
		break;
	}
	if (text[0] == '\0')
		hd_strlcpy(text, "connection lost", sizeof(text));
	detach_context(a);
	attempt_free(a);
	hd_check_done(run, kind, "%s %s: %s%s", doing, run->peer, text, hint);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_attempt *a = ac->data;

	(void)status;
	if (a == NULL) /* ours already: freed on purpose, or after a result */
		return;
	/* Every step has a command in flight, whose NULL reply reports first; this is only a safety net. */
	report_connection_error(a, ac, step_command(a->step));
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_attempt *a = ac->data;

	if (a == NULL)
		return;
	if (status != REDIS_OK) {
		report_connection_error(a, ac, "connect"); /* hiredis frees the context after this returns */
		return;
	}
	hd_run_set_source(a->run, ac->c.fd);
	send_step(a); /* the first command goes out only now, so a failed connect has no callbacks pending */
}

bool redis_parse_role(const char *info, char *role, size_t rolelen, char *upstream, size_t uplen)
{
	char host[64] = "", port[16] = "", link[16] = "";
	bool found = false;
	const char *line = info;

	while (*line != '\0') {
		size_t n = strcspn(line, "\r\n"), klen, vlen;
		const char *colon = memchr(line, ':', n);
		char value[64];

		if (colon != NULL) {
			klen = (size_t)(colon - line);
			vlen = n - klen - 1 < sizeof(value) - 1 ? n - klen - 1 : sizeof(value) - 1;
			memcpy(value, colon + 1, vlen);
			value[vlen] = '\0';
			if (klen == 4 && strncmp(line, "role", klen) == 0) {
				hd_strlcpy(role, strcmp(value, "slave") == 0 ? "replica" : value, rolelen);
				found = true;
			} else if (klen == 11 && strncmp(line, "master_host", klen) == 0) {
				hd_strlcpy(host, value, sizeof(host));
			} else if (klen == 11 && strncmp(line, "master_port", klen) == 0) {
				hd_strlcpy(port, value, sizeof(port));
			} else if (klen == 18 && strncmp(line, "master_link_status", klen) == 0) {
				hd_strlcpy(link, value, sizeof(link));
			}
		}
		line += n;
		line += strspn(line, "\r\n");
	}
	if (host[0] != '\0')
		snprintf(upstream, uplen, " of %s:%s, link %s", host, port, link[0] ? link : "unknown");
	else
		upstream[0] = '\0';
	return found;
}

/* How an attempt ended, decided inside a reply callback and reported once hiredis is out of our hands. */
struct verdict {
	enum hd_kind kind;
	char detail[384];
};

static void set_verdict(struct verdict *v, enum hd_kind kind, const char *fmt, ...) HD_PRINTF(3, 4);
static void set_verdict(struct verdict *v, enum hd_kind kind, const char *fmt, ...)
{
	va_list ap;

	v->kind = kind;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

/* Judges one reply: true to go on with the next step, false with the verdict set. */
static bool judge_reply(const struct redis_attempt *a, const redisReply *r, struct verdict *v)
{
	const struct redis_conf *rc = a->conf;
	const char *cmd = step_command(a->step), *peer = a->run->peer;
	char text[SERVER_TEXT_MAX], role[32] = "", upstream[128];

	if (r->type == REDIS_REPLY_ERROR) {
		redis_server_text(text, sizeof(text), r->str, r->len, rc->password);
		set_verdict(v, a->step == STEP_AUTH || is_auth_error(r->str) ? HD_KIND_AUTH : HD_KIND_ERROR,
			    "%s %s%s%s: %s%s", cmd, peer, a->step == STEP_AUTH && rc->username ? " as " : "",
			    a->step == STEP_AUTH && rc->username ? rc->username : "", text, auth_hint(r->str, rc));
		return false;
	}
	switch (a->step) {
	case STEP_AUTH:
	case STEP_SELECT:
		if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
			return true;
		break;
	case STEP_PING:
		if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
			if (rc->expect_role != ROLE_ANY)
				return true;
			set_verdict(v, HD_KIND_OK, "PING %s: PONG", peer);
			return false;
		}
		break;
	case STEP_ROLE:
		if (r->type != REDIS_REPLY_STRING)
			break;
		if (!redis_parse_role(r->str, role, sizeof(role), upstream, sizeof(upstream)))
			set_verdict(v, HD_KIND_PROTOCOL, "%s %s: no role: line in the answer (not a Redis server?)", cmd, peer);
		else if (strcmp(role, role_names[rc->expect_role]) != 0)
			set_verdict(v, HD_KIND_THRESHOLD, "%s %s: role %s%s, expected %s", cmd, peer, role, upstream,
				    role_names[rc->expect_role]);
		else
			set_verdict(v, HD_KIND_OK, "PING %s: PONG, role %s%s", peer, role, upstream);
		return false;
	default:
		break;
	}
	if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING)
		redis_server_text(text, sizeof(text), r->str, r->len, rc->password);
	else
		text[0] = '\0';
	set_verdict(v, HD_KIND_PROTOCOL, "%s %s: unexpected answer: %s%s%s%s (not a Redis server?)", cmd, peer,
		    reply_type_name(r->type), text[0] ? " \"" : "", text, text[0] ? "\"" : "");
	return false;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_attempt *a = ac->data;
	struct hd_check_run *run;
	struct verdict v;

	(void)privdata;
	if (a == NULL) /* cancelled or already reported: the context is being freed */
		return;
	if (reply == NULL) { /* the connection failed; hiredis is freeing the context */
		report_connection_error(a, ac, step_command(a->step));
		return;
	}
	if (judge_reply(a, reply, &v)) {
		a->step++;
		send_step(a);
		return;
	}
	run = a->run;
	quit_and_release(a);
	attempt_free(a);
	hd_check_done(run, v.kind, "%s", v.detail);
}

/* Sends the command of the current step, skipping those not configured. */
static void send_step(struct redis_attempt *a)
{
	const struct redis_conf *rc = a->conf;
	int rv;

	if (a->step == STEP_AUTH && rc->password == NULL)
		a->step = STEP_SELECT;
	if (a->step == STEP_SELECT && rc->db == 0)
		a->step = STEP_PING;
	set_step_phase(a->run, a->step);
	switch (a->step) {
	case STEP_AUTH:
		rv = rc->username ? redisAsyncCommand(a->ac, on_reply, NULL, "AUTH %s %s", rc->username, rc->password)
				  : redisAsyncCommand(a->ac, on_reply, NULL, "AUTH %s", rc->password);
		break;
	case STEP_SELECT:
		rv = redisAsyncCommand(a->ac, on_reply, NULL, "SELECT %d", rc->db);
		break;
	case STEP_PING:
		rv = redisAsyncCommand(a->ac, on_reply, NULL, "PING");
		break;
	default:
		rv = redisAsyncCommand(a->ac, on_reply, NULL, "INFO replication");
		break;
	}
	if (rv != REDIS_OK) { /* only when hiredis is already tearing the connection down */
		struct hd_check_run *run = a->run;
		char cmd[32];
		hd_strlcpy(cmd, step_command(a->step), sizeof(cmd));
		detach_context(a);
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "%s %s: the connection is closing, cannot send", cmd, run->peer);
	}
}

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct redis_attempt *a = arg;
	struct hd_check_run *run = a->run;
	char ip[INET6_ADDRSTRLEN] = "";
	redisAsyncContext *ac;

	(void)salen;
	a->resolve = NULL;
	if (error != NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_DNS, "%s", error);
		return;
	}
	hd_run_phase(run, HD_PHASE_CONNECT, NULL);
	hd_run_set_peer(run, sa);
	hd_sockaddr_ip(sa, ip, sizeof(ip));
	/* An IP literal: hiredis' getaddrinfo() then never touches DNS, so this does not block. */
	ac = redisAsyncConnect(ip, a->conf->port);
	if (ac == NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "connect %s: hiredis could not allocate a context", run->peer);
		return;
	}
	if (ac->err) { /* failed at once (no route, no socket): the context is ours to free */
		char text[SERVER_TEXT_MAX];
		enum hd_kind kind = kind_from_io_text(ac->errstr);
		redis_server_text(text, sizeof(text), ac->errstr, strlen(ac->errstr), NULL);
		redisAsyncFree(ac);
		attempt_free(a);
		hd_check_done(run, kind, "connect %s: %s", run->peer, text);
		return;
	}
	a->ac = ac;
	ac->data = a;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (redisLibeventAttach(ac, run->base) != REDIS_OK) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "connect %s: cannot attach to the event loop", run->peer);
		return;
	}
	hd_run_set_source(run, ac->c.fd);
}

static void redis_start(struct hd_check_run *run)
{
	const struct redis_conf *rc = run->conf->type_conf;
	struct redis_attempt *a = xcalloc(1, sizeof(*a));

	a->run = run;
	a->conf = rc;
	a->step = STEP_AUTH;
	run->state = a;
	hd_resolve_begin(run, rc->host, rc->port, on_resolved, a, &a->resolve);
}

/* The deadline passed (or shutdown): never called from inside a hiredis callback, so freeing here is immediate. */
static void redis_cancel(struct hd_check_run *run)
{
	if (run->state)
		attempt_free(run->state);
}

const struct hd_check_type hd_check_redis = {
	.name = "redis",
	.summary = "AUTH (optional), SELECT (optional), PING answered PONG and, if asked, the expected role, within the deadline",
	.keys = redis_keys,
	.conf_size = sizeof(struct redis_conf),
	.validate = redis_validate,
	.start = redis_start,
	.cancel = redis_cancel,
	.free_conf = redis_free_conf,
};
