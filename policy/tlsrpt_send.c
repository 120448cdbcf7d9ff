/*
 * tlsrpt_send.c - one TLS-RPT report to one rua URI, over HTTPS or through
 * the operator's SMTP relay, with a libcurl easy handle driven by a
 * private multi handle: curl_multi_poll() waits in slices that
 * curl_multi_wakeup() (tlsrpt_send_abort) can cut short.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/util.h"
#include "policy/tlsrpt_send.h"

#define PASSWORD_MAX 256

struct tlsrpt_send {
	const struct conf *conf;
	CURLM *multi;
	atomic_bool stop;
	char from[TLSRPT_SEND_ADDR_MAX];
	char password[PASSWORD_MAX];
};

/* The upload of one transfer. */
struct upload {
	const char *data;
	size_t len, off;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum tlsrpt_uri_kind
tlsrpt_send_uri(const char *uri, char *addr, size_t addrlen)
{
	const char *p, *at = NULL;
	size_t n = 0;

	if (uri == NULL)
		return TLSRPT_URI_BAD;
	if (strncasecmp(uri, "https://", 8) == 0)
		return uri[8] != '\0' && strpbrk(uri, " \t\r\n") == NULL ? TLSRPT_URI_HTTPS
		                                                         : TLSRPT_URI_BAD;
	if (strncasecmp(uri, "mailto:", 7) != 0 || addr == NULL || addrlen == 0)
		return TLSRPT_URI_BAD;
	/* RFC 6068: the address up to "?", percent-encoded octets decoded. */
	for (p = uri + 7; *p != '\0' && *p != '?'; p++) {
		int c = (unsigned char)*p;

		if (c == '%') {
			int hi = hexval((unsigned char)p[1]),
			    lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);

			if (lo < 0)
				return TLSRPT_URI_BAD;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' ||
		    c == ',' || c == ';' || n + 1 >= addrlen)
			return TLSRPT_URI_BAD;
		addr[n++] = (char)c;
	}
	addr[n] = '\0';
	if ((at = strrchr(addr, '@')) == NULL || at == addr || strchr(addr, '@') != at ||
	    !sts_hostname_valid(at + 1))
		return TLSRPT_URI_BAD;
	return TLSRPT_URI_MAILTO;
}

/* read_password - the first line of path into buf; 0 or -1 with err set. */
static int
read_password(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "report.relay_password_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "report.relay_password_file %s: empty", path);
		return -1;
	}
	return 0;
}

struct tlsrpt_send *
tlsrpt_send_new(const struct conf *c, char *err, size_t errlen)
{
	struct tlsrpt_send *s;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "report: libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "report: out of memory");
		return NULL;
	}
	s->conf = c;
	atomic_init(&s->stop, false);
	if (c->report.from != NULL)
		sts_strlcpy(s->from, c->report.from, sizeof(s->from));
	else if (c->report.submitter != NULL)
		snprintf(s->from, sizeof(s->from), "tlsrpt@%s", c->report.submitter);
	if (c->report.relay_password_file != NULL &&
	    read_password(c->report.relay_password_file, s->password, sizeof(s->password), err,
	                  errlen) < 0)
		goto fail;
	if ((s->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "report: libcurl: cannot make a multi handle");
		goto fail;
	}
	return s;
fail:
	tlsrpt_send_free(s);
	return NULL;
}

void
tlsrpt_send_free(struct tlsrpt_send *s)
{
	if (s == NULL)
		return;
	if (s->multi != NULL)
		curl_multi_cleanup(s->multi);
	memset(s->password, 0, sizeof(s->password));
	free(s);
}

void
tlsrpt_send_abort(struct tlsrpt_send *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	curl_multi_wakeup(s->multi);
}

const char *
tlsrpt_send_from(const struct tlsrpt_send *s)
{
	return s->from;
}

static size_t
on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* on_write - the receiver's answer body: dropped (its length is bounded by the timeout). */
static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

/* on_sockopt - the relay connection carries upstream_mark, as the proxy's own do. */
static int
on_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	const struct tlsrpt_send *s = arg;
	unsigned mark = s->conf->upstream_mark;

	if (purpose == CURLSOCKTYPE_IPCXN && mark != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	return CURL_SOCKOPT_OK;
}

/* common - the options every transfer has: timeouts, TLS checks, no proxy, no signals. */
static int
common(struct tlsrpt_send *s, CURL *e, struct upload *u, char *errbuf)
{
	const struct conf *c = s->conf;
	long ms = (long)c->report.timeout * 1000;
	int bad = 0;

#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_TIMEOUT_MS, ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, ms);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->tls.ca_file != NULL) {
		SET(CURLOPT_CAINFO, c->tls.ca_file);
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, u);
	SET(CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	SET(CURLOPT_SOCKOPTDATA, s);
#undef SET
	return bad ? -1 : 0;
}

/*
 * run - perform e on the private multi handle, polling in slices of at
 * most 250 ms so that an abort is seen at once. Returns curl's result;
 * CURLE_ABORTED_BY_CALLBACK after an abort.
 */
static CURLcode
run(struct tlsrpt_send *s, CURL *e)
{
	CURLcode rc = CURLE_FAILED_INIT;
	CURLMsg *msg;
	int running = 1, left;

	if (atomic_load(&s->stop))
		return CURLE_ABORTED_BY_CALLBACK;
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		if (curl_multi_perform(s->multi, &running) != CURLM_OK)
			break;
		if (!running)
			break;
		if (atomic_load(&s->stop)) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			goto out;
		}
		if (curl_multi_poll(s->multi, NULL, 0, 250, NULL) != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
			rc = msg->data.result;
out:
	curl_multi_remove_handle(s->multi, e);
	return rc;
}

static void
reason(char *why, size_t whylen, CURLcode rc, const char *errbuf)
{
	if (why == NULL || whylen == 0)
		return;
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(why, whylen, "stopped");
	else
		snprintf(why, whylen, "%.80s%s%.160s", curl_easy_strerror(rc),
		         errbuf[0] != '\0' ? ": " : "", errbuf);
}

enum tlsrpt_outcome
tlsrpt_send_https(struct tlsrpt_send *s, const char *url, const void *gz, size_t len, char *why,
                  size_t whylen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct upload u = {.data = gz, .len = len};
	struct curl_slist *hdr = NULL;
	enum tlsrpt_outcome o = TLSRPT_OUT_TEMP;
	CURL *e;
	CURLcode rc;
	long code = 0;
	int bad = 0;

	snprintf(why, whylen, "not attempted");
	if (tlsrpt_send_uri(url, NULL, 0) != TLSRPT_URI_HTTPS) {
		snprintf(why, whylen, "not an https: URI");
		return TLSRPT_OUT_PERM;
	}
	if ((e = curl_easy_init()) == NULL)
		return TLSRPT_OUT_TEMP;
	hdr = curl_slist_append(hdr, "Content-Type: application/tlsrpt+gzip");
	if (hdr != NULL)
		hdr = curl_slist_append(hdr, "Expect:");
	bad |= hdr == NULL || common(s, e, &u, errbuf) < 0;
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_URL, url);
	/* Section 5.4: an HTTPS POST; never redirected to anywhere else. */
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_POSTFIELDS, gz);
	SET(CURLOPT_HTTPHEADER, hdr);
	SET(CURLOPT_USERAGENT, "stsproxy/" STSPROXY_VERSION);
#undef SET
	if (bad) {
		snprintf(why, whylen, "cannot set up the transfer");
		goto done;
	}
	rc = run(s, e);
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK) {
		reason(why, whylen, rc, errbuf);
		o = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ? TLSRPT_OUT_PERM
		                                                                  : TLSRPT_OUT_TEMP;
		goto done;
	}
	snprintf(why, whylen, "HTTP %ld", code);
	if (code >= 200 && code <= 299)
		o = TLSRPT_OUT_DELIVERED;
	else if (code == 408 || code == 429 || code >= 500)
		o = TLSRPT_OUT_TEMP;
	else
		o = TLSRPT_OUT_PERM;
done:
	curl_easy_cleanup(e);
	curl_slist_free_all(hdr);
	return o;
}

enum tlsrpt_outcome
tlsrpt_send_mail(struct tlsrpt_send *s, const char *rcpt, const void *msg, size_t len, char *why,
                 size_t whylen)
{
	const struct conf *c = s->conf;
	char errbuf[CURL_ERROR_SIZE] = "", url[600], from[TLSRPT_SEND_ADDR_MAX + 2],
	     to[TLSRPT_SEND_ADDR_MAX + 2];
	struct upload u = {.data = msg, .len = len};
	struct curl_slist *rcpts = NULL;
	enum tlsrpt_outcome o = TLSRPT_OUT_TEMP;
	CURL *e;
	CURLcode rc;
	long code = 0;
	int bad = 0;

	snprintf(why, whylen, "not attempted");
	if (c->report.relay == NULL) {
		snprintf(why, whylen, "no report.relay for mailto: reports");
		return TLSRPT_OUT_PERM;
	}
	if (s->from[0] == '\0') {
		snprintf(why, whylen, "no report.from or report.submitter");
		return TLSRPT_OUT_PERM;
	}
	/* The path of an smtp: URL is the name curl says in EHLO: the submitter. */
	if (snprintf(url, sizeof(url), "smtp://%s/%s", c->report.relay,
	             c->report.submitter != NULL ? c->report.submitter : "localhost") >=
	        (int)sizeof(url) ||
	    snprintf(from, sizeof(from), "<%s>", s->from) >= (int)sizeof(from) ||
	    snprintf(to, sizeof(to), "<%s>", rcpt) >= (int)sizeof(to)) {
		snprintf(why, whylen, "address too long");
		return TLSRPT_OUT_PERM;
	}
	if ((e = curl_easy_init()) == NULL)
		return TLSRPT_OUT_TEMP;
	rcpts = curl_slist_append(NULL, to);
	bad |= rcpts == NULL || common(s, e, &u, errbuf) < 0;
#define SET(opt, val) bad |= curl_easy_setopt(e, opt, val) != CURLE_OK
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp");
	SET(CURLOPT_USE_SSL, c->report.relay_starttls == CONF_REPORT_STARTTLS_REQUIRED
	                         ? (long)CURLUSESSL_ALL
	                         : (long)CURLUSESSL_TRY);
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, on_read);
	SET(CURLOPT_READDATA, &u);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	SET(CURLOPT_MAIL_FROM, from);
	SET(CURLOPT_MAIL_RCPT, rcpts);
	if (c->report.relay_user != NULL) {
		SET(CURLOPT_USERNAME, c->report.relay_user);
		SET(CURLOPT_PASSWORD, s->password);
	}
#undef SET
	if (bad) {
		snprintf(why, whylen, "cannot set up the transfer");
		goto done;
	}
	rc = run(s, e);
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK) {
		snprintf(why, whylen, "relay %s accepted (%ld)", c->report.relay, code);
		o = TLSRPT_OUT_DELIVERED;
		goto done;
	}
	reason(why, whylen, rc, errbuf);
	/* RFC 5321 section 4.2.1: 5yz is permanent, anything else may pass later. */
	o = code >= 500 && code <= 599 ? TLSRPT_OUT_PERM : TLSRPT_OUT_TEMP;
	if (code > 0) {
		size_t n = strlen(why);

		snprintf(why + n, whylen - n, " (reply %ld)", code);
	}
done:
	curl_easy_cleanup(e);
	curl_slist_free_all(rcpts);
	return o;
}
