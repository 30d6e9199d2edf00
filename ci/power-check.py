#!/usr/bin/env python3
"""An independent check of make compare's power and false alarms (issue 24).

ci/tests/power_sim.py runs compare's own code on synthetic stored results. This script
shares none of that code: it reads the metrics of the same real quick-workload console
itself, draws another noise model with numpy, takes its p-values from scipy's exact
Mann-Whitney distribution (no ties: counts are not rounded here), and applies the rule
as docs/benchmarks.md states it:

- a metric declared deterministic never changes unless made to;
- the rest are tested (one value per run, two-sided Mann-Whitney, alpha 0.05), and a
  change is called when p < 0.05, |delta| reaches the min effect (declared, else 5%;
  icount timings at most 5%), a TCG wall-clock timing also moved 2x, and p survives
  Benjamini-Hochberg at 0.05 over every metric tested; p < 0.05 alone is inconclusive.

Noise, unlike power_sim.py's lognormal draws: Student's t with 5 degrees of freedom
(heavier tails, scaled to the same standard deviation), and under TCG a host speed that
wanders as a random walk along the boots in their run order (A B B A ...), not drawn
afresh per boot.

    /usr/bin/python3 ci/power-check.py [SEEDS]   # prints the same table as power_sim.py
"""
import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

CONSOLE = Path(__file__).resolve().parent / 'tests' / 'data' / 'bench-quick-console.log'
SIGMA = {'count': 0.015, 'icount': 0.01, 'ratio': 0.06, 'wall clock': 0.13}
HOST_STEP = 0.15 / np.sqrt(2)  # random-walk step: about 15% between boots two apart
ALPHA = 0.05
RUNS = 8
# name, mode, factor, basis of the changed metric ('' none), runs a side, goal
SCENARIOS = (
    ('icount timing +10%', 'icount', 1.10, 'icount', RUNS, '>= 95% called'),
    ('TCG within-boot ratio +30%', 'tcg', 1.30, 'ratio', RUNS, '>= 80% called'),
    ('TCG wall-clock timing +30%', 'tcg', 1.30, 'wall clock', RUNS, '(not a verdict: host drift)'),
    ('TCG wall-clock timing x3', 'tcg', 3.0, 'wall clock', RUNS, ''),
    ('icount, same code', 'icount', 1.0, '', RUNS, '<= 5% false alarms'),
    ('TCG, same code', 'tcg', 1.0, '', RUNS, '<= 5% false alarms'),
    ('icount timing +10%, RUNS=5', 'icount', 1.10, 'icount', 5, ''),
)


def metrics() -> list[dict]:
    found = re.findall(r'^GP-BENCH-METRIC (\{.*\})\s*$', CONSOLE.read_text(), re.M)
    return [json.loads(line) for line in found]


def kind(metric: dict, mode: str) -> str:
    if metric['deterministic']:
        return 'exact'
    if metric['unit'] == 'x':
        return 'ratio'
    if re.match(r'(ns|us|ms|s)(/|$)', metric['unit']):
        return 'icount' if mode == 'icount' else 'wall clock'
    return 'count'


def p_table(runs: int) -> np.ndarray:
    """Two-sided exact p of every U for runs against runs, from scipy."""
    table = np.empty(runs * runs + 1)
    a = np.arange(1, runs + 1)
    for u in range(runs * runs + 1):
        # B's j-th value lies below c_j of A's: U = sum of the c_j = u.
        below = np.clip(u - runs * np.arange(runs), 0, runs)
        table[u] = mannwhitneyu(a, runs - below + 0.5, method='exact').pvalue
    return table


def u_statistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mann-Whitney U of A for each row (metric): pairs where A's value is larger."""
    return (a[:, :, None] > b[:, None, :]).sum(axis=(1, 2))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    thresholds = ALPHA * np.arange(1, len(p) + 1) / len(p)
    passed = np.nonzero(p[order] <= thresholds)[0]
    keep = np.zeros(len(p), bool)
    if len(passed):
        keep[order[:passed[-1] + 1]] = True
    return keep


def scenario_rates(mode: str, factor: float, changed: str, runs: int,
                   seeds: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(24)
    all_metrics = metrics()
    # Noise times 0 is 0: a metric that is 0 gives no p, as in compare.
    tested = [m for m in all_metrics if kind(m, mode) != 'exact' and np.median(m['samples']) != 0]
    kinds = [kind(m, mode) for m in tested]
    base = np.array([np.median(m['samples']) for m in tested])
    sigma = np.array([SIGMA[k] for k in kinds])
    wall = np.array([k == 'wall clock' for k in kinds])
    timed_icount = np.array([k == 'icount' for k in kinds])
    effect = np.array([m.get('min_effect_pct', 5.0) for m in tested], float)
    effect = np.where(timed_icount, np.minimum(effect, 5.0), effect)
    lower = np.array([m['direction'] == 'lower' for m in tested])
    candidates = [i for i, k in enumerate(kinds) if k == changed]
    ps = p_table(runs)
    called = regressed = inconclusive = 0
    for _ in range(seeds):
        # Boots in run order A B B A ...; the host wanders along them.
        order = [side for n in range(runs) for side in ((0, 1) if n % 2 == 0 else (1, 0))]
        walk = np.cumsum(rng.normal(0, HOST_STEP, len(order)))
        t = rng.standard_t(5, (len(tested), len(order))) * np.sqrt(3 / 5)
        values = base[:, None] * (1 + sigma[:, None] * t) * \
            np.where(wall[:, None], np.exp(walk)[None, :], 1)
        is_b = np.array(order) == 1
        a, b = values[:, ~is_b], values[:, is_b]
        target = rng.choice(candidates) if changed else -1
        if changed:
            b[target] *= factor
        center_a, center_b = np.median(a, axis=1), np.median(b, axis=1)
        delta = (center_b - center_a) / np.abs(center_a) * 100  # no metric tested is 0
        u = u_statistic(a, b)
        p = ps[u]
        fold = np.maximum(center_b / center_a, center_a / center_b)
        change = (p < ALPHA) & (np.abs(delta) >= effect) & (~wall | (fold >= 2))
        keep = benjamini_hochberg(p)
        worse = (center_b > center_a) == lower
        regression = change & keep & worse
        called += bool(changed) and bool(regression[target])
        regressed += bool(regression.any())
        inconclusive += not regression.any() and bool((change & ~keep).any())
    return (100 * called / seeds, 100 * regressed / seeds, 100 * inconclusive / seeds)


def table(seeds: int) -> str:
    lines = ['| scenario (runs a side) | changed metric called a regression | tables with a '
             'regression (exit 1) | inconclusive (exit 3) | goal |',
             '| --- | --- | --- | --- | --- |']
    for name, mode, factor, changed, runs, goal in SCENARIOS:
        called, regressed, inconclusive = scenario_rates(mode, factor, changed, runs, seeds)
        lines.append(f'| {name} ({runs}) | {f"{called:.1f}%" if changed else "-"} | '
                     f'{regressed:.1f}% | {inconclusive:.1f}% | {goal} |')
    return '\n'.join(lines)


if __name__ == '__main__':
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f'{count} seeds per scenario')
    print(table(count))
