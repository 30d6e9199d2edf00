"""Statistics for comparing bench samples of a side A (before) with a side B (after).

For each metric:

- center: the median of each side's samples; delta_pct = (median B / median A - 1) * 100
  (None when median A is 0), so +10 means B is 10% larger than A.
- 95% CI of delta_pct: bootstrap percentile interval of the ratio of medians, each side
  resampled with replacement BOOTSTRAP_RESAMPLES times from random.Random(seed), so the
  same samples always give the same interval.
- p: Mann-Whitney U, two-sided (scipy.stats.mannwhitneyu): no assumption of normal
  noise, robust to the odd slow outlier a busy host causes. None for deterministic
  metrics, and when both sides hold one and the same constant value.

Verdicts ("~" means no change worth reporting):

- Deterministic metrics (counts that do not depend on timing or layout) compare
  exactly: the same set of distinct values on both sides -> "~" (so 3 runs of 0 and
  5 runs of 0 agree); otherwise "improvement" or "regression" by the direction
  of the median change, or "changed" if the medians are equal but the samples are not.
  No minimum effect and no sample count apply: any difference is real.
- Other metrics: "improvement"/"regression" (by the metric's direction) only if
  p < alpha AND |delta_pct| >= min_effect_pct, and (applied by compare over the whole
  table) p survives Benjamini-Hochberg false-discovery control at alpha across every
  metric tested; a significant but small change, or a
  large but noisy one, is "~". With fewer than MIN_SAMPLES samples on either side the
  test cannot reach significance at usual alphas, so the verdict is "~" with the reason
  "too few samples (n=A/B)": run more (RUNS=...). When median A is 0 the effect in %
  is undefined and p < alpha alone decides.
"""
import math
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from .errors import HarnessError

# Mann-Whitney U cannot reach p < 0.05 with 3 against 3 (its smallest exact p is
# 0.1); 4 against 4 can (0.029).
MIN_SAMPLES = 4
BOOTSTRAP_RESAMPLES = 2000
VERDICTS = ('~', 'improvement', 'regression', 'changed')


@dataclass(frozen=True)
class MetricComparison:
    center_a: float
    center_b: float
    delta_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    p_value: float | None
    verdict: str
    reason: str
    n_a: int
    n_b: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks of a sorted list."""
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def bootstrap_ci_pct(a: list[float], b: list[float], *, seed: int = 0, level: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """Percentile bootstrap interval of (median B / median A - 1) * 100; None when
    median A is 0 in most resamples."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        center_a = statistics.median(rng.choices(a, k=len(a)))
        center_b = statistics.median(rng.choices(b, k=len(b)))
        if center_a != 0:
            ratios.append(center_b / center_a)
    if len(ratios) < resamples / 2:
        return None
    ratios.sort()
    tail = (1 - level) / 2
    return (_quantile(ratios, tail) - 1) * 100, (_quantile(ratios, 1 - tail) - 1) * 100


def mann_whitney_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value; None if every sample is the same value."""
    if len(set(a) | set(b)) == 1:
        return None
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        raise HarnessError('scipy is missing: run make deps (Debian package python3-scipy)', 2)
    p = float(mannwhitneyu(a, b, alternative='two-sided').pvalue)
    return p if math.isfinite(p) else None


def benjamini_hochberg(p_values: dict[str, float], q: float) -> set[str]:
    """The names whose p-values survive false-discovery-rate control at @q over all of
    them (Benjamini-Hochberg): sort ascending, keep the first k where p_(k) <= k/m * q.

    A compare table tests a hundred timed metrics at once; at alpha 0.05 each, five of
    them would be called changed between two runs of the same code."""
    ranked = sorted(p_values.items(), key=lambda item: item[1])
    m = len(ranked)
    passed = 0
    for k, (_, p) in enumerate(ranked, 1):
        if p <= k / m * q:
            passed = k
    return {name for name, _ in ranked[:passed]}


def _better_or_worse(center_a: float, center_b: float, direction: str) -> str:
    increased = center_b > center_a
    return 'regression' if increased == (direction == 'lower') else 'improvement'


def compare_metric(a: list[float], b: list[float], *, deterministic: bool, direction: str,
                   alpha: float = 0.05, min_effect_pct: float = 5.0,
                   seed: int = 0) -> MetricComparison:
    """Compare the samples of one metric: see the module docstring for the rule."""
    if direction not in ('lower', 'higher'):
        raise ValueError(f'direction {direction!r}: want "lower" or "higher"')
    if not a or not b:
        raise ValueError('both sides need at least one sample')
    center_a, center_b = float(statistics.median(a)), float(statistics.median(b))
    delta = (center_b / center_a - 1) * 100 if center_a != 0 else None
    ci = bootstrap_ci_pct(a, b, seed=seed) if center_a != 0 else None
    ci_low, ci_high = ci if ci else (None, None)
    n_a, n_b = len(a), len(b)

    def result(p: float | None, verdict: str, reason: str) -> MetricComparison:
        return MetricComparison(center_a, center_b, delta, ci_low, ci_high, p, verdict, reason,
                                n_a, n_b)

    if deterministic:
        if set(a) == set(b):
            return result(None, '~', 'deterministic: the same values')
        if center_a == center_b:
            return result(None, 'changed', 'deterministic: same median, but the values differ')
        return result(None, _better_or_worse(center_a, center_b, direction),
                      f'deterministic: median {center_a:g} -> {center_b:g}')

    p = mann_whitney_p(a, b)
    if n_a < MIN_SAMPLES or n_b < MIN_SAMPLES:
        return result(p, '~', f'too few samples (n={n_a}/{n_b}): need >= {MIN_SAMPLES} per side')
    if p is None:
        return result(p, '~', 'both sides hold the same constant value')
    if p >= alpha:
        return result(p, '~', f'not significant: p={p:.3g} >= alpha {alpha:g}')
    if delta is None:
        if center_a == center_b:
            return result(p, '~', f'significant (p={p:.3g}) but the medians are equal')
        return result(p, _better_or_worse(center_a, center_b, direction),
                      f'significant (p={p:.3g}); median A is 0, so no effect in %')
    if abs(delta) < min_effect_pct:
        return result(p, '~', f'significant (p={p:.3g}) but |delta| {abs(delta):.1f}% < min effect '
                              f'{min_effect_pct:g}%')
    return result(p, _better_or_worse(center_a, center_b, direction),
                  f'p={p:.3g} < alpha {alpha:g} and |delta| {abs(delta):.1f}% >= min effect '
                  f'{min_effect_pct:g}%')
