/* cert.c: reads a peer certificate's subject, issuer and notAfter, and judges them against min_cert_days. */
#include "cert.h"

#include <cjson/cJSON.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* An X509 name as RFC 2253 text, at most out's size, sanitized. */
static void name_text(X509_NAME *name, char *out, size_t outlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;

	out[0] = '\0';
	if (bio == NULL)
		return;
	if (name != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		if (n > 0 && data != NULL)
			hd_sanitize_text(data, (size_t)n, out, outlen);
	}
	BIO_free(bio);
}

int hd_cert_from_x509(struct hd_cert_info *info, struct x509_st *x)
{
	struct tm tm;

	memset(info, 0, sizeof(*info));
	name_text(X509_get_subject_name(x), info->subject, sizeof(info->subject));
	name_text(X509_get_issuer_name(x), info->issuer, sizeof(info->issuer));
	memset(&tm, 0, sizeof(tm));
	if (X509_get0_notAfter(x) == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return -1;
	info->not_after_s = (int64_t)timegm(&tm);
	return 0;
}

int64_t hd_cert_days_left(int64_t not_after_s, int64_t now_s)
{
	int64_t d = not_after_s - now_s;

	return d >= 0 ? d / 86400 : -((-d + 86399) / 86400);
}

void hd_cert_date(int64_t t_s, char *buf, size_t len)
{
	time_t t = (time_t)t_s;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		hd_strlcpy(buf, "?", len);
}

bool hd_cert_below(const struct hd_cert_info *info, int min_days, int64_t now_s, const char *name, char *buf,
		   size_t len)
{
	int64_t days = hd_cert_days_left(info->not_after_s, now_s);
	char date[16];

	if (min_days <= 0 || days >= min_days)
		return false;
	hd_cert_date(info->not_after_s, date, sizeof(date));
	if (days < 0)
		snprintf(buf, len, "certificate for %s expired %lld day%s ago (%s), below %d", name, (long long)-days,
			 days == -1 ? "" : "s", date, min_days);
	else
		snprintf(buf, len, "certificate for %s expires in %lld day%s (%s), below %d", name, (long long)days,
			 days == 1 ? "" : "s", date, min_days);
	return true;
}

cJSON *hd_cert_json(const struct hd_cert_info *info, int64_t now_s)
{
	cJSON *o = cJSON_CreateObject();
	char iso[32];

	cJSON_AddStringToObject(o, "subject", info->subject);
	cJSON_AddStringToObject(o, "issuer", info->issuer);
	hd_iso8601(info->not_after_s * 1000, iso, sizeof(iso));
	cJSON_AddStringToObject(o, "not_after", iso);
	cJSON_AddNumberToObject(o, "days_left", (double)hd_cert_days_left(info->not_after_s, now_s));
	return o;
}
