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
#include <unistd.h>

#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "main/daemon.h"
#include "policy/sts_mx.h"

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
};

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
			log_notice("event=stop signal=%s", strsignal((int)si.ssi_signo));
			loop_stop(loop);
			break;
		case SIGUSR1:
			if (log_reopen() < 0 || evlog_reopen() < 0)
				log_err("event=reopen error=\"%s\"", strerror(errno));
			break;
		case SIGHUP:
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
	char err[512];
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
	log_notice("event=start version=%s config=%s mode=%s", STSPROXY_VERSION, c->path,
	           c->mode == CONF_PROXY_ENFORCE ? "enforce" : "monitor");
	if (loop_run(d.loop) < 0) {
		log_err("event=loop error=\"%s\"", strerror(errno));
		d.status = -1;
	}
	log_notice("event=stopped");
	loop_fd_del(d.loop, d.sigfd);
	close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return d.status;
fail:
	if (d.sigfd >= 0)
		close(d.sigfd);
	loop_free(d.loop);
	evlog_close();
	return -1;
}
