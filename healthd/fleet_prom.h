/* fleet_prom.h: `healthd fleet --prometheus URL`: the fleet's replies built from a Prometheus that scrapes every healthd. */
#ifndef HEALTHD_FLEET_PROM_H
#define HEALTHD_FLEET_PROM_H

#include <stddef.h>

#include "fleet.h"

/* What a Prometheus query run gave: one reply per healthd instance seen in the last hour, and what they own. */
struct hd_fleet_prom {
	struct hd_fleet_reply *replies;
	size_t n;
	char **owned; /* every string the replies point to */
	size_t n_owned;
};

/* Asks Prometheus at base_url (its HTTP API), each query within timeout_ms. Returns 0 with *out filled, or -1 with
 * why (Prometheus unreachable, an error answer, not Prometheus' JSON, no healthd in it). */
int hd_fleet_prometheus(const char *base_url, int timeout_ms, struct hd_fleet_prom *out, char *why, size_t whylen);
void hd_fleet_prom_free(struct hd_fleet_prom *p);

#endif
