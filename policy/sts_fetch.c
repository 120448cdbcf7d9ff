/*
 * sts_fetch.c - the policy fetch over HTTPS, libcurl's multi interface on
 * our event loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when it wants a timeout (CURLMOPT_TIMERFUNCTION); we register those with
 * the loop and call curl_multi_socket_action() when they fire, then collect
 * finished transfers with curl_multi_info_read(). Every rule of RFC 8461
 * section 3.3 is enforced here, before the body reaches the parser.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include "core/log.h"
#include "policy/sts_fetch.h"

#define FETCH_DEFAULT_TIMEOUT_MS 60000
#define FETCH_HOST_PREFIX        "mta-sts."
#define FETCH_PATH               "/.well-known/mta-sts.txt"
#define FETCH_DOMAIN_MAX         (253 - (sizeof(FETCH_HOST_PREFIX) - 1))

struct fetch_req {
	struct fetch_req *next, *prev;
	struct sts_fetch *f;
	uint64_t id;
	CURL *easy;
	struct curl_slist *resolve;
	struct sockaddr_storage addrs[STS_FETCH_MAX_ADDRS];
	size_t n_addrs;
	char *body;
	size_t len, cap;
	int too_big;  /* declared or streamed body over the limit */
	int bad_code; /* status other than 200 */
	int bad_type; /* Content-Type other than text/plain */
	char ctype[64];
	char errbuf[CURL_ERROR_SIZE];
	sts_fetch_cb *cb;
	void *arg;
};

struct sts_fetch {
	struct loop *loop;
	CURLM *multi;
	char *ca_file;
	unsigned timeout_ms;
	uint16_t port;
	uint64_t timer;
	uint64_t next_id;
	struct fetch_req *head;
	int depth; /* > 0 while our callbacks run: a free must wait */
	int dying;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void
set_err(char *err, size_t errlen, const char *msg, const char *detail)
{
	if (err != NULL && errlen > 0 && snprintf(err, errlen, "%s%s", msg, detail) >= (int)errlen)
		err[errlen - 1] = '\0'; /* a cut message is still useful */
}

/* sts_fetch_content_type_ok - "text/plain", any case, optional parameters. */
bool
sts_fetch_content_type_ok(const char *value)
{
	static const char want[] = "text/plain";
	const char *p;

	if (value == NULL)
		return true; /* RFC-NOTES: a missing header is accepted */
	while (*value == ' ' || *value == '\t')
		value++;
	if (strncasecmp(value, want, sizeof(want) - 1) != 0)
		return false;
	p = value + sizeof(want) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' || *p == ';';
}

/* A domain we can put in a URL and a CURLOPT_RESOLVE entry: LDH labels only. */
static int
domain_ok(const char *d)
{
	size_t len, label = 0;

	if (d == NULL)
		return 0;
	len = strnlen(d, FETCH_DOMAIN_MAX + 1);
	if (len == 0 || len > FETCH_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label != 0;
}

static void
req_unlink(struct sts_fetch *f, struct fetch_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		f->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static void
req_free(struct sts_fetch *f, struct fetch_req *r)
{
	if (r->easy != NULL) {
		curl_multi_remove_handle(f->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->resolve);
	free(r->body);
	free(r);
}

/* The status line is in once the first header arrives; look at it before the body. */
static int
status_is_200(struct fetch_req *r)
{
	long code = 0;

	if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		return 0;
	return code == 200;
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct fetch_req *r = userdata;
	size_t n = size * nitems;
	static const char cl[] = "content-length:";

	/* RFC 8461 section 3.3: refuse a declared body over the limit before reading it. */
	if (n > sizeof(cl) - 1 && strncasecmp(buf, cl, sizeof(cl) - 1) == 0 && status_is_200(r)) {
		unsigned long long v = 0;
		size_t i = sizeof(cl) - 1;

		while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
			v = v * 10 + (unsigned)(buf[i] - '0');
			if (v > STS_FETCH_MAX_BODY) {
				r->too_big = 1;
				return 0;
			}
		}
	}
	return n;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct fetch_req *r = userdata;
	size_t n = size * nmemb;

	if (r->len == 0 && r->body == NULL) {
		const char *ct = NULL;

		/* Only a 200 is a policy (section 3.3): do not read anything else. */
		if (!status_is_200(r)) {
			r->bad_code = 1;
			return 0;
		}
		if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
		    !sts_fetch_content_type_ok(ct)) {
			r->bad_type = 1;
			snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
			return 0;
		}
	}
	/* Section 3.3: a streamed body over the limit aborts the transfer. */
	if (n > STS_FETCH_MAX_BODY - r->len) {
		r->too_big = 1;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *nb;

		while (cap < r->len + n + 1)
			cap *= 2;
		if (cap > STS_FETCH_MAX_BODY + 1)
			cap = STS_FETCH_MAX_BODY + 1;
		nb = realloc(r->body, cap);
		if (nb == NULL)
			return 0;
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Connect only to an address the caller gave us, whatever libcurl thinks. */
static curl_socket_t
on_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetch_req *r = clientp;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	for (size_t i = 0; i < r->n_addrs; i++) {
		const struct sockaddr_storage *ss = &r->addrs[i];

		if (a->family != ss->ss_family)
			continue;
		if (a->family == AF_INET &&
		    memcmp(&((const struct sockaddr_in *)&a->addr)->sin_addr,
		           &((const struct sockaddr_in *)ss)->sin_addr, 4) == 0)
			return socket(a->family, a->socktype, a->protocol);
		if (a->family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
		           &((const struct sockaddr_in6 *)ss)->sin6_addr, 16) == 0)
			return socket(a->family, a->socktype, a->protocol);
	}
	log_err("fetch: refusing to connect to an address we did not resolve");
	return CURL_SOCKET_BAD;
}

static int
is_webpki_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return 1;
	default:
		return 0;
	}
}

/* Turn a finished transfer into a result; the rules of section 3.3 in order. */
static void
classify(struct fetch_req *r, CURLcode rc, struct sts_fetch_result *res)
{
	const char *ct = NULL;

	memset(res, 0, sizeof(*res));
	res->result = STS_RESULT_STS_POLICY_FETCH_ERROR;
	(void)curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->http_code);
	if (r->too_big) {
		snprintf(res->reason, sizeof(res->reason), "body larger than %d bytes",
		         STS_FETCH_MAX_BODY);
		return;
	}
	if (r->bad_code || (rc == CURLE_OK && res->http_code != 200)) {
		/* Section 3.3: redirects are never followed, only 200 is a policy. */
		snprintf(res->reason, sizeof(res->reason), "HTTP status %ld%s", res->http_code,
		         res->http_code >= 300 && res->http_code < 400 ? " (redirect not followed)"
		                                                       : "");
		return;
	}
	if (r->bad_type) {
		snprintf(res->reason, sizeof(res->reason),
		         "Content-Type \"%.64s\" is not text/plain", r->ctype);
		return;
	}
	if (rc != CURLE_OK) {
		if (is_webpki_error(rc))
			res->result = STS_RESULT_STS_WEBPKI_INVALID;
		snprintf(res->reason, sizeof(res->reason), "%.60s: %.90s", curl_easy_strerror(rc),
		         r->errbuf[0] ? r->errbuf : "-");
		return;
	}
	if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
	    !sts_fetch_content_type_ok(ct)) {
		snprintf(res->reason, sizeof(res->reason),
		         "Content-Type \"%.64s\" is not text/plain", ct);
		return;
	}
	res->ok = 1;
	res->result = STS_RESULT_OK;
	res->body = r->body != NULL ? r->body : "";
	res->len = r->len;
}

static void
fetch_release(struct sts_fetch *f)
{
	loop_timer_cancel(f->loop, f->timer);
	curl_multi_cleanup(f->multi);
	free(f->ca_file);
	free(f);
}

/* Report every transfer libcurl says is done. */
static void
collect_done(struct sts_fetch *f)
{
	CURLMsg *msg;
	int left;

	while (!f->dying && (msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		struct fetch_req *r = NULL;
		struct sts_fetch_result res;
		CURLcode rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r) !=
		        CURLE_OK ||
		    r == NULL)
			continue;
		req_unlink(f, r);
		classify(r, rc, &res);
		r->cb(r->arg, &res);
		req_free(f, r);
	}
}

static void
after_action(struct sts_fetch *f)
{
	collect_done(f);
	f->depth--;
	if (f->dying && f->depth == 0)
		fetch_release(f);
}

static void
on_fd(struct loop *loop, int fd, int events, void *arg)
{
	struct sts_fetch *f = arg;
	int running = 0, mask = 0;

	(void)loop;
	if (events & LOOP_READ)
		mask |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		mask |= CURL_CSELECT_OUT;
	f->depth++;
	(void)curl_multi_socket_action(f->multi, fd, mask, &running);
	after_action(f);
}

static void
on_timer(struct loop *loop, void *arg)
{
	struct sts_fetch *f = arg;
	int running = 0;

	(void)loop;
	f->timer = 0;
	f->depth++;
	(void)curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	after_action(f);
}

/* CURLMOPT_SOCKETFUNCTION: mirror libcurl's interest in a socket into the loop. */
static int
curl_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct sts_fetch *f = userp;
	int events = 0;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		loop_fd_del(f->loop, s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= LOOP_READ;
	if (what & CURL_POLL_OUT)
		events |= LOOP_WRITE;
	if (loop_fd_add(f->loop, s, events, on_fd, f) < 0) {
		log_err("fetch: cannot watch socket %d", (int)s);
		return -1;
	}
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: one loop timer stands for libcurl's single timeout. */
static int
curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct sts_fetch *f = userp;

	(void)multi;
	loop_timer_cancel(f->loop, f->timer);
	f->timer = 0;
	if (timeout_ms < 0)
		return 0;
	f->timer = loop_timer_add(f->loop, (uint64_t)timeout_ms, on_timer, f);
	return f->timer != 0 ? 0 : -1;
}

/* sts_fetch_new - a curl multi handle wired into loop. */
struct sts_fetch *
sts_fetch_new(struct loop *loop, const struct sts_fetch_params *p, char *err, size_t errlen)
{
	struct sts_fetch *f;

	if (loop == NULL || p == NULL) {
		set_err(err, errlen, "fetch: no loop or parameters", "");
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		set_err(err, errlen, "fetch: libcurl: ", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		set_err(err, errlen, "fetch: out of memory", "");
		return NULL;
	}
	f->loop = loop;
	f->timeout_ms = p->timeout_ms ? p->timeout_ms : FETCH_DEFAULT_TIMEOUT_MS;
	f->port = p->port ? p->port : 443;
	if (p->ca_file != NULL && (f->ca_file = strdup(p->ca_file)) == NULL) {
		set_err(err, errlen, "fetch: out of memory", "");
		goto fail;
	}
	f->multi = curl_multi_init();
	if (f->multi == NULL) {
		set_err(err, errlen, "fetch: cannot create a curl multi handle", "");
		goto fail;
	}
	if (curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, curl_sock_cb) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
		set_err(err, errlen, "fetch: cannot set up the curl multi handle", "");
		goto fail;
	}
	return f;
fail:
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	free(f->ca_file);
	free(f);
	return NULL;
}

/* Build "mta-sts.<domain>:<port>:<ip>,[<ip6>]" for CURLOPT_RESOLVE. */
static int
resolve_entry(const struct fetch_req *r, const char *host, uint16_t port, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s:%u:", host, (unsigned)port);

	if (n < 0 || (size_t)n >= len)
		return -1;
	for (size_t i = 0; i < r->n_addrs; i++) {
		char ip[INET6_ADDRSTRLEN];
		const struct sockaddr_storage *ss = &r->addrs[i];
		const void *a = ss->ss_family == AF_INET
		                    ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
		                    : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
		int m;

		if (inet_ntop(ss->ss_family, a, ip, sizeof(ip)) == NULL)
			return -1;
		m = snprintf(buf + n, len - (size_t)n,
		             ss->ss_family == AF_INET6 ? "%s[%s]" : "%s%s", i ? "," : "", ip);
		if (m < 0 || (size_t)m >= len - (size_t)n)
			return -1;
		n += m;
	}
	return 0;
}

/* Every option that section 3.3 and our own safety require, on one easy handle. */
static int
setup_easy(struct sts_fetch *f, struct fetch_req *r, const char *url)
{
	CURL *e = r->easy;
	int bad = 0;

#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PRIVATE, (char *)r);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_RESOLVE, r->resolve);
	SET(CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	SET(CURLOPT_OPENSOCKETDATA, r);
	/* Section 3.3: https only, and never a redirect. */
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	/* Section 3.3: TLS 1.2 or later, a certificate valid for mta-sts.<domain>. */
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (f->ca_file != NULL) {
		SET(CURLOPT_CAINFO, f->ca_file);
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	SET(CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
	/* Straight to the host: no proxy from the environment, no reuse across fetches. */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_USERAGENT, "stsproxy/" STSPROXY_VERSION);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STS_FETCH_MAX_BODY);
#undef SET
	return bad ? -1 : 0;
}

/* sts_fetch_start - begin GET https://mta-sts.<domain>/.well-known/mta-sts.txt. */
uint64_t
sts_fetch_start(struct sts_fetch *f, const char *domain, const struct sockaddr_storage *addrs,
                size_t n_addrs, sts_fetch_cb *cb, void *arg)
{
	struct fetch_req *r;
	char host[256], url[320], entry[1200];

	if (f == NULL || f->dying || cb == NULL || addrs == NULL || !domain_ok(domain))
		return 0;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return 0;
	r->f = f;
	r->cb = cb;
	r->arg = arg;
	for (size_t i = 0; i < n_addrs && r->n_addrs < STS_FETCH_MAX_ADDRS; i++)
		if (addrs[i].ss_family == AF_INET || addrs[i].ss_family == AF_INET6)
			r->addrs[r->n_addrs++] = addrs[i];
	if (r->n_addrs == 0)
		goto fail;
	if (snprintf(host, sizeof(host), FETCH_HOST_PREFIX "%s", domain) >= (int)sizeof(host) ||
	    snprintf(url, sizeof(url), "https://%s:%u" FETCH_PATH, host, (unsigned)f->port) >=
	        (int)sizeof(url) ||
	    resolve_entry(r, host, f->port, entry, sizeof(entry)) < 0)
		goto fail;
	r->resolve = curl_slist_append(NULL, entry);
	r->easy = curl_easy_init();
	if (r->resolve == NULL || r->easy == NULL || setup_easy(f, r, url) < 0)
		goto fail;
	/* Adding only arms libcurl's timer: the transfer, and cb, happen from the loop. */
	if (curl_multi_add_handle(f->multi, r->easy) != CURLM_OK) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		goto fail;
	}
	r->id = ++f->next_id;
	r->next = f->head;
	if (f->head != NULL)
		f->head->prev = r;
	f->head = r;
	return r->id;
fail:
	if (r->easy != NULL) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	req_free(f, r);
	return 0;
}

/* sts_fetch_cancel - abandon a fetch without calling back. */
void
sts_fetch_cancel(struct sts_fetch *f, uint64_t id)
{
	if (f == NULL || id == 0)
		return;
	for (struct fetch_req *r = f->head; r != NULL; r = r->next) {
		if (r->id == id) {
			req_unlink(f, r);
			req_free(f, r);
			return;
		}
	}
}

/* sts_fetch_free - cancel all fetches and free f (later, if called from a callback). */
void
sts_fetch_free(struct sts_fetch *f)
{
	if (f == NULL || f->dying)
		return;
	while (f->head != NULL) {
		struct fetch_req *r = f->head;

		req_unlink(f, r);
		req_free(f, r);
	}
	if (f->depth > 0) {
		f->dying = 1;
		return;
	}
	fetch_release(f);
}
