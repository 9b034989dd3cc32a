/* check_tls.c: the tls check: resolve, TCP connect, a TLS handshake that verifies the peer; its certificate's expiry. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "check.h"
#include "config.h"
#include "resolve.h"

struct tls_conf {
	char *host;
	int port;
	char *servername;
	char *ca;
	bool verify;
	int min_cert_days;
};

/* Kept across attempts: the SSL_CTX (the CA file is read once) and the latest certificate seen. */
struct hd_persist {
	SSL_CTX *ctx;
	bool have_cert;
	struct hd_cert_info cert;
};

struct tls_attempt {
	struct hd_check_run *run;
	struct hd_resolve *resolve;
	struct bufferevent *tcp; /* until the TCP connect completes; then owned by tls */
	struct bufferevent *tls;
	SSL *ssl;                /* owned by tls once it exists */
};

static const struct cfg_key tls_keys[] = {
	{"host", CFG_STRING, offsetof(struct tls_conf, host), true, 0, 0, NULL, NULL,
	 "name or IP address; names are resolved again on every attempt"},
	{"port", CFG_INT, offsetof(struct tls_conf, port), true, 1, 65535, NULL, NULL, "TCP port"},
	{"servername", CFG_STRING, offsetof(struct tls_conf, servername), false, 0, 0, NULL, NULL,
	 "the name sent as SNI (not for an IP address) and that the certificate must match; default: host"},
	{"ca", CFG_STRING, offsetof(struct tls_conf, ca), false, 0, 0, NULL, NULL,
	 "PEM file of the CA(s) to verify the server with, instead of the system's", cfg_parse_ca},
	{"verify", CFG_BOOL, offsetof(struct tls_conf, verify), false, 0, 0, "true", NULL,
	 "verify the certificate chain and name; false still records the certificate and its expiry"},
	{"min_cert_days", CFG_INT, offsetof(struct tls_conf, min_cert_days), false, 0, 36500, "0 (off)", NULL,
	 "fail (kind threshold) when the certificate expires in fewer days than this"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL, NULL},
};

static const char *servername(const struct tls_conf *tc)
{
	return tc->servername ? tc->servername : tc->host;
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int tls_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	const struct tls_conf *tc = conf->type_conf;

	(void)ctx;
	conf->target = hd_join_hostport(tc->host, tc->port);
	return 0;
}

static void attempt_free(struct tls_attempt *a)
{
	hd_resolve_cancel(a->resolve);
	if (a->tls)
		bufferevent_free(a->tls); /* frees the SSL and, with it, the TCP bufferevent and socket */
	else {
		if (a->ssl)
			SSL_free(a->ssl);
		if (a->tcp)
			bufferevent_free(a->tcp);
	}
	a->run->state = NULL;
	free(a);
}

/* The text of the first OpenSSL error queued on the bufferevent (or the thread), "" when none. */
static unsigned long take_ssl_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0, next;
	const char *reason;

	if (e == 0)
		e = ERR_get_error();
	while (bev && (next = bufferevent_get_openssl_error(bev)) != 0)
		(void)next; /* the first one says why; drain the rest */
	ERR_clear_error();
	buf[0] = '\0';
	if (e == 0)
		return 0;
	reason = ERR_reason_error_string(e);
	if (reason != NULL)
		hd_strlcpy(buf, reason, len);
	else
		snprintf(buf, len, "OpenSSL error %lu", e);
	return e;
}

static void record_cert(struct tls_attempt *a)
{
	struct hd_persist *p = a->run->persist;
	X509 *x = SSL_get1_peer_certificate(a->ssl);

	if (x == NULL)
		return;
	p->have_cert = hd_cert_from_x509(&p->cert, x) == 0;
	X509_free(x);
}

/* Sees the server's certificate while it is verified, so that one that fails verification still tells its
 * facts (after a failed handshake OpenSSL keeps no peer certificate). Changes no verdict. */
static int on_verify(int preverify_ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_attempt *a = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(store);

	if (a != NULL && leaf != NULL && !a->run->persist->have_cert)
		a->run->persist->have_cert = hd_cert_from_x509(&a->run->persist->cert, leaf) == 0;
	return preverify_ok;
}

static void on_tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_attempt *a = arg;
	struct hd_check_run *run = a->run;
	const struct tls_conf *tc = run->conf->type_conf;
	int err = EVUTIL_SOCKET_ERROR();
	char reason[128], detail[384];
	unsigned long e;
	long vr;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		const char *version = SSL_get_version(a->ssl);
		const char *cipher = SSL_get_cipher_name(a->ssl);
		record_cert(a);
		if (!run->persist->have_cert) {
			attempt_free(a);
			hd_check_done(run, HD_KIND_TLS, "TLS handshake with %s: no readable peer certificate", run->peer);
			return;
		}
		if (hd_cert_below(&run->persist->cert, tc->min_cert_days, hd_now_wall_ms() / 1000, run->conf->name, detail,
				  sizeof(detail))) {
			attempt_free(a);
			hd_check_done(run, HD_KIND_THRESHOLD, "%s", detail);
			return;
		}
		char date[16];
		hd_cert_date(run->persist->cert.not_after_s, date, sizeof(date));
		snprintf(detail, sizeof(detail), "TLS handshake with %s: %s %s, certificate valid until %s (%lld days)",
			 run->peer, version, cipher, date,
			 (long long)hd_cert_days_left(run->persist->cert.not_after_s, hd_now_wall_ms() / 1000));
		attempt_free(a);
		hd_check_done(run, HD_KIND_OK, "%s", detail);
		return;
	}
	e = take_ssl_error(a->tls, reason, sizeof(reason));
	vr = SSL_get_verify_result(a->ssl);
	if (!run->persist->have_cert)
		record_cert(a); /* else on_verify saw it: a certificate that failed verification still tells its expiry */
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		snprintf(detail, sizeof(detail), "TLS handshake with %s (servername %s): %s: %s", run->peer, servername(tc),
			 reason, X509_verify_cert_error_string(vr));
		attempt_free(a);
		hd_check_done(run, HD_KIND_TLS, "%s", detail);
		return;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER || ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG ||
	     ERR_GET_REASON(e) == SSL_R_UNKNOWN_PROTOCOL)) {
		snprintf(detail, sizeof(detail), "TLS handshake with %s: %s (the server does not speak TLS on this port?)",
			 run->peer, reason);
		attempt_free(a);
		hd_check_done(run, HD_KIND_PROTOCOL, "%s", detail);
		return;
	}
	if (e != 0) {
		snprintf(detail, sizeof(detail), "TLS handshake with %s: %s", run->peer, reason);
		attempt_free(a);
		hd_check_done(run, HD_KIND_TLS, "%s", detail);
		return;
	}
	attempt_free(a);
	if ((what & BEV_EVENT_EOF) || err == 0)
		hd_check_done(run, HD_KIND_PROTOCOL, "TLS handshake with %s: the server closed the connection", run->peer);
	else
		hd_check_done(run, hd_kind_from_errno(err), "TLS handshake with %s: %s", run->peer, strerror(err));
}

static SSL_CTX *make_ctx(const struct tls_conf *tc, char *why, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		take_ssl_error(NULL, why, len);
		return NULL;
	}
	if (tc->ca ? SSL_CTX_load_verify_locations(ctx, tc->ca, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		char reason[128];
		take_ssl_error(NULL, reason, sizeof(reason));
		snprintf(why, len, "cannot load the CA%s%s: %s", tc->ca ? " file " : "s of the system", tc->ca ? tc->ca : "",
			 reason);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, tc->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, on_verify);
	return ctx;
}

static void on_tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_attempt *a = arg;
	struct hd_check_run *run = a->run;
	const struct tls_conf *tc = run->conf->type_conf;
	const char *name = servername(tc);
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (!(what & BEV_EVENT_CONNECTED)) {
		attempt_free(a);
		hd_connect_failed(run, err);
		return;
	}
	hd_run_set_source(run, bufferevent_getfd(a->tcp));
	hd_run_phase(run, HD_PHASE_TLS, "handshake");
	a->ssl = SSL_new(run->persist->ctx);
	if (a->ssl == NULL) {
		char why[128];
		take_ssl_error(NULL, why, sizeof(why));
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "TLS with %s: %s", run->peer, why);
		return;
	}
	SSL_set_app_data(a->ssl, a);
	if (is_ip_literal(name)) {
		if (tc->verify)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(a->ssl), name);
	} else {
		SSL_set_tlsext_host_name(a->ssl, name);
		if (tc->verify)
			SSL_set1_host(a->ssl, name);
	}
	bufferevent_setcb(a->tcp, NULL, NULL, NULL, NULL);
	a->tls = bufferevent_openssl_filter_new(run->base, a->tcp, a->ssl, BUFFEREVENT_SSL_CONNECTING,
						 BEV_OPT_CLOSE_ON_FREE);
	if (a->tls == NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_ERROR, "TLS with %s: cannot start the handshake", run->peer);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(a->tls, 1);
	bufferevent_setcb(a->tls, NULL, NULL, on_tls_event, a);
	bufferevent_enable(a->tls, EV_READ | EV_WRITE);
}

static void on_resolved(const struct sockaddr *sa, socklen_t salen, const char *error, void *arg)
{
	struct tls_attempt *a = arg;
	struct hd_check_run *run = a->run;
	int err;

	a->resolve = NULL;
	if (error != NULL) {
		attempt_free(a);
		hd_check_done(run, HD_KIND_DNS, "%s", error);
		return;
	}
	a->tcp = hd_socket_connect(run, sa, salen, on_tcp_event, a, &err);
	if (a->tcp == NULL) {
		attempt_free(a);
		hd_connect_failed(run, err);
	}
}

static void tls_start(struct hd_check_run *run)
{
	const struct tls_conf *tc = run->conf->type_conf;
	struct tls_attempt *a;

	if (run->persist == NULL)
		run->persist = xcalloc(1, sizeof(*run->persist));
	run->persist->have_cert = false; /* /health shows what this attempt sees, or nothing */
	if (run->persist->ctx == NULL) {
		char why[256];
		run->persist->ctx = make_ctx(tc, why, sizeof(why));
		if (run->persist->ctx == NULL) {
			hd_check_done(run, HD_KIND_ERROR, "%s", why);
			return;
		}
	}
	a = xcalloc(1, sizeof(*a));
	a->run = run;
	run->state = a;
	hd_resolve_begin(run, tc->host, tc->port, on_resolved, a, &a->resolve);
}

static void tls_cancel(struct hd_check_run *run)
{
	if (run->persist)
		run->persist->have_cert = false;
	if (run->state)
		attempt_free(run->state);
}

static void tls_free_persist(struct hd_persist *p)
{
	SSL_CTX_free(p->ctx);
	free(p);
}

static const struct hd_cert_info *tls_cert(const struct hd_persist *p)
{
	return p->have_cert ? &p->cert : NULL;
}

const struct hd_check_type hd_check_tls = {
	.name = "tls",
	.summary = "a TLS handshake with host:port whose certificate verifies (and expires late enough) is up",
	.keys = tls_keys,
	.conf_size = sizeof(struct tls_conf),
	.validate = tls_validate,
	.start = tls_start,
	.cancel = tls_cancel,
	.free_persist = tls_free_persist,
	.cert = tls_cert,
};
