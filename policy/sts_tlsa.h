/*
 * sts_tlsa.h - TLSA records (RFC 6698 section 2) as the resolver hands
 * them over and as operators write them: pure parsers and a printer, no
 * allocation. What a record means for SMTP (usable or not, and matching)
 * is tls/tls_dane.h's.
 */
#ifndef STS_TLSA_H
#define STS_TLSA_H

#include <stddef.h>
#include <stdint.h>

#include "tls/tls_dane.h"

/* The longest association data kept: a full certificate of a few KiB. */
#define STS_TLSA_DATA_MAX 4096

/*
 * sts_tlsa_rdata - parse TLSA rdata (wire format, RFC 6698 section 2.1):
 * usage, selector and matching type octets, then the association data.
 * out->data points into rd. Returns 0, or -1 when shorter than 4 octets or
 * the data is longer than STS_TLSA_DATA_MAX. Values are not judged here.
 */
int sts_tlsa_rdata(const uint8_t *rd, size_t len, struct tls_tlsa *out);

/*
 * sts_tlsa_text - parse the presentation form "3 1 1 0123abcd..." (RFC 6698
 * section 2.2: three decimal fields 0-255, then hexadecimal that may be
 * split by white space) into out, the data decoded into buf (buflen
 * octets). Returns 0, or -1 with a reason in why (whylen > 0).
 */
int sts_tlsa_text(const char *s, uint8_t *buf, size_t buflen, struct tls_tlsa *out, char *why,
                  size_t whylen);

/*
 * sts_tlsa_format - "3 1 1 0123abcd..." into out (always terminated); data
 * longer than fits is cut and ends in "...". Returns the length written.
 */
size_t sts_tlsa_format(const struct tls_tlsa *rr, char *out, size_t outlen);

#endif
