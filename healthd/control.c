/* control.c: the admin socket (one line in, one JSON object out) and the admin state it sets, kept on disk. */
#include "control.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "check_push.h"
#include "config.h"
#include "connlimit.h"
#include "engine.h"
#include "notify.h"
#include "reload.h"
#include "statefile.h"
#include "status.h"

#define CONTROL_MAX_CONNECTIONS 16
#define CONTROL_IO_TIMEOUT_MS 5000
#define CONTROL_SAVE_WAIT_MS 5000

struct ctl_conn {
	struct hd_control *ctl;
	struct bufferevent *bev;
	struct event *save_timer;
	uint64_t wait_generation; /* nonzero while the reply waits for the state file */
	uint64_t push_generation; /* nonzero while a push reply waits for its report file */
	cJSON *held_reply;
	struct hd_reload_wait *reload_wait; /* while a reload this connection asked for is reading */
	bool got_request;
	bool replied;
	char who[48];             /* "uid 0 pid 1234", for the log */
	struct hd_conn_slot slot;
	LIST_ENTRY(ctl_conn) link; /* c->conns */
};

struct hd_control {
	struct event_base *base;
	struct evconnlistener *listener;
	char *path;
	dev_t dev;
	ino_t ino;
	struct hd_control_deps deps;
	struct hd_statefile *statefile;
	struct hd_connlimit *limit;
	LIST_HEAD(ctl_conn_list, ctl_conn) conns;
};

static const char *const cmd_names[] = {
	[HD_CTL_DRAIN] = "drain", [HD_CTL_MAINT] = "maint", [HD_CTL_READY] = "ready",
	[HD_CTL_STATUS] = "status", [HD_CTL_RELOAD] = "reload", [HD_CTL_PUSH] = "push",
};

const char *hd_control_cmd_name(enum hd_control_cmd cmd)
{
	return (unsigned)cmd < HD_ARRAY_LEN(cmd_names) ? cmd_names[cmd] : "?";
}

/* ---- the request line ---- */

/* Keeps the reason printable and one line; cuts on a UTF-8 character boundary. */
static void clean_reason(const char *in, char *out, size_t len)
{
	size_t n = 0;

	while (*in == ' ' || *in == '\t')
		in++;
	for (; *in && n + 1 < len; in++)
		out[n++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? ' ' : *in;
	if (((unsigned char)*in & 0xC0) == 0x80) { /* cut inside a character: drop its first bytes too */
		while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80)
			n--;
		if (n > 0)
			n--;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

int control_parse_request(const char *line, enum hd_control_cmd *cmd, char *reason, size_t reason_len,
			  const char **error)
{
	size_t word = strcspn(line, " \t");
	const char *rest = line + word;

	reason[0] = '\0';
	for (size_t i = 0; i < HD_ARRAY_LEN(cmd_names); i++)
		if (word == strlen(cmd_names[i]) && strncasecmp(line, cmd_names[i], word) == 0) {
			*cmd = (enum hd_control_cmd)i;
			clean_reason(rest, reason, reason_len);
			if ((*cmd == HD_CTL_STATUS || *cmd == HD_CTL_RELOAD) && reason[0] != '\0') {
				*error = "status and reload take no reason";
				return -1;
			}
			return 0;
		}
	*error = word == 0 ? "empty request (expected drain, maint, ready, status, reload or push)"
			   : "unknown command (expected drain, maint, ready, status, reload or push)";
	return -1;
}

/* ---- replies ---- */

static void conn_free(struct ctl_conn *cc)
{
	LIST_REMOVE(cc, link);
	if (cc->save_timer)
		event_free(cc->save_timer);
	reloader_cancel(cc->reload_wait);
	cJSON_Delete(cc->held_reply);
	bufferevent_free(cc->bev);
	connlimit_remove(&cc->slot);
	free(cc);
}

/* Admin connections are never evicted (they are all BUSY): at the cap the listener pauses instead. */
static void never_evicted(struct hd_conn_slot *slot)
{
	(void)slot;
	hd_fatal("control: an admin connection was chosen for eviction");
}

static void send_reply(struct ctl_conn *cc, cJSON *reply)
{
	static const char no_memory[] = "{\"ok\":false,\"error\":\"out of memory\"}";
	char *text = cJSON_PrintUnformatted(reply);

	if (bufferevent_write(cc->bev, text ? text : no_memory, text ? strlen(text) : sizeof(no_memory) - 1) < 0 ||
	    bufferevent_write(cc->bev, "\n", 1) < 0)
		log_warn("control: out of memory for a reply to %s", cc->who);
	cJSON_free(text);
	cJSON_Delete(reply);
	cc->replied = true;
	bufferevent_disable(cc->bev, EV_READ);
	bufferevent_enable(cc->bev, EV_WRITE);
}

static cJSON *new_reply(bool ok, const char *command)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddBoolToObject(r, "ok", ok);
	if (command)
		cJSON_AddStringToObject(r, "command", command);
	return r;
}

static void send_error(struct ctl_conn *cc, const char *command, const char *error)
{
	cJSON *r = new_reply(false, command);

	cJSON_AddStringToObject(r, "error", error);
	send_reply(cc, r);
}

static cJSON *status_reply(struct hd_control *c)
{
	const struct hd_config *cfg = engine_config(c->deps.engine);
	cJSON *r = new_reply(true, "status"), *checks, *agent;
	const struct hd_check *first;

	cJSON_AddStringToObject(r, "version", HD_VERSION);
	cJSON_AddNumberToObject(r, "pid", (double)getpid());
	cJSON_AddStringToObject(r, "node", cfg->node_name);
	cJSON_AddStringToObject(r, "config", cfg->path ? cfg->path : "");
	cJSON_AddStringToObject(r, "state_dir", statefile_dir(c->statefile));
	cJSON_AddStringToObject(r, "status", hd_overall_name(status_overall(c->deps.status, &first)));
	cJSON_AddItemToObject(r, "admin", status_admin_json(c->deps.status));
	agent = cJSON_AddObjectToObject(r, "agent");
	cJSON_AddNumberToObject(agent, "replies", c->deps.agent ? (double)agent_replies(c->deps.agent) : 0);
	checks = cJSON_AddObjectToObject(r, "checks");
	for (size_t i = 0; i < engine_n_checks(c->deps.engine); i++) {
		const struct hd_check *chk = engine_check(c->deps.engine, i);
		cJSON *o = hd_check_to_json(chk);
		/* Counters people compare across a reload: they go on for unchanged checks. */
		cJSON_AddNumberToObject(o, "attempts", (double)chk->attempts);
		cJSON_AddNumberToObject(o, "transitions", (double)chk->transitions);
		cJSON_AddItemToObject(checks, chk->conf->name, o);
	}
	return r;
}

static void on_reload_done(bool ok, const char *text, void *arg)
{
	struct ctl_conn *cc = arg;
	cJSON *r;

	cc->reload_wait = NULL;
	if (!ok) {
		send_error(cc, "reload", text ? text : "reload failed");
		return;
	}
	r = new_reply(true, "reload");
	cJSON_AddStringToObject(r, "summary", text ? text : "");
	send_reply(cc, r);
}

/* The file is read on a worker thread: the reply goes out when that read ends, or times out. */
static void do_reload(struct ctl_conn *cc)
{
	log_info("reload requested by %s with healthd ctl", cc->who);
	bufferevent_disable(cc->bev, EV_READ);
	cc->reload_wait = reloader_request(cc->ctl->deps.reloader, cc->who, on_reload_done, cc);
}

static void on_save_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *cc = arg;
	cJSON *r = cc->held_reply;

	(void)fd;
	(void)what;
	cc->held_reply = NULL;
	cc->wait_generation = 0;
	cJSON_AddBoolToObject(r, "persisted", false);
	cJSON_AddStringToObject(r, "persist_error", "the state file write did not finish within 5 s (a hung disk?); "
						   "it goes on in the background");
	send_reply(cc, r);
}

static void do_admin(struct ctl_conn *cc, enum hd_control_cmd cmd, const char *reason_in)
{
	struct hd_control *c = cc->ctl;
	enum hd_admin_mode mode = cmd == HD_CTL_DRAIN ? HD_ADMIN_DRAIN : cmd == HD_CTL_MAINT ? HD_ADMIN_MAINT : HD_ADMIN_READY;
	char reason[sizeof(((struct hd_admin *)0)->reason)];
	struct timeval tv = hd_ms_tv(CONTROL_SAVE_WAIT_MS);
	bool changed;
	cJSON *r;

	if (reason_in[0] == '\0' && mode != HD_ADMIN_READY)
		snprintf(reason, sizeof(reason), "set with healthd ctl by %s", cc->who);
	else
		hd_strlcpy(reason, reason_in, sizeof(reason));
	changed = status_set_admin(c->deps.status, mode, reason, hd_now_wall_ms());
	/* "ready" (re)announces to every polling load balancer, also when healthd was already ready: the way to
	 * clear a drain or maint that a load balancer kept. */
	if (mode == HD_ADMIN_READY && !changed) /* when it changed, leaving drain/maint has started it */
		status_begin_ready_announcement(c->deps.status);
	log_info("admin: %s%s%s%s (by %s with healthd ctl)", hd_admin_name(mode), reason[0] ? " (" : "", reason,
		 reason[0] ? ")" : "", cc->who);
	if (mode == HD_ADMIN_READY)
		notify_status("admin ready; %zu checks", engine_n_checks(c->deps.engine));
	else
		notify_status("admin %s: %s", hd_admin_name(mode), reason);
	r = new_reply(true, hd_control_cmd_name(cmd));
	cJSON_AddBoolToObject(r, "changed", changed);
	cJSON_AddItemToObject(r, "admin", status_admin_json(c->deps.status));
	if (mode == HD_ADMIN_READY)
		cJSON_AddNumberToObject(r, "ready_window_ms", engine_config(c->deps.engine)->agent.ready_window_ms);
	/* The reply waits until the state is on disk, so that "ok" means it survives a restart. */
	cc->held_reply = r;
	cc->wait_generation = statefile_save(c->statefile, status_admin(c->deps.status), status_stopping(c->deps.status));
	cc->save_timer = evtimer_new(c->base, on_save_timeout, cc);
	if (cc->save_timer == NULL)
		hd_fatal("control: out of memory");
	evtimer_add(cc->save_timer, &tv);
	bufferevent_disable(cc->bev, EV_READ);
}

static void on_saved(uint64_t generation, int rc, const char *error, void *arg)
{
	struct hd_control *c = arg;
	struct ctl_conn *cc;

	LIST_FOREACH(cc, &c->conns, link) {
		cJSON *r = cc->held_reply;
		if (cc->wait_generation == 0 || cc->wait_generation > generation)
			continue;
		cc->held_reply = NULL;
		cc->wait_generation = 0;
		evtimer_del(cc->save_timer);
		cJSON_AddBoolToObject(r, "persisted", rc == 0);
		if (rc < 0)
			cJSON_AddStringToObject(r, "persist_error", error ? error : "unknown error");
		send_reply(cc, r);
	}
}

void control_save_admin(struct hd_control *c)
{
	statefile_save(c->statefile, status_admin(c->deps.status), status_stopping(c->deps.status));
}

/* ---- push: a report for a push check, answered once it is on disk ---- */

static void on_push_saved(uint64_t generation, int rc, const char *error, void *arg)
{
	struct hd_control *c = arg;
	struct ctl_conn *cc;

	LIST_FOREACH(cc, &c->conns, link) {
		cJSON *r = cc->held_reply;
		if (cc->push_generation != generation || r == NULL)
			continue;
		cc->held_reply = NULL;
		cc->push_generation = 0;
		evtimer_del(cc->save_timer);
		cJSON_AddBoolToObject(r, "persisted", rc == 0);
		if (rc < 0)
			cJSON_AddStringToObject(r, "persist_error", error ? error : "unknown error");
		send_reply(cc, r);
	}
}

static void do_push(struct ctl_conn *cc, const char *args)
{
	struct hd_control *c = cc->ctl;
	struct timeval tv = hd_ms_tv(CONTROL_SAVE_WAIT_MS);
	char name[64], detail[HD_PUSH_DETAIL_MAX + 1], *error = NULL;
	const struct hd_check *chk;
	const char *why;
	bool ok;
	cJSON *r;

	if (hd_push_parse_request(args, name, sizeof(name), &ok, detail, sizeof(detail), &why) < 0) {
		send_error(cc, "push", why);
		return;
	}
	chk = engine_find(c->deps.engine, name);
	cc->push_generation = hd_push_report(c->base, engine_config(c->deps.engine)->state_dir, chk ? chk->conf : NULL,
					     name, ok, detail, on_push_saved, c, &error);
	if (cc->push_generation == 0) {
		log_warn("control: push from %s refused: %s", cc->who, error);
		send_error(cc, "push", error);
		free(error);
		return;
	}
	log_info("push: check %s reported %s%s%s (by %s)", name, ok ? "ok" : "fail", detail[0] ? ": " : "", detail,
		 cc->who);
	r = new_reply(true, "push");
	cJSON_AddStringToObject(r, "check", name);
	cJSON_AddStringToObject(r, "result", ok ? "ok" : "fail");
	cJSON_AddStringToObject(r, "detail", detail);
	cJSON_AddNumberToObject(r, "interval_ms", chk->conf->interval_ms);
	cc->held_reply = r; /* answered once on disk, like drain and maint */
	cc->save_timer = evtimer_new(c->base, on_save_timeout, cc);
	evtimer_add(cc->save_timer, &tv);
	bufferevent_disable(cc->bev, EV_READ);
}

/* ---- connections ---- */

static void handle_line(struct ctl_conn *cc, const char *line)
{
	char reason[sizeof(((struct hd_admin *)0)->reason)];
	enum hd_control_cmd cmd;
	const char *error;

	cc->got_request = true;
	if (control_parse_request(line, &cmd, reason, sizeof(reason), &error) < 0) {
		log_warn("control: refused a request from %s: %s", cc->who, error);
		send_error(cc, NULL, error);
		return;
	}
	switch (cmd) {
	case HD_CTL_STATUS:
		send_reply(cc, status_reply(cc->ctl));
		break;
	case HD_CTL_RELOAD:
		do_reload(cc);
		break;
	case HD_CTL_DRAIN:
	case HD_CTL_MAINT:
	case HD_CTL_READY:
		do_admin(cc, cmd, reason);
		break;
	case HD_CTL_PUSH:
		do_push(cc, reason);
		break;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (cc->got_request) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > HD_CONTROL_MAX_LINE) {
			cc->got_request = true;
			send_error(cc, NULL, "request longer than 1024 bytes");
		}
		return;
	}
	if (n > HD_CONTROL_MAX_LINE || strlen(line) != n) {
		cc->got_request = true;
		send_error(cc, NULL, n > HD_CONTROL_MAX_LINE ? "request longer than 1024 bytes" : "request contains a NUL byte");
	} else {
		handle_line(cc, line);
	}
	free(line);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;

	if (cc->replied && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(cc);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if ((what & BEV_EVENT_EOF) && cc->got_request && !cc->replied)
		return; /* the client half-closed after its request: the reply still goes out */
	conn_free(cc); /* error, timeout, or a client that left */
}

static void describe_peer(int fd, char *who, size_t len)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		snprintf(who, len, "uid %u pid %d", (unsigned)cred.uid, (int)cred.pid);
	else
		hd_strlcpy(who, "an unknown peer", len);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct hd_control *c = arg;
	static const struct hd_conn_policy policy = {.max_total = CONTROL_MAX_CONNECTIONS,
						     .max_total_key = "the admin socket's limit"};
	struct ctl_conn *cc = calloc(1, sizeof(*cc));
	struct timeval tv = hd_ms_tv(CONTROL_IO_TIMEOUT_MS);

	(void)l;
	(void)sa;
	(void)salen;
	if (cc == NULL) {
		evutil_closesocket(fd);
		return;
	}
	cc->ctl = c;
	describe_peer(fd, cc->who, sizeof(cc->who));
	cc->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL) {
		log_warn("control: out of memory for a new connection; closing it");
		evutil_closesocket(fd);
		free(cc);
		return;
	}
	if (!connlimit_admit(c->limit, &policy, NULL, &cc->slot, never_evicted)) {
		bufferevent_free(cc->bev);
		free(cc);
		return;
	}
	connlimit_set_level(&cc->slot, HD_SLOT_BUSY);
	LIST_INSERT_HEAD(&c->conns, cc, link);
	bufferevent_setcb(cc->bev, on_read, on_write, on_event, cc);
	bufferevent_set_timeouts(cc->bev, &tv, &tv);
	bufferevent_setwatermark(cc->bev, EV_READ, 0, HD_CONTROL_MAX_LINE + 2);
	if (bufferevent_enable(cc->bev, EV_READ) < 0)
		conn_free(cc);
}

/* ---- the socket file ---- */

/* A socket file nobody listens on is what a crash leaves: remove it. One somebody listens on is another healthd. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int probe, rc;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("admin socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("admin socket %s: the path exists and is not a socket; not touching it (remove it, or set "
			"listen.admin_socket)", path);
		return -1;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -1;
	rc = connect(probe, (const struct sockaddr *)sun, sizeof(*sun));
	if (rc == 0 || errno == EAGAIN) {
		close(probe);
		log_err("admin socket %s: another process (another healthd?) is listening there; stop it first, or give "
			"each instance its own listen.admin_socket", path);
		return -1;
	}
	close(probe);
	if (errno != ECONNREFUSED) {
		log_err("admin socket %s: cannot tell whether it is in use: %s", path, strerror(errno));
		return -1;
	}
	if (unlink(path) < 0) {
		log_err("admin socket %s: cannot remove the stale socket: %s", path, strerror(errno));
		return -1;
	}
	log_info("admin socket %s: removed the stale socket of a previous run", path);
	return 0;
}

static int bind_socket(struct hd_control *c, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("admin socket %s: the path is longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (clear_stale_socket(path, &sun) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("admin socket: socket(): %s", strerror(errno));
		return -1;
	}
	/*
	 * Born 0600, with no window in which others could connect, and without umask(): that is process-wide, and the
	 * spool's thread creates directories meanwhile. Linux gives the socket file the mode of the socket's inode
	 * (minus the umask), which fchmod() sets before bind(); the chmod() after it is for other kernels.
	 */
	rc = fchmod(fd, 0600);
	if (rc == 0)
		rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc < 0 || chmod(path, 0600) < 0 || stat(path, &st) < 0) {
		log_err("admin socket %s: cannot create it: %s%s", path, strerror(errno),
			errno == ENOENT ? " (the directory does not exist: create it, or set listen.admin_socket)" : "");
		close(fd);
		return -1;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->listener = evconnlistener_new(c->base, on_accept, c, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (c->listener == NULL) {
		log_err("admin socket %s: cannot listen: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	c->limit = connlimit_new(c->base, "admin");
	connlimit_attach(c->limit, c->listener, on_accept, c);
	return 0;
}

/* ---- the admin state across restarts ---- */

static void restore_admin(struct hd_control *c, const char *state_dir, bool *save_now)
{
	struct hd_saved_admin saved;
	char *error = NULL;
	int rc = statefile_load(state_dir, &saved, &error);
	char since[40];

	*save_now = false;
	if (rc < 0) {
		char reason[sizeof(saved.admin.reason)];
		/* Fail safe: a deploy may be in progress; an operator clears it with `healthd ctl ready`. */
		snprintf(reason, sizeof(reason), "the admin state could not be restored: %s", error);
		log_err("admin state: %s; answering drain until `healthd ctl ready` (or drain/maint) replaces it", error);
		status_set_admin(c->deps.status, HD_ADMIN_DRAIN, reason, hd_now_wall_ms());
		free(error);
		return;
	}
	if (rc == 0) {
		if (access(state_dir, W_OK) < 0)
			log_warn("state_dir %s: %s: drain and maint set with healthd ctl will not survive a restart", state_dir,
				 strerror(errno));
		return;
	}
	if (saved.admin.mode != HD_ADMIN_READY) {
		status_set_admin(c->deps.status, saved.admin.mode, saved.admin.reason, saved.admin.since_wall_ms);
		hd_iso8601(saved.admin.since_wall_ms, since, sizeof(since));
		log_info("admin state restored: %s since %s (%s)", hd_admin_name(saved.admin.mode), since[0] ? since : "?",
			 saved.admin.reason);
		return;
	}
	if (saved.stopped_draining) {
		/* The previous run's graceful stop told the load balancers "drain": take it back, once per peer. */
		status_begin_ready_announcement(c->deps.status);
		log_info("admin state: ready; the previous run stopped gracefully (drain), so each load balancer gets "
			 "\"ready\" on its next poll");
		*save_now = true;
	}
}

struct hd_control *control_start(struct event_base *base, const struct hd_config *cfg,
				 const struct hd_control_deps *deps)
{
	struct hd_control *c = xcalloc(1, sizeof(*c));
	bool save_now;

	c->base = base;
	c->deps = *deps;
	c->path = xstrdup(cfg->listen.admin_socket);
	restore_admin(c, cfg->state_dir, &save_now);
	c->statefile = statefile_new(base, cfg->state_dir, on_saved, c);
	if (save_now)
		control_save_admin(c);
	if (bind_socket(c, c->path) < 0) {
		statefile_free(c->statefile);
		free(c->path);
		free(c);
		return NULL;
	}
	log_info("admin socket listening on %s (mode 0600)", c->path);
	return c;
}

void control_free(struct hd_control *c)
{
	struct stat st;

	if (c == NULL)
		return;
	while (!LIST_EMPTY(&c->conns))
		conn_free(LIST_FIRST(&c->conns));
	evconnlistener_free(c->listener);
	connlimit_free(c->limit);
	/* Remove the file only if it is still ours (not one a newer instance bound meanwhile). */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	statefile_free(c->statefile);
	free(c->path);
	free(c);
}
