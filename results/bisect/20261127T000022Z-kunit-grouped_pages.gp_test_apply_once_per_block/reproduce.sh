#!/usr/bin/env bash
# Reproduce bisect 20261127T000022Z-kunit-grouped_pages.gp_test_apply_once_per_block:
#   kunit:grouped_pages.gp_test_apply_once_per_block (REPEAT=1) on 3c9b872c79227e0591b70919e103f632fcb91c85 (planted: the regression (refill-protects-page-by-page))
#   and on its parent 84c42d11cad1b837ac3b9719e24ffb11d96b424a: the first must test bad, the parent good.
# Recorded: kernel base 6.12.117NAME (tarball-5822659e8ad3, {"kind": "tarball", "path": "/usr/src/linux-source-6.12.tar.xz", "package": "linux-source-6.12 6.12.117-1~deb12u1"}); arch=um, config=default, qemu_cpu=max, smp=2, memory_mb=1024, bench_memory_mb=2048, bench_mode=tcg, bench_workload=quick, kunit_timeout=600, selftest_timeout=900, cmd_timeout=3600;
# ON=overlay; harness ae90acb4662a1b0979751f8fd34d74446c13107d.
#
# Run it from anywhere, as root, with a clone of grouped-pages that holds these commits
# (git fetch them first): bash reproduce.sh [CLONE]   (default: the current directory's
# clone). It runs the recorded harness commit from a worktree of the clone, so the step
# is the one the bisect ran. GP_WORK (default ~/.cache/grouped-pages) holds its builds;
# ON=base also needs KERNEL_SRC=<kernel git tree holding the commits>. GP_HARNESS=<a ci/
# directory> runs that harness instead of the recorded one (say so when you report).
# Exit status: 0 reproduced, 1 not reproduced, 2 cannot run (missing commits or tools).
set -euo pipefail
clone=$(cd "${1:-.}" && git rev-parse --show-toplevel)
work=${GP_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/grouped-pages}
needed=" 3c9b872c79227e0591b70919e103f632fcb91c85 84c42d11cad1b837ac3b9719e24ffb11d96b424a"
[[ -n ${GP_HARNESS:-} ]] || needed="ae90acb4662a1b0979751f8fd34d74446c13107d $needed"
for sha in $needed; do
	if ! git -C "$clone" cat-file -e "$sha^{commit}" 2>/dev/null; then
		echo "error: $clone does not hold commit $sha: fetch it (git fetch <remote> $sha)" >&2
		exit 2
	fi
done
out="$clone/results/bisect-reproduce/20261127T000022Z-kunit-grouped_pages.gp_test_apply_once_per_block-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cat > "$out/plan.json" <<'PLAN'
{
  "bad": "aac60f8ebf4bb02c1c011e26d96cb7ad731918a4",
  "base": {
    "key": "tarball-5822659e8ad3",
    "origin": {
      "kind": "tarball",
      "package": "linux-source-6.12 6.12.117-1~deb12u1",
      "path": "/usr/src/linux-source-6.12.tar.xz"
    },
    "version": "6.12.117NAME"
  },
  "check": "kunit:grouped_pages.gp_test_apply_once_per_block",
  "commits": 9,
  "dir": null,
  "extra": {
    "bad_spec": "refs/planted/bisect",
    "date": "2026-11-27T00:00:22Z",
    "good_spec": "ae90acb4662a1b0979751f8fd34d74446c13107d",
    "host": "vm"
  },
  "good": "ae90acb4662a1b0979751f8fd34d74446c13107d",
  "harness_commit": "ae90acb4662a1b0979751f8fd34d74446c13107d",
  "harness_dirty": false,
  "id": "20261127T000022Z-kunit-grouped_pages.gp_test_apply_once_per_block",
  "on": "overlay",
  "overlay_commit": null,
  "overlay_worktree": null,
  "repeat": 1,
  "repeat_rule": "bad if any run is bad (a flaky failure is a failure); else skip if any run skipped; else good. Runs stop at the first bad, skip or abort.",
  "setup": {
    "arch": "um",
    "bench_memory_mb": 2048,
    "bench_mode": "tcg",
    "bench_workload": "quick",
    "cmd_timeout": 3600,
    "config": "default",
    "kunit_timeout": 600,
    "memory_mb": 1024,
    "qemu_cpu": "max",
    "selftest_timeout": 900,
    "smp": 2
  },
  "started_epoch": 0.0,
  "step_work": null,
  "worktree": null
}
PLAN
harness_ci=${GP_HARNESS:-$work/worktrees/harness-ae90acb4662a/ci}
if [[ -z ${GP_HARNESS:-} && ! -d $harness_ci ]]; then
	git -C "$clone" worktree add --quiet --detach "${harness_ci%/ci}" ae90acb4662a1b0979751f8fd34d74446c13107d
fi
step() {
	PYTHONPATH="$harness_ci" /usr/bin/python3 -m gptool --repo "$clone" --work "$work" \
		bisect-step --plan "$out/plan.json" --out "$out" --commit "$1" --label "$2"
}
status=0
step 3c9b872c79227e0591b70919e103f632fcb91c85 'first bad' || status=$?
bad_status=$status
status=0
step 84c42d11cad1b837ac3b9719e24ffb11d96b424a 'parent' || status=$?
parent_status=$status
echo "first bad 3c9b872c7922: exit $bad_status (1 = bad); parent 84c42d11cad1: exit $parent_status (0 = good)"
echo "steps: $out/steps.json"
if ((bad_status == 128 || parent_status == 128)); then
	echo "NOT REPRODUCED: a step aborted (the machine failed): see $out/steps.json" >&2
	exit 2
fi
if ((bad_status == 1 && parent_status == 0)); then
	echo "REPRODUCED: 3c9b872c7922 is bad and its parent 84c42d11cad1 is good under kunit:grouped_pages.gp_test_apply_once_per_block"
	exit 0
fi
echo "NOT REPRODUCED under kunit:grouped_pages.gp_test_apply_once_per_block" >&2
exit 1
