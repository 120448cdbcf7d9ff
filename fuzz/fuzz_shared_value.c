// sources: policy/shared_value.c core/util.c
/*
 * fuzz_shared_value.c - what stsproxy reads from the shared Redis, which
 * anyone able to write the database controls: the policy value, the
 * policy change message and the server message, on arbitrary bytes. A
 * decoded value must keep the decoder's promises (a valid id, an expiry
 * after the fetch and within a year, a policy text inside the input and
 * within 64 KiB) and encode back to the same bytes.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/shared_value.h"

static char out[SHARED_VALUE_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why = NULL;
	struct shared_policy p;
	char domain[254], id[STS_ID_MAX + 1], msg[96];
	uint8_t addr[16];
	int family;
	int64_t seen;
	size_t n;

	if (shared_policy_decode(buf, size, &p, &why) == 0) {
		if (!shared_id_valid(p.id, strlen(p.id)) || p.expires_at <= p.fetched_at ||
		    p.expires_at - p.fetched_at > 31557600LL || p.text < buf ||
		    p.text + p.text_len != buf + size || p.text_len == 0 ||
		    p.text_len > STS_POLICY_MAX_BODY)
			abort();
		n = shared_policy_encode(&p, out, sizeof(out));
		if (n != size || memcmp(out, buf, size) != 0)
			abort();
	} else if (why == NULL || why[0] == '\0') {
		abort();
	}
	if (shared_change_decode(buf, size, domain, id) == 0) {
		if (strlen(domain) == 0 || strlen(domain) > 253 || !shared_id_valid(id, strlen(id)))
			abort();
	}
	if (shared_server_decode(buf, size, &family, addr, &seen) == 0) {
		if ((family != AF_INET && family != AF_INET6) || seen < 0)
			abort();
		if (shared_server_encode(family, addr, seen, msg, sizeof(msg)) == 0)
			abort();
	}
	return 0;
}
