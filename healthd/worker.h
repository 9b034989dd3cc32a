/* worker.h: threads beside the event loop: one signal mask for all, a writer thread that runs when kicked (kicks
 * coalesce) and tells the loop after each run, and a stop bounded on the monotonic clock. */
#ifndef HEALTHD_WORKER_H
#define HEALTHD_WORKER_H

#include <pthread.h>
#include <stdbool.h>

struct event_base;
struct hd_worker;

/* Starts fn(arg) on a thread with every signal blocked (signals are the loop's), detached or not. 0 or an errno. */
int hd_thread_start(pthread_t *tid, bool detached, void *(*fn)(void *), void *arg);

/*
 * run(arg) runs on the thread after each hd_worker_kick() (several kicks before it starts make one run); it takes
 * what it works on under its owner's own lock. done(arg) then runs on the loop (may be NULL). Exits the process
 * when the thread cannot start.
 */
struct hd_worker *hd_worker_new(struct event_base *base, const char *what, void (*run)(void *arg),
				void (*done)(void *arg), void *arg);
void hd_worker_kick(struct hd_worker *w);
/*
 * Lets a pending run finish, stops the thread and frees w: true. False when the thread did not end within
 * timeout_ms (stuck in the kernel on a hung disk): it is left running with w, and the process is ending anyway.
 */
bool hd_worker_stop(struct hd_worker *w, int timeout_ms);

#endif
