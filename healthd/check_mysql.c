/* check_mysql.c: the mysql check: evdns, then MariaDB Connector/C's non-blocking API on the loop: connect, query, quit. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errmsg.h>
#include <errno.h>
#include <event2/event.h>
#include <mysql.h>
/*
 * Connector/C 3.3 has no call that returns the peer certificate (MARIADB_TLS_PEER_CERT_INFO came with 3.4): the
 * session's OpenSSL handle is reached through the structures of the headers libmariadb-dev installs (its pvio and
 * TLS container), and only when the library says it is built on OpenSSL.
 */
typedef unsigned char uchar;
#define HAVE_TLS 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <ma_pvio.h>
#pragma GCC diagnostic pop
#include <mysqld_error.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cert.h"
#include "check.h"
#include "check_mysql.h"
#include "config.h"
#include "resolve.h"

enum tls_mode { TLS_OFF, TLS_PREFERRED, TLS_REQUIRED };

struct mysql_conf {
	char *host;
	int port;
	char *user;
	char *password;
	char *password_file;
	char *database;
	char *query;
	int tls;
	char *ca;
	int min_cert_days;
	bool expect_read_only;
	int max_replication_lag_s;
	bool persistent;
	bool galera;
	bool available_when_donor;
	bool available_when_readonly;
	struct hd_mysql_expect expect_rows; /* a number N is "== N"; op HD_CMP_STRING: not given */
	char *expect_value;
	/* set by validate */
	struct hd_mysql_expect expect; /* expect_value parsed, when given */
	char *secret;         /* the password, inline or read from password_file; never printed */
	bool check_read_only; /* expect_read_only was given */
};

/* The non-blocking call now pending on a handle: the one whose _cont must be called next. */
enum mysql_op { OP_NONE, OP_CONNECT, OP_PING, OP_QUERY, OP_STORE, OP_NEXT_RESULT, OP_CLOSE };

/* One handle and the results its pending call writes into. */
struct mysql_call {
	MYSQL *m;
	enum mysql_op op;
	MYSQL *connect_ret;
	int int_ret;
	MYSQL_RES *res;
};

/* What an attempt runs, in order, once logged in. */
enum mysql_stage { STAGE_USER_QUERY, STAGE_READ_ONLY, STAGE_GALERA, STAGE_REPLICA, STAGE_REPLICA_LEGACY, STAGE_DONE };

/* What a check keeps across attempts. */
struct hd_persist {
	MYSQL *m; /* persistent: true: the idle, logged-in session, or NULL */
	char peer[64];
	char source_addr[64];
	struct mysql_attempt *drain; /* a timed-out login still completing in the background (at most one) */
	bool have_cert;              /* the certificate of the session's TLS handshake, when there was one */
	struct hd_cert_info cert;
};

/*
 * How long a login that outlived its attempt may go on in the background: MariaDB's and MySQL's default
 * connect_timeout, after which the server gives up on the login by itself.
 */
#define DRAIN_BUDGET_MS 10000

struct mysql_attempt {
	struct hd_check_run *run; /* NULL once draining */
	const struct mysql_conf *mc;
	struct event_base *base;
	struct hd_resolve *resolve;
	char ip[INET6_ADDRSTRLEN]; /* the host given to connect: the library reads it again after the greeting */
	struct event *ev;
	struct mysql_call call;
	enum mysql_stage stage;
	unsigned int result_sets; /* of the current statement */
	/* the first packet is judged by greeting_gate() before the library reads it */
	bool greeting_pending; /* a new connection whose greeting has not been judged yet */
	bool greeting_held;    /* the library's wait is held back until the greeting is whole */
	int library_wait;      /* what the library last asked to wait for (MYSQL_WAIT_*) */
	/* draining: the attempt was cancelled in the handshake and its login completes detached from it */
	struct hd_persist *drain_owner;
	int64_t drain_deadline_ms;
	double drain_started_ms;
	char name[64];
	/* the outcome, reported once the handle is closed (or kept) */
	enum hd_kind kind;
	bool failed;
	char detail[384];
	size_t detail_len;
};

static const char *const tls_modes[] = {"off", "preferred", "required", NULL};

static int parse_expect_rows(struct cfg_ctx *ctx, const cJSON *node, void *field);

static const struct cfg_key mysql_keys[] = {
	{"host", CFG_STRING, offsetof(struct mysql_conf, host), true, 0, 0, NULL, NULL,
	 "name or IP address of the server, always reached over TCP; names are resolved again for every new connection"},
	{"port", CFG_INT, offsetof(struct mysql_conf, port), false, 1, 65535, "3306", NULL, "TCP port"},
	{"user", CFG_STRING, offsetof(struct mysql_conf, user), true, 0, 0, NULL, NULL,
	 "the check's login; GRANT USAGE is enough (REPLICA MONITOR too with max_replication_lag_s)"},
	{"password", CFG_STRING, offsetof(struct mysql_conf, password), false, 0, 0, NULL, NULL,
	 "the password; keep the file mode 600, or use password_file"},
	{"password_file", CFG_STRING, offsetof(struct mysql_conf, password_file), false, 0, 0, NULL, NULL,
	 "file holding the password (one trailing newline ignored), read at start and on every reload"},
	{"database", CFG_STRING, offsetof(struct mysql_conf, database), false, 0, 0, NULL, NULL,
	 "default database to select at login (it must exist and the user must have access to it)"},
	{"query", CFG_STRING, offsetof(struct mysql_conf, query), false, 0, 0, "SELECT 1", NULL,
	 "statement to run; an error fails with the server's code and message; without expect_rows and expect_value "
	 "any result passes"},
	{"expect_rows", CFG_CUSTOM, offsetof(struct mysql_conf, expect_rows), false, 0, 0, NULL, NULL,
	 "when given, the number of rows the query returns: a number is exact, `\">= 1\"` (< <= > >= == !=) compares "
	 "(else kind threshold)",
	 parse_expect_rows, NULL, "integer or comparison"},
	{"expect_value", CFG_STRING, offsetof(struct mysql_conf, expect_value), false, 0, 0, NULL, NULL,
	 "when given, the first column of the first row must match: `\"ON\"` equals that string; `\"<= 5\"`, `\"< 5\"`, "
	 "`\">= 5\"`, `\"> 5\"`, `\"== 5\"`, `\"!= 5\"` compare it as a number (else kind threshold)"},
	{"tls", CFG_ENUM, offsetof(struct mysql_conf, tls), false, 0, 0, "off", tls_modes,
	 "`preferred`: TLS when the server offers it; `required`: fail with kind tls unless TLS is set up"},
	{"ca", CFG_STRING, offsetof(struct mysql_conf, ca), false, 0, 0, NULL, NULL,
	 "PEM CA file (tls: required): the server's certificate must be signed by it"},
	{"min_cert_days", CFG_INT, offsetof(struct mysql_conf, min_cert_days), false, 0, 36500, "0 (off)", NULL,
	 "with tls: fail (kind threshold) when the server's certificate expires in fewer days than this"},
	{"expect_read_only", CFG_BOOL, offsetof(struct mysql_conf, expect_read_only), false, 0, 0, NULL, NULL,
	 "when given, @@global.read_only must equal it (a primary must be writable, a replica read-only)"},
	{"max_replication_lag_s", CFG_INT, offsetof(struct mysql_conf, max_replication_lag_s), false, 1, 604800, NULL,
	 NULL, "when given, the server must be a running replica at most this many seconds behind its primary"},
	{"galera", CFG_BOOL, offsetof(struct mysql_conf, galera), false, 0, 0, "false", NULL,
	 "a Galera node, judged as clustercheck does: wsrep_ready ON, wsrep_cluster_status Primary, wsrep_local_state 4 "
	 "(Synced) and read_only OFF (else kind threshold)"},
	{"available_when_donor", CFG_BOOL, offsetof(struct mysql_conf, available_when_donor), false, 0, 0, "false", NULL,
	 "with galera: a node in state 2 (Donor/Desynced) is up too"},
	{"available_when_readonly", CFG_BOOL, offsetof(struct mysql_conf, available_when_readonly), false, 0, 0, "false",
	 NULL, "with galera: a node with read_only ON is up too"},
	{"persistent", CFG_BOOL, offsetof(struct mysql_conf, persistent), false, 0, 0, "false", NULL,
	 "keep one session and ping it instead of a new connection per attempt"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL},
};

static void drive(struct mysql_attempt *a, int status);
static int begin_stage(struct mysql_attempt *a, enum mysql_stage stage);
static void begin_connection(struct mysql_attempt *a);

/* ---- expect_value: the comparison grammar (pure) ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int hd_mysql_number(const char *s, size_t len, double *out)
{
	char buf[64], *end;
	size_t b = 0, e = len, i, digits = 0;

	while (b < e && is_blank(s[b]))
		b++;
	while (e > b && is_blank(s[e - 1]))
		e--;
	if (e - b == 0 || e - b >= sizeof(buf))
		return -1;
	i = b;
	if (s[i] == '+' || s[i] == '-')
		i++;
	for (; i < e && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < e && s[i] == '.')
		for (i++; i < e && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return -1;
	if (i < e && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < e && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i == e || s[i] < '0' || s[i] > '9')
			return -1;
		while (i < e && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i != e)
		return -1;
	memcpy(buf, s + b, e - b);
	buf[e - b] = '\0';
	*out = strtod(buf, &end);
	return *end == '\0' ? 0 : -1;
}

int hd_mysql_expect_parse(const char *s, struct hd_mysql_expect *out, const char **why)
{
	static const struct { const char *text; enum hd_mysql_cmp op; } ops[] = {
		{"<=", HD_CMP_LE}, {">=", HD_CMP_GE}, {"==", HD_CMP_EQ}, {"!=", HD_CMP_NE}, {"<", HD_CMP_LT}, {">", HD_CMP_GT},
	};
	const char *p = s;

	while (is_blank(*p))
		p++;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].text);

		if (strncmp(p, ops[i].text, n) != 0)
			continue;
		out->op = ops[i].op;
		out->text = ops[i].text;
		if (hd_mysql_number(p + n, strlen(p + n), &out->number) < 0) {
			*why = "a comparison needs a decimal number after the operator (\"<= 5\", \">= 0.5\"); "
			       "a string to match exactly must not start with < > = or !";
			return -1;
		}
		return 0;
	}
	out->op = HD_CMP_STRING;
	out->text = s;
	out->number = 0;
	return 0;
}

int hd_mysql_expect_match(const struct hd_mysql_expect *e, const char *value, size_t len)
{
	double v;

	if (e->op == HD_CMP_STRING)
		return value != NULL && len == strlen(e->text) && memcmp(value, e->text, len) == 0;
	if (value == NULL || hd_mysql_number(value, len, &v) < 0)
		return -1;
	switch (e->op) {
	case HD_CMP_LT:
		return v < e->number;
	case HD_CMP_LE:
		return v <= e->number;
	case HD_CMP_GT:
		return v > e->number;
	case HD_CMP_GE:
		return v >= e->number;
	case HD_CMP_EQ:
		return v == e->number;
	case HD_CMP_NE:
		return v != e->number;
	case HD_CMP_STRING:
		break;
	}
	return 0;
}

/* ---- configuration ---- */

/* expect_rows: a row count (exact) or a numeric comparison string. */
static int parse_expect_rows(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	struct hd_mysql_expect *e = field;
	const char *why = "a row count compares with a number, not a string";

	if (cJSON_IsNumber(node)) {
		if (node->valuedouble < 0 || node->valuedouble > 1e9 || node->valuedouble != (double)(long long)node->valuedouble)
			return cfg_error(ctx, node, false, "expected a row count 0..1000000000, got %g", node->valuedouble);
		e->op = HD_CMP_EQ;
		e->text = "==";
		e->number = node->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(node))
		return cfg_error(ctx, node, false, "expected a row count or a comparison such as \">= 1\", got %s",
				 cfg_json_type_name(node));
	if (hd_mysql_expect_parse(node->valuestring, e, &why) < 0 || e->op == HD_CMP_STRING)
		return cfg_error(ctx, node, false, "\"%s\": %s", node->valuestring, why);
	return 0;
}

static int mysql_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	struct mysql_conf *mc = conf->type_conf;
	const cJSON *node = ctx->check_node;
	const cJSON *file_node = cJSON_GetObjectItemCaseSensitive(node, "password_file");
	const char *why;

	if (mc->password && mc->password_file)
		return cfg_error(ctx, file_node, true, "give password or password_file, not both");
	if (mc->password_file) {
		mc->secret = cfg_read_password_file(ctx, conf, mc->password_file);
		if (mc->secret == NULL)
			return -1;
	} else if (mc->password) {
		mc->secret = xstrdup(mc->password);
	}
	if (mc->ca && mc->tls != TLS_REQUIRED)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(node, "ca"), true,
				 "ca verifies the server's certificate, which needs \"tls\": \"required\"");
	if (mc->ca && cfg_check_ca_file(ctx, cJSON_GetObjectItemCaseSensitive(node, "ca"), mc->ca) < 0)
		return -1;
	if (mc->min_cert_days > 0 && mc->tls == TLS_OFF)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(node, "min_cert_days"), true,
				 "min_cert_days needs \"tls\": \"preferred\" or \"required\" (a plain session has no certificate)");
	mc->check_read_only = cJSON_GetObjectItemCaseSensitive(node, "expect_read_only") != NULL;
	if (mc->expect_value && hd_mysql_expect_parse(mc->expect_value, &mc->expect, &why) < 0)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(node, "expect_value"), false, "\"%s\": %s",
				 mc->expect_value, why);
	if (!mc->galera && (mc->available_when_donor || mc->available_when_readonly))
		return cfg_error(ctx,
				 cJSON_GetObjectItemCaseSensitive(node, mc->available_when_donor ? "available_when_donor"
												   : "available_when_readonly"),
				 true, "this judges a Galera node's state, which needs \"galera\": true");
	conf->target = hd_join_hostport(mc->host, mc->port);
	return 0;
}

static void mysql_free_conf(void *type_conf)
{
	struct mysql_conf *mc = type_conf;

	if (mc->secret) {
		explicit_bzero(mc->secret, strlen(mc->secret));
		free(mc->secret);
		mc->secret = NULL;
	}
}

/* ---- one handle: its pending call, and releasing it without ever blocking ---- */

static int call_cont(struct mysql_call *c, int status)
{
	switch (c->op) {
	case OP_CONNECT:
		return mysql_real_connect_cont(&c->connect_ret, c->m, status);
	case OP_PING:
		return mysql_ping_cont(&c->int_ret, c->m, status);
	case OP_QUERY:
		return mysql_real_query_cont(&c->int_ret, c->m, status);
	case OP_STORE:
		return mysql_store_result_cont(&c->res, c->m, status);
	case OP_NEXT_RESULT:
		return mysql_next_result_cont(&c->int_ret, c->m, status);
	case OP_CLOSE:
		return mysql_close_cont(c->m, status);
	case OP_NONE:
		break;
	}
	return 0;
}

/*
 * Unwinds a suspended call at once. The call is a coroutine inside the library, parked in a socket wait; the
 * handle cannot be freed until it has run to its end. We shut the socket down first (reads see EOF, writes
 * fail), so that no step the library still takes can wait on the peer, then resume it with MYSQL_WAIT_TIMEOUT,
 * which fails the wait it is parked in: every resumption returns at once and the call ends with an error.
 * Bounded: should a call still be pending after that, the handle is leaked and logged, never waited for.
 */
static int call_unwind(struct mysql_call *c)
{
	int fd = (int)mysql_get_socket(c->m);
	int status = 1;

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	for (int round = 0; round < 16 && status != 0; round++)
		status = call_cont(c, MYSQL_WAIT_TIMEOUT);
	if (status != 0) {
		log_err("mysql: a cancelled call did not end; its connection is leaked rather than waited for");
		c->m = NULL;
		c->op = OP_NONE;
		return -1;
	}
	if (c->op == OP_CLOSE)
		c->m = NULL; /* mysql_close_cont freed it */
	if (c->op == OP_STORE && c->res)
		mysql_free_result(c->res);
	c->res = NULL;
	c->op = OP_NONE;
	return 0;
}

/*
 * Frees a handle now, whatever it is doing, without blocking. An idle session is closed properly: COM_QUIT on
 * an idle socket goes straight into the kernel's buffer, so mysql_close_start completes at once and the server
 * sees a clean quit. A handle in the middle of a call is unwound first (call_unwind); the server then sees the
 * connection closed: mid-handshake it counts one Aborted_connects, mid-query one Aborted_clients. After a
 * failed call the library has usually closed the socket already, and closing sends nothing.
 */
static void call_release_now(struct mysql_call *c)
{
	if (c->m == NULL)
		return;
	if (c->op != OP_NONE && call_unwind(c) < 0)
		return;
	if (c->m == NULL)
		return;
	c->op = OP_CLOSE;
	if (mysql_close_start(c->m) != 0)
		call_unwind(c);
	c->m = NULL;
	c->op = OP_NONE;
}

/* A new handle for one connection: non-blocking, TCP only, no reconnect, the TLS the configuration asks for. */
static MYSQL *handle_new(const struct hd_check_conf *conf)
{
	const struct mysql_conf *mc = conf->type_conf;
	/* The library's own timeouts are whole seconds and only a backstop: the engine's deadline comes first. */
	unsigned int secs = (unsigned int)(conf->timeout_ms + 999) / 1000 + 1;
	unsigned int tcp = MYSQL_PROTOCOL_TCP, no_local_infile = 0;
	my_bool off = 0, on = 1;
	MYSQL *m = mysql_init(NULL);

	if (m == NULL)
		hd_fatal("out of memory (mysql_init)");
	mysql_options(m, MYSQL_OPT_NONBLOCK, 0); /* before any _start, or the library dereferences NULL */
	mysql_options(m, MYSQL_OPT_PROTOCOL, &tcp);
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
	mysql_options(m, MYSQL_OPT_RECONNECT, &off);
	mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
	mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "healthd");
	if (mc->tls == TLS_PREFERRED) {
		mysql_ssl_set(m, NULL, NULL, NULL, NULL, NULL);
	} else if (mc->tls == TLS_REQUIRED) {
		mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
		/*
		 * With a CA the library verifies the certificate chain. Not its name: MYSQL_OPT_SSL_VERIFY_SERVER_CERT
		 * compares the name with the host given to connect, which is the IP address we resolved ourselves.
		 */
		if (mc->ca)
			mysql_options(m, MYSQL_OPT_SSL_CA, mc->ca);
	}
	return m;
}

/* ---- the attempt ---- */

static void append(struct mysql_attempt *a, const char *fmt, ...) HD_PRINTF(2, 3);
static void append(struct mysql_attempt *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->detail_len >= sizeof(a->detail) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(a->detail + a->detail_len, sizeof(a->detail) - a->detail_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		a->detail_len += (size_t)n;
	if (a->detail_len >= sizeof(a->detail))
		a->detail_len = sizeof(a->detail) - 1;
}

/* Records the failure (the first one wins) that the attempt reports once its handle is released. */
static void fail(struct mysql_attempt *a, enum hd_kind kind, const char *fmt, ...) HD_PRINTF(3, 4);
static void fail(struct mysql_attempt *a, enum hd_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (a->failed)
		return;
	a->failed = true;
	a->kind = kind;
	va_start(ap, fmt);
	vsnprintf(a->detail, sizeof(a->detail), fmt, ap);
	va_end(ap);
	a->detail_len = strlen(a->detail);
}

static void attempt_free(struct mysql_attempt *a)
{
	hd_resolve_cancel(a->resolve);
	a->resolve = NULL;
	if (a->ev)
		event_free(a->ev);
	call_release_now(&a->call);
	a->run->state = NULL;
	free(a);
}

static void report(struct mysql_attempt *a)
{
	struct hd_check_run *run = a->run;
	enum hd_kind kind = a->failed ? a->kind : HD_KIND_OK;
	char detail[sizeof(a->detail)];

	hd_strlcpy(detail, a->detail, sizeof(detail));
	attempt_free(a);
	hd_check_done(run, kind, "%s", detail);
}

/*
 * Ends the attempt: a persistent session that is still sound is kept for the next attempt; anything else is
 * closed with COM_QUIT (phase "close") before the result is reported, so that the server counts a clean quit.
 * Returns the close's wait status, or -1 when the attempt is over.
 */
static int finish(struct mysql_attempt *a, bool session_sound)
{
	struct hd_check_run *run = a->run;

	if (a->call.m != NULL && session_sound && a->mc->persistent && run->persist != NULL) {
		run->persist->m = a->call.m;
		hd_strlcpy(run->persist->peer, run->peer, sizeof(run->persist->peer));
		hd_strlcpy(run->persist->source_addr, run->source_addr, sizeof(run->persist->source_addr));
		a->call.m = NULL;
	}
	if (a->call.m == NULL) {
		report(a);
		return -1;
	}
	hd_run_phase(run, HD_PHASE_CLOSE, NULL);
	a->call.op = OP_CLOSE;
	return mysql_close_start(a->call.m); /* 0: done; call_done() reports */
}

/* The errno a failed connect reports at the end of its message: "Can't connect to server on '10.0.0.1' (111)". */
static int errno_in_message(const char *msg)
{
	const char *open = strrchr(msg, '(');
	int err = 0;

	if (open == NULL || sscanf(open, "(%d)", &err) != 1)
		return 0;
	return err;
}

static int connect_failed(struct mysql_attempt *a)
{
	struct hd_check_run *run = a->run;
	MYSQL *m = a->call.m;
	unsigned int code = mysql_errno(m);
	const char *msg = mysql_error(m);
	const char *user = a->mc->user;
	int err;

	switch (code) {
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_IPSOCK_ERROR:
	case CR_SOCKET_CREATE_ERROR:
		err = errno_in_message(msg);
		fail(a, err ? hd_kind_from_errno(err) : HD_KIND_ERROR, "connect %s: %s%s", run->peer,
		     err ? strerror(err) : msg, err == ECONNREFUSED ? " (nothing listening, or a firewall REJECT)" : "");
		break;
	case ER_ACCESS_DENIED_ERROR:
	case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:
		fail(a, HD_KIND_AUTH, "login as '%s' on %s: error %u: %s (wrong password, or no such user for this host)",
		     user, run->peer, code, msg);
		break;
	case ER_DBACCESS_DENIED_ERROR:
		fail(a, HD_KIND_AUTH, "login as '%s' on %s: error %u: %s (grant the user access to database '%s')",
		     user, run->peer, code, msg, a->mc->database ? a->mc->database : "");
		break;
	case ER_HOST_NOT_PRIVILEGED:
		fail(a, HD_KIND_AUTH, "login as '%s' on %s: error %u: %s (no '%s'@host account matches this host's address %s)",
		     user, run->peer, code, msg, user, run->source_addr[0] ? run->source_addr : "?");
		break;
	case ER_HOST_IS_BLOCKED:
		fail(a, HD_KIND_AUTH,
		     "connect %s: error %u: %s: the server blocks this host after max_connect_errors interrupted connects; "
		     "the application is blocked too: run FLUSH HOSTS (mariadb-admin flush-hosts) on the server",
		     run->peer, code, msg);
		break;
	case ER_MUST_CHANGE_PASSWORD:
	case ER_MUST_CHANGE_PASSWORD_LOGIN:
	case CR_AUTH_PLUGIN_CANNOT_LOAD:
	case CR_AUTH_PLUGIN_ERR:
		fail(a, HD_KIND_AUTH, "login as '%s' on %s: error %u: %s", user, run->peer, code, msg);
		break;
	case ER_CON_COUNT_ERROR:
	case ER_TOO_MANY_USER_CONNECTIONS:
	case ER_USER_LIMIT_REACHED:
		fail(a, HD_KIND_ERROR, "connect %s: error %u: %s (the server refuses new connections: "
		     "the application's new connections fail too)", run->peer, code, msg);
		break;
	case CR_SSL_CONNECTION_ERROR:
		fail(a, HD_KIND_TLS, "TLS with %s: %s", run->peer, msg);
		break;
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_SERVER_GONE_ERROR:
	case CR_MALFORMED_PACKET:
	case CR_VERSION_ERROR:
	case CR_SERVER_HANDSHAKE_ERR:
	case CR_ERR_NET_READ:
		fail(a, HD_KIND_PROTOCOL, "handshake with %s: error %u: %s (the peer does not speak the MySQL protocol: "
		     "another service on this port, or a proxy without a backend)", run->peer, code, msg);
		break;
	default:
		fail(a, HD_KIND_ERROR, "connect %s: error %u: %s", run->peer, code, msg);
		break;
	}
	return finish(a, false);
}

static const char *stage_statement(const struct mysql_attempt *a);

static int query_failed(struct mysql_attempt *a)
{
	struct hd_check_run *run = a->run;
	const char *stmt = stage_statement(a);
	unsigned int code = mysql_errno(a->call.m);
	const char *msg = mysql_error(a->call.m);

	if (code == ER_SPECIFIC_ACCESS_DENIED_ERROR && a->stage >= STAGE_REPLICA)
		fail(a, HD_KIND_ERROR, "%s on %s: error %u: %s (GRANT REPLICA MONITOR, or REPLICATION CLIENT before MariaDB "
		     "10.5 and on MySQL, ON *.* TO the check user)", stmt, run->peer, code, msg);
	else if (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR)
		fail(a, HD_KIND_ERROR, "%s on %s: error %u: %s (the connection failed during the query)", stmt, run->peer,
		     code, msg);
	else
		fail(a, HD_KIND_ERROR, "%s on %s: error %u (%s): %s", stmt, run->peer, code, mysql_sqlstate(a->call.m), msg);
	/* A server error leaves the session usable; a client error means it broke. */
	return finish(a, code < CR_MIN_ERROR);
}

/*
 * A Galera node's state, read_only and wsrep_on in one round trip. Subqueries, not one aggregate over
 * information_schema: in the aggregate's own SELECT MariaDB 10.11 reads @@global.wsrep_on as 0.
 */
#define GALERA_STATUS(name) "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '" name "')"
#define GALERA_STATEMENT                                                                                         \
	"SELECT " GALERA_STATUS("WSREP_READY") ", " GALERA_STATUS("WSREP_CLUSTER_STATUS") ", "                     \
	GALERA_STATUS("WSREP_LOCAL_STATE") ", " GALERA_STATUS("WSREP_LOCAL_STATE_COMMENT") ", @@global.read_only, " \
	"@@global.wsrep_on"

static const char *stage_statement(const struct mysql_attempt *a)
{
	switch (a->stage) {
	case STAGE_USER_QUERY:
		return a->mc->query;
	case STAGE_READ_ONLY:
		return "SELECT @@global.read_only";
	case STAGE_GALERA:
		return GALERA_STATEMENT;
	case STAGE_REPLICA:
		return "SHOW REPLICA STATUS";
	case STAGE_REPLICA_LEGACY:
		return "SHOW SLAVE STATUS";
	case STAGE_DONE:
		break;
	}
	return "";
}

static int column_index(MYSQL_RES *res, const char *name, const char *other_name)
{
	MYSQL_FIELD *fields = mysql_fetch_fields(res);
	unsigned int n = mysql_num_fields(res);

	for (unsigned int i = 0; i < n; i++)
		if (strcasecmp(fields[i].name, name) == 0 || (other_name && strcasecmp(fields[i].name, other_name) == 0))
			return (int)i;
	return -1;
}

static const char *column_text(MYSQL_ROW row, int i)
{
	return i >= 0 && row[i] ? row[i] : "";
}

static void judge_read_only(struct mysql_attempt *a, MYSQL_RES *res)
{
	MYSQL_ROW row = mysql_fetch_row(res);
	bool read_only;

	if (row == NULL || row[0] == NULL) {
		fail(a, HD_KIND_PROTOCOL, "SELECT @@global.read_only on %s returned no value", a->run->peer);
		return;
	}
	read_only = strcmp(row[0], "1") == 0 || strcasecmp(row[0], "ON") == 0;
	if (read_only != a->mc->expect_read_only) {
		if (read_only)
			fail(a, HD_KIND_THRESHOLD, "%s is read-only (@@global.read_only=%s) but expect_read_only is false: "
			     "writes fail here (a demoted primary, or the wrong node)", a->run->peer, row[0]);
		else
			fail(a, HD_KIND_THRESHOLD, "%s is writable (@@global.read_only=%s) but expect_read_only is true: "
			     "not the replica this backend should read from (a promoted replica, or the wrong node)",
			     a->run->peer, row[0]);
		return;
	}
	append(a, ", read_only %s as expected", read_only ? "ON" : "OFF");
}

static void judge_replica(struct mysql_attempt *a, MYSQL_RES *res)
{
	MYSQL_ROW row = mysql_fetch_row(res);
	int lag_i, io_i, sql_i, io_err_i, sql_err_i;
	const char *last_error;
	char *end;
	long lag;

	if (row == NULL) {
		fail(a, HD_KIND_THRESHOLD, "%s is not a replica (%s is empty) but max_replication_lag_s is set",
		     a->run->peer, stage_statement(a));
		return;
	}
	lag_i = column_index(res, "Seconds_Behind_Master", "Seconds_Behind_Source");
	io_i = column_index(res, "Slave_IO_Running", "Replica_IO_Running");
	sql_i = column_index(res, "Slave_SQL_Running", "Replica_SQL_Running");
	io_err_i = column_index(res, "Last_IO_Error", NULL);
	sql_err_i = column_index(res, "Last_SQL_Error", NULL);
	if (lag_i < 0) {
		fail(a, HD_KIND_PROTOCOL, "%s on %s has no Seconds_Behind_Master column", stage_statement(a), a->run->peer);
		return;
	}
	if (row[lag_i] == NULL) {
		last_error = column_text(row, sql_err_i)[0] ? column_text(row, sql_err_i) : column_text(row, io_err_i);
		fail(a, HD_KIND_THRESHOLD,
		     "replication on %s is not running (Seconds_Behind_Master is NULL; IO thread: %s, SQL thread: %s%s%s)",
		     a->run->peer, column_text(row, io_i), column_text(row, sql_i), last_error[0] ? "; last error: " : "",
		     last_error);
		return;
	}
	lag = strtol(row[lag_i], &end, 10);
	if (*end != '\0') {
		fail(a, HD_KIND_PROTOCOL, "%s on %s: Seconds_Behind_Master is \"%s\", not a number", stage_statement(a),
		     a->run->peer, row[lag_i]);
		return;
	}
	if (lag > a->mc->max_replication_lag_s) {
		fail(a, HD_KIND_THRESHOLD, "replication on %s is %ld s behind its primary (max_replication_lag_s %d)",
		     a->run->peer, lag, a->mc->max_replication_lag_s);
		return;
	}
	append(a, ", replication lag %ld s (max %d)", lag, a->mc->max_replication_lag_s);
}

/* A value from the server, bounded and sanitized for the detail: 12, "Yes", NULL. */
static void shown_value(char *out, size_t outlen, const char *value, size_t len)
{
	char clean[96];
	double number;

	if (value == NULL) {
		hd_strlcpy(out, "NULL", outlen);
		return;
	}
	hd_sanitize_text(value, len, clean, sizeof(clean));
	snprintf(out, outlen, hd_mysql_number(value, len, &number) == 0 ? "%s" : "\"%s\"", clean);
}

/* expect_rows and expect_value against the user query's result (NULL: a statement without a result set). */
static void judge_user_query(struct mysql_attempt *a, MYSQL_RES *res)
{
	const struct mysql_conf *mc = a->mc;
	bool check_rows = mc->expect_rows.op != HD_CMP_STRING;
	unsigned long long rows = res ? (unsigned long long)mysql_num_rows(res) : 0;
	char rows_text[32], shown[128];
	unsigned long *lengths;
	MYSQL_ROW row;
	int verdict;

	if (res == NULL && (check_rows || mc->expect_value)) {
		fail(a, HD_KIND_THRESHOLD, "query \"%s\" on %s returned no result set, but expect_%s is set", mc->query,
		     a->run->peer, check_rows ? "rows" : "value");
		return;
	}
	snprintf(rows_text, sizeof(rows_text), "%llu", rows);
	if (check_rows && hd_mysql_expect_match(&mc->expect_rows, rows_text, strlen(rows_text)) != 1) {
		fail(a, HD_KIND_THRESHOLD, "query \"%s\" on %s returned %llu row%s, expected %s %.0f", mc->query,
		     a->run->peer, rows, rows == 1 ? "" : "s", mc->expect_rows.text, mc->expect_rows.number);
		return;
	}
	if (res == NULL || mc->expect_value == NULL)
		return;
	row = mysql_fetch_row(res);
	if (row == NULL) {
		fail(a, HD_KIND_THRESHOLD, "query \"%s\" on %s returned no rows, expected a first value %s%s%s", mc->query,
		     a->run->peer, mc->expect.op == HD_CMP_STRING ? "\"" : mc->expect.text,
		     mc->expect.op == HD_CMP_STRING ? mc->expect_value : " ", mc->expect.op == HD_CMP_STRING ? "\"" : "");
		if (mc->expect.op != HD_CMP_STRING)
			append(a, "%g", mc->expect.number);
		return;
	}
	lengths = mysql_fetch_lengths(res);
	shown_value(shown, sizeof(shown), row[0], row[0] ? lengths[0] : 0);
	verdict = hd_mysql_expect_match(&mc->expect, row[0], row[0] ? lengths[0] : 0);
	if (mc->expect.op == HD_CMP_STRING && verdict == 0)
		fail(a, HD_KIND_THRESHOLD, "first value %s, expected \"%s\" (query \"%s\" on %s)", shown, mc->expect_value,
		     mc->query, a->run->peer);
	else if (verdict < 0)
		fail(a, HD_KIND_THRESHOLD, "first value %s is not a number, expected %s %g (query \"%s\" on %s)", shown,
		     mc->expect.text, mc->expect.number, mc->query, a->run->peer);
	else if (verdict == 0)
		fail(a, HD_KIND_THRESHOLD, "first value %s, expected %s %g (query \"%s\" on %s)", shown, mc->expect.text,
		     mc->expect.number, mc->query, a->run->peer);
	else
		append(a, ", first value %s as expected", shown);
}

/* A Galera node as clustercheck judges it: ready, in the primary component, Synced (or a donor), writable. */
static void judge_galera(struct mysql_attempt *a, MYSQL_RES *res)
{
	const struct mysql_conf *mc = a->mc;
	MYSQL_ROW row = mysql_fetch_row(res);
	unsigned long *len;
	char v[6][48];

	if (row == NULL || mysql_num_fields(res) != 6) {
		fail(a, HD_KIND_PROTOCOL, "galera: the wsrep status query on %s returned no row", a->run->peer);
		return;
	}
	len = mysql_fetch_lengths(res);
	for (int i = 0; i < 6; i++)
		hd_sanitize_text(row[i] ? row[i] : "NULL", row[i] ? len[i] : 4, v[i], sizeof(v[i]));
	if (row[0] == NULL || strcmp(v[5], "0") == 0 || strcmp(v[5], "OFF") == 0)
		fail(a, HD_KIND_THRESHOLD, "galera: %s is not a Galera node (wsrep_on %s)", a->run->peer, v[5]);
	else if (strcmp(v[0], "ON") != 0)
		fail(a, HD_KIND_THRESHOLD, "galera: wsrep_ready %s, expected ON (%s)", v[0], a->run->peer);
	else if (strcmp(v[1], "Primary") != 0)
		fail(a, HD_KIND_THRESHOLD, "galera: wsrep_cluster_status %s, expected Primary: this node is not in the "
		     "primary component (%s)", v[1], a->run->peer);
	else if (strcmp(v[2], "4") != 0 && !(strcmp(v[2], "2") == 0 && mc->available_when_donor))
		fail(a, HD_KIND_THRESHOLD, "galera: wsrep_local_state %s (%s), expected 4 (Synced)%s (%s)", v[2], v[3],
		     strcmp(v[2], "2") == 0 ? "; available_when_donor accepts 2" : "", a->run->peer);
	else if ((strcmp(v[4], "1") == 0 || strcmp(v[4], "ON") == 0) && !mc->available_when_readonly)
		fail(a, HD_KIND_THRESHOLD, "galera: %s is read-only (@@global.read_only=%s), expected writable; "
		     "available_when_readonly accepts it", a->run->peer, v[4]);
	else
		append(a, ", galera: wsrep_local_state %s (%s), %s, read_only %s", v[2], v[3], v[1], v[4]);
}

/* A stored result of the current stage: judge it, then go on to the next stage. */
static int stage_result(struct mysql_attempt *a)
{
	MYSQL_RES *res = a->call.res;

	a->call.res = NULL;
	switch (a->result_sets++ == 0 ? a->stage : STAGE_DONE) { /* later result sets (of a CALL) are only read */
	case STAGE_USER_QUERY:
		if (res != NULL)
			append(a, ": %s: %llu row%s", a->mc->query, (unsigned long long)mysql_num_rows(res),
			       mysql_num_rows(res) == 1 ? "" : "s");
		else
			append(a, ": %s: ok, %llu row%s affected", a->mc->query,
			       (unsigned long long)mysql_affected_rows(a->call.m), mysql_affected_rows(a->call.m) == 1 ? "" : "s");
		judge_user_query(a, res);
		break;
	case STAGE_READ_ONLY:
		if (res != NULL)
			judge_read_only(a, res);
		break;
	case STAGE_GALERA:
		if (res != NULL)
			judge_galera(a, res);
		break;
	case STAGE_REPLICA:
	case STAGE_REPLICA_LEGACY:
		if (res != NULL)
			judge_replica(a, res);
		break;
	case STAGE_DONE:
		break;
	}
	if (res != NULL)
		mysql_free_result(res); /* a stored result: freeing it reads nothing */
	/* A statement with several result sets (CALL): read them all, or the next one is out of sync. */
	if (mysql_more_results(a->call.m)) {
		a->call.op = OP_NEXT_RESULT;
		return mysql_next_result_start(&a->call.int_ret, a->call.m);
	}
	if (a->failed)
		return finish(a, true);
	switch (a->stage) {
	case STAGE_USER_QUERY:
		return begin_stage(a, STAGE_READ_ONLY);
	case STAGE_READ_ONLY:
		return begin_stage(a, STAGE_GALERA);
	case STAGE_GALERA:
		return begin_stage(a, STAGE_REPLICA);
	case STAGE_REPLICA:
	case STAGE_REPLICA_LEGACY:
	case STAGE_DONE:
		break;
	}
	return begin_stage(a, STAGE_DONE);
}

/* Starts the statement of a stage (skipping the stages not configured). Returns the call's wait status, or -1. */
static int begin_stage(struct mysql_attempt *a, enum mysql_stage stage)
{
	const char *stmt;

	if (stage == STAGE_READ_ONLY && !a->mc->check_read_only)
		stage = STAGE_GALERA;
	if (stage == STAGE_GALERA && !a->mc->galera)
		stage = STAGE_REPLICA;
	if (stage == STAGE_REPLICA && a->mc->max_replication_lag_s == 0)
		stage = STAGE_DONE;
	a->stage = stage;
	if (stage == STAGE_DONE)
		return finish(a, true);
	hd_run_phase(a->run, HD_PHASE_REQUEST, "query");
	a->result_sets = 0;
	stmt = stage_statement(a);
	a->call.op = OP_QUERY;
	return mysql_real_query_start(&a->call.int_ret, a->call.m, stmt, (unsigned long)strlen(stmt));
}

/* The peer certificate of the session's TLS handshake into p (have_cert false when it cannot be read). */
static void record_cert(MYSQL *m, struct hd_persist *p)
{
	static int openssl = -1; /* the library's TLS is OpenSSL: its handle is an SSL * */
	const MARIADB_PVIO *pvio = m->net.pvio;
	X509 *x;

	p->have_cert = false;
	if (openssl < 0) {
		const char *lib = NULL;
		openssl = mariadb_get_infov(NULL, MARIADB_TLS_LIBRARY, &lib) == 0 && lib != NULL &&
			  strncasecmp(lib, "OpenSSL", 7) == 0;
	}
	if (!openssl || pvio == NULL || pvio->ctls == NULL || pvio->ctls->ssl == NULL)
		return;
	x = SSL_get1_peer_certificate((SSL *)pvio->ctls->ssl);
	if (x == NULL)
		return;
	p->have_cert = hd_cert_from_x509(&p->cert, x) == 0;
	X509_free(x);
}

static int connected(struct mysql_attempt *a)
{
	struct hd_check_run *run = a->run;

	hd_run_set_source(run, (int)mysql_get_socket(a->call.m));
	/*
	 * Connector/C 3.3 refuses a server without TLS only when it verifies the certificate (with ca). Without ca it
	 * falls back to plain text, so the session is checked here, and closed with COM_QUIT like any other. The
	 * login sent only a salted scramble of the password, never the password itself.
	 */
	if (a->mc->tls == TLS_REQUIRED && mysql_get_ssl_cipher(a->call.m) == NULL) {
		fail(a, HD_KIND_TLS, "%s does not offer TLS but tls is \"required\" (the server has no ssl_cert/ssl_key, "
		     "or something between strips TLS)", run->peer);
		return finish(a, false);
	}
	if (mysql_get_ssl_cipher(a->call.m) != NULL) {
		char below[256];

		record_cert(a->call.m, run->persist);
		if (run->persist->have_cert &&
		    hd_cert_below(&run->persist->cert, a->mc->min_cert_days, hd_now_wall_ms() / 1000, run->conf->name,
				  below, sizeof(below))) {
			fail(a, HD_KIND_THRESHOLD, "%s (%s)", below, run->peer);
			return finish(a, false);
		}
	}
	a->detail_len = 0;
	append(a, "%s %s as '%s'%s", run->peer, mysql_get_server_info(a->call.m), a->mc->user,
	       mysql_get_ssl_cipher(a->call.m) ? " over TLS" : "");
	return begin_stage(a, STAGE_USER_QUERY);
}

/* The pending call has finished: look at its outcome and start the next one. Returns its wait status, or -1. */
static int call_done(struct mysql_attempt *a)
{
	struct hd_check_run *run = a->run;
	enum mysql_op op = a->call.op;

	a->call.op = OP_NONE;
	switch (op) {
	case OP_CONNECT:
		if (a->call.connect_ret == NULL)
			return connect_failed(a);
		return connected(a);
	case OP_PING:
		if (a->call.int_ret != 0) {
			log_info("check %s: persistent session to %s lost (%s), reconnecting", run->conf->name, run->peer,
				 mysql_error(a->call.m));
			call_release_now(&a->call);
			run->source_addr[0] = '\0';
			begin_connection(a); /* may end the attempt: a is not touched after it */
			return -1;
		}
		a->detail_len = 0;
		append(a, "%s %s as '%s' (persistent session)", run->peer, mysql_get_server_info(a->call.m), a->mc->user);
		return begin_stage(a, STAGE_USER_QUERY);
	case OP_QUERY:
		if (a->call.int_ret != 0) {
			if (a->stage == STAGE_REPLICA && mysql_errno(a->call.m) == ER_PARSE_ERROR) {
				/* a server older than SHOW REPLICA STATUS */
				return begin_stage(a, STAGE_REPLICA_LEGACY);
			}
			return query_failed(a);
		}
		a->call.op = OP_STORE;
		return mysql_store_result_start(&a->call.res, a->call.m);
	case OP_STORE:
		if (a->call.res == NULL && mysql_errno(a->call.m) != 0)
			return query_failed(a);
		return stage_result(a);
	case OP_NEXT_RESULT:
		if (a->call.int_ret > 0)
			return query_failed(a);
		a->call.op = OP_STORE;
		return mysql_store_result_start(&a->call.res, a->call.m);
	case OP_CLOSE:
		a->call.m = NULL; /* closed and freed by the library */
		report(a);
		return -1;
	case OP_NONE:
		break;
	}
	return -1;
}

/* ---- the greeting: judged before the library sees it ---- */

static void hex_prefix(char *out, size_t outlen, const unsigned char *buf, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < len && i < 12; i++)
		hd_appendf(out, outlen, &used, "%s%02x", i ? " " : "", buf[i]);
	if (len > 12)
		hd_appendf(out, outlen, &used, " ...");
}

enum hd_greeting hd_mysql_greeting_check(const unsigned char *buf, size_t len, char *why, size_t whylen)
{
	char hex[64];
	size_t payload, i;
	unsigned int code;

	if (len < 4)
		return HD_GREETING_NEED_MORE;
	payload = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16;
	hex_prefix(hex, sizeof(hex), buf, len);
	if (buf[3] != 0 || payload == 0 || payload > HD_MYSQL_GREETING_MAX - 4) {
		snprintf(why, whylen, "a first packet of %zu bytes, number %u (%s): not a MySQL greeting", payload,
			 buf[3], hex);
		return HD_GREETING_BAD;
	}
	if (len < 4 + payload)
		return HD_GREETING_NEED_MORE;
	if (buf[4] == 0xff) {
		code = payload >= 3 ? (unsigned int)buf[5] | (unsigned int)buf[6] << 8 : 0;
		if (payload < 3 || code == 0xffff || code < 1000) {
			snprintf(why, whylen, "an error packet with code %u before any greeting (%s): not a MySQL server's",
				 code, hex);
			return HD_GREETING_BAD;
		}
		return HD_GREETING_OK; /* "Too many connections", "Host is blocked": the library reports them */
	}
	if (buf[4] != 10) {
		snprintf(why, whylen, "protocol version %u (%s): not a MySQL greeting (version 10)", buf[4], hex);
		return HD_GREETING_BAD;
	}
	for (i = 5; i < 4 + payload && buf[i] != '\0'; i++)
		;
	/* after the version: connection id (4), scramble (8), filler (1), capabilities (2) */
	if (i == 4 + payload || 4 + payload - (i + 1) < 15) {
		snprintf(why, whylen, "a protocol 10 greeting cut short (%zu bytes: %s)", payload, hex);
		return HD_GREETING_BAD;
	}
	return HD_GREETING_OK;
}

enum gate { GATE_PASS, GATE_HELD, GATE_ENDED };

static void on_io(evutil_socket_t fd, short what, void *arg);
static void drain_end(struct mysql_attempt *a);

/* Waits for (more of) the greeting: readable, or, with part of it there, a short retry (reads are level-triggered). */
static void hold_for_greeting(struct mysql_attempt *a, evutil_socket_t fd, bool partial)
{
	struct timeval retry = {0, 10 * 1000}, budget;
	int64_t left;

	a->greeting_held = true;
	event_del(a->ev);
	event_assign(a->ev, a->base, partial ? -1 : fd, partial ? 0 : EV_READ, on_io, a);
	if (partial) {
		event_add(a->ev, &retry);
	} else if (a->drain_owner != NULL) { /* a drain has a budget; an attempt has the engine's deadline */
		left = a->drain_deadline_ms - hd_now_mono_ms();
		budget.tv_sec = left > 0 ? (time_t)(left / 1000) : 0;
		budget.tv_usec = left > 0 ? (suseconds_t)(left % 1000) * 1000 : 0;
		event_add(a->ev, &budget);
	} else {
		event_add(a->ev, NULL);
	}
}

/* A first packet that must not reach the library: read it out of the socket and shut it, then end. */
static void refuse_greeting(struct mysql_attempt *a, evutil_socket_t fd, const char *why)
{
	unsigned char sink[4096];

	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	shutdown(fd, SHUT_RDWR); /* the library's next read sees EOF, never these bytes */
	a->greeting_pending = a->greeting_held = false;
	if (a->drain_owner != NULL) {
		drain_end(a);
		return;
	}
	fail(a, HD_KIND_PROTOCOL, "%s sent %s; is this port a MySQL/MariaDB server?", a->run->peer, why);
	call_release_now(&a->call);
	report(a);
}

/*
 * Between the library and a new connection's first packet. Connector/C trusts that packet: nine bytes (an
 * error packet with code 0xffff before any greeting) make it call strstr() on a NULL server version, and a
 * server (or anything on its port) could crash healthd with them. So once TCP is up, the library's next wait is
 * held back until the whole first packet has been peeked at and judged; only a well-formed one is left for the
 * library to read. A connect that failed, or a peer that closed, passes straight on: the library reports it.
 */
static enum gate greeting_gate(struct mysql_attempt *a, short what)
{
	unsigned char buf[HD_MYSQL_GREETING_MAX];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	evutil_socket_t fd;
	char why[200];
	ssize_t n;

	if (!a->greeting_pending || a->call.op != OP_CONNECT)
		return GATE_PASS;
	if (!a->greeting_held && !(what & (EV_READ | EV_WRITE)))
		return GATE_PASS; /* the library's own timer */
	fd = (evutil_socket_t)mysql_get_socket(a->call.m);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) != 0) {
		a->greeting_pending = a->greeting_held = false; /* the connect failed: the library says how */
		return GATE_PASS;
	}
	if (a->run != NULL && a->run->phase == HD_PHASE_CONNECT) {
		hd_run_phase(a->run, HD_PHASE_HANDSHAKE, NULL); /* TCP is up; waiting for the greeting, then the login */
		hd_run_set_source(a->run, (int)fd);
	}
	n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		if (a->drain_owner != NULL && hd_now_mono_ms() >= a->drain_deadline_ms) {
			drain_end(a);
			return GATE_ENDED;
		}
		hold_for_greeting(a, fd, false);
		return GATE_HELD;
	}
	if (n <= 0) {
		a->greeting_pending = a->greeting_held = false; /* closed or reset: the library reports it */
		return GATE_PASS;
	}
	switch (hd_mysql_greeting_check(buf, (size_t)n, why, sizeof(why))) {
	case HD_GREETING_OK:
		a->greeting_pending = a->greeting_held = false;
		return GATE_PASS;
	case HD_GREETING_NEED_MORE:
		if (a->drain_owner != NULL && hd_now_mono_ms() >= a->drain_deadline_ms) {
			drain_end(a);
			return GATE_ENDED;
		}
		hold_for_greeting(a, fd, true);
		return GATE_HELD;
	case HD_GREETING_BAD:
		break;
	}
	refuse_greeting(a, fd, why);
	return GATE_ENDED;
}

static void drain_io(struct mysql_attempt *a, int status);

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct mysql_attempt *a = arg;
	int status = 0;

	(void)fd;
	if (a->greeting_pending) {
		bool held = a->greeting_held;

		if (greeting_gate(a, what) != GATE_PASS)
			return;
		if (held) /* what the library was waiting for is ready by now: the socket is connected and readable */
			what = (short)((a->library_wait & MYSQL_WAIT_READ ? EV_READ : 0) |
				       (a->library_wait & (MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT) ? EV_WRITE : 0));
	}
	if (what & EV_READ)
		status |= MYSQL_WAIT_READ;
	if (what & EV_WRITE)
		status |= MYSQL_WAIT_WRITE;
	if (what & EV_TIMEOUT)
		status |= MYSQL_WAIT_TIMEOUT;
	if (a->drain_owner != NULL)
		drain_io(a, status);
	else
		drive(a, call_cont(&a->call, status));
}

/* Waits for what the library asked. The socket may change after any step: read it again every time. */
static void wait_for(struct mysql_attempt *a, int status)
{
	struct hd_check_run *run = a->run;
	evutil_socket_t fd = (evutil_socket_t)mysql_get_socket(a->call.m);
	struct timeval tv, *tvp = NULL;
	short what = 0;

	a->library_wait = status;
	if (a->call.op == OP_CONNECT && run->source_addr[0] == '\0')
		hd_run_set_source(run, (int)fd); /* bound by connect(): what a firewall rule sees, even unanswered */
	if (a->call.op == OP_CONNECT && (status & MYSQL_WAIT_READ) && run->phase == HD_PHASE_CONNECT) {
		hd_run_phase(run, HD_PHASE_HANDSHAKE, NULL); /* TCP is up; waiting for the greeting, then the login */
		hd_run_set_source(run, (int)fd);
	}
	if (status & MYSQL_WAIT_READ)
		what |= EV_READ;
	if (status & (MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT))
		what |= EV_WRITE;
	if (status & MYSQL_WAIT_TIMEOUT) {
		unsigned int ms = mysql_get_timeout_value_ms(a->call.m);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
		tvp = &tv;
	}
	event_del(a->ev);
	event_assign(a->ev, a->base, what ? fd : -1, what, on_io, a);
	event_add(a->ev, tvp);
}

/* ---- draining: a login the deadline cut short completes in the background, then quits ---- */

static void drain_end(struct mysql_attempt *a)
{
	a->drain_owner->drain = NULL;
	event_free(a->ev);
	call_release_now(&a->call); /* past the budget: unwound; the server counts one aborted connect */
	free(a);
}

static void drain_io(struct mysql_attempt *a, int status)
{
	struct timeval tv;
	int64_t left;
	short what = 0;

	if (status & MYSQL_WAIT_TIMEOUT) { /* the budget, not the library's timer: only ours is armed */
		log_debug("check %s: the timed-out login did not complete within %d ms more; closing it", a->name,
			  DRAIN_BUDGET_MS);
		drain_end(a);
		return;
	}
	status = call_cont(&a->call, status);
	while (status == 0) {
		if (a->call.op == OP_CONNECT && a->call.connect_ret != NULL) {
			log_debug("check %s: the timed-out login completed %.0f ms after it began; quitting it", a->name,
				  hd_now_mono_ms_f() - a->drain_started_ms);
			a->call.op = OP_CLOSE;
			status = mysql_close_start(a->call.m);
			continue;
		}
		if (a->call.op == OP_CLOSE)
			a->call.m = NULL; /* closed and freed */
		a->call.op = OP_NONE;
		drain_end(a); /* the close is done, or the login failed and the library closed the socket */
		return;
	}
	left = a->drain_deadline_ms - hd_now_mono_ms();
	tv.tv_sec = left > 0 ? (time_t)(left / 1000) : 0;
	tv.tv_usec = left > 0 ? (suseconds_t)(left % 1000) * 1000 : 0;
	if (status & MYSQL_WAIT_READ)
		what |= EV_READ;
	if (status & (MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT))
		what |= EV_WRITE;
	event_del(a->ev);
	event_assign(a->ev, a->base, (evutil_socket_t)mysql_get_socket(a->call.m), what, on_io, a);
	event_add(a->ev, &tv);
}

/*
 * A login cut short by the deadline once the server has accepted the TCP connection: aborting it would count
 * one Aborted_connects on the server and, from a non-loopback address, one connect error against this host
 * (max_connect_errors of those in a row, with no successful login between them, and the server blocks the
 * host: the application's connections too). So the login goes on detached, for DRAIN_BUDGET_MS at most, and
 * quits with COM_QUIT when it completes: the server sees a slow but clean login, which also resets the
 * host's error count. One per check; the attempt itself has already been reported as a timeout.
 */
static void drain_begin(struct mysql_attempt *a, struct hd_persist *owner)
{
	struct hd_check_run *run = a->run;
	struct timeval tv = {DRAIN_BUDGET_MS / 1000, (DRAIN_BUDGET_MS % 1000) * 1000};
	short what = event_get_events(a->ev) & (EV_READ | EV_WRITE);

	hd_strlcpy(a->name, run->conf->name, sizeof(a->name));
	run->state = NULL;
	a->run = NULL;
	/* The drain's own code needs no configuration. The library still reads the user, password and database
	 * strings until the login completes: safe, as a reload that frees them ends the drain first (free_persist). */
	a->mc = NULL;
	a->drain_owner = owner;
	owner->drain = a;
	a->drain_started_ms = run->started_ms;
	a->drain_deadline_ms = hd_now_mono_ms() + DRAIN_BUDGET_MS;
	if (a->greeting_pending) { /* the greeting is still judged first, with the drain's budget */
		hold_for_greeting(a, (evutil_socket_t)mysql_get_socket(a->call.m), false);
		return;
	}
	event_del(a->ev);
	event_assign(a->ev, a->base, (evutil_socket_t)mysql_get_socket(a->call.m), what, on_io, a);
	event_add(a->ev, &tv);
}

/* Runs the attempt's calls one after the other until one has to wait, or the attempt ends. */
static void drive(struct mysql_attempt *a, int status)
{
	while (status == 0)
		if ((status = call_done(a)) < 0)
			return; /* the attempt ended (a is freed) or waits elsewhere */
	wait_for(a, status);
}

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct mysql_attempt *a = arg;
	struct hd_check_run *run = a->run;

	(void)salen;
	a->resolve = NULL;
	if (error != NULL) {
		fail(a, HD_KIND_DNS, "%s", error);
		report(a);
		return;
	}
	hd_run_set_peer(run, sa);
	hd_sockaddr_ip(sa, a->ip, sizeof(a->ip));
	a->call.m = handle_new(run->conf);
	hd_run_phase(run, HD_PHASE_CONNECT, NULL);
	a->call.op = OP_CONNECT;
	a->greeting_pending = true;
	/*
	 * An IP literal: the library's own name lookup (a blocking getaddrinfo) never runs. It keeps the host, user,
	 * password and database pointers and reads them again once the greeting has arrived, in a later _cont: they
	 * must outlive this call (the attempt's copy of the address; the strings of the configuration, which stays
	 * while the check exists, and a drain never outlives the check).
	 */
	drive(a, mysql_real_connect_start(&a->call.connect_ret, a->call.m, a->ip, a->mc->user, a->mc->secret,
					  a->mc->database, (unsigned int)a->mc->port, NULL, 0));
}

static void begin_connection(struct mysql_attempt *a)
{
	hd_resolve_begin(a->run, a->mc->host, a->mc->port, on_resolved, a, &a->resolve);
}

static void mysql_start(struct hd_check_run *run)
{
	const struct mysql_conf *mc = run->conf->type_conf;
	struct mysql_attempt *a = xcalloc(1, sizeof(*a));

	a->run = run;
	a->mc = mc;
	a->base = run->base;
	a->ev = event_new(run->base, -1, 0, on_io, a);
	run->state = a;
	if (run->persist == NULL)
		run->persist = xcalloc(1, sizeof(*run->persist));
	if (mc->persistent && run->persist->m != NULL) {
		/* The attempt owns the session while it runs; finish() gives it back if it is still sound. */
		a->call.m = run->persist->m;
		run->persist->m = NULL;
		hd_strlcpy(run->peer, run->persist->peer, sizeof(run->peer));
		hd_strlcpy(run->source_addr, run->persist->source_addr, sizeof(run->source_addr));
		hd_run_phase(run, HD_PHASE_REQUEST, "ping");
		a->call.op = OP_PING;
		drive(a, mysql_ping_start(&a->call.int_ret, a->call.m));
		return;
	}
	run->persist->have_cert = false; /* /health shows what this session's handshake saw, or nothing */
	begin_connection(a);
}

static const struct hd_cert_info *mysql_cert(const struct hd_persist *p)
{
	return p->have_cert ? &p->cert : NULL;
}

static void mysql_cancel(struct hd_check_run *run)
{
	struct mysql_attempt *a = run->state;

	if (a == NULL)
		return;
	if (a->call.op == OP_CONNECT && run->phase == HD_PHASE_HANDSHAKE && run->persist != NULL &&
	    run->persist->drain == NULL) {
		drain_begin(a, run->persist);
		return;
	}
	event_del(a->ev);
	attempt_free(a); /* releases the handle at once, whatever call is pending (call_release_now) */
}

static void mysql_free_persist(struct hd_persist *p)
{
	struct mysql_call c = {.m = p->m};

	if (p->drain != NULL)
		drain_end(p->drain);
	call_release_now(&c); /* an idle session: COM_QUIT, then freed */
	free(p);
}

const struct hd_check_type hd_check_mysql = {
	.name = "mysql",
	.summary = "logs in to MySQL/MariaDB (a new connection per attempt by default), runs a query, checks "
		   "read_only and replication lag when asked, and quits cleanly",
	.keys = mysql_keys,
	.conf_size = sizeof(struct mysql_conf),
	.validate = mysql_validate,
	.start = mysql_start,
	.cancel = mysql_cancel,
	.free_conf = mysql_free_conf,
	.free_persist = mysql_free_persist,
	.cert = mysql_cert,
};
