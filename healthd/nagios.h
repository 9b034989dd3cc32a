/* nagios.h: the Monitoring Plugins conventions: exit status, the output's first line, perfdata in base units. */
#ifndef HEALTHD_NAGIOS_H
#define HEALTHD_NAGIOS_H

#include <stdbool.h>
#include <stddef.h>

enum hd_plugin_status { HD_PLUGIN_OK, HD_PLUGIN_WARNING, HD_PLUGIN_CRITICAL, HD_PLUGIN_UNKNOWN };

const char *hd_plugin_status_name(enum hd_plugin_status s);
/* A waitpid() status as a plugin status: exit 0..3 as such; any other exit code, or a signal, is UNKNOWN. */
enum hd_plugin_status hd_plugin_status_from_wait(int wstatus);

#define HD_PERFDATA_MAX 32        /* items kept per output; more are counted as skipped */
#define HD_PERFDATA_LABEL_MAX 64  /* bytes of a label, NUL included */
#define HD_PLUGIN_SUMMARY_MAX 256 /* bytes of the first line as kept, NUL included */

struct hd_perfdata {
	char label[HD_PERFDATA_LABEL_MAX];
	double value; /* in base units: seconds, bytes, percent, counter or plain number */
};

struct hd_plugin_output {
	char summary[HD_PLUGIN_SUMMARY_MAX]; /* the first line before '|', control characters escaped */
	struct hd_perfdata perf[HD_PERFDATA_MAX];
	size_t n_perf;
	size_t n_skipped; /* malformed, unknown unit, "U", duplicate label, or beyond HD_PERFDATA_MAX */
};

/*
 * Parses what a plugin printed (len bytes, NULs allowed): the summary is the first line before '|'; perfdata is
 * what follows '|' on the first line, and everything after a '|' in the lines after it (the long-output form).
 */
void hd_plugin_parse_output(const char *buf, size_t len, struct hd_plugin_output *out);
/* Parses perfdata items ('label'=value[UOM];warn;crit;min;max, space separated) and appends them to out. */
void hd_perfdata_parse(const char *text, size_t len, struct hd_plugin_output *out);
/* value with unit uom (s ms us % B KB MB GB TB c, or none) in base units; false for an unknown unit. */
bool hd_perfdata_to_base(double value, const char *uom, size_t uom_len, double *out);

#endif
