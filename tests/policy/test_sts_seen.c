// sources: policy/sts_seen.c
/*
 * test_sts_seen.c - the shared table of recent DNS answers: freshness by
 * TTL, MX sets kept under the key of their policy, holds after a failure,
 * bounded size, and readers and writers on several threads at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sts_seen.h"

/* An MX set with room for everything the table may copy out. */
struct buf {
	char mx[STS_SEEN_MAX_MX][STS_SEEN_NAME_MAX];
	struct sockaddr_storage addr[STS_SEEN_MAX_ADDR];
	struct sts_seen_mx set;
};

static void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
	b->set.mx = b->mx;
	b->set.addr = b->addr;
}

/*
 * buf_fill - n names "mxI.<domain>" and an IPv4 address 10.0.0.I for each
 * (n_mx and n_addr say n, also beyond what the table keeps of them).
 */
static void
buf_fill(struct buf *b, const char *domain, size_t n)
{
	buf_init(b);
	for (size_t i = 0; i < n && i < STS_SEEN_MAX_ADDR; i++) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&b->addr[i];

		if (i < STS_SEEN_MAX_MX)
			snprintf(b->mx[i], sizeof(b->mx[i]), "mx%zu.%s", i, domain);
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
	}
	b->set.n_mx = b->set.n_addr = n;
}

static unsigned
get(struct sts_seen *s, const char *domain, uint64_t now, char *txt, const char *key,
    struct buf *out)
{
	buf_init(out);
	return sts_seen_get(s, domain, strlen(domain), now, txt, key, &out->set, NULL);
}

/* RFC 8461 section 3.1: a TXT answer is fresh while now < until; now 0 takes it however old. */
static void
rfc8461_3_1_txt_fresh_until_ttl(void **state)
{
	static const struct {
		const char *name;
		uint64_t until, now;
		unsigned found;
	} cases[] = {
	    {"rfc8461_3_1_before_until", 2000, 1999, STS_SEEN_TXT},
	    {"rfc8461_3_1_at_until", 2000, 2000, 0},
	    {"rfc8461_3_1_after_until", 2000, 5000, 0},
	    {"rfc8461_3_1_however_old", 2000, 0, STS_SEEN_TXT},
	};
	struct sts_seen *s = sts_seen_new(0);
	char id[STS_SEEN_KEY_MAX];
	struct buf out;

	(void)state;
	assert_non_null(s);
	assert_int_equal(sts_seen_put_txt(s, "example.com", "id1", 1000), 0);
	assert_int_equal(sts_seen_put_txt(s, "Example.COM", "id2", 2000), 0); /* replaces */
	assert_int_equal(sts_seen_put_txt(s, "none.example", "", 2000), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("%s\n", cases[i].name);
		strcpy(id, "?");
		assert_int_equal(get(s, "EXAMPLE.com", cases[i].now, id, NULL, &out),
		                 cases[i].found);
		if (cases[i].found != 0)
			assert_string_equal(id, "id2");
	}
	assert_int_equal(get(s, "none.example", 1, id, "id1", &out), STS_SEEN_TXT);
	assert_string_equal(id, ""); /* no record, within its TTL */
	assert_int_equal(get(s, "other.example", 0, id, NULL, &out), 0);
	assert_int_equal(get(s, "example.co", 0, id, NULL, &out), 0);
	sts_seen_free(s);
}

/* RFC 8461 section 4.1: candidates are kept for the policy they were chosen under. */
static void
rfc8461_4_1_mx_set_under_its_key(void **state)
{
	struct sts_seen *s = sts_seen_new(0);
	struct buf in, out;

	(void)state;
	assert_non_null(s);
	buf_fill(&in, "example.com", STS_SEEN_MAX_ADDR + 3); /* cut to what is kept */
	assert_int_equal(sts_seen_put_mx(s, "example.com", "id1", &in.set, 1000), 0);
	assert_int_equal(get(s, "example.com", 999, NULL, "id1", &out), STS_SEEN_MX);
	assert_int_equal(out.set.n_mx, STS_SEEN_MAX_MX);
	assert_int_equal(out.set.n_addr, STS_SEEN_MAX_ADDR);
	assert_string_equal(out.mx[0], "mx0.example.com");
	assert_string_equal(out.mx[15], "mx15.example.com");
	assert_memory_equal(&out.addr[7], &in.addr[7], sizeof(in.addr[7]));
	assert_int_equal(get(s, "example.com", 999, NULL, "id2", &out), 0);  /* another policy */
	assert_int_equal(get(s, "example.com", 1000, NULL, "id1", &out), 0); /* past its TTL */
	assert_int_equal(get(s, "example.com", 999, NULL, NULL, &out), 0);   /* not asked */

	/* a set chosen under a new policy replaces the old one, whatever its key */
	buf_fill(&in, "example.com", 1);
	assert_int_equal(sts_seen_put_mx(s, "example.com", "id2", &in.set, 3000), 0);
	assert_int_equal(get(s, "example.com", 0, NULL, "id1", &out), 0);
	assert_int_equal(get(s, "example.com", 2000, NULL, "id2", &out), STS_SEEN_MX);
	assert_int_equal(out.set.n_mx, 1);

	/* the TXT answer and the MX set of a domain are independent */
	assert_int_equal(sts_seen_put_txt(s, "example.com", "id2", 10), 0);
	assert_int_equal(get(s, "example.com", 2000, NULL, "id2", &out), STS_SEEN_MX);
	assert_int_equal(get(s, "example.com", 5, NULL, "id2", &out), STS_SEEN_TXT | STS_SEEN_MX);
	sts_seen_free(s);
}

/* RFC 8767 section 5: after a failure the last answer may stand longer; nothing is created. */
static void
rfc8767_5_hold_extends_what_is_there(void **state)
{
	struct sts_seen *s = sts_seen_new(0);
	struct buf in, out;

	(void)state;
	assert_non_null(s);
	buf_fill(&in, "example.com", 2);
	assert_int_equal(sts_seen_put_txt(s, "example.com", "id1", 100), 0);
	assert_int_equal(sts_seen_put_mx(s, "example.com", "id1", &in.set, 100), 0);
	sts_seen_hold(s, "example.com", STS_SEEN_TXT, NULL, 500);
	assert_int_equal(get(s, "example.com", 200, NULL, "id1", &out), STS_SEEN_TXT);
	sts_seen_hold(s, "example.com", STS_SEEN_MX, "id2", 500); /* another key: no */
	assert_int_equal(get(s, "example.com", 200, NULL, "id1", &out), STS_SEEN_TXT);
	sts_seen_hold(s, "example.com", STS_SEEN_MX, "id1", 500);
	assert_int_equal(get(s, "example.com", 200, NULL, "id1", &out), STS_SEEN_TXT | STS_SEEN_MX);
	sts_seen_hold(s, "example.com", STS_SEEN_TXT | STS_SEEN_MX, "id1",
	              300); /* never shortens */
	assert_int_equal(get(s, "example.com", 400, NULL, "id1", &out), STS_SEEN_TXT | STS_SEEN_MX);
	sts_seen_hold(s, "new.example", STS_SEEN_TXT | STS_SEEN_MX, "id1", 500);
	assert_int_equal(get(s, "new.example", 0, NULL, "id1", &out), 0);
	sts_seen_free(s);
}

static void
invalid_arguments_refused(void **state)
{
	struct sts_seen *s = sts_seen_new(0);
	char long_name[300], long_key[40];
	struct buf in, out;

	(void)state;
	assert_non_null(s);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	buf_fill(&in, "example.com", 1);
	assert_int_equal(sts_seen_put_txt(s, long_name, "id1", 10), -1);
	assert_int_equal(sts_seen_put_txt(s, "", "id1", 10), -1);
	assert_int_equal(sts_seen_put_txt(s, "example.com", long_key, 10), -1);
	assert_int_equal(sts_seen_put_txt(s, "example.com", NULL, 10), -1);
	assert_int_equal(sts_seen_put_mx(s, "example.com", long_key, &in.set, 10), -1);
	assert_int_equal(sts_seen_put_mx(s, "example.com", "id1", NULL, 10), -1);
	assert_int_equal(sts_seen_put_mx(NULL, "example.com", "id1", &in.set, 10), -1);
	assert_int_equal(get(s, long_name, 0, NULL, "id1", &out), 0);
	assert_int_equal(sts_seen_get(NULL, "example.com", 11, 0, NULL, NULL, NULL, NULL), 0);
	sts_seen_hold(NULL, "example.com", STS_SEEN_TXT, NULL, 10);
	sts_seen_free(NULL);
	sts_seen_free(s);
}

/* Bounded: beyond its capacity the table forgets the domains written least recently. */
static void
capacity_forgets_oldest(void **state)
{
	struct sts_seen *s = sts_seen_new(64);
	char name[64], id[STS_SEEN_KEY_MAX];
	struct buf in, out;
	size_t kept = 0;

	(void)state;
	assert_non_null(s);
	buf_fill(&in, "example.com", 1);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "d%05d.example", i);
		assert_int_equal(sts_seen_put_txt(s, name, "id1", 10), 0);
		assert_int_equal(sts_seen_put_mx(s, name, "id1", &in.set, 10), 0);
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "d%05d.example", i);
		kept += get(s, name, 0, id, "id1", &out) == (STS_SEEN_TXT | STS_SEEN_MX);
	}
	assert_true(kept >= 64 && kept <= 64 * 10);
	assert_int_equal(get(s, "d19999.example", 0, id, "id1", &out), STS_SEEN_TXT | STS_SEEN_MX);
	assert_int_equal(get(s, "d00000.example", 0, id, "id1", &out), 0);
	/* a larger capacity keeps more */
	sts_seen_reserve(s, 20000);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "d%05d.example", i);
		assert_int_equal(sts_seen_put_txt(s, name, "id1", 10), 0);
	}
	kept = 0;
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "d%05d.example", i);
		kept += (get(s, name, 0, id, NULL, &out) & STS_SEEN_TXT) != 0;
	}
	assert_int_equal(kept, 20000); /* the margin absorbs an uneven spread */
	sts_seen_free(s);
}

struct worker {
	struct sts_seen *s;
	int n;
	size_t found;
};

/* hammer - write and read a few domains over and over: sets replaced under readers. */
static void *
hammer(void *arg)
{
	struct worker *w = arg;
	struct buf in, out;
	char name[32], id[STS_SEEN_KEY_MAX];

	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "d%d.example", (i * 7 + w->n) % 16);
		if (i % 3 == w->n % 3) {
			buf_fill(&in, name, 1 + (size_t)(i % STS_SEEN_MAX_MX));
			(void)sts_seen_put_mx(w->s, name, "id1", &in.set, 1000);
			(void)sts_seen_put_txt(w->s, name, "id1", 1000);
		}
		if (get(w->s, name, 1, id, "id1", &out) == (STS_SEEN_TXT | STS_SEEN_MX)) {
			/* a set is always seen whole: each name matches its address */
			for (size_t k = 0; k < out.set.n_mx; k++) {
				const struct sockaddr_in *s4 = (const void *)&out.addr[k];
				char want[64];

				snprintf(want, sizeof(want), "mx%zu.%s", k, name);
				if (strcmp(out.mx[k], want) != 0 ||
				    ntohl(s4->sin_addr.s_addr) != 0x0a000000u + k)
					return (void *)1;
			}
			w->found++;
		}
	}
	return NULL;
}

/* Every engine of every worker thread reads and writes the one table. */
static void
threads_share_one_table(void **state)
{
	struct sts_seen *s = sts_seen_new(0);
	struct worker w[4];
	pthread_t t[4];
	void *rc;

	(void)state;
	assert_non_null(s);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.s = s, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
		assert_true(w[i].found > 0);
	}
	sts_seen_free(s);
}

/* A shared value (a DANE state, RFC 7672): referenced, fresh until its own time, kept
 * when the MX set is replaced, released when replaced or forgotten. */
static void
rfc7672_shared_value_by_reference(void **state)
{
	struct sts_seen *s = sts_seen_new(0);
	struct sts_seen_ref *v = calloc(1, sizeof(*v)), *w = calloc(1, sizeof(*w)), *got;
	char mx[1][STS_SEEN_NAME_MAX] = {"mx.example"};
	struct sockaddr_storage addr[1] = {{.ss_family = AF_INET}};
	struct sts_seen_mx set = {.mx = mx, .n_mx = 1, .addr = addr, .n_addr = 1};

	(void)state;
	assert_non_null(s);
	assert_non_null(v);
	assert_non_null(w);
	atomic_init(&v->refs, 1);
	atomic_init(&v->until, 100);
	atomic_init(&w->refs, 1);
	atomic_init(&w->until, 200);
	assert_null(sts_seen_get_ref(s, "example.com", 11, 1));
	assert_int_equal(sts_seen_put_ref(s, "example.com", v), 0);
	assert_int_equal(atomic_load(&v->refs), 2);
	/* fresh until its time, in any case; however old with now 0 */
	assert_ptr_equal(got = sts_seen_get_ref(s, "Example.COM", 11, 99), v);
	sts_seen_ref_release(got);
	assert_null(sts_seen_get_ref(s, "example.com", 11, 100));
	assert_ptr_equal(got = sts_seen_get_ref(s, "example.com", 11, 0), v);
	sts_seen_ref_release(got);
	/* a hold extends it; a new MX set keeps it */
	sts_seen_hold(s, "example.com", STS_SEEN_REF, NULL, 150);
	assert_int_equal(atomic_load(&v->until), 150);
	sts_seen_hold(s, "example.com", STS_SEEN_REF, NULL, 120);
	assert_int_equal(atomic_load(&v->until), 150);
	assert_int_equal(sts_seen_put_mx(s, "example.com", "id1", &set, 1000), 0);
	assert_ptr_equal(got = sts_seen_get_ref(s, "example.com", 11, 140), v);
	sts_seen_ref_release(got);
	/* the same with the TXT answer and the MX set, under one lock */
	got = NULL;
	assert_int_equal(sts_seen_get(s, "example.com", 11, 140, NULL, "id1", &set, &got),
	                 STS_SEEN_MX | STS_SEEN_REF);
	assert_ptr_equal(got, v);
	sts_seen_ref_release(got);
	got = NULL;
	assert_int_equal(sts_seen_get(s, "example.com", 11, 160, NULL, "id1", &set, &got),
	                 STS_SEEN_MX);
	assert_null(got);
	/* replaced: the table's reference to the old one goes */
	assert_int_equal(sts_seen_put_ref(s, "example.com", w), 0);
	assert_int_equal(atomic_load(&v->refs), 1);
	assert_ptr_equal(got = sts_seen_get_ref(s, "example.com", 11, 140), w);
	sts_seen_ref_release(got);
	assert_int_equal(sts_seen_put_ref(s, "", w), -1);
	assert_int_equal(sts_seen_put_ref(s, "example.com", NULL), -1);
	sts_seen_ref_release(v); /* the last reference frees it */
	sts_seen_ref_release(w);
	sts_seen_ref_release(NULL);
	sts_seen_free(s); /* and the table's reference to w */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8461_3_1_txt_fresh_until_ttl),
	    cmocka_unit_test(rfc8461_4_1_mx_set_under_its_key),
	    cmocka_unit_test(rfc8767_5_hold_extends_what_is_there),
	    cmocka_unit_test(invalid_arguments_refused),
	    cmocka_unit_test(capacity_forgets_oldest),
	    cmocka_unit_test(threads_share_one_table),
	    cmocka_unit_test(rfc7672_shared_value_by_reference),
	};

	return cmocka_run_group_tests_name("sts_seen", tests, NULL, NULL) != 0;
}
