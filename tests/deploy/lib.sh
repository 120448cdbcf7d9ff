#!/bin/bash
# lib.sh - fresh Debian 12 roots for the deployment tests: made with
# mmdebstrap from the same Debian mirror this machine's apt uses, entered
# with chroot (fresh_root.sh) or booted with systemd-nspawn (deploy.sh).
#
#   . tests/deploy/lib.sh
#   root_new NAME                   # ROOT_DIR: an empty work directory, cleaned on exit
#   root_make "$ROOT_DIR/root" git,sudo   # variant important plus packages
#   root_mount DIR; root_chroot DIR CMD...; root_umount DIR
#   root_boot DIR [nspawn options]; root_exec DIR CMD...; root_halt DIR
#
# Nothing is cached between runs: a root costs about half a minute, and a
# cache could hide a missing install step. root_cleanup (the EXIT trap of
# root_new) stops what runs in a root, unmounts everything under it and
# removes it, on success or failure.

ROOT_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_SUITE=${ROOT_SUITE:-bookworm}
ROOT_DIR=
ROOT_T0=$SECONDS
ROOT_FAILS=0
ROOT_CHECKS=0

root_err() { echo "deploy: $*" >&2; }

# root_step TEXT - a heading with the time since the start.
root_step() { printf '\n== [%ds] %s\n' "$((SECONDS - ROOT_T0))" "$*"; }

# root_check DESC CMD... - one TAP line, then what the command printed as
# comments: in full on failure, its first lines (the evidence) on success.
root_check() {
	local desc=$1 out
	shift
	ROOT_CHECKS=$((ROOT_CHECKS + 1))
	if out=$("$@" 2>&1); then
		echo "ok $ROOT_CHECKS - $desc"
		[ -z "$out" ] || printf '%s\n' "$out" | head -n 4 | cut -c1-160 | sed 's/^/#   /'
	else
		echo "not ok $ROOT_CHECKS - $desc"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
		ROOT_FAILS=$((ROOT_FAILS + 1))
	fi
}

# root_wait CMD... - run CMD in the background and wait for it: bash runs a
# trap only once the foreground command is over, so a long command (a
# test suite in the root) would hold off the cleanup of a stopped run.
root_wait() {
	"$@" &
	wait "$!"
}

# root_new NAME - a work directory under /var/tmp (not /tmp: a root is a
# few hundred MB, and mmdebstrap's root must not be on a noexec tmpfs).
root_new() {
	[ "$(id -u)" = 0 ] || {
		root_err "must run as root"
		return 1
	}
	ROOT_DIR=$(mktemp -d "/var/tmp/stsproxy-$1.XXXXXX") || return 1
	trap 'root_cleanup' EXIT
	trap 'exit 130' INT TERM HUP
}

# root_sources FILE - the Debian entries of this machine's apt sources, in
# deb822 form: the same mirror, suites and components, nothing else (a
# third-party repository's key would not be in the new root).
root_sources() {
	local f out=$1
	: >"$out"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			opts = ""; i = 2
			if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
			uri = $i; suite = $(i + 1); comps = ""
			for (j = i + 2; j <= NF && $j !~ /^#/; j++) comps = comps " " $j
			signed = ""
			if (match(opts, /signed-by=[^] ]*/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
			if ((signed == "" && uri ~ /\/debian(-security)?\/?$/) || signed ~ /debian-archive-keyring/) {
				print "Types: deb\nURIs: " uri "\nSuites: " suite "\nComponents:" comps
				if (signed != "") print "Signed-By: " signed
				print ""
			}
		}' "$f" >>"$out"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled !~ /^no$/ &&
				    ((signed == "" && uris ~ /\/debian(-security)?\/?( |$)/) || signed ~ /debian-archive-keyring/)) {
					print "Types: deb\nURIs: " uris "\nSuites: " suites "\nComponents: " comps
					if (signed != "") print "Signed-By: " signed
					print ""
				}
				types = uris = suites = comps = signed = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{ k = tolower($1); sub(/:$/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v) }
			k == "types" { types = v } k == "uris" { uris = v } k == "suites" { suites = v }
			k == "components" { comps = v } k == "signed-by" { signed = v } k == "enabled" { enabled = tolower(v) }
			END { flush() }' "$f" >>"$out"
	done
	grep -q "^Suites: .*\b$ROOT_SUITE\b" "$out" || {
		root_err "no $ROOT_SUITE entry for Debian's archive in this machine's apt sources"
		return 1
	}
}

# root_make DIR [PACKAGES] - a fresh Debian root: variant "important" (what
# a minimal Debian 12 installation has), plus PACKAGES (comma list).
root_make() {
	local dir=$1 inc=${2:-} src=$ROOT_DIR/debian.sources
	root_sources "$src" || return 1
	mmdebstrap --quiet --variant=important ${inc:+--include="$inc"} \
		"$ROOT_SUITE" "$dir" "$src" || {
		root_err "mmdebstrap failed"
		return 1
	}
	# A root made by mmdebstrap has no apt lists, like a new installation
	# before its first "apt-get update".
	echo "fresh" >"$dir/etc/hostname"
}

# root_mount DIR - what a chroot needs: the root bind-mounted onto itself
# and private (so that ip netns' mounts inside stay inside), /proc, /sys,
# /dev, /dev/pts, and a tmpfs /run like a booted system's.
root_mount() {
	local d=$1
	mount --bind "$d" "$d" && mount --make-private "$d" &&
		mount --bind /proc "$d/proc" &&
		mount --bind /sys "$d/sys" &&
		mount --bind /dev "$d/dev" &&
		mount --bind /dev/pts "$d/dev/pts" &&
		mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$d/run" || {
		root_err "cannot mount the root at $d"
		return 1
	}
	mkdir -p "$d/run/lock"
}

# root_pids DIR - processes whose root directory is DIR (started in it).
root_pids() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$r" != "$1" ] || echo "${p#/proc/}"
	done
	return 0
}

# root_kill DIR - end the processes started in the chroot at DIR, by pid.
root_kill() {
	local pids i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(root_pids "$1")
		[ -n "$pids" ] || return 0
		if [ "$i" -lt 6 ]; then
			# shellcheck disable=SC2086
			kill $pids 2>/dev/null || true
		else
			# shellcheck disable=SC2086
			kill -9 $pids 2>/dev/null || true
		fi
		sleep 0.5
	done
}

# root_umount DIR - every mount under DIR, deepest first.
root_umount() {
	local d=$1 m
	for m in $(awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}

# root_chroot DIR CMD... - run CMD as root in the root, with a clean
# environment (a fresh machine's, not this one's).
root_chroot() {
	local d=$1
	shift
	chroot "$d" /usr/bin/env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# --- booted roots (systemd-nspawn) ------------------------------------------

# root_boot DIR [OPTIONS...] - boot DIR with systemd as PID 1 and wait
# until it reaches its default target. The machine is not registered
# (no machined here): ROOT_NSPAWN is the nspawn process, ROOT_LEADER the
# container's PID 1; root_exec runs commands inside through nsenter.
root_boot() {
	local d=$1 i state
	shift
	systemd-nspawn --quiet --register=no --keep-unit --console=passive -b -D "$d" "$@" \
		>"$ROOT_DIR/nspawn.log" 2>&1 &
	ROOT_NSPAWN=$!
	ROOT_BOOTED=$d
	ROOT_LEADER=
	# nspawn's first child forks the container's init and goes; wait for
	# the child that is systemd.
	for i in $(seq 1 300); do
		ROOT_LEADER=$(pgrep -P "$ROOT_NSPAWN" -x systemd 2>/dev/null | head -n 1)
		[ -n "$ROOT_LEADER" ] && break
		kill -0 "$ROOT_NSPAWN" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$ROOT_LEADER" ] || {
		root_err "systemd-nspawn did not start:"
		cat "$ROOT_DIR/nspawn.log" >&2
		return 1
	}
	# systemd's bus comes up first (systemctl can talk to it), then --wait
	# returns at the end of the boot: "running", or "degraded" when a unit
	# failed.
	for i in $(seq 1 300); do
		state=$(nsenter -t "$ROOT_LEADER" -a systemctl is-system-running 2>&1) || true
		case $state in *"connect to bus"* | "") sleep 0.1 ;; *) break ;; esac
	done
	state=$(timeout 120 nsenter -t "$ROOT_LEADER" -a systemctl is-system-running --wait 2>&1) || true
	case $state in
	running) return 0 ;;
	*)
		root_err "the container booted to state '$state':"
		root_exec systemctl --failed --no-pager >&2
		return 1
		;;
	esac
}

# root_exec CMD... - run CMD in the booted container's namespaces.
root_exec() {
	nsenter -t "$ROOT_LEADER" -a /usr/bin/env -i LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# root_halt - shut the container down: SIGTERM asks nspawn for an orderly
# poweroff; SIGKILL after 60 s.
root_halt() {
	local i
	[ -n "${ROOT_NSPAWN:-}" ] || return 0
	# (Every step may find the process gone already: never a failure.)
	kill -TERM "$ROOT_NSPAWN" 2>/dev/null || true
	for i in $(seq 1 600); do
		kill -0 "$ROOT_NSPAWN" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$ROOT_NSPAWN" 2>/dev/null || true
	wait "$ROOT_NSPAWN" 2>/dev/null || true
	ROOT_NSPAWN=
	ROOT_LEADER=
	# A booted container's processes all live under its PID 1; once nspawn
	# is gone, nothing of it runs. Its mounts go with its mount namespace.
	[ -z "${ROOT_BOOTED:-}" ] || root_kill "$ROOT_BOOTED"
	return 0
}

# root_teardown - stop, unmount and remove everything made (status 1 when
# something could not be unmounted).
root_teardown() {
	local d rc=0
	root_halt
	if [ -n "$ROOT_DIR" ] && [ -d "$ROOT_DIR" ]; then
		for d in "$ROOT_DIR"/*/; do
			d=${d%/}
			[ -d "$d" ] || continue
			root_kill "$d"
		done
		root_umount "$ROOT_DIR"
		if awk -v d="$ROOT_DIR" 'index($5, d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			root_err "still mounted under $ROOT_DIR; not removing it"
			rc=1
		else
			rm -rf --one-file-system "$ROOT_DIR"
		fi
	fi
	ROOT_DIR=
	return "$rc"
}

# root_cleanup - the EXIT trap of root_new.
root_cleanup() {
	local rc=$?
	set +e
	trap - INT TERM HUP
	root_teardown || [ "$rc" != 0 ] || rc=1
	exit "$rc"
}
