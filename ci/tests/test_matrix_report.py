"""The table `make matrix` ends with, from a real GNU parallel job log and real row logs."""
import json
import subprocess
from pathlib import Path

from gptool import errors, matrix_report, matrix_row

X86_LOG = """\
[23:00:20] Elapsed time: 18.431s total, 0.002s configuring, 13.389s building, 5.000s running

kunit results: /work/main/results/kunit/20261126T230039Z-63bcae6532b8-x86_64-default
kunit x86_64/default: 91 passed, 0 failed, 3 skipped
"""
MODULE_LOG = """\
kunit results: /work/main/results/kunit/20261126T225747Z-85ed3e82ce52-x86_64-module
kunit x86_64/module (modules): 78 passed, 0 failed, 2 skipped
"""
SELFTESTS_LOG = """\
selftests results: /work/main/results/selftests/20261127T003021Z-f629684afbf0-x86_64-lockdep
selftests x86_64/lockdep: 5 passed, 1 failed, 0 skipped
error: selftests: 1 tests failed (console log: /r/s/console.log)
"""
FAILED_LOG = """\
[22:25:01] Elapsed time: 300.1s total, 1.0s configuring, 250.0s building, 49.1s running
error: kunit ARCH=x86_64 CONFIG=kasan: kunit.py exited with status 1: tests failed (results: /r/k)
"""


def test_the_table_has_a_line_per_row_with_its_outcome(tmp_path: Path) -> None:
    matrix = tmp_path / 'matrix'
    matrix.write_text('# rows\nx86_64 default max\nx86_64 module max\nx86_64 kasan max\n'
                      'i386 highmem max\nselftests lockdep max\n')
    logs = tmp_path / 'logs'
    logs.mkdir()
    (logs / 'x86_64-default-max.log').write_text(X86_LOG)
    (logs / 'x86_64-module-max.log').write_text(MODULE_LOG)
    (logs / 'x86_64-kasan-max.log').write_text(FAILED_LOG)
    (logs / 'selftests-lockdep-max.log').write_text(SELFTESTS_LOG)
    joblog = tmp_path / 'joblog'
    rows = ('x86_64 default max 0\nx86_64 module max 0\nx86_64 kasan max 1\n'
            'selftests lockdep max 1\n')
    # The same command shape as ci/matrix.sh, run by the real GNU parallel.
    subprocess.run(['parallel', '--colsep', ' ', '--joblog', str(joblog),
                    f'echo make kunit ARCH={{1}} CONFIG={{2}} QEMU_CPU={{3}} "|" tee {logs}/'
                    '{1}-{2}-{3}.log; exit {4}'],
                   input=rows, text=True, capture_output=True, check=False)
    text, status = matrix_report.table(matrix, joblog, logs)
    table = text.splitlines()
    assert table[0].split()[:4] == ['row', 'host', 'build', 's']
    default, module, kasan, highmem, selftests, summary = table[1:]
    assert selftests.split()[:10] == ['selftests-lockdep-max', 'local', '-', '-',
                                      selftests.split()[4], '5', '1', '0', '-', '-']
    assert 'FAIL: 1 tests failed (console log: /r/s/console.log)' in selftests
    assert default.split()[:11] == ['x86_64-default-max', 'local', '13', '5', default.split()[4],
                                    '91', '0', '3', '-', '-', 'PASS']
    assert default.endswith('20261126T230039Z-63bcae6532b8-x86_64-default')
    assert module.split()[2:4] == ['-', '-'] and module.split()[5:11] == ['78', '0', '2', '-',
                                                                          '-', 'PASS']
    assert 'FAIL: kunit.py exited with status 1: tests failed  ' in kasan
    assert kasan.endswith('/r/k')
    assert 'NOT RUN' in highmem
    assert summary == 'matrix: 2 passed, 2 failed, 1 not run (infrastructure)'
    assert status == errors.EXIT_STATUS[errors.FAILURE]


def record(logs: Path, row: str, kind: str, host: str, **more: object) -> None:
    (logs / f'{row}.json').write_text(json.dumps({
        'row': row, 'host': host, 'kind': kind, 'status': 0 if kind == 'passed' else 1,
        'message': more.pop('message', ''), 'results': more.pop('results', []),
        'cache': more.pop('cache', None), **more}))


def test_rows_with_records_say_where_they_ran_and_what_the_cache_gave(tmp_path: Path) -> None:
    """The records matrix_row leaves, as a run on hosts leaves them: a retried row names
    the host that died first, a row no host could run is infrastructure, not a failure."""
    matrix = tmp_path / 'rows'
    matrix.write_text('x86_64 default max\num default max\nselftests kasan max\n')
    logs = tmp_path / 'matrix-20261207T000000Z'
    logs.mkdir()
    (logs / 'x86_64-default-max.log').write_text(X86_LOG)
    record(logs, 'x86_64-default-max', 'passed', 'build2',
           results=['x86_64-default-max/kunit/20261126T230039Z-63bcae6532b8-x86_64-default'],
           cache={'hits': 2301, 'misses': 99, 'remote_hits': 2290, 'remote_errors': 0})
    record(logs, 'selftests-kasan-max', 'infrastructure', 'build3',
           message='make exited with status 1 before gptool gave a verdict')
    (logs / 'console.log').write_text(
        'x86_64-default-max\tmatrix-try: x86_64-default-max on build1, started at 10:00:00 UTC\n'
        'selftests-kasan-max\tmatrix-try: selftests-kasan-max on build3: ci/deps failed\n'
        'x86_64-default-max\tmatrix-try: x86_64-default-max on build2, started at 10:05:00 UTC\n'
        'parallel: Warning: Removed ssh -p 2222 root@build4.\n')
    text, status = matrix_report.table(matrix, tmp_path / 'no-joblog', logs)
    default, um, kasan, summary, removed = text.splitlines()[1:]
    assert default.split()[:12] == ['x86_64-default-max', 'build2', '(after', 'build1)', '13', '5',
                                    '-', '91', '0', '3', '2301/2400', '2290']
    assert default.endswith(f'{logs}/x86_64-default-max/kunit/'
                            '20261126T230039Z-63bcae6532b8-x86_64-default')
    assert 'NOT RUN' in um
    assert 'INFRASTRUCTURE: make exited with status 1 before gptool gave a verdict' in kasan
    assert summary == 'matrix: 1 passed, 0 failed, 2 not run (infrastructure)'
    assert removed == 'matrix: host not reachable at the start, not used: ssh -p 2222 root@build4'
    assert status == errors.EXIT_STATUS[errors.INFRASTRUCTURE]


def test_cell_refuses_a_row_that_is_not_in_the_matrix() -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(['bash', str(repo / 'ci/matrix.sh'), 'x86_64-nonesuch-max'],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no matrix row 'x86_64-nonesuch-max'; valid are:" in proc.stderr
    assert 'x86_64-kasan-max' in proc.stderr and 'selftests-no-pks-max' in proc.stderr


def test_a_row_without_a_verdict_is_infrastructure_and_is_retried(tmp_path: Path) -> None:
    outcome = tmp_path / 'outcome.json'
    assert matrix_row.outcome_of(outcome, 0) == ('passed', '')
    kind, message = matrix_row.outcome_of(outcome, 2)  # ci/deps or make failed: no outcome
    assert kind == errors.INFRASTRUCTURE and 'status 2 before gptool gave a verdict' in message
    outcome.write_text(json.dumps({'status': 1, 'kind': 'untestable', 'message': 'no build'}))
    assert matrix_row.outcome_of(outcome, 1) == ('untestable', 'no build')


def test_a_row_finds_its_own_result_directories_only(tmp_path: Path) -> None:
    for kind, name in (('kunit', '20261207T000000Z-abc-x86_64-default'),
                       ('kunit', '20261207T000000Z-abc-x86_64-default.1'),
                       ('kunit', '20261207T000000Z-abc-x86_64-default-qemu64'),
                       ('kunit', '20261207T000000Z-abc-x86_64-debug-vm'),
                       ('selftests', '20261207T000000Z-abc-x86_64-default')):
        (tmp_path / 'results' / kind / name).mkdir(parents=True)

    def found(arch: str, config: str, cpu: str) -> list[str]:
        req = matrix_row.RowRequest(repo=tmp_path, work=tmp_path, out=tmp_path, arch=arch,
                                    config=config, cpu=cpu, host='local')
        return sorted(f'{d.parent.name}/{d.name}' for d in matrix_row.result_dirs(req))
    assert found('x86_64', 'default', 'max') == ['kunit/20261207T000000Z-abc-x86_64-default',
                                                 'kunit/20261207T000000Z-abc-x86_64-default.1']
    assert found('x86_64', 'default', 'qemu64') == [
        'kunit/20261207T000000Z-abc-x86_64-default-qemu64']
    assert found('selftests', 'default', 'max') == [
        'selftests/20261207T000000Z-abc-x86_64-default']
    assert found('um', 'default', 'max') == []
