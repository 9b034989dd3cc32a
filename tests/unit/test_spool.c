/* test_spool.c: the alert spool on a real directory: durable appends in order, read back after a restart, crash leftovers, lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "util.h"

struct fixture {
	struct event_base *base;
	char dir[64];
	int callbacks;
	uint64_t seqs[8];
	bool written[8][2];
	char *error;
	struct hd_spool_load *load; /* a copy of what on_loaded saw */
	size_t n_items[2];
	char *items[2][8];
	uint64_t item_seqs[2][8];
	size_t n_states;
	char *state_names[4], *state_texts[4];
	size_t n_problems;
	char *problems[8];
	bool usable;
};

static const char *const queues[] = {"q-aaaaaaaaaaaaaaaa", "q-bbbbbbbbbbbbbbbb"};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	evthread_use_pthreads();
	fx->base = event_base_new();
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hd-spool-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	strcat(fx->dir, "/spool"); /* created by the spool */
	*state = fx;
	return 0;
}

static void reset_results(struct fixture *fx)
{
	for (size_t q = 0; q < 2; q++) {
		for (size_t i = 0; i < fx->n_items[q]; i++)
			free(fx->items[q][i]);
		fx->n_items[q] = 0;
	}
	for (size_t i = 0; i < fx->n_states; i++) {
		free(fx->state_names[i]);
		free(fx->state_texts[i]);
	}
	fx->n_states = 0;
	for (size_t i = 0; i < fx->n_problems; i++)
		free(fx->problems[i]);
	fx->n_problems = 0;
	free(fx->error);
	fx->error = NULL;
	fx->callbacks = 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	reset_results(fx);
	fx->dir[strlen(fx->dir) - strlen("/spool")] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

static void on_written(uint64_t seq, const bool *written, const char *error, void *arg)
{
	struct fixture *fx = arg;

	fx->seqs[fx->callbacks] = seq;
	fx->written[fx->callbacks][0] = written[0];
	fx->written[fx->callbacks][1] = written[1];
	if (error && !fx->error)
		fx->error = xstrdup(error);
	fx->callbacks++;
}

/* For appends to one queue: written has one element. */
static void on_written_one(uint64_t seq, const bool *written, const char *error, void *arg)
{
	bool both[2] = {written[0], false};

	on_written(seq, both, error, arg);
}

static void on_loaded(struct hd_spool_load *load, void *arg)
{
	struct fixture *fx = arg;

	fx->usable = load->usable;
	for (size_t q = 0; q < load->n_queues && q < 2; q++)
		for (size_t i = 0; i < load->queues[q].n && i < 8; i++) {
			fx->items[q][i] = xstrdup(load->queues[q].items[i].text);
			fx->item_seqs[q][i] = load->queues[q].items[i].seq;
			fx->n_items[q]++;
		}
	for (size_t i = 0; i < load->states.n && i < 4; i++) {
		fx->state_names[fx->n_states] = xstrdup(load->states.items[i].name);
		fx->state_texts[fx->n_states++] = xstrdup(load->states.items[i].text);
	}
	for (size_t i = 0; i < load->n_problems && i < 8; i++)
		fx->problems[fx->n_problems++] = xstrdup(load->problems[i]);
	fx->callbacks++;
}

/* Runs the loop until n callbacks ran (bounded: 5 s). */
static void run_until(struct fixture *fx, int n)
{
	for (int i = 0; i < 500 && fx->callbacks < n; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(fx->base, &tv);
		event_base_dispatch(fx->base);
	}
	assert_int_equal(fx->callbacks, n);
}

static size_t count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void write_raw(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_append_then_read_back(void **state)
{
	struct fixture *fx = *state;
	struct hd_spool *sp = hd_spool_open(fx->base, fx->dir);
	char path[256], record[64];
	struct stat st;

	hd_spool_load(sp, queues, 2, true, on_loaded, fx);
	run_until(fx, 1);
	assert_true(fx->usable);
	assert_int_equal(fx->n_items[0] + fx->n_items[1], 0);
	reset_results(fx);
	hd_spool_append(sp, queues, 2, "{\"n\":1}", 7, on_written, fx);
	hd_spool_append(sp, queues, 1, "{\"n\":2}", 7, on_written_one, fx);
	hd_spool_append(sp, queues, 2, "{\"n\":3}", 7, on_written, fx);
	hd_spool_set_state(sp, "mysql", "{\"kind\":\"timeout\"}");
	hd_spool_set_state(sp, "redis", "{\"kind\":\"refused\"}");
	hd_spool_set_state(sp, "redis", NULL);
	run_until(fx, 3);
	assert_null(fx->error);
	assert_true(fx->seqs[0] < fx->seqs[1] && fx->seqs[1] < fx->seqs[2]);
	assert_true(fx->written[0][0] && fx->written[0][1] && fx->written[1][0] && fx->written[2][1]);
	snprintf(path, sizeof(path), "%s/%s/%020llu.json", fx->dir, queues[0], (unsigned long long)fx->seqs[0]);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/%s", fx->dir, queues[0]);
	assert_int_equal(count_files(path, "tmp-"), 0);
	/* a record carries the last number given before it: events newer than that tell more at restart */
	snprintf(record, sizeof(record), "{\"kind\":\"timeout\",\"seq\":%llu}", (unsigned long long)fx->seqs[2]);
	hd_spool_remove(sp, queues[0], fx->seqs[0]);
	hd_spool_close(sp, 5000);

	/* a restart: what was written and not removed comes back, in order */
	reset_results(fx);
	sp = hd_spool_open(fx->base, fx->dir);
	hd_spool_load(sp, queues, 2, true, on_loaded, fx);
	run_until(fx, 1);
	assert_int_equal(fx->n_items[0], 2);
	assert_string_equal(fx->items[0][0], "{\"n\":2}");
	assert_string_equal(fx->items[0][1], "{\"n\":3}");
	assert_int_equal(fx->n_items[1], 2);
	assert_string_equal(fx->items[1][0], "{\"n\":1}");
	assert_string_equal(fx->items[1][1], "{\"n\":3}");
	assert_int_equal(fx->n_states, 1);
	assert_string_equal(fx->state_names[0], "mysql");
	assert_string_equal(fx->state_texts[0], record);
	/* numbering goes on after what is on disk */
	reset_results(fx);
	hd_spool_append(sp, queues, 1, "{\"n\":4}", 7, on_written_one, fx);
	run_until(fx, 1);
	assert_true(fx->seqs[0] > fx->item_seqs[0][1]);
	hd_spool_close(sp, 5000);
}

static void test_crash_leftovers_and_orphans(void **state)
{
	struct fixture *fx = *state;
	struct hd_spool *sp = hd_spool_open(fx->base, fx->dir);
	char path[256];

	hd_spool_append(sp, queues, 2, "{\"n\":1}", 7, on_written, fx);
	run_until(fx, 1);
	hd_spool_close(sp, 5000);
	/* a crash in the middle of the next write: a partial temporary file; and a queue nobody asks for anymore */
	snprintf(path, sizeof(path), "%s/%s/tmp-00000000000000000002.json", fx->dir, queues[0]);
	write_raw(path, "{\"n\":");
	snprintf(path, sizeof(path), "%s/q-cccccccccccccccc", fx->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/q-cccccccccccccccc/00000000000000000009.json", fx->dir);
	write_raw(path, "{}");

	reset_results(fx);
	sp = hd_spool_open(fx->base, fx->dir);
	hd_spool_load(sp, queues, 2, true, on_loaded, fx);
	run_until(fx, 1);
	assert_int_equal(fx->n_items[0], 1);
	assert_string_equal(fx->items[0][0], "{\"n\":1}");
	assert_int_equal(fx->n_problems, 2);
	assert_non_null(strstr(fx->problems[0], "interrupted by a crash"));
	assert_non_null(strstr(fx->problems[1], "q-cccccccccccccccc holds 1 undelivered events"));
	snprintf(path, sizeof(path), "%s/%s", fx->dir, queues[0]);
	assert_int_equal(count_files(path, "tmp-"), 0);
	/* the orphan's highest number counts too: nothing new may sort before it */
	reset_results(fx);
	hd_spool_append(sp, queues, 1, "{\"n\":2}", 7, on_written_one, fx);
	run_until(fx, 1);
	assert_true(fx->seqs[0] > 9);
	hd_spool_close(sp, 5000);
}

static void test_second_owner_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct hd_spool *first = hd_spool_open(fx->base, fx->dir), *second;

	hd_spool_load(first, queues, 2, true, on_loaded, fx);
	run_until(fx, 1);
	assert_true(fx->usable);
	reset_results(fx);
	second = hd_spool_open(fx->base, fx->dir);
	hd_spool_load(second, queues, 2, true, on_loaded, fx);
	hd_spool_append(second, queues, 2, "{}", 2, on_written, fx);
	run_until(fx, 2);
	assert_false(fx->usable);
	assert_non_null(strstr(fx->problems[0], "another healthd uses this spool_dir"));
	assert_false(fx->written[1][0]);
	assert_non_null(fx->error);
	hd_spool_close(second, 5000);
	hd_spool_close(first, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_then_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_leftovers_and_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_owner_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
