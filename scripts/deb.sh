#!/bin/sh
# deb.sh BUILD VERSION - what make deb does: the Debian package
# BUILD/stsproxy_VERSION_ARCH.deb, built by dpkg-buildpackage from debian/.
#
# dpkg-buildpackage writes its results into the parent of the source tree
# and runs `debian/rules clean` in it, so it works on a copy of the tree
# in BUILD/deb/ (without build/ and .git): nothing outside BUILD changes.
# DEB_REV=COMMIT builds that commit (git archive) instead of the work tree.
set -eu
build=${1:-build}
version=${2:?usage: deb.sh BUILD VERSION}

die() {
	echo "deb: $*" >&2
	exit 1
}

# One version: the Makefile's is the one the binary reports.
if [ -n "${DEB_REV:-}" ]; then
	cl=$(git show "$DEB_REV:debian/changelog" | dpkg-parsechangelog -l- -S Version)
else
	cl=$(dpkg-parsechangelog -S Version)
fi
[ "$cl" = "$version" ] ||
	die "debian/changelog says $cl, the Makefile $version: add a changelog entry (dch -v $version)"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

work=$build/deb
src=$work/stsproxy-$version
rm -rf "$work"
mkdir -p "$src"
if [ -n "${DEB_REV:-}" ]; then
	git archive --format=tar "$DEB_REV" | tar -C "$src" -xf -
else
	tar -cf - --exclude=./build --exclude=./.git --exclude="./$build" . | tar -C "$src" -xf -
fi

(cd "$src" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log" >&2
	die "dpkg-buildpackage failed (whole log: $work/build.log)"
}
cp "$work/stsproxy_${version}_$arch.deb" "$build/"
echo "deb: $build/stsproxy_${version}_$arch.deb"
