"""The compare statistics: real shifts are flagged, noise and too little data are not."""
import random

import pytest

from gptool.stats import MIN_SAMPLES, bootstrap_ci_pct, compare_metric


def noisy(rng: random.Random, center: float, n: int = 10, cv: float = 0.03) -> list[float]:
    """Bench-like samples: lognormal noise of about @cv around @center."""
    return [center * rng.lognormvariate(0, cv) for _ in range(n)]


@pytest.mark.parametrize('direction, verdict', [('lower', 'regression'), ('higher', 'improvement')])
def test_planted_ten_percent_shift_is_flagged(direction: str, verdict: str) -> None:
    flagged = 0
    for trial in range(20):
        rng = random.Random(trial)
        a, b = noisy(rng, 1000.0), noisy(rng, 1100.0)
        result = compare_metric(a, b, deterministic=False, direction=direction, seed=trial)
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
    assert 'p=' in result.reason


def test_same_inputs_same_output() -> None:
    rng = random.Random(3)
    a, b = noisy(rng, 10.0), noisy(rng, 10.5)
    first = compare_metric(a, b, deterministic=False, direction='lower', seed=5)
    assert first == compare_metric(a, b, deterministic=False, direction='lower', seed=5)


def test_identical_distributions_rarely_flagged() -> None:
    false_alarms = 0
    trials = 200
    for trial in range(trials):
        rng = random.Random(1000 + trial)
        a, b = noisy(rng, 200.0), noisy(rng, 200.0)
        result = compare_metric(a, b, deterministic=False, direction='lower', seed=trial)
        false_alarms += result.verdict != '~'
    assert false_alarms / trials <= 0.06


def test_significant_but_small_change_is_not_flagged() -> None:
    rng = random.Random(11)
    a = noisy(rng, 100.0, n=30, cv=0.002)
    b = noisy(rng, 102.0, n=30, cv=0.002)
    result = compare_metric(a, b, deterministic=False, direction='lower')
    assert result.p_value is not None and result.p_value < 0.001
    assert result.verdict == '~' and 'min effect' in result.reason
    assert compare_metric(a, b, deterministic=False, direction='lower',
                          min_effect_pct=1.0).verdict == 'regression'


def test_large_but_noisy_change_is_not_flagged() -> None:
    a = [100.0, 60.0, 150.0, 90.0]
    b = [120.0, 70.0, 160.0, 95.0]
    result = compare_metric(a, b, deterministic=False, direction='lower')
    assert result.verdict == '~' and 'not significant' in result.reason


def test_deterministic_metrics_compare_exactly() -> None:
    same = compare_metric([1234, 1234], [1234, 1234], deterministic=True, direction='lower')
    assert (same.verdict, same.p_value, same.delta_pct) == ('~', None, 0.0)
    # One count among several differs, by far less than any min effect: still flagged.
    a = [1000, 1000, 1000]
    changed = compare_metric(a, [1000, 1000, 1001], deterministic=True, direction='lower')
    assert changed.verdict == 'changed' and changed.p_value is None
    worse = compare_metric([1000], [1001], deterministic=True, direction='lower')
    assert worse.verdict == 'regression' and 'deterministic' in worse.reason
    better = compare_metric([1000], [1001], deterministic=True, direction='higher')
    assert better.verdict == 'improvement'
    # Order does not matter: equal multisets are equal.
    assert compare_metric([1, 2, 3], [3, 1, 2], deterministic=True, direction='lower').verdict == '~'


def test_too_few_samples_is_no_verdict() -> None:
    n = MIN_SAMPLES - 1
    result = compare_metric([100.0] * n, [200.0] * n, deterministic=False, direction='lower')
    assert result.verdict == '~'
    assert result.reason.startswith(f'too few samples (n={n}/{n})')
    assert result.delta_pct == pytest.approx(100.0)


def test_constant_equal_sides_have_no_p() -> None:
    result = compare_metric([7.0] * 5, [7.0] * 5, deterministic=False, direction='lower')
    assert (result.verdict, result.p_value, result.delta_pct) == ('~', None, 0.0)


def test_zero_median_has_no_percentages() -> None:
    result = compare_metric([0.0] * 6, [5.0] * 6, deterministic=False, direction='lower')
    assert result.delta_pct is None and result.ci_low_pct is None
    assert result.verdict == 'regression' and 'no effect in %' in result.reason
    assert bootstrap_ci_pct([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]) is None


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
