/* fuzz_diff.c: drives `healthd diff`'s snapshot parser and comparison (oneshot_diff_texts) with two arbitrary inputs. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oneshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is BEFORE, a NUL byte, AFTER; without a NUL, the same text is both (the no-change path). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul = memchr(data, '\0', size);
	size_t before_len = nul ? (size_t)(nul - text) : size;
	const char *after = nul ? nul + 1 : text;
	size_t after_len = nul ? size - before_len - 1 : size;
	char *before_copy, *after_copy, *out_text = NULL, *err_text = NULL;
	size_t out_len = 0, err_len = 0;
	FILE *out, *err;
	int rc;

	if (size > 1 << 20)
		return 0;
	/* the parser reads NUL-terminated text, as hd_read_small_file gives it */
	before_copy = strndup(text, before_len);
	after_copy = strndup(after, after_len);
	out = open_memstream(&out_text, &out_len);
	err = open_memstream(&err_text, &err_len);
	if (before_copy == NULL || after_copy == NULL || out == NULL || err == NULL)
		abort();
	rc = oneshot_diff_texts("before.json", before_copy, strlen(before_copy), "after.json", after_copy,
				strlen(after_copy), out, err);
	fclose(out);
	fclose(err);
	if (rc != HD_EXIT_OK && rc != HD_EXIT_FAILED && rc != HD_EXIT_USAGE)
		abort();
	if (rc == HD_EXIT_USAGE && err_len == 0)
		abort(); /* a refusal always says why */
	free(out_text);
	free(err_text);
	free(before_copy);
	free(after_copy);
	return 0;
}
