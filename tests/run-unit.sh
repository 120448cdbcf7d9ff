#!/bin/bash
# run-unit.sh BUILD TEST... - run the cmocka unit test binaries, print their
# own summaries, and end with one total line. Exit 1 if any failed.
BUILD=$1
shift
pass=0
fail=0
failed=""
for t in "$@"; do
	echo "== $t"
	if "$t"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $t"
	fi
done
echo "unit: $pass passed, $fail failed"
[ -n "$failed" ] && echo "unit failures:$failed"
[ "$fail" -eq 0 ]
