/* fuzz_mysql_greeting.c: a server's first packet: judged by hd_mysql_greeting_check, then, when let through, read by Connector/C. */
#include <mysql.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_mysql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct peer {
	int listener;
	const uint8_t *data;
	size_t size;
};

/* The server: sends the input as its first bytes, half-closes, reads what the client says until it closes. */
static void *serve_one(void *arg)
{
	struct peer *p = arg;
	char sink[4096];
	int fd = accept(p->listener, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (send(fd, p->data, p->size, MSG_NOSIGNAL) == (ssize_t)p->size)
		shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0)
		;
	close(fd);
	return NULL;
}

static int listener_port(int *listener)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);

	*listener = socket(AF_INET, SOCK_STREAM, 0);
	if (*listener < 0 || bind(*listener, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(*listener, 4) != 0 ||
	    getsockname(*listener, (struct sockaddr *)&sin, &len) != 0)
		abort();
	return ntohs(sin.sin_port);
}

/*
 * Whatever the gate lets through must be safe for the library: such inputs are served to a real (blocking)
 * mysql_real_connect on loopback. A first packet the gate refuses never reaches the library in healthd.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int listener = -1, port;
	char why[200];
	unsigned int tcp = MYSQL_PROTOCOL_TCP, secs = 1;
	struct peer p = {.data = data, .size = size};
	pthread_t server;
	MYSQL *m;

	why[0] = '\0';
	switch (hd_mysql_greeting_check(data, size, why, sizeof(why))) {
	case HD_GREETING_BAD:
		if (why[0] == '\0' || strlen(why) >= sizeof(why))
			abort();
		return 0;
	case HD_GREETING_NEED_MORE:
		if (size >= HD_MYSQL_GREETING_MAX)
			abort(); /* a whole buffer always decides */
		return 0;
	case HD_GREETING_OK:
		break;
	}
	if (listener < 0)
		port = listener_port(&listener);
	p.listener = listener;
	if (pthread_create(&server, NULL, serve_one, &p) != 0)
		abort();
	m = mysql_init(NULL);
	mysql_options(m, MYSQL_OPT_PROTOCOL, &tcp);
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
	mysql_real_connect(m, "127.0.0.1", "u", "p", NULL, (unsigned int)port, NULL, 0);
	mysql_close(m);
	pthread_join(server, NULL);
	return 0;
}
