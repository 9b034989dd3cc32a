/* line_server.c: the reference for the agent benchmark: the least a server can do to answer one fixed line per connection. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char line[] = "up 100%\n";
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, lfd, ep;
	struct epoll_event ev = {.events = EPOLLIN};

	if (argc != 2) {
		fprintf(stderr, "usage: line_server PORT\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
		perror("line_server");
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
					if (write(c, line, sizeof(line) - 1) < 0) {
						close(c);
						continue;
					}
					shutdown(c, SHUT_WR); /* as healthd does: half-close, then read until the peer closes */
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				}
			} else {
				char buf[512];
				ssize_t r = read(fd, buf, sizeof(buf));
				if (r <= 0 && !(r < 0 && errno == EAGAIN))
					close(fd);
			}
		}
	}
}
