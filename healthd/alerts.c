/* alerts.c: connectivity-regression and recovery events, spooled to disk and delivered to webhooks. */
#include "alerts.h"

#include "config.h"

int alerts_parse_config(struct cfg_ctx *ctx, const struct cJSON *node, struct hd_alerts_conf **out)
{
	*out = NULL;
	return cfg_error(ctx, node, true, "the alerts section is not available in this build yet");
}

void alerts_free_config(struct hd_alerts_conf *conf)
{
	(void)conf;
}

void alerts_print_reference(void)
{
}
