/*
 * nfq.h - the inline STARTTLS-downgrade inspector on NFQUEUE: port-25
 * flows that stsproxy does not proxy are queued by the rules in
 * scripts/nfq-iptables.sh or scripts/nfq-nftables.nft, inspected by
 * nfq/detect.c, and given a verdict.
 *
 * Verdicts and the rules they rely on (the marks below):
 *   accept   NF_ACCEPT, batched (NFQNL_MSG_VERDICT_BATCH) when consecutive
 *            and no packet of the queue is held (a batch verdict covers
 *            every earlier packet id of the queue).
 *   release  NF_REPEAT with packet mark NFQ_MARK_DECIDED: the rules' first
 *            entry copies that mark to the connection (CONNMARK) and
 *            accepts, and an early "connmark == NFQ_MARK_DECIDED -> accept"
 *            keeps the rest of the flow out of user space.
 *   drop     NF_DROP, and on the first drop of a flow a TCP RST to each end
 *            from a raw socket (sequence numbers from the dropped packet),
 *            so both the client and the server see the connection die.
 *   hold     no verdict yet (block mode): the packet carries a cleartext
 *            RCPT to a domain whose policy is being looked up; it stays in
 *            the kernel's queue until the answer, up to
 *            conf->nfq.hold_timeout, then gets one of the above. At most
 *            conf->nfq.hold_max packets are held at once, over all queues.
 *
 * One netlink socket per configured queue (conf->nfq.queues), all in the
 * caller's loop. Copy range 0xffff with NFQA_CFG_F_GSO; queue length 1024
 * plus hold_max, so held packets never fill a queue; NFQA_CFG_F_FAIL_OPEN
 * when conf->nfq.fail_open, which accepts packets only while this process
 * holds the queue and it is full; NETLINK_NO_ENOBUFS so a burst costs
 * packets (accepted or dropped by the kernel per fail_open) and never the
 * socket. While no process holds a queue, only the rules decide: packets
 * pass with --queue-bypass (nftables: "queue flags bypass") and are dropped
 * without it; packets held when the process ends are dropped by the kernel.
 */
#ifndef NFQ_NFQ_H
#define NFQ_NFQ_H

#include "core/conf.h"
#include "core/loop.h"
#include "nfq/detect.h"
#include "policy/sts_cache.h"
#include "policy/sts_engine.h"

/* The packet and connection mark meaning "inspection is over for this flow". */
#define NFQ_MARK_DECIDED 0x57500001u

struct nfq;

struct nfq_callbacks {
	/*
	 * lookup - start an asynchronous MTA-STS lookup of domain (lower case,
	 * A-labels) whose policy is not known: 0 when started, -1 when it
	 * cannot start (nothing waits for it then). Whatever its outcome, the
	 * caller tells its end with nfq_answer(), later, from the loop (never
	 * inside this call); until then a packet that named domain may be
	 * held. Must not block. The inspector asks at most once per domain
	 * per flow; the daemon should coalesce (sts_engine_lookup() shares
	 * concurrent lookups). NULL: none, and nothing is held.
	 */
	int (*lookup)(void *arg, const char *domain);
	/*
	 * policy - the mode of domain's policy as the daemon's engine knows it
	 * without I/O (operator policies first, then the cache): an enum
	 * sts_mode, or -1 when unknown. NULL: the inspector reads the cache
	 * alone (operator policies are then not seen).
	 */
	int (*policy)(void *arg, const char *domain);
	void *arg;
	/* counters of the shared Redis (shared.*) the inspector also uses; NULL: not counted */
	struct shared_stats *shared_stats;
};

/*
 * nfq_start - bind every queue of conf->nfq.queues and register them in
 * loop. conf and cache (NULL: no policy knowledge) must outlive the
 * inspector. The server memory lives in conf->state_dir. Returns NULL with
 * one line in err (a queue already bound, no CAP_NET_ADMIN, ...), with
 * everything opened so far closed again.
 */
struct nfq *nfq_start(struct loop *loop, const struct conf *conf, struct sts_cache *cache,
                      const struct nfq_callbacks *cb, char *err, size_t errlen);

/* nfq_stop - unbind, close, save the server memory, free; NULL is a no-op. */
void nfq_stop(struct nfq *n);

/* nfq_stats - the detector's counters (for metrics). */
void nfq_stats(const struct nfq *n, struct detect_stats *out);

/* nfq_flows - flows the detector tracks now; call from the thread that runs the queue. */
size_t nfq_flows(const struct nfq *n);

/* nfq_holds - verdicts waiting for a lookup now; from the thread that runs the queue. */
size_t nfq_holds(const struct nfq *n);

/*
 * nfq_answer - a lookup started through callbacks.lookup ended with
 * answer a (a->domain is the domain looked up): the packets waiting for it
 * are judged and get their verdicts now (STS_DEFER: no answer, the
 * configured hold_timeout_action). From the loop that runs the queues.
 */
void nfq_answer(struct nfq *n, const struct sts_answer *a);

#endif
