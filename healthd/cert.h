/* cert.h: the facts of a peer's TLS certificate (subject, issuer, expiry) shared by the tls and http checks. */
#ifndef HEALTHD_CERT_H
#define HEALTHD_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct x509_st;

/* Subject and issuer are peer bytes: cut to their size and sanitized (one printable line) when filled. */
struct hd_cert_info {
	char subject[256];
	char issuer[256];
	int64_t not_after_s; /* Unix time */
};

/* Fills info from a certificate (RFC 2253 names). 0, or -1 when its notAfter cannot be read. */
int hd_cert_from_x509(struct hd_cert_info *info, struct x509_st *x);
/* Whole days from now until not_after, rounded down (negative once expired). */
int64_t hd_cert_days_left(int64_t not_after_s, int64_t now_s);
/* "2026-12-06" (UTC). buf needs 16 bytes. */
void hd_cert_date(int64_t t_s, char *buf, size_t len);
/*
 * With min_days > 0: true when the certificate expires in fewer than min_days days, with the detail in buf:
 * "certificate for db-main expires in 5 days (2026-12-06), below 14". False (buf untouched) otherwise.
 */
bool hd_cert_below(const struct hd_cert_info *info, int min_days, int64_t now_s, const char *name, char *buf,
		   size_t len);
/* {"subject", "issuer", "not_after" (ISO 8601), "days_left"} (caller deletes). */
struct cJSON *hd_cert_json(const struct hd_cert_info *info, int64_t now_s);

#endif
