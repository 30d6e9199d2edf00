"""The compare statistics: real shifts are flagged, noise and too little data are not."""
import random

import pytest

from gptool import stats
from gptool.stats import MIN_SAMPLES, compare_metric, mann_whitney_p, shift_ci_pct


def noisy(rng: random.Random, center: float, n: int = 10, cv: float = 0.03) -> list[float]:
    """Bench-like samples: lognormal noise of about @cv around @center."""
    return [center * rng.lognormvariate(0, cv) for _ in range(n)]


@pytest.mark.parametrize('direction, verdict', [('lower', 'regression'), ('higher', 'improvement')])
def test_planted_ten_percent_shift_is_flagged(direction: str, verdict: str) -> None:
    flagged = 0
    for trial in range(20):
        rng = random.Random(trial)
        a, b = noisy(rng, 1000.0), noisy(rng, 1100.0)
        result = compare_metric(a, b, deterministic=False, direction=direction)
        flagged += result.verdict == verdict
        assert result.verdict in ('~', verdict)
        assert result.delta_pct is not None and 4 < result.delta_pct < 16
    assert flagged >= 19


def test_shift_is_inside_its_confidence_interval() -> None:
    rng = random.Random(7)
    a, b = noisy(rng, 50.0), noisy(rng, 55.0)
    result = compare_metric(a, b, deterministic=False, direction='lower')
    assert result.ci_low_pct is not None and result.ci_high_pct is not None
    assert result.ci_low_pct < 10 < result.ci_high_pct
    assert result.ci_low_pct > 0  # clearly a slowdown
    assert result.verdict == 'regression' and result.p_value is not None and result.p_value < 0.01
    assert 'p=' in result.reason and result.why == ''


def test_the_interval_and_the_test_agree() -> None:
    """The interval comes from the test's own distribution: it leaves out 0 exactly when
    p < alpha (continuous samples, no ties)."""
    for trial in range(200):
        rng = random.Random(trial)
        n_a, n_b = rng.randint(4, 12), rng.randint(4, 12)
        a, b = noisy(rng, 100.0, n_a, 0.05), noisy(rng, 100.0 + rng.choice([0, 3, 6]), n_b, 0.05)
        p = mann_whitney_p(a, b)
        ci = shift_ci_pct(a, b, 0.05)
        assert p is not None and ci is not None
        assert (p < 0.05) == (ci[0] > 0 or ci[1] < 0), (trial, p, ci)


def test_same_inputs_same_output() -> None:
    rng = random.Random(3)
    a, b = noisy(rng, 10.0), noisy(rng, 10.5)
    first = compare_metric(a, b, deterministic=False, direction='lower')
    assert first == compare_metric(a, b, deterministic=False, direction='lower')


def test_identical_distributions_rarely_flagged() -> None:
    false_alarms = 0
    trials = 200
    for trial in range(trials):
        rng = random.Random(1000 + trial)
        a, b = noisy(rng, 200.0), noisy(rng, 200.0)
        result = compare_metric(a, b, deterministic=False, direction='lower')
        false_alarms += result.verdict != '~'
    assert false_alarms / trials <= 0.06


def test_why_a_metric_is_not_called_changed() -> None:
    rng = random.Random(11)
    a = noisy(rng, 100.0, n=30, cv=0.002)
    b = noisy(rng, 102.0, n=30, cv=0.002)
    small = compare_metric(a, b, deterministic=False, direction='lower')
    assert small.p_value is not None and small.p_value < 0.001
    assert (small.verdict, small.why) == ('~', stats.WHY_BELOW_MIN_EFFECT)
    assert compare_metric(a, b, deterministic=False, direction='lower',
                          min_effect_pct=1.0).verdict == 'regression'
    # Large but noisy: the interval cannot rule out a change of the min effect.
    noisy_result = compare_metric([100.0, 60.0, 150.0, 90.0], [120.0, 70.0, 160.0, 95.0],
                                  deterministic=False, direction='lower')
    assert (noisy_result.verdict, noisy_result.why) == ('~', stats.WHY_TOO_NOISY)
    # Quiet and the same: the interval rules out a change of the min effect.
    same = compare_metric(noisy(rng, 100.0, 8, 0.01), noisy(rng, 100.0, 8, 0.01),
                          deterministic=False, direction='lower', min_effect_pct=10)
    assert (same.verdict, same.why) == ('~', stats.WHY_NOT_SIGNIFICANT)
    assert same.ci_low_pct is not None and -10 < same.ci_low_pct < same.ci_high_pct < 10
    # A wall-clock change a host makes by itself between boots is not a verdict.
    drift = compare_metric([100.0] * 4 + [101.0] * 4, [140.0] * 4 + [141.0] * 4,
                           deterministic=False, direction='lower', min_effect_pct=10, min_fold=2)
    assert (drift.verdict, drift.why) == ('~', stats.WHY_HOST_DRIFT)
    slower = compare_metric([100.0] * 4 + [101.0] * 4, [300.0] * 4 + [301.0] * 4,
                            deterministic=False, direction='lower', min_effect_pct=10, min_fold=2)
    assert slower.verdict == 'regression'


def test_exact_metrics_compare_their_values() -> None:
    same = compare_metric([1234, 1234], [1234], deterministic=True, direction='lower')
    assert (same.verdict, same.why, same.p_value, same.delta_pct, same.exact) == \
        ('~', stats.WHY_SAME, None, 0.0, True)
    worse = compare_metric([1000], [1001], deterministic=True, direction='lower')
    assert worse.verdict == 'regression' and worse.reason.startswith('exact: ')
    assert compare_metric([1000], [1001], deterministic=True, direction='higher').verdict == \
        'improvement'
    assert worse.ci_low_pct is None  # nothing sampled: no interval


def test_a_declared_deterministic_metric_that_varies_is_judged_as_measured() -> None:
    # Once compared as sets of values: {2, 3} == {2, 3}, "~" whatever the counts.
    mixed = compare_metric([2, 2, 2, 2, 3], [2, 3, 3, 3, 3], deterministic=True, direction='lower')
    assert not mixed.exact and mixed.p_value is not None
    assert mixed.reason.startswith('declared deterministic but varies within A and B')
    # With enough runs, the same kind of shift in the counts is a regression.
    shifted = compare_metric([2] * 9 + [3], [3] * 9 + [2], deterministic=True, direction='lower')
    assert not shifted.exact and shifted.verdict == 'regression'


def test_mann_whitney_is_exact_with_ties_whatever_scipy_does() -> None:
    # 5 against 5, all apart: the smallest p there is, 2 / C(10, 5); scipy's normal
    # approximation (chosen because of the ties) said 0.004.
    assert mann_whitney_p([20] * 5, [22] * 5) == pytest.approx(2 / 252)
    assert stats.smallest_p(5, 5) == pytest.approx(2 / 252)
    # More runs never resolve worse than fewer.
    assert mann_whitney_p([20] * 9, [22] * 9) < mann_whitney_p([20] * 8, [22] * 8)
    # Mid-ranks: half of A tied with half of B.
    p = mann_whitney_p([1, 1, 2, 2], [2, 2, 3, 3])
    assert p is not None and 0.05 < p < 1
    assert mann_whitney_p([7.0] * 4, [7.0] * 4) is None


def test_mann_whitney_matches_scipy_where_scipy_is_exact() -> None:
    scipy_stats = pytest.importorskip('scipy.stats')
    rng = random.Random(5)
    for n_a, n_b in ((4, 4), (5, 7), (8, 8), (10, 10)):
        a, b = noisy(rng, 100, n_a, 0.1), noisy(rng, 110, n_b, 0.1)
        expected = scipy_stats.mannwhitneyu(a, b, method='exact').pvalue
        assert mann_whitney_p(a, b) == pytest.approx(expected)
    # Past EXACT_MAX values: the normal approximation, with the tie correction.
    a = [rng.randint(0, 9) for _ in range(30)]
    b = [rng.randint(2, 11) for _ in range(30)]
    expected = scipy_stats.mannwhitneyu(a, b, method='asymptotic').pvalue
    assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-6)


def test_negative_values_keep_the_sign_of_the_change() -> None:
    # DirectMap2M after the run, minus before: higher is better, and -20480 is higher.
    result = compare_metric([-40960.0] * 5, [-20480.0] * 5, deterministic=False, direction='higher')
    assert result.delta_pct == pytest.approx(50.0)
    assert result.verdict == 'improvement'
    assert result.ci_low_pct is not None and result.ci_low_pct == pytest.approx(50.0)


def test_too_few_samples_is_no_verdict_and_no_interval() -> None:
    n = MIN_SAMPLES - 1
    result = compare_metric([100.0] * n, [200.0] * n, deterministic=False, direction='lower')
    assert (result.verdict, result.why) == ('~', stats.WHY_TOO_FEW)
    assert result.reason.startswith(f'too few runs (n={n}/{n})')
    assert result.delta_pct == pytest.approx(100.0)
    assert result.ci_low_pct is None and result.ci_high_pct is None
    # 4 against 4 can reach p < 0.05, so it has an interval (the extreme differences).
    four = compare_metric([100.0, 101, 102, 103], [200.0, 201, 202, 203], deterministic=False,
                          direction='lower')
    # [200 - 103, 203 - 100] in % of median A (101.5).
    assert (four.ci_low_pct, four.ci_high_pct) == (pytest.approx(97 / 1.015), pytest.approx(103 / 1.015))


def test_constant_equal_sides_have_no_p() -> None:
    result = compare_metric([7.0] * 5, [7.0] * 5, deterministic=False, direction='lower')
    assert (result.verdict, result.why, result.p_value, result.delta_pct) == \
        ('~', stats.WHY_SAME, None, 0.0)


def test_zero_median_has_no_percentages() -> None:
    result = compare_metric([0.0] * 6, [5.0] * 6, deterministic=False, direction='lower')
    assert result.delta_pct is None and result.ci_low_pct is None
    assert result.verdict == 'regression' and 'no effect in %' in result.reason
    assert shift_ci_pct([0.0] * 4, [1.0, 2.0, 3.0, 4.0], 0.05) is None


def test_bad_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        compare_metric([1.0], [1.0], deterministic=True, direction='up')


def test_benjamini_hochberg_keeps_what_survives_the_false_discovery_control() -> None:
    from gptool.stats import benjamini_hochberg
    # m = 4, q = 0.05: thresholds 0.0125, 0.025, 0.0375, 0.05.
    assert benjamini_hochberg({'a': 0.001, 'b': 0.02, 'c': 0.03, 'd': 0.9}, 0.05) == {'a', 'b', 'c'}
    # Step-up: a later p under its threshold carries the earlier ones with it.
    assert benjamini_hochberg({'a': 0.02, 'b': 0.024}, 0.05) == {'a', 'b'}
    # 100 metrics with one p of 0.008 (the best 5 runs against 5 can give): nothing passes.
    many = {f'm{i}': 0.5 for i in range(99)} | {'lucky': 0.008}
    assert benjamini_hochberg(many, 0.05) == set()
    assert benjamini_hochberg({}, 0.05) == set()
