#!/bin/bash
# suite_policy.sh smoke|full OUTFILE.md - MTA-STS policy lookups per second.
#
# K domains publish a policy in the lab (unbound for the TXT, MX and A
# records, nginx with certificates from the lab CA for the policy files).
# From a client namespace whose resolver is the lab DNS:
#   - stsproxy's lookup, "stsproxy policy DOMAIN" in a loop: cold (empty
#     state directory: TXT, HTTPS fetch, parse, MX) and warm (the policy
#     cached in the state directory);
#   - the same with postfix-mta-sts-resolver, the Debian peer:
#     "mta-sts-query DOMAIN" in a loop (cold, it has no cache), and its
#     daemon mta-sts-daemon asked over the Postfix socketmap protocol
#     (first query of a domain: cold; repeated: warm, from its cache).
# Both tools start one process per command-line lookup, so the cold CLI
# pair is the like-for-like ratio; the in-process warm decision rate of
# stsproxy is the bench_decide micro-benchmark above.
#
# Writes a markdown section to OUTFILE.md. Needs root; everything lives in
# lab namespaces and is removed on exit, failure or Ctrl-C.
set -euo pipefail
MODE=${1:?smoke|full}
OUTMD=${2:?OUTFILE.md}
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

if [ "$MODE" = full ]; then
	K=100
else
	K=5
fi
[ -x "$STSPROXY" ] || {
	echo "suite_policy: no $STSPROXY (build it first)" >&2
	exit 1
}

bench_init bpol
lab_router
lab_host client 10.0.1.2/24
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24
lab_ca
CA=$LAB_DIR/ca/ca.crt

# Publish every domain before the servers start: one start, no reloads.
LAB_HTTPS_ADDRS=10.0.44.2
for i in $(seq 1 "$K"); do
	d=d$i.pol.example
	lab_sts_publish "$d" "id$i" enforce "mx.$d" >/dev/null
	lab_dns_record "$d MX 10 mx.$d." "mx.$d A 10.0.25.2"
done
lab_https https 10.0.44.2
lab_dns dns 10.0.53.2
lab_resolvconf client 10.0.53.2

CONF=$LAB_DIR/stsproxy.conf
STATE=$LAB_DIR/state
mkdir -p "$STATE"
cat >"$CONF" <<EOF
state_dir = "$STATE";
listen = [ "127.0.0.1:10025" ];
log = { level = "warn"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 3; };
tls = { ca_file = "$CA"; };
sts = { fetch_timeout = 5; refresh = false; };
EOF

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }

# stsproxy cold: the state directory is emptied before every lookup.
fails=0
t0=$(now)
for i in $(seq 1 "$K"); do
	rm -rf "${STATE:?}"/*
	lab_exec client "$STSPROXY" policy -c "$CONF" "d$i.pol.example" >"$BENCH_OUT/sts.$i" 2>&1 ||
		fails=$((fails + 1))
done
t1=$(now)
STS_COLD=$(rate "$K" "$t0" "$t1")
STS_FAILS=$fails
grep -q '^mode: enforce' "$BENCH_OUT/sts.1" || {
	echo "suite_policy: stsproxy found no policy:" >&2
	cat "$BENCH_OUT/sts.1" >&2
	exit 1
}

# stsproxy warm: fill the cache once, then look every domain up again.
for i in $(seq 1 "$K"); do
	lab_exec client "$STSPROXY" policy -c "$CONF" "d$i.pol.example" >/dev/null 2>&1 || true
done
t0=$(now)
for i in $(seq 1 "$K"); do
	lab_exec client "$STSPROXY" policy -c "$CONF" "d$i.pol.example" >"$BENCH_OUT/stsw.$i" 2>&1 ||
		fails=$((fails + 1))
done
t1=$(now)
STS_WARM=$(rate "$K" "$t0" "$t1")
STS_FAILS=$fails

PEER=yes
command -v mta-sts-query >/dev/null 2>&1 || PEER=no
if [ "$PEER" = yes ]; then
	pfails=0
	t0=$(now)
	for i in $(seq 1 "$K"); do
		lab_exec client env SSL_CERT_FILE="$CA" mta-sts-query "d$i.pol.example" \
			>"$BENCH_OUT/peer.$i" 2>&1 || pfails=$((pfails + 1))
	done
	t1=$(now)
	PEER_COLD=$(rate "$K" "$t0" "$t1")
	grep -q "enforce" "$BENCH_OUT/peer.1" || {
		echo "suite_policy: mta-sts-query found no policy:" >&2
		cat "$BENCH_OUT/peer.1" >&2
		exit 1
	}

	cat >"$LAB_DIR/mta-sts-daemon.yml" <<EOF
host: 127.0.0.1
port: 8461
cache:
  type: internal
  options:
    cache_size: 100000
default_zone:
  strict_testing: false
  timeout: 4
EOF
	lab__start mtasts client env SSL_CERT_FILE="$CA" mta-sts-daemon \
		-c "$LAB_DIR/mta-sts-daemon.yml" -v warn
	lab__await mtasts client 127.0.0.1 8461
	# socketmap DOMAIN... - one request per domain on one connection (the
	# way Postfix's socketmap client talks); prints "ok N of M".
	socketmap() {
		lab_exec client "$BENCH_PY" - "$@" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", 8461), 30)
f = s.makefile("rb")
ok = 0
for d in sys.argv[1:]:
    q = ("postfix " + d).encode()
    s.sendall(b"%d:%s," % (len(q), q))
    n = b""
    while not n.endswith(b":"):
        n += f.read(1)
    body = f.read(int(n[:-1]) + 1)[:-1]
    ok += body.startswith(b"OK secure")
print("ok %d of %d" % (ok, len(sys.argv) - 1))
EOF
	}
	doms=$(for i in $(seq 1 "$K"); do echo "d$i.pol.example"; done)
	t0=$(now)
	DCOLD_OK=$(socketmap $doms)
	t1=$(now)
	PEER_DCOLD=$(rate "$K" "$t0" "$t1")
	ROUNDS=20
	# shellcheck disable=SC2046
	t0=$(now)
	DWARM_OK=$(socketmap $(for _ in $(seq 1 "$ROUNDS"); do echo "$doms"; done))
	t1=$(now)
	PEER_DWARM=$(rate $((K * ROUNDS)) "$t0" "$t1")
	echo "# peer daemon: cold $DCOLD_OK, warm $DWARM_OK"
fi

{
	echo "## Policy lookups (suite_policy.sh, $MODE)"
	echo
	echo "$K domains publish an \`enforce\` policy in the lab (unbound, nginx over HTTPS with"
	echo "a lab CA); lookups run one after the other from a client namespace. Cold = TXT"
	echo "lookup, HTTPS fetch, parse and MX lookup; warm = the policy already cached."
	echo
	echo "| lookup | stsproxy | postfix-mta-sts-resolver | ratio stsproxy/peer |"
	echo "|---|---|---|---|"
	if [ "$PEER" = yes ]; then
		echo "| cold, one process per lookup (\`stsproxy policy\` / \`mta-sts-query\`), lookups/s | $STS_COLD | $PEER_COLD | $(bench_ratio "$STS_COLD" "$PEER_COLD") |"
		echo "| warm, one process per lookup (\`stsproxy policy\`, cache in state_dir), lookups/s | $STS_WARM | (no cache in mta-sts-query) | |"
		echo "| cold, daemon (first socketmap query per domain), lookups/s | (no query interface) | $PEER_DCOLD | |"
		echo "| warm, daemon (socketmap, cached; $ROUNDS rounds), lookups/s | see \`decide_per_sec\` above (in-process) | $PEER_DWARM | |"
	else
		echo "| cold, one process per lookup, lookups/s | $STS_COLD | not installed | |"
		echo "| warm, one process per lookup, lookups/s | $STS_WARM | not installed | |"
	fi
	echo
	echo "Failed stsproxy lookups: $STS_FAILS of $((2 * K))."
	[ "$PEER" = yes ] && echo "Peer daemon answers with a policy: cold $DCOLD_OK, warm $DWARM_OK."
	echo
	echo "A per-process figure is dominated by start-up (configuration, OpenSSL trust store,"
	echo "cache open, resolver set-up) - the daemon keeps all of that: within stsproxy a warm"
	echo "decision is an in-memory lookup (bench_decide). Reproduce:"
	echo "\`sudo bash bench/suite_policy.sh $MODE out.md\`."
} >"$OUTMD"
[ "$STS_FAILS" -eq 0 ]
