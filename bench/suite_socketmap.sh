#!/bin/bash
# suite_socketmap.sh smoke|full OUTFILE.md - Postfix policy servers side by
# side: stsproxy's socketmap and postfix-mta-sts-resolver's mta-sts-daemon,
# in the same run, on the same lab, asked by the same client
# (bench/smap_load.c, Postfix's side of smtp_tls_policy_maps: one request
# in flight per connection).
#
# K domains publish an enforce policy in the lab (unbound, nginx over HTTPS
# with the lab CA; DNS TTL 300 s, as is common). Each server runs alone in
# the client namespace on 127.0.0.1:8461:
#   cold  every domain asked once from an empty cache, 16 connections
#         (TXT, HTTPS fetch, parse, MX and address lookups per domain)
#   warm  the same domains again and again, at 1, 16 and 256 connections,
#         for SECS seconds each: lookups/s, p50 and p99 latency
#   RSS   the server's resident memory after the warm runs (and its peak)
# postfix-tlspol (Go) is not measured: its modules cannot be fetched here.
#
# Writes a markdown section to OUTFILE.md. Needs root; everything lives in
# lab namespaces and is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
export LAB_DNS_TTL=300
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	K=100 SECS=5
else
	K=10 SECS=1
fi
PORT=8461
[ -x "$STSPROXY" ] || {
	echo "suite_socketmap: no $STSPROXY (build it first)" >&2
	exit 1
}
command -v mta-sts-daemon >/dev/null || {
	echo "suite_socketmap: mta-sts-daemon is missing (sh scripts/deps.sh lab)" >&2
	exit 1
}

bench_init bsmap
lab_router
lab_host client 10.0.1.2/24
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_ca
CA=$LAB_DIR/ca/ca.crt
LAB_HTTPS_ADDRS=10.0.44.2
DOMS=$LAB_DIR/domains.txt
: >"$DOMS"
for i in $(seq 1 "$K"); do
	d=d$i.smap.example
	lab_sts_publish "$d" "id$i" enforce "mx.$d" >/dev/null
	lab_dns_record "$d MX 10 mx.$d." "mx.$d A 10.0.25.2"
	echo "$d" >>"$DOMS"
done
lab_https https 10.0.44.2
lab_dns dns 10.0.53.2
lab_resolvconf client 10.0.53.2
LOAD=$LAB_DIR/smap_load
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$LOAD" "$BENCH_ROOT/bench/smap_load.c"

# load ARGS... - smap_load from the client namespace against the server
# (on UNIX_SOCK instead of 127.0.0.1:PORT when it is set).
UNIX_SOCK=
load() { lab_exec client "$LOAD" "$@" -f "$DOMS" "${UNIX_SOCK:-127.0.0.1}" "$PORT"; }
SOCK=$LAB_DIR/socketmap.sock
# kib PID KEY - VmRSS or VmHWM of PID, in KiB.
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# cpu_us TICKS N - server CPU microseconds per lookup.
cpu_us() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }'; }

# measure WHO KEY - cold, then warm at 1, 16 and 256 connections and
# pipelined (16 connections, 16 requests in flight each), then memory, of
# the server started as daemon KEY; results in R_<WHO>_*. Each warm row
# also gives the server's CPU time per lookup (utime+stime of the process).
measure() {
	local who=$1 key=$2 pid line c t0 t1 args
	pid=$(cat "$LAB_DIR/run/$key.pid")
	line=$(load -c 16 -1)
	echo "# $who cold: $line"
	eval "R_${who}_cold=$(bench_field "$line" rate) R_${who}_cold_ok=$(bench_field "$line" ok)"
	for c in 1 16 256 pipe; do
		args="-c $c"
		[ "$c" = pipe ] && args="-c 16 -p 16"
		t0=$(bench_cpu "$pid")
		# shellcheck disable=SC2086
		line=$(load $args -s "$SECS")
		t1=$(bench_cpu "$pid")
		echo "# $who warm $args: $line"
		eval "R_${who}_w${c}=$(bench_field "$line" rate) R_${who}_p50_${c}=$(bench_field "$line" p50_us)"
		eval "R_${who}_p99_${c}=$(bench_field "$line" p99_us) R_${who}_ok_${c}=$(bench_field "$line" ok)"
		eval "R_${who}_n_${c}=$(bench_field "$line" requests)"
		eval "R_${who}_cpu_${c}=$(cpu_us $((t1 - t0)) "$(bench_field "$line" requests)")"
	done
	eval "R_${who}_rss=$(kib "$pid" VmRSS) R_${who}_hwm=$(kib "$pid" VmHWM)"
}

# measure_unix WHO KEY - warm, 16 connections, on the unix socket SOCK
# (the cache already warm): R_<WHO>_unix, R_<WHO>_cpu_unix.
measure_unix() {
	local who=$1 pid line t0 t1
	pid=$(cat "$LAB_DIR/run/$2.pid")
	UNIX_SOCK=$SOCK
	load -c 16 -1 >/dev/null
	t0=$(bench_cpu "$pid")
	line=$(load -c 16 -s "$SECS")
	t1=$(bench_cpu "$pid")
	UNIX_SOCK=
	echo "# $who warm unix -c 16: $line"
	eval "R_${who}_unix=$(bench_field "$line" rate) R_${who}_ok_unix=$(bench_field "$line" ok)"
	eval "R_${who}_n_unix=$(bench_field "$line" requests)"
	eval "R_${who}_cpu_unix=$(cpu_us $((t1 - t0)) "$(bench_field "$line" requests)")"
}

# --- stsproxy ---------------------------------------------------------------------
mkdir -p "$LAB_DIR/state"
cat >"$LAB_DIR/stsproxy.conf" <<EOF
state_dir = "$LAB_DIR/state";
workers = 2;
log = { level = "warn"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 5; };
tls = { ca_file = "$CA"; };
sts = { refresh = false; };
socketmap = { listen = [ "127.0.0.1:$PORT", "unix:$SOCK" ]; max_connections = 4096; };
metrics = { listen = "127.0.0.1:9125"; };
EOF
lab__start stsproxy client "$STSPROXY" -c "$LAB_DIR/stsproxy.conf"
lab__await stsproxy client 127.0.0.1 "$PORT"
measure sts stsproxy
measure_unix sts stsproxy
# metric NAME - one sample of stsproxy's metrics endpoint.
metric() {
	lab_exec client curl -s http://127.0.0.1:9125/metrics | awk -v m="$1" '$1 == m { print $2 }'
}
STS_ASYNC=$(metric stsproxy_socketmap_lookups_async_total)
STS_REPLIES=$(metric 'stsproxy_socketmap_replies_total{reply="ok"}')
echo "# stsproxy: $STS_ASYNC of $STS_REPLIES requests waited for a lookup"
lab__stop stsproxy

# --- mta-sts-daemon ------------------------------------------------------------------
cat >"$LAB_DIR/mta-sts-daemon.yml" <<EOF
host: 127.0.0.1
port: $PORT
cache:
  type: internal
  options:
    cache_size: 100000
default_zone:
  strict_testing: false
  timeout: 5
EOF
lab__start mtasts client env SSL_CERT_FILE="$CA" mta-sts-daemon \
	-c "$LAB_DIR/mta-sts-daemon.yml" -v warn
lab__await mtasts client 127.0.0.1 "$PORT"
measure peer mtasts
lab__stop mtasts
# mta-sts-daemon listens on one socket per process: again, on SOCK.
cat >"$LAB_DIR/mta-sts-daemon-unix.yml" <<EOF
path: $SOCK
mode: 0666
cache:
  type: internal
  options:
    cache_size: 100000
default_zone:
  strict_testing: false
  timeout: 5
EOF
rm -f "$SOCK"
lab__start mtasts client env SSL_CERT_FILE="$CA" mta-sts-daemon \
	-c "$LAB_DIR/mta-sts-daemon-unix.yml" -v warn
for _ in $(seq 1 100); do
	[ -S "$SOCK" ] && break
	sleep 0.1
done
measure_unix peer mtasts
lab__stop mtasts

# Every warm answer must be the policy; cold ones too.
bad=0
for who in sts peer; do
	for c in cold 1 16 256 pipe unix; do
		if [ "$c" = cold ]; then
			okv=$(eval echo "\$R_${who}_cold_ok") n=$K
		else
			okv=$(eval echo "\$R_${who}_ok_${c}") n=$(eval echo "\$R_${who}_n_${c}")
		fi
		if [ "$okv" != "$n" ]; then
			echo "suite_socketmap: $who $c: $okv of $n answers were the policy" >&2
			bad=1
		fi
	done
done

ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
	echo "## Socketmap policy servers (suite_socketmap.sh, $MODE)"
	echo
	echo "stsproxy's \`socketmap\` and postfix-mta-sts-resolver's \`mta-sts-daemon\`"
	echo "($(dpkg-query -W -f='${Version}' postfix-mta-sts-resolver 2>/dev/null || echo '?')), one after the other in"
	echo "the same run, on 127.0.0.1 in one lab namespace, asked by \`bench/smap_load\`"
	echo "(one request in flight per connection, as Postfix's SMTP clients ask). $K domains"
	echo "publish an \`enforce\` policy (DNS TTL 300 s). Cold: each domain once from an empty"
	echo "cache over 16 connections; warm: the same domains for ${SECS} s per row. The"
	echo "client takes one core: the machine's $(nproc) cores are shared by the client, the"
	echo "server and whatever else runs, so a rate is bounded by the client's own system"
	echo "calls (one send and one receive per lookup without pipelining) and by the"
	echo "neighbours; the server's CPU time per lookup is the steadier figure."
	echo "postfix-tlspol (Go) is not measured: its Go modules cannot be fetched here."
	echo
	echo "| lookup | stsproxy | mta-sts-daemon | ratio stsproxy/peer |"
	echo "|---|---|---|---|"
	echo "| cold, lookups/s | $R_sts_cold | $R_peer_cold | $(bench_ratio "$R_sts_cold" "$R_peer_cold") |"
	for c in 1 16 256 pipe; do
		s=$(eval echo "\$R_sts_w$c") p=$(eval echo "\$R_peer_w$c")
		what="$c connection(s)"
		[ "$c" = pipe ] && what="16 connections x 16 pipelined"
		echo "| warm, $what, lookups/s | $s | $p | $(bench_ratio "$s" "$p") |"
	done
	for c in 1 16 256 pipe; do
		s=$(eval echo "\$R_sts_cpu_$c") p=$(eval echo "\$R_peer_cpu_$c")
		what="$c connection(s)"
		[ "$c" = pipe ] && what="16 connections x 16 pipelined"
		echo "| warm, $what, server CPU per lookup, µs | $s | $p | $(bench_ratio "$p" "$s") (peer/stsproxy) |"
	done
	for c in 1 16 256; do
		echo "| warm, $c connection(s), p50 / p99 latency, ms | $(ms "$(eval echo "\$R_sts_p50_$c")") / $(ms "$(eval echo "\$R_sts_p99_$c")") | $(ms "$(eval echo "\$R_peer_p50_$c")") / $(ms "$(eval echo "\$R_peer_p99_$c")") | |"
	done
	echo "| warm, 16 connections, unix socket, lookups/s | $R_sts_unix | $R_peer_unix | $(bench_ratio "$R_sts_unix" "$R_peer_unix") |"
	echo "| warm, 16 connections, unix socket, server CPU per lookup, µs | $R_sts_cpu_unix | $R_peer_cpu_unix | $(bench_ratio "$R_peer_cpu_unix" "$R_sts_cpu_unix") (peer/stsproxy) |"
	echo "| RSS after the runs (peak), MiB | $(mib "$R_sts_rss") ($(mib "$R_sts_hwm")) | $(mib "$R_peer_rss") ($(mib "$R_peer_hwm")) | |"
	echo
	echo "Of stsproxy's $STS_REPLIES answers, $STS_ASYNC waited for a lookup (the cold ones, and any"
	echo "domain asked again while its first lookup ran); every other came from memory."
	echo
	echo "A warm stsproxy answer is the engine's in-memory lookup (TXT id and MX set within"
	echo "their TTL, no system call) and one write; mta-sts-daemon answers from its cache"
	echo "within its grace period in a Python coroutine. Reproduce:"
	echo "\`sudo bash bench/suite_socketmap.sh $MODE out.md\`."
} >"$OUTMD"
[ "$bad" -eq 0 ]
