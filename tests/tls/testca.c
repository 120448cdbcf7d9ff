/*
 * testca.c - a throw-away certificate authority for tests (see testca.h).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tests/tls/testca.h"

#define DAY (24L * 3600L)

struct testca {
	char dir[TESTCA_PATH_MAX];
	char ca_file[TESTCA_PATH_MAX];
	int temporary;
	EVP_PKEY *key;
	X509 *cert;
	long serial;
};

/* fail_msg - print the OpenSSL reason for what failed; -1 */
static int
fail_msg(const char *what)
{
	unsigned long e = ERR_get_error();

	fprintf(stderr, "testca: %s: %s\n", what, e != 0 ? ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
	return -1;
}

/* add_ext - add one X509v3 extension in openssl.cnf syntax; 0 or -1 */
static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* make_cert - a certificate for key, subject CN cn, signed by (issuer, ikey) or by itself. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, long serial, long from, long to, X509 *issuer,
          EVP_PKEY *ikey, const char *san, int ca)
{
	X509 *cert;
	X509_NAME *name;

	if ((cert = X509_new()) == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), from) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert), to) == NULL ||
	    X509_set_pubkey(cert, key) != 1)
		goto fail;
	name = X509_get_subject_name(cert);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                               0) != 1)
		goto fail;
	if (X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1)
		goto fail;
	if (issuer == NULL)
		issuer = cert;
	if (add_ext(cert, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE") !=
	        0 ||
	    add_ext(cert, issuer, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") != 0)
		goto fail;
	if (ca && add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign") != 0)
		goto fail;
	if (!ca && add_ext(cert, issuer, NID_ext_key_usage, "serverAuth") != 0)
		goto fail;
	if (san != NULL && add_ext(cert, issuer, NID_subject_alt_name, san) != 0)
		goto fail;
	if (X509_sign(cert, ikey != NULL ? ikey : key, EVP_sha256()) == 0)
		goto fail;
	return cert;
fail:
	fail_msg(cn);
	X509_free(cert);
	return NULL;
}

/* write_file - write a key or a certificate as PEM; 0 or -1 */
static int
write_file(const char *path, EVP_PKEY *key, X509 *cert)
{
	FILE *f;
	int ok;

	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		return -1;
	}
	ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	                 : PEM_write_X509(f, cert);
	if (fclose(f) != 0 || ok != 1)
		return fail_msg(path);
	return 0;
}

/* path_join - dir/name+ext into a TESTCA_PATH_MAX buffer; 0 or -1 when cut */
static int
path_join(char *out, const char *dir, const char *name, const char *ext)
{
	int n = snprintf(out, TESTCA_PATH_MAX, "%s/%s%s", dir, name, ext);

	return n < 0 || n >= TESTCA_PATH_MAX ? -1 : 0;
}

/* testca_new - a fresh CA written to dir/ca.crt */
struct testca *
testca_new(const char *dir)
{
	static int counter;
	struct testca *ca;
	char cn[64];

	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return NULL;
	if (dir == NULL) {
		snprintf(ca->dir, sizeof(ca->dir), "/tmp/stsproxy-testca.XXXXXX");
		if (mkdtemp(ca->dir) == NULL) {
			perror("mkdtemp");
			free(ca);
			return NULL;
		}
		ca->temporary = 1;
	} else if ((size_t)snprintf(ca->dir, sizeof(ca->dir), "%s", dir) >= sizeof(ca->dir)) {
		free(ca);
		return NULL;
	}
	ca->serial = 1;
	snprintf(cn, sizeof(cn), "stsproxy test CA %d", ++counter);
	if ((ca->key = EVP_EC_gen("P-256")) == NULL) {
		fail_msg("CA key");
		goto fail;
	}
	if ((ca->cert =
	         make_cert(ca->key, cn, ca->serial++, -DAY, 30 * DAY, NULL, NULL, NULL, 1)) == NULL)
		goto fail;
	if (path_join(ca->ca_file, ca->dir, "ca", ".crt") != 0 ||
	    write_file(ca->ca_file, NULL, ca->cert) != 0)
		goto fail;
	return ca;
fail:
	testca_free(ca);
	return NULL;
}

/* rm_tree - remove the files of a flat directory, then the directory. */
static void
rm_tree(const char *dir)
{
	char path[TESTCA_PATH_MAX];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (path_join(path, dir, de->d_name, "") == 0)
				unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* testca_free - free the CA and remove its temporary directory */
void
testca_free(struct testca *ca)
{
	if (ca == NULL)
		return;
	if (ca->temporary)
		rm_tree(ca->dir);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

/* testca_dir - where the files go */
const char *
testca_dir(const struct testca *ca)
{
	return ca->dir;
}

/* testca_ca_file - the CA certificate file */
const char *
testca_ca_file(const struct testca *ca)
{
	return ca->ca_file;
}

/* issue - a leaf (or variant) with the given DNS names, signed by (icert, ikey) */
static int
issue(struct testca *ca, X509 *icert, EVP_PKEY *ikey, const char *name, const char *const *sans,
      size_t n, int flags, char *cert_path, char *key_path)
{
	char crt[TESTCA_PATH_MAX], keyf[TESTCA_PATH_MAX], san[2048];
	size_t used = 0;
	long from = -DAY, to = 30 * DAY;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int k, ret = -1;

	if (strchr(name, '/') != NULL || path_join(crt, ca->dir, name, ".crt") != 0 ||
	    path_join(keyf, ca->dir, name, ".key") != 0)
		return -1;
	san[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		k = snprintf(san + used, sizeof(san) - used, "%sDNS:%s", i > 0 ? "," : "", sans[i]);
		if (k < 0 || (size_t)k >= sizeof(san) - used)
			return -1;
		used += (size_t)k;
	}
	if (flags & TESTCA_EXPIRED) {
		from = -10 * DAY;
		to = -DAY;
	}
	if (flags & TESTCA_NOT_YET_VALID) {
		from = DAY;
		to = 10 * DAY;
	}
	if ((key = EVP_EC_gen("P-256")) == NULL) {
		fail_msg("leaf key");
		goto out;
	}
	if (flags & TESTCA_SELF_SIGNED)
		cert =
		    make_cert(key, name, ca->serial++, from, to, NULL, NULL, n > 0 ? san : NULL, 0);
	else
		cert = make_cert(key, name, ca->serial++, from, to, icert, ikey, n > 0 ? san : NULL,
		                 (flags & TESTCA_CA) != 0);
	if (cert == NULL)
		goto out;
	if (write_file(crt, NULL, cert) != 0 || write_file(keyf, key, NULL) != 0)
		goto out;
	if (cert_path != NULL)
		memcpy(cert_path, crt, sizeof(crt));
	if (key_path != NULL)
		memcpy(key_path, keyf, sizeof(keyf));
	ret = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ret;
}

/* testca_issue - a leaf (or variant) signed by the CA */
int
testca_issue(struct testca *ca, const char *name, const char *const *sans, size_t n, int flags,
             char *cert_path, char *key_path)
{
	return issue(ca, ca->cert, ca->key, name, sans, n, flags, cert_path, key_path);
}

/* testca_issue_by - a leaf (or variant) signed by an intermediate issued before */
int
testca_issue_by(struct testca *ca, const char *issuer, const char *name, const char *const *sans,
                size_t n, int flags, char *cert_path, char *key_path)
{
	char crt[TESTCA_PATH_MAX], keyf[TESTCA_PATH_MAX];
	EVP_PKEY *ikey = NULL;
	X509 *icert = NULL;
	FILE *f;
	int ret = -1;

	if (strchr(issuer, '/') != NULL || path_join(crt, ca->dir, issuer, ".crt") != 0 ||
	    path_join(keyf, ca->dir, issuer, ".key") != 0)
		return -1;
	if ((f = fopen(crt, "r")) != NULL) {
		icert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
	}
	if ((f = fopen(keyf, "r")) != NULL) {
		ikey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (icert != NULL && ikey != NULL)
		ret = issue(ca, icert, ikey, name, sans, n, flags, cert_path, key_path);
	else
		fail_msg(issuer);
	X509_free(icert);
	EVP_PKEY_free(ikey);
	return ret;
}
