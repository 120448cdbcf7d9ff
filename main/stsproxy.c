/*
 * stsproxy.c - the command line: the daemon and the operator commands.
 *
 *   stsproxy -c FILE                 run the daemon in the foreground
 *   stsproxy -c FILE --check-config  validate FILE, exit 0 or 1
 *   stsproxy check ...               validate a TXT record, a policy, a pattern
 *   stsproxy policy DOMAIN           look a domain's policy up
 *   stsproxy ctl ...                 ask the running daemon (control socket)
 *
 * The daemon never forks itself into the background: systemd (Type=notify)
 * and the tests supervise it as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "main/daemon.h"
#include "main/control.h"
#include "policy/sts_check.h"
#include "policy/sts_cli.h"

#define DEFAULT_CONF "/etc/stsproxy/stsproxy.conf"

static void
usage(FILE *f)
{
	fprintf(f, "usage: stsproxy [-c FILE] [--check-config]\n"
	           "       stsproxy check txt RECORD | policy FILE | mx PATTERN HOST\n"
	           "       stsproxy policy [-c FILE] [--json] DOMAIN\n"
	           "       stsproxy ctl [-c FILE | -s SOCKET] status | cache list |\n"
	           "                    cache flush DOMAIN | cache refresh DOMAIN\n"
	           "       stsproxy --version | --help\n"
	           "\n"
	           "  -c, --config FILE   configuration file (default " DEFAULT_CONF ")\n"
	           "  -t, --check-config  validate the configuration and exit 0 or 1\n"
	           "  -V, --version       print the version\n"
	           "  -h, --help          this text\n"
	           "\n"
	           "stsproxy relays outbound SMTP sessions, upgrades them to STARTTLS and\n"
	           "refuses delivery where a domain's MTA-STS policy is not met.\n"
	           "See stsproxy(8) and stsproxy.conf(5).\n");
}

/* check_config - load and validate path; also what the modules check themselves. */
static int
check_config(const char *path)
{
	char err[512];
	struct conf *c;

	if ((c = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "stsproxy: %s\n", err);
		return 1;
	}
	if (daemon_check_conf(c, err, sizeof(err)) < 0) {
		fprintf(stderr, "stsproxy: %s\n", err);
		conf_free(c);
		return 1;
	}
	printf("%s: ok\n", path);
	conf_free(c);
	return 0;
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
	char err[512];
	bool check = false;
	struct conf *c;
	int ch, ret;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return sts_check_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return control_client_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "policy") == 0)
		return sts_cli_policy_main(argc - 1, argv + 1);

	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
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
	if (optind != argc) {
		usage(stderr);
		return 2;
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
