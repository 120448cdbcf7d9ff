/*
 * notify.c - sd_notify(3) messages and the watchdog timer.
 *
 * The environment is left in place (unset_environment = 0) so that every
 * later message, and the watchdog, still find the socket.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "core/loop.h"
#include "main/notify.h"

struct notify_watchdog {
	struct loop *loop;
	uint64_t interval_ms;
	uint64_t timer;
};

/* notify_msg - sd_notify() mapped to 1 sent, 0 not under systemd, -1 error. */
static int
notify_msg(const char *msg)
{
	int rc = sd_notify(0, msg);

	return rc > 0 ? 1 : rc == 0 ? 0 : -1;
}

/* notify_ready - see notify.h */
int
notify_ready(void)
{
	return notify_msg("READY=1");
}

/* notify_stopping - see notify.h */
int
notify_stopping(void)
{
	return notify_msg("STOPPING=1");
}

/* notify_reloading - see notify.h */
int
notify_reloading(void)
{
	char msg[64];
	struct timespec ts;

	/* systemd matches the reload with this clock reading (CLOCK_MONOTONIC, us). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000);
	return notify_msg(msg);
}

/* notify_status - see notify.h */
int
notify_status(const char *fmt, ...)
{
	char msg[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
	va_list ap;
	int n;

	memcpy(msg, "STATUS=", 7);
	va_start(ap, fmt);
	n = vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	/* One message field per line: a line end would start a bogus field. */
	for (char *p = msg + 7; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return notify_msg(msg);
}

static void
watchdog_fire(struct loop *loop, void *arg)
{
	struct notify_watchdog *w = arg;

	w->timer = 0;
	(void)notify_msg("WATCHDOG=1");
	w->timer = loop_timer_add(loop, w->interval_ms, watchdog_fire, w);
}

/* notify_watchdog_start - see notify.h */
int
notify_watchdog_start(struct loop *loop, struct notify_watchdog **out)
{
	struct notify_watchdog *w;
	uint64_t usec = 0;

	*out = NULL;
	/* sd_watchdog_enabled() checks WATCHDOG_PID against getpid() itself. */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->loop = loop;
	/* Half the interval, as sd_watchdog_enabled(3) recommends. */
	w->interval_ms = usec / 2000 > 0 ? usec / 2000 : 1;
	if ((w->timer = loop_timer_add(loop, w->interval_ms, watchdog_fire, w)) == 0) {
		free(w);
		return -1;
	}
	/* The first ping goes now: start-up may have used much of the interval. */
	(void)notify_msg("WATCHDOG=1");
	*out = w;
	return 1;
}

/* notify_watchdog_interval_ms - see notify.h */
unsigned long long
notify_watchdog_interval_ms(const struct notify_watchdog *w)
{
	return w != NULL ? w->interval_ms : 0;
}

/* notify_watchdog_stop - see notify.h */
void
notify_watchdog_stop(struct notify_watchdog *w)
{
	if (w == NULL)
		return;
	loop_timer_cancel(w->loop, w->timer);
	free(w);
}
