/* fuzz_admin_request.c: drives the admin socket's request line parser (control_parse_request) with arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_push.h"
#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[HD_CONTROL_MAX_LINE + 1], reason[256];
	enum hd_control_cmd cmd;
	const char *error = NULL;
	size_t n = size > HD_CONTROL_MAX_LINE ? HD_CONTROL_MAX_LINE : size;

	/* as on_read hands it over: one line, without its end and without NUL bytes */
	memcpy(line, data, n);
	line[n] = '\0';
	if (control_parse_request(line, &cmd, reason, sizeof(reason), &error) == 0) {
		if ((unsigned)cmd > HD_CTL_PUSH || strlen(reason) >= sizeof(reason))
			abort();
		if (cmd == HD_CTL_PUSH) { /* then the push words: a check name, ok or fail, a printable detail */
			char name[64], detail[HD_PUSH_DETAIL_MAX + 1];
			bool ok;
			const char *why = NULL;
			if (hd_push_parse_request(reason, name, sizeof(name), &ok, detail, sizeof(detail), &why) == 0) {
				if (strlen(name) == 0 || strlen(name) > 63 || strlen(detail) > HD_PUSH_DETAIL_MAX ||
				    strpbrk(name, " /"))
					abort();
				for (const char *p = detail; *p; p++)
					if ((unsigned char)*p < 0x20 || *p == 0x7f)
						abort();
			} else if (why == NULL) {
				abort();
			}
		}
		for (const char *p = reason; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort(); /* the reason reaches the log and the state file: printable only */
	} else if (error == NULL) {
		abort();
	}
	return 0;
}
