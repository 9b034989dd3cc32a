/* test_control_socket.c: the admin socket is born 0600 without touching the process umask other threads create files under. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "status.h"

#define SOCKET_CREATIONS 400

struct dir_maker {
	char dir[128];
	atomic_bool stop;
	unsigned made, wrong_mode;
	mode_t last_wrong;
};

/* What the spool's writer thread does: mkdir(0700), and expects 0700 under a umask of 022. */
static void *make_dirs(void *arg)
{
	struct dir_maker *m = arg;
	struct stat st;

	while (!atomic_load(&m->stop)) {
		assert_int_equal(mkdir(m->dir, 0700), 0);
		assert_int_equal(stat(m->dir, &st), 0);
		if ((st.st_mode & 0777) != 0700) {
			m->wrong_mode++;
			m->last_wrong = st.st_mode & 0777;
		}
		m->made++;
		assert_int_equal(rmdir(m->dir), 0);
	}
	return NULL;
}

static void test_socket_mode_without_umask(void **unused)
{
	char dir[] = "/tmp/hd-ctlsock-XXXXXX", text[512], sock[160], *error = NULL;
	struct dir_maker maker = {0};
	struct event_base *base;
	struct hd_engine *engine;
	struct hd_status *status;
	struct hd_config *cfg;
	pthread_t thread;
	struct stat st;

	(void)unused;
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/admin.sock", dir);
	snprintf(maker.dir, sizeof(maker.dir), "%s/spool", dir);
	snprintf(text, sizeof(text), "{\"state_dir\": \"%s\", \"listen\": {\"admin_socket\": \"%s\"}, \"checks\": []}", dir,
		 sock);
	cfg = config_parse("t.json", text, strlen(text), &error);
	assert_non_null(cfg);
	evthread_use_pthreads();
	base = event_base_new();
	engine = engine_new(base, NULL);
	engine_apply_config(engine, cfg);
	status = status_new(engine);
	umask(022);

	assert_int_equal(pthread_create(&thread, NULL, make_dirs, &maker), 0);
	for (int i = 0; i < SOCKET_CREATIONS; i++) {
		struct hd_control_deps deps = {.status = status, .engine = engine};
		struct hd_control *c = control_start(base, engine_config(engine), &deps);
		assert_non_null(c);
		assert_int_equal(lstat(sock, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0600);
		control_free(c);
	}
	atomic_store(&maker.stop, true);
	pthread_join(thread, NULL);
	printf("%d admin sockets created (each 0600) while another thread made %u directories: %u got a mode other "
	       "than 0700 (last %03o)\n", SOCKET_CREATIONS, maker.made, maker.wrong_mode, (unsigned)maker.last_wrong);
	assert_int_equal(umask(022), 022); /* nobody changed it */
	assert_true(maker.made > 0);
	assert_int_equal(maker.wrong_mode, 0);

	status_free(status);
	engine_free(engine);
	event_base_free(base);
	unlink(sock);
	char state[200];
	snprintf(state, sizeof(state), "%s/admin.json", dir);
	unlink(state);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_mode_without_umask),
	};

	hd_log_init(false, HD_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
