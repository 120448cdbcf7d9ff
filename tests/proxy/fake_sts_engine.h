/*
 * fake_sts_engine.h - scripted answers for tests of the session: the same
 * symbols as the policy engine (policy/sts_engine.h), replaced at link time.
 *
 * A test lists rules per domain; an unlisted domain has no policy.
 * Asynchronous rules answer from a zero-millisecond loop timer, never from
 * inside sts_engine_lookup(). sts_decide() here passes a session with a
 * policy when TLS completed and the certificate is valid (tls_check_names)
 * for one of the rule's MX names; a plaintext session fails with
 * starttls-not-supported. It is a weak symbol: a test that links
 * policy/sts_decide.c judges the scripted answers (DANE states included)
 * with the real one.
 */
#ifndef STS_FAKE_STS_ENGINE_H
#define STS_FAKE_STS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/sts_engine.h"

struct fake_sts_rule {
	const char *domain;
	enum sts_status status;
	enum sts_mode mode;
	const char *id;
	const char *mx; /* the one candidate MX name */
	bool async;     /* answered by sts_engine_lookup(), not _now() */
};

/* fake_sts_set - use rules[0..n) from now on; the array must outlive its use. */
void fake_sts_set(const struct fake_sts_rule *rules, size_t n);

/*
 * fake_sts_set_delay - asynchronous answers come ms milliseconds after
 * their lookup instead of at once, until the next fake_sts_set().
 */
void fake_sts_set_delay(unsigned ms);

/* fake_sts_async_count - asynchronous lookups started since the last fake_sts_set(). */
unsigned fake_sts_async_count(void);

/*
 * fake_sts_set_recheck - answer sts_engine_recheck() from rules[0..n)
 * (the policy the domain has now) until the next fake_sts_set(); without
 * it, rechecks answer from the main table. Recheck answers are always
 * asynchronous and have rechecked set.
 */
void fake_sts_set_recheck(const struct fake_sts_rule *rules, size_t n);

/* fake_sts_recheck_count - rechecks started since the last fake_sts_set(). */
unsigned fake_sts_recheck_count(void);

/*
 * fake_sts_set_dane - answers for domain carry DANE mode mode and state st
 * (RFC 7672; not owned, must outlive its use), until the next
 * fake_sts_set(). Without it an answer's DANE mode is off.
 */
void fake_sts_set_dane(const char *domain, enum sts_dane_mode mode,
                       const struct sts_dane_state *st);

#endif
