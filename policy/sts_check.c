/*
 * sts_check.c - "stsproxy check": the parsers of sts_txt.c, sts_policy.c
 * and sts_mx.c, and the TLSA match of tls/tls_dane.c, exposed to the
 * command line, with the same verdicts the proxy reaches, so an operator
 * can see why a domain's policy is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "policy/sts_check.h"
#include "policy/sts_mx.h"
#include "policy/sts_policy.h"
#include "policy/sts_tlsa.h"
#include "policy/sts_txt.h"

#define EXIT_USAGE 2
/* The normal form of the largest policy the parser accepts. */
#define JSON_MAX (STS_POLICY_MAX_MX * (STS_HOSTNAME_MAX + 3) + 128)

static const char usage_line[] = "usage: stsproxy check txt RECORD... | policy FILE | "
                                 "mx PATTERN HOST | tlsa RECORD CERTFILE [HOST]\n";

static int
usage(void)
{
	fputs(usage_line, stderr);
	return EXIT_USAGE;
}

static int
check_txt(int n, char **recs)
{
	char id[STS_ID_MAX + 1], reason[160];

	if (n == 1) {
		switch (sts_txt_parse(recs[0], strlen(recs[0]), id, reason, sizeof(reason))) {
		case STS_TXT_VALID:
			printf("id=%s\n", id);
			return 0;
		case STS_TXT_NOT_STS:
			fprintf(stderr,
			        "invalid: not an STSv1 record (must start with \"v=STSv1\")\n");
			return 1;
		case STS_TXT_INVALID:
		default:
			fprintf(stderr, "invalid: %s\n", reason);
			return 1;
		}
	}

	const char **ptrs = calloc((size_t)n, sizeof(*ptrs));
	size_t *lens = calloc((size_t)n, sizeof(*lens));
	int rc = 1;

	if (ptrs == NULL || lens == NULL) {
		fprintf(stderr, "check: out of memory\n");
		goto done;
	}
	for (int i = 0; i < n; i++) {
		ptrs[i] = recs[i];
		lens[i] = strlen(recs[i]);
	}
	switch (sts_txt_select(ptrs, lens, (size_t)n, id, reason, sizeof(reason))) {
	case 1:
		printf("id=%s\n", id);
		rc = 0;
		break;
	case 0:
		fprintf(stderr, "invalid: no STSv1 record\n");
		break;
	default:
		fprintf(stderr, "invalid: %s\n", reason);
		break;
	}
done:
	free(ptrs);
	free(lens);
	return rc;
}

/* Read at most STS_POLICY_MAX_BODY + 1 octets, so an oversized file is seen as such. */
static char *
read_policy(FILE *f, size_t *len)
{
	size_t cap = STS_POLICY_MAX_BODY + 1, n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	while (n < cap) {
		size_t r = fread(buf + n, 1, cap - n, f);

		if (r == 0)
			break;
		n += r;
	}
	if (ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static int
check_policy(const char *path)
{
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	struct sts_policy p = {0};
	struct sts_policy_error err;
	FILE *f = stdin;
	char *text = NULL, *json = NULL;
	size_t len = 0;
	int rc = 1;

	if (strcmp(path, "-") != 0)
		f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", name, strerror(errno));
		return 1;
	}
	text = read_policy(f, &len);
	if (text == NULL) {
		fprintf(stderr, "%s: %s\n", name, strerror(errno ? errno : EIO));
		goto done;
	}
	if (sts_policy_parse(text, len, &p, &err) != 0) {
		if (err.line > 0)
			fprintf(stderr, "%s:%u: %s\n", name, err.line, err.reason);
		else
			fprintf(stderr, "%s: %s\n", name, err.reason);
		goto done;
	}
	json = malloc(JSON_MAX);
	if (json == NULL || sts_policy_json(&p, json, JSON_MAX) < 0) {
		fprintf(stderr, "%s: cannot format the policy\n", name);
		goto done;
	}
	printf("%s\n", json);
	rc = 0;
done:
	if (f != stdin)
		fclose(f);
	sts_policy_clear(&p);
	free(text);
	free(json);
	return rc;
}

static int
check_mx(const char *pattern, const char *host)
{
	if (!sts_mx_pattern_valid(pattern)) {
		fprintf(stderr, "invalid pattern: \"%s\"\n", pattern);
		return EXIT_USAGE;
	}
	if (sts_mx_match(pattern, host)) {
		printf("match\n");
		return 0;
	}
	printf("no match\n");
	return 1;
}

/* read_chain - the PEM certificates of path, in order; NULL with a line on stderr. */
static STACK_OF(X509) * read_chain(const char *path)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL || sk == NULL) {
		fprintf(stderr, "%s: %s\n", path, f == NULL ? strerror(errno) : "out of memory");
		goto fail;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			goto fail;
		}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		fprintf(stderr, "%s: no PEM certificate\n", path);
		goto fail;
	}
	fclose(f);
	return sk;
fail:
	if (f != NULL)
		fclose(f);
	sk_X509_pop_free(sk, X509_free);
	return NULL;
}

/*
 * check_tlsa - RFC 7672 section 3: does record match the chain in path
 * (the server's certificate first), as the proxy would judge it? A DANE-TA
 * record needs host, the name the certificate must be valid for.
 */
static int
check_tlsa(const char *record, const char *path, const char *host)
{
	static uint8_t data[STS_TLSA_DATA_MAX];
	struct tls_facts f = {0};
	struct tls_dane_match m;
	struct tls_tlsa rr;
	STACK_OF(X509) * chain;
	const char *why = NULL;
	char reason[512];
	enum sts_result r;

	if (sts_tlsa_text(record, data, sizeof(data), &rr, reason, sizeof(reason)) < 0) {
		fprintf(stderr, "invalid record: %s\n", reason);
		return EXIT_USAGE;
	}
	if (!tls_tlsa_usable(&rr, &why)) {
		printf("unusable: %s\n", why);
		return 1;
	}
	if (rr.usage == TLS_TLSA_DANE_TA && host == NULL) {
		fprintf(stderr, "a DANE-TA record needs HOST: the certificate is checked for it\n");
		return EXIT_USAGE;
	}
	if ((chain = read_chain(path)) == NULL)
		return 1;
	/* The facts of a completed handshake that presented this chain. */
	f.starttls_offered = f.handshake_done = true;
	tls_facts_set_cert(&f, sk_X509_value(chain, 0), chain);
	sk_X509_pop_free(chain, X509_free);
	if (f.n_digests == 0) {
		fprintf(stderr, "%s: cannot read the certificates\n", path);
		tls_facts_clear(&f);
		return 1;
	}
	r = tls_dane_check(&f, &rr, 1, &host, host != NULL ? 1 : 0, &m, reason, sizeof(reason));
	tls_facts_clear(&f);
	if (r == STS_RESULT_OK) {
		printf("match: %s\n", reason);
		return 0;
	}
	printf("no match: %s: %s\n", sts_result_name(r), reason);
	return 1;
}

/* sts_check_main - see sts_check.h */
int
sts_check_main(int argc, char **argv)
{
	int rc;

	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_line, stdout);
		return 0;
	}
	if (strcmp(argv[1], "txt") == 0 && argc >= 3)
		rc = check_txt(argc - 2, argv + 2);
	else if (strcmp(argv[1], "policy") == 0 && argc == 3)
		rc = check_policy(argv[2]);
	else if (strcmp(argv[1], "mx") == 0 && argc == 4)
		rc = check_mx(argv[2], argv[3]);
	else if (strcmp(argv[1], "tlsa") == 0 && (argc == 4 || argc == 5))
		rc = check_tlsa(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	else
		return usage();
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	return rc;
}
