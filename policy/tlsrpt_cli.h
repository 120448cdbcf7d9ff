/*
 * tlsrpt_cli.h - the "stsproxy report" command: the TLS-RPT report of a
 * policy domain as it would be sent, and sending reports by hand.
 *
 *   stsproxy report [-c FILE] show DOMAIN [YYYY-MM-DD]
 *   stsproxy report [-c FILE] send [--now] [DOMAIN]
 */
#ifndef TLSRPT_CLI_H
#define TLSRPT_CLI_H

/*
 * tlsrpt_cli_main - argv[0] is "report". Reads the results and the
 * delivery records in the state directory of FILE (default
 * /etc/stsproxy/stsproxy.conf).
 *
 * show: the report text (RFC 8460 section 4 JSON, one line) of DOMAIN for
 * the UTC day DATE (default: today, up to now) on stdout; exit 0, 1 when
 * there are no results to report or on an error, 2 on usage.
 *
 * send: the reports of the previous UTC day that are not recorded as
 * final yet (what the daily run sends, without its random delay), or with
 * --now those of the current UTC day up to now, which the daily run then
 * leaves alone; for every domain the report filters keep, or for DOMAIN
 * alone. Waits while deliveries are retried (report.retry_first,
 * report.retry_for); one log line per attempt on stderr. Exit 0 when no
 * report failed, 1 otherwise, 2 on usage.
 */
int tlsrpt_cli_main(int argc, char **argv);

#endif
