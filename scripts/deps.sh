#!/bin/sh
# deps.sh - install the Debian packages stsproxy needs, by purpose.
# Idempotent; run as root on Debian 12.
#
#   sh scripts/deps.sh [SET...]              install (apt-get update first)
#   sh scripts/deps.sh --if-missing [SET...] do nothing, quietly, when all is there
#   sh scripts/deps.sh --list [SET...]       print the package names
#
# SETs (none: all of them, which is what `make deps` installs):
#   build    compiler and libraries to build stsproxy
#   runtime  what the daemon uses when it runs (trust anchors, CA store, rule tools)
#   lab      the namespace lab of the demo and the tests (DNS, HTTPS, SMTP, Postfix)
#   test     what the test suite needs beyond the lab (cmocka, systemd-analyze, man)
#   dev      fuzzing, sanitizer runtime, valgrind, cppcheck, clang-format
#   deb      building and checking the Debian package (make deb)
#   deploy   fresh Debian roots and booted containers (make fresh-test, make deploy-test)
#
# This may run on a production gateway: services that come with a package
# it newly installs (unbound, nsd, nginx, postfix...) are never started,
# and are left disabled at boot. The lab starts private instances of its
# own. Services that were installed or enabled before are not touched.
set -eu

# libunbound's pkg-config file requires hogweed (nettle-dev) and libevent.
set_build="make gcc libc6-dev pkg-config
libssl-dev libunbound-dev nettle-dev libevent-dev libconfig-dev libnetfilter-queue-dev libmnl-dev
libcurl4-openssl-dev libsqlite3-dev libjansson-dev libsystemd-dev libidn2-dev zlib1g-dev
libhiredis-dev"
set_runtime="ca-certificates dns-root-data openssl iproute2 iptables nftables"
set_lab="unbound nsd ldnsutils nginx-light postfix swaks libnet-ssleay-perl python3
python3-aiosmtpd iproute2 iptables nftables socat curl sqlite3 procps psmisc openssl
redis-server redis-sentinel postfix-mta-sts-resolver"
set_test="libcmocka-dev systemd man-db"
set_dev="clang llvm libclang-rt-14-dev valgrind cppcheck clang-format"
set_deb="dpkg-dev debhelper lintian"
set_deploy="mmdebstrap systemd-container git ca-certificates"
ALL_SETS="build runtime lab test dev deb deploy"

die() {
	echo "deps: $*" >&2
	exit 1
}

mode=install
case "${1:-}" in
--list | --if-missing)
	mode=${1#--}
	shift
	;;
-*) die "unknown option $1 (usage: deps.sh [--if-missing|--list] [SET...])" ;;
esac
[ $# -gt 0 ] || set -- $ALL_SETS

PACKAGES=
for s in "$@"; do
	case " $ALL_SETS " in
	*" $s "*) eval "PACKAGES=\"\$PACKAGES \$set_$s\"" ;;
	*) die "unknown set '$s' (one of: $ALL_SETS)" ;;
	esac
done
# One name once, in a stable order.
PACKAGES=$(printf '%s\n' $PACKAGES | awk '!seen[$0]++' | tr '\n' ' ')

missing() {
	for p in $PACKAGES; do
		s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$s" = installed ] || echo "$p"
	done
}

case $mode in
list)
	echo $PACKAGES
	exit 0
	;;
if-missing)
	m=$(missing)
	[ -z "$m" ] && exit 0
	echo "deps: installing missing packages:" $m
	;;
esac

[ "$(id -u)" = 0 ] || die "must run as root (sudo make deps)"

# --- what starts at boot, before ---------------------------------------------
# Boot-time enablement is a symlink: systemd's in /etc/systemd/system (a
# *.wants/ or *.requires/ entry, or an alias), sysvinit's S links in
# /etc/rc?.d. Works the same on a booted systemd and in a chroot.
boot_links() {
	{
		find /etc/systemd/system -type l \( -name '*.service' -o -name '*.socket' \) \
			2>/dev/null
		find /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d -type l -name 'S*' 2>/dev/null
	} | sort
}
work=$(mktemp -d)
policy=/usr/sbin/policy-rc.d
cleanup() {
	# Put back the administrator's policy-rc.d, or remove ours.
	if [ -e "$work/policy-rc.d.saved" ]; then
		mv -f "$work/policy-rc.d.saved" "$policy"
	elif [ -e "$work/policy-rc.d.ours" ]; then
		rm -f "$policy"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
boot_links >"$work/before"

# --- install, starting nothing -------------------------------------------------
# policy-rc.d exit 101 ("action forbidden") is the Debian interface that
# stops maintainer scripts from starting services, through invoke-rc.d
# and deb-systemd-invoke alike, booted or not.
if [ -e "$policy" ] || [ -L "$policy" ]; then
	cp -a "$policy" "$work/policy-rc.d.saved"
fi
printf '#!/bin/sh\n# scripts/deps.sh is installing packages: start nothing.\nexit 101\n' >"$policy"
chmod 0755 "$policy"
: >"$work/policy-rc.d.ours"

export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it should be configured; the lab writes its own main.cf.
if echo " $PACKAGES " | grep -q ' postfix '; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	echo "postfix postfix/mailname string stsproxy.invalid" | debconf-set-selections
fi
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PACKAGES

# --- and nothing new enabled at boot --------------------------------------------
boot_links >"$work/after"
comm -13 "$work/before" "$work/after" >"$work/new"
if [ -s "$work/new" ]; then
	disabled=
	while read -r link; do
		case $link in
		/etc/systemd/system/*)
			unit=$(basename "$link")
			# deb-systemd-helper keeps its own record of what the
			# package enabled, so a later upgrade keeps it disabled.
			if command -v deb-systemd-helper >/dev/null 2>&1; then
				deb-systemd-helper disable "$unit" >/dev/null 2>&1 || true
			fi
			;;
		/etc/rc?.d/*)
			unit=$(basename "$link" | sed 's/^S[0-9]*//')
			update-rc.d "$unit" disable >/dev/null 2>&1 || true
			;;
		esac
		# Whatever the helpers left (a link they do not track).
		case $link in /etc/systemd/system/*) rm -f "$link" ;; esac
		disabled="$disabled $unit"
	done <"$work/new"
	disabled=$(printf '%s\n' $disabled | sort -u | tr '\n' ' ')
	echo "deps: newly installed services left stopped and disabled at boot: $disabled"
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload 2>/dev/null || true
fi
echo "deps: all packages installed"
