#!/usr/bin/env bash
# Run the CI matrix (ci/matrix) here with GNU parallel. Kernel builds already use
# every core, so one row at a time unless MATRIX_JOBS says otherwise. Every row
# runs; the exit status says whether all passed, and results/matrix-<time>.log
# lists each row's outcome. Arguments name rows (ARCH-CONFIG-CPU, as in the
# table): only those run, the same way (make cell ROW=...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
jobs=${MATRIX_JOBS:-1}
all_rows=$(grep -v '^#' ci/matrix | grep -v '^$')
selected=$all_rows
if (($# > 0)); then
	selected=
	for row in "$@"; do
		line=$(awk -v row="$row" '{ name = $1 "-" $2 "-" $3 } name == row' <<<"$all_rows")
		if [[ -z $line ]]; then
			echo "error: no matrix row '$row'; valid are:" \
				"$(awk '{ printf "%s-%s-%s ", $1, $2, $3 }' <<<"$all_rows")" >&2
			exit 2
		fi
		selected+=$line$'\n'
	done
fi
mkdir -p results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
joblog="results/matrix-$stamp.log"
# Each row's own output, for the table at the end: <ARCH>-<CONFIG>-<CPU>.log.
logs="results/matrix-$stamp"
mkdir -p "$logs"
rows=$(grep -vc '^$' <<<"$selected")
grep -v '^$' <<<"$selected" >"$logs/rows"
echo "matrix: $rows rows, $jobs at a time; each row's log in $logs/"
status=0
grep -v '^$' <<<"$selected" |
	parallel --jobs "$jobs" --colsep ' ' --joblog "$joblog" --tag --line-buffer \
		"echo matrix: row {#} of $rows, started at \$(date -u +%T);" \
		"if [[ {1} == selftests ]]; then" \
		"make --no-print-directory selftests CONFIG={2} QEMU_CPU={3};" \
		"else make --no-print-directory kunit ARCH={1} CONFIG={2} QEMU_CPU={3}; fi 2>&1 |" \
		"tee $logs/{1}-{2}-{3}.log; exit \${PIPESTATUS[0]}" || status=$?
echo "matrix: job log in $joblog"
PYTHONPATH="$repo/ci" /usr/bin/python3 -m gptool --repo "$repo" matrix-table \
	--joblog "$joblog" --logs "$logs" --matrix "$logs/rows" | tee "$logs/table.txt"
awk 'NR > 1 { total++; if ($7 == 0) ok++ } END { printf "matrix: %d passed, %d failed\n", ok, total - ok }' "$joblog"
exit "$status"
