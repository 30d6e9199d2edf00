#!/usr/bin/env bash
# `make test`: the harness's own tests, lint, the KUnit suites on UML and on
# x86_64 under QEMU (with and without PKS in the CPU), the kselftests in QEMU,
# and a bench smoke run with a compare of its result. Every step runs even when
# one fails; the last line sums the test cases of all steps. Each step runs through
# ci/status.sh, so its exit status is the harness's own (README "Exit statuses");
# the run exits 1 if the code failed anywhere, else 4 if the harness or the machine
# failed (or a step's request was refused), else 3 if a step was inconclusive.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0 failed=0 skipped=0 broken=() statuses=()

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

# step NAME TARGET [VAR=value...]: one make target, through ci/status.sh.
step() {
	local name=$1 log="$logs/$1.log" status=0
	shift
	echo "=== $name: make $*"
	bash ci/status.sh "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
	tally "$log"
	if ((status != 0)); then
		broken+=("$name (exit $status)")
		statuses+=("$status")
	fi
}

# The run's status from its steps': the code's failure first, then the harness's.
overall() {
	local status
	for status in 1 4 2 3; do
		if [[ " ${statuses[*]} " == *" $status "* ]]; then
			((status == 2)) && status=4 # a request of this script refused: its own fault
			echo "$status"
			return
		fi
	done
	echo 0
}

step pytest pytest
step shellcheck shellcheck
step checkpatch checkpatch
step kunit-um kunit ARCH=um
step kunit-x86_64 kunit ARCH=x86_64
# Every boot of an isolated run is kept (ktap-bootNN.log) and checked for WARNs.
step kunit-x86_64-isolated kunit ARCH=x86_64 KUNIT_ARGS=--run_isolated=suite
step kunit-x86_64-no-pks-cpu kunit ARCH=x86_64 QEMU_CPU=qemu64
step selftests selftests
# The kernel's own mm selftests on the same kernel, enforcing against nopkstables.
step mm-selftests mm-selftests
# make matrix on three sshd hosts in network namespaces with a shared ccache (root):
# two UML rows and one x86_64 row, a host killed mid-build, a rebuild from the cache.
step matrix-hosts matrix-hosts-test
# The bench path must not rot: a quick run on the selftests' kernel, and compare
# on what it stored (against itself: nothing may be called a change).
step bench-smoke bench BENCH_WORKLOAD=quick
smoke=$(grep -o '^bench result: .*' "$logs/bench-smoke.log" | tail -n 1 | cut -d' ' -f3- || true)
if [[ -n $smoke ]]; then
	step compare-smoke compare "A=$smoke" "B=$smoke"
fi

status=$(overall)
if [[ -n ${OUTCOME:-} ]]; then
	printf '{"status": %d, "kind": "test"}\n' "$status" >"$OUTCOME"
fi
if ((${#broken[@]})); then
	echo "failed steps: ${broken[*]}"
	# A step that failed without a test count (build error, lint) still fails the run.
	((failed > 0)) || failed=${#broken[@]}
	echo "test: $passed passed, $failed failed, $skipped skipped"
	exit "$status"
fi
echo "test: $passed passed, $failed failed, $skipped skipped"
