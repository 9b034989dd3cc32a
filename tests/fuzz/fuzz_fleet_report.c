/* fuzz_fleet_report.c: backends' /health bodies (any bytes), read and rendered by `healthd fleet` in every format. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What reaches a terminal or a .dot/.py file: text lines, never a raw control byte from a peer. */
static void check_text(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum hd_fleet_format formats[] = {HD_FLEET_TABLE, HD_FLEET_JSON, HD_FLEET_DOT, HD_FLEET_DIAGRAMS};
	const uint8_t *split = memchr(data, 0, size);
	size_t first = split ? (size_t)(split - data) : size;
	struct hd_fleet_reply replies[3] = {
		{.url = "http://10.0.1.11:9110/health", .name = "10.0.1.11:9110", .answered = true, .http_status = 200,
		 .body = (const char *)data, .body_len = first},
		{.url = "http://10.0.1.12:9110/health", .name = "10.0.1.12:9110", .answered = true, .http_status = 503,
		 .body = split ? (const char *)split + 1 : "", .body_len = split ? size - first - 1 : 0},
		{.url = "http://10.0.1.13:9110/health", .name = "10.0.1.13:9110", .answered = false, .kind = 2,
		 .detail = "connect 10.0.1.13:9110: Connection refused"},
	};

	if (size > 256 * 1024)
		return 0;
	for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
		char *out = NULL;
		size_t len = 0;
		FILE *fp = open_memstream(&out, &len);
		int rc;
		if (fp == NULL)
			return 0;
		rc = hd_fleet_report(replies, 3, formats[f], fp);
		fclose(fp);
		if (rc < 0 || rc > 3)
			abort();
		if (formats[f] != HD_FLEET_JSON) /* cJSON escapes what it prints; the others are checked here */
			check_text(out, len);
		free(out);
	}
	return 0;
}
