/* test_http_parse.c: the HTTP API's request head parser and the address ranges of allow_from/details_from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "connlimit.h"
#include "http_parse.h"

static int parse(const char *text, struct hd_http_head *h, int *status)
{
	const char *error;
	size_t end = hd_http_head_end(text, strlen(text), 0);

	if (end == 0)
		return 1; /* incomplete */
	return hd_http_parse_head(text, end, h, status, &error);
}

static void heads_that_parse(void **unused)
{
	struct hd_http_head h;
	int status;

	(void)unused;
	assert_int_equal(parse("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &h, &status), 0);
	assert_int_equal(h.method, HD_HTTP_GET);
	assert_string_equal(h.path, "/health");
	assert_true(h.keep_alive);
	assert_false(h.has_body);
	assert_int_equal(parse("HEAD /health/my%20db?x=1 HTTP/1.0\r\n\r\n", &h, &status), 0);
	assert_int_equal(h.method, HD_HTTP_HEAD);
	assert_string_equal(h.path, "/health/my db");
	assert_false(h.keep_alive);
	assert_int_equal(parse("OPTIONS / HTTP/1.0\nConnection: Keep-Alive\n\n", &h, &status), 0); /* bare LF */
	assert_true(h.keep_alive);
	assert_int_equal(parse("GET http://h:9110/ready HTTP/1.1\r\nConnection: x, close\r\nAccept: application/json\r\n\r\n",
			       &h, &status), 0);
	assert_string_equal(h.path, "/ready");
	assert_false(h.keep_alive);
	assert_string_equal(h.accept, "application/json");
	assert_int_equal(parse("POST /health HTTP/1.1\r\nContent-Length: 3\r\n\r\n", &h, &status), 0);
	assert_int_equal(h.method, HD_HTTP_OTHER);
	assert_true(h.has_body);
	assert_int_equal(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h, &status), 0);
	assert_true(h.has_body);
	assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &h, &status), 0);
	assert_false(h.has_body);
	assert_int_equal(parse("GET /health HTTP/1.1\r\nHost: x", &h, &status), 1);
}

static void heads_that_are_refused(void **unused)
{
	static const struct {
		const char *text;
		int status;
	} bad[] = {
		{"GET /health\r\n\r\n", 400},
		{"GET /health HTTP/2.0\r\n\r\n", 505},
		{"GET /health HTTX/1.1\r\n\r\n", 400},
		{"GET health HTTP/1.1\r\n\r\n", 400},
		{"GET /a%0 HTTP/1.1\r\n\r\n", 400},
		{"GET /a%00b HTTP/1.1\r\n\r\n", 400},
		{"GET /a\x01 HTTP/1.1\r\n\r\n", 400},
		{"G(T / HTTP/1.1\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n folded\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		{"\r\n", 400},
	};
	struct hd_http_head h;
	int status;

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].text, &h, &status), -1);
		assert_int_equal(status, bad[i].status);
	}
	{
		char longpath[2100] = "GET /";
		memset(longpath + 5, 'a', 2000);
		strcpy(longpath + 2005, " HTTP/1.1\r\n\r\n");
		assert_int_equal(parse(longpath, &h, &status), -1);
		assert_int_equal(status, 414);
	}
}

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &a->sin_addr);
	}
	return ss;
}

static bool in_range(const char *range, const char *ip)
{
	struct hd_cidr c;
	const char *why;
	struct sockaddr_storage ss = addr(ip);

	assert_int_equal(hd_cidr_parse(range, &c, &why), 0);
	return hd_cidr_match(&c, (struct sockaddr *)&ss);
}

static void address_ranges(void **unused)
{
	struct hd_cidr c;
	const char *why;
	struct sockaddr_storage lo = addr("::ffff:127.0.0.9"), v6lo = addr("::1"), other = addr("192.0.2.1");

	(void)unused;
	assert_true(in_range("10.0.0.0/8", "10.200.1.2"));
	assert_false(in_range("10.0.0.0/8", "11.0.0.1"));
	assert_true(in_range("192.0.2.7", "192.0.2.7"));
	assert_false(in_range("192.0.2.7", "192.0.2.8"));
	assert_true(in_range("10.1.0.0/20", "10.1.15.255"));
	assert_false(in_range("10.1.0.0/20", "10.1.16.0"));
	assert_true(in_range("0.0.0.0/0", "203.0.113.5"));
	assert_true(in_range("2001:db8::/32", "2001:db8:1::5"));
	assert_false(in_range("2001:db8::/32", "10.0.0.1"));
	assert_true(in_range("127.0.0.0/8", "::ffff:127.0.0.3")); /* a v4 peer on a v6 listener */
	assert_int_equal(hd_cidr_parse("10.1.2.3/8", &c, &why), -1);
	assert_int_equal(hd_cidr_parse("10.0.0.0/33", &c, &why), -1);
	assert_int_equal(hd_cidr_parse("10.0.0.0/", &c, &why), -1);
	assert_int_equal(hd_cidr_parse("host.example", &c, &why), -1);
	assert_int_equal(hd_cidr_parse("", &c, &why), -1);
	assert_true(hd_sockaddr_is_loopback((struct sockaddr *)&lo));
	assert_true(hd_sockaddr_is_loopback((struct sockaddr *)&v6lo));
	assert_false(hd_sockaddr_is_loopback((struct sockaddr *)&other));
}

static void cidr_keys_in_the_config(void **unused)
{
	const char *text = "{\"checks\": [], \"http\": {\"allow_from\": [\"10.0.0.0/8\", \"::1\"], \"details_from\": []}}";
	char *error = NULL;
	struct hd_config *cfg = config_parse("h.json", text, strlen(text), &error);

	(void)unused;
	assert_non_null(cfg);
	assert_true(cfg->http.allow_from.set);
	assert_int_equal(cfg->http.allow_from.n, 2);
	assert_true(cfg->http.details_from.set);
	assert_int_equal(cfg->http.details_from.n, 0);
	config_free(cfg);
	text = "{\"checks\": [], \"http\": {\"allow_from\": [\"10.0.0.1/8\"]}}";
	assert_null(config_parse("h.json", text, strlen(text), &error));
	assert_non_null(strstr(error, "h.json:1:40: "));
	assert_non_null(strstr(error, "bits set beyond the prefix"));
	free(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(heads_that_parse),
		cmocka_unit_test(heads_that_are_refused),
		cmocka_unit_test(address_ranges),
		cmocka_unit_test(cidr_keys_in_the_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
