/*
 * evlog.c - the JSON-lines event log.
 *
 * Each event is serialised into one buffer ending in a newline and written
 * with a single write(2) on an O_APPEND descriptor: the kernel then places
 * the whole line at the end of the file, so the proxy's loop threads and the
 * packet inspector (another process) never interleave partial lines. The
 * mutex only guards the descriptor against a concurrent reopen.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/evlog.h"
#include "core/util.h"

static pthread_mutex_t evlog_lock = PTHREAD_MUTEX_INITIALIZER;
static int evlog_fd = -1; /* -1: disabled */
static char *evlog_path;

static int
open_append(const char *path)
{
	int fd;

	do {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	} while (fd == -1 && errno == EINTR);
	return fd;
}

/* evlog_open - switch to path (NULL or "": disabled); 0 or -1 with errno. */
int
evlog_open(const char *path)
{
	char *copy = NULL;
	int fd = -1, old_fd;
	char *old_path;

	if (path != NULL && path[0] != '\0') {
		if ((copy = strdup(path)) == NULL)
			return -1;
		if ((fd = open_append(path)) == -1) {
			int saved = errno;
			free(copy);
			errno = saved;
			return -1;
		}
	}
	pthread_mutex_lock(&evlog_lock);
	old_fd = evlog_fd;
	old_path = evlog_path;
	evlog_fd = fd;
	evlog_path = copy;
	pthread_mutex_unlock(&evlog_lock);
	if (old_fd != -1)
		close(old_fd);
	free(old_path);
	return 0;
}

/* evlog_reopen - reopen the same path after rotation; 0 or -1 with errno. */
int
evlog_reopen(void)
{
	int fd, old_fd, ret = 0;

	pthread_mutex_lock(&evlog_lock);
	if (evlog_path == NULL) {
		pthread_mutex_unlock(&evlog_lock);
		return 0;
	}
	if ((fd = open_append(evlog_path)) == -1) {
		/* Keep writing to the old file rather than losing events. */
		ret = -1;
		old_fd = -1;
	} else {
		old_fd = evlog_fd;
		evlog_fd = fd;
	}
	pthread_mutex_unlock(&evlog_lock);
	if (old_fd != -1)
		close(old_fd);
	return ret;
}

/* evlog_close - disable the event log. */
void
evlog_close(void)
{
	(void)evlog_open(NULL);
}

/* RFC 3339 UTC with milliseconds: 2024-05-01T12:34:56.789Z */
static json_t *
timestamp(void)
{
	char buf[64];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		return NULL;
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return json_string(buf);
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* Only a full disk makes a regular file write short. */
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* evlog_write - one event, one line, one write(2); 0 or -1. */
int
evlog_write(json_t *event)
{
	json_t *obj = NULL, *ts;
	char *line = NULL;
	size_t len;
	int ret = -1, saved;
	bool enabled;

	pthread_mutex_lock(&evlog_lock);
	enabled = evlog_fd != -1;
	pthread_mutex_unlock(&evlog_lock);
	if (!enabled)
		return 0;
	if (!json_is_object(event)) {
		errno = EINVAL;
		return -1;
	}
	if (json_object_get(event, "ts") != NULL) {
		obj = json_incref(event);
	} else {
		/* A new object, so that the caller's event is left as it was. */
		if ((obj = json_object()) == NULL || (ts = timestamp()) == NULL)
			goto nomem;
		if (json_object_set_new(obj, "ts", ts) == -1 ||
		    json_object_update(obj, event) == -1)
			goto nomem;
	}
	if ((len = json_dumpb(obj, NULL, 0, JSON_COMPACT)) == 0) {
		errno = EINVAL;
		goto fail;
	}
	if (len == SIZE_MAX || (line = malloc(len + 1)) == NULL)
		goto nomem;
	if (json_dumpb(obj, line, len, JSON_COMPACT) != len) {
		errno = EINVAL;
		goto fail;
	}
	line[len] = '\n';

	pthread_mutex_lock(&evlog_lock);
	ret = evlog_fd == -1 ? 0 : write_all(evlog_fd, line, len + 1);
	saved = errno;
	pthread_mutex_unlock(&evlog_lock);
	errno = saved;
	goto out;
nomem:
	errno = ENOMEM;
fail:
	ret = -1;
out:
	saved = errno;
	free(line);
	json_decref(obj);
	errno = saved;
	return ret;
}

/* evlog_str - a JSON string from arbitrary bytes; NULL only on ENOMEM. */
json_t *
evlog_str(const char *s, size_t len)
{
	static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
	const unsigned char *in = (const unsigned char *)s;
	char *buf;
	size_t o = 0;
	json_t *str;

	if (len == 0)
		return json_string("");
	/* Each input byte becomes at most three output bytes. */
	if (len > (SIZE_MAX - 1) / 3 || (buf = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = sts_utf8_seq(in + i, len - i);
		if (n == 0) {
			memcpy(buf + o, replacement, 3);
			o += 3;
			i++;
		} else {
			memcpy(buf + o, in + i, n);
			o += n;
			i += n;
		}
	}
	/* Already checked above; jansson would only repeat the scan. */
	str = json_stringn_nocheck(buf, o);
	free(buf);
	return str;
}
