/*
 * report_value.h - one gateway's TLS-RPT row (report_store.h) as the other
 * gateways read it from the shared Redis (policy/tlsrpt_shared.h): a hash
 * per UTC day, one field per (gateway, policy domain, policy type), its
 * value the gateway's totals of that row.
 *
 *   key    <prefix>rpt:<YYYYMMDD>
 *   field  <gateway id>|<policy domain>|<policy type name>
 *   value  {"v":1,"id":"<policy id>","mode":"enforce","success":N,"failure":N,
 *           "results":{"<result type>":N,...},"detail_other":N,
 *           "policy":["<policy string>",...],"mx":["<pattern>",...],
 *           "details":[["<result type>","<sending ip>","<mx host>","<mx helo>",
 *                       "<receiving ip>",N],...],"seen":T,"policy_at":T}
 *
 * A value holds totals, never increments: writing it again changes
 * nothing, so a push that is retried (its reply lost) never counts twice.
 *
 * What is read back is untrusted (anyone able to write the database wrote
 * it): the decoder takes exactly this shape, every count within
 * REPORT_VALUE_COUNT_MAX, failures equal to the sum of the result types,
 * details within their result type's count, at most the store's bounds of
 * details and policy strings, host names and addresses of valid syntax.
 */
#ifndef POLICY_REPORT_VALUE_H
#define POLICY_REPORT_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/report_store.h"

#define REPORT_VALUE_MAX       (256 * 1024) /* longest value accepted */
#define REPORT_VALUE_FIELD_MAX (REPORT_STORE_GATEWAY_LEN + STS_REPORT_DOMAIN_LEN + 32)
#define REPORT_VALUE_COUNT_MAX (UINT64_C(1) << 40) /* sessions of one row a day */
#define REPORT_VALUE_TIME_MAX  (INT64_C(1) << 40)  /* unix seconds */

struct report_value;

/*
 * report_value_field - "<gateway>|<domain>|<type>" of row into buf; its
 * length, or 0 when it does not fit.
 */
size_t report_value_field(const struct report_store_row *row, char *buf, size_t len);

/*
 * report_value_encode - the value of row, malloc'ed into *out (not
 * NUL-terminated, *len octets; free() it). 0, or -1 when a field is out
 * of the decoder's bounds (the row would be refused) or without memory.
 */
int report_value_encode(const struct report_store_row *row, char **out, size_t *len);

/*
 * report_value_decode - field and value (flen and vlen octets, not
 * NUL-terminated) of the hash of day (UTC midnight) as a row. Returns a
 * new object (free with report_value_free()), or NULL with a short reason
 * in *why (a static string) for anything that is not exactly the format
 * above.
 */
struct report_value *report_value_decode(int64_t day, const char *field, size_t flen,
                                         const char *value, size_t vlen, const char **why);

/* report_value_row - the decoded row, valid until report_value_free(). */
const struct report_store_row *report_value_row(const struct report_value *v);

/* report_value_free - NULL is a no-op. */
void report_value_free(struct report_value *v);

#endif
