/*
 * types.h - plain types shared by every module.
 *
 * Only enums and their name tables live here: the policy modes of RFC 8461
 * and the TLS-RPT result types of RFC 8460 section 4.3, used in events from
 * day one so that reports can be produced from the same vocabulary later.
 */
#ifndef STS_TYPES_H
#define STS_TYPES_H

/* RFC 8461 section 3.2: the "mode" field of a policy. */
enum sts_mode {
	STS_MODE_NONE = 0,
	STS_MODE_TESTING,
	STS_MODE_ENFORCE,
};

/* RFC 8460 section 4.3 result types (plus STS_RESULT_OK for a pass). */
enum sts_result {
	STS_RESULT_OK = 0,
	STS_RESULT_STARTTLS_NOT_SUPPORTED,
	STS_RESULT_CERT_HOST_MISMATCH,
	STS_RESULT_CERT_EXPIRED,
	STS_RESULT_CERT_NOT_TRUSTED,
	STS_RESULT_VALIDATION_FAILURE,
	STS_RESULT_TLSA_INVALID,
	STS_RESULT_DNSSEC_INVALID,
	STS_RESULT_DANE_REQUIRED,
	STS_RESULT_STS_POLICY_FETCH_ERROR,
	STS_RESULT_STS_POLICY_INVALID,
	STS_RESULT_STS_WEBPKI_INVALID,
	STS_RESULT_MAX
};

/* sts_mode_name - "none", "testing" or "enforce"; never NULL. */
const char *sts_mode_name(enum sts_mode mode);

/* sts_mode_parse - 0 and *out set on a known name, -1 otherwise (case-sensitive). */
int sts_mode_parse(const char *name, enum sts_mode *out);

/* sts_result_name - the TLS-RPT name ("ok" for STS_RESULT_OK); never NULL. */
const char *sts_result_name(enum sts_result result);

#endif
