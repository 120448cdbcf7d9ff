/*
 * tlsrpt_dns.c - the _smtp._tls TXT lookup (RFC 8460 section 3) for the
 * report sender's thread.
 *
 * The lookup is asynchronous inside libunbound and waited for here with
 * poll() on ub_fd(), so that it is bounded by the configured timeout:
 * ub_resolve() alone could block for as long as libunbound retries.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#include "policy/policy_internal.h"
#include "policy/sts_rdata.h"
#include "policy/tlsrpt_dns.h"

#define DEFAULT_TIMEOUT_MS 5000
#define RR_TYPE_TXT        16
#define RR_CLASS_IN        1
#define RCODE_NOERROR      0
#define RCODE_NXDOMAIN     3
#define PREFIX             "_smtp._tls."

struct tlsrpt_resolver {
	struct ub_ctx *ctx;
	unsigned timeout_ms;
};

/* What the libunbound callback hands back. */
struct pending {
	bool done;
	int err;
	struct ub_result *res;
};

static void __attribute__((format(printf, 3, 4)))
set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A host name in A-labels, no trailing dot, short enough for the prefix. */
static bool
domain_ok(const char *d)
{
	size_t n;

	if (d == NULL)
		return false;
	n = strnlen(d, STS_RDATA_NAME_MAX + 1);
	return n + sizeof(PREFIX) - 1 <= STS_RDATA_NAME_MAX && sts_host_valid(d, n);
}

static void
on_answer(void *arg, int err, struct ub_result *res)
{
	struct pending *p = arg;

	p->done = true;
	p->err = err;
	p->res = res;
}

/* tlsrpt_resolver_new - see tlsrpt_dns.h */
struct tlsrpt_resolver *
tlsrpt_resolver_new(const struct sts_dns_params *p, char *err, size_t errlen)
{
	struct tlsrpt_resolver *r;
	int rc;

	if (p == NULL) {
		set_why(err, errlen, "tlsrpt dns: no parameters");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		set_why(err, errlen, "tlsrpt dns: out of memory");
		return NULL;
	}
	r->timeout_ms = p->timeout_ms ? p->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->ctx = sts_dns_context(p, err, errlen);
	if (r->ctx == NULL)
		goto fail;
	/* A thread, so that the wait below can give up at the timeout. */
	if ((rc = ub_ctx_async(r->ctx, 1)) != 0) {
		set_why(err, errlen, "tlsrpt dns: async: %s", ub_strerror(rc));
		goto fail;
	}
	return r;
fail:
	tlsrpt_resolver_free(r);
	return NULL;
}

/* tlsrpt_resolver_free - see tlsrpt_dns.h */
void
tlsrpt_resolver_free(struct tlsrpt_resolver *r)
{
	if (r == NULL)
		return;
	if (r->ctx != NULL)
		ub_ctx_delete(r->ctx);
	free(r);
}

/* Wait for the answer to q, at most timeout_ms. Returns 0 when it came, -1 otherwise. */
static int
wait_answer(struct tlsrpt_resolver *r, struct pending *q, int async_id, char *why, size_t whylen)
{
	int64_t deadline = now_ms() + r->timeout_ms;
	struct pollfd pfd = {.fd = ub_fd(r->ctx), .events = POLLIN};

	while (!q->done) {
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0) {
			(void)ub_cancel(r->ctx, async_id);
			set_why(why, whylen, "timed out after %u ms", r->timeout_ms);
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR) {
			(void)ub_cancel(r->ctx, async_id);
			set_why(why, whylen, "poll: %s", strerror(errno));
			return -1;
		}
		if (n > 0 && ub_process(r->ctx) != 0) {
			(void)ub_cancel(r->ctx, async_id);
			set_why(why, whylen, "resolver: cannot process answers");
			return -1;
		}
	}
	return 0;
}

/* The answer's records, joined, chosen. */
static enum tlsrpt_lookup_status
choose(const struct ub_result *res, struct tlsrpt_record *rec, char *why, size_t whylen)
{
	static const size_t bufsz = STS_RDATA_TXT_MAX + 1;
	const char *recs[STS_DNS_MAX_RECORDS];
	size_t lens[STS_DNS_MAX_RECORDS], n = 0;
	char *bufs = NULL;
	enum tlsrpt_lookup_status st;
	int rc;

	while (res->data[n] != NULL)
		n++;
	if (n > STS_DNS_MAX_RECORDS) {
		set_why(why, whylen, "%zu TXT records, limit %d", n, STS_DNS_MAX_RECORDS);
		return TLSRPT_LOOKUP_INVALID;
	}
	bufs = malloc(n * bufsz);
	if (bufs == NULL) {
		set_why(why, whylen, "out of memory");
		return TLSRPT_LOOKUP_TEMPFAIL;
	}
	for (size_t i = 0; i < n; i++) {
		int len = res->len[i] < 0
		              ? -1
		              : sts_rdata_txt((const uint8_t *)res->data[i], (size_t)res->len[i],
		                              bufs + i * bufsz, bufsz);

		/* A record we cannot even join is one we will never read: no report. */
		if (len < 0) {
			set_why(why, whylen, "malformed or oversized TXT record");
			free(bufs);
			return TLSRPT_LOOKUP_INVALID;
		}
		recs[i] = bufs + i * bufsz;
		lens[i] = (size_t)len;
	}
	rc = tlsrpt_record_select(recs, lens, n, rec, why, whylen);
	if (rc == 1) {
		st = TLSRPT_LOOKUP_FOUND;
		set_why(why, whylen, "%s", "");
	} else if (rc == 0) {
		st = TLSRPT_LOOKUP_NONE;
		set_why(why, whylen, "no TLSRPTv1 record");
	} else {
		st = TLSRPT_LOOKUP_INVALID;
	}
	free(bufs);
	return st;
}

/* tlsrpt_lookup - see tlsrpt_dns.h */
enum tlsrpt_lookup_status
tlsrpt_lookup(struct tlsrpt_resolver *r, const char *domain, struct tlsrpt_record *rec, char *why,
              size_t whylen)
{
	char name[STS_RDATA_NAME_MAX + 2];
	struct pending q = {0};
	enum tlsrpt_lookup_status st;
	int async_id = 0, rc;

	memset(rec, 0, sizeof(*rec));
	set_why(why, whylen, "%s", "");
	if (r == NULL || !domain_ok(domain)) {
		set_why(why, whylen, "not a domain name");
		return TLSRPT_LOOKUP_INVALID;
	}
	(void)snprintf(name, sizeof(name), "%s%s", PREFIX, domain);
	rc = ub_resolve_async(r->ctx, name, RR_TYPE_TXT, RR_CLASS_IN, &q, on_answer, &async_id);
	if (rc != 0) {
		set_why(why, whylen, "resolver: %s", ub_strerror(rc));
		return TLSRPT_LOOKUP_TEMPFAIL;
	}
	if (wait_answer(r, &q, async_id, why, whylen) < 0)
		return TLSRPT_LOOKUP_TEMPFAIL;
	if (q.err != 0 || q.res == NULL) {
		set_why(why, whylen, "resolver: %s", ub_strerror(q.err));
		st = TLSRPT_LOOKUP_TEMPFAIL;
	} else if (q.res->bogus) {
		/* Validation failed: the answer may be forged; never act on it. */
		set_why(why, whylen, "DNSSEC bogus: %s",
		        q.res->why_bogus ? q.res->why_bogus : "no reason");
		st = TLSRPT_LOOKUP_BOGUS;
	} else if (q.res->rcode == RCODE_NXDOMAIN) {
		set_why(why, whylen, "NXDOMAIN");
		st = TLSRPT_LOOKUP_NONE;
	} else if (q.res->rcode != RCODE_NOERROR) {
		set_why(why, whylen, "rcode %d", q.res->rcode);
		st = TLSRPT_LOOKUP_TEMPFAIL;
	} else if (!q.res->havedata || q.res->data == NULL || q.res->data[0] == NULL) {
		set_why(why, whylen, "no TXT record");
		st = TLSRPT_LOOKUP_NONE;
	} else {
		st = choose(q.res, rec, why, whylen);
	}
	ub_resolve_free(q.res);
	return st;
}

/* tlsrpt_lookup_status_name - see tlsrpt_dns.h */
const char *
tlsrpt_lookup_status_name(enum tlsrpt_lookup_status status)
{
	switch (status) {
	case TLSRPT_LOOKUP_FOUND:
		return "found";
	case TLSRPT_LOOKUP_NONE:
		return "none";
	case TLSRPT_LOOKUP_INVALID:
		return "invalid";
	case TLSRPT_LOOKUP_TEMPFAIL:
		return "tempfail";
	case TLSRPT_LOOKUP_BOGUS:
		return "bogus";
	}
	return "?";
}
