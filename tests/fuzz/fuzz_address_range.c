/* fuzz_address_range.c: drives the address-range parser of http.allow_from, http.details_from and agent.allow_from. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connlimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[128];
	struct hd_cidr c;
	const char *why;
	struct sockaddr_in6 peer = {.sin6_family = AF_INET6};

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (hd_cidr_parse(text, &c, &why) == 0) {
		if (c.prefix < 0 || c.prefix > (c.family == AF_INET ? 32 : 128))
			abort();
		memcpy(&peer.sin6_addr, c.addr, 16);
		if (c.family == AF_INET6 && !hd_cidr_match(&c, (struct sockaddr *)&peer))
			abort(); /* a range contains its own network address */
	} else if (why == NULL) {
		abort();
	}
	return 0;
}
