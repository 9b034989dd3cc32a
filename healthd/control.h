/* control.h: the operator's hold on healthd: the admin socket `healthd ctl` talks to, and the persisted admin state. */
#ifndef HEALTHD_CONTROL_H
#define HEALTHD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hd_agent;
struct hd_config;
struct hd_engine;
struct hd_status;
struct hd_control;
struct hd_reloader;

/* One request per connection: "COMMAND[ REASON]\n", at most this many bytes; one JSON object in reply. */
#define HD_CONTROL_MAX_LINE 1024

enum hd_control_cmd { HD_CTL_DRAIN, HD_CTL_MAINT, HD_CTL_READY, HD_CTL_STATUS, HD_CTL_RELOAD, HD_CTL_PUSH };

struct hd_control_deps {
	struct hd_status *status;
	struct hd_engine *engine;
	struct hd_agent *agent;
	struct hd_reloader *reloader; /* `reload` asks it; the reply waits for the read (HD_RELOAD_TIMEOUT_MS at most) */
};

/*
 * Restores the admin state from state_dir (an unreadable file means drain, with the reason why), starts its
 * writer, and listens on listen.admin_socket (mode 0600). A stale socket left by a crash is replaced; a live one
 * (another healthd) is an error. Call before the loop runs. NULL on failure, logged.
 */
struct hd_control *control_start(struct event_base *base, const struct hd_config *cfg,
				 const struct hd_control_deps *deps);
/* Closes the socket, removes its file, drops the connections, finishes the pending state file write. */
void control_free(struct hd_control *c);
/* Saves the current admin state (and whether a graceful stop is telling the load balancers to drain). */
void control_save_admin(struct hd_control *c);

/*
 * Pure part, for tests: splits a request line. The reason has control characters replaced and is cut to
 * reason_len - 1 bytes. 0, or -1 with *error (static text).
 */
int control_parse_request(const char *line, enum hd_control_cmd *cmd, char *reason, size_t reason_len,
			  const char **error);
const char *hd_control_cmd_name(enum hd_control_cmd cmd);

#endif
