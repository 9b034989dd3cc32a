/* main.c: command line, start-up and shutdown of the daemon, signals, and dispatch to the one-shot commands. */
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "alerts.h"
#include "config.h"
#include "control.h"
#include "ctl.h"
#include "curl_loop.h"
#include "engine.h"
#include "http_api.h"
#include "metrics.h"
#include "notify.h"
#include "oneshot.h"
#include "reload.h"
#include "statefile.h"
#include "history.h"
#include "page.h"
#include "status.h"
#include "util.h"

struct daemon {
	struct event_base *base;
	struct evdns_base *dns;
	struct hd_engine *engine;
	struct hd_status *status;
	struct hd_http *http;
	struct hd_agent *agent;
	struct hd_alerts *alerts;
	struct hd_metrics *metrics;
	struct hd_history *history;
	struct hd_page *page;
	char *config_path;
	struct event *sig_term, *sig_int, *sig_hup;
	/* operations: admin socket and state, graceful stop, systemd */
	struct hd_control *control;
	struct hd_notify *notify;
	struct event *grace_timer;
	struct hd_reloader *reloader;
};

/* ---- subcommands: `healthd NAME ...` runs NAME's main with argv[0] = NAME ---- */

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{"ctl", ctl_main, "talk to the running daemon: drain, maint, ready, status, reload"},
	{"check", oneshot_check_main, "run every check once and print the outcome; exits as a Nagios plugin (0-3)"},
	{"diff", oneshot_diff_main, "compare two `check --json` runs: regressions (exit 1) and recoveries"},
};

static void print_subcommands(FILE *out)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(subcommands); i++)
		fprintf(out, "  %-20s  %s\n", subcommands[i].name, subcommands[i].summary);
}

static const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < HD_ARRAY_LEN(subcommands); i++)
		if (strcmp(subcommands[i].name, name) == 0)
			return &subcommands[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: healthd --config FILE [--check-config [--no-secrets]] [--syslog] [--debug]\n"
		"       healthd ctl [--socket PATH | --config FILE] drain|maint|ready|status|reload [--reason TEXT]\n"
		"       healthd check --config FILE [--json | --format table|json|nagios]\n"
		"       healthd diff BEFORE.json AFTER.json\n"
		"       healthd --config-reference\n"
		"       healthd --help | --version\n"
		"\n"
		"Checks, on a schedule, whether this backend can reach what it depends on, and serves the answer\n"
		"to HAProxy (agent-check port, httpchk on /ready) and to people (/health).\n"
		"\n"
		"  -c, --config FILE     the JSON configuration (runs in the foreground, logs to stderr)\n"
		"  -t, --check-config    validate the configuration and exit (0 valid, 2 invalid)\n"
		"      --no-secrets      with --check-config: open none of the files it names (password files, header\n"
		"                        files, CA files), so that it can be checked before they are deployed\n"
		"      --syslog          log to syslog instead of stderr\n"
		"      --debug           log debug messages\n"
		"      --config-reference  print every configuration key, its default and meaning (Markdown)\n"
		"  -h, --help            this text\n"
		"  -V, --version         the version\n"
		"\n"
		"Subcommands (healthd COMMAND --help for more):\n");
	print_subcommands(out);
	fprintf(out,
		"\n"
		"Signals: SIGHUP re-reads the configuration (a bad file changes nothing). SIGTERM answers drain for\n"
		"shutdown_grace_ms, then exits; SIGINT, or a second SIGTERM, exits at once.\n");
}

/* ---- reload (SIGHUP and `healthd ctl reload`) ---- */

/* "2 unchanged; changed: db; added: cache; removed: -" : what a reload is about to do, for the log and ctl. */
static char *describe_reload(const struct hd_config *old, const struct hd_config *cfg)
{
	char *changed = xstrdup(""), *added = xstrdup(""), *removed = xstrdup(""), *out, *next;
	size_t unchanged = 0;

#define APPEND(list, name) (next = xasprintf("%s%s%s", list, list[0] ? ", " : "", name), free(list), list = next)
	for (size_t i = 0; i < cfg->n_checks; i++) {
		const struct hd_check_conf *was = config_find_check(old, cfg->checks[i]->name);
		if (was == NULL)
			APPEND(added, cfg->checks[i]->name);
		else if (strcmp(was->fingerprint, cfg->checks[i]->fingerprint) != 0)
			APPEND(changed, cfg->checks[i]->name);
		else
			unchanged++;
	}
	for (size_t i = 0; i < old->n_checks; i++)
		if (config_find_check(cfg, old->checks[i]->name) == NULL)
			APPEND(removed, old->checks[i]->name);
#undef APPEND
	out = xasprintf("%zu checks: %zu unchanged; changed: %s; added: %s; removed: %s", cfg->n_checks, unchanged,
			changed[0] ? changed : "-", added[0] ? added : "-", removed[0] ? removed : "-");
	free(changed);
	free(added);
	free(removed);
	return out;
}

/* Settings bound at start-up; a reload that changes them says so instead of pretending. */
static void warn_restart_only(const struct hd_config *old, const struct hd_config *cfg)
{
	if (strcmp(cfg->listen.http, old->listen.http) != 0 || strcmp(cfg->listen.agent, old->listen.agent) != 0)
		log_warn("reload: listen addresses change only on restart; still on %s and %s", old->listen.http,
			 old->listen.agent);
	if (strcmp(cfg->listen.admin_socket, old->listen.admin_socket) != 0)
		log_warn("reload: listen.admin_socket changes only on restart; still %s", old->listen.admin_socket);
	if (strcmp(cfg->state_dir, old->state_dir) != 0)
		log_warn("reload: state_dir changes only on restart; still %s", old->state_dir);
	if (cfg->log.level != old->log.level || cfg->log.syslog != old->log.syslog)
		log_warn("reload: log.level and log.syslog change only on restart");
}

/* Runs on the loop once the reload's worker has read and validated the file (a bad file never gets here). */
static char *apply_reload(struct hd_config *cfg, void *arg)
{
	struct daemon *d = arg;
	const struct hd_config *old = engine_config(d->engine);
	char *summary;

	warn_restart_only(old, cfg);
	summary = describe_reload(old, cfg);
	engine_apply_config(d->engine, cfg);
	alerts_reload(d->alerts);
	log_info("reload: %s applied: %s", d->config_path, summary);
	notify_ready("reloaded: %zu checks", engine_n_checks(d->engine));
	return summary;
}

/* maint holds alerts: the one thing alerts need to know of the admin state */
static void on_admin_mode(enum hd_admin_mode mode, void *arg)
{
	struct daemon *d = arg;

	alerts_admin_changed(d->alerts, mode == HD_ADMIN_MAINT);
	history_admin_changed(d->history);
}

static void on_reload_outcome(bool ok, void *arg)
{
	status_note_reload(arg, ok, hd_now_wall_ms());
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)sig;
	(void)what;
	log_info("SIGHUP received: reloading");
	reloader_request(d->reloader, "SIGHUP", NULL, NULL);
}

/* ---- graceful stop ---- */

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	log_info("grace period over: exiting");
	event_base_loopexit(d->base, NULL);
}

/*
 * SIGTERM: keep serving, but answer drain (maint stays maint) for shutdown_grace_ms so that HAProxy stops sending
 * new traffic before this backend goes away; then exit. SIGINT, a second SIGTERM, or a zero grace: exit now.
 */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	int grace_ms = engine_config(d->engine)->shutdown_grace_ms;
	const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
	char reason[128];
	struct timeval tv = hd_ms_tv(grace_ms);

	(void)what;
	if (sig == SIGINT || grace_ms == 0 || status_stopping(d->status)) {
		log_info("%s received: stopping now", name);
		notify_stopping("stopping");
		event_base_loopexit(d->base, NULL);
		return;
	}
	snprintf(reason, sizeof(reason), "healthd is stopping (%s): drain for %d ms, then exit", name, grace_ms);
	status_set_stopping(d->status, reason, hd_now_wall_ms());
	control_save_admin(d->control); /* if this run dies now, the next one still takes the drain back */
	notify_stopping("stopping: answering drain for %d ms", grace_ms);
	log_info("%s received: answering drain for %d ms so that the load balancers move traffic away, then exiting "
		 "(SIGTERM or SIGINT again: exit now)", name, grace_ms);
	evtimer_add(d->grace_timer, &tv);
}

/* ---- operations: admin socket and state, systemd (kept apart from the rest of run_daemon) ---- */

static int start_operations(struct daemon *d)
{
	struct hd_control_deps deps = {
		.status = d->status,
		.engine = d->engine,
		.agent = d->agent,
		.reloader = d->reloader,
	};

	d->control = control_start(d->base, engine_config(d->engine), &deps);
	if (d->control == NULL)
		return -1;
	d->grace_timer = evtimer_new(d->base, on_grace_over, d);
	d->notify = notify_start(d->base);
	return 0;
}

static void announce_started(struct daemon *d)
{
	const struct hd_admin *admin = status_admin(d->status);

	if (admin->mode == HD_ADMIN_READY)
		notify_ready("%zu checks; admin ready", engine_n_checks(d->engine));
	else
		notify_ready("%zu checks; admin %s: %s", engine_n_checks(d->engine), hd_admin_name(admin->mode),
			     admin->reason);
}

static void stop_operations(struct daemon *d)
{
	control_free(d->control); /* removes the socket, finishes the state file write */
	d->control = NULL;
	if (d->grace_timer)
		event_free(d->grace_timer);
	d->grace_timer = NULL;
	notify_free(d->notify);
	d->notify = NULL;
}

/* libevent and evdns speak through healthd's logger, so that --syslog catches them too. */
static void log_from_libevent(int severity, const char *msg)
{
	enum hd_log_level lvl = severity >= EVENT_LOG_ERR ? HD_LOG_ERR : severity == EVENT_LOG_WARN ? HD_LOG_WARN :
				severity == EVENT_LOG_MSG ? HD_LOG_INFO : HD_LOG_DEBUG;

	hd_log(lvl, "libevent: %s", msg);
}

static void log_from_evdns(int is_warning, const char *msg)
{
	hd_log(is_warning ? HD_LOG_WARN : HD_LOG_DEBUG, "dns: %s", msg);
}

/* Before any thread writes under it (the spool may live there). A failure is logged, and healthd runs on: it still
 * checks and answers; only the admin state then does not survive a restart. */
static void prepare_state_dir(const char *dir)
{
	char *error = NULL;
	int rc = statefile_prepare_dir(dir, &error);

	if (rc < 0) {
		log_err("%s: drain and maint set with healthd ctl will not survive a restart (create it, or set state_dir)",
			error);
		free(error);
	} else if (rc > 0) {
		log_info("state_dir %s created (mode 0750)", dir);
	}
}

static int run_daemon(const char *config_path, bool use_syslog, bool debug)
{
	struct daemon d = {.config_path = xstrdup(config_path)};
	char *error = NULL;
	struct hd_config *cfg = config_load(config_path, &error);
	int rc = 1;

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		free(d.config_path);
		return 2;
	}
	hd_log_init(use_syslog || cfg->log.syslog, debug ? HD_LOG_DEBUG : (enum hd_log_level)cfg->log.level);
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(log_from_libevent);
	evdns_set_log_fn(log_from_evdns);
	if (evthread_use_pthreads() < 0)
		hd_fatal("libevent: cannot enable threads");
	d.base = event_base_new();
	d.dns = evdns_base_new(d.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (d.dns == NULL) /* no resolv.conf: names fail with kind dns, IP literals still work */
		d.dns = evdns_base_new(d.base, 0);
	evdns_base_set_option(d.dns, "timeout:", "1");
	evdns_base_set_option(d.dns, "attempts:", "2");
	d.engine = engine_new(d.base, d.dns);
	d.status = status_new(d.engine);
	prepare_state_dir(cfg->state_dir);
	engine_apply_config(d.engine, cfg);
	status_note_reload(d.status, true, hd_now_wall_ms());
	cfg = NULL;
	d.reloader = reloader_new(d.base, config_path, apply_reload, &d);
	reloader_on_outcome(d.reloader, on_reload_outcome, d.status);
	d.alerts = alerts_start(d.base, d.engine);
	status_on_admin_change(d.status, on_admin_mode, &d); /* before start_operations restores it */
	d.http = http_api_start(d.base, engine_config(d.engine), d.engine, d.status);
	d.agent = agent_start(d.base, engine_config(d.engine), d.status);
	if (d.http != NULL) {
		d.history = history_new(d.base, d.engine, d.status, d.http);
		d.page = page_new(d.engine, d.status, d.history, d.http);
	}
	if (d.http == NULL || d.agent == NULL || start_operations(&d) < 0)
		goto out;
	d.metrics = metrics_new(d.engine, d.http, d.agent, d.alerts);
	metrics_set_status(d.metrics, d.status);
	d.sig_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_hup, NULL);
	log_info("healthd %s started: %zu checks from %s", HD_VERSION, engine_n_checks(d.engine), config_path);
	announce_started(&d);
	event_base_dispatch(d.base);
	rc = 0;
	log_info("healthd stopped");
out:
	if (d.sig_hup) /* no reload once stopping: the loop still turns while lookups settle */
		event_del(d.sig_hup);
	stop_operations(&d);
	reloader_free(d.reloader); /* after the admin socket: no connection waits for it any more */
	engine_stop(d.engine);
	alerts_free(d.alerts);
	history_free(d.history);
	page_free(d.page);
	http_api_free(d.http);
	metrics_free(d.metrics);
	agent_free(d.agent);
	if (d.sig_term) {
		event_free(d.sig_term);
		event_free(d.sig_int);
		event_free(d.sig_hup);
	}
	status_free(d.status);
	engine_free(d.engine);
	hd_curl_shutdown();
	evdns_base_free(d.dns, 0);
	event_base_free(d.base);
	free(d.config_path);
	return rc;
}

/* --check-config [--no-secrets]: 0 valid, 2 invalid; says which named files were left unopened. */
static int check_config(const char *config_path, bool no_secrets)
{
	struct hd_config_opts opts = {.no_files = no_secrets};
	char *error = NULL;
	struct hd_config *cfg = config_load_opts(config_path, &opts, &error);

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return 2;
	}
	printf("%s: valid, %zu checks\n", config_path, cfg->n_checks);
	if (no_secrets) {
		printf("%zu file%s it names not opened (--no-secrets)%s", cfg->n_unopened, cfg->n_unopened == 1 ? "" : "s",
		       cfg->n_unopened ? ":" : "\n");
		for (size_t i = 0; i < cfg->n_unopened; i++)
			printf(" %s%s", cfg->unopened[i], i + 1 == cfg->n_unopened ? "\n" : "");
	}
	config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"no-secrets", no_argument, NULL, 'n'},
		{"syslog", no_argument, NULL, 's'},
		{"debug", no_argument, NULL, 'd'},
		{"config-reference", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	bool check_only = false, no_secrets = false, use_syslog = false, debug = false;
	const struct subcommand *sub = argc > 1 ? find_subcommand(argv[1]) : NULL;
	int opt;

	if (sub != NULL)
		return sub->run(argc - 1, argv + 1);

	while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'n':
			no_secrets = true;
			break;
		case 's':
			use_syslog = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'r':
			config_print_reference();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("healthd %s\n", HD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (no_secrets && !check_only) {
		fprintf(stderr, "healthd: --no-secrets goes with --check-config only (the daemon needs its secrets)\n");
		return 2;
	}
	if (check_only)
		return check_config(config_path, no_secrets);
	return run_daemon(config_path, use_syslog, debug);
}
