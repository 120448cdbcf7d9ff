#!/bin/bash
# dnssec.sh - DNSSEC validation of the MTA-STS lookups against really
# signed zones: zones signed with ldnsutils (ECDSAP256SHA256 KSK and ZSK),
# served by nsd, and "stsproxy policy" resolving through libunbound with
# dns.forwarders = that server and dns.trust_anchor_file = the zones' KSKs.
#
# What it shows: with the trust anchor, a correctly signed _mta-sts record
# is validated ("dnssec": true) and the policy applies; a record, MX set or
# policy host address changed after signing, or a signature that has
# expired, is bogus: no policy is fetched, the lookup defers and reports
# dnssec-invalid, so a DNS attacker can fake neither "no policy" nor the MX
# set. Without the trust anchor the same tampered zone is believed.
#
# Topology: client 10.0.1.2, dns (nsd) 10.0.53.2, https 10.0.44.2, behind
# the lab router. Prints "ok N - name" / "not ok N - name"; exits 1 if any
# failed. Needs root, nsd and ldnsutils. STSPROXY names the binary.

set -eu
. "$(cd "$(dirname "$0")/../lab" && pwd)/lab.sh"

STSPROXY=${STSPROXY:-$(pwd)/build/stsproxy}
if [ ! -x "$STSPROXY" ]; then
	echo "not ok - setup: $STSPROXY is not an executable" >&2
	exit 1
fi
for tool in nsd nsd-checkconf ldns-keygen ldns-signzone; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok - setup: $tool is missing (apt-get install nsd ldnsutils)" >&2
		exit 1
	fi
done

lab_init dnssec
echo "# lab prefix $LAB_PFX, dir $LAB_DIR"

DNS_IP=10.0.53.2
HTTPS_IP=10.0.44.2
ZONES=$LAB_DIR/zones
ANCHOR=$ZONES/trust-anchor.key
mkdir -p "$ZONES"
: >"$ANCHOR"

. "$(cd "$(dirname "$0")/../lab" && pwd)/zones.sh"

# zone_sts ZONE ID - the MTA-STS records of a domain: the TXT id, the policy
# host on the lab HTTPS server, one MX host that matches the policy.
zone_sts() {
	zone_add "$1" "_mta-sts IN TXT \"v=STSv1; id=$2\"" "mta-sts IN A $HTTPS_IP" \
		"@ IN MX 10 mx1.$1." "mx1 IN A 10.0.25.2"
}

# --- the lab ------------------------------------------------------------------

lab_router inet
lab_host client 10.0.1.2/24
lab_host dns $DNS_IP/24
lab_host https $HTTPS_IP/24

lab_ca
CA=$LAB_DIR/ca/ca.crt
lab_https https $HTTPS_IP
for d in good forged mxforged hostforged expired plain; do
	lab_sts_policy "$d.example" enforce "mx1.$d.example" >/dev/null
done

# Correctly signed.
zone_new good.example
zone_sts good.example good1
zone_sign good.example
# The TXT record replaced after signing by one without a policy: an
# attacker stripping MTA-STS.
zone_new forged.example
zone_sts forged.example forged1
zone_sign forged.example
zone_tamper forged.example _mta-sts.forged.example TXT '"v=spf1 -all"'
# The MX set redirected after signing.
zone_new mxforged.example
zone_sts mxforged.example mxf1
zone_sign mxforged.example
zone_tamper mxforged.example mxforged.example MX '10 mx.attacker.example.'
# The policy host moved after signing.
zone_new hostforged.example
zone_sts hostforged.example hf1
zone_sign hostforged.example
zone_tamper hostforged.example mta-sts.hostforged.example A 10.0.44.3
# Signatures that expired long ago.
zone_new expired.example
zone_sts expired.example exp1
zone_sign expired.example -i 19990101000000 -e 20000101000000
# Not signed, no trust anchor: insecure, not bogus.
zone_new plain.example
zone_sts plain.example plain1

nsd_start dns $DNS_IP good.example forged.example mxforged.example hostforged.example \
	expired.example plain.example

# conf NAME ANCHOR - a configuration with its own state directory (its own
# policy cache); ANCHOR "" for none.
conf() {
	local f=$LAB_DIR/$1.conf ta=""
	mkdir -p "$LAB_DIR/state-$1"
	[ -n "$2" ] && ta="trust_anchor_file = \"$2\"; "
	cat >"$f" <<EOF
state_dir = "$LAB_DIR/state-$1";
listen = [ "127.0.0.1:10025" ];
log = { level = "notice"; };
dns = { forwarders = [ "$DNS_IP" ]; timeout = 3; ${ta}};
tls = { ca_file = "$CA"; };
sts = { fetch_timeout = 5; defer_on_dns_failure = true; refresh = false; };
EOF
}
conf anchored "$ANCHOR"
conf plain ""

OUT=$LAB_DIR/out
mkdir -p "$OUT"
N=0
FAILS=0

# policy NAME CONF DOMAIN - "stsproxy policy --json" in the client namespace.
policy() {
	local rc=0
	lab_exec client "$STSPROXY" policy -c "$LAB_DIR/$2.conf" --json "$3" \
		>"$OUT/$1.json" 2>"$OUT/$1.err" || rc=$?
	echo "$rc" >"$OUT/$1.rc"
}

# expect NAME KEY=VALUE... - every key of the JSON output has that value;
# "rc" is the exit code, "reason~TEXT" means the reason contains TEXT.
expect() {
	local name=$1 kv k v got bad=""
	shift
	for kv in "$@"; do
		case $kv in
		*~*)
			k=${kv%%~*} v=${kv#*~}
			got=$(lab_json "$OUT/$name.json" "$k" 2>/dev/null || echo "?")
			case $got in *"$v"*) ;; *) bad="$bad $k=$got (want ~$v);" ;; esac
			continue
			;;
		esac
		k=${kv%%=*} v=${kv#*=}
		if [ "$k" = rc ]; then
			got=$(cat "$OUT/$name.rc")
		else
			got=$(lab_json "$OUT/$name.json" "$k" 2>/dev/null || echo "?")
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

# --- with the trust anchor ----------------------------------------------------

policy good anchored good.example
expect good rc=0 dnssec=true status=policy source=fetched id=good1 mode=enforce \
	candidates=mx1.good.example addresses=10.0.25.2 problem=null

# RFC 8461 section 3.1: a bogus TXT answer is not "no record": defer, report.
policy forged anchored forged.example
expect forged rc=1 dnssec=false status=defer txt_status=bogus fetch=null policy=null \
	problem=dnssec-invalid reason~bogus

policy mx_forged anchored mxforged.example
expect mx_forged rc=0 dnssec=false status=policy id=mxf1 candidates= addresses= \
	problem=dnssec-invalid reason~bogus

policy host_forged anchored hostforged.example
expect host_forged rc=1 dnssec=false status=defer policy=null problem=dnssec-invalid \
	reason~bogus

policy expired anchored expired.example
expect expired rc=1 dnssec=false status=defer txt_status=bogus fetch=null \
	problem=dnssec-invalid reason~expired

# Outside every trust anchor: insecure, believed, and said so.
policy insecure anchored plain.example
expect insecure rc=0 dnssec=false status=policy id=plain1 problem=null

# A second run answers from the policy cache, after a validated TXT check.
policy good_cached anchored good.example
expect good_cached rc=0 dnssec=true status=policy id=good1 problem=null

# The text output says it too.
N=$((N + 1))
if lab_exec client "$STSPROXY" policy -c "$LAB_DIR/anchored.conf" good.example \
	>"$OUT/text.out" 2>&1 && grep -qx 'dnssec: yes' "$OUT/text.out"; then
	echo "ok $N - text_dnssec_yes"
else
	echo "not ok $N - text_dnssec_yes"
	sed 's/^/#   /' "$OUT/text.out"
	FAILS=$((FAILS + 1))
fi

# --- without it: the same tampered zones are believed --------------------------

policy plain_good plain good.example
expect plain_good rc=0 dnssec=false status=policy id=good1 problem=null
policy plain_forged plain forged.example
expect plain_forged rc=1 dnssec=false status=none txt=v=spf1\ -all problem=null
policy plain_mx_forged plain mxforged.example
expect plain_mx_forged rc=0 dnssec=false status=policy mx_records=10\ mx.attacker.example \
	problem=null
policy plain_expired plain expired.example
expect plain_expired rc=0 dnssec=false status=policy id=exp1 problem=null

# --- a forged TXT record with a policy cached: the cache is kept ---------------

zone_tamper good.example _mta-sts.good.example TXT '"v=spf1 -all"'
nsd_stop
nsd_start dns $DNS_IP good.example forged.example mxforged.example hostforged.example \
	expired.example plain.example
policy good_forged_cached anchored good.example
expect good_forged_cached rc=0 dnssec=false status=policy source=cache id=good1 \
	txt_status=bogus problem=dnssec-invalid

nsd_stop

echo "1..$N"
if [ "$FAILS" != 0 ]; then
	echo "# $FAILS of $N checks failed"
	exit 1
fi
exit 0
