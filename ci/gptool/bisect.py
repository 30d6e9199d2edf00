"""make bisect: the first commit where a check goes bad, and a script that shows it again.

`git bisect run` drives the search in a worktree of its own (the user's checkout, its
prepared kernel tree and build directories are never touched: steps build in
GP_WORK/bisect). Each step is `gptool bisect-step`, which runs the check (checks.py)
REPEAT times on the commit git checked out, and exits as git expects: 0 good, 1 bad,
125 skip (the commit cannot be tested), 128 abort (the machine failed).

Before the search, GOOD must test good and BAD must test bad, with the same step: a
bisect between two commits that do not differ is noise, and says so at once.

ON=overlay (the default) bisects our commits on the recorded kernel base; ON=base
bisects the commits of KERNEL_SRC (a kernel git tree) with our overlay held at the
current commit: a patch of ours that stops applying makes that kernel commit a skip.

Everything goes to results/bisect/<id>/: plan.json (what was asked, how it ran),
steps.json (one entry per step: commit, verdict, how it was reached, duration, the
result directory of each run), bisect.log (git bisect log), summary.json and
summary.md (the first bad commit and its subject), and reproduce.sh.
"""
import datetime
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import checks, kbuild, provenance, tree
from .errors import HARNESS_FAILED, INCONCLUSIVE, PASSED, USAGE_ERROR, HarnessError
from .fsutil import reserve_dir, write_atomic, write_json_atomic
from .revisions import HARNESS_CI, ensure_worktree, git, harness_env, resolve_rev

ONS = ('overlay', 'base')
EXIT = {checks.GOOD: 0, checks.BAD: 1, checks.SKIP: 125, checks.ABORT: 128}
# How a bisect ended, and the exit status of `make bisect` (README "Exit statuses").
STATUS = {
    'found': PASSED,                 # the first bad commit
    'ambiguous': INCONCLUSIVE,       # skipped commits hide it
    'untestable-end': INCONCLUSIVE,  # GOOD or BAD cannot be tested
    'wrong-ends': USAGE_ERROR,       # GOOD tested bad or BAD tested good: nothing to search
    'aborted': HARNESS_FAILED,       # the machine or the harness failed
}
# Below this, a step aborts rather than fail half-way through a kernel build.
MIN_FREE_BYTES = 3 << 30


@dataclass
class BisectRequest:
    repo: Path
    work: Path
    good: str
    bad: str
    check: str
    repeat: int
    setup: checks.Setup
    results: Path
    on: str = 'overlay'
    kernel_src: str | None = None


@dataclass
class Plan:
    """What a step needs; plan.json in the bisect directory. reproduce.sh carries a copy
    without the local paths (dir, worktrees), which its steps derive from where they run."""
    id: str
    check: str
    repeat: int
    setup: dict[str, Any]
    on: str
    good: str
    bad: str
    harness_commit: str
    harness_dirty: bool
    base: dict[str, Any]
    overlay_commit: str | None = None    # ON=base: our commit, held fixed
    commits: int = 0
    started_epoch: float = 0.0
    dir: str | None = None
    worktree: str | None = None          # where git bisect checks commits out
    overlay_worktree: str | None = None  # ON=base: our overlay at overlay_commit
    step_work: str | None = None
    repeat_rule: str = ''
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def estimate(self) -> int:
        return max(1, math.ceil(math.log2(self.commits))) if self.commits > 1 else 1


def load_plan(path: Path) -> Plan:
    try:
        return Plan(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise HarnessError(f'{path} is not a bisect plan: {err}', 2) from err


def stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def slug(text: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '-', text).strip('-')[:60]


def subject(repo: Path, sha: str) -> str:
    return git(repo, 'log', '-1', '--format=%s', sha, check=False)


def describe_base(work: Path, kernel_src: str | None) -> dict[str, Any]:
    base = tree.resolve_base(kernel_src)
    extracted = work / 'trees' / base.key / 'linux'
    version = base.version or (tree.kernel_version(extracted) if extracted.is_dir() else '')
    return {'key': base.key, 'version': version, 'origin': base.origin}


# ---------------------------------------------------------------- one step

def check_machine(work: Path, results: Path) -> str | None:
    """Why the machine cannot run a step, or None."""
    for where in (work, results):
        where.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(where).free
        if free < MIN_FREE_BYTES:
            return f'disk almost full: {free >> 20} MiB free under {where} (a step needs 3 GiB)'
    return None


def read_steps(plan_dir: Path) -> list[dict[str, Any]]:
    """steps.json: one entry per step tested so far."""
    path = plan_dir / 'steps.json'
    steps: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
    return steps


def record_step(plan_dir: Path, entry: dict[str, Any]) -> None:
    """Append @entry to steps.json (rewritten whole, atomically)."""
    steps = read_steps(plan_dir)
    entry['number'] = len(steps) + 1
    steps.append(entry)
    write_json_atomic(plan_dir / 'steps.json', steps)


def step(plan_path: Path, commit: str | None, label: str | None, repo: Path | None = None,
         work: Path | None = None, out: Path | None = None) -> int:
    """Test one commit: the worktree's HEAD (under git bisect run), or @commit (the checks
    of GOOD and BAD, and reproduce.sh); exit status as git bisect run reads it."""
    plan = load_plan(plan_path)
    check = checks.parse(plan.check)
    setup = checks.Setup(**plan.setup)
    step_work = Path(plan.step_work) if plan.step_work else (work or Path.cwd()) / 'bisect'
    if plan.dir:
        record_dir = Path(plan.dir)
    elif out is not None:
        record_dir = out
    else:
        raise HarnessError('bisect-step: a plan without a bisect directory needs --out', 2)
    record_dir.mkdir(parents=True, exist_ok=True)
    source, overlay = source_and_overlay(plan, commit, repo, work)
    sha = git(source, 'rev-parse', 'HEAD')
    started = time.monotonic()
    done = read_steps(record_dir)
    step_dir = record_dir / 'steps' / f'{len(done) + 1:02d}-{sha[:12]}'
    title = subject(source, sha)
    # Steps git bisect asks for are 'bisect' in steps.json; the others carry their label.
    recorded = label or 'bisect'
    if label is None:
        searched = sum(1 for entry in done if entry['label'] == 'bisect')
        label = f'step {searched + 1} of about {plan.estimate}'
    say(plan, f'{label}: testing {sha[:12]} {title}')
    # ON=base: the commit under test is the kernel's; our code is the overlay's worktree.
    ours, kernel = (overlay, source) if plan.on == 'base' else (source, None)
    assert ours is not None
    runs: list[checks.Run] = []
    problem = check_machine(step_work, record_dir)
    if problem:
        runs.append(checks.Run(checks.ABORT, problem, '', 0.0))
    else:
        for attempt in range(1, plan.repeat + 1):
            if plan.repeat > 1:
                say(plan, f'  run {attempt} of {plan.repeat}')
            runs.append(checks.run_once(check, setup, ours, step_work,
                                        step_dir / f'run-{attempt}', kernel_src=kernel))
            if checks.finished(check, runs):
                break
        if plan.on == 'base':
            forget_base_tree(step_work, sha)
    verdict, reason = checks.combine(check, runs)
    took = round(time.monotonic() - started, 1)
    record_step(record_dir, {
        'label': recorded, 'commit': sha, 'subject': title, 'verdict': verdict,
        'reason': reason, 'duration_s': took, 'exit_status': EXIT[verdict],
        'runs': [checks.as_dict(run) for run in runs]})
    say(plan, f'{label}: {sha[:12]} is {verdict.upper()} ({reason}) '
        f'in {took:.0f} s; logs: {step_dir}')
    return EXIT[verdict]


def say(plan: Plan, message: str) -> None:
    elapsed = int(time.time() - plan.started_epoch) if plan.started_epoch else 0
    print(f'[bisect {elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] '
          f'{message}', flush=True)


def source_and_overlay(plan: Plan, commit: str | None, repo: Path | None,
                       work: Path | None) -> tuple[Path, Path | None]:
    """The worktree holding the commit under test and, ON=base, our overlay's worktree."""
    if commit is None:
        if not plan.worktree:
            raise HarnessError('bisect-step: this plan has no bisect worktree: give --commit', 2)
        overlay = Path(plan.overlay_worktree) if plan.overlay_worktree else None
        return Path(plan.worktree), overlay
    if repo is None or work is None:
        raise HarnessError('bisect-step --commit needs the repo and GP_WORK', 2)
    if plan.on == 'base':
        kernel_src = os.environ.get('KERNEL_SRC')
        if not kernel_src:
            raise HarnessError('this bisect was ON=base: set KERNEL_SRC to a kernel git tree '
                               f'that holds {commit}', 2)
        kernel = Path(kernel_src).expanduser().resolve()
        source, _ = ensure_worktree(kernel, work / 'bisect' / 'kernel',
                                    resolve_rev(kernel, commit, 'commit'))
        assert plan.overlay_commit
        overlay, _ = ensure_worktree(repo, work, resolve_rev(repo, plan.overlay_commit, 'overlay'))
        return source, overlay
    source, _ = ensure_worktree(repo, work, resolve_rev(repo, commit, 'commit'))
    return source, None


def forget_base_tree(step_work: Path, sha: str) -> None:
    """ON=base: each kernel commit is a tree and a build of its own; keep the disk."""
    key = f'git-{sha[:12]}'
    for part in ('trees', 'build'):
        shutil.rmtree(step_work / part / key, ignore_errors=True)


# ---------------------------------------------------------------- the search

def validate(req: BisectRequest) -> checks.Check:
    check = checks.parse(req.check)
    if req.repeat < 1:
        raise HarnessError(f'REPEAT={req.repeat}: give a count of runs per step, 1 or more', 2)
    if req.on not in ONS:
        raise HarnessError(f'ON={req.on!r}: valid are overlay (our commits, the default) and '
                           'base (the commits of KERNEL_SRC, our overlay held fixed)', 2)
    if req.on == 'base' and not req.kernel_src:
        raise HarnessError('ON=base bisects a kernel git tree: set KERNEL_SRC=<path>', 2)
    if check.kind == 'kunit':
        kbuild.check_choice(req.repo, req.setup.arch, req.setup.config)
    elif check.kind in ('selftest', 'bench'):
        kbuild.check_choice(req.repo, 'x86_64', req.setup.config)
    return check


def count_commits(req: BisectRequest, source: Path, good: str, bad: str) -> int:
    """Commits in GOOD..BAD, or HarnessError(2) if that is no range to bisect."""
    if subprocess.run(['git', '-C', str(source), 'merge-base', '--is-ancestor', good, bad],
                      capture_output=True).returncode != 0:
        raise HarnessError(f'GOOD={req.good} ({good[:12]}) is not an ancestor of BAD={req.bad} '
                           f'({bad[:12]}): bisect needs GOOD older than BAD on one history', 2)
    commits = int(git(source, 'rev-list', '--count', f'{good}..{bad}'))
    if commits == 0:
        raise HarnessError(f'GOOD={req.good} and BAD={req.bad} are the same commit', 2)
    return commits


def run(req: BisectRequest) -> int:
    check = validate(req)
    source = Path(req.kernel_src).expanduser().resolve() if req.on == 'base' else req.repo
    good = resolve_rev(source, req.good, 'GOOD')
    bad = resolve_rev(source, req.bad, 'BAD')
    commits = count_commits(req, source, good, bad)
    # The harness is the instrument: the commit it runs from, not the one it tests.
    harness = provenance.repo_commit(HARNESS_CI.parent)
    plan_dir = reserve_dir(req.results / 'bisect', f'{stamp()}-{slug(check.spec)}')
    bisect_id = plan_dir.name
    worktrees = req.work / 'worktrees'
    worktree = worktrees / f'bisect-{bisect_id}'
    plan = Plan(
        id=bisect_id, check=check.spec, repeat=req.repeat, setup=asdict(req.setup), on=req.on,
        good=good, bad=bad, harness_commit=str(harness['commit']),
        harness_dirty=bool(harness['dirty']), base=describe_base(req.work, req.kernel_src),
        overlay_commit=git(req.repo, 'rev-parse', 'HEAD') if req.on == 'base' else None,
        commits=commits, started_epoch=time.time(), dir=str(plan_dir), worktree=str(worktree),
        step_work=str(req.work / 'bisect'), repeat_rule=checks.REPEAT_RULE[check.kind],
        extra={'good_spec': req.good, 'bad_spec': req.bad, 'host': os.uname().nodename,
               'date': provenance.iso_date()})
    plan_path = plan_dir / 'plan.json'
    git(source, 'worktree', 'prune')
    git(source, 'worktree', 'add', '--quiet', '--detach', str(worktree), bad)
    if req.on == 'base':
        overlay = worktrees / f'bisect-{bisect_id}-overlay'
        git(req.repo, 'worktree', 'add', '--quiet', '--detach', str(overlay), str(plan.overlay_commit))
        plan.overlay_worktree = str(overlay)
    write_json_atomic(plan_path, asdict(plan))
    say(plan, f'bisect {check.spec}: {commits} commits from GOOD={req.good} ({good[:12]}) to '
        f'BAD={req.bad} ({bad[:12]}), about {plan.estimate} steps after checking both ends; '
        f'REPEAT={req.repeat}; results: {plan_dir}')
    if harness['dirty']:
        say(plan, 'note: this checkout has uncommitted changes; the harness that runs the '
            'steps includes them, reproduce.sh will use its commit')
    try:
        status, first_bad, candidates, reason = search(plan, plan_path, source, good, bad)
    finally:
        log = git(worktree, 'bisect', 'log', check=False)
        write_atomic(plan_dir / 'bisect.log', (log + '\n').encode())
        git(worktree, 'bisect', 'reset', '--quiet', check=False)
        git(source, 'worktree', 'remove', '--force', str(worktree), check=False)
        if plan.overlay_worktree:
            git(req.repo, 'worktree', 'remove', '--force', plan.overlay_worktree, check=False)
    summary = summarize(plan, source, status, first_bad, candidates, reason)
    print(summary['text'], flush=True)
    return STATUS[status]


def search(plan: Plan, plan_path: Path, source: Path, good: str,
           bad: str) -> tuple[str, str | None, list[str], str]:
    """(status, first bad commit, candidates when skips hide it, why) of the search."""
    assert plan.worktree
    worktree = Path(plan.worktree)
    for label, sha, wanted in (('GOOD', good, checks.GOOD), ('BAD', bad, checks.BAD)):
        git(worktree, 'checkout', '--quiet', '--detach', sha)
        status = step(plan_path, None, f'{label} check')
        verdict = next(v for v, code in EXIT.items() if code == status)
        if verdict != wanted:
            last = read_steps(Path(plan.dir or ''))[-1]
            ending = {checks.ABORT: 'aborted', checks.SKIP: 'untestable-end'}.get(verdict,
                                                                                 'wrong-ends')
            return (ending, None, [],
                    f'{label}={plan.extra[label.lower() + "_spec"]} ({sha[:12]}) tested '
                    f'{verdict}, not {wanted}: {last["reason"]}')
    git(worktree, 'bisect', 'start', bad, good)
    cmd = [sys.executable, '-m', 'gptool', 'bisect-step', '--plan', str(plan_path)]
    log_path = Path(plan.dir or '') / 'bisect-run.log'
    lines: list[str] = []
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(['git', '-C', str(worktree), 'bisect', 'run', *cmd],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=harness_env(), cwd=HARNESS_CI.parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line)
        status = proc.wait()
    output = ''.join(lines)
    found = re.search(r'^([0-9a-f]{40}) is the first bad commit', output, re.M)
    if found:
        return 'found', found.group(1), [], ''
    if "There are only 'skip'ped commits left to test" in output:
        candidates = re.findall(r'^([0-9a-f]{40})$', output.split("left to test", 1)[1], re.M)
        return 'ambiguous', None, candidates, 'skipped commits hide the first bad one'
    steps = read_steps(Path(plan.dir or ''))
    aborted = [s for s in steps if s['verdict'] == checks.ABORT]
    why = aborted[-1]['reason'] if aborted else f'git bisect run exited with status {status}'
    return 'aborted', None, [], why


def summarize(plan: Plan, source: Path, status: str, first_bad: str | None,
              candidates: list[str], reason: str) -> dict[str, Any]:
    plan_dir = Path(plan.dir or '')
    steps = read_steps(plan_dir)
    summary: dict[str, Any] = {
        'id': plan.id, 'status': status, 'check': plan.check, 'repeat': plan.repeat,
        'repeat_rule': plan.repeat_rule, 'on': plan.on, 'good': plan.good, 'bad': plan.bad,
        'steps': len(steps), 'duration_s': round(time.time() - plan.started_epoch, 1),
        'reason': reason, 'candidates': candidates,
    }
    lines = [f'# bisect {plan.id}', '',
             f'- check: `{plan.check}` (REPEAT={plan.repeat}: {plan.repeat_rule})',
             f'- setup: {", ".join(f"{k}={v}" for k, v in plan.setup.items())}',
             f'- kernel base: {plan.base.get("version") or "?"} ({plan.base.get("key")}); '
             f'harness {plan.harness_commit[:12]}{" +dirty" if plan.harness_dirty else ""}',
             f'- GOOD {plan.good[:12]}, BAD {plan.bad[:12]}: {plan.commits} commits, '
             f'{len(steps)} steps in {summary["duration_s"]:.0f} s', '']
    if status == 'found' and first_bad:
        parent = git(source, 'rev-parse', f'{first_bad}^', check=False)
        summary.update({'first_bad': first_bad, 'subject': subject(source, first_bad),
                        'parent': parent})
        lines.append(f'**First bad commit: {first_bad[:12]} {summary["subject"]}**')
        write_reproducer(plan, first_bad, parent, summary['subject'])
        lines += ['', f'Reproduce: `bash {plan_dir / "reproduce.sh"}` (tests {first_bad[:12]} '
                  f'and its parent {parent[:12]})']
    elif status == 'ambiguous':
        lines.append('**No single first bad commit: skipped commits hide it. Candidates:** ' +
                     ', '.join(c[:12] for c in candidates))
    else:
        lines.append(f'**No verdict ({status}): {reason}**')
    lines += ['', '| # | step | commit | verdict | reason | s |', '|---|---|---|---|---|---|']
    for s in steps:
        lines.append(f'| {s["number"]} | {s["label"]} | {s["commit"][:12]} {s["subject"][:50]} | '
                     f'{s["verdict"]} | {s["reason"][:120]} | {s["duration_s"]:.0f} |')
    text = '\n'.join(lines) + '\n'
    write_atomic(plan_dir / 'summary.md', text.encode())
    write_json_atomic(plan_dir / 'summary.json', summary)
    summary['text'] = text + f'\nresults: {plan_dir}'
    return summary


# ---------------------------------------------------------------- reproduce.sh

REPRODUCER = """\
#!/usr/bin/env bash
# Reproduce bisect {id}:
#   {check} (REPEAT={repeat}) on {first_bad} ({subject})
#   and on its parent {parent}: the first must test bad, the parent good.
# Recorded: kernel base {base}; {setup};
# ON={on}{overlay}; harness {harness}.
#
# Run it from anywhere, as root, with a clone of grouped-pages that holds these commits
# (git fetch them first): bash reproduce.sh [CLONE]   (default: the current directory's
# clone). It runs the recorded harness commit from a worktree of the clone, so the step
# is the one the bisect ran. GP_WORK (default ~/.cache/grouped-pages) holds its builds;
# ON=base also needs KERNEL_SRC=<kernel git tree holding the commits>. GP_HARNESS=<a ci/
# directory> runs that harness instead of the recorded one (say so when you report).
# Exit status: 0 reproduced, 1 not reproduced, 2 cannot run (missing commits), 3 a step
# could not test its commit (skip), 4 a step aborted: the machine or the harness failed.
set -euo pipefail
check={check_quoted}
clone=$(cd "${{1:-.}}" && git rev-parse --show-toplevel)
work=${{GP_WORK:-${{XDG_CACHE_HOME:-$HOME/.cache}}/grouped-pages}}
needed="{overlay_sha}{repo_shas}"
[[ -n ${{GP_HARNESS:-}} ]] || needed="{harness_sha} $needed"
for sha in $needed; do
	if ! git -C "$clone" cat-file -e "$sha^{{commit}}" 2>/dev/null; then
		echo "error: $clone does not hold commit $sha: fetch it (git fetch <remote> $sha)" >&2
		exit 2
	fi
done
out="$clone/results/bisect-reproduce/{id}-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cat > "$out/plan.json" <<'PLAN'
{plan}
PLAN
harness_ci=${{GP_HARNESS:-$work/worktrees/harness-{harness12}/ci}}
if [[ -z ${{GP_HARNESS:-}} && ! -d $harness_ci ]]; then
	git -C "$clone" worktree add --quiet --detach "${{harness_ci%/ci}}" {harness_sha} || exit 4
fi
step() {{
	PYTHONPATH="$harness_ci" /usr/bin/python3 -m gptool --repo "$clone" --work "$work" \\
		bisect-step --plan "$out/plan.json" --out "$out" --commit "$1" --label "$2"
}}
status=0
step {first_bad} 'first bad' || status=$?
bad_status=$status
status=0
step {parent} 'parent' || status=$?
parent_status=$status
echo "first bad {first_bad12}: exit $bad_status (1 = bad); parent {parent12}: exit $parent_status (0 = good)"
echo "steps: $out/steps.json"
verdict() {{ (($1 == 0 || $1 == 1)); }}
verdict_or_skip() {{ (($1 == 0 || $1 == 1 || $1 == 125)); }}
if ! verdict "$bad_status" || ! verdict "$parent_status"; then
	if verdict_or_skip "$bad_status" && verdict_or_skip "$parent_status"; then
		echo "NO VERDICT: a step could not test its commit (skip): see $out/steps.json" >&2
		exit 3
	fi
	echo "NO VERDICT: a step aborted, the machine or the harness failed: see $out/steps.json" >&2
	exit 4
fi
if ((bad_status == 1 && parent_status == 0)); then
	echo "REPRODUCED: {first_bad12} is bad and its parent {parent12} is good under $check"
	exit 0
fi
echo "NOT REPRODUCED under $check" >&2
exit 1
"""


def write_reproducer(plan: Plan, first_bad: str, parent: str, title: str) -> None:
    portable = {**asdict(plan), 'dir': None, 'worktree': None, 'overlay_worktree': None,
                'step_work': None, 'started_epoch': 0.0}
    repo_shas = '' if plan.on == 'base' else f' {first_bad} {parent}'
    text = REPRODUCER.format(
        id=plan.id, check=plan.check.replace('\n', ' '), check_quoted=shlex.quote(plan.check),
        repeat=plan.repeat, first_bad=first_bad,
        first_bad12=first_bad[:12], parent=parent, parent12=parent[:12],
        subject=title.replace('\n', ' '),
        base=f'{plan.base.get("version") or "?"} ({plan.base.get("key")}, '
             f'{json.dumps(plan.base.get("origin"))})',
        setup=', '.join(f'{k}={v}' for k, v in plan.setup.items()), on=plan.on,
        overlay=f' (our overlay at {plan.overlay_commit})' if plan.overlay_commit else '',
        harness=plan.harness_commit + (' (its checkout had uncommitted changes, not recorded)'
                                       if plan.harness_dirty else ''),
        harness_sha=plan.harness_commit, harness12=plan.harness_commit[:12],
        overlay_sha=plan.overlay_commit or '', repo_shas=repo_shas,
        plan=json.dumps(portable, indent=2, sort_keys=True))
    write_atomic(Path(plan.dir or '') / 'reproduce.sh', text.encode(), mode=0o755)
