/*
 * tlsrpt_cli.c - "stsproxy report show|send": the reporter's steps run in
 * the foreground, against the same store and records the daemon uses, so
 * that a report sent by hand is never sent again by the daily run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "policy/report_store.h"
#include "policy/tlsrpt_cli.h"
#include "policy/tlsrpt_reporter.h"

#define DEFAULT_CONF "/etc/stsproxy/stsproxy.conf"

static void
usage(FILE *f)
{
	fprintf(f, "usage: stsproxy report [-c FILE] show DOMAIN [YYYY-MM-DD]\n"
	           "       stsproxy report [-c FILE] send [--now] [DOMAIN]\n");
}

/* parse_day - "YYYY-MM-DD" as a UTC day; -1 when it is not one. */
static int
parse_day(const char *s, int64_t *day)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) != 10 || (end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
		return -1;
	*day = (int64_t)timegm(&tm);
	return *day >= 0 ? 0 : -1;
}

int
tlsrpt_cli_main(int argc, char **argv)
{
	const char *path = DEFAULT_CONF, *cmd = NULL, *args[2] = {NULL, NULL};
	struct report_store_params sp = {0};
	struct report_store *store = NULL;
	struct tlsrpt_reporter *r = NULL;
	struct tlsrpt_reporter_params rp = {0};
	char err[512], domain[STS_REPORT_DOMAIN_LEN];
	struct conf *c = NULL;
	int64_t now = (int64_t)time(NULL), today = now / 86400 * 86400, day, end;
	bool now_flag = false;
	int n_args = 0, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (++i == argc) {
				usage(stderr);
				return 2;
			}
			path = argv[i];
		} else if (strcmp(argv[i], "--now") == 0) {
			now_flag = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "stsproxy: report: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (cmd == NULL) {
			cmd = argv[i];
		} else if (n_args < 2) {
			args[n_args++] = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (cmd == NULL || (strcmp(cmd, "show") != 0 && strcmp(cmd, "send") != 0) ||
	    (strcmp(cmd, "show") == 0 && (n_args == 0 || now_flag)) ||
	    (strcmp(cmd, "send") == 0 && n_args > 1)) {
		usage(stderr);
		return 2;
	}
	domain[0] = '\0';
	if (args[0] != NULL && sts_domain_to_ascii(args[0], domain, sizeof(domain)) < 0) {
		fprintf(stderr, "stsproxy: report: \"%s\" is not a valid domain\n", args[0]);
		return 2;
	}
	if (strcmp(cmd, "show") == 0) {
		day = today;
		if (args[1] != NULL && parse_day(args[1], &day) < 0) {
			fprintf(stderr, "stsproxy: report: \"%s\" is not a date YYYY-MM-DD\n",
			        args[1]);
			return 2;
		}
	} else {
		day = now_flag ? today : today - 86400;
	}
	/* Section 4.1: a whole UTC day; the day not over yet ends now. */
	end = day + 86399 < now ? day + 86399 : now;

	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		return 1;
	}
	log_set_level(c->log.level > LOG_LVL_INFO ? c->log.level : LOG_LVL_INFO);
	sp.state_dir = c->state_dir;
	/* The daemon's own rows: what this gateway publishes to the others is its own. */
	sp.gateway_id = c->report_store.gateway_id;
	sp.keep_days = c->report_store.keep_days;
	if ((store = report_store_open(&sp, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: report: %s\n", err);
		goto out;
	}
	rp.conf = c;
	rp.store = store;
	if ((r = tlsrpt_reporter_new(&rp, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: report: %s\n", err);
		goto out;
	}
	if (strcmp(cmd, "show") == 0) {
		char *json = NULL;
		size_t len = 0;
		int got = tlsrpt_reporter_json(r, domain, day, end, &json, &len, err, sizeof(err));

		if (got < 0)
			fprintf(stderr, "stsproxy: report: %s\n", err);
		else if (got > 0)
			fprintf(stderr, "stsproxy: report: no results to report for %s on %s\n",
			        domain, args[1] != NULL ? args[1] : "this day");
		else
			printf("%s\n", json);
		free(json);
		rc = got == 0 ? 0 : 1;
		goto out;
	}
	{
		int queued = tlsrpt_reporter_queue_day(r, day, end, domain[0] ? domain : NULL, err,
		                                       sizeof(err));
		if (queued < 0) {
			fprintf(stderr, "stsproxy: report: %s\n", err);
			goto out;
		}
		rc = tlsrpt_reporter_drain(r) > 0 ? 1 : 0;
	}
out:
	tlsrpt_reporter_free(r);
	report_store_close(store);
	conf_free(c);
	return rc;
}
