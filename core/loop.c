/*
 * loop.c - the event loop: epoll for file descriptors, a binary min-heap
 * for one-shot timers.
 *
 * File descriptors are kept in a table indexed by fd. Each registration
 * carries a generation number that is also stored in the epoll data, so an
 * event returned by epoll_wait() for a registration that a callback deleted
 * or replaced earlier in the same batch is recognised as stale and dropped.
 *
 * A paused fd (mask 0) is taken out of the epoll set: epoll reports errors
 * and hang-ups even for an empty mask, and with level triggering that would
 * spin.
 *
 * Timers are ordered by (deadline, id) so that timers with the same deadline
 * fire in the order they were added. Each timer remembers its heap index,
 * and a small chained hash maps ids to timers, so cancel is O(log n).
 *
 * loop_once() counts fd and timer callbacks in its return value; the
 * before-sleep hook is not counted.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#define LOOP_BATCH        128
#define LOOP_HASH_INITIAL 64
#define LOOP_FDS_INITIAL  64

struct loop_fd {
	loop_fd_cb *cb;
	void *arg;
	int mask;     /* LOOP_READ|LOOP_WRITE; 0: paused, not in the epoll set */
	uint32_t gen; /* 0: not registered */
};

struct loop_timer {
	uint64_t id;
	uint64_t deadline;
	size_t heap_idx;
	loop_timer_cb *cb;
	void *arg;
	struct loop_timer *hnext; /* id hash chain */
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now;

	struct loop_fd *fds; /* indexed by fd; nfds entries */
	size_t nfds;
	uint32_t gen_next;

	/* Invariant: heap[i]->heap_idx == i; heap[(i-1)/2] sorts before heap[i]. */
	struct loop_timer **heap;
	size_t heap_len;
	size_t heap_cap;
	uint64_t timer_next_id;

	struct loop_timer **hash; /* hash_size buckets, a power of two */
	size_t hash_size;

	loop_before_sleep_cb *before_sleep;
	void *before_sleep_arg;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- timer id hash ------------------------------------------------------ */

static size_t
hash_slot(const struct loop *loop, uint64_t id)
{
	/* Fibonacci hashing: ids are sequential, this spreads them. */
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 32) & (loop->hash_size - 1);
}

static int
hash_grow(struct loop *loop)
{
	size_t old_size = loop->hash_size;
	struct loop_timer **old = loop->hash;
	struct loop_timer **nh;

	if ((nh = calloc(old_size * 2, sizeof(*nh))) == NULL)
		return -1;
	loop->hash = nh;
	loop->hash_size = old_size * 2;
	for (size_t i = 0; i < old_size; i++) {
		struct loop_timer *t = old[i], *next;
		for (; t != NULL; t = next) {
			size_t s = hash_slot(loop, t->id);
			next = t->hnext;
			t->hnext = nh[s];
			nh[s] = t;
		}
	}
	free(old);
	return 0;
}

static struct loop_timer *
hash_find(const struct loop *loop, uint64_t id)
{
	struct loop_timer *t = loop->hash[hash_slot(loop, id)];

	while (t != NULL && t->id != id)
		t = t->hnext;
	return t;
}

static void
hash_remove(struct loop *loop, const struct loop_timer *t)
{
	struct loop_timer **pp = &loop->hash[hash_slot(loop, t->id)];

	while (*pp != NULL && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp != NULL)
		*pp = t->hnext;
}

/* --- timer heap --------------------------------------------------------- */

static bool
timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->id < b->id;
}

static void
heap_set(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->heap_idx = i;
}

static void
heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void
heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= loop->heap_len)
			break;
		if (child + 1 < loop->heap_len &&
		    timer_before(loop->heap[child + 1], loop->heap[child]))
			child++;
		if (!timer_before(loop->heap[child], t))
			break;
		heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

/* Take t out of the heap and the hash; the caller frees it. */
static void
timer_unlink(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->heap_idx;
	struct loop_timer *last = loop->heap[--loop->heap_len];

	if (last != t) {
		heap_set(loop, i, last);
		/* The moved element may belong above or below its new place. */
		if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
			heap_up(loop, i);
		else
			heap_down(loop, i);
	}
	hash_remove(loop, t);
}

/* --- loop ----------------------------------------------------------------- */

/* loop_new - a new loop, or NULL (errno set). */
struct loop *
loop_new(void)
{
	struct loop *loop;
	int saved;

	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		return NULL;
	loop->epfd = -1;
	if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		goto fail;
	loop->hash_size = LOOP_HASH_INITIAL;
	if ((loop->hash = calloc(loop->hash_size, sizeof(*loop->hash))) == NULL)
		goto fail;
	loop->gen_next = 1;
	loop->timer_next_id = 1;
	loop->now = mono_ms();
	return loop;
fail:
	saved = errno;
	loop_free(loop);
	errno = saved;
	return NULL;
}

/* loop_free - frees the loop and its pending timers; NULL is a no-op. */
void
loop_free(struct loop *loop)
{
	if (loop == NULL)
		return;
	for (size_t i = 0; i < loop->heap_len; i++)
		free(loop->heap[i]);
	free(loop->heap);
	free(loop->hash);
	free(loop->fds);
	if (loop->epfd != -1)
		close(loop->epfd);
	free(loop);
}

static uint32_t
epoll_mask(int events)
{
	uint32_t m = 0;

	if (events & LOOP_READ)
		m |= EPOLLIN;
	if (events & LOOP_WRITE)
		m |= EPOLLOUT;
	return m;
}

static int
fds_reserve(struct loop *loop, int fd)
{
	size_t want = (size_t)fd + 1, n;
	struct loop_fd *nf;

	if (want <= loop->nfds)
		return 0;
	n = loop->nfds ? loop->nfds : LOOP_FDS_INITIAL;
	while (n < want)
		n *= 2;
	if ((nf = reallocarray(loop->fds, n, sizeof(*nf))) == NULL)
		return -1;
	memset(nf + loop->nfds, 0, (n - loop->nfds) * sizeof(*nf));
	loop->fds = nf;
	loop->nfds = n;
	return 0;
}

static uint32_t
next_gen(struct loop *loop)
{
	uint32_t g = loop->gen_next++;

	if (loop->gen_next == 0)
		loop->gen_next = 1;
	return g;
}

/* Point the epoll set at the registration of fd: add, modify or remove it. */
static int
epoll_apply(struct loop *loop, int fd, bool was_in, const struct loop_fd *r)
{
	struct epoll_event ev;
	int op;

	if (r->mask == 0) {
		if (was_in && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
			return -1;
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = epoll_mask(r->mask);
	ev.data.u64 = ((uint64_t)r->gen << 32) | (uint32_t)fd;
	op = was_in ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	return epoll_ctl(loop->epfd, op, fd, &ev);
}

/* loop_fd_add - watch fd (replacing any registration); 0 or -1 with errno. */
int
loop_fd_add(struct loop *loop, int fd, int events, loop_fd_cb *cb, void *arg)
{
	struct loop_fd nr;
	bool was_in;

	if (fd < 0 || cb == NULL || (events & ~(LOOP_READ | LOOP_WRITE)) != 0) {
		errno = fd < 0 ? EBADF : EINVAL;
		return -1;
	}
	if (fds_reserve(loop, fd) == -1)
		return -1;
	was_in = loop->fds[fd].gen != 0 && loop->fds[fd].mask != 0;
	nr.cb = cb;
	nr.arg = arg;
	nr.mask = events;
	nr.gen = next_gen(loop);
	if (epoll_apply(loop, fd, was_in, &nr) == -1)
		return -1;
	loop->fds[fd] = nr;
	return 0;
}

/* loop_fd_mod - change the mask of a registered fd; 0 or -1 (ENOENT if unknown). */
int
loop_fd_mod(struct loop *loop, int fd, int events)
{
	struct loop_fd nr;
	bool was_in;

	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].gen == 0) {
		errno = ENOENT;
		return -1;
	}
	if ((events & ~(LOOP_READ | LOOP_WRITE)) != 0) {
		errno = EINVAL;
		return -1;
	}
	/* Owners set the mask after every event; most often it is unchanged. */
	if (loop->fds[fd].mask == events)
		return 0;
	nr = loop->fds[fd];
	was_in = nr.mask != 0;
	nr.mask = events;
	if (epoll_apply(loop, fd, was_in, &nr) == -1)
		return -1;
	loop->fds[fd] = nr;
	return 0;
}

/* loop_fd_del - stop watching fd; unknown fds are ignored. */
void
loop_fd_del(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].gen == 0)
		return;
	if (loop->fds[fd].mask != 0)
		(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

/* loop_timer_add - a new one-shot timer; its id, or 0 on allocation failure. */
uint64_t
loop_timer_add(struct loop *loop, uint64_t ms, loop_timer_cb *cb, void *arg)
{
	struct loop_timer *t;
	size_t s;

	if (cb == NULL)
		return 0;
	if (loop->heap_len == loop->heap_cap) {
		size_t n = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **nh = reallocarray(loop->heap, n, sizeof(*nh));
		if (nh == NULL)
			return 0;
		loop->heap = nh;
		loop->heap_cap = n;
	}
	if (loop->heap_len >= loop->hash_size && hash_grow(loop) == -1)
		return 0;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return 0;
	t->id = loop->timer_next_id++;
	t->deadline = ms > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + ms;
	t->cb = cb;
	t->arg = arg;
	s = hash_slot(loop, t->id);
	t->hnext = loop->hash[s];
	loop->hash[s] = t;
	loop->heap[loop->heap_len] = t;
	t->heap_idx = loop->heap_len++;
	heap_up(loop, t->heap_idx);
	return t->id;
}

/* loop_timer_cancel - cancel a pending timer; other ids are ignored. */
void
loop_timer_cancel(struct loop *loop, uint64_t id)
{
	struct loop_timer *t;

	if (id == 0 || (t = hash_find(loop, id)) == NULL)
		return;
	timer_unlink(loop, t);
	free(t);
}

/* loop_set_before_sleep - install (or with NULL remove) the hook. */
void
loop_set_before_sleep(struct loop *loop, loop_before_sleep_cb *cb, void *arg)
{
	loop->before_sleep = cb;
	loop->before_sleep_arg = arg;
}

/* loop_now_ms - the cached monotonic time. */
uint64_t
loop_now_ms(struct loop *loop)
{
	return loop->now;
}

/* How long epoll_wait() may sleep: the caller's limit, cut to the next timer. */
static int
wait_ms(struct loop *loop, int timeout_ms)
{
	uint64_t now, left;

	if (loop->heap_len == 0)
		return timeout_ms < 0 ? -1 : timeout_ms;
	now = mono_ms();
	left = loop->heap[0]->deadline > now ? loop->heap[0]->deadline - now : 0;
	if (left > INT32_MAX)
		left = INT32_MAX;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < left)
		return timeout_ms;
	return (int)left;
}

/*
 * Run the timers due now. Timers added by these callbacks run in a later
 * iteration even when already due, so a callback that re-arms a zero-delay
 * timer cannot starve the fds. Those new timers always sort after the due
 * ones (their deadline is >= now and their id is larger), so stopping at
 * the first new id is enough.
 */
static int
run_timers(struct loop *loop)
{
	uint64_t first_new = loop->timer_next_id;
	int ran = 0;

	while (loop->heap_len > 0) {
		struct loop_timer *t = loop->heap[0];
		loop_timer_cb *cb;
		void *arg;

		if (t->deadline > loop->now || t->id >= first_new)
			break;
		cb = t->cb;
		arg = t->arg;
		timer_unlink(loop, t);
		free(t);
		cb(loop, arg);
		ran++;
	}
	return ran;
}

/* loop_once - one iteration; the number of callbacks run, or -1. */
int
loop_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event evs[LOOP_BATCH];
	int n, ran = 0;

	loop->now = mono_ms();
	if (loop->before_sleep != NULL)
		loop->before_sleep(loop, loop->before_sleep_arg);
	n = epoll_wait(loop->epfd, evs, LOOP_BATCH, wait_ms(loop, timeout_ms));
	if (n == -1) {
		if (errno != EINTR)
			return -1;
		n = 0;
	}
	loop->now = mono_ms();
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		struct loop_fd *r;
		int events = 0;

		/* Re-read the table each time: an earlier callback may have
		 * deleted, replaced or paused this fd, or grown the table. */
		if ((size_t)fd >= loop->nfds)
			continue;
		r = &loop->fds[fd];
		if (r->gen != gen || r->mask == 0)
			continue;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			events = LOOP_READ | LOOP_WRITE;
		if (evs[i].events & EPOLLIN)
			events |= LOOP_READ;
		if (evs[i].events & EPOLLOUT)
			events |= LOOP_WRITE;
		if ((evs[i].events & (EPOLLERR | EPOLLHUP)) == 0)
			events &= r->mask;
		if (events == 0)
			continue;
		r->cb(loop, fd, events, r->arg);
		ran++;
	}
	ran += run_timers(loop);
	return ran;
}

/* loop_run - iterate until loop_stop(); 0 after a stop, -1 on epoll failure. */
int
loop_run(struct loop *loop)
{
	loop->stop = false;
	while (!loop->stop) {
		if (loop_once(loop, -1) == -1)
			return -1;
	}
	return 0;
}

/* loop_stop - loop_run() returns after the current iteration. */
void
loop_stop(struct loop *loop)
{
	loop->stop = true;
}
