/*
 * sts_fetch.h - the HTTPS fetch of an MTA-STS policy file (RFC 8461
 * section 3.3): GET https://mta-sts.<domain>/.well-known/mta-sts.txt with
 * libcurl's multi interface, driven by our event loop.
 *
 * The connection goes only to addresses the caller resolved (through our
 * own resolver); libcurl never resolves names by itself. The body is
 * returned unparsed: sts_policy_parse() is the next step.
 *
 * All functions must be called from the thread that owns the loop, and the
 * callbacks run on it. One struct sts_fetch per loop.
 */
#ifndef STS_FETCH_H
#define STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "core/types.h"

#define STS_FETCH_MAX_BODY  65536 /* section 3.3: 64 KiB */
#define STS_FETCH_MAX_ADDRS 16    /* addresses tried per fetch; more are ignored */

struct sts_fetch;

struct sts_fetch_params {
	const char *ca_file; /* NULL: the system store */
	unsigned timeout_ms; /* the whole fetch; 0: 60000 */
	uint16_t port;       /* 0: 443; other values only for tests */
};

/*
 * The outcome. ok is 1 when the server answered 200 with an acceptable
 * Content-Type and a body within the limit; body and len are then set (body
 * is NUL-terminated after len bytes, but may hold NULs). On failure ok is 0,
 * result is STS_RESULT_STS_WEBPKI_INVALID for certificate problems and
 * STS_RESULT_STS_POLICY_FETCH_ERROR for everything else, and reason says
 * what went wrong. http_code is the status seen, 0 if none.
 */
struct sts_fetch_result {
	int ok;
	enum sts_result result;
	long http_code;
	const char *body;
	size_t len;
	char reason[160];
};

/* sts_fetch_cb - the fetch ended; r and the body are valid only during the call. */
typedef void sts_fetch_cb(void *arg, const struct sts_fetch_result *r);

/*
 * sts_fetch_new - a fetcher on loop. Returns NULL and writes a reason into
 * err on failure.
 */
struct sts_fetch *sts_fetch_new(struct loop *loop, const struct sts_fetch_params *p, char *err,
                                size_t errlen);

/*
 * sts_fetch_free - cancel every fetch in progress (no callback fires after)
 * and free f. NULL is a no-op. May be called from inside a fetch callback.
 */
void sts_fetch_free(struct sts_fetch *f);

/*
 * sts_fetch_start - fetch the policy of domain (A-labels, no trailing dot),
 * connecting only to addrs (port ignored; the first STS_FETCH_MAX_ADDRS).
 * Returns a non-zero id, or 0 on immediate failure (bad domain, no address,
 * no memory), in which case cb never runs. Otherwise cb runs exactly once,
 * later, from the loop (never inside this call), unless cancelled first.
 */
uint64_t sts_fetch_start(struct sts_fetch *f, const char *domain,
                         const struct sockaddr_storage *addrs, size_t n_addrs, sts_fetch_cb *cb,
                         void *arg);

/* sts_fetch_cancel - abandon a fetch; its callback never runs. 0 and unknown ids are ignored. */
void sts_fetch_cancel(struct sts_fetch *f, uint64_t id);

/*
 * sts_fetch_content_type_ok - true if a Content-Type header value is
 * acceptable for a policy: "text/plain", any case, parameters allowed
 * (section 3.3). A missing header (NULL) is accepted.
 */
bool sts_fetch_content_type_ok(const char *value);

#endif
