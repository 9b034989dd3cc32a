/* worker.c: threads beside the event loop: the signal mask they start with, kicked writer threads, bounded stops. */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

struct hd_worker {
	void (*run)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct event *done_event;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* guarded by lock */
	bool kicked, quit;
};

int hd_thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t ignored;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
	pthread_attr_init(&attr);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(tid != NULL ? tid : &ignored, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct hd_worker *w = arg;

	(void)fd;
	(void)what;
	if (w->done != NULL)
		w->done(w->arg);
}

static void *worker_main(void *arg)
{
	struct hd_worker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->kicked && !w->quit)
			pthread_cond_wait(&w->wake, &w->lock);
		if (!w->kicked)
			break; /* quit, with nothing left to do */
		w->kicked = false;
		pthread_mutex_unlock(&w->lock);
		w->run(w->arg);
		event_active(w->done_event, EV_READ, 0); /* thread-safe: main.c enabled libevent's pthreads locking */
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct hd_worker *hd_worker_new(struct event_base *base, const char *what, void (*run)(void *arg),
				void (*done)(void *arg), void *arg)
{
	struct hd_worker *w = xcalloc(1, sizeof(*w));
	int err;

	w->run = run;
	w->done = done;
	w->arg = arg;
	w->done_event = event_new(base, -1, 0, on_done, w);
	if (w->done_event == NULL)
		hd_fatal("%s: out of memory", what);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	err = hd_thread_start(&w->thread, false, worker_main, w);
	if (err != 0)
		hd_fatal("cannot start the %s thread: %s", what, strerror(err));
	return w;
}

void hd_worker_kick(struct hd_worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->kicked = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

bool hd_worker_stop(struct hd_worker *w, int timeout_ms)
{
	struct timespec until;

	pthread_mutex_lock(&w->lock);
	w->quit = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_clockjoin_np(w->thread, NULL, CLOCK_MONOTONIC, &until) != 0)
		return false;
	event_free(w->done_event);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
	return true;
}
