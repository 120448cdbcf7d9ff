// sources: nfq/nfq.c nfq/detect.c nfq/flow.c nfq/srvmem.c nfq/packet.c policy/sts_cache.c policy/sts_seen.c policy/sts_policy.c policy/sts_mx.c core/conf.c core/loop.c core/evlog.c core/log.c core/util.c core/types.c
/*
 * nfq_driver.c - runs the packet inspector alone on the queues of a
 * configuration file, for the inline integration test:
 *
 *   nfq_driver CONF [--enforce DOMAIN]...
 *
 * --enforce caches an enforce policy for DOMAIN in state_dir before
 * starting, as if it had been fetched. Lookups of unknown domains are
 * logged ("event=lookup domain=..."). Runs until SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/evlog.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "nfq/nfq.h"
#include "policy/sts_cache.h"
#include "policy/sts_policy.h"

static void
on_lookup(void *arg, const char *domain)
{
	(void)arg;
	log_notice("nfq_driver: event=lookup domain=%s", domain);
}

static void
on_signal(struct loop *loop, int fd, int events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	if (read(fd, &si, sizeof(si)) > 0)
		loop_stop(loop);
}

int
main(int argc, char **argv)
{
	static const char policy[] =
	    "version: STSv1\nmode: enforce\nmx: *.example\nmax_age: 86400\n";
	struct nfq_callbacks cb = {.lookup = on_lookup};
	struct sts_policy p = {0};
	struct sts_policy_error perr;
	struct sts_cache *cache = NULL;
	struct conf *conf = NULL;
	struct loop *loop = NULL;
	struct nfq *n = NULL;
	char err[512];
	sigset_t set;
	int i, sfd = -1, rc = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: nfq_driver CONF [--enforce DOMAIN]...\n");
		return 2;
	}
	if ((conf = conf_load(argv[1], err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	log_set_level(conf->log.level);
	if (evlog_open(conf->log.events) < 0) {
		fprintf(stderr, "%s: cannot open\n", conf->log.events);
		goto fail;
	}
	if ((cache = sts_cache_open(conf->state_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--enforce") != 0)
			continue;
		if (sts_policy_parse(policy, sizeof(policy) - 1, &p, &perr) < 0) {
			fprintf(stderr, "policy: invalid\n");
			goto fail;
		}
		sts_cache_put(cache, argv[i + 1], "lab1", policy, sizeof(policy) - 1, &p,
		              sts_now_wall());
		sts_policy_clear(&p);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((loop = loop_new()) == NULL || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    loop_fd_add(loop, sfd, LOOP_READ, on_signal, NULL) < 0)
		goto fail;
	if ((n = nfq_start(loop, conf, cache, &cb, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	fprintf(stderr, "nfq_driver: ready\n");
	rc = loop_run(loop) < 0;
fail:
	nfq_stop(n);
	if (sfd >= 0) {
		loop_fd_del(loop, sfd);
		close(sfd);
	}
	loop_free(loop);
	sts_cache_close(cache);
	evlog_close();
	conf_free(conf);
	return rc;
}
