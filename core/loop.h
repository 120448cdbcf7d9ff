/*
 * loop.h - the event loop: epoll file descriptor events and one-shot timers.
 *
 * Small enough to read in one sitting, in the spirit of redis ae: one loop
 * per thread, no locking inside. Every other module (the resolver through
 * ub_fd(), libcurl through its socket callbacks, sessions) registers here.
 *
 * Ownership: the loop never closes a file descriptor and never frees a
 * callback argument; whoever registered them removes them.
 */
#ifndef STS_LOOP_H
#define STS_LOOP_H

#include <stdint.h>

struct loop;

enum {
	LOOP_READ = 1,
	LOOP_WRITE = 2,
};

/*
 * loop_fd_cb - fd is ready; events is a mask of LOOP_READ/LOOP_WRITE (an
 * error or hang-up is reported as both, so that the next read or write sees
 * it). The callback may delete its own or any other registration.
 */
typedef void loop_fd_cb(struct loop *loop, int fd, int events, void *arg);

/* loop_timer_cb - the timer fired; it is already removed when this runs. */
typedef void loop_timer_cb(struct loop *loop, void *arg);

/* loop_before_sleep_cb - runs once per iteration before waiting. */
typedef void loop_before_sleep_cb(struct loop *loop, void *arg);

/* loop_new - a new loop, or NULL (errno set). Free with loop_free(). */
struct loop *loop_new(void);

/* loop_free - frees the loop; NULL is a no-op. Pending timers are dropped. */
void loop_free(struct loop *loop);

/* loop_fd_add - watch fd for events; 0, or -1 (errno set). Replaces an existing registration. */
int loop_fd_add(struct loop *loop, int fd, int events, loop_fd_cb *cb, void *arg);

/*
 * loop_fd_mod - change the event mask of a registered fd; 0 or -1. A mask
 * of 0 pauses it; the mask it already has costs no system call.
 */
int loop_fd_mod(struct loop *loop, int fd, int events);

/* loop_fd_del - stop watching fd; unknown fds are ignored. Call before close(). */
void loop_fd_del(struct loop *loop, int fd);

/*
 * loop_timer_add - call cb once after ms milliseconds. Returns a non-zero
 * timer id, or 0 on allocation failure. Ids are never reused by one loop.
 */
uint64_t loop_timer_add(struct loop *loop, uint64_t ms, loop_timer_cb *cb, void *arg);

/* loop_timer_cancel - cancel a pending timer; 0 and unknown or fired ids are ignored. */
void loop_timer_cancel(struct loop *loop, uint64_t id);

/* loop_set_before_sleep - hook run before each wait (NULL removes it). */
void loop_set_before_sleep(struct loop *loop, loop_before_sleep_cb *cb, void *arg);

/* loop_now_ms - monotonic milliseconds, cached once per iteration. */
uint64_t loop_now_ms(struct loop *loop);

/*
 * loop_once - wait at most timeout_ms (-1: until the next timer or event),
 * dispatch what is ready and the timers due. Returns the number of callbacks
 * run, or -1 on a fatal epoll error.
 */
int loop_once(struct loop *loop, int timeout_ms);

/* loop_run - loop_once() until loop_stop(); 0 after a stop, -1 on a fatal error. */
int loop_run(struct loop *loop);

/* loop_stop - make loop_run() return after the current iteration. */
void loop_stop(struct loop *loop);

#endif
