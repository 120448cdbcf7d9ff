#!/bin/bash
# run.sh SECONDS TARGET... - run each libFuzzer target for SECONDS seconds,
# as many at once as there are cores, starting from its seed corpus in
# fuzz/corpus/<name>/. New inputs go to a scratch corpus under build/fuzz/,
# never into the repository; crashes are saved in build/fuzz/ and fail the
# run. One line per target: executions and coverage reached
# (docs/ROBUSTNESS.md records them).
set -u
export LSAN_OPTIONS="suppressions=$(pwd)/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
secs=$1
shift
jobs=$(nproc)

one() { # bin: run it, leave its exit status in build/fuzz/NAME.rc
	local bin=$1 name work log
	name=$(basename "$bin")
	work="build/fuzz/corpus-$name"
	log="build/fuzz/$name.log"
	mkdir -p "$work" "fuzz/corpus/$name"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="build/fuzz/$name-" "$work" "fuzz/corpus/$name" >"$log" 2>&1
	echo $? >"build/fuzz/$name.rc"
}

running=0
for bin in "$@"; do
	one "$bin" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

pass=0
fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	log="build/fuzz/$name.log"
	if [ "$(cat "build/fuzz/$name.rc" 2>/dev/null)" = 0 ]; then
		pass=$((pass + 1))
		status=ok
	else
		fail=$((fail + 1))
		status=FAILED
		tail -n 40 "$log"
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	echo "fuzz $status $name seconds=$secs execs=${execs:-?} cov=${cov:-?}"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
