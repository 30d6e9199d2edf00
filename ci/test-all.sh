#!/usr/bin/env bash
# `make test`: the harness's own tests, lint, the KUnit suites on UML and on
# x86_64 under QEMU (with and without PKS in the CPU), the kselftests in QEMU,
# and a bench smoke run with a compare of its result. Every step runs even when
# one fails; the last line sums the test cases of all steps.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0 failed=0 skipped=0 broken=()

# The sum of the counts a step printed as "N WORD" (WORD: passed, failed, skipped).
count() {
	awk -v word="$2" '{
		for (i = 2; i <= NF; i++)
			if ($i ~ "^" word "[,.]?$" && $(i - 1) ~ /^[0-9]+$/)
				s += $(i - 1)
	} END { print s + 0 }' "$1"
}

tally() {
	passed=$((passed + $(count "$1" passed)))
	failed=$((failed + $(count "$1" failed)))
	skipped=$((skipped + $(count "$1" skipped)))
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
# Every boot of an isolated run is kept (ktap-bootNN.log) and checked for WARNs.
step kunit-x86_64-isolated make --no-print-directory kunit ARCH=x86_64 KUNIT_ARGS=--run_isolated=suite
step kunit-x86_64-no-pks-cpu make --no-print-directory kunit ARCH=x86_64 QEMU_CPU=qemu64
step selftests make --no-print-directory selftests
# The kernel's own mm selftests on the same kernel, enforcing against nopkstables.
step mm-selftests make --no-print-directory mm-selftests
# make matrix on three sshd hosts in network namespaces with a shared ccache (root):
# two UML rows and one x86_64 row, a host killed mid-build, a rebuild from the cache.
step matrix-hosts make --no-print-directory matrix-hosts-test
# The bench path must not rot: a quick run on the selftests' kernel, and compare
# on what it stored (against itself: nothing may be called a change).
step bench-smoke make --no-print-directory bench BENCH_WORKLOAD=quick
smoke=$(grep -o '^bench result: .*' "$logs/bench-smoke.log" | tail -n 1 | cut -d' ' -f3- || true)
if [[ -n $smoke ]]; then
	step compare-smoke make --no-print-directory compare "A=$smoke" "B=$smoke"
fi

if ((${#broken[@]})); then
	echo "failed steps: ${broken[*]}"
	# A step that failed without a test count (build error, lint) still fails the run.
	((failed > 0)) || failed=${#broken[@]}
	echo "test: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi
echo "test: $passed passed, $failed failed, $skipped skipped"
