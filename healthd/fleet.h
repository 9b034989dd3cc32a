/* fleet.h: `healthd fleet`: every backend's /health in one table, one verdict per dependency, and the graph. */
#ifndef HEALTHD_FLEET_H
#define HEALTHD_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum hd_fleet_format { HD_FLEET_TABLE, HD_FLEET_JSON, HD_FLEET_DOT, HD_FLEET_DIAGRAMS, HD_FLEET_HTML };

/* What polling one backend's healthd gave: its answer, or why there is none. Strings are borrowed. */
struct hd_fleet_reply {
	const char *url;  /* as it may be shown: no user info, query or fragment */
	const char *name; /* what names the backend when its answer does not: "host:port" */
	bool answered;    /* an HTTP answer came: http_status and body are set */
	long http_status;
	const char *body;
	size_t body_len;
	int kind;           /* an enum hd_kind, when not answered */
	const char *detail; /* why not, when not answered */
};

/* healthd fleet URL... | --from FILE [--timeout-ms N] [--json | --dot | --diagrams]: exits as `healthd check`. */
int fleet_main(int argc, char **argv);
/* Renders the replies in one format; returns the exit code: 0 every check up, 1 only non-critical checks down,
 * 2 a critical check down or a backend that did not answer as healthd. Bodies are parsed and sanitized here. */
int hd_fleet_report(const struct hd_fleet_reply *replies, size_t n, enum hd_fleet_format format, FILE *out);
/* in as the inside of a double-quoted DOT string / Python string literal: quotes and backslashes escaped,
 * newlines as \n, other control characters as a visible \xNN; cut (never inside an escape) to fit outlen. */
void hd_fleet_escape_dot(const char *in, char *out, size_t outlen);
void hd_fleet_escape_python(const char *in, char *out, size_t outlen);

#endif
