#!/usr/bin/env bash
# Run a make target and exit with the harness's own status, which make hides (it exits
# 2 for any failed recipe): 0 passed, 1 the code under test failed, 2 usage error,
# 3 inconclusive, 4 the harness or the machine failed (README "Exit statuses").
# GitLab jobs and ci/test-all.sh call it; its last line says the status and its meaning.
#   bash ci/status.sh TARGET [VAR=value...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${1:?usage: ci/status.sh TARGET [VAR=value...]}
outcome=$(mktemp)
trap 'rm -f "$outcome"' EXIT

say() {
	local meaning
	case $1 in
	0) meaning='passed' ;;
	1) meaning='the code under test failed' ;;
	2) meaning='usage error' ;;
	3) meaning='inconclusive' ;;
	*) meaning='the harness or the machine failed' ;;
	esac
	echo "make $target: exit $1 ($meaning)" >&2
	exit "$1"
}

# The packages first: a machine that cannot install them has failed, not the code.
deps=()
[[ $target == pytest* || $target == test ]] && deps=(--tests)
bash "$repo/ci/deps" "${deps[@]}" || say 4

status=0
make --no-print-directory -C "$repo" OUTCOME="$outcome" "$@" || status=$?
if ((status == 0)); then
	say 0
fi
# gptool (and the Makefile's own argument checks) wrote how the run ended. A 0 there
# while make failed came from a verb nested in a recipe that failed after it (a test
# suite that runs matrices): never a pass.
if [[ -s $outcome ]]; then
	status=$(sed -n 's/.*"status": *\([0-9]*\).*/\1/p' "$outcome" | head -n 1)
	[[ ${status:-4} != 0 ]] && say "${status:-4}"
fi
# A recipe that is not gptool's failed: a lint or a test suite, or make itself.
say 1
