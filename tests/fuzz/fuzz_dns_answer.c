/* fuzz_dns_answer.c: a DNS server's answer, read by hd_dns_parse_answer for every record type the check asks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = {HD_DNS_A, HD_DNS_AAAA, HD_DNS_CNAME, HD_DNS_MX, HD_DNS_TXT, HD_DNS_SRV};
	static struct hd_dns_answer a;
	char why[128];
	int foreign;
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0; /* the input's own id: parsing goes on */

	if (size > HD_DNS_MSG_MAX)
		return 0;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		why[0] = '\0';
		if (hd_dns_parse_answer(data, size, id, types[t], &a, &foreign, why, sizeof(why)) < 0) {
			if (why[0] == '\0' || strlen(why) >= sizeof(why))
				abort();
			continue;
		}
		if (a.n > HD_DNS_ANSWERS_MAX || a.n > a.total)
			abort();
		for (size_t i = 0; i < a.n; i++)
			if (strnlen(a.text[i], HD_DNS_TEXT_MAX) >= HD_DNS_TEXT_MAX)
				abort();
	}
	return 0;
}
