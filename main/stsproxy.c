/*
 * stsproxy.c - the command line: the daemon and the operator commands.
 *
 *   stsproxy [-c FILE]                  run the daemon in the foreground
 *   stsproxy [-c FILE] --check-config   validate FILE, exit 0 or 1
 *   stsproxy [-c FILE] policy DOMAIN    look a domain's policy up
 *   stsproxy [-c FILE] ctl COMMAND      ask the running daemon (control socket)
 *   stsproxy [-c FILE] report show|send  TLS-RPT reports: show one, send now
 *   stsproxy check ...                  validate a TXT record, a policy, a pattern
 *
 * Options before a command apply to it as if written after it: -c FILE
 * reaches policy, ctl and report. The daemon never forks itself into the
 * background: systemd (Type=notify) and the tests supervise it as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "main/control.h"
#include "main/daemon.h"
#include "main/dirs.h"
#include "main/fdlimit.h"
#include "policy/sts_check.h"
#include "policy/sts_cli.h"
#include "policy/tlsrpt_cli.h"

#define DEFAULT_CONF "/etc/stsproxy/stsproxy.conf"

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: stsproxy [-c FILE] [--check-config]\n"
	        "       stsproxy [-c FILE] policy [--json] DOMAIN\n"
	        "       stsproxy [-c FILE] ctl [-s SOCKET] COMMAND\n"
	        "       stsproxy [-c FILE] report show DOMAIN [YYYY-MM-DD]\n"
	        "       stsproxy [-c FILE] report send [--now] [DOMAIN]\n"
	        "       stsproxy check txt RECORD... | check policy FILE | check mx PATTERN HOST\n"
	        "       stsproxy check tlsa RECORD CERTFILE [HOST]\n"
	        "       stsproxy --version | --help\n"
	        "\n"
	        "options (before or after a command):\n"
	        "  -c, --config FILE   configuration file (default " DEFAULT_CONF ")\n"
	        "  -t, --check-config  validate the configuration and the directories it names,\n"
	        "                      exit 0 or 1\n"
	        "  -V, --version       print the version\n"
	        "  -h, --help          this text\n"
	        "\n"
	        "commands:\n"
	        "  policy [--json] DOMAIN    look DOMAIN's MTA-STS policy and the DANE state of\n"
	        "                            its MX hosts up live, through the configured\n"
	        "                            resolver and the policy cache\n"
	        "  check txt RECORD...       validate an _mta-sts TXT record\n"
	        "  check policy FILE         validate a policy file (-: standard input)\n"
	        "  check mx PATTERN HOST     exit 0 if HOST matches the MX pattern, 1 if not,\n"
	        "                            2 if the pattern is invalid\n"
	        "  check tlsa RECORD CERTFILE [HOST]\n"
	        "                            exit 0 if the TLSA record (\"3 1 1 <hex>\") matches\n"
	        "                            the chain in CERTFILE (PEM, server first) as DANE\n"
	        "                            would; DANE-TA checks the name HOST; 1 if not, 2 if\n"
	        "                            the record does not parse\n"
	        "  ctl [-s SOCKET] COMMAND   ask the running daemon, through control.socket\n"
	        "                            of FILE or through SOCKET:\n"
	        "      status                version, configuration, sessions, cached policies\n"
	        "      cache list            the cached policies\n"
	        "      cache flush DOMAIN    forget the cached policy of DOMAIN\n"
	        "      cache refresh DOMAIN  fetch the policy of DOMAIN again now\n"
	        "      report                today's TLS results per policy domain (UTC)\n"
	        "  report show DOMAIN [YYYY-MM-DD]\n"
	        "                            the TLS-RPT report (RFC 8460 JSON) of DOMAIN for\n"
	        "                            the UTC day (default: today so far), as it would\n"
	        "                            be sent\n"
	        "  report send [--now] [DOMAIN]\n"
	        "                            send the previous UTC day's reports not sent yet,\n"
	        "                            now, retrying as configured; --now: the current\n"
	        "                            day so far (the daily run then skips that day)\n"
	        "\n"
	        "stsproxy relays outbound SMTP sessions, upgrades them to STARTTLS and\n"
	        "refuses delivery where a domain's DANE TLSA records or MTA-STS policy\n"
	        "are not met.\n"
	        "See stsproxy(8) and stsproxy.conf(5).\n");
}

/*
 * check_open_files - a note when the hard open-files limit here is below
 * what max_sessions needs: the daemon would then lower max_sessions.
 */
static void
check_open_files(const struct conf *c)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max >= fdlimit_need(c))
		return;
	printf("stsproxy: %s: max_sessions: %u sessions need %llu open files, the hard limit "
	       "here is %llu: started here, stsproxy would allow %u at once\n",
	       c->path, c->max_sessions, (unsigned long long)fdlimit_need(c),
	       (unsigned long long)rl.rlim_max, fdlimit_sessions(c, rl.rlim_max));
}

/*
 * check_config - load and validate path, with what the modules check
 * themselves and the directories the daemon needs (dirs.h): a directory
 * that will be created is a note on stdout, one that stops the start an
 * error on stderr.
 */
static int
check_config(const char *path)
{
	char err[512], prefix[600];
	struct conf *c;
	int bad;

	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		return 1;
	}
	if (daemon_check_conf(c, err, sizeof(err)) < 0) {
		fprintf(stderr, "stsproxy: %s\n", err);
		conf_free(c);
		return 1;
	}
	snprintf(prefix, sizeof(prefix), "stsproxy: %s: ", path);
	bad = dirs_check(c, prefix, stdout, stderr);
	check_open_files(c);
	conf_free(c);
	if (bad > 0) {
		fflush(stdout);
		fprintf(stderr, "stsproxy: %s: %d director%s would stop the start\n", path, bad,
		        bad == 1 ? "y" : "ies");
		return 1;
	}
	printf("%s: ok\n", path);
	return 0;
}

/*
 * command - run a command with the -c FILE given before it (NULL: none)
 * put in front of its own arguments, where it looks for it.
 */
static int
command(const char *conf_path, int argc, char **argv)
{
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	int n = 0, rc;

	if (args == NULL) {
		fprintf(stderr, "stsproxy: out of memory\n");
		return 1;
	}
	args[n++] = argv[0];
	if (conf_path != NULL && strcmp(argv[0], "check") != 0) {
		args[n++] = "-c";
		args[n++] = (char *)conf_path;
	}
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	optind = 0; /* the command parses its arguments afresh */
	if (strcmp(argv[0], "check") == 0)
		rc = sts_check_main(n, args);
	else if (strcmp(argv[0], "ctl") == 0)
		rc = control_client_main(n, args);
	else if (strcmp(argv[0], "report") == 0)
		rc = tlsrpt_cli_main(n, args);
	else
		rc = sts_cli_policy_main(n, args);
	free(args);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONF;
	bool given = false, check = false;
	char err[512];
	struct conf *c;
	int ch, ret;

	/* "+": options stop at the first word, which may be a command. */
	while ((ch = getopt_long(argc, argv, "+c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			given = true;
			break;
		case 't':
			check = true;
			break;
		case 'V':
			printf("stsproxy %s\n", STSPROXY_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		const char *cmd = argv[optind];

		if (check || (strcmp(cmd, "check") != 0 && strcmp(cmd, "ctl") != 0 &&
		              strcmp(cmd, "policy") != 0 && strcmp(cmd, "report") != 0)) {
			if (!check)
				fprintf(stderr, "stsproxy: %s: no such command\n", cmd);
			usage(stderr);
			return 2;
		}
		return command(given ? path : NULL, argc - optind, argv + optind);
	}
	if (check)
		return check_config(path);

	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		return 1;
	}
	ret = daemon_run(c);
	conf_free(c);
	return ret == 0 ? 0 : 1;
}
