// sources: proxy/session.c proxy/relay.c proxy/upstream.c proxy/upstream_pool.c proxy/txn_report.c proxy/relay_events.c proxy/smtp_cmd.c proxy/smtp_reply.c
// sources: proxy/smtp_data.c tls/tls_io.c tls/tls_ctx.c tls/tls_resume.c tls/tls_verify.c tests/proxy/fake_sts_engine.c
// sources: core/loop.c core/log.c core/evlog.c core/util.c core/types.c core/conf.c
// sources: policy/sts_report.c tests/tls/testca.c
/*
 * fuzz_session_reuse.c - fuzz_session.c with upstream connection reuse on:
 * several sessions of one client, one after another, that park, take and
 * check upstream connections, with the MX's replies to the RSET check, to
 * the first MAIL after it and closes at any point all from the script. The
 * input format and the invariants are fuzz_session.c's (see there).
 */
#define FUZZ_REUSE 1
#include "fuzz/fuzz_session.c"
