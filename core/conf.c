/*
 * conf.c - load and validate the libconfig file into one struct conf.
 *
 * Validation is complete before anything starts: every group is checked
 * against the keys it may hold, every value against its type and range.
 * The first problem found is reported as "FILE:LINE: key: what is wrong",
 * so that an operator can fix a broken file without guessing. Errors after
 * a partial fill unwind through conf_free().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/util.h"

/* The parse context: where messages go. */
struct cx {
	const char *file;
	char *err;
	size_t errlen;
};

/* bad - format one error line for setting s (or line 0) and return -1. */
static int __attribute__((format(printf, 4, 5)))
bad(struct cx *x, const config_setting_t *s, const char *key, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	int line = s != NULL ? config_setting_source_line(s) : 0;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (x->err != NULL && x->errlen > 0)
		snprintf(x->err, x->errlen, "%s:%d: %s: %s", x->file, line, key, what);
	return -1;
}

/* join - "prefix.name" into buf (just name without a prefix). */
static const char *
join(char *buf, size_t len, const char *prefix, const char *name)
{
	if (prefix == NULL || prefix[0] == '\0')
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s.%s", prefix, name);
	return buf;
}

/* check_keys - every member of group must be named in allowed (NULL-terminated). */
static int
check_keys(struct cx *x, const config_setting_t *group, const char *prefix,
           const char *const *allowed)
{
	char key[128];
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		bool known = false;

		for (const char *const *a = allowed; *a != NULL; a++)
			if (name != NULL && strcmp(name, *a) == 0)
				known = true;
		if (!known)
			return bad(x, s, join(key, sizeof(key), prefix, name ? name : "?"),
			           "unknown key");
	}
	return 0;
}

/* get_str - optional string member; *dst replaced (old value freed) when present. */
static int
get_str(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
        char **dst)
{
	char key[128];
	const config_setting_t *s = config_setting_get_member(group, name);
	char *copy;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad(x, s, join(key, sizeof(key), prefix, name), "expected a string");
	if ((copy = strdup(config_setting_get_string(s))) == NULL)
		return bad(x, s, join(key, sizeof(key), prefix, name), "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

/* get_uint - optional integer member within [min, max]. */
static int
get_uint(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
         long long min, long long max, unsigned *dst)
{
	char key[128];
	const config_setting_t *s = config_setting_get_member(group, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT64)
		v = config_setting_get_int64(s);
	else
		return bad(x, s, join(key, sizeof(key), prefix, name), "expected an integer");
	if (v < min || v > max)
		return bad(x, s, join(key, sizeof(key), prefix, name),
		           "%lld is out of range (%lld to %lld)", v, min, max);
	*dst = (unsigned)v;
	return 0;
}

/* get_bool - optional boolean member. */
static int
get_bool(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
         bool *dst)
{
	char key[128];
	const config_setting_t *s = config_setting_get_member(group, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return bad(x, s, join(key, sizeof(key), prefix, name), "expected true or false");
	*dst = config_setting_get_bool(s) != 0;
	return 0;
}

/* get_choice - optional string member that must be one of names[]; *dst = its index. */
static int
get_choice(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
           const char *const *names, int *dst)
{
	char key[128], list[128] = "";
	const config_setting_t *s = config_setting_get_member(group, name);
	const char *v;

	if (s == NULL)
		return 0;
	join(key, sizeof(key), prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad(x, s, key, "expected a string");
	v = config_setting_get_string(s);
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0) {
			*dst = i;
			return 0;
		}
		size_t used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i ? ", " : "", names[i]);
	}
	return bad(x, s, key, "\"%s\" is not one of %s", v, list);
}

/* get_list - optional member that must be an array or list; NULL when absent. */
static int
get_list(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
         const config_setting_t **out)
{
	char key[128];
	const config_setting_t *s = config_setting_get_member(group, name);

	*out = NULL;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST)
		return bad(x, s, join(key, sizeof(key), prefix, name), "expected a list [ ... ]");
	*out = s;
	return 0;
}

/* get_group - optional member that must be a group { ... }; NULL when absent. */
static int
get_group(struct cx *x, const config_setting_t *parent, const char *name,
          const config_setting_t **out)
{
	const config_setting_t *s = config_setting_get_member(parent, name);

	*out = NULL;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return bad(x, s, name, "expected a group { ... }");
	*out = s;
	return 0;
}

/* get_strings - optional list of strings, each passed to check (may be NULL). */
static int
get_strings(struct cx *x, const config_setting_t *group, const char *prefix, const char *name,
            char ***dst, size_t *n, const char *(*check)(const char *))
{
	char key[128];
	const config_setting_t *l;
	int len;

	if (get_list(x, group, prefix, name, &l) < 0)
		return -1;
	if (l == NULL)
		return 0;
	len = config_setting_length(l);
	if (len == 0)
		return 0;
	if ((*dst = calloc((size_t)len, sizeof(**dst))) == NULL)
		return bad(x, l, name, "out of memory");
	for (int i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *v, *why;

		snprintf(key, sizeof(key), "%s%s%s[%d]", prefix ? prefix : "", prefix ? "." : "",
		         name, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return bad(x, e, key, "expected a string");
		v = config_setting_get_string(e);
		if (check != NULL && (why = check(v)) != NULL)
			return bad(x, e, key, "\"%s\": %s", v, why);
		if (((*dst)[i] = strdup(v)) == NULL)
			return bad(x, e, key, "out of memory");
		(*n)++;
	}
	return 0;
}

static const char *
check_addr(const char *v)
{
	struct conf_addr a;

	return conf_parse_addr(v, &a) < 0 ? "expected ADDRESS:PORT with a numeric address" : NULL;
}

/* check_smap_addr - ADDRESS:PORT, or unix:/absolute/path (it must fit in sun_path) */
static const char *
check_smap_addr(const char *v)
{
	if (strncmp(v, "unix:", 5) == 0)
		return v[5] == '/' && strlen(v + 5) < 108 ? NULL : "expected unix:/absolute/path";
	return check_addr(v);
}

static const char *
check_net(const char *v)
{
	struct conf_net n;

	return conf_parse_net(v, &n) < 0 ? "expected ADDRESS or ADDRESS/PREFIX" : NULL;
}

static const char *
check_forwarder(const char *v)
{
	char host[64];
	const char *at = strchr(v, '@');
	size_t len = at ? (size_t)(at - v) : strlen(v);
	unsigned char buf[16];

	if (len == 0 || len >= sizeof(host))
		return "expected an IP address, optionally with @PORT";
	memcpy(host, v, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
		return "expected an IP address, optionally with @PORT";
	if (at != NULL) {
		char *end;
		long port = strtol(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
			return "bad port after @";
	}
	return NULL;
}

/* Turn a validated list of strings into conf_addr values. */
static int
strings_to_addrs(char **s, size_t n, struct conf_addr **out)
{
	if (n == 0)
		return 0;
	if ((*out = calloc(n, sizeof(**out))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (conf_parse_addr(s[i], &(*out)[i]) < 0)
			return -1;
		(*out)[i].text = s[i];
		s[i] = NULL;
	}
	return 0;
}

static void
free_strings(char **s, size_t n)
{
	for (size_t i = 0; i < n && s != NULL; i++)
		free(s[i]);
	free(s);
}

/* A domain as written by an operator: U-labels allowed, stored as A-labels. */
static int
get_domain(struct cx *x, const config_setting_t *g, const char *key, char **dst)
{
	char ascii[256];
	const config_setting_t *s = config_setting_get_member(g, "domain");

	if (s == NULL)
		return bad(x, g, key, "\"domain\" is required");
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad(x, s, key, "domain: expected a string");
	if (sts_domain_to_ascii(config_setting_get_string(s), ascii, sizeof(ascii)) < 0)
		return bad(x, s, key, "domain: \"%s\" is not a valid domain name",
		           config_setting_get_string(s));
	if ((*dst = strdup(ascii)) == NULL)
		return bad(x, s, key, "out of memory");
	return 0;
}

static int
load_policies(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const keys[] = {"domain", "mode", "mx", "dane", NULL};
	const config_setting_t *l;
	char key[64];
	int n;

	if (get_list(x, root, NULL, "policies", &l) < 0 || l == NULL)
		return l == NULL && x->err[0] == '\0' ? 0 : -1;
	n = config_setting_length(l);
	if (n > 0 && (c->policies = calloc((size_t)n, sizeof(*c->policies))) == NULL)
		return bad(x, l, "policies", "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
		struct conf_policy *p = &c->policies[i];
		int mode = -1;

		snprintf(key, sizeof(key), "policies[%d]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return bad(x, g, key,
			           "expected a group { domain = ...; mode = ...; mx = [ ... ]; }");
		c->n_policies++;
		p->line = config_setting_source_line(g);
		if (check_keys(x, g, key, keys) < 0 || get_domain(x, g, key, &p->domain) < 0)
			return -1;
		p->has_mode = config_setting_get_member(g, "mode") != NULL;
		p->has_dane = config_setting_get_member(g, "dane") != NULL;
		/* Without "dane" the entry is an MTA-STS policy: its mode is required. */
		if (!p->has_mode && !p->has_dane)
			return bad(x, g, key, "\"mode\" is required");
		if (p->has_mode &&
		    get_choice(x, g, key, "mode",
		               (const char *const[]){"none", "testing", "enforce", NULL},
		               &mode) < 0)
			return -1;
		p->mode = p->has_mode ? (enum sts_mode)mode : STS_MODE_NONE;
		mode = STS_DANE_MODE_ON;
		if (p->has_dane &&
		    get_choice(x, g, key, "dane", (const char *const[]){"on", "off", "only", NULL},
		               &mode) < 0)
			return -1;
		p->dane = (enum sts_dane_mode)mode;
		if (!p->has_mode && config_setting_get_member(g, "mx") != NULL)
			return bad(x, g, key, "\"mx\" needs a \"mode\"");
		if (get_strings(x, g, key, "mx", &p->mx, &p->n_mx, NULL) < 0)
			return -1;
		if (p->n_mx == 0 && p->mode != STS_MODE_NONE)
			return bad(x, g, key,
			           "\"mx\" needs at least one pattern unless mode is \"none\"");
		for (int j = 0; j < i; j++)
			if (strcmp(c->policies[j].domain, p->domain) == 0)
				return bad(x, g, key, "domain \"%s\" has a policy already",
				           p->domain);
	}
	return 0;
}

static int
load_smarthosts(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const keys[] = {"address", "name", NULL};
	const config_setting_t *l;
	char key[64];
	int n;

	if (get_list(x, root, NULL, "smarthosts", &l) < 0)
		return -1;
	if (l == NULL)
		return 0;
	n = config_setting_length(l);
	if (n > 0 && (c->smarthosts = calloc((size_t)n, sizeof(*c->smarthosts))) == NULL)
		return bad(x, l, "smarthosts", "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
		struct conf_smarthost *h = &c->smarthosts[i];
		char *addr = NULL;

		snprintf(key, sizeof(key), "smarthosts[%d]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return bad(x, g, key, "expected a group { address = ...; name = ...; }");
		c->n_smarthosts++;
		h->line = config_setting_source_line(g);
		if (check_keys(x, g, key, keys) < 0)
			return -1;
		if (get_str(x, g, key, "address", &addr) < 0)
			return -1;
		if (addr == NULL)
			return bad(x, g, key, "\"address\" is required");
		h->addr.text = addr;
		if (conf_parse_addr(addr, &h->addr) < 0)
			return bad(x, config_setting_get_member(g, "address"), key,
			           "address: \"%s\" is not ADDRESS:PORT", addr);
		if (get_str(x, g, key, "name", &h->name) < 0)
			return -1;
		if (h->name == NULL)
			return bad(x, g, key, "\"name\" is required");
		if (!sts_hostname_valid(h->name))
			return bad(x, config_setting_get_member(g, "name"), key,
			           "name: \"%s\" is not a host name", h->name);
		sts_lower(h->name);
	}
	return 0;
}

/* check_prefix - a key prefix: printable, no space, at most 64 octets. */
static bool
check_prefix(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 64)
		return false;
	for (const char *p = v; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

/* load_shared - the shared group: one Redis, or Sentinels and a master name. */
static int
load_shared(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const keys[] = {"redis",
	                                   "sentinels",
	                                   "master",
	                                   "user",
	                                   "password",
	                                   "sentinel_user",
	                                   "sentinel_password",
	                                   "prefix",
	                                   "connect_timeout",
	                                   "command_timeout",
	                                   "wait_max",
	                                   NULL};
	const config_setting_t *g;
	char *redis = NULL, **strs = NULL;
	size_t nstrs = 0;

	if (get_group(x, root, "shared", &g) < 0)
		return -1;
	if (g == NULL)
		return 0;
	c->shared.enabled = true;
	if (check_keys(x, g, "shared", keys) < 0 || get_str(x, g, "shared", "redis", &redis) < 0)
		return -1;
	if (redis != NULL && redis[0] == '/') {
		c->shared.redis_path = redis;
	} else if (redis != NULL) {
		if ((c->shared.redis = calloc(1, sizeof(*c->shared.redis))) == NULL) {
			free(redis);
			return bad(x, g, "shared.redis", "out of memory");
		}
		c->shared.redis->text = redis;
		if (conf_parse_addr(redis, c->shared.redis) < 0)
			return bad(x, config_setting_get_member(g, "redis"), "shared.redis",
			           "\"%s\": expected ADDRESS:PORT with a numeric address, or the "
			           "path of a unix socket",
			           redis);
	}
	if (get_strings(x, g, "shared", "sentinels", &strs, &nstrs, check_addr) < 0) {
		free_strings(strs, nstrs);
		return -1;
	}
	if (strings_to_addrs(strs, nstrs, &c->shared.sentinels) < 0) {
		free_strings(strs, nstrs);
		return bad(x, g, "shared.sentinels", "out of memory");
	}
	c->shared.n_sentinels = nstrs;
	free(strs);
	if (get_str(x, g, "shared", "master", &c->shared.master) < 0 ||
	    get_str(x, g, "shared", "user", &c->shared.user) < 0 ||
	    get_str(x, g, "shared", "password", &c->shared.password) < 0 ||
	    get_str(x, g, "shared", "sentinel_user", &c->shared.sentinel_user) < 0 ||
	    get_str(x, g, "shared", "sentinel_password", &c->shared.sentinel_password) < 0 ||
	    get_str(x, g, "shared", "prefix", &c->shared.prefix) < 0 ||
	    get_uint(x, g, "shared", "connect_timeout", 10, 60000, &c->shared.connect_timeout) <
	        0 ||
	    get_uint(x, g, "shared", "command_timeout", 10, 60000, &c->shared.command_timeout) <
	        0 ||
	    get_uint(x, g, "shared", "wait_max", 1, 5000, &c->shared.wait_max) < 0)
		return -1;
	if (redis == NULL && c->shared.n_sentinels == 0)
		return bad(x, g, "shared", "set \"redis\" or \"sentinels\"");
	if (redis != NULL && c->shared.n_sentinels > 0)
		return bad(x, g, "shared", "\"redis\" and \"sentinels\" exclude each other");
	if (c->shared.n_sentinels > 0 && c->shared.master == NULL)
		return bad(x, g, "shared.master", "sentinels need the master's name");
	if (c->shared.n_sentinels == 0 && c->shared.master != NULL)
		return bad(x, config_setting_get_member(g, "master"), "shared.master",
		           "only with \"sentinels\"");
	if (c->shared.user != NULL && c->shared.password == NULL)
		return bad(x, config_setting_get_member(g, "user"), "shared.user",
		           "an ACL user needs \"password\"");
	if (c->shared.n_sentinels == 0 && c->shared.sentinel_password != NULL)
		return bad(x, config_setting_get_member(g, "sentinel_password"),
		           "shared.sentinel_password", "only with \"sentinels\"");
	if (c->shared.sentinel_user != NULL && c->shared.sentinel_password == NULL)
		return bad(x, config_setting_get_member(g, "sentinel_user"), "shared.sentinel_user",
		           "an ACL user needs \"sentinel_password\"");
	if (!check_prefix(c->shared.prefix))
		return bad(x, config_setting_get_member(g, "prefix"), "shared.prefix",
		           "\"%s\": 1 to 64 printable characters, no space", c->shared.prefix);
	return 0;
}

/* check_relay - "host:port" with a host name, an IPv4 address or "[IPv6]". */
static const char *
check_relay(const char *v)
{
	static const char *const want = "expected HOST:PORT (a host name, an IPv4 address or "
	                                "[IPv6])";
	char host[256];
	const char *colon = strrchr(v, ':');
	size_t hlen;
	struct conf_addr a;
	char *end;
	long port;

	if (v[0] == '[')
		return conf_parse_addr(v, &a) < 0 || a.sa.ss_family != AF_INET6 ? want : NULL;
	if (colon == NULL || strchr(v, ':') != colon || (hlen = (size_t)(colon - v)) == 0 ||
	    hlen >= sizeof(host))
		return want;
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
		return want;
	if (conf_parse_addr(v, &a) < 0 && !sts_hostname_valid(host) &&
	    strcmp(host, "localhost") != 0)
		return want;
	return NULL;
}

/* check_mailbox - a plain ASCII addr-spec "local@domain" for the envelope sender. */
static bool
check_mailbox(const char *v)
{
	const char *at = strrchr(v, '@');

	if (at == NULL || at == v || !sts_hostname_valid(at + 1))
		return false;
	for (const char *p = v; p < at; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>()[]\\,;:\"@", *p) != NULL)
			return false;
	return true;
}

/*
 * load_report - the "report" group (TLS-RPT, RFC 8460). With enable, the
 * fields every report must carry (section 4.4) are required.
 */
static int
load_report(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const keys[] = {"enable",         "organization",
	                                   "contact",        "submitter",
	                                   "from",           "relay",
	                                   "relay_user",     "relay_password_file",
	                                   "relay_starttls", "delay_max",
	                                   "retry_first",    "retry_for",
	                                   "timeout",        "max_size",
	                                   "only_failures",  "include_no_policy",
	                                   "shared_wait",    NULL};
	const config_setting_t *g;
	const char *why;
	int v;

	if (get_group(x, root, "report", &g) < 0)
		return -1;
	if (g == NULL)
		return 0;
	v = (int)c->report.relay_starttls;
	if (check_keys(x, g, "report", keys) < 0 ||
	    get_bool(x, g, "report", "enable", &c->report.enable) < 0 ||
	    get_str(x, g, "report", "organization", &c->report.organization) < 0 ||
	    get_str(x, g, "report", "contact", &c->report.contact) < 0 ||
	    get_str(x, g, "report", "submitter", &c->report.submitter) < 0 ||
	    get_str(x, g, "report", "from", &c->report.from) < 0 ||
	    get_str(x, g, "report", "relay", &c->report.relay) < 0 ||
	    get_str(x, g, "report", "relay_user", &c->report.relay_user) < 0 ||
	    get_str(x, g, "report", "relay_password_file", &c->report.relay_password_file) < 0 ||
	    get_choice(x, g, "report", "relay_starttls",
	               (const char *const[]){"required", "optional", NULL}, &v) < 0 ||
	    get_uint(x, g, "report", "delay_max", 0, 86399, &c->report.delay_max) < 0 ||
	    get_uint(x, g, "report", "retry_first", 1, 86400, &c->report.retry_first) < 0 ||
	    get_uint(x, g, "report", "retry_for", 0, 7 * 86400, &c->report.retry_for) < 0 ||
	    get_uint(x, g, "report", "timeout", 1, 3600, &c->report.timeout) < 0 ||
	    get_uint(x, g, "report", "max_size", 1024, 100 << 20, &c->report.max_size) < 0 ||
	    get_bool(x, g, "report", "only_failures", &c->report.only_failures) < 0 ||
	    get_bool(x, g, "report", "include_no_policy", &c->report.include_no_policy) < 0 ||
	    get_uint(x, g, "report", "shared_wait", 0, 86400, &c->report.shared_wait) < 0)
		return -1;
	c->report.relay_starttls = (enum conf_report_starttls)v;
#define MEMBER(name) config_setting_get_member(g, name)
	if (c->report.organization != NULL && c->report.organization[0] == '\0')
		return bad(x, MEMBER("organization"), "report.organization", "must not be empty");
	if (c->report.contact != NULL && c->report.contact[0] == '\0')
		return bad(x, MEMBER("contact"), "report.contact", "must not be empty");
	if (c->report.submitter != NULL) {
		if (!sts_hostname_valid(c->report.submitter))
			return bad(x, MEMBER("submitter"), "report.submitter",
			           "\"%s\" is not a host name", c->report.submitter);
		sts_lower(c->report.submitter);
	}
	if (c->report.from != NULL && !check_mailbox(c->report.from))
		return bad(x, MEMBER("from"), "report.from",
		           "\"%s\" is not an address local@domain", c->report.from);
	if (c->report.relay != NULL && (why = check_relay(c->report.relay)) != NULL)
		return bad(x, MEMBER("relay"), "report.relay", "\"%s\": %s", c->report.relay, why);
	if ((c->report.relay_user == NULL) != (c->report.relay_password_file == NULL))
		return bad(x, g, "report", "relay_user and relay_password_file go together");
	if (c->report.relay_user != NULL && c->report.relay == NULL)
		return bad(x, MEMBER("relay_user"), "report.relay_user", "needs a relay");
#undef MEMBER
	/* Section 4.4: organization-name and contact-info are required fields. */
	if (c->report.enable) {
		if (c->report.organization == NULL)
			return bad(x, g, "report",
			           "\"organization\" is required with enable = true");
		if (c->report.contact == NULL)
			return bad(x, g, "report", "\"contact\" is required with enable = true");
		if (c->report.submitter == NULL)
			return bad(x, g, "report", "\"submitter\" is required with enable = true");
	}
	return 0;
}

/*
 * load_report_store - the "report_store" group: how often the TLS-RPT
 * counts are written to report.db, how many days are kept, and the id of
 * this gateway's rows (letters, digits, '.', '-', '_').
 */
static int
load_report_store(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const keys[] = {"flush_interval", "keep_days", "gateway_id", NULL};
	const config_setting_t *g;
	const char *id;

	if (get_group(x, root, "report_store", &g) < 0)
		return -1;
	if (g == NULL)
		return 0;
	if (check_keys(x, g, "report_store", keys) < 0 ||
	    get_uint(x, g, "report_store", "flush_interval", 1, 3600,
	             &c->report_store.flush_interval) < 0 ||
	    get_uint(x, g, "report_store", "keep_days", 2, 366, &c->report_store.keep_days) < 0 ||
	    get_str(x, g, "report_store", "gateway_id", &c->report_store.gateway_id) < 0)
		return -1;
	if ((id = c->report_store.gateway_id) != NULL &&
	    (id[0] == '\0' || strlen(id) > 64 ||
	     strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
	         strlen(id)))
		return bad(x, config_setting_get_member(g, "gateway_id"), "report_store.gateway_id",
		           "expected 1 to 64 letters, digits, '.', '-' or '_'");
	return 0;
}

static int
load_root(struct cx *x, const config_setting_t *root, struct conf *c)
{
	static const char *const top[] = {
	    "state_dir",     "user",         "mode",    "listen",   "interception", "clients",
	    "upstream_mark", "max_sessions", "workers", "max_line", "timeouts",     "log",
	    "dns",           "tls",          "sts",     "policies", "smarthosts",   "nfq",
	    "metrics",       "control",      "dane",    "shared",   "socketmap",    "report",
	    "report_store",  "upstream",     NULL};
	static const char *const timeouts[] = {"connect",    "greeting",  "command", "starttls",
	                                       "data_block", "data_done", "drain",   NULL};
	static const char *const logk[] = {"level", "file", "events", NULL};
	static const char *const upk[] = {"reuse_idle", "reuse_max_messages", "reuse_max_per_dest",
	                                  "reuse_max", NULL};
	static const char *const dnsk[] = {"forwarders", "trust_anchor_file", "timeout", NULL};
	static const char *const tlsk[] = {"ca_file", "server_cert", "server_key",
	                                   "client_starttls", NULL};
	static const char *const stsk[] = {
	    "fetch_timeout", "defer_on_dns_failure", "refresh",    "txt_ttl_min",
	    "txt_ttl_max",   "mx_ttl_min",           "mx_ttl_max", NULL};
	static const char *const nfqk[] = {"queues",   "action",       "fail_open",
	                                   "hold_max", "hold_timeout", "hold_timeout_action",
	                                   NULL};
	static const char *const metk[] = {"listen", NULL};
	static const char *const ctlk[] = {"socket", NULL};
	static const char *const smapk[] = {"listen",      "max_connections", "idle_timeout",
	                                    "max_request", "testing_secure",  "tlsrpt",
	                                    NULL};
	const config_setting_t *g, *l;
	char **strs = NULL;
	size_t nstrs = 0;
	int v;

	if (check_keys(x, root, NULL, top) < 0)
		return -1;
	if (get_str(x, root, NULL, "state_dir", &c->state_dir) < 0 ||
	    get_str(x, root, NULL, "user", &c->user) < 0)
		return -1;
	v = (int)c->mode;
	if (get_choice(x, root, NULL, "mode", (const char *const[]){"enforce", "monitor", NULL},
	               &v) < 0)
		return -1;
	c->mode = (enum conf_proxy_mode)v;
	v = (int)c->interception;
	if (get_choice(x, root, NULL, "interception",
	               (const char *const[]){"redirect", "tproxy", NULL}, &v) < 0)
		return -1;
	c->interception = (enum conf_interception)v;

	if (get_strings(x, root, NULL, "listen", &strs, &nstrs, check_addr) < 0)
		goto fail;
	if (strings_to_addrs(strs, nstrs, &c->listen) < 0)
		goto fail;
	c->n_listen = nstrs;
	free_strings(strs, nstrs);
	strs = NULL;
	nstrs = 0;

	if (get_strings(x, root, NULL, "clients", &strs, &nstrs, check_net) < 0)
		goto fail;
	if (nstrs > 0 && (c->clients = calloc(nstrs, sizeof(*c->clients))) == NULL)
		goto fail;
	for (size_t i = 0; i < nstrs; i++) {
		conf_parse_net(strs[i], &c->clients[i]);
		c->clients[i].text = strs[i];
		strs[i] = NULL;
		c->n_clients++;
	}
	free_strings(strs, nstrs);
	strs = NULL;

	if (get_uint(x, root, NULL, "upstream_mark", 0, 0xffffffffLL, &c->upstream_mark) < 0 ||
	    get_uint(x, root, NULL, "max_sessions", 1, 1000000, &c->max_sessions) < 0 ||
	    get_uint(x, root, NULL, "workers", 1, 64, &c->workers) < 0 ||
	    get_uint(x, root, NULL, "max_line", 1000, 65536, &c->max_line) < 0)
		return -1;

	if (get_group(x, root, "timeouts", &g) < 0)
		return -1;
	if (g != NULL) {
		struct conf_timeouts *t = &c->timeouts;
		if (check_keys(x, g, "timeouts", timeouts) < 0 ||
		    get_uint(x, g, "timeouts", "connect", 1, 3600, &t->connect) < 0 ||
		    get_uint(x, g, "timeouts", "greeting", 1, 3600, &t->greeting) < 0 ||
		    get_uint(x, g, "timeouts", "command", 1, 3600, &t->command) < 0 ||
		    get_uint(x, g, "timeouts", "starttls", 1, 3600, &t->starttls) < 0 ||
		    get_uint(x, g, "timeouts", "data_block", 1, 3600, &t->data_block) < 0 ||
		    get_uint(x, g, "timeouts", "data_done", 1, 3600, &t->data_done) < 0 ||
		    get_uint(x, g, "timeouts", "drain", 1, 3600, &t->drain) < 0)
			return -1;
	}

	if (get_group(x, root, "upstream", &g) < 0)
		return -1;
	/* An idle connection outlives neither the server's own timeout (RFC 5321
	 * section 4.5.3.2.7: 5 minutes) nor this bound. */
	if (g != NULL &&
	    (check_keys(x, g, "upstream", upk) < 0 ||
	     get_uint(x, g, "upstream", "reuse_idle", 0, 240, &c->upstream.reuse_idle) < 0 ||
	     get_uint(x, g, "upstream", "reuse_max_messages", 1, 100000,
	              &c->upstream.reuse_max_messages) < 0 ||
	     get_uint(x, g, "upstream", "reuse_max_per_dest", 1, 10000,
	              &c->upstream.reuse_max_per_dest) < 0 ||
	     get_uint(x, g, "upstream", "reuse_max", 1, 100000, &c->upstream.reuse_max) < 0))
		return -1;

	if (get_group(x, root, "log", &g) < 0)
		return -1;
	if (g != NULL) {
		v = (int)c->log.level;
		if (check_keys(x, g, "log", logk) < 0 ||
		    get_choice(
		        x, g, "log", "level",
		        (const char *const[]){"err", "warn", "notice", "info", "debug", NULL},
		        &v) < 0 ||
		    get_str(x, g, "log", "file", &c->log.file) < 0 ||
		    get_str(x, g, "log", "events", &c->log.events) < 0)
			return -1;
		c->log.level = (enum log_level)v;
	}

	if (get_group(x, root, "dns", &g) < 0)
		return -1;
	if (g != NULL) {
		if (check_keys(x, g, "dns", dnsk) < 0 ||
		    get_strings(x, g, "dns", "forwarders", &c->dns.forwarders, &c->dns.n_forwarders,
		                check_forwarder) < 0 ||
		    get_str(x, g, "dns", "trust_anchor_file", &c->dns.trust_anchor_file) < 0 ||
		    get_uint(x, g, "dns", "timeout", 1, 300, &c->dns.timeout) < 0)
			return -1;
	}

	if (get_group(x, root, "tls", &g) < 0)
		return -1;
	if (g != NULL) {
		if (check_keys(x, g, "tls", tlsk) < 0 ||
		    get_str(x, g, "tls", "ca_file", &c->tls.ca_file) < 0 ||
		    get_str(x, g, "tls", "server_cert", &c->tls.server_cert) < 0 ||
		    get_str(x, g, "tls", "server_key", &c->tls.server_key) < 0 ||
		    get_bool(x, g, "tls", "client_starttls", &c->tls.client_starttls) < 0)
			return -1;
		if ((c->tls.server_cert == NULL) != (c->tls.server_key == NULL))
			return bad(x, g, "tls", "server_cert and server_key go together");
	}

	if (get_group(x, root, "sts", &g) < 0)
		return -1;
	if (g != NULL) {
		if (check_keys(x, g, "sts", stsk) < 0 ||
		    get_uint(x, g, "sts", "fetch_timeout", 1, 60, &c->sts.fetch_timeout) < 0 ||
		    get_bool(x, g, "sts", "defer_on_dns_failure", &c->sts.defer_on_dns_failure) <
		        0 ||
		    get_bool(x, g, "sts", "refresh", &c->sts.refresh) < 0 ||
		    get_uint(x, g, "sts", "txt_ttl_min", 0, 86400, &c->sts.txt_ttl_min) < 0 ||
		    get_uint(x, g, "sts", "txt_ttl_max", 0, 86400, &c->sts.txt_ttl_max) < 0 ||
		    get_uint(x, g, "sts", "mx_ttl_min", 0, 86400, &c->sts.mx_ttl_min) < 0 ||
		    get_uint(x, g, "sts", "mx_ttl_max", 0, 86400, &c->sts.mx_ttl_max) < 0)
			return -1;
		if (c->sts.txt_ttl_min > c->sts.txt_ttl_max)
			return bad(x, g, "sts", "txt_ttl_min %u is above txt_ttl_max %u",
			           c->sts.txt_ttl_min, c->sts.txt_ttl_max);
		if (c->sts.mx_ttl_min > c->sts.mx_ttl_max)
			return bad(x, g, "sts", "mx_ttl_min %u is above mx_ttl_max %u",
			           c->sts.mx_ttl_min, c->sts.mx_ttl_max);
	}

	if (get_group(x, root, "dane", &g) < 0)
		return -1;
	if (g != NULL) {
		static const char *const danek[] = {"enabled", "insecure_mx", "ttl_min", "ttl_max",
		                                    NULL};

		if (check_keys(x, g, "dane", danek) < 0 ||
		    get_bool(x, g, "dane", "enabled", &c->dane.enabled) < 0 ||
		    get_bool(x, g, "dane", "insecure_mx", &c->dane.insecure_mx) < 0 ||
		    get_uint(x, g, "dane", "ttl_min", 0, 86400, &c->dane.ttl_min) < 0 ||
		    get_uint(x, g, "dane", "ttl_max", 0, 86400, &c->dane.ttl_max) < 0)
			return -1;
		if (c->dane.ttl_min > c->dane.ttl_max)
			return bad(x, g, "dane", "ttl_min %u is above ttl_max %u", c->dane.ttl_min,
			           c->dane.ttl_max);
	}

	if (load_report_store(x, root, c) < 0 || load_policies(x, root, c) < 0 ||
	    load_smarthosts(x, root, c) < 0)
		return -1;

	if (get_group(x, root, "nfq", &g) < 0)
		return -1;
	if (g != NULL) {
		c->nfq.enabled = true;
		v = (int)c->nfq.action;
		if (check_keys(x, g, "nfq", nfqk) < 0 ||
		    get_choice(x, g, "nfq", "action", (const char *const[]){"log", "block", NULL},
		               &v) < 0 ||
		    get_bool(x, g, "nfq", "fail_open", &c->nfq.fail_open) < 0 ||
		    get_uint(x, g, "nfq", "hold_timeout", 1, 60, &c->nfq.hold_timeout) < 0 ||
		    get_uint(x, g, "nfq", "hold_max", 0, 65536, &c->nfq.hold_max) < 0 ||
		    get_list(x, g, "nfq", "queues", &l) < 0)
			return -1;
		c->nfq.action = (enum conf_nfq_action)v;
		v = (int)c->nfq.hold_timeout_action;
		if (get_choice(x, g, "nfq", "hold_timeout_action",
		               (const char *const[]){"block", "pass", NULL}, &v) < 0)
			return -1;
		c->nfq.hold_timeout_action = (enum conf_nfq_hold_action)v;
		if (l != NULL) {
			int n = config_setting_length(l);
			if (n == 0)
				return bad(x, l, "nfq.queues", "needs at least one queue number");
			free(c->nfq.queues);
			c->nfq.n_queues = 0;
			if ((c->nfq.queues = calloc((size_t)n, sizeof(unsigned))) == NULL)
				return bad(x, l, "nfq.queues", "out of memory");
			for (int i = 0; i < n; i++) {
				const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
				if (config_setting_type(e) != CONFIG_TYPE_INT ||
				    config_setting_get_int(e) < 0 ||
				    config_setting_get_int(e) > 65535)
					return bad(x, e, "nfq.queues",
					           "expected queue numbers from 0 to 65535");
				c->nfq.queues[c->nfq.n_queues++] =
				    (unsigned)config_setting_get_int(e);
			}
		}
	}

	if (get_group(x, root, "metrics", &g) < 0)
		return -1;
	if (g != NULL) {
		char *addr = NULL;
		if (check_keys(x, g, "metrics", metk) < 0 ||
		    get_str(x, g, "metrics", "listen", &addr) < 0)
			return -1;
		if (addr == NULL && (addr = strdup("127.0.0.1:9125")) == NULL)
			return bad(x, g, "metrics", "out of memory");
		if ((c->metrics.listen = calloc(1, sizeof(*c->metrics.listen))) == NULL) {
			free(addr);
			return bad(x, g, "metrics", "out of memory");
		}
		c->metrics.listen->text = addr;
		if (conf_parse_addr(addr, c->metrics.listen) < 0)
			return bad(x, config_setting_get_member(g, "listen"), "metrics.listen",
			           "\"%s\" is not ADDRESS:PORT", addr);
	}

	if (get_group(x, root, "control", &g) < 0)
		return -1;
	if (g != NULL && (check_keys(x, g, "control", ctlk) < 0 ||
	                  get_str(x, g, "control", "socket", &c->control.socket) < 0))
		return -1;

	if (load_shared(x, root, c) < 0)
		return -1;

	if (get_group(x, root, "socketmap", &g) < 0)
		return -1;
	if (g != NULL &&
	    (check_keys(x, g, "socketmap", smapk) < 0 ||
	     get_strings(x, g, "socketmap", "listen", &c->socketmap.listen, &c->socketmap.n_listen,
	                 check_smap_addr) < 0 ||
	     get_uint(x, g, "socketmap", "max_connections", 1, 1000000,
	              &c->socketmap.max_connections) < 0 ||
	     get_uint(x, g, "socketmap", "idle_timeout", 1, 3600, &c->socketmap.idle_timeout) < 0 ||
	     get_uint(x, g, "socketmap", "max_request", 256, 65536, &c->socketmap.max_request) <
	         0 ||
	     get_bool(x, g, "socketmap", "testing_secure", &c->socketmap.testing_secure) < 0 ||
	     get_bool(x, g, "socketmap", "tlsrpt", &c->socketmap.tlsrpt) < 0))
		return -1;

	if (load_report(x, root, c) < 0)
		return -1;

	if (c->n_listen == 0 && !c->nfq.enabled && c->socketmap.n_listen == 0)
		return bad(x, root, "listen",
		           "nothing to do: set \"listen\", an \"nfq\" group or socketmap.listen");
	return 0;
fail:
	free_strings(strs, nstrs);
	if (x->err[0] == '\0')
		bad(x, root, "listen", "out of memory");
	return -1;
}

int
conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	if ((c->state_dir = strdup("/var/lib/stsproxy")) == NULL)
		return -1;
	c->mode = CONF_PROXY_ENFORCE;
	c->interception = CONF_INTERCEPT_REDIRECT;
	c->max_sessions = 10000;
	c->workers = 2;
	c->max_line = 8192;
	/* RFC 5321 section 4.5.3.2 */
	c->timeouts.connect = 30;
	c->timeouts.greeting = 300;
	c->timeouts.command = 300;
	c->timeouts.starttls = 120;
	c->timeouts.data_block = 180;
	c->timeouts.data_done = 600;
	c->timeouts.drain = 60;
	c->upstream.reuse_idle = 0; /* off: see stsproxy.conf(5) */
	c->upstream.reuse_max_messages = 100;
	c->upstream.reuse_max_per_dest = 4;
	c->upstream.reuse_max = 64;
	c->log.level = LOG_LVL_INFO;
	c->dns.timeout = 10;
	c->tls.client_starttls = true;
	c->sts.fetch_timeout = 20;
	c->sts.defer_on_dns_failure = true;
	c->sts.refresh = true;
	c->sts.txt_ttl_min = 1;
	c->sts.txt_ttl_max = 300;
	c->sts.mx_ttl_min = 1;
	c->sts.mx_ttl_max = 300;
	c->dane.enabled = true;
	c->dane.insecure_mx = false; /* as Postfix's "dane" level */
	c->dane.ttl_min = 1;
	c->dane.ttl_max = 300;
	c->nfq.action = CONF_NFQ_LOG;
	c->nfq.fail_open = true;
	c->nfq.hold_timeout = 5;
	c->nfq.hold_max = 1024;
	c->report_store.flush_interval = 5;
	c->report_store.keep_days = 7;
	c->nfq.hold_timeout_action = CONF_NFQ_HOLD_BLOCK;
	c->report.relay_starttls = CONF_REPORT_STARTTLS_REQUIRED;
	c->report.delay_max = 3600;
	c->report.retry_first = 300;
	c->report.retry_for = 86400;
	c->report.shared_wait = 3600;
	c->report.timeout = 60;
	c->report.max_size = 1 << 20;
	c->report.only_failures = true;
	c->shared.connect_timeout = 1000;
	c->shared.command_timeout = 500;
	c->shared.wait_max = 50;
	if ((c->shared.prefix = strdup("stsproxy:")) == NULL)
		return -1;
	c->socketmap.max_connections = 1024;
	c->socketmap.idle_timeout = 60; /* Postfix closes its own after 10 s */
	c->socketmap.max_request = 1024;
	if ((c->nfq.queues = calloc(1, sizeof(unsigned))) == NULL)
		return -1;
	c->nfq.n_queues = 1;
	return 0;
}

static struct conf *
load(config_t *cfg, const char *name, char *err, size_t errlen)
{
	struct cx x = {.file = name, .err = err, .errlen = errlen};
	struct conf *c;

	if ((c = calloc(1, sizeof(*c))) == NULL || conf_defaults(c) < 0 ||
	    (c->path = strdup(name)) == NULL) {
		conf_free(c);
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	if (load_root(&x, config_root_setting(cfg), c) < 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	config_t cfg;
	struct conf *c = NULL;
	FILE *f;

	err[0] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	config_init(&cfg);
	if (config_read(&cfg, f) != CONFIG_TRUE)
		snprintf(err, errlen, "%s:%d: syntax error: %s", path, config_error_line(&cfg),
		         config_error_text(&cfg));
	else
		c = load(&cfg, path, err, errlen);
	fclose(f);
	config_destroy(&cfg);
	return c;
}

struct conf *
conf_load_string(const char *text, const char *name, char *err, size_t errlen)
{
	config_t cfg;
	struct conf *c = NULL;

	err[0] = '\0';
	config_init(&cfg);
	if (config_read_string(&cfg, text) != CONFIG_TRUE)
		snprintf(err, errlen, "%s:%d: syntax error: %s", name, config_error_line(&cfg),
		         config_error_text(&cfg));
	else
		c = load(&cfg, name, err, errlen);
	config_destroy(&cfg);
	return c;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->state_dir);
	free(c->user);
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i].text);
	free(c->listen);
	for (size_t i = 0; i < c->n_clients; i++)
		free(c->clients[i].text);
	free(c->clients);
	free(c->log.file);
	free(c->log.events);
	free_strings(c->dns.forwarders, c->dns.n_forwarders);
	free(c->dns.trust_anchor_file);
	free(c->tls.ca_file);
	free(c->tls.server_cert);
	free(c->tls.server_key);
	for (size_t i = 0; i < c->n_policies; i++) {
		free(c->policies[i].domain);
		free_strings(c->policies[i].mx, c->policies[i].n_mx);
	}
	free(c->policies);
	for (size_t i = 0; i < c->n_smarthosts; i++) {
		free(c->smarthosts[i].addr.text);
		free(c->smarthosts[i].name);
	}
	free(c->smarthosts);
	free(c->nfq.queues);
	if (c->metrics.listen != NULL)
		free(c->metrics.listen->text);
	if (c->shared.redis != NULL)
		free(c->shared.redis->text);
	free(c->shared.redis);
	free(c->shared.redis_path);
	for (size_t i = 0; i < c->shared.n_sentinels; i++)
		free(c->shared.sentinels[i].text);
	free(c->shared.sentinels);
	free(c->shared.master);
	free(c->shared.user);
	free(c->shared.password);
	free(c->shared.sentinel_user);
	free(c->shared.sentinel_password);
	free(c->shared.prefix);
	free(c->metrics.listen);
	free(c->control.socket);
	free(c->report.organization);
	free(c->report.contact);
	free(c->report.submitter);
	free(c->report.from);
	free(c->report.relay);
	free(c->report.relay_user);
	free(c->report.relay_password_file);
	free_strings(c->socketmap.listen, c->socketmap.n_listen);
	free(c->report_store.gateway_id);
	free(c);
}

int
conf_parse_addr(const char *text, struct conf_addr *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hstart = text;
	size_t hlen;
	char *end;
	long port;

	memset(&out->sa, 0, sizeof(out->sa));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		hstart = text + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		if ((colon = strrchr(text, ':')) == NULL || strchr(text, ':') != colon)
			return -1;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 0 || port > 65535)
		return -1;
	if (text[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->salen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->salen = sizeof(*sin6);
	}
	return 0;
}

int
conf_parse_net(const char *text, struct conf_net *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	memset(out->addr, 0, sizeof(out->addr));
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		char *end;
		long p;
		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > (long)max)
			return -1;
		out->prefix = (unsigned)p;
	}
	return 0;
}

bool
conf_net_contains(const struct conf_net *net, const struct sockaddr *sa)
{
	const uint8_t *a;
	unsigned bits = net->prefix, full, rest;
	uint8_t mapped[16];

	if (sa->sa_family == AF_INET && net->family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6 && net->family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	} else if (sa->sa_family == AF_INET6 && net->family == AF_INET &&
	           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		memcpy(mapped, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12, 4);
		a = mapped;
	} else {
		return false;
	}
	full = bits / 8;
	rest = bits % 8;
	if (memcmp(a, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ net->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
