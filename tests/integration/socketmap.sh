#!/bin/bash
# socketmap.sh - stsproxy as the smtp_tls_policy_maps of a modern Postfix
# that does its own TLS (socketmap_table(5)), and the same Postfix on
# postfix-mta-sts-resolver's mta-sts-daemon: the same verdicts.
#
#   enforce.test  enforce, mx "*.enforce.test"; good certificate   delivered,
#                 verified TLS (Postfix "secure", match=.enforce.test)
#   strip.test    enforce; an on-path attacker strips STARTTLS     deferred
#   wrong.test    enforce; the MX certificate names another host   deferred
#   testing.test  testing; the MX certificate names another host   delivered
#   plain.test    no policy                                        delivered
#   dnsfail.test  its _mta-sts TXT lookup fails (SERVFAIL), nothing cached:
#                 stsproxy answers TEMP and Postfix defers; mta-sts-daemon
#                 answers NOTFOUND and Postfix delivers (the documented
#                 difference)
#
# Postfix and the policy server run in "lan" (the server on loopback, as
# a site runs it); the lab DNS, policy host, MX hosts and attacker are on
# the lab internet, with no proxy in the path. Every check looks at what
# the receiving server stored and at what Postfix logged or queued, and
# the socketmap replies themselves are compared between the two servers.
#
# Needs root, the lab's packages and postfix-mta-sts-resolver (scripts/
# deps.sh lab); STSPROXY names the binary. Prints "ok N - ..." lines;
# exits 1 if any failed. Everything is removed on exit (the lab's trap).
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"

command -v mta-sts-daemon >/dev/null || {
	echo "not ok - setup: mta-sts-daemon is missing (sh scripts/deps.sh lab)" >&2
	exit 1
}

e2e_init smap
e2e_lab
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"
CA=$LAB_DIR/ca/ca.crt
SMAP_PORT=8461

e2e_mx mx1 10.0.25.2 mx1.enforce.test
e2e_mx mx2 10.0.26.2 mx2.strip.test
E2E_CERT_NAME=mx3.elsewhere.test e2e_mx mx3 10.0.27.2 mx3.wrong.test
E2E_CERT_NAME=mx4.elsewhere.test e2e_mx mx4 10.0.28.2 mx4.testing.test
e2e_mx mx5 10.0.29.2 mx5.plain.test
lab_sts_publish enforce.test e1 enforce "*.enforce.test"
lab_sts_publish strip.test s1 enforce mx2.strip.test
lab_sts_publish wrong.test w1 enforce mx3.wrong.test
lab_sts_publish testing.test t1 testing mx4.testing.test
lab_sts_publish shared.test h1 enforce mx1.shared.test
lab_dns_record \
	"enforce.test MX 10 mx1.enforce.test." "mx1.enforce.test A 10.0.25.2" \
	"strip.test MX 10 mx2.strip.test." "mx2.strip.test A 10.0.26.2" \
	"wrong.test MX 10 mx3.wrong.test." "mx3.wrong.test A 10.0.27.2" \
	"testing.test MX 10 mx4.testing.test." "mx4.testing.test A 10.0.28.2" \
	"plain.test MX 10 mx5.plain.test." "mx5.plain.test A 10.0.29.2" \
	"shared.test MX 10 mx1.shared.test." "mx1.shared.test A 10.0.25.2" \
	"dnsfail.test MX 10 mx5.plain.test."
lab_dns_servfail _mta-sts.dnsfail.test
lab_dns dns "$E2E_DNS4"
e2e_attacker atk1 10.0.66.2 mangle 10.0.26.2

# --- stsproxy's socketmap in "lan" --------------------------------------------------

CONF=$LAB_DIR/proxy/stsproxy.conf
mkdir -p "$LAB_DIR/proxy/state"
cat >"$CONF" <<EOF
state_dir = "$LAB_DIR/proxy/state";
workers = 2;
$(e2e__conf_common)
socketmap = { listen = [ "127.0.0.1:$SMAP_PORT", "unix:$LAB_DIR/proxy/socketmap.sock" ]; };
metrics = { listen = "127.0.0.1:9125"; };
EOF
"$STSPROXY" -c "$CONF" --check-config >"$LAB_DIR/proxy/check.out" 2>&1 || {
	cat "$LAB_DIR/proxy/check.out" >&2
	exit 1
}
lab__start stsproxy lan "$STSPROXY" -c "$CONF"
lab__await stsproxy lan 127.0.0.1 "$SMAP_PORT"

# smq ADDR NAME DOMAIN... - socketmap requests "NAME DOMAIN" on one
# connection to ADDR ("127.0.0.1:8461" or a unix socket path), from "lan";
# prints one reply per line.
smq() {
	local addr=$1
	shift
	lab_exec lan "$(lab__python)" - "$addr" "$@" <<'EOF'
import socket, sys
addr, name = sys.argv[1], sys.argv[2]
if addr.startswith("/"):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(addr)
else:
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), 30)
f = s.makefile("rb")
for d in sys.argv[3:]:
    q = (name + " " + d).encode()
    s.sendall(b"%d:%s," % (len(q), q))
    n = b""
    while not n.endswith(b":"):
        c = f.read(1)
        if not c:
            sys.exit("connection closed")
        n += c
    body = f.read(int(n[:-1]) + 1)
    if not body.endswith(b","):
        sys.exit("bad reply framing")
    print(body[:-1].decode())
EOF
}

# is TEXT WANT - TEXT equals WANT (says both otherwise).
is() {
	echo "got:  $1"
	echo "want: $2"
	[ "$1" = "$2" ]
}

# Concurrent first lookups of one domain make one fetch: each worker's
# engine shares one resolution among its lookups, and the workers share
# the fetch of one policy id (policy/sts_claim.h). 32 connections ask at
# once (both workers take some: the kernel spreads them), the policy host
# sees one fetch.
concurrent_first() {
	lab_exec lan "$(lab__python)" - "$SMAP_PORT" <<'EOF'
import socket, sys, threading
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), 30) for _ in range(32)]
q = b"postfix shared.test"
out = []
def ask(s):
    s.sendall(b"%d:%s," % (len(q), q))
    out.append(s.recv(200))
ts = [threading.Thread(target=ask, args=(s,)) for s in socks]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(set(out))
sys.exit(0 if out == [b"51:OK secure match=mx1.shared.test servername=hostname,"] * 32 else 1)
EOF
}
fetches() {
	local n
	n=$(grep -c 'host=mta-sts.shared.test "GET /.well-known/mta-sts.txt' \
		"$LAB_DIR/logs/https-https.log" || true)
	echo "policy fetches of shared.test: $n"
	[ "$n" -eq 1 ]
}
lab_check "socketmap: 32 concurrent first lookups of shared.test, all secure" concurrent_first
lab_check "socketmap: the policy host saw one fetch of shared.test" fetches

DOMAINS="enforce.test strip.test wrong.test testing.test plain.test"
# shellcheck disable=SC2086
smq "127.0.0.1:$SMAP_PORT" postfix $DOMAINS >"$LAB_DIR/sts-replies.txt"
cat "$LAB_DIR/sts-replies.txt"
lab_check "socketmap: enforce.test is secure, *.enforce.test as .enforce.test" \
	is "$(sed -n 1p "$LAB_DIR/sts-replies.txt")" \
	"OK secure match=.enforce.test servername=hostname"
lab_check "socketmap: strip.test is secure, match=mx2.strip.test" \
	is "$(sed -n 2p "$LAB_DIR/sts-replies.txt")" \
	"OK secure match=mx2.strip.test servername=hostname"
lab_check "socketmap: testing.test and plain.test are NOTFOUND" \
	is "$(sed -n 4,5p "$LAB_DIR/sts-replies.txt" | tr '\n' '|')" "NOTFOUND |NOTFOUND |"
lab_check "socketmap: the unix socket answers the same" \
	is "$(smq "$LAB_DIR/proxy/socketmap.sock" QUERY $DOMAINS)" "$(cat "$LAB_DIR/sts-replies.txt")"
lab_check "socketmap: QUERYwithTLSRPT adds the TLSRPT attributes" \
	eval "smq 127.0.0.1:$SMAP_PORT QUERYwithTLSRPT enforce.test | grep -qx 'OK secure match=.enforce.test servername=hostname policy_type=sts policy_domain=enforce.test mx_host_pattern=\*.enforce.test { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: \*.enforce.test } { policy_string = max_age: [0-9]* }'"
lab_check "socketmap: a failed TXT lookup with nothing cached is TEMP" \
	is "$(smq "127.0.0.1:$SMAP_PORT" postfix dnsfail.test)" "TEMP policy lookup failed for dnsfail.test"
lab_check "socketmap: a parent-domain lookup and an address are NOTFOUND" \
	is "$(smq "127.0.0.1:$SMAP_PORT" postfix .enforce.test 10.0.25.2 | tr '\n' '|')" \
	"NOTFOUND |NOTFOUND |"
lab_check "socketmap: a request over max_request gets PERM and the connection closes" \
	eval "lab_exec lan $(lab__python) -c 'import socket; s=socket.create_connection((\"127.0.0.1\", $SMAP_PORT)); s.sendall(b\"5000:\"); r=s.recv(100); print(r); assert r == b\"21:PERM request too long,\"; assert s.recv(100) == b\"\"'"
# A reload (SIGHUP) hands the listeners to the new workers: an open
# connection is answered until the old worker drains it, new ones at once.
reload_keeps_serving() {
	kill -HUP "$(cat "$LAB_DIR/run/stsproxy.pid")"
	for _ in $(seq 1 50); do
		grep -q 'event=reload status=ok' "$E2E_PROXY_LOG" && break
		sleep 0.1
	done
	grep 'event=reload' "$E2E_PROXY_LOG" || return 1
	grep -q 'event=reload status=ok' "$E2E_PROXY_LOG" || return 1
	is "$(smq "127.0.0.1:$SMAP_PORT" postfix $DOMAINS)" "$(cat "$LAB_DIR/sts-replies.txt")"
}
lab_check "socketmap: after a reload, the same answers" reload_keeps_serving
lab_check "socketmap: the metrics count the replies" \
	eval "lab_exec lan curl -s http://127.0.0.1:9125/metrics | grep -E '^stsproxy_socketmap_replies_total\{reply=\"ok\"\} ([3-9]|[1-9][0-9]+)$'"

# --- Postfix on stsproxy's socketmap ---------------------------------------------------

e2e_postfix_start
lab_exec lan postconf -c "$E2E_PF/conf" -e \
	"smtp_tls_policy_maps = socketmap:inet:127.0.0.1:$SMAP_PORT:postfix"
lab_exec lan postfix -c "$E2E_PF/conf" reload >/dev/null 2>&1

M=$LAB_DIR/msg
mkdir -p "$M"
# verdicts PREFIX - mail PREFIX@DOMAIN for every domain and check each verdict.
verdicts() {
	local p=$1 who=$2 d
	for d in $DOMAINS; do
		e2e_message "$M/$p-$d" "$who to $d"
		e2e_sendmail sender@corp.example "$p@$d" <"$M/$p-$d"
	done
	lab_check "$who: enforce.test delivered" e2e_wait_status "$p@enforce.test" sent
	lab_check "$who: enforce.test over verified TLS" \
		e2e_grep "$E2E_POSTFIX_LOG" 'Verified TLS connection established to mx1\.enforce\.test'
	lab_check "$who: enforce.test stored once" e2e_sink_is mx1.enforce.test "$p@enforce.test" 1
	lab_check "$who: strip.test deferred, TLS required" \
		eval "e2e_wait_status $p@strip.test deferred && e2e_queue_has $p@strip.test 'TLS is required'"
	lab_check "$who: wrong.test deferred, certificate not verified" \
		eval "e2e_wait_status $p@wrong.test deferred && e2e_queue_has $p@wrong.test 'certificate'"
	lab_check "$who: testing.test delivered" e2e_wait_status "$p@testing.test" sent
	lab_check "$who: plain.test delivered" e2e_wait_status "$p@plain.test" sent
	lab_check "$who: the strip and wrong MX hosts got nothing" \
		eval "e2e_sink_is mx2.strip.test $p@strip.test 0 && e2e_sink_is mx3.wrong.test $p@wrong.test 0"
}
verdicts sts "stsproxy"
e2e_message "$M/sts-dnsfail" "stsproxy to dnsfail.test"
e2e_sendmail sender@corp.example sts@dnsfail.test <"$M/sts-dnsfail"
lab_check "stsproxy: dnsfail.test deferred (TEMP), the MX got nothing" \
	eval "e2e_wait_status sts@dnsfail.test deferred && e2e_sink_is mx5.plain.test sts@dnsfail.test 0"

# --- the same Postfix on mta-sts-daemon --------------------------------------------

lab__stop stsproxy
# With a sanitizer build (make SAN=1), any report lands in its log.
lab_check "stsproxy stopped without a sanitizer report" \
	eval "! grep -E 'AddressSanitizer|LeakSanitizer|runtime error' $LAB_DIR/logs/stsproxy.log"
lab_exec lan postsuper -c "$E2E_PF/conf" -d ALL >/dev/null 2>&1 || true
: >"$E2E_POSTFIX_LOG.sts"
cat "$E2E_POSTFIX_LOG" >>"$E2E_POSTFIX_LOG.sts"
: >"$E2E_POSTFIX_LOG"
cat >"$LAB_DIR/mta-sts-daemon.yml" <<EOF
host: 127.0.0.1
port: $SMAP_PORT
cache:
  type: internal
  options:
    cache_size: 1000
default_zone:
  strict_testing: false
  timeout: 10
EOF
lab__start mtasts lan env SSL_CERT_FILE="$CA" mta-sts-daemon -c "$LAB_DIR/mta-sts-daemon.yml" -v info
lab__await mtasts lan 127.0.0.1 "$SMAP_PORT"
# shellcheck disable=SC2086
smq "127.0.0.1:$SMAP_PORT" postfix $DOMAINS >"$LAB_DIR/peer-replies.txt" || true
cat "$LAB_DIR/peer-replies.txt"
lab_check "differential: mta-sts-daemon's replies are stsproxy's, domain by domain" \
	is "$(cat "$LAB_DIR/peer-replies.txt")" "$(cat "$LAB_DIR/sts-replies.txt")"
lab_exec lan postfix -c "$E2E_PF/conf" reload >/dev/null 2>&1
verdicts peer "mta-sts-daemon"
lab_check "differential: mta-sts-daemon answers NOTFOUND for dnsfail.test" \
	is "$(smq "127.0.0.1:$SMAP_PORT" postfix dnsfail.test)" "NOTFOUND "
e2e_message "$M/peer-dnsfail" "mta-sts-daemon to dnsfail.test"
e2e_sendmail sender@corp.example peer@dnsfail.test <"$M/peer-dnsfail"
lab_check "mta-sts-daemon: dnsfail.test delivered regardless (never TEMP)" \
	eval "e2e_wait_status peer@dnsfail.test sent && e2e_sink_is mx5.plain.test peer@dnsfail.test 1"

lab__stop mtasts
lab_done
