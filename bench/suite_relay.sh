#!/bin/bash
# suite_relay.sh smoke|full OUTFILE.md - relay throughput and added latency.
#
# bench/smtp_load (a C load generator that, unlike smtp-source, can also do
# STARTTLS) in the client namespace sends to Postfix smtpd with a discard
# transport in the server namespace through the gateway namespace, over seven
# paths measured in the same run:
#   a   direct, no TLS: the gateway only forwards IP packets
#   at  direct, the client does STARTTLS itself, verifies the certificate
#       and resumes sessions from its cache, as a mailer with TLS does
#       (Postfix: smtp_tls_security_level, smtp_tls_session_cache_database):
#       what a user has without the proxy, on a mailer that has TLS
#   b   stsproxy behind an iptables REDIRECT, client without TLS; the bench
#       domain has a local enforce policy, so the upstream leg is STARTTLS
#       with a verified certificate (lab CA) - the proxy's real work
#   bt  stsproxy, the client also does STARTTLS (to the proxy): two legs
#   br  as b, with upstream connection reuse on (upstream.reuse_idle): a
#       one-message client session takes the parked verified connection
#       of the session before it (a second stsproxy on port 10028)
#   c   a plain TCP relay (haproxy in TCP mode; socat when haproxy is
#       missing): the floor of any user-space hop
#   ct  the same relay, the client doing STARTTLS through it: the floor of
#       any user-space hop in a TLS session
#   d   the same relay terminating TLS upstream (to Postfix's port 465 in
#       wrapper mode): a user-space hop that pays TLS per session, like b
#
# RELAY_PATHS, RELAY_SIZES and RELAY_ROUNDS narrow a run (e.g. RELAY_PATHS=b
# while profiling the proxy). Writes a markdown section to OUTFILE.md. Needs root. Everything it starts
# lives in lab namespaces and is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

# SIZES: size:messages:messages-per-connection
# ROUNDS: every path runs once per round, the paths interleaved, so that a
# slow moment of the machine is shared; the report keeps the median round.
if [ "$MODE" = full ]; then
	SIZES="1024:2000:1 1024:4000:10 102400:1000:1 10485760:40:1"
	SESS=10
	LAT_N=300
	LIMIT=300
	ROUNDS=5
else
	SIZES="1024:20:1 1024:40:10 102400:10:1 10485760:2:1"
	SESS=2
	LAT_N=20
	LIMIT=30
	ROUNDS=1
fi
# For profiling one path or size: RELAY_PATHS, RELAY_SIZES, RELAY_ROUNDS.
PATHS=${RELAY_PATHS:-a at b br bt c ct d}
SIZES=${RELAY_SIZES:-$SIZES}
ROUNDS=${RELAY_ROUNDS:-$ROUNDS}

[ -x "$STSPROXY" ] || {
	echo "suite_relay: no $STSPROXY (build it first)" >&2
	exit 1
}
[ -x /usr/sbin/postfix ] || {
	echo "suite_relay: /usr/sbin/postfix missing (apt-get install postfix)" >&2
	exit 1
}

bench_init brelay
bench_topology

# --- the receiver: a private Postfix instance --------------------------------

bench_postfix_receiver

# --- the middle boxes ------------------------------------------------------------

CONF=$LAB_DIR/stsproxy.conf
# The proxy's STARTTLS toward the client (path bt) presents a lab-CA
# certificate, as an operator whose mailers verify would configure it.
cp "$BENCH_CRT" "$LAB_DIR/proxy.crt"
cp "$BENCH_KEY" "$LAB_DIR/proxy.key"
# Its metrics endpoint tells how many upstream handshakes resumed.
BENCH_CLIENT_STARTTLS=true \
	BENCH_TLS_EXTRA="server_cert = \"$LAB_DIR/proxy.crt\"; server_key = \"$LAB_DIR/proxy.key\";" \
	BENCH_CONF_EXTRA='metrics = { listen = "127.0.0.1:9125"; };' \
	bench_stsproxy_conf "$CONF" 1000
bench_stsproxy "$CONF"
# Path br: the same configuration with reuse on, its own port, state and metrics.
CONFR=$LAB_DIR/stsproxy-reuse.conf
mkdir -p "$LAB_DIR/state-reuse"
sed -e 's/0\.0\.0\.0:10025/0.0.0.0:10028/' -e "s#\"$LAB_DIR/state\"#\"$LAB_DIR/state-reuse\"#" \
	-e 's/127\.0\.0\.1:9125/127.0.0.1:9126/' "$CONF" >"$CONFR"
echo 'upstream = { reuse_idle = 30; reuse_max_per_dest = 32; reuse_max = 64; };' >>"$CONFR"
lab__start stsproxyr gw "$STSPROXY" -c "$CONFR"
BENCH_PROXYR_PID=$(cat "$LAB_DIR/run/stsproxyr.pid")
lab__await stsproxyr gw 10.0.1.1 10028

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

# The client: built here, the Makefile builds bench_*.c only.
LOAD=$BENCH_OUT/smtp_load
cc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o "$LOAD" "$BENCH_ROOT/bench/smtp_load.c" \
	-lssl -lcrypto || {
	echo "suite_relay: cannot build bench/smtp_load.c" >&2
	exit 1
}

# path_port PATH - the REDIRECT target of a path ("off": plain forwarding).
path_port() {
	case $1 in
	a | at) echo off ;;
	b | bt) echo 10025 ;;
	br) echo 10028 ;;
	c | ct) echo 10026 ;;
	d) echo 10027 ;;
	esac
}
# path_pid PATH - the process whose CPU a path charges.
path_pid() {
	case $1 in
	a | at) echo "" ;;
	b | bt) echo "$BENCH_PROXY_PID" ;;
	br) echo "$BENCH_PROXYR_PID" ;;
	*) echo "$RELAY_PIDS" ;;
	esac
}
# path_tls PATH - the client's TLS options: STARTTLS, a session cache, the
# certificate verified against the lab CA like the proxy verifies it.
path_tls() {
	case $1 in
	at | bt | ct) echo "-T -R -C $CA -N mx.bench.example" ;;
	*) echo "" ;;
	esac
}
cpu_of() {
	local t=0 p
	for p in $1; do t=$((t + $(bench_cpu "$p"))); done
	echo "$t"
}
tls_lines() { grep -c 'TLS connection established from' "$BENCH_PF/maillog" 2>/dev/null || true; }
# upstream_tls [PORT] - "resumed handshakes" from the proxy's metrics endpoint.
upstream_tls() {
	lab_exec gw python3 -c 'import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
v = dict(l.split()[:2] for l in body.splitlines() if l and not l.startswith("#"))
print(v["stsproxy_upstream_tls_resumed_total"], v["stsproxy_upstream_tls_total"])' "${1:-9125}"
}
metrics_port() { case $1 in br) echo 9126 ;; *) echo 9125 ;; esac; }
# field NAME LINE - the value of NAME=... in a smtp_load result line.
field() { sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

HZ=$(getconf CLK_TCK)
RUNS=$BENCH_OUT/runs.tsv
RES=$BENCH_OUT/relay.tsv
: >"$RUNS"

# load PATH ARGS... - one smtp_load run on PATH from the client namespace;
# prints its result line, or fails with its errors.
load() {
	local p=$1 out
	shift
	bench_redirect "$(path_port "$p")"
	# shellcheck disable=SC2046
	if ! out=$(lab_exec cli timeout "$LIMIT" "$LOAD" $(path_tls "$p") "$@" 10.0.25.2:25 \
		2>"$BENCH_OUT/load.err"); then
		echo "suite_relay: smtp_load failed on path $p ($*): $out" >&2
		head -n 5 "$BENCH_OUT/load.err" >&2
		tail -n 20 "$LAB_DIR/logs/stsproxy.log" >&2
		return 1
	fi
	echo "$out"
}

# run_load PATH SIZE COUNT PER - one throughput run; appends a row to RUNS:
# path size count per seconds msgs_per_s mib_per_s cpu_ms_per_msg
# tls_sessions_at_server client_resumed proxy_upstream_resumed
# machine_cpu_ms_per_msg (every process and the kernel, all cores)
run_load() {
	local p=$1 size=$2 n=$3 per=$4 c0 c1 l0 l1 out cpu res up=- u0 u1 m0 m1 mcpu
	c0=$(cpu_of "$(path_pid "$p")")
	m0=$(bench_busy)
	l0=$(tls_lines)
	u0=$(upstream_tls "$(metrics_port "$p")")
	out=$(load "$p" -s "$SESS" -m "$n" -d "$per" -l "$size")
	m1=$(bench_busy)
	sleep 0.2
	c1=$(cpu_of "$(path_pid "$p")")
	l1=$(tls_lines)
	u1=$(upstream_tls "$(metrics_port "$p")")
	case $p in
	b | br | bt) up="$((${u1% *} - ${u0% *}))/$((${u1#* } - ${u0#* }))" ;;
	esac
	if [ -z "$(path_pid "$p")" ]; then
		cpu=n/a
	else
		cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$n" \
			'BEGIN { printf "%.3f", c * 1000 / hz / n }')
	fi
	mcpu=$(awk -v c=$((m1 - m0)) -v hz="$HZ" -v n="$n" \
		'BEGIN { printf "%.1f", c * 1000 / hz / n }')
	res=-
	[ -n "$(path_tls "$p")" ] && res="$(field resumed "$out")/$(field tls "$out")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$size" "$n" "$per" \
		"$(field secs "$out")" "$(field msgs_per_s "$out")" "$(field mib_per_s "$out")" \
		"$cpu" $((l1 - l0)) "$res" "$up" "$mcpu" >>"$RUNS"
	echo "# relay $p size=$size n=$n per=$per: $out"
}

# A warm-up per path, so that no path pays for a cold cache or the first
# handshake of its session cache.
for p in $PATHS; do
	load "$p" -s 1 -m 3 -l 1024 >/dev/null
done
for sz in $SIZES; do
	IFS=: read -r size n per <<<"$sz"
	for round in $(seq "$ROUNDS"); do
		for p in $PATHS; do
			run_load "$p" "$size" "$n" "$per"
		done
	done
done
# RES: per path and row, the run with the median msg/s, then the lowest
# and the highest msg/s of all rounds (columns 13 and 14).
sort -t "$(printf '\t')" -k1,1 -k2,2n -k4,4n -k6,6g "$RUNS" | awk -F '\t' -v OFS='\t' '
	function flush() { if (n > 0) print row[int((n + 1) / 2)], lo, hi; n = 0 }
	{ k = $1 FS $2 FS $4; if (k != key) { flush(); key = k; lo = $6 }
	  row[++n] = $0; hi = $6 }
	END { flush() }' >"$RES"

# Added latency: one connection at a time, connect to the 250 after the
# final dot of a 1 KiB message.
LAT=$BENCH_OUT/latency.tsv
: >"$LAT"
for p in $PATHS; do
	out=$(load "$p" -s 1 -m "$LAT_N" -l 1024)
	echo "# latency $p: $out"
	printf '%s\t%s\t%s\n' "$p" "$(field lat_median_ms "$out")" "$(field lat_p90_ms "$out")" >>"$LAT"
done
bench_redirect off

# --- report --------------------------------------------------------------------

lat() { awk -F '\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$LAT"; }
# paired NUM DEN SIZE PER COL - the median over rounds of NUM/DEN in
# column COL for rows of SIZE and PER, paired by round (bench_paired).
paired() {
	awk -F '\t' -v s="$3" -v d="$4" -v c="$5" '$2 == s && $4 == d { print $1, $c }' "$RUNS" |
		bench_paired "$1" "$2"
}
human() {
	case $1 in
	1024) echo "1 KiB" ;;
	102400) echo "100 KiB" ;;
	10485760) echo "10 MiB" ;;
	*) echo "$1 B" ;;
	esac
}
row_name() { # SIZE PER
	if [ "$2" = 1 ]; then human "$1"; else echo "$(human "$1"), $2 per connection"; fi
}
goal() { # SIZE PER -> the b/a goal for that row
	case $1:$2 in
	1024:1) echo ">= 0.90" ;;
	10485760:1) echo ">= 0.95" ;;
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
	echo "\`bench/smtp_load\` in a client namespace sends to Postfix smtpd (discard transport,"
	echo "spool on tmpfs) in a server namespace through a gateway namespace, $SESS connections"
	echo "in parallel, one message per connection unless a row says otherwise. Paths, all"
	echo "measured in this run with the same client, interleaved over $ROUNDS round(s); each"
	echo "row is the round with the median msg/s, with the range over all rounds:"
	echo
	echo "- **a** direct, no TLS: the gateway only forwards IP packets, the client never"
	echo "  says STARTTLS."
	echo "- **at** direct with TLS: the client does STARTTLS itself, verifies the certificate"
	echo "  against the lab CA and resumes sessions from its own cache, as a mailer with TLS"
	echo "  does (Postfix's \`smtp_tls_session_cache_database\`). This is what a user has"
	echo "  without the proxy when the mailer has TLS, and the baseline of the goals."
	echo "- **b** stsproxy behind an iptables REDIRECT, the client without TLS; bench.example"
	echo "  is a local \`enforce\` policy (\`mx = *.bench.example\`), so every connection is"
	echo "  upgraded to STARTTLS upstream and the certificate of mx.bench.example is verified"
	echo "  against the lab CA (sessions resumed from the proxy's cache)."
	echo "- **br** as b, with upstream connection reuse on (\`upstream.reuse_idle = 30\`,"
	echo "  \`reuse_max_per_dest = 32\`): each one-message client session takes the verified"
	echo "  connection a session of the same client parked at its QUIT (RSET, then the"
	echo "  connection's banner and EHLO reply replayed); the recipient is judged on that"
	echo "  connection's TLS facts as on any other. A second stsproxy in the same run."
	echo "- **bt** stsproxy, the client also does STARTTLS, to the proxy: two TLS legs."
	echo "- **c** $RELAY as a plain TCP relay: the floor of any user-space hop, no TLS."
	echo "- **ct** the same relay, the client doing STARTTLS through it as in at: the floor"
	echo "  of any user-space hop in a TLS session."
	echo "- **d** $RELAY relaying to Postfix's port 465 (TLS wrapper mode), verifying the"
	echo "  certificate: a user-space hop that pays TLS per connection, like b."
	echo
	echo "| size | msgs | path | s | msg/s | msg/s range | MiB/s | middle-box CPU ms/msg | machine CPU ms/msg | TLS sessions at the server | client resumed/TLS | proxy upstream resumed/TLS |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	for sz in $SIZES; do
		IFS=: read -r size n per <<<"$sz"
		for p in $PATHS; do
			awk -F '\t' -v p="$p" -v s="$size" -v d="$per" -v h="$(row_name "$size" "$per")" \
				'$1 == p && $2 == s && $4 == d {
				printf "| %s | %s | %s | %s | %s | %s-%s | %s | %s | %s | %s | %s | %s |\n", h, $3, p, $5, $6, $13, $14, $7, $8, $12, $9, $10, $11 }' "$RES"
		done
	done
	echo
	echo "Ratios of msg/s, each the median over the rounds of the ratio within a round."
	echo "The goals are set against **at**, a direct session with the same TLS; b/a is"
	echo "against a direct session with no TLS at all, so it includes the price of TLS"
	echo "itself (a handshake and encryption), which the proxy exists to add. **ct** is"
	echo "the client's own STARTTLS relayed by $RELAY in TCP mode: any user-space hop in a"
	echo "TLS session costs at least ct/at, so b/ct is what the proxy costs beyond the hop."
	echo "Machine CPU b/at is the CPU time of the whole machine per message."
	echo
	echo "| size | b/at | goal b/at | br/at | br/b | ct/at | b/ct | b/a | bt/at | b/c | b/d | CPU b/d | machine CPU b/at |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for sz in $SIZES; do
		IFS=: read -r size n per <<<"$sz"
		bat=$(paired b at "$size" "$per" 6)
		g=$(goal "$size" "$per")
		printf '| %s | %s | %s %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$(row_name "$size" "$per")" "$bat" "$g" "$(verdict "$bat" "$g")" \
			"$(paired br at "$size" "$per" 6)" "$(paired br b "$size" "$per" 6)" \
			"$(paired ct at "$size" "$per" 6)" "$(paired b ct "$size" "$per" 6)" \
			"$(paired b a "$size" "$per" 6)" "$(paired bt at "$size" "$per" 6)" \
			"$(paired b c "$size" "$per" 6)" "$(paired b d "$size" "$per" 6)" \
			"$(paired b d "$size" "$per" 8)" "$(paired b at "$size" "$per" 12)"
	done
	echo
	echo "Added latency per connection (connect to the 250 after the final dot, one"
	echo "connection at a time, 1 KiB message, cached policy; $LAT_N connections per path):"
	echo
	echo "| path | median ms | p90 ms | median minus at, ms | median minus a, ms |"
	echo "|---|---|---|---|---|"
	for p in $PATHS; do
		awk -v p="$p" -v m="$(lat "$p" 2)" -v q="$(lat "$p" 3)" -v t="$(lat at 2)" \
			-v a="$(lat a 2)" \
			'BEGIN { printf "| %s | %s | %s | %.3f | %.3f |\n", p, m, q, m - t, m - a }'
	done
	added=$(awk -v b="$(lat b 2)" -v t="$(lat at 2)" 'BEGIN { printf "%.3f", b - t }')
	adda=$(awk -v b="$(lat b 2)" -v a="$(lat a 2)" 'BEGIN { printf "%.3f", b - a }')
	addd=$(awk -v b="$(lat b 2)" -v d="$(lat d 2)" 'BEGIN { printf "%.3f", b - d }')
	met=$(awk -v x="$added" 'BEGIN { print (x < 1.0) ? "met" : "**missed**" }')
	echo
	echo "Goal: added latency (b - at) under 1 ms median: ${added} ms, $met."
	echo "Against a session with no TLS at all, b - a = ${adda} ms: the STARTTLS exchange"
	echo "and the handshake. Against a TLS-terminating relay, b - d = ${addd} ms."
	echo
	echo "Reproduce: \`sudo bash bench/suite_relay.sh $MODE out.md\` (with BUILD set, or"
	echo "STSPROXY=path/to/stsproxy). Each run is"
	echo "\`smtp_load -s $SESS -m N -d PER -l SIZE [-T -R -C ca.crt -N mx.bench.example]"
	echo "10.0.25.2:25\` from the client namespace; the latency runs are \`smtp_load -s 1"
	echo "-m $LAT_N -l 1024\`. CPU is utime+stime (+ reaped children) of the middle process"
	echo "from /proc/PID/stat."
} >"$OUTMD"
echo "# relay results:"
cat "$RES"
