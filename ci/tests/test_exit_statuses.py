"""Every verb ends with a status of one table (errors.MEANING, the README's "Exit
statuses"): 0 passed, 1 the code under test failed, 2 usage error, 3 inconclusive,
4 the harness or the machine failed. Provoked here without building a kernel; compare's
1 and 3 are in test_compare_power.py, bisect's in test_bisect.py."""
import fcntl
import json
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

import power_sim
from conftest import REPO
from gptool import benchstore, compare, errors, tree
from gptool.__main__ import main
from gptool.errors import HarnessError


def test_the_table_is_the_one_the_readme_shows() -> None:
    assert errors.MEANING == {0: 'passed', 1: 'the code under test failed', 2: 'usage error',
                              3: 'inconclusive', 4: 'the harness or the machine failed'}
    readme = (REPO / 'README.md').read_text()
    section = readme[readme.index('## Exit statuses'):]
    for status, meaning in errors.MEANING.items():
        assert re.search(rf'^\| {status} \| {meaning} \|', section, re.M), (status, meaning)


def test_a_harness_error_has_the_status_of_its_kind() -> None:
    assert HarnessError('x').status == errors.FAILED
    assert HarnessError('x', kind=errors.UNTESTABLE).status == errors.FAILED
    assert HarnessError('x', 2).kind == errors.USAGE
    assert HarnessError('x', kind=errors.INFRASTRUCTURE).status == errors.HARNESS_FAILED
    # An unknown CONFIG: a usage error for the user, untestable for a bisect.
    assert (HarnessError('x', 2, errors.UNTESTABLE).status,
            HarnessError('x', 2, errors.UNTESTABLE).kind) == (2, errors.UNTESTABLE)


@pytest.mark.parametrize('argv', [
    ['nosuchverb'],
    ['compare', '--a', 'x'],                          # --b missing
    ['kunit', '--arch', 'arm64'],
    ['kunit', '--config', 'nosuch'],
    ['kunit', '--arch', 'i386', '--config', 'kasan'],
    ['kunit', '--', '--timeout=soon'],
    ['bench', '--mode', 'fast'],
    ['selftests', '--memory', '64'],
    ['faults', '--setting', 'nosuch'],
    ['bisect', '--good', 'HEAD', '--bad', 'HEAD', '--check', 'pytest:x'],
    ['compare', '--a', 'HEAD', '--b', 'HEAD', '--runs', '0'],
])
def test_usage_errors_exit_2_at_once_even_while_gp_work_is_busy(tmp_path: Path,
                                                                argv: list[str]) -> None:
    work = tmp_path / 'work'
    work.mkdir()
    with open(work / 'lock', 'a+') as held:  # another run builds: its lock is taken
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write('pid 1 (gptool selftests)\n')
        held.flush()
        # Before: "waiting for ..., in use by pid 1" until the holder was done.
        proc = subprocess.run([sys.executable, '-m', 'gptool', '--work', str(work), *argv],
                              cwd=REPO / 'ci', capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert 'waiting for' not in proc.stderr and 'Traceback' not in proc.stderr
    assert proc.stderr.rstrip().endswith('exit 2 (usage error)')


def test_an_unusable_gp_work_is_the_machine_not_the_code(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / 'file'
    not_a_dir.write_text('')
    outcome = tmp_path / 'outcome.json'
    assert main(['--work', str(not_a_dir / 'work'), '--outcome', str(outcome), 'tree']) == 4
    assert json.loads(outcome.read_text())['kind'] == errors.INFRASTRUCTURE
    assert 'exit 4 (the harness or the machine failed)' in capsys.readouterr().err


def test_a_missing_tool_is_the_machine_not_the_code(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('PATH', str(tmp_path))  # no git, no tar
    status = main(['--repo', str(tmp_path), '--work', str(tmp_path / 'w'), 'compare',
                   '--a', 'HEAD~1', '--b', 'HEAD'])
    assert status == 4


def test_an_unforeseen_exception_is_the_harness_never_a_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(req: compare.CompareRequest) -> int:
        raise KeyError('a bug')
    monkeypatch.setattr(compare, 'run', broken)
    outcome = tmp_path / 'outcome.json'
    assert main(['--outcome', str(outcome), 'compare', '--a', 'x', '--b', 'y']) == 4
    err = capsys.readouterr().err
    assert 'Traceback' in err and "error: the harness failed: KeyError: 'a bug'" in err
    assert json.loads(outcome.read_text())['kind'] == errors.INFRASTRUCTURE


def test_a_full_disk_is_the_machine(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    def full(req: compare.CompareRequest) -> int:
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(compare, 'run', full)
    assert main(['compare', '--a', 'x', '--b', 'y']) == 4
    assert 'error: disk full' in capsys.readouterr().err


def test_an_unwritable_results_dir_is_the_machine(tmp_path: Path) -> None:
    results = tmp_path / 'results'
    results.write_text('a file where the results directory should be')
    a = REPO / 'ci' / 'tests' / 'data'  # no results there: refused before writing
    assert main(['compare', '--a', str(a), '--b', str(a), '--results', str(results)]) == 2
    runs, _, _ = power_sim.sides(power_sim.Scenario('same', 'icount', runs=4), seed=0)
    for run in runs:
        benchstore.save(tmp_path / 'stored', run, {'console.log': b''})
    stored = tmp_path / 'stored' / 'bench'
    assert main(['--work', str(tmp_path / 'w'), 'compare', '--a', str(stored), '--b', str(stored),
                 '--results', str(results)]) == 4


def test_the_status_reaches_ci_through_make(tmp_path: Path) -> None:
    """make exits 2 for any failed recipe: ci/status.sh runs the target and exits with the
    verb's own status, and says what it means."""
    proc = subprocess.run(['bash', str(REPO / 'ci' / 'status.sh'), 'compare', 'A=no-such-dir',
                           'B=no-such-dir', f'GP_WORK={tmp_path}'], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'make compare: exit 2 (usage error)' in proc.stderr
    proc = subprocess.run(['bash', str(REPO / 'ci' / 'status.sh'), 'compare', 'A=x'],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'make compare needs A= and B=' in proc.stderr
    assert subprocess.run(['bash', str(REPO / 'ci' / 'status.sh'), 'help'],
                          capture_output=True, text=True).returncode == 0


def test_ci_status_sh_says_what_the_table_says() -> None:
    script = (REPO / 'ci' / 'status.sh').read_text()
    for status, meaning in errors.MEANING.items():
        case = '*' if status == errors.HARNESS_FAILED else str(status)
        assert f"{case}) meaning='{meaning}' ;;" in script, (status, meaning)


def test_the_harness_exits_with_the_status_it_reports() -> None:
    proc = subprocess.run([sys.executable, '-m', 'gptool', 'kunit', '--arch', 'arm64'],
                          cwd=REPO / 'ci', capture_output=True, text=True)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr


def test_tree_prints_the_prepared_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The verb make checkpatch runs first (a traceback once, when the verbs' arguments
    moved before the lock)."""
    monkeypatch.setattr(tree, 'prepare', lambda repo, work, kernel_src: SimpleNamespace(
        path=tmp_path / 'linux'))
    assert main(['--work', str(tmp_path / 'w'), 'tree']) == 0
    assert capsys.readouterr().out == f'{tmp_path / "linux"}\n'


def test_a_failed_target_never_reads_as_passed(tmp_path: Path) -> None:
    """A recipe that fails after a nested verb passed (make matrix-hosts-test runs pytest,
    which runs matrices whose verbs inherit OUTCOME and write status 0 to it) once made
    ci/status.sh say 'exit 0 (passed)' for a failed test suite."""
    (tmp_path / 'ci').mkdir()
    shutil.copy(REPO / 'ci' / 'status.sh', tmp_path / 'ci' / 'status.sh')
    # Only the package step of the real script is left out: nothing to install here.
    (tmp_path / 'ci' / 'deps').write_text('exit 0\n')
    (tmp_path / 'Makefile').write_text(
        'nested:\n\t@echo \'{"status": 0}\' > "$(OUTCOME)"\n\t@exit 1\n')
    proc = subprocess.run(['bash', str(tmp_path / 'ci' / 'status.sh'), 'nested'],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'make nested: exit 1 (the code under test failed)' in proc.stderr
