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
#include "curl_loop.h"
#include "engine.h"
#include "http_api.h"
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
	char *config_path;
	struct event *sig_term, *sig_int, *sig_hup;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: healthd --config FILE [--check-config] [--syslog] [--debug]\n"
		"       healthd --config-reference\n"
		"       healthd --help | --version\n"
		"\n"
		"Checks, on a schedule, whether this backend can reach what it depends on, and serves the answer\n"
		"to HAProxy (agent-check port, httpchk on /ready) and to people (/health).\n"
		"\n"
		"  -c, --config FILE     the JSON configuration (runs in the foreground, logs to stderr)\n"
		"  -t, --check-config    validate the configuration and exit (0 valid, 2 invalid)\n"
		"      --syslog          log to syslog instead of stderr\n"
		"      --debug           log debug messages\n"
		"      --config-reference  print every configuration key, its default and meaning (Markdown)\n"
		"  -h, --help            this text\n"
		"  -V, --version         the version\n");
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	log_info("%s received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(d->base, NULL);
}

static void reload(struct daemon *d)
{
	char *error = NULL;
	struct hd_config *cfg = config_load(d->config_path, &error);
	const struct hd_config *old = engine_config(d->engine);

	if (cfg == NULL) {
		log_err("reload refused, the running configuration stays: %s", error);
		free(error);
		return;
	}
	if (strcmp(cfg->listen.http, old->listen.http) != 0 || strcmp(cfg->listen.agent, old->listen.agent) != 0)
		log_warn("reload: listen addresses change only on restart; still on %s and %s", old->listen.http,
			 old->listen.agent);
	engine_apply_config(d->engine, cfg);
	alerts_reload(d->alerts);
	log_info("reload: %s applied, %zu checks", d->config_path, engine_n_checks(d->engine));
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	log_info("SIGHUP received: reloading");
	reload(arg);
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
	engine_apply_config(d.engine, cfg);
	cfg = NULL;
	d.alerts = alerts_start(d.base, d.engine);
	d.http = http_api_start(d.base, engine_config(d.engine), d.engine, d.status);
	d.agent = agent_start(d.base, engine_config(d.engine), d.status);
	if (d.http == NULL || d.agent == NULL)
		goto out;
	d.sig_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_hup, NULL);
	log_info("healthd %s started: %zu checks from %s", HD_VERSION, engine_n_checks(d.engine), config_path);
	event_base_dispatch(d.base);
	rc = 0;
	log_info("healthd stopped");
out:
	engine_stop(d.engine);
	alerts_free(d.alerts);
	http_api_free(d.http);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"syslog", no_argument, NULL, 's'},
		{"debug", no_argument, NULL, 'd'},
		{"config-reference", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	bool check_only = false, use_syslog = false, debug = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 't':
			check_only = true;
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
	if (check_only) {
		char *error = NULL;
		struct hd_config *cfg = config_load(config_path, &error);
		if (cfg == NULL) {
			fprintf(stderr, "%s\n", error);
			free(error);
			return 2;
		}
		printf("%s: valid, %zu checks\n", config_path, cfg->n_checks);
		config_free(cfg);
		return 0;
	}
	return run_daemon(config_path, use_syslog, debug);
}
