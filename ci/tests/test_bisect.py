"""make bisect on a small synthetic history (no kernel): cmd: checks drive the real
git bisect run through the real step command; verdicts, skips, aborts, the repeat
rule and reproduce.sh are checked end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, git
from gptool import bisect, checks
from gptool.__main__ import main
from gptool.errors import HarnessError
from gptool.fsutil import reserve_dir

# A commit's state file says what the check should find there.
CHECK = ('cmd:case $(cat state) in good) exit 0;; bad) exit 1;; broken) exit 125;; '
         'machine-broke) exit 200;; esac')


def commit_states(path: Path, states: list[str], what: str = 'commit') -> list[str]:
    """One commit per state (oldest first) in the repo at @path; their shas."""
    shas = []
    for number, state in enumerate(states):
        (path / 'state').write_text(state + '\n')
        (path / 'counter').write_text(f'{number}\n')
        git(path, 'add', '-A')
        git(path, 'commit', '-q', '-m', f'{what} {number}: {state}')
        shas.append(git(path, 'rev-parse', 'HEAD'))
    return shas


def history(path: Path, states: list[str]) -> list[str]:
    """A new repo with one commit per state (oldest first); their shas."""
    path.mkdir()
    git(path, 'init', '-q', '-b', 'main')
    return commit_states(path, states)


def run_bisect(repo: Path, tmp: Path, good: str, bad: str, check: str = CHECK,
               repeat: int = 1) -> tuple[int, Path]:
    status = main(['--repo', str(repo), '--work', str(tmp / 'work'), 'bisect', '--good', good,
                   '--bad', bad, '--check', check, '--repeat', str(repeat),
                   '--results', str(tmp / 'results')])
    found = sorted((tmp / 'results' / 'bisect').iterdir())
    return status, found[-1]


def steps_of(result: Path) -> list[dict[str, object]]:
    return json.loads((result / 'steps.json').read_text())


def test_finds_the_first_bad_commit_and_skips_what_cannot_be_tested(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'broken', 'good', 'good', 'bad', 'bad', 'bad', 'bad'])
    head_before = git(repo, 'rev-parse', 'HEAD')
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    assert status == 0
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['status'] == 'found'
    assert summary['first_bad'] == shas[5]
    assert summary['subject'] == 'commit 5: bad'
    assert summary['parent'] == shas[4]
    steps = steps_of(result)
    # Both ends are checked first, with the same step.
    assert [(s['label'], s['commit'], s['verdict']) for s in steps[:2]] == \
        [('GOOD check', shas[0], 'good'), ('BAD check', shas[-1], 'bad')]
    verdicts = {s['commit']: s['verdict'] for s in steps}
    assert verdicts.get(shas[2], 'skip') == 'skip'
    assert all(v == ('good' if shas.index(c) < 5 else 'bad') for c, v in verdicts.items()
               if c != shas[2])
    for s in steps:
        assert s['duration_s'] >= 0 and s['runs'] and Path(s['runs'][0]['log']).is_file()
    assert 'is the first bad commit' in (result / 'bisect-run.log').read_text()
    assert 'git bisect start' in (result / 'bisect.log').read_text()
    assert 'First bad commit: ' + shas[5][:12] in (result / 'summary.md').read_text()
    # The user's checkout is where it was, with no bisect of its own going on.
    assert git(repo, 'rev-parse', 'HEAD') == head_before
    assert git(repo, 'status', '--porcelain') == ''
    assert subprocess.run(['git', '-C', str(repo), 'bisect', 'log'],
                          capture_output=True).returncode != 0
    assert len(git(repo, 'worktree', 'list').splitlines()) == 1


def test_a_skipped_commit_next_to_the_change_is_named_not_blamed(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'broken', 'bad', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    summary = json.loads((result / 'summary.json').read_text())
    assert status == 3  # inconclusive
    assert summary['status'] == 'ambiguous'
    assert set(summary['candidates']) == {shas[2], shas[3]}
    assert 'skipped commits hide it' in (result / 'summary.md').read_text()


def test_reproducer_reruns_the_step_on_first_bad_and_parent(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'good', 'bad', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    assert status == 0
    script = result / 'reproduce.sh'
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert shas[3] in text and shas[2] in text and 'REPEAT=1' in text
    env = {**os.environ, 'GP_WORK': str(tmp_path / 'work2'), 'GP_HARNESS': str(REPO / 'ci')}
    proc = subprocess.run(['bash', str(script), str(repo)], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'REPRODUCED: {shas[3][:12]} is bad and its parent {shas[2][:12]} is good' in proc.stdout
    # A clone without the commits is told what is missing.
    other = tmp_path / 'other'
    history(other, ['good'])
    proc = subprocess.run(['bash', str(script), str(other)], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert f'does not hold commit {shas[3]}' in proc.stderr or \
        f'does not hold commit {shas[2]}' in proc.stderr


def test_reproducer_says_when_it_does_not_reproduce(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    assert status == 0
    # The same commits, but a check that now passes everywhere: the difference is gone.
    plan = result / 'reproduce.sh'
    text = plan.read_text().replace('bad) exit 1;;', 'bad) exit 0;;')
    plan.write_text(text)
    env = {**os.environ, 'GP_WORK': str(tmp_path / 'work2'), 'GP_HARNESS': str(REPO / 'ci')}
    proc = subprocess.run(['bash', str(plan), str(repo)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert 'NOT REPRODUCED' in proc.stderr


def test_an_infrastructure_failure_aborts_instead_of_blaming(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'good', 'machine-broke', 'bad', 'bad', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    assert status == 4
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['status'] == 'aborted'
    assert 'exited with 200' in summary['reason']
    assert 'first_bad' not in summary
    assert not (result / 'reproduce.sh').exists()
    assert 'No verdict (aborted): ' in (result / 'summary.md').read_text()
    assert [s['verdict'] for s in steps_of(result)][-1] == 'abort'
    assert len(git(repo, 'worktree', 'list').splitlines()) == 1


def test_good_end_that_is_not_good_stops_before_searching(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['bad', 'bad', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1])
    assert status == 2  # the request was wrong: nothing to search between them
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['status'] == 'wrong-ends'
    assert summary['reason'].startswith(f'GOOD={shas[0]} ({shas[0][:12]}) tested bad, not good')
    assert len(steps_of(result)) == 1


def test_repeat_finds_a_flaky_failure_and_records_the_rule(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'good', 'good', 'bad', 'bad'])
    # From commit 3 on, the check fails one run in three: REPEAT=3 sees it every time.
    counter = tmp_path / 'runs'
    flaky = (f'cmd:n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}; '
             f'if grep -q bad state && [ $((n % 3)) -eq 0 ]; then exit 1; fi; exit 0')
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1], flaky, repeat=3)
    assert status == 0
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['first_bad'] == shas[3]
    assert summary['repeat'] == 3
    assert summary['repeat_rule'] == checks.REPEAT_RULE['cmd']
    for s in steps_of(result):
        if s['verdict'] == 'good':
            assert len(s['runs']) == 3  # a good step ran every time
        else:
            assert s['runs'][-1]['verdict'] == 'bad'  # a bad one stopped at its first failure


def test_bench_rule_takes_the_median_of_the_runs() -> None:
    check = checks.parse('bench:fastpath.cpus2.ratio>1.3')
    assert (check.target, check.op, check.threshold) == ('fastpath.cpus2.ratio', '>', 1.3)

    def runs(*values: float | None) -> list[checks.Run]:
        return [checks.Run(checks.GOOD if v is not None and v <= 1.3 else checks.BAD,
                           f'value {v}', '', 1.0, None, v) for v in values]
    verdict, reason = checks.combine(check, runs(1.2, 1.5, 1.25))
    assert verdict == 'good' and 'median fastpath.cpus2.ratio = 1.25 over 3 runs' in reason
    assert checks.combine(check, runs(1.4, 1.2, 1.5))[0] == 'bad'
    # A run that crashed has no value: the step is bad, whatever the others measured.
    crashed = runs(1.0, 1.0) + [checks.Run(checks.BAD, 'kernel panic', '', 1.0)]
    assert checks.combine(check, crashed) == ('bad', 'a bench run failed: kernel panic')
    skipped = runs(1.0) + [checks.Run(checks.SKIP, 'build failed', '', 1.0)]
    assert checks.combine(check, skipped)[0] == 'skip'


def test_kunit_verdicts_come_from_the_matching_cases(tmp_path: Path) -> None:
    check = checks.parse('kunit:grouped_pages.gp_test_x86_*')
    result = tmp_path / 'r'
    result.mkdir()
    (result / 'kunit.json').write_text(json.dumps({'name': 'KUnit Test Group', 'sub_groups': [
        {'name': 'grouped_pages', 'sub_groups': [], 'test_cases': [
            {'name': 'gp_test_alloc_free_one', 'status': 'FAIL'},
            {'name': 'gp_test_x86_block_stays_mapped_large', 'status': 'PASS'}]}],
        'test_cases': []}))
    passed = {'status': 0, 'kind': 'passed', 'message': ''}
    assert checks.judge_kunit(check, passed, result)[0] == 'good'
    failed = {'status': 1, 'kind': 'failure', 'message': 'tests failed'}
    data = json.loads((result / 'kunit.json').read_text())
    data['sub_groups'][0]['test_cases'][1]['status'] = 'ERROR'
    (result / 'kunit.json').write_text(json.dumps(data))
    assert checks.judge_kunit(check, failed, result) == \
        ('bad', 'grouped_pages.gp_test_x86_block_stays_mapped_large failed')
    # A build failure is no verdict on the cases; a broken machine is no verdict at all.
    assert checks.judge_kunit(check, {'kind': 'untestable', 'message': 'kernel build failed'},
                              None)[0] == 'skip'
    assert checks.judge_kunit(check, {'kind': 'infrastructure', 'message': 'QEMU did not start'},
                              None)[0] == 'abort'
    # The kernel crashed before any matching case reported: bad, never a skip.
    assert checks.judge_kunit(check, {'kind': 'failure', 'message': 'the kernel crashed'},
                              None) == ('bad', 'the kernel crashed')
    assert checks.judge_kunit(check, {'kind': 'failure', 'message': 'kunit: ran no test'},
                              None)[0] == 'skip'


@pytest.mark.parametrize('spec, complaint', [
    ('kunit', 'unknown form'),
    ('pytest:foo', 'unknown form'),
    ('kunit:', 'nothing after "kunit:"'),
    ('selftest:a b', 'names one gp_stress test'),
    ('bench:fastpath.cpus2.ratio', 'a bench check is <metric><op><number>'),
    ('bench:fastpath.cpus2.ratio=>1', 'a bench check is <metric><op><number>'),
])
def test_bad_checks_are_refused_with_the_valid_forms(spec: str, complaint: str) -> None:
    with pytest.raises(HarnessError, match=complaint) as err:
        checks.parse(spec)
    assert err.value.status == 2


def test_bad_requests_are_refused_before_anything_runs(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    shas = history(repo, ['good', 'bad'])
    work = str(tmp_path / 'work')
    base = ['--repo', str(repo), '--work', work, 'bisect', '--check', CHECK]
    assert main(base + ['--good', shas[1], '--bad', shas[0]]) == 2
    assert main(base + ['--good', shas[0], '--bad', shas[0]]) == 2
    assert main(base + ['--good', 'nonesuch', '--bad', shas[1]]) == 2
    assert main(base + ['--good', shas[0], '--bad', shas[1], '--repeat', '0']) == 2
    assert main(base + ['--good', shas[0], '--bad', shas[1], '--on', 'kernel']) == 2
    assert main(base + ['--good', shas[0], '--bad', shas[1], '--on', 'base']) == 2
    assert not (tmp_path / 'results').exists() and not (repo / 'results').exists()


def test_make_bisect_names_what_is_missing() -> None:
    proc = subprocess.run(['make', '-s', '-C', str(REPO), 'bisect', 'GOOD=HEAD~1'],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'make bisect needs GOOD=<rev> BAD=<rev>' in proc.stderr


def test_step_exit_statuses_are_what_git_bisect_run_reads() -> None:
    assert bisect.EXIT == {'good': 0, 'bad': 1, 'skip': 125, 'abort': 128}
    assert sys.executable  # the step runs under this interpreter


def test_on_base_bisects_the_kernel_tree_with_our_overlay_held(tmp_path: Path,
                                                                kernel_git: Path) -> None:
    """ON=base: the commits searched are KERNEL_SRC's; the step sees our overlay fixed."""
    shas = commit_states(kernel_git, ['good', 'good', 'bad', 'bad'], 'kernel')
    ours = tmp_path / 'ours'
    history(ours, ['good'])
    check = 'cmd:test -f "$GP_OVERLAY/state" && ' + CHECK[len('cmd:'):]
    status = main(['--repo', str(ours), '--work', str(tmp_path / 'work'), '--kernel-src',
                   str(kernel_git), 'bisect', '--good', shas[0], '--bad', shas[-1], '--check',
                   check, '--on', 'base', '--results', str(tmp_path / 'results')])
    assert status == 0
    result = sorted((tmp_path / 'results' / 'bisect').iterdir())[-1]
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['first_bad'] == shas[2] and summary['on'] == 'base'
    plan = json.loads((result / 'plan.json').read_text())
    assert plan['overlay_commit'] == git(ours, 'rev-parse', 'HEAD')
    assert plan['base']['origin']['kind'] == 'git'
    env = {**os.environ, 'GP_WORK': str(tmp_path / 'work2'), 'GP_HARNESS': str(REPO / 'ci'),
           'KERNEL_SRC': str(kernel_git)}
    proc = subprocess.run(['bash', str(result / 'reproduce.sh'), str(ours)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'REPRODUCED' in proc.stdout


def test_two_bisects_started_in_one_second_get_their_own_directories(tmp_path: Path) -> None:
    first = reserve_dir(tmp_path, '20261127T000000Z-cmd-x')
    second = reserve_dir(tmp_path, '20261127T000000Z-cmd-x')
    assert first.name == '20261127T000000Z-cmd-x' and second.name == '20261127T000000Z-cmd-x.1'
    assert first.is_dir() and second.is_dir()


# ---------------------------------------------------------------- planted harness faults

# Besides what CHECK does, a commit's state may plant a fault in the harness itself.
FAULTS = {
    # A tool the check needs is not on PATH: bash says 127.
    'tool-missing': 'no-such-tool-gp24',
    # The harness's own plan becomes unreadable: the next step cannot even start.
    'plan-broken': 'for f in {results}/bisect/*/plan.json; do echo "{{" > "$f"; done; exit 0',
    # The step's record becomes unwritable: the harness fails after the check ran.
    'record-broken': ('for d in {results}/bisect/*/; do rm -f "$d/steps.json"; '
                      'mkdir -p "$d/steps.json"; done; exit 1'),
}


def faulty_check(results: Path) -> str:
    cases = ' '.join(f'{state}) {command.format(results=results)};;'
                     for state, command in FAULTS.items())
    return CHECK[:-len('esac')] + cases + ' esac'


@pytest.mark.parametrize('fault', sorted(FAULTS))
def test_a_harness_fault_in_a_step_never_names_a_commit(tmp_path: Path, fault: str) -> None:
    repo = tmp_path / 'repo'
    # The midpoint of the search holds the fault: the first commit bisect tests.
    shas = history(repo, ['good', 'good', 'good', fault, 'good', 'bad', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1],
                                faulty_check(tmp_path / 'results'))
    assert status == 4  # the harness or the machine failed
    summary = json.loads((result / 'summary.json').read_text())
    assert summary['status'] == 'aborted' and 'first_bad' not in summary
    assert not (result / 'reproduce.sh').exists()
    assert 'is the first bad commit' not in (result / 'bisect-run.log').read_text()
    assert len(git(repo, 'worktree', 'list').splitlines()) == 1


def step_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, '-m', 'gptool', 'bisect-step', *args],
                          cwd=REPO / 'ci', capture_output=True, text=True)


def test_a_step_that_cannot_start_aborts_instead_of_saying_bad(tmp_path: Path) -> None:
    plan = tmp_path / 'plan.json'
    plan.write_text('{')
    assert step_command('--plan', str(plan)).returncode == 128
    assert step_command('--plan', str(tmp_path / 'missing.json')).returncode == 128
    # Even its arguments: git bisect run would read argparse's 2 as "bad".
    proc = step_command('--no-such-option')
    assert proc.returncode == 128 and 'Traceback' not in proc.stderr


def test_reproducer_says_no_verdict_when_the_harness_fails_on_a_step(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    reproduced = tmp_path / 'repo' / 'results' / 'bisect-reproduce'
    # The first bad commit's step leaves its record unwritable; its parent's repairs it.
    plant = (f'for d in $(ls -d {reproduced}/*/ 2>/dev/null); do mkdir -p "$d/steps.json"; done')
    repair = f'for d in $(ls -d {reproduced}/*/ 2>/dev/null); do rmdir "$d/steps.json" || :; done'
    check = (f'cmd:case $(cat state) in good) {repair}; exit 0;; bad) {plant}; exit 1;; esac')
    shas = history(repo, ['good', 'good', 'bad'])
    status, result = run_bisect(repo, tmp_path, shas[0], shas[-1], check)
    assert status == 0
    env = {**os.environ, 'GP_WORK': str(tmp_path / 'work2'), 'GP_HARNESS': str(REPO / 'ci')}
    proc = subprocess.run(['bash', str(result / 'reproduce.sh'), str(repo)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert 'REPRODUCED:' not in proc.stdout and 'NO VERDICT: a step aborted' in proc.stderr
