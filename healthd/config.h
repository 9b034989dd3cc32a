/* config.h: the JSON configuration: its structs, the table-driven key reader and file:line:col errors. */
#ifndef HEALTHD_CONFIG_H
#define HEALTHD_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>

#include "check.h"
#include "connlimit.h"

struct cJSON;
struct hd_alerts_conf;

enum cfg_type {
	CFG_INT,      /* int, range min..max */
	CFG_BOOL,     /* bool */
	CFG_STRING,   /* char *, non-empty */
	CFG_ENUM,     /* int index into choices */
	CFG_HOSTPORT, /* char * "ADDR:PORT" */
	CFG_STRMAP,   /* char ** NULL-terminated "Name: value" pairs from an object of strings (headers) */
	CFG_PATH,     /* char *, an absolute file system path */
	CFG_CUSTOM,   /* anything else (an array of objects...): the key's own parse() and release() */
};

/* One configuration key: the parser and the reference documentation both read this table. */
struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;               /* where the value goes in the destination struct */
	bool required;
	long long min, max;          /* CFG_INT */
	const char *def;             /* default, as the documentation shows it; NULL = none */
	const char *const *choices;  /* CFG_ENUM, NULL-terminated */
	const char *help;
	/* Optional: reads the value instead of the generic reader (stores into field as type says, so that the default,
	 * free and documentation stay generic); errors via cfg_error(ctx, node, ...) point at the value. */
	int (*parse)(struct cfg_ctx *ctx, const struct cJSON *node, void *field);
	/* CFG_CUSTOM only (parse is then required): frees what parse stored, and names the type in the reference. */
	void (*release)(void *field);
	const char *type_doc;
};

/* Parsing context: the file, its positions and the first error. */
struct cfg_ctx {
	const char *file;
	const char *text;
	size_t text_len;
	struct cfg_pos *pos;
	size_t n_pos, cap_pos;
	char *error;        /* "FILE:LINE:COL: message", set by the first cfg_error() */
	char **warnings;    /* kept for the caller to log */
	size_t n_warnings;
	const struct cJSON *check_node; /* the check object a type's validate() is looking at */
	const struct hd_config_opts *opts; /* never NULL while parsing */
	char **unopened;    /* with opts->no_files: the files the configuration names, not opened */
	size_t n_unopened;
};

/* How a configuration is loaded; all zero is what the daemon does. */
struct hd_config_opts {
	/* `--check-config --no-secrets`: open none of the files the configuration names (password files, header
	 * files, CA files), so that it can be linted before they are deployed; everything else is checked. */
	bool no_files;
	/* Hand warnings to the caller in cfg->warnings instead of logging them (a worker thread loads). */
	bool keep_warnings;
	/* Told before each file is opened, on the loading thread: a reload blocked on a hung mount names its file. */
	void (*on_open)(const char *path, void *arg);
	void *on_open_arg;
};

/* Records an error at node's value (or its key when at_key) with the JSON path; returns -1. */
int cfg_error(struct cfg_ctx *ctx, const struct cJSON *node, bool at_key, const char *fmt, ...) HD_PRINTF(4, 5);
void cfg_warn(struct cfg_ctx *ctx, const struct cJSON *node, const char *fmt, ...) HD_PRINTF(3, 4);
/* The dotted path of a node for messages: checks[2].port. */
const char *cfg_path(struct cfg_ctx *ctx, const struct cJSON *node, char *buf, size_t len);

/*
 * Reads the file a check's "password_file" key names, while the configuration loads (never later, on the loop):
 * one trailing newline (and CR) dropped; unreadable, not a regular file, empty or larger than 4 KiB is an error at
 * the key's value, readable by everyone a warning. Puts a keyed digest of the password in conf->fingerprint, so that
 * a reload after the file changed restarts the check. Returns the password (explicit_bzero, then free), or NULL with
 * the error set. With opts->no_files it opens nothing and returns a placeholder.
 */
char *cfg_read_password_file(struct cfg_ctx *ctx, struct hd_check_conf *conf, const char *path);
/*
 * Reads another file the configuration names (a header's value): a regular file (a named pipe, device or directory
 * is refused: reading it could block or never end) of at most max bytes, one trailing newline (and CR) dropped.
 * Errors name WHAT and the path at node's value. With opts->no_files: opens nothing, returns a placeholder.
 */
char *cfg_read_named_file(struct cfg_ctx *ctx, const struct cJSON *node, const char *what, const char *path,
			  size_t max);
/* Checks that a file used later (a CA file) is a readable regular file; nothing with opts->no_files. 0 or -1. */
int cfg_check_named_file(struct cfg_ctx *ctx, const struct cJSON *node, const char *what, const char *path);
/* A CA file: readable (cfg_check_named_file), and one or more PEM certificates, each one OpenSSL can read. */
int cfg_check_ca_file(struct cfg_ctx *ctx, const struct cJSON *node, const char *path);
/* A key's parse() for a CA file (the http and tls checks' "ca"): a non-empty path that cfg_check_ca_file accepts. */
int cfg_parse_ca(struct cfg_ctx *ctx, const struct cJSON *node, void *field);
/* A keyed digest (SipHash-2-4, a per-process random key) of a secret, as 32 hex digits in out (33 bytes). */
void cfg_secret_digest(const void *data, size_t len, char out[33]);

/*
 * A CFG_CUSTOM parse() for an object of alert labels ({"team": "payments"}) into a struct hd_labels: names match
 * [a-zA-Z_][a-zA-Z0-9_]*, do not start with "__" and are none of the labels healthd sets itself (hd_reserved_labels);
 * values are non-empty single lines. cfg_release_labels() is its release().
 */
int cfg_read_labels(struct cfg_ctx *ctx, const struct cJSON *node, void *field);
void cfg_release_labels(void *field);
/* The labels healthd sets on every Alertmanager alert, which configured labels may not override; NULL-terminated. */
extern const char *const hd_reserved_labels[];

/* Reads an object against one or more key tables: unknown, missing or mistyped keys are errors. */
struct cfg_table_ref {
	const struct cfg_key *keys;
	void *dst;
};
int cfg_read_object(struct cfg_ctx *ctx, const struct cJSON *obj, const struct cfg_table_ref *tables, size_t n);
/* Prints a key table as Markdown rows for the reference; section prefixes each key. */
void cfg_print_keys(const char *section, const struct cfg_key *keys);
/* Frees the strings and maps a table filled in dst. */
void cfg_free_table(const struct cfg_key *keys, void *dst);

struct hd_defaults {
	int interval_ms;
	int timeout_ms;
	int rise;
	int fall;
	int fastinterval_ms; /* 0: as interval_ms */
	int downinterval_ms; /* 0: as interval_ms */
};

struct hd_config {
	char *path;
	char *node_name;            /* this backend's name in alerts; default: the host name */
	char *state_dir;            /* where state that must survive a restart lives (admin state, spool) */
	int shutdown_grace_ms;      /* on SIGTERM, answer drain this long before exiting */
	struct {
		char *http;
		char *agent;
		char *admin_socket;
	} listen;
	struct hd_defaults defaults;
	struct {
		int degraded_weight_pct;
		int ready_window_ms;      /* after leaving drain/maint, every poll within this gets "ready" */
		int max_connections;
		int max_connections_per_source;
		int timeout_ms;
		struct hd_cidr_list allow_from; /* unset: everyone */
	} agent;
	struct {
		int max_connections;
		int max_connections_per_source;
		int timeout_ms;           /* deadline for a complete request head, and for taking the answer */
		int max_header_bytes;
		struct hd_cidr_list allow_from;   /* unset: everyone */
		struct hd_cidr_list details_from; /* unset: loopback only */
	} http;
	struct {
		bool syslog;
		int level;                /* enum hd_log_level */
	} log;
	struct {
		int max_events;           /* state and admin changes kept (memory, file, /history) */
		int max_bytes;            /* the history file's size at most */
	} history;
	struct hd_check_conf **checks;
	size_t n_checks;
	struct hd_alerts_conf *alerts; /* NULL when no "alerts" section */
	char **warnings;            /* with opts.keep_warnings: for config_log_warnings() */
	size_t n_warnings;
	char **unopened;            /* with opts.no_files: the files named but not opened */
	size_t n_unopened;
};

/* Loads and validates a file. NULL on any error, with *error = "FILE:LINE:COL: message" (caller frees). */
struct hd_config *config_load(const char *path, char **error);
/* Same, from text in memory (tests). */
struct hd_config *config_parse(const char *file, const char *text, size_t len, char **error);
/* Both with options (opts may be NULL). */
struct hd_config *config_load_opts(const char *path, const struct hd_config_opts *opts, char **error);
struct hd_config *config_parse_opts(const char *file, const char *text, size_t len, const struct hd_config_opts *opts,
				    char **error);
/* Logs (as warnings) and drops what opts.keep_warnings kept. */
void config_log_warnings(struct hd_config *cfg);
void config_free(struct hd_config *cfg);
const struct hd_check_conf *config_find_check(const struct hd_config *cfg, const char *name);
/* Prints the configuration reference (Markdown), generated from the key tables. */
void config_print_reference(void);

/* ---- cfgkeys.c: the key-table reader ---- */

/* Records where every node of root sits in ctx->text (cJSON keeps no positions), for the errors below. */
void cfg_record_positions(struct cfg_ctx *ctx, const struct cJSON *root);
/* The line of node's value in the file, 0 if unknown. */
int cfg_line_of(const struct cfg_ctx *ctx, const struct cJSON *node);
/* One key of a table: its default, then the value v if present (NULL: absent). Returns 0 or -1 (error set). */
int cfg_read_key(struct cfg_ctx *ctx, const struct cJSON *v, const struct cfg_key *k, void *dst);
/* "a string", "an object", ... for errors. */
const char *cfg_json_type_name(const struct cJSON *v);
/* Refuses item, a key of none of tables, with a "did you mean" when one is close; returns -1. */
int cfg_unknown_key(struct cfg_ctx *ctx, const struct cJSON *item, const struct cfg_table_ref *tables, size_t n);
/* A regular file of at most max bytes, NUL-terminated; NULL with *why set ("too large", strerror...). */
char *cfg_read_regular_file(const char *path, size_t max, size_t *len_out, mode_t *mode_out, const char **why);

#endif
