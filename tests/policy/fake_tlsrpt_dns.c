/*
 * fake_tlsrpt_dns.c - policy/tlsrpt_dns.c replaced at link time: each
 * domain's _smtp._tls answer is a scripted status and record text, parsed
 * with the real policy/tlsrpt_record.c.
 *
 * Control functions (declared by the tests that link this file):
 *   fake_dns_reset()
 *   fake_dns_set(domain, status, record)   record NULL for none
 *   fake_dns_count(domain)                 lookups so far
 * An unscripted domain has no record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "policy/tlsrpt_dns.h"

#define FAKE_MAX 16

struct tlsrpt_resolver {
	int unused;
};

static struct {
	char domain[256];
	enum tlsrpt_lookup_status status;
	char record[1024];
	unsigned count;
} zone[FAKE_MAX];
static size_t n_zone;
static struct tlsrpt_resolver the_resolver;

void fake_dns_reset(void);
void fake_dns_set(const char *domain, enum tlsrpt_lookup_status status, const char *record);
unsigned fake_dns_count(const char *domain);

void
fake_dns_reset(void)
{
	n_zone = 0;
}

void
fake_dns_set(const char *domain, enum tlsrpt_lookup_status status, const char *record)
{
	if (n_zone == FAKE_MAX)
		return;
	sts_strlcpy(zone[n_zone].domain, domain, sizeof(zone[n_zone].domain));
	zone[n_zone].status = status;
	sts_strlcpy(zone[n_zone].record, record != NULL ? record : "", sizeof(zone[n_zone].record));
	zone[n_zone].count = 0;
	n_zone++;
}

unsigned
fake_dns_count(const char *domain)
{
	for (size_t i = 0; i < n_zone; i++)
		if (strcmp(zone[i].domain, domain) == 0)
			return zone[i].count;
	return 0;
}

struct tlsrpt_resolver *
tlsrpt_resolver_new(const struct sts_dns_params *p, char *err, size_t errlen)
{
	(void)p;
	(void)err;
	(void)errlen;
	return &the_resolver;
}

void
tlsrpt_resolver_free(struct tlsrpt_resolver *r)
{
	(void)r;
}

enum tlsrpt_lookup_status
tlsrpt_lookup(struct tlsrpt_resolver *r, const char *domain, struct tlsrpt_record *rec, char *why,
              size_t whylen)
{
	(void)r;
	memset(rec, 0, sizeof(*rec));
	for (size_t i = 0; i < n_zone; i++) {
		const char *recs[1] = {zone[i].record};
		size_t lens[1] = {strlen(zone[i].record)};

		if (strcmp(zone[i].domain, domain) != 0)
			continue;
		zone[i].count++;
		if (zone[i].status != TLSRPT_LOOKUP_FOUND) {
			snprintf(why, whylen, "scripted");
			return zone[i].status;
		}
		return tlsrpt_record_select(recs, lens, 1, rec, why, whylen) == 1
		           ? TLSRPT_LOOKUP_FOUND
		           : TLSRPT_LOOKUP_INVALID;
	}
	snprintf(why, whylen, "NXDOMAIN");
	return TLSRPT_LOOKUP_NONE;
}

const char *
tlsrpt_lookup_status_name(enum tlsrpt_lookup_status status)
{
	static const char *const names[] = {"found", "none", "invalid", "tempfail", "bogus"};

	return (unsigned)status < 5 ? names[status] : "none";
}
