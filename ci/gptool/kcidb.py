"""`make kcidb`: the results of one commit as KernelCI's KCIDB JSON (schema v5.3), so that
KCIDB dashboards and kci-dev read our runs next to theirs.

One checkout per state of the code (the commit, or the commit and a hash of the
uncommitted changes it ran with); one build per run (a KUnit run's kernel, a selftests
or bench kernel); tests under it:
  KUnit         path <suite>.<case> (nested groups and parameters add components), and
                the run itself as path "" (all the tests of the build): PASS, FAIL, SKIP,
                or ERROR when the kernel crashed, hung or warned without a failing case
  selftests     kselftest.grouped_pages.<test>, and the run as ""
  bench         bench.<metric>: DONE with the median of its samples as number, its unit
  matrix rows   matrix.<row>: PASS, FAIL, or MISS when no host could run it
Log and config URLs are file:// URLs of the result files here. Every object is checked
against kcidb_schema.json (the published schema's required fields, types and patterns).
"""
import json
import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import junit, ktap, provenance
from .errors import INFRASTRUCTURE, PASSED_KIND, HarnessError
from .fsutil import write_atomic

SCHEMA = Path(__file__).with_name('kcidb_schema.json')
VERSION = {'major': 5, 'minor': 3}
ORIGIN = 'grouped_pages'
KUNIT_STATUS = {'PASS': 'PASS', 'FAIL': 'FAIL', 'SKIP': 'SKIP', 'ERROR': 'ERROR',
                'CRASHED': 'ERROR', 'TEST_CRASHED': 'ERROR'}


def path_part(name: str) -> str:
    """A component of a KCIDB test path: [a-zA-Z0-9_-]+ (parameter names may hold more)."""
    return re.sub(r'[^a-zA-Z0-9_-]+', '_', name).strip('_') or '_'


def test_path(*names: str) -> str:
    """Names (dots in them separate components, as in gp.refill) as a KCIDB test path."""
    return '.'.join(path_part(part) for name in names for part in name.split('.'))


def file_url(path: Path) -> str:
    return path.resolve().as_uri()


def iso(date: str) -> str:
    """Our dates (2026-12-07T18:14:40Z) as RFC 3339 with an offset, as KCIDB writes them."""
    return date.replace('Z', '+00:00')


@dataclass
class Report:
    origin: str
    checkouts: dict[str, dict[str, Any]]
    builds: list[dict[str, Any]]
    tests: list[dict[str, Any]]

    def id(self, *parts: str) -> str:
        return f'{self.origin}:' + '/'.join(parts)

    def checkout(self, repo: Path, meta: dict[str, Any]) -> str:
        commit = str(meta['commit'])
        key = commit + (f'+{meta["diff_sha256"]}' if meta.get('dirty') else '')
        if key not in self.checkouts:
            subject = subprocess.run(['git', '-C', str(repo), 'log', '-1', '--format=%s', commit],
                                     capture_output=True, text=True).stdout.strip()
            name = subprocess.run(['git', '-C', str(repo), 'describe', '--always', commit],
                                  capture_output=True, text=True).stdout.strip()
            checkout: dict[str, Any] = {
                'id': self.id(key), 'origin': self.origin, 'tree_name': 'grouped-pages',
                'git_commit_hash': commit, 'git_commit_name': name or commit[:12],
                'comment': subject or commit, 'valid': True,
                'misc': {'dirty': bool(meta.get('dirty')), 'base': meta.get('base')}}
            if meta.get('dirty'):
                checkout['patchset_hash'] = meta['diff_sha256']
            self.checkouts[key] = checkout
        return str(self.checkouts[key]['id'])

    def build(self, repo: Path, kind: str, result: Path, meta: dict[str, Any], status: str,
              log: str, **more: Any) -> str:
        build_id = self.id('build', kind, result.name)
        build: dict[str, Any] = {
            'id': build_id, 'checkout_id': self.checkout(repo, meta), 'origin': self.origin,
            'architecture': str(meta.get('arch') or 'x86_64').replace('-', '_'),
            'config_name': str(meta.get('config', '')), 'status': status,
            'start_time': iso(str(meta['date'])),
            'compiler': f'gcc {meta.get("tools", {}).get("gcc", "")}'.strip(),
            'misc': {'result': str(result), 'config_sha256': meta.get('config_sha256')},
            **more}
        if (result / 'config').is_file():
            build['config_url'] = file_url(result / 'config')
        if (result / log).is_file():
            build['log_url'] = file_url(result / log)
        self.builds.append(build)
        return build_id

    def test(self, build_id: str, path: str, status: str, **more: Any) -> None:
        self.tests.append({'id': f'{build_id.replace(":build/", ":test/", 1)}/{path or "run"}',
                           'build_id': build_id, 'origin': self.origin, 'path': path,
                           'status': status, **more})


def read_meta(result: Path, name: str = 'meta.json') -> dict[str, Any] | None:
    try:
        meta = json.loads((result / name).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def add_kunit(report: Report, repo: Path, result: Path, meta: dict[str, Any]) -> str:
    command = meta.get('command')
    first = command[0] if command and isinstance(command[0], list) else command
    build_id = report.build(repo, 'kunit', result, meta, 'PASS' if meta.get('summary') or
                            meta.get('boots') else 'FAIL', 'console.log',
                            command=' '.join(first or []), duration=float(meta['duration_s']))
    log = file_url(result / 'console.log')
    data = read_meta(result, 'kunit.json') or {}
    statuses = []
    for suite_path, case, status in junit.kunit_cases(data, ''):
        # The top group is kunit.py's own ("KUnit Test Group"): suites start below it.
        parts = suite_path.split('.')[1:] + [case]
        statuses.append(KUNIT_STATUS.get(status, 'ERROR'))
        report.test(build_id, test_path(*parts), statuses[-1], log_url=log)
    if meta.get('exit_status') == 0:
        run = 'PASS'
    else:
        run = 'FAIL' if 'FAIL' in statuses else 'ERROR'
    problem = meta.get('kernel_report') or ', '.join(meta.get('boot_selftests_not_passed') or [])
    report.test(build_id, '', run, log_url=log, start_time=iso(str(meta['date'])),
                duration=float(meta['duration_s']),
                **({'comment': f'the kernel reported "{problem}"'} if problem else {}))
    return build_id


def add_selftests(report: Report, repo: Path, result: Path, meta: dict[str, Any]) -> str:
    built = not meta.get('build_failed')
    build_id = report.build(repo, 'selftests', result, meta, 'PASS' if built else 'FAIL',
                            'build.log' if not built else 'console.log')
    if not built:
        return build_id
    log = file_url(result / 'console.log')
    console = (result / 'console.log').read_text(errors='replace')
    for case in ktap.parse(console).cases:
        report.test(build_id, test_path('kselftest', 'grouped_pages', case.name), case.status,
                    log_url=log, **({'comment': case.detail} if case.detail else {}))
    problems = meta.get('problems') or []
    run = 'PASS' if not problems and not meta.get('failed') else \
        'FAIL' if meta.get('failed') else 'ERROR'
    report.test(build_id, '', run, log_url=log, start_time=iso(str(meta['date'])),
                duration=float(meta['duration_s']),
                **({'comment': '; '.join(problems)} if problems else {}))
    return build_id


def add_bench(report: Report, repo: Path, result: Path, data: dict[str, Any]) -> str:
    build_id = report.build(repo, 'bench', result, data, 'PASS', 'console.log',
                            misc={'result': str(result), 'mode': data.get('mode'),
                                  'workload': data.get('workload'),
                                  'config_sha256': data.get('config_sha256')})
    for name, metric in sorted(data['metrics'].items()):
        report.test(build_id, test_path('bench', name), 'DONE',
                    number={'value': statistics.median(metric['samples']), 'unit': metric['unit']},
                    log_url=file_url(result / 'console.log'),
                    misc={'samples': metric['samples'], 'direction': metric['direction'],
                          'deterministic': metric['deterministic']})
    return build_id


def add_matrix_row(report: Report, repo: Path, logs: Path, record: dict[str, Any],
                   builds: dict[Path, str]) -> None:
    row = str(record['row'])
    results = [r if r.startswith('/') else str(logs / r) for r in record.get('results', [])]
    build_id = next((builds[Path(r).resolve()] for r in results if Path(r).resolve() in builds),
                    None)
    kind = record['kind']
    if build_id is None:  # the row left no result we know: a build that never was
        selftests = record.get('arch') == 'selftests'
        build_id = report.build(repo, 'matrix', logs / row,
                                {**record, 'arch': 'x86_64'} if selftests else record,
                                'MISS' if kind == INFRASTRUCTURE else 'FAIL', f'{row}.log')
    status = 'PASS' if kind == PASSED_KIND else 'MISS' if kind == INFRASTRUCTURE else 'FAIL'
    report.test(build_id, test_path('matrix', row), status,
                log_url=file_url(logs / f'{row}.log'), duration=float(record['duration_s']),
                start_time=iso(str(record['date'])),
                environment={'comment': f'host {record["host"]}',
                             'misc': {'cache': record.get('cache')}},
                **({'comment': record['message']} if record.get('message') else {}))


def collect(repo: Path, results: Path, commit: str, origin: str = ORIGIN) -> dict[str, Any]:
    """Every stored result of @commit (a full hash) under @results, as KCIDB data."""
    report = Report(origin, {}, [], [])
    builds: dict[Path, str] = {}
    roots = [results, *sorted(d for d in results.glob('matrix-*/*/') if d.is_dir())]
    for root in roots:
        for result in sorted(root.glob('kunit/*/')) + sorted(root.glob('selftests/*/')):
            meta = read_meta(result)
            if meta and meta.get('commit') == commit:
                add = add_kunit if result.parent.name == 'kunit' else add_selftests
                builds[result.resolve()] = add(report, repo, result, meta)
    for result in sorted(results.glob('bench/*/')):
        data = read_meta(result, 'result.json')
        if data and data.get('commit') == commit:
            add_bench(report, repo, result, data)
    for record_file in sorted(results.glob('matrix-*/*.json')):
        record = read_meta(record_file.parent, record_file.name)
        if record and record.get('commit') == commit and 'row' in record:
            add_matrix_row(report, repo, record_file.parent, record, builds)
    return {'version': VERSION, 'checkouts': list(report.checkouts.values()),
            'builds': report.builds, 'tests': report.tests}


def validate(data: dict[str, Any]) -> None:
    """Against kcidb_schema.json; the first error names the object and the field."""
    import jsonschema  # Debian's python3-jsonschema (ci/deps)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.path))), None)
    if error is not None:
        where = '/'.join(str(p) for p in error.path) or '(top)'
        raise HarnessError(f'KCIDB data does not fit the schema at {where}: {error.message}')


def run(repo: Path, results: Path, revision: str, origin: str) -> int:
    if not re.fullmatch(r'[a-z0-9_]+', origin):
        raise HarnessError(f'KCIDB origin {origin!r}: valid is [a-z0-9_]+, e.g. {ORIGIN}', 2)
    proc = subprocess.run(['git', '-C', str(repo), 'rev-parse', '--verify', '--quiet',
                           f'{revision}^{{commit}}'], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f'COMMIT={revision!r} is not a commit of {repo}: valid is a '
                           'revision git rev-parse knows (HEAD, a tag, a sha)', 2)
    commit = proc.stdout.strip()
    data = collect(repo, results, commit, origin)
    if not data['builds']:
        raise HarnessError(f'no results of {commit[:12]} in {results} (kunit, selftests, bench, '
                           'matrix): run make kunit, make matrix... on that commit first')
    validate(data)
    out = results / 'kcidb' / f'{provenance.utc_now():%Y%m%dT%H%M%SZ}-{commit[:12]}.json'
    while out.exists():  # never overwrite a report
        out = out.with_name(out.stem + '-1.json')
    write_atomic(out, (json.dumps(data, indent=1) + '\n').encode())
    print(f'kcidb: {len(data["checkouts"])} checkouts, {len(data["builds"])} builds, '
          f'{len(data["tests"])} tests of {commit[:12]}: {out}')
    return 0
