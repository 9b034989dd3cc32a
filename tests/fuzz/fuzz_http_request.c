/* fuzz_http_request.c: drives the HTTP API's request head parser (hd_http_head_end, hd_http_parse_head) with stranger bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct hd_http_head head;
	const char *error;
	int status;
	size_t end, pos = 0;

	/* As the server does: find each head's end (also resuming from a partial scan), parse it, go on. */
	while (pos < size) {
		size_t half = (size - pos) / 2;
		end = hd_http_head_end(buf + pos, size - pos, half > 3 ? half - 3 : 0);
		if (end == 0 || hd_http_head_end(buf + pos, size - pos, 0) != end)
			end = hd_http_head_end(buf + pos, size - pos, 0);
		if (end == 0)
			break;
		if (hd_http_parse_head(buf + pos, end, &head, &status, &error) == 0) {
			if (strlen(head.path) >= sizeof(head.path) || strlen(head.accept) >= sizeof(head.accept))
				abort();
		} else if (error == NULL || (status != 400 && status != 414 && status != 505)) {
			abort();
		}
		pos += end;
	}
	return 0;
}
