/*
 * log.c - the main log.
 *
 * A single FILE * guarded by a mutex so that lines from several loop threads
 * never interleave. Lines are bounded (LOG_LINE_MAX); longer messages are
 * cut and marked with "...".
 *
 * Under systemd the same lines go to the journal natively (see log.h), with
 * the session id, domain, result type and event as fields of their own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "core/log.h"

#define LOG_LINE_MAX 4096

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level log_level = LOG_LVL_INFO;
static FILE *log_file; /* NULL: stderr */
static char *log_path;
static int log_journal = -1; /* stderr is the journal: -1 not known yet, 0 no, 1 yes */

/* syslog priorities of our levels, for the journal's PRIORITY field */
static const int level_priority[] = {3, 4, 5, 6, 7};

/* Keys of log_fields(), in output order; "result" is RESULT_TYPE's fallback. */
static const struct {
	const char *key;
	const char *field;
} field_keys[LOG_FIELDS_MAX] = {
    {"session", "SESSION_ID"},
    {"domain", "DOMAIN"},
    {"result_type", "RESULT_TYPE"},
    {"event", "EVENT"},
};

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
	log_journal = -1;
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

/*
 * field_value - copy the value at p (bare word or quoted string) into out,
 * cut to outlen - 1 octets; returns where the value ends in msg.
 */
static const char *
field_value(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			if (n + 1 < outlen)
				out[n++] = *p;
		}
		if (*p == '"')
			p++;
	} else {
		for (; *p != '\0' && *p != ' ' && *p != '\t'; p++)
			if (n + 1 < outlen)
				out[n++] = *p;
	}
	out[n] = '\0';
	return p;
}

/* log_fields - see log.h */
size_t
log_fields(const char *msg, struct log_field out[LOG_FIELDS_MAX])
{
	char found[LOG_FIELDS_MAX][LOG_FIELD_VALUE_MAX];
	char fallback[LOG_FIELD_VALUE_MAX] = ""; /* result= */
	char value[LOG_FIELD_VALUE_MAX];
	bool have[LOG_FIELDS_MAX] = {false};
	const char *p = msg;
	size_t n = 0;

	while (*p != '\0') {
		const char *key;
		size_t klen;

		while (*p == ' ' || *p == '\t')
			p++;
		key = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
			p++;
		klen = (size_t)(p - key);
		if (klen == 0 || *p != '=') {
			/* not a key: skip the word (a quoted value is skipped whole) */
			if (*p == '"')
				p = field_value(p, value, sizeof(value));
			while (*p != '\0' && *p != ' ' && *p != '\t') {
				if (*p == '"')
					p = field_value(p, value, sizeof(value));
				else
					p++;
			}
			continue;
		}
		p = field_value(p + 1, value, sizeof(value));
		if (value[0] == '\0')
			continue;
		if (klen == 6 && memcmp(key, "result", 6) == 0) {
			if (fallback[0] == '\0')
				memcpy(fallback, value, sizeof(fallback));
			continue;
		}
		for (size_t i = 0; i < LOG_FIELDS_MAX; i++) {
			if (!have[i] && strlen(field_keys[i].key) == klen &&
			    memcmp(key, field_keys[i].key, klen) == 0) {
				memcpy(found[i], value, sizeof(found[i]));
				have[i] = true;
			}
		}
	}
	if (!have[2] && fallback[0] != '\0') {
		memcpy(found[2], fallback, sizeof(found[2]));
		have[2] = true;
	}
	for (size_t i = 0; i < LOG_FIELDS_MAX; i++) {
		if (!have[i])
			continue;
		out[n].name = field_keys[i].field;
		memcpy(out[n].value, found[i], sizeof(out[n].value));
		n++;
	}
	return n;
}

/* log_is_journal_stream - see log.h */
bool
log_is_journal_stream(const char *env, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	int used = 0;

	if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &used) != 2 ||
	    env[used] != '\0' || fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* journal_send - one line to the journal; 0, or -1 if it was not taken. */
static int
journal_send(enum log_level level, const char *line)
{
	struct log_field fields[LOG_FIELDS_MAX];
	char fbuf[LOG_FIELDS_MAX][LOG_FIELD_VALUE_MAX + 16];
	char prio[16];
	struct iovec iov[3 + LOG_FIELDS_MAX];
	size_t n = log_fields(line, fields), k = 0;
	char *msg;
	int rc;

	if ((msg = malloc(strlen(line) + sizeof("MESSAGE="))) == NULL)
		return -1;
	memcpy(msg, "MESSAGE=", 8);
	memcpy(msg + 8, line, strlen(line) + 1);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", level_priority[level]);
	iov[k++] = (struct iovec){.iov_base = msg, .iov_len = strlen(msg)};
	iov[k++] = (struct iovec){.iov_base = prio, .iov_len = strlen(prio)};
	iov[k++] = (struct iovec){.iov_base = (char *)"SYSLOG_IDENTIFIER=stsproxy",
	                          .iov_len = sizeof("SYSLOG_IDENTIFIER=stsproxy") - 1};
	for (size_t i = 0; i < n; i++) {
		int m =
		    snprintf(fbuf[i], sizeof(fbuf[i]), "%s=%s", fields[i].name, fields[i].value);

		if (m < 0 || (size_t)m >= sizeof(fbuf[i]))
			continue;
		iov[k++] = (struct iovec){.iov_base = fbuf[i], .iov_len = (size_t)m};
	}
	rc = sd_journal_sendv(iov, (int)k);
	free(msg);
	return rc < 0 ? -1 : 0;
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
	if (log_file == NULL) {
		if (log_journal < 0)
			log_journal =
			    log_is_journal_stream(getenv("JOURNAL_STREAM"), STDERR_FILENO);
		/* The journal stamps lines itself; stderr stays the fallback. */
		if (log_journal == 1 && journal_send(level, line) == 0) {
			pthread_mutex_unlock(&log_lock);
			return;
		}
	}
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
