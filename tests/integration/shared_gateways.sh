#!/bin/bash
# shared_gateways.sh - three stsproxy gateways, each in front of its own LAN,
# sharing one real redis-server (its own namespace, an ACL user with only
# the commands stsproxy needs), against the lab's DNS, policy host and MX
# and an on-path attacker that strips STARTTLS:
#
#   1. a policy learned through gateway A protects a stripped session
#      through gateway B, which never saw the domain, while the policy host
#      is down (RFC 8461 section 3.3 across gateways); a control domain
#      nobody learned goes through in plaintext, as without sharing;
#   2. a policy change A sees (testing -> enforce under a new id) reaches B
#      within a second over pub/sub: B, which would trust its remembered
#      TXT answer for 300 s, refuses the next stripped session;
#   3. Redis stops: every gateway decides as before (refusals stay
#      refusals, clean mail is delivered), without waiting, and says so in
#      "ctl status"; Redis comes back empty: the gateways reconnect by
#      themselves, and a policy A then fetches protects C again;
#   4. failover: a primary, a replica and redis-sentinel, which answers only
#      an ACL user with a password; the primary dies, Sentinel promotes the
#      replica, the gateways follow (+switch-master) and share again;
#   5. a gateway with a wrong Sentinel password says so in its log and in
#      "ctl status", and decides from its own cache as before.
#
# Each check looks at the SMTP reply the client got and at what the MX
# stored. Needs root, redis-server and redis-sentinel; STSPROXY names the
# binary (default build/stsproxy). Prints "ok N - ..." lines; exit 1 if any
# check failed. Every namespace, process and file is removed on exit.
set -eu
. "$(cd "$(dirname "$0")/../lab" && pwd)/lab.sh"
. "$LAB_SRC/redis.sh"

STSPROXY=${STSPROXY:-$(pwd)/build/stsproxy}
[ -x "$STSPROXY" ] || {
	echo "not ok - setup: $STSPROXY is not an executable" >&2
	exit 1
}
for p in redis-server redis-sentinel redis-cli; do
	command -v "$p" >/dev/null || {
		echo "not ok - setup: $p is not installed (apt-get install redis-server redis-sentinel)" >&2
		exit 1
	}
done

lab_init shgw
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

GWS="a b c"
gw_i() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
REDIS=10.0.63.2
REPLICA=10.0.64.2
SENTINEL=10.0.65.2
MX=10.0.25.2
ATTACKER=10.0.66.2
PORT=10025

# --- topology: router, services, three LANs each behind its gateway -----------------

lab_router inet
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_host mx1 "$MX/24"
lab_host redis "$REDIS/24"
lab_host replica "$REPLICA/24"
lab_host sentinel "$SENTINEL/24"
for g in $GWS; do lab_gateway "$g" "$(gw_i "$g")"; done

lab_ca
lab_cert mx1 mx1.one.example mx1.two.example mx1.chg.example mx1.four.example \
	mx1.five.example >/dev/null
lab_smtp mx1 "$MX" mx1.one.example "$LAB_CRT" "$LAB_KEY"
lab_https https 10.0.44.2
lab_sts_publish one.example o1 enforce mx1.one.example
lab_sts_publish two.example t1 enforce mx1.two.example
lab_sts_publish four.example f1 enforce mx1.four.example
lab_sts_publish five.example v1 enforce mx1.five.example
lab_sts_publish chg.example c1 testing mx1.chg.example
lab_dns_del _mta-sts.chg.example TXT
lab_dns_record \
	'_mta-sts.chg.example 1 TXT "v=STSv1; id=c1"' \
	"one.example MX 10 mx1.one.example." "mx1.one.example A $MX" \
	"two.example MX 10 mx1.two.example." "mx1.two.example A $MX" \
	"four.example MX 10 mx1.four.example." "mx1.four.example A $MX" \
	"five.example MX 10 mx1.five.example." "mx1.five.example A $MX" \
	"chg.example MX 10 mx1.chg.example." "mx1.chg.example A $MX"
lab_dns dns 10.0.53.2

# --- Redis: stsproxy's own user, nothing else allowed ----------------------------------

lab_redis_start redis "$REDIS"

# --- the gateways ------------------------------------------------------------------------

# gw_conf G SHARED_LINE - stsproxy's configuration for gateway G. The TXT
# answer is trusted 300 s in memory (sts.txt_ttl_min), so that only the
# published change can make B look again within the test.
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
timeouts = { connect = 10; greeting = 30; command = 30; starttls = 20; };
log = { level = "debug"; file = "$LAB_DIR/logs/stsproxy-gw$g.log"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 3; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 5; refresh = false; txt_ttl_min = 300; txt_ttl_max = 300; };
control = { socket = "$LAB_DIR/gw$g/control.sock"; };
$2
EOF
}

SHARED_DIRECT="shared = { redis = \"$REDIS:6379\"; user = \"stsproxy\"; password = \"$LAB_REDIS_PASSWORD\"; wait_max = 300; connect_timeout = 500; command_timeout = 500; };"

gw_start() { lab_gw_start "$1" "10.0.1$(gw_i "$1").1" "$PORT"; }
gw_stop() { lab_gw_stop "$1"; }
ctl() { lab_gw_ctl "$@"; }
gw_log() { lab_gw_log "$1"; }

for g in $GWS; do
	gw_conf "$g" "$SHARED_DIRECT"
	gw_start "$g"
	lab_exec "gw$g" env LAN_IF=lan0 PROXY_PORT=$PORT sh "$LAB_SRC/../../scripts/iptables-gateway.sh" add
done

# shared_up G - gateway G's connections to Redis are all up.
shared_up() { ctl "$1" status | grep -E '^shared ok '; }
for g in $GWS; do
	lab_check "setup: gateway $g is connected to Redis as user stsproxy" lab_wait_for 10 shared_up "$g"
done

# --- sending and looking ------------------------------------------------------------------

OUT=$LAB_DIR/out
mkdir -p "$OUT"
attack_on() { lab_intercept "$MX" "$ATTACKER"; }
attack_off() {
	lab_exec inet iptables -t nat -D PREROUTING -p tcp -d "$MX" --dport 25 ! -s "$ATTACKER" \
		-j DNAT --to-destination "$ATTACKER:25"
}
lab_host attacker "$ATTACKER/24"
lab_attacker attacker "$ATTACKER" drop "$MX"

# send NAME GW RCPT - one message from GW's LAN to the MX (redirected through
# gateway GW); transcript in $OUT/NAME.log, exit status in $OUT/NAME.rc,
# seconds taken in $OUT/NAME.secs.
send() {
	local rc=0 t0=$SECONDS
	printf 'Subject: %s\r\nMessage-ID: <%s.%s@corp.example>\r\n\r\nhello\r\n' \
		"$1" "$1" "$$" >"$OUT/$1.eml"
	lab_smtp_send "lan$2" --server "$MX" --from a@corp.example --to "$3" \
		--data "$OUT/$1.eml" 2>"$OUT/$1.log" || rc=$?
	echo "$rc" >"$OUT/$1.rc"
	echo $((SECONDS - t0)) >"$OUT/$1.secs"
}
accepted() { sed 's/^/  /' "$OUT/$1.log"; [ "$(cat "$OUT/$1.rc")" = 0 ]; }
refused() { # NAME REGEX
	sed 's/^/  /' "$OUT/$1.log"
	[ "$(cat "$OUT/$1.rc")" = 1 ] && grep -Eq "^S: $2" "$OUT/$1.log"
}
stored() { # SUBJECT COUNT - the MX holds COUNT messages with that subject
	local n
	n=$(grep -l "^Subject: $1"$'\r' "$(lab_smtp_dir mx1.one.example)"/new/*.eml 2>/dev/null |
		wc -l)
	echo "the MX holds $n message(s) with subject $1"
	[ "$n" = "$2" ]
}
quick() { echo "took $(cat "$OUT/$1.secs") s"; [ "$(cat "$OUT/$1.secs")" -le "$2" ]; }

# --- 1. learned through A, protects B while the policy host is down ---------------------

send one-a a rcpt@one.example
lab_check "1: A fetches one.example's enforce policy and delivers over TLS" accepted one-a
lab_check "1: the MX stored it" stored one-a 1
lab_check "1: A stored the policy in Redis" \
	lab_wait_for 5 eval "lab_redis_user_cli redis $REDIS GET stsproxy:policy:one.example | grep -q '^id=o1'"

# The policy host of one.example and two.example is gone (no address), and
# the attacker strips STARTTLS on the way to the MX.
lab_dns_del mta-sts.one.example A
lab_dns_del mta-sts.two.example A
lab_dns_reload
attack_on

send one-b-strip b rcpt@one.example
lab_check "1: B, which never saw one.example, refuses the stripped session (451 4.7.4)" \
	refused one-b-strip '451 4\.7\.4'
lab_check "1: nothing of it reached the MX" stored one-b-strip 0
lab_check "1: B took the policy from Redis, not from the policy host" \
	eval "gw_log b | grep -q 'event=shared-policy domain=one.example id=o1 result=used'"
send one-c-strip c rcpt@one.example
lab_check "1: so does C (451 4.7.4)" refused one-c-strip '451 4\.7\.4'
send two-b-strip b rcpt@two.example
lab_check "1: control: two.example, which no gateway learned, goes through stripped" \
	accepted two-b-strip
lab_check "1: control: the MX got it in plaintext" stored two-b-strip 1

# --- 2. a policy change seen by A reaches B within a second --------------------------------

attack_off
send chg-a1 a rcpt@chg.example
send chg-b1 b rcpt@chg.example
lab_check "2: before: A and B deliver to chg.example (testing, id c1)" \
	eval 'accepted chg-a1 && accepted chg-b1'
attack_on
send chg-b2 b rcpt@chg.example
lab_check "2: before: B relays a stripped session under testing (reported, not refused)" \
	accepted chg-b2

lab_sts_policy chg.example enforce mx1.chg.example >/dev/null
lab_dns_set '_mta-sts.chg.example 1 TXT "v=STSv1; id=c2"'
sleep 1.2 # past the record's TTL: a resolver asked now answers c2
lab_check "2: A refreshes chg.example and fetches the enforce policy c2" \
	ctl a cache refresh chg.example
lab_check "2: A's cache holds c2" lab_wait_for 5 eval "ctl a cache list | grep -q '^chg.example id=c2 mode=enforce'"
t0=$(date +%s.%N)
lab_check "2: B hears of c2 within a second" \
	lab_wait_for 1 eval "gw_log b | grep -q 'event=shared-change domain=chg.example id=c2'"
lab_check "2: B's cache holds c2 within a second of A's" \
	lab_wait_for 1 eval "ctl b cache list | grep -q '^chg.example id=c2 mode=enforce'"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "# B followed in %.2f s\n", b - a }' 
send chg-b3 b rcpt@chg.example
lab_check "2: B refuses the next stripped session (451 4.7.4)" refused chg-b3 '451 4\.7\.4'
lab_check "2: nothing of it reached the MX" stored chg-b3 0

# --- 3. Redis down: decisions unchanged, nothing waits --------------------------------------

lab_redis_stop redis
for g in $GWS; do
	lab_check "3: gateway $g says the shared state is down" \
		lab_wait_for 5 eval "ctl $g status | grep -q '^shared down '"
done
for g in $GWS; do
	send "down-$g-strip" "$g" rcpt@one.example
	lab_check "3: $g still refuses the stripped session to one.example (451 4.7.4)" \
		refused "down-$g-strip" '451 4\.7\.4'
	lab_check "3: $g answered at once (<= 3 s)" quick "down-$g-strip" 3
done
lab_check "3: nothing of them reached the MX" stored down-a-strip 0
attack_off
for g in $GWS; do
	send "down-$g-clean" "$g" rcpt@one.example
	lab_check "3: $g delivers the clean session to one.example over TLS" accepted "down-$g-clean"
done
send down-b-new b rcpt@four.example
lab_check "3: B fetches a domain it never saw itself (four.example), no Redis needed" \
	accepted down-b-new

# --- 3b. Redis back (empty): the gateways reconnect by themselves and share again -----------

lab_redis_start redis "$REDIS"
for g in $GWS; do
	lab_check "3b: gateway $g reconnects to Redis by itself" lab_wait_for 15 shared_up "$g"
done
send five-a a rcpt@five.example
lab_check "3b: A fetches five.example and delivers over TLS" accepted five-a
lab_check "3b: A stored the policy in the restarted Redis" \
	lab_wait_for 5 eval "lab_redis_user_cli redis $REDIS GET stsproxy:policy:five.example | grep -q '^id=v1'"
lab_dns_del mta-sts.five.example A
lab_dns_reload
attack_on
send five-c-strip c rcpt@five.example
lab_check "3b: C, which never saw five.example, refuses the stripped session (451 4.7.4)" \
	refused five-c-strip '451 4\.7\.4'
lab_check "3b: nothing of it reached the MX" stored five-c-strip 0
attack_off
lab_redis_stop redis

# --- 4. failover with a primary, a replica and Sentinel --------------------------------------

for g in $GWS; do gw_stop "$g"; done
lab_redis_start redis "$REDIS"
lab_redis_start replica "$REPLICA" replicaof "$REDIS"
mkdir -p "$LAB_DIR/sentinel"
cat >"$LAB_DIR/sentinel/sentinel.conf" <<EOF
bind $SENTINEL
port 26379
protected-mode no
dir $LAB_DIR/sentinel
sentinel monitor lab $REDIS 6379 1
sentinel down-after-milliseconds lab 1000
sentinel failover-timeout lab 5000
sentinel parallel-syncs lab 1
user default off
user stsproxy-sentinel on >sentinel-secret resetchannels &+switch-master -@all +ping +auth +subscribe +sentinel|get-master-addr-by-name
EOF
lab__start sentinel sentinel redis-sentinel "$LAB_DIR/sentinel/sentinel.conf"
lab__await sentinel sentinel "$SENTINEL" 26379
lab_check "4: Sentinel refuses a client without a password" \
	eval "lab_redis_cli sentinel $SENTINEL -p 26379 SENTINEL get-master-addr-by-name lab | grep -q '^NOAUTH'"
lab_check "4: the replica follows the primary" \
	lab_wait_for 10 eval "lab_redis_cli replica $REPLICA INFO replication | grep -q 'master_link_status:up'"
# shared_sentinel PASSWORD - the shared group through Sentinel, as its ACL user.
shared_sentinel() {
	echo "shared = { sentinels = [ \"$SENTINEL:26379\" ]; master = \"lab\"; sentinel_user = \"stsproxy-sentinel\"; sentinel_password = \"$1\"; user = \"stsproxy\"; password = \"$LAB_REDIS_PASSWORD\"; wait_max = 300; connect_timeout = 500; command_timeout = 500; };"
}
SHARED_SENTINEL=$(shared_sentinel sentinel-secret)
for g in $GWS; do
	rm -rf "$LAB_DIR/gw$g/state"
	gw_conf "$g" "$SHARED_SENTINEL"
	gw_start "$g"
done
for g in $GWS; do
	lab_check "4: gateway $g found the primary through Sentinel" lab_wait_for 10 shared_up "$g"
done
lab_sts_publish four.example f2 enforce mx1.four.example
lab_dns_set 'mta-sts.four.example A 10.0.44.2'
send four-a a rcpt@four.example
lab_check "4: A fetches four.example and stores it through the primary" \
	lab_wait_for 5 eval "lab_redis_cli redis $REDIS GET stsproxy:policy:four.example | grep -q '^id=f2'"

lab_redis_cli redis "$REDIS" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
lab_redis_stop redis
lab_check "4: Sentinel promotes the replica" \
	lab_wait_for 20 eval "lab_redis_cli replica $REPLICA INFO replication | grep -q 'role:master'"
for g in $GWS; do
	lab_check "4: gateway $g follows to the new primary" lab_wait_for 15 shared_up "$g"
	lab_check "4: gateway $g logged the failover" \
		eval "gw_log $g | grep -q 'event=shared-failover master=lab address=$REPLICA'"
done
lab_dns_del mta-sts.four.example A
lab_dns_reload
attack_on
send four-b-strip b rcpt@four.example
lab_check "4: after the failover B takes A's policy from the new primary and refuses the stripped session" \
	refused four-b-strip '451 4\.7\.4'
attack_off

# --- 5. a wrong Sentinel password: a clear error, local decisions unchanged -----------------

# A keeps its state directory: four.example is in its own cache.
gw_stop a
gw_conf a "$(shared_sentinel not-the-secret)"
gw_start a
lab_check "5: A logs that the Sentinel refused its password" \
	lab_wait_for 10 eval "gw_log a | grep -q 'event=redis-auth name=sentinel result=refused reason=\"WRONGPASS'"
lab_check "5: A says the shared state is down" \
	lab_wait_for 5 eval "ctl a status | grep -q '^shared down '"
lab_check "5: A's own cache still holds four.example" \
	eval "ctl a cache list | grep -q '^four.example id=f2 mode=enforce'"
attack_on
send four-a-wrong a rcpt@four.example
lab_check "5: A refuses the stripped session to four.example from its own cache (451 4.7.4)" \
	refused four-a-wrong '451 4\.7\.4'
lab_check "5: A answered at once (<= 3 s)" quick four-a-wrong 3
lab_check "5: nothing of it reached the MX" stored four-a-wrong 0
attack_off
send four-a-clean a rcpt@four.example
lab_check "5: A delivers the clean session to four.example over TLS" accepted four-a-clean

lab_done
