/*
 * tlsrpt_record.h - the TLS-RPT TXT record at _smtp._tls.<domain>
 * (RFC 8460 section 3): where a policy domain wants its daily reports.
 *
 * Pure functions, no I/O, no allocation: the resolver (policy/tlsrpt_dns.h)
 * hands over the TXT records of the name, each with its character-strings
 * already joined without spaces (policy/sts_rdata.h).
 *
 * Grammar (section 3):
 *   tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim      = *WSP ";" *WSP
 *   tlsrpt-version   = %s"v=TLSRPTv1"
 *   tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-uri       = URI (RFC 3986), with ",", "!" and ";" percent-encoded
 *   tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
 *                      (name as in RFC 8461: 1-32 ALPHA / DIGIT / "_-.";
 *                       value: 1*(%x21-3A / %x3C / %x3E-7E))
 *
 * What this parser decides, and why:
 * - Keys and the version are case-sensitive (%s). "RUA=" is an extension.
 * - rua is required. A repeated rua: the first one counts. A second "v="
 *   field makes the record invalid (it is what two records joined into one
 *   TXT look like).
 * - Of the URIs only "mailto:" and "https:" are used (section 3, "rua":
 *   two schemes are supported); a well-formed URI of another scheme, a
 *   mailto: whose address is not one plain addr-spec, an https: URI
 *   without a plain host name, or a URI longer than TLSRPT_URI_MAX is
 *   skipped and counted in n_skipped, not an error. A token that is not a
 *   URI at all ("rua=,", "rua=foo") makes the record invalid. A record
 *   with no usable URI left is invalid: there is nowhere to send.
 * - At most TLSRPT_RUA_MAX usable URIs are kept, in record order; later
 *   ones count in n_skipped. This bounds the reports one domain can ask for.
 * - RFC 8460 has no "!size" suffix (DMARC's rua has one): "!" must be
 *   percent-encoded in a URI, so a bare "!" makes the URI malformed.
 * - Non-ASCII octets, control characters and NUL make the record invalid.
 */
#ifndef TLSRPT_RECORD_H
#define TLSRPT_RECORD_H

#include <stddef.h>

#define TLSRPT_RUA_MAX  8   /* usable URIs kept per record */
#define TLSRPT_URI_MAX  512 /* longest URI used, in octets as published */
#define TLSRPT_ADDR_MAX 254 /* longest mailto: address (RFC 5321 section 4.5.3.1.3) */

enum tlsrpt_scheme {
	TLSRPT_MAILTO = 1, /* RFC 8460 section 5.3: the report by mail */
	TLSRPT_HTTPS,      /* RFC 8460 section 5.4: the report by HTTPS POST */
};

/* One report destination. */
struct tlsrpt_uri {
	enum tlsrpt_scheme scheme;
	/* The URI as published (scheme lower-cased, percent-encoding kept), NUL-terminated. */
	char uri[TLSRPT_URI_MAX + 1];
	/*
	 * mailto: the address, percent-decoded (RFC 6068), "local@domain" in
	 * printable ASCII without spaces, "<>()[],;:\\\"" or "@" in the local
	 * part, the domain a host name; any "?hfields" dropped (a DNS record
	 * never chooses our headers). https: the host name, lower case.
	 */
	char addr[TLSRPT_ADDR_MAX + 1];
};

struct tlsrpt_record {
	size_t n_rua;                          /* 1..TLSRPT_RUA_MAX when valid */
	struct tlsrpt_uri rua[TLSRPT_RUA_MAX]; /* in record order */
	size_t n_skipped;                      /* well-formed URIs not used (see above) */
};

enum tlsrpt_rec_status {
	TLSRPT_REC_VALID = 0,  /* a TLSRPTv1 record, well formed, out filled */
	TLSRPT_REC_NOT_TLSRPT, /* does not begin with "v=TLSRPTv1" *WSP ";": to be ignored */
	TLSRPT_REC_INVALID,    /* a TLSRPTv1 record that breaks the grammar: reason filled */
};

/*
 * tlsrpt_record_parse - classify and parse one record of len octets (not
 * NUL-terminated; a NUL is an error). Section 3: a record is a TLSRPTv1
 * record when it begins with "v=TLSRPTv1;" (white space before the ';'
 * is tolerated, as field-delim allows it); anything else is
 * TLSRPT_REC_NOT_TLSRPT. out is always cleared first and filled only on
 * TLSRPT_REC_VALID. On TLSRPT_REC_INVALID, reason (when not NULL and
 * reasonlen > 0) holds a NUL-terminated explanation, cut to fit.
 */
enum tlsrpt_rec_status tlsrpt_record_parse(const char *rec, size_t len, struct tlsrpt_record *out,
                                           char *reason, size_t reasonlen);

/*
 * tlsrpt_record_select - decide from all n TXT records of _smtp._tls.<domain>
 * (recs[i] of lens[i] octets). Section 3: records that are not TLSRPTv1
 * are discarded; unless exactly one remains, the domain MUST be taken as
 * not implementing TLS-RPT. Returns 1 when exactly one record is TLSRPTv1
 * and it is valid (out filled); 0 when none is TLSRPTv1; -1 when several
 * are, or the only one is invalid (reason filled). Both 0 and -1 mean: no
 * report for this domain. out is cleared unless 1 is returned.
 */
int tlsrpt_record_select(const char *const *recs, const size_t *lens, size_t n,
                         struct tlsrpt_record *out, char *reason, size_t reasonlen);

/* tlsrpt_scheme_name - "mailto" or "https"; never NULL ("?" when out of range). */
const char *tlsrpt_scheme_name(enum tlsrpt_scheme scheme);

#endif
