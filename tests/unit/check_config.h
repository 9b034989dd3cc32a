/* check_config.h: shared by the unit tests of check types: parse one check's keys, expect an error or a config. */
#ifndef HEALTHD_TEST_CHECK_CONFIG_H
#define HEALTHD_TEST_CHECK_CONFIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* The type and name the including test sets before including this file. */
#ifndef TEST_CHECK_TYPE
#error "define TEST_CHECK_TYPE and TEST_CHECK_NAME before including check_config.h"
#endif

/* Parses one check given as the inside of its JSON object; returns the config or NULL with *error set. */
static struct hd_config *parse_check(const char *keys, char **error)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"checks\": [{\"name\": \"" TEST_CHECK_NAME "\", \"type\": \"" TEST_CHECK_TYPE
		 "\",\n %s}]}", keys);
	return config_parse("t.json", text, strlen(text), error);
}

static void expect_error(const char *keys, const char *fragment)
{
	char *error = NULL;
	struct hd_config *cfg = parse_check(keys, &error);

	if (cfg != NULL || error == NULL || strstr(error, fragment) == NULL)
		fail_msg("for %s: expected an error containing \"%s\", got %s", keys, fragment, error ? error : "none");
	free(error);
}

#endif
