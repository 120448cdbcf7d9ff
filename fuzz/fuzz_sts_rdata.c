// sources: policy/sts_rdata.c
/*
 * fuzz_sts_rdata.c - the TXT, MX, A and AAAA rdata parsers on arbitrary
 * bytes. The first byte picks the parser; the rest is the rdata. Beyond not
 * crashing, results are checked against the documented bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "policy/sts_rdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char txt[STS_RDATA_TXT_MAX + 1], host[STS_RDATA_NAME_MAX + 1];
	struct sockaddr_storage ss;
	unsigned pref;
	int n;

	if (size < 1)
		return 0;
	/* Copy so that a read past the rdata hits the sanitizer's redzone. */
	uint8_t *rd = malloc(size - 1 ? size - 1 : 1);
	if (rd == NULL)
		return 0;
	memcpy(rd, data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
		n = sts_rdata_txt(rd, size - 1, txt, sizeof(txt));
		if (n > STS_RDATA_TXT_MAX || (n >= 0 && txt[n] != '\0'))
			abort();
		break;
	case 1:
		if (sts_rdata_mx(rd, size - 1, &pref, host, sizeof(host)) == 0 &&
		    (pref > 65535 || strlen(host) > STS_RDATA_NAME_MAX))
			abort();
		break;
	case 2:
		n = sts_rdata_name(rd, size - 1, host, sizeof(host));
		if (n > (int)(size - 1) || (n >= 0 && strlen(host) > STS_RDATA_NAME_MAX))
			abort();
		break;
	default:
		if (sts_rdata_addr(data[0] & 4 ? AF_INET6 : AF_INET, rd, size - 1, &ss) == 0 &&
		    ss.ss_family != (data[0] & 4 ? AF_INET6 : AF_INET))
			abort();
		break;
	}
	free(rd);
	return 0;
}
