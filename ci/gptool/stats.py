"""Statistics for comparing bench samples of a side A (before) with a side B (after).

For each metric:

- center: the median of each side's samples; delta_pct = (median B - median A) /
  |median A| * 100 (None when median A is 0), so +10 means B is larger by a tenth of
  A's size, whatever A's sign (-40960 -> -20480 is +50%).
- p: two-sided Mann-Whitney U (Wilcoxon rank-sum) with mid-ranks for ties, computed
  here rather than by scipy, whose choice between the exact and the approximate test
  depends on its version and on ties: exact (every way of splitting the pooled values
  into n_a and n_b) up to EXACT_MAX values in all, else the normal approximation with
  tie and continuity corrections. None when every value is the same.
- CI of delta_pct at 1 - alpha: the distribution-free interval of the shift B - A that
  goes with the test (Hodges-Lehmann: order statistics of the n_a * n_b differences
  b - a), divided by |median A|. None when the test cannot reach alpha with so few
  samples (the interval would be unbounded), for exact metrics and when median A is 0.

Verdicts (compare_metric; compare.py adds the false-discovery control over a table):

- Exact: a metric declared deterministic whose every sample is the same on each side.
  Any difference between the two values is a change, "improvement" or "regression" by
  the metric's direction; no test, no minimum effect, no sample count. A metric
  declared deterministic that varies within a side is not exact: it is judged by the
  measured rule below, and the reason says so.
- Measured: "improvement"/"regression" only if p < alpha, |delta_pct| >= min effect
  and, where min_fold is given (wall-clock timings under TCG, whose boots drift), the
  medians differ by at least that factor. Otherwise "~" with why (WHY_*).
"""
import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Mann-Whitney U cannot reach p < 0.05 with 3 against 3 (its smallest exact p is
# 0.1); 4 against 4 can (0.029).
MIN_SAMPLES = 4
# Pooled values up to which p is exact: 20 against 20 is a few milliseconds.
EXACT_MAX = 40
VERDICTS = ('~', 'improvement', 'regression', 'inconclusive')
# Why a metric is "~", or inconclusive: the last column of compare's table.
WHY_SAME = 'no change'
WHY_TOO_FEW = 'too few runs'
WHY_NOT_SIGNIFICANT = 'not significant'
WHY_TOO_NOISY = 'too noisy to tell'
WHY_BELOW_MIN_EFFECT = 'below min effect'
WHY_HOST_DRIFT = 'within host drift'
WHY_FDR = 'not significant over the table'


@dataclass(frozen=True)
class MetricComparison:
    center_a: float
    center_b: float
    delta_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    p_value: float | None
    verdict: str
    why: str  # '' for a change
    reason: str
    n_a: int
    n_b: int
    exact: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def doubled_midranks(values: Sequence[float]) -> list[int]:
    """Twice the rank of each value, tied values sharing the mean of their ranks (so
    every doubled rank is an integer)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0] * len(values)
    first = 0
    while first < len(order):
        last = first
        while last + 1 < len(order) and values[order[last + 1]] == values[order[first]]:
            last += 1
        for position in range(first, last + 1):
            ranks[order[position]] = first + last + 2  # (first + 1 + last + 1) / 2, doubled
        first = last + 1
    return ranks


@functools.lru_cache(maxsize=4096)
def rank_sum_counts(doubled: tuple[int, ...], k: int) -> tuple[tuple[int, int], ...]:
    """(sum, ways) of the doubled ranks of every choice of k positions out of all: the
    null distribution of side A's rank sum, ties included."""
    layers: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(k)]
    total = len(doubled)
    for i, rank in enumerate(doubled):
        # Only choices that can still reach k positions with what is left.
        for j in range(min(i + 1, k), max(0, k - (total - i)), -1):
            here = layers[j]
            for rank_sum, ways in layers[j - 1].items():
                here[rank_sum + rank] = here.get(rank_sum + rank, 0) + ways
    return tuple(sorted(layers[k].items()))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value; None if every value is the same."""
    if not a or not b or len(set(a) | set(b)) == 1:
        return None
    n_a, total = len(a), len(a) + len(b)
    ranks = doubled_midranks([*a, *b])
    center = n_a * (total + 1)  # twice the expected rank sum of A
    distance = abs(sum(ranks[:n_a]) - center)
    if total <= EXACT_MAX:
        counts = rank_sum_counts(tuple(sorted(ranks)), n_a)
        extreme = sum(ways for rank_sum, ways in counts if abs(rank_sum - center) >= distance)
        return extreme / math.comb(total, n_a)
    ties = {}
    for rank in ranks:
        ties[rank] = ties.get(rank, 0) + 1
    n_b = total - n_a
    variance = n_a * n_b / 12 * ((total + 1) - sum(t ** 3 - t for t in ties.values())
                                 / (total * (total - 1)))
    z = max(distance / 2 - 0.5, 0) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p Mann-Whitney can give n_a against n_b values."""
    return 2 / math.comb(n_a + n_b, n_a)


def _ci_cut(n_a: int, n_b: int, alpha: float) -> int:
    """How many of the sorted n_a * n_b differences to cut from each end for a 1 - alpha
    interval: the largest c with P(U < c) <= alpha / 2 (0: no interval exists)."""
    total = n_a + n_b
    if total > EXACT_MAX:
        spread = math.sqrt(n_a * n_b * (total + 1) / 12)
        z = statistics.NormalDist().inv_cdf(1 - alpha / 2)
        return max(0, math.floor(n_a * n_b / 2 - z * spread))
    counts = rank_sum_counts(tuple(range(2, 2 * total + 1, 2)), n_a)
    lowest = n_a * (n_a + 1)  # doubled rank sum when U = 0
    ways = math.comb(total, n_a)
    cut, below = 0, 0
    for rank_sum, count in counts:  # ascending: U = (rank_sum - lowest) / 2
        if (below + count) / ways > alpha / 2:
            break
        below += count
        cut = (rank_sum - lowest) // 2 + 1
    return cut


def shift_ci_pct(a: Sequence[float], b: Sequence[float], alpha: float) -> tuple[float, float] | None:
    """The 1 - alpha interval of the shift B - A, in % of |median A|; None if the test
    cannot reach alpha or median A is 0."""
    center_a = statistics.median(a)
    cut = _ci_cut(len(a), len(b), alpha)
    if center_a == 0 or cut == 0:
        return None
    differences = sorted(y - x for x in a for y in b)
    scale = 100 / abs(center_a)
    return differences[cut - 1] * scale, differences[-cut] * scale


def benjamini_hochberg(p_values: dict[str, float], q: float) -> set[str]:
    """The names whose p-values survive false-discovery-rate control at @q over all of
    them (Benjamini-Hochberg): sort ascending, keep the first k where p_(k) <= k/m * q.

    A compare table tests a hundred metrics at once; at alpha 0.05 each, five of
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


def compare_metric(a: Sequence[float], b: Sequence[float], *, deterministic: bool,
                   direction: str, alpha: float = 0.05, min_effect_pct: float = 5.0,
                   min_fold: float | None = None) -> MetricComparison:
    """Compare the samples of one metric: see the module docstring for the rule."""
    if direction not in ('lower', 'higher'):
        raise ValueError(f'direction {direction!r}: want "lower" or "higher"')
    if not a or not b:
        raise ValueError('both sides need at least one sample')
    center_a, center_b = float(statistics.median(a)), float(statistics.median(b))
    delta = (center_b - center_a) / abs(center_a) * 100 if center_a != 0 else None
    n_a, n_b = len(a), len(b)
    exact = deterministic and len(set(a)) == 1 and len(set(b)) == 1

    def result(p: float | None, verdict: str, why: str, reason: str,
               ci: tuple[float, float] | None = None) -> MetricComparison:
        low, high = ci if ci else (None, None)
        return MetricComparison(center_a, center_b, delta, low, high, p, verdict, why, reason,
                                n_a, n_b, exact)

    if exact:
        if center_a == center_b:
            return result(None, '~', WHY_SAME, f'exact: {center_a:g} on both sides')
        return result(None, _better_or_worse(center_a, center_b, direction), '',
                      f'exact: {center_a:g} -> {center_b:g}')
    note = ''
    if deterministic:
        varied = ' and '.join(side for side, values in (('A', a), ('B', b))
                              if len(set(values)) > 1)
        note = f'declared deterministic but varies within {varied}: judged as measured; '
    p = mann_whitney_p(a, b)
    if n_a < MIN_SAMPLES or n_b < MIN_SAMPLES:
        return result(p, '~', WHY_TOO_FEW,
                      f'{note}too few runs (n={n_a}/{n_b}): need >= {MIN_SAMPLES} per side')
    ci = shift_ci_pct(a, b, alpha)
    if p is None:
        return result(p, '~', WHY_SAME, f'{note}both sides hold the same constant value', ci)
    if p >= alpha:
        noisy = ci is None or ci[0] <= -min_effect_pct or ci[1] >= min_effect_pct
        if noisy:
            return result(p, '~', WHY_TOO_NOISY,
                          f'{note}p={p:.3g} >= alpha {alpha:g}, and the interval does not '
                          f'rule out a change of {min_effect_pct:g}%', ci)
        return result(p, '~', WHY_NOT_SIGNIFICANT,
                      f'{note}p={p:.3g} >= alpha {alpha:g}; the interval rules out a change '
                      f'of {min_effect_pct:g}%', ci)
    if delta is not None and abs(delta) < min_effect_pct:
        return result(p, '~', WHY_BELOW_MIN_EFFECT,
                      f'{note}significant (p={p:.3g}) but |delta| {abs(delta):.1f}% < min '
                      f'effect {min_effect_pct:g}%', ci)
    if delta is None and center_a == center_b:
        return result(p, '~', WHY_BELOW_MIN_EFFECT,
                      f'{note}significant (p={p:.3g}) but the medians are equal', ci)
    if min_fold and center_a > 0 and center_b > 0 and \
            max(center_b / center_a, center_a / center_b) < min_fold:
        return result(p, '~', WHY_HOST_DRIFT,
                      f'{note}significant (p={p:.3g}) but a wall-clock change under '
                      f'{min_fold:g}x, which the host alone makes between boots', ci)
    effect = 'median A is 0, so no effect in %' if delta is None else \
        f'|delta| {abs(delta):.1f}% >= min effect {min_effect_pct:g}%'
    return result(p, _better_or_worse(center_a, center_b, direction), '',
                  f'{note}p={p:.3g} < alpha {alpha:g} and {effect}', ci)
