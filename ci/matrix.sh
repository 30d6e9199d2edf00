#!/usr/bin/env bash
# Run the CI matrix (ci/matrix) with GNU parallel: here, or with HOSTS=<sshloginfile> on
# build hosts over ssh. Rows start longest first (ci/matrix-times.json and earlier job
# logs), so the critical path starts first. Every row runs; each row's log and record
# (<row>.json), and from a host its result directories, land in results/matrix-<time>/,
# which ends with one table saying how each row went and where it ran.
#
# Arguments name rows (ARCH-CONFIG-CPU, as in the table): only those run (make cell,
# make matrix ROWS=...). MATRIX_JOBS: rows at a time here, or on each host (default 1).
# With HOSTS, a host gets the commit as a git bundle and the uncommitted changes as a
# diff (no access to our remote needed), runs ci/deps and the row in its own GP_WORK,
# and a row whose host dies or cannot run it is tried on another host (--retries 3).
# JOBS, CCACHE_REMOTE_STORAGE, KUNIT_TIMEOUT, SELFTEST_TIMEOUT, SMP and MEMORY, when
# set, are passed to the hosts.
#
# Exit status (errors.EXIT_STATUS, of the worst row): 0 every row passed, 1 a row
# failed, 3 a row could not be run anywhere (infrastructure), 2 bad arguments.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
jobs=${MATRIX_JOBS:-1}
hosts=${HOSTS:-}
gptool() { PYTHONPATH="$repo/ci" /usr/bin/python3 -m gptool --repo "$repo" "$@"; }

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
if [[ -n $hosts ]] && ! grep -qv '^[[:space:]]*\(#\|$\)' "$hosts" 2>/dev/null; then
	echo "error: HOSTS=$hosts is not a file of sshlogins: it must name a GNU parallel" \
		"--sshloginfile with one host a line (root@build1, 'ssh -p 2222 root@build2'," \
		"':' for this machine)" >&2
	exit 2
fi

mkdir -p results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
joblog="results/matrix-$stamp.log"
logs="results/matrix-$stamp"
mkdir -p "$logs"
grep -v '^$' <<<"$selected" | gptool matrix-plan --order >"$logs/rows"
rows=$(wc -l <"$logs/rows")

# A row here (no HOSTS, or the sshlogin ':'), or through ci/matrix-remote.sh on a host,
# which finds the bundle GNU parallel sent to its work dir.
here=$(printf 'cd %q && PYTHONPATH=%q /usr/bin/python3 -m gptool --repo %q' \
	"$repo" "$repo/ci" "$repo")
here+=$(printf ' matrix-row --out %q --host local' "$repo/$logs")
job="if [ -e gp-matrix.bundle ]; then bash gp-matrix-remote.sh $stamp {1} {2} {3};
else $here {1} {2} {3}; fi"
args=(--jobs "$jobs" --colsep ' ' --joblog "$joblog" --tagstring '{1}-{2}-{3}' --line-buffer)
if [[ -n $hosts ]]; then
	send=$(mktemp -d)
	trap 'rm -rf "$send"' EXIT
	git bundle create "$send/gp-matrix.bundle" HEAD 2>/dev/null
	# Everything that differs from HEAD, untracked files too, through an index of our own.
	GIT_INDEX_FILE="$send/index" git read-tree HEAD
	GIT_INDEX_FILE="$send/index" git add -A -- . ':!results'
	GIT_INDEX_FILE="$send/index" git diff --cached --binary HEAD >"$send/gp-matrix.diff"
	cp ci/matrix-remote.sh "$send/gp-matrix-remote.sh"
	args+=(--sshloginfile "$hosts" --filter-hosts --retries 3 --workdir ".gp-matrix/$stamp"
		--cleanup)
	for file in gp-matrix.bundle gp-matrix.diff gp-matrix-remote.sh; do
		args+=(--basefile "$send/./$file")
	done
	for file in '{1}-{2}-{3}.log' '{1}-{2}-{3}.json' '{1}-{2}-{3}'; do
		args+=(--return "$repo/$logs/./$file")
	done
	for var in JOBS CCACHE_REMOTE_STORAGE KUNIT_TIMEOUT SELFTEST_TIMEOUT SMP MEMORY; do
		if [[ -n ${!var:-} ]]; then
			export "${var?}"
			args+=(--env "$var")
		fi
	done
	echo "matrix: $rows rows on the hosts of $hosts, $jobs at a time on each;" \
		"longest first; each row's log in $logs/"
else
	echo "matrix: $rows rows, $jobs at a time; longest first; each row's log in $logs/"
fi
parallel "${args[@]}" "$job" <"$logs/rows" 2>&1 | tee "$logs/console.log" || true
echo "matrix: job log in $joblog"
status=0
gptool matrix-table --joblog "$joblog" --logs "$repo/$logs" --matrix "$logs/rows" \
	>"$logs/table.txt" || status=$?
cat "$logs/table.txt"
exit "$status"
