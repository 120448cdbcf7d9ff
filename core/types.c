/*
 * types.c - name tables for the shared enums.
 */
#include <string.h>

#include "core/types.h"

static const char *const mode_names[] = {
    [STS_MODE_NONE] = "none",
    [STS_MODE_TESTING] = "testing",
    [STS_MODE_ENFORCE] = "enforce",
};

static const char *const result_names[STS_RESULT_MAX] = {
    [STS_RESULT_OK] = "ok",
    [STS_RESULT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
    [STS_RESULT_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
    [STS_RESULT_CERT_EXPIRED] = "certificate-expired",
    [STS_RESULT_CERT_NOT_TRUSTED] = "certificate-not-trusted",
    [STS_RESULT_VALIDATION_FAILURE] = "validation-failure",
    [STS_RESULT_TLSA_INVALID] = "tlsa-invalid",
    [STS_RESULT_DNSSEC_INVALID] = "dnssec-invalid",
    [STS_RESULT_DANE_REQUIRED] = "dane-required",
    [STS_RESULT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
    [STS_RESULT_STS_POLICY_INVALID] = "sts-policy-invalid",
    [STS_RESULT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *
sts_mode_name(enum sts_mode mode)
{
	if ((unsigned)mode >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "none";
	return mode_names[mode];
}

int
sts_mode_parse(const char *name, enum sts_mode *out)
{
	for (unsigned i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(name, mode_names[i]) == 0) {
			*out = (enum sts_mode)i;
			return 0;
		}
	}
	return -1;
}

const char *
sts_dane_mode_name(enum sts_dane_mode mode)
{
	switch (mode) {
	case STS_DANE_MODE_OFF:
		return "off";
	case STS_DANE_MODE_ONLY:
		return "only";
	case STS_DANE_MODE_ON:
	default:
		return "on";
	}
}

const char *
sts_policy_type_name(enum sts_policy_type type)
{
	switch (type) {
	case STS_PTYPE_STS:
		return "sts";
	case STS_PTYPE_TLSA:
		return "tlsa";
	case STS_PTYPE_NONE:
	default:
		return "no-policy-found";
	}
}

const char *
sts_result_name(enum sts_result result)
{
	if ((unsigned)result >= STS_RESULT_MAX)
		return "validation-failure";
	return result_names[result];
}
