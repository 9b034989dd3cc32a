/* util.c: allocation wrappers, a string hash, JSON and text helpers, clocks, timestamps, host:port parsing, the logger, sanitizing peer text. */
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static bool log_to_syslog;
static enum hd_log_level log_level = HD_LOG_INFO;

static void *check_alloc(void *p)
{
	if (p == NULL)
		hd_fatal("out of memory");
	return p;
}

void *xmalloc(size_t n) { return check_alloc(malloc(n ? n : 1)); }
void *xcalloc(size_t count, size_t n) { return check_alloc(calloc(count ? count : 1, n ? n : 1)); }
void *xrealloc(void *p, size_t n) { return check_alloc(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return check_alloc(strdup(s ? s : "")); }

uint64_t hd_hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

void hd_line_col(const char *text, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < at && *p; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)*p & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

const char *hd_json_string(const struct cJSON *obj, const char *key, const char *fallback)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : fallback;
}

uint64_t hd_hash_u64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	return check_alloc(out);
}

void hd_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n;

	if (size == 0)
		return;
	n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void hd_appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n;
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hd_now_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t hd_now_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

double hd_now_mono_ms_f(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void hd_iso8601(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (wall_ms <= 0) {
		hd_strlcpy(buf, "", len);
		return;
	}
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

void hd_hhmmss(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int hd_split_hostport(const char *s, char *host, size_t hostlen, int *port, const char **why)
{
	const char *colon, *hstart = s;
	size_t hlen;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			*why = "expected \"[IPv6]:PORT\"";
			return -1;
		}
		hstart = s + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*why = "expected \"ADDR:PORT\"";
			return -1;
		}
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= hostlen) {
		*why = "expected \"ADDR:PORT\" with a non-empty address";
		return -1;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || p < 1 || p > 65535) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

char *hd_join_hostport(const char *host, int port)
{
	return strchr(host, ':') ? xasprintf("[%s]:%d", host, port) : xasprintf("%s:%d", host, port);
}

char *hd_read_small_file(const char *path, size_t max)
{
	/* O_NONBLOCK: opening a named pipe must not wait for a writer (it is refused below anyway) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	size_t want, used = 0;
	char *buf;
	ssize_t n;
	int saved;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > max) {
		saved = errno;
		if (fstat(fd, &st) == 0)
			saved = !S_ISREG(st.st_mode) ? EINVAL : EFBIG; /* not a regular file; larger than max */
		close(fd);
		errno = saved;
		return NULL;
	}
	/* By its size, not by max: 5,000 spool files must not reserve 5,000 times the limit. */
	want = (size_t)st.st_size;
	buf = xmalloc(want + 1);
	while (used < want && (n = read(fd, buf + used, want - used)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			free(buf);
			errno = saved;
			return NULL;
		}
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	if (used > 0 && buf[used - 1] == '\n')
		buf[--used] = '\0';
	if (used > 0 && buf[used - 1] == '\r')
		buf[--used] = '\0';
	return buf;
}

void hd_log_init(bool use_syslog, enum hd_log_level level)
{
	log_to_syslog = use_syslog;
	log_level = level;
	if (use_syslog)
		openlog("healthd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void hd_vlog(enum hd_log_level lvl, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char ts[32], line[2048];

	if (lvl > log_level)
		return;
	/* One line each, whatever a message quotes: peer bytes cannot forge lines or reach a terminal raw. */
	hd_vformat_sanitized(line, sizeof(line), fmt, ap);
	if (log_to_syslog) {
		syslog(prio[lvl], "%s", line);
		return;
	}
	hd_iso8601(hd_now_wall_ms(), ts, sizeof(ts));
	fprintf(stderr, "%s healthd[%d] %s: %s\n", ts, (int)getpid(), names[lvl], line);
}

void hd_log(enum hd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hd_vlog(lvl, fmt, ap);
	va_end(ap);
}

void hd_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hd_vlog(HD_LOG_ERR, fmt, ap);
	va_end(ap);
	abort();
}

/* ---- text from strangers ---- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2, cp = p[0] & 0x1Fu;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3, cp = p[0] & 0x0Fu;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3Fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0; /* overlong, beyond Unicode, or a surrogate */
	return n;
}

/* The next piece of in[i..len) as sanitized text: its bytes in piece (or esc), its length, and the input it takes. */
static size_t next_piece(const unsigned char *p, size_t i, size_t len, char esc[8], const char **piece, size_t *take)
{
	if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
		snprintf(esc, 8, "\\%c", p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't');
		*piece = esc, *take = 1;
		return 2;
	}
	if (p[i] < 0x20 || p[i] == 0x7f || (*take = utf8_sequence(p + i, len - i)) == 0) {
		snprintf(esc, 8, "\\x%02x", p[i]);
		*piece = esc, *take = 1;
		return 4;
	}
	*piece = (const char *)p + i;
	return *take;
}

void hd_sanitize_text(const char *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t used = 0, total = 0, i, n, take;
	const char *piece;
	char esc[8];
	bool cut;

	if (outlen == 0)
		return;
	for (i = 0; i < len && total < outlen; i += take)
		total += next_piece(p, i, len, esc, &piece, &take);
	cut = total + 1 > outlen; /* then keep room for "..." */
	for (i = 0; i < len; i += take) {
		n = next_piece(p, i, len, esc, &piece, &take);
		if (cut && used + n + 4 > outlen) {
			if (used + 4 <= outlen) {
				memcpy(out + used, "...", 3);
				used += 3;
			}
			break;
		}
		memcpy(out + used, piece, n);
		used += n;
	}
	out[used] = '\0';
}

void hd_vformat_sanitized(char *out, size_t outlen, const char *fmt, va_list ap)
{
	char raw[4096];
	int n = vsnprintf(raw, sizeof(raw), fmt, ap);

	hd_sanitize_text(raw, n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1, out, outlen);
}

bool hd_append_bounded(char **buf, size_t *len, size_t max, const char *data, size_t n)
{
	if (*len + n > max)
		return false;
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

void hd_format_sanitized(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hd_vformat_sanitized(out, outlen, fmt, ap);
	va_end(ap);
}
