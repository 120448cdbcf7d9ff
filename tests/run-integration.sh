#!/bin/bash
# run-integration.sh BUILD - run every tests/integration/*.sh against the
# binary in BUILD, each with a time limit, and end with one total line.
# The suites need root (namespaces, iptables, NFQUEUE) and clean up after
# themselves even when they fail.
BUILD=$1
STSPROXY=$(cd "$(dirname "$BUILD/stsproxy")" && pwd)/stsproxy
export STSPROXY BUILD
pass=0
fail=0
failed=""
for t in tests/integration/*.sh; do
	[ -e "$t" ] || continue
	echo "== $t"
	if timeout -k 10 900 bash "$t"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $t"
	fi
done
echo "integration: $pass passed, $fail failed"
[ -n "$failed" ] && echo "integration failures:$failed"
[ "$fail" -eq 0 ]
