/* fuzz_expect_status.c: drives the http check's expect_status parser (codes, ranges, classes, numbers) through the config parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks how the rest is given: even, as a JSON string (escaped here, so that every input reaches the
 * parser); odd, as raw JSON text (numbers like 1e300, -0, 200.5, and anything else).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hd_config_opts opts = {.no_files = true, .keep_warnings = true};
	static const char head[] = "{\"checks\": [{\"name\": \"a\", \"type\": \"http\", \"url\": \"http://127.0.0.1:1/\", "
				   "\"expect_status\": ";
	char *text, *error = NULL;
	size_t used = 0;
	struct hd_config *cfg;

	if (size == 0 || size > 4096)
		return 0;
	hd_log_init(false, HD_LOG_ERR);
	text = xmalloc(sizeof(head) + 6 * size + 8);
	memcpy(text, head, sizeof(head) - 1);
	used = sizeof(head) - 1;
	if (data[0] % 2 == 0) {
		text[used++] = '"';
		for (size_t i = 1; i < size; i++) {
			unsigned char c = data[i];
			if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
				used += (size_t)sprintf(text + used, "\\u%04x", c);
			else
				text[used++] = (char)c;
		}
		text[used++] = '"';
	} else {
		memcpy(text + used, data + 1, size - 1);
		used += size - 1;
	}
	memcpy(text + used, "}]}", 3);
	used += 3;
	cfg = config_parse_opts("fuzz.json", text, used, &opts, &error);
	if ((cfg == NULL) == (error == NULL))
		abort();
	config_free(cfg);
	free(error);
	free(text);
	return 0;
}
