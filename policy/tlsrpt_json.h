/*
 * tlsrpt_json.h - the TLS-RPT aggregate report as JSON text (RFC 8460
 * section 4), from a plain description of one report.
 *
 * Pure: no I/O, no clock, no randomness; the same description always gives
 * the same text (fields in the order of the RFC's example, compact).
 * Strings are copied in; the description is never kept.
 *
 * Field names and types follow section 4.4 exactly: counts are JSON
 * integers, "policy-string" and "mx-host" arrays of strings, times RFC 3339
 * UTC ("2026-12-03T00:00:00Z"). Optional fields (policy-string, mx-host,
 * and in a failure detail everything but result-type and
 * failed-session-count) are omitted when NULL or "" (or, for arrays,
 * empty): a transparent proxy does not always know them, and an absent
 * field says so more honestly than an empty one.
 */
#ifndef TLSRPT_JSON_H
#define TLSRPT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

#define TLSRPT_JSON_MAX      (1024 * 1024) /* longest report text built */
#define TLSRPT_REPORT_ID_MAX 600           /* report id, with the NUL */
#define TLSRPT_UNIQUE_MAX    32            /* the optional unique part of ids and names */
#define TLSRPT_POLICIES_MAX  64            /* policies per report */
#define TLSRPT_STRINGS_MAX   256           /* policy-string and mx-host entries per policy */
#define TLSRPT_FAILURES_MAX  1024          /* failure-details per policy */

/* Section 4.4 "failure-details": one kind of failure at one receiving MX. */
struct tlsrpt_failure {
	enum sts_result result;             /* "result-type"; not STS_RESULT_OK */
	const char *sending_mta_ip;         /* "sending-mta-ip"; optional */
	const char *receiving_mx_hostname;  /* "receiving-mx-hostname"; optional */
	const char *receiving_mx_helo;      /* "receiving-mx-helo"; optional */
	const char *receiving_ip;           /* "receiving-ip"; optional */
	uint64_t failed_session_count;      /* "failed-session-count"; <= INT64_MAX */
	const char *additional_information; /* "additional-information" (a URI); optional */
	const char *failure_reason_code;    /* "failure-reason-code"; optional */
};

/* Section 4.4 "policies": one policy applied to one policy domain, and its results. */
struct tlsrpt_policy {
	enum sts_policy_type type; /* "policy-type": "sts", "tlsa" or "no-policy-found" */
	/* "policy-string": sts: the policy file's lines; tlsa: the TLSA records
	   in presentation form; none for no-policy-found. Optional. */
	const char *const *policy_strings;
	size_t n_policy_strings;
	const char *domain; /* "policy-domain"; required */
	/* "mx-host": sts: the policy's mx patterns ("*.mail.example"); tlsa:
	   the MX host names. Optional. */
	const char *const *mx_hosts;
	size_t n_mx_hosts;
	uint64_t success;                      /* "total-successful-session-count"; <= INT64_MAX */
	uint64_t failure;                      /* "total-failure-session-count"; <= INT64_MAX */
	const struct tlsrpt_failure *failures; /* "failure-details"; always written, maybe [] */
	size_t n_failures;
};

/* One report (section 4.1 metadata, 4.2 time frame, 4.4 policies). */
struct tlsrpt_doc {
	const char *organization_name; /* "organization-name"; required */
	int64_t begin;                 /* "start-datetime", unix seconds, UTC */
	int64_t end;                   /* "end-datetime", unix seconds, inclusive; >= begin */
	const char *contact_info;      /* "contact-info"; required (an address or a URI) */
	const char *report_id;         /* "report-id"; required, see tlsrpt_report_id() */
	const struct tlsrpt_policy *policies; /* 1..TLSRPT_POLICIES_MAX */
	size_t n_policies;
};

/*
 * tlsrpt_json_build - the report text of doc. On success returns 0 and
 * sets *out to a NUL-terminated malloc'ed string of *outlen octets (the
 * caller frees it with free()). Returns -1 with err filled (when not NULL
 * and errlen > 0) and *out NULL when doc breaks the rules above: a
 * required field missing, a string not valid UTF-8 or holding a control
 * character, a count above INT64_MAX, STS_RESULT_OK or an out-of-range
 * enum, end before begin, a bound exceeded, a text longer than
 * TLSRPT_JSON_MAX, or no memory.
 */
int tlsrpt_json_build(const struct tlsrpt_doc *doc, char **out, size_t *outlen, char *err,
                      size_t errlen);

/*
 * tlsrpt_report_id - the report id of the report on policy_domain for the
 * UTC day that contains begin, by submitter (a domain):
 *     "YYYYMMDD.<policy_domain>@<submitter>"            unique NULL or ""
 *     "YYYYMMDD.<unique>.<policy_domain>@<submitter>"   otherwise
 * Section 4.1 asks for a unique identifier and leaves the scheme to the
 * author. One report per policy domain per day per submitter makes this
 * unique; being derived rather than random, a retried delivery of the same
 * report carries the same id, so a receiver can drop the duplicate.
 * unique (1..TLSRPT_UNIQUE_MAX letters or digits) separates several
 * proxies that report under one submitter. The result is a valid
 * RFC 5322 msg-id body (dot-atom "@" dot-atom), as the mail subject of
 * section 5.3 puts it inside "<>". Returns its length, or -1 when a
 * domain is not a host name, unique is not letters and digits, or out
 * (TLSRPT_REPORT_ID_MAX is always enough) is too small.
 */
int tlsrpt_report_id(char *out, size_t outlen, int64_t begin, const char *policy_domain,
                     const char *submitter, const char *unique);

/*
 * tlsrpt_time - t (unix seconds) as RFC 3339 UTC, "2026-12-03T00:00:00Z",
 * into out (at least 21 bytes). Returns 0, or -1 when t is outside years
 * 0000-9999 or out is too small.
 */
int tlsrpt_time(char *out, size_t outlen, int64_t t);

#endif
