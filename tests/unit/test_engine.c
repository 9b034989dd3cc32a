/* test_engine.c: the engine's life cycle with a check type the test drives (reloads while attempts run, deadlines, stop, one-shot); finding among many; peer texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>

#include "config.h"
#include "engine.h"

/* ---- a check type whose attempts end when the test says so ---- */

#define MAX_NAMES 8

static struct {
	const char *name[MAX_NAMES];
	struct hd_check_run *running[MAX_NAMES]; /* the attempt in flight, or NULL */
	int starts[MAX_NAMES];
	int cancels[MAX_NAMES];
	bool done_in_cancel; /* a broken type: reports from inside cancel() */
} fake;

static int slot(const char *name)
{
	for (int i = 0; i < MAX_NAMES; i++) {
		if (fake.name[i] != NULL && strcmp(fake.name[i], name) == 0)
			return i;
		if (fake.name[i] == NULL) {
			fake.name[i] = name;
			return i;
		}
	}
	fail_msg("too many check names");
	return -1;
}

static const char *const known_names[] = {"a", "b", "c", NULL};

/* The names are static strings: the table outlives every configuration. */
static const char *static_name(const char *name)
{
	for (size_t i = 0; known_names[i]; i++)
		if (strcmp(known_names[i], name) == 0)
			return known_names[i];
	fail_msg("unknown check name %s", name);
	return NULL;
}

static void fake_start(struct hd_check_run *run)
{
	int i = slot(static_name(run->conf->name));

	assert_null(fake.running[i]);
	fake.running[i] = run;
	fake.starts[i]++;
	hd_run_phase(run, HD_PHASE_CONNECT, NULL);
	hd_strlcpy(run->peer, "192.0.2.1:7", sizeof(run->peer));
}

static void fake_cancel(struct hd_check_run *run)
{
	/* Reads the attempt's configuration: under the sanitizers, a freed one fails the test here. */
	int i = slot(static_name(run->conf->name));

	assert_ptr_equal(fake.running[i], run);
	fake.running[i] = NULL;
	fake.cancels[i]++;
	if (fake.done_in_cancel)
		hd_check_done(run, HD_KIND_ERROR, "reported while cancelled");
}

static const struct cfg_key fake_keys[] = {{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL, NULL}};

static const struct hd_check_type fake_type = {
	.name = "fake",
	.summary = "ends when the test says so",
	.keys = fake_keys,
	.conf_size = 1,
	.start = fake_start,
	.cancel = fake_cancel,
};

/* Ends the attempt of check name, as a type does from its own callback. */
static void complete(const char *name, enum hd_kind kind)
{
	int i = slot(static_name(name));
	struct hd_check_run *run = fake.running[i];

	assert_non_null(run);
	fake.running[i] = NULL;
	hd_check_done(run, kind, "%s answered", run->conf->name);
}

/* ---- configurations built by hand (only the fields the engine reads) ---- */

static struct hd_check_conf *fake_conf(const char *name, const char *fingerprint, int interval_ms, int timeout_ms)
{
	struct hd_check_conf *c = xcalloc(1, sizeof(*c));

	c->name = xstrdup(name);
	c->type = &fake_type;
	c->critical = true;
	c->interval_ms = interval_ms;
	c->timeout_ms = timeout_ms;
	c->rise = 1;
	c->fall = 1;
	c->target = xasprintf("%s-target", name);
	c->fingerprint = xstrdup(fingerprint);
	c->type_conf = xcalloc(1, fake_type.conf_size);
	return c;
}

static struct hd_config *fake_config(size_t n, ...)
{
	struct hd_config *cfg = xcalloc(1, sizeof(*cfg));
	va_list ap;

	cfg->node_name = xstrdup("unit");
	cfg->checks = xcalloc(n + 1, sizeof(*cfg->checks));
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		cfg->checks[i] = va_arg(ap, struct hd_check_conf *);
	va_end(ap);
	cfg->n_checks = n;
	return cfg;
}

/* ---- driving the loop ---- */

struct fixture {
	struct event_base *base;
	struct hd_engine *engine;
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	memset(&fake, 0, sizeof(fake));
	hd_log_init(false, HD_LOG_ERR);
	fx->base = event_base_new();
	fx->engine = engine_new(fx->base, NULL);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	engine_stop(fx->engine);
	engine_free(fx->engine);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* Turns the loop until name's attempt runs (at most about 2 s). */
static void wait_started(struct fixture *fx, const char *name)
{
	int i = slot(static_name(name));

	for (int turn = 0; turn < 200 && fake.running[i] == NULL; turn++) {
		struct timeval tick = {0, 10 * 1000};
		event_base_loopexit(fx->base, &tick);
		event_base_dispatch(fx->base);
	}
	assert_non_null(fake.running[i]);
}

/* Turns the loop for about ms milliseconds. */
static void run_for(struct fixture *fx, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(fx->base, &tv);
	event_base_dispatch(fx->base);
}

/* ---- reloads ---- */

static void an_unchanged_check_keeps_its_running_attempt_and_a_removed_one_is_cancelled(void **state)
{
	struct fixture *fx = *state;
	struct hd_check_run *run_a;
	const struct hd_check *check_a;

	engine_apply_config(fx->engine, fake_config(2, fake_conf("a", "a1", 60000, 30000),
						    fake_conf("b", "b1", 60000, 30000)));
	wait_started(fx, "a");
	wait_started(fx, "b");
	run_a = fake.running[slot("a")];
	check_a = engine_find(fx->engine, "a");

	engine_apply_config(fx->engine, fake_config(2, fake_conf("a", "a1", 60000, 30000),
						    fake_conf("c", "c1", 60000, 30000)));
	assert_int_equal(fake.cancels[slot("b")], 1);
	assert_null(engine_find(fx->engine, "b"));
	assert_int_equal(fake.cancels[slot("a")], 0);
	assert_ptr_equal(fake.running[slot("a")], run_a);
	assert_ptr_equal(engine_find(fx->engine, "a"), check_a);
	/* The attempt's configuration is the one the running configuration holds, not a freed copy. */
	assert_ptr_equal(run_a->conf, check_a->conf);
	assert_ptr_equal(config_find_check(engine_config(fx->engine), "a"), run_a->conf);

	complete("a", HD_KIND_OK);
	assert_int_equal(check_a->attempts, 1);
	assert_int_equal(check_a->state, HD_STATE_UP);
	assert_string_equal(check_a->last.detail, "a answered");
	assert_int_equal(fake.starts[slot("a")], 1);
}

static void a_changed_check_is_cancelled_and_starts_again_from_pending(void **state)
{
	struct fixture *fx = *state;
	const struct hd_check *before, *after;

	engine_apply_config(fx->engine, fake_config(1, fake_conf("a", "a1", 60000, 30000)));
	wait_started(fx, "a");
	before = engine_find(fx->engine, "a");

	engine_apply_config(fx->engine, fake_config(1, fake_conf("a", "a2", 60000, 30000)));
	assert_int_equal(fake.cancels[slot("a")], 1);
	after = engine_find(fx->engine, "a");
	assert_ptr_not_equal(after, before); /* allocated before the old one was freed: never the same address */
	assert_int_equal(after->state, HD_STATE_PENDING);
	assert_int_equal(after->attempts, 0);

	wait_started(fx, "a");
	assert_string_equal(fake.running[slot("a")]->conf->fingerprint, "a2");
	complete("a", HD_KIND_REFUSED);
	assert_int_equal(after->state, HD_STATE_DOWN);
	assert_int_equal(after->attempts, 1);
}

/* ---- finding checks by name among many ---- */

#define MANY 3000

/* Checks svc-FROM .. svc-(TO-1); those in [changed_from, changed_to) get fingerprint "v2". The loop never turns,
 * so that no attempt starts. */
static struct hd_config *many_config(int from, int to, int changed_from, int changed_to)
{
	struct hd_config *cfg = fake_config(0);

	free(cfg->checks);
	cfg->checks = xcalloc((size_t)(to - from) + 1, sizeof(*cfg->checks));
	for (int i = from; i < to; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04d", i);
		cfg->checks[cfg->n_checks++] =
			fake_conf(name, i >= changed_from && i < changed_to ? "v2" : "v1", 60000, 30000);
	}
	return cfg;
}

static void assert_finds_exactly(struct hd_engine *e, int from, int to)
{
	char name[32];

	assert_int_equal(engine_n_checks(e), (size_t)(to - from));
	for (int i = from; i < to; i++) {
		const struct hd_check *c;
		snprintf(name, sizeof(name), "svc-%04d", i);
		c = engine_find(e, name);
		assert_non_null(c);
		assert_string_equal(c->conf->name, name);
		assert_ptr_equal(c, engine_check(e, (size_t)(i - from)));
	}
	for (int i = 0; i < 2 * MANY; i++) {
		snprintf(name, sizeof(name), "svc-%04d", i);
		if (i < from || i >= to)
			assert_null(engine_find(e, name));
	}
	assert_null(engine_find(e, ""));
	assert_null(engine_find(e, "svc-"));
	assert_null(engine_find(e, "svc-00000"));
}

static void each_of_many_checks_is_found_by_name_also_after_reloads(void **state)
{
	struct fixture *fx = *state;
	const struct hd_check *kept, *changed;

	assert_null(engine_find(fx->engine, "svc-0000")); /* no configuration yet */
	engine_apply_config(fx->engine, many_config(0, MANY, 0, 0));
	assert_finds_exactly(fx->engine, 0, MANY);
	kept = engine_find(fx->engine, "svc-1500");
	changed = engine_find(fx->engine, "svc-1200");

	/* The first 1000 go, 1000 new ones come, and 100 of those that stay change. */
	engine_apply_config(fx->engine, many_config(1000, MANY + 1000, 1100, 1200 + 100));
	assert_finds_exactly(fx->engine, 1000, MANY + 1000);
	assert_ptr_equal(engine_find(fx->engine, "svc-1500"), kept); /* unchanged: the same running check */
	assert_ptr_not_equal(engine_find(fx->engine, "svc-1200"), changed);
	assert_string_equal(engine_find(fx->engine, "svc-1200")->conf->fingerprint, "v2");
	assert_ptr_equal(config_find_check(engine_config(fx->engine), "svc-1500"), kept->conf);

	engine_apply_config(fx->engine, many_config(0, 0, 0, 0));
	assert_finds_exactly(fx->engine, 0, 0);
	assert_null(engine_find(fx->engine, "svc-1500"));
}

static void string_hash_is_fnv1a_64(void **unused)
{
	(void)unused;
	assert_true(hd_hash_str("") == 0xcbf29ce484222325ULL);
	assert_true(hd_hash_str("a") == 0xaf63dc4c8601ec8cULL);
	assert_true(hd_hash_str("foobar") == 0x85944171f73967e8ULL);
	assert_true(hd_hash_str("\xff") != hd_hash_str("\x7f")); /* bytes above 127 hash as unsigned */
}

/* ---- deadline and stop ---- */

static void the_deadline_cancels_and_records_a_timeout_naming_phase_and_peer(void **state)
{
	struct fixture *fx = *state;
	const struct hd_check *a;

	engine_apply_config(fx->engine, fake_config(1, fake_conf("a", "a1", 60000, 30)));
	a = engine_find(fx->engine, "a");
	for (int turn = 0; turn < 100 && a->attempts == 0; turn++)
		run_for(fx, 10);
	assert_int_equal(a->attempts, 1);
	assert_int_equal(fake.cancels[slot("a")], 1);
	assert_null(fake.running[slot("a")]);
	assert_int_equal(a->last.kind, HD_KIND_TIMEOUT);
	assert_string_equal(a->last.detail, "connect 192.0.2.1:7: no answer within 30 ms");
	assert_string_equal(a->last.peer, "192.0.2.1:7");
	/* the result carries the phase; the check counts the (kind, phase) pair it saw, and only that one */
	assert_int_equal(a->last.phase, HD_PHASE_CONNECT);
	assert_int_equal(a->n_failures, 1);
	assert_int_equal(a->failures[0].kind, HD_KIND_TIMEOUT);
	assert_int_equal(a->failures[0].phase, HD_PHASE_CONNECT);
	assert_int_equal(a->failures[0].count, 1);
}

static void stop_cancels_each_running_attempt_once(void **state)
{
	struct fixture *fx = *state;

	engine_apply_config(fx->engine, fake_config(2, fake_conf("a", "a1", 60000, 30000),
						    fake_conf("b", "b1", 60000, 30000)));
	wait_started(fx, "a");
	wait_started(fx, "b");
	engine_stop(fx->engine);
	assert_int_equal(fake.cancels[slot("a")], 1);
	assert_int_equal(fake.cancels[slot("b")], 1);
	engine_stop(fx->engine); /* teardown stops and frees again: nothing is cancelled twice */
	assert_int_equal(fake.cancels[slot("a")], 1);
	assert_int_equal(fake.cancels[slot("b")], 1);
}

/* ---- one-shot ---- */

static void on_all_done(struct hd_engine *engine, void *arg)
{
	(void)engine;
	(*(int *)arg)++;
}

static void one_shot_starts_every_check_at_once_and_is_done_once(void **state)
{
	struct fixture *fx = *state;
	int done = 0;

	engine_run_once(fx->engine, fake_config(3, fake_conf("a", "a1", 1000, 500), fake_conf("b", "b1", 1000, 500),
						fake_conf("c", "c1", 1000, 500)),
			on_all_done, &done);
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
	assert_non_null(fake.running[slot("a")]);
	assert_non_null(fake.running[slot("b")]);
	assert_non_null(fake.running[slot("c")]);

	complete("b", HD_KIND_OK);
	complete("a", HD_KIND_TIMEOUT);
	assert_int_equal(done, 0);
	complete("c", HD_KIND_OK);
	assert_int_equal(done, 1);

	run_for(fx, 1200); /* past the interval: one attempt each, never a second */
	assert_int_equal(fake.starts[slot("a")], 1);
	assert_int_equal(fake.starts[slot("b")], 1);
	assert_int_equal(fake.starts[slot("c")], 1);
	assert_int_equal(done, 1);
}

static void one_shot_without_checks_is_done_at_once(void **state)
{
	struct fixture *fx = *state;
	int done = 0;

	engine_run_once(fx->engine, fake_config(0), on_all_done, &done);
	assert_int_equal(done, 1);
}

/* ---- addresses as details show them ---- */

/* ---- the "exactly one hd_check_done()" contract ---- */

enum broken_way { DONE_TWICE, DONE_AFTER_DEADLINE_CANCEL };

/* Runs a type that breaks the contract in a child process; returns its wait status. */
static int run_broken_type(struct fixture *fx, enum broken_way way)
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		engine_apply_config(fx->engine, fake_config(1, fake_conf("a", "fa", 60000, way == DONE_TWICE ? 5000 : 50)));
		wait_started(fx, "a");
		if (way == DONE_TWICE) {
			struct hd_check_run *run = fake.running[slot("a")];
			complete("a", HD_KIND_OK);
			hd_check_done(run, HD_KIND_REFUSED, "a second answer");
		} else {
			fake.done_in_cancel = true;
			run_for(fx, 300); /* the deadline cancels the attempt, whose cancel() reports */
		}
		_exit(0); /* not reached when the contract is enforced */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void a_second_done_for_one_attempt_aborts(void **state)
{
	int twice = run_broken_type(*state, DONE_TWICE);
	int in_cancel = run_broken_type(*state, DONE_AFTER_DEADLINE_CANCEL);

	printf("done twice: %s %d; done from cancel(): %s %d\n", WIFSIGNALED(twice) ? "signal" : "exit",
	       WIFSIGNALED(twice) ? WTERMSIG(twice) : WEXITSTATUS(twice), WIFSIGNALED(in_cancel) ? "signal" : "exit",
	       WIFSIGNALED(in_cancel) ? WTERMSIG(in_cancel) : WEXITSTATUS(in_cancel));
	assert_true(WIFSIGNALED(twice) && WTERMSIG(twice) == SIGABRT);
	assert_true(WIFSIGNALED(in_cancel) && WTERMSIG(in_cancel) == SIGABRT);
}

static void peer_text_for_ipv4_and_ipv6(void **unused)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(3306)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(6379)};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct hd_check_run run = {0};
	char ip[64];

	(void)unused;
	inet_pton(AF_INET, "10.0.13.1", &in.sin_addr);
	inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
	hd_run_set_peer(&run, (struct sockaddr *)&in);
	assert_string_equal(run.peer, "10.0.13.1:3306");
	hd_run_set_peer(&run, (struct sockaddr *)&in6);
	assert_string_equal(run.peer, "[2001:db8::7]:6379");
	assert_int_equal(hd_sockaddr_ip((struct sockaddr *)&in6, ip, sizeof(ip)), 0);
	assert_string_equal(ip, "2001:db8::7");
	assert_int_equal(hd_sockaddr_ip((struct sockaddr *)&un, ip, sizeof(ip)), -1);
	hd_run_set_peer(&run, (struct sockaddr *)&un); /* another family leaves the peer as it was */
	assert_string_equal(run.peer, "[2001:db8::7]:6379");
}

static void source_address_of_a_bound_socket(void **unused)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct hd_check_run run = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)unused;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	hd_run_set_source(&run, fd);
	assert_string_equal(run.source_addr, "127.0.0.1");
	close(fd);
	hd_run_set_source(&run, -1); /* not connected yet: unchanged */
	assert_string_equal(run.source_addr, "127.0.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(an_unchanged_check_keeps_its_running_attempt_and_a_removed_one_is_cancelled,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_changed_check_is_cancelled_and_starts_again_from_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(the_deadline_cancels_and_records_a_timeout_naming_phase_and_peer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(stop_cancels_each_running_attempt_once, setup, teardown),
		cmocka_unit_test_setup_teardown(one_shot_starts_every_check_at_once_and_is_done_once, setup, teardown),
		cmocka_unit_test_setup_teardown(one_shot_without_checks_is_done_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(a_second_done_for_one_attempt_aborts, setup, teardown),
		cmocka_unit_test_setup_teardown(each_of_many_checks_is_found_by_name_also_after_reloads, setup, teardown),
		cmocka_unit_test(string_hash_is_fnv1a_64),
		cmocka_unit_test(peer_text_for_ipv4_and_ipv6),
		cmocka_unit_test(source_address_of_a_bound_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
