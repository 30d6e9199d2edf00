#!/usr/bin/env bash
# Show that `make bisect` finds a planted regression with real kernels, and that its
# reproduce.sh reproduces it. Builds a throwaway history of 9 commits on top of HEAD
# (kept as refs/planted/bisect, never on a branch):
#   c1 c2 c3   harmless edits of kernel/mm/grouped_pages.c (each step rebuilds it)
#   c4         does not build (must be skipped, never blamed)
#   c5         builds again
#   c6         plants ci/planted-bugs/refill-protects-page-by-page.patch
#   c7 c8 c9   harmless edits
# then bisects HEAD..c9 with each named check and passes only if every bisect names
# c6, every step that tested c4 said skip, and every reproduce.sh says REPRODUCED.
#   usage: ci/planted-bisect.sh [kunit-um|kunit-x86_64|selftest|bench]...  (default: all)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
declare -A check=(
	[kunit-um]='kunit:grouped_pages.gp_test_apply_once_per_block'
	[kunit-x86_64]='kunit:grouped_pages.gp_test_x86_block_stays_mapped_large'
	[selftest]='selftest:refill_splits_nothing'
	[bench]='bench:frag.ro.n1024.grouped.splits>0'
)
declare -A arch=([kunit-um]=um [kunit-x86_64]=x86_64 [selftest]=x86_64 [bench]=x86_64)
wanted=("$@")
if ((${#wanted[@]} == 0)); then
	wanted=(kunit-um kunit-x86_64 selftest bench)
fi
for name in "${wanted[@]}"; do
	if [[ -z ${check[$name]:-} ]]; then
		echo "error: unknown check '$name': valid are ${!check[*]}" >&2
		exit 2
	fi
done
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
	echo "note: uncommitted changes are not part of the planted history" >&2
fi

base=$(git -C "$repo" rev-parse HEAD)
scratch=$(mktemp -d)
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	git -C "$repo" worktree remove --force "$scratch/wt" 2>/dev/null || true
	rm -rf "$scratch"
}
trap cleanup EXIT
git -C "$repo" worktree add --quiet --detach "$scratch/wt" "$base"
wt=$scratch/wt
source_file=kernel/mm/grouped_pages.c
commit() {
	git -C "$wt" -c user.name='planted history' -c user.email=planted@invalid \
		commit --quiet -a -m "$1"
	git -C "$wt" rev-parse HEAD
}
harmless() {
	echo "/* planted history: harmless edit $1 */" >>"$wt/$source_file"
	commit "planted: harmless edit $1"
}
shas=()
shas+=("$(harmless 1)")
shas+=("$(harmless 2)")
shas+=("$(harmless 3)")
echo 'this line does not compile;' >>"$wt/$source_file"
shas+=("$(commit 'planted: a commit that does not build')")
sed -i '/^this line does not compile;$/d' "$wt/$source_file"
shas+=("$(commit 'planted: builds again')")
patch -d "$wt" -p1 --quiet <"$repo/ci/planted-bugs/refill-protects-page-by-page.patch"
shas+=("$(commit 'planted: the regression (refill-protects-page-by-page)')")
shas+=("$(harmless 7)")
shas+=("$(harmless 8)")
shas+=("$(harmless 9)")
git -C "$repo" update-ref refs/planted/bisect "${shas[8]}"
unbuildable=${shas[3]}
regression=${shas[5]}
echo "planted history on ${base:0:12}: refs/planted/bisect = ${shas[8]:0:12};" \
	"does not build: ${unbuildable:0:12}; regression: ${regression:0:12}"

status=0
report=()
for name in "${wanted[@]}"; do
	log=$scratch/$name.log
	echo "=== make bisect CHECK=${check[$name]} ARCH=${arch[$name]}"
	started=$SECONDS
	make -C "$repo" --no-print-directory bisect GOOD="$base" BAD=refs/planted/bisect \
		CHECK="${check[$name]}" ARCH="${arch[$name]}" 2>&1 | tee "$log" || true
	took=$((SECONDS - started))
	dir=$(sed -n 's/^results: //p' "$log" | tail -n 1)
	if [[ -z $dir || ! -f $dir/summary.json ]]; then
		echo "FAIL $name: the bisect left no summary (log: $log)"
		report+=("$name: FAIL (no summary)")
		status=1
		continue
	fi
	verdict=$("$python" - "$dir" "$regression" "$unbuildable" <<'EOF'
import json, sys
from pathlib import Path
d, regression, unbuildable = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
summary = json.loads((d / 'summary.json').read_text())
steps = json.loads((d / 'steps.json').read_text())
problems = []
if summary.get('first_bad') != regression:
    problems.append(f"first bad {str(summary.get('first_bad'))[:12]}, want {regression[:12]} "
                    f"({summary['status']}: {summary.get('reason')})")
tested = [s['verdict'] for s in steps if s['commit'] == unbuildable]
if any(v != 'skip' for v in tested):
    problems.append(f'the commit that does not build was judged {tested}')
searched = [s for s in steps if s['label'] == 'bisect' and s['verdict'] in ('good', 'bad')]
mean = sum(s['duration_s'] for s in searched) / len(searched) if searched else 0
print(('FAIL ' + '; '.join(problems)) if problems else
      f"ok {len(steps)} steps, {'unbuildable commit skipped' if tested else 'unbuildable commit not visited'}, "
      f"mean step {mean:.0f} s")
EOF
)
	reproduced=FAIL
	if bash "$dir/reproduce.sh" "$repo" >"$scratch/$name.repro" 2>&1 &&
		grep -q '^REPRODUCED' "$scratch/$name.repro"; then
		reproduced=ok
	fi
	tail -n 3 "$scratch/$name.repro"
	if [[ $verdict != ok* || $reproduced != ok ]]; then
		status=1
	fi
	report+=("$name (${check[$name]}): bisect $verdict; reproduce.sh $reproduced; ${took} s; $dir")
done
echo
echo "planted bisect of ${regression:0:12} (refs/planted/bisect):"
printf '  %s\n' "${report[@]}"
exit "$status"
