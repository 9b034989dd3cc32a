/* util.h: allocation that cannot fail, a string hash, clocks, time formatting, logging and sanitizing for every module. */
#ifndef HEALTHD_UTIL_H
#define HEALTHD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#ifndef HD_VERSION
#error "HD_VERSION comes from the Makefile (VERSION)"
#endif
#define HD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HD_MUST_CHECK __attribute__((warn_unused_result))

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) HD_PRINTF(1, 2);

/* Copies with truncation; always NUL-terminates. */
void hd_strlcpy(char *dst, const char *src, size_t size);
/* printf at buf + *used (buf holds len bytes) and advances *used; truncates, always NUL-terminates; once full, adds nothing. */
void hd_appendf(char *buf, size_t len, size_t *used, const char *fmt, ...) HD_PRINTF(4, 5);

int64_t hd_now_mono_ms(void);   /* monotonic clock, for deadlines and latencies */
double hd_now_mono_ms_f(void);  /* monotonic clock with sub-millisecond precision */
int64_t hd_now_wall_ms(void);   /* wall clock, for timestamps people read */
/* Milliseconds (a negative value counts as 0) as the struct timeval libevent's timers take. */
static inline struct timeval hd_ms_tv(int64_t ms)
{
	if (ms < 0)
		ms = 0;
	return (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}
/* "2026-11-23T04:12:07.123Z"; buf needs 32 bytes. wall_ms <= 0 gives "". */
void hd_iso8601(int64_t wall_ms, char *buf, size_t len);
/* "04:12:07" UTC; buf needs 16 bytes. */
void hd_hhmmss(int64_t wall_ms, char *buf, size_t len);

/* FNV-1a (64-bit) of a NUL-terminated string: for hash tables keyed by names. */
uint64_t hd_hash_str(const char *s);
/* The line and column (from 1; a column counts characters, not UTF-8 continuation bytes) of at in text. */
void hd_line_col(const char *text, const char *at, int *line, int *col);
struct cJSON;
/* The string at key in a JSON object, or fallback when it is missing or not a string. */
const char *hd_json_string(const struct cJSON *obj, const char *key, const char *fallback);
/* Mixes the bits of an integer key (splitmix64's finalizer), for tables indexed by serial numbers. */
uint64_t hd_hash_u64(uint64_t x);

/* Splits "ADDR:PORT" or "[v6]:PORT". Returns 0, or -1 with a reason in why. */
int hd_split_hostport(const char *s, char *host, size_t hostlen, int *port, const char **why);
/* The reverse: "host:port", or "[v6]:port" for an IPv6 address (caller frees). */
char *hd_join_hostport(const char *host, int port);

/*
 * Copies len bytes of untrusted text into out (outlen bytes, NUL-terminated) as one printable line: valid UTF-8
 * is kept, control characters and invalid bytes become \n \r \t \xNN, and a cut is marked with "...".
 */
void hd_sanitize_text(const char *in, size_t len, char *out, size_t outlen);
/* vsnprintf, then hd_sanitize_text: the formatted text (cut at 4 KiB) as one printable line. */
void hd_vformat_sanitized(char *out, size_t outlen, const char *fmt, va_list ap) HD_PRINTF(3, 0);
void hd_format_sanitized(char *out, size_t outlen, const char *fmt, ...) HD_PRINTF(3, 4);
/* Appends n bytes to a NUL-terminated *buf of *len bytes (a peer's answer); false, nothing appended, past max. */
bool hd_append_bounded(char **buf, size_t *len, size_t max, const char *data, size_t n);

/*
 * Reads a whole small regular file (secrets, tokens, spool files) into a buffer of its size; strips one trailing
 * newline. NULL on error with errno set: EINVAL for what is not a regular file (a named pipe is never waited on),
 * EFBIG for a file larger than max.
 */
char *hd_read_small_file(const char *path, size_t max);

enum hd_log_level { HD_LOG_ERR, HD_LOG_WARN, HD_LOG_INFO, HD_LOG_DEBUG };
void hd_log_init(bool use_syslog, enum hd_log_level level);
void hd_log(enum hd_log_level lvl, const char *fmt, ...) HD_PRINTF(2, 3);
void hd_vlog(enum hd_log_level lvl, const char *fmt, va_list ap) HD_PRINTF(2, 0);
#define log_err(...) hd_log(HD_LOG_ERR, __VA_ARGS__)
#define log_warn(...) hd_log(HD_LOG_WARN, __VA_ARGS__)
#define log_info(...) hd_log(HD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) hd_log(HD_LOG_DEBUG, __VA_ARGS__)
/* For broken invariants only: logs and aborts. */
void hd_fatal(const char *fmt, ...) HD_PRINTF(1, 2) __attribute__((noreturn));

#endif
