#!/bin/bash
# tlsrpt_shared.sh - one TLS-RPT report per policy domain from three
# stsproxy gateways that share one real redis-server (RFC 8460, several
# gateways): sessions go through each gateway to the lab MX, some clean,
# some through an on-path attacker that strips STARTTLS, some through one
# that presents a forged certificate; then "stsproxy report send --now" runs
# on the three gateways at once:
#
#   1. the HTTPS rua receiver (nginx with the lab CA, a POST sink behind
#      it) gets exactly one report per domain; its decompressed counts are
#      exactly the sum of the sessions through the three gateways, and the
#      successes are what the MX stored; the two other gateways record the
#      report as sent by the third. Redis refuses the sender's "sent" mark
#      at first (an ACL): the sender asks again until Redis takes it, and
#      the others, finding the lock held meanwhile, never send;
#   2. Redis is down at report time: each gateway waits report.shared_wait
#      for it, then sends the counts it has itself (docs/DESIGN.md "TLS-RPT
#      results"): three reports for the domain, each exactly one gateway's
#      sessions, together all of them.
#
# Needs root, redis-server; STSPROXY names the binary (default
# build/stsproxy). Prints "ok N - ..." lines; exit 1 if any check failed.
# Every namespace, process and file is removed on exit.
set -eu
. "$(cd "$(dirname "$0")/../lab" && pwd)/lab.sh"
. "$LAB_SRC/redis.sh"

STSPROXY=${STSPROXY:-$(pwd)/build/stsproxy}
[ -x "$STSPROXY" ] || {
	echo "not ok - setup: $STSPROXY is not an executable" >&2
	exit 1
}
for p in redis-server redis-cli; do
	command -v "$p" >/dev/null || {
		echo "not ok - setup: $p is not installed (apt-get install redis-server)" >&2
		exit 1
	}
done

lab_init rptsh
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

GWS="a b c"
gw_i() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
REDIS=10.0.63.2
MX=10.0.25.2
STRIP=10.0.66.2
FORGE=10.0.67.2
HTTPS=10.0.44.2
PORT=10025

# --- topology: router, services, three LANs each behind its gateway -----------------

lab_router inet
lab_host dns 10.0.53.2/24
lab_host https "$HTTPS/24"
lab_host mx1 "$MX/24"
lab_host redis "$REDIS/24"
lab_host strip "$STRIP/24"
lab_host forge "$FORGE/24"
for g in $GWS; do
	lab_gateway "$g" "$(gw_i "$g")"
	lab_resolvconf "gw$g" 10.0.53.2 # the HTTPS reports resolve with the system resolver
done

lab_ca
lab_cert mx1 mx1.one.example mx1.two.example mx1.three.example >/dev/null
lab_smtp mx1 "$MX" mx1.one.example "$LAB_CRT" "$LAB_KEY"
lab_https https "$HTTPS"
lab_sts_publish one.example o1 enforce mx1.one.example
lab_sts_publish two.example t1 enforce mx1.two.example
lab_sts_publish three.example h1 enforce mx1.three.example
lab_dns_record \
	"one.example MX 10 mx1.one.example." "mx1.one.example A $MX" \
	"two.example MX 10 mx1.two.example." "mx1.two.example A $MX" \
	"three.example MX 10 mx1.three.example." "mx1.three.example A $MX" \
	"reports.lab.example A $HTTPS" \
	"_smtp._tls.one.example TXT \"v=TLSRPTv1; rua=https://reports.lab.example/one\"" \
	"_smtp._tls.two.example TXT \"v=TLSRPTv1; rua=https://reports.lab.example/two\"" \
	"_smtp._tls.three.example TXT \"v=TLSRPTv1; rua=https://reports.lab.example/three\""
lab_dns dns 10.0.53.2

# The HTTPS report receiver: nginx (TLS with the lab CA) in front of a
# backend that keeps every POST (tests/lab/post_sink.py).
POSTS=$LAB_DIR/posts
BACKEND=127.0.0.1:8480
lab_https_proxy reports.lab.example "$BACKEND"
lab__start post-sink https "$(lab__python)" "$LAB_SRC/post_sink.py" --listen "$BACKEND" --dir "$POSTS"
lab__await post-sink https "${BACKEND%:*}" "${BACKEND#*:}"

# --- Redis: stsproxy's own user, only the commands it needs ---------------------------

lab_redis_start redis "$REDIS"

# --- the gateways ------------------------------------------------------------------------

# gw_conf G - stsproxy's configuration for gateway G: the shared group, TLS-RPT
# reports with short retries, counts flushed every second, its own gateway id.
gw_conf() {
	local g=$1 i
	i=$(gw_i "$g")
	mkdir -p "$LAB_DIR/gw$g/state"
	cat >"$LAB_DIR/gw$g/stsproxy.conf" <<EOF
state_dir = "$LAB_DIR/gw$g/state";
mode = "enforce";
listen = [ "0.0.0.0:$PORT" ];
interception = "redirect";
clients = [ "10.0.1$i.0/24" ];
workers = 2;
log = { level = "info"; file = "$LAB_DIR/logs/stsproxy-gw$g.log"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 3; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 5; refresh = false; };
control = { socket = "$LAB_DIR/gw$g/control.sock"; };
metrics = { listen = "127.0.0.1:9125"; };
shared = { redis = "$REDIS:6379"; user = "stsproxy"; password = "$LAB_REDIS_PASSWORD"; wait_max = 300; connect_timeout = 500; command_timeout = 1000; };
report_store = { flush_interval = 1; gateway_id = "gw$g"; };
report = {
  enable = true;
  organization = "Corp Lab";
  contact = "mailto:postmaster@corp.example";
  submitter = "gw.corp.example";
  delay_max = 0;
  retry_first = 1;
  retry_for = 30;
  timeout = 5;
  shared_wait = 2;
};
EOF
}
gw_start() { lab_gw_start "$1" "10.0.1$(gw_i "$1").1" "$PORT"; }
ctl() { lab_gw_ctl "$@"; }
shared_up() { ctl "$1" status | grep -E '^shared ok '; }

for g in $GWS; do
	gw_conf "$g"
	gw_start "$g"
	lab_exec "gw$g" env LAN_IF=lan0 PROXY_PORT=$PORT sh "$LAB_SRC/../../scripts/iptables-gateway.sh" add
done
for g in $GWS; do
	lab_check "setup: gateway $g is connected to Redis as user stsproxy" lab_wait_for 10 shared_up "$g"
done

# --- sessions ------------------------------------------------------------------------------

OUT=$LAB_DIR/out
mkdir -p "$OUT"
lab_attacker strip "$STRIP" drop "$MX"
lab_attacker forge "$FORGE" forge "$MX"
# attack ADDR|off - the MX's port 25 goes to the attacker at ADDR, or to the MX itself.
ATTACK=off
attack() {
	if [ "$ATTACK" != off ]; then
		lab_exec inet iptables -t nat -D PREROUTING -p tcp -d "$MX" --dport 25 ! -s "$ATTACK" \
			-j DNAT --to-destination "$ATTACK:25"
	fi
	ATTACK=$1
	[ "$1" = off ] || lab_intercept "$MX" "$1"
}

N=0
declare -A OK FAIL GWOK GWFAIL
# session GW DOMAIN clean|strip|forge - one message from GW's LAN to DOMAIN's MX
# through gateway GW; a clean one must be delivered, an attacked one refused
# (enforce). The expected counts are kept per domain and per gateway.
session() {
	local g=$1 d=$2 how=$3 rc=0 name
	N=$((N + 1))
	name="$d-$g-$how-$N"
	printf 'Subject: %s\r\nMessage-ID: <%s@corp.example>\r\n\r\nhello\r\n' "$name" "$name" \
		>"$OUT/$name.eml"
	lab_smtp_send "lan$g" --server "$MX" --from a@corp.example --to "rcpt@$d" \
		--data "$OUT/$name.eml" >"$OUT/$name.log" 2>&1 || rc=$?
	if [ "$how" = clean ]; then
		[ "$rc" = 0 ] || { echo "$name: not delivered (rc $rc)"; cat "$OUT/$name.log"; return 1; }
		OK[$d]=$((${OK[$d]:-0} + 1))
		GWOK[$d$g]=$((${GWOK[$d$g]:-0} + 1))
	else
		[ "$rc" = 1 ] || { echo "$name: not refused (rc $rc)"; cat "$OUT/$name.log"; return 1; }
		FAIL[$d]=$((${FAIL[$d]:-0} + 1))
		GWFAIL[$d$g]=$((${GWFAIL[$d$g]:-0} + 1))
	fi
}
# run_sessions HOW SPEC... - SPEC is GW:DOMAIN:COUNT
run_sessions() {
	local how=$1 spec g d n bad=0
	shift
	for spec in "$@"; do
		IFS=: read -r g d n <<<"$spec"
		for _ in $(seq "$n"); do session "$g" "$d" "$how" || bad=1; done
	done
	return $bad
}

attack off
lab_check "sessions: clean ones through each gateway are delivered over TLS" \
	run_sessions clean a:one.example:2 a:two.example:1 b:one.example:1 b:two.example:2 \
	c:one.example:3 c:two.example:1
attack "$STRIP"
lab_check "sessions: STARTTLS stripped, refused by each gateway (enforce)" \
	run_sessions strip a:one.example:1 b:one.example:2 b:two.example:1 c:two.example:1
attack "$FORGE"
lab_check "sessions: a forged certificate, refused by each gateway (enforce)" \
	run_sessions forge a:two.example:1 c:one.example:1
attack off
echo "# sent: one.example ok=${OK[one.example]:-0} fail=${FAIL[one.example]:-0};" \
	"two.example ok=${OK[two.example]:-0} fail=${FAIL[two.example]:-0}"

stored() { # DOMAIN - messages the MX stored for DOMAIN
	grep -l "^Subject: $1-" "$(lab_smtp_dir mx1.one.example)"/new/*.eml 2>/dev/null | wc -l
}
lab_check "lab: the MX stored every clean message and no attacked one" eval \
	'[ "$(stored one.example)" = "${OK[one.example]}" ] && [ "$(stored two.example)" = "${OK[two.example]}" ]'

# redis_totals DAYKEY DOMAIN - "gateways success failure" summed over the hash's rows of DOMAIN.
redis_totals() {
	lab_redis_cli redis "$REDIS" --raw HGETALL "stsproxy:rpt:$1" | "$(lab__python)" -c '
import json, sys
lines = sys.stdin.read().split("\n")
gws, ok, fail = set(), 0, 0
for f, v in zip(lines[0::2], lines[1::2]):
    gw, dom, typ = f.split("|")
    if dom != sys.argv[1] or typ != "sts":
        continue
    j = json.loads(v)
    gws.add(gw); ok += j["success"]; fail += j["failure"]
print(len(gws), ok, fail)' "$2"
}
TODAY=$(date -u +%Y%m%d)
pushed() { # DOMAIN - Redis holds every gateway's row of DOMAIN with the sessions sent
	local want="3 ${OK[$1]} ${FAIL[$1]}"
	[ "$(redis_totals "$TODAY" "$1")" = "$want" ]
}
lab_check "push: Redis holds the three gateways' totals of one.example (flush + push)" \
	lab_wait_for 20 pushed one.example
lab_check "push: and of two.example" lab_wait_for 20 pushed two.example
# report show on one gateway reads the others' counts from Redis first:
# it shows the sum the report will carry, not only its own sessions.
shown() { # GW DOMAIN - "success failure" of the sts policy in report show's JSON
	lab_exec "gw$1" "$STSPROXY" -c "$LAB_DIR/gw$1/stsproxy.conf" report show "$2" |
		"$(lab__python)" -c '
import json, sys
rep = json.load(sys.stdin)
p = [p for p in rep["policies"] if p["policy"]["policy-type"] == "sts"][0]["summary"]
print(p["total-successful-session-count"], p["total-failure-session-count"])'
}
show_sum() { # GW DOMAIN
	local got
	got=$(shown "$1" "$2")
	echo "report show $2 on gw$1: [$got], want [${OK[$2]} ${FAIL[$2]}]"
	[ "$got" = "${OK[$2]} ${FAIL[$2]}" ]
}
lab_check "show: report show one.example on gateway a shows the three gateways' sum" \
	show_sum a one.example
lab_check "show: and two.example on gateway c" show_sum c two.example
metric() { # GW NAME - the value of metric NAME at gateway GW
	lab_exec "gw$1" curl -s http://127.0.0.1:9125/metrics | awk -v n="$2" '$1 == n { print $2 }'
}
for g in $GWS; do
	lab_check "metrics: gateway $g counted its pushes" \
		eval "[ \"\$(metric $g stsproxy_tlsrpt_shared_pushes_total)\" -ge 1 ]"
done

# --- 1. report send --now on the three gateways at once ------------------------------------

send_all() { # TAG [DOMAIN] - report send --now on every gateway at once; logs in $OUT/TAG-G.log
	local tag=$1 g pids=() rc=0
	shift
	for g in $GWS; do
		lab_exec "gw$g" "$STSPROXY" -c "$LAB_DIR/gw$g/stsproxy.conf" report send --now "$@" \
			>"$OUT/$tag-$g.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	for g in $GWS; do sed "s/^/# $tag $g: /" "$OUT/$tag-$g.log"; done
	return $rc
}
# Redis refuses the "sent" mark at first (stsproxy's user may SET every
# key but the rpt-sent ones): the sender asks again until Redis takes it,
# and the others, which find the lock held meanwhile, never send.
acl() { lab_redis_cli redis "$REDIS" ACL SETUSER stsproxy "$@" | grep -q '^OK$'; }
lab_check "1: the ACL lets stsproxy SET any key but rpt-sent ones" acl -set \
	'(+set ~stsproxy:[a-q]* ~stsproxy:[s-z]* ~stsproxy:rpt:* ~stsproxy:rpt-lock:*)'
send_all once &
send_all_pid=$!
mark_refused() { grep -q 'not marked sent in Redis: .*trying again' "$OUT"/once-?.log; }
lab_check "1: the sender's first mark is refused, and it says it tries again" \
	lab_wait_for 60 mark_refused
lab_check "1: the ACL lets stsproxy SET rpt-sent keys again" acl +set clearselectors
lab_check "1: report send --now on the three gateways at once exits 0 on each" wait "$send_all_pid"
lab_check "1: the sender marked the reports sent once Redis let it" \
	grep -q 'result=marked-sent' "$OUT"/once-a.log "$OUT"/once-b.log "$OUT"/once-c.log

# posts PATH - the reports the receiver got at PATH, one line each:
# "success failure" of the sts policy, from the decompressed body.
posts() {
	"$(lab__python)" - "$POSTS" "$1" <<'EOF'
import glob, gzip, json, os, sys
d, path = sys.argv[1], sys.argv[2]
for meta in sorted(glob.glob(os.path.join(d, "*.json"))):
    m = json.load(open(meta))
    if m["path"] != path:
        continue
    rep = json.loads(gzip.decompress(open(meta[:-5] + ".body", "rb").read()))
    ok = fail = 0
    for p in rep["policies"]:
        if p["policy"]["policy-type"] != "sts":
            continue
        ok += p["summary"]["total-successful-session-count"]
        fail += p["summary"]["total-failure-session-count"]
        listed = sum(f["failed-session-count"] for f in p.get("failure-details", []))
        assert listed == p["summary"]["total-failure-session-count"], "details do not add up"
    print(ok, fail)
EOF
}
one_report() { # DOMAIN PATH - exactly one report, with the exact sums
	local got
	got=$(posts "$2")
	echo "reports at $2: [$got], want [${OK[$1]} ${FAIL[$1]}]"
	[ "$got" = "${OK[$1]} ${FAIL[$1]}" ]
}
lab_check "1: one report for one.example, counts = sum of the three gateways' sessions" \
	one_report one.example /one
lab_check "1: one report for two.example, counts = sum of the three gateways' sessions" \
	one_report two.example /two
lab_check "1: its successes are what the MX stored" eval \
	'[ "$(posts /one | cut -d" " -f1)" = "$(stored one.example)" ] && [ "$(posts /two | cut -d" " -f1)" = "$(stored two.example)" ]'
delivered_lines() { cat "$OUT"/once-?.log | grep -c "domain=$1 .*result=delivered" || true; }
lab_check "1: one gateway delivered each report" \
	eval '[ "$(delivered_lines one.example)" = 1 ] && [ "$(delivered_lines two.example)" = 1 ]'
lab_check "1: the two others recorded it as sent by that gateway" eval \
	'[ "$(cat "$OUT"/once-?.log | grep -c "domain=one.example .*result=skipped detail=\"sent by gateway gw[abc]\"")" = 2 ]'
lab_check "1: Redis marks both reports sent" eval \
	"lab_redis_cli redis $REDIS GET stsproxy:rpt-sent:$TODAY:one.example | grep -q '^gw[abc]\$' && lab_redis_cli redis $REDIS GET stsproxy:rpt-sent:$TODAY:two.example | grep -q '^gw[abc]\$'"
lab_check "1: a second run on every gateway sends nothing more" eval \
	'send_all twice && [ "$(posts /one | wc -l)" = 1 ] && [ "$(posts /two | wc -l)" = 1 ]'

# --- 2. Redis down at report time ------------------------------------------------------------

attack off
lab_check "2: clean sessions to three.example through each gateway" \
	run_sessions clean a:three.example:1 b:three.example:2 c:three.example:1
attack "$STRIP"
lab_check "2: stripped ones, refused" \
	run_sessions strip a:three.example:1 b:three.example:1 c:three.example:1
attack off
local_totals() { # GW - "success failure" of three.example in GW's store, GW's own rows
	"$(lab__python)" - "$LAB_DIR/gw$1/state/report.db" "gw$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
ok, fail = db.execute("SELECT TOTAL(success), TOTAL(failure) FROM results WHERE domain ="
                      " 'three.example' AND type = 'sts' AND gateway = ?", (sys.argv[2],)).fetchone()
print(int(ok), int(fail))
EOF
}
flushed() { [ "$(local_totals "$1")" = "${GWOK[three.example$1]} ${GWFAIL[three.example$1]}" ]; }
for g in $GWS; do
	lab_check "2: gateway $g wrote its three.example counts to its store" lab_wait_for 20 flushed "$g"
done
# report show while Redis is up: every store now holds the other gateways'
# three.example rows as well; the partial reports below must leave them out.
for g in $GWS; do
	lab_check "2: report show three.example on gateway $g shows the sum (Redis up)" \
		lab_wait_for 10 show_sum "$g" three.example
done
lab_redis_stop redis
t0=$SECONDS
lab_check "2: Redis down: report send --now three.example on the three gateways exits 0" \
	send_all down three.example
lab_check "2: each gateway waited report.shared_wait (2 s), then sent its own counts" eval \
	'[ "$(cat "$OUT"/down-?.log | grep -c "report.shared_wait is over: sending the counts this gateway has")" = 3 ] && [ $((SECONDS - t0)) -ge 2 ]'
each_own() {
	local want='' g
	for g in $GWS; do
		want="$want${GWOK[three.example$g]} ${GWFAIL[three.example$g]}"$'\n'
	done
	echo "reports: [$(posts /three | sort | tr '\n' ',')], gateways: [$(printf '%s' "$want" | sort | tr '\n' ',')]"
	[ "$(posts /three | sort)" = "$(printf '%s' "$want" | sort)" ]
}
lab_check "2: three reports for three.example, each exactly one gateway's sessions" each_own
post_ids() { # PATH - the report ids the receiver got at PATH, one a line
	"$(lab__python)" - "$POSTS" "$1" <<'EOF'
import glob, gzip, json, os, sys
d, path = sys.argv[1], sys.argv[2]
for meta in sorted(glob.glob(os.path.join(d, "*.json"))):
    if json.load(open(meta))["path"] == path:
        print(json.loads(gzip.decompress(open(meta[:-5] + ".body", "rb").read()))["report-id"])
EOF
}
partial_ids() {
	local want
	want=$(for g in $GWS; do echo "$TODAY.gw$g.three.example@gw.corp.example"; done)
	echo "ids: [$(post_ids /three | sort | tr '\n' ' ')]"
	[ "$(post_ids /three | sort)" = "$want" ]
}
lab_check "2: each partial report has an id of its own, naming its gateway" partial_ids
lab_check "1: the reports sent under the lock keep the plain id" eval \
	'[ "$(post_ids /one)" = "$TODAY.one.example@gw.corp.example" ]'
lab_check "2: together exactly all of them" eval \
	'[ "$(posts /three | awk "{ s += \$1; f += \$2 } END { print s, f }")" = "${OK[three.example]} ${FAIL[three.example]}" ]'

lab_done
