#!/bin/bash
# install_units.sh - make install / uninstall into a staging DESTDIR, and
# the systemd units: systemd-analyze verify, and an exposure score below 3.0.
set -u
: "${STSPROXY:?path of the stsproxy binary}"
stage=$(mktemp -d)
units=$(mktemp -d)
trap 'rm -rf "$stage" "$units"' EXIT
fails=0
ok() { echo "ok - $1"; }
notok() {
	echo "not ok - $1"
	fails=$((fails + 1))
}
check() {
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else notok "$name"; fi
}

sh scripts/install.sh install "$stage" /usr "$STSPROXY" >/dev/null
for f in usr/sbin/stsproxy usr/share/man/man8/stsproxy.8 usr/share/man/man5/stsproxy.conf.5 \
	etc/stsproxy/stsproxy.conf etc/stsproxy/stsproxy.conf.example \
	lib/systemd/system/stsproxy.service lib/systemd/system/stsproxy-rules.service \
	usr/libexec/stsproxy-rules usr/share/stsproxy/rules/iptables-gateway.sh \
	usr/share/stsproxy/rules/nftables-onhost.nft etc/logrotate.d/stsproxy \
	usr/lib/sysusers.d/stsproxy.conf usr/lib/tmpfiles.d/stsproxy.conf etc/default/stsproxy-rules; do
	check "install puts $f" test -e "$stage/$f"
done
check "installed unit names the installed binary" grep -q "^ExecStart=/usr/sbin/stsproxy -c /etc/stsproxy/stsproxy.conf$" "$stage/lib/systemd/system/stsproxy.service"
check "staged config is not world-readable (0640)" test "$(stat -c %a "$stage/etc/stsproxy/stsproxy.conf")" = 640
check "the rules' default file names no interface (the unit waits for LAN_IF)" bash -c "! grep -Eq '^[[:space:]]*LAN_IF=' '$stage/etc/default/stsproxy-rules'"
check "tmpfiles gives the service user its state, log and runtime directories" bash -c "grep -Eq '^d /var/lib/stsproxy 0750 stsproxy stsproxy' '$stage/usr/lib/tmpfiles.d/stsproxy.conf' && grep -Eq '^d /var/log/stsproxy ' '$stage/usr/lib/tmpfiles.d/stsproxy.conf' && grep -Eq '^d /run/stsproxy ' '$stage/usr/lib/tmpfiles.d/stsproxy.conf'"
check "installed config validates" "$stage/usr/sbin/stsproxy" -c "$stage/etc/stsproxy/stsproxy.conf" --check-config
check "man pages are well-formed" bash -c "LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l '$stage/usr/share/man/man5/stsproxy.conf.5' 2>&1 >/dev/null | grep -v '^$' | (! grep .)"
echo "# an edited configuration survives uninstall" >>"$stage/etc/stsproxy/stsproxy.conf"
sh scripts/install.sh uninstall "$stage" /usr >/dev/null
check "uninstall removes the binary" test ! -e "$stage/usr/sbin/stsproxy"
check "uninstall removes the units" test ! -e "$stage/lib/systemd/system/stsproxy.service"
check "uninstall keeps the operator's configuration" grep -q "survives uninstall" "$stage/etc/stsproxy/stsproxy.conf"

# Units as installed, with the paths of this build so verify can find them.
bindir=$(dirname "$STSPROXY")
for u in stsproxy.service stsproxy-rules.service; do
	sed -e "s|@SBINDIR@|$bindir|g" -e "s|@LIBEXECDIR@|$PWD/scripts|g" "systemd/$u" >"$units/$u"
done
if out=$(systemd-analyze verify --man=no "$units/stsproxy.service" "$units/stsproxy-rules.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify"
else
	notok "systemd-analyze verify: $out"
fi
score=$(systemd-analyze security --offline=yes "$units/stsproxy.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for stsproxy.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 3.0) }'; then
	ok "systemd-analyze security exposure $score < 3.0"
else
	notok "systemd-analyze security exposure '${score:-none}' < 3.0"
fi
# The README states the figure; it must be the one of the unit as shipped.
said=$(sed -n 's/.*`systemd-analyze security`[^0-9]*exposure \([0-9.]*\)).*/\1/p' README.md)
[ -z "$said" ] && said=$(tr '\n' ' ' <README.md | sed -n 's/.*`systemd-analyze security` *exposure \([0-9.]*\)).*/\1/p')
if [ -n "$score" ] && [ "$said" = "$score" ]; then
	ok "the README's exposure figure ($said) is the unit's"
else
	notok "the README says exposure '${said:-nothing}', the unit scores '${score:-none}'"
fi
check "unit is Type=notify with a watchdog" bash -c "grep -q '^Type=notify' systemd/stsproxy.service && grep -q '^WatchdogSec=' systemd/stsproxy.service"
check "unit keeps only CAP_NET_ADMIN and CAP_NET_RAW" grep -qx "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW" systemd/stsproxy.service
exit $((fails > 0))
