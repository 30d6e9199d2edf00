"""How often `make compare` calls a change, simulated: power and false alarms of its
rule, on synthetic results made from a real quick-workload console
(data/bench-quick-console.log, parsed by the bench verb's own parser) and compared by
compare's own code, many seeds per scenario.

Every run of a side is one result: each metric's value in it is the real run's median
times noise drawn per run (lognormal), by what the metric is:

- exact (declared deterministic): the same every run.
- counts that vary from boot to boot (the baseline's splits, DirectMap...): 1.5%, whole
  numbers stay whole (measured: 1.5-3% max-min over 10 runs).
- icount timings: 1% (measured: median spread 0.3% over 5 runs, 42 of 54 within 2%).
- TCG within-boot ratios (grouped / baseline): 6% (measured: spread 6-17% max-min over
  10 runs, and 17% over 10 draws of a normal is a sigma of 5.5%).
- TCG wall-clock timings: a factor common to every timing of a boot (the host, 15%)
  times the metric's own (13%): 20% in all, whose 10 run medians spread about 60%
  max-min (measured: median 61%, up to 110%).

Run it as a script to print the table docs/measurements.md shows:
    cd ci && /usr/bin/python3 tests/power_sim.py [SEEDS]
"""
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gptool import bench, benchstore, compare  # noqa: E402

CONSOLE = Path(__file__).parent / 'data' / 'bench-quick-console.log'
NOISE = {'count': 0.015, 'icount': 0.01, 'ratio': 0.06, 'wall clock': 0.13}
HOST_DRIFT = 0.15  # TCG: one factor per boot on every wall-clock timing


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str
    factor: float = 1.0   # B's value of the changed metric, times A's
    changed: str = ''     # the basis of the metric changed (one, drawn per seed); '' none
    runs: int = compare.DEFAULT_RUNS
    goal: str = ''        # what the issue asks of it, for the table


SCENARIOS = (
    Scenario('icount timing +10%', 'icount', 1.10, 'icount', goal='>= 95% called'),
    Scenario('TCG within-boot ratio +30%', 'tcg', 1.30, 'ratio', goal='>= 80% called'),
    Scenario('TCG wall-clock timing +30%', 'tcg', 1.30, 'wall clock',
             goal='(not a verdict: host drift)'),
    Scenario('TCG wall-clock timing x3', 'tcg', 3.0, 'wall clock'),
    Scenario('icount, same code', 'icount', goal='<= 5% false alarms'),
    Scenario('TCG, same code', 'tcg', goal='<= 5% false alarms'),
    Scenario('icount timing +10%, RUNS=5', 'icount', 1.10, 'icount', runs=5),
)


def real_metrics() -> dict[str, dict[str, Any]]:
    parsed = bench.parse_console(CONSOLE.read_text())
    assert not parsed.errors, parsed.errors
    return parsed.metrics


def result(commit: str, mode: str, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A complete stored result around @metrics, as the bench verb writes it."""
    return {
        'schema': 1, 'kind': 'bench', 'commit': commit, 'dirty': False,
        'base': {'version': '6.12.117', 'key': 'debian-6.12.117'}, 'config': 'default',
        'config_sha256': 'c' * 64, 'arch': 'x86_64',
        'qemu': {'cpu': 'max', 'smp': 2, 'memory_mb': 2048, 'command': ['qemu-system-x86_64']},
        'mode': mode, 'tools': {'gcc': '12.2.0', 'qemu': '7.2.15', 'ccache': '4.8'},
        'date': '2026-01-01T00:00:00Z', 'duration_s': 60.0, 'cmdline': '', 'workload': 'quick',
        'metrics': metrics,
    }


def basis_of(metric: dict[str, Any], mode: str) -> str:
    return compare.basis(metric['unit'], mode, metric['deterministic'])


def one_run(rng: random.Random, base: dict[str, dict[str, Any]], mode: str,
            changed: str | None, factor: float) -> dict[str, dict[str, Any]]:
    """Each metric's value in one run (one boot) of a side."""
    host = rng.lognormvariate(0, HOST_DRIFT)
    metrics = {}
    for name, metric in base.items():
        value = statistics.median(metric['samples'])
        kind = basis_of(metric, mode)
        if kind != 'exact':
            value *= rng.lognormvariate(0, NOISE[kind]) * (host if kind == 'wall clock' else 1)
            if kind == 'count' and all(float(s).is_integer() for s in metric['samples']):
                value = round(value)
        if name == changed:
            value *= factor
        metrics[name] = {**metric, 'samples': [value]}
    return metrics


def sides(scenario: Scenario, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The results of A and B for one seed, and the metric changed in B."""
    rng = random.Random(seed)
    base = real_metrics()
    candidates = sorted(name for name, metric in base.items()
                        if basis_of(metric, scenario.mode) == scenario.changed)
    changed = rng.choice(candidates) if scenario.changed else None
    a = [result('a' * 40, scenario.mode, one_run(rng, base, scenario.mode, None, 1.0))
         for _ in range(scenario.runs)]
    b = [result('b' * 40, scenario.mode, one_run(rng, base, scenario.mode, changed,
                                                 scenario.factor))
         for _ in range(scenario.runs)]
    return a, b, changed


def request(tmp: Path) -> compare.CompareRequest:
    return compare.CompareRequest(repo=tmp, work=tmp, a='A', b='B', runs=compare.DEFAULT_RUNS,
                                  alpha=0.05, min_effect=5.0, config='default', mode='tcg',
                                  qemu_cpu='max', smp=2, memory_mb=2048, results=tmp)


@dataclass
class Tally:
    tables: int = 0
    called: int = 0        # the changed metric called a regression
    regression: int = 0    # tables with any regression (exit 1)
    inconclusive: int = 0  # tables with no regression and an inconclusive change (exit 3)

    def pct(self, count: int) -> float:
        return 100 * count / self.tables


def simulate(scenario: Scenario, seeds: range) -> Tally:
    tally = Tally()
    for seed in seeds:
        a_results, b_results, changed = sides(scenario, seed)
        a = compare.Side('A', 'A', results=[benchstore.BenchResult(r, Path('A'))
                                            for r in a_results])
        b = compare.Side('B', 'B', results=[benchstore.BenchResult(r, Path('B'))
                                            for r in b_results])
        rows = compare.compare_sides(a, b, request(Path('.')))['metrics']
        verdicts = {row['verdict'] for row in rows.values()}
        tally.tables += 1
        tally.called += changed is not None and rows[changed]['verdict'] == 'regression'
        tally.regression += 'regression' in verdicts
        tally.inconclusive += 'regression' not in verdicts and 'inconclusive' in verdicts
    return tally


def table(seeds: int) -> str:
    lines = ['| scenario (runs a side) | changed metric called a regression | tables with a '
             'regression (exit 1) | inconclusive (exit 3) | goal |',
             '| --- | --- | --- | --- | --- |']
    for scenario in SCENARIOS:
        tally = simulate(scenario, range(seeds))
        called = f'{tally.pct(tally.called):.1f}%' if scenario.changed else '-'
        lines.append(f'| {scenario.name} ({scenario.runs}) | {called} | '
                     f'{tally.pct(tally.regression):.1f}% | {tally.pct(tally.inconclusive):.1f}% | '
                     f'{scenario.goal} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f'{count} seeds per scenario')
    print(table(count))
