/* alerts.h: connectivity-regression and recovery events, spooled to disk and delivered to webhooks. */
#ifndef HEALTHD_ALERTS_H
#define HEALTHD_ALERTS_H

struct cJSON;
struct cfg_ctx;
struct hd_alerts_conf;
struct hd_engine;

/* Reads the "alerts" section. Returns 0 or -1 (error in ctx). */
int alerts_parse_config(struct cfg_ctx *ctx, const struct cJSON *node, struct hd_alerts_conf **out);
void alerts_free_config(struct hd_alerts_conf *conf);
/* Prints the section's keys for the configuration reference. */
void alerts_print_reference(void);

#endif
