/* oneshot.h: `healthd check` (every check once, for a change window) and `healthd diff` (before against after). */
#ifndef HEALTHD_ONESHOT_H
#define HEALTHD_ONESHOT_H

#include <stddef.h>
#include <stdio.h>

/* Exit codes of `healthd diff` (`healthd check` exits as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). */
enum { HD_EXIT_OK = 0, HD_EXIT_FAILED = 1, HD_EXIT_USAGE = 2 };

/* healthd check --config FILE [--json | --format table|json|nagios]: 0 every check up, 1 only non-critical checks
 * down, 2 a critical check down, 3 usage or configuration error. */
int oneshot_check_main(int argc, char **argv);
/* healthd diff BEFORE AFTER: 0 no regression, 1 a regression, 2 usage error or files that cannot be compared. */
int oneshot_diff_main(int argc, char **argv);
/* The comparison itself: the report goes to out, errors to err; returns the exit code. */
int oneshot_diff(const char *before_path, const char *after_path, FILE *out, FILE *err);
/* The same on texts in memory (the paths only name them in messages): the parser the fuzzer drives. */
int oneshot_diff_texts(const char *before_path, const char *before_text, size_t before_len, const char *after_path,
		       const char *after_text, size_t after_len, FILE *out, FILE *err);

#endif
