#!/usr/bin/env bash
# Show that `make compare` names a planted performance regression. Commits
# ci/planted-bugs/NAME.patch on top of HEAD in a throwaway worktree (kept as
# refs/planted/NAME, never on a branch), then runs `make compare A=HEAD
# B=refs/planted/NAME` and passes only if compare fails naming the metric in the
# patch's "Expected: bench METRIC regression" line among the regressions.
#   usage: ci/planted-regression.sh NAME [RUNS]   (RUNS per side, default 5)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-}
runs=${2:-5}
patch="$repo/ci/planted-bugs/$name.patch"
if [[ -z $name || ! -f $patch ]]; then
	echo "usage: ci/planted-regression.sh NAME [RUNS]; NAME is one of:" \
		"$(grep -l 'Expected: bench' "$repo"/ci/planted-bugs/*.patch | xargs -n1 basename | sed 's/\.patch$//' | tr '\n' ' ')" >&2
	exit 2
fi
expected=$(grep -o 'Expected: bench [a-z0-9_.]*' "$patch" | head -n 1 | cut -d' ' -f3)
if [[ -z $expected ]]; then
	echo "error: $patch names no expected metric (want 'Expected: bench METRIC regression')" >&2
	exit 2
fi
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
	echo "note: uncommitted changes are not part of A=HEAD or of the planted commit" >&2
fi

scratch=$(mktemp -d)
cleanup() {
	git -C "$repo" worktree remove --force "$scratch/wt" 2>/dev/null || true
	rm -rf "$scratch"
}
trap cleanup EXIT
git -C "$repo" worktree add --quiet --detach "$scratch/wt" HEAD
patch -d "$scratch/wt" -p1 --quiet < "$patch"
git -C "$scratch/wt" -c user.name=planted -c user.email=planted@grouped-pages.invalid \
	commit --quiet -am "planted regression: $name" -m "From ci/planted-bugs/$name.patch; never to be merged."
planted=$(git -C "$scratch/wt" rev-parse HEAD)
git -C "$repo" update-ref "refs/planted/$name" "$planted"
echo "planted regression $name: commit $planted (refs/planted/$name) on top of $(git -C "$repo" rev-parse --short=12 HEAD)"

log="$scratch/compare.log"
set +e
make -C "$repo" --no-print-directory compare A=HEAD "B=refs/planted/$name" "RUNS=$runs" 2>&1 |
	tee "$log"
status=${PIPESTATUS[0]}
set -e
report=$(grep -o '^compare report: .*' "$log" | tail -n 1 | cut -d' ' -f3- || true)
if [[ -z $report || ! -f $report/report.json ]]; then
	echo "planted regression $name: NOT shown, compare wrote no report (status $status)"
	exit 1
fi
# The report, not the printed table, says which metrics regressed.
regressions=$(/usr/bin/python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["regressions"]))' \
	"$report/report.json")
if grep -qxF "$expected" <(tr ' ' '\n' <<<"$regressions"); then
	echo "planted regression $name: caught, compare names $expected among: $regressions (report: $report)"
elif [[ -n $regressions ]]; then
	echo "planted regression $name: compare found regressions, but not $expected: $regressions"
	exit 1
else
	echo "planted regression $name: NOT caught, compare found no regression (report: $report)"
	exit 1
fi
