#!/bin/bash
# run-all.sh BUILD TEST... - the unit tests, then the integration suites.
# The last line totals the test cases over both: cmocka's "[  PASSED  ] N"
# and "[  FAILED  ] N" lines, and the suites' "ok [N] -" / "not ok [N] -" lines; a
# binary or suite that fails without saying so counts as one failure.
set -o pipefail
BUILD=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash tests/run-unit.sh "$BUILD" "$@" 2>&1 | tee "$out"
u=$?
bash tests/run-integration.sh "$BUILD" 2>&1 | tee -a "$out"
i=$?
# (cmocka writes its summary to stderr: it may share a line with stdout.)
p=$(grep -o '\[  PASSED  \] [0-9]* test' "$out" | awk '{s+=$4} END {print s+0}')
f=$(grep -o '\[  FAILED  \] [0-9]* test' "$out" | awk '{s+=$4} END {print s+0}')
ip=$(grep -Ec '^ok( [0-9]+)? - ' "$out")
if_=$(grep -Ec '^not ok( [0-9]+)? - ' "$out")
p=$((p + ip))
f=$((f + if_))
# A crash or a suite that died without a "not ok" line still fails the run.
if [ "$u" -ne 0 ] || [ "$i" -ne 0 ]; then
	[ "$f" -eq 0 ] && f=1
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
