#!/bin/sh
# install.sh install|uninstall DESTDIR PREFIX [BINARY] - what make install
# and make uninstall do. Honours DESTDIR (staging) and PREFIX.
#
# The service runs as the user stsproxy and must read its configuration:
# installed for real (no DESTDIR, as root), this creates the user and the
# service's directories (systemd-sysusers, systemd-tmpfiles) and installs
# the configuration root:stsproxy 0640. A staged install (DESTDIR, e.g. a
# package build) leaves it root:root 0640; the package's postinst gives it
# the group once the user exists (debian/stsproxy.postinst).
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
sysusersdir="$prefix/lib/sysusers.d"
tmpfilesdir="$prefix/lib/tmpfiles.d"

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
	install -d "$dest$sysusersdir" "$dest$tmpfilesdir"
	install -m 0644 systemd/stsproxy.sysusers "$dest$sysusersdir/stsproxy.conf"
	install -m 0644 systemd/stsproxy.tmpfiles "$dest$tmpfilesdir/stsproxy.conf"
	group=root
	if [ -z "$dest" ] && [ "$(id -u)" = 0 ]; then
		# The user, then /var/lib, /var/log and /run/stsproxy owned by it.
		if command -v systemd-sysusers >/dev/null 2>&1; then
			systemd-sysusers "$sysusersdir/stsproxy.conf"
		fi
		if command -v systemd-tmpfiles >/dev/null 2>&1; then
			systemd-tmpfiles --create "$tmpfilesdir/stsproxy.conf"
		fi
		if getent group stsproxy >/dev/null; then
			group=stsproxy
		else
			echo "install: no group stsproxy (no systemd-sysusers?): create the user stsproxy," \
				"then: chgrp stsproxy $confdir/stsproxy.conf" >&2
		fi
	fi
	# Never overwrite an operator's configuration; but give the service's
	# group a configuration that earlier versions left root:root.
	if [ ! -e "$dest$confdir/stsproxy.conf" ]; then
		install -m 0640 -g "$group" stsproxy.conf.example "$dest$confdir/stsproxy.conf"
	elif [ "$group" != root ] &&
		[ "$(stat -c '%G %a' "$confdir/stsproxy.conf")" = "root 640" ]; then
		chgrp "$group" "$confdir/stsproxy.conf"
	fi
	for f in scripts/iptables-*.sh scripts/nftables-*.nft scripts/nfq-*; do
		[ -e "$f" ] && install -m 0755 "$f" "$dest$datadir/rules/$(basename "$f")"
	done
	sed -e "s|@DATADIR@|$datadir|g" scripts/stsproxy-rules >"$dest$libexecdir/stsproxy-rules"
	chmod 0755 "$dest$libexecdir/stsproxy-rules"
	subst systemd/stsproxy.service "$dest$unitdir/stsproxy.service"
	subst systemd/stsproxy-rules.service "$dest$unitdir/stsproxy-rules.service"
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
		"$dest$sysusersdir/stsproxy.conf" "$dest$tmpfilesdir/stsproxy.conf"
	rm -rf "$dest$datadir"
	# The configuration, the state (cache), the logs and the user are the
	# operator's: kept.
	echo "removed stsproxy from ${dest:-/}$prefix (kept $confdir and /var/lib/stsproxy)"
	;;
*)
	echo "usage: install.sh install|uninstall DESTDIR PREFIX [BINARY]" >&2
	exit 2
	;;
esac
