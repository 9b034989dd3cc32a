/* checks.c: the list of check types; adding a type means one line here and one file. */
#include "check.h"

#include <string.h>

extern const struct hd_check_type hd_check_tcp;
extern const struct hd_check_type hd_check_http;
extern const struct hd_check_type hd_check_redis;
extern const struct hd_check_type hd_check_mysql;
extern const struct hd_check_type hd_check_disk;
extern const struct hd_check_type hd_check_program;
extern const struct hd_check_type hd_check_push;
extern const struct hd_check_type hd_check_tls;
extern const struct hd_check_type hd_check_dns;

const struct hd_check_type *const hd_check_types[] = {
	&hd_check_tcp,
	&hd_check_http,
	&hd_check_redis,
	&hd_check_mysql,
	&hd_check_disk,
	&hd_check_program,
	&hd_check_push,
	&hd_check_tls,
	&hd_check_dns,
	NULL,
};

const struct hd_check_type *hd_check_type_find(const char *name)
{
	for (size_t i = 0; hd_check_types[i] != NULL; i++)
		if (strcmp(hd_check_types[i]->name, name) == 0)
			return hd_check_types[i];
	return NULL;
}
