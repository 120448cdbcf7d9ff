/*
 * shared_value.h - the values stsproxy keeps in the shared Redis, encoded
 * and decoded. Pure: no I/O, no allocation.
 *
 * What is read from Redis is untrusted input (anyone who can write the
 * database wrote it): the decoders check every field and every bound, and
 * point into the caller's buffer rather than copy.
 *
 * A shared policy (key <prefix>policy:<domain>):
 *
 *   v1\n
 *   id=<TXT id, RFC 8461 section 3.1: 1 to 32 letters and digits>\n
 *   fetched=<unix seconds>\n
 *   expires=<unix seconds, after fetched, at most a year later>\n
 *   \n
 *   <the policy file as fetched, 1 to 64 KiB>
 *
 * A policy change (channel <prefix>policy): "<domain> <id>".
 */
#ifndef POLICY_SHARED_VALUE_H
#define POLICY_SHARED_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/sts_policy.h"
#include "policy/sts_txt.h"

#define SHARED_VALUE_HEAD_MAX 128 /* the lines before the policy text */
#define SHARED_VALUE_MAX      (SHARED_VALUE_HEAD_MAX + STS_POLICY_MAX_BODY)

struct shared_policy {
	char id[STS_ID_MAX + 1];
	int64_t fetched_at;
	int64_t expires_at;
	const char *text; /* into the decoded buffer; not NUL-terminated */
	size_t text_len;
};

/*
 * shared_policy_encode - the value of p into buf; returns its length, or
 * 0 when it does not fit or a field is invalid (nothing to store).
 */
size_t shared_policy_encode(const struct shared_policy *p, char *buf, size_t len);

/*
 * shared_policy_decode - parse len octets of buf into *out (out->text
 * points into buf). 0, or -1 with a short reason in *why (a static
 * string) for anything that is not exactly the format above.
 */
int shared_policy_decode(const char *buf, size_t len, struct shared_policy *out, const char **why);

/*
 * shared_change_decode - a policy change message: domain (a valid host
 * name, lower-cased into domain[254]) and id. 0, or -1.
 */
int shared_change_decode(const char *buf, size_t len, char domain[254], char id[STS_ID_MAX + 1]);

/* shared_id_valid - RFC 8461 section 3.1: 1 to 32 ASCII letters and digits. */
int shared_id_valid(const char *id, size_t len);

/*
 * shared_server_decode - a server message "<address> <unix time>" (a
 * numeric IPv4 or IPv6 address): *family (AF_INET, AF_INET6), addr (4 or
 * 16 octets) and *seen. 0, or -1.
 */
int shared_server_decode(const char *buf, size_t len, int *family, uint8_t addr[16], int64_t *seen);

/*
 * shared_server_encode - the message for a server into buf (at least 64
 * octets); its length, or 0 for an unknown family.
 */
size_t shared_server_encode(int family, const uint8_t *addr, int64_t seen, char *buf, size_t len);

#endif
