/*
 * sts_cli.h - the "stsproxy policy" command: run the full MTA-STS lookup
 * of one domain, as the daemon would, and show what it found and why.
 *
 *   stsproxy policy [-c FILE] [--json] DOMAIN
 */
#ifndef STS_CLI_H
#define STS_CLI_H

/*
 * sts_cli_policy_main - argv[0] is "policy". Loads the configuration (FILE,
 * else /etc/stsproxy/stsproxy.conf, else built-in defaults with the state
 * directory from $STSPROXY_STATE_DIR or /var/lib/stsproxy), uses and
 * updates the persistent cache there, and prints the TXT records seen, the
 * policy, its id, source and expiry, the candidate MX hosts and their
 * addresses, and any problem; with --json as one JSON object on stdout.
 * Returns the exit status: 0 a policy applies, 1 none (or a problem kept
 * one from being found, or the set-up failed; the output says which),
 * 2 usage (also an invalid DOMAIN).
 */
int sts_cli_policy_main(int argc, char **argv);

#endif
