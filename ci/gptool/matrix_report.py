"""The table `make matrix` ends with: one line per row, and the matrix's exit status.

Each row leaves <logs>/<row>.log (its output) and <logs>/<row>.json (matrix_row: where
it ran, its kind of outcome, its compiler-cache use, its result directories). GNU
parallel's job log gives the wall time of each row's last try and the host it ran on;
the console log (console.log) names every host a row was tried on and the hosts that
were unreachable at the start. Runs from before the records (a job log and row logs
only) still get their table.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EXIT_STATUS, FAILURE, INFRASTRUCTURE, PASSED_KIND

ELAPSED = re.compile(r'Elapsed time: [\d.]+s total, [\d.]+s configuring, ([\d.]+)s building, '
                     r'([\d.]+)s running')
COUNTS = re.compile(r'^(?:kunit|selftests) \S+/\S+(?: \([^)]*\))?: (\d+) passed, (\d+) failed, '
                    r'(\d+) skipped', re.M)
RESULTS = re.compile(r'(?:(?:kunit|selftests) results: |\((?:results|console log): )(\S+?)\)?$',
                     re.M)
# The row a job-log line ran: ci/matrix.sh's command ends "ARCH CONFIG CPU; fi"; before
# the row records, it piped into "tee <logs>/<row>.log".
ROW_COMMAND = re.compile(r'(\S+) (\S+) (\S+); fi$')
ROW_LOG = re.compile(r'tee \S*?([^/\s]+)\.log')
ERROR = re.compile(r'^error: (.*)$', re.M)
TRY = re.compile(r'matrix-try: (\S+) on ([^\s,:]+)')
REMOVED = re.compile(r'^parallel: Warning: Removed (.*)\.$', re.M)
HEADER = ('row', 'host', 'build s', 'run s', 'wall s', 'passed', 'failed', 'skipped', 'cache',
          'remote', 'verdict', 'results')


@dataclass
class Row:
    name: str
    host: str
    build_s: str
    run_s: str
    wall_s: str
    passed: str
    failed: str
    skipped: str
    cache: str
    remote: str
    verdict: str
    results: str
    kind: str

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.host, self.build_s, self.run_s, self.wall_s, self.passed,
                self.failed, self.skipped, self.cache, self.remote, self.verdict, self.results)


@dataclass(frozen=True)
class Job:
    status: int
    wall_s: float
    host: str


def read_joblog(joblog: Path) -> dict[str, Job]:
    """Row name -> its last try, from parallel --joblog (which logs only the last try)."""
    jobs: dict[str, Job] = {}
    if not joblog.is_file():
        return jobs
    for line in joblog.read_text().splitlines()[1:]:
        fields = line.split('\t')
        if len(fields) < 9:
            continue
        command = ROW_COMMAND.search(fields[8])
        name = '-'.join(command.groups()) if command else None
        if name is None and (log := ROW_LOG.search(fields[8])):
            name = log.group(1)
        if name:
            host = 'local' if fields[1] in (':', '') else fields[1]
            jobs[name] = Job(int(fields[6]), float(fields[3]), host)
    return jobs


def tries(console: str) -> dict[str, list[str]]:
    """Row name -> the hosts it was tried on, in order (a try prints its marker first)."""
    hosts: dict[str, list[str]] = {}
    for row, host in TRY.findall(console):
        hosts.setdefault(row, []).append(host)
    return hosts


def verdict_of(log: str, kind: str, message: str, status: int | None) -> str:
    if kind == PASSED_KIND:
        return 'PASS'
    error = ERROR.findall(log)
    if kind == INFRASTRUCTURE:
        return 'INFRASTRUCTURE: ' + (message or (error[-1] if error else 'no host ran it'))
    reason = error[-1].split(': ', 1)[-1] if error else (message or f'exit {status}')
    return 'FAIL: ' + re.sub(r' \(results: \S+\)$', '', reason)


def cache_cells(record: dict[str, Any]) -> tuple[str, str]:
    cache = record.get('cache')
    if not cache:
        return '-', '-'
    calls = cache['hits'] + cache['misses']
    return f'{cache["hits"]}/{calls}', str(cache['remote_hits'])


def read_row(name: str, log: str, record: dict[str, Any] | None, job: Job | None,
             tried: list[str], logs: Path) -> Row:
    elapsed = ELAPSED.findall(log)
    counts = COUNTS.search(log)
    results = RESULTS.findall(log)
    if record is not None:
        kind, host = str(record['kind']), str(record['host'])
        verdict = verdict_of(log, kind, str(record.get('message') or ''), record.get('status'))
        kept = [str(logs / r) if not r.startswith('/') else r for r in record.get('results', [])]
        results = kept or results
        cache, remote = cache_cells(record)
    elif job is not None:  # a run from before the records, or a try that left none
        kind = PASSED_KIND if job.status == 0 else (FAILURE if job.status in (1, 2)
                                                else INFRASTRUCTURE)
        host = job.host
        verdict = verdict_of(log, kind, '', job.status)
        cache = remote = '-'
    else:
        kind, host, verdict, cache, remote = INFRASTRUCTURE, '-', 'NOT RUN', '-', '-'
    earlier = tried[:-1] if record is not None else tried
    if earlier:
        host = f'{host} (after {", ".join(earlier)})'
    return Row(name=name, host=host,
               build_s=f'{sum(float(b) for b, _ in elapsed):.0f}' if elapsed else '-',
               run_s=f'{sum(float(r) for _, r in elapsed):.0f}' if elapsed else '-',
               wall_s=f'{job.wall_s:.0f}' if job is not None else '-',
               passed=counts.group(1) if counts else '-',
               failed=counts.group(2) if counts else '-',
               skipped=counts.group(3) if counts else '-',
               cache=cache, remote=remote, verdict=verdict,
               results=results[-1] if results else '-', kind=kind)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def table(matrix: Path, joblog: Path, logs: Path) -> tuple[str, int]:
    """The table and the exit status of the matrix: EXIT_STATUS of its worst row."""
    jobs = read_joblog(joblog)
    console_path = logs / 'console.log'
    console = console_path.read_text(errors='replace') if console_path.is_file() else ''
    tried = tries(console)
    rows = []
    for line in matrix.read_text().splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        name = '-'.join(line.split())
        log = logs / f'{name}.log'
        rows.append(read_row(name, log.read_text(errors='replace') if log.is_file() else '',
                             read_json(logs / f'{name}.json'), jobs.get(name),
                             tried.get(name, []), logs))
    cells = [HEADER] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER) - 1)]
    lines = ['  '.join(c[i].ljust(widths[i]) for i in range(len(widths))) + '  ' + c[-1]
             for c in cells]
    kinds = [r.kind for r in rows]
    passed = kinds.count(PASSED_KIND)
    infra = kinds.count(INFRASTRUCTURE)
    lines.append(f'matrix: {passed} passed, {len(kinds) - passed - infra} failed, '
                 f'{infra} not run (infrastructure)')
    for host in REMOVED.findall(console):
        lines.append(f'matrix: host not reachable at the start, not used: {host}')
    # A failure of the code under test outranks a machine's.
    worst = FAILURE if any(k not in (PASSED_KIND, INFRASTRUCTURE) for k in kinds) else \
        INFRASTRUCTURE if INFRASTRUCTURE in kinds else PASSED_KIND
    return '\n'.join(lines), EXIT_STATUS[worst]
