/* check_http.c: the http check: one HTTP(S) request through libcurl on the loop; status, body and TLS decide. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "cert.h"
#include "check.h"
#include "config.h"
#include "curl_loop.h"
#include "tcp_connect.h"

#define HTTP_BODY_CAP (64 * 1024) /* read at most this much of a body to look for expect_body */
#define HTTP_SAMPLE_CAP 256       /* without expect_body, only the start is kept, for the detail */
#define HTTP_SAMPLE_SHOWN 100     /* how much of the body a detail quotes */
#define HTTP_MAX_STATUS_RANGES 16

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST };
static const char *const http_methods[] = {"GET", "HEAD", "POST", NULL};

struct status_range {
	int lo, hi;
};

struct http_conf {
	char *url;
	int method;
	char **headers;
	char *body;
	char *expect_status;
	char *expect_body;
	bool tls_verify;
	char *ca;
	int min_cert_days;
	int expect;             /* HD_EXPECT_*: blocked is a plain TCP connect to the URL's host and port */
	unsigned blocked_kinds; /* 0 = the default */
	/* derived by http_validate */
	struct status_range ranges[HTTP_MAX_STATUS_RANGES];
	size_t n_ranges;
	bool https;
	char *host_port; /* "host:port" from the URL, for details before curl knows the address */
	bool host_is_ip;
	char *host;      /* the URL's host without brackets, and its port: where expect blocked connects */
	int port;
};

/* Kept across attempts: the certificate the latest https attempt saw. */
struct hd_persist {
	bool have_cert;
	struct hd_cert_info cert;
};

struct http_attempt {
	struct hd_check_run *run;
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	size_t body_len, body_cap;
	bool body_capped; /* the cap was reached and the rest of the body left unread */
	char errbuf[CURL_ERROR_SIZE];
};

static int parse_url(struct cfg_ctx *ctx, const cJSON *node, void *field);
static int parse_expect_status(struct cfg_ctx *ctx, const cJSON *node, void *field);

static const struct cfg_key http_keys[] = {
	{"url", CFG_STRING, offsetof(struct http_conf, url), true, 0, 0, NULL, NULL,
	 "http:// or https:// URL; redirects are not followed, proxies from the environment are not used", parse_url},
	{"method", CFG_ENUM, offsetof(struct http_conf, method), false, 0, 0, "GET", http_methods, "request method"},
	{"headers", CFG_STRMAP, offsetof(struct http_conf, headers), false, 0, 0, NULL, NULL,
	 "extra request headers, e.g. {\"Host\": \"app.example\", \"Authorization\": \"Bearer ...\"}"},
	{"body", CFG_STRING, offsetof(struct http_conf, body), false, 0, 0, NULL, NULL,
	 "request body, with method POST only (set Content-Type in headers)"},
	{"expect_status", CFG_STRING, offsetof(struct http_conf, expect_status), false, 0, 0, "2xx", NULL,
	 "accepted status codes: a code (200), or a list of codes, ranges and classes (\"200-299,304\", \"2xx,3xx\")",
	 parse_expect_status},
	{"expect_body", CFG_STRING, offsetof(struct http_conf, expect_body), false, 0, 0, NULL, NULL,
	 "text the body must contain (case-sensitive; the first 64 KiB are searched)"},
	{"tls_verify", CFG_BOOL, offsetof(struct http_conf, tls_verify), false, 0, 0, "true", NULL,
	 "verify the server's certificate and name (https)"},
	{"ca", CFG_STRING, offsetof(struct http_conf, ca), false, 0, 0, NULL, NULL,
	 "PEM file of the CA(s) to verify the server with, instead of the system's", cfg_parse_ca},
	{"min_cert_days", CFG_INT, offsetof(struct http_conf, min_cert_days), false, 0, 36500, "0 (off)", NULL,
	 "https: fail (kind threshold) when the server's certificate expires in fewer days than this"},
	HD_BLOCKED_KEYS(struct http_conf, expect, blocked_kinds),
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL, NULL},
};

/* ---- configuration ---- */

static int read_status_spec(const char *spec, struct status_range *ranges, size_t *n, const char **why)
{
	const char *p = spec;

	*n = 0;
	for (;;) {
		char item[16];
		size_t len;
		int lo, hi, end = 0;

		while (*p == ' ')
			p++;
		len = strcspn(p, ",");
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0 || len >= sizeof(item)) {
			*why = "expected codes like 200, ranges like 200-299 or classes like 2xx, separated by commas";
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (len == 3 && item[0] >= '1' && item[0] <= '5' && (item[1] == 'x' || item[1] == 'X') &&
		    (item[2] == 'x' || item[2] == 'X')) {
			lo = (item[0] - '0') * 100;
			hi = lo + 99;
		} else if (sscanf(item, "%3d-%3d%n", &lo, &hi, &end) == 2 && end == (int)len) {
			if (lo > hi) {
				*why = "a range must go from the lower code to the higher one";
				return -1;
			}
		} else if (sscanf(item, "%3d%n", &lo, &end) == 1 && end == (int)len) {
			hi = lo;
		} else {
			*why = "expected codes like 200, ranges like 200-299 or classes like 2xx, separated by commas";
			return -1;
		}
		if (lo < 100 || hi > 599) {
			*why = "status codes go from 100 to 599";
			return -1;
		}
		if (*n == HTTP_MAX_STATUS_RANGES) {
			*why = "at most 16 codes, ranges or classes";
			return -1;
		}
		ranges[(*n)++] = (struct status_range){lo, hi};
		p += strcspn(p, ",");
		if (*p == '\0')
			return 0;
		p++;
	}
}

static int parse_expect_status(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	struct status_range ranges[HTTP_MAX_STATUS_RANGES];
	const char *why = NULL;
	size_t n;
	char *spec;

	if (cJSON_IsNumber(node)) {
		/* the range first: converting a double outside int's range (1e300) is undefined */
		if (!(node->valuedouble >= 100 && node->valuedouble <= 599) || node->valuedouble != (int)node->valuedouble)
			return cfg_error(ctx, node, false, "expected a status code from 100 to 599, got %g", node->valuedouble);
		spec = xasprintf("%d", (int)node->valuedouble);
	} else if (cJSON_IsString(node)) {
		if (read_status_spec(node->valuestring, ranges, &n, &why) < 0)
			return cfg_error(ctx, node, false, "%s, got \"%s\"", why, node->valuestring);
		spec = xstrdup(node->valuestring);
	} else {
		return cfg_error(ctx, node, false, "expected a status code (200) or a string (\"200-299,304\", \"2xx\")");
	}
	free(*(char **)field);
	*(char **)field = spec;
	return 0;
}

static int parse_url(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	CURLU *u;
	CURLUcode rc;
	char *scheme = NULL, *host = NULL;
	int ret = -1;

	if (!cJSON_IsString(node) || node->valuestring[0] == '\0')
		return cfg_error(ctx, node, false, "expected a URL like \"http://127.0.0.1:8080/health\"");
	u = curl_url();
	if (u == NULL)
		hd_fatal("libcurl: out of memory");
	rc = curl_url_set(u, CURLUPART_URL, node->valuestring, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK && strstr(node->valuestring, "://") == NULL) {
		cfg_error(ctx, node, false, "the URL must start with http:// or https://, got \"%s\"", node->valuestring);
		goto out;
	}
	if (rc != CURLUE_OK) {
		cfg_error(ctx, node, false, "not a valid URL (%s): \"%s\"", curl_url_strerror(rc), node->valuestring);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		cfg_error(ctx, node, false, "the URL must start with http:// or https://, got \"%s\"", node->valuestring);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
		cfg_error(ctx, node, false, "the URL has no host: \"%s\"", node->valuestring);
		goto out;
	}
	free(*(char **)field);
	*(char **)field = xstrdup(node->valuestring);
	ret = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* "10.0.0.5:8080": the host part is an IPv4 literal (no name to resolve). */
static bool is_ipv4_host(const char *host_port)
{
	char host[INET_ADDRSTRLEN];
	struct in_addr v4;
	size_t n = strcspn(host_port, ":");

	if (n >= sizeof(host))
		return false;
	memcpy(host, host_port, n);
	host[n] = '\0';
	return inet_pton(AF_INET, host, &v4) == 1;
}

/* host and port from host_port ("10.0.0.5:8080", "[::1]:443"), which curl built with the scheme's default port. */
static void split_host_port(struct http_conf *hc)
{
	const char *colon = strrchr(hc->host_port, ':');
	const char *h = hc->host_port;
	int n = (int)(colon - h);

	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	hc->host = xasprintf("%.*s", n, h);
	hc->port = atoi(colon + 1);
}

static int http_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	struct http_conf *hc = conf->type_conf;
	const char *why;
	int ret = 0;

	if (hc->body != NULL && hc->method != HTTP_POST)
		ret = cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "body"), true,
				"a body is only sent with \"method\": \"POST\"");
	else if (hc->expect_body != NULL && hc->method == HTTP_HEAD)
		ret = cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "expect_body"), true,
				"a HEAD answer has no body to search: use GET with expect_body");
	if (ret < 0)
		return -1;
	if (read_status_spec(hc->expect_status, hc->ranges, &hc->n_ranges, &why) < 0)
		hd_fatal("expect_status \"%s\" passed parsing but not validation: %s", hc->expect_status, why);
	hc->https = strncasecmp(hc->url, "https:", 6) == 0;
	/* shown in /health without user info or query, which may hold secrets */
	if (strncasecmp(hc->url, "http:", 5) != 0 && !hc->https)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "url"), false,
				 "expected an http:// or https:// URL");
	conf->target = hd_url_public(hc->url, true, &hc->host_port, &why);
	if (conf->target == NULL)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "url"), false,
				 "expected an http:// or https:// URL: %s", why);
	hc->host_is_ip = hc->host_port[0] == '[' || is_ipv4_host(hc->host_port);
	if (hc->min_cert_days > 0 && !hc->https)
		return cfg_error(ctx, cJSON_GetObjectItemCaseSensitive(ctx->check_node, "min_cert_days"), true,
				 "min_cert_days needs an https:// URL (an http:// server has no certificate)");
	split_host_port(hc);
	if (hc->expect == HD_EXPECT_BLOCKED) {
		static const char *const request_keys[] = {"method", "headers", "body", "expect_status", "expect_body",
							   "tls_verify", "ca", "min_cert_days", NULL};
		for (size_t i = 0; request_keys[i]; i++) {
			const cJSON *k = cJSON_GetObjectItemCaseSensitive(ctx->check_node, request_keys[i]);
			if (k != NULL)
				return cfg_error(ctx, k, true, "%s has no effect with expect: \"blocked\" (no request is "
						 "sent, only a TCP connect to %s)", request_keys[i], hc->host_port);
		}
	}
	return hd_blocked_validate(hc->expect, hc->blocked_kinds, ctx);
}

static void http_free_conf(void *type_conf)
{
	struct http_conf *hc = type_conf;

	free(hc->host_port);
	hc->host_port = NULL;
	free(hc->host);
	hc->host = NULL;
}

/* ---- one attempt ---- */

/*
 * The certificate, read while the connection is open (curl calls this for each header line of the answer; the
 * connection is closed by the time the transfer ends): the same OpenSSL object the tls check reads, so the same
 * facts, names and dates. A header callback runs for HEAD answers and empty bodies too.
 */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct http_attempt *a = arg;
	struct hd_persist *p = a->run->persist;
	struct curl_tlssessioninfo *info = NULL;
	X509 *x;

	(void)data;
	if (p == NULL || p->have_cert)
		return size * n;
	if (curl_easy_getinfo(a->easy, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == NULL ||
	    info->backend != CURLSSLBACKEND_OPENSSL || info->internals == NULL)
		return size * n;
	x = SSL_get1_peer_certificate(info->internals);
	if (x != NULL) {
		p->have_cert = hd_cert_from_x509(&p->cert, x) == 0;
		X509_free(x);
	}
	return size * n;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct http_attempt *a = arg;
	const struct http_conf *hc = a->run->conf->type_conf;
	size_t cap = hc->expect_body ? HTTP_BODY_CAP : HTTP_SAMPLE_CAP;
	size_t len = size * n, take = len < cap - a->body_len ? len : cap - a->body_len;

	if (a->body_len + take + 1 > a->body_cap) {
		a->body_cap = a->body_len + take + 1 > 2 * a->body_cap ? a->body_len + take + 1 : 2 * a->body_cap;
		a->body = xrealloc(a->body, a->body_cap);
	}
	memcpy(a->body + a->body_len, data, take);
	a->body_len += take;
	a->body[a->body_len] = '\0';
	if (take < len) {
		a->body_capped = true;
		return 0; /* enough read: curl stops with CURLE_WRITE_ERROR, which on_done knows is ours */
	}
	return len;
}

static void attempt_free(struct http_attempt *a)
{
	if (a->easy != NULL) {
		hd_curl_cancel(a->easy);
		curl_easy_cleanup(a->easy);
	}
	curl_slist_free_all(a->headers);
	free(a->body);
	a->run->state = NULL;
	free(a);
}

/* Where the transfer is now, from the times curl recorded for each step (the detail says "tls handshake"). */
static void set_transfer_phase(struct hd_check_run *run, CURL *easy, bool https)
{
	curl_off_t t_dns = 0, t_connect = 0, t_tls = 0;
	char *ip = NULL;

	curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &t_dns);
	curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &t_connect);
	curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &t_tls);
	curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);
	if (t_connect == 0)
		hd_run_phase(run, t_dns == 0 && (ip == NULL || ip[0] == '\0') ? HD_PHASE_RESOLVE : HD_PHASE_CONNECT, NULL);
	else if (https && t_tls == 0)
		hd_run_phase(run, HD_PHASE_TLS, "tls handshake");
	else
		hd_run_phase(run, HD_PHASE_RESPONSE, NULL);
}

static void fill_addresses(struct hd_check_run *run, CURL *easy)
{
	const struct http_conf *hc = run->conf->type_conf;
	char *ip = NULL, *local = NULL;
	long port = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip);
	curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port);
	curl_easy_getinfo(easy, CURLINFO_LOCAL_IP, &local);
	if (ip != NULL && ip[0] != '\0')
		snprintf(run->peer, sizeof(run->peer), strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
	else if (hc->host_is_ip) /* curl leaves these empty when the connect failed */
		hd_strlcpy(run->peer, hc->host_port, sizeof(run->peer));
	if (local != NULL && local[0] != '\0')
		hd_strlcpy(run->source_addr, local, sizeof(run->source_addr));
}

/* The start of the body, printable, for a detail. */
static void body_sample(const struct http_attempt *a, char *out, size_t len)
{
	size_t n = a->body_len < HTTP_SAMPLE_SHOWN ? a->body_len : HTTP_SAMPLE_SHOWN;
	size_t j = 0;

	for (size_t i = 0; i < n && j + 4 < len; i++) {
		unsigned char c = (unsigned char)a->body[i];
		out[j++] = c == '"' ? '\'' : (isprint(c) ? (char)c : (c == '\n' || c == '\r' || c == '\t') ? ' ' : '.');
	}
	if (a->body_len > n && j + 4 < len) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static bool status_accepted(const struct http_conf *hc, long status)
{
	for (size_t i = 0; i < hc->n_ranges; i++)
		if (status >= hc->ranges[i].lo && status <= hc->ranges[i].hi)
			return true;
	return false;
}

static bool is_tls_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

static bool is_protocol_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_TOO_MANY_REDIRECTS:
		return true;
	default:
		return false;
	}
}

/* What a TLS failure most likely means, for the person reading the detail. */
static const char *tls_hint(CURLcode rc, const char *msg, const struct http_conf *hc)
{
	if (rc == CURLE_PEER_FAILED_VERIFICATION && hc->ca == NULL &&
	    (strstr(msg, "self-signed") != NULL || strstr(msg, "local issuer") != NULL))
		return " (self-signed or private CA? set \"ca\" to its CA file)";
	if (strstr(msg, "wrong version number") != NULL)
		return " (the port does not speak TLS: http:// instead of https://?)";
	return "";
}

/* Ends an attempt whose request got an answer: the status, then the body, decide. */
static void judge_answer(struct http_attempt *a, const char *method, const char *where)
{
	struct hd_check_run *run = a->run;
	const struct http_conf *hc = run->conf->type_conf;
	long status = 0;
	char sample[HTTP_SAMPLE_SHOWN * 2], below[384];

	curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
	body_sample(a, sample, sizeof(sample));
	if (!status_accepted(hc, status)) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_HTTP_STATUS, "%s %s: status %ld, expected %s; body: \"%s\"", method, where,
			      status, hc->expect_status, sample);
		return;
	}
	if (hc->expect_body != NULL && memmem(a->body ? a->body : "", a->body_len, hc->expect_body,
					      strlen(hc->expect_body)) == NULL) {
		size_t len = a->body_len;
		bool capped = a->body_capped;
		attempt_free(a);
		hd_check_done(run, HD_KIND_PROTOCOL, "%s %s: status %ld but the body (%s%zu bytes) does not contain \"%s\"; it starts: \"%s\"",
			      method, where, status, capped ? "first " : "", len, hc->expect_body, sample);
		return;
	}
	if (run->persist != NULL && run->persist->have_cert &&
	    hd_cert_below(&run->persist->cert, hc->min_cert_days, hd_now_wall_ms() / 1000, run->conf->name, below,
			  sizeof(below))) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_THRESHOLD, "%s", below);
		return;
	}
	attempt_free(a);
	if (hc->expect_body != NULL)
		hd_check_done(run, HD_KIND_OK, "%s %s: status %ld, body contains \"%s\"", method, where, status,
			      hc->expect_body);
	else
		hd_check_done(run, HD_KIND_OK, "%s %s: status %ld", method, where, status);
}

static void on_done(CURL *easy, CURLcode result, void *arg)
{
	struct http_attempt *a = arg;
	struct hd_check_run *run = a->run;
	const struct http_conf *hc = run->conf->type_conf;
	const char *method = http_methods[hc->method];
	const char *where = run->conf->target;
	const char *why = a->errbuf[0] ? a->errbuf : curl_easy_strerror(result);
	char peer[80], msg[CURL_ERROR_SIZE];
	long os_errno = 0;
	int elapsed = (int)(hd_now_mono_ms_f() - run->started_ms + 0.5);
	enum hd_kind kind;

	fill_addresses(run, easy);
	set_transfer_phase(run, easy, hc->https); /* where a failure below happened */
	snprintf(peer, sizeof(peer), "%s", run->peer[0] ? run->peer : hc->host_port);
	if (result == CURLE_OK || (result == CURLE_WRITE_ERROR && a->body_capped)) {
		judge_answer(a, method, where);
		return;
	}
	hd_strlcpy(msg, why, sizeof(msg));
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
	if (result == CURLE_COULDNT_RESOLVE_HOST) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_DNS, "resolve %s: %s", hc->host_port, msg);
	} else if (result == CURLE_COULDNT_CONNECT) {
		kind = os_errno == 0 ? HD_KIND_UNREACHABLE : hd_kind_from_errno((int)os_errno);
		if (kind == HD_KIND_ERROR)
			kind = HD_KIND_UNREACHABLE;
		attempt_free(a);
		hd_check_done(run, kind, "connect %s: %s%s", peer, os_errno ? strerror((int)os_errno) : msg,
			      os_errno == ECONNREFUSED ? " (nothing listening, or a firewall REJECT)" : "");
	} else if (result == CURLE_OPERATION_TIMEDOUT) {
		const char *phase = hd_run_step(run);
		attempt_free(a);
		if (run->phase == HD_PHASE_RESPONSE)
			hd_check_done(run, HD_KIND_TIMEOUT, "%s %s: connected to %s, no complete answer within %d ms", method,
				      where, peer, elapsed);
		else
			hd_check_done(run, HD_KIND_TIMEOUT, "%s %s: no answer within %d ms", phase,
				      run->phase == HD_PHASE_RESOLVE ? hc->host_port : peer, elapsed);
	} else if (is_tls_error(result)) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_TLS, "tls handshake with %s: %s%s", peer, msg, tls_hint(result, msg, hc));
	} else if (is_protocol_error(result)) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_PROTOCOL, "%s %s from %s: no valid HTTP answer: %s", method, where, peer, msg);
	} else {
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "%s %s: %s (curl error %d)", method, where, msg, (int)result);
	}
}

static void http_start(struct hd_check_run *run)
{
	const struct http_conf *hc = run->conf->type_conf;
	struct http_attempt *a;
	long remaining = hd_run_remaining_ms(run);
	/* curl gives up just before the engine would, so that its own error says which step was late */
	long curl_ms = remaining - (remaining / 20 + 5 < 50 ? remaining / 20 + 5 : 50);

	if (hc->expect == HD_EXPECT_BLOCKED) {
		hd_connect_start(run, hc->host, hc->port, hc->expect, hc->blocked_kinds);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->run = run;
	run->state = a;
	hd_run_phase(run, HD_PHASE_REQUEST, NULL);
	a->easy = curl_easy_init();
	if (a->easy == NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "libcurl: cannot create a transfer (out of memory?)");
		return;
	}
	if (curl_ms < 1)
		curl_ms = 1;
	for (size_t i = 0; hc->headers && hc->headers[i]; i++) {
		struct curl_slist *longer = curl_slist_append(a->headers, hc->headers[i]);
		if (longer == NULL)
			hd_fatal("libcurl: out of memory");
		a->headers = longer;
	}
	curl_easy_setopt(a->easy, CURLOPT_URL, hc->url);
	curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(a->easy, CURLOPT_PROXY, ""); /* an http_proxy in the environment must not decide the answer */
	curl_easy_setopt(a->easy, CURLOPT_FRESH_CONNECT, 1L); /* every attempt proves a new connection works */
	curl_easy_setopt(a->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(a->easy, CURLOPT_DNS_CACHE_TIMEOUT, 0L); /* and resolves the name again */
	curl_easy_setopt(a->easy, CURLOPT_CONNECTTIMEOUT_MS, curl_ms);
	curl_easy_setopt(a->easy, CURLOPT_TIMEOUT_MS, curl_ms);
	curl_easy_setopt(a->easy, CURLOPT_USERAGENT, "healthd/" HD_VERSION);
	curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
	if (hc->https) {
		if (run->persist == NULL)
			run->persist = xcalloc(1, sizeof(*run->persist));
		run->persist->have_cert = false; /* /health shows what this attempt saw, or nothing */
		curl_easy_setopt(a->easy, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(a->easy, CURLOPT_HEADERDATA, a);
	}
	curl_easy_setopt(a->easy, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(a->easy, CURLOPT_SSL_VERIFYPEER, hc->tls_verify ? 1L : 0L);
	curl_easy_setopt(a->easy, CURLOPT_SSL_VERIFYHOST, hc->tls_verify ? 2L : 0L);
	if (hc->ca != NULL)
		curl_easy_setopt(a->easy, CURLOPT_CAINFO, hc->ca);
	/* Only the CA file (ca, or the system bundle): with a CA directory as well (Debian's default) curl does not
	 * cache the parsed store, and parses the whole system bundle on every attempt (~8 ms of CPU each). */
	curl_easy_setopt(a->easy, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(a->easy, CURLOPT_CA_CACHE_TIMEOUT, 600L); /* a replaced CA file is read within 10 min */
	if (hc->method == HTTP_HEAD) {
		curl_easy_setopt(a->easy, CURLOPT_NOBODY, 1L);
	} else if (hc->method == HTTP_POST) {
		curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, hc->body ? (long)strlen(hc->body) : 0L);
		curl_easy_setopt(a->easy, CURLOPT_COPYPOSTFIELDS, hc->body ? hc->body : "");
	}
	if (hd_curl_start(run->base, a->easy, on_done, a) < 0) {
		curl_easy_cleanup(a->easy);
		a->easy = NULL;
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "libcurl refused to start the request to %s", run->conf->target);
	}
}

static void http_free_persist(struct hd_persist *p)
{
	free(p);
}

static const struct hd_cert_info *http_cert(const struct hd_persist *p)
{
	return p->have_cert ? &p->cert : NULL;
}

static void http_cancel(struct hd_check_run *run)
{
	struct http_attempt *a = run->state;
	const struct http_conf *hc = run->conf->type_conf;

	if (hc->expect == HD_EXPECT_BLOCKED) {
		hd_connect_cancel(run);
		return;
	}
	if (a == NULL)
		return;
	/* The engine's timeout detail names the step and the address: take both from curl before letting go. */
	set_transfer_phase(run, a->easy, hc->https);
	fill_addresses(run, a->easy);
	attempt_free(a);
}

const struct hd_check_type hd_check_http = {
	.name = "http",
	.summary = "an HTTP(S) request whose answer has an accepted status (and body, with expect_body) is up",
	.keys = http_keys,
	.conf_size = sizeof(struct http_conf),
	.validate = http_validate,
	.start = http_start,
	.cancel = http_cancel,
	.free_conf = http_free_conf,
	.free_persist = http_free_persist,
	.cert = http_cert,
};
