/*
 * notify.h - readiness and liveness for systemd (Type=notify, WatchdogSec).
 *
 * Thin wrappers over sd_notify(3) so that the daemon says what it means
 * (ready, reloading, stopping, a status line) and the watchdog is pinged
 * from the main loop: if that loop ever stalls, the pings stop and systemd
 * restarts the service. Everything is a no-op returning 0 when the process
 * was not started by systemd (NOTIFY_SOCKET unset).
 */
#ifndef STS_NOTIFY_H
#define STS_NOTIFY_H

struct loop;
struct notify_watchdog;

#define NOTIFY_STATUS_MAX 256 /* a longer status line is cut */

/*
 * notify_ready - "READY=1": start-up (or a reload) is complete. Like every
 * notify_* call: returns 1 when the message was sent, 0 when NOTIFY_SOCKET
 * is unset, -1 on a send error (never fatal: the caller may log it).
 */
int notify_ready(void);

/* notify_status - "STATUS=<text>", printf-style; line ends become spaces. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify_stopping - "STOPPING=1": a clean stop has begun (sessions draining). */
int notify_stopping(void);

/*
 * notify_reloading - "RELOADING=1" with MONOTONIC_USEC (as Type=notify-reload
 * wants); send notify_ready() when the new configuration is in force.
 */
int notify_reloading(void);

/*
 * notify_watchdog_start - when systemd's watchdog is on for this process
 * (WATCHDOG_USEC set and WATCHDOG_PID unset or ours), send "WATCHDOG=1"
 * from a timer on loop every half interval. Returns 1 with *out set (stop
 * it with notify_watchdog_stop()), 0 with *out NULL when the watchdog is
 * off, -1 on allocation failure.
 */
int notify_watchdog_start(struct loop *loop, struct notify_watchdog **out);

/* notify_watchdog_interval_ms - the ping period used by w. */
unsigned long long notify_watchdog_interval_ms(const struct notify_watchdog *w);

/* notify_watchdog_stop - cancel the timer and free w; NULL is a no-op. Call on the loop's thread.
 */
void notify_watchdog_stop(struct notify_watchdog *w);

#endif
