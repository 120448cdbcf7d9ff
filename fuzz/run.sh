#!/bin/bash
# run.sh SECONDS TARGET... - run each libFuzzer target for SECONDS seconds,
# starting from its seed corpus in fuzz/corpus/<name>/. New inputs go to a
# scratch corpus under build/fuzz/, never into the repository; crashes are
# saved in build/fuzz/ and fail the run. One line per target: executions
# and coverage reached (docs/ROBUSTNESS.md records them).
set -u
export LSAN_OPTIONS="suppressions=$(pwd)/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
secs=$1
shift
pass=0
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	work="build/fuzz/corpus-$name"
	mkdir -p "$work" "fuzz/corpus/$name"
	log="build/fuzz/$name.log"
	if "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="build/fuzz/$name-" "$work" "fuzz/corpus/$name" >"$log" 2>&1; then
		pass=$((pass + 1))
		status=ok
	else
		fail=$((fail + 1))
		status=FAILED
		tail -n 40 "$log"
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	echo "fuzz $status $name seconds=$secs execs=${execs:-?} cov=${cov:-?}"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
