#!/bin/bash
# suite_concurrency.sh smoke|full OUTFILE.md - memory per idle session.
#
# A client (bench/smtp_bench.py hold) opens many sessions through stsproxy
# (behind an iptables REDIRECT in the gateway namespace), each doing the
# banner and EHLO - so the proxy has connected upstream, run STARTTLS and a
# TLS handshake, and holds two sockets and a TLS session per client - then
# holds them idle. stsproxy's VmRSS is read before and while they are held;
# then every session is completed with MAIL/RCPT/DATA/QUIT and the 250s
# after the final dot are counted. The receiver is the asyncio responder
# of bench/smtp_bench.py (STARTTLS offered): a forking MTA cannot hold that
# many sessions cheaply.
#
# Writes a markdown section to OUTFILE.md. Needs root; everything lives in
# lab namespaces and is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	WANT=10000
	LIMIT=600
else
	WANT=200
	LIMIT=60
fi
# The proxy holds two descriptors per session; the open-files hard limit
# (a container may cap it) bounds what one process can hold.
N=$WANT
CAP=$(((BENCH_NOFILE - 256) / 2))
[ "$N" -gt "$CAP" ] && N=$CAP

[ -x "$STSPROXY" ] || {
	echo "suite_concurrency: no $STSPROXY (build it first)" >&2
	exit 1
}

bench_init bconc
bench_topology

lab__start responder srv "$BENCH_PY" "$BENCH_TOOL" serve --listen 10.0.25.2 --port 25 \
	--name mx.bench.example --cert "$BENCH_CRT" --key "$BENCH_KEY"
lab__await responder srv 10.0.25.2 25

CONF=$LAB_DIR/stsproxy.conf
bench_stsproxy_conf "$CONF" $((WANT + 1000))
bench_stsproxy "$CONF"
bench_redirect 10025

# One session first: the policy, MX set and TLS contexts are then warm.
lab_exec cli "$BENCH_PY" "$BENCH_TOOL" latency --host 10.0.25.2 --port 25 --count 1 >/dev/null
sleep 0.5
RSS0=$(bench_rss "$BENCH_PROXY_PID")
CPU0=$(bench_cpu "$BENCH_PROXY_PID")

READY=$BENCH_OUT/ready
GO=$BENCH_OUT/go
T0=$(date +%s.%N)
lab_exec cli timeout "$LIMIT" "$BENCH_PY" "$BENCH_TOOL" hold --host 10.0.25.2 --port 25 \
	--count "$N" --ready "$READY" --go "$GO" >"$BENCH_OUT/hold.out" 2>&1 &
HOLD_PID=$!
end=$((SECONDS + LIMIT))
while [ ! -e "$READY" ]; do
	kill -0 "$HOLD_PID" 2>/dev/null || break
	[ "$SECONDS" -lt "$end" ] || break
	sleep 0.2
done
[ -e "$READY" ] || {
	echo "suite_concurrency: the client did not get its sessions up" >&2
	cat "$BENCH_OUT/hold.out" >&2
	exit 1
}
T1=$(date +%s.%N)
# Let the proxy settle (buffers of finished handshakes returned).
sleep 2
RSS1=$(bench_rss "$BENCH_PROXY_PID")
OPEN=$(ls "/proc/$BENCH_PROXY_PID/fd" | wc -l)
read -r _ HELD _ LOST_UP <"$READY"
touch "$GO"
rc=0
wait "$HOLD_PID" || rc=$?
T2=$(date +%s.%N)
CPU1=$(bench_cpu "$BENCH_PROXY_PID")
RESULT=$(tail -n 1 "$BENCH_OUT/hold.out")
echo "# concurrency: $RESULT rss_before=${RSS0}k rss_held=${RSS1}k fds=$OPEN"
COMPLETED=$(sed -n 's/.*completed=\([0-9]*\).*/\1/p' <<<"$RESULT")
COMPLETED=${COMPLETED:-0}
HZ=$(getconf CLK_TCK)

PER=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$HELD" 'BEGIN { printf "%.1f", n ? (b - a) / n : 0 }')
UP=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
DONE=$(awk -v a="$T1" -v b="$T2" 'BEGIN { printf "%.2f", b - a }')
CPUMS=$(awk -v c=$((CPU1 - CPU0)) -v hz="$HZ" -v n="$N" \
	'BEGIN { printf "%.3f", n ? c * 1000 / hz / n : 0 }')
LOST=$((N - COMPLETED))
MEMOK=$(awk -v p="$PER" 'BEGIN { print (p < 64) ? "met" : "**missed**" }')
LOSTOK=$([ "$LOST" -eq 0 ] && echo met || echo "**missed**")

{
	echo "## Concurrent idle sessions (suite_concurrency.sh, $MODE)"
	echo
	echo "$N sessions opened through stsproxy (iptables REDIRECT in the gateway namespace),"
	echo "each past the banner and EHLO - upstream connected, STARTTLS and a TLS handshake"
	echo "done - then held idle, then each completed with MAIL/RCPT/DATA (1 KiB)/QUIT."
	echo "Receiver: the asyncio STARTTLS responder of bench/smtp_bench.py."
	if [ "$N" -lt "$WANT" ]; then
		echo "The target was $WANT; this machine caps open files per process at"
		echo "$BENCH_NOFILE (hard limit, not raisable here), and the proxy needs two per"
		echo "session, so $N were held."
	fi
	echo
	echo "| measure | value | goal |"
	echo "|---|---|---|"
	echo "| sessions opened and held | $HELD of $N (set-up failures $LOST_UP) | |"
	echo "| time to open all (banner+EHLO, 256 in flight) | ${UP} s | |"
	echo "| stsproxy VmRSS before | $RSS0 KiB | |"
	echo "| stsproxy VmRSS holding them | $RSS1 KiB | |"
	echo "| stsproxy open descriptors holding them | $OPEN | |"
	echo "| memory per idle session | $PER KiB | < 64 KiB: $MEMOK |"
	echo "| sessions completed (250 after the final dot) | $COMPLETED of $N | none lost: $LOSTOK |"
	echo "| time to complete all | ${DONE} s | |"
	echo "| stsproxy CPU per session (set-up to QUIT) | $CPUMS ms | |"
	echo
	echo "Memory per idle session = (VmRSS held - VmRSS before) / sessions held."
	echo "Reproduce: \`sudo bash bench/suite_concurrency.sh $MODE out.md\`; the client is"
	echo "\`smtp_bench.py hold --host 10.0.25.2 --port 25 --count $N\` in the client namespace."
} >"$OUTMD"
[ "$rc" -eq 0 ] && [ "$LOST" -eq 0 ]
