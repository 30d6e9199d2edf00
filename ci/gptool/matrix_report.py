"""The table `make matrix` ends with: one line per row, read from each row's own log.

Each row is a `make kunit` (or, for "selftests" rows, a `make selftests`) whose output
ci/matrix.sh keeps in <logs>/<ARCH or selftests>-<CONFIG>-<CPU>.log; GNU parallel's job
log gives each row's exit status and wall time, and names the row by that log.
"""
import re
from dataclasses import dataclass
from pathlib import Path

ELAPSED = re.compile(r'Elapsed time: [\d.]+s total, [\d.]+s configuring, ([\d.]+)s building, '
                     r'([\d.]+)s running')
COUNTS = re.compile(r'^(?:kunit|selftests) \S+/\S+(?: \([^)]*\))?: (\d+) passed, (\d+) failed, '
                    r'(\d+) skipped', re.M)
RESULTS = re.compile(r'(?:(?:kunit|selftests) results: |\((?:results|console log): )(\S+?)\)?$',
                     re.M)
ROW_LOG = re.compile(r'tee \S*?([^/\s]+)\.log')
ERROR = re.compile(r'^error: (.*)$', re.M)


@dataclass
class Row:
    name: str
    build_s: str
    run_s: str
    wall_s: str
    passed: str
    failed: str
    skipped: str
    verdict: str
    results: str


def read_row(name: str, log: str, exit_status: int | None, wall_s: float | None) -> Row:
    elapsed = ELAPSED.findall(log)
    counts = COUNTS.search(log)
    results = RESULTS.findall(log)
    error = ERROR.findall(log)
    if exit_status is None:
        verdict = 'NOT RUN'
    elif exit_status == 0:
        verdict = 'PASS'
    else:
        reason = error[-1].split(': ', 1)[-1] if error else f'exit {exit_status}'
        verdict = 'FAIL: ' + re.sub(r' \(results: \S+\)$', '', reason)
    return Row(name=name,
               build_s=f'{sum(float(b) for b, _ in elapsed):.0f}' if elapsed else '-',
               run_s=f'{sum(float(r) for _, r in elapsed):.0f}' if elapsed else '-',
               wall_s=f'{wall_s:.0f}' if wall_s is not None else '-',
               passed=counts.group(1) if counts else '-',
               failed=counts.group(2) if counts else '-',
               skipped=counts.group(3) if counts else '-',
               verdict=verdict, results=results[-1] if results else '-')


def read_joblog(joblog: Path) -> dict[str, tuple[int, float]]:
    """Row name (its log's name) -> (exit status, wall seconds), from parallel --joblog."""
    rows: dict[str, tuple[int, float]] = {}
    for line in joblog.read_text().splitlines()[1:]:
        fields = line.split('\t')
        row = ROW_LOG.search(fields[8]) if len(fields) >= 9 else None
        if row:
            rows[row.group(1)] = (int(fields[6]), float(fields[3]))
    return rows


def table(matrix: Path, joblog: Path, logs: Path) -> str:
    jobs = read_joblog(joblog) if joblog.is_file() else {}
    rows = []
    for line in matrix.read_text().splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        name = '-'.join(line.split())
        log = logs / f'{name}.log'
        status, wall = jobs.get(name, (None, None))
        rows.append(read_row(name, log.read_text(errors='replace') if log.is_file() else '',
                             status, wall))
    header = ('row', 'build s', 'run s', 'wall s', 'passed', 'failed', 'skipped', 'verdict',
              'results')
    cells = [header] + [(r.name, r.build_s, r.run_s, r.wall_s, r.passed, r.failed, r.skipped,
                         r.verdict, r.results) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = ['  '.join(c[i].ljust(widths[i]) for i in range(len(widths))) + '  ' + c[-1]
             for c in cells]
    return '\n'.join(lines)
