/* fuzz_config.c: drives the configuration file parser (config_parse_opts) with arbitrary bytes, opening no file it names. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* no_files: a fuzzed password_file must not read the machine's files; keep_warnings: no log per input */
	static const struct hd_config_opts opts = {.no_files = true, .keep_warnings = true};
	char *error = NULL;
	struct hd_config *cfg;

	if (size > 1 << 20)
		return 0;
	hd_log_init(false, HD_LOG_ERR);
	cfg = config_parse_opts("fuzz.json", (const char *)data, size, &opts, &error);
	if ((cfg == NULL) == (error == NULL))
		abort(); /* exactly one of a configuration or an error */
	config_free(cfg);
	free(error);
	return 0;
}
