#!/bin/bash
# zones.sh - DNSSEC-signed zones for the lab, served by nsd: for the suites
# that need real signatures (dnssec.sh, dane.sh). Sourced after lab.sh.
#
# The caller sets ZONES (a directory under LAB_DIR), ANCHOR (the trust
# anchor file the zones' KSKs are added to, for dns.trust_anchor_file)
# and DNS_IP (the address nsd serves on, and every zone's NS address).
# Keys are ECDSAP256SHA256 (ldnsutils); a zone is its own trust anchor,
# so libunbound validates below it without a chain from the root.
#
#   zone_new example.test; zone_add example.test "@ IN MX 10 mx1"
#   zone_sign example.test              # KSK and ZSK, zone.signed, anchor
#   zone_tamper example.test NAME TYPE RDATA   # after signing: bogus
#   nsd_start dns "$DNS_IP" example.test ...; nsd_stop

# zone_new ZONE - start the unsigned zone file of ZONE: SOA, NS and the
# name server's address. Records are added with zone_add.
zone_new() {
	local z=$1
	mkdir -p "$ZONES/$z"
	cat >"$ZONES/$z/zone" <<EOF
\$ORIGIN $z.
\$TTL 300
@ IN SOA ns.$z. hostmaster.$z. 1 3600 600 86400 300
@ IN NS ns.$z.
ns IN A $DNS_IP
EOF
}

# zone_add ZONE "REC"... - append records (zone-file syntax, names relative
# to ZONE or absolute).
zone_add() {
	local z=$1
	shift
	printf '%s\n' "$@" >>"$ZONES/$z/zone"
}

# zone_sign ZONE [ldns-signzone option...] - make a KSK and a ZSK
# (ECDSAP256SHA256), sign the zone into ZONE/zone.signed and add the KSK to
# the trust anchor file (a trust anchor for the zone itself: libunbound
# validates below it without a chain from the root).
zone_sign() {
	local z=$1 ksk zsk
	shift
	(
		cd "$ZONES/$z" || exit 1
		ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$z") &&
			zsk=$(ldns-keygen -a ECDSAP256SHA256 "$z") &&
			ldns-signzone "$@" -f zone.signed zone "$zsk" "$ksk" &&
			awk '$3 == "DNSKEY" && $4 == 257 { print $1, $2, $3, $4, $5, $6, $7 }' \
				"$ksk.key" >ksk.anchor
	) || {
		echo "# zone_sign $z failed" >&2
		return 1
	}
	[ -s "$ZONES/$z/ksk.anchor" ] || return 1
	cat "$ZONES/$z/ksk.anchor" >>"$ANCHOR"
}

# zone_tamper ZONE OWNER TYPE RDATA - replace the rdata of OWNER's TYPE
# record in the signed zone, leaving its RRSIG as it was: what an attacker
# on the DNS path would hand out.
zone_tamper() {
	local f="$ZONES/$1/zone.signed"
	awk -v o="$2." -v t="$3" -v d="$4" 'BEGIN { OFS = "\t"; n = 0 }
		$1 == o && $4 == t { print $1, $2, $3, $4, d; n++; next }
		{ print }
		END { if (n != 1) exit 1 }' "$f" >"$f.new" || {
		echo "# zone_tamper: no single $2 $3 in $1" >&2
		return 1
	}
	mv "$f.new" "$f"
}

# zone_file ZONE - the file nsd serves: the signed one if there is one.
zone_file() {
	if [ -f "$ZONES/$1/zone.signed" ]; then
		echo "$ZONES/$1/zone.signed"
	else
		echo "$ZONES/$1/zone"
	fi
}

# nsd_start NS ADDR ZONE... - serve the zones from nsd in namespace NS.
NSD_PID=""
nsd_start() {
	local ns=$1 addr=$2 z d="$LAB_DIR/nsd"
	shift 2
	mkdir -p "$d"
	{
		echo "server:"
		echo "  ip-address: $addr"
		echo "  port: 53"
		echo "  server-count: 1"
		echo '  username: ""'
		echo '  chroot: ""'
		echo '  database: ""'
		echo "  zonesdir: \"$ZONES\""
		echo "  pidfile: \"$d/nsd.pid\""
		echo "  xfrdfile: \"$d/xfrd.state\""
		echo "  zonelistfile: \"$d/zone.list\""
		echo "  logfile: \"$LAB_DIR/logs/nsd.log\""
		echo "  verbosity: 1"
		echo "remote-control:"
		echo "  control-enable: no"
		for z in "$@"; do
			echo "zone:"
			echo "  name: \"$z\""
			echo "  zonefile: \"$(zone_file "$z")\""
		done
	} >"$d/nsd.conf"
	nsd-checkconf "$d/nsd.conf" || return 1
	# ip netns exec becomes nsd: $! is the daemon itself, for nsd_stop.
	ip netns exec "$(lab_nsname "$ns")" nsd -d -c "$d/nsd.conf" \
		>>"$LAB_DIR/logs/nsd.log" 2>&1 </dev/null &
	NSD_PID=$!
	lab_wait_port "$ns" "$addr" 53
}

nsd_stop() {
	[ -n "$NSD_PID" ] || return 0
	kill -TERM "$NSD_PID" 2>/dev/null || true
	wait "$NSD_PID" 2>/dev/null || true
	NSD_PID=""
}
