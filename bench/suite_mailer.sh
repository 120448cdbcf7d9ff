#!/bin/bash
# suite_mailer.sh smoke|full OUTFILE.md - what the client leg costs a real
# sending Postfix: plain, with the proxy's STARTTLS, and against going direct.
#
# A private Postfix instance in the client namespace (the sending mailer,
# smtp client with Postfix's defaults: opportunistic TLS, a TLS session
# cache, connection reuse on demand) sends N queued 1 KiB messages to the
# Postfix MX of bench/lib.sh (STARTTLS, lab CA) in the server namespace,
# through the gateway namespace. Each variant below is an smtp transport of
# its own in the sender's master.cf (so TLS session and connection caches
# are the variant's own), reached by the recipient's address; its messages
# are queued on hold, then released at once: the drain time runs from the
# release to the MX's queue manager having all N. Variants run once per
# round, interleaved, so that a slow moment of the machine is shared; the
# report keeps the median round and ratios paired within a round.
#
# The refusal variants (V*) send a few messages with a sender that verifies
# certificates (smtp_tls_security_level = verify) and count what happens.
#
# Needs root. Everything it starts lives in lab namespaces or /dev/shm and
# is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	N=1000
	NV=20
	ROUNDS=5
	LIMIT=180
else
	N=20
	NV=3
	ROUNDS=1
	LIMIT=40
fi
N=${MAILER_N:-$N}
ROUNDS=${MAILER_ROUNDS:-$ROUNDS}

# PROXIES: an stsproxy in the gateway per line: its name, its port, its
# tls.client_starttls, and top-level settings of its configuration.
PROXIES='
plain 10025 false
tls   10026 true
reuse 10027 false upstream = { reuse_idle = 30; reuse_max_per_dest = 32; };
'
# VARIANTS: one sender setting per line: its name, where its port-25
# connections go (direct: the gateway only forwards IP packets; or the name
# of a proxy above, by REDIRECT), and master.cf options of its smtp
# transport. The first line is the baseline of the ratios. A variant that
# ends in 1 is the one before it, one message per connection.
VARIANTS='
D  direct
P  plain
S  tls
D1 direct -o smtp_connection_cache_on_demand=no
P1 plain  -o smtp_connection_cache_on_demand=no
S1 tls    -o smtp_connection_cache_on_demand=no
DR direct -o smtp_tls_connection_reuse=yes
SR tls    -o smtp_tls_connection_reuse=yes
U1 reuse  -o smtp_connection_cache_on_demand=no
'
# REFUSALS: the same for a sender that verifies the certificate.
REFUSALS='
VD direct -o smtp_tls_security_level=verify
V  tls    -o smtp_tls_security_level=verify
VP plain  -o smtp_tls_security_level=verify
'
# MAILER_VARIANTS="D1 U1" keeps only those variants (the first stays the
# baseline of the ratios) and no refusals.
if [ -n "${MAILER_VARIANTS:-}" ]; then
	VARIANTS=$(awk -v keep=" $MAILER_VARIANTS " \
		'NF && index(keep, " " $1 " ")' <<<"$VARIANTS")
	REFUSALS=''
fi
# describe NAME - what a variant is, for the report.
describe() {
	case $1 in
	D) echo "direct, sender TLS (may), session cache" ;;
	P) echo "stsproxy, client leg plain (client_starttls = false)" ;;
	S) echo "stsproxy, the sender takes the proxy's STARTTLS (client_starttls = true)" ;;
	D1 | P1 | S1) echo "${1%1}, one message per connection" ;;
	DR | SR) echo "${1%R}, the sender reuses its TLS connections (through tlsproxy)" ;;
	U1) echo "stsproxy with upstream connection reuse (upstream.reuse_idle = 30), client leg plain, one message per connection" ;;
	VD) echo "direct, the sender verifies (control)" ;;
	V) echo "stsproxy with client_starttls = true (self-signed certificate)" ;;
	VP) echo "stsproxy with client_starttls = false" ;;
	*) echo "$1" ;;
	esac
}

[ -x "$STSPROXY" ] || {
	echo "suite_mailer: no $STSPROXY (build it first)" >&2
	exit 1
}
for t in postfix smtp-source postsuper postqueue; do
	[ -x "/usr/sbin/$t" ] || {
		echo "suite_mailer: /usr/sbin/$t missing (apt-get install postfix)" >&2
		exit 1
	}
done

bench_init bmailer
bench_topology
lab_resolvconf cli 10.0.53.1
bench_postfix_receiver
MXLOG=$BENCH_PF/maillog

# --- the proxies -------------------------------------------------------------

# proxy_port NAME, proxy_pid NAME - of a proxy in PROXIES.
proxy_port() { awk -v p="$1" '$1 == p { print $2 }' <<<"$PROXIES"; }
proxy_pid() { cat "$LAB_DIR/proxy-$1.pid"; }
while read -r name port starttls extra; do
	[ -n "$name" ] || continue
	BENCH_CLIENT_STARTTLS=$starttls BENCH_CONF_EXTRA=$extra \
		bench_stsproxy_conf "$LAB_DIR/stsproxy-$name.conf" 1000 "$port"
	bench_stsproxy "$LAB_DIR/stsproxy-$name.conf" "$port"
	echo "$BENCH_PROXY_PID" >"$LAB_DIR/proxy-$name.pid"
done <<<"$PROXIES"

# route NAME - send the sender's port-25 connections where a variant says.
route() {
	case $1 in
	direct) bench_redirect off ;;
	*) bench_redirect "$(proxy_port "$1")" ;;
	esac
}
# Every connection the sender opens, counted at the gateway before the
# REDIRECT (mangle comes before nat).
lab_exec gw iptables -t mangle -A PREROUTING -i lan0 -p tcp --dport 25 --syn
syns() {
	lab_exec gw iptables -t mangle -nvxL PREROUTING |
		awk '$0 ~ /dpt:25/ { print $1; exit }'
}

# --- the sender: a private Postfix instance ------------------------------------

bench_postfix_dir cli
SPF=$BENCH_PFDIR
SLOG=$SPF/maillog
cp "$LAB_DIR/ca/ca.crt" "$SPF/etc/ca.crt"
# Everything queued is held until a run releases it.
echo '/^/ HOLD' >"$SPF/etc/hold"
: >"$SPF/etc/transport"
: >"$SPF/etc/transports.cf"
lc() { tr 'A-Z' 'a-z' <<<"$1"; }
while read -r name via opts; do
	[ -n "$name" ] || continue
	v=$(lc "$name")
	printf '/^%s@bench\\.example$/ v_%s:\n' "$v" "$v" >>"$SPF/etc/transport"
	printf 'v_%-7s unix  -       -       n       -       -       smtp %s\n' "$v" "$opts" \
		>>"$SPF/etc/transports.cf"
done <<<"$VARIANTS$REFUSALS"
{
	bench_postfix_main "$SPF"
	cat <<EOF
myhostname = mail.corp.example
mydomain = corp.example
myorigin = corp.example
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
header_checks = regexp:$SPF/etc/hold
transport_maps = regexp:$SPF/etc/transport
smtp_tls_security_level = may
smtp_tls_CAfile = $SPF/etc/ca.crt
smtp_tls_session_cache_database = btree:\$data_directory/smtp_scache
smtp_tls_loglevel = 1
smtp_connect_timeout = 10s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s
EOF
} >"$SPF/etc/main.cf"
{
	echo 'smtp      inet  n       -       n       -       -       smtpd'
	bench_postfix_master
	cat "$SPF/etc/transports.cf"
} >"$SPF/etc/master.cf"
bench_postfix_start cli "$SPF"
lab_wait_port cli 127.0.0.1 25

# --- one run -----------------------------------------------------------------

HZ=$(getconf CLK_TCK)
RUNS=$BENCH_OUT/runs.tsv
: >"$RUNS"
count() { grep -c -e "$1" "$2" 2>/dev/null || true; }
queued() { find "$SPF/queue/$1" -type f 2>/dev/null | wc -l; }
pending() { find "$SPF/queue/incoming" "$SPF/queue/active" "$SPF/queue/deferred" \
	"$SPF/queue/hold" "$SPF/queue/maildrop" -type f 2>/dev/null | wc -l; }
# sender_tls - handshakes the sender made: its smtp processes log each one,
# also those that tlsproxy made for them (which logs them as well).
sender_tls() { grep 'TLS connection established to' "$SLOG" 2>/dev/null | grep -vc 'tlsproxy\[' || true; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# inject NAME COUNT - queue COUNT 1 KiB messages for the variant, on hold.
inject() {
	local rcpt end
	rcpt="$(lc "$1")@bench.example"
	lab_exec cli timeout "$LIMIT" smtp-source -s 4 -m "$2" -l 1024 \
		-f bench@corp.example -t "$rcpt" 127.0.0.1:25 || {
		echo "suite_mailer: smtp-source could not queue $2 messages" >&2
		return 1
	}
	end=$((SECONDS + 20))
	while [ "$(queued hold)" -lt "$2" ]; do
		[ "$SECONDS" -le "$end" ] || {
			echo "suite_mailer: $(queued hold) of $2 messages on hold" >&2
			return 1
		}
		sleep 0.05
	done
}

# release - hand every held message to the queue manager at once.
release() {
	lab_exec cli postsuper -c "$SPF/etc" -H ALL 2>/dev/null
	lab_exec cli postqueue -c "$SPF/etc" -f
}

# settle - wait until the sender holds no connection on port 25 (Postfix
# keeps an idle one up to smtp_connection_cache_time_limit, 2 s), so that
# the next run starts clean and a proxy's CPU includes its closing.
settle() {
	local end=$((SECONDS + 15))
	while [ "$SECONDS" -le "$end" ]; do
		[ -z "$(lab_exec cli ss -Htn state established '( dport = :25 )')" ] && return 0
		sleep 0.1
	done
}

# run NAME VIA COUNT [RECORD] - one drain of COUNT messages; with RECORD,
# appends a row to RUNS: name msgs secs msgs_per_s stsproxy_cpu_ms_per_msg
# machine_cpu_ms_per_msg sender_connections sender_tls mx_connections mx_tls
run() {
	local name=$1 via=$2 n=$3 pid="" m0 t0 t1 c0 c1=0 b0 b1 s0 st0 mc0 mt0 end got secs
	inject "$name" "$n"
	route "$via"
	[ "$via" = direct ] || pid=$(proxy_pid "$via")
	m0=$(count '(queue active)' "$MXLOG")
	mc0=$(count 'smtpd\[[0-9]*\]: connect from' "$MXLOG")
	mt0=$(count 'TLS connection established from' "$MXLOG")
	st0=$(sender_tls)
	s0=$(syns)
	c0=0
	[ -n "$pid" ] && c0=$(bench_cpu "$pid")
	b0=$(bench_busy)
	t0=$(now_ms)
	release
	end=$((SECONDS + LIMIT))
	while :; do
		got=$(($(count '(queue active)' "$MXLOG") - m0))
		[ "$got" -ge "$n" ] && break
		[ "$SECONDS" -le "$end" ] || {
			echo "suite_mailer: $name: the MX has $got of $n after ${LIMIT}s" >&2
			grep -E 'status=(deferred|bounced)' "$SLOG" | tail -n 5 >&2
			return 1
		}
		sleep 0.02
	done
	t1=$(now_ms)
	b1=$(bench_busy)
	settle
	[ -n "$pid" ] && c1=$(bench_cpu "$pid")
	[ "$(pending)" -eq 0 ] || {
		echo "suite_mailer: $name: $(pending) messages still queued at the sender" >&2
		return 1
	}
	[ -n "${4:-}" ] || return 0
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$secs" \
		"$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" \
		"$(if [ -n "$pid" ]; then
			awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.3f", c * 1000 / hz / n }'
		else echo n/a; fi)" \
		"$(awk -v c=$((b1 - b0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", c * 1000 / hz / n }')" \
		$(($(syns) - s0)) $(($(sender_tls) - st0)) \
		$(($(count 'smtpd\[[0-9]*\]: connect from' "$MXLOG") - mc0)) \
		$(($(count 'TLS connection established from' "$MXLOG") - mt0)) >>"$RUNS"
	echo "# mailer $name: $(tail -n 1 "$RUNS")"
}

# refuse NAME VIA COUNT - queue COUNT messages for a verifying variant and
# wait until each was delivered or deferred once; appends to REFUSED:
# name msgs sent deferred mx_received reason_of_the_first_deferral
REFUSED=$BENCH_OUT/refused.tsv
: >"$REFUSED"
refuse() {
	local name=$1 via=$2 n=$3 rcpt m0 sent deferred end why
	rcpt="$(lc "$name")@bench.example"
	inject "$name" "$n"
	route "$via"
	m0=$(count '(queue active)' "$MXLOG")
	release
	end=$((SECONDS + LIMIT))
	while :; do
		sent=$(grep -F " to=<$rcpt>" "$SLOG" | grep -c ' status=sent ' || true)
		deferred=$(grep -F " to=<$rcpt>" "$SLOG" | grep -c ' status=deferred ' || true)
		[ $((sent + deferred)) -ge "$n" ] && break
		[ "$SECONDS" -le "$end" ] || break
		sleep 0.1
	done
	why=$(grep -F " to=<$rcpt>" "$SLOG" | grep -m 1 ' status=deferred ' |
		sed 's/.* status=deferred (\(.*\))$/\1/' || true)
	# Keep the deferred messages from trying again during the next variant.
	lab_exec cli postsuper -c "$SPF/etc" -d ALL 2>/dev/null
	settle
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$sent" "$deferred" \
		$(($(count '(queue active)' "$MXLOG") - m0)) "${why:--}" >>"$REFUSED"
	echo "# mailer refusal $name: $(tail -n 1 "$REFUSED")"
}

# A warm-up per variant: the proxies' policy is cached, every TLS session
# cache holds a session.
while read -r name via _; do
	[ -n "$name" ] || continue
	run "$name" "$via" 3
done <<<"$VARIANTS"
for round in $(seq "$ROUNDS"); do
	while read -r name via _; do
		[ -n "$name" ] || continue
		run "$name" "$via" "$N" record
	done <<<"$VARIANTS"
done
while read -r name via _; do
	[ -n "$name" ] || continue
	refuse "$name" "$via" "$NV"
done <<<"$REFUSALS"
bench_redirect off

# --- report ------------------------------------------------------------------

names=$(awk 'NF { print $1 }' <<<"$VARIANTS")
base=$(head -n 1 <<<"$names")
# RES: per variant, the run with the median msg/s, then the lowest and the
# highest msg/s of all rounds.
RES=$BENCH_OUT/mailer.tsv
sort -t "$(printf '\t')" -k1,1 -k4,4g "$RUNS" | awk -F '\t' -v OFS='\t' '
	function flush() { if (n > 0) print row[int((n + 1) / 2)], lo, hi; n = 0 }
	{ if ($1 != key) { flush(); key = $1; lo = $4 }
	  row[++n] = $0; hi = $4 }
	END { flush() }' >"$RES"
# ratio A B - A's msg/s over B's, median of the ratios within a round.
ratio() { awk -F '\t' '{ print $1, $4 }' "$RUNS" | bench_paired "$1" "$2"; }
# same_mode NAME - the direct variant with the same connection mode.
same_mode() {
	case $1 in
	*1) echo "${base}1" ;;
	*) echo "$base" ;;
	esac
}

{
	echo "## A real Postfix as the sending mailer (suite_mailer.sh, $MODE)"
	echo
	echo "A private Postfix $(postconf -dh mail_version 2>/dev/null) instance in a client namespace"
	echo "sends $N queued messages (1 KiB body, one recipient each, all for bench.example)"
	echo "to the Postfix MX of the relay suite (STARTTLS, certificate from the lab CA, spool"
	echo "on tmpfs) through a gateway namespace. The sender keeps Postfix's defaults"
	echo "(\`smtp_tls_security_level = may\` with the lab CA, a TLS session cache in"
	echo "\`smtp_tls_session_cache_database\`, connection reuse on demand, up to 20"
	echo "connections to the destination) unless a variant says otherwise. Its messages"
	echo "are queued on hold and released at once; the time runs from the release to the"
	echo "MX's queue manager having all $N. Variants, all measured in this run,"
	echo "interleaved over $ROUNDS round(s); each row is the round with the median msg/s,"
	echo "with the range over all rounds:"
	echo
	while read -r name via opts; do
		[ -n "$name" ] || continue
		echo "- **$name** $(describe "$name")${opts:+; \`${opts//-o /}\`}."
	done <<<"$VARIANTS"
	echo
	echo "stsproxy enforces the local policy of bench.example on the upstream leg (STARTTLS,"
	echo "certificate verified against the lab CA, sessions resumed from its cache) in"
	echo "every proxied variant. With \`client_starttls = true\` it offers STARTTLS to the"
	echo "sender with the self-signed certificate it generates when \`server_cert\` is unset."
	echo
	# The second ratio column only when the run has the baseline's
	# one-message-per-connection variant as well.
	col1=
	grep -qx "${base}1" <<<"$names" && col1=" /${base}1 |"
	echo "| variant | msgs | s | msg/s | msg/s range | /$base |$col1 stsproxy CPU ms/msg | machine CPU ms/msg | sender connections | sender TLS handshakes | MX connections | MX TLS handshakes |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|${col1:+---|}"
	for name in $names; do
		r=$(ratio "$name" "$base")
		r1=-
		[ "$(same_mode "$name")" = "${base}1" ] && r1=$(ratio "$name" "${base}1")
		awk -F '\t' -v p="$name" -v r="$r" -v r1="$r1" -v c1="$col1" '$1 == p {
			printf "| %s | %s | %s | %s | %s-%s | %s |", p, $2, $3, $4, $11, $12, r
			if (c1 != "") printf " %s |", r1
			printf " %s | %s | %s | %s | %s | %s |\n", $5, $6, $7, $8, $9, $10 }' "$RES"
	done
	echo
	echo "Ratios are of msg/s, each the median over the rounds of the ratio within a round."
	echo "Connections and handshakes are those of the median round: the sender's counted"
	echo "as SYNs at the gateway, its handshakes from its log (\`smtp_tls_loglevel = 1\`),"
	echo "the MX's from its log (\`connect from\`, \`TLS connection established from\`)."
	echo "CPU is utime+stime of the stsproxy process from /proc/PID/stat, and the busy"
	echo "time of the whole machine (both Postfix instances, the proxy, the kernel)."
	if [ -s "$REFUSED" ]; then
		echo
		echo "A sender that verifies certificates (\`smtp_tls_security_level = verify\`, the"
		echo "lab CA as trust anchor, matching the MX host name), $NV messages per variant:"
		echo
		echo "| variant | path | msgs | sent | deferred | at the MX | the sender's reason |"
		echo "|---|---|---|---|---|---|---|"
		while IFS=$'\t' read -r name n sent deferred mx why; do
			echo "| $name | $(describe "$name") | $n | $sent | $deferred | $mx | $why |"
		done <"$REFUSED"
	fi
	echo
	echo "Reproduce: \`sudo bash bench/suite_mailer.sh $MODE out.md\` (STSPROXY=path/to/stsproxy;"
	echo "MAILER_N, MAILER_ROUNDS and MAILER_VARIANTS narrow a run)."
} >"$OUTMD"
echo "# mailer results:"
cat "$RES"
cat "$REFUSED"
