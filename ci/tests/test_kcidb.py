"""make kcidb: a commit's results as KCIDB v5.3 JSON, validated against our statement of
the published schema (ci/gptool/kcidb_schema.json), with KUnit's statuses, a run that
crashed, selftests, a bench metric as a number and a matrix row no host could run."""
import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import REPO, git
from gptool import kcidb
from gptool.errors import HarnessError

COMMIT = git(REPO, 'rev-parse', 'HEAD')
SCHEMA = json.loads(kcidb.SCHEMA.read_text())
# What kunit.py writes (its JSON), with a failing, a skipped and a parameterised case.
KUNIT_JSON = {'name': 'KUnit Test Group', 'test_cases': [], 'sub_groups': [{
    'name': 'grouped_pages', 'sub_groups': [{
        'name': 'gp_test_orders', 'sub_groups': [],
        'test_cases': [{'name': 'order 0 (4K)', 'status': 'PASS'},
                       {'name': 'order 9 (2M)', 'status': 'PASS'}]}],
    'test_cases': [{'name': 'gp_test_double_free', 'status': 'FAIL'},
                   {'name': 'gp_test_x86_block_stays_mapped_large', 'status': 'SKIP'},
                   {'name': 'gp_test_freed_page_is_reused', 'status': 'PASS'}]}]}
CONSOLE = """\
# selftests: grouped_pages: gp_stress
# 1..3
# ok 1 gp.refill_splits_nothing
# not ok 2 gp.memory_pressure
# ok 3 gp.pks_pgtables # SKIP no PKS
not ok 1 selftests: grouped_pages: gp_stress # exit=1
"""


def meta(**more: Any) -> dict[str, Any]:
    return {'commit': COMMIT, 'dirty': False, 'arch': 'um', 'config': 'default',
            'date': '2026-12-07T18:14:40Z', 'duration_s': 244.9, 'tools': {'gcc': '12.2.0'},
            'base': {'key': 'tarball-x', 'version': '6.12.118'}, **more}


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / 'results'
    run = root / 'kunit' / '20261207T181440Z-abc-um-default'
    write(run / 'meta.json', meta(exit_status=1, summary='Ran 5 tests', boots=1,
                                  command=['kunit.py', 'run'], kernel_report=None))
    write(run / 'kunit.json', KUNIT_JSON)
    write(run / 'console.log', 'kunit.py output\n')
    write(run / 'config', 'CONFIG_GROUPED_PAGES=y\n')
    crashed = root / 'kunit' / '20261207T181500Z-abc-x86_64-kasan'
    write(crashed / 'meta.json', meta(arch='x86_64', config='kasan', exit_status=1, boots=1,
                                      summary=None, command=['kunit.py', 'run'],
                                      kernel_report='BUG: KASAN: use-after-free'))
    write(crashed / 'kunit.json', {'name': 'KUnit Test Group', 'test_cases': [], 'sub_groups': [
        {'name': 'grouped_pages', 'sub_groups': [],
         'test_cases': [{'name': 'gp_test_freed_page_is_reused', 'status': 'PASS'}]}]})
    write(crashed / 'console.log', '')
    other = root / 'kunit' / '20261207T181600Z-def-um-default'
    write(other / 'meta.json', meta(commit='0' * 40, exit_status=0, summary='x', boots=1,
                                    command=['kunit.py']))
    selftests = root / 'selftests' / '20261207T182000Z-abc-x86_64-default'
    write(selftests / 'meta.json', meta(arch='x86_64', dirty=True, diff_sha256='a' * 64,
                                        passed=1, failed=1, skipped=1, problems=[]))
    write(selftests / 'console.log', CONSOLE)
    bench = root / 'bench' / '20261207T183000Z-abc-x86_64-default-tcg'
    write(bench / 'result.json', meta(arch='x86_64', mode='tcg', metrics={
        'fastpath.cpus2.ratio': {'unit': 'ratio', 'direction': 'lower', 'deterministic': False,
                                 'samples': [1.5, 1.1, 1.2]}}))
    write(bench / 'console.log', '')
    matrix = root / 'matrix-20261207T190000Z'
    for row, kind in (('um-default-max', 'passed'), ('selftests-kasan-max', 'infrastructure')):
        write(matrix / f'{row}.json', {
            'row': row, 'host': 'build2', 'kind': kind, 'status': 0, 'commit': COMMIT,
            'dirty': False, 'date': '2026-12-07T19:00:00Z', 'duration_s': 12.5,
            'message': '' if kind == 'passed' else 'make exited with status 1 before gptool '
                       'gave a verdict', 'arch': row.split('-')[0], 'config': 'default',
            'results': [str(run)] if kind == 'passed' else [], 'cache': None})
        write(matrix / f'{row}.log', '')
    return root


def by_path(data: dict[str, Any], build_part: str) -> dict[str, dict[str, Any]]:
    return {t['path']: t for t in data['tests'] if build_part in t['build_id']}


def test_a_commits_results_as_kcidb(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert kcidb.run(REPO, results, COMMIT, 'grouped_pages') == 0
    [out] = (results / 'kcidb').glob(f'*-{COMMIT[:12]}.json')
    assert str(out) in capsys.readouterr().out
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data['version'] == {'major': 5, 'minor': 3}
    # The commit clean and with the selftests' uncommitted changes: two checkouts.
    assert sorted(c['id'] for c in data['checkouts']) == \
        [f'grouped_pages:{COMMIT}', f'grouped_pages:{COMMIT}+{"a" * 64}']
    assert {b['architecture'] for b in data['builds']} == {'um', 'x86_64'}
    assert not any('def-um-default' in b['id'] for b in data['builds'])  # another commit's
    kunit = by_path(data, '181440Z-abc-um-default')
    assert kunit['grouped_pages.gp_test_double_free']['status'] == 'FAIL'
    assert kunit['grouped_pages.gp_test_x86_block_stays_mapped_large']['status'] == 'SKIP'
    assert kunit['grouped_pages.gp_test_freed_page_is_reused']['status'] == 'PASS'
    assert kunit['grouped_pages.gp_test_orders.order_9_2M']['status'] == 'PASS'
    assert kunit['']['status'] == 'FAIL' and kunit['']['duration'] == 244.9
    assert kunit['grouped_pages.gp_test_double_free']['log_url'] == (
        results / 'kunit/20261207T181440Z-abc-um-default/console.log').as_uri()
    crashed = by_path(data, 'x86_64-kasan')
    assert crashed['']['status'] == 'ERROR'
    assert crashed['']['comment'] == 'the kernel reported "BUG: KASAN: use-after-free"'
    selftests = by_path(data, 'selftests/')
    assert {p: t['status'] for p, t in selftests.items()} == {
        'kselftest.grouped_pages.gp.refill_splits_nothing': 'PASS',
        'kselftest.grouped_pages.gp.memory_pressure': 'FAIL',
        'kselftest.grouped_pages.gp.pks_pgtables': 'SKIP', '': 'FAIL'}
    bench = by_path(data, 'bench/')['bench.fastpath.cpus2.ratio']
    assert bench['status'] == 'DONE' and bench['number'] == {'value': 1.2, 'unit': 'ratio'}
    rows = by_path(data, '')
    assert rows['matrix.um-default-max']['status'] == 'PASS'
    assert rows['matrix.um-default-max']['build_id'] == kunit['']['build_id']
    assert rows['matrix.selftests-kasan-max']['status'] == 'MISS'
    for obj in data['checkouts'] + data['builds'] + data['tests']:
        for key in ('start_time', '_timestamp'):
            if key in obj:
                assert datetime.datetime.fromisoformat(obj[key]).utcoffset() is not None
        for key in ('log_url', 'config_url'):
            if key in obj:
                assert obj[key].startswith('file:///')
    assert len({t['id'] for t in data['tests']}) == len(data['tests'])


@pytest.mark.parametrize('bad, where', [
    ({'status': 'PASSED'}, 'tests/0/status'),
    ({'path': 'grouped pages.x'}, 'tests/0/path'),
    ({'origin': 'Grouped-Pages'}, 'tests/0/origin'),
    ({'number': {'unit': 'ns'}}, 'tests/0/number'),
    ({'result': 'PASS'}, 'tests/0'),
])
def test_the_schema_refuses_what_kcidb_refuses(bad: dict[str, Any], where: str) -> None:
    test = {'id': 'grouped_pages:t', 'build_id': 'grouped_pages:b', 'origin': 'grouped_pages',
            'path': 'grouped_pages.x', 'status': 'PASS', **bad}
    with pytest.raises(HarnessError, match=f'at {where}:'):
        kcidb.validate({'version': {'major': 5, 'minor': 3}, 'tests': [test]})
    with pytest.raises(HarnessError, match='at tests/0:.*build_id'):
        kcidb.validate({'version': {'major': 5}, 'tests': [{'id': 'o:t', 'origin': 'o'}]})


def test_bad_requests_are_named(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="COMMIT='no-such-rev' is not a commit") as err:
        kcidb.run(REPO, tmp_path, 'no-such-rev', 'grouped_pages')
    assert err.value.status == 2
    with pytest.raises(HarnessError, match="valid is \\[a-z0-9_\\]\\+"):
        kcidb.run(REPO, tmp_path, COMMIT, 'Grouped Pages')
    with pytest.raises(HarnessError, match=f'no results of {COMMIT[:12]}'):
        kcidb.run(REPO, tmp_path, COMMIT, 'grouped_pages')


def test_make_kcidb_writes_a_new_file_each_time(results: Path) -> None:
    for _ in range(2):
        subprocess.run(['/usr/bin/python3', '-m', 'gptool', '--repo', str(REPO), 'kcidb',
                        '--results', str(results), '--commit', COMMIT], cwd=REPO / 'ci', check=True,
                       capture_output=True)
    assert len(list((results / 'kcidb').glob('*.json'))) == 2
