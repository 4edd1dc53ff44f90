"""Scaling-law fits (paper Eq. 8, footnote 5) and the acceleration ratio (Eq. 9), float64."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import linregress

from learnlaw.analysis.scaling import (
    MIN_POINTS,
    ScalingFit,
    _r2_table,
    acceleration_ratio_closed_form,
    fit_scaling_law,
    fit_scaling_laws,
)
from learnlaw.core.metrics import empirical_acceleration_ratio, hitting_ratio

T = 4000
STEPS = np.arange(T + 1.0)
LAW1 = dict(B=3e8, beta=0.12, L0=0.05)  # about the paper's Table 1 (conventional)
LAW2 = dict(B=2e7, beta=0.14, L0=0.05)  # (near-)optimal


def curve(B, beta, L0, steps=STEPS):
    t = np.maximum(steps, 1.0)  # L(0) is never fitted (t > t0 ≥ 0)
    return L0 + (B / t) ** beta


def noisy(law, kind, seed):
    rng = np.random.default_rng(seed)
    c = curve(**law)
    if kind == "multiplicative":
        return c * (1 + 0.005 * rng.standard_normal(len(c)))
    return c + 0.01 * rng.standard_normal(len(c))


def close_law(fit, law, rel):
    """β and ln B within ``rel`` (B itself is exponentially sensitive to β)."""
    assert fit.beta == pytest.approx(law["beta"], rel=rel)
    assert math.log(fit.B) == pytest.approx(math.log(law["B"]), rel=rel)


# -- fits ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("law", [LAW1, LAW2])
@pytest.mark.parametrize("refine", [False, True, "log"])
def test_exact_power_law_is_recovered_with_searched_t0_and_L0(law, refine):
    fit = fit_scaling_law(STEPS, curve(**law), refine=refine)
    assert fit.B == pytest.approx(law["B"], rel=1e-3)
    assert fit.beta == pytest.approx(law["beta"], rel=1e-5)
    assert fit.L0 == pytest.approx(law["L0"], abs=1e-4)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9) and fit.rmse < 1e-5
    assert fit.method == {False: "regression", True: "lsq", "log": "lsq-log"}[refine]
    assert fit.n == int((STEPS > fit.t0).sum())


@pytest.mark.parametrize("law", [LAW1, LAW2])
@pytest.mark.parametrize("kind,refine", [("multiplicative", "log"), ("additive", True)])
def test_noisy_curves_recover_the_law_within_the_standard_errors(law, kind, refine):
    fit = fit_scaling_law(STEPS, noisy(law, kind, seed=1), refine=refine)
    close_law(fit, law, rel=0.02)
    assert fit.L0 == pytest.approx(law["L0"], abs=0.06)
    for est, se, true in [(fit.beta, fit.beta_se, law["beta"]), (fit.B, fit.B_se, law["B"])]:
        assert 0 < se and abs(est - true) < 4 * se
    assert abs(fit.L0 - law["L0"]) < 4 * fit.L0_se
    assert 0.99 < fit.r2 < 1


def test_regression_matches_scipy_linregress_at_fixed_t0_and_L0():
    y = noisy(LAW1, "multiplicative", seed=2)
    fit = fit_scaling_law(STEPS, y, t0=400, L0=0.051, refine=False)
    keep = STEPS > 400
    ref = linregress(np.log(STEPS[keep]), np.log(y[keep] - 0.051))
    assert (fit.t0, fit.L0, fit.n) == (400, 0.051, 3600)
    assert fit.beta == pytest.approx(-ref.slope, rel=1e-12)
    assert math.log(fit.B) == pytest.approx(ref.intercept / -ref.slope, rel=1e-12)
    assert fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-12)
    assert fit.beta_se == pytest.approx(ref.stderr, rel=1e-9)
    # delta method for ln B = −c/s from the regression covariance of (c, s)
    x = np.log(STEPS[keep])
    cov_cs = -x.mean() * ref.stderr**2
    g = np.array([-1 / ref.slope, ref.intercept / ref.slope**2])
    cov = np.array([[ref.intercept_stderr**2, cov_cs], [cov_cs, ref.stderr**2]])
    assert fit.B_se == pytest.approx(fit.B * math.sqrt(g @ cov @ g), rel=1e-6)
    assert math.isnan(fit.L0_se)


def test_vectorised_r2_table_equals_direct_regressions():
    y = noisy(LAW2, "additive", seed=3)[1:]
    x = np.log(STEPS[1:])
    starts = np.array([0, 7, 300, 3990])
    L0s = np.array([-1.0, 0.0, 0.04, float(y[300:].min()) - 1e-3, float(y.min()) + 1e-3])
    table = _r2_table(x, y, starts, L0s)
    for i, s in enumerate(starts):
        for j, l0 in enumerate(L0s):
            if (y[s:] > l0).all():
                assert table[i, j] == pytest.approx(
                    linregress(x[s:], np.log(y[s:] - l0)).rvalue ** 2
                )
            else:
                assert table[i, j] == -np.inf


def test_search_finds_the_warm_up_and_the_floor():
    """A curve that is flat during a warm-up, then a power law that flattens at L0."""
    c = curve(**LAW2)
    c[:200] = c[200]  # warm-up plateau: not a power law
    fit = fit_scaling_law(STEPS, c, refine=False)
    assert fit.t0 >= 200
    assert fit.L0 == pytest.approx(0.05, abs=1e-4)
    close_law(fit, LAW2, rel=1e-4)


def test_real_perceptron_curves_fit_and_extrapolate():
    """Gradient-descent curves (lr 0.1 and 0.3) flatten; a shared fit still extrapolates."""
    from learnlaw.core.policy import uniform_policy
    from learnlaw.core.training import train
    from learnlaw.tasks.perceptron import perceptron_task

    task = perceptron_task(dim=32, n_train=512, n_desired=128, n_test=128, dtype=torch.float64)
    policy = uniform_policy(1000, 512, dtype=torch.float64)
    slow, fast = (train(task, policy, lr).test_loss for lr in (0.1, 0.3))
    f1, f2 = fit_scaling_laws(None, [slow, fast])
    assert min(f1.r2, f2.r2) > 0.999 and f1.t0 > 0
    assert acceleration_ratio_closed_form(f1, f2, 1000) == pytest.approx(
        empirical_acceleration_ratio(slow, fast), rel=0.03
    )
    g1, g2 = fit_scaling_laws(None, [slow[:501], fast[:501]])  # fit on t ≤ 500 ...
    assert g1.predict(1000.0) == pytest.approx(float(slow[1000]), rel=0.03)  # ... predict t = 1000
    assert g2.predict(1000.0) == pytest.approx(float(fast[1000]), rel=0.03)
    assert acceleration_ratio_closed_form(g1, g2, 1000) == pytest.approx(
        empirical_acceleration_ratio(slow, fast), rel=0.05
    )


def test_torch_input_and_predict():
    y = curve(**LAW1)
    fit_np = fit_scaling_law(STEPS, y)
    fit_pt = fit_scaling_law(torch.tensor(STEPS), torch.tensor(y))
    assert fit_pt == fit_np
    fit_32 = fit_scaling_law(torch.arange(T + 1), torch.tensor(y, dtype=torch.float32))
    assert fit_32.beta == pytest.approx(fit_np.beta, rel=1e-3)
    assert fit_scaling_law(None, y) == fit_np  # steps None: 0…T
    t = torch.tensor([500.0, 4000.0], dtype=torch.float64)
    pred = fit_np.predict(t)
    assert isinstance(pred, torch.Tensor) and pred.dtype == torch.float64
    torch.testing.assert_close(pred, torch.tensor(y[[500, 4000]]), rtol=1e-6, atol=0)
    assert fit_np.predict([500.0]) == pytest.approx(y[[500]], rel=1e-6)
    assert fit_np.steps_to_reach(fit_np.predict(1234.0)) == pytest.approx(1234.0, rel=1e-9)
    assert math.isnan(fit_np.steps_to_reach(fit_np.L0))
    assert "t > " in str(fit_np)


def test_shared_L0_fit_of_two_curves():
    y1, y2 = noisy(LAW1, "additive", seed=4), noisy(LAW2, "additive", seed=5)
    f1, f2 = fit_scaling_laws(STEPS, [y1, y2])
    assert f1.L0 == f2.L0 and f1.t0 == f2.t0 and f1.L0_se == f2.L0_se
    assert f1.L0 == pytest.approx(0.05, abs=0.03)
    close_law(f1, LAW1, rel=0.02)
    close_law(f2, LAW2, rel=0.02)
    # a (2, n) tensor works too, and criterion="min" is accepted
    g1, g2 = fit_scaling_laws(STEPS, torch.tensor(np.stack([y1, y2])), criterion="min")
    assert g1.L0 == g2.L0
    # the closed form from the shared fit extrapolates the noise-free acceleration
    truth = acceleration_ratio_closed_form(ScalingFit(**LAW1), ScalingFit(**LAW2), 1e7)
    assert acceleration_ratio_closed_form(f1, f2, 1e7) == pytest.approx(truth, rel=0.1)
    # separate fits: one per curve, as fit_scaling_law gives
    s1, s2 = fit_scaling_laws(STEPS, [y1, y2], shared_L0=False)
    assert s1 == fit_scaling_law(STEPS, y1) and s2 == fit_scaling_law(STEPS, y2)


def test_fixed_t0_and_L0_are_respected():
    fit = fit_scaling_law(STEPS, noisy(LAW1, "additive", seed=6), t0=400, L0=0.051, refine=True)
    assert (fit.t0, fit.L0) == (400, 0.051) and math.isnan(fit.L0_se)
    grid = fit_scaling_law(STEPS, curve(**LAW1), t0_grid=[10, 100], L0_grid=[0.0, 0.05, 0.07])
    assert grid.t0 in (10, 100) and grid.L0 == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize(
    "steps,losses,kw,match",
    [
        (STEPS, curve(**LAW1)[None], {}, "1-D"),
        (STEPS, np.where(STEPS == 7, np.nan, curve(**LAW1)), {}, "non-finite entry at index 7"),
        (STEPS[::-1], curve(**LAW1), {}, "strictly increasing"),
        (STEPS - 1, curve(**LAW1), {}, "non-negative"),
        (STEPS[:-1], curve(**LAW1), {}, "4000 entries but the loss curve has 4001"),
        (STEPS, curve(**LAW1), {"t0": 3998}, f"at least {MIN_POINTS} points"),
        (STEPS[:4], curve(**LAW1)[:4], {}, f"at least {MIN_POINTS} points"),
        (STEPS, curve(**LAW1), {"t0": -1}, "t0 must be finite and ≥ 0"),
        (STEPS, curve(**LAW1), {"L0": 4.0}, "L0=4.0 must be below every loss"),
        (STEPS, 5 - curve(**LAW1), {}, "decreasing"),
        (STEPS, np.ones(T + 1), {}, "constant"),
        (STEPS, curve(**LAW1), {"refine": "yes"}, "refine must be"),
        (STEPS, -curve(**LAW1) + 10, {"refine": "log"}, "decreasing"),
    ],
)
def test_bad_inputs_are_rejected(steps, losses, kw, match):
    with pytest.raises(ValueError, match=match):
        fit_scaling_law(steps, losses, **kw)


def test_bad_shared_inputs_and_bad_fits():
    with pytest.raises(ValueError, match="different lengths"):
        fit_scaling_laws(STEPS, [curve(**LAW1), curve(**LAW1)[:-1]])
    with pytest.raises(ValueError, match="non-empty"):
        fit_scaling_laws(STEPS, [])
    with pytest.raises(ValueError, match="criterion"):
        fit_scaling_laws(STEPS, [curve(**LAW1)], criterion="max")
    with pytest.raises(ValueError, match="B and beta must be finite and > 0"):
        ScalingFit(B=-1.0, beta=0.1)
    with pytest.raises(ValueError, match="positive losses"):
        fit_scaling_law(STEPS, curve(**LAW1) - 4.5, refine="log", L0_grid=[-10.0, -5.0])


# -- acceleration ratio ----------------------------------------------------------------------------
def test_closed_form_matches_the_digest_numbers():
    conv = ScalingFit(B=3.16e8, beta=0.12, L0=0.051, t0=400)
    opt = ScalingFit(B=1.99e7, beta=0.14, L0=0.051, t0=400)
    assert acceleration_ratio_closed_form(conv, opt, 4000) == pytest.approx(3.17, abs=0.005)
    assert acceleration_ratio_closed_form(conv, opt, 1e7) == pytest.approx(9.70, abs=0.005)
    # Table 2's 4K row: |ΔB|/B = 93.7 %, |Δβ|/β = 18.7 %
    row = ScalingFit(B=3.16e8 * (1 - 0.937), beta=0.12 * 1.187, L0=0.051)
    assert acceleration_ratio_closed_form(conv, row, [4000, 1e7]) == pytest.approx(
        [2.69, 9.21], abs=0.005
    )


def test_closed_form_is_T_over_the_reach_step_and_vectorised():
    f1, f2 = ScalingFit(**LAW1), ScalingFit(**LAW2)
    Ts = np.array([10.0, 4000.0, 1e7, 1e12])
    ar = acceleration_ratio_closed_form(f1, f2, Ts)
    assert ar.shape == (4,)
    reach = f2.steps_to_reach(f1.predict(Ts))  # the t with L2(t) = L1(T)
    np.testing.assert_allclose(ar, Ts / reach, rtol=1e-9)
    assert acceleration_ratio_closed_form(f1, f2, 4000) == pytest.approx(ar[1], rel=1e-12)
    # on the noise-free curves it agrees with the empirical ratio up to the integer step
    emp = empirical_acceleration_ratio(curve(**LAW1), curve(**LAW2))
    assert emp == pytest.approx(ar[1], rel=2e-3)


def test_closed_form_rejects_unshared_L0_and_bad_T():
    f1, f2 = ScalingFit(**LAW1), ScalingFit(B=2e7, beta=0.14, L0=0.06)
    with pytest.raises(ValueError, match="shared L0"):
        acceleration_ratio_closed_form(f1, f2, 4000)
    with pytest.raises(ValueError, match="positive"):
        acceleration_ratio_closed_form(f1, ScalingFit(**LAW2), [4000, 0])
    with pytest.raises(TypeError):
        acceleration_ratio_closed_form(f1, curve(**LAW2), 4000)


def test_empirical_ratio_by_hand():
    ref = [5.0, 4.0, 3.0, 2.0, 1.0]
    fast = [5.0, 2.5, 1.0, 0.5, 0.2]
    assert empirical_acceleration_ratio(ref, fast) == 4 / 2  # fast reaches 1.0 at t = 2
    assert (
        empirical_acceleration_ratio(ref, fast, T=2) == 2 / 1
    )  # reaches ref[2] = 3.0 at t = 1 (2.5)
    np.testing.assert_array_equal(
        empirical_acceleration_ratio(ref, fast, T=[1, 2, 3, 4]), [1, 2, 1.5, 2]
    )
    assert math.isnan(empirical_acceleration_ratio(fast, ref))  # ref never gets down to 0.2
    slow = [5.0, 4.9, 4.8, 4.7, 4.6]
    assert math.isnan(empirical_acceleration_ratio(ref, slow))  # never reaches ref[T]
    assert empirical_acceleration_ratio(ref, [0.5] * 5) == math.inf  # already there at t = 0
    with pytest.raises(ValueError, match="same shape"):
        empirical_acceleration_ratio(ref, fast[:-1])
    with pytest.raises(ValueError, match="integer steps in 1…4"):
        empirical_acceleration_ratio(ref, fast, T=5)


def test_empirical_ratio_vectorised_matches_the_definition():
    rng = np.random.default_rng(7)
    ref = np.cumsum(-rng.random(301)) + 400 + rng.normal(0, 2, 301)  # noisy, not monotone
    new = np.cumsum(-1.5 * rng.random(301)) + 400 + rng.normal(0, 2, 301)
    Ts = np.arange(1, 301)
    got = empirical_acceleration_ratio(ref, new, Ts)
    for T_, g in zip(Ts, got):
        hit = np.flatnonzero(new <= ref[T_])
        want = (T_ / hit[0] if hit[0] > 0 else math.inf) if len(hit) else math.nan
        assert g == want or (math.isnan(g) and math.isnan(want))
    # tensors give the same numbers as arrays, and T defaults to T_max
    assert got[-1] == empirical_acceleration_ratio(torch.tensor(ref), torch.tensor(new))


def test_hitting_ratio_is_eq9_for_monotone_and_fair_otherwise():
    ref = np.array([1.0, 0.8, 0.6, 0.5, 0.4])  # monotone: L = 0.4, t_ref = T = 4
    fast = np.array([1.0, 0.5, 0.3, 0.2, 0.1])  # reaches 0.4 at t = 2
    assert hitting_ratio(ref, fast) == 2.0 == empirical_acceleration_ratio(ref, fast)
    assert hitting_ratio(ref, ref) == 1.0
    bumpy = np.array([1.0, 0.6, 0.3, 0.45, 0.4])  # best 0.3 at t = 2, ends above it
    assert empirical_acceleration_ratio(bumpy, bumpy) == 2.0  # Eq. 9 credits the baseline with 2x
    assert hitting_ratio(bumpy, bumpy) == 1.0
    assert hitting_ratio(bumpy, fast) == 1.0  # fast reaches 0.3 at t = 2 too
    assert hitting_ratio(bumpy, ref) != hitting_ratio(bumpy, ref)  # never reaches 0.3: nan
    assert math.isnan(hitting_ratio(ref, np.array([1.0, 0.9, 0.9, 0.9, 0.9])))
    assert math.isnan(hitting_ratio(np.array([0.5, 0.6, 0.7]), fast[:3]))  # never improves
