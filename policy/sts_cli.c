/*
 * sts_cli.c - "stsproxy policy DOMAIN": one full policy lookup through the
 * same engine, resolver, fetcher and persistent cache the daemon uses, for
 * an operator asking "what would stsproxy enforce for this domain, and
 * why?": the MTA-STS policy and the DANE state of each MX host. The
 * engine's trace hook shows what was seen on the wire.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/conf.h"
#include "core/dnsprobe.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "policy/sts_cache.h"
#include "policy/sts_cli.h"
#include "policy/sts_engine.h"
#include "policy/sts_tlsa.h"

#define DEFAULT_CONF      "/etc/stsproxy/stsproxy.conf"
#define DEFAULT_STATE_DIR "/var/lib/stsproxy"
#define TRACE_MAX         64

struct cli {
	bool json;
	bool done;
	int rc;
	json_t *txt, *mx; /* strings seen, in order */
	char txt_status[32];
	char mx_status[32];
	char fetch[256];
	char txt_dnssec[16]; /* "secure", "insecure", "bogus"; "" when not looked up */
	char mx_dnssec[16];
	const struct conf *conf;
	char resolver[512]; /* "resolver ADDR unreachable (...)" when DNS failed because of it */
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: stsproxy policy [-c FILE] [--json] DOMAIN\n");
}

static void
on_trace(void *arg, const char *domain, const char *what, const char *detail)
{
	struct cli *c = arg;

	(void)domain;
	if (strcmp(what, "txt") == 0 && json_array_size(c->txt) < TRACE_MAX)
		json_array_append_new(c->txt, json_string(detail));
	else if (strcmp(what, "txt-status") == 0)
		sts_strlcpy(c->txt_status, detail, sizeof(c->txt_status));
	else if (strcmp(what, "mx") == 0 && json_array_size(c->mx) < TRACE_MAX)
		json_array_append_new(c->mx, json_string(detail));
	else if (strcmp(what, "mx-status") == 0)
		sts_strlcpy(c->mx_status, detail, sizeof(c->mx_status));
	else if (strcmp(what, "fetch") == 0)
		sts_strlcpy(c->fetch, detail, sizeof(c->fetch));
	else if (strcmp(what, "txt-dnssec") == 0)
		sts_strlcpy(c->txt_dnssec, detail, sizeof(c->txt_dnssec));
	else if (strcmp(what, "mx-dnssec") == 0)
		sts_strlcpy(c->mx_dnssec, detail, sizeof(c->mx_dnssec));
}

/*
 * dnssec_ok - were the answers an attacker on the DNS path would forge to
 * strip or redirect the policy (the TXT record and, when looked up, the MX
 * set) DNSSEC-validated, with no bogus answer anywhere on the way?
 */
static bool
dnssec_ok(const struct cli *c, const struct sts_answer *a)
{
	return strcmp(c->txt_dnssec, "secure") == 0 &&
	       (c->mx_dnssec[0] == '\0' || strcmp(c->mx_dnssec, "secure") == 0) &&
	       a->problem != STS_RESULT_DNSSEC_INVALID;
}

static void
rfc3339(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		sts_strlcpy(buf, "", len);
}

static const char *
status_name(enum sts_status s)
{
	return s == STS_POLICY ? "policy" : s == STS_DEFER ? "defer" : "none";
}

/* dane_applies - DANE binds at least one MX host: TLSA records, usable or not. */
static bool
dane_applies(const struct sts_answer *a)
{
	const struct sts_dane_state *st = a->dane;

	for (size_t i = 0; st != NULL && st->status == STS_DANE_HOSTS && i < st->n_host; i++)
		if (st->host[i].state == STS_DANE_HOST_USABLE ||
		    st->host[i].state == STS_DANE_HOST_UNUSABLE)
			return true;
	return false;
}

/* dane_json - the DANE state (RFC 7672) of the domain's MX hosts; null when DANE is off. */
static json_t *
dane_json(const struct sts_answer *a)
{
	const struct sts_dane_state *st = a->dane;
	json_t *o, *hosts;
	char buf[STS_TLSA_DATA_MAX * 2 + 16];

	if (a->dane_mode == STS_DANE_MODE_OFF)
		return json_null();
	o = json_object();
	hosts = json_array();
	json_object_set_new(o, "mode", json_string(sts_dane_mode_name(a->dane_mode)));
	json_object_set_new(
	    o, "status", st != NULL ? json_string(sts_dane_status_name(st->status)) : json_null());
	json_object_set_new(o, "mx_secure", json_boolean(st != NULL && st->mx_secure));
	json_object_set_new(
	    o, "reason",
	    st != NULL && st->why[0] != '\0' &&
	            (st->status == STS_DANE_BOGUS || st->status == STS_DANE_TEMPFAIL)
	        ? json_string(st->why)
	        : json_null());
	for (size_t i = 0; st != NULL && i < st->n_host; i++) {
		const struct sts_dane_host *h = &st->host[i];
		json_t *ho = json_object(), *addrs = json_array(), *recs = json_array();

		json_object_set_new(ho, "name", json_string(h->name));
		json_object_set_new(ho, "base", json_string(h->base));
		json_object_set_new(ho, "state", json_string(sts_dane_host_state_name(h->state)));
		for (size_t k = 0; k < h->n_addr; k++) {
			sts_addr_text((const struct sockaddr *)&h->addr[k], buf, sizeof(buf), NULL,
			              0);
			json_array_append_new(addrs, json_string(buf));
		}
		for (size_t k = 0; k < h->n_tlsa; k++) {
			sts_tlsa_format(&h->tlsa[k], buf, sizeof(buf));
			json_array_append_new(recs, json_string(buf));
		}
		json_object_set_new(ho, "addresses", addrs);
		json_object_set_new(ho, "tlsa", recs);
		json_object_set_new(ho, "problem",
		                    h->problem != STS_RESULT_OK
		                        ? json_string(sts_result_name(h->problem))
		                        : json_null());
		json_object_set_new(ho, "reason",
		                    h->why[0] != '\0' ? json_string(h->why) : json_null());
		json_array_append_new(hosts, ho);
	}
	json_object_set_new(o, "hosts", hosts);
	return o;
}

/* print_dane - the DANE state as lines of text. */
static void
print_dane(const struct sts_answer *a)
{
	const struct sts_dane_state *st = a->dane;
	char buf[160];

	if (a->dane_mode == STS_DANE_MODE_OFF) {
		printf("dane: off\n");
		return;
	}
	if (st == NULL) {
		printf("dane: %s, no DNSSEC validation (dns.trust_anchor_file)\n",
		       sts_dane_mode_name(a->dane_mode));
		return;
	}
	printf("dane: %s, %s, MX RRset %s\n", sts_dane_mode_name(a->dane_mode),
	       sts_dane_status_name(st->status), st->mx_secure ? "secure" : "insecure");
	if (st->status == STS_DANE_BOGUS || st->status == STS_DANE_TEMPFAIL)
		printf("dane-problem: %s\n", st->why);
	for (size_t i = 0; i < st->n_host; i++) {
		const struct sts_dane_host *h = &st->host[i];

		printf("dane-mx: %s %s", h->name, sts_dane_host_state_name(h->state));
		if (strcmp(h->base, h->name) != 0)
			printf(" base=%s", h->base);
		for (size_t k = 0; k < h->n_addr; k++) {
			sts_addr_text((const struct sockaddr *)&h->addr[k], buf, sizeof(buf), NULL,
			              0);
			printf(" %s", buf);
		}
		if (h->why[0] != '\0')
			printf(" (%s)", h->why);
		printf("\n");
		/* digests in full; a full certificate is cut */
		for (size_t k = 0; k < h->n_tlsa; k++) {
			sts_tlsa_format(&h->tlsa[k], buf, sizeof(buf));
			printf("dane-tlsa: %s %s\n", h->name, buf);
		}
	}
}

static json_t *
answer_json(const struct cli *c, const struct sts_answer *a)
{
	json_t *o = json_object(), *cand = json_array(), *addrs = json_array(), *pol;
	char buf[64];

	json_object_set_new(o, "domain", json_string(a->domain));
	json_object_set(o, "txt", c->txt);
	json_object_set_new(o, "txt_status",
	                    c->txt_status[0] != '\0' ? json_string(c->txt_status) : json_null());
	json_object_set_new(o, "fetch", c->fetch[0] != '\0' ? json_string(c->fetch) : json_null());
	json_object_set(o, "mx_records", c->mx);
	json_object_set_new(o, "dnssec", json_boolean(dnssec_ok(c, a)));
	json_object_set_new(o, "status", json_string(status_name(a->status)));
	json_object_set_new(o, "source", json_string(sts_source_name(a->source)));
	json_object_set_new(o, "id", a->id[0] != '\0' ? json_string(a->id) : json_null());
	if (a->status == STS_POLICY && a->policy != NULL) {
		pol = json_object();
		json_object_set_new(pol, "mode", json_string(sts_mode_name(a->policy->mode)));
		json_t *mx = json_array();
		for (size_t i = 0; i < a->policy->n_mx; i++)
			json_array_append_new(mx, json_string(a->policy->mx[i]));
		json_object_set_new(pol, "mx", mx);
		json_object_set_new(pol, "max_age", json_integer(a->policy->max_age));
		json_object_set_new(o, "policy", pol);
		json_object_set_new(o, "mode", json_string(sts_mode_name(a->mode)));
	} else {
		json_object_set_new(o, "policy", json_null());
		json_object_set_new(o, "mode", json_null());
	}
	rfc3339(a->expires_at, buf, sizeof(buf));
	json_object_set_new(o, "expires", buf[0] != '\0' ? json_string(buf) : json_null());
	for (size_t i = 0; i < a->n_mx; i++)
		json_array_append_new(cand, json_string(a->mx[i]));
	for (size_t i = 0; i < a->n_addr; i++) {
		sts_addr_text((const struct sockaddr *)&a->addr[i], buf, sizeof(buf), NULL, 0);
		json_array_append_new(addrs, json_string(buf));
	}
	json_object_set_new(o, "candidates", cand);
	json_object_set_new(o, "addresses", addrs);
	json_object_set_new(o, "problem",
	                    a->problem != STS_RESULT_OK ? json_string(sts_result_name(a->problem))
	                                                : json_null());
	json_object_set_new(o, "reason",
	                    c->resolver[0] != '\0' ? json_string(c->resolver)
	                    : a->reason[0] != '\0' ? json_string(a->reason)
	                                           : json_null());
	json_object_set_new(o, "dane", dane_json(a));
	return o;
}

static void
print_text(const struct cli *c, const struct sts_answer *a)
{
	char buf[64];
	size_t i;

	printf("domain: %s\n", a->domain);
	for (i = 0; i < json_array_size(c->txt); i++)
		printf("txt: %s\n", json_string_value(json_array_get(c->txt, i)));
	if (c->txt_status[0] != '\0')
		printf("txt: (%s)\n", c->txt_status);
	if (c->fetch[0] != '\0')
		printf("fetch: %s\n", c->fetch);
	if (dnssec_ok(c, a))
		printf("dnssec: yes\n");
	else
		printf("dnssec: no (txt %s, mx %s)\n",
		       c->txt_dnssec[0] != '\0' ? c->txt_dnssec : "-",
		       c->mx_dnssec[0] != '\0' ? c->mx_dnssec : "-");
	printf("status: %s\n", status_name(a->status));
	printf("source: %s\n", sts_source_name(a->source));
	if (a->status == STS_POLICY && a->policy != NULL) {
		printf("id: %s\n", a->id[0] != '\0' ? a->id : "-");
		printf("mode: %s\n", sts_mode_name(a->policy->mode));
		for (i = 0; i < a->policy->n_mx; i++)
			printf("mx: %s\n", a->policy->mx[i]);
		printf("max_age: %u\n", a->policy->max_age);
		rfc3339(a->expires_at, buf, sizeof(buf));
		printf("expires: %s\n", buf[0] != '\0' ? buf : "never");
	}
	for (i = 0; i < json_array_size(c->mx); i++)
		printf("mx-record: %s\n", json_string_value(json_array_get(c->mx, i)));
	if (c->mx_status[0] != '\0')
		printf("mx-record: (%s)\n", c->mx_status);
	for (i = 0; i < a->n_mx; i++)
		printf("candidate: %s\n", a->mx[i]);
	for (i = 0; i < a->n_addr; i++) {
		sts_addr_text((const struct sockaddr *)&a->addr[i], buf, sizeof(buf), NULL, 0);
		printf("address: %s\n", buf);
	}
	if (a->status == STS_POLICY && a->mode != STS_MODE_NONE && a->n_mx == 0)
		printf("note: no MX host of %s matches the policy\n", a->domain);
	print_dane(a);
	if (c->resolver[0] != '\0')
		printf("problem: %s\n", c->resolver);
	else if (a->problem != STS_RESULT_OK)
		printf("problem: %s: %s\n", sts_result_name(a->problem), a->reason);
}

static void
on_answer(void *arg, const struct sts_answer *a)
{
	struct cli *c = arg;

	c->done = true;
	c->rc = a->status == STS_POLICY || dane_applies(a) ? 0 : 1;
	/* A DNS failure: tell a resolver that does not answer from a domain's servers. */
	if (strcmp(c->txt_status, "tempfail") == 0 || strcmp(c->mx_status, "tempfail") == 0) {
		struct dnsprobe_params dp = {.servers = c->conf->dns.forwarders,
		                             .n_servers = c->conf->dns.n_forwarders};
		if (dnsprobe_silent(&dp, c->resolver, sizeof(c->resolver)) != 1)
			c->resolver[0] = '\0';
	}
	if (c->json) {
		json_t *o = answer_json(c, a);
		char *s = json_dumps(o, JSON_COMPACT);
		if (s != NULL)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		print_text(c, a);
	}
	fflush(stdout);
}

/* mkdir_p - create dir and its parents (mode 0750); 0 or -1 with errno. */
static int
mkdir_p(const char *dir)
{
	char path[4096];
	size_t len;

	if ((len = sts_strlcpy(path, dir, sizeof(path))) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char ch = path[i];
		path[i] = '\0';
		if (mkdir(path, 0750) < 0 && errno != EEXIST)
			return -1;
		path[i] = ch;
	}
	return 0;
}

/* load_conf - -c FILE, else the default file, else built-in defaults. */
static struct conf *
load_conf(const char *path, char *err, size_t errlen)
{
	struct conf *c;
	const char *dir;

	if (path != NULL || access(DEFAULT_CONF, F_OK) == 0)
		return conf_load(path != NULL ? path : DEFAULT_CONF, err, errlen);
	if ((c = calloc(1, sizeof(*c))) == NULL || conf_defaults(c) < 0)
		goto nomem;
	if ((dir = getenv("STSPROXY_STATE_DIR")) == NULL || dir[0] == '\0')
		dir = DEFAULT_STATE_DIR;
	free(c->state_dir);
	if ((c->state_dir = strdup(dir)) == NULL)
		goto nomem;
	return c;
nomem:
	conf_free(c);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

int
sts_cli_policy_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli cli = {.rc = 1};
	const char *path = NULL;
	char err[512], domain[STS_CACHE_DOMAIN_MAX];
	struct conf *c = NULL;
	struct sts_cache *cache = NULL;
	struct loop *loop = NULL;
	struct sts_engine *e = NULL;
	struct sts_engine_params p = {0};
	uint64_t deadline;
	int ch, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	/* RFC-NOTES "SMTPUTF8 domains": policies are looked up under A-labels. */
	if (sts_domain_to_ascii(argv[optind], domain, sizeof(domain)) < 0) {
		fprintf(stderr, "stsproxy: policy: \"%s\" is not a valid domain\n", argv[optind]);
		return 2;
	}
	if ((c = load_conf(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		return 1;
	}
	cli.conf = c;
	log_set_level(c->log.level < LOG_LVL_NOTICE ? c->log.level : LOG_LVL_NOTICE);
	c->sts.refresh = false; /* one lookup, no background work */
	if (mkdir_p(c->state_dir) < 0) {
		fprintf(stderr, "stsproxy: %s: %s\n", c->state_dir, strerror(errno));
		goto out;
	}
	if ((cache = sts_cache_open(c->state_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		goto out;
	}
	if ((loop = loop_new()) == NULL) {
		fprintf(stderr, "stsproxy: event loop: %s\n", strerror(errno));
		goto out;
	}
	if ((cli.txt = json_array()) == NULL || (cli.mx = json_array()) == NULL) {
		fprintf(stderr, "stsproxy: out of memory\n");
		goto out;
	}
	p.loop = loop;
	p.conf = c;
	p.cache = cache;
	p.check_txt = true; /* show the live TXT record, not only the cache */
	p.trace = on_trace;
	p.trace_arg = &cli;
	if ((e = sts_engine_new(&p, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		goto out;
	}
	if (sts_engine_lookup(e, domain, NULL, on_answer, &cli) == 0) {
		fprintf(stderr, "stsproxy: policy: lookup of %s could not start\n", domain);
		goto out;
	}
	/* The resolver and the fetcher have their own timeouts; this only bounds a hang. */
	deadline = loop_now_ms(loop) + 1000ull * (3u * c->dns.timeout + c->sts.fetch_timeout + 10u);
	while (!cli.done && loop_now_ms(loop) < deadline)
		if (loop_once(loop, 500) < 0)
			break;
	if (!cli.done) {
		fprintf(stderr, "stsproxy: policy: lookup of %s did not finish\n", domain);
		goto out;
	}
	rc = cli.rc;
out:
	sts_engine_free(e);
	loop_free(loop);
	sts_cache_close(cache);
	json_decref(cli.txt);
	json_decref(cli.mx);
	conf_free(c);
	return rc;
}
