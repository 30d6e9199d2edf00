"""make matrix HOSTS=...: three sshd hosts in network namespaces on this machine, each
with its own /root and GP_WORK, and (for the real run) a redis cache server on their
bridge. Nothing leaves the machine.

The quick tests put a stand-in `make` (data/fake-make) first in the hosts' PATH: the
transfer of the commit and the uncommitted diff, the retry when a host dies mid-row,
unreachable hosts and the table are tested in seconds. The real test
(GP_SCALEOUT_E2E=1, `make matrix-hosts-test`) builds two UML rows and one x86_64 row on
the hosts with a shared ccache, kills a host mid-build, then has a host with an empty
local cache build a row again, and the same row run here: the figures go to
results/scaleout/<time>.json.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sshhosts
from conftest import REPO, git, working_copy
from gptool import errors

pytestmark = pytest.mark.skipif(
    not sshhosts.can_start(),
    reason='needs root with network and mount namespaces (not in an unprivileged container) '
    'and openssh-server: make deps, as root')

FAKE_MAKE = Path(__file__).parent / 'data' / 'fake-make'
ROWS = ['um-default-max', 'um-lockdep-max', 'x86_64-default-max']


def repo_copy(dest: Path) -> Path:
    """This tree as it is now plus an untracked file: what a developer runs the matrix from."""
    working_copy(dest)
    (dest / 'scaleout-marker.txt').write_text('sent as part of the diff\n')
    return dest


def run_matrix(copy: Path, rows: list[str], env: dict[str, str],
               timeout: int = 120) -> tuple[subprocess.CompletedProcess[str], Path]:
    before = set((copy / 'results').glob('matrix-*/'))
    proc = subprocess.run(['bash', 'ci/matrix.sh', *rows], cwd=copy, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **env})
    [logs] = set((copy / 'results').glob('matrix-*/')) - before
    return proc, logs


def table_rows(logs: Path) -> dict[str, list[str]]:
    """Row name -> its cells, split on the table's column gaps (two or more spaces)."""
    lines = (logs / 'table.txt').read_text().splitlines()
    header = re.split(r'\s{2,}', lines[0])
    cells = [re.split(r'\s{2,}', line) for line in lines[1:] if not line.startswith('matrix:')]
    return {c[0]: c for c in cells if len(c) == len(header)}


def comparable(cells: list[str]) -> list[str]:
    """What a row came to, apart from where, how fast and where its results are:
    row, passed, failed, skipped, verdict."""
    return [cells[0], *cells[5:8], cells[10]]


def tried_on(logs: Path, row: str) -> list[str]:
    return re.findall(rf'matrix-try: {row} on (\w+)', (logs / 'console.log').read_text())


@pytest.fixture(scope='module')
def fake_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshhosts.Lab]:
    base = tmp_path_factory.mktemp('fake-hosts')
    bin_dir = base / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'make').symlink_to(FAKE_MAKE)
    works = {name: base / name / 'gp-work' for name in ('h1', 'h2', 'h3')}
    lab = sshhosts.start(base / 'lab', works,
                         env={'PATH': f'{bin_dir}:/usr/bin:/bin:/usr/sbin:/sbin', 'FAKE_SLEEP': '8'})
    try:
        yield lab
    finally:
        sshhosts.stop(lab)


def test_rows_run_on_the_hosts_and_a_dead_host_means_a_retry(
        fake_lab: sshhosts.Lab, tmp_path: Path) -> None:
    copy = repo_copy(tmp_path / 'repo')
    victim = fake_lab.host('h2')
    killed: list[int] = []

    def kill_h2_mid_row() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for console in (copy / 'results').glob('matrix-*/console.log'):
                if re.search(r'matrix-try: \S+ on h2, started', console.read_text()):
                    time.sleep(1)
                    killed.extend(sshhosts.kill(fake_lab, victim))
            time.sleep(0.2)

    killer = threading.Thread(target=kill_h2_mid_row)
    killer.start()
    proc, logs = run_matrix(copy, ROWS, {'HOSTS': str(fake_lab.hosts_file())})
    killer.join()
    sshhosts.restart(fake_lab, victim)
    assert killed, 'h2 never started a row'
    # um-lockdep fails in the stand-in: a failure of the code, reported as such.
    assert proc.returncode == errors.EXIT_STATUS[errors.FAILURE], proc.stdout + proc.stderr
    rows = table_rows(logs)
    assert sorted(rows) == sorted(ROWS)
    retried = [row for row in ROWS if tried_on(logs, row)[:1] == ['h2']]
    assert len(retried) == 1, (logs / 'console.log').read_text()
    [row] = retried
    assert re.fullmatch(r'h[13] \(after h2\)', rows[row][1])
    for name, cells in rows.items():
        record = json.loads((logs / f'{name}.json').read_text())
        assert record['host'] in ('h1', 'h3') and cells[1].startswith(record['host'])
        assert cells[5:8] == (['9', '1', '2'] if 'lockdep' in name else ['10', '0', '2'])
        assert cells[10] == ('FAIL: 1 tests failed' if 'lockdep' in name else 'PASS')
        # The exact commit and the uncommitted diff, untracked file included.
        assert record['commit'] == git(copy, 'rev-parse', 'HEAD') and record['dirty']
        assert 'marker: sent as part of the diff' in (logs / f'{name}.log').read_text()
        [result] = record['results']
        assert (logs / result / 'meta.json').is_file() and cells[-1] == str(logs / result)
    assert (logs / 'table.txt').read_text().splitlines()[-1] == \
        'matrix: 2 passed, 1 failed, 0 not run (infrastructure)'

    # The same rows here, with the same stand-in: the same table rows, bar host and times.
    stand_in = f'{fake_lab.dir.parent / "bin"}:{os.environ["PATH"]}'
    local, local_logs = run_matrix(copy, ROWS, {'PATH': stand_in, 'FAKE_SLEEP': '0'})
    assert local.returncode == errors.EXIT_STATUS[errors.FAILURE], local.stdout + local.stderr
    here = table_rows(local_logs)
    assert {r: comparable(c) for r, c in here.items()} == \
        {r: comparable(c) for r, c in rows.items()}
    assert all(cells[1] == 'local' for cells in here.values())


def test_no_reachable_host_is_infrastructure_not_a_failure(
        fake_lab: sshhosts.Lab, tmp_path: Path) -> None:
    copy = repo_copy(tmp_path / 'repo')
    gone = fake_lab.host('h3')
    sshhosts.kill(fake_lab, gone)
    try:
        proc, logs = run_matrix(copy, ['um-default-max'],
                                {'HOSTS': str(fake_lab.hosts_file(['h3']))})
    finally:
        sshhosts.restart(fake_lab, gone)
    assert proc.returncode == errors.EXIT_STATUS[errors.INFRASTRUCTURE], proc.stdout + proc.stderr
    table = (logs / 'table.txt').read_text()
    assert re.search(r'^um-default-max\s+-\s.*NOT RUN', table, re.M), table
    assert f'host not reachable at the start, not used: {gone.sshlogin(fake_lab)}' in table


def test_hosts_must_be_a_file_of_sshlogins(tmp_path: Path) -> None:
    (tmp_path / 'empty').write_text('# no host\n\n')
    for hosts in (tmp_path / 'empty', tmp_path / 'missing'):
        proc = subprocess.run(['bash', str(REPO / 'ci/matrix.sh'), 'um-default-max'],
                              capture_output=True, text=True,
                              env={**os.environ, 'HOSTS': str(hosts)})
        assert proc.returncode == 2
        assert f'HOSTS={hosts} is not a file of sshlogins' in proc.stderr


def built_objects(work: Path, row: str) -> int:
    arch, config, _ = row.split('-', 2)
    return sum(1 for _ in work.glob(f'build/*/{arch}-{config}/**/*.o'))


@pytest.mark.skipif(not os.environ.get('GP_SCALEOUT_E2E'),
                    reason='builds three kernels on three hosts: make matrix-hosts-test')
def test_three_hosts_a_shared_cache_and_a_host_killed_mid_build(tmp_path: Path) -> None:
    started = time.monotonic()
    base = tmp_path
    # GP_WORK paths of different lengths: cache hits must not depend on where a host keeps it.
    works = {'h1': base / 'h1' / 'w', 'h2': base / 'host-two' / 'gp' / 'work',
             'h3': base / 'h3' / 'a' / 'b' / 'grouped-pages'}
    lab = sshhosts.start(base / 'lab', works)
    cache = {'CACHE_BIND': lab.gateway, 'CACHE_PORT': str(6300 + int(lab.tag) % 1000),
             'CACHE_SERVER_DIR': str(base / 'cache-server')}
    url = f'redis://{lab.gateway}:{cache["CACHE_PORT"]}'
    server = subprocess.run(['bash', str(REPO / 'ci/cache-server.sh'), 'start'], text=True,
                            capture_output=True, env={**os.environ, **cache})
    measured: dict[str, object] = {'commit': git(REPO, 'rev-parse', 'HEAD'),
                                   'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    try:
        assert server.returncode == 0, server.stdout + server.stderr
        copy = repo_copy(base / 'repo')
        env = {'HOSTS': str(lab.hosts_file()), 'CCACHE_REMOTE_STORAGE': url}
        # Kill the host of a UML row once its build is under way (and partly in the cache).
        killed: list[str] = []

        def kill_mid_build() -> None:
            deadline = time.monotonic() + 3000
            while time.monotonic() < deadline and not killed:
                for console in (copy / 'results').glob('matrix-*/console.log'):
                    for row, name in re.findall(r'matrix-try: (um-\S+) on (h\d), started',
                                                console.read_text()):
                        if built_objects(works[name], row) >= 400:
                            sshhosts.kill(lab, lab.host(name))
                            killed.extend([name, row])
                            return
                time.sleep(2)

        killer = threading.Thread(target=kill_mid_build)
        killer.start()
        first, logs = run_matrix(copy, ROWS, env, timeout=5400)
        killer.join()
        measured['three_rows_s'] = round(time.monotonic() - started)
        assert killed, 'no UML row got far enough to be killed mid-build'
        victim, row = killed
        assert first.returncode == 0, first.stdout[-5000:] + first.stderr
        rows = table_rows(logs)
        assert sorted(rows) == sorted(ROWS) and all(c[10] == 'PASS' for c in rows.values())
        assert re.fullmatch(rf'h\d \(after {victim}\)', rows[row][1]), rows[row]
        retry = json.loads((logs / f'{row}.json').read_text())
        assert retry['cache']['remote_hits'] > 0, retry['cache']
        for name in ROWS:
            record = json.loads((logs / f'{name}.json').read_text())
            [result] = record['results']
            meta = json.loads((logs / result / 'meta.json').read_text())
            assert meta['commit'] == git(copy, 'rev-parse', 'HEAD') and meta['dirty']
            assert meta['arch'] == name.split('-')[0]
        measured['first_run'] = {name: json.loads((logs / f'{name}.json').read_text())['cache']
                                 | {'host': rows[name][1], 'wall_s': rows[name][4]}
                                 for name in ROWS}

        # The dead host comes back with an empty local cache and no build directory: its
        # build of the row is the second build of that configuration on another path.
        for stale in ('ccache', 'build'):
            shutil.rmtree(works[victim] / stale, ignore_errors=True)
        sshhosts.restart(lab, lab.host(victim))
        again, again_logs = run_matrix(copy, [row], {**env, 'HOSTS': str(lab.hosts_file([victim]))},
                                       timeout=3600)
        assert again.returncode == 0, again.stdout[-5000:] + again.stderr
        second = json.loads((again_logs / f'{row}.json').read_text())
        use = second['cache']
        calls = use['hits'] + use['misses']
        measured['second_build'] = {'row': row, 'host': victim, **use,
                                    'hit_rate': round(use['hits'] / calls, 3),
                                    'duration_s': second['duration_s']}
        assert use['hits'] >= 0.9 * calls and use['remote_hits'] >= 0.9 * use['hits'], use

        # The same row here: the same table row, bar host, times and result path; what it
        # compiles comes from a cache: the hosts', or this GP_WORK's own when it built
        # the row's sources before (make test's kunit step does: then remote_hits is 0).
        here, here_logs = run_matrix(copy, [row], {'CCACHE_REMOTE_STORAGE': url}, timeout=3600)
        assert here.returncode == 0, here.stdout[-5000:] + here.stderr
        local = json.loads((here_logs / f'{row}.json').read_text())
        measured['here'] = {**local['cache'], 'duration_s': local['duration_s']}
        local_calls = local['cache']['hits'] + local['cache']['misses']
        assert local['cache']['hits'] >= 0.9 * local_calls, local['cache']
        assert comparable(table_rows(here_logs)[row]) == comparable(table_rows(again_logs)[row]) \
            == comparable(rows[row])
        measured['total_s'] = round(time.monotonic() - started)
    finally:
        subprocess.run(['bash', str(REPO / 'ci/cache-server.sh'), 'stop'],
                       capture_output=True, env={**os.environ, **cache})
        sshhosts.stop(lab)
        out = REPO / 'results' / 'scaleout'
        out.mkdir(parents=True, exist_ok=True)
        (out / f'{measured["date"]}.json').write_text(json.dumps(measured, indent=2) + '\n')
        for work in works.values():
            shutil.rmtree(work, ignore_errors=True)
