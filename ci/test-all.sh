#!/usr/bin/env bash
# `make test`: the harness's own tests, lint, the KUnit suites on UML and on
# x86_64 under QEMU (with and without PKS in the CPU), and the kselftests in
# QEMU. Every step runs even when one fails; the last line sums the test cases
# of all steps.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0 failed=0 skipped=0 broken=()

# Add the counts a step printed ("N passed", "N failed", "N skipped") to the totals.
tally() {
	local log=$1 n
	n=$(grep -oE '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
	passed=$((passed + n))
	n=$(grep -oE '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
	failed=$((failed + n))
	n=$(grep -oE '[0-9]+ skipped' "$log" | awk '{s+=$1} END {print s+0}')
	skipped=$((skipped + n))
}

step() {
	local name=$1 log="$logs/$1.log"
	shift
	echo "=== $name: $*"
	if "$@" 2>&1 | tee "$log"; then
		tally "$log"
	else
		tally "$log"
		broken+=("$name")
	fi
}

step pytest make --no-print-directory pytest
step shellcheck make --no-print-directory shellcheck
step checkpatch make --no-print-directory checkpatch
step kunit-um make --no-print-directory kunit ARCH=um
step kunit-x86_64 make --no-print-directory kunit ARCH=x86_64
step kunit-x86_64-no-pks-cpu make --no-print-directory kunit ARCH=x86_64 QEMU_CPU=qemu64
step selftests make --no-print-directory selftests

if ((${#broken[@]})); then
	echo "failed steps: ${broken[*]}"
	# A step that failed without a test count (build error, lint) still fails the run.
	((failed > 0)) || failed=${#broken[@]}
	echo "test: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi
echo "test: $passed passed, $failed failed, $skipped skipped"
