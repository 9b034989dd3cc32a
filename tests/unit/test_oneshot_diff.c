/* test_oneshot_diff.c: `healthd diff` on snapshot files: regressions, recoveries, and files it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oneshot.h"
#include "util.h"

static char dir[] = "/tmp/hd-diff-test-XXXXXX";

struct result {
	int rc;
	char out[4096];
	char err[4096];
};

static const char *write_file(const char *name, const char *text)
{
	static char paths[8][256];
	static int next;
	char *path = paths[next++ % 8];
	FILE *f;

	snprintf(path, 256, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void read_all(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static struct result diff(const char *before, const char *after)
{
	struct result r;
	FILE *out = tmpfile(), *err = tmpfile();

	assert_non_null(out);
	assert_non_null(err);
	r.rc = oneshot_diff(before, after, out, err);
	read_all(out, r.out, sizeof(r.out));
	read_all(err, r.err, sizeof(r.err));
	return r;
}

/* A snapshot with checks given as "name:status:kind:critical" words. */
static char *snapshot(const char *node, const char *checks)
{
	static char text[4096];
	char list[2048] = "", copy[512], *save = NULL;
	size_t used = 0;

	snprintf(copy, sizeof(copy), "%s", checks);
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char name[64], status[16], kind[32], crit[8];
		assert_int_equal(sscanf(w, "%63[^:]:%15[^:]:%31[^:]:%7s", name, status, kind, crit), 4);
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s{\"name\":\"%s\",\"type\":\"tcp\",\"target\":\"h:1\",\"status\":\"%s\",\"kind\":\"%s\","
					 "\"detail\":\"%s detail\",\"latency_ms\":1.5,\"critical\":%s}",
					 used ? "," : "", name, status, kind, kind, crit);
	}
	snprintf(text, sizeof(text),
		 "{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"%s\",\"timestamp\":\"T\","
		 "\"config\":\"/etc/healthd/healthd.json\",\"checks\":[%s]}\n", node, list);
	return text;
}

static void test_regression_recovery_still_down(void **state)
{
	const char *before = write_file("b1.json", snapshot("web1", "db:up:ok:true cache:down:refused:false "
								     "mq:down:timeout:true web:up:ok:true"));
	const char *after = write_file("a1.json", snapshot("web1", "db:down:timeout:true cache:up:ok:false "
								    "mq:down:refused:true web:up:ok:true"));
	struct result r = diff(before, after);

	(void)state;
	assert_int_equal(r.rc, HD_EXIT_FAILED);
	assert_string_equal(r.err, "");
	assert_non_null(strstr(r.out, "REGRESSION  db "));
	assert_non_null(strstr(r.out, "critical      up   -> down  timeout: timeout detail\n"));
	assert_non_null(strstr(r.out, "RECOVERY    cache  non-critical  down -> up    ok: ok detail (before: refused: refused detail)"));
	assert_non_null(strstr(r.out, "STILL DOWN  mq     critical      down -> down  refused: refused detail (before: timeout"));
	assert_null(strstr(r.out, "  web  "));
	assert_non_null(strstr(r.out, "4 checks: 1 regression, 1 recovery, 1 still down, 1 up before and after\n"));
	/* regressions are listed first */
	assert_true(strstr(r.out, "REGRESSION") < strstr(r.out, "RECOVERY"));
}

static void test_recovery_only_and_no_change_exit_zero(void **state)
{
	const char *before = write_file("b2.json", snapshot("web1", "db:down:refused:true web:up:ok:true"));
	const char *after = write_file("a2.json", snapshot("web1", "db:up:ok:true web:up:ok:true"));
	struct result r = diff(before, after);

	(void)state;
	assert_int_equal(r.rc, HD_EXIT_OK);
	assert_non_null(strstr(r.out, "RECOVERY    db"));
	assert_non_null(strstr(r.out, "2 checks: 0 regressions, 1 recovery, 0 still down, 1 up before and after\n"));
	r = diff(after, after);
	assert_int_equal(r.rc, HD_EXIT_OK);
	assert_non_null(strstr(r.out, "2 checks: 0 regressions, 0 recoveries, 0 still down, 2 up before and after\n"));
}

static void test_refuses_mismatched_files(void **state)
{
	const char *web1 = write_file("w1.json", snapshot("web1", "db:up:ok:true cache:up:ok:true mq:up:ok:true"));
	const char *web2 = write_file("w2.json", snapshot("web2", "db:up:ok:true cache:up:ok:true mq:up:ok:true"));
	const char *other = write_file("w3.json", snapshot("web1", "db:up:ok:true search:up:ok:true new2:down:dns:true"));
	struct result r;

	(void)state;
	r = diff(web1, web2);
	assert_int_equal(r.rc, HD_EXIT_USAGE);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "different nodes"));
	assert_non_null(strstr(r.err, "\"web1\""));
	assert_non_null(strstr(r.err, "\"web2\""));
	r = diff(web1, other);
	assert_int_equal(r.rc, HD_EXIT_USAGE);
	assert_non_null(strstr(r.err, "different sets of checks"));
	assert_non_null(strstr(r.err, "removed (only in before): cache, mq\n"));
	assert_non_null(strstr(r.err, "added (only in after): search, new2\n"));
}

static void test_refuses_unreadable_and_foreign_files(void **state)
{
	const char *good = write_file("good.json", snapshot("web1", "db:up:ok:true"));
	static const struct {
		const char *text;
		const char *expect;
	} cases[] = {
		{"", "empty file"},
		{"{\"format\": \"healthd-check\",\n  \"node\": oops}", "bad.json:2:11: not JSON"},
		{"[1, 2, 3]", "not a healthd check file"},
		{"{\"status\":\"up\",\"node\":\"web1\",\"checks\":{}}", "not a healthd check file"},
		{"{\"format\":\"healthd-check\",\"format_version\":7,\"node\":\"web1\",\"checks\":[]}", "format_version 7"},
		{"{\"format\":\"healthd-check\",\"format_version\":1,\"checks\":[]}", "missing \"node\""},
		{"{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"web1\"}", "missing \"checks\""},
		{"{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"web1\",\"checks\":[{\"name\":\"db\","
		 "\"status\":\"sideways\"}]}", "checks[0]: check \"db\": \"status\" must be \"up\" or \"down\""},
		{"{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"web1\",\"checks\":[{\"status\":\"up\"}]}",
		 "checks[0]: missing \"name\""},
		{"{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"web1\",\"checks\":[{\"name\":\"db\","
		 "\"status\":\"up\"},{\"name\":\"db\",\"status\":\"down\"}]}", "check \"db\" appears twice"},
	};
	struct result r;

	(void)state;
	r = diff("/nonexistent/before.json", good);
	assert_int_equal(r.rc, HD_EXIT_USAGE);
	assert_non_null(strstr(r.err, "/nonexistent/before.json: cannot read: No such file or directory"));
	r = diff(good, dir);
	assert_int_equal(r.rc, HD_EXIT_USAGE);
	assert_non_null(strstr(r.err, "cannot read: Is a directory"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *bad = write_file("bad.json", cases[i].text);
		r = diff(good, bad);
		if (r.rc != HD_EXIT_USAGE || strstr(r.err, cases[i].expect) == NULL)
			fail_msg("case %zu: rc %d, stderr \"%s\", expected \"%s\"", i, r.rc, r.err, cases[i].expect);
		assert_string_equal(r.out, "");
	}
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Two outputs in one file, or a stray character after the object: refused, saying where. */
static void test_refuses_trailing_text_with_its_position(void **state)
{
	const char *good = write_file("good2.json", snapshot("web1", "db:up:ok:true"));
	static const struct {
		const char *tail, *expect;
	} cases[] = {
		{"}", "bad2.json:2:1: more text after the end of the JSON object"},
		{"  \n  garbage", "bad2.json:3:3: more text after the end of the JSON object"},
		{"{\"format\":\"healthd-check\"}", "bad2.json:2:1: more text after the end"},
	};
	char text[8192];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r;
		snprintf(text, sizeof(text), "%s%s", snapshot("web1", "db:up:ok:true"), cases[i].tail);
		r = diff(good, write_file("bad2.json", text));
		printf("%s", r.err);
		if (r.rc != HD_EXIT_USAGE || strstr(r.err, cases[i].expect) == NULL)
			fail_msg("case %zu: rc %d, stderr \"%s\", expected \"%s\"", i, r.rc, r.err, cases[i].expect);
	}
}

static char *big_snapshot(size_t n, size_t down)
{
	size_t cap = n * 160 + 256, used = 0;
	char *text = xmalloc(cap);

	used += (size_t)snprintf(text, cap, "{\"format\":\"healthd-check\",\"format_version\":1,\"node\":\"web1\","
				 "\"timestamp\":\"T\",\"checks\":[");
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(text + used, cap - used,
					 "%s{\"name\":\"check-%06zu\",\"status\":\"%s\",\"kind\":\"%s\",\"critical\":true}",
					 i ? "," : "", n - 1 - i, i == down ? "down" : "up", i == down ? "refused" : "ok");
	snprintf(text + used, cap - used, "]}\n");
	return text;
}

/* A benchmark, not a timed assertion: the seconds are printed; the result must be right. */
static void test_twenty_thousand_checks(void **state)
{
	enum { N = 20000 };
	char *before = big_snapshot(N, N), *after = big_snapshot(N, 123);
	const char *b = write_file("big-before.json", before), *a = write_file("big-after.json", after);
	FILE *out = tmpfile(), *err = tmpfile();
	char summary[256] = "";
	double t0, t1;
	int rc;

	(void)state;
	t0 = hd_now_mono_ms_f();
	rc = oneshot_diff(b, a, out, err);
	t1 = hd_now_mono_ms_f();
	rewind(out);
	while (fgets(summary, sizeof(summary), out) != NULL && strncmp(summary, "20000 checks", 12) != 0)
		;
	printf("healthd diff of %d checks: %.3f s: %s", N, (t1 - t0) / 1000.0, summary);
	assert_int_equal(rc, HD_EXIT_FAILED);
	assert_string_equal(summary, "20000 checks: 1 regression, 0 recoveries, 0 still down, 19999 up before and after\n");
	fclose(out);
	fclose(err);
	free(before);
	free(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regression_recovery_still_down),
		cmocka_unit_test(test_recovery_only_and_no_change_exit_zero),
		cmocka_unit_test(test_refuses_mismatched_files),
		cmocka_unit_test(test_refuses_unreadable_and_foreign_files),
		cmocka_unit_test(test_refuses_trailing_text_with_its_position),
		cmocka_unit_test(test_twenty_thousand_checks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
