/* check_program.c: the program check: runs a Nagios/Monitoring plugin (argv, no shell) with the check's deadline. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "nagios.h"

#define PROGRAM_MAX_ARGS 64
#define PROGRAM_MAX_ARG_BYTES 4096
#define PROGRAM_KEEP_BYTES (64 * 1024) /* output kept for parsing; the rest is read and dropped */
#define PROGRAM_TARGET_MAX 200
#define PROGRAM_POLL_MS 10 /* without pidfds: how often an exit is looked for */
#define PROGRAM_DEFAULT_DIRS "[\"/usr/lib/nagios/plugins\", \"/etc/healthd/checks.d\"]"

static const struct timeval poll_interval = {0, PROGRAM_POLL_MS * 1000};
static char *const program_env[] = {"PATH=/usr/bin:/bin", "LANG=C", NULL};
static const char *const default_dirs[] = {"/usr/lib/nagios/plugins", "/etc/healthd/checks.d", NULL};

struct program_conf {
	char **command;      /* argv, NULL-terminated */
	char **allowed_dirs; /* NULL-terminated; NULL means default_dirs */
	char *exec_path;     /* realpath of command[0], checked */
};

/* One child, from spawn to reap. It outlives its attempt when the attempt is cancelled (killed, not yet reaped). */
struct program_child {
	struct hd_check_run *run; /* NULL once the attempt is gone: only the reaping is left */
	pid_t pid;
	int pidfd;
	int out_fd;
	struct event *exit_ev;
	struct event *out_ev;
	char *out;
	size_t out_len, out_cap;
	size_t dropped; /* bytes beyond PROGRAM_KEEP_BYTES */
	TAILQ_ENTRY(program_child) orphans;
};

/* The last perfdata of a check, kept across attempts for /metrics. */
struct hd_persist {
	struct hd_perfdata perf[HD_PERFDATA_MAX];
	size_t n_perf;
};

/* Killed children not reaped yet; their exit events reap them on the loop. */
static TAILQ_HEAD(, program_child) orphans = TAILQ_HEAD_INITIALIZER(orphans);

/* ---- configuration ---- */

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void release_strv(void *field)
{
	free_strv(*(char ***)field);
	*(char ***)field = NULL;
}

static int parse_strv(struct cfg_ctx *ctx, const cJSON *node, char ***out, bool absolute)
{
	const cJSON *item;
	size_t n = 0;
	char **v;

	if (!cJSON_IsArray(node) || cJSON_GetArraySize(node) == 0)
		return cfg_error(ctx, node, false, "expected a non-empty array of strings%s",
				 absolute ? " (absolute directory paths)" : " (the program, then its arguments)");
	if (cJSON_GetArraySize(node) > PROGRAM_MAX_ARGS)
		return cfg_error(ctx, node, false, "at most %d elements", PROGRAM_MAX_ARGS);
	cJSON_ArrayForEach(item, node) {
		if (!cJSON_IsString(item) || (n == 0 && item->valuestring[0] == '\0'))
			return cfg_error(ctx, item, false, "expected a %sstring", n == 0 ? "non-empty " : "");
		if (strlen(item->valuestring) > PROGRAM_MAX_ARG_BYTES)
			return cfg_error(ctx, item, false, "longer than %d bytes", PROGRAM_MAX_ARG_BYTES);
		if ((absolute || n == 0) && item->valuestring[0] != '/')
			return cfg_error(ctx, item, false,
					 "\"%s\" is not an absolute path (the program is never looked up in PATH: give its "
					 "full path, e.g. /usr/lib/nagios/plugins/check_tcp)",
					 item->valuestring);
		n++;
	}
	v = xcalloc(n + 1, sizeof(*v));
	n = 0;
	cJSON_ArrayForEach(item, node) v[n++] = xstrdup(item->valuestring);
	release_strv(out);
	*out = v;
	return 0;
}

static int parse_command(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	return parse_strv(ctx, node, field, false);
}

static int parse_dirs(struct cfg_ctx *ctx, const cJSON *node, void *field)
{
	return parse_strv(ctx, node, field, true);
}

static const struct cfg_key program_keys[] = {
	{"command", CFG_CUSTOM, offsetof(struct program_conf, command), true, 0, 0, NULL, NULL,
	 "the program and its arguments, run directly (never through a shell): [\"/usr/lib/nagios/plugins/check_tcp\", "
	 "\"-H\", \"db1\", \"-p\", \"3306\"]; its exit status and first output line are read as a Nagios plugin's",
	 parse_command, release_strv, "array of strings"},
	{"allowed_dirs", CFG_CUSTOM, offsetof(struct program_conf, allowed_dirs), false, 0, 0, PROGRAM_DEFAULT_DIRS, NULL,
	 "directories the program must be in (after resolving symlinks); it and every directory from it up to the "
	 "allowed one must be owned by root and not writable by group or others",
	 parse_dirs, release_strv, "array of absolute paths"},
	{NULL, 0, 0, false, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL},
};

static bool safe_owner(const struct stat *st)
{
	return st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* realpath of dir, and whether path (already resolved) lies inside it. */
static bool inside(const char *path, const char *dir, char *resolved_dir)
{
	size_t n;

	if (realpath(dir, resolved_dir) == NULL)
		return false;
	n = strlen(resolved_dir);
	if (n == 1) /* "/" */
		return true;
	return strncmp(path, resolved_dir, n) == 0 && path[n] == '/';
}

/*
 * The rule every program must pass, at load and before every run: resolved with realpath, inside an allowed
 * directory, a root-owned executable regular file not writable by group or others, and every directory from it
 * up to the allowed one the same. 0 with resolved filled, or -1 with why.
 */
static int verify_program(const char *given, char *const *allowed, char *resolved, char *why, size_t why_len)
{
	char dir[PATH_MAX], parent[PATH_MAX], list[512];
	const char *const *dirs = allowed ? (const char *const *)allowed : default_dirs;
	size_t used = 0;
	struct stat st;
	bool found = false;

	if (realpath(given, resolved) == NULL) {
		snprintf(why, why_len, "%s: %s", given, strerror(errno));
		return -1;
	}
	list[0] = '\0';
	for (size_t i = 0; dirs[i] && !found; i++) {
		hd_appendf(list, sizeof(list), &used, "%s%s", i ? ", " : "", dirs[i]);
		found = inside(resolved, dirs[i], dir);
	}
	if (!found) {
		snprintf(why, why_len, "%s%s%s is not in an allowed directory (allowed_dirs: %s)", given,
			 strcmp(given, resolved) ? " -> " : "", strcmp(given, resolved) ? resolved : "", list);
		return -1;
	}
	if (stat(resolved, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "%s: not a regular file", resolved);
		return -1;
	}
	if (!safe_owner(&st)) {
		snprintf(why, why_len, "%s is owned by uid %u with mode %04o: it must be owned by root and not writable by "
			 "group or others (chown root:root, chmod go-w)", resolved, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (access(resolved, X_OK) < 0) {
		snprintf(why, why_len, "%s is not executable (%s)", resolved, strerror(errno));
		return -1;
	}
	hd_strlcpy(parent, resolved, sizeof(parent));
	for (;;) {
		char *slash = strrchr(parent, '/');
		if (slash == NULL)
			break;
		if (slash == parent)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(parent, &st) < 0 || !safe_owner(&st)) {
			snprintf(why, why_len, "%s (a directory above %s) is owned by uid %u with mode %04o: it must be owned "
				 "by root and not writable by group or others", parent, resolved, (unsigned)st.st_uid,
				 (unsigned)(st.st_mode & 07777));
			return -1;
		}
		if (strcmp(parent, dir) == 0 || strcmp(parent, "/") == 0)
			break;
	}
	return 0;
}

/* The command line for people, bounded: what /health shows as the target and a timeout names. */
static char *command_text(char *const *argv)
{
	char joined[PROGRAM_TARGET_MAX * 2], shown[PROGRAM_TARGET_MAX];
	size_t used = 0;

	joined[0] = '\0';
	for (size_t i = 0; argv[i]; i++)
		hd_appendf(joined, sizeof(joined), &used, "%s%s", i ? " " : "", argv[i]);
	hd_sanitize_text(joined, used, shown, sizeof(shown));
	return xstrdup(shown);
}

static int program_validate(struct hd_check_conf *conf, struct cfg_ctx *ctx)
{
	struct program_conf *pc = conf->type_conf;
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(ctx->check_node, "command");
	char resolved[PATH_MAX], why[PATH_MAX + 256];

	if (verify_program(pc->command[0], pc->allowed_dirs, resolved, why, sizeof(why)) < 0)
		return cfg_error(ctx, cJSON_GetArrayItem(cmd, 0) ?: cmd, false, "%s", why);
	pc->exec_path = xstrdup(resolved);
	conf->target = command_text(pc->command);
	return 0;
}

static void program_free_conf(void *type_conf)
{
	struct program_conf *pc = type_conf;

	free(pc->exec_path);
	pc->exec_path = NULL;
}

/* ---- one run ---- */

static void child_free(struct program_child *ch)
{
	if (ch->exit_ev)
		event_free(ch->exit_ev);
	if (ch->out_ev)
		event_free(ch->out_ev);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	if (ch->out_fd >= 0)
		close(ch->out_fd);
	free(ch->out);
	free(ch);
}

/* Reads what is there now, without blocking (a bounded amount per call). At EOF or on an error, closes the pipe. */
static void read_output(struct program_child *ch)
{
	char scratch[16384];

	for (int rounds = 0; rounds < 64; rounds++) { /* bounded: other events get their turn */
		char *dst = scratch;
		size_t room = sizeof(scratch);
		ssize_t n;

		if (ch->out_len < PROGRAM_KEEP_BYTES) {
			if (ch->out_cap - ch->out_len < 4096 && ch->out_cap < PROGRAM_KEEP_BYTES) {
				ch->out_cap = ch->out_cap ? ch->out_cap * 2 : 4096;
				if (ch->out_cap > PROGRAM_KEEP_BYTES)
					ch->out_cap = PROGRAM_KEEP_BYTES;
				ch->out = xrealloc(ch->out, ch->out_cap);
			}
			dst = ch->out + ch->out_len;
			room = ch->out_cap - ch->out_len;
		}
		n = read(ch->out_fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			event_del(ch->out_ev);
			close(ch->out_fd);
			ch->out_fd = -1;
			return;
		}
		if (dst == scratch)
			ch->dropped += (size_t)n;
		else
			ch->out_len += (size_t)n;
	}
}

static void on_output(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_output(arg);
}

/* The detail and kind of a finished plugin, from its wait status and output. */
static void report(struct hd_check_run *run, struct program_child *ch, int wstatus)
{
	struct hd_plugin_output *po = xcalloc(1, sizeof(*po));
	enum hd_plugin_status st = hd_plugin_status_from_wait(wstatus);
	struct hd_persist *persist = run->persist;
	const char *text;
	char how[96];

	hd_plugin_parse_output(ch->out ? ch->out : "", ch->out_len, po);
	if (persist == NULL)
		persist = run->persist = xcalloc(1, sizeof(*persist));
	memcpy(persist->perf, po->perf, po->n_perf * sizeof(po->perf[0]));
	persist->n_perf = po->n_perf;
	if (ch->dropped)
		log_debug("check %s: %zu bytes of output beyond %d KiB dropped", run->conf->name, ch->dropped,
			  PROGRAM_KEEP_BYTES / 1024);
	text = po->summary[0] ? po->summary : "(no output)";
	if (WIFSIGNALED(wstatus))
		snprintf(how, sizeof(how), "killed by signal %d (SIG%s)", WTERMSIG(wstatus),
			 sigabbrev_np(WTERMSIG(wstatus)) ? sigabbrev_np(WTERMSIG(wstatus)) : "?");
	else
		snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(wstatus));
	switch (st) {
	case HD_PLUGIN_OK:
		hd_check_done(run, HD_KIND_OK, "%s", text);
		break;
	case HD_PLUGIN_WARNING: /* plugins usually say WARNING themselves; say it when they do not */
		run->warn = true;
		hd_check_done(run, HD_KIND_OK, "%s%s", strstr(text, "WARNING") ? "" : "WARNING: ", text);
		break;
	case HD_PLUGIN_CRITICAL:
		hd_check_done(run, HD_KIND_ERROR, "%s%s", strstr(text, "CRITICAL") ? "" : "CRITICAL: ", text);
		break;
	case HD_PLUGIN_UNKNOWN:
		hd_check_done(run, HD_KIND_ERROR, "UNKNOWN (%s%s): %s", how,
			      WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 3 ? ", not a plugin status" : "", text);
		break;
	}
	free(po);
}

/* Kills whatever is left of the child's process group; the leader is not reaped yet, so its id is still ours. */
static void kill_group(struct program_child *ch)
{
	if (kill(-ch->pid, SIGKILL) < 0 && errno != ESRCH)
		log_warn("program: kill(-%d): %s", (int)ch->pid, strerror(errno));
}

static void on_exit_event(evutil_socket_t fd, short what, void *arg)
{
	struct program_child *ch = arg;
	struct hd_check_run *run = ch->run;
	siginfo_t info = {0};
	int wstatus = 0;

	(void)fd;
	(void)what;
	/* Exited? Look without reaping, so that its id still names its process group for the kill below. */
	if (waitid(P_PID, (id_t)ch->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
		return; /* not yet (only when polling); the persistent event comes back */
	kill_group(ch); /* a plugin that left a child behind: the child goes too */
	while (waitpid(ch->pid, &wstatus, 0) < 0 && errno == EINTR) /* a zombie already: no wait */
		;
	if (run == NULL) {
		TAILQ_REMOVE(&orphans, ch, orphans);
		child_free(ch);
		return;
	}
	if (ch->out_fd >= 0)
		read_output(ch); /* what it wrote before exiting is in the pipe */
	run->state = NULL;
	report(run, ch, wstatus);
	child_free(ch);
}

static int spawn(struct hd_check_run *run, const struct program_conf *pc, struct program_child *ch, char *why,
		 size_t why_len)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2], rc;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(why, why_len, "pipe: %s", strerror(errno));
		return -1;
	}
	/* Only our end is non-blocking: the plugin writes to an ordinary blocking stdout. */
	fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* no daemon socket or file reaches the plugin */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all); /* SIGPIPE is ignored in healthd, not in the plugin */
	/* A session of its own: its own process group (killed whole at the deadline), no controlling terminal. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&ch->pid, pc->exec_path, &fa, &attr, pc->command, program_env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		snprintf(why, why_len, "cannot run %s: %s", pc->exec_path, strerror(rc));
		return -1;
	}
	ch->out_fd = pipefd[0];
	ch->pidfd = pidfd_open(ch->pid, 0); /* close-on-exec; readable once the child has exited */
	if (ch->pidfd >= 0) {
		ch->exit_ev = event_new(run->base, ch->pidfd, EV_READ | EV_PERSIST, on_exit_event, ch);
	} else {
		/* No pidfd (Linux before 5.3, valgrind, a strict seccomp filter): look every few milliseconds. */
		static bool said;
		if (!said)
			log_info("program: pidfd_open: %s: watching children by polling every %d ms", strerror(errno),
				 PROGRAM_POLL_MS);
		said = true;
		ch->exit_ev = event_new(run->base, -1, EV_PERSIST, on_exit_event, ch);
	}
	ch->out_ev = event_new(run->base, ch->out_fd, EV_READ | EV_PERSIST, on_output, ch);
	if (ch->exit_ev == NULL || ch->out_ev == NULL ||
	    event_add(ch->exit_ev, ch->pidfd >= 0 ? NULL : &poll_interval) < 0 || event_add(ch->out_ev, NULL) < 0)
		hd_fatal("program: cannot watch a child on the loop");
	return 0;
}

static void program_start(struct hd_check_run *run)
{
	const struct program_conf *pc = run->conf->type_conf;
	struct program_child *ch = xcalloc(1, sizeof(*ch));
	char resolved[PATH_MAX], why[PATH_MAX + 256];

	ch->run = run;
	ch->pidfd = ch->out_fd = -1;
	hd_run_phase(run, HD_PHASE_REQUEST, "run");
	/* Checked again before every run: the rule must hold for what runs, not only for what was loaded. */
	if (verify_program(pc->command[0], pc->allowed_dirs, resolved, why, sizeof(why)) < 0)
		goto fail;
	if (strcmp(resolved, pc->exec_path) != 0) {
		snprintf(why, sizeof(why), "%s now resolves to %s, not %s as when loaded (reload to accept it)",
			 pc->command[0], resolved, pc->exec_path);
		goto fail;
	}
	if (spawn(run, pc, ch, why, sizeof(why)) < 0)
		goto fail;
	run->state = ch;
	return;
fail:
	child_free(ch);
	hd_check_done(run, HD_KIND_ERROR, "%s", why);
}

/* The deadline (or shutdown): the whole group is killed now and reaped by the loop as soon as it has died. */
static void program_cancel(struct hd_check_run *run)
{
	struct program_child *ch = run->state;

	if (ch == NULL)
		return;
	run->state = NULL;
	if (run->persist)
		run->persist->n_perf = 0; /* no output, no measurements */
	kill_group(ch);
	ch->run = NULL;
	if (ch->out_ev)
		event_del(ch->out_ev);
	if (ch->out_fd >= 0) {
		close(ch->out_fd);
		ch->out_fd = -1;
	}
	if (waitpid(ch->pid, NULL, WNOHANG) == ch->pid) {
		child_free(ch);
		return;
	}
	TAILQ_INSERT_TAIL(&orphans, ch, orphans);
}

static void program_free_persist(struct hd_persist *persist)
{
	free(persist);
}

static size_t program_perfdata(const struct hd_persist *persist, const struct hd_perfdata **items)
{
	*items = persist->perf;
	return persist->n_perf;
}

const struct hd_check_type hd_check_program = {
	.name = "program",
	.summary = "runs a Nagios/Monitoring plugin or script (argv, no shell) within the deadline: exit 0 OK is up, "
		   "1 WARNING is up with status warn, 2 CRITICAL and 3 UNKNOWN are down; perfdata goes to /metrics",
	.keys = program_keys,
	.conf_size = sizeof(struct program_conf),
	.validate = program_validate,
	.start = program_start,
	.cancel = program_cancel,
	.free_conf = program_free_conf,
	.free_persist = program_free_persist,
	.perfdata = program_perfdata,
};
