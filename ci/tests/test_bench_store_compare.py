"""The bench results store, `compare` on stored results and on revisions, and `trend`.

No real bench runs here: results are synthetic but complete, and the revision form
talks to a stand-in for the bench verb that keeps the bench verb's contract.
"""
import copy
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gptool import benchstore, compare, revisions
from gptool.__main__ import main
from gptool.errors import HarnessError

COMMIT_A = 'a' * 40
COMMIT_B = 'b' * 40


def make_result(commit: str = COMMIT_A, *, latency: list[float] | None = None,
                allocs: list[int] | None = None, date: str = '2025-01-31T12:00:00Z',
                **overrides: Any) -> dict[str, Any]:
    """A complete, realistic bench result."""
    result: dict[str, Any] = {
        'schema': 1, 'kind': 'bench', 'commit': commit, 'dirty': False,
        'base': {'version': '6.12.9', 'key': 'debian-6.12.9-1a2b3c', 'origin': 'tarball'},
        'config': 'default', 'config_sha256': 'c' * 64, 'arch': 'x86_64',
        'qemu': {'cpu': 'max', 'smp': 2, 'memory_mb': 2048,
                 'command': ['qemu-system-x86_64', '-cpu', 'max', '-smp', '2', '-m', '2048']},
        'mode': 'icount', 'tools': {'gcc': '12.2.0', 'qemu': '7.2.15', 'ccache': '4.8'},
        'date': date, 'duration_s': 41.5, 'cmdline': '', 'workload': 'full',
        'metrics': {
            'alloc.latency_ns': {'unit': 'ns', 'direction': 'lower', 'deterministic': False,
                                 'samples': latency or [1000.0, 1010.0, 990.0],
                                 'description': 'median time of one grouped allocation'},
            'alloc.count': {'unit': 'allocs', 'direction': 'higher', 'deterministic': True,
                            'samples': allocs or [4096]},
        },
    }
    result.update(overrides)
    return result


def save(root: Path, result: dict[str, Any]) -> Path:
    return benchstore.save(root, result, {'console.log': b'booted\n', 'config': b'CONFIG_X=y\n'})


# ---------------------------------------------------------------- store

def test_valid_result_passes() -> None:
    benchstore.validate(make_result())
    benchstore.validate(make_result('uncommitted', future_field={'anything': 1}))


def broken(path: str, value: Any) -> dict[str, Any]:
    """make_result() with the field at dotted @path set to @value (or removed if ...)."""
    result = make_result()
    parts = path.split('.')
    holder = result
    for part in parts[:-1]:
        holder = holder[part]
    if value is ...:
        del holder[parts[-1]]
    else:
        holder[parts[-1]] = value
    return result


@pytest.mark.parametrize('path, value, named', [
    ('schema', 2, 'schema'), ('schema', True, 'schema'), ('kind', 'kunit', 'kind'),
    ('commit', 'A' * 40, 'commit'), ('commit', 'abc123', 'commit'), ('dirty', 'no', 'dirty'),
    ('base.version', ..., 'base.version'), ('base', 'v6.12', 'base'), ('config', 3, 'config'),
    ('config_sha256', 'xyz', 'config_sha256'), ('arch', ..., 'arch'),
    ('qemu.smp', 0, 'qemu.smp'), ('qemu.memory_mb', '1G', 'qemu.memory_mb'),
    ('qemu.cpu', ..., 'qemu.cpu'), ('qemu.command', 'qemu -m 1G', 'qemu.command'),
    ('mode', 'kvm', 'mode'), ('tools.ccache', ..., 'tools.ccache'), ('tools.gcc', 12, 'tools.gcc'),
    ('date', '31/01/2025', 'date'), ('date', '2025-01-31T12:00:00+02:00', 'date'),
    ('duration_s', -1, 'duration_s'), ('cmdline', None, 'cmdline'), ('metrics', {}, 'metrics'),
    ('metrics.alloc.count', ..., 'metrics'),
])
def test_validate_names_the_bad_field(path: str, value: Any, named: str) -> None:
    if path == 'metrics.alloc.count':
        result = make_result()
        result['metrics'] = {}
    else:
        result = broken(path, value)
    with pytest.raises(HarnessError) as err:
        benchstore.validate(result)
    assert err.value.status == 2
    assert f'field {named} ' in str(err.value) and 'valid is' in str(err.value)


@pytest.mark.parametrize('field, value', [
    ('unit', ''), ('direction', 'up'), ('deterministic', 1), ('samples', []),
    ('samples', [1.0, float('nan')]), ('samples', ['12']), ('min_effect_pct', 0),
    ('description', 5),
])
def test_validate_names_the_bad_metric_field(field: str, value: Any) -> None:
    result = make_result()
    result['metrics']['alloc.latency_ns'][field] = value
    with pytest.raises(HarnessError) as err:
        benchstore.validate(result)
    assert f'field metrics.alloc.latency_ns.{field} holds' in str(err.value)


def test_validate_refuses_bad_metric_names_and_allows_extra_metric_fields() -> None:
    result = make_result()
    result['metrics']['alloc.latency_ns']['percentile'] = 50
    benchstore.validate(result)
    result['metrics']['Alloc-Latency'] = result['metrics'].pop('alloc.latency_ns')
    with pytest.raises(HarnessError, match=r'metric name "Alloc-Latency" is not valid'):
        benchstore.validate(result)


def test_save_publishes_new_directories_and_load_round_trips(tmp_path: Path) -> None:
    result = make_result()
    first, second = save(tmp_path, result), save(tmp_path, result)
    assert first != second and first.parent == second.parent == tmp_path / 'bench'
    assert first.name.endswith(f'-{COMMIT_A[:12]}-x86_64-default-icount')
    assert second.name == first.name + '.1' or second.name > first.name
    assert not list((tmp_path / 'bench').glob('.partial-*'))
    assert (first / 'console.log').read_bytes() == b'booted\n'
    assert (first / 'config').read_bytes() == b'CONFIG_X=y\n'
    loaded = benchstore.load(first)
    assert loaded == result and loaded.result_dir == first
    assert benchstore.load(first / 'result.json').result_dir == first
    text = (first / 'result.json').read_text()
    assert text == json.dumps(result, indent=2, sort_keys=True) + '\n'
    assert benchstore.find(tmp_path / 'bench') == sorted([first, second])
    assert benchstore.find(tmp_path) == sorted([first, second])
    assert benchstore.find(first) == [first]


def test_save_refuses_invalid_results_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match='field mode'):
        save(tmp_path, make_result(mode='fast'))
    assert not (tmp_path / 'bench').exists()
    with pytest.raises(HarnessError, match='file name'):
        benchstore.save(tmp_path, make_result(), {'../escape': b''})


def test_corrupted_result_is_rejected_naming_the_file(tmp_path: Path) -> None:
    path = save(tmp_path, make_result())
    file = path / 'result.json'
    file.write_text(file.read_text()[:-20])
    with pytest.raises(HarnessError, match=f'{file}: not valid JSON'):
        benchstore.load(path)
    edited = make_result()
    edited['qemu']['smp'] = '2'
    file.write_text(json.dumps(edited))
    with pytest.raises(HarnessError) as err:
        benchstore.load(path)
    assert str(err.value).startswith(f'{file}: field qemu.smp holds "2"')


def test_find_refuses_directories_without_results(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match='no bench results in'):
        benchstore.find(tmp_path)
    with pytest.raises(HarnessError, match='no such file'):
        benchstore.load(tmp_path)


# ---------------------------------------------------------------- compare, stored results

def side_sets(tmp_path: Path, shift: float, runs: int = 4, **b_overrides: Any) -> tuple[Path, Path]:
    """Result sets A and B (@runs runs each, 3 samples per run, 3% noise); B's latency
    is @shift times A's."""
    rng = random.Random(42)
    a_root, b_root = tmp_path / 'a', tmp_path / 'b'
    for _ in range(runs):
        save(a_root, make_result(COMMIT_A, latency=[1000 * rng.lognormvariate(0, 0.03) for _ in range(3)]))
        save(b_root, make_result(COMMIT_B, latency=[1000 * shift * rng.lognormvariate(0, 0.03)
                                                    for _ in range(3)], **b_overrides))
    return a_root / 'bench', b_root / 'bench'


def run_compare(tmp_path: Path, a: str, b: str, *extra: str) -> int:
    return main(['--repo', str(tmp_path), '--work', str(tmp_path / 'work'), 'compare',
                 '--a', a, '--b', b, '--results', str(tmp_path / 'results'), *extra])


def test_compare_flags_the_regressed_metric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = side_sets(tmp_path, 1.10)
    status = run_compare(tmp_path, str(a), str(b))
    out = capsys.readouterr().out
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith('alloc.latency_ns'))
    assert row.split()[-2:] == ['regression', 'icount'] and ' ns ' in row
    assert 'alloc.count' in out and 'compare: 1 regression: alloc.latency_ns' in out
    assert f'A = {a} ({COMMIT_A[:12]}; 4 runs)' in out
    reports = list((tmp_path / 'results' / 'compare').iterdir())
    assert len(reports) == 1 and reports[0].name.endswith(f'-{COMMIT_A[:12]}-vs-{COMMIT_B[:12]}')
    report = json.loads((reports[0] / 'report.json').read_text())
    assert report['regressions'] == ['alloc.latency_ns']
    latency = report['metrics']['alloc.latency_ns']
    assert latency['verdict'] == 'regression' and len(latency['samples_a']) == 12
    assert report['metrics']['alloc.count']['verdict'] == '~'
    assert report['a']['commits'] == [COMMIT_A] and report['b']['dirty'] == [False]
    assert report['rule']['alpha'] == 0.05 and report['rule']['min_effect_pct'] == 5.0
    assert '| alloc.latency_ns | ns |' in (reports[0] / 'report.md').read_text()
    # The report keeps the results it compared: they compare again, the same way.
    assert len(benchstore.find(reports[0] / 'A')) == 4
    assert run_compare(tmp_path, str(reports[0] / 'A'), str(reports[0] / 'B')) == 1


def test_compare_of_identical_sets_finds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = side_sets(tmp_path, 1.0)
    assert run_compare(tmp_path, str(a), str(a)) == 0
    out = capsys.readouterr().out
    assert 'regression' not in out.replace('no regressions', '')
    assert 'compare: no regressions' in out


def test_compare_names_metrics_of_one_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_dir = save(tmp_path / 'a', make_result())
    only_b = make_result(COMMIT_B)
    only_b['metrics']['free.latency_ns'] = dict(only_b['metrics']['alloc.latency_ns'])
    b_dir = save(tmp_path / 'b', only_b)
    assert run_compare(tmp_path, str(a_dir), str(b_dir)) == 0
    assert 'only in B: free.latency_ns' in capsys.readouterr().out


def test_incomparable_sides_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qemu = copy.deepcopy(make_result()['qemu'])
    qemu['smp'] = 4
    a, b = side_sets(tmp_path, 1.0, mode='tcg', qemu=qemu)
    assert run_compare(tmp_path, str(a), str(b)) == 2
    err = capsys.readouterr().err
    assert 'A and B are not comparable' in err and 'mode (A: "icount", B: "tcg")' in err
    assert 'qemu.smp' in err and '--force' in err
    assert not (tmp_path / 'results' / 'compare').exists()
    assert run_compare(tmp_path, str(a), str(b), '--force') == 0
    assert 'warning: A and B are not comparable' in capsys.readouterr().out


def test_a_side_of_several_commits_does_not_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / 'mixed', make_result(COMMIT_A))
    save(tmp_path / 'mixed', make_result(COMMIT_B))
    b = save(tmp_path / 'b', make_result(COMMIT_B))
    assert run_compare(tmp_path, str(tmp_path / 'mixed'), str(b)) == 2
    assert 'A pools runs that differ in commit' in capsys.readouterr().err


def test_bad_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = side_sets(tmp_path, 1.0, runs=1)
    assert run_compare(tmp_path, str(a), str(b), '--runs', '0') == 2
    assert run_compare(tmp_path, str(a), str(b), '--alpha', '5') == 2
    assert 'RUNS=0' in capsys.readouterr().err


# ---------------------------------------------------------------- compare, revisions

@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    """A git repo of three commits; its file 'cost' is what the stand-in bench measures."""
    repo = tmp_path / 'repo'
    repo.mkdir()
    git(repo, 'init', '-q')
    for message, cost in (('first', '1000'), ('second', '1200'), ('third', 'fail')):
        (repo / 'cost').write_text(cost + '\n')
        git(repo, 'add', 'cost')
        git(repo, 'commit', '-q', '-m', message)
    return repo


# Keeps the bench verb's contract: --build-only fills --artifacts; a run prints
# "bench result: <path>" as its last line; a failure exits non-zero with "error: ...".
FAKE_BENCH = textwrap.dedent('''\
    import argparse, json, random, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from gptool import benchstore
    from test_bench_store_compare import make_result
    FAILURES = {{'fail': (1, 'failure', 'the guest did not boot'),
                'no-qemu': (4, 'infrastructure', 'QEMU did not start')}}
    parser = argparse.ArgumentParser()
    for option in ('--repo', '--work', '--outcome', '--config', '--mode', '--qemu-cpu', '--smp',
                   '--memory', '--workload', '--cmdline', '--artifacts', '--results'):
        parser.add_argument(option)
    parser.add_argument('verb')
    parser.add_argument('--build-only', action='store_true')
    args = parser.parse_args()
    cost = (Path(args.repo) / 'cost').read_text().strip()
    if args.build_only:
        Path(args.artifacts).mkdir(parents=True, exist_ok=True)
        (Path(args.artifacts) / 'built').write_text(cost)
        sys.exit(0)
    if cost in FAILURES:
        status, kind, message = FAILURES[cost]
        print('error:', message, file=sys.stderr)
        Path(args.outcome).write_text(json.dumps({{'status': status, 'kind': kind,
                                                   'message': message}}))
        sys.exit(status)
    if cost == 'killed':
        sys.exit(137)
    commit = subprocess.run(['git', '-C', args.repo, 'rev-parse', 'HEAD'], capture_output=True,
                            text=True).stdout.strip()
    rng = random.Random(len(list(Path(args.results).glob('bench/*'))))
    result = make_result(commit, latency=[float(cost) * rng.lognormvariate(0, 0.01) for _ in range(3)])
    print('bench result:', benchstore.save(Path(args.results), result, {{'console.log': b''}}))
''')


@pytest.fixture
def fake_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / 'fake_bench.py'
    script.write_text(FAKE_BENCH.format(tests=str(Path(__file__).parent)))
    monkeypatch.setattr(compare, 'harness_command', lambda worktree, work: [
        sys.executable, str(script), '--repo', str(worktree), '--work', str(work)])
    return script


def test_unknown_revision_is_neither(small_repo: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', 'no-such-rev', '--b', 'HEAD'])
    assert status == 2
    assert (f'A=no-such-rev is not a results directory or a git revision of {small_repo}'
            in capsys.readouterr().err)


def test_worktrees_are_made_detached_and_reused(small_repo: Path, tmp_path: Path) -> None:
    work = tmp_path / 'work'
    sha = revisions.resolve_rev(small_repo, 'HEAD~1', 'A')
    assert sha == git(small_repo, 'rev-parse', 'HEAD~1')
    worktree, reused = revisions.ensure_worktree(small_repo, work, sha)
    assert (worktree, reused) == (work / 'worktrees' / sha[:12], False)
    assert (worktree / 'cost').read_text() == '1200\n'
    assert git(worktree, 'rev-parse', 'HEAD') == sha
    assert git_check(worktree, 'symbolic-ref', '-q', 'HEAD') == ''  # detached
    (worktree / 'cost').write_text('edited by a build\n')
    again, reused = revisions.ensure_worktree(small_repo, work, sha)
    assert (again, reused) == (worktree, True)
    assert (worktree / 'cost').read_text() == '1200\n'
    # The user's checkout is untouched.
    assert git(small_repo, 'status', '--porcelain') == ''
    assert (small_repo / 'cost').read_text() == 'fail\n'


def git_check(path: Path, *args: str) -> str:
    proc = subprocess.run(['git', '-C', str(path), *args], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ''


def test_revisions_are_built_once_and_run_interleaved(
        small_repo: Path, tmp_path: Path, fake_bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / 'results'
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', 'HEAD~2', '--b', 'HEAD~1', '--runs', '4', '--results', str(results)])
    out = capsys.readouterr().out
    assert status == 1, out
    a12 = git(small_repo, 'rev-parse', 'HEAD~2')[:12]
    b12 = git(small_repo, 'rev-parse', 'HEAD~1')[:12]
    progress = [line.split('] ', 1)[1] for line in out.splitlines() if line.startswith('[compare ')]
    assert [line for line in progress if line.startswith('run ')] == [
        f'run {i}/8: {side} ({sha})' for i, (side, sha) in
        enumerate([('A', a12), ('B', b12), ('B', b12), ('A', a12)] * 2, 1)]
    assert sum(' build... (log: ' in line for line in progress) == 2
    assert 'compare: 1 regression: alloc.latency_ns' in out
    assert len(benchstore.find(results / 'bench')) == 8
    assert (tmp_path / 'work' / 'compare-artifacts' / f'{a12}-default-tcg' / 'built').is_file()


def test_one_revision_against_itself_builds_once_and_finds_nothing(
        small_repo: Path, tmp_path: Path, fake_bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', 'HEAD~1', '--b', 'HEAD~1', '--runs', '4', '--results', str(tmp_path / 'r')])
    out = capsys.readouterr().out
    assert status == 0, out
    assert sum(' build... ' in line for line in out.splitlines()) == 1
    assert 'compare: no regressions' in out and 'run 8/8: A' in out


def test_stored_results_against_a_revision(small_repo: Path, tmp_path: Path, fake_bench: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(4):
        save(tmp_path / 'stored', make_result(COMMIT_A, latency=[1000.0, 1001.0, 999.0]))
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', str(tmp_path / 'stored'), '--b', 'HEAD~1', '--runs', '4',
                   '--mode', 'icount', '--results', str(tmp_path / 'r')])
    out = capsys.readouterr().out
    assert status == 1 and 'compare: 1 regression: alloc.latency_ns' in out
    assert 'run 4/4: B' in out
    assert not any(line.startswith('[compare ') and '] A ' in line for line in out.splitlines())


def test_a_failed_run_stops_the_compare(small_repo: Path, tmp_path: Path, fake_bench: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', 'HEAD~1', '--b', 'HEAD', '--runs', '2', '--results', str(tmp_path / 'r')])
    captured = capsys.readouterr()
    assert status == 1
    head12 = git(small_repo, 'rev-parse', 'HEAD')[:12]
    assert f'run 2/4 of B=HEAD ({head12}) failed with status 1: error: the guest did not boot' \
        in captured.err
    assert 'run 3/4' not in captured.out
    assert not (tmp_path / 'r' / 'compare').exists()


def test_a_stored_side_must_match_the_revision_options(
        small_repo: Path, tmp_path: Path, fake_bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = save(tmp_path / 'stored', make_result(mode='icount'))
    status = main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                   '--a', str(stored), '--b', 'HEAD~1', '--results', str(tmp_path / 'r')])
    assert status == 2
    assert 'mode (A holds "icount", the revision would run with --mode tcg)' in capsys.readouterr().err
    assert not (tmp_path / 'r').exists()


# ---------------------------------------------------------------- trend

def test_trend_plots_each_metric_in_history_order(small_repo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / 'results'
    commits = git(small_repo, 'rev-list', '--reverse', 'HEAD').split()
    # Saved out of order, one commit twice, one run dirty, one commit not in history.
    for commit, date, dirty in ((commits[2], '2025-02-03T00:00:00Z', False),
                                (commits[0], '2025-02-01T00:00:00Z', False),
                                (commits[0], '2025-02-01T01:00:00Z', False),
                                (commits[1], '2025-02-02T00:00:00Z', True),
                                ('e' * 40, '2025-01-01T00:00:00Z', False)):
        save(results, make_result(commit, date=date, dirty=dirty))
    save(results, make_result(commits[1], mode='tcg'))
    status = main(['--repo', str(small_repo), 'trend', '--results', str(results)])
    assert status == 0
    out_dir = Path(capsys.readouterr().out.strip().split('trend: ')[-1])
    assert out_dir.parent == results / 'trend'
    files = sorted(p.name for p in out_dir.iterdir())
    # 2 metrics x 2 groups x (png, svg), index.html, index.md, stability.md
    assert len(files) == 2 * 2 * 2 + 3
    for name in files:
        assert (out_dir / name).stat().st_size > 0
    png = out_dir / 'alloc.latency_ns-x86_64-default-icount-max-full.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    svg = (out_dir / 'alloc.latency_ns-x86_64-default-icount-max-full.svg').read_text()
    # A short title (the setup is in the page): nothing of it is cut.
    assert '>alloc.latency_ns<' in svg and 'ns (lower is better)' in svg
    index = (out_dir / 'index.md').read_text()
    assert '(alloc.count-x86_64-default-tcg-max-full.png)' in index
    assert 'default, icount, x86_64, -cpu max' in (out_dir / 'index.html').read_text()
    order = compare_positions(results, small_repo)
    assert order == [(commits[0][:12], False), (commits[1][:12], True), (commits[2][:12], False),
                     ('e' * 12, False)]


def compare_positions(results: Path, repo: Path) -> list[tuple[str, bool]]:
    from gptool import trend
    loaded = [r for r in trend.load_all(results / 'bench') if r['mode'] == 'icount']
    return [(c[:12], d) for c, d in trend.positions(loaded, trend.history(repo))]


def test_trend_filters_metrics(small_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / 'results'
    save(results, make_result())
    assert main(['--repo', str(small_repo), 'trend', '--results', str(results),
                 '--metric', 'alloc.lat*']) == 0
    out_dir = Path(capsys.readouterr().out.strip().split('trend: ')[-1])
    assert sorted(p.suffix for p in out_dir.iterdir()) == ['.html', '.md', '.md', '.png', '.svg']
    assert main(['--repo', str(small_repo), 'trend', '--results', str(results),
                 '--metric', 'nothing*']) == 2
    assert 'no metric matches nothing*' in capsys.readouterr().err


def test_trend_without_results_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['--repo', str(tmp_path), 'trend', '--results', str(tmp_path / 'results')]) == 2
    assert (f'no bench results under {tmp_path / "results" / "bench"}: run make bench first'
            in capsys.readouterr().err)


def test_stability_reports_the_spread_of_reruns(tmp_path: Path) -> None:
    from gptool import trend
    results = tmp_path / 'results'
    for latency in ([1000.0, 1001.0], [1100.0, 1101.0], [1050.0]):
        save(results, make_result(COMMIT_A, latency=latency))
    save(results, make_result(COMMIT_B, latency=[5.0]))  # one run: no spread to report
    loaded = [benchstore.load(p) for p in benchstore.find(results / 'bench')]
    groups = {('x86_64', 'default', 'tcg', 'max', 'full', 2, 2048, ''): loaded}
    report = trend.stability_report(groups, ['alloc.count', 'alloc.latency_ns'])
    # Run medians 1000.5, 1100.5, 1050: spread 100 / 1050 = 9.5 %.
    assert '| alloc.latency_ns | no | 3 | 1050 | 9.5 |' in report
    assert '| alloc.count | yes | 3 | 4096 | 0.0 |' in report
    assert COMMIT_B[:12] not in report


def test_the_real_bench_verb_accepts_what_compare_passes(tmp_path: Path) -> None:
    """The revision tests use a stand-in bench; this pins the contract to the real CLI."""
    from gptool.__main__ import parse
    req = compare.CompareRequest(repo=tmp_path, work=tmp_path, a='A', b='B', runs=5, alpha=0.05,
                                 min_effect=5.0, config='default', mode='icount',
                                 qemu_cpu='max', smp=2, memory_mb=2048, results=tmp_path,
                                 workload='quick', cmdline='nopkstables')
    prefix = ['--repo', str(tmp_path), '--work', str(tmp_path), 'bench', '--config', req.config,
              '--mode', req.mode, '--qemu-cpu', req.qemu_cpu, '--smp', str(req.smp),
              '--memory', str(req.memory_mb), '--workload', req.workload,
              '--cmdline', req.cmdline]
    built = parse(prefix + ['--build-only', '--artifacts', str(tmp_path / 'art')])
    assert built.build_only and built.artifacts == tmp_path / 'art'
    run = parse(prefix + ['--artifacts', str(tmp_path / 'art'), '--results', str(tmp_path)])
    assert (run.mode, run.workload, run.cmdline, run.memory) == ('icount', 'quick',
                                                                 'nopkstables', 2048)


def test_sides_from_different_hosts_or_tools_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = {'hostname': 'one', 'cpu': 'Intel Xeon', 'kernel': '6.1.0'}
    for n in range(4):
        save(tmp_path / 'a', make_result(latency=[1000.0 + n], host=host))
        save(tmp_path / 'b', make_result(COMMIT_B, latency=[1000.0 + n],
                                         host={**host, 'hostname': 'two'},
                                         tools={'gcc': '12.2.0', 'qemu': '8.0.0', 'ccache': '4.8'}))
    a, b = tmp_path / 'a' / 'bench', tmp_path / 'b' / 'bench'
    assert run_compare(tmp_path, str(a), str(b)) == 2
    err = capsys.readouterr().err
    assert 'host.hostname (A: "one", B: "two")' in err and 'tools.qemu' in err
    assert run_compare(tmp_path, str(a), str(b), '--force') == 0
    assert 'warning: A and B are not comparable' in capsys.readouterr().out


def test_a_bench_run_records_what_its_timing_depends_on() -> None:
    from gptool import provenance
    tools = provenance.tool_versions()
    assert {'gcc', 'qemu', 'python', 'scipy', 'busybox'} <= tools.keys()
    assert set(provenance.host()) == {'hostname', 'cpu', 'kernel'}
    assert all(provenance.host().values())


def test_the_spread_is_that_of_the_values_the_test_compares(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Rounds scatter within each run (100 to 300), their medians do not (200, 201...).
    for n in range(4):
        save(tmp_path / 'a', make_result(latency=[100.0, 200.0 + n, 300.0]))
    a = tmp_path / 'a' / 'bench'
    assert run_compare(tmp_path, str(a), str(a)) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith('alloc.latency_ns'))
    assert ' 201.5 ±1% ' in row  # (203 - 200) / 201.5, not (300 - 100) / 200


@pytest.mark.parametrize('cost, status', [('no-qemu', 4), ('killed', 4), ('fail', 1)])
def test_a_failed_run_fails_compare_as_it_failed(
        small_repo: Path, tmp_path: Path, fake_bench: Path, cost: str, status: int) -> None:
    (small_repo / 'cost').write_text(cost + '\n')
    git(small_repo, 'commit', '-q', '--allow-empty', '-am', cost)
    assert main(['--repo', str(small_repo), '--work', str(tmp_path / 'work'), 'compare',
                 '--a', 'HEAD~2', '--b', 'HEAD', '--runs', '2',
                 '--results', str(tmp_path / 'r')]) == status
