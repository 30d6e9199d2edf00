#!/usr/bin/env bash
# Run the CI matrix (ci/matrix) here with GNU parallel. Kernel builds already use
# every core, so one row at a time unless MATRIX_JOBS says otherwise. Every row
# runs; the exit status says whether all passed, and results/matrix-<time>.log
# lists each row's outcome.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
jobs=${MATRIX_JOBS:-1}
mkdir -p results
joblog="results/matrix-$(date -u +%Y%m%dT%H%M%SZ).log"
status=0
grep -v '^#' ci/matrix | grep -v '^$' |
	parallel --jobs "$jobs" --colsep ' ' --joblog "$joblog" --tag --line-buffer \
		make --no-print-directory kunit 'ARCH={1}' 'CONFIG={2}' 'QEMU_CPU={3}' || status=$?
echo "matrix: job log in $joblog"
awk 'NR > 1 { total++; if ($7 == 0) ok++ } END { printf "matrix: %d passed, %d failed\n", ok, total - ok }' "$joblog"
exit "$status"
