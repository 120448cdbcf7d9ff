/*
 * sts_check.c - "stsproxy check": the parsers of sts_txt.c, sts_policy.c
 * and sts_mx.c exposed to the command line, with the same verdicts the
 * proxy reaches, so an operator can see why a domain's policy is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sts_check.h"
#include "policy/sts_mx.h"
#include "policy/sts_policy.h"
#include "policy/sts_txt.h"

#define EXIT_USAGE 2
/* The normal form of the largest policy the parser accepts. */
#define JSON_MAX (STS_POLICY_MAX_MX * (STS_HOSTNAME_MAX + 3) + 128)

static const char usage_line[] =
    "usage: stsproxy check txt RECORD... | policy FILE | mx PATTERN HOST\n";

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
	else
		return usage();
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	return rc;
}
