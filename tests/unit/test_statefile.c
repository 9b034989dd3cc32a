/* test_statefile.c: the admin state file: its format, atomic writes, loading, and the writer thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "statefile.h"

static char *make_dir(void)
{
	char tmpl[] = "/tmp/healthd-statefile-XXXXXX";
	char *dir = mkdtemp(tmpl);

	assert_non_null(dir);
	return xstrdup(dir);
}

static void remove_dir(char *dir)
{
	char *path = xasprintf("%s/%s", dir, HD_STATEFILE_NAME);

	unlink(path);
	free(path);
	rmdir(dir);
	free(dir);
}

static struct hd_saved_admin sample(enum hd_admin_mode mode, const char *reason, int64_t since, bool stopped)
{
	struct hd_saved_admin st = {.admin = {.mode = mode, .since_wall_ms = since}, .stopped_draining = stopped};

	hd_strlcpy(st.admin.reason, reason, sizeof(st.admin.reason));
	return st;
}

static void test_round_trip(void **unused)
{
	static const enum hd_admin_mode modes[] = {HD_ADMIN_READY, HD_ADMIN_DRAIN, HD_ADMIN_MAINT};

	(void)unused;
	for (size_t i = 0; i < 3; i++) {
		struct hd_saved_admin in = sample(modes[i], "deploy \"42\" by ålice\\", 1795463800711, i == 0), out;
		char *text = statefile_encode(&in), *error = NULL;
		assert_int_equal(statefile_decode(text, &out, &error), 0);
		assert_int_equal(out.admin.mode, in.admin.mode);
		assert_string_equal(out.admin.reason, in.admin.reason);
		assert_true(out.admin.since_wall_ms == in.admin.since_wall_ms);
		assert_int_equal(out.stopped_draining, in.stopped_draining);
		free(text);
	}
}

static void test_decode_rejects(void **unused)
{
	static const char *const bad[] = {
		"", "[]", "{}", "{\"state\":\"drained\"}", "{\"state\":1}", "{\"state\":\"drain\",\"reason\":3}",
		"{\"state\":\"drain\",\"since_ms\":\"x\"}", "{\"state\":\"drain\",\"since_ms\":-1}",
		"{\"state\":\"ready\",\"stopped_draining\":\"yes\"}", "{\"state\":\"drain\"", "\x01\x02",
	};
	struct hd_saved_admin out;

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *error = NULL;
		assert_int_equal(statefile_decode(bad[i], &out, &error), -1);
		assert_non_null(error);
		free(error);
	}
}

static void test_minimal_file_is_enough(void **unused)
{
	struct hd_saved_admin out;
	char *error = NULL;

	(void)unused;
	assert_int_equal(statefile_decode("{\"state\":\"maint\"}", &out, &error), 0);
	assert_int_equal(out.admin.mode, HD_ADMIN_MAINT);
	assert_string_equal(out.admin.reason, "");
	assert_false(out.stopped_draining);
}

static void test_write_then_load(void **unused)
{
	char *dir = make_dir(), *error = NULL, *path = xasprintf("%s/%s", dir, HD_STATEFILE_NAME);
	struct hd_saved_admin in = sample(HD_ADMIN_DRAIN, "deploy 42", 1795463800711, false), out;
	struct stat st;

	(void)unused;
	assert_int_equal(statefile_load(dir, &out, &error), 0); /* absent: not an error */
	assert_int_equal(statefile_write(dir, &in, &error), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(statefile_load(dir, &out, &error), 1);
	assert_int_equal(out.admin.mode, HD_ADMIN_DRAIN);
	assert_string_equal(out.admin.reason, "deploy 42");
	in = sample(HD_ADMIN_READY, "", 1795463900000, true);
	assert_int_equal(statefile_write(dir, &in, &error), 0);
	assert_int_equal(statefile_load(dir, &out, &error), 1);
	assert_int_equal(out.admin.mode, HD_ADMIN_READY);
	assert_true(out.stopped_draining);
	/* no temporary file is left behind */
	{
		char *tmp = xasprintf("%s/" HD_TMP_PREFIX "%s", dir, HD_STATEFILE_NAME);
		assert_int_not_equal(access(tmp, F_OK), 0);
		free(tmp);
	}
	free(path);
	remove_dir(dir);
}

static void test_load_corrupt_and_write_failure(void **unused)
{
	char *dir = make_dir(), *error = NULL, *path = xasprintf("%s/%s", dir, HD_STATEFILE_NAME);
	struct hd_saved_admin out, in = sample(HD_ADMIN_MAINT, "x", 1, false);
	FILE *f = fopen(path, "w");

	(void)unused;
	fputs("{\"state\": \"drain\", \"reason\": ", f); /* what a torn write would leave, were it not atomic */
	fclose(f);
	assert_int_equal(statefile_load(dir, &out, &error), -1);
	assert_non_null(strstr(error, path));
	free(error);
	error = NULL;
	assert_int_equal(statefile_write("/nonexistent-healthd-dir", &in, &error), -1);
	assert_non_null(strstr(error, "/nonexistent-healthd-dir"));
	assert_non_null(strstr(error, "No such file or directory"));
	free(error);
	free(path);
	remove_dir(dir);
}

struct saved_log {
	uint64_t generation;
	int rc;
	int calls;
	struct event_base *base;
};

static void on_done(uint64_t generation, int rc, const char *error, void *arg)
{
	struct saved_log *log = arg;

	(void)error;
	log->generation = generation;
	log->rc = rc;
	log->calls++;
	event_base_loopbreak(log->base);
}

static void test_writer_thread(void **unused)
{
	char *dir = make_dir(), *error = NULL;
	struct event_base *base = event_base_new();
	struct saved_log log = {.base = base};
	struct hd_statefile *sf = statefile_new(base, dir, on_done, &log);
	struct hd_saved_admin a = sample(HD_ADMIN_DRAIN, "one", 5, false), b = sample(HD_ADMIN_MAINT, "two", 6, false), out;
	struct timeval limit = {5, 0};
	uint64_t g1, g2;

	(void)unused;
	g1 = statefile_save(sf, &a.admin, false);
	g2 = statefile_save(sf, &b.admin, false);
	assert_true(g2 > g1);
	for (int i = 0; i < 10 && log.generation < g2; i++) {
		event_base_loopexit(base, &limit);
		event_base_dispatch(base);
	}
	assert_true(log.generation == g2); /* coalesced or not, the last write covers both */
	assert_int_equal(log.rc, 0);
	assert_int_equal(statefile_load(dir, &out, &error), 1);
	assert_int_equal(out.admin.mode, HD_ADMIN_MAINT);
	assert_string_equal(out.admin.reason, "two");
	/* a save queued just before exit is still written */
	statefile_save(sf, &a.admin, true);
	statefile_free(sf);
	assert_int_equal(statefile_load(dir, &out, &error), 1);
	assert_int_equal(out.admin.mode, HD_ADMIN_DRAIN);
	assert_true(out.stopped_draining);
	event_base_free(base);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_minimal_file_is_enough),
		cmocka_unit_test(test_write_then_load),
		cmocka_unit_test(test_load_corrupt_and_write_failure),
		cmocka_unit_test(test_writer_thread),
	};

	hd_log_init(false, HD_LOG_ERR);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
