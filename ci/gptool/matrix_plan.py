"""How long the matrix takes, from measured row times: the order in which `make matrix`
starts its rows (longest first, so the critical path starts first) and the expected wall
time on N hosts of C cores (`make matrix-plan`).

The times are ci/matrix-times.json (measured runs, each with its commit, date, machine
and command) and the GNU parallel job logs of earlier matrix runs here
(results/matrix-<time>.log). A row's cold time is the longest seen, its warm time the
shortest. On C cores the build part of a cold row (cold minus warm) takes 2/C of its
two-core time; the boot and the tests (the warm time) do not get faster.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HarnessError
from .matrix_report import read_joblog

TIMES_FILE = Path('ci/matrix-times.json')
MEASURED_CORES = 2


@dataclass(frozen=True)
class Estimate:
    cold_s: float
    warm_s: float


@dataclass(frozen=True)
class Overheads:
    """Per row on a host: sending the commit, the checkout, ci/deps, the return. Per host,
    once, when cold: extracting the kernel base into its GP_WORK. Per matrix: finding the
    hosts that answer."""
    row_s: float
    host_cold_s: float
    start_s: float = 0.0


def stored(repo: Path) -> dict[str, Any]:
    path = repo / TIMES_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(f'{path}: cannot read the stored row times ({err})') from err


def estimates(repo: Path, joblogs: bool = True) -> dict[str, Estimate]:
    """Each row's cold and warm time, from the stored runs and (@joblogs) the job logs."""
    seen: dict[str, list[float]] = {}
    for run in stored(repo)['runs']:
        for row, seconds in run['rows'].items():
            seen.setdefault(row, []).append(float(seconds))
    for joblog in sorted((repo / 'results').glob('matrix-*.log')) if joblogs else []:
        for row, job in read_joblog(joblog).items():
            if job.status == 0:
                seen.setdefault(row, []).append(job.wall_s)
    return {row: Estimate(max(times), min(times)) for row, times in seen.items()}


def overheads(repo: Path) -> Overheads:
    data = stored(repo)['overheads']
    return Overheads(*(float(data[key]['value']) for key in ('row_s', 'host_cold_s', 'start_s')))


def order(lines: list[str], known: dict[str, Estimate]) -> list[str]:
    """Rows ("ARCH CONFIG CPU") longest first: by cold time, then warm. A row never
    measured goes first, as if it were the longest."""
    longest = max((e.cold_s for e in known.values()), default=0.0)
    rows = [line for line in lines if line.strip()]

    def key(line: str) -> tuple[float, float]:
        estimate = known.get('-'.join(line.split()))
        return (estimate.cold_s, estimate.warm_s) if estimate else (longest + 1, longest + 1)
    return sorted(rows, key=key, reverse=True)


def row_seconds(estimate: Estimate, cold: bool, cores: int) -> float:
    if not cold:
        return estimate.warm_s
    build = max(estimate.cold_s - estimate.warm_s, 0.0)
    return estimate.warm_s + build * MEASURED_CORES / cores


@dataclass
class Schedule:
    wall_s: float
    critical: list[tuple[str, float]]  # the rows of the host that finishes last


def schedule(times: dict[str, float], hosts: int, extra: Overheads, cold: bool) -> Schedule:
    """Longest first, each row to the host that is free first (GNU parallel's order)."""
    free = [extra.start_s] * hosts
    assigned: list[list[tuple[str, float]]] = [[] for _ in range(hosts)]
    for row in sorted(times, key=lambda r: times[r], reverse=True):
        host = min(range(hosts), key=lambda h: free[h])
        seconds = times[row] + extra.row_s + (extra.host_cold_s if cold and not assigned[host]
                                              else 0.0)
        free[host] += seconds
        assigned[host].append((row, seconds))
    last = max(range(hosts), key=lambda h: free[h])
    return Schedule(free[last], assigned[last])


def host_counts(spec: str) -> list[int]:
    """'1,4,8' or a GNU parallel sshloginfile (its number of hosts)."""
    if re.fullmatch(r'\d+(,\d+)*', spec):
        counts = [int(n) for n in spec.split(',')]
        if all(n >= 1 for n in counts):
            return counts
    path = Path(spec)
    if path.is_file():
        hosts = [line for line in path.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith('#')]
        if hosts:
            return [len(hosts)]
    raise HarnessError(f'HOSTS={spec!r}: valid is a number of hosts, several separated by '
                       'commas (1,4,8,24), or a GNU parallel sshloginfile with one host a line', 2)


def minutes(seconds: float) -> str:
    return f'{seconds / 60:.1f} min'


def plan_text(known: dict[str, Estimate], counts: list[int], cores: int,
              extra: Overheads, rows: list[str] | None = None) -> str:
    if cores < 1:
        raise HarnessError(f'CORES={cores}: valid is a number of cores >= 1', 2)
    names = rows if rows is not None else sorted(known)
    lines = [f'matrix plan: {len(names)} rows, hosts of {cores} cores, longest first',
             '| hosts | cold | warm | critical path, cold: the rows of the host that ends last '
             '(min) |',
             '| --- | --- | --- | --- |']
    for hosts in counts:
        cold = schedule({r: row_seconds(known[r], True, cores) for r in names}, hosts, extra,
                        True)
        warm = schedule({r: row_seconds(known[r], False, cores) for r in names}, hosts, extra,
                        False)
        shown = cold.critical[:3]
        path = ', '.join(f'{row} {seconds / 60:.1f}' for row, seconds in shown)
        if len(cold.critical) > len(shown):
            path += f' and {len(cold.critical) - len(shown)} more rows'
        lines.append(f'| {hosts} | {minutes(cold.wall_s)} | {minutes(warm.wall_s)} | {path} |')
    lines.append(f'(per matrix {extra.start_s:.0f} s to find the hosts, per row '
                 f'{extra.row_s:.0f} s on a host, per cold host {extra.host_cold_s:.0f} s to extract the kernel base; '
                 'warm: each row on a host that built its kernel before)')
    return '\n'.join(lines)
