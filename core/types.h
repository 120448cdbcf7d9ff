/*
 * types.h - plain types shared by every module.
 *
 * Only enums and their name tables live here: the policy modes of RFC 8461,
 * the DANE modes of a domain, and the TLS-RPT policy and result types of
 * RFC 8460 sections 4.3 and 4.4, used in events from day one so that
 * reports can be produced from the same vocabulary later.
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

/* RFC 7672 for one destination domain, as the operator chose it. */
enum sts_dane_mode {
	STS_DANE_MODE_ON = 0, /* opportunistic DANE: where DNSSEC says so */
	STS_DANE_MODE_OFF,    /* never: MTA-STS alone */
	STS_DANE_MODE_ONLY,   /* mandatory: no usable TLSA records, no delivery */
};

/* RFC 8460 section 4.4 "policy-type": which policy judged a delivery. */
enum sts_policy_type {
	STS_PTYPE_NONE = 0, /* no policy: "no-policy-found" */
	STS_PTYPE_STS,      /* MTA-STS: "sts" */
	STS_PTYPE_TLSA,     /* DANE: "tlsa" */
	STS_PTYPE_MAX
};

/* sts_mode_name - "none", "testing" or "enforce"; never NULL. */
const char *sts_mode_name(enum sts_mode mode);

/* sts_mode_parse - 0 and *out set on a known name, -1 otherwise (case-sensitive). */
int sts_mode_parse(const char *name, enum sts_mode *out);

/* sts_dane_mode_name - "on", "off" or "only"; never NULL. */
const char *sts_dane_mode_name(enum sts_dane_mode mode);

/* sts_policy_type_name - "no-policy-found", "sts" or "tlsa"; never NULL. */
const char *sts_policy_type_name(enum sts_policy_type type);

/* sts_result_name - the TLS-RPT name ("ok" for STS_RESULT_OK); never NULL. */
const char *sts_result_name(enum sts_result result);

#endif
