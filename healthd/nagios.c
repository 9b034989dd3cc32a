/* nagios.c: what a Nagios/Monitoring plugin's exit status and output mean; pure functions, no I/O. */
#include "nagios.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"

const char *hd_plugin_status_name(enum hd_plugin_status s)
{
	switch (s) {
	case HD_PLUGIN_OK:
		return "OK";
	case HD_PLUGIN_WARNING:
		return "WARNING";
	case HD_PLUGIN_CRITICAL:
		return "CRITICAL";
	default:
		return "UNKNOWN";
	}
}

enum hd_plugin_status hd_plugin_status_from_wait(int wstatus)
{
	if (!WIFEXITED(wstatus))
		return HD_PLUGIN_UNKNOWN;
	switch (WEXITSTATUS(wstatus)) {
	case 0:
		return HD_PLUGIN_OK;
	case 1:
		return HD_PLUGIN_WARNING;
	case 2:
		return HD_PLUGIN_CRITICAL;
	default:
		return HD_PLUGIN_UNKNOWN;
	}
}

/* ---- perfdata ---- */

bool hd_perfdata_to_base(double value, const char *uom, size_t uom_len, double *out)
{
	static const struct {
		const char *uom;
		double factor;
	} units[] = {
		{"", 1},
		{"s", 1},
		{"ms", 1e-3},
		{"us", 1e-6},
		{"%", 1},
		{"B", 1},
		{"KB", 1024.0},
		{"MB", 1024.0 * 1024},
		{"GB", 1024.0 * 1024 * 1024},
		{"TB", 1024.0 * 1024 * 1024 * 1024},
		{"c", 1},
	};

	for (size_t i = 0; i < HD_ARRAY_LEN(units); i++)
		if (strlen(units[i].uom) == uom_len && memcmp(units[i].uom, uom, uom_len) == 0) {
			*out = value * units[i].factor;
			return isfinite(*out);
		}
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A decimal number [-+]digits[.digits][e[-+]digits] at p; its length, or 0. */
static size_t scan_number(const char *p, size_t left)
{
	size_t i = 0, digits = 0;

	if (i < left && (p[i] == '-' || p[i] == '+'))
		i++;
	while (i < left && p[i] >= '0' && p[i] <= '9')
		i++, digits++;
	if (i < left && (p[i] == '.' || p[i] == ',')) {
		i++;
		while (i < left && p[i] >= '0' && p[i] <= '9')
			i++, digits++;
	}
	if (digits == 0)
		return 0;
	if (i < left && (p[i] == 'e' || p[i] == 'E')) {
		size_t j = i + 1, exp_digits = 0;
		if (j < left && (p[j] == '-' || p[j] == '+'))
			j++;
		while (j < left && p[j] >= '0' && p[j] <= '9')
			j++, exp_digits++;
		if (exp_digits > 0)
			i = j;
	}
	return i;
}

static bool has_label(const struct hd_plugin_output *out, const char *label)
{
	for (size_t i = 0; i < out->n_perf; i++)
		if (strcmp(out->perf[i].label, label) == 0)
			return true;
	return false;
}

/* Reads one item starting at text[*pos] (not a space); advances *pos past it. Adds it or counts it skipped. */
static void parse_item(const char *text, size_t len, size_t *pos, struct hd_plugin_output *out)
{
	char raw[HD_PERFDATA_LABEL_MAX * 2], label[HD_PERFDATA_LABEL_MAX], number[64];
	size_t i = *pos, raw_len = 0, n, uom_start;
	bool ok = true;
	double value;

	if (text[i] == '\'') { /* quoted: spaces allowed, '' is one quote */
		i++;
		for (;;) {
			if (i >= len) {
				ok = false;
				break;
			}
			if (text[i] == '\'') {
				if (i + 1 < len && text[i + 1] == '\'') {
					i++;
				} else {
					i++;
					break;
				}
			}
			if (raw_len < sizeof(raw))
				raw[raw_len++] = text[i];
			i++;
		}
	} else {
		while (i < len && text[i] != '=' && !is_space(text[i])) {
			if (raw_len < sizeof(raw))
				raw[raw_len++] = text[i];
			i++;
		}
	}
	if (!ok || i >= len || text[i] != '=' || raw_len == 0)
		goto skip;
	i++;
	n = scan_number(text + i, len - i);
	if (n == 0 || n >= sizeof(number))
		goto skip; /* "U" (no value), empty or not a number */
	memcpy(number, text + i, n);
	number[n] = '\0';
	for (char *c = number; *c; c++)
		if (*c == ',') /* a plugin run under a locale with decimal commas */
			*c = '.';
	value = strtod(number, NULL);
	i += n;
	uom_start = i;
	while (i < len && text[i] != ';' && !is_space(text[i]))
		i++;
	if (!hd_perfdata_to_base(value, text + uom_start, i - uom_start, &value))
		goto skip;
	while (i < len && !is_space(text[i])) /* ;warn;crit;min;max: not exported */
		i++;
	*pos = i;
	hd_sanitize_text(raw, raw_len, label, sizeof(label));
	if (out->n_perf >= HD_PERFDATA_MAX || has_label(out, label)) {
		out->n_skipped++;
		return;
	}
	hd_strlcpy(out->perf[out->n_perf].label, label, sizeof(out->perf[0].label));
	out->perf[out->n_perf++].value = value;
	return;
skip:
	while (i < len && !is_space(text[i]))
		i++;
	*pos = i > *pos ? i : *pos + 1;
	out->n_skipped++;
}

void hd_perfdata_parse(const char *text, size_t len, struct hd_plugin_output *out)
{
	size_t pos = 0;

	while (pos < len) {
		if (is_space(text[pos])) {
			pos++;
			continue;
		}
		parse_item(text, len, &pos, out);
	}
}

void hd_plugin_parse_output(const char *buf, size_t len, struct hd_plugin_output *out)
{
	const char *nl = memchr(buf, '\n', len);
	size_t first_len = nl ? (size_t)(nl - buf) : len;
	const char *bar = memchr(buf, '|', first_len);
	size_t summary_len = bar ? (size_t)(bar - buf) : first_len;

	memset(out, 0, sizeof(*out));
	while (summary_len > 0 && (is_space(buf[summary_len - 1])))
		summary_len--;
	hd_sanitize_text(buf, summary_len, out->summary, sizeof(out->summary));
	if (bar)
		hd_perfdata_parse(bar + 1, first_len - (size_t)(bar + 1 - buf), out);
	if (nl) { /* long output: perfdata from its first '|' to the end */
		const char *rest = nl + 1;
		size_t rest_len = len - (size_t)(rest - buf);
		const char *bar2 = memchr(rest, '|', rest_len);
		if (bar2)
			hd_perfdata_parse(bar2 + 1, rest_len - (size_t)(bar2 + 1 - rest), out);
	}
}
