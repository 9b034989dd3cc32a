/* fuzz_nagios_output.c: drives the parser of what a program check's plugin prints (summary, perfdata, sanitizing). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nagios.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hd_plugin_output out;
	char small[16];

	hd_plugin_parse_output((const char *)data, size, &out);
	/* What the parser hands on must be bounded, NUL-terminated, printable text. */
	if (strlen(out.summary) >= sizeof(out.summary) || out.n_perf > HD_PERFDATA_MAX)
		__builtin_trap();
	for (size_t i = 0; i < strlen(out.summary); i++)
		if ((unsigned char)out.summary[i] < 0x20 || out.summary[i] == 0x7f)
			__builtin_trap();
	for (size_t i = 0; i < out.n_perf; i++)
		if (strlen(out.perf[i].label) >= sizeof(out.perf[i].label) || strchr(out.perf[i].label, '\n') ||
		    out.perf[i].value != out.perf[i].value)
			__builtin_trap();
	hd_sanitize_text((const char *)data, size, small, sizeof(small));
	if (strlen(small) >= sizeof(small))
		__builtin_trap();
	return 0;
}
