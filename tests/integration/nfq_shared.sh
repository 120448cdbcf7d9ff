#!/bin/bash
# nfq_shared.sh - the packet inspector's memory of servers that offered
# STARTTLS, shared between gateways through one real redis-server (its own
# namespace, the ACL user of docs/SECURITY.md). Three gateways, each in
# front of its own LAN, forward their clients' port-25 flows and queue them
# (scripts/nfq-iptables.sh) to the inspector stsproxy starts from its nfq
# group, in block mode, without a listener; A and B have a shared group,
# C has none. The recipient domains publish no MTA-STS policy, so only the
# server memory can protect them. An on-path attacker strips STARTTLS
# (strip_proxy.py, DNAT in the router); the clients are swaks with
# opportunistic TLS, as an MTA sends.
#
#   1. a client behind A sends to mx1 over STARTTLS: delivered; within a
#      second Redis holds mx1 (<prefix>srv:<address>) and B has received it
#      (pub/sub), though B never talked to mx1
#   2. a client behind B sends to mx1 while the attacker strips STARTTLS:
#      B's inspector knows mx1 offered it (starttls_stripped, reason
#      offered_before, naming the server), drops the flow and resets both
#      ends: the MX stores nothing, the recipient never leaves in the clear
#   3. controls: mx2, which no gateway saw offering STARTTLS, stripped the
#      same way through B, and mx1 stripped through C (no shared group):
#      both delivered in plaintext without an event, as an inspector
#      without memory does - so the refusal of 2 came from A's sighting
#   4. Redis stops and B restarts: B saved what it received in its own
#      server memory (state_dir/nfq-servers) and still refuses the stripped
#      session; B restarted once more without that file lets it through
#
# Needs root, the lab's packages and redis-server; STSPROXY names the binary
# (default build/stsproxy). Prints "ok N - ..." lines and exits non-zero
# when a check failed; every namespace, process and file goes with the lab
# on any exit.
set -eu
. "$(cd "$(dirname "$0")/../e2e" && pwd)/lib.sh"
. "$E2E_ROOT/tests/lab/redis.sh"

[ -x "$STSPROXY" ] || {
	echo "not ok - setup: $STSPROXY is not an executable" >&2
	exit 1
}
command -v redis-server >/dev/null || {
	echo "not ok - setup: redis-server is not installed (apt-get install redis-server)" >&2
	exit 1
}

e2e_init nfqsh
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

GWS="a b c"
gw_i() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
REDIS=10.0.63.2
MX1=10.0.25.2 # mx1.known.example: A delivers to it over TLS first
MX2=10.0.26.2 # mx2.unseen.example: offers STARTTLS, no gateway ever sees it
ATK1=10.0.66.2
ATK2=10.0.67.2

# --- topology: router, DNS, two MX hosts, Redis, three LANs each behind its gateway ---

lab_router inet
lab_host dns "$E2E_DNS4/24"
lab_host redis "$REDIS/24"
for g in $GWS; do lab_gateway "$g" "$(gw_i "$g")"; done
lab_ca
e2e_mx mx1 "$MX1" mx1.known.example
e2e_mx mx2 "$MX2" mx2.unseen.example
# No _mta-sts records: both domains have no policy (NXDOMAIN).
lab_dns_record "known.example MX 10 mx1.known.example." "mx1.known.example A $MX1" \
	"unseen.example MX 10 mx2.unseen.example." "mx2.unseen.example A $MX2"
lab_dns dns "$E2E_DNS4"
lab_redis_start redis "$REDIS"

# --- the gateways: the inspector in block mode, A and B sharing ---------------------

SHARED="shared = { redis = \"$REDIS:6379\"; user = \"stsproxy\"; password = \"$LAB_REDIS_PASSWORD\"; connect_timeout = 500; command_timeout = 500; };"

# gw_conf G SHARED_LINE - gateway G's configuration: the inspector alone.
gw_conf() {
	mkdir -p "$LAB_DIR/gw$1/state"
	cat >"$LAB_DIR/gw$1/stsproxy.conf" <<EOF
state_dir = "$LAB_DIR/gw$1/state";
log = { level = "debug"; file = "$LAB_DIR/logs/stsproxy-gw$1.log"; events = "$LAB_DIR/gw$1/events.log"; };
dns = { forwarders = [ "$E2E_DNS4" ]; timeout = 3; };
tls = { ca_file = "$LAB_DIR/ca/ca.crt"; };
sts = { fetch_timeout = 5; };
control = { socket = "$LAB_DIR/gw$1/control.sock"; };
nfq = { queues = [ 0 ]; action = "block"; fail_open = true; };
$2
EOF
}

# gw_start G - (re)start gateway G's stsproxy (no listener: it inspects).
gw_start() { lab_gw_start "$1"; }
ctl() { lab_gw_ctl "$@"; }
gw_log() { lab_gw_log "$1"; }

# shared_synced G - G's Redis connections are all up and its inspector has
# read the servers already stored (the sync on connect).
shared_synced() {
	ctl "$1" status | grep -E '^shared ok ' && gw_log "$1" | grep -q 'event=shared-sync servers='
}
# received G - how many changes and servers G received from Redis so far.
received() { ctl "$1" status | sed -n 's/^shared .* received=\([0-9]*\) .*/\1/p'; }

gw_conf a "$SHARED"
gw_conf b "$SHARED"
gw_conf c ""
for g in $GWS; do
	lab_exec "gw$g" sh "$E2E_ROOT/scripts/nfq-iptables.sh" add 0
	gw_start "$g"
	lab_check "setup: gateway $g starts its inspector in block mode" \
		e2e_grep "$LAB_DIR/logs/stsproxy-gw$g.log" 'nfq: event=started .*action=block'
done
for g in a b; do
	lab_check "setup: gateway $g is connected to Redis as user stsproxy and synced" \
		lab_wait_for 10 shared_synced "$g"
done

# --- sending and looking ---------------------------------------------------------------

OUT=$LAB_DIR/out
mkdir -p "$OUT"

# send NAME GW RCPT MX_ADDR - one message from GW's LAN straight to the MX,
# opportunistic TLS; transcript in $OUT/NAME.out, swaks's status in $OUT/NAME.rc.
send() {
	local rc=0
	lab_exec "lan$2" timeout 60 swaks --server "$4" --port 25 --from sender@corp.example \
		--to "$3" --helo client.corp.example --tls-optional --timeout 20 \
		--header "Subject: $1" >"$OUT/$1.out" 2>&1 || rc=$?
	echo "$rc" >"$OUT/$1.rc"
}
# delivered NAME MX_NAME RCPT TLS - the client was answered 250 to its data,
# and the MX stored one message for RCPT, with TLS true or false.
delivered() {
	local m
	sed 's/^/  /' "$OUT/$1.out" | grep -E '^  (<-|->|<~|~>) ' | tail -n 12
	[ "$(cat "$OUT/$1.rc")" = 0 ] || return 1
	e2e_sink_wait "$2" "$3" 1 10 || return 1
	m=$(e2e_sink_msg "$2" "$3") || return 1
	echo "$m: tls=$(lab_json "$m.json" tls)"
	[ "$(e2e_sink_count "$2" "$3")" = 1 ] && [ "$(lab_json "$m.json" tls)" = "$4" ]
}
# was_cut NAME - the client's session was cut before any message was accepted.
was_cut() {
	sed 's/^/  /' "$OUT/$1.out" | grep -E '^  (<-|->|<~|~>|\*\*\*) ' | tail -n 12
	[ "$(cat "$OUT/$1.rc")" != 0 ] &&
		! grep -Eq '^<- +(250 .*(queued|accepted|Ok)|354)' "$OUT/$1.out"
}
# never_saw RCPT MX_NAME - neither the MX nor an attacker heard of RCPT.
never_saw() {
	! grep -rF "$1" "$LAB_DIR/smtp/$2" "$LAB_DIR"/logs/smtp-*.log "$LAB_DIR"/logs/attack-*.log
}
# event G KEY=VALUE... - gateway G's event file has an event with these values.
event() {
	local g=$1
	shift
	"$(lab__python)" - "$LAB_DIR/gw$g/events.log" "$@" <<'EOF'
import json, sys
want = [w.split("=", 1) for w in sys.argv[2:]]
lines = open(sys.argv[1]).read().splitlines()
for line in lines:
    ev = json.loads(line)
    if all(str(ev.get(k)) == v for k, v in want):
        print(json.dumps(ev, sort_keys=True))
        sys.exit(0)
print("no event with", " ".join(sys.argv[2:]), "among", len(lines))
for line in lines:
    print(line)
sys.exit(1)
EOF
}
# no_event G ADDR - gateway G reported nothing about server ADDR.
no_event() {
	! grep -F "\"server\":\"$2 25\"" "$LAB_DIR/gw$1/events.log" &&
		! gw_log "$1" | grep -F "server=\"$2 25\""
}
attack() { e2e_attacker "atk$1" "$2" drop "$3"; } # attack N ADDR TARGET

# --- 1. A sees mx1 offer STARTTLS; Redis and B learn it --------------------------------

rb0=$(received b)
echo "# B has received $rb0 so far"
send tls-a a alice@known.example "$MX1"
lab_check "1: A delivers to mx1 over STARTTLS" delivered tls-a mx1.known.example alice@known.example true
lab_check "1: within a second Redis holds mx1 as seen by A (stsproxy:srv:$MX1)" \
	lab_wait_for 1 eval "lab_redis_user_cli redis $REDIS GET stsproxy:srv:$MX1 | grep -Eq '^[0-9]{10}$'"
lab_check "1: ... for 30 days" \
	eval "lab_redis_cli redis $REDIS TTL stsproxy:srv:$MX1 | awk '\$1 > 2591000 && \$1 <= 2592000 { ok = 1; print } END { exit !ok }'"
lab_check "1: within a second B has received it" \
	lab_wait_for 1 eval "[ \"\$(received b)\" -gt $rb0 ]"
lab_check "1: no gateway reported anything" \
	eval "! grep -h . '$LAB_DIR'/gw*/events.log"

# --- 2. B, which never talked to mx1, refuses it stripped ------------------------------

attack 1 "$ATK1" "$MX1"
send strip-b b bob@known.example "$MX1"
lab_check "2: the attacker stripped STARTTLS from mx1's EHLO reply" \
	e2e_grep "$(lab_attacker_log atk1)" 'event=(drop|strip)'
lab_check "2: B cut the client's session" was_cut strip-b
lab_check "2: mx1 stored nothing for it" e2e_sink_is mx1.known.example bob@known.example 0
lab_check "2: the recipient never left in the clear" never_saw bob@known.example mx1.known.example
lab_check "2: B's event starttls_stripped names mx1, offered_before, block" \
	event b event=starttls_stripped source=nfq "server=$MX1 25" reason=offered_before action=block
lab_check "2: B's log line names mx1" \
	eval "gw_log b | grep -E 'nfq: event=starttls_stripped .*server=\"$MX1 25\" .*reason=offered_before action=block'"

# --- 3. controls: a server nobody saw, and a gateway without sharing -------------------

attack 2 "$ATK2" "$MX2"
send strip-b-unseen b carol@unseen.example "$MX2"
lab_check "3: the attacker stripped STARTTLS from mx2's EHLO reply" \
	e2e_grep "$(lab_attacker_log atk2)" 'event=(drop|strip)'
lab_check "3: control: mx2, which no gateway saw offering STARTTLS, gets it through B in plaintext" \
	delivered strip-b-unseen mx2.unseen.example carol@unseen.example false
lab_check "3: control: B reported nothing about mx2" no_event b "$MX2"
send strip-c c dave@known.example "$MX1"
lab_check "3: control: C, without a shared group, lets mx1 stripped through in plaintext" \
	delivered strip-c mx1.known.example dave@known.example false
lab_check "3: control: C reported nothing about mx1" no_event c "$MX1"

# --- 4. Redis down, B restarted: its own server memory keeps mx1 -----------------------

lab_redis_stop redis
lab_check "4: B says the shared state is down" \
	lab_wait_for 5 eval "ctl b status | grep -E '^shared down '"
gw_start b
lab_check "4: B saved mx1 in its server memory" \
	grep -E "^$MX1 [0-9]{10}\$" "$LAB_DIR/gwb/state/nfq-servers"
lab_check "4: B restarted without Redis" \
	eval "ctl b status | grep -E '^shared down '"
send strip-b-down b erin@known.example "$MX1"
lab_check "4: B still cuts the stripped session to mx1" was_cut strip-b-down
lab_check "4: mx1 stored nothing for it" e2e_sink_is mx1.known.example erin@known.example 0
lab_check "4: B's event names mx1 again" \
	eval "grep -c '\"server\":\"$MX1 25\".*offered_before' '$LAB_DIR/gwb/events.log' | grep -qx 2"
lab__stop stsproxy-gwb
rm -f "$LAB_DIR/gwb/state/nfq-servers"
gw_start b
send strip-b-forgot b frank@known.example "$MX1"
lab_check "4: control: B without that file lets the stripped session through in plaintext" \
	delivered strip-b-forgot mx1.known.example frank@known.example false

for g in $GWS; do
	lab_check "gateway $g is still running" lab__alive "stsproxy-gw$g"
done
lab_check "no sanitizer report" \
	eval "! grep -E 'AddressSanitizer|LeakSanitizer|runtime error' '$LAB_DIR'/logs/stsproxy-gw*.log"

lab_done
