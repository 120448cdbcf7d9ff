#!/bin/bash
# policy_lab.sh - "stsproxy policy DOMAIN" against a real unbound and a real
# nginx in network namespaces: TXT records, HTTPS policy fetches (port 443,
# certificates from the lab CA), the persistent cache across runs, and the
# failure cases of RFC 8461 sections 3.1 and 3.3.
#
# Topology: client 10.0.1.2, dns 10.0.53.2, https 10.0.44.2, behind the
# lab router. Prints "ok - name" / "not ok - name"; exit 1 if any failed.
# Needs root. STSPROXY names the binary (default build/stsproxy).
#
# Names are under "example.", not "test.": libunbound answers "test." (RFC
# 6761) from a built-in local zone with NXDOMAIN, before any forwarder.

set -eu
. "$(cd "$(dirname "$0")/../lab" && pwd)/lab.sh"

STSPROXY=${STSPROXY:-$(pwd)/build/stsproxy}
if [ ! -x "$STSPROXY" ]; then
	echo "not ok - setup: $STSPROXY is not an executable" >&2
	exit 1
fi

lab_init policy
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

lab_router inet
lab_host client 10.0.1.2/24
lab_host dns 10.0.53.2/24
lab_host https 10.0.44.2/24

lab_ca
CA=$LAB_DIR/ca/ca.crt
lab_cert other mta-sts.other.example >/dev/null
OTHER_CRT=$LAB_CRT OTHER_KEY=$LAB_KEY
lab_cert_selfsigned selfsigned mta-sts.self.example >/dev/null
SELF_CRT=$LAB_CRT SELF_KEY=$LAB_KEY

lab_https https 10.0.44.2
lab_sts_publish good.example id1 enforce mx1.good.example
LAB_HTTPS_CERT=$OTHER_CRT LAB_HTTPS_KEY=$OTHER_KEY \
	lab_sts_publish wrong.example w1 enforce mx.wrong.example
LAB_HTTPS_CERT=$SELF_CRT LAB_HTTPS_KEY=$SELF_KEY \
	lab_sts_publish self.example s1 enforce mx.self.example
printf '<html>no</html>\n' >"$LAB_DIR/page.html"
lab_https_raw missing.example 404 text/html "$LAB_DIR/page.html"
lab_https_raw moved.example 301 - /dev/null \
	location=https://mta-sts.good.example/.well-known/mta-sts.txt
lab_https_raw html.example 200 'text/html; charset=utf-8' "$LAB_DIR/page.html"
{
	printf 'version: STSv1\nmode: enforce\nmx: mx1.big.example\nmax_age: 86400\n'
	head -c 70000 /dev/zero | tr '\0' '#'
	printf '\n'
} >"$LAB_DIR/big.txt"
lab_https_raw big.example 200 text/plain "$LAB_DIR/big.txt"
for d in missing moved html big; do
	lab_dns_record "_mta-sts.$d.example TXT \"v=STSv1; id=${d}1\"" \
		"mta-sts.$d.example A 10.0.44.2"
done
lab_dns_record \
	"good.example MX 10 mx1.good.example." \
	"good.example MX 20 backup.elsewhere.example." \
	"mx1.good.example A 10.0.25.2" \
	'_mta-sts.two.example TXT "v=STSv1; id=a1"' \
	'_mta-sts.two.example TXT "v=STSv1; id=a2"' \
	'_mta-sts.nocache.example TXT "v=STSv1; id=n1"'
lab_dns dns 10.0.53.2

mkdir -p "$LAB_DIR/state"
CONF=$LAB_DIR/stsproxy.conf
cat >"$CONF" <<EOF
state_dir = "$LAB_DIR/state";
listen = [ "127.0.0.1:10025" ];
log = { level = "notice"; };
dns = { forwarders = [ "10.0.53.2" ]; timeout = 3; };
tls = { ca_file = "$CA"; };
sts = { fetch_timeout = 5; defer_on_dns_failure = true; refresh = false; };
EOF

OUT=$LAB_DIR/out
mkdir -p "$OUT"
N=0
FAILS=0

# policy NAME DOMAIN - run the command in the client namespace; JSON in $OUT/NAME.json.
policy() {
	local rc=0
	lab_exec client "$STSPROXY" policy -c "$CONF" --json "$2" >"$OUT/$1.json" \
		2>"$OUT/$1.err" || rc=$?
	echo "$rc" >"$OUT/$1.rc"
}

field() { lab_json "$OUT/$1.json" "$2"; }

# expect NAME KEY=VALUE... - every key of the JSON output has that value ("rc" is the exit).
expect() {
	local name=$1 kv k v got bad=""
	shift
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		if [ "$k" = rc ]; then
			got=$(cat "$OUT/$name.rc")
		else
			got=$(field "$name" "$k" 2>/dev/null || echo "?")
		fi
		[ "$got" = "$v" ] || bad="$bad $k=$got (want $v);"
	done
	N=$((N + 1))
	if [ -z "$bad" ]; then
		echo "ok $N - $name"
	else
		echo "not ok $N - $name:$bad"
		sed 's/^/#   /' "$OUT/$name.json" "$OUT/$name.err" | tail -n 12
		FAILS=$((FAILS + 1))
	fi
}

# --- RFC 8461 section 3.3: fetch, then the cache ---
policy good_fetched good.example
expect good_fetched rc=0 status=policy source=fetched id=id1 mode=enforce \
	candidates=mx1.good.example addresses=10.0.25.2 problem=null
policy good_cached good.example
expect good_cached rc=0 status=policy source=cache id=id1 txt="v=STSv1; id=id1"

# --- section 3.3: only 200, no redirects, text/plain, 64 KiB ---
policy redirect moved.example
expect redirect rc=1 status=none problem=sts-policy-fetch-error
policy not_found missing.example
expect not_found rc=1 status=none problem=sts-policy-fetch-error
policy text_html html.example
expect text_html rc=1 status=none problem=sts-policy-fetch-error
policy oversized big.example
expect oversized rc=1 status=none problem=sts-policy-fetch-error

# --- section 3.3: the HTTPS certificate must be valid for mta-sts.<domain> ---
policy cert_wrong_name wrong.example
expect cert_wrong_name rc=1 status=none problem=sts-webpki-invalid
policy cert_self_signed self.example
expect cert_self_signed rc=1 status=none problem=sts-webpki-invalid

# --- section 3.1: exactly one STSv1 record ---
policy two_records two.example
expect two_records rc=1 status=none problem=sts-policy-invalid

# --- section 3.3: a new id means a refetch ---
lab_sts_publish good.example id2 testing mx1.good.example
policy id_changed good.example
expect id_changed rc=0 status=policy source=fetched id=id2 mode=testing

# --- SERVFAIL: the cache is used; with nothing cached, defer ---
lab_dns_servfail _mta-sts.good.example
lab_dns_servfail _mta-sts.nocache.example
lab_dns_reload
policy servfail_cached good.example
expect servfail_cached rc=0 status=policy source=cache id=id2 problem=sts-policy-fetch-error
policy servfail_defer nocache.example
expect servfail_defer rc=1 status=defer problem=sts-policy-fetch-error

# --- a restart keeps the cache: a new process, the policy host gone ---
lab_dns_clear_special
lab_dns_del mta-sts.good.example
lab_dns_reload
policy restart_cache good.example
expect restart_cache rc=0 status=policy source=cache id=id2 mode=testing
N=$((N + 1))
if [ -s "$LAB_DIR/state/policy-cache.sqlite" ]; then
	echo "ok $N - cache_file_persisted"
else
	echo "not ok $N - cache_file_persisted"
	FAILS=$((FAILS + 1))
fi

echo "1..$N"
if [ "$FAILS" != 0 ]; then
	echo "# $FAILS of $N checks failed"
	exit 1
fi
exit 0
