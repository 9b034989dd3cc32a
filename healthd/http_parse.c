/* http_parse.c: reads an HTTP/1.x request head strictly enough that odd bytes from a stranger are refused, not guessed. */
#include "http_parse.h"

#include <string.h>
#include <strings.h>

size_t hd_http_head_end(const char *buf, size_t len, size_t from)
{
	for (size_t i = from; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		/* "\n\n" or "\n\r\n": the line before this LF was empty */
		if (i >= 1 && buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return i + 1;
		if (i == 0 || (i == 1 && buf[0] == '\r'))
			return i + 1; /* an empty request line: the parser refuses it */
	}
	return 0;
}

static int fail(int *status, const char **error, int code, const char *why)
{
	*status = code;
	*error = why;
	return -1;
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The request target: origin-form ("/health?x") or absolute-form ("http://host/health"), into the decoded path. */
static int parse_target(const char *t, size_t n, struct hd_http_head *out, int *status, const char **error)
{
	size_t used = 0;

	if (n > 7 && strncasecmp(t, "http://", 7) == 0) {
		const char *slash = memchr(t + 7, '/', n - 7);
		if (slash == NULL) {
			t = "/";
			n = 1;
		} else {
			n -= (size_t)(slash - t);
			t = slash;
		}
	}
	if (n == 0 || t[0] != '/')
		return fail(status, error, 400, "the request target must be a path starting with /");
	for (size_t i = 0; i < n && t[i] != '?' && t[i] != '#'; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c >= 0x7f)
			return fail(status, error, 400, "the request target contains a control, space or non-ASCII byte");
		if (c == '%') {
			int hi = i + 2 < n ? hex_value(t[i + 1]) : -1, lo = i + 2 < n ? hex_value(t[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return fail(status, error, 400, "the request target has a malformed %-escape");
			c = (unsigned char)(hi * 16 + lo);
			if (c == 0)
				return fail(status, error, 400, "the request target encodes a NUL byte");
			i += 2;
		}
		if (used + 1 >= sizeof(out->path))
			return fail(status, error, 414, "the request target is too long");
		out->path[used++] = (char)c;
	}
	out->path[used] = '\0';
	return 0;
}

static bool token_in_list(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);

	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
			return true;
	}
	return false;
}

static int parse_request_line(const char *line, size_t n, struct hd_http_head *out, int *status, const char **error)
{
	const char *sp1 = memchr(line, ' ', n), *sp2;
	size_t mlen;

	if (sp1 == NULL || sp1 == line)
		return fail(status, error, 400, "malformed request line (expected METHOD /path HTTP/1.1)");
	mlen = (size_t)(sp1 - line);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			return fail(status, error, 400, "malformed method in the request line");
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line));
	if (sp2 == NULL)
		return fail(status, error, 400, "malformed request line (expected METHOD /path HTTP/1.1)");
	{
		const char *ver = sp2 + 1;
		size_t vlen = n - (size_t)(ver - line);
		if (vlen != 8 || strncmp(ver, "HTTP/", 5) != 0 || ver[6] != '.' || ver[5] < '0' || ver[5] > '9' ||
		    ver[7] < '0' || ver[7] > '9')
			return fail(status, error, 400, "malformed HTTP version in the request line");
		if (ver[5] != '1' || (ver[7] != '0' && ver[7] != '1'))
			return fail(status, error, 505, "only HTTP/1.0 and HTTP/1.1 are served");
		out->minor = ver[7] - '0';
	}
	if (mlen == 3 && memcmp(line, "GET", 3) == 0)
		out->method = HD_HTTP_GET;
	else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
		out->method = HD_HTTP_HEAD;
	else if (mlen == 7 && memcmp(line, "OPTIONS", 7) == 0)
		out->method = HD_HTTP_OPTIONS;
	else
		out->method = HD_HTTP_OTHER;
	if (out->method == HD_HTTP_OPTIONS && sp2 - sp1 == 2 && sp1[1] == '*') {
		strcpy(out->path, "*"); /* "OPTIONS * HTTP/1.1": about the server itself */
		return 0;
	}
	return parse_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), out, status, error);
}

/* One header line; only the few that change how the request is read are looked at. */
static int parse_header(const char *line, size_t n, struct hd_http_head *out, long long *content_length,
			bool *connection_close, bool *connection_keep, int *status, const char **error)
{
	const char *colon = memchr(line, ':', n);
	const char *v;
	size_t nlen, vlen;

	if (line[0] == ' ' || line[0] == '\t')
		return fail(status, error, 400, "folded header lines are not accepted");
	if (colon == NULL || colon == line)
		return fail(status, error, 400, "malformed header line (expected Name: value)");
	nlen = (size_t)(colon - line);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			return fail(status, error, 400, "malformed header name");
	v = colon + 1;
	vlen = n - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	for (size_t i = 0; i < vlen; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return fail(status, error, 400, "a header value contains a control byte");
	if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
		long long value = 0;
		if (vlen == 0)
			return fail(status, error, 400, "malformed Content-Length");
		for (size_t i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9' || value > 1000000000000LL)
				return fail(status, error, 400, "malformed Content-Length");
			value = value * 10 + (v[i] - '0');
		}
		if (*content_length >= 0 && *content_length != value)
			return fail(status, error, 400, "conflicting Content-Length headers");
		*content_length = value;
	} else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
		out->has_body = true;
	} else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
		*connection_close |= token_in_list(v, vlen, "close");
		*connection_keep |= token_in_list(v, vlen, "keep-alive");
	} else if (nlen == 6 && strncasecmp(line, "Accept", 6) == 0) {
		size_t keep = vlen < sizeof(out->accept) - 1 ? vlen : sizeof(out->accept) - 1;
		memcpy(out->accept, v, keep);
		out->accept[keep] = '\0';
	}
	return 0;
}

int hd_http_parse_head(const char *buf, size_t len, struct hd_http_head *out, int *status, const char **error)
{
	long long content_length = -1;
	bool connection_close = false, connection_keep = false, first = true;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	*status = 0;
	*error = NULL;
	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t n;
		if (nl == NULL)
			return fail(status, error, 400, "the request head does not end with an empty line");
		n = (size_t)(nl - line);
		pos += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\r', n) != NULL || memchr(line, '\0', n) != NULL)
			return fail(status, error, 400, "a stray CR or NUL byte in the request head");
		if (first) {
			if (n == 0)
				return fail(status, error, 400, "empty request line");
			if (parse_request_line(line, n, out, status, error) < 0)
				return -1;
			first = false;
			continue;
		}
		if (n == 0) {
			if (pos != len)
				return fail(status, error, 400, "bytes after the end of the request head");
			if (content_length > 0)
				out->has_body = true;
			out->keep_alive = out->minor == 1 ? !connection_close : connection_keep && !connection_close;
			return 0;
		}
		if (parse_header(line, n, out, &content_length, &connection_close, &connection_keep, status, error) < 0)
			return -1;
	}
	return fail(status, error, 400, "the request head does not end with an empty line");
}
