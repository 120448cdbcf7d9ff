/*
 * testca.h - a throw-away certificate authority for tests, built in-process
 * with OpenSSL: a CA, and leaf certificates with chosen DNS names, written
 * as PEM files to a directory.
 *
 * Used by every test that needs real TLS handshakes (tls, policy, proxy).
 * Keys are EC P-256; signatures SHA-256. Nothing here is for production.
 */
#ifndef STS_TESTCA_H
#define STS_TESTCA_H

#include <stddef.h>

/* Longest path testca_issue() writes (buffers must hold this many bytes). */
#define TESTCA_PATH_MAX 4096

/* testca_issue() flags */
enum {
	TESTCA_EXPIRED = 1,       /* notAfter one day ago */
	TESTCA_NOT_YET_VALID = 2, /* notBefore one day ahead */
	TESTCA_SELF_SIGNED = 4,   /* signed by its own key, not by the CA */
	TESTCA_CA = 8,            /* an intermediate CA (basicConstraints CA:TRUE) */
};

struct testca;

/*
 * testca_new - a new CA (subject "CN=stsproxy test CA <n>") written to
 * dir/ca.crt. With dir NULL a temporary directory is created and removed,
 * with everything in it, by testca_free(). Returns NULL on failure (a
 * message goes to stderr).
 */
struct testca *testca_new(const char *dir);

/* testca_free - frees ca and removes its temporary directory; NULL is a no-op. */
void testca_free(struct testca *ca);

/* testca_dir - the directory the files are written to. */
const char *testca_dir(const struct testca *ca);

/* testca_ca_file - the CA certificate (PEM), for a trust store. */
const char *testca_ca_file(const struct testca *ca);

/*
 * testca_issue - a leaf certificate with subject CN name and the DNS names
 * sans[0..n) in its subjectAltName (n == 0: no subjectAltName at all, a
 * "CN-only" certificate), modified by flags. Writes dir/<name>.crt and
 * dir/<name>.key (name is also the file name, so it must be unique per CA
 * and hold no "/") and copies their paths into cert_path and key_path
 * (TESTCA_PATH_MAX bytes each; either may be NULL). Returns 0 or -1.
 */
int testca_issue(struct testca *ca, const char *name, const char *const *sans, size_t n, int flags,
                 char *cert_path, char *key_path);

/*
 * testca_issue_by - as testca_issue(), signed by issuer: the name of a
 * certificate issued before with TESTCA_CA (an intermediate CA), whose
 * chain is then leaf, issuer, CA. Returns 0 or -1.
 */
int testca_issue_by(struct testca *ca, const char *issuer, const char *name,
                    const char *const *sans, size_t n, int flags, char *cert_path, char *key_path);

#endif
