#!/bin/bash
# valgrind.sh - run unit test binaries under valgrind's memcheck.
#
#   bash tests/valgrind.sh BUILD TEST...
#
# TEST is a binary (build/x/tests/core/test_loop) or its name relative to
# BUILD/tests (core/test_loop). Each runs with --leak-check=full and fails
# on any memory error or on a definite or indirect leak; "still reachable"
# memory (what libraries keep for the life of the process) is not an
# error. Library-internal noise is suppressed by tests/valgrind.supp, where
# every entry says why it is not ours.
#
# Prints "ok - valgrind NAME" / "not ok - valgrind NAME" (with the tail of
# valgrind's report) and exits non-zero when any test failed.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD TEST..." >&2
	exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
shift
SUPP=$ROOT/tests/valgrind.supp
command -v valgrind >/dev/null || {
	echo "not ok - valgrind is not installed" >&2
	exit 1
}

n=0
failed=0
out=$(mktemp /tmp/valgrind.XXXXXX)
trap 'rm -f "$out"' EXIT

for t in "$@"; do
	bin=$t
	[ -x "$bin" ] || bin=$BUILD/tests/$t
	name=${bin#"$BUILD"/tests/}
	n=$((n + 1))
	if [ ! -x "$bin" ]; then
		echo "not ok - valgrind $name (no such binary)"
		failed=$((failed + 1))
		continue
	fi
	# --fair-sched: valgrind runs one thread at a time, and its default lock
	# lets a spinning thread starve the others (test_sts_cache's readers
	# against its writer took 25 minutes instead of under 3).
	if valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=1 --quiet --trace-children=no --fair-sched=yes \
		--suppressions="$SUPP" "$bin" >"$out" 2>&1; then
		echo "ok - valgrind $name"
	else
		echo "not ok - valgrind $name"
		failed=$((failed + 1))
		grep -E '^==[0-9]+==|FAILED|ERROR' "$out" | head -n 60 | sed 's/^/#   /'
	fi
done

echo "1..$n"
[ "$failed" -eq 0 ]
