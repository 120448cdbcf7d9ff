/*
 * log.c - the main log.
 *
 * A single FILE * guarded by a mutex so that lines from several loop threads
 * never interleave. Lines are bounded (LOG_LINE_MAX); longer messages are
 * cut and marked with "...".
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define LOG_LINE_MAX 4096

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level log_level = LOG_LVL_INFO;
static FILE *log_file; /* NULL: stderr */
static char *log_path;

int
log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_open(const char *path)
{
	FILE *f = NULL;
	char *copy = NULL;

	if (path != NULL && path[0] != '\0') {
		if ((copy = strdup(path)) == NULL)
			return -1;
		if ((f = fopen(path, "a")) == NULL) {
			free(copy);
			return -1;
		}
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&log_lock);
	if (log_file != NULL)
		fclose(log_file);
	free(log_path);
	log_file = f;
	log_path = copy;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

int
log_reopen(void)
{
	FILE *f;
	int ret = 0;

	pthread_mutex_lock(&log_lock);
	if (log_path != NULL) {
		if ((f = fopen(log_path, "a")) == NULL) {
			ret = -1;
		} else {
			setvbuf(f, NULL, _IOLBF, 0);
			fclose(log_file);
			log_file = f;
		}
	}
	pthread_mutex_unlock(&log_lock);
	return ret;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	char stamp[40];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	pthread_mutex_lock(&log_lock);
	fprintf(log_file != NULL ? log_file : stderr, "%s.%03ldZ %s %s\n", stamp,
	        ts.tv_nsec / 1000000, level_names[level], line);
	pthread_mutex_unlock(&log_lock);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
