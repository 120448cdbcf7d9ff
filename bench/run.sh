#!/bin/bash
# run.sh smoke|full BUILD - the benchmarks.
#   smoke: every benchmark once at a small size, to keep them working (CI).
#   full:  the real sizes; results go to docs/BENCHMARKS.md (as root).
# Each bench/suite_*.sh is a relay or system benchmark with its own
# same-run baseline; each build/bench/bench_* binary is a micro-benchmark.
set -euo pipefail
mode=$1
BUILD=$2
export BUILD MODE=$mode STSPROXY="$PWD/$BUILD/stsproxy"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

machine() {
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "- kernel: $(uname -r); compiler: $(cc --version | head -1)"
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
}

fails=0
: >"$out/micro.txt"
for b in "$BUILD"/bench/bench_*; do
	[ -x "$b" ] || continue
	name=$(basename "$b")
	if [ "$mode" = smoke ]; then
		args="--smoke"
	else
		args=""
	fi
	echo "== $name $args"
	if "$b" $args | tee -a "$out/micro.txt"; then
		echo "ok - bench $name"
	else
		echo "not ok - bench $name"
		fails=$((fails + 1))
	fi
done

for s in bench/suite_*.sh; do
	[ -e "$s" ] || continue
	echo "== $s ($mode)"
	if bash "$s" "$mode" "$out/$(basename "$s" .sh).md"; then
		echo "ok - $(basename "$s")"
	else
		echo "not ok - $(basename "$s")"
		fails=$((fails + 1))
	fi
done

if [ "$mode" = full ]; then
	{
		echo "# Benchmarks"
		echo
		echo "Produced by \`sudo make bench\` (bench/run.sh); every figure is an absolute"
		echo "on the machine below or a ratio to a baseline measured in the same run."
		echo
		machine
		echo
		echo "## Micro-benchmarks (one thread)"
		echo
		echo '```'
		cat "$out/micro.txt"
		echo '```'
		for f in "$out"/suite_*.md; do
			[ -e "$f" ] || continue
			echo
			cat "$f"
		done
		if [ -e docs/BENCHMARKS.notes.md ]; then
			echo
			cat docs/BENCHMARKS.notes.md
		fi
	} >docs/BENCHMARKS.md
	echo "wrote docs/BENCHMARKS.md"
fi
[ "$fails" -eq 0 ]
