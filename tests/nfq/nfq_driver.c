// sources: nfq/nfq.c nfq/detect.c nfq/hold.c nfq/flow.c nfq/srvmem.c nfq/packet.c policy/sts_cache.c policy/sts_claim.c policy/sts_seen.c policy/sts_policy.c policy/sts_mx.c core/conf.c core/loop.c core/evlog.c core/log.c core/util.c core/types.c
// sources: policy/shared_state.c policy/shared_value.c core/redis_loop.c
/*
 * nfq_driver.c - runs the packet inspector alone on the queues of a
 * configuration file, for the inline integration test and the benchmark:
 *
 *   nfq_driver CONF [--enforce DOMAIN]... [--answer DOMAIN=MODE]...
 *              [--lookup-ms MS] [--forget]
 *
 * --enforce caches an enforce policy for DOMAIN in state_dir before
 * starting, as if it had been fetched. Lookups of unknown domains are
 * logged ("event=lookup domain=..."); one of a domain named by --answer
 * (DOMAIN "*": any other domain) ends MS milliseconds later (default 0)
 * with MODE: enforce, testing, none, or tempfail (the resolver failed);
 * any other lookup never ends, so the inspector's hold timeout decides.
 * Answers are remembered as a cache would remember them, unless --forget
 * (then every flow is a first contact). Runs until SIGTERM or SIGINT.
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

#define ANSWERS_MAX 64
#define LEARNT_MAX  1024
#define TEMPFAIL    (-1)

struct rule {
	const char *domain; /* "*": any */
	int mode;           /* STS_MODE_* or TEMPFAIL */
};

/* A lookup waiting for its timer. */
struct pending {
	struct pending *next;
	uint64_t timer;
	int mode;
	char domain[256];
};

static struct {
	struct loop *loop;
	struct nfq *nfq;
	struct sts_cache *cache;
	struct rule rules[ANSWERS_MAX];
	size_t n_rules;
	unsigned lookup_ms;
	bool forget;
	struct pending *pending;
	struct rule learnt[LEARNT_MAX];
	char learnt_names[LEARNT_MAX][256];
	size_t n_learnt;
} drv;

static int
mode_of(const char *name)
{
	static const char *const names[] = {"none", "testing", "enforce", NULL};
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(name, names[i]) == 0)
			return i == 0   ? STS_MODE_NONE
			       : i == 1 ? STS_MODE_TESTING
			                : STS_MODE_ENFORCE;
	return strcmp(name, "tempfail") == 0 ? TEMPFAIL : -2;
}

static void
on_answer(struct loop *loop, void *arg)
{
	static struct sts_answer a;
	struct pending *p = arg, **pp;

	(void)loop;
	for (pp = &drv.pending; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	memset(&a, 0, sizeof(a));
	sts_strlcpy(a.domain, p->domain, sizeof(a.domain));
	a.status = p->mode == TEMPFAIL        ? STS_DEFER
	           : p->mode == STS_MODE_NONE ? STS_NO_POLICY
	                                      : STS_POLICY;
	a.mode = p->mode == TEMPFAIL ? STS_MODE_NONE : (enum sts_mode)p->mode;
	if (!drv.forget && p->mode != TEMPFAIL && drv.n_learnt < LEARNT_MAX) {
		sts_strlcpy(drv.learnt_names[drv.n_learnt], p->domain, 256);
		drv.learnt[drv.n_learnt].domain = drv.learnt_names[drv.n_learnt];
		drv.learnt[drv.n_learnt++].mode = p->mode;
	}
	log_notice("nfq_driver: event=answer domain=%s mode=%d", p->domain, p->mode);
	nfq_answer(drv.nfq, &a);
	free(p);
}

static int
on_lookup(void *arg, const char *domain)
{
	struct pending *p;
	size_t i;

	(void)arg;
	log_notice("nfq_driver: event=lookup domain=%s", domain);
	for (i = 0; i < drv.n_rules; i++)
		if (strcmp(drv.rules[i].domain, domain) == 0 ||
		    strcmp(drv.rules[i].domain, "*") == 0)
			break;
	if (i == drv.n_rules)
		return 0; /* never answers */
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	sts_strlcpy(p->domain, domain, sizeof(p->domain));
	p->mode = drv.rules[i].mode;
	if ((p->timer = loop_timer_add(drv.loop, drv.lookup_ms, on_answer, p)) == 0) {
		free(p);
		return -1;
	}
	p->next = drv.pending;
	drv.pending = p;
	return 0;
}

/* on_policy - what was learnt from answers, then the cache (as the daemon). */
static int
on_policy(void *arg, const char *domain)
{
	const struct sts_cache_entry *e;
	int mode = -1;
	size_t i;

	(void)arg;
	for (i = 0; i < drv.n_learnt; i++)
		if (strcmp(drv.learnt[i].domain, domain) == 0)
			return drv.learnt[i].mode;
	if ((e = sts_cache_get(drv.cache, domain)) != NULL) {
		if (e->expires_at > sts_now_wall())
			mode = (int)e->policy.mode;
		sts_cache_release(e);
	}
	return mode;
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
	struct nfq_callbacks cb = {.lookup = on_lookup, .policy = on_policy};
	struct sts_policy p = {0};
	struct sts_policy_error perr;
	struct conf *conf = NULL;
	struct pending *pd;
	char err[512], *eq;
	sigset_t set;
	int i, sfd = -1, rc = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: nfq_driver CONF [--enforce DOMAIN]... "
		                "[--answer DOMAIN=MODE]... [--lookup-ms MS] [--forget]\n");
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
	if ((drv.cache = sts_cache_open(conf->state_dir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--forget") == 0) {
			drv.forget = true;
		} else if (strcmp(argv[i], "--lookup-ms") == 0 && i + 1 < argc) {
			drv.lookup_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--answer") == 0 && i + 1 < argc &&
		           (eq = strchr(argv[++i], '=')) != NULL && drv.n_rules < ANSWERS_MAX) {
			*eq = '\0';
			drv.rules[drv.n_rules].domain = argv[i];
			if ((drv.rules[drv.n_rules++].mode = mode_of(eq + 1)) == -2) {
				fprintf(stderr, "--answer: unknown mode %s\n", eq + 1);
				goto fail;
			}
		} else if (strcmp(argv[i], "--enforce") == 0 && i + 1 < argc) {
			if (sts_policy_parse(policy, sizeof(policy) - 1, &p, &perr) < 0) {
				fprintf(stderr, "policy: invalid\n");
				goto fail;
			}
			sts_cache_put(drv.cache, argv[++i], "lab1", policy, sizeof(policy) - 1, &p,
			              sts_now_wall());
			sts_policy_clear(&p);
		} else {
			fprintf(stderr, "nfq_driver: unknown argument %s\n", argv[i]);
			goto fail;
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((drv.loop = loop_new()) == NULL || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
	    loop_fd_add(drv.loop, sfd, LOOP_READ, on_signal, NULL) < 0)
		goto fail;
	if ((drv.nfq = nfq_start(drv.loop, conf, drv.cache, &cb, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	fprintf(stderr, "nfq_driver: ready\n");
	rc = loop_run(drv.loop) < 0;
fail:
	nfq_stop(drv.nfq);
	while ((pd = drv.pending) != NULL) {
		drv.pending = pd->next;
		loop_timer_cancel(drv.loop, pd->timer);
		free(pd);
	}
	if (sfd >= 0) {
		loop_fd_del(drv.loop, sfd);
		close(sfd);
	}
	loop_free(drv.loop);
	sts_cache_close(drv.cache);
	evlog_close();
	conf_free(conf);
	return rc;
}
