#!/bin/bash
# suite_relay.sh smoke|full OUTFILE.md - relay throughput and added latency.
#
# smtp-source (client ns) sends to Postfix smtpd with a discard transport
# (server ns) through the gateway ns, over four paths measured in the
# same run:
#   a  direct: plain IP forwarding in the gateway, no user-space hop
#   b  stsproxy behind an iptables REDIRECT; the bench domain has a local
#      enforce policy, so the upstream leg is STARTTLS with a verified
#      certificate (lab CA) - the proxy's real work
#   c  a plain TCP relay (haproxy in TCP mode; socat when haproxy is
#      missing): the floor of any user-space hop
#   d  the same relay terminating TLS upstream (to Postfix's port 465 in
#      wrapper mode): a user-space hop that pays a TLS handshake and
#      encryption per session, like b
# smtp-source does not do STARTTLS, so a and c carry no TLS at all; b/d is
# the ratio that isolates the proxy's own cost.
#
# Writes a markdown section to OUTFILE.md. Needs root. Everything it starts
# lives in lab namespaces and is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	SIZES="1024:2000 102400:500 10485760:20"
	SESS=10
	LAT_N=200
	LIMIT=300
else
	SIZES="1024:20 102400:10 10485760:2"
	SESS=2
	LAT_N=20
	LIMIT=30
fi

[ -x "$STSPROXY" ] || {
	echo "suite_relay: no $STSPROXY (build it first)" >&2
	exit 1
}
[ -x /usr/sbin/smtp-source ] || {
	echo "suite_relay: /usr/sbin/smtp-source missing (apt-get install postfix)" >&2
	exit 1
}

bench_init brelay
bench_topology

# --- the receiver: a private Postfix instance --------------------------------

# Spool on tmpfs: the benchmark measures relays, not the disk's fsync.
BENCH_PF=$(mktemp -d /dev/shm/sts-postfix.XXXXXX)
chmod 755 "$BENCH_PF"
mkdir -p "$BENCH_PF/etc" "$BENCH_PF/queue" "$BENCH_PF/data"
chown postfix "$BENCH_PF/data"
cp "$BENCH_CRT" "$BENCH_PF/etc/mx.crt"
cp "$BENCH_KEY" "$BENCH_PF/etc/mx.key"
chmod 600 "$BENCH_PF/etc/mx.key"
cat >"$BENCH_PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $BENCH_PF/queue
data_directory = $BENCH_PF/data
mail_owner = postfix
myhostname = mx.bench.example
mydomain = bench.example
myorigin = bench.example
mydestination =
relay_domains = bench.example
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 10.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
default_transport = discard
relay_transport = discard
local_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0
default_process_limit = 200
message_size_limit = 52428800
smtputf8_enable = no
biff = no
smtpd_tls_security_level = may
smtpd_tls_cert_file = $BENCH_PF/etc/mx.crt
smtpd_tls_key_file = $BENCH_PF/etc/mx.key
smtpd_tls_loglevel = 1
maillog_file = $BENCH_PF/maillog
maillog_file_prefixes = /dev/shm
EOF
cat >"$BENCH_PF/etc/master.cf" <<'EOF'
smtp      inet  n       -       n       -       -       smtpd
465       inet  n       -       n       -       -       smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
lab_exec srv postfix -c "$BENCH_PF/etc" check >"$LAB_DIR/logs/postfix.log" 2>&1 || true
lab_exec srv postfix -c "$BENCH_PF/etc" start >>"$LAB_DIR/logs/postfix.log" 2>&1 ||
	{ cat "$LAB_DIR/logs/postfix.log" "$BENCH_PF/maillog" >&2 2>/dev/null; exit 1; }
lab_wait_port srv 10.0.25.2 25
lab_wait_port srv 10.0.25.2 465

# --- the middle boxes ------------------------------------------------------------

CONF=$LAB_DIR/stsproxy.conf
bench_stsproxy_conf "$CONF" 1000
bench_stsproxy "$CONF"

CA=$LAB_DIR/ca/ca.crt
if command -v haproxy >/dev/null 2>&1; then
	RELAY=haproxy
	cat >"$LAB_DIR/haproxy.cfg" <<EOF
global
    maxconn 4000
    nbthread 2
defaults
    mode tcp
    timeout connect 10s
    timeout client 5m
    timeout server 5m
listen plain
    bind 0.0.0.0:10026
    server mx 10.0.25.2:25
listen tls
    bind 0.0.0.0:10027
    server mx 10.0.25.2:465 ssl verify required ca-file $CA sni str(mx.bench.example) verifyhost mx.bench.example
EOF
	lab__start relay gw haproxy -db -f "$LAB_DIR/haproxy.cfg"
	RELAY_PIDS=$(cat "$LAB_DIR/run/relay.pid")
	lab__await relay gw 10.0.1.1 10026
else
	RELAY=socat
	lab__start relay gw socat TCP-LISTEN:10026,fork,reuseaddr,backlog=1024 TCP:10.0.25.2:25
	lab__start relaytls gw socat TCP-LISTEN:10027,fork,reuseaddr,backlog=1024 \
		"OPENSSL:10.0.25.2:465,cafile=$CA,commonname=mx.bench.example,snihost=mx.bench.example"
	RELAY_PIDS="$(cat "$LAB_DIR/run/relay.pid") $(cat "$LAB_DIR/run/relaytls.pid")"
	lab__await relay gw 10.0.1.1 10026
fi

# path_port PATH - the REDIRECT target of a path ("off": plain forwarding).
path_port() {
	case $1 in
	a) echo off ;;
	b) echo 10025 ;;
	c) echo 10026 ;;
	d) echo 10027 ;;
	esac
}
# path_pid PATH - the process whose CPU a path charges.
path_pid() {
	case $1 in
	a) echo "" ;;
	b) echo "$BENCH_PROXY_PID" ;;
	*) echo "$RELAY_PIDS" ;;
	esac
}
cpu_of() {
	local t=0 p
	for p in $1; do t=$((t + $(bench_cpu "$p"))); done
	echo "$t"
}
tls_lines() { grep -c 'TLS connection established from' "$BENCH_PF/maillog" 2>/dev/null || true; }

HZ=$(getconf CLK_TCK)
RES=$BENCH_OUT/relay.tsv
: >"$RES"

# run_source PATH SIZE COUNT - one smtp-source run; appends a result row:
# path size count seconds msgs_per_s mib_per_s cpu_ms_per_msg tls_sessions
run_source() {
	local p=$1 size=$2 n=$3 t0 t1 c0 c1 l0 l1 secs cpu
	bench_redirect "$(path_port "$p")"
	c0=$(cpu_of "$(path_pid "$p")")
	l0=$(tls_lines)
	t0=$(date +%s.%N)
	if ! lab_exec cli timeout "$LIMIT" /usr/sbin/smtp-source -s "$SESS" -m "$n" -l "$size" \
		-f sender@client.example -t rcpt@bench.example -M client.example \
		10.0.25.2:25 >"$BENCH_OUT/source.$p.$size.log" 2>&1; then
		echo "suite_relay: smtp-source failed on path $p size $size:" >&2
		tail -n 5 "$BENCH_OUT/source.$p.$size.log" >&2
		return 1
	fi
	t1=$(date +%s.%N)
	sleep 0.2
	c1=$(cpu_of "$(path_pid "$p")")
	l1=$(tls_lines)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	if [ "$p" = a ]; then
		cpu=n/a
	else
		cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$n" \
			'BEGIN { printf "%.3f", c * 1000 / hz / n }')
	fi
	awk -v p="$p" -v s="$size" -v n="$n" -v t="$secs" -v cpu="$cpu" -v tls=$((l1 - l0)) \
		'BEGIN { printf "%s\t%s\t%s\t%s\t%.1f\t%.2f\t%s\t%s\n", p, s, n, t, n / t,
			n * s / t / 1048576, cpu, tls }' >>"$RES"
	echo "# relay $p size=$size n=$n: ${secs}s"
}

for sz in $SIZES; do
	size=${sz%%:*}
	n=${sz#*:}
	# A warm-up session per path so that no path pays for a cold cache.
	for p in a b c d; do
		bench_redirect "$(path_port "$p")"
		lab_exec cli timeout 20 /usr/sbin/smtp-source -m 1 -l 100 -f sender@client.example \
			-t rcpt@bench.example -M client.example 10.0.25.2:25 >"$BENCH_OUT/warm.log" 2>&1 || {
			echo "suite_relay: path $p does not relay a message" >&2
			cat "$BENCH_OUT/warm.log" >&2
			tail -n 20 "$LAB_DIR/logs/stsproxy.log" >&2
			exit 1
		}
	done
	for p in a b c d; do
		run_source "$p" "$size" "$n"
	done
done

# The proxy really upgraded: one TLS session on Postfix per message of b.
LAT=$BENCH_OUT/latency.tsv
: >"$LAT"
for p in a b c d; do
	bench_redirect "$(path_port "$p")"
	out=$(lab_exec cli "$BENCH_PY" "$BENCH_TOOL" latency --host 10.0.25.2 --port 25 \
		--count "$LAT_N" --size 1024) || {
		echo "suite_relay: latency client failed on path $p: $out" >&2
		exit 1
	}
	echo "# latency $p: $out"
	med=$(sed -n 's/.*median=\([^ ]*\).*/\1/p' <<<"$out")
	p90=$(sed -n 's/.*p90=\([^ ]*\).*/\1/p' <<<"$out")
	printf '%s\t%s\t%s\n' "$p" "$med" "$p90" >>"$LAT"
done
bench_redirect off

# --- report --------------------------------------------------------------------

col() { awk -F '\t' -v p="$1" -v s="$2" -v c="$3" '$1 == p && $2 == s { print $c }' "$RES"; }
lat() { awk -F '\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$LAT"; }
human() {
	case $1 in
	1024) echo "1 KiB" ;;
	102400) echo "100 KiB" ;;
	10485760) echo "10 MiB" ;;
	*) echo "$1 B" ;;
	esac
}
goal() { # SIZE -> the b/a goal for that size
	case $1 in
	1024) echo ">= 0.90" ;;
	10485760) echo ">= 0.95" ;;
	*) echo "-" ;;
	esac
}
verdict() { # RATIO GOAL
	case $2 in
	-) echo "" ;;
	*) awk -v r="$1" -v g="${2#>= }" 'BEGIN { if (r == "n/a") print "";
		else if (r + 0 >= g + 0) print "met"; else print "**missed**" }' ;;
	esac
}

{
	echo "## Relay throughput and latency (suite_relay.sh, $MODE)"
	echo
	echo "smtp-source in a client namespace sends to Postfix smtpd (discard transport,"
	echo "spool on tmpfs) in a server namespace through a gateway namespace; one message"
	echo "per session, $SESS sessions in parallel. Paths, all measured in this run:"
	echo
	echo "- **a** direct: the gateway only forwards IP packets. No TLS anywhere (smtp-source"
	echo "  does not do STARTTLS)."
	echo "- **b** stsproxy behind an iptables REDIRECT, bench.example a local \`enforce\`"
	echo "  policy (\`mx = *.bench.example\`), so every session is upgraded to STARTTLS upstream"
	echo "  and the certificate of mx.bench.example is verified against the lab CA."
	echo "- **c** $RELAY as a plain TCP relay: the floor of any user-space hop, no TLS."
	echo "- **d** $RELAY relaying to Postfix's port 465 (TLS wrapper mode), verifying the"
	echo "  certificate: a user-space hop that pays one TLS handshake per session, like b."
	echo
	echo "b/a therefore includes the cost of TLS itself (a handshake per session and"
	echo "encryption); b/d isolates what the proxy adds over a TLS-terminating relay."
	echo
	echo "| size | msgs | path | s | msg/s | MiB/s | middle-box CPU ms/msg | TLS sessions at the server |"
	echo "|---|---|---|---|---|---|---|---|"
	for sz in $SIZES; do
		size=${sz%%:*}
		for p in a b c d; do
			awk -F '\t' -v p="$p" -v s="$size" -v h="$(human "$size")" '$1 == p && $2 == s {
				printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", h, $3, p, $4, $5, $6, $7, $8 }' "$RES"
		done
	done
	echo
	echo "| size | b/a msg/s | goal b/a | b/c | b/d | CPU b/d |"
	echo "|---|---|---|---|---|---|"
	for sz in $SIZES; do
		size=${sz%%:*}
		ba=$(bench_ratio "$(col b "$size" 5)" "$(col a "$size" 5)")
		bc=$(bench_ratio "$(col b "$size" 5)" "$(col c "$size" 5)")
		bd=$(bench_ratio "$(col b "$size" 5)" "$(col d "$size" 5)")
		cd=$(bench_ratio "$(col b "$size" 7)" "$(col d "$size" 7)")
		g=$(goal "$size")
		echo "| $(human "$size") | $ba | $g $(verdict "$ba" "$g") | $bc | $bd | $cd |"
	done
	echo
	echo "Added latency per session (connect to the 250 after the final dot, one session"
	echo "at a time, 1 KiB message, cached policy; $LAT_N sessions per path, timed by"
	echo "\`bench/smtp_bench.py latency\`):"
	echo
	echo "| path | median ms | p90 ms | median minus a, ms |"
	echo "|---|---|---|---|"
	for p in a b c d; do
		awk -v p="$p" -v m="$(lat "$p" 2)" -v q="$(lat "$p" 3)" -v a="$(lat a 2)" \
			'BEGIN { printf "| %s | %s | %s | %.3f |\n", p, m, q, m - a }'
	done
	added=$(awk -v b="$(lat b 2)" -v a="$(lat a 2)" 'BEGIN { printf "%.3f", b - a }')
	addd=$(awk -v b="$(lat b 2)" -v d="$(lat d 2)" 'BEGIN { printf "%.3f", b - d }')
	met=$(awk -v x="$added" 'BEGIN { print (x < 1.0) ? "met" : "**missed**" }')
	echo
	echo "Goal: added latency (b - a) under 1 ms median: ${added} ms, $met. Of that,"
	echo "b - d = ${addd} ms is the proxy over a TLS-terminating relay; the rest is the"
	echo "upstream STARTTLS exchange and handshake that a direct session without TLS skips."
	echo
	echo "Reproduce: \`sudo bash bench/suite_relay.sh $MODE out.md\` (with BUILD set, or"
	echo "STSPROXY=path/to/stsproxy). Each run is"
	echo "\`smtp-source -s $SESS -m N -l SIZE -f sender@client.example -t rcpt@bench.example"
	echo "-M client.example 10.0.25.2:25\` from the client namespace; CPU is utime+stime"
	echo "(+ reaped children) of the middle process from /proc/PID/stat."
} >"$OUTMD"
echo "# relay results:"
cat "$RES"
