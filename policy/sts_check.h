/*
 * sts_check.h - the "stsproxy check" command: run the MTA-STS parsers on
 * operator input, for debugging a domain's published records by hand.
 *
 *   stsproxy check txt RECORD...    id=<id> on stdout, or "invalid: <reason>"
 *   stsproxy check policy FILE      normal JSON on stdout, or "FILE:LINE: <reason>"
 *   stsproxy check mx PATTERN HOST  exit status says whether HOST matches
 */
#ifndef STS_CHECK_H
#define STS_CHECK_H

/*
 * sts_check_main - argv[0] is "check". Returns the process exit status:
 *   0  valid record or policy, or HOST matches PATTERN;
 *   1  invalid record (also one that is not STSv1) or policy, unreadable
 *      FILE, or HOST does not match;
 *   2  usage error, or PATTERN is not a valid mx pattern.
 * Results go to stdout, problems to stderr. With several RECORDs (all the
 * TXT records of one name), the selection rules of RFC 8461 section 3.1
 * apply. FILE "-" is standard input.
 */
int sts_check_main(int argc, char **argv);

#endif
