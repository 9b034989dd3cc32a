/* ctl.c: `healthd ctl`, the operator's client of the admin socket: sends one command, prints the answer. */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "control.h"

/* Exit codes, documented in --help and the man page. */
enum { CTL_OK = 0, CTL_REFUSED = 1, CTL_USAGE = 2, CTL_UNREACHABLE = 3 };

#define CTL_MAX_REPLY (4 * 1024 * 1024)
#define CTL_DEFAULT_SOCKET "/run/healthd/healthd.sock"

void ctl_usage(FILE *out)
{
	fprintf(out,
		"usage: healthd ctl [--socket PATH | --config FILE] [--json] [--timeout MS] COMMAND [--reason TEXT]\n"
		"       healthd ctl [--socket PATH | --config FILE] push NAME ok|fail [--detail TEXT]\n"
		"\n"
		"Talks to the running healthd over its admin socket (listen.admin_socket, default " CTL_DEFAULT_SOCKET
		",\nmode 0600: run it as the service user or root).\n"
		"\n"
		"Commands:\n"
		"  drain     the agent answers \"drain\": HAProxy sends no new traffic, sessions finish\n"
		"  maint     the agent answers \"maint\": HAProxy takes the server out entirely\n"
		"  ready     leave drain/maint: each polling load balancer gets \"ready\" once\n"
		"  status    the admin state, the overall state and every check\n"
		"  reload    re-read the configuration (a bad file changes nothing; the error is printed)\n"
		"  push      report for the push check NAME: ok (it ran well) or fail (with --detail why)\n"
		"drain, maint, ready and push reports are saved in state_dir and survive a restart or a crash.\n"
		"\n"
		"  -s, --socket PATH   the admin socket\n"
		"  -c, --config FILE   read the socket path from this configuration\n"
		"  -r, --reason TEXT   why (shown in /health and the log), for drain, maint and ready\n"
		"  -D, --detail TEXT   what happened, for push (shown in /health, the log and alerts)\n"
		"  -j, --json          print the daemon's JSON answer as it is\n"
		"  -t, --timeout MS    how long to wait for the answer (default 10000)\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 done, 1 refused or not saved (the message says why), 2 usage, 3 healthd not reachable.\n");
}

static int connect_socket(const char *path, int timeout_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = hd_ms_tv(timeout_ms);
	int fd, saved;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "healthd ctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "healthd ctl: socket(): %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	saved = errno;
	close(fd);
	fprintf(stderr, "healthd ctl: cannot connect to %s: %s%s\n", path, strerror(saved),
		saved == ENOENT || saved == ECONNREFUSED ? " (is healthd running? is this its listen.admin_socket? "
							   "see --socket and --config)" :
		saved == EACCES ? " (the socket is mode 0600: run as the service user, or root)" : "");
	return -1;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to the reply's newline (or EOF). NULL on error or timeout, reported. */
static char *read_reply(int fd, const char *path)
{
	size_t cap = 4096, used = 0;
	char *buf = xmalloc(cap);

	for (;;) {
		ssize_t n;
		if (used + 1 == cap) {
			if (cap >= CTL_MAX_REPLY) {
				fprintf(stderr, "healthd ctl: the answer from %s is larger than %d bytes\n", path, CTL_MAX_REPLY);
				free(buf);
				return NULL;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = recv(fd, buf + used, cap - used - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "healthd ctl: no answer from %s: %s\n", path,
				errno == EAGAIN || errno == EWOULDBLOCK ? "timed out (see --timeout)" : strerror(errno));
			free(buf);
			return NULL;
		}
		used += (size_t)n;
		buf[used] = '\0';
		if (n == 0 || memchr(buf, '\n', used) != NULL)
			break;
	}
	if (used == 0) {
		fprintf(stderr, "healthd ctl: %s closed the connection without an answer\n", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static double num_item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_admin(const cJSON *admin)
{
	const char *reason = hd_json_string(admin, "reason", "");

	printf("admin:   %s", hd_json_string(admin, "state", "?"));
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(admin, "since")))
		printf(" since %s", hd_json_string(admin, "since", ""));
	if (reason[0])
		printf(" (%s)", reason);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(admin, "stopping")))
		printf(" [stopping]");
	printf("\n");
}

static void print_status(const cJSON *r)
{
	const cJSON *checks = cJSON_GetObjectItemCaseSensitive(r, "checks"), *c;
	int n = 0, up = 0, down = 0, pending = 0;

	printf("healthd %s, pid %.0f, node %s\nconfig:  %s\nstatus:  %s\n", hd_json_string(r, "version", "?"), num_item(r, "pid"),
	       hd_json_string(r, "node", "?"), hd_json_string(r, "config", "?"), hd_json_string(r, "status", "?"));
	print_admin(cJSON_GetObjectItemCaseSensitive(r, "admin"));
	printf("agent:   %.0f replies\n", num_item(cJSON_GetObjectItemCaseSensitive(r, "agent"), "replies"));
	cJSON_ArrayForEach(c, checks) {
		const char *st = hd_json_string(c, "status", "?");
		n++;
		up += strcmp(st, "up") == 0 || strcmp(st, "warn") == 0;
		down += strcmp(st, "down") == 0;
		pending += strcmp(st, "pending") == 0;
	}
	printf("checks:  %d (%d up, %d down, %d pending)\n", n, up, down, pending);
	cJSON_ArrayForEach(c, checks) {
		printf("  %-20s %-8s %-12s %s\n", c->string, hd_json_string(c, "status", "?"), hd_json_string(c, "kind", "-"),
		       hd_json_string(c, "detail", ""));
	}
}

/* Prints the answer for people; returns the exit status. */
static int print_reply(const char *command, const cJSON *r)
{
	const cJSON *admin = cJSON_GetObjectItemCaseSensitive(r, "admin");

	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"))) {
		if (strcmp(command, "reload") == 0)
			fprintf(stderr, "healthd ctl: reload refused, the running configuration stays: %s\n",
				hd_json_string(r, "error", "?"));
		else
			fprintf(stderr, "healthd ctl: %s refused: %s\n", command, hd_json_string(r, "error", "?"));
		return CTL_REFUSED;
	}
	if (strcmp(command, "status") == 0) {
		print_status(r);
		return CTL_OK;
	}
	if (strcmp(command, "reload") == 0) {
		printf("reloaded: %s\n", hd_json_string(r, "summary", ""));
		return CTL_OK;
	}
	if (strcmp(command, "push") == 0) {
		printf("push: %s %s recorded; it counts at the check's next attempt (within %.0f ms)\n",
		       hd_json_string(r, "check", "?"), hd_json_string(r, "result", "?"), num_item(r, "interval_ms"));
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "persisted"))) {
			fprintf(stderr, "healthd ctl: WARNING: the report is NOT saved; a restart forgets it: %s\n",
				hd_json_string(r, "persist_error", "?"));
			return CTL_REFUSED;
		}
		return CTL_OK;
	}
	print_admin(admin);
	if (strcmp(command, "ready") == 0)
		printf("each load balancer gets \"ready\" once, on its next agent poll within %.0f ms\n",
		       num_item(r, "ready_window_ms"));
	else
		printf("the load balancers see it on their next agent poll\n");
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "persisted"))) {
		fprintf(stderr, "healthd ctl: WARNING: %s is in effect but NOT saved; it will be lost on restart: %s\n",
			command, hd_json_string(r, "persist_error", "?"));
		return CTL_REFUSED;
	}
	return CTL_OK;
}

static char *socket_from_config(const char *config_path)
{
	char *error = NULL, *path;
	struct hd_config *cfg = config_load(config_path, &error);

	if (cfg == NULL) {
		fprintf(stderr, "healthd ctl: %s\n", error);
		free(error);
		return NULL;
	}
	path = xstrdup(cfg->listen.admin_socket);
	config_free(cfg);
	return path;
}

int ctl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"config", required_argument, NULL, 'c'},
		{"reason", required_argument, NULL, 'r'}, {"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
		{"detail", required_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	const char *socket_path = NULL, *config_path = NULL, *reason = "", *detail = NULL, *command;
	char *path = NULL, *request = NULL, *answer = NULL, *end;
	bool json = false;
	long timeout_ms = 10000;
	enum hd_control_cmd cmd;
	char parsed_reason[256];
	const char *why;
	cJSON *reply = NULL;
	int opt, fd = -1, rc = CTL_UNREACHABLE;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "s:c:r:jt:hD:", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'D':
			detail = optarg;
			break;
		case 't':
			errno = 0;
			timeout_ms = strtol(optarg, &end, 10);
			if (errno || *end || timeout_ms < 1 || timeout_ms > 600000) {
				fprintf(stderr, "healthd ctl: --timeout wants milliseconds from 1 to 600000, got \"%s\"\n", optarg);
				return CTL_USAGE;
			}
			break;
		case 'h':
			ctl_usage(stdout);
			return CTL_OK;
		default:
			ctl_usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "push") == 0) {
		/* push NAME ok|fail [--detail TEXT]: the daemon checks the name; the words are checked here too */
		if (optind + 3 != argc || (strcmp(argv[optind + 2], "ok") != 0 && strcmp(argv[optind + 2], "fail") != 0) ||
		    reason[0] || strpbrk(argv[optind + 1], " \t\r\n")) {
			fprintf(stderr, "healthd ctl: usage: healthd ctl push NAME ok|fail [--detail TEXT]\n");
			return CTL_USAGE;
		}
		reason = request = xasprintf("%s %s%s%s", argv[optind + 1], argv[optind + 2], detail ? " " : "",
					     detail ? detail : "");
		argc = optind + 1;
	} else if (detail != NULL) {
		fprintf(stderr, "healthd ctl: --detail is for push only\n");
		return CTL_USAGE;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, optind == argc ? "healthd ctl: which command?\n" : "healthd ctl: one command at a time\n");
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	if (socket_path && config_path) {
		fprintf(stderr, "healthd ctl: give --socket or --config, not both\n");
		return CTL_USAGE;
	}
	command = argv[optind];
	answer = request; /* the push arguments, if any */
	request = xasprintf("%s%s%s", command, reason[0] ? " " : "", reason);
	free(answer);
	answer = NULL;
	if (strpbrk(command, " \t") || control_parse_request(request, &cmd, parsed_reason, sizeof(parsed_reason), &why) < 0) {
		fprintf(stderr, "healthd ctl: \"%s\": %s\n", command, strpbrk(command, " \t") ? "unknown command" : why);
		free(request);
		return CTL_USAGE;
	}
	free(request);
	/* What goes on the wire is the cleaned form: one line, whatever the reason held. */
	request = xasprintf("%s%s%s", hd_control_cmd_name(cmd), parsed_reason[0] ? " " : "", parsed_reason);
	command = hd_control_cmd_name(cmd);
	if (config_path != NULL && (path = socket_from_config(config_path)) == NULL) {
		free(request);
		return CTL_USAGE;
	}
	if (path == NULL)
		path = xstrdup(socket_path ? socket_path : CTL_DEFAULT_SOCKET);
	fd = connect_socket(path, (int)timeout_ms);
	if (fd < 0)
		goto out;
	if (send_all(fd, request, strlen(request)) < 0 || send_all(fd, "\n", 1) < 0) {
		fprintf(stderr, "healthd ctl: cannot send to %s: %s\n", path, strerror(errno));
		goto out;
	}
	answer = read_reply(fd, path);
	if (answer == NULL)
		goto out;
	reply = cJSON_Parse(answer);
	if (!cJSON_IsObject(reply)) {
		fprintf(stderr, "healthd ctl: %s answered something that is not JSON: %.200s\n", path, answer);
		goto out;
	}
	if (json) {
		fputs(answer, stdout);
		rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) ? CTL_OK : CTL_REFUSED;
		if (rc == CTL_OK && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(reply, "persisted")))
			rc = CTL_REFUSED;
	} else {
		rc = print_reply(command, reply);
	}
out:
	if (fd >= 0)
		close(fd);
	cJSON_Delete(reply);
	free(answer);
	free(request);
	free(path);
	return rc;
}
