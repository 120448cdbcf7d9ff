/*
 * sts_txt.h - the MTA-STS TXT record at _mta-sts.<domain> (RFC 8461 section 3.1).
 *
 * Pure functions, no I/O: the resolver hands over the TXT records of the
 * name, each with its character-strings already joined without spaces.
 */
#ifndef STS_TXT_H
#define STS_TXT_H

#include <stddef.h>

#define STS_ID_MAX 32

enum sts_txt_status {
	STS_TXT_VALID = 0, /* an STSv1 record, well formed, id filled */
	STS_TXT_NOT_STS,   /* not an STSv1 record: to be ignored */
	STS_TXT_INVALID,   /* an STSv1 record that breaks the grammar: reason filled */
};

/*
 * sts_txt_parse - classify and parse one record of len octets (not
 * NUL-terminated; a NUL is an error). A record is STSv1 when it starts with
 * "v=STSv1" followed by the end, ';' or whitespace; anything else is
 * STS_TXT_NOT_STS. On STS_TXT_VALID, id holds the NUL-terminated policy id.
 * On STS_TXT_INVALID, reason (when not NULL and reasonlen > 0) holds a
 * NUL-terminated explanation, cut to fit. id is left empty unless valid.
 */
enum sts_txt_status sts_txt_parse(const char *rec, size_t len, char id[STS_ID_MAX + 1],
                                  char *reason, size_t reasonlen);

/*
 * sts_txt_select - decide from all n TXT records of the name (recs[i] of
 * lens[i] octets). Returns 1 when exactly one record is STSv1 and it is valid
 * (id filled); 0 when no record is STSv1 (no policy); -1 when several records
 * are STSv1 or the only one is invalid (reason filled). Section 3.1: in the
 * -1 case no policy is available now, but a cached one must be kept.
 */
int sts_txt_select(const char *const *recs, const size_t *lens, size_t n, char id[STS_ID_MAX + 1],
                   char *reason, size_t reasonlen);

#endif
