/* check_redis.h: the pure parts of the redis check, exported for unit tests (the type itself is in checks.c's list). */
#ifndef HEALTHD_CHECK_REDIS_H
#define HEALTHD_CHECK_REDIS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Copies len bytes of a server's text (or hiredis' error string) into out for a detail: CR/LF become blanks,
 * other control bytes \xNN, the secret (or a start of it of 8 bytes or more) "***", too long a text ends "...".
 */
void redis_server_text(char *out, size_t outlen, const char *text, size_t len, const char *secret);

/*
 * Finds the role: line of an INFO replication text: "master", or "replica" for Redis' "slave"; for a replica,
 * upstream gets " of HOST:PORT, link up|down". Returns false when there is no role: line.
 */
bool redis_parse_role(const char *info, char *role, size_t rolelen, char *upstream, size_t uplen);

#endif
