"""learnlaw.analysis.paired: paired ratios over seeds, times to targets, the "beats" rule."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from learnlaw.analysis.paired import (
    PairedRatio,
    beats,
    paired_ratio,
    target_speedups,
    targets_from_baseline,
    time_to_target,
)


def _values(n, seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(2.0, 6.0, n)
    return base * np.exp(rng.normal(0.1, 0.2, n)), base


# ---------------------------------------------------------------- paired_ratio


@pytest.mark.parametrize("n,confidence", [(2, 0.95), (5, 0.9), (12, 0.99)])
def test_paired_ratio_is_the_t_interval_of_the_log_ratios_by_hand(n, confidence):
    m, b = _values(n, seed=n)
    res = paired_ratio(m, b, confidence=confidence)
    d = [math.log(mi / bi) for mi, bi in zip(m, b)]
    mu = sum(d) / n
    s = math.sqrt(sum((x - mu) ** 2 for x in d) / (n - 1))
    q = stats.t.ppf(0.5 + confidence / 2, n - 1)
    assert res.n == n and res.confidence == confidence
    np.testing.assert_allclose(res.ratios, m / b, rtol=1e-15)
    assert res.mean == pytest.approx(float(np.mean(m / b)), rel=1e-14)
    assert res.geometric_mean == pytest.approx(math.exp(mu), rel=1e-14)
    assert res.low == pytest.approx(math.exp(mu - q * s / math.sqrt(n)), rel=1e-12)
    assert res.high == pytest.approx(math.exp(mu + q * s / math.sqrt(n)), rel=1e-12)
    assert res.low < res.geometric_mean <= res.mean and res.geometric_mean < res.high


@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_paired_ratio_matches_scipy_ttest_1samp_on_the_logs(confidence):
    m, b = _values(7, seed=1)
    ci = stats.ttest_1samp(np.log(m / b), 0.0).confidence_interval(confidence_level=confidence)
    res = paired_ratio(list(m), torch.tensor(b), confidence=confidence)
    assert res.low == pytest.approx(math.exp(ci.low), rel=1e-12)
    assert res.high == pytest.approx(math.exp(ci.high), rel=1e-12)


def test_the_interval_of_the_inverse_ratio_is_the_inverse_interval():
    m, b = _values(6, seed=2)
    fwd, back = paired_ratio(m, b), paired_ratio(b, m)
    assert back.low == pytest.approx(1 / fwd.high, rel=1e-13)
    assert back.high == pytest.approx(1 / fwd.low, rel=1e-13)
    assert back.geometric_mean == pytest.approx(1 / fwd.geometric_mean, rel=1e-13)


def test_paired_ratio_covers_the_true_ratio_at_its_level():
    # log-normal ratios with median 1.3: the interval on the logs is exact, so over 2000 draws of
    # 5 seeds the 90% interval covers 1.3 in 90% ± 3 standard errors (0.0067) of them; a normal
    # quantile instead of Student's t would cover about 85%.
    rng = np.random.default_rng(0)
    draws = 2000
    logs = rng.normal(math.log(1.3), 0.3, (draws, 5))
    hits = 0
    for row in logs:
        r = paired_ratio(np.exp(row), np.ones(5), confidence=0.9)
        hits += r.low <= 1.3 <= r.high
    assert abs(hits / draws - 0.9) < 3 * math.sqrt(0.9 * 0.1 / draws)


def test_one_seed_has_no_interval():
    res = paired_ratio([3.0], [2.0])
    assert res.n == 1 and res.mean == 1.5 and res.geometric_mean == pytest.approx(1.5)
    assert math.isnan(res.low) and math.isnan(res.high)


def test_equal_ratios_give_a_point_interval():
    res = paired_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert res.low == pytest.approx(2.0) and res.high == pytest.approx(2.0)


@pytest.mark.parametrize(
    "m,b,match",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "3 seeds but baseline_values 2"),
        ([1.0, 0.0], [1.0, 2.0], "method_values must be finite and > 0.*0.0 at seed index 1"),
        ([1.0, 2.0], [-1.0, 2.0], "baseline_values must be finite and > 0"),
        ([1.0, math.nan], [1.0, 2.0], "finite and > 0"),
        ([1.0, math.inf], [1.0, 2.0], "finite and > 0"),
        ([], [], "non-empty 1-D"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "non-empty 1-D"),
    ],
)
def test_paired_ratio_refuses_bad_values(m, b, match):
    with pytest.raises(ValueError, match=match):
        paired_ratio(m, b)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan])
def test_paired_ratio_refuses_a_confidence_outside_0_1(confidence):
    with pytest.raises(ValueError, match="confidence"):
        paired_ratio([1.0, 2.0], [1.0, 1.0], confidence=confidence)


# ---------------------------------------------------------------- time to target


def test_time_to_target_never_reached_is_none():
    assert time_to_target([3.0, 2.0, 1.5, 1.2], 1.0) is None


def test_time_to_target_at_step_one_and_theta0_left_out():
    assert time_to_target([3.0, 1.0, 2.0], 1.0) == 1  # equality counts
    # θ_0 is below the target but does not count: the first t ≥ 1 below it is 3
    assert time_to_target([0.5, 1.0, 0.9, 0.4], 0.6) == 3


def test_time_to_target_on_a_plateau_is_its_first_step():
    assert time_to_target([3.0, 2.0, 1.0, 1.0, 1.0, 1.0], 1.0) == 2


def test_time_to_target_ignores_non_finite_losses():
    assert time_to_target([3.0, math.nan, math.inf, 1.0], 2.0) == 3


def test_time_to_target_matches_a_loop_on_random_curves():
    rng = np.random.default_rng(3)
    for _ in range(20):
        c = rng.uniform(0, 1, 30)
        level = float(rng.uniform(0, 0.5))
        expect = next((t for t in range(1, 30) if c[t] <= level), None)
        assert time_to_target(torch.tensor(c), level) == expect


@pytest.mark.parametrize("curve", [[1.0], 2.0, [[1.0, 2.0], [3.0, 4.0]]])
def test_time_to_target_refuses_a_curve_without_steps(curve):
    with pytest.raises(ValueError, match=r"shape \(T\+1,\)"):
        time_to_target(curve, 1.0)


def test_targets_are_the_running_minimum_up_to_the_fraction_steps():
    t = np.arange(129)
    base = 1 / (1 + t) + 0.3 * (t % 2)  # oscillates: odd steps sit above the running minimum
    targets = targets_from_baseline(base)
    steps = [2, 16, 128]  # round(128/64), round(128/8), 128
    expect = [min(base[1 : s + 1]) for s in steps]
    np.testing.assert_allclose(targets, expect, rtol=0, atol=0)
    odd = targets_from_baseline(base, fractions=(127 / 128,))
    assert odd[0] == base[126] and base[127] > odd[0]
    for level, s in zip(targets, steps):
        assert time_to_target(base, float(level)) <= s


def test_target_steps_round_half_to_even_and_at_least_one():
    base = np.linspace(2.0, 1.0, 101)  # T = 100, strictly falling: target = base[s]
    # 1/64·100 = 1.5625 → 2, 0.025·100 = 2.5 → 2 (half to even), 0.001·100 → max(1, 0) = 1
    targets = targets_from_baseline(base, fractions=(1 / 64, 0.025, 0.001))
    np.testing.assert_array_equal(targets, base[[2, 2, 1]])


@pytest.mark.parametrize("fractions", [(0.0,), (1.5,), (), (0.5, -0.1), "abc", 0.5])
def test_targets_refuse_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        targets_from_baseline([3.0, 2.0, 1.0], fractions=fractions)


def test_targets_refuse_a_diverged_baseline():
    with pytest.raises(ValueError, match="non-finite"):
        targets_from_baseline([3.0, math.nan, 1.0])


def test_speedups_of_a_twice_as_fast_curve():
    t = np.arange(129, dtype=float)
    base, fast = 1 / (1 + t), 1 / (1 + 2 * t)
    res = target_speedups(base, fast)
    steps = np.array([2, 16, 128])
    np.testing.assert_array_equal(res.steps, steps)
    np.testing.assert_array_equal(res.baseline_time, steps)
    np.testing.assert_array_equal(res.method_time, np.ceil(steps / 2))  # 1 + 2t ≥ 1 + s
    np.testing.assert_allclose(res.speedup, steps / np.ceil(steps / 2), rtol=1e-15)
    np.testing.assert_allclose(res.fractions, [1 / 64, 1 / 8, 1])


def test_a_late_plateau_does_not_raise_the_early_speedups():
    # the method is slow for most of the run and only drops below the baseline at the very end:
    # its speed-up is 1 at the final level and < 1 at T/64 and T/8.
    t = np.arange(129, dtype=float)
    base = 1 / (1 + t)
    slow = np.where(t < 120, 1 / (1 + t / 4), 0.5 / (1 + t))
    res = target_speedups(base, slow)
    assert res.speedup[0] < 1 and res.speedup[1] < 1
    assert res.method_time[2] == 120 and res.speedup[2] == pytest.approx(128 / 120)


def test_the_baseline_against_itself_has_speedup_one():
    rng = np.random.default_rng(4)
    base = np.concatenate([[5.0], rng.uniform(0.5, 3.0, 256)])
    np.testing.assert_array_equal(target_speedups(base, base).speedup, 1.0)


def test_a_never_reached_target_is_nan():
    base = np.array([3.0, 2.0, 1.0, 0.5])
    res = target_speedups(base, [3.0, 2.5, 2.0, 1.0], fractions=(1 / 3, 1.0))
    assert res.method_time[0] == 2 and math.isnan(res.method_time[1])
    assert res.speedup[0] == 0.5 and math.isnan(res.speedup[1])


def test_speedups_refuse_curves_of_different_lengths():
    with pytest.raises(ValueError, match="T = 2 steps but baseline_curve T = 3"):
        target_speedups([3.0, 2.0, 1.0, 0.5], [3.0, 2.0, 1.0])


# ---------------------------------------------------------------- beats


def test_beats_when_the_interval_is_above_one_and_every_final_is_lower():
    assert beats((1.05, 1.4), [0.9, 0.95, 0.99])


def test_an_interval_straddling_one_does_not_beat():
    assert not beats((0.97, 1.4), [0.9, 0.95, 0.99])


def test_one_seed_with_a_worse_or_equal_final_does_not_beat():
    assert not beats((1.05, 1.4), [0.9, 1.01, 0.99])
    assert not beats((1.05, 1.4), [0.9, 1.0, 0.99])


def test_the_threshold_is_strict_and_adjustable():
    assert not beats((1.0, 1.4), [0.9])
    assert not beats((1.1, 1.4), [0.9], threshold=1.2)
    assert beats((1.1, 1.4), [0.9], threshold=1.05)


def test_beats_takes_a_paired_ratio():
    cr_m, cr_b = [5.0, 5.5, 6.1, 5.2], [4.0, 4.1, 4.5, 4.0]
    interval = paired_ratio(cr_m, cr_b)
    assert isinstance(interval, PairedRatio) and interval.low > 1
    assert beats(interval, [0.8, 0.9, 0.95, 0.7])
    assert not beats(paired_ratio([5.0], [4.0]), [0.8])  # one seed: no interval, no claim
    with pytest.raises(ValueError, match="over 4 seeds but final_ratios has 3"):
        beats(interval, [0.8, 0.9, 0.95])


@pytest.mark.parametrize(
    "interval,finals,match",
    [
        ((1.3, 1.1), [0.9], "low = 1.3 > high = 1.1"),
        ((1.1, 1.2, 1.3), [0.9], "PairedRatio or a \\(low, high\\) pair"),
        ((1.1, 1.3), [], "non-empty"),
        ((1.1, 1.3), [0.9, 0.0], "finite and > 0"),
    ],
)
def test_beats_refuses_bad_inputs(interval, finals, match):
    with pytest.raises(ValueError, match=match):
        beats(interval, finals)
