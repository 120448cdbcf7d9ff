// sources: core/netstring.c proxy/smap_reply.c core/util.c core/types.c
/*
 * fuzz_socketmap.c - a socketmap request stream, as the server reads it:
 * netstrings taken one at a time from the front of the buffer, each
 * request parsed into a query, and a reply built for it from an answer
 * whose shape the input picks. Invariants: a netstring's proper prefixes
 * ask for more; what the parser takes lies inside the buffer; a query's
 * domain is a valid host name; every reply fits Postfix's bound and,
 * framed, parses back to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/netstring.h"
#include "core/util.h"
#include "proxy/smap_reply.h"

#define MAX_REQUEST 1024

static char out[SMAP_REPLY_MAX + 1];
static char framed[SMAP_REPLY_MAX + 16];

static void
check_reply(size_t n)
{
	const char *d;
	size_t dl, used, f;

	if (n > SMAP_REPLY_MAX || n != strlen(out))
		__builtin_trap();
	f = netstring_encode(framed, sizeof(framed), out, n);
	if (f == 0 || netstring_parse(framed, f, SMAP_REPLY_MAX, &d, &dl, &used) != NETSTRING_OK ||
	    dl != n || used != f || memcmp(d, out, n) != 0)
		__builtin_trap();
}

static void
answer(const struct smap_query *q, uint8_t shape)
{
	static char *mx[2] = {"*.example.com", "mx.example.net"};
	struct sts_policy p = {(enum sts_mode)(shape % 3), 86400, mx, 1 + (shape >> 2) % 2};
	struct sts_dane_state *st = calloc(1, sizeof(*st) + 2 * sizeof(st->host[0]));
	struct smap_reply_opts o = {.testing_secure = shape & 0x10, .tlsrpt = shape & 0x20};
	struct sts_answer *a = calloc(1, sizeof(*a));
	enum smap_kind k;
	size_t n;

	if (st == NULL || a == NULL)
		goto out;
	sts_strlcpy(a->domain, q->domain, sizeof(a->domain));
	a->status = (enum sts_status)((shape >> 3) % 3);
	a->policy = &p;
	a->mode = p.mode;
	a->dane_mode = (enum sts_dane_mode)((shape >> 6) % 3);
	st->status = (enum sts_dane_status)((shape >> 1) % 4);
	st->n_host = 2;
	st->host[0].state = (enum sts_dane_host_state)(shape % 4);
	st->host[1].state = (enum sts_dane_host_state)((shape >> 4) % 4);
	a->dane = (shape & 0x80) ? st : NULL;
	n = smap_reply_build(a, q, &o, out, sizeof(out), &k);
	if (n == 0 || (unsigned)k >= SMAP_KIND_MAX)
		__builtin_trap();
	check_reply(n);
out:
	free(st);
	free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	while (off < size) {
		const char *d;
		size_t dl, used;
		enum netstring_status r =
		    netstring_parse(buf + off, size - off, MAX_REQUEST, &d, &dl, &used);
		struct smap_query q;

		if (r != NETSTRING_OK)
			break;
		if (used > size - off || d < buf + off || d + dl > buf + off + used)
			__builtin_trap();
		/* proper prefixes are incomplete */
		for (size_t cut = used > 8 ? used - 8 : 0; cut < used; cut++)
			if (netstring_parse(buf + off, cut, MAX_REQUEST, &d, &dl, &used) !=
			        NETSTRING_MORE &&
			    cut > 0)
				__builtin_trap();
		netstring_parse(buf + off, size - off, MAX_REQUEST, &d, &dl, &used);
		smap_query_parse(d, dl, &q);
		if (q.lookup && !sts_hostname_valid(q.domain))
			__builtin_trap();
		if (!q.lookup && q.domain[0] != '\0')
			__builtin_trap();
		answer(&q, dl > 0 ? (uint8_t)d[dl - 1] : 0);
		if (smap_reply_word(SMAP_PERM, "request too long", out, sizeof(out)) == 0)
			__builtin_trap();
		off += used;
	}
	return 0;
}
