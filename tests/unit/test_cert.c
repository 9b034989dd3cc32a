/* test_cert.c: certificate facts: days left, the threshold detail, and hostile subject bytes bounded and escaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include <string.h>

#include "cert.h"

#define DAY 86400

static void days_left_rounds_down(void **unused)
{
	(void)unused;
	assert_int_equal(hd_cert_days_left(1000 + 2 * DAY, 1000), 2);
	assert_int_equal(hd_cert_days_left(1000 + 2 * DAY - 1, 1000), 1);
	assert_int_equal(hd_cert_days_left(1000, 1000), 0);
	assert_int_equal(hd_cert_days_left(999, 1000), -1);           /* expired a second ago: day -1 */
	assert_int_equal(hd_cert_days_left(1000 - DAY, 1000), -1);
	assert_int_equal(hd_cert_days_left(1000 - DAY - 1, 1000), -2);
}

static void threshold_detail_text(void **unused)
{
	struct hd_cert_info c = {.not_after_s = 1796515200}; /* 2026-12-06T00:00:00Z */
	char buf[256] = "untouched";

	(void)unused;
	/* 5 days and 10 hours before */
	assert_true(hd_cert_below(&c, 14, 1796515200 - 5 * DAY - 36000, "db-main", buf, sizeof(buf)));
	assert_string_equal(buf, "certificate for db-main expires in 5 days (2026-12-06), below 14");
	assert_true(hd_cert_below(&c, 14, 1796515200 - DAY - 1, "db-main", buf, sizeof(buf)));
	assert_string_equal(buf, "certificate for db-main expires in 1 day (2026-12-06), below 14");
	assert_true(hd_cert_below(&c, 1, 1796515200 + 3 * DAY, "web", buf, sizeof(buf)));
	assert_string_equal(buf, "certificate for web expired 3 days ago (2026-12-06), below 1");
	strcpy(buf, "untouched");
	assert_false(hd_cert_below(&c, 14, 1796515200 - 14 * DAY, "db-main", buf, sizeof(buf)));
	assert_false(hd_cert_below(&c, 0, 1796515200 + 3 * DAY, "db-main", buf, sizeof(buf))); /* 0: off */
	assert_string_equal(buf, "untouched");
}

static void json_member(void **unused)
{
	struct hd_cert_info c = {.subject = "CN=a", .issuer = "CN=ca", .not_after_s = 1796515200};
	cJSON *o = hd_cert_json(&c, 1796515200 - 5 * DAY);
	char *text = cJSON_PrintUnformatted(o);

	(void)unused;
	assert_string_equal(text, "{\"subject\":\"CN=a\",\"issuer\":\"CN=ca\",\"not_after\":\"2026-12-06T00:00:00.000Z\","
				  "\"days_left\":5}");
	cJSON_free(text);
	cJSON_Delete(o);
}

/* A server chooses its certificate's names: a newline, an escape sequence and 2000 bytes. */
static void hostile_subject_is_bounded_and_escaped(void **unused)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	char cn[2001];
	struct hd_cert_info info;

	(void)unused;
	memset(cn, 'A', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';
	memcpy(cn, "evil\n\x1b[31m", 10);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", V_ASN1_UTF8STRING, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	assert_int_equal(hd_cert_from_x509(&info, x), 0);
	assert_true(strlen(info.subject) < sizeof(info.subject));
	assert_null(strchr(info.subject, '\n'));
	assert_null(strchr(info.subject, '\x1b'));
	/* OpenSSL's RFC 2253 text escapes control characters itself; the sanitizer is the second fence */
	assert_true(strncmp(info.subject, "O=evil\\0A\\1B[31mAAAA", 20) == 0);
	assert_true(strcmp(info.subject + strlen(info.subject) - 3, "...") == 0);
	X509_NAME_free(name);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(days_left_rounds_down),
		cmocka_unit_test(threshold_detail_text),
		cmocka_unit_test(json_member),
		cmocka_unit_test(hostile_subject_is_bounded_and_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
