/* kinds.c: the kinds vocabulary in one table (name and words per kind), so that no kind can lack either. */
#include "kinds.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

static const struct {
	const char *name;
	struct hd_kind_words words;
} kinds[] = {
	[HD_KIND_OK] = {"ok", {"%s answers", "", "ok"}},
	[HD_KIND_TIMEOUT] = {"timeout", {"traffic to %s silently dropped", "firewall DROP?", "silently dropped"}},
	[HD_KIND_REFUSED] = {"refused", {"connections to %s refused", "firewall REJECT, or nothing listening?", "refused"}},
	[HD_KIND_UNREACHABLE] = {"unreachable", {"%s unreachable", "firewall REJECT, or no route?", "unreachable"}},
	[HD_KIND_DNS] = {"dns", {"%s no longer resolves", "DNS record removed, or the resolver down?",
				 "name did not resolve"}},
	[HD_KIND_AUTH] = {"auth", {"%s rejects our credentials", "credentials or grants changed?", "credentials rejected"}},
	[HD_KIND_PROTOCOL] = {"protocol", {"%s answers, but not as expected", "another service on that port?",
					   "unexpected answer"}},
	[HD_KIND_TLS] = {"tls", {"TLS with %s fails", "certificate expired or replaced?", "TLS failed"}},
	[HD_KIND_HTTP_STATUS] = {"http_status", {"%s answers with an unexpected HTTP status", "", "unexpected HTTP status"}},
	[HD_KIND_THRESHOLD] = {"threshold", {"%s past its threshold", "", "past its threshold"}},
	[HD_KIND_SLOW] = {"slow", {"%s answers too slowly", "overloaded?", "too slow"}},
	[HD_KIND_ERROR] = {"error", {"%s check fails", "", "failing"}},
	[HD_KIND_EXPOSED] = {"exposed", {"%s accepts connections but must be blocked", "firewall rule removed or changed?",
					 "reachable, must be blocked"}},
};
/* A kind appended to the enum without its row here does not compile. */
_Static_assert(HD_ARRAY_LEN(kinds) == HD_KIND_COUNT, "every kind needs its row in kinds[]");

static const char *const phases[] = {
	[HD_PHASE_NONE] = "none",
	[HD_PHASE_START] = "start",
	[HD_PHASE_RESOLVE] = "resolve",
	[HD_PHASE_CONNECT] = "connect",
	[HD_PHASE_TLS] = "tls",
	[HD_PHASE_HANDSHAKE] = "handshake",
	[HD_PHASE_AUTH] = "auth",
	[HD_PHASE_REQUEST] = "request",
	[HD_PHASE_RESPONSE] = "response",
	[HD_PHASE_CLOSE] = "close",
};
_Static_assert(HD_ARRAY_LEN(phases) == HD_PHASE_COUNT, "every phase needs its name in phases[]");

/* A path (disk check) times out because I/O hangs, not because a firewall drops packets. */
static const struct hd_kind_words path_timeout_words = {"I/O on %s hangs", "hung mount or failing disk?", "I/O hung"};

const char *hd_kind_name(enum hd_kind kind)
{
	return (unsigned)kind < HD_KIND_COUNT ? kinds[kind].name : "error";
}

int hd_kind_from_name(const char *name)
{
	for (int i = 0; i < HD_KIND_COUNT; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return i;
	return -1;
}

const char *hd_phase_name(enum hd_phase phase)
{
	return (unsigned)phase < HD_PHASE_COUNT && phases[phase] != NULL ? phases[phase] : "none";
}

int hd_phase_from_name(const char *name)
{
	for (int i = 0; i < HD_PHASE_COUNT; i++)
		if (phases[i] != NULL && strcmp(phases[i], name) == 0)
			return i;
	return -1;
}

const struct hd_kind_words *hd_kind_words(enum hd_kind kind, const char *target)
{
	if (kind == HD_KIND_TIMEOUT && target && target[0] == '/')
		return &path_timeout_words;
	return &kinds[(unsigned)kind < HD_KIND_COUNT ? kind : HD_KIND_ERROR].words;
}

enum hd_kind hd_kind_from_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
		return HD_KIND_REFUSED;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case EADDRNOTAVAIL:
		return HD_KIND_UNREACHABLE;
	case ETIMEDOUT:
		return HD_KIND_TIMEOUT;
	default:
		return HD_KIND_ERROR;
	}
}
