#!/bin/bash
# tlsrpt.sh - TLS-RPT reports (RFC 8460) from a lab run, delivered for real:
# a Postfix behind stsproxy on a gateway sends clean mail, mail through a
# STARTTLS stripper, mail through a forged certificate and mail to a domain
# without a policy; then "stsproxy report send --now" sends the day's
# reports:
#
#   a.example   enforce; _smtp._tls rua=https://reports.a.example/tlsrpt
#               -> one POST (application/tlsrpt+gzip) to nginx with the
#                  lab CA; the backend behind it is down at first, so the
#                  first attempt gets 502 and a retry delivers it
#   b.example   enforce; _smtp._tls rua=mailto:tlsrpt@reports.b.example
#               -> one mail through the operator's relay (report.relay, an
#                  SMTP sink with STARTTLS), multipart/report with the gzip
#   c.example   no policy; _smtp._tls rua=https://reports.a.example/c
#               -> nothing: no-policy-found results are not reported by
#                  default; with report.include_no_policy one POST to /c
#   d.example   enforce, no failures, no _smtp._tls record
#               -> nothing by default (only_failures); with only_failures
#                  false, still nothing: no record, one info line
#
# The decompressed reports must count what the lab saw: successes = the
# messages each MX stored, failures = the deferrals Postfix logged with
# stsproxy's 451, the result type = the one in stsproxy's events. A second
# "send" sends nothing again. Needs root; STSPROXY names the binary.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

not_grep() { ! grep -Eq -- "$1" "$2"; }
wait_for() { # SECONDS CMD... - poll until CMD succeeds
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -le "$end" ]; do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

e2e_init tlsrpt
e2e_lab

RELAY4=10.0.29.2
e2e_mx mx1 10.0.25.2 mx1.a.example
e2e_mx mx2 10.0.26.2 mx2.b.example
e2e_mx mx3 10.0.27.2 mx3.c.example
e2e_mx mx4 10.0.28.2 mx4.d.example
# The operator's relay for report mail: an SMTP sink that requires nothing
# but offers STARTTLS with a lab certificate.
e2e_mx relay "$RELAY4" relay.corp.example

lab_sts_publish a.example a1 enforce mx1.a.example
lab_sts_publish b.example b1 enforce mx2.b.example
lab_sts_publish d.example d1 enforce mx4.d.example
lab_dns_record \
	"a.example MX 10 mx1.a.example." "mx1.a.example A 10.0.25.2" \
	"b.example MX 10 mx2.b.example." "mx2.b.example A 10.0.26.2" \
	"c.example MX 10 mx3.c.example." "mx3.c.example A 10.0.27.2" \
	"d.example MX 10 mx4.d.example." "mx4.d.example A 10.0.28.2" \
	"reports.a.example A $E2E_HTTPS4" "relay.corp.example A $RELAY4" \
	"_smtp._tls.a.example TXT \"v=TLSRPTv1; rua=https://reports.a.example/tlsrpt\"" \
	"_smtp._tls.b.example TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@reports.b.example\"" \
	"_smtp._tls.c.example TXT \"v=TLSRPTv1; rua=https://reports.a.example/c\""

# The HTTPS report receiver: nginx (TLS with the lab CA) in front of a
# small backend that keeps every POST (tests/lab/post_sink.py).
POSTS=$LAB_DIR/posts
BACKEND=127.0.0.1:8480
lab_https_proxy reports.a.example "$BACKEND"
backend_start() {
	lab__start post-sink https "$(lab__python)" "$LAB_SRC/post_sink.py" \
		--listen "$BACKEND" --dir "$POSTS"
	lab__await post-sink https "${BACKEND%:*}" "${BACKEND#*:}"
}

e2e_start "report = {
  enable = true;
  organization = \"Corp Lab\";
  contact = \"mailto:postmaster@corp.example\";
  submitter = \"gw.corp.example\";
  from = \"tlsrpt@corp.example\";
  relay = \"relay.corp.example:25\";
  relay_starttls = \"required\";
  delay_max = 0;
  retry_first = 2;
  retry_for = 60;
  timeout = 5;
};
metrics = { listen = \"127.0.0.1:9125\"; };"

M=$LAB_DIR/msg
mkdir -p "$M"
for i in 1 2; do
	e2e_message "$M/a$i" "a.example clean $i"
	e2e_message "$M/b$i" "b.example clean $i"
	e2e_sendmail sender@corp.example "ann$i@a.example" <"$M/a$i"
	e2e_sendmail sender@corp.example "bob$i@b.example" <"$M/b$i"
done
e2e_message "$M/c1" "c.example, no policy"
e2e_sendmail sender@corp.example carl@c.example <"$M/c1"
e2e_message "$M/d1" "d.example, no TLS-RPT record"
e2e_sendmail sender@corp.example dan@d.example <"$M/d1"
for r in ann1@a.example ann2@a.example bob1@b.example bob2@b.example carl@c.example \
	dan@d.example; do
	lab_check "lab: $r delivered on a clean path" e2e_wait_status "$r" sent
done

# Attacks: a STARTTLS stripper before mx1, a forged certificate before mx2.
e2e_attacker atk1 10.0.66.2 mangle 10.0.25.2
e2e_attacker atk2 10.0.67.2 forge 10.0.26.2 --name mx2.b.example
e2e_message "$M/a3" "a.example stripped"
e2e_message "$M/b3" "b.example forged"
e2e_sendmail sender@corp.example ann3@a.example <"$M/a3"
e2e_sendmail sender@corp.example bob3@b.example <"$M/b3"
lab_check "lab: stripped session deferred with 451 4.7.4" \
	e2e_wait_status ann3@a.example deferred
lab_check "lab: forged-certificate session deferred with 451 4.7.5" \
	e2e_wait_status bob3@b.example deferred
e2e_attacker_remove atk1
e2e_attacker_remove atk2
e2e_flush
lab_check "lab: ann3 delivered once the attack stopped" e2e_wait_status ann3@a.example sent 60
lab_check "lab: bob3 delivered once the attack stopped" e2e_wait_status bob3@b.example sent 60

# What the lab produced, from the receivers and from Postfix, not from stsproxy.
deferred() { # DOMAIN CODE - deferrals Postfix logged with stsproxy's 451 CODE
	grep -F "@$1>" "$E2E_POSTFIX_LOG" | grep " status=deferred " | grep -c "451 $2" || true
}
A_OK=$(lab_smtp_count mx1.a.example)
B_OK=$(lab_smtp_count mx2.b.example)
A_FAIL=$(deferred a.example 4.7.4)
B_FAIL=$(deferred b.example 4.7.5)
B_RESULT=$("$(lab__python)" - "$E2E_EVENTS" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("domain") == "b.example" and ev.get("event") == "policy-failure":
        print(ev.get("result_type"))
        break
EOF
)
echo "# lab: a.example ok=$A_OK fail=$A_FAIL; b.example ok=$B_OK fail=$B_FAIL ($B_RESULT)"
lab_check "lab: both domains had successes and failures" \
	test "$A_OK" -ge 3 -a "$B_OK" -ge 3 -a "$A_FAIL" -ge 1 -a "$B_FAIL" -ge 1

lab_check "daemon: the metrics name the report attempts" eval \
	'lab_exec gw curl -s http://127.0.0.1:9125/metrics | grep -q "^stsproxy_tlsrpt_attempts_total{scheme=\"https\",result=\"delivered\"} 0"'

# A reload restarts the reporter on the new configuration and store.
# The start's schedule lines are counted first: the reload must add its own.
SCHED0=$(grep -c 'event=tlsrpt-schedule' "$E2E_PROXY_LOG" || true)
kill -HUP "$(cat "$LAB_DIR/run/stsproxy.pid")"
reloaded() { grep -q 'event=reload status=ok' "$E2E_PROXY_LOG"; }
schedules() { test "$(grep -c 'event=tlsrpt-schedule' "$E2E_PROXY_LOG")" -gt "$SCHED0"; }
lab_check "daemon: reloads fine" wait_for 20 reloaded
lab_check "daemon: the reload starts a new reporter" wait_for 20 schedules

# The daemon keeps its reporter thread: a stop still takes well under the
# 3 s after which the lab would kill it, and it writes its counts out.
t0=$(date +%s%N)
e2e_proxy_stop
t1=$(date +%s%N)
stop_ms=$(((t1 - t0) / 1000000))
lab_check "daemon: SIGTERM with the reporter running ends in ${stop_ms} ms (< 1000)" \
	test "$stop_ms" -lt 1000
lab_check "daemon: the reporter thread was started" \
	grep -q 'event=tlsrpt-schedule' "$E2E_PROXY_LOG"

CONF=$LAB_DIR/proxy/stsproxy.conf
SHOW=$LAB_DIR/show
mkdir -p "$SHOW"
show() { lab_exec gw "$STSPROXY" -c "$CONF" report show "$@"; }
no_show() { ! show "$@" >"$SHOW/none.out" 2>&1 && grep -q 'no results to report' "$SHOW/none.out"; }
lab_check "report show a.example prints the report" eval 'show a.example >"$SHOW/a.json"'
lab_check "report show c.example: no-policy-found is not reported by default" no_show c.example

# The HTTPS receiver's backend is down: the first attempt gets 502 from nginx.
SEND_LOG=$LAB_DIR/logs/report-send.log
lab_exec gw "$STSPROXY" -c "$CONF" report send --now >"$SEND_LOG" 2>&1 &
send_pid=$!
lab_check "https: the first attempt found the receiver down (502) and will retry" \
	wait_for 30 grep -q 'uri=https://reports.a.example/tlsrpt attempt=1 result=retry' "$SEND_LOG"
# A second "report send" on the same store while the first waits to retry:
# the two share a.example's report, and only one of them may send it.
lab_exec gw "$STSPROXY" -c "$CONF" report send --now >"$SEND_LOG.b" 2>&1 &
send_pid_b=$!
lab_check "concurrent send: the second one reached a.example's report" \
	wait_for 30 grep -q 'domain=a.example' "$SEND_LOG.b"
backend_start
rc=0
wait "$send_pid" || rc=$?
rc_b=0
wait "$send_pid_b" || rc_b=$?
sed 's/^/# send: /' "$SEND_LOG"
sed 's/^/# send b: /' "$SEND_LOG.b"
lab_check "report send --now exits 0" test "$rc" = 0
lab_check "concurrent send: the second one exits 0 too" test "$rc_b" = 0
a_delivered() {
	cat "$SEND_LOG" "$SEND_LOG.b" |
		grep -Ec 'uri=https://reports.a.example/tlsrpt attempt=[0-9]+ result=delivered'
}
lab_check "https: a later attempt delivered it, by one of the two senders only" \
	test "$(a_delivered)" = 1
lab_check "concurrent send: the other one left it (or found it recorded)" \
	grep -Eqh 'domain=a.example.*(left to another sender|being sent by|recorded settled by another)' \
	"$SEND_LOG" "$SEND_LOG.b"
lab_check "mailto: delivered through the relay" \
	grep -q 'uri=mailto:tlsrpt@reports.b.example attempt=1 result=delivered' "$SEND_LOG"
lab_check "c.example: nothing sent" not_grep 'domain=c.example.*result=delivered' "$SEND_LOG"
lab_check "d.example: no failures, not even looked up" not_grep 'domain=d.example' "$SEND_LOG"

# --- what the receivers got -----------------------------------------------------
n_posts() { ls "$POSTS"/*.body 2>/dev/null | wc -l; }
lab_check "https: exactly one report arrived" test "$(n_posts)" = 1
lab_check "mailto: exactly one report mail arrived" test "$(lab_smtp_count relay.corp.example)" = 1

# check_report KIND FILE DOMAIN OK FAIL RESULT [PTYPE [URLPATH]] - decompress
# and compare (RESULT "-": no failures).
check_report() {
	"$(lab__python)" - "$@" <<'EOF'
import email, email.policy, gzip, json, sys
kind, path, domain, ok, fail, result = sys.argv[1:7]
ptype = sys.argv[7] if len(sys.argv) > 7 else "sts"
urlpath = sys.argv[8] if len(sys.argv) > 8 else "/tlsrpt"
ok, fail = int(ok), int(fail)
if kind == "https":
    meta = json.load(open(path[:-5] + ".json"))
    assert meta["path"] == urlpath, meta["path"]
    assert meta["content_type"] == "application/tlsrpt+gzip", meta["content_type"]
    data = gzip.decompress(open(path, "rb").read())
elif kind == "mail":
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "tlsrpt", msg.get_param("report-type")
    assert msg["TLS-Report-Domain"] == domain, msg["TLS-Report-Domain"]
    assert msg["TLS-Report-Submitter"] == "gw.corp.example", msg["TLS-Report-Submitter"]
    assert msg["TLS-Required"].strip().lower() == "no", msg["TLS-Required"]
    assert "Report Domain: %s" % domain in " ".join(str(msg["Subject"]).split()), msg["Subject"]
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.walk()]
    fn = parts[0].get_filename()
    assert fn.startswith("gw.corp.example!%s!" % domain) and fn.endswith(".json.gz"), fn
    data = gzip.decompress(parts[0].get_content())
else:  # the JSON text itself
    data = open(path, "rb").read()
rep = json.loads(data)
print(json.dumps(rep, sort_keys=True))
assert rep["organization-name"] == "Corp Lab", rep["organization-name"]
assert rep["contact-info"] == "mailto:postmaster@corp.example"
assert rep["report-id"].endswith("%s@gw.corp.example" % domain), rep["report-id"]
pols = rep["policies"]
assert len(pols) == 1, pols
p = pols[0]
assert p["policy"]["policy-type"] == ptype, p["policy"]
assert p["policy"]["policy-domain"] == domain, p["policy"]
s = p["summary"]
assert s["total-successful-session-count"] == ok, (s, ok)
assert s["total-failure-session-count"] == fail, (s, fail)
fd = p.get("failure-details", [])
assert sum(d["failed-session-count"] for d in fd) == fail, fd
assert {d["result-type"] for d in fd} == ({result} if result != "-" else set()), (fd, result)
EOF
}
post=$(ls "$POSTS"/*.body 2>/dev/null | head -n 1 || true)
lab_check "https report: counts equal the lab's (ok=$A_OK fail=$A_FAIL starttls-not-supported)" \
	check_report https "$post" a.example "$A_OK" "$A_FAIL" starttls-not-supported
m=$(lab_smtp_last relay.corp.example || true)
lab_check "mailto report: from tlsrpt@corp.example" test "$(lab_json "$m.json" mail_from)" = tlsrpt@corp.example
lab_check "mailto report: to tlsrpt@reports.b.example" \
	test "$(lab_json "$m.json" rcpt_tos)" = tlsrpt@reports.b.example
lab_check "mailto report: over STARTTLS" test "$(lab_json "$m.json" tls)" = true
lab_check "mailto report: counts equal the lab's (ok=$B_OK fail=$B_FAIL $B_RESULT)" \
	check_report mail "$m.eml" b.example "$B_OK" "$B_FAIL" "$B_RESULT"
lab_check "report show: the same counts as sent" \
	check_report json "$SHOW/a.json" a.example "$A_OK" "$A_FAIL" starttls-not-supported

# --- never twice --------------------------------------------------------------------
rc=0
lab_exec gw "$STSPROXY" -c "$CONF" report send --now >"$SEND_LOG.2" 2>&1 || rc=$?
lab_check "a second send exits 0" test "$rc" = 0
lab_check "a second send says the reports are recorded already" \
	grep -q 'domain=a.example.*state=sent' "$SEND_LOG.2"
lab_check "a second send says so for the mailto: domain too" \
	grep -q 'domain=b.example.*state=sent' "$SEND_LOG.2"
lab_check "a second send sent nothing" not_grep 'result=delivered' "$SEND_LOG.2"
lab_check "https: still exactly one report" test "$(n_posts)" = 1
lab_check "mailto: still exactly one report mail" test "$(lab_smtp_count relay.corp.example)" = 1
lab_check "report sessions never went through the proxy (no event for reports.*)" \
	not_grep 'reports\.' "$E2E_EVENTS"

# --- every domain, no-policy-found included -------------------------------------------
CONF2=$LAB_DIR/proxy/all.conf
sed 's/delay_max = 0;/delay_max = 0; only_failures = false; include_no_policy = true;/' \
	"$CONF" >"$CONF2"
rc=0
lab_exec gw "$STSPROXY" -c "$CONF2" report send --now >"$SEND_LOG.3" 2>&1 || rc=$?
sed 's/^/# send: /' "$SEND_LOG.3"
lab_check "only_failures = false: send exits 0" test "$rc" = 0
lab_check "include_no_policy: c.example's report delivered" \
	grep -q 'domain=c.example.*uri=https://reports.a.example/c attempt=1 result=delivered' \
	"$SEND_LOG.3"
lab_check "d.example: no _smtp._tls record, nothing sent, said at info level" \
	grep -Eq 'info event=tlsrpt-send domain=d.example .*result=skipped .*no TLS-RPT record' \
	"$SEND_LOG.3"
lab_check "https: one more report, c.example's" test "$(n_posts)" = 2
post=$(ls "$POSTS"/*.body 2>/dev/null | sed -n 2p || true)
C_OK=$(lab_smtp_count mx3.c.example)
lab_check "c.example report: no-policy-found, ok=$C_OK, no failures" \
	check_report https "$post" c.example "$C_OK" 0 - no-policy-found /c
lab_check "a.example and b.example: still not sent again" \
	test "$(grep -c 'state=sent' "$SEND_LOG.3")" = 2

lab_done
