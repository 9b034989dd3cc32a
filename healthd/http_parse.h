/* http_parse.h: the HTTP/1.x request head as the HTTP API reads it from a stranger (pure: no I/O, no allocation). */
#ifndef HEALTHD_HTTP_PARSE_H
#define HEALTHD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum hd_http_method { HD_HTTP_GET, HD_HTTP_HEAD, HD_HTTP_OPTIONS, HD_HTTP_OTHER };

#define HD_HTTP_MAX_PATH 1024
#define HD_HTTP_MAX_ACCEPT 256

struct hd_http_head {
	enum hd_http_method method;
	int minor;        /* HTTP/1.minor: 0 or 1 */
	bool keep_alive;  /* what the client asked for (version default, then Connection) */
	bool has_body;    /* Content-Length above 0, or any Transfer-Encoding */
	char path[HD_HTTP_MAX_PATH];     /* percent-decoded, without the query */
	char accept[HD_HTTP_MAX_ACCEPT]; /* the Accept header, cut to fit ("" when absent) */
};

/*
 * Where the head that starts buf ends (just past its empty line), looking from byte `from` on (what an earlier
 * call has already scanned); 0 when it has not ended yet. Bare LF line ends are accepted.
 */
size_t hd_http_head_end(const char *buf, size_t len, size_t from);

/*
 * Parses a complete head (buf[0..len), as hd_http_head_end delimited it). 0 with *out filled, or -1 with *status
 * (400, 414, 505) and *error (static text) for the answer. A method other than GET, HEAD or OPTIONS parses (as
 * HD_HTTP_OTHER): refusing it with 405 is the caller's choice.
 */
int hd_http_parse_head(const char *buf, size_t len, struct hd_http_head *out, int *status, const char **error);

#endif
