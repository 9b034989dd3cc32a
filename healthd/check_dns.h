/* check_dns.h: the pure part of the dns check (query building, answer parsing), exported for unit tests and the fuzzer. */
#ifndef HEALTHD_CHECK_DNS_H
#define HEALTHD_CHECK_DNS_H

#include <stddef.h>
#include <stdint.h>

#define HD_DNS_MSG_MAX 4096    /* a UDP answer read at most this long (EDNS is not offered: 512 is the norm) */
#define HD_DNS_ANSWERS_MAX 32  /* answers of the asked type kept; more are counted */
#define HD_DNS_TEXT_MAX 256    /* one answer as text, NUL included; longer ones are cut */

enum { HD_DNS_A = 1, HD_DNS_CNAME = 5, HD_DNS_MX = 15, HD_DNS_TXT = 16, HD_DNS_AAAA = 28, HD_DNS_SRV = 33 };

struct hd_dns_answer {
	int rcode;
	int truncated;           /* TC set */
	size_t n;                /* answers kept in text[] */
	size_t total;            /* answers of the asked type in the message */
	char text[HD_DNS_ANSWERS_MAX][HD_DNS_TEXT_MAX];
};

/* A query for name (no trailing dot needed) and qtype with id and RD set: its length, or -1 (why says why). */
int hd_dns_build_query(const char *name, int qtype, uint16_t id, unsigned char *buf, size_t buflen, char *why,
		       size_t whylen);

/*
 * Reads an answer to the query with id and qtype: header, question, then the answer records of qtype as
 * normalized text (names lowercase without the trailing dot; MX "10 mail.example"; SRV "0 5 5060 sip.example";
 * TXT its strings joined, bytes outside printable ASCII as \xNN). 0, or -1 with why: a malformed message, or
 * an id or question that is not ours (*foreign set: the packet is to be ignored, not judged).
 */
int hd_dns_parse_answer(const unsigned char *msg, size_t len, uint16_t id, int qtype, struct hd_dns_answer *out,
			int *foreign, char *why, size_t whylen);

/* The rcode's name: "NXDOMAIN", "SERVFAIL"... or "rcode N". */
const char *hd_dns_rcode_name(int rcode, char *buf, size_t len);

#endif
