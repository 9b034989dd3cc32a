/* test_check_dns.c: the dns check's pure parts: the query it sends and how it reads (possibly hostile) answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "check_dns.h"

#define ID 0x1234

/* An answer to a query for "db.example" of qtype: header (flags, rcode, ancount) and the question; *len set. */
static size_t answer_head(unsigned char *m, int qtype, int rcode, int ancount)
{
	unsigned char q[] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0,
			     2, 'd', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 0, 0, 1};

	q[3] = (unsigned char)(0x80 | rcode);
	q[7] = (unsigned char)ancount;
	q[25] = (unsigned char)qtype;
	memcpy(m, q, sizeof(q));
	return sizeof(q);
}

/* A record whose owner is a pointer to the question's name (offset 12). */
static size_t add_rr(unsigned char *m, size_t off, int type, const unsigned char *rdata, size_t rdlen)
{
	unsigned char h[] = {0xc0, 12, 0, 0, 0, 1, 0, 0, 0, 60, 0, 0};

	h[3] = (unsigned char)type;
	h[10] = (unsigned char)(rdlen >> 8);
	h[11] = (unsigned char)rdlen;
	memcpy(m + off, h, sizeof(h));
	memcpy(m + off + sizeof(h), rdata, rdlen);
	return off + sizeof(h) + rdlen;
}

static int parse(const unsigned char *m, size_t len, int qtype, struct hd_dns_answer *a, int *foreign, char *why)
{
	return hd_dns_parse_answer(m, len, ID, qtype, a, foreign, why, 128);
}

static void test_the_query_is_a_standard_recursive_question(void **state)
{
	unsigned char buf[512];
	char why[128];
	const unsigned char want[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 'd', 'b', 7, 'e', 'x', 'a', 'm',
				      'p', 'l', 'e', 0, 0, 33, 0, 1};

	(void)state;
	assert_int_equal(hd_dns_build_query("db.example.", HD_DNS_SRV, ID, buf, sizeof(buf), why, sizeof(why)),
			 sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(hd_dns_build_query("a..b", HD_DNS_A, ID, buf, sizeof(buf), why, sizeof(why)), -1);
	assert_string_equal(why, "each label (between dots) needs 1 to 63 characters");
	assert_int_equal(hd_dns_build_query("a b", HD_DNS_A, ID, buf, sizeof(buf), why, sizeof(why)), -1);
	assert_string_equal(why, "only printable ASCII without blanks");
	assert_int_equal(hd_dns_build_query("", HD_DNS_A, ID, buf, sizeof(buf), why, sizeof(why)), -1);
}

static void test_every_record_type_as_normalized_text(void **state)
{
	unsigned char m[512];
	struct hd_dns_answer a;
	char why[128];
	int foreign;
	size_t len;
	const unsigned char a1[] = {10, 0, 13, 1}, a2[] = {10, 0, 13, 2};
	const unsigned char mx[] = {0, 10, 4, 'M', 'a', 'i', 'L', 0xc0, 15}; /* "mail" + pointer to "example" */
	const unsigned char srv[] = {0, 0, 0, 5, 0x13, 0xc4, 3, 's', 'i', 'p', 0xc0, 15};
	const unsigned char txt[] = {5, 'h', 'e', 'l', 'l', 'o', 3, ' ', 'w', 0x01};
	const unsigned char cname[] = {5, 'a', 'l', 'i', 'a', 's', 0xc0, 12};
	unsigned char six[16] = {0x20, 0x01, 0x0d, 0xb8};

	(void)state;
	six[15] = 0x53;
	len = add_rr(m, answer_head(m, HD_DNS_A, 0, 3), HD_DNS_CNAME, cname, sizeof(cname)); /* skipped: not A */
	len = add_rr(m, len, HD_DNS_A, a1, sizeof(a1));
	len = add_rr(m, len, HD_DNS_A, a2, sizeof(a2));
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), 0);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.text[0], "10.0.13.1");
	assert_string_equal(a.text[1], "10.0.13.2");

	len = add_rr(m, answer_head(m, HD_DNS_MX, 0, 1), HD_DNS_MX, mx, sizeof(mx));
	assert_int_equal(parse(m, len, HD_DNS_MX, &a, &foreign, why), 0);
	assert_string_equal(a.text[0], "10 mail.example");
	len = add_rr(m, answer_head(m, HD_DNS_SRV, 0, 1), HD_DNS_SRV, srv, sizeof(srv));
	assert_int_equal(parse(m, len, HD_DNS_SRV, &a, &foreign, why), 0);
	assert_string_equal(a.text[0], "0 5 5060 sip.example");
	len = add_rr(m, answer_head(m, HD_DNS_TXT, 0, 1), HD_DNS_TXT, txt, sizeof(txt));
	assert_int_equal(parse(m, len, HD_DNS_TXT, &a, &foreign, why), 0);
	assert_string_equal(a.text[0], "hello w\\x01");
	len = add_rr(m, answer_head(m, HD_DNS_CNAME, 0, 1), HD_DNS_CNAME, cname, sizeof(cname));
	assert_int_equal(parse(m, len, HD_DNS_CNAME, &a, &foreign, why), 0);
	assert_string_equal(a.text[0], "alias.db.example");
	len = add_rr(m, answer_head(m, HD_DNS_AAAA, 0, 1), HD_DNS_AAAA, six, sizeof(six));
	assert_int_equal(parse(m, len, HD_DNS_AAAA, &a, &foreign, why), 0);
	assert_string_equal(a.text[0], "2001:db8::53");
}

static void test_rcodes_and_foreign_packets(void **state)
{
	unsigned char m[512];
	struct hd_dns_answer a;
	char why[128], buf[16];
	int foreign;
	size_t len = answer_head(m, HD_DNS_A, 3, 0);

	(void)state;
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), 0);
	assert_int_equal(a.rcode, 3);
	assert_string_equal(hd_dns_rcode_name(a.rcode, buf, sizeof(buf)), "NXDOMAIN");
	assert_string_equal(hd_dns_rcode_name(15, buf, sizeof(buf)), "rcode 15");
	m[1] = 0x35; /* another id */
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), -1);
	assert_int_equal(foreign, 1);
	m[1] = 0x34;
	assert_int_equal(parse(m, len, HD_DNS_MX, &a, &foreign, why), -1); /* another question */
	assert_int_equal(foreign, 1);
}

static void test_hostile_messages_are_refused_within_bounds(void **state)
{
	unsigned char m[512];
	struct hd_dns_answer a;
	char why[128];
	int foreign;
	const unsigned char a1[] = {10, 0, 13, 1};
	const unsigned char loop[] = {0, 10, 0xc0, 0}; /* MX whose name points at itself... below */
	size_t head = answer_head(m, HD_DNS_A, 0, 1), len;

	(void)state;
	assert_int_equal(parse(m, 5, HD_DNS_A, &a, &foreign, why), -1);
	assert_int_equal(foreign, 0);
	assert_string_equal(why, "an answer of 5 bytes, shorter than a DNS header");
	/* rdlength past the end */
	len = add_rr(m, head, HD_DNS_A, a1, sizeof(a1));
	m[len - 5] = 200;
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), -1);
	assert_string_equal(why, "an answer record (1 of 1) longer than the message");
	/* an A record of 3 bytes */
	len = add_rr(m, head, HD_DNS_A, a1, 3);
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), -1);
	assert_string_equal(why, "a malformed record of the asked type (answer 1 of 1)");
	/* ancount larger than the records present */
	len = add_rr(m, answer_head(m, HD_DNS_A, 0, 9), HD_DNS_A, a1, sizeof(a1));
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), -1);
	assert_string_equal(why, "a malformed answer record (2 of 9)");
	/* a compression pointer loop */
	head = answer_head(m, HD_DNS_MX, 0, 1);
	len = add_rr(m, head, HD_DNS_MX, loop, sizeof(loop));
	m[len - 1] = (unsigned char)(len - 2); /* the pointer points at itself */
	assert_int_equal(parse(m, len, HD_DNS_MX, &a, &foreign, why), -1);
	assert_string_equal(why, "a malformed record of the asked type (answer 1 of 1)");
}

static void test_many_answers_are_counted_beyond_those_kept(void **state)
{
	unsigned char m[HD_DNS_MSG_MAX];
	struct hd_dns_answer a;
	char why[128];
	int foreign;
	unsigned char ip[4] = {10, 0, 0, 0};
	size_t len = answer_head(m, HD_DNS_A, 0, 40);

	(void)state;
	for (int i = 0; i < 40; i++) {
		ip[3] = (unsigned char)i;
		len = add_rr(m, len, HD_DNS_A, ip, sizeof(ip));
	}
	assert_int_equal(parse(m, len, HD_DNS_A, &a, &foreign, why), 0);
	assert_int_equal(a.n, HD_DNS_ANSWERS_MAX);
	assert_int_equal(a.total, 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_query_is_a_standard_recursive_question),
		cmocka_unit_test(test_every_record_type_as_normalized_text),
		cmocka_unit_test(test_rcodes_and_foreign_packets),
		cmocka_unit_test(test_hostile_messages_are_refused_within_bounds),
		cmocka_unit_test(test_many_answers_are_counted_beyond_those_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
