#!/bin/sh
# deps.sh - install the Debian packages stsproxy needs to build, test, fuzz
# and run its lab. Idempotent; run as root on Debian 12.
#   sh scripts/deps.sh              install (apt-get update first)
#   sh scripts/deps.sh --if-missing do nothing when everything is there
#   sh scripts/deps.sh --list       print the package list
set -eu

PACKAGES="
build-essential pkg-config make gcc clang llvm libclang-rt-14-dev
libssl-dev libunbound-dev libconfig-dev libnetfilter-queue-dev libmnl-dev
libcurl4-openssl-dev libsqlite3-dev libjansson-dev libsystemd-dev libidn2-dev
libcmocka-dev libevent-dev
openssl ca-certificates dns-root-data
unbound nsd ldnsutils nginx-light postfix swaks libnet-ssleay-perl python3 python3-aiosmtpd
iproute2 iptables nftables socat curl sqlite3 procps psmisc
valgrind cppcheck clang-format man-db systemd
"

missing() {
	for p in $PACKAGES; do
		s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$s" = installed ] || echo "$p"
	done
}

case "${1:-}" in
--list)
	echo $PACKAGES
	exit 0
	;;
--if-missing)
	m=$(missing)
	[ -z "$m" ] && exit 0
	echo "deps: installing missing packages:" $m
	;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "deps: must run as root (sudo make deps)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix asks how it should be configured; the lab writes its own main.cf.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string stsproxy.invalid" | debconf-set-selections
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PACKAGES
# Packaged services are not used as such: the tests start their own instances.
for svc in unbound nsd nginx postfix; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
echo "deps: all packages installed"
