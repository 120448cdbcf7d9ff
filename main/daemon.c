/*
 * daemon.c - start-up, the main loop and signals.
 *
 * Signals arrive through a signalfd registered in the main loop, so that no
 * handler ever runs in the middle of a session's code.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "main/daemon.h"
#include "policy/sts_cache.h"
#include "policy/sts_mx.h"
#include "proxy/proxy.h"

int
daemon_check_conf(const struct conf *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct conf_policy *p = &c->policies[i];
		for (size_t j = 0; j < p->n_mx; j++) {
			if (!sts_mx_pattern_valid(p->mx[j])) {
				snprintf(err, errlen,
				         "%s:%d: policies[%zu].mx[%zu]: \"%s\" is not a valid MX "
				         "pattern (RFC 8461 section 4.1)",
				         c->path, p->line, i, j, p->mx[j]);
				return -1;
			}
		}
	}
	return 0;
}

struct daemon {
	const struct conf *conf;
	struct loop *loop;
	int sigfd;
	int status;
	struct sts_cache *cache; /* shared by every worker's policy engine */
	struct proxy *proxy;     /* NULL when nothing listens (no listen addresses) */
};

/*
 * state_dir_ensure - create the state directory (and missing parents) when
 * absent: the last component private to the daemon (0750), since it holds
 * the policy cache and the generated TLS key. An existing directory is left
 * as it is. 0, or -1 with err set.
 */
static int
state_dir_ensure(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	size_t len = strlen(dir);

	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "state_dir %s: not a directory", dir);
		return -1;
	}
	if (len == 0 || len >= sizeof(path)) {
		snprintf(err, errlen, "state_dir \"%s\": invalid path", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "state_dir: mkdir %.256s: %s", path, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* listen_text - "a,b,..." of the listen addresses for the start line; "none" without any. */
static const char *
listen_text(const struct conf *c, char *buf, size_t len)
{
	size_t off = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < c->n_listen; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", c->listen[i].text);

		if (n < 0 || (size_t)n >= len - off) {
			if (len >= 4) /* truncated: say so */
				memcpy(buf + len - 4, "...", 4);
			break;
		}
		off += (size_t)n;
	}
	return buf;
}

static void
on_signal(struct loop *loop, int fd, int events, void *arg)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			/* The workers are drained after loop_run() returns. */
			log_notice("event=stop signal=%s", strsignal((int)si.ssi_signo));
			loop_stop(loop);
			break;
		case SIGUSR1:
			if (log_reopen() < 0 || evlog_reopen() < 0)
				log_err("event=reopen error=\"%s\"", strerror(errno));
			break;
		case SIGHUP:
			/* Reload goes here: load and check a new struct conf, start
			 * a new proxy on it, then drain the old one. */
			log_notice("event=reload status=unchanged");
			break;
		}
	}
	(void)d;
}

int
daemon_run(const struct conf *c)
{
	struct daemon d = {.conf = c, .sigfd = -1};
	char err[512], addrs[512];
	sigset_t set;

	log_set_level(c->log.level);
	if (log_open(c->log.file) < 0) {
		log_err("event=start error=\"cannot open log file %s: %s\"", c->log.file,
		        strerror(errno));
		return -1;
	}
	if (daemon_check_conf(c, err, sizeof(err)) < 0) {
		log_err("event=start error=\"%s\"", err);
		return -1;
	}
	if (evlog_open(c->log.events) < 0) {
		log_err("event=start error=\"cannot open event file %s: %s\"", c->log.events,
		        strerror(errno));
		return -1;
	}
	if ((d.loop = loop_new()) == NULL) {
		log_err("event=start error=\"event loop: %s\"", strerror(errno));
		goto fail;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (d.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    loop_fd_add(d.loop, d.sigfd, LOOP_READ, on_signal, &d) < 0) {
		log_err("event=start error=\"signals: %s\"", strerror(errno));
		goto fail;
	}
	if (state_dir_ensure(c->state_dir, err, sizeof(err)) < 0 ||
	    (d.cache = sts_cache_open(c->state_dir, err, sizeof(err))) == NULL) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	/* The workers inherit the blocked signals: only the signalfd sees them. */
	if (c->n_listen > 0 && (d.proxy = proxy_start(c, d.cache, err, sizeof(err))) == NULL) {
		log_err("event=start error=\"%s\"", err);
		goto fail;
	}
	/* Privileges are dropped (c->user) and readiness is reported to
	 * systemd (sd_notify READY=1) here, once every listener is bound. */
	log_notice("event=start version=%s config=%s mode=%s listen=%s workers=%u "
	           "interception=%s cached_policies=%zu",
	           STSPROXY_VERSION, c->path, c->mode == CONF_PROXY_ENFORCE ? "enforce" : "monitor",
	           listen_text(c, addrs, sizeof(addrs)), d.proxy != NULL ? c->workers : 0,
	           c->interception == CONF_INTERCEPT_TPROXY ? "tproxy" : "redirect",
	           sts_cache_count(d.cache));
	if (loop_run(d.loop) < 0) {
		log_err("event=loop error=\"%s\"", strerror(errno));
		d.status = -1;
	}
	/* Drain: sessions answer 421 at their next safe point, then end. */
	proxy_stop(d.proxy);
	sts_cache_close(d.cache);
	log_notice("event=stopped");
	loop_fd_del(d.loop, d.sigfd);
	close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return d.status;
fail:
	proxy_stop(d.proxy);
	sts_cache_close(d.cache);
	if (d.sigfd >= 0)
		close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return -1;
}
