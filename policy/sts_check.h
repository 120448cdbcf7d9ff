/*
 * sts_check.h - the "stsproxy check" command: run the MTA-STS parsers and
 * the DANE match on operator input, for debugging a domain's published
 * records by hand.
 *
 *   stsproxy check txt RECORD...    id=<id> on stdout, or "invalid: <reason>"
 *   stsproxy check policy FILE      normal JSON on stdout, or "FILE:LINE: <reason>"
 *   stsproxy check mx PATTERN HOST  exit status says whether HOST matches
 *   stsproxy check tlsa RECORD CERTFILE [HOST]
 *                                   "match: ..." or "no match: <result type>: ..."
 */
#ifndef STS_CHECK_H
#define STS_CHECK_H

/*
 * sts_check_main - argv[0] is "check". Returns the process exit status:
 *   0  valid record or policy, HOST matches PATTERN, or the TLSA record
 *      matches the chain in CERTFILE (the server's certificate first) as
 *      RFC 7672 section 3 says (DANE-TA: the chain up to the anchor, and
 *      a certificate valid for HOST);
 *   1  invalid record (also one that is not STSv1) or policy, unreadable
 *      FILE or CERTFILE, HOST does not match, or the TLSA record is
 *      unusable (PKIX-TA, PKIX-EE, a bad digest length) or does not match;
 *   2  usage error, PATTERN is not a valid mx pattern, a TLSA record that
 *      does not parse, or a DANE-TA record without HOST.
 * Results go to stdout, problems to stderr. With several RECORDs (all the
 * TXT records of one name), the selection rules of RFC 8461 section 3.1
 * apply. FILE "-" is standard input.
 */
int sts_check_main(int argc, char **argv);

#endif
