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

#endif
