/* check_mysql.h: the pure part of the mysql check, exported for unit tests and the fuzzer. */
#ifndef HEALTHD_CHECK_MYSQL_H
#define HEALTHD_CHECK_MYSQL_H

#include <stddef.h>

/* The first packet a MySQL server sends is at most this long here (real greetings are about 100 bytes). */
#define HD_MYSQL_GREETING_MAX 1024

enum hd_greeting { HD_GREETING_OK, HD_GREETING_NEED_MORE, HD_GREETING_BAD };

/*
 * Judges the first len bytes a server sent before MariaDB Connector/C may read them: a protocol 10 handshake
 * with a NUL-terminated version and the fields after it, or an error packet with a real error code (0xffff,
 * a "progress report", makes Connector/C 3.3 dereference NULL). HD_GREETING_BAD says why in why.
 */
enum hd_greeting hd_mysql_greeting_check(const unsigned char *buf, size_t len, char *why, size_t whylen);

/* expect_value: equality with a string, or a numeric comparison ("<= 5", ">=0.5", "!= 0"). */
enum hd_mysql_cmp { HD_CMP_STRING, HD_CMP_LT, HD_CMP_LE, HD_CMP_GT, HD_CMP_GE, HD_CMP_EQ, HD_CMP_NE };
struct hd_mysql_expect {
	enum hd_mysql_cmp op;
	double number;    /* the operand of a numeric comparison */
	const char *text; /* HD_CMP_STRING: the string (not copied); otherwise the operator, "<=" */
};

/*
 * Parses expect_value. Optional blanks, then one of <= >= == != < > makes a numeric comparison: optional
 * blanks, a decimal number ([+-]digits[.digits][e[+-]digits], or starting with the point), optional blanks.
 * Anything else is a string the value must equal byte for byte. Returns 0, or -1 with *why set (a comparison
 * whose operand is not a number).
 */
int hd_mysql_expect_parse(const char *s, struct hd_mysql_expect *out, const char **why);
/* A decimal number as hd_mysql_expect_parse takes it, with optional blanks around: 0 and *out, or -1. */
int hd_mysql_number(const char *s, size_t len, double *out);
/* Judges a value from the server (len bytes; NULL for SQL NULL): 1 passes, 0 fails, -1 not a number. */
int hd_mysql_expect_match(const struct hd_mysql_expect *e, const char *value, size_t len);

#endif
