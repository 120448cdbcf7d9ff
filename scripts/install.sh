#!/bin/sh
# install.sh install|uninstall DESTDIR PREFIX [BINARY] - what make install
# and make uninstall do. Honours DESTDIR (staging) and PREFIX.
set -eu
action=$1
dest=$2
prefix=$3
bin=${4:-build/stsproxy}

sbindir="$prefix/sbin"
mandir="$prefix/share/man"
datadir="$prefix/share/stsproxy"
libexecdir="$prefix/libexec"
unitdir="${SYSTEMD_UNIT_DIR:-/lib/systemd/system}"
confdir=/etc/stsproxy

subst() { # unit template -> installed unit
	sed -e "s|@SBINDIR@|$sbindir|g" -e "s|@LIBEXECDIR@|$libexecdir|g" "$1" >"$2"
	chmod 0644 "$2"
}

case "$action" in
install)
	install -d "$dest$sbindir" "$dest$mandir/man5" "$dest$mandir/man8" "$dest$datadir/rules" \
		"$dest$libexecdir" "$dest$unitdir" "$dest$confdir" "$dest/etc/logrotate.d"
	install -m 0755 "$bin" "$dest$sbindir/stsproxy"
	install -m 0644 docs/stsproxy.8 "$dest$mandir/man8/stsproxy.8"
	install -m 0644 docs/stsproxy.conf.5 "$dest$mandir/man5/stsproxy.conf.5"
	install -m 0644 stsproxy.conf.example "$dest$confdir/stsproxy.conf.example"
	# Never overwrite an operator's configuration.
	[ -e "$dest$confdir/stsproxy.conf" ] ||
		install -m 0640 stsproxy.conf.example "$dest$confdir/stsproxy.conf"
	for f in scripts/iptables-*.sh scripts/nftables-*.nft scripts/nfq-*; do
		[ -e "$f" ] && install -m 0644 "$f" "$dest$datadir/rules/$(basename "$f")"
	done
	sed -e "s|@DATADIR@|$datadir|g" scripts/stsproxy-rules >"$dest$libexecdir/stsproxy-rules"
	chmod 0755 "$dest$libexecdir/stsproxy-rules"
	subst systemd/stsproxy.service "$dest$unitdir/stsproxy.service"
	subst systemd/stsproxy-rules.service "$dest$unitdir/stsproxy-rules.service"
	install -d "$dest$prefix/lib/sysusers.d"
	install -m 0644 systemd/stsproxy.sysusers "$dest$prefix/lib/sysusers.d/stsproxy.conf"
	install -m 0644 systemd/stsproxy.logrotate "$dest/etc/logrotate.d/stsproxy"
	install -d "$dest/etc/default"
	[ -e "$dest/etc/default/stsproxy-rules" ] ||
		install -m 0644 systemd/stsproxy-rules.default "$dest/etc/default/stsproxy-rules"
	echo "installed stsproxy under ${dest:-/}$prefix"
	;;
uninstall)
	rm -f "$dest$sbindir/stsproxy" "$dest$mandir/man8/stsproxy.8" \
		"$dest$mandir/man5/stsproxy.conf.5" "$dest$confdir/stsproxy.conf.example" \
		"$dest$libexecdir/stsproxy-rules" "$dest$unitdir/stsproxy.service" \
		"$dest$unitdir/stsproxy-rules.service" "$dest/etc/logrotate.d/stsproxy" \
		"$dest$prefix/lib/sysusers.d/stsproxy.conf"
	rm -rf "$dest$datadir"
	# The configuration and the state (cache) are the operator's: kept.
	echo "removed stsproxy from ${dest:-/}$prefix (kept $confdir and /var/lib/stsproxy)"
	;;
*)
	echo "usage: install.sh install|uninstall DESTDIR PREFIX [BINARY]" >&2
	exit 2
	;;
esac
