/* agent.h: the HAProxy agent-check port: one cached line per connection. */
#ifndef HEALTHD_AGENT_H
#define HEALTHD_AGENT_H

#include <stdint.h>

struct event_base;
struct hd_config;
struct hd_status;
struct hd_agent;
struct hd_connlimit;

struct hd_agent *agent_start(struct event_base *base, const struct hd_config *cfg, struct hd_status *status);
void agent_free(struct hd_agent *a);
uint64_t agent_replies(const struct hd_agent *a);
/* The listener's admission counters, for /metrics. */
struct hd_connlimit *agent_connlimit(const struct hd_agent *a);

#endif
