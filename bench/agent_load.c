/* agent_load.c: load client for agent-check style ports: connect, read one line, close; prints rate and latency. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slot {
	int fd;
	double started;
	char buf[256];
	size_t used;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int open_one(int ep, struct slot *s, const struct sockaddr_in *sa)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	s->used = 0;
	s->started = now_ms();
	if (connect(s->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
		close(s->fd);
		return -1;
	}
	return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	long total, concurrency, done = 0, errors = 0, started = 0;
	double seconds, t0, *lat;
	struct slot *slots;
	int ep;

	if (argc != 5) {
		fprintf(stderr, "usage: agent_load PORT TOTAL CONCURRENCY MAX_SECONDS\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	total = atol(argv[2]);
	concurrency = atol(argv[3]);
	seconds = atof(argv[4]);
	lat = calloc((size_t)total, sizeof(double));
	slots = calloc((size_t)concurrency, sizeof(*slots));
	ep = epoll_create1(0);
	t0 = now_ms();
	for (long i = 0; i < concurrency && started < total; i++, started++)
		if (open_one(ep, &slots[i], &sa) < 0)
			errors++;
	while (done + errors < started && now_ms() - t0 < seconds * 1e3) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;
			ssize_t r = read(s->fd, s->buf + s->used, sizeof(s->buf) - 1 - s->used);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0)
				s->used += (size_t)r;
			if (r > 0 && memchr(s->buf, '\n', s->used) == NULL)
				continue;
			if (r > 0 || s->used > 0)
				lat[done++] = now_ms() - s->started;
			else
				errors++;
			epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
			close(s->fd);
			if (started < total && now_ms() - t0 < seconds * 1e3) {
				started++;
				if (open_one(ep, s, &sa) < 0)
					errors++;
			}
		}
	}
	double elapsed = (now_ms() - t0) / 1e3;
	qsort(lat, (size_t)done, sizeof(double), cmp_double);
	printf("%.0f %.3f %.3f %ld %ld\n", (double)done / elapsed, done ? lat[done / 2] : 0.0,
	       done ? lat[(long)((double)done * 0.99)] : 0.0, done, errors);
	return 0;
}
