#!/bin/bash
# fresh_root.sh - the README's quick start, word for word, on a fresh
# Debian 12: a root made now with mmdebstrap (variant important, plus git,
# ca-certificates and sudo: a minimal installation and what the README
# assumes), a user "dev" who may sudo, the current commit cloned with the
# root's own git, and each command of the README's "Quick start" block run
# by that user, in order, on the first try. Between the demo and the test
# suite, the state the commands left is checked: no service newly
# installed by scripts/deps.sh is enabled at boot or running, and
# `make install` gives a configuration the service user can read.
#
#   bash tests/deploy/fresh_root.sh    (root; make fresh-test)
#
# The README's last command (sudo make test) runs last, so its total line
# closes the output. Commits only: uncommitted changes are not in the clone;
# FRESH_REV names another commit than HEAD.
set -eu
cd "$(dirname "$0")/../.."
SRC=$PWD
# shellcheck source=lib.sh
. tests/deploy/lib.sh

# The Quick start block of README.md: each line a command, comments dropped.
readme_commands() {
	awk '/^## Quick start/ { q = 1; next }
		q && /^## / { exit }
		q && /^```sh/ { b = 1; next }
		q && b && /^```/ { exit }
		q && b { sub(/[ \t]+#.*$/, ""); if ($0 !~ /^[ \t]*$/) print }' README.md
}

mapfile -t CMDS < <(readme_commands)
[ "${#CMDS[@]}" -ge 2 ] || {
	root_err "no commands found in README.md's Quick start block"
	exit 1
}
commit=$(git rev-parse --verify "${FRESH_REV:-HEAD}^{commit}")
if [ -z "${FRESH_REV:-}" ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "fresh_root: note: uncommitted changes are not tested (commit $commit only)"
fi

root_new fresh
R=$ROOT_DIR/root

root_step "a fresh Debian 12 root (mmdebstrap, variant important, + git ca-certificates sudo)"
root_make "$R" git,ca-certificates,sudo
echo "$(du -sh "$R" | cut -f1) in $(root_chroot "$R" dpkg-query -W -f='.\n' | wc -l) packages"

# A developer account, the way a Debian installer leaves one: a user who
# may use sudo (without a password here, as nobody types it).
root_chroot "$R" useradd -m -s /bin/bash -G sudo dev
echo 'dev ALL=(ALL:ALL) NOPASSWD: ALL' >"$R/etc/sudoers.d/dev"
chmod 0440 "$R/etc/sudoers.d/dev"
# The repository as a remote to clone from (a bare mirror of this one).
git clone -q --mirror --no-local "$SRC" "$R/srv/stsproxy.git"
git push -q "$R/srv/stsproxy.git" "$commit:refs/heads/fresh-test"
root_chroot "$R" chown -R dev: /srv/stsproxy.git
root_mount "$R"

# dev_run CMD - a login-like shell of user dev in the root, in the clone.
dev_run() {
	root_wait root_chroot "$R" /usr/sbin/runuser -u dev -- /usr/bin/env -i HOME=/home/dev USER=dev \
		LOGNAME=dev SHELL=/bin/bash LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/bin:/usr/bin:/bin:/usr/games \
		/bin/bash -c "cd ~/stsproxy 2>/dev/null || cd; $1"
}

root_step "git clone (commit $commit)"
dev_run "git clone -q /srv/stsproxy.git ~/stsproxy && cd ~/stsproxy && git checkout -q --detach $commit && git log --oneline -1"

# run_readme CMD [last] - one README command; the last prints nothing
# after the command's own output (its total line closes the log).
run_readme() {
	local cmd=$1 t=$SECONDS
	root_step "\$ $cmd"
	dev_run "$cmd" || {
		root_err "README command failed on a fresh Debian 12, first try ($((SECONDS - t))s): $cmd"
		exit 1
	}
	[ "${2:-}" = last ] || echo "-- $((SECONDS - t))s: $cmd"
}

last=$((${#CMDS[@]} - 1))
for ((i = 0; i < last; i++)); do
	run_readme "${CMDS[$i]}"
done

root_step "what the commands left behind"
# The lab's services came with packages that the quick start installed.
for pkg in unbound nsd nginx-light postfix; do
	root_check "$pkg was installed by the quick start" \
		root_chroot "$R" dpkg-query -W -f='${db:Status-Status}\n' "$pkg"
done
no_boot_links() {
	local out
	out=$({
		find "$R/etc/systemd/system" -type l \( -name 'unbound*' -o -name 'nsd*' \
			-o -name 'nginx*' -o -name 'postfix*' \) -printf '%P\n'
		find "$R"/etc/rc[2-5].d -name 'S*' \( -name '*unbound*' -o -name '*nsd*' \
			-o -name '*nginx*' -o -name '*postfix*' \) -printf '%p\n'
	})
	echo "$out"
	[ -z "$out" ]
}
root_check "no newly installed service is enabled at boot (unbound, nsd, nginx, postfix)" no_boot_links
is_disabled() {
	local s
	s=$(systemctl --root="$R" is-enabled "$1" 2>&1)
	echo "$1: $s"
	[ "$s" = disabled ]
}
for u in unbound nsd nginx postfix; do
	root_check "systemctl is-enabled $u: disabled" is_disabled "$u.service"
done
nothing_running() {
	local p out=
	for p in $(root_pids "$R"); do
		out="$out$p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"$'\n'
	done
	printf '%s' "$out"
	[ -z "$out" ]
}
root_check "nothing the packages or the demo started is still running" nothing_running

# README "Running under systemd": make install; the unit runs as stsproxy.
root_check "sudo make install" dev_run "sudo make install >/dev/null"
conf_mode() {
	local s
	# (in the root: its users and groups are not this machine's)
	s=$(root_chroot "$R" stat -c '%U:%G %a' /etc/stsproxy/stsproxy.conf)
	echo "$s"
	[ "$s" = "root:stsproxy 640" ]
}
root_check "installed configuration is root:stsproxy 0640" conf_mode
root_check "the stsproxy user can read and validate the installed configuration" \
	root_chroot "$R" /usr/sbin/runuser -u stsproxy -- /usr/local/sbin/stsproxy \
	-c /etc/stsproxy/stsproxy.conf --check-config
root_check "the rules' default file names no interface" \
	bash -c "! grep -E '^[[:space:]]*LAN_IF=.' '$R/etc/default/stsproxy-rules'"
echo "fresh root checks: $((ROOT_CHECKS - ROOT_FAILS)) of $ROOT_CHECKS passed"

# The README's last command: its total closes the output.
run_readme "${CMDS[$last]}" last
[ "$ROOT_FAILS" -eq 0 ]
