/* check_dns.c: the dns check: one query over UDP to a server, on the loop, its answer parsed and compared. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "check_dns.h"
#include "config.h"

#define EXPECT_MAX HD_DNS_ANSWERS_MAX
#define NAME_JUMPS_MAX 32 /* compression pointers followed in one name */
#define RESOLV_CONF "/etc/resolv.conf"

static const char *const record_names[] = {"A", "AAAA", "CNAME", "MX", "TXT", "SRV", NULL};
static const int record_types[] = {HD_DNS_A, HD_DNS_AAAA, HD_DNS_CNAME, HD_DNS_MX, HD_DNS_TXT, HD_DNS_SRV};

struct dns_conf {
	char *query;
	int record; /* index into record_names */
	char *server;
	char **expect; /* NULL-terminated, normalized; NULL = any answer */
	struct sockaddr_storage addr; /* from server, or the first nameserver of /etc/resolv.conf */
	socklen_t addrlen;
};

struct dns_attempt {
	struct hd_check_run *run;
	int fd;
	struct event *ev;
	uint16_t id;
};

/* ---- the pure part: query and answer ---- */

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

int hd_dns_build_query(const char *name, int qtype, uint16_t id, unsigned char *buf, size_t buflen, char *why,
		       size_t whylen)
{
	size_t nlen = strlen(name), off = 12;

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (nlen == 0 || nlen > 253) {
		snprintf(why, whylen, "a name of 1 to 253 characters is needed");
		return -1;
	}
	if (buflen < 12 + nlen + 2 + 4)
		return snprintf(why, whylen, "no room for the query"), -1;
	memset(buf, 0, 12);
	put16(buf, id);
	buf[2] = 0x01; /* RD */
	put16(buf + 4, 1);
	for (size_t i = 0; i < nlen;) {
		size_t j = i;
		while (j < nlen && name[j] != '.')
			j++;
		if (j == i || j - i > 63) {
			snprintf(why, whylen, "each label (between dots) needs 1 to 63 characters");
			return -1;
		}
		for (size_t k = i; k < j; k++)
			if ((unsigned char)name[k] <= ' ' || (unsigned char)name[k] >= 0x7f) {
				snprintf(why, whylen, "only printable ASCII without blanks");
				return -1;
			}
		buf[off++] = (unsigned char)(j - i);
		memcpy(buf + off, name + i, j - i);
		off += j - i;
		i = j + 1;
	}
	buf[off++] = 0;
	put16(buf + off, (unsigned)qtype);
	put16(buf + off + 2, 1); /* IN */
	return (int)(off + 4);
}

/* Appends c to out (len used of cap, always NUL-terminated), escaping what is not printable ASCII. */
static void put_char(char *out, size_t cap, size_t *len, unsigned char c, bool lower)
{
	char piece[5];
	size_t n;

	if (c < 0x20 || c >= 0x7f || c == '\\')
		snprintf(piece, sizeof(piece), "\\x%02x", c);
	else
		snprintf(piece, sizeof(piece), "%c", lower ? tolower(c) : c);
	n = strlen(piece);
	if (*len + n < cap) {
		memcpy(out + *len, piece, n);
		*len += n;
	}
	out[*len] = '\0';
}

static void put_text(char *out, size_t cap, size_t *len, const char *s)
{
	while (*s)
		put_char(out, cap, len, (unsigned char)*s++, false);
}

/* Reads the name at *off (compression followed, at most NAME_JUMPS_MAX times); *off moves past it. */
static int read_name(const unsigned char *msg, size_t len, size_t *off, char *out, size_t cap, size_t *olen)
{
	size_t p = *off, end = 0, wire = 0;
	int jumps = 0;
	bool first = true;

	for (;;) {
		if (p >= len)
			return -1;
		unsigned c = msg[p];
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= len || ++jumps > NAME_JUMPS_MAX)
				return -1;
			if (end == 0)
				end = p + 2;
			p = (size_t)((c & 0x3f) << 8 | msg[p + 1]);
			continue;
		}
		if (c & 0xc0)
			return -1; /* extended label types are not names */
		if (c == 0) {
			if (end == 0)
				end = p + 1;
			break;
		}
		if (p + 1 + c > len || (wire += c + 1) > 255)
			return -1;
		if (!first)
			put_char(out, cap, olen, '.', false);
		for (size_t i = 0; i < c; i++)
			put_char(out, cap, olen, msg[p + 1 + i], true);
		first = false;
		p += 1 + c;
	}
	if (first)
		put_char(out, cap, olen, '.', false); /* the root */
	*off = end;
	return 0;
}

/* One record's data as text. */
static int rdata_text(const unsigned char *msg, size_t len, size_t off, size_t rdlen, int type, char *out,
		      size_t cap)
{
	size_t olen = 0, end = off + rdlen, p = off;
	char num[32];

	out[0] = '\0';
	switch (type) {
	case HD_DNS_A:
	case HD_DNS_AAAA:
		if (rdlen != (type == HD_DNS_A ? 4u : 16u))
			return -1;
		return inet_ntop(type == HD_DNS_A ? AF_INET : AF_INET6, msg + off, out, (socklen_t)cap) ? 0 : -1;
	case HD_DNS_CNAME:
		return read_name(msg, len, &p, out, cap, &olen) == 0 && p == end ? 0 : -1;
	case HD_DNS_MX:
		if (rdlen < 3)
			return -1;
		snprintf(num, sizeof(num), "%u ", get16(msg + off));
		put_text(out, cap, &olen, num);
		p += 2;
		return read_name(msg, len, &p, out, cap, &olen) == 0 && p == end ? 0 : -1;
	case HD_DNS_SRV:
		if (rdlen < 7)
			return -1;
		snprintf(num, sizeof(num), "%u %u %u ", get16(msg + off), get16(msg + off + 2), get16(msg + off + 4));
		put_text(out, cap, &olen, num);
		p += 6;
		return read_name(msg, len, &p, out, cap, &olen) == 0 && p == end ? 0 : -1;
	case HD_DNS_TXT:
		while (p < end) {
			size_t n = msg[p];
			if (p + 1 + n > end)
				return -1;
			for (size_t i = 0; i < n; i++)
				put_char(out, cap, &olen, msg[p + 1 + i], false);
			p += 1 + n;
		}
		return 0;
	default:
		return -1;
	}
}

int hd_dns_parse_answer(const unsigned char *msg, size_t len, uint16_t id, int qtype, struct hd_dns_answer *out,
			int *foreign, char *why, size_t whylen)
{
	size_t off = 12, qd, an;
	char name[HD_DNS_TEXT_MAX];
	size_t nlen = 0;

	*foreign = 0;
	out->n = out->total = 0;
	if (len < 12) {
		snprintf(why, whylen, "an answer of %zu bytes, shorter than a DNS header", len);
		return -1;
	}
	if (get16(msg) != id || !(msg[2] & 0x80)) {
		*foreign = 1;
		snprintf(why, whylen, "not an answer to our query (id or QR)");
		return -1;
	}
	out->rcode = msg[3] & 0x0f;
	out->truncated = (msg[2] & 0x02) != 0;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	if (qd > 1) {
		snprintf(why, whylen, "an answer with %zu questions", qd);
		return -1;
	}
	if (qd == 1) {
		if (read_name(msg, len, &off, name, sizeof(name), &nlen) < 0 || off + 4 > len) {
			snprintf(why, whylen, "a malformed question section");
			return -1;
		}
		if (get16(msg + off) != qtype) {
			*foreign = 1;
			snprintf(why, whylen, "an answer to another question");
			return -1;
		}
		off += 4;
	}
	for (size_t i = 0; i < an; i++) {
		size_t rdlen;
		int type;
		nlen = 0;
		if (read_name(msg, len, &off, name, sizeof(name), &nlen) < 0 || off + 10 > len) {
			snprintf(why, whylen, "a malformed answer record (%zu of %zu)", i + 1, an);
			return -1;
		}
		type = get16(msg + off);
		rdlen = get16(msg + off + 8);
		off += 10;
		if (rdlen > len - off) {
			snprintf(why, whylen, "an answer record (%zu of %zu) longer than the message", i + 1, an);
			return -1;
		}
		if (type == qtype) {
			char text[HD_DNS_TEXT_MAX];
			if (rdata_text(msg, len, off, rdlen, type, text, sizeof(text)) < 0) {
				snprintf(why, whylen, "a malformed record of the asked type (answer %zu of %zu)", i + 1,
					 an);
				return -1;
			}
			if (out->n < HD_DNS_ANSWERS_MAX)
				memcpy(out->text[out->n++], text, sizeof(text));
			out->total++;
		}
		off += rdlen;
	}
	return 0;
}

const char *hd_dns_rcode_name(int rcode, char *buf, size_t len)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
					    "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};

	if (rcode >= 0 && (size_t)rcode < HD_ARRAY_LEN(names))
		return names[rcode];
	snprintf(buf, len, "rcode %d", rcode);
	return buf;
}

/* ---- configuration ---- */

static void release_expect(void *field)
{
	char ***v = field;

	for (size_t i = 0; *v && (*v)[i]; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

/* Names as the parser writes them: lowercase, no trailing dot. */
static char *normalized(const char *s)
{
	char *n = xstrdup(s);
	size_t len = strlen(n);

	for (size_t i = 0; i < len; i++)
		n[i] = (char)tolower((unsigned char)n[i]);
	if (len > 1 && n[len - 1] == '.')
		n[len - 1] = '\0';
	return n;
}

static int parse_expect(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	const cJSON *item;
	size_t n = 0;
	char **v;

	if (!cJSON_IsArray(node) || cJSON_GetArraySize(node) == 0 || cJSON_GetArraySize(node) > EXPECT_MAX)
		return cfg_error(ctx, node, false, "expected an array of 1 to %d strings (the answers, e.g. "
				 "[\"10.0.13.1\"] or [\"10 mail.example\"])", EXPECT_MAX);
	cJSON_ArrayForEach(item, node) {
		if (!cJSON_IsString(item) || item->valuestring[0] == '\0' ||
		    strlen(item->valuestring) >= HD_DNS_TEXT_MAX)
			return cfg_error(ctx, item, false, "expected a non-empty string of at most %d bytes",
					 HD_DNS_TEXT_MAX - 1);
	}
	v = xcalloc((size_t)cJSON_GetArraySize(node) + 1, sizeof(*v));
	cJSON_ArrayForEach(item, node) v[n++] = xstrdup(item->valuestring);
	release_expect(field);
	*(char ***)field = v;
	return 0;
}

static const struct cfg_key dns_keys[] = {
	{"query", CFG_STRING, offsetof(struct dns_conf, query), true, 0, 0, NULL, NULL,
	 "the name asked for, e.g. db-main.example"},
	{"record", CFG_ENUM, offsetof(struct dns_conf, record), false, 0, 0, "A", record_names,
	 "the record type asked for"},
	{"server", CFG_STRING, offsetof(struct dns_conf, server), false, 0, 0, NULL, NULL,
	 "the DNS server asked, `ADDR` or `ADDR:PORT` (`[ADDR]:PORT` for IPv6), port 53 by default; without it, the "
	 "first nameserver of /etc/resolv.conf when the configuration is loaded"},
	{"expect_answers", CFG_CUSTOM, offsetof(struct dns_conf, expect), false, 0, 0, NULL, NULL,
	 "the answer set it must resolve to, in any order (kind threshold otherwise): addresses for A/AAAA, names "
	 "for CNAME, \"10 mail.example\" for MX, \"0 5 5060 sip.example\" for SRV, the text for TXT",
	 parse_expect, release_expect, "array of strings"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};

static const cJSON *key_node(struct cfg_ctx *ctx, const char *key)
{
	const cJSON *node = ctx->check_node ? cJSON_GetObjectItemCaseSensitive(ctx->check_node, key) : NULL;

	return node ? node : ctx->check_node;
}

/* "ADDR", "ADDR:PORT", "[ADDR6]:PORT" or a bare IPv6 address into dc->addr: 0 or -1. */
static int parse_server(const char *text, struct dns_conf *dc)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':'), *portp = NULL;
	long port = 53;
	struct sockaddr_in *sin = (struct sockaddr_in *)&dc->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&dc->addr;

	memset(&dc->addr, 0, sizeof(dc->addr));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || (size_t)(close - text - 1) >= sizeof(host) || (close[1] != '\0' && close[1] != ':'))
			return -1;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		portp = close[1] == ':' ? close + 2 : NULL;
	} else if (colon != NULL && strchr(text, ':') == colon) {
		if ((size_t)(colon - text) >= sizeof(host))
			return -1;
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		portp = colon + 1;
	} else {
		if (strlen(text) >= sizeof(host))
			return -1;
		hd_strlcpy(host, text, sizeof(host));
	}
	if (portp != NULL) {
		char *end;
		errno = 0;
		port = strtol(portp, &end, 10);
		if (*portp == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		dc->addrlen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		dc->addrlen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* The first "nameserver ADDR" line of /etc/resolv.conf, or NULL. */
static char *resolv_conf_server(void)
{
	FILE *f = fopen(RESOLV_CONF, "re");
	char line[512], addr[INET6_ADDRSTRLEN + 1];
	char *found = NULL;

	if (f == NULL)
		return NULL;
	while (found == NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " nameserver %46s", addr) == 1)
			found = xstrdup(addr);
	fclose(f);
	return found;
}

/* An expected answer in the parser's form; A and AAAA as inet_ntop writes them. */
static int normalize_expect(struct cfg_ctx *ctx, struct dns_conf *dc)
{
	int type = record_types[dc->record];

	for (size_t i = 0; dc->expect && dc->expect[i]; i++) {
		char *n = normalized(dc->expect[i]);
		if (type == HD_DNS_A || type == HD_DNS_AAAA) {
			unsigned char bin[16];
			char text[INET6_ADDRSTRLEN];
			int af = type == HD_DNS_A ? AF_INET : AF_INET6;
			if (inet_pton(af, n, bin) != 1 || !inet_ntop(af, bin, text, sizeof(text))) {
				free(n);
				return cfg_error(ctx, key_node(ctx, "expect_answers"), false,
						 "\"%s\" is not an %s address (record %s)", dc->expect[i],
						 af == AF_INET ? "IPv4" : "IPv6", record_names[dc->record]);
			}
			free(n);
			n = xstrdup(text);
		} else if (type == HD_DNS_TXT) {
			free(n);
			n = xstrdup(dc->expect[i]);
		}
		free(dc->expect[i]);
		dc->expect[i] = n;
	}
	return 0;
}

static int dns_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	struct dns_conf *dc = conf->type_conf;
	unsigned char buf[512];
	char why[128], *from_resolv = NULL;
	const char *server = dc->server;

	if (hd_dns_build_query(dc->query, HD_DNS_A, 0, buf, sizeof(buf), why, sizeof(why)) < 0)
		return cfg_error(ctx, key_node(ctx, "query"), false, "\"%s\" is not a DNS name: %s", dc->query, why);
	from_resolv = normalized(dc->query); /* asked and shown as answers are: lowercase, no trailing dot */
	free(dc->query);
	dc->query = from_resolv;
	from_resolv = NULL;
	if (server == NULL && (server = from_resolv = resolv_conf_server()) == NULL)
		return cfg_error(ctx, ctx->check_node, true,
				 "no server given and no nameserver line in " RESOLV_CONF ": set server");
	if (parse_server(server, dc) < 0) {
		int rc = dc->server ? cfg_error(ctx, key_node(ctx, "server"), false,
						"\"%s\" is not ADDR or ADDR:PORT (an IP address, e.g. 10.0.0.53 or "
						"10.0.0.53:5353 or [2001:db8::53]:53)", server)
				    : cfg_error(ctx, ctx->check_node, true,
						"the nameserver \"%s\" of " RESOLV_CONF " is not an IP address: set server",
						server);
		free(from_resolv);
		return rc;
	}
	free(from_resolv);
	if (normalize_expect(ctx, dc) < 0)
		return -1;
	conf->target = xstrdup(dc->query);
	return 0;
}

/* ---- the attempt ---- */

static void attempt_free(struct dns_attempt *a)
{
	if (a->ev)
		event_free(a->ev);
	if (a->fd >= 0)
		close(a->fd);
	a->run->state = NULL;
	free(a);
}

static int cmp_text(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The set as "a, b, c" (sorted, deduplicated, bounded): how many distinct members it has. */
static size_t join_set(const char **items, size_t n, char *out, size_t cap)
{
	size_t len = 0, distinct = 0;

	qsort(items, n, sizeof(*items), cmp_text);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(items[i], items[i - 1]) == 0)
			continue;
		distinct++;
		if (len + strlen(items[i]) + 8 >= cap) {
			if (len + 4 < cap)
				hd_strlcpy(out + len, "...", cap - len);
			len = cap;
			continue;
		}
		if (len > 0 && len < cap)
			len += (size_t)snprintf(out + len, cap - len, ", ");
		if (len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s", items[i]);
	}
	return distinct;
}

static void judge(struct hd_check_run *run, const struct dns_conf *dc, struct hd_dns_answer *ans)
{
	const char *rec = record_names[dc->record];
	const char *got[HD_DNS_ANSWERS_MAX], *want[EXPECT_MAX];
	char now[160], expected[160], rcbuf[16];
	size_t n_want = 0, n_got_distinct, n_want_distinct;
	bool same = true;

	if (ans->rcode != 0) {
		hd_check_done(run, HD_KIND_DNS, "%s %s at %s: %s%s", rec, dc->query, run->peer,
			      hd_dns_rcode_name(ans->rcode, rcbuf, sizeof(rcbuf)),
			      ans->rcode == 3 ? " (no such name)" : ans->rcode == 2 ? " (the server failed to answer)" :
			      ans->rcode == 5 ? " (the server refuses to answer for this name)" : "");
		return;
	}
	if (ans->truncated) {
		hd_check_done(run, HD_KIND_PROTOCOL, "%s %s at %s: the answer is truncated (TC set; healthd does "
			      "not retry over TCP)", rec, dc->query, run->peer);
		return;
	}
	for (size_t i = 0; i < ans->n; i++)
		got[i] = ans->text[i];
	n_got_distinct = join_set(got, ans->n, now, sizeof(now));
	if (dc->expect == NULL) {
		if (ans->total == 0)
			hd_check_done(run, HD_KIND_DNS, "%s %s at %s: no %s record (NOERROR, empty answer)", rec,
				      dc->query, run->peer, rec);
		else
			hd_check_done(run, HD_KIND_OK, "%s %s at %s: %s", rec, dc->query, run->peer, now);
		return;
	}
	while (dc->expect[n_want] && n_want < EXPECT_MAX) {
		want[n_want] = dc->expect[n_want];
		n_want++;
	}
	n_want_distinct = join_set(want, n_want, expected, sizeof(expected));
	if (ans->total != ans->n || n_got_distinct != n_want_distinct)
		same = false;
	for (size_t i = 0; same && i < ans->n; i++)
		same = bsearch(&got[i], want, n_want, sizeof(*want), cmp_text) != NULL;
	if (same)
		hd_check_done(run, HD_KIND_OK, "%s %s at %s: %s", rec, dc->query, run->peer, now);
	else
		hd_check_done(run, HD_KIND_THRESHOLD, "%s now resolves to %s, expected %s (%s at %s)", dc->query,
			      ans->n ? now : "nothing", expected, rec, run->peer);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_attempt *a = arg;
	struct hd_check_run *run = a->run;
	const struct dns_conf *dc = run->conf->type_conf;
	unsigned char msg[HD_DNS_MSG_MAX];
	char why[128];
	int foreign;
	ssize_t got;
	struct hd_dns_answer *ans;

	(void)what;
	got = recv(fd, msg, sizeof(msg), 0);
	if (got < 0) {
		int err = errno;
		if (err == EAGAIN || err == EINTR)
			return;
		attempt_free(a);
		hd_check_done(run, hd_kind_from_errno(err), "%s %s at %s: %s%s", record_names[dc->record], dc->query,
			      run->peer, strerror(err),
			      err == ECONNREFUSED ? " (no DNS server listening there: ICMP port unreachable)" : "");
		return;
	}
	ans = xcalloc(1, sizeof(*ans));
	if (hd_dns_parse_answer(msg, (size_t)got, a->id, record_types[dc->record], ans, &foreign, why,
				sizeof(why)) < 0) {
		free(ans);
		if (foreign)
			return; /* a late answer to an earlier query, or a spoofing attempt: keep waiting */
		attempt_free(a);
		hd_check_done(run, HD_KIND_PROTOCOL, "%s %s at %s: %s", record_names[dc->record], dc->query, run->peer,
			      why);
		return;
	}
	attempt_free(a);
	judge(run, dc, ans);
	free(ans);
}

static void dns_start(struct hd_check_run *run)
{
	const struct dns_conf *dc = run->conf->type_conf;
	struct dns_attempt *a = xcalloc(1, sizeof(*a));
	unsigned char query[512];
	char why[128];
	int len, err;

	a->run = run;
	a->fd = -1;
	run->state = a;
	hd_run_phase(run, HD_PHASE_REQUEST, "query");
	hd_run_set_peer(run, (const struct sockaddr *)&dc->addr);
	if (getrandom(&a->id, sizeof(a->id), 0) != (ssize_t)sizeof(a->id))
		a->id = (uint16_t)(hd_now_mono_ms() * 2654435761u >> 7);
	len = hd_dns_build_query(dc->query, record_types[dc->record], a->id, query, sizeof(query), why, sizeof(why));
	a->fd = socket(dc->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* connected: the kernel picks a random source port, drops datagrams from anyone else, reports ICMP errors */
	if (len < 0 || a->fd < 0 || connect(a->fd, (const struct sockaddr *)&dc->addr, dc->addrlen) < 0 ||
	    send(a->fd, query, (size_t)len, 0) != len) {
		err = len < 0 ? EINVAL : errno;
		attempt_free(a);
		hd_check_done(run, hd_kind_from_errno(err), "%s %s at %s: %s", record_names[dc->record], dc->query,
			      run->peer, len < 0 ? why : strerror(err));
		return;
	}
	hd_run_set_source(run, a->fd);
	a->ev = event_new(run->base, a->fd, EV_READ | EV_PERSIST, on_readable, a);
	event_add(a->ev, NULL); /* the engine's deadline ends a silent server: kind timeout */
}

static void dns_cancel(struct hd_check_run *run)
{
	if (run->state)
		attempt_free(run->state);
}

const struct hd_check_type hd_check_dns = {
	.name = "dns",
	.summary = "one query (A, AAAA, CNAME, MX, TXT or SRV) over UDP to a DNS server; NOERROR with answers (the "
		   "expected ones, if given) is up",
	.keys = dns_keys,
	.conf_size = sizeof(struct dns_conf),
	.validate = dns_validate,
	.start = dns_start,
	.cancel = dns_cancel,
};
