/* checks.c: the list of check types and the kinds vocabulary; adding a type means one line here and one file. */
#include "check.h"

#include <errno.h>
#include <string.h>

extern const struct hd_check_type hd_check_tcp;
extern const struct hd_check_type hd_check_http;
extern const struct hd_check_type hd_check_redis;
extern const struct hd_check_type hd_check_mysql;
extern const struct hd_check_type hd_check_disk;
extern const struct hd_check_type hd_check_program;
extern const struct hd_check_type hd_check_push;
extern const struct hd_check_type hd_check_tls;

const struct hd_check_type *const hd_check_types[] = {
	&hd_check_tcp,
	&hd_check_http,
	&hd_check_redis,
	&hd_check_mysql,
	&hd_check_disk,
	&hd_check_program,
	&hd_check_push,
	&hd_check_tls,
	NULL,
};

static const char *const kind_names[HD_KIND_COUNT] = {
	[HD_KIND_OK] = "ok",
	[HD_KIND_TIMEOUT] = "timeout",
	[HD_KIND_REFUSED] = "refused",
	[HD_KIND_UNREACHABLE] = "unreachable",
	[HD_KIND_DNS] = "dns",
	[HD_KIND_AUTH] = "auth",
	[HD_KIND_PROTOCOL] = "protocol",
	[HD_KIND_TLS] = "tls",
	[HD_KIND_HTTP_STATUS] = "http_status",
	[HD_KIND_THRESHOLD] = "threshold",
	[HD_KIND_SLOW] = "slow",
	[HD_KIND_ERROR] = "error",
};

const char *hd_kind_name(enum hd_kind kind)
{
	return (unsigned)kind < HD_KIND_COUNT ? kind_names[kind] : "error";
}

int hd_kind_from_name(const char *name)
{
	for (int i = 0; i < HD_KIND_COUNT; i++)
		if (strcmp(kind_names[i], name) == 0)
			return i;
	return -1;
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

const struct hd_check_type *hd_check_type_find(const char *name)
{
	for (size_t i = 0; hd_check_types[i] != NULL; i++)
		if (strcmp(hd_check_types[i]->name, name) == 0)
			return hd_check_types[i];
	return NULL;
}
