#!/bin/bash
# policy_change.sh - a domain replaces its MTA-STS policy and moves its MX,
# as a domain owner does it, and stsproxy follows within the DNS TTL
# (RFC 8461 sections 3.1, 4.1, 5.1):
#
#   chg.example  enforce, TXT id c1, policy mx1, MX -> mx1 (TTL 1 s)
#                then TXT id c2, a policy listing only mx2, MX -> mx2
#                -> 2 s later mail to mx2 is accepted, mail to mx1 gets 451 4.7.5
#   mv.example   enforce, policy *.mv.example unchanged, MX mxa -> mxb (TTL 1 s)
#                -> 2 s later mail to mxb is accepted, mail to mxa gets 451 4.7.5
#
# stsproxy runs on the lab gateway with two workers and its default
# sts.*_ttl_* bounds; a client on the LAN sends through the redirect rules
# (tests/lab/smtp_send.py). Each check looks at the SMTP reply and at what
# the MX hosts stored. Needs root; STSPROXY names the binary (default
# build/stsproxy). Prints "ok N - ..." lines; exit 1 if any check failed.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

e2e_init polchg
e2e_lab

e2e_mx mx1 10.0.25.2 mx1.chg.example
e2e_mx mx2 10.0.26.2 mx2.chg.example
e2e_mx mxa 10.0.27.2 mxa.mv.example
e2e_mx mxb 10.0.28.2 mxb.mv.example

# A domain about to change lowers its TTLs first: 1 s on the TXT and MX records.
lab_sts_publish chg.example c1 enforce mx1.chg.example
lab_dns_del _mta-sts.chg.example TXT
lab_sts_publish mv.example m1 enforce '*.mv.example'
lab_dns_record \
	'_mta-sts.chg.example 1 TXT "v=STSv1; id=c1"' \
	"chg.example 1 MX 10 mx1.chg.example." \
	"mx1.chg.example A 10.0.25.2" "mx2.chg.example A 10.0.26.2" \
	"mv.example 1 MX 10 mxa.mv.example." \
	"mxa.mv.example A 10.0.27.2" "mxb.mv.example A 10.0.28.2"
lab_dns dns "$E2E_DNS4"

# stsproxy with two workers, each with its own resolver: both must follow.
mkdir -p "$LAB_DIR/proxy"
CONF=$LAB_DIR/proxy/stsproxy.conf
cat >"$CONF" <<EOF
state_dir = "$LAB_DIR/proxy/state";
mode = "enforce";
listen = [ "0.0.0.0:$E2E_PROXY_PORT" ];
interception = "redirect";
clients = [ "10.0.1.0/24" ];
workers = 2;
timeouts = { connect = 10; greeting = 30; command = 30; starttls = 20; };
log = { level = "debug"; file = "$E2E_PROXY_LOG"; events = "$E2E_EVENTS"; };
dns = { forwarders = [ "$E2E_DNS4" ]; timeout = 5; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 10; refresh = false; };
EOF
"$STSPROXY" -c "$CONF" --check-config >"$LAB_DIR/proxy/check.out" 2>&1 || {
	cat "$LAB_DIR/proxy/check.out" >&2
	exit 1
}
: >"$E2E_EVENTS"
lab__start stsproxy gw "$STSPROXY" -c "$CONF"
lab__await stsproxy gw "$E2E_GW_LAN4" "$E2E_PROXY_PORT"
e2e_redirect add

OUT=$LAB_DIR/out
mkdir -p "$OUT"

# send NAME MX_ADDR RCPT - one message from the LAN to MX_ADDR:25 (redirected
# through stsproxy); transcript in $OUT/NAME.log, exit status in $OUT/NAME.rc.
send() {
	local rc=0
	printf 'Subject: %s\r\nMessage-ID: <%s.%s@corp.example>\r\n\r\nhello\r\n' \
		"$1" "$1" "$$" >"$OUT/$1.eml"
	lab_smtp_send lan --server "$2" --from a@corp.example --to "$3" \
		--data "$OUT/$1.eml" 2>"$OUT/$1.log" || rc=$?
	echo "$rc" >"$OUT/$1.rc"
}

# accepted NAME - the message was accepted end to end.
accepted() {
	sed 's/^/  /' "$OUT/$1.log"
	[ "$(cat "$OUT/$1.rc")" = 0 ]
}

# refused NAME REGEX - RCPT got a reply matching REGEX, and nothing was sent.
refused() {
	sed 's/^/  /' "$OUT/$1.log"
	[ "$(cat "$OUT/$1.rc")" = 1 ] && grep -Eq "^S: $2" "$OUT/$1.log"
}

# stored MX_NAME SUBJECT COUNT - the MX holds COUNT messages with that subject.
stored() {
	local n
	n=$(grep -l "^Subject: $2" "$(lab_smtp_dir "$1")"/new/*.eml 2>/dev/null | wc -l)
	echo "$1 holds $n message(s) with subject $2"
	[ "$n" = "$3" ]
}

# --- before: the published policy is enforced ------------------------------------

for i in 1 2 3; do
	send "c1-mx1-$i" 10.0.25.2 "rcpt@chg.example"
done
lab_check "rfc8461_5_before: mail to mx1 under policy c1 is accepted" accepted c1-mx1-1
lab_check "rfc8461_5_before: later mails to mx1 are accepted too" \
	eval 'accepted c1-mx1-2 && accepted c1-mx1-3'
lab_check "rfc8461_5_before: mx1 stored them" stored mx1.chg.example c1-mx1 3
send mv-a-1 10.0.27.2 "rcpt@mv.example"
lab_check "rfc8461_5_before: mail to mxa, the MX of mv.example, is accepted" accepted mv-a-1

# --- the change: new id, a policy listing only mx2, MX -> mx2 ------------------------

mark=$(wc -l <"$E2E_PROXY_LOG")
lab_sts_policy chg.example enforce mx2.chg.example >/dev/null
lab_dns_set '_mta-sts.chg.example 1 TXT "v=STSv1; id=c2"' "chg.example 1 MX 10 mx2.chg.example." \
	"mv.example 1 MX 10 mxb.mv.example."
# Past the 1 s TTL of the old answers (and of the resolvers' caches): the
# first attempt 2 s after the change must already see it.
sleep 2

for i in 1 2; do
	send "c2-mx2-$i" 10.0.26.2 "rcpt@chg.example"
done
lab_check "rfc8461_5_1_new_id: the next mail to mx2 is accepted (no 451)" accepted c2-mx2-1
lab_check "rfc8461_5_1_new_id: a second mail to mx2 is accepted too" accepted c2-mx2-2
lab_check "rfc8461_5_1_new_id: mx2 stored them" stored mx2.chg.example c2-mx2 2
send c2-mx1 10.0.25.2 "rcpt@chg.example"
lab_check "rfc8461_4_1_new_id: mail to mx1, no longer in the policy, gets 451 4.7.5" \
	refused c2-mx1 '451 4\.7\.5 chg\.example'
lab_check "rfc8461_4_1_new_id: mx1 received nothing more" stored mx1.chg.example c2-mx1 0

send mv-b-1 10.0.28.2 "rcpt@mv.example"
lab_check "rfc8461_4_1_mx_moved: mail to mxb, the new MX, is accepted" accepted mv-b-1
lab_check "rfc8461_4_1_mx_moved: mxb stored it" stored mxb.mv.example mv-b-1 1
send mv-a-2 10.0.27.2 "rcpt@mv.example"
lab_check "rfc8461_4_1_mx_moved: mail to mxa, no longer an MX host, gets 451 4.7.5" \
	refused mv-a-2 '451 4\.7\.5 mv\.example'
lab_check "rfc8461_4_1_mx_moved: mxa received nothing more" stored mxa.mv.example mv-a-2 0
lab_check "rfc8461_5_1: the refusals were logged as policy failures" \
	e2e_event chg.example event=policy-failure action=blocked mode=enforce
# Whichever worker took a session after the change, none judged on policy c1.
lab_check "rfc8461_5_1: no decision after the change rests on policy c1" \
	eval "! tail -n +$((mark + 1)) '$E2E_PROXY_LOG' | grep -E 'rcpt domain=chg\.example .*id=c1 '"

lab_done
